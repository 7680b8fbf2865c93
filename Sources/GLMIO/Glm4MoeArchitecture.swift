// glm4_moe (GLM-4.5's Mixture of Experts) in the model registry: its config.json, strict loading of the per-expert
// (or fused) checkpoint tensors, fresh initialisation, and the tensors a model directory holds — the per-expert
// layout transformers' save_pretrained writes, the checkpoint's MTP layers (when it had them) and, for
// n_shared_experts 0, the empty shared-expert matrices transformers keeps.
import Foundation
import GLMCore
import GLMModel

public enum Glm4MoeArchitecture: ModelArchitecture {
    public static let modelTypes = [Glm4MoeConfig.modelType]

    public static func decodeConfig(_ data: Data, source: String) throws -> any CausalLMConfig {
        try Glm4MoeConfig.decode(data, source: source)
    }

    static func moe(_ config: any CausalLMConfig) throws -> Glm4MoeConfig {
        guard let c = config as? Glm4MoeConfig else { throw GLMError("model_type '\(config.modelTypeName)' is not a glm4_moe config") }
        return c
    }

    public static func encodeConfig(_ config: any CausalLMConfig, dtype: String?) throws -> Data {
        var c = try moe(config)
        c.dtype = dtype
        return c.jsonData()
    }

    public static func makeModel(config: any CausalLMConfig, weights: [String: Tensor]) throws -> any CausalLanguageModel {
        try Glm4MoeForCausalLM(config: try moe(config), weights: weights)
    }

    public static func randomModel(config: any CausalLMConfig, seed: UInt64) throws -> any CausalLanguageModel {
        try Glm4MoeForCausalLM(config: try moe(config), seed: seed)
    }

    /// The routers and their correction biases stay F32 in a bf16 directory, as transformers keeps them
    /// (`_keep_in_fp32_modules_strict`): a bf16 bias could not hold the balancing rule's 1e-3 steps.
    public static func keepsFloat32(_ name: String) -> Bool {
        name.hasSuffix(".mlp.gate.weight") || name.hasSuffix(".mlp.gate.e_score_correction_bias")
    }

    public static func savedTensors(_ model: any CausalLanguageModel, config: any CausalLMConfig) throws -> [String: Tensor] {
        let c = try moe(config)
        guard let m = model as? Glm4MoeForCausalLM else {
            throw GLMError("a \(model.modelTypeName) model cannot be saved as glm4_moe")
        }
        // The MTP layer's tensors: frozen ones in mtpTensors, training ones among the parameters.
        let checked = try Glm4MoeWeights.validated(m.parameters.merging(m.mtpTensors) { a, _ in a }, config: c)
        var tensors = checked.main.merging(checked.mtp) { a, _ in a }
        if c.sharedIntermediateSize == 0 {
            for l in 0..<c.numHiddenLayers where c.isMoELayer(l) {
                let p = Glm4MoeWeights.layerPrefix(l) + "mlp.shared_experts."
                tensors[p + "gate_proj.weight"] = Tensor(zeros: [0, c.hiddenSize])
                tensors[p + "up_proj.weight"] = Tensor(zeros: [0, c.hiddenSize])
                tensors[p + "down_proj.weight"] = Tensor(zeros: [c.hiddenSize, 0])
            }
        }
        return tensors
    }
}
