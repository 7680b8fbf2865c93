// `glm-train bench shape`: a LoRA training step at the shape of a real GLM (random weights, the base kept in bf16 as a
// bf16 checkpoint loads), batch 1 × SEQ, next to PyTorch + PEFT on the same config (`Scripts/bench_shapes.py`) in the
// same invocation: f32 and under PyTorch's bf16 autocast, each a separate process so its peak RSS is its own.
import ArgumentParser
import Foundation
import GLMCore
import GLMModel
import GLMTraining

/// Configs of real GLM models (reference/glm.md §C), for benchmarks with random weights.
enum RealShape: String, CaseIterable, ExpressibleByArgument {
    case glmEdge15 = "glm-edge-1.5b", glmEdge4 = "glm-edge-4b", glm4_9b = "glm-4-9b"

    var config: GLMConfig {
        var c = GLMConfig()
        c.modelType = .glm
        c.rmsNormEps = 1e-5; c.tieWordEmbeddings = false; c.padTokenId = 0; c.eosTokenIds = [1]
        switch self {
        case .glmEdge15:
            c.vocabSize = 59264; c.hiddenSize = 2048; c.numHiddenLayers = 28; c.numAttentionHeads = 16
            c.numKeyValueHeads = 4; c.headDim = 128; c.intermediateSize = 6144; c.partialRotaryFactor = 1.0
            c.attentionBias = false; c.maxPositionEmbeddings = 8192
        case .glmEdge4:
            c.vocabSize = 59264; c.hiddenSize = 3072; c.numHiddenLayers = 40; c.numAttentionHeads = 24
            c.numKeyValueHeads = 6; c.headDim = 128; c.intermediateSize = 8192; c.partialRotaryFactor = 1.0
            c.attentionBias = false; c.maxPositionEmbeddings = 4096
        case .glm4_9b:
            c.vocabSize = 151552; c.hiddenSize = 4096; c.numHiddenLayers = 40; c.numAttentionHeads = 32
            c.numKeyValueHeads = 2; c.headDim = 128; c.intermediateSize = 13696; c.partialRotaryFactor = 0.5
            c.attentionBias = true; c.rmsNormEps = 1.5625e-7; c.maxPositionEmbeddings = 131072
        }
        return c
    }

    /// Random weights as `GLMWeights.randomInit` draws them, each matrix rounded to bf16 as soon as it is drawn, so the
    /// f32 copy of the whole model (37.6 GB for GLM-4-9B) never exists.
    func bf16Weights(seed: UInt64) -> [String: Tensor] {
        let c = config
        var gen = SeededGenerator(seed: seed)
        var out: [String: Tensor] = [:]
        for (name, shape) in GLMWeights.expectedShapes(c) {
            if name.hasSuffix("norm.weight") { out[name] = Tensor(repeating: 1, shape: shape) }
            else if name.hasSuffix(".bias") { out[name] = Tensor(zeros: shape) }
            else { out[name] = Tensor.randomNormal(shape, std: 0.02, generator: &gen).roundedToBF16() }
        }
        return out
    }
}

struct BenchShape: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "shape",
        abstract: "A LoRA r16 all-linear step at a real GLM shape (random weights, bf16 base), batch 1 × --seq: tokens/s and peak RSS beside PyTorch+PEFT.")
    @OptionGroup var comparison: ComparisonOptions
    @Option(help: "glm-edge-1.5b, glm-edge-4b or glm-4-9b.") var shape: RealShape = .glmEdge15
    @Option(help: "Tokens in the one sequence of a step.") var seq = 1024
    @Option(help: "Timed steps (after one warm-up step).") var steps = 2
    @Option(help: "Our matrix products: f32 or bf16.") var precision = "bf16"
    @Flag(help: "Activation recompute on our side (training.gradient_checkpointing).") var recompute = false
    @Option(help: "PyTorch sides to run, comma-separated: f32 (f32 weights), autocast (f32 weights, bf16 autocast), bf16 (bf16 weights and autocast), none.")
    var torch = "f32,autocast"

    func validate() throws {
        try BenchModel.validatePrecision(precision)
        guard seq >= 2 && seq <= shape.config.maxPositionEmbeddings else { throw ValidationError("--seq: expected 2...\(shape.config.maxPositionEmbeddings)") }
        try checkBenchCount("--steps", steps, 1...100)
        for mode in torch.split(separator: ",") where !["f32", "autocast", "bf16", "none"].contains(String(mode)) {
            throw ValidationError("--torch: unknown side '\(mode)' (f32, autocast, bf16, none)")
        }
    }

    func run() throws {
        MixedPrecision.requested = ComputePrecision(rawValue: precision)!
        let c = shape.config
        // PyTorch first, one process per side, while this process holds nothing: run beside our model, PyTorch's
        // f32 side of glm-edge-1.5b (16 GB) and our 8.7 GB do not fit in 24 GB together.
        var torchResults: [(label: String, figures: (tps: Double, peak: Double)?, failure: String?)] = []
        for mode in torch.split(separator: ",").map(String.init) where mode != "none" && !comparison.noCompare {
            let label = ["f32": "PyTorch f32", "autocast": "PyTorch autocast", "bf16": "PyTorch bf16"][mode]!
            do {
                let r = try comparison.run(script: "Scripts/bench_shapes.py",
                                           arguments: ["--shape", shape.rawValue, "--seq", "\(seq)", "--steps", "\(steps)", "--mode", mode])
                guard let tps = r["tokens_per_s"], let peak = r["peak_rss_bytes"] else { throw GLMError("no figures reported") }
                torchResults.append((label, (tps, peak), nil))
            } catch let e as GLMError {
                torchResults.append((label, nil, e.message))
            }
        }
        let t0 = Stopwatch.now()
        let model = try GLMForCausalLM(config: c, weights: shape.bf16Weights(seed: 0))
        let made = Stopwatch.now() - t0
        let lora = try LoRA(modelConfig: c, config: LoRAConfig(rank: 16, alpha: 32, dropout: 0, targets: ["all-linear"]), seed: 0)
        try lora.attach(to: model)
        model.recomputesActivations = recompute
        let parameters = lora.parameters.map { var p = $0; p.weightDecay = 0.01; return p }
        let trainer = try BenchModel.trainer(model, parameters: parameters, steps: steps, batch: 1, length: seq)
        _ = try trainer.trainStep(0)
        var times: [Double] = []
        for s in 1...steps {
            let t = Stopwatch.now()
            _ = try trainer.trainStep(s)
            times.append(Stopwatch.now() - t)
        }
        let byKind = try BenchModel.profiledStep { _ = try trainer.trainStep(steps + 1) }
        let rss = BenchModel.peakRSSBytes()
        let mean = times.reduce(0, +) / Double(times.count)
        let settings = (MixedPrecision.isActive ? "bf16 products" : "f32 products") + (recompute ? ", activation recompute" : "")
        print("bench shape — \(shape.rawValue) (\(String(format: "%.2f", Double(model.parameterCount) / 1e9))B parameters, random, bf16 base), "
              + "LoRA r 16 all-linear (\(parameters.reduce(0) { $0 + $1.tensor.count }) trainable), AdamW, batch 1 × \(seq), \(settings), "
              + "OpenBLAS \(BLAS.coreName), \(BLAS.threadCount) threads; model made in \(String(format: "%.0f", made)) s")
        print(String(format: "GLMTrain        %8.1f tok/s   peak RSS %7.1f MB   step times (s): %@", Double(seq) / mean, Double(rss) / 1e6,
                     times.map { String(format: "%.1f", $0) }.joined(separator: " ")))
        print(byKind)
        for r in torchResults {
            if let f = r.figures {
                print(String(format: "%-16@ %8.1f tok/s   peak RSS %7.1f MB   ratio %.2fx speed, %.2fx memory", r.label as NSString, f.tps,
                             f.peak / 1e6, Double(seq) / mean / f.tps, Double(rss) / f.peak))
            } else {
                print("\(r.label): no figure (\(r.failure ?? ""))")
            }
        }
    }
}
