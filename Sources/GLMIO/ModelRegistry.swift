// The registry of architectures by config.json `model_type`: the one place a new model type is added. Each
// entry says how its config.json reads and writes, how its model is built from weights (strictly) or freshly
// initialised, and which tensors it saves; ModelDirectory and every command go through it.
import Foundation
import GLMCore
import GLMModel

/// One architecture as the IO layer sees it.
public protocol ModelArchitecture {
    /// The config.json `model_type` values it reads.
    static var modelTypes: [String] { get }
    /// config.json bytes to its config (`source` names the file in errors).
    static func decodeConfig(_ data: Data, source: String) throws -> any CausalLMConfig
    /// config.json bytes as transformers writes them, with `dtype` recorded.
    static func encodeConfig(_ config: any CausalLMConfig, dtype: String?) throws -> Data
    /// The model from named tensors, checked strictly against the config (names, shapes, nothing extra).
    static func makeModel(config: any CausalLMConfig, weights: [String: Tensor]) throws -> any CausalLanguageModel
    /// A freshly initialised model (transformers' initialisation, seeded).
    static func randomModel(config: any CausalLMConfig, seed: UInt64) throws -> any CausalLanguageModel
    /// The tensors a model directory holds for `model` under `config`, by Hugging Face name.
    static func savedTensors(_ model: any CausalLanguageModel, config: any CausalLMConfig) throws -> [String: Tensor]
}

public enum ModelRegistry {
    /// Every architecture GLMTrain reads; the first is also what a config.json without a known `model_type` is
    /// handed to (its decoder names what it expected).
    public static let architectures: [any ModelArchitecture.Type] = [GLMArchitecture.self]

    /// The architecture of a config.json's `model_type`.
    public static func architecture(forModelType type: String) -> (any ModelArchitecture.Type)? {
        architectures.first { $0.modelTypes.contains(type) }
    }

    /// The architecture that reads these config.json bytes.
    public static func architecture(ofConfig data: Data, source: String) throws -> any ModelArchitecture.Type {
        if case .string(let type)? = try JSONValue.parse(data, source: source)["model_type"],
           let a = architecture(forModelType: type) {
            return a
        }
        return architectures[0]
    }

    /// Parses config.json bytes with the architecture its `model_type` names.
    public static func decodeConfig(_ data: Data, source: String) throws -> any CausalLMConfig {
        try architecture(ofConfig: data, source: source).decodeConfig(data, source: source)
    }

    /// The architecture of a parsed config.
    public static func architecture(of config: any CausalLMConfig) throws -> any ModelArchitecture.Type {
        guard let a = architecture(forModelType: config.modelTypeName) else {
            throw GLMError("model_type '\(config.modelTypeName)' has no registered architecture")
        }
        return a
    }

    public static func makeModel(config: any CausalLMConfig, weights: [String: Tensor]) throws -> any CausalLanguageModel {
        try architecture(of: config).makeModel(config: config, weights: weights)
    }

    public static func randomModel(config: any CausalLMConfig, seed: UInt64) throws -> any CausalLanguageModel {
        try architecture(of: config).randomModel(config: config, seed: seed)
    }
}

/// GLM (`glm`), GLM-4 (`glm4`) and the legacy THUDM `chatglm` form of the same decoder.
public enum GLMArchitecture: ModelArchitecture {
    public static let modelTypes = GLMModelType.allCases.map(\.rawValue) + ["chatglm"]

    public static func decodeConfig(_ data: Data, source: String) throws -> any CausalLMConfig {
        try GLMConfig.decode(data, source: source)
    }

    static func glm(_ config: any CausalLMConfig) throws -> GLMConfig {
        guard let c = config as? GLMConfig else { throw GLMError("model_type '\(config.modelTypeName)' is not a GLM config") }
        return c
    }

    public static func encodeConfig(_ config: any CausalLMConfig, dtype: String?) throws -> Data {
        var c = try glm(config)
        c.dtype = dtype
        return c.jsonData()
    }

    public static func makeModel(config: any CausalLMConfig, weights: [String: Tensor]) throws -> any CausalLanguageModel {
        try GLMForCausalLM(config: try glm(config), weights: weights)
    }

    public static func randomModel(config: any CausalLMConfig, seed: UInt64) throws -> any CausalLanguageModel {
        try GLMForCausalLM(config: try glm(config), seed: seed)
    }

    public static func savedTensors(_ model: any CausalLanguageModel, config: any CausalLMConfig) throws -> [String: Tensor] {
        try GLMWeights.validated(model.parameters, config: try glm(config))
    }
}
