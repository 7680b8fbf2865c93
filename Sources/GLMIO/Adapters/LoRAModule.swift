// The linear modules of a GLM decoder layer that LoRA adapters attach to, their shapes, and the PEFT tensor
// names of their A and B matrices.
import Foundation
import GLMCore
import GLMModel

/// A linear projection of a GLM decoder layer (the Hugging Face module names; PEFT's `all-linear` is all six).
public enum LoRAModule: String, CaseIterable, Sendable, Comparable {
    case qProj = "q_proj", kProj = "k_proj", vProj = "v_proj", oProj = "o_proj"
    case gateUpProj = "gate_up_proj", downProj = "down_proj"

    /// "self_attn.q_proj", "mlp.gate_up_proj", ...
    public var path: String {
        switch self {
        case .qProj, .kProj, .vProj, .oProj: return "self_attn." + rawValue
        case .gateUpProj, .downProj: return "mlp." + rawValue
        }
    }

    /// The module name in the model, e.g. "model.layers.3.self_attn.q_proj" (the key of `GLMForCausalLM.adaptedLinears`).
    public func moduleName(layer: Int) -> String { GLMWeights.layerPrefix(layer) + path }

    /// `[out, in]` of the base weight.
    public func weightShape(_ c: GLMConfig) -> [Int] {
        GLMWeights.layerLinears(c).first { $0.target == rawValue }!.shape  // the model's declaration
    }

    /// llama.cpp's GGUF tensor base name (`blk.N.<name>.weight`): gate_up_proj is GGUF's fused ffn_up.
    public var ggufName: String {
        switch self {
        case .qProj: return "attn_q"
        case .kProj: return "attn_k"
        case .vProj: return "attn_v"
        case .oProj: return "attn_output"
        case .gateUpProj: return "ffn_up"
        case .downProj: return "ffn_down"
        }
    }

    /// Canonical order (q, k, v, o, gate_up, down).
    public static func < (a: LoRAModule, b: LoRAModule) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The PEFT tensor name without the "base_model.model." prefix:
    /// "model.layers.N.self_attn.q_proj.lora_A.weight" (`isB`: lora_B).
    public static func tensorName(layer: Int, module: LoRAModule, isB: Bool) -> String {
        module.moduleName(layer: layer) + (isB ? ".lora_B.weight" : ".lora_A.weight")
    }

    /// Parses a tensor name of the form `tensorName` returns: (layer, module, isB), or nil.
    public static func parse(tensorName name: String) -> (layer: Int, module: LoRAModule, isB: Bool)? {
        let isB: Bool
        var stem = Substring(name)
        if stem.hasSuffix(".lora_A.weight") { isB = false } else if stem.hasSuffix(".lora_B.weight") { isB = true } else { return nil }
        stem = stem.dropLast(".lora_A.weight".count)
        guard let (layer, module) = parse(moduleName: String(stem)) else { return nil }
        return (layer, module, isB)
    }

    /// Parses "model.layers.N.self_attn.q_proj" into (N, .qProj).
    public static func parse(moduleName name: String) -> (layer: Int, module: LoRAModule)? {
        let prefix = "model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0,
              String(layer) == rest[..<dot] else { return nil }
        let path = String(rest[rest.index(after: dot)...])
        guard let module = allCases.first(where: { $0.path == path }) else { return nil }
        return (layer, module)
    }
}
