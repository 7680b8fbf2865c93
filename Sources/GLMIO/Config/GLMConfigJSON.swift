// config.json of a GLM model (model_type glm / glm4, transformers 5 and 4.x forms; legacy chatglm in
// GLMConfigLegacyJSON.swift), read with transformers' defaults and written back in the transformers-5 form.
import Foundation
import GLMCore
import GLMModel

extension GLMConfig {
    /// Parses config.json bytes (`source` names the file in errors): model_type glm, glm4 or chatglm.
    public static func decode(_ data: Data, source: String = "config.json") throws -> GLMConfig {
        try GLMConfig(reading: ConfigReader(parsing: JSONValue.parse(data, source: source), source: source))
    }

    /// Keys whose explicit null transformers 5 refuses (GlmConfig / Glm4Config fields typed without None).
    static let nonNullKeys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "hidden_act", "max_position_embeddings", "initializer_range", "rms_norm_eps", "use_cache", "tie_word_embeddings", "attention_bias", "rope_theta", "partial_rotary_factor"]
    /// The same inside `rope_parameters`.
    static let nonNullRopeKeys = ["rope_theta", "partial_rotary_factor", "rope_type", "type"]

    /// config.json text in the transformers-5 form (`rope_parameters`, `dtype`), keys sorted.
    public func jsonData() -> Data { Data((json.rendered() + "\n").utf8) }

    init(reading r: ConfigReader) throws {
        guard let type = try r.string("model_type") else {
            throw GLMError("\(r.source): no 'model_type'; expected \"glm\", \"glm4\" or \"chatglm\"")
        }
        if type == "chatglm" {
            try self.init(legacy: r)
        } else {
            guard let t = GLMModelType(rawValue: type) else {
                throw GLMError("\(r.source): model_type \"\(type)\" is not supported; expected \"glm\", \"glm4\" or \"chatglm\"")
            }
            self.init()
            modelType = t
            try r.checkNotNull(GLMConfig.nonNullKeys)
            vocabSize = try r.int("vocab_size") ?? vocabSize
            hiddenSize = try r.int("hidden_size") ?? hiddenSize
            intermediateSize = try r.int("intermediate_size") ?? intermediateSize
            numHiddenLayers = try r.int("num_hidden_layers") ?? numHiddenLayers
            numAttentionHeads = try r.int("num_attention_heads") ?? numAttentionHeads
            // Absent → the class default; explicit null → the usual derived value.
            numKeyValueHeads = try r.int("num_key_value_heads") ?? (!r.contains("num_key_value_heads") ? numKeyValueHeads : numAttentionHeads)
            headDim = try r.int("head_dim") ?? (!r.contains("head_dim") ? headDim : hiddenSize / max(numAttentionHeads, 1))
            hiddenAct = try r.string("hidden_act") ?? hiddenAct
            attentionDropout = try r.double("attention_dropout") ?? attentionDropout
            maxPositionEmbeddings = try r.int("max_position_embeddings") ?? maxPositionEmbeddings
            initializerRange = try r.double("initializer_range") ?? initializerRange
            rmsNormEps = try r.double("rms_norm_eps") ?? rmsNormEps
            useCache = try r.bool("use_cache") ?? useCache
            tieWordEmbeddings = try r.bool("tie_word_embeddings") ?? tieWordEmbeddings
            attentionBias = try r.bool("attention_bias") ?? attentionBias
            if r.contains("pad_token_id") { padTokenId = try r.int("pad_token_id") }
            bosTokenId = try r.int("bos_token_id")
            eosTokenIds = try r.ints("eos_token_id") ?? eosTokenIds
            dtype = try r.string("dtype") ?? r.string("torch_dtype")
            // Rotary: transformers 5 nests it in rope_parameters; 4.x had top-level keys and rope_scaling, which wins.
            let rope = try r.rotaryParameters()
            try rope?.checkNotNull(GLMConfig.nonNullRopeKeys)
            ropeTheta = try rope?.double("rope_theta") ?? r.double("rope_theta") ?? ropeTheta
            partialRotaryFactor = try rope?.double("partial_rotary_factor") ?? r.double("partial_rotary_factor") ?? partialRotaryFactor
            ropeType = try rope?.string("rope_type") ?? rope?.string("type") ?? ropeType
        }
        rotary2D = try r.bool("rotary_2d") ?? false
        // transformers' class default pad id (151329) is an nn.Embedding padding_idx that a smaller vocabulary
        // cannot hold (PyTorch refuses it): say that it is the default, not a value of the file.
        if !r.contains("pad_token_id"), let p = padTokenId, p >= vocabSize {
            throw GLMError("\(r.source): pad_token_id is not set, and transformers' default \(p) is outside the vocabulary of \(vocabSize); set pad_token_id")
        }
        try validate(source: r.source)
        // bos_token_id and eos_token_id outside the vocabulary are kept as written, as transformers keeps them: its
        // save_pretrained writes the class defaults (eos 151329, 151336, 151338) for a small model that never set its
        // own. Generation cannot produce such a token, so it stops on none of them (`eosTokenIdsInVocabulary`).
    }

    /// `eos_token_id` as transformers writes it: one id as a number, several as a list, none as an empty list (null
    /// would read back as the class defaults).
    var writtenEOS: JSONValue {
        eosTokenIds.count == 1 ? .int(eosTokenIds[0]) : .array(eosTokenIds.map(JSONValue.int))
    }

    /// The transformers-5 form as a JSON tree.
    var json: JSONValue {
        var o: [String: JSONValue] = [
            "architectures": .array([.string(modelType.architecture)]),
            "model_type": .string(modelType.rawValue),
            "vocab_size": .int(vocabSize), "hidden_size": .int(hiddenSize), "intermediate_size": .int(intermediateSize),
            "num_hidden_layers": .int(numHiddenLayers), "num_attention_heads": .int(numAttentionHeads),
            "num_key_value_heads": .int(numKeyValueHeads), "head_dim": .int(headDim), "hidden_act": .string(hiddenAct),
            "attention_dropout": .double(attentionDropout), "max_position_embeddings": .int(maxPositionEmbeddings),
            "initializer_range": .double(initializerRange), "rms_norm_eps": .double(rmsNormEps), "use_cache": .bool(useCache),
            "tie_word_embeddings": .bool(tieWordEmbeddings), "attention_bias": .bool(attentionBias),
            "rope_parameters": .keyed(["rope_type": .string(ropeType), "rope_theta": .double(ropeTheta),
                                        "partial_rotary_factor": .double(partialRotaryFactor)]),
            "pad_token_id": padTokenId.map(JSONValue.int) ?? .null,
            "bos_token_id": bosTokenId.map(JSONValue.int) ?? .null,
            "eos_token_id": writtenEOS,
        ]
        if let dtype { o["dtype"] = .string(dtype) }
        if rotary2D { o["rotary_2d"] = .bool(true) }
        return .keyed(o)
    }
}

/// Codable goes through config.json's form (transformers 5), with the same checks as `decode`.
extension GLMConfig: Codable {
    public init(from decoder: Decoder) throws {
        self = try GLMConfig(reading: ConfigReader(parsing: JSONValue(from: decoder), source: "config.json"))
    }

    public func encode(to encoder: Encoder) throws { try json.encode(to: encoder) }
}
