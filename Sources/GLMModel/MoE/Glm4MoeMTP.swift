// glm4_moe's MTP layer (`model.layers.{num_hidden_layers}.*`, reference/glm4-moe.md §4), as transformers' MtpLayer
// and vLLM's glm4_moe_mtp.py compute it:
//   u  = eh_proj([enorm(e_{t+1}); hnorm(h_t)])      embedding first, h_t the main model's final (post-norm) state
//   h' = DecoderLayer(u)                            always a MoE layer (transformers' get_mtp_config sets
//                                                   first_k_dense_replace 0; the checkpoint's tensors are a MoE's)
//   logits = head(shared_head.norm(h'))             head = shared_head.head when present, else lm_head
// The embedding is the layer's own `embed_tokens.weight` when the checkpoint has one, else the main model's. Only
// the first MTP layer is used (GLM-4.5 has one); further ones are kept and written back.
import GLMCore

/// The bound weights of an MTP layer.
struct MTPLayer {
    let index: Int
    let block: Glm4MoeForCausalLM.Layer
    let enorm, hnorm, ehProj, headNorm: Tensor
    let head, embedding: Tensor?

    /// The first MTP layer of `p`, nil when the checkpoint has none.
    init?(binding p: [String: Tensor], config c: Glm4MoeConfig) {
        let l = c.numHiddenLayers, s = Glm4MoeWeights.layerPrefix(l)
        guard c.numNextnPredictLayers > 0, let eh = p[s + "eh_proj.weight"] else { return nil }
        index = l
        block = Glm4MoeForCausalLM.bindLayer(l, p, c, moe: true)
        (enorm, hnorm, ehProj, headNorm) = (p[s + "enorm.weight"]!, p[s + "hnorm.weight"]!, eh, p[s + "shared_head.norm.weight"]!)
        (head, embedding) = (p[s + "shared_head.head.weight"], p[s + "embed_tokens.weight"])
    }
}

extension Glm4MoeForCausalLM: MultiTokenPredictionModel {
    public var hasMTPLayer: Bool { mtpLayer != nil }

    public var mtpHead: Tensor {
        precondition(mtpLayer != nil, "this glm4_moe model has no MTP layer")
        return mtpLayer!.head ?? lmHead
    }

    public func makeMTPCache(batch: Int, capacity: Int) -> KVCache {
        KVCache(layers: 1, width: config.keyValueWidth, batch: batch, capacity: capacity)
    }

    public func initializeMTPLayer(seed: UInt64) throws {
        let l = config.numHiddenLayers
        guard !hasMTPLayer else { throw GLMError("this glm4_moe model already has an MTP layer (\(Glm4MoeWeights.layerPrefix(l))*)") }
        guard config.numNextnPredictLayers > 0 else {
            throw GLMError("config.json: num_nextn_predict_layers is 0; an MTP layer needs num_nextn_predict_layers ≥ 1")
        }
        for (name, t) in Glm4MoeWeights.randomTensors(Glm4MoeWeights.mtpShapes(config, l).required, config, seed: seed) {
            mtpTensors[name] = t
        }
        bindMTPLayer()
    }

    public func trainMTPLayer() throws {
        guard hasMTPLayer else {
            throw GLMError("this glm4_moe model has no MTP layer (\(Glm4MoeWeights.layerPrefix(config.numHiddenLayers))eh_proj.weight, ...; num_nextn_predict_layers \(config.numNextnPredictLayers))")
        }
        let prefix = Glm4MoeWeights.layerPrefix(config.numHiddenLayers)
        for (name, t) in mtpTensors where name.hasPrefix(prefix) {
            parameters[name] = t
            mtpTensors[name] = nil
        }
        bindMTPLayer()
    }

    public func mtpHiddenStates(hidden: Tensor, nextIds: [Int32], batch B: Int, length T: Int, positions: [Int32]? = nil,
                                mask: AttentionMask? = nil, cache: KVCache? = nil, firstPosition: MTPFirstPosition = .keep) -> Tensor {
        guard let mtp = mtpLayer else { preconditionFailure("this glm4_moe model has no MTP layer") }
        let c = config, H = c.hiddenSize, eps = Float(c.rmsNormEps)
        precondition(nextIds.count == B * T && hidden.count == B * T * H, "mtpHiddenStates: \(nextIds.count) ids and hidden \(hidden.shape) for batch \(B) × length \(T)")
        let past = cache?.length ?? 0
        if let cache {
            precondition(!Autograd.isRecording, "a forward pass with a KV cache must run inside Autograd.noGrad")
            precondition(cache.batch == B && cache.layers == 1 && cache.width == c.keyValueWidth, "MTP cache made for another batch size or model")
            cache.reserve(past + T)
        }
        let pos: [Int32]
        if let positions {
            precondition(positions.count == B * T || positions.count == T, "mtpHiddenStates: \(positions.count) positions for batch \(B) × length \(T)")
            pos = positions.count == B * T ? positions : (0..<(B * T)).map { positions[$0 % T] }
        } else {
            pos = (0..<(B * T)).map { Int32(past + $0 % T) }
        }
        let S = past + T
        let mask = mask ?? .causal(batch: B, queries: T, keys: S)
        var e = Tensor.embedding(mtp.embedding ?? embedding, ids: nextIds, idsShape: [B, T], paddingIndex: c.padTokenId)
        if firstPosition == .zeroEmbedding, pos.contains(0) {
            var keep = [Float](repeating: 1, count: B * T * H)
            for (r, p) in pos.enumerated() where p == 0 { for j in 0..<H { keep[r * H + j] = 0 } }
            e = e * Tensor(keep, shape: [B, T, H])
        }
        let joined = Tensor.concat([Tensor.rmsNorm(e, weight: mtp.enorm, eps: eps),
                                    Tensor.rmsNorm(hidden.reshaped([B, T, H]), weight: mtp.hnorm, eps: eps)], axis: -1)
        var x = Tensor.linear(joined, weight: mtp.ehProj)
        x = decoderLayer(x, mtp.block, index: mtp.index, cacheLayer: 0, cache: cache, positions: pos, mask: mask,
                         batch: B, length: T, keys: S)
        cache?.length = S
        return Tensor.rmsNorm(x, weight: mtp.headNorm, eps: eps)
    }
}
