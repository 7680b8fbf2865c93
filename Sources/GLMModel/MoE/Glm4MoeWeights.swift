// Tensor names and shapes of a glm4_moe checkpoint exactly as transformers 5.23 writes them (reference/glm4-moe.md
// §3): per-expert `mlp.experts.{e}.{gate,up,down}_proj.weight` (save_pretrained's original format), also read in
// the fused in-memory form (`mlp.experts.gate_up_proj` [E, 2I, H], `mlp.experts.down_proj` [E, H, I]) and split
// per expert; the router's `e_score_correction_bias` buffer; optional MTP layers after the main layers (kept and
// written back, not used by the forward pass). Strict checking, random initialisation, adaptable linears.
import GLMCore

public enum Glm4MoeWeights {
    public static let embedTokens = GLMWeights.embedTokens
    public static let finalNorm = GLMWeights.finalNorm
    public static let lmHead = GLMWeights.lmHead

    public static func layerPrefix(_ i: Int) -> String { GLMWeights.layerPrefix(i) }
    /// `model.layers.{l}.mlp.experts.{e}.`
    public static func expertPrefix(_ l: Int, _ e: Int) -> String { layerPrefix(l) + "mlp.experts.\(e)." }
    /// `model.layers.{l}.mlp.gate.e_score_correction_bias` (a buffer: saved, never trained by gradient).
    public static func correctionBias(_ l: Int) -> String { layerPrefix(l) + "mlp.gate.e_score_correction_bias" }
    public static func routerWeight(_ l: Int) -> String { layerPrefix(l) + "mlp.gate.weight" }

    /// Largest `routed experts × MoE layers` accepted (tensor bookkeeping stays bounded on hostile configs).
    public static let maxExpertMatrices = 1 << 20

    /// The tensors of one decoder layer `l` (MoE when `moe`), in a stable order.
    static func layerShapes(_ c: Glm4MoeConfig, _ l: Int, moe: Bool) -> [(name: String, shape: [Int])] {
        let (h, q, kv, d) = (c.hiddenSize, c.queryWidth, c.keyValueWidth, c.headDim)
        let p = layerPrefix(l)
        var out: [(String, [Int])] = [(p + "input_layernorm.weight", [h]),
                                      (p + "self_attn.q_proj.weight", [q, h]),
                                      (p + "self_attn.k_proj.weight", [kv, h]),
                                      (p + "self_attn.v_proj.weight", [kv, h])]
        if c.attentionBias {
            out += [(p + "self_attn.q_proj.bias", [q]), (p + "self_attn.k_proj.bias", [kv]), (p + "self_attn.v_proj.bias", [kv])]
        }
        out.append((p + "self_attn.o_proj.weight", [h, q]))
        if c.useQkNorm { out += [(p + "self_attn.q_norm.weight", [d]), (p + "self_attn.k_norm.weight", [d])] }
        out.append((p + "post_attention_layernorm.weight", [h]))
        if moe {
            let (e, im, si) = (c.nRoutedExperts, c.moeIntermediateSize, c.sharedIntermediateSize)
            out += [(routerWeight(l), [e, h]), (correctionBias(l), [e])]
            for x in 0..<e {
                let ep = expertPrefix(l, x)
                out += [(ep + "gate_proj.weight", [im, h]), (ep + "up_proj.weight", [im, h]), (ep + "down_proj.weight", [h, im])]
            }
            if si > 0 {
                out += [(p + "mlp.shared_experts.gate_proj.weight", [si, h]), (p + "mlp.shared_experts.up_proj.weight", [si, h]),
                        (p + "mlp.shared_experts.down_proj.weight", [h, si])]
            }
        } else {
            let i = c.intermediateSize
            out += [(p + "mlp.gate_proj.weight", [i, h]), (p + "mlp.up_proj.weight", [i, h]), (p + "mlp.down_proj.weight", [h, i])]
        }
        return out
    }

    /// Every tensor the main model needs, with its shape (`lm_head.weight` only when untied). Empty when the config
    /// asks for more than `maxExpertMatrices` expert matrices (validate reports that first).
    public static func expectedShapes(_ c: Glm4MoeConfig) -> [(name: String, shape: [Int])] {
        guard expertMatricesFit(c) else { return [] }
        var out: [(String, [Int])] = [(embedTokens, [c.vocabSize, c.hiddenSize])]
        for l in 0..<c.numHiddenLayers { out += layerShapes(c, l, moe: c.isMoELayer(l)) }
        out.append((finalNorm, [c.hiddenSize]))
        if !c.tieWordEmbeddings { out.append((lmHead, [c.vocabSize, c.hiddenSize])) }
        return out
    }

    static func expertMatricesFit(_ c: Glm4MoeConfig) -> Bool {
        let moeLayers = max(0, c.numHiddenLayers - max(0, c.firstKDenseReplace)) + max(0, c.numNextnPredictLayers)
        let (n, o) = moeLayers.multipliedReportingOverflow(by: max(0, c.nRoutedExperts))
        return !o && n <= maxExpertMatrices
    }

    /// The tensors of MTP layer `l` (`numHiddenLayers ≤ l`): a MoE decoder layer plus eh_proj, enorm, hnorm and
    /// shared_head.norm (required) and shared_head.head, embed_tokens (optional; absent in some checkpoints).
    public static func mtpShapes(_ c: Glm4MoeConfig, _ l: Int) -> (required: [(name: String, shape: [Int])], optional: [(name: String, shape: [Int])]) {
        let (h, p) = (c.hiddenSize, layerPrefix(l))
        let required = layerShapes(c, l, moe: true) + [(p + "eh_proj.weight", [h, 2 * h]), (p + "enorm.weight", [h]),
                                                        (p + "hnorm.weight", [h]), (p + "shared_head.norm.weight", [h])]
        return (required, [(p + "shared_head.head.weight", [c.vocabSize, h]), (p + "embed_tokens.weight", [c.vocabSize, h])])
    }

    /// The checked weight set: `main` (the model's tensors, per-expert, including the correction biases) and `mtp`
    /// (MTP layer tensors, when the checkpoint has them). Accepted: per-expert or fused expert tensors, a tied
    /// `lm_head.weight` equal to the embedding (dropped), rotary `inv_freq` buffers (dropped). A missing,
    /// unexpected or misshapen tensor is a one-line error naming it and the expected shape.
    public static func validated(_ weights: [String: Tensor], config c: Glm4MoeConfig) throws
        -> (main: [String: Tensor], mtp: [String: Tensor]) {
        try c.validate(source: "config.json")
        var w = weights.filter { !$0.key.hasSuffix("rotary_emb.inv_freq") }
        let kind = "glm4_moe model with \(c.numHiddenLayers) layers (\(c.firstKDenseReplace) dense), \(c.nRoutedExperts) routed experts"
        if c.tieWordEmbeddings, let head = w[lmHead] {
            guard let embed = w[embedTokens], head.bitwiseEqual(embed) else {
                throw GLMError("\(lmHead): present but tie_word_embeddings is true and it differs from \(embedTokens); expected no lm_head.weight")
            }
            w[lmHead] = nil
        }
        try unfuseExperts(&w, c)
        // A shared expert of width 0 (n_shared_experts 0): transformers still has the (empty) Linear layers.
        if c.sharedIntermediateSize == 0 {
            for (name, t) in w where name.contains(".mlp.shared_experts.") && t.count == 0 { w[name] = nil }
        }
        var expected = expectedShapes(c)
        // MTP layers: all of a layer's required tensors or none of them.
        var mtp: [String: Tensor] = [:]
        for l in c.numHiddenLayers..<(c.numHiddenLayers + c.numNextnPredictLayers) {
            let shapes = mtpShapes(c, l)
            let present = shapes.required.filter { w[$0.name] != nil }
            if present.isEmpty { continue }
            expected += shapes.required + shapes.optional.filter { w[$0.name] != nil }
            for (name, _) in shapes.required + shapes.optional { if let t = w[name] { mtp[name] = t } }
        }
        let missing = expected.filter { w[$0.name] == nil }
        if let first = missing.first {
            let more = missing.count > 1 ? "; \(missing.count - 1) more tensors missing" : ""
            throw GLMError("\(first.name): missing; expected shape \(first.shape) for a \(kind)\(more)")
        }
        let known = Set(expected.map(\.name))
        let unexpected = w.keys.filter { !known.contains($0) }.sorted()
        if let first = unexpected.first {
            let more = unexpected.count > 1 ? "; \(unexpected.count - 1) more unexpected tensors" : ""
            throw GLMError("\(first): unexpected tensor for a \(kind), attention_bias \(c.attentionBias), use_qk_norm \(c.useQkNorm), n_shared_experts \(c.nSharedExperts), tie_word_embeddings \(c.tieWordEmbeddings), num_nextn_predict_layers \(c.numNextnPredictLayers)\(more)")
        }
        for (name, shape) in expected where w[name]!.shape != shape {
            throw GLMError("\(name): shape \(w[name]!.shape); expected \(shape)")
        }
        for name in mtp.keys { w[name] = nil }
        return (w, mtp)
    }

    /// Splits fused expert tensors (`mlp.experts.gate_up_proj` [E, 2I, H], rows < I the gate; `mlp.experts.down_proj`
    /// [E, H, I]) into the per-expert tensors, keeping bf16 storage bf16. Both forms at once is an error.
    static func unfuseExperts(_ w: inout [String: Tensor], _ c: Glm4MoeConfig) throws {
        let (e, im, h) = (c.nRoutedExperts, c.moeIntermediateSize, c.hiddenSize)
        for l in 0..<(c.numHiddenLayers + c.numNextnPredictLayers) {
            let base = layerPrefix(l) + "mlp.experts."
            let gu = w.removeValue(forKey: base + "gate_up_proj"), down = w.removeValue(forKey: base + "down_proj")
            if gu == nil && down == nil { continue }
            guard let gu, let down else {
                throw GLMError("\(base)\(gu == nil ? "gate_up_proj" : "down_proj"): missing; the fused expert form needs both gate_up_proj [\(e), \(2 * im), \(h)] and down_proj [\(e), \(h), \(im)]")
            }
            guard gu.shape == [e, 2 * im, h] else { throw GLMError("\(base)gate_up_proj: shape \(gu.shape); expected \([e, 2 * im, h])") }
            guard down.shape == [e, h, im] else { throw GLMError("\(base)down_proj: shape \(down.shape); expected \([e, h, im])") }
            if let clash = w.keys.first(where: { $0.hasPrefix(base) }) {
                throw GLMError("\(clash): per-expert tensor beside the fused \(base)gate_up_proj; give one form")
            }
            func part(_ t: Tensor, _ start: Int, _ shape: [Int]) -> Tensor {
                let n = shape.reduce(1, *)
                if let bits = t.bf16Bits { return Tensor(bf16Bits: bits + start, shape: shape) }
                let out = Tensor(uninitialized: shape)
                out.pointer.update(from: t.pointer + start, count: n)
                return out
            }
            for x in 0..<e {
                let ep = base + "\(x)."
                w[ep + "gate_proj.weight"] = part(gu, x * 2 * im * h, [im, h])
                w[ep + "up_proj.weight"] = part(gu, x * 2 * im * h + im * h, [im, h])
                w[ep + "down_proj.weight"] = part(down, x * h * im, [h, im])
            }
            withExtendedLifetime((gu, down)) {}
        }
    }

    /// Freshly initialised weights as transformers' `_init_weights` makes them: linear, router and embedding
    /// weights Normal(0, initializer_range), the padding row zero, biases and the correction bias zero, norms one.
    public static func randomInit(_ c: Glm4MoeConfig, seed: UInt64) -> [String: Tensor] {
        let out = randomTensors(expectedShapes(c), c, seed: seed)
        if let pad = c.padTokenId, let e = out[embedTokens] {
            (e.pointer + pad * c.hiddenSize).update(repeating: 0, count: c.hiddenSize)
        }
        return out
    }

    /// Tensors of `shapes` initialised as `randomInit` does (norms one, biases zero, the rest Normal(0, std)).
    static func randomTensors(_ shapes: [(name: String, shape: [Int])], _ c: Glm4MoeConfig, seed: UInt64) -> [String: Tensor] {
        var gen = SeededGenerator(seed: seed)
        var out: [String: Tensor] = [:]
        let std = Float(c.initializerRange == 0 ? 0.02 : c.initializerRange)
        for (name, shape) in shapes {
            if name.hasSuffix("norm.weight") {
                out[name] = Tensor(repeating: 1, shape: shape)
            } else if name.hasSuffix(".bias") || name.hasSuffix("e_score_correction_bias") {
                out[name] = Tensor(zeros: shape)
            } else {
                out[name] = Tensor.randomNormal(shape, std: std, generator: &gen)
            }
        }
        return out
    }

    /// The adaptable linears: q/k/v/o of every layer, the dense MLP's gate/up/down projections, the shared
    /// experts' (`mlp.shared_experts.gate_proj`, ...) and every routed expert's (`mlp.experts.{e}.gate_proj`, ...,
    /// kind `.expert`: the per-expert modules of the transformers-4 layout, which PEFT's `target_modules` names
    /// matched), with llama.cpp's tensor names: per module, and for the routed experts their slot in llama.cpp's
    /// stacked `blk.N.ffn_{gate,up,down}_exps`. The router is not declared.
    public static func adaptableLinears(_ c: Glm4MoeConfig) -> [AdaptableLinear] {
        let (h, q, kv) = (c.hiddenSize, c.queryWidth, c.keyValueWidth)
        return (0..<c.numHiddenLayers).flatMap { l -> [AdaptableLinear] in
            let p = layerPrefix(l)
            var out = [AdaptableLinear(module: p + "self_attn.q_proj", target: "q_proj", layer: l, shape: [q, h], kind: .attention, gguf: "blk.\(l).attn_q"),
                       AdaptableLinear(module: p + "self_attn.k_proj", target: "k_proj", layer: l, shape: [kv, h], kind: .attention, gguf: "blk.\(l).attn_k"),
                       AdaptableLinear(module: p + "self_attn.v_proj", target: "v_proj", layer: l, shape: [kv, h], kind: .attention, gguf: "blk.\(l).attn_v"),
                       AdaptableLinear(module: p + "self_attn.o_proj", target: "o_proj", layer: l, shape: [h, q], kind: .attention, gguf: "blk.\(l).attn_output")]
            let (path, width, suffix) = c.isMoELayer(l) ? ("mlp.shared_experts.", c.sharedIntermediateSize, "_shexp") : ("mlp.", c.intermediateSize, "")
            if width > 0 {
                out += [AdaptableLinear(module: p + path + "gate_proj", target: "gate_proj", layer: l, shape: [width, h], kind: .mlp, gguf: "blk.\(l).ffn_gate\(suffix)"),
                        AdaptableLinear(module: p + path + "up_proj", target: "up_proj", layer: l, shape: [width, h], kind: .mlp, gguf: "blk.\(l).ffn_up\(suffix)"),
                        AdaptableLinear(module: p + path + "down_proj", target: "down_proj", layer: l, shape: [h, width], kind: .mlp, gguf: "blk.\(l).ffn_down\(suffix)")]
            }
            if c.isMoELayer(l) {
                let im = c.moeIntermediateSize
                for e in 0..<c.nRoutedExperts {
                    let ep = expertPrefix(l, e)
                    func slot(_ name: String) -> GGUFStackSlot { GGUFStackSlot(tensor: "blk.\(l).ffn_\(name)_exps", index: e, count: c.nRoutedExperts) }
                    out += [AdaptableLinear(module: ep + "gate_proj", target: "gate_proj", layer: l, shape: [im, h], kind: .expert, ggufStack: slot("gate")),
                            AdaptableLinear(module: ep + "up_proj", target: "up_proj", layer: l, shape: [im, h], kind: .expert, ggufStack: slot("up")),
                            AdaptableLinear(module: ep + "down_proj", target: "down_proj", layer: l, shape: [h, im], kind: .expert, ggufStack: slot("down"))]
                }
            }
            return out
        }
    }
}
