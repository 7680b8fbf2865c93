// `glm-train bench train --dpo`: tokens/s and peak RSS of a LoRA DPO step on the bench model, run through the
// Trainer's own step with the `task: dpo` objective (sigmoid, β 0.1; the reference policy is the same model with
// its adapters switched off, a no-grad forward), next to TRL + PEFT (`Scripts/bench_model.py train --dpo`)
// measured in the same invocation.
//
// The batch has the shape of `bench train --lora`'s, 8 × 256 tokens: 4 pairs, chosen rows then rejected rows, one
// forward pass for both. Each pair shares a prompt of 64 random tokens (masked out of the loss); its chosen and
// rejected responses are 192 random tokens each. tokens/s counts every token of the chosen and rejected rows
// (prompt included: 2,048 a step), as the LoRA figure counts every token of its batch.
import Foundation
import GLMCore
import GLMModel
import GLMTraining

enum BenchDPO {
    static let (pairs, length, promptLength) = (4, 256, 64)

    /// The pair batch: row i (chosen) and row pairs + i (rejected) share their first `promptLength` tokens.
    static func batch() -> TrainingBatch {
        let (P, T) = (pairs, length)
        var gen = SeededGenerator(seed: 1)
        let prompts = (0..<P).map { _ in (0..<promptLength).map { _ in Int32(2 + gen.next() % 8190) } }
        var ids: [Int32] = []
        for row in 0..<(2 * P) {
            ids += prompts[row % P] + (promptLength..<T).map { _ in Int32(2 + gen.next() % 8190) }
        }
        // Position t predicts token t + 1; only response tokens are targets.
        let targets = (0..<(2 * P * T)).map { i -> Int32 in
            let t = i % T
            return t >= promptLength - 1 && t < T - 1 ? ids[i + 1] : ignoreLabel
        }
        return TrainingBatch(batch: 2 * P, length: T, ids: ids, targets: targets, pairs: P)
    }

    /// User + system CPU time of this process so far (all threads), in seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6
    }

    static func run(steps: Int, comparison: ComparisonOptions) throws {
        let config = BenchModel.config()
        let model = try GLMForCausalLM(config: config, seed: 0)
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 16, alpha: 32, dropout: 0, targets: ["all-linear"]),
                            seed: 0)
        try lora.attach(to: model)
        let parameters = lora.parameters.map { var p = $0; p.weightDecay = 0.01; return p }
        // referenceLinears [:]: the base model, as a `task: dpo` LoRA run with a new adapter has it.
        let objective = PreferenceObjective(PreferenceLoss(kind: .sigmoid, beta: 0.1), referenceLinears: [:])
        let b = batch()
        let trainer = try BenchModel.trainer(model, objective: objective, parameters: parameters, steps: steps, batch: b)
        let tokens = Double(b.batch * b.length)
        // Warm-up. At the first step B = 0, so the policy is the reference: the loss must be ln 2.
        let first = try trainer.trainStep(0)
        guard abs(first.loss - log(2.0)) < 1e-5, first.metrics["rewards/margins"].map({ abs($0) < 1e-6 }) == true else {
            throw GLMError("bench: the first DPO step's loss is \(first.loss), margins \(first.metrics["rewards/margins"] ?? .nan) (expected ln 2 and 0)")
        }
        _ = try trainer.trainStep(1)
        var times: [Double] = []
        var last: Trainer.StepResult?
        let cpu0 = cpuSeconds()
        for s in 2..<(steps + 2) {
            let t0 = Stopwatch.now()
            last = try trainer.trainStep(s)
            times.append(Stopwatch.now() - t0)
        }
        let cpuPerStep = (cpuSeconds() - cpu0) / Double(steps)
        // One more step, timed by phase (the same work as trainStep, split up).
        var phase = [Stopwatch.now()]
        let reference = try objective.referenceLogProbs(model: model, batch: b)
        phase.append(Stopwatch.now())
        let policy = SequenceLogProbs(model: model, batch: b)
        let (loss, _) = objective.preference.evaluate(policy: policy.perSequence, tokenCounts: policy.tokenCounts, reference: reference)
        phase.append(Stopwatch.now())
        loss.backward()
        phase.append(Stopwatch.now())
        trainer.optimizer.step(parameters, lr: 1e-4)
        for p in parameters { p.tensor.zeroGrad() }
        phase.append(Stopwatch.now())
        let byKind = try BenchModel.profiledStep { _ = try trainer.trainStep(steps + 2) }
        let rss = BenchModel.peakRSSBytes()
        let frozenWithGradients = model.parameters.filter { $0.value.requiresGrad || $0.value.grad != nil }.map(\.key)
        guard frozenWithGradients.isEmpty else {
            throw GLMError("bench: frozen parameters hold gradients: \(frozenWithGradients.sorted().prefix(3).joined(separator: ", "))")
        }
        let mean = times.reduce(0, +) / Double(times.count), fastest = times.min()!
        let reported = try comparison.runReporting(script: "Scripts/bench_model.py", arguments: ["train", "--dpo", "--steps", "\(steps)"])
        let torch = reported.compactMapValues { $0 as? Double }
        let trainable = parameters.reduce(0) { $0 + $1.tensor.count }
        print("bench train --dpo — LoRA DPO, sigmoid, beta 0.1, reference = base with adapters off (no-grad forward); "
              + "LoRA r 16, alpha 32 on q/k/v/o_proj, gate_up_proj, down_proj (\(trainable) trainable), AdamW; "
              + "\(pairs) pairs × \(length) (prompt \(promptLength) masked, responses \(length - promptLength)) = batch \(2 * pairs) × \(length), "
              + "OpenBLAS \(BLAS.coreName), \(BLAS.threadCount) threads")
        print(BenchModel.line("DPO tokens/s (chosen+rejected)", ours: tokens / mean, torch: torch["tokens_per_s"], unit: "tok/s"))
        print(BenchModel.line("peak RSS", ours: Double(rss) / 1e6, torch: torch["peak_rss_bytes"].map { $0 / 1e6 },
                              unit: "MB", higherIsBetter: false))
        print(String(format: "step times (s): %@; fastest %.0f tok/s", times.map { String(format: "%.3f", $0) }.joined(separator: " "),
                     tokens / fastest))
        var cpuLine = String(format: "CPU time per step (user+sys, all threads): %.2f s", cpuPerStep)
        if let c = torch["cpu_s_per_step"] { cpuLine += String(format: "; TRL side %.2f s", c) }
        print(cpuLine)
        if let versions = reported["versions"] as? String, let pyTimes = reported["step_times"] as? [Double] {
            print(String(format: "TRL side: %@; step times (s): %@; fastest %.0f tok/s; RSS after imports, before the model %.1f MB",
                         versions, pyTimes.map { String(format: "%.3f", $0) }.joined(separator: " "),
                         torch["fastest_tokens_per_s"] ?? .nan, (torch["import_rss_bytes"] ?? .nan) / 1e6))
        }
        print(String(format: "one step by phase: reference forward %.3f s, policy forward + loss %.3f s, backward %.3f s, AdamW %.3f s",
                     phase[1] - phase[0], phase[2] - phase[1], phase[3] - phase[2], phase[4] - phase[3]))
        print(byKind)
        var check = String(format: "check: step 1 loss %.6f (ln 2 = %.6f); last timed step loss %.6f", first.loss, log(2.0), last?.loss ?? .nan)
        if let l = torch["first_loss"] { check += String(format: "; TRL step 1 loss %.6f", l) }
        if let l = torch["last_loss"] { check += String(format: ", last %.6f", l) }
        print(check)
    }
}
