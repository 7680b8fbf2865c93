// GLM-4.5's Mixture-of-Experts configuration (`model_type: glm4_moe`, transformers' Glm4MoeConfig,
// reference/glm4-moe.md §1) as a plain value: defaults are transformers 5.23's, and `validate()` adds the
// cross-field checks transformers leaves to the forward pass (experts divisible by n_group, top-k ≤ experts, ...).
// The model layer holds no JSON: config.json is read and written in GLMIO.
import GLMCore

/// A glm4_moe configuration. Field names follow config.json's keys in Swift case.
public struct Glm4MoeConfig: Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    /// Width of the dense SwiGLU MLPs of the first `firstKDenseReplace` layers.
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    /// Per-head width. Not a Glm4MoeConfig field in transformers: without `head_dim` in config.json, attention
    /// falls back to `hidden_size / num_attention_heads`, which is what the default here is.
    public var headDim: Int
    public var hiddenAct: String
    public var maxPositionEmbeddings: Int
    public var initializerRange: Double
    public var rmsNormEps: Double
    public var useCache: Bool
    public var tieWordEmbeddings: Bool
    public var ropeTheta: Double
    /// Fraction of each head that rotates (the first `int(headDim · factor)` dims, half-split pairs).
    public var partialRotaryFactor: Double
    public var ropeType: String
    /// Bias on q/k/v (never on o_proj); transformers' default is false.
    public var attentionBias: Bool
    public var attentionDropout: Double
    /// Width of each routed expert (and, times `nSharedExperts`, of the shared expert).
    public var moeIntermediateSize: Int
    /// Experts each token is routed to (top-k).
    public var numExpertsPerTok: Int
    public var nSharedExperts: Int
    public var nRoutedExperts: Int
    /// Multiplies the routing weights after the optional normalisation.
    public var routedScalingFactor: Double
    /// Expert groups; a group's score is the sum of its two best (bias-corrected) scores.
    public var nGroup: Int
    /// Groups kept per token before the top-k.
    public var topkGroup: Int
    /// Layers `0 ..< firstKDenseReplace` have a dense MLP, the rest a MoE.
    public var firstKDenseReplace: Int
    /// Whether the top-k routing weights are divided by their sum (+1e-20).
    public var normTopkProb: Bool
    /// RMSNorm over each head's dims of q and k (one `[headDim]` weight each), before RoPE.
    public var useQkNorm: Bool
    public var padTokenId: Int?
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    /// Multi-token-prediction layers (`num_nextn_predict_layers`), stored after the main layers; the main model
    /// ignores them in its forward pass.
    public var numNextnPredictLayers: Int
    /// Storage dtype recorded in config.json; informational.
    public var dtype: String?

    /// transformers 5.23's Glm4MoeConfig defaults; `headDim` nil means `hiddenSize / numAttentionHeads`.
    public init(vocabSize: Int = 151552, hiddenSize: Int = 4096, intermediateSize: Int = 10944, numHiddenLayers: Int = 46,
                numAttentionHeads: Int = 96, numKeyValueHeads: Int = 8, headDim: Int? = nil, hiddenAct: String = "silu",
                maxPositionEmbeddings: Int = 131072, initializerRange: Double = 0.02, rmsNormEps: Double = 1e-5,
                useCache: Bool = true, tieWordEmbeddings: Bool = false, ropeTheta: Double = 10000,
                partialRotaryFactor: Double = 0.5, ropeType: String = "default", attentionBias: Bool = false,
                attentionDropout: Double = 0, moeIntermediateSize: Int = 1408, numExpertsPerTok: Int = 8,
                nSharedExperts: Int = 1, nRoutedExperts: Int = 128, routedScalingFactor: Double = 1, nGroup: Int = 1,
                topkGroup: Int = 1, firstKDenseReplace: Int = 1, normTopkProb: Bool = true, useQkNorm: Bool = false,
                padTokenId: Int? = nil, bosTokenId: Int? = nil, eosTokenIds: [Int] = [], numNextnPredictLayers: Int = 1,
                dtype: String? = nil) {
        self.vocabSize = vocabSize; self.hiddenSize = hiddenSize; self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers; self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.headDim = headDim ?? (numAttentionHeads > 0 ? hiddenSize / numAttentionHeads : 0)
        self.hiddenAct = hiddenAct; self.maxPositionEmbeddings = maxPositionEmbeddings
        self.initializerRange = initializerRange; self.rmsNormEps = rmsNormEps; self.useCache = useCache
        self.tieWordEmbeddings = tieWordEmbeddings; self.ropeTheta = ropeTheta
        self.partialRotaryFactor = partialRotaryFactor; self.ropeType = ropeType; self.attentionBias = attentionBias
        self.attentionDropout = attentionDropout; self.moeIntermediateSize = moeIntermediateSize
        self.numExpertsPerTok = numExpertsPerTok; self.nSharedExperts = nSharedExperts
        self.nRoutedExperts = nRoutedExperts; self.routedScalingFactor = routedScalingFactor; self.nGroup = nGroup
        self.topkGroup = topkGroup; self.firstKDenseReplace = firstKDenseReplace; self.normTopkProb = normTopkProb
        self.useQkNorm = useQkNorm; self.padTokenId = padTokenId; self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds; self.numNextnPredictLayers = numNextnPredictLayers; self.dtype = dtype
    }

    /// config.json's `model_type`.
    public static let modelType = "glm4_moe"
    /// The `architectures` entry transformers writes.
    public static let architecture = "Glm4MoeForCausalLM"

    /// Rotated dims per head: `int(headDim · partialRotaryFactor)`, as transformers computes it.
    public var rotaryDim: Int { Int(Double(headDim) * partialRotaryFactor) }
    public var queryWidth: Int { numAttentionHeads * headDim }
    public var keyValueWidth: Int { numKeyValueHeads * headDim }
    /// Width of the shared expert: `moeIntermediateSize · nSharedExperts`.
    public var sharedIntermediateSize: Int { moeIntermediateSize * nSharedExperts }
    /// Whether layer `l` has a MoE (else a dense MLP).
    public func isMoELayer(_ l: Int) -> Bool { l >= firstKDenseReplace }
    /// The rotary embedding (half-split pairs on the first `rotaryDim` dims).
    public var rotary: RotaryConfig { RotaryConfig.partial(headDim: headDim, dims: rotaryDim, theta: Float(ropeTheta)) }

    /// Checks everything the model relies on, including what transformers leaves to the forward pass; errors name
    /// the key (`source` is the file they are reported against).
    public func validate(source: String = "config.json") throws {
        func need(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw GLMError("\(source): \(message())") }
        }
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                             ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                             ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim),
                             ("moe_intermediate_size", moeIntermediateSize), ("n_routed_experts", nRoutedExperts),
                             ("num_experts_per_tok", numExpertsPerTok), ("n_group", nGroup), ("topk_group", topkGroup)] {
            try need(value > 0, "key '\(key)' must be a positive integer, got \(value)")
            let limit = key == "num_hidden_layers" ? FileLimits.maxLayers : FileLimits.maxModelDimension
            try need(value <= limit, "key '\(key)' is \(value); at most \(limit) is supported")
        }
        try need(nSharedExperts >= 0 && nSharedExperts <= FileLimits.maxModelDimension,
                 "key 'n_shared_experts' must be in 0...\(FileLimits.maxModelDimension), got \(nSharedExperts)")
        try need(firstKDenseReplace >= 0 && firstKDenseReplace <= numHiddenLayers,
                 "first_k_dense_replace \(firstKDenseReplace) must be in 0...num_hidden_layers (\(numHiddenLayers))")
        try need(numNextnPredictLayers >= 0 && numNextnPredictLayers <= FileLimits.maxLayers,
                 "num_nextn_predict_layers must be in 0...\(FileLimits.maxLayers), got \(numNextnPredictLayers)")
        // Routing: what transformers only finds out in the forward pass (reference §7 pitfall 2).
        try need(nRoutedExperts % nGroup == 0, "n_routed_experts \(nRoutedExperts) is not a multiple of n_group \(nGroup)")
        try need(nRoutedExperts / nGroup >= 2,
                 "n_routed_experts / n_group = \(nRoutedExperts / nGroup); each group needs at least 2 experts (a group's score is the sum of its top 2)")
        try need(topkGroup <= nGroup, "topk_group \(topkGroup) exceeds n_group \(nGroup)")
        try need(numExpertsPerTok <= nRoutedExperts,
                 "num_experts_per_tok \(numExpertsPerTok) exceeds n_routed_experts \(nRoutedExperts)")
        try need(numExpertsPerTok <= topkGroup * (nRoutedExperts / nGroup),
                 "num_experts_per_tok \(numExpertsPerTok) exceeds the \(topkGroup * (nRoutedExperts / nGroup)) experts of the topk_group \(topkGroup) groups kept (n_routed_experts / n_group = \(nRoutedExperts / nGroup) each)")
        try need(routedScalingFactor.isFinite && routedScalingFactor > 0 && routedScalingFactor <= 1e6,
                 "routed_scaling_factor must be a positive finite number at most 1e6, got \(routedScalingFactor)")
        // Sizes: every derived shape and the parameter count computable and bounded.
        try need(Glm4MoeWeights.expertMatricesFit(self),
                 "n_routed_experts \(nRoutedExperts) over \(numHiddenLayers - firstKDenseReplace + numNextnPredictLayers) MoE layers (MTP included) is more than \(Glm4MoeWeights.maxExpertMatrices) experts in all")
        var parameters = 0
        for (name, shape) in Glm4MoeWeights.expectedShapes(self) {
            let n = try Checked.elementCount(shape, "\(source): \(name)")
            parameters = try Checked.add(parameters, n, "\(source): the parameter count", limit: FileLimits.maxParameters)
        }
        try need(maxPositionEmbeddings > 0 && maxPositionEmbeddings <= FileLimits.maxPositions,
                 "max_position_embeddings must be in 1...\(FileLimits.maxPositions), got \(maxPositionEmbeddings)")
        try need(numAttentionHeads % numKeyValueHeads == 0,
                 "num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)")
        try need(hiddenAct == "silu", "hidden_act \"\(hiddenAct)\" is not supported; expected \"silu\"")
        try need(ropeType == "default", "rope_type \"\(ropeType)\" is not supported; expected \"default\"")
        try need(ropeTheta.isFinite && ropeTheta > 0 && ropeTheta <= 1e15, "rope_theta must be a positive finite number at most 1e15, got \(ropeTheta)")
        // Rotary angles reach max_position_embeddings · θ^(−(d−2)/d) < max_position_embeddings / θ for θ < 1.
        try need(Float(Double(maxPositionEmbeddings) / ropeTheta).isFinite,
                 "rope_theta \(ropeTheta) is too small: rotary angles up to max_position_embeddings / rope_theta overflow f32")
        try need(partialRotaryFactor >= 0 && partialRotaryFactor <= 1,
                 "partial_rotary_factor must be in [0, 1], got \(partialRotaryFactor)")
        // transformers turns 2·⌈d/2⌉ dims for d = int(head_dim·partial_rotary_factor); more than head_dim fails there
        try need(rotaryDim + rotaryDim % 2 <= headDim,
                 "rotary dims int(head_dim·partial_rotary_factor) = \(rotaryDim) turn 2·⌈\(rotaryDim)/2⌉ = \(rotaryDim + rotaryDim % 2) dims, more than head_dim \(headDim)")
        try need(rmsNormEps > 0 && rmsNormEps < 1, "rms_norm_eps must be in (0, 1), got \(rmsNormEps)")
        try need(initializerRange.isFinite && initializerRange >= 0 && initializerRange <= 10,
                 "initializer_range must be in [0, 10], got \(initializerRange)")
        try need(attentionDropout >= 0 && attentionDropout <= 1, "attention_dropout must be in [0, 1], got \(attentionDropout)")
        if let p = padTokenId { try need(p >= 0 && p < vocabSize, "pad_token_id \(p) is outside the vocabulary of \(vocabSize)") }
        if let dtype {
            try need(GLMConfig.knownDTypes.contains(dtype), "dtype \"\(dtype)\" is not supported; expected one of \(GLMConfig.knownDTypes.joined(separator: ", "))")
        }
    }
}

extension Glm4MoeConfig: CausalLMConfig {
    public var modelTypeName: String { Glm4MoeConfig.modelType }
    public var usesBlockPositions: Bool { false }
    public var adaptableLinears: [AdaptableLinear] { Glm4MoeWeights.adaptableLinears(self) }
    /// llama.cpp's `glm4moe`.
    public var ggufArchitecture: String { "glm4moe" }
    public var parameterCount: Int { Glm4MoeWeights.expectedShapes(self).reduce(0) { $0 &+ $1.shape.reduce(1, &*) } }
    public var cacheBytesPerPosition: Int {
        let (a, o1) = numHiddenLayers.multipliedReportingOverflow(by: keyValueWidth)
        let (b, o2) = a.multipliedReportingOverflow(by: 2 * 4)
        return o1 || o2 ? Int.max : b
    }
}
