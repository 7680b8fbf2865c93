// LoRA (Hu et al. 2021) as PEFT implements it: y = x·Wᵀ + b + scale·(dropout(x)·Aᵀ)·Bᵀ on chosen linear modules
// of chosen layers, A `[r, in]` Kaiming-uniform (a = √5, as nn.Linear), B `[out, r]` zero (so step 0 is the base
// model), scale α/r or α/√r (rsLoRA). The base model stays frozen; A and B are the trainable parameters, named
// as PEFT names them without the "base_model.model." prefix.
import Foundation
import GLMCore
import GLMIO
import GLMModel

/// What to adapt and how (the `lora:` block of a recipe; PEFT's LoraConfig).
public struct LoRAConfig: Equatable, Sendable {
    public var rank: Int
    public var alpha: Float
    /// Dropout probability on the adapter's input (training only).
    public var dropout: Float
    /// Target names the model declares (`AdaptableLinear.target`: "q_proj", ...) or "all-linear" (every one).
    public var targets: [String]
    /// Only these layers get adapters (nil: every layer).
    public var layersToTransform: [Int]?
    /// Scale α/√r instead of α/r.
    public var useRSLoRA: Bool

    public init(rank: Int = 16, alpha: Float = 32, dropout: Float = 0, targets: [String] = ["all-linear"],
                layersToTransform: [Int]? = nil, useRSLoRA: Bool = false) {
        self.rank = rank; self.alpha = alpha; self.dropout = dropout; self.targets = targets
        self.layersToTransform = layersToTransform; self.useRSLoRA = useRSLoRA
    }

    /// The factor on B·A.
    public var scale: Float { useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// The target names for `model`, in its declaration order: "all-linear" is every declared target; a name the
    /// model does not declare is an error.
    public func resolvedTargets(for model: any CausalLMConfig) throws -> [String] {
        let declared = model.adaptableTargets
        for t in targets where t != "all-linear" && !declared.contains(t) {
            throw GLMError("unknown LoRA target '\(t)' (this \(model.modelTypeName) model declares \((declared + ["all-linear"]).joined(separator: ", ")))")
        }
        return targets.contains("all-linear") ? declared : declared.filter(targets.contains)
    }

    /// Checks ranges, targets and layers against the model.
    public func validate(for model: any CausalLMConfig) throws {
        guard rank >= 1 else { throw GLMError("lora rank must be ≥ 1, got \(rank)") }
        guard alpha.isFinite && alpha > 0 else { throw GLMError("lora alpha must be > 0, got \(alpha)") }
        guard dropout >= 0 && dropout < 1 else { throw GLMError("lora dropout must be in [0, 1), got \(dropout)") }
        guard !targets.isEmpty else { throw GLMError("lora targets: no module chosen") }
        _ = try resolvedTargets(for: model)
        guard rank <= model.hiddenSize else {
            throw GLMError("lora rank \(rank) is larger than the model's hidden_size \(model.hiddenSize); expected at most \(model.hiddenSize)")
        }
        if let layers = layersToTransform {
            guard !layers.isEmpty else { throw GLMError("lora layers_to_transform: empty list") }
            if let bad = layers.first(where: { $0 < 0 || $0 >= model.numHiddenLayers }) {
                throw GLMError("lora layers_to_transform: layer \(bad) does not exist (the model has \(model.numHiddenLayers) layers)")
            }
        }
        if let bad = modules(for: model).first(where: { $0.shape.count != 2 }) {
            throw GLMError("lora targets: \(bad.target) has a \(bad.shape.count)-D weight \(bad.shape); LoRA on it is not supported yet")
        }
    }

    /// The adapted linears of a model, in its declaration order (layer-major).
    public func modules(for model: any CausalLMConfig) -> [AdaptableLinear] {
        let chosen = Set((try? resolvedTargets(for: model)) ?? [])
        return model.adaptableLinears.filter { chosen.contains($0.target) && (layersToTransform?.contains($0.layer) ?? true) }
    }

    /// The PEFT adapter_config.json for this config (`targets` as they stand: resolved when made by `LoRA`).
    /// alpha and dropout are written as the recipe wrote them (0.05, not the float's 0.05000000074505806).
    public func adapterConfig(baseModel: String?) -> AdapterConfig {
        func decimal(_ x: Float) -> Double { Double("\(x)") ?? Double(x) }
        return AdapterConfig(r: rank, loraAlpha: decimal(alpha), loraDropout: decimal(dropout), targetModules: .list(targets),
                             useRslora: useRSLoRA, layersToTransform: layersToTransform, baseModelNameOrPath: baseModel)
    }

    /// The config of a PEFT adapter on a model of `model` (targets: the target names the adapter has tensors for).
    public init(_ adapter: PEFTAdapter, model: any CausalLMConfig) {
        let c = adapter.config
        var seen = Set<String>()
        let kinds = adapter.modules(in: model).map(\.target).filter { seen.insert($0).inserted }
        self.init(rank: c.r, alpha: Float(c.loraAlpha), dropout: Float(c.loraDropout),
                  targets: model.adaptableTargets.filter(kinds.contains), layersToTransform: c.layersToTransform,
                  useRSLoRA: c.useRslora)
    }
}

/// One adapted module: its trainable A `[r, in]` and B `[out, r]`, and the factor on B·A (the config's, or the
/// module's own from an adapter's rank_pattern/alpha_pattern).
public struct LoRAPair {
    public let linear: AdaptableLinear
    public let a: Tensor
    public let b: Tensor
    public var scale: Float
    /// The module's rank.
    public var rank: Int { a.shape[0] }
    public var layer: Int { linear.layer }
    /// "model.layers.N.self_attn.q_proj" (the `CausalLanguageModel.adaptedLinears` key).
    public var moduleName: String { linear.module }
}

/// The LoRA matrices of a model and the closures that apply them (attach to any `CausalLanguageModel`).
public final class LoRA {
    public let config: LoRAConfig
    /// The linears of the model the adapters were made for (checked again on `attach`).
    public let modelLinears: [AdaptableLinear]
    public private(set) var pairs: [LoRAPair]
    /// Dropout is applied only while this is true (set it false for evaluation). Adapters made for training
    /// start in training mode, adapters read from files in evaluation mode.
    public var training: Bool
    /// Draws the dropout masks; its state belongs in training checkpoints.
    public var dropoutGenerator: SeededGenerator
    /// The adapter_config.json these adapters were read with (kept for export: exact targets, extra keys).
    public private(set) var sourceAdapterConfig: AdapterConfig?

    /// New adapters with PEFT's initialisation: A ~ U(−1/√in, 1/√in) (kaiming_uniform_ with a = √5), B = 0,
    /// drawn from `seed` in the model's declaration order (layer by layer). Dropout masks use a generator derived
    /// from it.
    public init(modelConfig: any CausalLMConfig, config: LoRAConfig, seed: UInt64) throws {
        try config.validate(for: modelConfig)
        var resolved = config
        resolved.targets = try config.resolvedTargets(for: modelConfig)
        self.config = resolved
        modelLinears = modelConfig.adaptableLinears
        var gen = SeededGenerator(seed: seed)
        pairs = config.modules(for: modelConfig).map { m in
            let bound = 1 / Float(m.shape[1]).squareRoot()
            let a = Tensor.randomUniform([config.rank, m.shape[1]], low: -bound, high: bound, generator: &gen, requiresGrad: true)
            let b = Tensor(zeros: [m.shape[0], config.rank], requiresGrad: true)
            return LoRAPair(linear: m, a: a, b: b, scale: config.scale)
        }
        training = true
        dropoutGenerator = SeededGenerator(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Adapters from a PEFT adapter (copied, trainable), checked against the model.
    public init(adapter: PEFTAdapter, modelConfig: any CausalLMConfig, seed: UInt64 = 0) throws {
        try adapter.validate(against: modelConfig)
        let config = LoRAConfig(adapter, model: modelConfig)
        self.config = config
        modelLinears = modelConfig.adaptableLinears
        // A routed expert's gate and up with equal A are peft's one shared A (its fused gate_up): one trained tensor,
        // whose gradient is the sum of both uses, as peft trains it.
        var sharedA: [String: (values: Tensor, copy: Tensor)] = [:]
        pairs = adapter.modules(in: modelConfig).map { m in
            let (a, b) = adapter.matrices(module: m.module)!
            var ca = a.copy()
            let cb = b.copy()
            if let expert = FusedExpertLoRA.expertModule(m.module), expert.fused == "gate_up_proj" {
                let key = "\(expert.layer).\(expert.expert)"
                if let other = sharedA[key], other.values.shape == a.shape, other.values.bitwiseEqual(a) { ca = other.copy }
                else { sharedA[key] = (a, ca) }
            }
            ca.setRequiresGrad(true); cb.setRequiresGrad(true)
            let scale = adapter.config.hasModulePatterns ? Float(adapter.config.scale(forModule: m.module)) : config.scale
            return LoRAPair(linear: m, a: ca, b: cb, scale: scale)
        }
        training = false
        dropoutGenerator = SeededGenerator(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        sourceAdapterConfig = adapter.config
    }

    /// Adapters from tensors named as `tensors` names them (e.g. a training checkpoint's) and an adapter config.
    public convenience init(tensors: [String: Tensor], adapterConfig: AdapterConfig, modelConfig: any CausalLMConfig, seed: UInt64 = 0) throws {
        try self.init(adapter: PEFTAdapter(config: adapterConfig, tensors: tensors), modelConfig: modelConfig, seed: seed)
    }

    /// The trainable parameters, named "model.layers.N.<module>.lora_A.weight" / "….lora_B.weight" (no weight decay
    /// set here: the trainer decides). A shared A (a routed expert's gate and up read from peft's fused layout) is
    /// listed once, under the first module's name.
    public var parameters: [TrainableParameter] {
        var seen = Set<ObjectIdentifier>()
        return pairs.flatMap { p in
            (seen.insert(ObjectIdentifier(p.a)).inserted ? [TrainableParameter(name: LoRATensorName.name(module: p.moduleName, isB: false), tensor: p.a)] : [])
                + [TrainableParameter(name: LoRATensorName.name(module: p.moduleName, isB: true), tensor: p.b)]
        }
    }

    /// The matrices by name, every module's A and B (a shared A under each module's name).
    public var tensors: [String: Tensor] {
        Dictionary(uniqueKeysWithValues: pairs.flatMap { p in
            [(LoRATensorName.name(module: p.moduleName, isB: false), p.a), (LoRATensorName.name(module: p.moduleName, isB: true), p.b)]
        })
    }

    /// The adapter term of one module: scale·(dropout(x)·Aᵀ)·Bᵀ, with autodiff through A and B (and x).
    public func delta(_ pair: LoRAPair, _ x: Tensor) -> Tensor {
        var input = x
        if training && config.dropout > 0 && Autograd.isTrainingForward {
            input = x * Tensor(shape: x.shape, storage: dropoutMask(count: x.count).storage)
        }
        let down = Tensor.matmul(input, pair.a, transposeB: true).scaled(pair.scale)
        return Tensor.matmul(down, pair.b, transposeB: true)
    }

    /// The adapted linear layer as one op: y = x·Wᵀ + b + scale·(dropout(x)·Aᵀ)·Bᵀ, the same values as
    /// `Tensor.linear(x, weight:, bias:) + delta(pair, x)` but with one output buffer: the low-rank term is added
    /// into the base product by a second sgemm (β = 1), and the tape keeps only x, x·Aᵀ (`[rows, r]`) and the
    /// dropout mask, never the base output or the adapter output. Backward: dB = s·gᵀ·(x·Aᵀ), g·B → dA, and
    /// dx = g·W + (s·g·B)·A in one buffer; a frozen W gets no weight-gradient product, a frozen bias no sum.
    public func linear(_ pair: LoRAPair, _ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        let inDim = x.shape.last!, outDim = weight.shape[0], r = pair.rank, s = pair.scale
        precondition(pair.a.shape == [r, inDim] && pair.b.shape == [outDim, r],
                     "LoRA \(pair.moduleName): A \(pair.a.shape), B \(pair.b.shape) do not fit \(x.shape) · \(weight.shape)ᵀ")
        let rows = x.count / max(inDim, 1)
        let mask = training && config.dropout > 0 && Autograd.isTrainingForward ? dropoutMask(count: x.count) : nil
        let input = mask.map { m in Autograd.noGrad { x * Tensor(shape: x.shape, storage: m.storage) } } ?? x
        // The base product off the tape (its buffer is fresh), then += s·(input·Aᵀ)·Bᵀ in place. The rank-r products
        // run on the low-rank kernels (LoRAProducts): bf16 operands when bf16 products are active, as PyTorch's
        // autocast runs PEFT's layers, else f32. With bf16 products, a frozen weight and no dropout, the base product
        // and the adapter term are one product instead (LoRAConcatenated), forward and backward.
        let down = Tensor(uninitialized: Array(x.shape.dropLast()) + [r])
        let (a, b) = (pair.a, pair.b)
        let products = LoRAProducts(rows: rows, inDim: inDim, outDim: outDim, rank: r)
        var joined = false
        var y: Tensor?
        if mask == nil && bias?.bf16Bits == nil && LoRAConcatenated.applies(products, weight: weight) {
            let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [outDim])
            if LoRAConcatenated.forward(products, x: x.pointer, a: a.pointer, scale: s, weight: weight, b: b.pointer,
                                        down: down.pointer, into: out.pointer) {
                if let bias { for row in 0..<rows { Kernels.addInPlace(out.pointer + row * outDim, bias.pointer, outDim) } }
                (y, joined) = (out, true)
            }
        }
        if !joined {
            StepProfile.time(.adapterProducts) { products.down(x: input.pointer, a: a.pointer, into: down.pointer) }
            let out = Autograd.noGrad { Tensor.linear(x.detached(), weight: weight, bias: bias) }
            StepProfile.time(.adapterProducts) { products.addUp(down: down.pointer, b: b.pointer, scale: s, into: out.pointer) }
            y = out
        }
        return y!.recorded(from: bias.map { [x, weight, a, b, $0] } ?? [x, weight, a, b]) { g in
            let gp = g.pointer
            var gDown: Tensor?  // s·g·B  [rows, r]
            if joined && x.requiresGrad {  // gDown, then dx = [g | gDown]·[W ; A] in one product
                let dx = Tensor(uninitialized: x.shape)
                if let t = LoRAConcatenated.inputGradient(products, g: gp, b: b.pointer, scale: s, weight: weight,
                                                          a: a.pointer, into: dx.pointer) {
                    gDown = t
                    x.accumulateGrad(dx, fresh: true)
                }
            }
            let dxDone = gDown != nil
            StepProfile.time(.adapterProducts) {
                if b.requiresGrad { b.accumulateGrad(products.gradB(g: gp, down: down.pointer, scale: s), fresh: true) }
                if gDown == nil && (a.requiresGrad || x.requiresGrad) { gDown = products.gradDown(g: gp, b: b.pointer, scale: s) }
                if a.requiresGrad, let gDown { a.accumulateGrad(products.gradA(gDown: gDown.pointer, x: input.pointer), fresh: true) }
            }
            if x.requiresGrad, let gDown, !dxDone {  // dx = g·W + (gDown·A) ⊙ mask
                let dx = Autograd.noGrad { Tensor.matmul(g, weight) }
                StepProfile.time(.adapterProducts) {
                    if let mask {
                        let t = Tensor(uninitialized: [rows, inDim])
                        products.inputTerm(gDown: gDown.pointer, a: a.pointer, beta: 0, into: t.pointer)
                        let dp = dx.pointer, tp = t.pointer, mp = mask.pointer
                        for i in 0..<x.count { dp[i] += tp[i] * mp[i] }
                    } else {
                        products.inputTerm(gDown: gDown.pointer, a: a.pointer, beta: 1, into: dx.pointer)
                    }
                }
                x.accumulateGrad(dx, fresh: true)
            }
            if weight.requiresGrad {  // a base trained together with its adapter: dW = gᵀ·x
                let dw = Tensor(uninitialized: weight.shape)
                MixedPrecision.gemm(transA: true, m: outDim, n: inDim, k: rows, a: gp, lda: outDim, b: x.pointer, ldb: inDim,
                          c: dw.pointer, ldc: inDim)
                weight.accumulateGrad(dw, fresh: true)
            }
            if let bias, bias.requiresGrad {
                let db = Tensor(zeros: bias.shape)
                for row in 0..<rows { Kernels.addInPlace(db.pointer, gp + row * outDim, outDim) }
                bias.accumulateGrad(db, fresh: true)
            }
        }
    }

    /// Inverted-dropout factors (0 or 1/(1−p)) for `count` elements, drawn from `dropoutGenerator`.
    /// Replayable: a layer recomputed for its backward (activation recompute) gets the same mask again.
    func dropoutMask(count: Int) -> Tensor {
        Autograd.replayable {
            let p = config.dropout, keep = 1 / (1 - p)
            let mask = Tensor(uninitialized: [count])
            let mp = mask.pointer
            for i in 0..<count { mp[i] = dropoutGenerator.nextUniform() < p ? 0 : keep }
            return mask
        }
    }

    /// Freezes every base parameter (no gradient buffers) and routes the adapted modules through `linear`.
    /// Replaces any adapters the model had.
    public func attach(to model: any CausalLanguageModel) throws {
        guard model.adaptableLinears == modelLinears else {
            throw GLMError("LoRA adapters were made for another model shape")
        }
        for t in model.parameters.values where t.requiresGrad && !t.isOnTape { t.setRequiresGrad(false) }
        var linears: [String: LinearOverride] = [:]
        for pair in pairs { linears[pair.moduleName] = { x, weight, bias in self.linear(pair, x, weight: weight, bias: bias) } }
        model.adaptedLinears = linears
    }

    /// Removes the adapters from `model` (the base stays frozen).
    public static func detach(from model: any CausalLanguageModel) { model.adaptedLinears = [:] }

    /// The adapter as plain data for the IO layer (tensors shared, not copied). Adapters read from a file keep
    /// that file's config (with `baseModel` when given).
    public func peftAdapter(baseModel: String?) -> PEFTAdapter {
        var c = config.adapterConfig(baseModel: baseModel)
        if var source = sourceAdapterConfig {
            if let baseModel { source.baseModelNameOrPath = baseModel }
            c = source
        }
        return PEFTAdapter(config: c, tensors: tensors)
    }

    /// The base weights of `model` with every adapted W replaced by W + scale·B·A (f32; cast to the storage
    /// dtype when saved).
    public func mergedWeights(_ model: any CausalLanguageModel) throws -> [String: Tensor] {
        try peftAdapter(baseModel: nil).merged(into: model.parameters)
    }

    /// A new model whose weights are the merged ones (no adapters).
    public func merged(_ model: GLMForCausalLM) throws -> GLMForCausalLM {
        try GLMForCausalLM(config: model.config, weights: try mergedWeights(model))
    }
}
