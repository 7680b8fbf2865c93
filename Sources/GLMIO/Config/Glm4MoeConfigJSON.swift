// config.json of a glm4_moe model (GLM-4.5, GLM-4.5-Air, GLM-4.6/4.7): read in the transformers-5 form
// (`rope_parameters`) and the 4.x form (top-level `rope_theta`, `partial_rotary_factor`), with transformers 5's
// defaults and aliases (`num_local_experts`, `num_mtp_layers`), checked by `Glm4MoeConfig.validate` (which adds
// the cross-field checks transformers leaves to the forward pass); written back in the transformers-5 form.
import Foundation
import GLMCore
import GLMModel

extension Glm4MoeConfig {
    /// Parses config.json bytes (`source` names the file in errors); the model_type must be glm4_moe.
    public static func decode(_ data: Data, source: String = "config.json") throws -> Glm4MoeConfig {
        try Glm4MoeConfig(reading: ConfigReader(parsing: JSONValue.parse(data, source: source), source: source))
    }

    /// Reads a config file (`path` is named in errors).
    public static func load(path: String) throws -> Glm4MoeConfig {
        let data = try FileInput.read(path, hint: "a model directory needs config.json", limit: FileLimits.maxConfigBytes)
        return try decode(data, source: path)
    }

    /// config.json text in the transformers-5 form, keys sorted.
    public func jsonData() -> Data { Data((json.rendered() + "\n").utf8) }

    init(reading r: ConfigReader) throws {
        guard let type = try r.string("model_type") else {
            throw GLMError("\(r.source): no 'model_type'; expected \"\(Glm4MoeConfig.modelType)\"")
        }
        guard type == Glm4MoeConfig.modelType else {
            throw GLMError("\(r.source): model_type \"\(type)\" is not \"\(Glm4MoeConfig.modelType)\"")
        }
        self.init()
        /// A key read under its config.json name or transformers' alias (both at once must agree).
        func aliased<T: Equatable>(_ key: String, _ alias: String, _ read: (String) throws -> T?) throws -> T? {
            let a = try read(key), b = try read(alias)
            if let a, let b, a != b { throw GLMError("\(r.source): keys '\(key)' and its alias '\(alias)' disagree") }
            return a ?? b
        }
        // Fields Glm4MoeConfig types without None: transformers 5 refuses an explicit null there.
        try r.checkNotNull(GLMConfig.nonNullKeys + ["attention_dropout", "moe_intermediate_size", "num_experts_per_tok",
                                                    "n_shared_experts", "n_routed_experts", "routed_scaling_factor", "n_group",
                                                    "topk_group", "first_k_dense_replace", "norm_topk_prob", "use_qk_norm"])
        vocabSize = try r.int("vocab_size") ?? vocabSize
        hiddenSize = try r.int("hidden_size") ?? hiddenSize
        intermediateSize = try r.int("intermediate_size") ?? intermediateSize
        numHiddenLayers = try r.int("num_hidden_layers") ?? numHiddenLayers
        numAttentionHeads = try r.int("num_attention_heads") ?? numAttentionHeads
        // Absent → the class default; explicit null → as many as the attention heads.
        numKeyValueHeads = try r.int("num_key_value_heads") ?? (!r.contains("num_key_value_heads") ? numKeyValueHeads : numAttentionHeads)
        // Not a Glm4MoeConfig field: absent or null, attention uses hidden_size / num_attention_heads.
        headDim = try r.int("head_dim") ?? hiddenSize / max(numAttentionHeads, 1)
        hiddenAct = try r.string("hidden_act") ?? hiddenAct
        maxPositionEmbeddings = try r.int("max_position_embeddings") ?? maxPositionEmbeddings
        initializerRange = try r.double("initializer_range") ?? initializerRange
        rmsNormEps = try r.double("rms_norm_eps") ?? rmsNormEps
        useCache = try r.bool("use_cache") ?? useCache
        tieWordEmbeddings = try r.bool("tie_word_embeddings") ?? tieWordEmbeddings
        attentionBias = try r.bool("attention_bias") ?? attentionBias
        attentionDropout = try r.double("attention_dropout") ?? attentionDropout
        moeIntermediateSize = try r.int("moe_intermediate_size") ?? moeIntermediateSize
        numExpertsPerTok = try r.int("num_experts_per_tok") ?? numExpertsPerTok
        nSharedExperts = try r.int("n_shared_experts") ?? nSharedExperts
        nRoutedExperts = try aliased("n_routed_experts", "num_local_experts", r.int) ?? nRoutedExperts
        routedScalingFactor = try r.double("routed_scaling_factor") ?? routedScalingFactor
        nGroup = try r.int("n_group") ?? nGroup
        topkGroup = try r.int("topk_group") ?? topkGroup
        firstKDenseReplace = try r.int("first_k_dense_replace") ?? firstKDenseReplace
        normTopkProb = try r.bool("norm_topk_prob") ?? normTopkProb
        useQkNorm = try r.bool("use_qk_norm") ?? useQkNorm
        numNextnPredictLayers = try aliased("num_nextn_predict_layers", "num_mtp_layers", r.int) ?? numNextnPredictLayers
        _ = try r.bool("output_router_logits")  // a forward-pass option; type-checked, not used
        padTokenId = try r.int("pad_token_id")
        bosTokenId = try r.int("bos_token_id")
        eosTokenIds = try r.ints("eos_token_id") ?? []
        dtype = try r.string("dtype") ?? r.string("torch_dtype")
        // Rotary: transformers 5 nests it in rope_parameters; 4.x had top-level keys and rope_scaling, which wins.
        // partial_rotary_factor defaults to 0.5 (Glm4MoeConfig.__post_init__), rope_theta to 10000.
        let rope = try r.rotaryParameters()
        try rope?.checkNotNull(GLMConfig.nonNullRopeKeys)
        ropeTheta = try rope?.double("rope_theta") ?? r.double("rope_theta") ?? ropeTheta
        partialRotaryFactor = try rope?.double("partial_rotary_factor") ?? r.double("partial_rotary_factor") ?? partialRotaryFactor
        ropeType = try rope?.string("rope_type") ?? rope?.string("type") ?? ropeType
        try validate(source: r.source)
        // bos/eos ids outside the vocabulary are kept as written, as transformers keeps them (GLMConfigJSON).
    }

    /// The transformers-5 form as a JSON tree (what save_pretrained writes, without transformers_version).
    var json: JSONValue {
        var o: [String: JSONValue] = [
            "architectures": .array([.string(Glm4MoeConfig.architecture)]),
            "model_type": .string(Glm4MoeConfig.modelType),
            "vocab_size": .int(vocabSize), "hidden_size": .int(hiddenSize), "intermediate_size": .int(intermediateSize),
            "num_hidden_layers": .int(numHiddenLayers), "num_attention_heads": .int(numAttentionHeads),
            "num_key_value_heads": .int(numKeyValueHeads), "head_dim": .int(headDim), "hidden_act": .string(hiddenAct),
            "max_position_embeddings": .int(maxPositionEmbeddings), "initializer_range": .double(initializerRange),
            "rms_norm_eps": .double(rmsNormEps), "use_cache": .bool(useCache), "tie_word_embeddings": .bool(tieWordEmbeddings),
            "attention_bias": .bool(attentionBias), "attention_dropout": .double(attentionDropout),
            "moe_intermediate_size": .int(moeIntermediateSize), "num_experts_per_tok": .int(numExpertsPerTok),
            "n_shared_experts": .int(nSharedExperts), "n_routed_experts": .int(nRoutedExperts),
            "routed_scaling_factor": .double(routedScalingFactor), "n_group": .int(nGroup), "topk_group": .int(topkGroup),
            "first_k_dense_replace": .int(firstKDenseReplace), "norm_topk_prob": .bool(normTopkProb),
            "use_qk_norm": .bool(useQkNorm), "num_nextn_predict_layers": .int(numNextnPredictLayers),
            "output_router_logits": .bool(false),
            "rope_parameters": .keyed(["rope_type": .string(ropeType), "rope_theta": .double(ropeTheta),
                                       "partial_rotary_factor": .double(partialRotaryFactor)]),
            "pad_token_id": padTokenId.map(JSONValue.int) ?? .null,
            "bos_token_id": bosTokenId.map(JSONValue.int) ?? .null,
            "eos_token_id": eosTokenIds.isEmpty ? .null : eosTokenIds.count == 1 ? .int(eosTokenIds[0]) : .array(eosTokenIds.map(JSONValue.int)),
        ]
        if let dtype { o["dtype"] = .string(dtype) }
        return .keyed(o)
    }
}
