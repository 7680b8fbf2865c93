// GLM model configuration (model_type glm / glm4) with transformers' defaults, and the checks the model layer relies
// on. Reading and writing config.json (transformers 5 and 4.x forms, the legacy THUDM chatglm form) is in the IO
// layer: Sources/GLMIO/Config.
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
public struct GLMConfig: Equatable, Sendable {
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
        rotary2D ? RotaryConfig(headDim: headDim, rotaryDim: rotaryDim, theta: Float(ropeTheta), twoDimensional: true)
                 : RotaryConfig.partial(headDim: headDim, dims: rotaryDim, theta: Float(ropeTheta))
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
        // Rotary angles reach max_position_embeddings · θ^(−(d−2)/d) < max_position_embeddings / θ for θ < 1.
        try need(Float(Double(maxPositionEmbeddings) / ropeTheta).isFinite,
                 "rope_theta \(ropeTheta) is too small: rotary angles up to max_position_embeddings / rope_theta overflow f32")
        try need(partialRotaryFactor >= 0 && partialRotaryFactor <= 1,
                 "partial_rotary_factor must be in [0, 1], got \(partialRotaryFactor)")
        if rotary2D {
            try need(rotaryDim % 4 == 0, "rotary dims int(head_dim·partial_rotary_factor) = \(rotaryDim) must be a multiple of 4 with rotary_2d")
        } else {
            // transformers turns 2·⌈d/2⌉ dims for d = int(head_dim·partial_rotary_factor); more than head_dim fails there
            try need(rotaryDim + rotaryDim % 2 <= headDim,
                     "rotary dims int(head_dim·partial_rotary_factor) = \(rotaryDim) turn 2·⌈\(rotaryDim)/2⌉ = \(rotaryDim + rotaryDim % 2) dims, more than head_dim \(headDim)")
        }
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
}
