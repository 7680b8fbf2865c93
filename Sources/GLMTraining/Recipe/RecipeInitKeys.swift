// `model.init` in a recipe is a config.json for a new model; unlike a config.json from elsewhere (which carries
// keys of other tools), a key there that the architecture does not read is a typo, so it is an error.
import Foundation
import GLMCore
import GLMIO
import GLMModel

extension RecipeRun {
    /// Keys a config.json may hold besides the ones its architecture writes: transformers 4.x spellings,
    /// aliases and bookkeeping.
    static let initKeyAliases: Set<String> = [
        "model_type", "architectures", "transformers_version", "dtype", "torch_dtype", "rope_theta", "partial_rotary_factor",
        "rope_scaling", "rope_parameters", "rotary_2d", "num_local_experts", "num_mtp_layers", "output_router_logits",
        "pad_token_id", "bos_token_id", "eos_token_id", "head_dim", "num_key_value_heads",
    ]

    /// Throws for the first key of `initConfig` (sorted) that the architecture of `config` does not read, with the
    /// nearest known name.
    static func checkInitKeys(_ initConfig: [String: Any], config: any CausalLMConfig, file: String) throws {
        guard config.modelTypeName != "chatglm" else { return }  // the legacy form has its own many keys
        let written = try ModelRegistry.architecture(of: config).encodeConfig(config, dtype: nil)
        let known = Set(try JSONValue.parse(written, source: "model.init").dictionary?.keys.map { $0 } ?? []).union(initKeyAliases)
        for key in initConfig.keys.sorted() where !known.contains(key) {
            throw GLMError("\(file): model.init.\(key): not a \(config.modelTypeName) config key\(NearestName.suggestion(key, known.sorted()))")
        }
    }
}
