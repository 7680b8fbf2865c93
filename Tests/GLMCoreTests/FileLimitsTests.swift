// The bounds layer for values from files: checked products and conversions, nesting depth of JSON and YAML.
import XCTest
import GLMCore

final class FileLimitsTests: XCTestCase {
    func testElementCountRejectsOverflowNegativeAndTooManyDimensions() throws {
        XCTAssertEqual(try Checked.elementCount([3, 4, 5], "t"), 60)
        XCTAssertEqual(try Checked.elementCount([], "t"), 1)
        XCTAssertEqual(try Checked.elementCount([7, 0], "t"), 0)
        XCTAssertThrowsError(try Checked.elementCount([1 << 32, 1 << 32], "f.safetensors: tensor 'w'")) { e in
            XCTAssertEqual((e as? GLMError)?.message, "f.safetensors: tensor 'w': shape [4294967296, 4294967296] has more than \(FileLimits.maxTensorElements) elements")
        }
        XCTAssertThrowsError(try Checked.elementCount([Int.max, 2], "t"))
        XCTAssertThrowsError(try Checked.elementCount([4, -1], "t")) { e in
            XCTAssertTrue((e as? GLMError)?.message.contains("negative") ?? false)
        }
        XCTAssertThrowsError(try Checked.elementCount([Int](repeating: 1, count: 9), "t"))
    }

    func testMultiplyAddAndIntegerConversions() throws {
        XCTAssertEqual(try Checked.multiply(1 << 20, 1 << 20, "x"), 1 << 40)
        XCTAssertThrowsError(try Checked.multiply(1 << 62, 4, "x"))
        XCTAssertThrowsError(try Checked.multiply(10, 10, "x", limit: 99))
        XCTAssertThrowsError(try Checked.add(Int.max, 1, "x"))
        XCTAssertEqual(try Checked.integer(16, "lora_alpha"), 16)
        for bad in [1e30, .nan, .infinity, 2.5, -1e300] {
            XCTAssertThrowsError(try Checked.integer(bad, "lora_alpha"), "\(bad)")
        }
        XCTAssertThrowsError(try Checked.integer(5, "r", in: 1...4))
        XCTAssertThrowsError(try Checked.bounded(0, "r", in: 1...4))
    }

    func testJSONNestingDepthIsBoundedOutsideStrings() throws {
        try NestingDepth.checkJSON(Array("{\"a\": [1, {\"b\": 2}]}".utf8), source: "c.json")
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        XCTAssertThrowsError(try NestingDepth.checkJSON(Array(deep.utf8), source: "c.json")) { e in
            XCTAssertEqual((e as? GLMError)?.message, "c.json: nested deeper than \(FileLimits.maxNestingDepth) levels")
        }
        // Brackets inside strings (with escaped quotes) do not count.
        let quoted = "{\"k\": \"\\\"" + String(repeating: "[", count: 500) + "\"}"
        try NestingDepth.checkJSON(Array(quoted.utf8), source: "c.json")
        try NestingDepth.checkJSON(Array((String(repeating: "[", count: 64) + String(repeating: "]", count: 64)).utf8), source: "c.json")
        XCTAssertThrowsError(try NestingDepth.checkJSON(Array((String(repeating: "[", count: 65)).utf8), source: "c.json"))
    }

    func testYAMLNestingDepthCountsBlocksFlowsAndDashes() throws {
        try NestingDepth.checkYAML("task: sft\nmodel:\n  path: x\neval:\n  hooks:\n    - {type: loss}\n", source: "r.yaml")
        let blocks = "a:\n" + (0..<100).map { String(repeating: " ", count: $0 + 1) + "k\($0):\n" }.joined()
        XCTAssertThrowsError(try NestingDepth.checkYAML(blocks, source: "r.yaml")) { e in
            XCTAssertTrue((e as? GLMError)?.message.hasPrefix("r.yaml:") ?? false)
        }
        XCTAssertThrowsError(try NestingDepth.checkYAML("x: " + String(repeating: "[", count: 10_000), source: "r.yaml"))
        // Flow collections that span lines still count.
        XCTAssertThrowsError(try NestingDepth.checkYAML("x:\n" + String(repeating: "[\n", count: 200), source: "r.yaml"))
        XCTAssertThrowsError(try NestingDepth.checkYAML(String(repeating: "- ", count: 200) + "x\n", source: "r.yaml"))
        // Found by fuzz-recipe: lines broken by carriage returns (YAML line breaks) behind a comment.
        XCTAssertThrowsError(try NestingDepth.checkYAML("# c\r" + String(repeating: "[", count: 200), source: "r.yaml"))
        XCTAssertThrowsError(try NestingDepth.checkYAML("a: 1\u{2028}" + String(repeating: "[", count: 200), source: "r.yaml"))
        // A quote inside a plain scalar opens no string; an escaped quote does not close one.
        XCTAssertThrowsError(try NestingDepth.checkYAML("x: [it's, " + String(repeating: "[", count: 200), source: "r.yaml"))
        XCTAssertThrowsError(try NestingDepth.checkYAML("x: [\"a\\\"]]]]\", " + String(repeating: "[", count: 100), source: "r.yaml"))
        // A quoted string spanning lines hides its brackets.
        try NestingDepth.checkYAML("x: 'a\n" + String(repeating: "[", count: 200) + "'\ny: 1\n", source: "r.yaml")
        // Quoted brackets and comments do not count.
        try NestingDepth.checkYAML("x: '" + String(repeating: "[", count: 200) + "'\ny: 1 # " + String(repeating: "{", count: 200), source: "r.yaml")
    }
}
