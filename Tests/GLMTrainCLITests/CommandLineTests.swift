// The built `glm-train` binary, run as a user runs it: outputs against transformers' fixtures, one-line errors
// with a non-zero exit, and inspect on an HDF5 training checkpoint.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class CommandLineTests: XCTestCase {
    func glmTrain(_ args: [String]) throws -> GLMTrainBinary.Result { try GLMTrainBinary.run(args) }

    var fixture: String { "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm4" }

    func temporary(_ name: String) -> String { GLMTrainBinary.temporary(name) }

    func testScoreMatchesTransformersLogProbs() throws {
        let expected = try SafetensorsFile(path: "\(fixture)/expected.safetensors")
        let ids = try expected.ids("single.ids")
        let input = temporary("in.jsonl"), output = temporary("out.jsonl")
        try Data("{\"tokens\": \(ids)}\n".utf8).write(to: URL(fileURLWithPath: input))
        let r = try glmTrain(["score", "--model", fixture, "--input", input, "--output", output])
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try JSONLines.read(output)[0]
        let got = (line.object["logprobs"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) }
        let want = try expected.tensor("single.logprobs").scalars
        XCTAssertEqual(got.count, want.count)
        for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-4) }
    }

    func testBadInputGivesOneLineErrorAndNonZeroExit() throws {
        let input = temporary("bad.jsonl"), output = temporary("never.jsonl")
        try Data("{\"tokens\": [1, 2]}\n{\"tokens\": [1, 2.5]}\n".utf8).write(to: URL(fileURLWithPath: input))
        let r = try glmTrain(["score", "--model", fixture, "--input", input, "--output", output])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(input):2:"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "no half-written output")
        let missing = try glmTrain(["generate", "--model", "/nonexistent-model", "--prompt-tokens", "1"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.hasPrefix("error: ") && missing.stderr.contains("/nonexistent-model"), missing.stderr)
    }

    func testGreedyGenerationIsReproducibleAndJSON() throws {
        let a = try glmTrain(["generate", "--model", fixture, "--prompt-tokens", "5,17,33", "--max-new-tokens", "5", "--json"])
        XCTAssertEqual(a.status, 0, a.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((obj["tokens"] as! [Int]).count, 5)
        XCTAssertEqual(obj["prompt_tokens"] as! [Int], [5, 17, 33])
        let b = try glmTrain(["generate", "--model", fixture, "--prompt-tokens", "5,17,33", "--max-new-tokens", "5", "--json"])
        XCTAssertEqual(a.stdout, b.stdout)
    }

    func testInspectReadsATrainingCheckpoint() throws {
        let path = temporary("step-00000007.h5")
        var c = TrainingCheckpoint(tensors: ["w": Tensor([1, 2, 3, 4], shape: [2, 2])],
                                   optimizerState: ["exp_avg/w": Tensor(zeros: [2, 2])], step: 7)
        c.dataCursor = ["index": 56]
        try c.write(to: path)
        let r = try glmTrain(["inspect", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("step: 7") && r.stdout.contains("exp_avg/w") && r.stdout.contains("[2, 2]"), r.stdout)
        try Data("torn".utf8).write(to: URL(fileURLWithPath: path))
        let torn = try glmTrain(["inspect", path])
        XCTAssertNotEqual(torn.status, 0)
        XCTAssertTrue(torn.stderr.hasPrefix("error: \(path)"), torn.stderr)
    }

    /// OpenBLAS's idle threads yield for 2^22 cycles, not its default 2^28, unless the user chose a value.
    func testOpenBLASThreadTimeoutIsShortenedUnlessTheUserSetIt() throws {
        if ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] == nil {
            let auto = try glmTrain(["doctor"])
            XCTAssertEqual(auto.status, 0, auto.stderr)
            XCTAssertTrue(auto.stdout.contains("openblas idle:     threads yield for 2^22 TSC cycles"), auto.stdout)
        }
        let user = try GLMTrainBinary.run(["doctor"], environment: ["OPENBLAS_THREAD_TIMEOUT": "26"])
        XCTAssertEqual(user.status, 0, user.stderr)
        XCTAssertTrue(user.stdout.contains("openblas idle:     threads yield for 2^26 TSC cycles"), user.stdout)
        // As OpenBLAS reads it: an integer clamped to 4-30, anything else the default 28.
        for (value, shown) in [("2", 4), ("99", 30), ("abc", 28), ("-3", 28), ("12x", 12)] {
            let r = try GLMTrainBinary.run(["doctor"], environment: ["OPENBLAS_THREAD_TIMEOUT": value])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("threads yield for 2^\(shown) TSC cycles, then sleep (OPENBLAS_THREAD_TIMEOUT=\(value))"), r.stdout)
        }
    }
}
