// Hostile config.json values: sizes that overflow, absurd counts, garbage values — each a one-line error naming
// the key, checked before anything is allocated.
import XCTest
import Foundation
import GLMCore
import GLMModel
import GLMIO

final class ConfigHostileTests: XCTestCase {
    /// A valid tiny glm config with `change` ("key": literal, ...) replacing or adding keys.
    func config(_ change: String) -> String {
        var keys: [String: String] = ["model_type": "\"glm\"", "vocab_size": "64", "hidden_size": "32", "intermediate_size": "48",
                                      "num_hidden_layers": "2", "num_attention_heads": "4", "num_key_value_heads": "2",
                                      "head_dim": "8", "max_position_embeddings": "128", "pad_token_id": "0", "eos_token_id": "1"]
        // Top-level `"key": value` pairs of the change (values are numbers, strings or flat lists).
        let pair = try! NSRegularExpression(pattern: #""([a-z_]+)":\s*(\[[^\]]*\]|"[^"]*"|[^,]+)"#)
        let ns = change as NSString
        for m in pair.matches(in: change, range: NSRange(location: 0, length: ns.length)) {
            keys[ns.substring(with: m.range(at: 1))] = ns.substring(with: m.range(at: 2)).trimmingCharacters(in: .whitespaces)
        }
        return "{" + keys.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
    }

    func assertError(_ change: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try GLMConfig.decode(Data(config(change).utf8), source: "m/config.json"), change, file: file, line: line) { e in
            let m = (e as? GLMError)?.message ?? "\(e)"
            XCTAssertTrue(m.hasPrefix("m/config.json: "), m, file: file, line: line)
            XCTAssertTrue(m.contains(expected), "'\(expected)' not in: \(m)", file: file, line: line)
        }
    }

    func testTheBaseConfigIsValid() throws {
        let c = try GLMConfig.decode(Data(config("").utf8))
        XCTAssertEqual(c.hiddenSize, 32)
        XCTAssertEqual(c.numHiddenLayers, 2)
    }

    func testSizesNear2To62AreErrorsNotOverflowTraps() {
        for key in ["intermediate_size", "num_attention_heads", "head_dim", "hidden_size", "vocab_size", "num_key_value_heads"] {
            assertError("\"\(key)\": 4611686018427387904", "key '\(key)' is 4611686018427387904; at most \(FileLimits.maxModelDimension)")
        }
    }

    func testLayerCountsAreBoundedBeforeAnyAllocation() {
        assertError("\"num_hidden_layers\": 1e12", "key 'num_hidden_layers' is 1000000000000; at most \(FileLimits.maxLayers)")
        assertError("\"num_hidden_layers\": 0", "key 'num_hidden_layers' must be a positive integer")
    }

    func testParameterCountAndTensorSizesAreBounded() {
        // Each dimension within bounds, but vocab × hidden beyond the element limit.
        assertError("\"vocab_size\": 16777216, \"hidden_size\": 16777216, \"head_dim\": 4194304", "model.embed_tokens.weight: shape [16777216, 16777216] has more than")
    }

    func testGarbageValuesAreErrors() {
        assertError("\"dtype\": \"int4\"", "dtype \"int4\" is not supported")
        assertError("\"torch_dtype\": \"float8\"", "dtype \"float8\" is not supported")
        assertError("\"rms_norm_eps\": 1e300", "rms_norm_eps must be in (0, 1)")
        assertError("\"rms_norm_eps\": 0", "rms_norm_eps must be in (0, 1)")
        assertError("\"pad_token_id\": 64", "pad_token_id 64 is outside the vocabulary")
        assertError("\"max_position_embeddings\": 0", "max_position_embeddings must be in 1...")
        assertError("\"max_position_embeddings\": -5", "max_position_embeddings must be in 1...")
        assertError("\"initializer_range\": 1e300", "initializer_range must be in [0, 10]")
        assertError("\"attention_dropout\": 2", "attention_dropout must be in [0, 1]")
        assertError("\"rope_theta\": 1e300", "rope_theta must be a finite number")
    }

    func testTokenIdsOutsideTheVocabularyReadAndWriteAsTransformersKeepsThem() throws {
        // transformers' save_pretrained of GlmConfig(vocab_size=256, pad_token_id=0) writes the class defaults
        // eos_token_id [151329, 151336, 151338]; transformers loads that directory, and so must we (it was refused).
        let saved = try GLMConfig.decode(Data(#"{"model_type": "glm", "vocab_size": 256, "pad_token_id": 0, "eos_token_id": [151329, 151336, 151338]}"#.utf8))
        XCTAssertEqual(saved.eosTokenIds, [151329, 151336, 151338])
        XCTAssertEqual(saved.eosTokenIdsInVocabulary, [], "ids that can never be generated stop nothing")
        // Absent: the same defaults; written as transformers writes them, and read back unchanged.
        let c = try GLMConfig.decode(Data(#"{"model_type": "glm", "vocab_size": 256, "pad_token_id": 0}"#.utf8))
        XCTAssertEqual(c.eosTokenIds, [151329, 151336, 151338])
        XCTAssertTrue(String(decoding: c.jsonData(), as: UTF8.self).contains("151338"))
        XCTAssertEqual(try GLMConfig.decode(c.jsonData()), c)
        // A mix keeps every id; only those in the vocabulary stop generation. bos and negative ids likewise.
        let mixed = try GLMConfig.decode(Data(config(#""eos_token_id": [1, 64, -1], "bos_token_id": 1000"#).utf8))
        XCTAssertEqual(mixed.eosTokenIds, [1, 64, -1])
        XCTAssertEqual(mixed.eosTokenIdsInVocabulary, [1])
        XCTAssertEqual(mixed.bosTokenId, 1000)
        XCTAssertEqual(try GLMConfig.decode(mixed.jsonData()), mixed)
        // An empty list stays empty (null would read back as the defaults).
        var none = c
        none.eosTokenIds = []
        XCTAssertEqual(try GLMConfig.decode(none.jsonData()).eosTokenIds, [])
    }

    func testDeeplyNestedJSONIsAnErrorNotAStackOverflow() {
        let deep = "{\"model_type\": \"glm\", \"x\": " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        XCTAssertThrowsError(try GLMConfig.decode(Data(deep.utf8), source: "m/config.json")) { e in
            XCTAssertEqual((e as? GLMError)?.message, "m/config.json: nested deeper than \(FileLimits.maxNestingDepth) levels")
        }
    }
    func testAnExplicitNullIsAnErrorWhereTransformersRefusesIt() throws {
        // transformers 5 refuses these nulls (typed config fields); taking the default instead silently changed
        // the model (rope_theta null ran at 10000 on weights trained at another base).
        for key in ["rope_theta", "partial_rotary_factor", "hidden_size", "rms_norm_eps", "tie_word_embeddings", "attention_bias"] {
            assertError("\"\(key)\": null", "key '\(key)' is null; expected a value")
        }
        for key in ["rope_theta", "partial_rotary_factor"] {
            let text = config("").dropLast() + ", \"rope_parameters\": {\"rope_type\": \"default\", \"\(key)\": null}}"
            XCTAssertThrowsError(try GLMConfig.decode(Data(text.utf8), source: "m/config.json")) { e in
                XCTAssertEqual((e as? GLMError)?.message, "m/config.json: key 'rope_parameters.\(key)' is null; expected a value (leave the key out for its default)")
            }
        }
        // glm4_moe too, its MoE keys included; nulls transformers accepts still take the derived value.
        let moe = #"{"model_type": "glm4_moe", "vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": null, "head_dim": 8, "n_routed_experts": 4, "num_experts_per_tok": 2, "n_group": 1, "topk_group": 1, "first_k_dense_replace": 1, "pad_token_id": 0"#
        XCTAssertEqual((try ModelRegistry.decodeConfig(Data((moe + "}").utf8), source: "c") as? Glm4MoeConfig)?.numKeyValueHeads, 4)
        for key in ["norm_topk_prob", "n_shared_experts", "routed_scaling_factor", "rope_theta"] {
            XCTAssertThrowsError(try ModelRegistry.decodeConfig(Data((moe + ", \"\(key)\": null}").utf8), source: "m/config.json")) { e in
                XCTAssertTrue("\(e)".contains("key '\(key)' is null"), "\(e)")
            }
        }
    }
}
