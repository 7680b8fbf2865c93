// Tensor names and shapes of a GLM model exactly as transformers writes them (reference/glm.md §B.4), strict
// checking of a weight set against a config, the legacy THUDM chatglm renaming (§B.5), and random initialisation.
import Foundation
import GLMCore

/// The Hugging Face tensor naming of GLM models.
public enum GLMWeights {
    public static let embedTokens = "model.embed_tokens.weight"
    public static let finalNorm = "model.norm.weight"
    public static let lmHead = "lm_head.weight"

    /// `model.layers.{i}.`
    public static func layerPrefix(_ i: Int) -> String { "model.layers.\(i)." }

    /// Every tensor the config needs, in a stable order, with its shape (`lm_head.weight` only when untied).
    public static func expectedShapes(_ c: GLMConfig) -> [(name: String, shape: [Int])] {
        let (h, q, kv, i) = (c.hiddenSize, c.queryWidth, c.keyValueWidth, c.intermediateSize)
        var out: [(String, [Int])] = [(embedTokens, [c.vocabSize, h])]
        for l in 0..<c.numHiddenLayers {
            let p = layerPrefix(l)
            out.append((p + "input_layernorm.weight", [h]))
            out.append((p + "self_attn.q_proj.weight", [q, h]))
            out.append((p + "self_attn.k_proj.weight", [kv, h]))
            out.append((p + "self_attn.v_proj.weight", [kv, h]))
            if c.attentionBias {
                out.append((p + "self_attn.q_proj.bias", [q]))
                out.append((p + "self_attn.k_proj.bias", [kv]))
                out.append((p + "self_attn.v_proj.bias", [kv]))
            }
            out.append((p + "self_attn.o_proj.weight", [h, q]))
            out.append((p + "post_attention_layernorm.weight", [h]))
            out.append((p + "mlp.gate_up_proj.weight", [2 * i, h]))
            out.append((p + "mlp.down_proj.weight", [h, i]))
            if c.modelType == .glm4 {
                out.append((p + "post_self_attn_layernorm.weight", [h]))
                out.append((p + "post_mlp_layernorm.weight", [h]))
            }
        }
        out.append((finalNorm, [h]))
        if !c.tieWordEmbeddings { out.append((lmHead, [c.vocabSize, h])) }
        return out
    }

    /// Checks `weights` against `config` and returns the set the model holds: legacy chatglm names are converted,
    /// rotary `inv_freq` buffers dropped, and a tied `lm_head.weight` (equal to the embedding) dropped. A missing,
    /// unexpected or wrongly shaped tensor is a one-line error naming it and the expected shape.
    public static func validated(_ weights: [String: Tensor], config: GLMConfig) throws -> [String: Tensor] {
        var w = weights.filter { !$0.key.hasSuffix("rotary_pos_emb.inv_freq") && !$0.key.hasSuffix("rotary_emb.inv_freq") }
        var origin: [String: String] = [:]
        if w.keys.contains(where: { $0.hasPrefix("transformer.") }) {
            (w, origin) = try convertLegacy(w, config: config)
        }
        func label(_ name: String) -> String { origin[name].map { "\(name) (from \($0))" } ?? name }
        if config.tieWordEmbeddings, let head = w[lmHead] {
            guard let embed = w[embedTokens], head.bitwiseEqual(embed) else {
                throw GLMError("\(label(lmHead)): present but tie_word_embeddings is true and it differs from \(embedTokens); expected no lm_head.weight")
            }
            w[lmHead] = nil
        }
        let expected = expectedShapes(config)
        let missing = expected.filter { w[$0.name] == nil }
        if let first = missing.first {
            let more = missing.count > 1 ? "; \(missing.count - 1) more tensors missing" : ""
            throw GLMError("\(first.name): missing; expected shape \(first.shape) for a \(config.modelType.rawValue) model\(more)")
        }
        let known = Set(expected.map(\.name))
        let unexpected = w.keys.filter { !known.contains($0) }.sorted()
        if let first = unexpected.first {
            let more = unexpected.count > 1 ? "; \(unexpected.count - 1) more unexpected tensors" : ""
            throw GLMError("\(label(first)): unexpected tensor for a \(config.modelType.rawValue) model with \(config.numHiddenLayers) layers, attention_bias \(config.attentionBias), tie_word_embeddings \(config.tieWordEmbeddings)\(more)")
        }
        for (name, shape) in expected where w[name]!.shape != shape {
            throw GLMError("\(label(name)): shape \(w[name]!.shape); expected \(shape)")
        }
        return w
    }

    /// Renames legacy `transformer.*` tensors to the HF names (in the rename order of convert_glm_weights_to_hf) and
    /// splits each `query_key_value` by rows into q/k/v. Returns the new set and each new name's legacy name.
    public static func convertLegacy(_ weights: [String: Tensor], config c: GLMConfig) throws
        -> (weights: [String: Tensor], origin: [String: String]) {
        let renames = [("transformer.output_layer.", "lm_head."), ("transformer.", "model."),
                       (".embedding.word_embeddings.", ".embed_tokens."), (".encoder.final_layernorm.", ".norm."),
                       (".encoder.layers.", ".layers."), ("self_attention.", "self_attn."), ("query_key_value.", "qkv_proj."),
                       ("dense.", "o_proj."), ("dense_h_to_4h.", "gate_up_proj."), ("dense_4h_to_h.", "down_proj.")]
        var out: [String: Tensor] = [:], origin: [String: String] = [:]
        for (old, t) in weights {
            var name = old
            for (a, b) in renames { name = name.replacingOccurrences(of: a, with: b) }
            guard let r = name.range(of: ".qkv_proj.") else {
                out[name] = t; origin[name] = old
                continue
            }
            let (q, kv) = (c.queryWidth, c.keyValueWidth)
            let rows = q + 2 * kv
            guard t.rank >= 1, t.shape[0] == rows, t.rank == 1 || t.shape == [rows, c.hiddenSize] else {
                throw GLMError("\(old): shape \(t.shape); expected [\(rows)\(old.hasSuffix(".bias") ? "" : ", \(c.hiddenSize)")] (q \(q) + k \(kv) + v \(kv) rows)")
            }
            let stem = String(name[..<r.lowerBound]) + ".", kind = String(name[r.upperBound...])
            let parts = Autograd.noGrad {
                [("q_proj", 0, q), ("k_proj", q, kv), ("v_proj", q + kv, kv)].map { (proj, start, length) -> (String, Tensor) in
                    if let bits = t.bf16Bits, t.rank == 2 {  // keep a bf16 matrix bf16 (no widening)
                        return (proj, Tensor(bf16Bits: bits + start * t.shape[1], shape: [length, t.shape[1]]))
                    }
                    return (proj, t.slice(axis: 0, start: start, length: length))
                }
            }
            for (proj, part) in parts {
                out[stem + proj + "." + kind] = part
                origin[stem + proj + "." + kind] = old
            }
        }
        return (out, origin)
    }

    /// Freshly initialised weights as transformers' `_init_weights` makes them: linear and embedding weights
    /// Normal(0, initializer_range), the padding row of the embedding zero, biases zero, norm weights one.
    public static func randomInit(_ c: GLMConfig, seed: UInt64) -> [String: Tensor] {
        var gen = SeededGenerator(seed: seed)
        var out: [String: Tensor] = [:]
        // `std = self.config.initializer_range or 0.02` (PreTrainedModel._init_weights): 0 means the default.
        let std = Float(c.initializerRange == 0 ? 0.02 : c.initializerRange)
        for (name, shape) in expectedShapes(c) {
            if name.hasSuffix("norm.weight") {
                out[name] = Tensor(repeating: 1, shape: shape)
            } else if name.hasSuffix(".bias") {
                out[name] = Tensor(zeros: shape)
            } else {
                out[name] = Tensor.randomNormal(shape, std: std, generator: &gen)
            }
        }
        if let pad = c.padTokenId, let e = out[embedTokens] {
            (e.pointer + pad * c.hiddenSize).update(repeating: 0, count: c.hiddenSize)
        }
        return out
    }
}
