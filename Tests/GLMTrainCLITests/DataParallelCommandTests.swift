// `mpirun -np 2 glm-train run` as a user runs it, on one machine: two data-parallel processes give the losses,
// evaluations and final weights (and optimizer state) of one process training on the same global batches — for
// pretraining with full fine-tuning, LoRA SFT with packing and LoRA DPO, with batches that do not split evenly, and
// the GRPO trainer over stored rollout batches — only rank 0 writes, and a 2-process run killed after a checkpoint
// continues the same trajectory in 1 process.
// Tolerance: float summation order differs (each process sums its shard, then MPI sums the processes), so losses
// agree to 1e-5 relative and weights to 1e-5 absolute + 1e-4 relative (measured: losses ~1e-7, weights ~1e-6).
// The recipes use AdamW eps 1e-6: with 1e-8, Adam turns the float noise of gradients that are zero in exact
// arithmetic (the part of k_proj's bias that RoPE does not rotate: softmax ignores it) into full ±lr steps whose
// sign differs between any two summation orders, one process against itself included.
// Skipped (with the reason) where mpirun is not installed.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class DataParallelCommandTests: XCTestCase {
    var dir = ""
    let model = "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny"

    override func setUpWithError() throws {
        dir = GLMTrainBinary.temporary("dp")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var x: UInt64 = 12345
        func rows(_ n: Int) -> String {
            (0..<n).map { _ in
                "{\"tokens\": [" + (0..<17).map { _ -> String in
                    x = x &* 6364136223846793005 &+ 1442695040888963407
                    return String((x >> 33) % 64)
                }.joined(separator: ", ") + "]}\n"
            }.joined()
        }
        try rows(96).write(toFile: "\(dir)/train.jsonl", atomically: true, encoding: .utf8)
        try rows(16).write(toFile: "\(dir)/eval.jsonl", atomically: true, encoding: .utf8)
        let teams = ["billing", "shipping", "returns", "tech", "facilities"]
        let pairs = (0..<30).map { k in
            "{\"prompt\": \"Ticket \(k): order \(k * 37 % 1000) is late.\", \"chosen\": \"\(teams[k % 5])\", \"rejected\": \"\(k % 3 == 0 ? "This goes to the \(teams[k % 5]) team." : teams[(k + 1) % 5])\"}\n"
        }
        try pairs.prefix(24).joined().write(toFile: "\(dir)/pairs.jsonl", atomically: true, encoding: .utf8)
        try pairs.suffix(6).joined().write(toFile: "\(dir)/pairs-eval.jsonl", atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// mpirun on PATH, or the test is skipped.
    func mpirun() throws -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/mpirun" }
        guard let found = path.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("mpirun not found: install Open MPI (apt-get install libopenmpi-dev openmpi-bin, as `make deps` does) to run the data-parallel tests")
        }
        return found
    }

    /// Two processes on one machine (--oversubscribe: whatever the core count), as root in CI, and without the
    /// shared-memory transport's single-copy mode, which needs ptrace rights many containers lack.
    static let common = ["--oversubscribe", "--allow-run-as-root", "--mca", "btl_vader_single_copy_mechanism", "none"]

    func mpiArguments(_ np: Int, _ args: [String], options: [String] = []) throws -> [String] {
        DataParallelCommandTests.common + options + ["-np", "\(np)", try GLMTrainBinary.path()] + args
    }

    /// `mpirun [options] -np N glm-train args` to the end.
    func runMPI(_ np: Int, _ args: [String], options: [String] = []) throws -> GLMTrainBinary.Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try mpirun())
        p.arguments = try mpiArguments(np, args, options: options)
        let out = "\(dir)/mpirun-\(UUID().uuidString).out", err = out + ".err"
        FileManager.default.createFile(atPath: out, contents: nil); FileManager.default.createFile(atPath: err, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: out); p.standardError = FileHandle(forWritingAtPath: err)
        try p.run()
        p.waitUntilExit()
        return GLMTrainBinary.Result(status: p.terminationStatus, stdout: try String(contentsOfFile: out, encoding: .utf8),
                                     stderr: try String(contentsOfFile: err, encoding: .utf8))
    }

    /// The processes whose parent is `pid` (mpirun starts the ranks of its own machine as its children).
    func children(of pid: pid_t) -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { name -> pid_t? in
            guard let child = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")  // state, ppid, ...
            return fields.count > 1 && pid_t(fields[1]) == pid ? child : nil
        }
    }

    func write(_ text: String, _ name: String) throws -> String {
        let path = "\(dir)/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Full-parameter pretraining of a small new model; 5 rows per batch (2 + 3 across two processes).
    func pretrainRecipe(steps: Int, checkpointEvery: Int, lr: String = "1.0e-2") -> String {
        """
        task: pretrain
        model:
          init: {model_type: glm, vocab_size: 64, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4,
                 num_key_value_heads: 2, head_dim: 8, intermediate_size: 48, partial_rotary_factor: 0.5,
                 tie_word_embeddings: false, pad_token_id: 0, eos_token_id: 1}
        data: {train: \(dir)/train.jsonl, eval: \(dir)/eval.jsonl, shuffle: true}
        training: {steps: \(steps), batch_size: 5, seq_len: 16, grad_accum: 2, seed: 7}
        optimizer: {name: adamw, lr: \(lr), weight_decay: 0.1, eps: 1.0e-6}
        schedule: {name: cosine, warmup_steps: 3}
        checkpoint: {every: \(checkpointEvery), keep: 2}
        eval: {every: 10, hooks: [{type: loss}], best_metric: eval/loss/loss}
        output_dir: \(dir)/unused
        """
    }

    /// Compares two runs' metrics.jsonl (every train and eval line) and final tensors.
    func assertSameRun(_ a: String, _ b: String, weights: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let ma = try MetricsLines(path: "\(a)/metrics.jsonl").records, mb = try MetricsLines(path: "\(b)/metrics.jsonl").records
        XCTAssertEqual(ma.count, mb.count, "metrics lines", file: file, line: line)
        var worst = 0.0
        for (ra, rb) in zip(ma, mb) {
            XCTAssertEqual(ra["step"] as? Int, rb["step"] as? Int, file: file, line: line)
            XCTAssertEqual(Set(ra.keys.filter { !$0.hasPrefix("dp/") }), Set(rb.keys.filter { !$0.hasPrefix("dp/") }), file: file, line: line)
            for (k, va) in ra where k != "tokens_per_s" && !k.hasPrefix("dp/") {
                guard let x = (va as? NSNumber)?.doubleValue, let y = (rb[k] as? NSNumber)?.doubleValue else { continue }
                let tolerance = k == "grad_norm" ? 1e-4 : 1e-5  // a norm is a sum over every gradient element
                XCTAssertEqual(x, y, accuracy: tolerance * max(1, abs(x)), "step \(ra["step"]!) \(k)", file: file, line: line)
                if k == "loss" { worst = max(worst, abs(x - y) / max(1e-12, abs(x))) }
            }
        }
        let ta = try SafetensorsFile(path: "\(a)/\(weights)").allTensors(), tb = try SafetensorsFile(path: "\(b)/\(weights)").allTensors()
        XCTAssertEqual(Set(ta.keys), Set(tb.keys), file: file, line: line)
        var worstWeight: Float = 0
        for (name, t) in ta {
            guard let u = tb[name], u.count == t.count else { XCTFail("\(name) differs in shape", file: file, line: line); continue }
            for i in 0..<t.count {
                let d = abs(t.pointer[i] - u.pointer[i])
                worstWeight = max(worstWeight, d)
                if d > 1e-5 + 1e-4 * abs(t.pointer[i]) {
                    XCTFail("\(weights) \(name)[\(i)]: \(t.pointer[i]) vs \(u.pointer[i])", file: file, line: line); break
                }
            }
        }
        print("\(a) vs \(b): largest relative loss difference \(worst), largest weight difference \(worstWeight)")
    }

    /// Every step of a data-parallel run logs what rank 0 allreduced: its trained tensors' floats × 4 bytes.
    func assertCommunication(_ run: String, trained: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let floats = try SafetensorsFile(path: "\(run)/\(trained)").allTensors().values.reduce(0) { $0 + $1.count }
        for r in try MetricsLines(path: "\(run)/metrics.jsonl").records where r["loss"] != nil {
            XCTAssertEqual((r["dp/allreduce_bytes"] as? NSNumber)?.intValue, floats * 4, "step \(r["step"]!)", file: file, line: line)
            XCTAssertEqual((r["dp/processes"] as? NSNumber)?.intValue, 2, file: file, line: line)
            XCTAssertGreaterThan((r["dp/allreduce_s"] as? NSNumber)?.doubleValue ?? 0, 0, file: file, line: line)
        }
    }

    func testTwoProcessesTrainAsOneOnTheSameGlobalBatch() throws {
        _ = try mpirun()
        // Pretraining, full fine-tuning (every parameter allreduced), with held-out loss evaluations.
        let pre = try write(pretrainRecipe(steps: 20, checkpointEvery: 10), "pre.yaml")
        let one = try GLMTrainBinary.run(["run", pre, "--set", "output_dir=\(dir)/pre1"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try runMPI(2, ["run", pre, "--set", "output_dir=\(dir)/pre2"])
        XCTAssertEqual(two.status, 0, two.stderr + two.stdout)
        try assertSameRun("\(dir)/pre1", "\(dir)/pre2", weights: "model/model.safetensors")
        try assertCommunication("\(dir)/pre2", trained: "model/model.safetensors")
        // Only rank 0 reports and writes: one summary, one "done", one metrics line per step and evaluation.
        XCTAssertEqual(two.stderr.components(separatedBy: "done: step 20").count, 2, two.stderr)
        XCTAssertTrue(two.stderr.contains("data-parallel over 2 processes"), two.stderr)
        XCTAssertEqual(try MetricsLines(path: "\(dir)/pre2/metrics.jsonl").trainSteps, Array(1...20))
        // The optimizer state both runs end with (rank 0's checkpoint).
        let ca = try TrainingCheckpoint.read(from: CheckpointDirectory("\(dir)/pre1/checkpoints").path(forStep: 20))
        let cb = try TrainingCheckpoint.read(from: CheckpointDirectory("\(dir)/pre2/checkpoints").path(forStep: 20))
        XCTAssertEqual(ca.dataCursor, cb.dataCursor)
        XCTAssertEqual(Set(ca.optimizerState.keys), Set(cb.optimizerState.keys))
        for (k, t) in ca.optimizerState {
            let u = cb.optimizerState[k]!
            for i in 0..<t.count where abs(t.pointer[i] - u.pointer[i]) > 1e-6 + 1e-4 * abs(t.pointer[i]) {
                XCTFail("optimizer state \(k)[\(i)]: \(t.pointer[i]) vs \(u.pointer[i])"); break
            }
        }

        // LoRA SFT of the bundled model with packed rows (attention masks and positions are split with the rows).
        let sft = try write("""
            task: sft
            model: {path: \(model)}
            data: {train: \(Fixtures.repositoryRoot)/Data/quickstart/train.jsonl, eval: \(Fixtures.repositoryRoot)/Data/quickstart/eval.jsonl, shuffle: true, packing: true}
            training: {steps: 4, batch_size: 3, seq_len: 96, grad_accum: 2, seed: 0}
            optimizer: {name: adamw, lr: 2.0e-3, weight_decay: 0.0, eps: 1.0e-6}
            schedule: {name: cosine, warmup_steps: 1}
            lora: {rank: 4, alpha: 8, dropout: 0.0, targets: [all-linear]}
            checkpoint: {every: 0, keep: 1}
            eval: {every: 2, hooks: [{type: loss, limit: 6}, {type: exact_match, name: task, file: \(Fixtures.repositoryRoot)/Data/quickstart/task.jsonl, max_new_tokens: 6, normalize: strip, limit: 7}]}
            output_dir: \(dir)/unused
            """, "sft.yaml")
        let s1 = try GLMTrainBinary.run(["run", sft, "--set", "output_dir=\(dir)/sft1"])
        XCTAssertEqual(s1.status, 0, s1.stderr)
        let s2 = try runMPI(2, ["run", sft, "--set", "output_dir=\(dir)/sft2"])
        XCTAssertEqual(s2.status, 0, s2.stderr + s2.stdout)
        try assertSameRun("\(dir)/sft1", "\(dir)/sft2", weights: "adapter/adapter_model.safetensors")
        try assertCommunication("\(dir)/sft2", trained: "adapter/adapter_model.safetensors")
        // The generating hook shares out its 7 prompts (3 + 4) and adds up the counts: the global figures.
        let taskLines = try MetricsLines(path: "\(dir)/sft2/metrics.jsonl").records.filter { $0["eval/task/count"] != nil }
        XCTAssertGreaterThanOrEqual(taskLines.count, 2)
        for r in taskLines { XCTAssertEqual((r["eval/task/count"] as? NSNumber)?.intValue, 7, "\(r)") }

        // LoRA DPO: 3 pairs per batch (1 + 2), each process keeping the chosen and rejected rows of its pairs.
        let dpo = try write("""
            task: dpo
            model: {path: \(model)}
            data: {train: \(dir)/pairs.jsonl, eval: \(dir)/pairs-eval.jsonl, shuffle: true}
            training: {steps: 4, batch_size: 3, seq_len: 48, grad_accum: 1, seed: 3}
            optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 0.0, eps: 1.0e-6}
            schedule: {name: constant, warmup_steps: 0}
            lora: {rank: 4, alpha: 8, dropout: 0.0, targets: [q_proj, v_proj, down_proj]}
            dpo: {loss_type: sigmoid, beta: 0.1}
            checkpoint: {every: 0, keep: 1}
            eval: {every: 2, hooks: [{type: loss, name: pref}]}
            output_dir: \(dir)/unused
            """, "dpo.yaml")
        let d1 = try GLMTrainBinary.run(["run", dpo, "--set", "output_dir=\(dir)/dpo1"])
        XCTAssertEqual(d1.status, 0, d1.stderr)
        let d2 = try runMPI(2, ["run", dpo, "--set", "output_dir=\(dir)/dpo2"])
        XCTAssertEqual(d2.status, 0, d2.stderr + d2.stdout)
        try assertSameRun("\(dir)/dpo1", "\(dir)/dpo2", weights: "adapter/adapter_model.safetensors")
    }

    func testBlankInfillingEvaluationIsSharedOutAndCombined() throws {
        _ = try mpirun()
        // Blank-infilling pretraining with the held-out loss and infilling-accuracy hooks, both sharded by rows.
        let recipe = try write("""
            task: pretrain
            model:
              init: {model_type: glm, vocab_size: 2048, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4,
                     num_key_value_heads: 2, head_dim: 8, intermediate_size: 48, partial_rotary_factor: 0.5,
                     tie_word_embeddings: false, pad_token_id: 2034, eos_token_id: 2034}
              tokenizer: \(model)
            data: {train: \(Fixtures.repositoryRoot)/Data/tiny-corpus/train.jsonl, eval: \(Fixtures.repositoryRoot)/Data/tiny-corpus/eval.jsonl, shuffle: true}
            objective: {name: blank_infilling, mask_ratio: 0.15, poisson_lambda: 3, sentence_prob: 0.15, document_prob: 0.5}
            training: {steps: 4, batch_size: 5, seq_len: 64, grad_accum: 1, seed: 2}
            optimizer: {name: adamw, lr: 1.0e-2, weight_decay: 0.1, eps: 1.0e-6}
            schedule: {name: constant, warmup_steps: 0}
            checkpoint: {every: 0, keep: 1}
            eval: {every: 2, hooks: [{type: loss, limit: 10}, {type: infilling, limit: 10}]}
            output_dir: \(dir)/unused
            """, "infill.yaml")
        let one = try GLMTrainBinary.run(["run", recipe, "--set", "output_dir=\(dir)/inf1"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try runMPI(2, ["run", recipe, "--set", "output_dir=\(dir)/inf2"])
        XCTAssertEqual(two.status, 0, two.stderr + two.stdout)
        try assertSameRun("\(dir)/inf1", "\(dir)/inf2", weights: "model/model.safetensors")
        let evals = try MetricsLines(path: "\(dir)/inf2/metrics.jsonl").records.filter { $0["eval/infilling/tokens"] != nil }
        XCTAssertGreaterThanOrEqual(evals.count, 2)
        for r in evals { XCTAssertGreaterThan((r["eval/infilling/tokens"] as? NSNumber)?.intValue ?? 0, 10, "\(r)") }
    }

    func testTwoProcessesStoppedAfterACheckpointContinueInOneProcess() throws {
        let exe = try mpirun()
        // 300 steps (about a second): long enough to stop it; lr 1e-3 keeps 300 steps of two summation orders within
        // the tolerance (at 1e-2 the tiny model's trajectories drift apart by ~1e-4 after some 250 steps).
        let recipe = try write(pretrainRecipe(steps: 300, checkpointEvery: 10, lr: "1.0e-3"), "long.yaml")
        let reference = try GLMTrainBinary.run(["run", recipe, "--set", "output_dir=\(dir)/reference"])
        XCTAssertEqual(reference.status, 0, reference.stderr)

        // Two processes, killed (SIGKILL to both, as when their machine dies) once a checkpoint of step 30 or later
        // exists; mpirun then ends the job.
        let out = "\(dir)/stopped"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = try mpiArguments(2, ["run", recipe, "--set", "output_dir=\(out)"])
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        let ckpts = CheckpointDirectory("\(out)/checkpoints")
        while p.isRunning && ((try? ckpts.checkpoints().last?.step) ?? nil ?? 0) < 30 { usleep(2_000) }
        if p.isRunning { for child in children(of: p.processIdentifier) { kill(child, SIGKILL) } }
        p.waitUntilExit()
        let stoppedAt = try XCTUnwrap(try ckpts.checkpoints().last?.step)
        XCTAssertLessThan(stoppedAt, 300, "the run finished before it could be stopped")
        XCTAssertGreaterThanOrEqual(stoppedAt, 30)
        print("the 2-process run was killed after its checkpoint of step \(stoppedAt) (of 300)")

        // One process resumes the global data cursor, weights and optimizer state and reaches the same end.
        let resumed = try GLMTrainBinary.run(["run", recipe, "--set", "output_dir=\(out)", "--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resuming from"), resumed.stderr)
        XCTAssertEqual(try MetricsLines(path: "\(out)/metrics.jsonl").trainSteps, Array(1...300))
        try assertSameRun("\(dir)/reference", out, weights: "model/model.safetensors")
    }

    func testTheRLTrainerOnTwoProcessesTrainsAsOne() throws {
        _ = try mpirun()
        // A sync GRPO run (one process generates each batch, then trains on it) leaves its rollout batches on disk;
        // a 2-process `rl train` over a copy of them (nothing left to generate) must train the same policy.
        let a = "\(dir)/rl1", b = "\(dir)/rl2"
        let recipe = try write("""
            task: grpo
            model: {path: \(model)}
            data: {train: \(Fixtures.repositoryRoot)/Data/rl/prompts.jsonl, shuffle: true}
            training: {steps: 3, seed: 3}
            optimizer: {name: adamw, lr: 2.0e-3, weight_decay: 0.0, eps: 1.0e-6}
            schedule: {name: constant}
            lora: {rank: 4, alpha: 8, dropout: 0}
            checkpoint: {every: 0, keep: 1}
            rl: {mode: sync, prompts_per_batch: 2, n_samples_per_prompt: 4, max_new_tokens: 8, micro_batch_size: 4,
                 kl_coef: 0.01, reward: {type: format, pattern: ".*[0-9].*"}}
            output_dir: \(a)
            """, "rl.yaml")
        let one = try GLMTrainBinary.run(["run", recipe])
        XCTAssertEqual(one.status, 0, one.stderr)
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(b)/rollouts", withIntermediateDirectories: true)
        try fm.copyItem(atPath: "\(a)/recipe.yaml", toPath: "\(b)/recipe.yaml")
        for k in 0..<3 {
            let name = String(format: "rollouts/batch-%06d.json", k)
            try fm.copyItem(atPath: "\(a)/\(name)", toPath: "\(b)/\(name)")
        }
        let two = try runMPI(2, ["rl", "train", "--run", b])
        XCTAssertEqual(two.status, 0, two.stderr + two.stdout)
        let ma = try MetricsLines(path: "\(a)/metrics.jsonl").records.filter { $0["loss"] != nil }
        let mb = try MetricsLines(path: "\(b)/metrics.jsonl").records.filter { $0["loss"] != nil }
        XCTAssertEqual(ma.count, 3); XCTAssertEqual(mb.count, 3)
        for (x, y) in zip(ma, mb) {
            for k in ["loss", "grad_norm", "train/kl", "train/entropy", "train/ratio_mean", "rollout/reward_mean"] {
                let u = (x[k] as! NSNumber).doubleValue, v = (y[k] as! NSNumber).doubleValue
                XCTAssertEqual(u, v, accuracy: 1e-5 * max(1, abs(u)), "step \(x["step"]!) \(k)")
            }
        }
        XCTAssertEqual(mb.first?["dp/processes"] as? Int, 2)
        let ta = try SafetensorsFile(path: "\(a)/adapter/adapter_model.safetensors").allTensors()
        let tb = try SafetensorsFile(path: "\(b)/adapter/adapter_model.safetensors").allTensors()
        XCTAssertEqual(Set(ta.keys), Set(tb.keys))
        for (name, t) in ta {
            let u = tb[name]!
            for i in 0..<t.count where abs(t.pointer[i] - u.pointer[i]) > 1e-5 + 1e-4 * abs(t.pointer[i]) {
                XCTFail("\(name)[\(i)]: \(t.pointer[i]) vs \(u.pointer[i])"); break
            }
        }
        // Rank 0 published every version; the published v3 is the final adapter.
        XCTAssertTrue(fm.fileExists(atPath: "\(b)/weights/v000003/adapter_model.safetensors"))
        // glm-train run on a grpo recipe starts its own processes: under mpirun it says what to do instead.
        let refused = try runMPI(2, ["run", recipe, "--set", "output_dir=\(dir)/rl3"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("mpirun -np N glm-train rl train --run DIR"), refused.stderr)
    }

    func testMistakesUnderMPIAreErrorsAndDoctorNamesTheLibrary() throws {
        _ = try mpirun()
        // Fewer rows per batch than processes: every process says why, and the job ends (no process left waiting).
        let small = try write(pretrainRecipe(steps: 4, checkpointEvery: 0).replacingOccurrences(of: "batch_size: 5", with: "batch_size: 1"), "small.yaml")
        let r = try runMPI(2, ["run", small, "--set", "output_dir=\(dir)/small"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("error: \(small): training.batch_size 1 is less than the 2 data-parallel processes"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/small/metrics.jsonl"))

        // Processes that would train different models, or follow different plans (one waiting in a collective the
        // other never reaches), stop before the first step: rank 1 runs another recipe (mpirun's A : B form).
        let base = pretrainRecipe(steps: 4, checkpointEvery: 0)
        let a = try write(base, "a.yaml")
        for (other, what) in [(base.replacingOccurrences(of: "seed: 7", with: "seed: 8"), "trained weights"),
                              (base.replacingOccurrences(of: "steps: 4", with: "steps: 5"), "training plan")] {
            let b = try write(other, "b.yaml")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try mpirun())
            p.arguments = DataParallelCommandTests.common + ["-np", "1", try GLMTrainBinary.path(), "run", a, "--set", "output_dir=\(dir)/ab",
                           ":", "-np", "1", try GLMTrainBinary.path(), "run", b, "--set", "output_dir=\(dir)/ab"]
            let err = "\(dir)/ab.err"
            FileManager.default.createFile(atPath: err, contents: nil)
            p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle(forWritingAtPath: err)
            try p.run(); p.waitUntilExit()
            let text = try String(contentsOfFile: err, encoding: .utf8)
            XCTAssertNotEqual(p.terminationStatus, 0, text)
            XCTAssertTrue(text.contains("error: data-parallel processes start from different states (\(what)"), text)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/ab/metrics.jsonl"), "stopped before the first step")
        }

        // Started by mpirun, but libmpi cannot be loaded: every process says why and no run starts.
        let four = try write(pretrainRecipe(steps: 4, checkpointEvery: 0), "four.yaml")
        let unusable = try runMPI(2, ["run", four, "--set", "output_dir=\(dir)/unusable"], options: ["-x", "GLMTRAIN_MPI_LIBRARY=/nonexistent/libmpi.so"])
        XCTAssertNotEqual(unusable.status, 0)
        XCTAssertEqual(unusable.stderr.components(separatedBy: "error: this process was started by mpirun, but MPI is not usable: cannot load Open MPI's libmpi (/nonexistent/libmpi.so").count, 3, unusable.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/unusable"))

        // A recipe that asks for MPI is not run alone by mistake.
        let needsMPI = try write(pretrainRecipe(steps: 4, checkpointEvery: 0).replacingOccurrences(of: "seed: 7}", with: "seed: 7, data_parallel: mpi}"), "mpi.yaml")
        let alone = try GLMTrainBinary.run(["run", needsMPI, "--set", "output_dir=\(dir)/alone"])
        XCTAssertNotEqual(alone.status, 0)
        XCTAssertEqual(alone.stderr, "error: \(needsMPI): training.data_parallel: mpi, but this process was not started by mpirun; run mpirun -np N glm-train run \(needsMPI) (or set data_parallel: auto)\n")
        let wrong = try GLMTrainBinary.run(["run", needsMPI, "--set", "training.data_parallel=nccl"])
        XCTAssertTrue(wrong.stderr.hasPrefix("error: ") && wrong.stderr.contains("training.data_parallel") && wrong.stderr.contains("auto, mpi"), wrong.stderr)
        let withMPI = try runMPI(2, ["run", needsMPI, "--set", "output_dir=\(dir)/with"])
        XCTAssertEqual(withMPI.status, 0, withMPI.stderr)

        let doctor = try GLMTrainBinary.run(["doctor"])
        XCTAssertEqual(doctor.status, 0, doctor.stderr)
        XCTAssertTrue(doctor.stdout.contains("mpi:               available: libmpi.so"), doctor.stdout)
        // A library that is not Open MPI's (here: libc) is reported, not loaded.
        let bad = try GLMTrainBinary.run(["doctor"], environment: ["GLMTRAIN_MPI_LIBRARY": "libc.so.6"])
        XCTAssertEqual(bad.status, 0, bad.stderr)
        XCTAssertTrue(bad.stdout.contains("mpi:               not available (libc.so.6 has no symbol MPI_Init_thread"), bad.stdout)
    }
}
