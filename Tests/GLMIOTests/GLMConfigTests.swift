// config.json decoding (transformers 5, transformers 4.x, legacy chatglm), defaults, errors, and the written form.
import XCTest
import Foundation
import GLMCore
import GLMModel
import GLMIO

final class GLMConfigTests: XCTestCase {
    func decode(_ json: String) throws -> GLMConfig { try GLMConfig.decode(Data(json.utf8)) }

    func testTransformers5Form() throws {
        let c = try decode("""
        {"architectures": ["Glm4ForCausalLM"], "model_type": "glm4", "vocab_size": 151552, "hidden_size": 4096,
         "intermediate_size": 13696, "num_hidden_layers": 40, "num_attention_heads": 32, "num_key_value_heads": 2,
         "head_dim": 128, "rms_norm_eps": 1e-05, "max_position_embeddings": 32768, "attention_bias": true,
         "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
         "tie_word_embeddings": false, "dtype": "bfloat16", "eos_token_id": [151329, 151336, 151338], "pad_token_id": 151329}
        """)
        XCTAssertEqual(c.modelType, .glm4)
        XCTAssertEqual(c.rotaryDim, 64)
        XCTAssertEqual(c.rmsNormEps, 1e-5)
        XCTAssertEqual(c.dtype, "bfloat16")
        XCTAssertEqual(c.eosTokenIds, [151329, 151336, 151338])
        XCTAssertEqual(c.maxPositionEmbeddings, 32768)
        XCTAssertFalse(c.rotary2D)
    }

    func testTransformers4FormAndIntegerEos() throws {
        let c = try decode("""
        {"model_type": "glm", "vocab_size": 59264, "hidden_size": 2048, "num_attention_heads": 16, "num_key_value_heads": 4,
         "head_dim": 128, "rope_theta": 10000.0, "partial_rotary_factor": 1.0, "torch_dtype": "bfloat16",
         "eos_token_id": 59246, "attention_bias": false, "tie_word_embeddings": true, "pad_token_id": 59246}
        """)
        XCTAssertEqual(c.rotaryDim, 128)
        XCTAssertEqual(c.dtype, "bfloat16")
        XCTAssertEqual(c.eosTokenIds, [59246])
        XCTAssertFalse(c.attentionBias)
        XCTAssertTrue(c.tieWordEmbeddings)
    }

    func testMissingKeysTakeTransformersDefaults() throws {
        let c = try decode(#"{"model_type": "glm", "rope_parameters": {"rope_theta": 500.0, "rope_type": "default"}}"#)
        XCTAssertEqual(c.partialRotaryFactor, 0.5)   // glm-4-9b-chat-hf omits it
        XCTAssertEqual(c.ropeTheta, 500)
        XCTAssertEqual(c.headDim, 128)               // GlmConfig's class default when the key is absent
        XCTAssertEqual(c.numKeyValueHeads, 2)
        XCTAssertTrue(c.attentionBias)
        XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertEqual(c.rmsNormEps, 1.5625e-07)
        XCTAssertEqual(c.padTokenId, 151329)
        XCTAssertEqual(c.eosTokenIds, [151329, 151336, 151338])
        XCTAssertEqual(c, GLMConfig().with { $0.ropeTheta = 500 })
        // Explicit nulls take the derived values.
        let n = try decode(#"{"model_type": "glm", "hidden_size": 64, "num_attention_heads": 4, "head_dim": null, "num_key_value_heads": null, "vocab_size": 256, "pad_token_id": 0}"#)
        XCTAssertEqual(n.headDim, 16)
        XCTAssertEqual(n.numKeyValueHeads, 4)
    }

    func testLegacyChatGLMConfig() throws {
        // Shape of THUDM/glm-4-9b-chat's config.json (reference/glm.md §B.5).
        let c = try decode("""
        {"_name_or_path": "THUDM/glm-4-9b-chat", "model_type": "chatglm", "add_bias_linear": false, "add_qkv_bias": true,
         "apply_query_key_layer_scaling": true, "apply_residual_connection_post_layernorm": false, "attention_dropout": 0.0,
         "attention_softmax_in_fp32": true, "bias_dropout_fusion": true, "ffn_hidden_size": 13696, "fp32_residual_connection": false,
         "hidden_dropout": 0.0, "hidden_size": 4096, "kv_channels": 128, "layernorm_epsilon": 1.5625e-07, "rope_ratio": 500,
         "multi_query_attention": true, "multi_query_group_num": 2, "num_attention_heads": 32, "num_layers": 40,
         "original_rope": true, "padded_vocab_size": 151552, "post_layer_norm": true, "rmsnorm": true, "seq_length": 131072,
         "use_cache": true, "torch_dtype": "bfloat16", "transformers_version": "4.42.4", "tie_word_embeddings": false,
         "eos_token_id": [151329, 151336, 151338], "pad_token_id": 151329}
        """)
        XCTAssertEqual(c.modelType, .glm)
        XCTAssertEqual(c.vocabSize, 151552)
        XCTAssertEqual(c.numHiddenLayers, 40)
        XCTAssertEqual(c.intermediateSize, 13696)
        XCTAssertEqual(c.numKeyValueHeads, 2)
        XCTAssertEqual(c.headDim, 128)
        XCTAssertEqual(c.maxPositionEmbeddings, 131072)
        XCTAssertEqual(c.rmsNormEps, 1.5625e-07)
        XCTAssertEqual(c.ropeTheta, 5_000_000)
        XCTAssertEqual(c.rotaryDim, 64)
        XCTAssertTrue(c.attentionBias)
        XCTAssertEqual(c.dtype, "bfloat16")
        // Without multi_query_attention every head has its own K/V.
        let mha = try decode(#"{"model_type": "chatglm", "num_attention_heads": 8, "multi_query_group_num": 2, "pad_token_id": 0}"#)
        XCTAssertEqual(mha.numKeyValueHeads, 8)
        XCTAssertEqual(mha.vocabSize, 65024)
    }

    func testANonEmptyRopeScalingReplacesRopeParametersAsTransformersDoes() throws {
        // transformers 5.25 convert_rope_params_to_dict: rope_parameters = rope_scaling or rope_parameters; the keys
        // rope_scaling lacks come from the top level or the class defaults (found by a fidelity sweep: log-probs
        // were 0.17-0.61 apart when rope_parameters was kept).
        let base = #""model_type": "MT", "vocab_size": 64, "hidden_size": 32, "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 16, "pad_token_id": 0, "num_hidden_layers": 1, "intermediate_size": 32, "moe_intermediate_size": 8, "n_routed_experts": 2, "num_experts_per_tok": 1, "n_shared_experts": 1, "rope_parameters": {"rope_type": "default", "rope_theta": 500.0, "partial_rotary_factor": 0.75}"#
        for type in ["glm", "glm4"] {
            let head = base.replacingOccurrences(of: "MT", with: type)
            func read(_ extra: String) throws -> GLMConfig { try GLMConfig.decode(Data("{\(head)\(extra)}".utf8)) }
            let kept = try read("")
            XCTAssertEqual([kept.ropeTheta, kept.partialRotaryFactor], [500, 0.75])
            let bare = try read(#", "rope_scaling": {"type": "default"}"#)
            XCTAssertEqual([bare.ropeTheta, bare.partialRotaryFactor], [10000, 0.5], type)
            let full = try read(#", "rope_scaling": {"rope_type": "default", "rope_theta": 100.0, "partial_rotary_factor": 1.0}"#)
            XCTAssertEqual([full.ropeTheta, full.partialRotaryFactor], [100, 1.0], type)
            let topLevel = try read(#", "rope_scaling": {"type": "default"}, "rope_theta": 42.0, "partial_rotary_factor": 0.25"#)
            XCTAssertEqual([topLevel.ropeTheta, topLevel.partialRotaryFactor], [42, 0.25], type)
            for empty in [#", "rope_scaling": {}"#, #", "rope_scaling": null"#] {
                let c = try read(empty)
                XCTAssertEqual([c.ropeTheta, c.partialRotaryFactor], [500, 0.75], empty)
            }
        }
        let moe = try Glm4MoeConfig.decode(Data("{\(base.replacingOccurrences(of: "MT", with: "glm4_moe")), \"rope_scaling\": {\"type\": \"default\"}}".utf8))
        XCTAssertEqual([moe.ropeTheta, moe.partialRotaryFactor], [10000, 0.5])
    }

    func testRotary2DExtensionKey() throws {
        let c = try decode(#"{"model_type": "glm", "rotary_2d": true}"#)
        XCTAssertTrue(c.rotary2D)
        XCTAssertTrue(c.rotary.twoDimensional)
        let text = String(decoding: c.jsonData(), as: UTF8.self)
        XCTAssertTrue(text.contains("\"rotary_2d\": true"))
        XCTAssertFalse(String(decoding: GLMConfig().jsonData(), as: UTF8.self).contains("rotary_2d"))
    }

    func testErrorsNameTheKeyOnOneLine() {
        let cases: [(String, String)] = [
            (#"{"model_type": "llama"}"#, "model_type \"llama\""),
            (#"{"hidden_size": 64}"#, "model_type"),
            (#"{"model_type": "glm", "hidden_size": "big"}"#, "'hidden_size'"),
            (#"{"model_type": "glm", "rope_parameters": {"rope_theta": "x"}}"#, "'rope_parameters.rope_theta'"),
            (#"{"model_type": "glm", "rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4}}"#, "rope_type \"yarn\""),
            (#"{"model_type": "glm", "num_attention_heads": 6, "num_key_value_heads": 4}"#, "num_key_value_heads"),
            (#"{"model_type": "glm", "vocab_size": 256}"#, "pad_token_id is not set, and transformers' default 151329 is outside the vocabulary of 256"),
            (#"{"model_type": "glm", "hidden_act": "gelu"}"#, "hidden_act"),
            (#"{"model_type": "glm", "eos_token_id": "x"}"#, "'eos_token_id'"),
            (#"{"model_type": "chatglm", "rmsnorm": false}"#, "'rmsnorm'"),
            (#"{"model_type": "chatglm", "position_encoding_2d": true}"#, "position_encoding_2d"),
            (#"{"model_type": "glm", "rotary_2d": true, "head_dim": 12, "partial_rotary_factor": 0.5}"#, "multiple of 4"),
            ("[1, 2]", "JSON object"),
            ("{not json", "not valid JSON"),
        ]
        for (json, expected) in cases {
            XCTAssertThrowsError(try GLMConfig.decode(Data(json.utf8), source: "dir/config.json"), json) { error in
                let message = "\(error)"
                XCTAssertTrue(error is GLMError, "\(type(of: error))")
                XCTAssertTrue(message.hasPrefix("dir/config.json: ") && message.contains(expected), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
    }

    func testWritesTransformers5FormAndRoundTrips() throws {
        var c = try decode(#"{"model_type": "glm", "rope_theta": 500.0, "partial_rotary_factor": 1.0, "torch_dtype": "float32", "eos_token_id": 7, "vocab_size": 300, "pad_token_id": 3}"#)
        c.dtype = "bfloat16"
        let text = String(decoding: c.jsonData(), as: UTF8.self)
        for fragment in ["\"rope_parameters\": {", "\"rope_theta\": 500.0", "\"partial_rotary_factor\": 1.0", "\"rope_type\": \"default\"",
                         "\"dtype\": \"bfloat16\"", "\"eos_token_id\": 7", "\"architectures\": [", "\"GlmForCausalLM\"",
                         "\"attention_dropout\": 0.0", "\"bos_token_id\": null", "\"hidden_size\": 4096"] {
            XCTAssertTrue(text.contains(fragment), "\(fragment) not in \(text)")
        }
        XCTAssertFalse(text.contains("torch_dtype"))
        XCTAssertFalse(text.contains("\"rope_theta\": 500.0,\n  \"rms"))  // not at top level
        XCTAssertEqual(try GLMConfig.decode(c.jsonData()), c)
        // Codable goes through the same form.
        let viaCodable = try JSONDecoder().decode(GLMConfig.self, from: try JSONEncoder().encode(c))
        XCTAssertEqual(viaCodable, c)
    }
}

extension GLMConfig {
    func with(_ change: (inout GLMConfig) -> Void) -> GLMConfig { var c = self; change(&c); return c }
}
