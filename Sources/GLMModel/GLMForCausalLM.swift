// The GLM / GLM-4 decoder with its LM head, as transformers' GlmForCausalLM / Glm4ForCausalLM compute it
// (reference/glm.md §B.2–B.3), built from GLMCore ops so that gradients flow to every parameter.
import GLMCore

/// A GLM causal language model holding its parameters under the Hugging Face names (`GLMWeights`).
///
/// Per layer: pre-norm attention (q/k/v with optional bias, interleaved partial rotary, grouped-query attention
/// scaled by head_dim^-0.5, o_proj without bias) and a gate-first SwiGLU MLP, each added to the residual; glm4
/// also normalises each sub-layer output before the add. The final RMSNorm precedes the LM head, which is the
/// embedding table when `tie_word_embeddings` is set. As in transformers, the embedding's `pad_token_id` row receives
/// no gradient from the lookup (torch's `padding_idx`); a tied LM head still updates it.
public final class GLMForCausalLM {
    public let config: GLMConfig
    /// Every parameter by HF name (no `lm_head.weight` when tied). Set `requiresGrad` on those that train.
    public private(set) var parameters: [String: Tensor]
    /// Adapted linear layers, keyed by module name without ".weight" (e.g. "model.layers.0.self_attn.q_proj"):
    /// y = f(x, weight, bias) replaces x·Wᵀ + b.
    /// LoRA's fused op (one output buffer, nothing but x and x·Aᵀ kept for backward) uses this.
    public var adaptedLinears: [String: LinearOverride] = [:]
    /// Activation recompute: each decoder layer keeps only its input during a recorded forward and runs again in
    /// the backward (`Autograd.checkpoint`); same gradients, activations of one layer at a time.
    public var recomputesActivations = false
    private var layers: [Layer] = []

    struct Layer {
        let prefix: String
        let inputNorm, q, k, v, o, postAttentionNorm, gateUp, down: Tensor
        let qBias, kBias, vBias, postSelfAttnNorm, postMLPNorm: Tensor?
    }

    /// Builds the model from named tensors, checked strictly against `config` (see `GLMWeights.validated`):
    /// legacy chatglm names are converted; a missing, unexpected or misshapen tensor throws a GLMError naming it.
    public init(config: GLMConfig, weights: [String: Tensor]) throws {
        try config.validate()
        self.config = config
        self.parameters = try GLMWeights.validated(weights, config: config)
        bindLayers()
    }

    /// A freshly initialised model (transformers' initialisation, seeded).
    public convenience init(config: GLMConfig, seed: UInt64) throws {
        try self.init(config: config, weights: GLMWeights.randomInit(config, seed: seed))
    }

    private func bindLayers() {
        let p = parameters
        layers = (0..<config.numHiddenLayers).map { l in
            let s = GLMWeights.layerPrefix(l)
            return Layer(prefix: s, inputNorm: p[s + "input_layernorm.weight"]!, q: p[s + "self_attn.q_proj.weight"]!,
                         k: p[s + "self_attn.k_proj.weight"]!, v: p[s + "self_attn.v_proj.weight"]!,
                         o: p[s + "self_attn.o_proj.weight"]!, postAttentionNorm: p[s + "post_attention_layernorm.weight"]!,
                         gateUp: p[s + "mlp.gate_up_proj.weight"]!, down: p[s + "mlp.down_proj.weight"]!,
                         qBias: p[s + "self_attn.q_proj.bias"], kBias: p[s + "self_attn.k_proj.bias"],
                         vBias: p[s + "self_attn.v_proj.bias"], postSelfAttnNorm: p[s + "post_self_attn_layernorm.weight"],
                         postMLPNorm: p[s + "post_mlp_layernorm.weight"])
        }
    }

    /// Replaces one parameter (same name and shape), e.g. with trained values.
    public func replaceParameter(_ name: String, with tensor: Tensor) throws {
        guard let old = parameters[name] else { throw GLMError("\(name): not a parameter of this \(config.modelType.rawValue) model") }
        guard old.shape == tensor.shape else { throw GLMError("\(name): shape \(tensor.shape); expected \(old.shape)") }
        parameters[name] = tensor
        bindLayers()
    }

    /// Rounds every frozen matrix parameter (rank 2, not `requiresGrad`) to bf16 storage (round-to-nearest-even, as
    /// `torch.Tensor.to(torch.bfloat16)`), halving its memory; the kernels widen it to f32 block by block. Returns
    /// the number of tensors converted. (Loading a bf16 checkpoint does this without rounding, see ModelDirectory.)
    @discardableResult
    public func storeFrozenMatricesInBF16() -> Int {
        var converted = 0
        for (name, t) in parameters where t.rank == 2 && !t.requiresGrad && t.bf16Bits == nil {
            parameters[name] = t.roundedToBF16()
            converted += 1
        }
        bindLayers()
        return converted
    }


    /// The token embedding table `[V, H]`.
    public var embedding: Tensor { parameters[GLMWeights.embedTokens]! }
    /// The output projection `[V, H]`: `lm_head.weight`, or the embedding table when tied.
    public var lmHead: Tensor { parameters[GLMWeights.lmHead] ?? embedding }


    /// Final hidden states `[B, T, H]` (after the final norm) of `ids` (`B·T`, row-major).
    /// - positions: rotary position ids, `B·T` or `T` (shared by every row); default `past ..< past+T`, where
    ///   `past` is the cache length (0 without a cache).
    /// - blockPositions: block-position ids (same layout) for a `rotary_2d` model; default 0.
    /// - mask: default causal; with a cache it must cover `past + T` keys.
    /// - cache: appends this call's keys and values and advances its length (only under `Autograd.noGrad`).
    public func hiddenStates(ids: [Int32], batch: Int, length: Int, positions: [Int32]? = nil,
                             blockPositions: [Int32]? = nil, mask: AttentionMask? = nil, cache: KVCache? = nil) -> Tensor {
        let (B, T) = (batch, length)
        precondition(B > 0 && T > 0 && ids.count == B * T, "hiddenStates: \(ids.count) ids for batch \(B) × length \(T)")
        let past = cache?.length ?? 0
        if let cache {
            precondition(!Autograd.isRecording, "a forward pass with a KV cache must run inside Autograd.noGrad")
            precondition(cache.batch == B && cache.layers == config.numHiddenLayers && cache.width == config.keyValueWidth,
                         "KV cache made for another batch size or model")
            cache.reserve(past + T)
        }
        func perToken(_ given: [Int32]?, _ name: String, default value: (Int) -> Int32) -> [Int32] {
            guard let given else { return (0..<(B * T)).map { value($0 % T) } }
            if given.count == B * T { return given }
            precondition(given.count == T, "hiddenStates: \(given.count) \(name) for batch \(B) × length \(T)")
            return (0..<(B * T)).map { given[$0 % T] }
        }
        let pos = perToken(positions, "positions") { Int32(past + $0) }
        precondition(blockPositions == nil || config.rotary2D, "block positions need a rotary_2d model")
        let blocks = config.rotary2D ? perToken(blockPositions, "block positions") { _ in 0 } : nil
        let S = past + T
        let mask = mask ?? .causal(batch: B, queries: T, keys: S)
        precondition(mask.batch == B && mask.queries == T && mask.keys == S,
                     "mask \(mask.batch)×\(mask.queries)×\(mask.keys) does not match batch \(B), \(T) queries, \(S) keys")
        let rotary = config.rotary, eps = Float(config.rmsNormEps)
        // nn.Embedding(vocab, hidden, padding_idx=pad_token_id): the pad row gets no gradient from the lookup.
        var x = Tensor.embedding(embedding, ids: ids, idsShape: [B, T], paddingIndex: config.padTokenId)
        // One decoder layer: x → x + attention(norm(x)) → … + mlp(norm(…)) (GLM-4 adds the sandwich norms).
        func decoderLayer(_ l: Int, _ layer: Layer, _ x: Tensor) -> Tensor {
            // Attention sub-layer.
            let h = Tensor.rmsNorm(x, weight: layer.inputNorm, eps: eps)
            var q = project(h, layer.prefix + "self_attn.q_proj", layer.q, layer.qBias)
            var k = project(h, layer.prefix + "self_attn.k_proj", layer.k, layer.kBias)
            var v = project(h, layer.prefix + "self_attn.v_proj", layer.v, layer.vBias)
            q = Tensor.rotary(q, config: rotary, positions: pos, blockPositions: blocks)
            k = Tensor.rotary(k, config: rotary, positions: pos, blockPositions: blocks)
            var rowsPerBatch = T
            if let cache {
                cache.write(layer: l, k: k, v: v, tokens: T)
                (k, v, rowsPerBatch) = (cache.keys[l], cache.values[l], cache.capacity)
            }
            let shape = AttentionShape(batch: B, queries: T, keys: S, heads: config.numAttentionHeads,
                                       kvHeads: config.numKeyValueHeads, headDim: config.headDim, keyRowsPerBatch: rowsPerBatch)
            let a = Tensor.attention(q: q, k: k, v: v, shape: shape, mask: mask)
            var o = project(a, layer.prefix + "self_attn.o_proj", layer.o, nil)
            if let n = layer.postSelfAttnNorm { o = Tensor.rmsNorm(o, weight: n, eps: eps) }
            let x = x + o
            // MLP sub-layer.
            let m = Tensor.rmsNorm(x, weight: layer.postAttentionNorm, eps: eps)
            let gateUp = project(m, layer.prefix + "mlp.gate_up_proj", layer.gateUp, nil)
            var d = project(Tensor.swiglu(gateUp), layer.prefix + "mlp.down_proj", layer.down, nil)
            if let n = layer.postMLPNorm { d = Tensor.rmsNorm(d, weight: n, eps: eps) }
            return x + d
        }
        for (l, layer) in layers.enumerated() {
            if recomputesActivations && cache == nil {
                x = Autograd.checkpoint(x) { decoderLayer(l, layer, $0) }
            } else {
                x = decoderLayer(l, layer, x)
            }
        }
        cache?.length = S
        return Tensor.rmsNorm(x, weight: parameters[GLMWeights.finalNorm]!, eps: eps)
    }

    private func project(_ x: Tensor, _ module: String, _ weight: Tensor, _ bias: Tensor?) -> Tensor {
        if !adaptedLinears.isEmpty, let linear = adaptedLinears[module] { return linear(x, weight, bias) }
        return Tensor.linear(x, weight: weight, bias: bias)
    }
}
