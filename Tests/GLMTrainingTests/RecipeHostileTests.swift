// Hostile recipes: nesting, aliases, duplicate keys, explicit nulls, absurd counts, hook limits and metrics that
// would only fail after training — each a one-line error naming the file, line and key, before step 1.
import XCTest
import Foundation
import GLMCore
import GLMModel
import GLMTraining

final class RecipeHostileTests: XCTestCase {
    let base = """
    task: sft
    model: {path: Checkpoints/glm-tiny}
    data: {train: Data/quickstart/train.jsonl, eval: Data/quickstart/eval.jsonl}
    training: {steps: 2, batch_size: 2, seq_len: 64}
    lora: {rank: 4}
    """

    func load(_ text: String) throws -> Recipe {
        let node = try RecipeReader.document(text, file: "r.yaml")
        return try Recipe(node: node, file: "r.yaml")
    }

    func assertError(_ text: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try load(text), file: file, line: line) { e in
            let m = (e as? GLMError)?.message ?? "\(e)"
            XCTAssertTrue(m.hasPrefix("r.yaml"), m, file: file, line: line)
            XCTAssertTrue(m.contains(expected), "'\(expected)' not in: \(m)", file: file, line: line)
            XCTAssertFalse(m.contains("\n"), m, file: file, line: line)
        }
    }

    func tinyModel() throws -> GLMForCausalLM {
        var c = GLMConfig()
        (c.vocabSize, c.hiddenSize, c.intermediateSize, c.numHiddenLayers) = (32, 16, 24, 1)
        (c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.padTokenId, c.eosTokenIds) = (2, 1, 8, 0, [1])
        return try GLMForCausalLM(config: c, seed: 1)
    }

    func testTheBaseRecipeLoads() throws {
        XCTAssertEqual(try load(base).training.steps, 2)
    }

    func testScheduleNamesIncludeTransformersConstantWithWarmup() throws {
        let named = try load(base + "\nschedule: {name: constant_with_warmup, warmup_steps: 3}")
        XCTAssertEqual(named.schedule.name, "constant")
        XCTAssertEqual(named.schedule.warmupSteps, 3)
        XCTAssertEqual(try load(base + "\nschedule: {name: constant}").schedule.name, "constant")
        assertError(base + "\nschedule: {name: constant_with_restarts}", "schedule.name")
    }

    func testEndFinalTurnIsAChatDataKey() throws {
        XCTAssertTrue(try load(base).data.endFinalTurn)
        XCTAssertFalse(try load(base.replacingOccurrences(of: "eval: Data/quickstart/eval.jsonl}", with: "eval: Data/quickstart/eval.jsonl, end_final_turn: false}")).data.endFinalTurn)
        let pretrain = base.replacingOccurrences(of: "task: sft", with: "task: pretrain")
            .replacingOccurrences(of: "eval: Data/quickstart/eval.jsonl}", with: "eval: Data/quickstart/eval.jsonl, end_final_turn: false}")
        assertError(pretrain, "end_final_turn")
    }

    func testAnEmptyOrNullOutputDirIsAnError() throws {
        XCTAssertEqual(try load(base).outputDir, "Checkpoints/runs/r")
        assertError(base + "\noutput_dir: \"\"", "output_dir: is empty; expected a directory path")
        assertError(base + "\noutput_dir: null", "output_dir: is null; give a value, or leave the key out for the default (Checkpoints/runs/r)")
    }

    func testDeepNestingIsRefusedBeforeTheYAMLParserRecurses() {
        let blocks = "a:\n" + (0..<2_000).map { String(repeating: " ", count: $0 + 1) + "k\($0):\n" }.joined()
        assertError(blocks, "nested deeper than \(FileLimits.maxNestingDepth) levels")
        assertError("task: sft\nx: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000), "nested deeper than")
        assertError("task: sft\nx: " + String(repeating: "{a: ", count: 5_000) + "1" + String(repeating: "}", count: 5_000), "nested deeper than")
    }

    func testAliasesThatExpandExponentiallyAreRefused() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 { text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        assertError(text + "task: sft\n", "expands to more than")
    }

    func testDuplicateKeysAreErrorsNamingBothLines() {
        assertError(base + "\ntask: pretrain\n", "r.yaml:6: task: duplicate key (first at line 1)")
        assertError(base.replacingOccurrences(of: "steps: 2,", with: "steps: 2, steps: 3,"), "training.steps: duplicate key")
    }

    func testExplicitNullForAKeyWithADefaultIsAnError() {
        assertError(base.replacingOccurrences(of: "steps: 2", with: "steps: null"), "training.steps: is null; give a value, or leave the key out for the default (100)")
        assertError(base.replacingOccurrences(of: "steps: 2", with: "steps: ~"), "training.steps: is null")
        assertError(base + "\noptimizer: {lr: }\n", "optimizer.lr: is null")
    }

    func testCountsAreBounded() {
        assertError(base.replacingOccurrences(of: "batch_size: 2", with: "batch_size: 100000000"), "training.batch_size: must be at most 65536")
        assertError(base.replacingOccurrences(of: "seq_len: 64", with: "seq_len: 1000000000"), "training.seq_len: must be at most")
        assertError(base.replacingOccurrences(of: "batch_size: 2, seq_len: 64", with: "batch_size: 60000, seq_len: 60000"), "tokens per micro-batch")
        assertError(base.replacingOccurrences(of: "steps: 2", with: "steps: 99999999999999999999"), "training.steps: expected an integer")
        assertError(base.replacingOccurrences(of: "rank: 4", with: "rank: 1000000000"), "lora.rank: must be at most")
        assertError(base.replacingOccurrences(of: "rank: 4", with: "rank: 4, alpha: 0"), "lora.alpha: must be at least")
        assertError(base + "\noptimizer: {eps: 0}\n", "optimizer.eps: must be at least")
        assertError(base + "\ncheckpoint: {keep: 0}\n", "checkpoint.keep: must be at least 1")
    }

    func testAllreduceKeysAreTypedAndBounded() throws {
        let t = { (v: String) in self.base.replacingOccurrences(of: "seq_len: 64", with: "seq_len: 64, " + v) }
        assertError(t("allreduce_bucket_mb: 0"), "training.allreduce_bucket_mb: must be at least")
        assertError(t("allreduce_bucket_mb: -1"), "training.allreduce_bucket_mb: must be at least")
        assertError(t("allreduce_bucket_mb: 1e300"), "training.allreduce_bucket_mb: must be at most")
        assertError(t("allreduce_bucket_mb: .nan"), "training.allreduce_bucket_mb")
        assertError(t("allreduce_bucket_mb: lots"), "training.allreduce_bucket_mb: expected")
        assertError(t("allreduce_overlap: maybe"), "training.allreduce_overlap: expected")
        assertError(t("allreduce_overlap: 1"), "training.allreduce_overlap: expected")
        let r = try load(t("allreduce_overlap: true, allreduce_bucket_mb: 0.5"))
        XCTAssertTrue(r.training.allreduceOverlap)
        XCTAssertEqual(r.training.allreduceBucketMB, 0.5)
    }

    func testHookLimitsAndMetricsAreCheckedBeforeTraining() {
        assertError(base + "\neval: {hooks: [{type: loss, limit: 0}]}\n", "eval.hooks[0].limit: must be at least 1")
        assertError(base + "\neval: {hooks: [{type: loss, limit: -3}]}\n", "eval.hooks[0].limit: must be at least 1")
        assertError(base + "\neval: {hooks: [{type: loss}], best_metric: eval/nope/loss}\n", "eval.best_metric: expected eval/<hook name>/<metric>")
        assertError(base + "\neval: {hooks: [{type: loss}], best_metric: loss}\n", "eval.best_metric: expected eval/<hook name>/<metric>")
        assertError(base + "\neval: {hooks: [{type: loss}], early_stop_patience: 2}\n", "eval.early_stop_patience: needs eval.best_metric")
        assertError(base + "\neval: {hooks: [{type: loss}], best_metric: eval/loss/loss, early_stop_patience: 0}\n", "early_stop_patience: must be at least 1")
    }

    func testHooksDeclareTheirMetrics() {
        let loss = HeldOutLossHook(batches: 1) { throw GLMError("unused") }
        XCTAssertTrue(loss.provides(metric: "loss"))
        XCTAssertTrue(loss.provides(metric: "perplexity"))
        XCTAssertFalse(loss.provides(metric: "accuracy"))
        XCTAssertTrue(CommandHook(name: "c", command: ["true"]).provides(metric: "anything"))
    }

    func testACommandThatExitsWithoutReadingItsInputIsTheHooksFailureNotSIGPIPE() throws {
        // More input than a pipe holds (64 KiB), so the write is still going on when the command closes its stdin.
        let run = NSTemporaryDirectory() + String(repeating: "x", count: 200_000)
        let hook = CommandHook(name: "ext", command: ["sh", "-c", "exec 0<&-; sleep 0.3; echo '{\"score\": 1}'"])
        let context = EvaluationContext(model: try tinyModel(), tokenizer: nil, step: 3, runDirectory: run, exportModel: { _ in })
        XCTAssertThrowsError(try hook.evaluate(context)) { e in
            let m = (e as? GLMError)?.message ?? "\(e)"
            XCTAssertTrue(m.hasPrefix("eval hook 'ext': "), m)
            XCTAssertTrue(m.contains("without reading its input"), m)
        }
    }

    func testACommandThatPrintsWithoutEndIsStoppedAtItsOutputBound() throws {
        let hook = CommandHook(name: "flood", command: ["sh", "-c", "cat >/dev/null; yes 0123456789"])
        let context = EvaluationContext(model: try tinyModel(), tokenizer: nil, step: 1, runDirectory: NSTemporaryDirectory(), exportModel: { _ in })
        XCTAssertThrowsError(try hook.evaluate(context)) { e in
            let m = (e as? GLMError)?.message ?? "\(e)"
            XCTAssertTrue(m.contains("eval hook 'flood': sh -c cat >/dev/null; yes 0123456789 printed more than \(FileInput.maxProgramOutputBytes) bytes"), m)
        }
    }

    /// A hook that never finishes — running, or with its output closed — is stopped at its timeout, and so is what it
    /// started (the `sleep` of the shell script: its marker file never appears).
    func testACommandHookThatHangsIsStoppedAtItsTimeout() throws {
        let marker = NSTemporaryDirectory() + "hook-child-\(getpid())"
        try? FileManager.default.removeItem(atPath: marker)
        for (label, script) in [("running", "cat >/dev/null; (sleep 3; touch '\(marker)') & sleep 100"),
                                ("output closed", "cat >/dev/null; exec >&-; sleep 100")] {
            let hook = CommandHook(name: "slow", command: ["sh", "-c", script], timeout: 0.5)
            let context = EvaluationContext(model: try tinyModel(), tokenizer: nil, step: 1, runDirectory: NSTemporaryDirectory(),
                                            exportModel: { _ in })
            let start = Date()
            XCTAssertThrowsError(try hook.evaluate(context), label) { e in
                let m = (e as? GLMError)?.message ?? "\(e)"
                XCTAssertTrue(m.hasPrefix("eval hook 'slow': sh -c "), m)
                XCTAssertTrue(m.contains("did not finish within 0.5 s"), m)
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 10, label)
        }
        Thread.sleep(forTimeInterval: 3.5)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "the hook's child outlived the hook")
    }

    /// A hook that prints its metrics and exits but leaves processes running — in its group or in a session of its
    /// own, holding its output or not — gives its metrics at once (within the 1 s grace for held output), not at the
    /// timeout or never (Foundation's Process handed its exit-watch socket to them: the run hung; audit 3).
    func testAHookThatLeavesProcessesBehindGivesItsMetrics() throws {
        let context = EvaluationContext(model: try tinyModel(), tokenizer: nil, step: 1, runDirectory: NSTemporaryDirectory(),
                                        exportModel: { _ in })
        for (label, leftover) in [("same group, output closed", "sleep 8 >/dev/null 2>&1 </dev/null &"),
                                  ("own session, output closed", "setsid sh -c 'trap \"\" TERM; sleep 8' >/dev/null 2>&1 </dev/null &"),
                                  ("own session, output held", "setsid sh -c 'trap \"\" TERM; sleep 8' </dev/null &"),
                                  ("same group, output held", "sleep 8 </dev/null &")] {
            let hook = CommandHook(name: "bg", command: ["sh", "-c", "cat >/dev/null; \(leftover) echo '{\"score\": 2}'"], timeout: 30)
            let start = Date()
            XCTAssertEqual(try hook.evaluate(context), ["score": 2], label)
            XCTAssertLessThan(Date().timeIntervalSince(start), 4, label)
        }
    }

    /// Commands run as /usr/bin/env ran them: a script without "#!" through /bin/sh, leading NAME=value arguments as
    /// its environment; a program that does not exist exits 127 through env.
    func testCommandsRunAsEnvRunsThem() throws {
        let context = EvaluationContext(model: try tinyModel(), tokenizer: nil, step: 1, runDirectory: NSTemporaryDirectory(),
                                        exportModel: { _ in })
        let script = NSTemporaryDirectory() + "no-shebang-\(getpid()).sh"
        try "cat >/dev/null\necho \"{\\\"score\\\": $GLMT_SCORE}\"\n".write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        defer { try? FileManager.default.removeItem(atPath: script) }
        XCTAssertEqual(try CommandHook(name: "s", command: ["GLMT_SCORE=3", script]).evaluate(context), ["score": 3])
        XCTAssertThrowsError(try CommandHook(name: "none", command: ["no-such-program-glmtrain"]).evaluate(context)) { e in
            XCTAssertTrue("\(e)".contains("exited with status 127"), "\(e)")
        }
    }

    func testACommandHookTimeoutIsReadFromTheRecipe() throws {
        let yaml = """
        task: pretrain
        model: {path: x}
        data: {train: x.jsonl}
        eval: {every: 1, hooks: [{type: command, name: judge, command: [true], timeout: 2.5}]}
        """
        func parse(_ text: String) throws -> Recipe { try Recipe(node: try RecipeReader.document(text, file: "r.yaml"), file: "r.yaml") }
        XCTAssertEqual(try parse(yaml).eval.hooks.first?.timeout, 2.5)
        XCTAssertEqual(try parse(yaml.replacingOccurrences(of: ", timeout: 2.5", with: "")).eval.hooks.first?.timeout,
                       CommandHook.defaultTimeout)
        XCTAssertThrowsError(try parse(yaml.replacingOccurrences(of: "timeout: 2.5", with: "timeout: 0"))) { e in
            XCTAssertTrue("\(e)".contains("timeout"), "\(e)")
        }
    }
}
