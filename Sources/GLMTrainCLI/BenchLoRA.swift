// `glm-train bench train --lora`: tokens/s and peak RSS of a LoRA training step (r 16, α 32, no dropout, on every
// linear layer; AdamW on the adapter) on the bench model, run through the Trainer's own step, next to PyTorch + PEFT
// (`Scripts/bench_model.py train --lora`) measured in the same invocation.
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining

enum BenchLoRA {
    static func run(steps: Int, comparison: ComparisonOptions) throws {
        let (B, T) = (8, 256)
        let config = BenchModel.config()
        let model = try GLMForCausalLM(config: config, seed: 0)
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 16, alpha: 32, dropout: 0, targets: ["all-linear"]),
                            seed: 0)
        try lora.attach(to: model)
        model.recomputesActivations = BenchModel.recompute
        let parameters = lora.parameters.map { var p = $0; p.weightDecay = 0.01; return p }
        let trainer = try BenchModel.trainer(model, parameters: parameters, steps: steps, batch: B, length: T)
        let batch = try trainer.source.nextBatch()
        let (ids, targets) = (batch.ids, batch.targets)
        for s in 0..<2 { _ = try trainer.trainStep(s) }
        var times: [Double] = []
        for s in 2..<(steps + 2) {
            let t0 = Stopwatch.now()
            _ = try trainer.trainStep(s)
            times.append(Stopwatch.now() - t0)
        }
        // One more step, timed by phase (the same work as trainStep, split up).
        var phase = [Stopwatch.now()]
        let loss = model.loss(ids: ids, targets: targets, batch: B, length: T)
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
        let torch = try comparison.run(script: "Scripts/bench_model.py", arguments: ["train", "--lora", "--steps", "\(steps)"] + BenchModel.torchPrecision)
        let trainable = parameters.reduce(0) { $0 + $1.tensor.count }
        print("bench train --lora — LoRA r 16, alpha 32 on q/k/v/o_proj, gate_up_proj, down_proj (\(trainable) trainable, base frozen), "
              + "AdamW, batch 8 × 256, \(BenchModel.settings), OpenBLAS \(BLAS.coreName), \(BLAS.threadCount) threads")
        print(BenchModel.line("training tokens/s", ours: Double(B * T) / mean, torch: torch["tokens_per_s"], unit: "tok/s"))
        print(BenchModel.line("fastest step", ours: Double(B * T) / fastest, torch: torch["fastest_tokens_per_s"], unit: "tok/s"))
        print(BenchModel.line("peak RSS", ours: Double(rss) / 1e6, torch: torch["peak_rss_bytes"].map { $0 / 1e6 },
                              unit: "MB", higherIsBetter: false))
        print(String(format: "step times (s): %@; fastest %.0f tok/s", times.map { String(format: "%.3f", $0) }.joined(separator: " "),
                     Double(B * T) / fastest))
        print(String(format: "one step by phase: forward %.3f s, backward %.3f s, AdamW %.3f s",
                     phase[1] - phase[0], phase[2] - phase[1], phase[3] - phase[2]))
        print(byKind)
    }
}
