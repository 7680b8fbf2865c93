// glm4_moe (GLM-4.5's MoE) against transformers: the fixture directories of Scripts/make_moe_fixtures.py load
// strictly and reproduce transformers' logits, log-probs (2e-4), expert choices and greedy generation; the KV cache,
// the fused expert form, bf16 frozen experts, strict errors and gradients through the whole model.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import TestSupport

enum MoEFixtures {
    static let names = ["moe-a", "moe-b", "moe-c", "moe-d"]

    /// The configurations Scripts/make_moe_fixtures.py builds (its BASE + FIXTURES).
    static func config(_ name: String) -> Glm4MoeConfig {
        var c = Glm4MoeConfig(vocabSize: 64, hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2, numAttentionHeads: 4,
                              numKeyValueHeads: 2, headDim: 8, maxPositionEmbeddings: 128, rmsNormEps: 1e-5,
                              moeIntermediateSize: 16, padTokenId: 0, eosTokenIds: [1, 2], numNextnPredictLayers: 0)
        switch name {
        case "moe-a":
            (c.firstKDenseReplace, c.nRoutedExperts, c.nSharedExperts, c.numExpertsPerTok) = (1, 4, 1, 2)
            (c.nGroup, c.topkGroup, c.normTopkProb, c.routedScalingFactor) = (1, 1, true, 2.5)
            (c.useQkNorm, c.attentionBias, c.tieWordEmbeddings, c.ropeTheta, c.partialRotaryFactor) = (true, true, false, 10000, 0.5)
        case "moe-b":
            c.numHiddenLayers = 3
            (c.firstKDenseReplace, c.nRoutedExperts, c.nSharedExperts, c.numExpertsPerTok) = (1, 8, 2, 3)
            (c.nGroup, c.topkGroup, c.normTopkProb, c.routedScalingFactor) = (4, 2, true, 1.0)
            (c.useQkNorm, c.attentionBias, c.tieWordEmbeddings, c.ropeTheta, c.partialRotaryFactor) = (false, false, false, 1000, 0.5)
        case "moe-d":  // int(8 · 0.375) = 3 rotary dims: odd, so 4 dims turn (transformers' frequencies θ^(-2i/3))
            (c.firstKDenseReplace, c.nRoutedExperts, c.nSharedExperts, c.numExpertsPerTok) = (1, 4, 1, 2)
            (c.nGroup, c.topkGroup, c.normTopkProb, c.routedScalingFactor) = (1, 1, true, 1.0)
            (c.useQkNorm, c.attentionBias, c.tieWordEmbeddings, c.ropeTheta, c.partialRotaryFactor) = (false, true, false, 10000, 0.375)
        default:
            (c.firstKDenseReplace, c.nRoutedExperts, c.nSharedExperts, c.numExpertsPerTok) = (0, 4, 0, 2)
            (c.nGroup, c.topkGroup, c.normTopkProb, c.routedScalingFactor) = (2, 1, false, 0.5)
            (c.useQkNorm, c.attentionBias, c.tieWordEmbeddings, c.ropeTheta, c.partialRotaryFactor) = (true, false, true, 10000, 1.0)
        }
        c.dtype = "float32"
        return c
    }

    /// A fixture model as `ModelDirectory.loadModel` (through the registry) reads it.
    static func model(_ name: String, storage: ModelDirectory.WeightStorage = .float32) throws -> Glm4MoeForCausalLM {
        try XCTUnwrap(ModelDirectory.loadModel(ModelFixtures.path(name), storage: storage) as? Glm4MoeForCausalLM)
    }
}

final class Glm4MoeModelTests: XCTestCase {
    func logits(_ model: Glm4MoeForCausalLM, _ ids: [Int32], batch: Int, positions: [Int32]? = nil) -> Tensor {
        Autograd.noGrad { model.logits(model.hiddenStates(ids: ids, batch: batch, length: ids.count / batch, positions: positions)) }
    }

    func testEveryFixtureMatchesTransformers() throws {
        var report: [String] = []
        for name in MoEFixtures.names {
            let model = try MoEFixtures.model(name)
            let f = try ModelFixtures.expected(name)
            let batchIds = try f.ids("batch.ids"), single = try f.ids("single.ids")
            let T = batchIds.count / 2
            // The experts each token picks, layer by layer, are transformers' (as sets: top-k is unsorted there).
            var picked: [Int: [Int32]] = [:]
            model.routingObserver = { event in
                let k = event.routing.topK
                picked[event.layer] = (0..<event.routing.tokens).flatMap { Array(event.routing.indices[($0 * k)..<($0 * k + k)]).sorted() }
            }
            let batchLogits = logits(model, batchIds, batch: 2)
            model.routingObserver = nil
            let errors = [("batch", Fixtures.relativeError(batchLogits, try f.tensor("batch.logits"))),
                          ("single", Fixtures.relativeError(logits(model, single, batch: 1), try f.tensor("single.logits"))),
                          ("positions", Fixtures.relativeError(logits(model, single, batch: 1, positions: try f.ids("offset.positions")),
                                                               try f.tensor("offset.logits")))]
            for (what, e) in errors { XCTAssertLessThan(e, 1e-4, "\(name) \(what) logits") }
            let moeLayers = (0..<model.config.numHiddenLayers).filter { model.config.isMoELayer($0) }
            XCTAssertEqual(Set(picked.keys), Set(moeLayers))
            for l in moeLayers {
                XCTAssertEqual(picked[l], try f.ids("routing.\(l)"), "\(name) layer \(l): experts chosen")
            }
            // Per-token log-probs of sequences of two lengths at once, within 2e-4 of transformers'.
            let scores = model.tokenLogProbs(ids: [Array(batchIds[0..<T]), single, Array(batchIds[T...])])
            let got = scores[0] + scores[2] + scores[1]
            let want = try f.tensor("batch.logprobs").scalars + f.tensor("single.logprobs").scalars
            XCTAssertEqual(got.count, want.count)
            let lpError = zip(got, want).map { Double(abs($0 - $1)) }.max()!
            XCTAssertLessThan(lpError, 2e-4, "\(name) log-probs")
            report.append("\(name): max relative logit error \(String(format: "%.2e", errors.map(\.1).max()!)), log-prob error \(String(format: "%.1e", lpError))")
        }
        print(report.joined(separator: "\n"))
    }

    func testGreedyGenerationWithTheKVCacheEqualsTransformers() throws {
        for name in MoEFixtures.names {
            let model = try MoEFixtures.model(name)
            let f = try ModelFixtures.expected(name)
            let prompt = try f.ids("generate.prompt"), expected = try f.ids("generate.tokens")
            let out = TextGenerator(model: model).generate(prompts: [prompt], maxNewTokens: expected.count, stopTokens: [])
            XCTAssertEqual(out[0].tokens, expected, name)
            // Batched with a longer prompt (left padding), the row's continuation is the same.
            let batched = TextGenerator(model: model).generate(prompts: [[9, 8, 7, 6, 5, 4], prompt], maxNewTokens: expected.count, stopTokens: [])
            XCTAssertEqual(batched[1].tokens, expected, "\(name) batched")
        }
    }

    func testIncrementalForwardEqualsFullForward() throws {
        for name in MoEFixtures.names {
            let model = try MoEFixtures.model(name)
            let ids = try ModelFixtures.expected(name).ids("batch.ids")
            let (B, T) = (2, ids.count / 2)
            func columns(_ r: Range<Int>) -> [Int32] { (0..<B).flatMap { b in r.map { ids[b * T + $0] } } }
            Autograd.noGrad {
                let full = model.hiddenStates(ids: ids, batch: B, length: T)
                let cache = model.makeCache(batch: B, capacity: 2)
                var start = 0
                for n in [3, 1, 1, 2] {
                    let h = model.hiddenStates(ids: columns(start..<(start + n)), batch: B, length: n, cache: cache)
                    XCTAssertLessThan(Fixtures.relativeError(h, full.slice(axis: 1, start: start, length: n)), 1e-5, "\(name) at \(start)")
                    start += n
                }
                XCTAssertEqual(cache.length, T)
            }
        }
    }

    func testConfigJSONReadsAndWritesAsTransformers() throws {
        for name in MoEFixtures.names {
            let path = ModelFixtures.path(name) + "/config.json"
            let parsed = try XCTUnwrap(ModelDirectory.loadConfiguration(ModelFixtures.path(name)) as? Glm4MoeConfig)
            XCTAssertEqual(parsed, MoEFixtures.config(name), name)
            // What GLMTrain writes is what transformers wrote (but transformers_version) and reads back the same.
            let written = parsed.jsonData()
            XCTAssertEqual(try Glm4MoeConfig.decode(written), parsed)
            var theirs = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? NSDictionary as? [String: Any])
            theirs["transformers_version"] = nil
            let ours = try XCTUnwrap(JSONSerialization.jsonObject(with: written) as? [String: Any])
            XCTAssertEqual(NSDictionary(dictionary: ours), NSDictionary(dictionary: theirs), name)
        }
        // The transformers 4.x form: top-level rope keys, the num_local_experts / num_mtp_layers aliases, no head_dim.
        let v4 = #"""
        {"model_type": "glm4_moe", "vocab_size": 64, "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
         "intermediate_size": 48, "moe_intermediate_size": 16, "num_hidden_layers": 2, "num_local_experts": 4,
         "num_experts_per_tok": 2, "num_mtp_layers": 0, "rope_theta": 500.0, "partial_rotary_factor": 0.25,
         "torch_dtype": "bfloat16", "eos_token_id": 1}
        """#
        let c = try Glm4MoeConfig.decode(Data(v4.utf8))
        XCTAssertEqual(c.nRoutedExperts, 4)
        XCTAssertEqual(c.numNextnPredictLayers, 0)
        XCTAssertEqual(c.headDim, 8, "hidden_size / num_attention_heads")
        XCTAssertEqual(c.ropeTheta, 500)
        XCTAssertEqual(c.rotaryDim, 2)
        XCTAssertEqual(c.dtype, "bfloat16")
        XCTAssertEqual(c.eosTokenIds, [1])
        XCTAssertEqual((c.nSharedExperts, c.firstKDenseReplace, c.attentionBias, c.routedScalingFactor) == (1, 1, false, 1.0), true, "transformers' defaults")
        // Bad values are one-line errors naming the file and key.
        func error(_ edit: String) -> String {
            // Appended last: a repeated key keeps its last value.
            let text = v4.replacingOccurrences(of: "\"eos_token_id\": 1}", with: "\"eos_token_id\": 1, \(edit)}")
            do { _ = try Glm4MoeConfig.decode(Data(text.utf8), source: "m/config.json"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error(#""use_qk_norm": 1"#), "m/config.json: key 'use_qk_norm' must be true or false, got 1")
        XCTAssertEqual(error(#""n_group": 3"#), "m/config.json: n_routed_experts 4 is not a multiple of n_group 3")
        XCTAssertEqual(error(#""n_routed_experts": 8"#), "m/config.json: keys 'n_routed_experts' and its alias 'num_local_experts' disagree")
        XCTAssertEqual(error(#""num_experts_per_tok": 5"#), "m/config.json: num_experts_per_tok 5 exceeds n_routed_experts 4")
        // bos/eos ids outside the vocabulary read as transformers keeps them; generation stops only on those inside.
        let outside = try Glm4MoeConfig.decode(Data(v4.replacingOccurrences(of: "\"eos_token_id\": 1}", with: "\"eos_token_id\": [1, 64], \"bos_token_id\": 64}").utf8))
        XCTAssertEqual((outside.eosTokenIds, outside.eosTokenIdsInVocabulary, outside.bosTokenId ?? -1) == ([1, 64], [1], 64), true)
        XCTAssertEqual(try Glm4MoeConfig.decode(outside.jsonData()).eosTokenIds, [1, 64])
        XCTAssertEqual(error(#""rope_parameters": {"rope_type": "yarn"}"#), "m/config.json: rope_type \"yarn\" is not supported; expected \"default\"")
        XCTAssertEqual(error(#""num_experts_per_tok": -1"#), "m/config.json: key 'num_experts_per_tok' must be a positive integer, got -1")
        XCTAssertEqual(error(#""n_routed_experts": 1e300"#), "m/config.json: key 'n_routed_experts' must be an integer, got 1e+300")
        XCTAssertEqual(error(#""head_dim": 0"#), "m/config.json: key 'head_dim' must be a positive integer, got 0")
        XCTAssertEqual(error(#""first_k_dense_replace": 3"#), "m/config.json: first_k_dense_replace 3 must be in 0...num_hidden_layers (2)")
        XCTAssertEqual(error(#""routed_scaling_factor": "2""#), "m/config.json: key 'routed_scaling_factor' must be a number, got \"2\"")
        XCTAssertEqual(error(#""num_nextn_predict_layers": 1, "num_mtp_layers": 2"#), "m/config.json: keys 'num_nextn_predict_layers' and its alias 'num_mtp_layers' disagree")
        XCTAssertThrowsError(try ModelRegistry.decodeConfig(Data(#"{"model_type": "qwen3_moe"}"#.utf8), source: "q/config.json")) {
            XCTAssertEqual("\($0)", #"q/config.json: model_type "qwen3_moe" is not supported; expected one of "glm", "glm4", "chatglm", "glm4_moe""#)
        }
    }

    func testSaveWritesThePerExpertLayoutTransformersWrites() throws {
        for name in MoEFixtures.names {
            let model = try MoEFixtures.model(name)
            let dir = ModelFixtures.scratch("moe-save")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try ModelDirectory.save(model, to: dir)
            let theirs = try SafetensorsFile(path: ModelFixtures.path(name) + "/model.safetensors")
            let ours = try SafetensorsFile(path: dir + "/model.safetensors")
            XCTAssertEqual(ours.names.sorted(), theirs.names.sorted(), "\(name): tensor names")
            for n in theirs.names { XCTAssertEqual(try ours.tensor(n).shape, try theirs.tensor(n).shape, n) }
            let reloaded = try XCTUnwrap(ModelDirectory.loadModel(dir, storage: .float32) as? Glm4MoeForCausalLM)
            XCTAssertEqual(reloaded.config, model.config)
            for (k, t) in model.parameters { XCTAssertTrue(t.bitwiseEqual(reloaded.parameters[k]!), "\(name) \(k)") }
        }
        // In a bf16 directory the routers and correction biases stay F32 (as transformers writes them).
        let dir = ModelFixtures.scratch("moe-save-bf16")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ModelDirectory.save(try MoEFixtures.model("moe-b"), to: dir, dtype: .bfloat16)
        let file = try SafetensorsFile(path: dir + "/model.safetensors")
        XCTAssertEqual(file.entries["model.layers.1.mlp.gate.weight"]?.dtype, .float32)
        XCTAssertEqual(file.entries["model.layers.2.mlp.gate.e_score_correction_bias"]?.dtype, .float32)
        XCTAssertEqual(file.entries["model.layers.2.mlp.experts.7.up_proj.weight"]?.dtype, .bfloat16)
        XCTAssertEqual(file.entries["model.layers.0.mlp.up_proj.weight"]?.dtype, .bfloat16)
    }

    /// With GLM_MOE_EXPORT_DIR set, writes every MoE fixture as GLMTrain saves it, for
    /// `.venv/bin/python Scripts/make_moe_fixtures.py --check $GLM_MOE_EXPORT_DIR/*` (transformers loads them).
    func testExportForTransformersCheck() throws {
        guard let root = ProcessInfo.processInfo.environment["GLM_MOE_EXPORT_DIR"] else {
            throw XCTSkip("set GLM_MOE_EXPORT_DIR to write the MoE fixture models for the transformers check")
        }
        for name in MoEFixtures.names {
            try ModelDirectory.save(try MoEFixtures.model(name), to: "\(root)/\(name)", dtype: name == "moe-b" ? .bfloat16 : .float32)
        }
    }

    func testFusedExpertTensorsLoadAsThePerExpertOnes() throws {
        let name = "moe-b"
        let weights = try ModelDirectory.loadWeights(ModelFixtures.path(name))
        let c = MoEFixtures.config(name)
        var fused = weights
        let (E, I, H) = (c.nRoutedExperts, c.moeIntermediateSize, c.hiddenSize)
        for l in 0..<c.numHiddenLayers where c.isMoELayer(l) {
            var gateUp: [Float] = [], down: [Float] = []
            for e in 0..<E {
                let p = Glm4MoeWeights.expertPrefix(l, e)
                gateUp += fused.removeValue(forKey: p + "gate_proj.weight")!.scalars + fused.removeValue(forKey: p + "up_proj.weight")!.scalars
                down += fused.removeValue(forKey: p + "down_proj.weight")!.scalars
            }
            fused[Glm4MoeWeights.layerPrefix(l) + "mlp.experts.gate_up_proj"] = Tensor(gateUp, shape: [E, 2 * I, H])
            fused[Glm4MoeWeights.layerPrefix(l) + "mlp.experts.down_proj"] = Tensor(down, shape: [E, H, I])
        }
        let a = try Glm4MoeForCausalLM(config: c, weights: weights), b = try Glm4MoeForCausalLM(config: c, weights: fused)
        XCTAssertEqual(Set(a.parameters.keys), Set(b.parameters.keys))
        for (k, t) in a.parameters { XCTAssertTrue(t.bitwiseEqual(b.parameters[k]!), k) }
        // Both forms at once, or half of the fused form, are errors naming the tensor.
        var both = fused
        both["model.layers.1.mlp.experts.0.gate_proj.weight"] = weights["model.layers.1.mlp.experts.0.gate_proj.weight"]
        XCTAssertThrowsError(try Glm4MoeForCausalLM(config: c, weights: both)) {
            XCTAssertEqual("\($0)", "model.layers.1.mlp.experts.0.gate_proj.weight: per-expert tensor beside the fused model.layers.1.mlp.experts.gate_up_proj; give one form")
        }
        var half = fused
        half["model.layers.2.mlp.experts.down_proj"] = nil
        XCTAssertThrowsError(try Glm4MoeForCausalLM(config: c, weights: half)) {
            XCTAssertTrue("\($0)".hasPrefix("model.layers.2.mlp.experts.down_proj: missing; the fused expert form needs both"), "\($0)")
        }
    }

    func testStrictLoadingNamesTheTensor() throws {
        let c = MoEFixtures.config("moe-a")
        let weights = try ModelDirectory.loadWeights(ModelFixtures.path("moe-a"))
        func error(_ w: [String: Tensor]) -> String {
            do { _ = try Glm4MoeForCausalLM(config: c, weights: w); return "no error" } catch { return "\(error)" }
        }
        var w = weights
        w["model.layers.1.mlp.experts.3.down_proj.weight"] = nil
        XCTAssertEqual(error(w), "model.layers.1.mlp.experts.3.down_proj.weight: missing; expected shape [32, 16] for a glm4_moe model with 2 layers (1 dense), 4 routed experts")
        w = weights
        w["model.layers.1.mlp.experts.4.up_proj.weight"] = Tensor(zeros: [16, 32])
        XCTAssertTrue(error(w).hasPrefix("model.layers.1.mlp.experts.4.up_proj.weight: unexpected tensor for a glm4_moe model with 2 layers (1 dense), 4 routed experts"), error(w))
        w = weights
        w["model.layers.1.mlp.gate.e_score_correction_bias"] = Tensor(zeros: [5])
        XCTAssertEqual(error(w), "model.layers.1.mlp.gate.e_score_correction_bias: shape [5]; expected [4]")
        for bad in [Float.nan, .infinity] {  // the selection bias only orders experts: nothing downstream would show it
            w = weights
            w["model.layers.1.mlp.gate.e_score_correction_bias"] = Tensor([0, 0.5, bad, 1], shape: [4])
            XCTAssertEqual(error(w), "model.layers.1.mlp.gate.e_score_correction_bias: value 2 is \(bad); the router's selection bias must be finite")
        }
        w = weights
        w["model.layers.0.mlp.gate.weight"] = Tensor(zeros: [4, 32])
        XCTAssertTrue(error(w).hasPrefix("model.layers.0.mlp.gate.weight: unexpected tensor"), "a dense layer has no router")
        // An MTP layer is optional, but all of its required tensors or none.
        var m = c
        m.numNextnPredictLayers = 1
        w = weights
        w["model.layers.2.eh_proj.weight"] = Tensor(zeros: [32, 64])
        XCTAssertThrowsError(try Glm4MoeForCausalLM(config: m, weights: w)) {
            XCTAssertTrue("\($0)".hasPrefix("model.layers.2.input_layernorm.weight: missing"), "\($0)")
        }
        XCTAssertNoThrow(try Glm4MoeForCausalLM(config: m, weights: weights))
    }

    /// Adapted experts run through gather → the adapted linears → combine; with plain linears as the "adapters" that
    /// path gives the fused path's outputs and gradients.
    func testAdaptedExpertPathEqualsTheFusedPath() throws {
        let model = try MoEFixtures.model("moe-b")
        let ids: [Int32] = (0..<14).map { Int32(($0 * 11) % 60 + 2) }, targets = Array(ids.dropFirst()) + [-100]
        let names = ["model.layers.2.mlp.gate.weight", "model.layers.1.self_attn.q_proj.weight"]
            + (0..<8).map { "model.layers.2.mlp.experts.\($0).up_proj.weight" }
        for n in names { model.parameters[n]!.setRequiresGrad(true) }
        func run() -> (Float, [[Float]]) {
            let loss = model.loss(ids: ids, targets: targets, batch: 2, length: 7)
            loss.backward()
            defer { for n in names { model.parameters[n]!.zeroGrad() } }
            return (loss.item, names.map { model.parameters[$0]!.grad?.scalars ?? [] })
        }
        let fused = run()
        var overrides: [String: LinearOverride] = [:]
        for l in model.adaptableLinears where l.kind == .expert { overrides[l.module] = { x, w, b in Tensor.linear(x, weight: w, bias: b) } }
        XCTAssertEqual(overrides.count, 2 * 8 * 3)
        model.adaptedLinears = overrides
        let composed = run()
        XCTAssertEqual(composed.0, fused.0, accuracy: 1e-5)
        XCTAssertGreaterThanOrEqual(fused.1.filter { !$0.isEmpty }.count, 4, "router, q_proj and some experts have gradients")
        for (i, (a, b)) in zip(composed.1, fused.1).enumerated() {
            XCTAssertEqual(a.isEmpty, b.isEmpty, names[i])
            if !a.isEmpty { XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 1e-5, names[i]) }
        }
    }

    func testConfigCrossFieldChecks() {
        func error(_ edit: (inout Glm4MoeConfig) -> Void) -> String {
            var c = MoEFixtures.config("moe-b")
            edit(&c)
            do { try c.validate(source: "x/config.json"); return "no error" } catch { return "\(error)" }
        }
        XCTAssertEqual(error { _ in }, "no error")
        XCTAssertEqual(error { $0.nGroup = 3 }, "x/config.json: n_routed_experts 8 is not a multiple of n_group 3")
        XCTAssertEqual(error { $0.nGroup = 8; $0.topkGroup = 2 }, "x/config.json: n_routed_experts / n_group = 1; each group needs at least 2 experts (a group's score is the sum of its top 2)")
        XCTAssertEqual(error { $0.topkGroup = 5 }, "x/config.json: topk_group 5 exceeds n_group 4")
        XCTAssertEqual(error { $0.numExpertsPerTok = 9; $0.topkGroup = 4 }, "x/config.json: num_experts_per_tok 9 exceeds n_routed_experts 8")
        XCTAssertEqual(error { $0.numExpertsPerTok = 5 }, "x/config.json: num_experts_per_tok 5 exceeds the 4 experts of the topk_group 2 groups kept (n_routed_experts / n_group = 2 each)")
        XCTAssertEqual(error { $0.firstKDenseReplace = 4 }, "x/config.json: first_k_dense_replace 4 must be in 0...num_hidden_layers (3)")
        XCTAssertEqual(error { $0.routedScalingFactor = 0 }, "x/config.json: routed_scaling_factor must be a positive finite number at most 1e6, got 0.0")
        // No rotary dims (int(head_dim·factor) = 0, or factor 0) rotate nothing, as in transformers.
        XCTAssertEqual(error { $0.partialRotaryFactor = 0.1 }, "no error")
        XCTAssertEqual(error { $0.partialRotaryFactor = 0 }, "no error")
        XCTAssertEqual(error { $0.partialRotaryFactor = -0.1 }, "x/config.json: partial_rotary_factor must be in [0, 1], got -0.1")
        let x = Tensor((0..<16).map { Float($0) * 0.37 - 2 }, shape: [1, 2, 8])
        let none = RotaryConfig.partial(headDim: 4, dims: 0, theta: 10_000)
        XCTAssertEqual(Tensor.rotary(x, config: none, positions: [3, 7]).scalars, x.scalars)
        XCTAssertEqual(Tensor.rotaryHalfSplit(x, config: none, positions: [3, 7]).scalars, x.scalars)
        XCTAssertEqual(error { $0.partialRotaryFactor = 0.375 }, "no error")  // 3 dims: 4 turn
        XCTAssertEqual(error { $0.headDim = 7; $0.partialRotaryFactor = 1 },
                       "x/config.json: rotary dims int(head_dim·partial_rotary_factor) = 7 turn 2·⌈7/2⌉ = 8 dims, more than head_dim 7")
        XCTAssertEqual(error { $0.nRoutedExperts = 0 }, "x/config.json: key 'n_routed_experts' must be a positive integer, got 0")
        XCTAssertEqual(error { $0.nRoutedExperts = 1 << 16; $0.numHiddenLayers = 40 },
                       "x/config.json: n_routed_experts 65536 over 39 MoE layers (MTP included) is more than 1048576 experts in all")
        let huge = error { $0.hiddenSize = 4096; $0.moeIntermediateSize = 1 << 20; $0.nRoutedExperts = 1024 }
        XCTAssertTrue(huge.hasPrefix("x/config.json: the parameter count: ") && huge.hasSuffix("is too large (limit \(FileLimits.maxParameters))"), huge)
    }

    func testFrozenExpertsInBF16AndTheRouterInF32() throws {
        let model = try MoEFixtures.model("moe-b")
        let f = try ModelFixtures.expected("moe-b")
        let converted = model.storeFrozenMatricesInBF16()
        XCTAssertGreaterThan(converted, 0)
        XCTAssertEqual(model.parameters["model.layers.1.mlp.experts.5.down_proj.weight"]!.dtype, .bfloat16)
        XCTAssertEqual(model.parameters["model.layers.1.mlp.gate.weight"]!.dtype, .float32, "routers stay f32")
        XCTAssertEqual(model.parameters["model.layers.1.mlp.gate.e_score_correction_bias"]!.dtype, .float32)
        let widenings = TensorStorage.widenings.current
        let lp = logits(model, try f.ids("batch.ids"), batch: 2)
        XCTAssertEqual(TensorStorage.widenings.current, widenings, "a bf16 weight was widened")
        XCTAssertLessThan(Fixtures.relativeError(lp, try f.tensor("batch.logits")), 3e-2, "bf16-rounded weights")
    }

    func testLossBackwardReachesEveryParameterButTheCorrectionBias() throws {
        let model = try MoEFixtures.model("moe-a")
        for p in model.parameters.values { p.setRequiresGrad(true) }
        let ids: [Int32] = [3, 9, 4, 4, 17, 2, 30, 8, 1, 49, 0, 7], targets: [Int32] = [9, 4, -100, 17, 2, 30, 8, 1, 49, -100, 7, 5]
        model.loss(ids: ids, targets: targets, batch: 2, length: 6).backward()
        for (name, p) in model.parameters.sorted(by: { $0.key < $1.key }) {
            if name.hasSuffix("e_score_correction_bias") { XCTAssertNil(p.grad, "the selection is not differentiable"); continue }
            if name.contains(".mlp.experts.") && p.grad == nil { continue }  // an expert no token picked
            let g = try XCTUnwrap(p.grad, "\(name) has no gradient")
            XCTAssertGreaterThan(g.scalars.map(abs).max()!, 0, "\(name) gradient is zero")
        }
    }

    /// Directional derivatives of the loss along random directions of the last MoE layer's router and experts
    /// (and of earlier parameters): perturbing them by 1e-3 moves no selection, so finite differences apply.
    func testGradientsMatchFiniteDifferences() throws {
        let model = try MoEFixtures.model("moe-a")
        for p in model.parameters.values { p.setRequiresGrad(true) }
        let ids: [Int32] = [3, 9, 4, 4, 17, 2, 30, 8, 1, 49, 0, 7], targets: [Int32] = [9, 4, -100, 17, 2, 30, 8, 1, 49, -100, 7, 5]
        model.loss(ids: ids, targets: targets, batch: 2, length: 6).backward()
        var gen = SeededGenerator(seed: 9)
        // The routed experts some token picked (the others have no gradient).
        let used = (0..<4).filter { model.parameters["model.layers.1.mlp.experts.\($0).up_proj.weight"]!.grad != nil }
        XCTAssertGreaterThanOrEqual(used.count, 2)
        let names = ["model.layers.1.mlp.gate.weight", "model.layers.1.mlp.experts.\(used[0]).gate_proj.weight",
                     "model.layers.1.mlp.experts.\(used[1]).down_proj.weight", "model.layers.1.mlp.shared_experts.up_proj.weight",
                     "model.layers.1.self_attn.q_norm.weight", "model.layers.1.self_attn.k_proj.bias",
                     "model.layers.0.mlp.down_proj.weight", "lm_head.weight"]
        for name in names {
            let p = model.parameters[name]!
            let raw = Tensor.randomNormal(p.shape, generator: &gen)
            let d = raw.scaled(1 / raw.scalars.reduce(0) { $0 + $1 * $1 }.squareRoot(), recording: false)
            let analytic = zip(try XCTUnwrap(p.grad, name).scalars, d.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let eps: Float = 1e-3, original = p.scalars
            func lossAt(_ s: Float) -> Double {
                for i in 0..<p.count { p.pointer[i] = original[i] + s * d.pointer[i] }
                return Double(Autograd.noGrad { model.loss(ids: ids, targets: targets, batch: 2, length: 6).item })
            }
            let numeric = (lossAt(eps) - lossAt(-eps)) / Double(2 * eps)
            _ = lossAt(0)
            XCTAssertEqual(numeric, analytic, accuracy: 2e-3 + 2e-2 * abs(analytic), name)
        }
    }
}
