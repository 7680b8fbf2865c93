// The model seam: what a causal LM declares about itself so that LoRA, export and optimizer routing can be driven
// by the model instead of fixed lists — its parameters by Hugging Face name, its adaptable linear layers and
// its GGUF architecture. A new architecture (e.g. glm4_moe) conforms beside GLMForCausalLM.
import GLMCore

/// What kind of linear layer an adaptable module is.
public enum LinearKind: String, Sendable {
    case attention, mlp, expert, router
}

/// One linear layer LoRA may adapt: its module path (`model.layers.3.self_attn.q_proj`), the target name recipes and
/// PEFT's `target_modules` use (`q_proj`), its layer, and the weight's shape (`[out, in]`; `[experts, out, in]` for
/// stacked experts).
public struct AdaptableLinear: Equatable, Sendable {
    public let module: String
    public let target: String
    public let layer: Int
    public let shape: [Int]
    public let kind: LinearKind

    public init(module: String, target: String, layer: Int, shape: [Int], kind: LinearKind) {
        self.module = module; self.target = target; self.layer = layer; self.shape = shape; self.kind = kind
    }
}

public protocol CausalLanguageModel: AnyObject {
    /// config.json's `model_type`.
    var modelTypeName: String { get }
    /// Every parameter by its Hugging Face name.
    var parameters: [String: Tensor] { get }
    /// The linear layers LoRA may adapt, layer-major.
    var adaptableLinears: [AdaptableLinear] { get }
    /// The `general.architecture` llama.cpp uses for this model.
    var ggufArchitecture: String { get }
}

extension CausalLanguageModel {
    /// The distinct target names of `adaptableLinears`, in declaration order.
    public var adaptableTargets: [String] {
        var seen = Set<String>()
        return adaptableLinears.map(\.target).filter { seen.insert($0).inserted }
    }
}

extension GLMModelType {
    /// llama.cpp's architecture name: `chatglm` for glm (ChatGLM/GLM-4-9B layout), `glm4` for glm4.
    public var ggufArchitecture: String { self == .glm4 ? "glm4" : "chatglm" }
}

extension GLMForCausalLM: CausalLanguageModel {
    public var modelTypeName: String { config.modelType.rawValue }
    public var ggufArchitecture: String { config.modelType.ggufArchitecture }
    public var adaptableLinears: [AdaptableLinear] { GLMWeights.adaptableLinears(config) }
}

extension GLMWeights {
    /// The adaptable linear modules of one GLM / GLM-4 layer: sub-module path, target name, weight shape `[out, in]`
    /// and kind — q/k/v/o projections and the fused gate_up and down MLP projections.
    public static func layerLinears(_ c: GLMConfig) -> [(path: String, target: String, shape: [Int], kind: LinearKind)] {
        let (h, q, kv, i) = (c.hiddenSize, c.queryWidth, c.keyValueWidth, c.intermediateSize)
        return [("self_attn.", "q_proj", [q, h], .attention), ("self_attn.", "k_proj", [kv, h], .attention),
                ("self_attn.", "v_proj", [kv, h], .attention), ("self_attn.", "o_proj", [h, q], .attention),
                ("mlp.", "gate_up_proj", [2 * i, h], .mlp), ("mlp.", "down_proj", [h, i], .mlp)]
    }

    /// The adaptable linears of every layer (`layerLinears`, layer-major).
    public static func adaptableLinears(_ c: GLMConfig) -> [AdaptableLinear] {
        let modules = layerLinears(c)
        return (0..<c.numHiddenLayers).flatMap { l in
            modules.map { AdaptableLinear(module: layerPrefix(l) + $0.path + $0.target, target: $0.target, layer: l, shape: $0.shape, kind: $0.kind) }
        }
    }
}
