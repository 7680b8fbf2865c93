// GLM-4.5's Mixture-of-Experts decoder (transformers' Glm4MoeForCausalLM, reference/glm4-moe.md §2), built from
// GLMCore ops so that gradients flow to every parameter and through the routing weights to the router.
import GLMCore

/// A glm4_moe causal language model holding its parameters under the Hugging Face names (`Glm4MoeWeights`).
///
/// Per layer, pre-norm only: h = x + Attn(input_layernorm(x)); out = h + MLP(post_attention_layernorm(h)).
/// Attention: q/k/v (bias iff attention_bias), optional per-head RMSNorm of q and k before RoPE, half-split (NeoX)
/// RoPE on the first `rotaryDim` dims, grouped-query attention scaled by head_dim^-0.5, o_proj without bias. The MLP
/// is a dense SwiGLU for the first `first_k_dense_replace` layers, else a MoE: sigmoid router scores s; the selection
/// uses s + e_score_correction_bias, group-limited (`ExpertRouting.select`); the weights are s of the chosen experts
/// (no bias), normalised (+1e-20) when norm_topk_prob, times routed_scaling_factor; the routed experts run grouped by
/// expert (`Tensor.routedExperts`), and the shared expert (a SwiGLU of width moe_intermediate · n_shared) is added.
public final class Glm4MoeForCausalLM {
    public let config: Glm4MoeConfig
    /// Every tensor of the main model by HF name, the routers' `e_score_correction_bias` buffers included (they take
    /// no gradient: the selection is not differentiable; the balancing rule updates them in place).
    public internal(set) var parameters: [String: Tensor]
    /// The checkpoint's MTP layers (`model.layers.{num_hidden_layers + i}.*`) while they are frozen: kept, written
    /// back and used by `mtpHiddenStates` (Glm4MoeMTP.swift), but not parameters; `trainMTPLayer()` moves them into
    /// `parameters`.
    public internal(set) var mtpTensors: [String: Tensor]
    public var adaptedLinears: [String: LinearOverride] = [:]
    /// Called in every forward pass for each MoE layer with its routing (see `MixtureOfExpertsModel`).
    public var routingObserver: ((RoutingEvent) -> Void)?
    /// Replaces each MoE layer's selection when set (see `MixtureOfExpertsModel.routingReplay`).
    public var routingReplay: ((_ layer: Int, _ selected: ExpertRouting) -> ExpertRouting)?
    /// Called at the end of every main forward pass with its final hidden states (the MTP loss reads them).
    public var forwardObserver: ((MainForward) -> Void)?
    private var layers: [Layer] = []
    /// The first MTP layer, bound when the checkpoint has one (Glm4MoeMTP.swift).
    var mtpLayer: MTPLayer?

    struct SwiGLUWeights { let prefix: String; let gate, up, down: Tensor }
    struct MoE { let router, correctionBias: Tensor; let experts: [ExpertWeights]; let shared: SwiGLUWeights? }
    enum MLP { case dense(SwiGLUWeights), moe(MoE) }
    struct Layer {
        let prefix: String
        let inputNorm, q, k, v, o, postAttentionNorm: Tensor
        let qBias, kBias, vBias, qNorm, kNorm: Tensor?
        let mlp: MLP
    }

    /// Builds the model from named tensors checked strictly against `config` (`Glm4MoeWeights.validated`).
    public init(config: Glm4MoeConfig, weights: [String: Tensor]) throws {
        try config.validate()
        self.config = config
        (parameters, mtpTensors) = try Glm4MoeWeights.validated(weights, config: config)
        // The selection bias only orders experts: a NaN or infinity there routes every token by a broken comparison
        // and no output or loss ever shows it, so it is refused here.
        for l in 0..<config.numHiddenLayers {
            guard let bias = parameters[Glm4MoeWeights.correctionBias(l)] else { continue }
            let values = bias.widened()
            if let i = (0..<values.count).first(where: { !values.pointer[$0].isFinite }) {
                throw GLMError("\(Glm4MoeWeights.correctionBias(l)): value \(i) is \(values.pointer[i]); the router's selection bias must be finite")
            }
        }
        bindLayers()
    }

    /// A freshly initialised model (transformers' initialisation, seeded).
    public convenience init(config: Glm4MoeConfig, seed: UInt64) throws {
        try config.validate()
        try self.init(config: config, weights: Glm4MoeWeights.randomInit(config, seed: seed))
    }

    private func bindLayers() {
        let p = parameters.merging(mtpTensors) { a, _ in a }, c = config
        layers = (0..<c.numHiddenLayers).map { Self.bindLayer($0, p, c, moe: c.isMoELayer($0)) }
        mtpLayer = MTPLayer(binding: p, config: c)
    }

    /// Re-binds the MTP layer after its tensors moved or were added.
    func bindMTPLayer() { mtpLayer = MTPLayer(binding: parameters.merging(mtpTensors) { a, _ in a }, config: config) }

    /// The weights of decoder layer `l` (MoE when `moe`) from `p`.
    static func bindLayer(_ l: Int, _ p: [String: Tensor], _ c: Glm4MoeConfig, moe: Bool) -> Layer {
        let s = Glm4MoeWeights.layerPrefix(l)
        func swiglu(_ path: String) -> SwiGLUWeights {
            SwiGLUWeights(prefix: s + path, gate: p[s + path + "gate_proj.weight"]!, up: p[s + path + "up_proj.weight"]!,
                          down: p[s + path + "down_proj.weight"]!)
        }
        let mlp: MLP
        if moe {
            let experts = (0..<c.nRoutedExperts).map { e -> ExpertWeights in
                let ep = Glm4MoeWeights.expertPrefix(l, e)
                return ExpertWeights(gate: p[ep + "gate_proj.weight"]!, up: p[ep + "up_proj.weight"]!, down: p[ep + "down_proj.weight"]!)
            }
            mlp = .moe(MoE(router: p[Glm4MoeWeights.routerWeight(l)]!, correctionBias: p[Glm4MoeWeights.correctionBias(l)]!,
                           experts: experts, shared: c.sharedIntermediateSize > 0 ? swiglu("mlp.shared_experts.") : nil))
        } else {
            mlp = .dense(swiglu("mlp."))
        }
        return Layer(prefix: s, inputNorm: p[s + "input_layernorm.weight"]!, q: p[s + "self_attn.q_proj.weight"]!,
                     k: p[s + "self_attn.k_proj.weight"]!, v: p[s + "self_attn.v_proj.weight"]!,
                     o: p[s + "self_attn.o_proj.weight"]!, postAttentionNorm: p[s + "post_attention_layernorm.weight"]!,
                     qBias: p[s + "self_attn.q_proj.bias"], kBias: p[s + "self_attn.k_proj.bias"],
                     vBias: p[s + "self_attn.v_proj.bias"], qNorm: p[s + "self_attn.q_norm.weight"],
                     kNorm: p[s + "self_attn.k_norm.weight"], mlp: mlp)
    }

    /// Replaces one parameter (same name and shape).
    public func replaceParameter(_ name: String, with tensor: Tensor) throws {
        guard let old = parameters[name] ?? mtpTensors[name] else { throw GLMError("\(name): not a parameter of this glm4_moe model") }
        guard old.shape == tensor.shape else { throw GLMError("\(name): shape \(tensor.shape); expected \(old.shape)") }
        if parameters[name] != nil { parameters[name] = tensor } else { mtpTensors[name] = tensor }
        bindLayers()
    }

    /// Rounds every frozen matrix parameter to bf16 storage (round-to-nearest-even), experts included; the routers
    /// stay f32 (they are small, and rounding them would move routing decisions). Returns how many were converted.
    @discardableResult
    public func storeFrozenMatricesInBF16() -> Int {
        var converted = 0
        for (name, t) in parameters where t.rank == 2 && !t.requiresGrad && t.bf16Bits == nil && !name.hasSuffix("mlp.gate.weight") {
            parameters[name] = t.roundedToBF16()
            converted += 1
        }
        bindLayers()
        return converted
    }

    public var embedding: Tensor { parameters[Glm4MoeWeights.embedTokens]! }
    public var lmHead: Tensor { parameters[Glm4MoeWeights.lmHead] ?? embedding }

    /// Final hidden states `[B, T, H]` (after the final norm) of `ids` (`B·T`, row-major); arguments as in
    /// `CausalLanguageModel.hiddenStates` (no block positions: glm4_moe has 1D rotary only).
    public func hiddenStates(ids: [Int32], batch: Int, length: Int, positions: [Int32]? = nil, blockPositions: [Int32]? = nil,
                             mask: AttentionMask? = nil, cache: KVCache? = nil) -> Tensor {
        let (B, T) = (batch, length), c = config
        precondition(B > 0 && T > 0 && ids.count == B * T, "hiddenStates: \(ids.count) ids for batch \(B) × length \(T)")
        precondition(blockPositions == nil, "glm4_moe has no block positions")
        let past = cache?.length ?? 0
        if let cache {
            precondition(!Autograd.isRecording, "a forward pass with a KV cache must run inside Autograd.noGrad")
            precondition(cache.batch == B && cache.layers == c.numHiddenLayers && cache.width == c.keyValueWidth,
                         "KV cache made for another batch size or model")
            cache.reserve(past + T)
        }
        let pos: [Int32]
        if let positions {
            precondition(positions.count == B * T || positions.count == T, "hiddenStates: \(positions.count) positions for batch \(B) × length \(T)")
            pos = positions.count == B * T ? positions : (0..<(B * T)).map { positions[$0 % T] }
        } else {
            pos = (0..<(B * T)).map { Int32(past + $0 % T) }
        }
        let S = past + T
        let mask = mask ?? .causal(batch: B, queries: T, keys: S)
        precondition(mask.batch == B && mask.queries == T && mask.keys == S,
                     "mask \(mask.batch)×\(mask.queries)×\(mask.keys) does not match batch \(B), \(T) queries, \(S) keys")
        var x = Tensor.embedding(embedding, ids: ids, idsShape: [B, T], paddingIndex: c.padTokenId)
        for (l, layer) in layers.enumerated() {
            x = decoderLayer(x, layer, index: l, cacheLayer: l, cache: cache, positions: pos, mask: mask, batch: B, length: T, keys: S)
        }
        cache?.length = S
        let out = Tensor.rmsNorm(x, weight: parameters[Glm4MoeWeights.finalNorm]!, eps: Float(c.rmsNormEps))
        forwardObserver?(MainForward(hidden: out, ids: ids, batch: B, length: T, positions: pos, mask: mask))
        return out
    }

    /// One pre-norm decoder layer on `x` `[B, T, H]` at positions `pos` (`B·T`); with a cache, this call's keys and
    /// values go to its layer `cacheLayer` (the caller reserves room and advances its length).
    func decoderLayer(_ x: Tensor, _ layer: Layer, index l: Int, cacheLayer: Int, cache: KVCache?, positions pos: [Int32],
                      mask: AttentionMask, batch B: Int, length T: Int, keys S: Int) -> Tensor {
        let c = config, rotary = c.rotary, eps = Float(c.rmsNormEps), (nh, nkv, d) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        var x = x
        let h = Tensor.rmsNorm(x, weight: layer.inputNorm, eps: eps)
        var q = project(h, layer.prefix + "self_attn.q_proj", layer.q, layer.qBias)
        var k = project(h, layer.prefix + "self_attn.k_proj", layer.k, layer.kBias)
        var v = project(h, layer.prefix + "self_attn.v_proj", layer.v, layer.vBias)
        if let qn = layer.qNorm, let kn = layer.kNorm {
            q = Tensor.rmsNorm(q.reshaped([B, T, nh, d]), weight: qn, eps: eps).reshaped([B, T, nh * d])
            k = Tensor.rmsNorm(k.reshaped([B, T, nkv, d]), weight: kn, eps: eps).reshaped([B, T, nkv * d])
        }
        q = Tensor.rotaryHalfSplit(q, config: rotary, positions: pos)
        k = Tensor.rotaryHalfSplit(k, config: rotary, positions: pos)
        var rowsPerBatch = T
        if let cache {
            cache.write(layer: cacheLayer, k: k, v: v, tokens: T)
            (k, v, rowsPerBatch) = (cache.keys[cacheLayer], cache.values[cacheLayer], cache.capacity)
        }
        let shape = AttentionShape(batch: B, queries: T, keys: S, heads: nh, kvHeads: nkv, headDim: d, keyRowsPerBatch: rowsPerBatch)
        let a = Tensor.attention(q: q, k: k, v: v, shape: shape, mask: mask)
        x = x + project(a, layer.prefix + "self_attn.o_proj", layer.o, nil)
        let m = Tensor.rmsNorm(x, weight: layer.postAttentionNorm, eps: eps)
        switch layer.mlp {
        case .dense(let w):
            return x + swiglu(m, w)
        case .moe(let moe):
            return x + mixture(m, moe, layer: l, batch: B, length: T)
        }
    }

    /// The MoE of one layer on `m` `[B, T, H]`.
    func mixture(_ m: Tensor, _ moe: MoE, layer: Int, batch: Int, length: Int) -> Tensor {
        let c = config, H = c.hiddenSize, N = batch * length
        let flat = m.reshaped([N, H])
        let scores = Tensor.linear(flat, weight: moe.router).sigmoid()
        var routing = moe.correctionBias.withFloatValues { bias in
            ExpertRouting.select(scores: scores.pointer, bias: bias, tokens: N, experts: c.nRoutedExperts,
                                 topK: c.numExpertsPerTok, groups: c.nGroup, keptGroups: c.topkGroup)
        }
        if let replay = routingReplay { routing = replay(layer, routing) }
        routingObserver?(RoutingEvent(layer: layer, routing: routing, scores: scores, batch: batch, length: length))
        let weights = Tensor.routingWeights(scores, routing: routing, normalize: c.normTopkProb, scale: Float(c.routedScalingFactor))
        var out: Tensor
        if !adaptedLinears.isEmpty && (0..<c.nRoutedExperts).contains(where: { adaptedLinears[Glm4MoeWeights.expertPrefix(layer, $0) + "gate_proj"] != nil
                || adaptedLinears[Glm4MoeWeights.expertPrefix(layer, $0) + "up_proj"] != nil
                || adaptedLinears[Glm4MoeWeights.expertPrefix(layer, $0) + "down_proj"] != nil }) {
            // Adapted experts (LoRA): each expert still runs once over its gathered rows, through its adapted linears.
            let K = Int32(routing.topK)
            let outputs = moe.experts.enumerated().map { e, ex -> Tensor? in
                let lo = routing.offsets[e], n = routing.offsets[e + 1] - lo
                guard n > 0 else { return nil }
                let xe = Tensor.gatherRows(flat, rows: routing.order[lo..<(lo + n)].map { $0 / K })
                let p = Glm4MoeWeights.expertPrefix(layer, e)
                let gate = project(xe, p + "gate_proj", ex.gate, nil), up = project(xe, p + "up_proj", ex.up, nil)
                return project(Tensor.swiglu(gate: gate, up: up), p + "down_proj", ex.down, nil)
            }
            out = Tensor.combineExperts(outputs, routing: routing, weights: weights, hidden: H)
        } else {
            out = Tensor.routedExperts(flat, routing: routing, weights: weights, experts: moe.experts)
        }
        if let shared = moe.shared { out = out + swiglu(flat, shared) }
        return out.reshaped(m.shape)
    }

    func swiglu(_ x: Tensor, _ w: SwiGLUWeights) -> Tensor {
        let gate = project(x, w.prefix + "gate_proj", w.gate, nil), up = project(x, w.prefix + "up_proj", w.up, nil)
        return project(Tensor.swiglu(gate: gate, up: up), w.prefix + "down_proj", w.down, nil)
    }

    func project(_ x: Tensor, _ module: String, _ weight: Tensor, _ bias: Tensor?) -> Tensor {
        if !adaptedLinears.isEmpty, let linear = adaptedLinears[module] { return linear(x, weight, bias) }
        return Tensor.linear(x, weight: weight, bias: bias)
    }
}

extension Glm4MoeForCausalLM: MixtureOfExpertsModel {
    public var configuration: any CausalLMConfig { config }
    public var moeLayers: [Int] { (0..<config.numHiddenLayers).filter(config.isMoELayer) }
    public var routedExperts: Int { config.nRoutedExperts }
    public var expertsPerToken: Int { config.numExpertsPerTok }
    public func correctionBias(layer: Int) -> Tensor? { parameters[Glm4MoeWeights.correctionBias(layer)] }
    public func makeCache(batch: Int, capacity: Int) -> KVCache {
        KVCache(layers: config.numHiddenLayers, width: config.keyValueWidth, batch: batch, capacity: capacity)
    }
}
