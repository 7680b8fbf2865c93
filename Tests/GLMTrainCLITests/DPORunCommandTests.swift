// `glm-train run` with task: dpo as a user runs it: LoRA and full fine-tuning runs log TRL's metrics, evaluate
// held-out pairs with the exact-match and command hooks beside, resume bit-identically after kill -9 (the full run
// reusing its stored reference log-probabilities), export their adapter in every format, and give one-line errors
// naming file and key or file and line for recipe and data mistakes.
import XCTest
import Foundation
import GLMIO
import TestSupport

final class DPORunCommandTests: XCTestCase {
    var dir = ""
    let model = "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny"

    override func setUpWithError() throws {
        dir = GLMTrainBinary.temporary("dpo")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let teams = ["billing", "shipping", "returns", "tech", "facilities"]
        func lines(_ n: Int, offset: Int) -> String {
            (0..<n).map { i in
                let k = i + offset
                return "{\"prompt\": \"Ticket \(k): order \(k * 37 % 1000) is late.\", \"chosen\": \"\(teams[k % 5])\", \"rejected\": \"\(k % 3 == 0 ? "This goes to the \(teams[k % 5]) team." : teams[(k + 1) % 5])\"}\n"
            }.joined()
        }
        try lines(40, offset: 0).write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        try lines(6, offset: 100).write(toFile: "\(dir)/eval.jsonl", atomically: true, encoding: .utf8)
        try "{\"prompt\": \"Ticket 7: order 259 is late.\", \"answer\": \"shipping\"}\n".write(toFile: "\(dir)/task.jsonl", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func recipe(steps: Int = 12, lora: Bool = true, output: String = "out", dpo: String = "{loss_type: sigmoid, beta: 0.1}", extra: String = "") -> String {
        """
        task: dpo
        model: {path: \(model)}
        data: {train: \(dir)/train.jsonl, eval: \(dir)/eval.jsonl, shuffle: true}
        training: {steps: \(steps), batch_size: 2, seq_len: 48, grad_accum: 2, seed: 3}
        optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 0.0}
        schedule: {name: cosine, warmup_steps: 2}
        \(lora ? "lora: {rank: 4, alpha: 8, dropout: 0.1, targets: [q_proj, v_proj, down_proj]}" : "")
        dpo: \(dpo)
        checkpoint: {every: 2, keep: 2}
        eval:
          every: 6
          hooks:
            - {type: loss, name: pref}
            - {type: exact_match, name: task, file: \(dir)/task.jsonl, max_new_tokens: 4}
            - {type: command, name: cmd, command: [/bin/sh, -c, "cat > /dev/null; echo '{\\"seen\\": 1}'"]}
          best_metric: eval/pref/rewards/accuracies
          best_mode: max
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

    func testLoRARunLogsTRLMetricsRunsEveryHookAndExportsInEveryFormat() throws {
        let path = try write(recipe())
        let r = try GLMTrainBinary.run(["run", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let m = try MetricsLines(path: "\(dir)/out/metrics.jsonl")
        XCTAssertEqual(m.trainSteps, Array(1...12))
        let first = m.records.first { $0["loss"] != nil }!
        for key in ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"] {
            XCTAssertNotNil(first[key], "metrics.jsonl has no \(key)")
        }
        XCTAssertEqual((first["loss"] as! NSNumber).doubleValue, log(2.0), accuracy: 1e-6, "step 1 of a new adapter is ln 2")
        XCTAssertEqual((first["rewards/margins"] as! NSNumber).doubleValue, 0)
        let last = m.records.last { $0["loss"] != nil }!
        XCTAssertGreaterThan((last["rewards/margins"] as! NSNumber).doubleValue, 0, "the policy moves towards the chosen answers")
        let evals = m.records.filter { $0["loss"] == nil }
        XCTAssertEqual(m.evalSteps, [0, 6, 12])
        for key in ["eval/pref/loss", "eval/pref/rewards/accuracies", "eval/pref/rewards/margins", "eval/pref/logps/chosen",
                    "eval/task/accuracy", "eval/cmd/seen"] {
            XCTAssertNotNil(evals.last![key], "no \(key) in \(evals.last!.keys.sorted())")
        }
        XCTAssertEqual((evals[0]["eval/pref/loss"] as! NSNumber).doubleValue, log(2.0), accuracy: 1e-6)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/out/best/checkpoint.h5"), "best by eval/pref/rewards/accuracies")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/out/adapter/adapter_model.safetensors"))
        // `glm-train eval --adapter` on the recipe: the exported adapter against the run's reference gives the
        // preference metrics the run logged at its last evaluation.
        let e = try GLMTrainBinary.run(["eval", "--recipe", path, "--adapter", "\(dir)/out/adapter"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let again = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        for key in ["eval/pref/loss", "eval/pref/rewards/margins", "eval/pref/rewards/chosen", "eval/pref/logps/rejected"] {
            let logged = try XCTUnwrap(evals.last![key] as? NSNumber).doubleValue
            XCTAssertEqual(try XCTUnwrap(again[key] as? NSNumber).doubleValue, logged, accuracy: 1e-5 * max(1, abs(logged)), key)
        }
        for format in ["peft", "vllm", "merged", "gguf-lora"] {
            let out = "\(dir)/export-\(format)" + (format == "gguf-lora" ? ".gguf" : "")
            let e = try GLMTrainBinary.run(["export", "--run", "\(dir)/out", "--format", format, "--output", out])
            XCTAssertEqual(e.status, 0, "\(format): \(e.stderr)")
            XCTAssertTrue(FileManager.default.fileExists(atPath: out), format)
        }
    }

    func testKillNineThenResumeIsBitIdenticalWithLoRAAndWithFullFineTuning() throws {
        for lora in [true, false] {
            let tag = lora ? "lora" : "full"
            let path = try write(recipe(steps: 24, lora: lora, output: "\(tag)-reference"), "\(tag).yaml")
            let reference = try GLMTrainBinary.run(["run", path])
            XCTAssertEqual(reference.status, 0, reference.stderr)
            let want = try MetricsLines(path: "\(dir)/\(tag)-reference/metrics.jsonl")
            if !lora {
                XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/full-reference/reference/train.safetensors"))
                XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/full-reference/reference/eval-pref.safetensors"))
                XCTAssertTrue(reference.stderr.contains("reference log-probabilities of 40 pairs"), reference.stderr)
            }
            let out = "\(dir)/\(tag)-killed"
            let p = try GLMTrainBinary.start(["run", path, "--set", "output_dir=\(out)"])
            var seen = 0
            while p.isRunning && seen < 9 {
                usleep(2_000)
                seen = (try? MetricsLines(path: "\(out)/metrics.jsonl").trainSteps.last) ?? 0
            }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            XCTAssertEqual(p.terminationReason, .uncaughtSignal, "\(tag): the run finished before it could be killed")
            let resumed = try GLMTrainBinary.run(["run", path, "--set", "output_dir=\(out)", "--resume"])
            XCTAssertEqual(resumed.status, 0, resumed.stderr)
            XCTAssertTrue(resumed.stderr.contains("resuming from"), resumed.stderr)
            if !lora { XCTAssertTrue(resumed.stderr.contains("read from \(out)/reference/train.safetensors"), resumed.stderr) }
            let got = try MetricsLines(path: "\(out)/metrics.jsonl")
            XCTAssertEqual(got.trainSteps, want.trainSteps, tag)
            XCTAssertEqual(got.deterministic, want.deterministic, "\(tag): metrics differ from the uninterrupted run")
        }
    }

    func testEveryLossTypeTrainsAndStartsFromAnAdapter() throws {
        for dpo in ["{loss_type: ipo, beta: 0.5}", "{loss_type: hinge}", "{loss_type: robust, label_smoothing: 0.1}",
                    "{loss_type: simpo, beta: 2.0, gamma: 0.5}", "{loss_type: orpo, lambda: 0.2}", "{loss_type: sigmoid, rpo_alpha: 0.5}"] {
            let path = try write(recipe(steps: 2, output: "t", dpo: dpo))
            let r = try GLMTrainBinary.run(["run", path, "--overwrite"])
            XCTAssertEqual(r.status, 0, "\(dpo): \(r.stderr)")
            let m = try MetricsLines(path: "\(dir)/t/metrics.jsonl")
            XCTAssertEqual(m.trainSteps, [1, 2], dpo)
            if dpo.contains("orpo") || dpo.contains("rpo_alpha") { XCTAssertNotNil(m.records.last { $0["loss"] != nil }!["nll_loss"], dpo) }
        }
        // model.adapter: the adapters continue from the previous run's (its shape), a frozen copy is the reference.
        // (Without dropout, so that step 1's policy is exactly the reference.)
        let path = try write(recipe(steps: 2, output: "continued").replacingOccurrences(
            of: "model: {path: \(model)}", with: "model: {path: \(model), adapter: \(dir)/t/adapter}")
            .replacingOccurrences(of: "dropout: 0.1", with: "dropout: 0.0"))
        let r = try GLMTrainBinary.run(["run", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("LoRA adapters start from \(dir)/t/adapter"), r.stderr)
        let first = try MetricsLines(path: "\(dir)/continued/metrics.jsonl").records.first { $0["loss"] != nil }!
        XCTAssertEqual((first["loss"] as! NSNumber).doubleValue, log(2.0), accuracy: 1e-6, "the reference is the starting adapter")
        let mismatch = try write(recipe(steps: 2, output: "bad").replacingOccurrences(of: "model: {path: \(model)}",
                                                                                      with: "model: {path: \(model), adapter: \(dir)/t/adapter}")
                                     .replacingOccurrences(of: "rank: 4", with: "rank: 8"), "m.yaml")
        assertOneLineError(try GLMTrainBinary.run(["run", mismatch]), contains: ["lora.rank is 8", "has 4"])
    }

    func testRecipeAndDataMistakesAreOneLineErrors() throws {
        let typo = try write(recipe(dpo: "{loss_type: sigmoid, bta: 0.1}"))
        assertOneLineError(try GLMTrainBinary.run(["run", typo]), contains: ["\(typo):", "dpo.bta", "beta"])
        let kind = try write(recipe(dpo: "{loss_type: kto}"))
        assertOneLineError(try GLMTrainBinary.run(["run", kind]), contains: ["dpo.loss_type", "kto", "sigmoid"])
        let gamma = try write(recipe(dpo: "{loss_type: sigmoid, gamma: 1.0}"))
        assertOneLineError(try GLMTrainBinary.run(["run", gamma]), contains: ["dpo.gamma", "simpo"])
        let beta = try write(recipe(dpo: "{beta: zero}"))
        assertOneLineError(try GLMTrainBinary.run(["run", beta]), contains: ["dpo.beta", "number"])
        let robust = try write(recipe(dpo: "{loss_type: robust, label_smoothing: 0.5}"))
        assertOneLineError(try GLMTrainBinary.run(["run", robust]), contains: ["dpo.label_smoothing", "[0, 0.4999]"])
        // Values the recipe once let through and that made the first loss infinite ("lower optimizer.lr" at step 1).
        let nearHalf = try write(recipe(dpo: "{loss_type: robust, label_smoothing: 0.4999999999}"), "near-half.yaml")
        assertOneLineError(try GLMTrainBinary.run(["run", nearHalf]), contains: ["dpo.label_smoothing", "divides by 1 − 2·label_smoothing"])
        let tinyBeta = try write(recipe(dpo: "{loss_type: ipo, beta: 1.0e-300}"), "tiny-beta.yaml")
        assertOneLineError(try GLMTrainBinary.run(["run", tinyBeta]), contains: ["dpo.beta", "at least 1e-12"])
        let sft = try write(recipe().replacingOccurrences(of: "task: dpo", with: "task: sft"))
        assertOneLineError(try GLMTrainBinary.run(["run", sft]), contains: ["\(sft):", "dpo", "only task: dpo"])

        try "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{\"prompt\": \"p\", \"chosen\": \"a\"}\n"
            .write(toFile: "\(dir)/bad.jsonl", atomically: true, encoding: .utf8)
        let bad = try write(recipe().replacingOccurrences(of: "\(dir)/train.jsonl", with: "\(dir)/bad.jsonl"))
        assertOneLineError(try GLMTrainBinary.run(["run", bad]), contains: ["\(dir)/bad.jsonl:2:", "missing \"rejected\""])

        // Skipped pairs are warnings naming FILE:LINE, and the run goes on.
        let long = String(repeating: "word ", count: 80)
        try (String(contentsOfFile: "\(dir)/train.jsonl", encoding: .utf8)
             + "{\"prompt\": \"\(long)\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"a\"}\n")
            .write(toFile: "\(dir)/skips.jsonl", atomically: true, encoding: .utf8)
        let skips = try write(recipe(steps: 1).replacingOccurrences(of: "\(dir)/train.jsonl", with: "\(dir)/skips.jsonl"))
        let r = try GLMTrainBinary.run(["run", skips])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: \(dir)/skips.jsonl:41: the prompt"), r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: \(dir)/skips.jsonl:42: chosen and rejected are the same"), r.stderr)
    }

    /// A grpo recipe resuming the checkpoints of a dpo run in the same output_dir is refused (its data cursor,
    /// objective and optimizer state belong to the other run), and data.packing in a dpo recipe is an error, not
    /// silently ignored.
    func testADPOCheckpointIsNotResumedByAGRPORunAndDPORowsAreNotPacked() throws {
        let base = recipe(steps: 2).components(separatedBy: "eval:\n")[0] + "output_dir: \(dir)/out\n"
        let first = try GLMTrainBinary.run(["run", try write(base, "dpo2.yaml")])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/out/checkpoints"), first.stderr)
        try "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": \"2+2=\", \"answer\": \"4\"}\n"
            .write(toFile: "\(dir)/prompts.jsonl", atomically: true, encoding: .utf8)
        let grpo = try write("""
            task: grpo
            model: {path: \(model)}
            data: {train: \(dir)/prompts.jsonl}
            training: {steps: 4, seed: 3}
            optimizer: {name: adamw, lr: 1.0e-3}
            lora: {rank: 4, alpha: 8, dropout: 0, targets: [q_proj, v_proj, down_proj]}
            rl: {mode: sync, prompts_per_batch: 2, n_samples_per_prompt: 2, max_new_tokens: 4, micro_batch_size: 2,
                 reward: {type: exact_match}}
            output_dir: \(dir)/out
            """, "grpo.yaml")
        let r = try GLMTrainBinary.run(["run", grpo, "--resume"])
        XCTAssertNotEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(dir)/out/recipe.yaml: this run directory holds a dpo run"), r.stderr)
        XCTAssertTrue(r.stderr.contains("is a grpo recipe, which cannot resume its checkpoints"), r.stderr)
        // The dpo run's recipe.yaml is left as it was.
        XCTAssertTrue(try String(contentsOfFile: "\(dir)/out/recipe.yaml", encoding: .utf8).contains("task: dpo"))
        assertOneLineError(try GLMTrainBinary.run(["run", try write(recipe(steps: 2, output: "packed").replacingOccurrences(of: "shuffle: true}", with: "shuffle: true, packing: true}"), "packed.yaml")]),
                           contains: ["packed.yaml", "data.packing", "dpo rows are one pair's sequences each and are not packed"])
    }
}
