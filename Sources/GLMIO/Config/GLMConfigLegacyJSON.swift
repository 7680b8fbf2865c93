// The legacy THUDM `chatglm` config.json (ChatGLM2/3-6B, glm-4-9b-chat before the -hf conversion), mapped to the
// transformers glm configuration as convert_glm_weights_to_hf does (reference/glm.md §B.5).
import GLMCore
import GLMModel

extension GLMConfig {
    /// Reads a model_type "chatglm" config. Defaults are those of THUDM's `ChatGLMConfig`; features the glm
    /// architecture cannot express (LayerNorm, post-LN residuals, biased dense layers, ChatGLM-6B's 2D layout)
    /// are errors naming the key.
    init(legacy r: ConfigReader) throws {
        self.init()
        modelType = .glm
        let unsupported: [(String, Bool?, Bool, String)] = try [
            ("rmsnorm", r.bool("rmsnorm"), true, "LayerNorm models"),
            ("post_layer_norm", r.bool("post_layer_norm"), true, "models without a final norm"),
            ("apply_residual_connection_post_layernorm", r.bool("apply_residual_connection_post_layernorm"), false,
             "post-norm residuals"),
            ("add_bias_linear", r.bool("add_bias_linear"), false, "biases on dense/MLP layers"),
            ("original_rope", r.bool("original_rope"), true, "non-original rotary layouts"),
        ]
        for (key, value, supported, what) in unsupported where value != nil && value != supported {
            throw GLMError("\(r.source): chatglm key '\(key)' = \(value!) (\(what)) is not supported; expected \(supported)")
        }
        if r.has("position_encoding_2d") || r.has("inner_hidden_size") {
            throw GLMError("\(r.source): ChatGLM-6B (first generation, key 'position_encoding_2d') is not supported; expected a ChatGLM2/3 or GLM-4 chatglm config")
        }
        if let p = try r.int("pre_seq_len") {
            throw GLMError("\(r.source): chatglm key 'pre_seq_len' = \(p) (P-tuning prefix) is not supported; expected null")
        }
        numHiddenLayers = try r.int("num_layers") ?? 28
        vocabSize = try r.int("padded_vocab_size") ?? r.int("vocab_size") ?? 65024
        hiddenSize = try r.int("hidden_size") ?? 4096
        intermediateSize = try r.int("ffn_hidden_size") ?? 13696
        headDim = try r.int("kv_channels") ?? 128
        numAttentionHeads = try r.int("num_attention_heads") ?? 32
        let multiQuery = try r.bool("multi_query_attention") ?? false
        numKeyValueHeads = multiQuery ? (try r.int("multi_query_group_num") ?? 1) : numAttentionHeads
        maxPositionEmbeddings = try r.int("seq_length") ?? 2048
        rmsNormEps = try r.double("layernorm_epsilon") ?? 1e-5
        ropeTheta = 10000 * (try r.double("rope_ratio") ?? 1)
        partialRotaryFactor = 0.5          // ChatGLM rotates kv_channels/2 dims
        attentionBias = try r.bool("add_qkv_bias") ?? false
        attentionDropout = try r.double("attention_dropout") ?? 0
        tieWordEmbeddings = try r.bool("tie_word_embeddings") ?? false
        useCache = try r.bool("use_cache") ?? true
        padTokenId = try r.int("pad_token_id")
        bosTokenId = try r.int("bos_token_id")
        eosTokenIds = try r.ints("eos_token_id") ?? []
        dtype = try r.string("torch_dtype") ?? r.string("dtype")
    }
}
