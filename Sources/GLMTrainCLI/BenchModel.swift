// `glm-train bench train` and `bench generate`: whole-model speed on the bench model, next to PyTorch +
// transformers (Scripts/bench_model.py) measured in the same invocation.
import ArgumentParser
import Foundation
import GLMCore
import GLMModel
import GLMTraining

/// The bench model of the issues: vocab 8192, hidden 512, 8 layers, 8 heads / 2 KV heads × 64,
/// intermediate 1536, partial rotary 0.5, untied embeddings.
enum BenchModel {
    /// `bench train --recompute`: activation recompute on our side.
    nonisolated(unsafe) static var recompute = false
    /// How our side computes, for the headline.
    static var settings: String {
        (MixedPrecision.isActive ? "bf16 products (oneDNN \(MixedPrecision.kernelName))" : "f32") + (recompute ? ", activation recompute" : "")
            + (torchPrecision.isEmpty ? "; PyTorch f32" : "; PyTorch bf16 autocast")
    }
    /// `bench train --torch`: how the PyTorch side computes ("f32" or "autocast"; nil: as ours, i.e. its CPU bf16
    /// autocast when ours is bf16).
    nonisolated(unsafe) static var torchMode: String?
    /// The PyTorch side's arguments for that precision.
    static var torchPrecision: [String] {
        (torchMode.map { $0 == "autocast" } ?? (MixedPrecision.requested == .bf16)) ? ["--bf16"] : []
    }

    /// `--precision` of the bench commands: refused unless f32 or bf16.
    static func validatePrecision(_ precision: String) throws {
        guard ComputePrecision(rawValue: precision) != nil else { throw ValidationError("--precision: expected f32 or bf16, got '\(precision)'") }
    }

    /// Requests `precision` (already validated) for our side's products, warning when bf16 is asked for and absent.
    static func requestPrecision(_ precision: String) {
        MixedPrecision.requested = ComputePrecision(rawValue: precision)!
        if MixedPrecision.requested == .bf16 && !MixedPrecision.isActive {
            FileHandle.standardError.write(Data("warning: bf16 products are not available on this CPU; our side runs f32\n".utf8))
        }
    }

    static func config() -> GLMConfig {
        var c = GLMConfig()
        c.modelType = .glm
        c.vocabSize = 8192; c.hiddenSize = 512; c.intermediateSize = 1536; c.numHiddenLayers = 8
        c.numAttentionHeads = 8; c.numKeyValueHeads = 2; c.headDim = 64; c.partialRotaryFactor = 0.5
        c.tieWordEmbeddings = false; c.attentionBias = true; c.rmsNormEps = 1e-5; c.maxPositionEmbeddings = 4096
        c.eosTokenIds = [1]; c.padTokenId = 0
        return c
    }

    /// The Trainer (its own step: objective, gradient-sync point, global norm, AdamW, as a run takes it) over one
    /// fixed random batch of `batch × length` tokens, lr 1e-4, no clipping (as the PyTorch side; the norm is still
    /// computed), for `steps` timed steps after 2 warm-up steps.
    static func trainer(_ model: GLMForCausalLM, parameters: [TrainableParameter], steps: Int, batch B: Int, length T: Int) throws -> Trainer {
        var gen = SeededGenerator(seed: 1)
        let ids = (0..<(B * T)).map { _ in Int32(2 + gen.next() % 8190) }
        let targets = (0..<(B * T)).map { i in i % T == T - 1 ? ignoreLabel : ids[i + 1] }
        return try trainer(model, parameters: parameters, steps: steps, batch: TrainingBatch(batch: B, length: T, ids: ids, targets: targets))
    }

    /// The same Trainer over `batch` with `objective` (e.g. DPO over a pair batch).
    static func trainer(_ model: GLMForCausalLM, objective: TrainingObjective = NextTokenObjective(),
                        parameters: [TrainableParameter], steps: Int, batch: TrainingBatch) throws -> Trainer {
        var options = Trainer.Options(steps: steps + 3)
        options.maxGradNorm = 0
        return Trainer(model: model, objective: objective, parameters: parameters, optimizer: AdamW(),
                       schedule: try LearningRateSchedule(kind: .constant, baseRate: 1e-4, warmupSteps: 0, totalSteps: steps + 3),
                       source: FixedBatchSource([batch]),
                       hooks: [], runDirectory: NSTemporaryDirectory() + "glm-bench-train", options: options)
    }

    /// Runs `body` (one training step) with StepProfile on and says where its time went: matrix products,
    /// attention, and the rest (norms, rotary, SwiGLU, the loss's softmax, the optimizer, copies).
    static func profiledStep(_ body: () throws -> Void) rethrows -> String {
        _ = StepProfile.take()
        StepProfile.enabled = true
        let t0 = Stopwatch.now()
        defer { StepProfile.enabled = false }
        try body()
        let total = Stopwatch.now() - t0
        let rounding = StepProfile.takeRounding()
        let parts = StepProfile.take().filter { $0.0 != .adapterProducts || $0.1 > 0 }
        let other = max(0, total - parts.reduce(0) { $0 + $1.1 })
        let items = parts.map { part in
            var s = String(format: "%@ %.3f s (%.0f%%)", part.0.name, part.1, 100 * part.1 / total)
            if part.0 == .matrixProducts && rounding > 0 { s += String(format: " [of which rounding operands to bf16 %.3f s]", rounding) }
            return s
        }
        return "one step by kind: " + items.joined(separator: ", ") + String(format: ", other %.3f s (%.0f%%)", other, 100 * other / total)
    }

    static func peakRSSBytes() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
    }

    static func line(_ name: String, ours: Double, torch: Double?, unit: String, higherIsBetter: Bool = true) -> String {
        var s = name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: "%10.1f %@", ours, unit)
        if let torch {
            s += String(format: "   PyTorch %10.1f %@   ratio %.2fx", torch, unit, higherIsBetter ? ours / torch : torch / ours)
        }
        return s
    }
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Tokens/s of a full training step (forward, backward, AdamW) on batch 8 × 256, and peak RSS.")
    @OptionGroup var comparison: ComparisonOptions
    @Option(help: "Timed steps.") var steps = 5
    @Flag(help: "A LoRA step instead (r 16, alpha 32 on every linear layer; vs PyTorch + PEFT).") var lora = false
    @Flag(help: "A LoRA DPO step instead (sigmoid, beta 0.1, reference = adapters off; 4 pairs × 256; vs TRL + PEFT).")
    var dpo = false
    @Option(help: "Matrix products: f32, or bf16 (bf16 operands, f32 accumulation; PyTorch runs under its bf16 autocast too).")
    var precision = "f32"
    @Flag(help: "Activation recompute (training.gradient_checkpointing) on our side.") var recompute = false
    @Option(help: "The PyTorch side: f32, or autocast (its CPU bf16 autocast); default: the same precision as ours.")
    var torch: String?

    func validate() throws {
        try BenchModel.validatePrecision(precision)
        if let torch, !["f32", "autocast"].contains(torch) { throw ValidationError("--torch: expected f32 or autocast, got '\(torch)'") }
        if torch != nil && dpo { throw ValidationError("--torch: the DPO comparison (TRL) runs f32 only; leave --torch out with --dpo") }
        if torch != nil && comparison.noCompare { throw ValidationError("--torch: sets the PyTorch side, which --no-compare leaves out") }
        if lora && dpo { throw ValidationError("--lora and --dpo: choose one (the DPO step is a LoRA step already)") }
        try checkBenchCount("--steps", steps, 1...1000)
    }

    func run() throws {
        BenchModel.requestPrecision(precision)
        BenchModel.recompute = recompute
        BenchModel.torchMode = torch
        if dpo { return try BenchDPO.run(steps: steps, comparison: comparison) }
        if lora { return try BenchLoRA.run(steps: steps, comparison: comparison) }
        let (B, T) = (8, 256)
        let model = try GLMForCausalLM(config: BenchModel.config(), seed: 0)
        model.recomputesActivations = recompute
        let params = model.parameters.sorted { $0.key < $1.key }.map { name, t -> TrainableParameter in
            t.setRequiresGrad(true)
            return TrainableParameter(name: name, tensor: t, weightDecay: 0.01)
        }
        let trainer = try BenchModel.trainer(model, parameters: params, steps: steps, batch: B, length: T)
        for s in 0..<2 { _ = try trainer.trainStep(s) }
        var times: [Double] = []
        for s in 2..<(steps + 2) {  // then one profiled step (steps + 2)
            let t0 = Stopwatch.now()
            _ = try trainer.trainStep(s)
            times.append(Stopwatch.now() - t0)
        }
        let dt = times.reduce(0, +) / Double(times.count)
        let byKind = try BenchModel.profiledStep { _ = try trainer.trainStep(steps + 2) }
        let rss = BenchModel.peakRSSBytes()
        let torch = try comparison.run(script: "Scripts/bench_model.py", arguments: ["train", "--steps", "\(steps)"] + BenchModel.torchPrecision)
        print("bench train — full-parameter AdamW, batch 8 × 256, \(BenchModel.settings), OpenBLAS \(BLAS.coreName), \(BLAS.threadCount) threads")
        print(BenchModel.line("training tokens/s", ours: Double(B * T) / dt, torch: torch["tokens_per_s"], unit: "tok/s"))
        print(BenchModel.line("fastest step", ours: Double(B * T) / times.min()!, torch: torch["fastest_tokens_per_s"], unit: "tok/s"))
        print(BenchModel.line("peak RSS", ours: Double(rss) / 1e6, torch: torch["peak_rss_bytes"].map { $0 / 1e6 },
                              unit: "MB", higherIsBetter: false))
        print(byKind)
    }
}

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate",
        abstract: "Prefill and greedy decode tokens/s at batch 1 and 8 (prompt 128 tokens), with f32 and/or bf16 weights.")
    @OptionGroup var comparison: ComparisonOptions
    @Option(help: "New tokens per prompt.") var newTokens = 64
    @Option(help: "Weights in memory: float32, bfloat16 (frozen matrices kept in bf16, as a bf16 checkpoint loads), or both.")
    var dtype = "both"
    @Option(help: "Timed repetitions per figure (the best is reported).") var repeats = 1
    @Option(help: "Batch sizes to measure: 1, 8 or both.") var batch = "both"

    func validate() throws {
        guard ["1", "8", "both"].contains(batch) else { throw ValidationError("--batch: expected 1, 8 or both, got '\(batch)'") }
        try checkBenchCount("--new-tokens", newTokens, 1...1024)
        try checkBenchCount("--repeats", repeats, 1...1000)
    }

    func run() throws {
        let dtypes: [StorageDType]
        switch dtype {
        case "float32", "f32": dtypes = [.float32]
        case "bfloat16", "bf16": dtypes = [.bfloat16]
        case "both": dtypes = [.float32, .bfloat16]
        default: throw GLMError("--dtype must be float32, bfloat16 or both, got \(dtype)")
        }
        var ours: [StorageDType: [String: Double]] = [:]
        var weightBytes: [StorageDType: Int] = [:]
        for dt in dtypes {
            let model = try GLMForCausalLM(config: BenchModel.config(), seed: 0)
            if dt == .bfloat16 { model.storeFrozenMatricesInBF16() }
            StoragePool.shared.drain()
            weightBytes[dt] = model.parameterBytes
            ours[dt] = measure(TextGenerator(model: model))
        }
        let torch = try comparison.run(script: "Scripts/bench_model.py", arguments: ["generate", "--new-tokens", "\(newTokens)"])
        print("bench generate — greedy, prompt 128, \(newTokens) new tokens, OpenBLAS \(BLAS.coreName) (PyTorch: f32 weights)")
        for dt in dtypes {
            let name = dt == .float32 ? "f32" : "bf16"
            print("weights \(name): \(String(format: "%.1f", Double(weightBytes[dt]!) / 1e6)) MB of parameters in memory")
            for b in batches {
                for key in ["prefill_tokens_per_s/b\(b)", "decode_tokens_per_s/b\(b)"] {
                    print(BenchModel.line("\(key) \(name)", ours: ours[dt]![key]!, torch: torch[key], unit: "tok/s"))
                }
            }
        }
    }

    /// The batch sizes `--batch` asks for.
    var batches: [Int] { batch == "both" ? [1, 8] : [Int(batch)!] }

    /// Best of `repeats` prefill and decode rates at batch 1 and 8.
    func measure(_ generator: TextGenerator) -> [String: Double] {
        var gen = SeededGenerator(seed: 2)
        var ours: [String: Double] = [:]
        for batch in [1, 8] {
            let prompts = (0..<batch).map { _ in (0..<128).map { _ in Int32(2 + gen.next() % 8190) } }
            guard batches.contains(batch) else { continue }  // the same prompts whichever batches run
            _ = generator.generate(prompts: prompts, maxNewTokens: 2, stopTokens: [])  // warm-up
            var bestPrefill = Double.infinity, bestDecode = Double.infinity
            for _ in 0..<max(1, repeats) {
                var t0 = Stopwatch.now()
                _ = generator.generate(prompts: prompts, maxNewTokens: 1, stopTokens: [])
                let prefill = Stopwatch.now() - t0
                t0 = Stopwatch.now()
                _ = generator.generate(prompts: prompts, maxNewTokens: newTokens, stopTokens: [])
                let decode = max(Stopwatch.now() - t0 - prefill, 1e-9)
                bestPrefill = min(bestPrefill, prefill); bestDecode = min(bestDecode, decode)
            }
            ours["prefill_tokens_per_s/b\(batch)"] = Double(batch * 128) / bestPrefill
            ours["decode_tokens_per_s/b\(batch)"] = Double(batch * (newTokens - 1)) / bestDecode
        }
        return ours
    }
}
