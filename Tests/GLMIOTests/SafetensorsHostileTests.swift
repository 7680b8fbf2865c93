// Hostile safetensors files: each is a one-line GLMError naming the file, never a trap or a huge allocation.
import XCTest
import Foundation
import GLMCore
import GLMIO

final class SafetensorsHostileTests: XCTestCase {
    var dir: String!
    override func setUp() {
        dir = NSTemporaryDirectory() + "glmtrain-sth-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A file with `header` (JSON text) and `dataBytes` zero bytes; `length` overrides the 8-byte header length.
    func file(_ header: String, dataBytes: Int, length: UInt64? = nil) throws -> String {
        var d = Data()
        let h = Data(header.utf8)
        withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { d.append(contentsOf: $0) }
        d.append(h)
        d.append(Data(count: dataBytes))
        let path = "\(dir!)/f-\(UUID().uuidString).safetensors"
        try d.write(to: URL(fileURLWithPath: path))
        return path
    }

    func assertError(_ path: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { e in
            let m = (e as? GLMError)?.message ?? "\(e)"
            XCTAssertTrue(m.hasPrefix(path + ": "), m, file: file, line: line)
            XCTAssertTrue(m.contains(expected), "'\(expected)' not in: \(m)", file: file, line: line)
            XCTAssertFalse(m.contains("\n"), file: file, line: line)
        }
    }

    func testHeaderLengthWithTheTopBitSetIsAnError() throws {
        let path = try file(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, dataBytes: 4, length: 1 << 63)
        assertError(path, "header length 9223372036854775808 does not fit")
        assertError(try file("{}", dataBytes: 0, length: UInt64.max), "does not fit")
    }

    func testShapesWhoseProductOverflowsAreErrors() throws {
        assertError(try file(#"{"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#, dataBytes: 4),
                    "tensor 'a': shape [4294967296, 4294967296] has more than")
        assertError(try file(#"{"a": {"dtype": "F32", "shape": [9223372036854775807, 2], "data_offsets": [0, 4]}}"#, dataBytes: 4),
                    "has more than")
        assertError(try file(#"{"a": {"dtype": "F32", "shape": [-1, -4], "data_offsets": [0, 16]}}"#, dataBytes: 16),
                    "negative dimension")
    }

    func testOverlappingGappedAndTrailingDataAreErrors() throws {
        let two = { (a: String, b: String, n: Int) in
            try self.file("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": \(a)}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": \(b)}}", dataBytes: n)
        }
        assertError(try two("[0, 8]", "[0, 8]", 8), "tensors overlap")
        assertError(try two("[0, 8]", "[4, 12]", 12), "tensors overlap")
        assertError(try two("[0, 8]", "[12, 20]", 20), "a gap between tensors")
        assertError(try two("[4, 12]", "[12, 20]", 20), "starts at data byte 4; expected 0")
        assertError(try two("[0, 8]", "[8, 16]", 24), "tensors cover 16 of 24 data bytes")
        // The well-formed file next to them reads.
        let ok = try SafetensorsFile(path: try two("[0, 8]", "[8, 16]", 16))
        XCTAssertEqual(ok.names, ["a", "b"])
    }

    func testATensorNamedTwiceIsRefusedByName() throws {
        let header = #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#
        assertError(try file(header, dataBytes: 8), "the header names 'a' twice")
        // The same name at both offsets leaves 4 bytes uncovered: still the duplicate that is named.
        let same = #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#
        assertError(try file(same, dataBytes: 8), "the header names 'a' twice")
    }

    func testMetadataMustBeStrings() throws {
        assertError(try file(#"{"__metadata__": {"format": 5}}"#, dataBytes: 0), "__metadata__ key 'format' is not a string")
    }

    func testHeaderMustStartWithABraceAndHoldIntegers() throws {
        assertError(try file("\u{FEFF}{}", dataBytes: 0), "header does not start with '{'")
        assertError(try file(" {}", dataBytes: 0), "header does not start with '{'")
        for shape in ["[2.0]", "[true]", "[2e0]", "[\"2\"]", "[18446744073709551615]"] {
            assertError(try file("{\"a\": {\"dtype\": \"F32\", \"shape\": \(shape), \"data_offsets\": [0, 8]}}", dataBytes: 8),
                        "tensor 'a' has no valid dtype/shape/data_offsets")
        }
        assertError(try file(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8.0]}}"#, dataBytes: 8), "no valid dtype/shape/data_offsets")
        assertError(try file(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [false, 8]}}"#, dataBytes: 8), "no valid dtype/shape/data_offsets")
        // 0 and 1 are integers (Foundation also bridges them to Bool)
        let ok = try SafetensorsFile(path: try file(#"{"a": {"dtype": "F32", "shape": [1, 0], "data_offsets": [0, 0]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, dataBytes: 4))
        XCTAssertEqual(ok.names.sorted(), ["a", "b"])
    }
}
