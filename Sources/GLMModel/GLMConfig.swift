// GLM model configuration: config.json of model_type glm / glm4 (transformers 5 and 4.x forms) and the legacy
// THUDM chatglm form (GLMConfigLegacy.swift), with transformers' defaults; written back in the transformers-5 form.
import Foundation
import GLMCore

/// The two Hugging Face GLM architectures: `glm` (GlmForCausalLM) and `glm4` (Glm4ForCausalLM, which adds the
/// post_self_attn / post_mlp sandwich norms).
public enum GLMModelType: String, Codable, Sendable, CaseIterable {
    case glm, glm4
    /// The `architectures` entry transformers writes.
    public var architecture: String { self == .glm ? "GlmForCausalLM" : "Glm4ForCausalLM" }
}

/// A GLM configuration. Defaults are transformers 5.23's `GlmConfig` defaults (reference/glm.md §B.1), which is
/// what transformers uses for a key a config.json leaves out.
public struct GLMConfig: Codable, Equatable, Sendable {
    public var modelType: GLMModelType = .glm
    public var vocabSize = 151552
    public var hiddenSize = 4096
    /// Width of each SwiGLU branch (`gate_up_proj` has 2× this many rows).
    public var intermediateSize = 13696
    public var numHiddenLayers = 40
    public var numAttentionHeads = 32
    public var numKeyValueHeads = 2
    /// Per-head width; `numAttentionHeads · headDim` need not equal `hiddenSize`.
    public var headDim = 128
    public var hiddenAct = "silu"
    public var attentionDropout = 0.0
    public var maxPositionEmbeddings = 131072
    public var initializerRange = 0.02
    public var rmsNormEps = 1.5625e-07
    public var useCache = true
    public var tieWordEmbeddings = false
    public var ropeTheta = 10000.0
    /// Fraction of each head that rotates: the first `int(headDim · factor)` dims.
    public var partialRotaryFactor = 0.5
    public var ropeType = "default"
    /// Bias on q/k/v (never on o_proj or the MLP).
    public var attentionBias = true
    public var padTokenId: Int? = 151329
    public var bosTokenId: Int? = nil
    /// Generation stops at any of these (written as an int when there is one, else a list).
    public var eosTokenIds: [Int] = [151329, 151336, 151338]
    /// Storage dtype recorded in the file ("float32", "bfloat16", ...); informational.
    public var dtype: String? = nil
    /// GLMTrain extension (`rotary_2d`): block-position ids rotate the second half of the rotary dims
    /// (ChatGLM-6B-style 2D RoPE for blank infilling). Not understood by transformers; false by default.
    public var rotary2D = false

    /// A configuration with transformers' defaults; set the fields you need.
    public init() {}

    /// Number of rotated dims per head: `int(headDim · partialRotaryFactor)`, as transformers computes it.
    public var rotaryDim: Int { Int(Double(headDim) * partialRotaryFactor) }
    /// Width of the query projection output (`heads · headDim`).
    public var queryWidth: Int { numAttentionHeads * headDim }
    /// Width of the key and value projection outputs (`kvHeads · headDim`).
    public var keyValueWidth: Int { numKeyValueHeads * headDim }
    /// The rotary embedding the attention uses.
    public var rotary: RotaryConfig {
        RotaryConfig(headDim: headDim, rotaryDim: rotaryDim, theta: Float(ropeTheta), twoDimensional: rotary2D)
    }

    /// Parses config.json bytes (`source` names the file in errors): model_type glm, glm4 or chatglm.
    public static func decode(_ data: Data, source: String = "config.json") throws -> GLMConfig {
        guard case .object(let object) = try ConfigJSON.parse(data, source: source) else {
            throw GLMError("\(source): expected a JSON object")
        }
        return try GLMConfig(reading: ConfigReader(object: object, source: source))
    }

    /// config.json text in the transformers-5 form (`rope_parameters`, `dtype`), keys sorted.
    public func jsonData() -> Data { Data((json.rendered() + "\n").utf8) }

    public init(from decoder: Decoder) throws {
        guard case .object(let object) = try ConfigJSON(from: decoder) else {
            throw GLMError("config.json: expected a JSON object")
        }
        self = try GLMConfig(reading: ConfigReader(object: object, source: "config.json"))
    }

    public func encode(to encoder: Encoder) throws { try json.encode(to: encoder) }

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
            vocabSize = try r.int("vocab_size") ?? vocabSize
            hiddenSize = try r.int("hidden_size") ?? hiddenSize
            intermediateSize = try r.int("intermediate_size") ?? intermediateSize
            numHiddenLayers = try r.int("num_hidden_layers") ?? numHiddenLayers
            numAttentionHeads = try r.int("num_attention_heads") ?? numAttentionHeads
            // Absent → the class default; explicit null → the usual derived value.
            numKeyValueHeads = try r.int("num_key_value_heads") ?? (r.object["num_key_value_heads"] == nil ? numKeyValueHeads : numAttentionHeads)
            headDim = try r.int("head_dim") ?? (r.object["head_dim"] == nil ? headDim : hiddenSize / max(numAttentionHeads, 1))
            hiddenAct = try r.string("hidden_act") ?? hiddenAct
            attentionDropout = try r.double("attention_dropout") ?? attentionDropout
            maxPositionEmbeddings = try r.int("max_position_embeddings") ?? maxPositionEmbeddings
            initializerRange = try r.double("initializer_range") ?? initializerRange
            rmsNormEps = try r.double("rms_norm_eps") ?? rmsNormEps
            useCache = try r.bool("use_cache") ?? useCache
            tieWordEmbeddings = try r.bool("tie_word_embeddings") ?? tieWordEmbeddings
            attentionBias = try r.bool("attention_bias") ?? attentionBias
            if r.object["pad_token_id"] != nil { padTokenId = try r.int("pad_token_id") }
            bosTokenId = try r.int("bos_token_id")
            eosTokenIds = try r.ints("eos_token_id") ?? eosTokenIds
            dtype = try r.string("dtype") ?? r.string("torch_dtype")
            // Rotary: transformers 5 nests it in rope_parameters; 4.x had top-level keys (and rope_scaling).
            let rope = try r.object("rope_parameters") ?? r.object("rope_scaling")
            ropeTheta = try rope?.double("rope_theta") ?? r.double("rope_theta") ?? ropeTheta
            partialRotaryFactor = try rope?.double("partial_rotary_factor") ?? r.double("partial_rotary_factor") ?? partialRotaryFactor
            ropeType = try rope?.string("rope_type") ?? rope?.string("type") ?? ropeType
        }
        rotary2D = try r.bool("rotary_2d") ?? false
        try validate(source: r.source)
        // Token ids the file names must exist (transformers' class defaults, kept when a key is absent, need not:
        // a small model that leaves eos_token_id out simply never stops on the default ids).
        let vocab = vocabSize
        func inVocabulary(_ key: String, _ id: Int) throws {
            guard id >= 0 && id < vocab else { throw GLMError("\(r.source): \(key) \(id) is outside the vocabulary of \(vocab)") }
        }
        if r.has("bos_token_id"), let b = bosTokenId { try inVocabulary("bos_token_id", b) }
        if r.has("eos_token_id") { for e in eosTokenIds { try inVocabulary("eos_token_id", e) } }
    }

    /// Checks what the model layer relies on; errors name the key.
    public func validate(source: String = "config.json") throws {
        func need(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw GLMError("\(source): \(message())") }
        }
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                             ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                             ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim)] {
            try need(value > 0, "key '\(key)' must be a positive integer, got \(value)")
            let limit = key == "num_hidden_layers" ? FileLimits.maxLayers : FileLimits.maxModelDimension
            try need(value <= limit, "key '\(key)' is \(value); at most \(limit) is supported")
        }
        // Every derived size (q/kv widths, weight shapes, the parameter count) must be computable and bounded;
        // the dimension limits above keep each product below 2^63, the element and parameter limits keep loading finite.
        var parameters = 0
        for (name, shape) in GLMWeights.expectedShapes(self) {
            let n = try Checked.elementCount(shape, "\(source): \(name)")
            parameters = try Checked.add(parameters, n, "\(source): the parameter count", limit: FileLimits.maxParameters)
        }
        try need(maxPositionEmbeddings > 0 && maxPositionEmbeddings <= FileLimits.maxPositions,
                 "max_position_embeddings must be in 1...\(FileLimits.maxPositions), got \(maxPositionEmbeddings)")
        try need(numAttentionHeads % numKeyValueHeads == 0,
                 "num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)")
        try need(hiddenAct == "silu", "hidden_act \"\(hiddenAct)\" is not supported; expected \"silu\"")
        try need(ropeType == "default", "rope_type \"\(ropeType)\" is not supported; expected \"default\"")
        try need(ropeTheta > 0, "rope_theta must be positive, got \(ropeTheta)")
        try need(partialRotaryFactor > 0 && partialRotaryFactor <= 1,
                 "partial_rotary_factor must be in (0, 1], got \(partialRotaryFactor)")
        try need(rotaryDim % (rotary2D ? 4 : 2) == 0,
                 "rotary dims int(head_dim·partial_rotary_factor) = \(rotaryDim) must be \(rotary2D ? "a multiple of 4 with rotary_2d" : "even")")
        try need(rmsNormEps > 0 && rmsNormEps < 1, "rms_norm_eps must be in (0, 1), got \(rmsNormEps)")
        try need(ropeTheta.isFinite && ropeTheta <= 1e15, "rope_theta must be a finite number at most 1e15, got \(ropeTheta)")
        try need(initializerRange.isFinite && initializerRange >= 0 && initializerRange <= 10,
                 "initializer_range must be in [0, 10], got \(initializerRange)")
        try need(attentionDropout >= 0 && attentionDropout <= 1, "attention_dropout must be in [0, 1], got \(attentionDropout)")
        if let p = padTokenId { try need(p >= 0 && p < vocabSize, "pad_token_id \(p) is outside the vocabulary of \(vocabSize)") }
        if let dtype {
            try need(GLMConfig.knownDTypes.contains(dtype), "dtype \"\(dtype)\" is not supported; expected one of \(GLMConfig.knownDTypes.joined(separator: ", "))")
        }
    }

    /// The `dtype` / `torch_dtype` names a config may record.
    public static let knownDTypes = ["float32", "bfloat16", "float16"]

    /// `eos_token_id` as written: ids outside the vocabulary (transformers' class defaults kept by a small model
    /// that never set its own) are left out — they can never be generated, and a file naming them would not read
    /// back; none left is `null`, which reads back as those same defaults.
    var writtenEOS: ConfigJSON {
        if eosTokenIds.isEmpty { return .array([]) }
        let ids = eosTokenIds.filter { $0 >= 0 && $0 < vocabSize }
        if ids.isEmpty { return .null }
        return ids.count == 1 ? .int(ids[0]) : .array(ids.map(ConfigJSON.int))
    }

    /// The transformers-5 form as a JSON tree.
    var json: ConfigJSON {
        var o: [String: ConfigJSON] = [
            "architectures": .array([.string(modelType.architecture)]),
            "model_type": .string(modelType.rawValue),
            "vocab_size": .int(vocabSize), "hidden_size": .int(hiddenSize), "intermediate_size": .int(intermediateSize),
            "num_hidden_layers": .int(numHiddenLayers), "num_attention_heads": .int(numAttentionHeads),
            "num_key_value_heads": .int(numKeyValueHeads), "head_dim": .int(headDim), "hidden_act": .string(hiddenAct),
            "attention_dropout": .double(attentionDropout), "max_position_embeddings": .int(maxPositionEmbeddings),
            "initializer_range": .double(initializerRange), "rms_norm_eps": .double(rmsNormEps), "use_cache": .bool(useCache),
            "tie_word_embeddings": .bool(tieWordEmbeddings), "attention_bias": .bool(attentionBias),
            "rope_parameters": .object(["rope_type": .string(ropeType), "rope_theta": .double(ropeTheta),
                                        "partial_rotary_factor": .double(partialRotaryFactor)]),
            "pad_token_id": padTokenId.map(ConfigJSON.int) ?? .null,
            "bos_token_id": bosTokenId.map(ConfigJSON.int) ?? .null,
            "eos_token_id": writtenEOS,
        ]
        if let dtype { o["dtype"] = .string(dtype) }
        if rotary2D { o["rotary_2d"] = .bool(true) }
        return .object(o)
    }
}
