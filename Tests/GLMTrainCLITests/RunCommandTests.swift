// `glm-train run` as a user runs it: recipe mistakes give one-line errors naming file and key; a run killed
// with SIGKILL at an arbitrary moment resumes to metrics bit-identical to an uninterrupted run; plots are SVG.
import XCTest
import Foundation
import GLMIO
import TestSupport

final class RunCommandTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = GLMTrainBinary.temporary("run")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // 96 pretokenized rows of 17 tokens from a fixed linear congruential sequence.
        var x: UInt64 = 12345
        func lines(_ n: Int) -> String {
            (0..<n).map { _ in
                "{\"tokens\": [" + (0..<17).map { _ -> String in
                    x = x &* 6364136223846793005 &+ 1442695040888963407
                    return String((x >> 33) % 64)
                }.joined(separator: ", ") + "]}\n"
            }.joined()
        }
        try lines(96).write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        try lines(16).write(toFile: "\(dir)/eval.jsonl", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func recipe(steps: Int = 40, output: String = "out", extra: String = "") -> String {
        """
        task: pretrain
        model:
          init: {model_type: glm, vocab_size: 64, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4,
                 num_key_value_heads: 2, head_dim: 8, intermediate_size: 48, partial_rotary_factor: 0.5,
                 tie_word_embeddings: false, pad_token_id: 0, eos_token_id: 1}
        data: {train: \(dir)/train.jsonl, eval: \(dir)/eval.jsonl, shuffle: true}
        training: {steps: \(steps), batch_size: 4, seq_len: 16, grad_accum: 2, seed: 7}
        optimizer: {name: adamw, lr: 1.0e-2, weight_decay: 0.1}
        schedule: {name: cosine, warmup_steps: 3}
        checkpoint: {every: 3, keep: 2}
        eval: {every: 10, hooks: [{type: loss}], best_metric: eval/loss/loss}
        output_dir: \(dir)/\(output)
        \(extra)
        """
    }

    func write(_ text: String, _ name: String = "r.yaml") throws -> String {
        let path = "\(dir)/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func assertOneLineError(_ r: GLMTrainBinary.Result, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, file: file, line: line)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: "), r.stderr, file: file, line: line)
        for p in parts { XCTAssertTrue(r.stderr.contains(p), "missing '\(p)' in: \(r.stderr)", file: file, line: line) }
    }

    func testRecipeMistakesGiveOneLineErrorsNamingFileAndKey() throws {
        let typo = try write(recipe().replacingOccurrences(of: "training:", with: "trainig:"))
        assertOneLineError(try GLMTrainBinary.run(["run", typo]), contains: ["\(typo):", "trainig", "did you mean 'training'"])

        let nested = try write(recipe().replacingOccurrences(of: "batch_size: 4", with: "batch_sise: 4"))
        assertOneLineError(try GLMTrainBinary.run(["run", nested]), contains: ["\(nested):", "training.batch_sise", "batch_size"])

        let wrongType = try write(recipe().replacingOccurrences(of: "steps: 40", with: "steps: forty"))
        assertOneLineError(try GLMTrainBinary.run(["run", wrongType]), contains: ["training.steps", "integer", "forty"])

        let missing = try write(recipe().replacingOccurrences(of: "\(dir)/train.jsonl", with: "\(dir)/nope.jsonl"))
        assertOneLineError(try GLMTrainBinary.run(["run", missing]), contains: ["data.train", "\(dir)/nope.jsonl"])

        try "{\"tokens\": [1, 2, 3]}\n{\"tokens\": [1, 2,\n".write(toFile: "\(dir)/bad.jsonl", atomically: true, encoding: .utf8)
        let malformed = try write(recipe().replacingOccurrences(of: "\(dir)/train.jsonl", with: "\(dir)/bad.jsonl"))
        assertOneLineError(try GLMTrainBinary.run(["run", malformed]), contains: ["\(dir)/bad.jsonl:2:"])

        let ok = try write(recipe())
        assertOneLineError(try GLMTrainBinary.run(["run", ok, "--set", "optimizer.name=sgd"]), contains: ["optimizer.name", "sgd"])
        assertOneLineError(try GLMTrainBinary.run(["run", ok, "--set", "training.steps"]), contains: ["--set", "key=value"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/out/metrics.jsonl"), "no run started")
    }

    func testOverridesAreAppliedAndTheResolvedRecipeSaved() throws {
        let path = try write(recipe(steps: 40))
        let r = try GLMTrainBinary.run(["run", path, "--set", "training.steps=4", "--set", "eval.every=2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let metrics = try MetricsLines(path: "\(dir)/out/metrics.jsonl")
        XCTAssertEqual(metrics.trainSteps, [1, 2, 3, 4])
        XCTAssertEqual(metrics.evalSteps, [0, 2, 4])
        let saved = try String(contentsOfFile: "\(dir)/out/recipe.yaml", encoding: .utf8)
        XCTAssertTrue(saved.contains("steps: 4"), saved)
        // The run's final model is an HF directory that loads.
        XCTAssertNoThrow(try ModelDirectory.load("\(dir)/out/model"))
        // A second run into the same directory must not silently mix with the first.
        assertOneLineError(try GLMTrainBinary.run(["run", path, "--set", "training.steps=4"]), contains: ["--resume", "--overwrite"])
    }

    func testKillNineAtAnyMomentThenResumeIsBitIdentical() throws {
        let path = try write(recipe(steps: 300))
        let reference = try GLMTrainBinary.run(["run", path, "--set", "output_dir=\(dir)/reference"])
        XCTAssertEqual(reference.status, 0, reference.stderr)
        let want = try MetricsLines(path: "\(dir)/reference/metrics.jsonl")
        XCTAssertEqual(want.trainSteps.count, 300)

        // Kill at a few different moments: as soon as a checkpoint exists, and later in the run.
        for (attempt, killAfterStep) in [3, 50, 170].enumerated() {
            let out = "\(dir)/killed\(attempt)"
            let p = try GLMTrainBinary.start(["run", path, "--set", "output_dir=\(out)"])
            var seen = 0
            while p.isRunning && seen < killAfterStep {
                usleep(2_000)
                seen = (try? MetricsLines(path: "\(out)/metrics.jsonl").trainSteps.last) ?? 0
            }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .uncaughtSignal, "the run finished before it could be killed")
            // A torn checkpoint with a higher step must be skipped with a warning, never loaded.
            let ckpts = CheckpointDirectory("\(out)/checkpoints")
            let planted = try ckpts.checkpoints().last
            if let newest = planted {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: newest.path))
                try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: ckpts.path(forStep: newest.step + 1)))
            }
            let resumed = try GLMTrainBinary.run(["run", path, "--set", "output_dir=\(out)", "--resume"])
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            if planted != nil {
                XCTAssertTrue(resumed.stderr.contains("warning: "), "the torn checkpoint was not reported: \(resumed.stderr)")
                XCTAssertTrue(resumed.stderr.contains("resuming from"), resumed.stderr)
            }
            let got = try MetricsLines(path: "\(out)/metrics.jsonl")
            XCTAssertEqual(got.trainSteps, want.trainSteps)
            XCTAssertEqual(got.deterministic, want.deterministic, "attempt \(attempt): metrics differ from the uninterrupted run")
        }
    }

    func testPlotWritesSVGForEveryMetric() throws {
        let path = try write(recipe(steps: 6))
        XCTAssertEqual(try GLMTrainBinary.run(["run", path]).status, 0)
        try? FileManager.default.removeItem(atPath: "\(dir)/out/plots")
        let r = try GLMTrainBinary.run(["plot", "\(dir)/out"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let files = r.stdout.split(separator: "\n").map(String.init)
        let names = Set(files.map { ($0 as NSString).lastPathComponent })
        XCTAssertTrue(names.isSuperset(of: ["loss.svg", "lr.svg", "grad_norm.svg", "eval_loss_loss.svg", "eval_loss_perplexity.svg"]), "\(names)")
        for f in files {
            let svg = try String(contentsOfFile: f, encoding: .utf8)
            XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.hasSuffix("</svg>\n"))
            XCTAssertTrue(svg.contains("<polyline"))
        }
        let missing = try GLMTrainBinary.run(["plot", "\(dir)/nothing-here"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("metrics.jsonl"), missing.stderr)
    }
}

/// The lines of a metrics.jsonl, split into training and evaluation records.
struct MetricsLines {
    var records: [[String: Any]]
    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw NSError(domain: "metrics", code: 1) }
        records = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
    var trainSteps: [Int] { records.filter { $0["loss"] != nil }.map { ($0["step"] as! NSNumber).intValue } }
    var evalSteps: [Int] { records.filter { $0["loss"] == nil }.map { ($0["step"] as! NSNumber).intValue } }
    /// Every record without the wall-clock fields, as canonical JSON text (bit-exact numbers).
    var deterministic: [String] {
        records.map { r in
            var r = r
            r.removeValue(forKey: "tokens_per_s")
            return String(decoding: try! JSONSerialization.data(withJSONObject: r, options: [.sortedKeys]), as: UTF8.self)
        }
    }
}
