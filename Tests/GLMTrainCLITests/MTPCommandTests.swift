// `glm-train generate --speculative mtp` prints plain greedy decoding's tokens and the acceptance, refuses what it
// cannot do (sampling, several prompts, a model without an MTP layer) with one-line errors; `bench speculative` runs.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class MTPCommandTests: XCTestCase {
    let model = "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/moe-mtp"

    func tokens(_ stdout: String) throws -> (tokens: [Int], object: [String: Any]) {
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
        return (try XCTUnwrap(obj["tokens"] as? [Int]), obj)
    }

    func testSpeculativeGenerateEqualsGreedy() throws {
        for prompt in ["7,21,4,30", "5", "11,50,3,3,59,42"] {
            let args = ["generate", "--model", model, "--prompt-tokens", prompt, "--max-new-tokens", "20", "--json"]
            let plain = try GLMTrainBinary.run(args), spec = try GLMTrainBinary.run(args + ["--speculative", "mtp"])
            XCTAssertEqual(plain.status, 0, plain.stderr)
            XCTAssertEqual(spec.status, 0, spec.stderr)
            XCTAssertEqual(try tokens(spec.stdout).tokens, try tokens(plain.stdout).tokens, prompt)
            let s = try XCTUnwrap(try tokens(spec.stdout).object["speculative"] as? [String: Any])
            XCTAssertNotNil(s["acceptance_rate"])
            XCTAssertTrue(spec.stderr.contains("MTP drafts accepted"), spec.stderr)
        }
    }

    func testSpeculativeRefusalsAreOneLineErrors() throws {
        func error(_ extra: [String], model m: String? = nil) throws -> String {
            let r = try GLMTrainBinary.run(["generate", "--model", m ?? model, "--prompt-tokens", "1,2,3", "--max-new-tokens", "4", "--speculative", "mtp"] + extra)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            return r.stderr
        }
        XCTAssertTrue(try error(["--temperature", "0.7"]).contains("--speculative mtp is greedy only"))
        XCTAssertTrue(try error(["--prompt-tokens", "4,5"]).contains("--speculative mtp takes one prompt (batch 1); got 2"))
        XCTAssertTrue(try error([], model: "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/moe-a").contains("has no MTP layer"))
        let r = try GLMTrainBinary.run(["generate", "--model", model, "--prompt-tokens", "1,2", "--speculative", "eagle"])
        XCTAssertEqual(r.stderr, "error: --speculative: 'eagle' is not supported; expected mtp\n")
    }

    func testBenchSpeculativeChecksAndPrintsTheAcceptance() throws {
        let r = try GLMTrainBinary.run(["bench", "speculative", "--model", model, "--count", "2", "--prompt-length", "4",
                                        "--new-tokens", "8", "--repeats", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("outputs identical: yes (16 tokens)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("drafts accepted"), r.stdout)
    }
}
