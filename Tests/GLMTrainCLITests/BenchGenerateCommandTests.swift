// `glm-train bench generate --batch`: one batch size measured on its own (for profiling one of them), others refused.
import XCTest
import Foundation
import TestSupport

final class BenchGenerateCommandTests: XCTestCase {
    func testBatchOptionMeasuresOnlyTheBatchAskedFor() throws {
        let r = try GLMTrainBinary.run(["bench", "generate", "--no-compare", "--dtype", "float32", "--batch", "1", "--new-tokens", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").filter { $0.contains("tokens_per_s/") }
        XCTAssertEqual(lines.map { String($0.split(separator: " ")[0]) }, ["prefill_tokens_per_s/b1", "decode_tokens_per_s/b1"], r.stdout)
        for line in lines {
            let rate = try XCTUnwrap(Double(line.split(separator: " ")[2]), String(line))
            XCTAssertGreaterThan(rate, 0, String(line))
        }
    }

    func testAnUnknownBatchIsAOneLineError() throws {
        for value in ["3", "0", "both,1", ""] {
            let r = try GLMTrainBinary.run(["bench", "generate", "--no-compare", "--batch", value])
            XCTAssertNotEqual(r.status, 0, value)
            XCTAssertTrue(r.stderr.hasPrefix("error:") && r.stderr.contains("--batch: expected 1, 8 or both"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
    }
}
