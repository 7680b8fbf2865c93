// Training glm4_moe: pretraining from model.init and full fine-tuning learn; loss-free balancing moves the
// correction bias by ±u against the load, the bias is checkpointed and a resumed run is bit-identical; the
// sequence-level auxiliary loss is Megatron's formula and trains the router; router metrics are logged; Muon takes
// each expert's matrix; the moe: section is validated.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class MoETrainingTests: XCTestCase {
    func fixture(_ name: String) -> String { "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/\(name)" }

    func scratch(_ tag: String) -> String {
        let dir = NSTemporaryDirectory() + "glmtrain-moe-\(tag)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// Arithmetic progressions mod 60 (+3): a pattern the tiny model can learn in a few steps.
    func writeData(_ dir: String, lines: Int = 32, length: Int = 17) throws -> String {
        var gen = SeededGenerator(seed: 5)
        let text = (0..<lines).map { _ -> String in
            let a = Int(gen.next() % 60), d = 1 + Int(gen.next() % 3)
            return "{\"tokens\": \((0..<length).map { 3 + (a + $0 * d) % 60 })}"
        }.joined(separator: "\n") + "\n"
        let path = dir + "/train.jsonl"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let initConfig = """
        model_type: glm4_moe
        vocab_size: 64
        hidden_size: 32
        intermediate_size: 48
        moe_intermediate_size: 16
        num_hidden_layers: 2
        first_k_dense_replace: 1
        num_attention_heads: 4
        num_key_value_heads: 2
        head_dim: 8
        n_routed_experts: 8
        n_shared_experts: 1
        num_experts_per_tok: 2
        n_group: 2
        topk_group: 1
        routed_scaling_factor: 2.5
        use_qk_norm: true
        attention_bias: true
        max_position_embeddings: 64
        num_nextn_predict_layers: 0
        pad_token_id: 0
        eos_token_id: 1
    """

    func recipe(_ dir: String, data: String, steps: Int, extra: String = "", model: String? = nil) throws -> Recipe {
        let modelSection = model.map { "model: {path: \($0)}" }
            ?? "model:\n  init:\n" + MoETrainingTests.initConfig.split(separator: "\n").map { "    " + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
        let text = """
        task: pretrain
        \(modelSection)
        data: {train: \(data), shuffle: false}
        training: {steps: \(steps), batch_size: 4, seq_len: 17, grad_accum: 2, max_grad_norm: 1.0, seed: 3}
        optimizer: {name: adamw, lr: 3.0e-3, weight_decay: 0.0}
        schedule: {name: constant}
        checkpoint: {every: 5, keep: 10}
        output_dir: \(dir)/run
        \(extra)
        """
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/recipe.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try Recipe.load(path: path)
    }

    func biases(_ model: any CausalLanguageModel) -> [String: [Float]] {
        model.parameters.filter { $0.key.hasSuffix("e_score_correction_bias") }.mapValues(\.scalars)
    }

    func testPretrainingFromModelInitLearnsBalancesAndResumesBitIdentically() throws {
        let dir = scratch("pretrain")
        let data = try writeData(dir)
        let run = RecipeRun(recipe: try recipe(dir, data: data, steps: 20, extra: "moe: {bias_update_rate: 0.01}"))
        let summary = try run.run()
        XCTAssertTrue(run.model is Glm4MoeForCausalLM)
        let lines = try MetricsLog.read(dir + "/run/metrics.jsonl")
        let losses = lines.compactMap { $0["loss"] as? Double }
        XCTAssertEqual(losses.count, 20)
        XCTAssertLessThan(losses.last!, 0.7 * losses.first!, "the MoE model learns: \(losses)")
        // Router metrics every step: the largest load over the mean ≥ 1 ≥ the smallest.
        for l in lines {
            let maxRatio = try XCTUnwrap(l["moe/layer_1/max_load_ratio"] as? Double), minRatio = try XCTUnwrap(l["moe/layer_1/min_load_ratio"] as? Double)
            XCTAssertTrue(maxRatio >= 1 && minRatio <= 1 && minRatio >= 0, "\(maxRatio) \(minRatio)")
            XCTAssertEqual(l["moe/max_load_ratio"] as? Double, maxRatio)
        }
        // The bias moved by whole steps of ±u (from 0), within 20 steps.
        let b = try XCTUnwrap(biases(run.model)["model.layers.1.mlp.gate.e_score_correction_bias"])
        XCTAssertTrue(b.contains { $0 != 0 })
        for v in b {
            XCTAssertLessThanOrEqual(abs(v), 0.2 + 1e-6)
            XCTAssertEqual((v / 0.01).rounded(), v / 0.01, accuracy: 1e-3, "a sum of ±0.01 steps")
        }
        // The saved model and the last checkpoint hold the bias.
        let saved = try ModelDirectory.loadModel(dir + "/run/model", storage: .float32)
        XCTAssertEqual(biases(saved), biases(run.model))
        let ckpt = try TrainingCheckpoint.read(from: CheckpointDirectory(dir + "/run/checkpoints").path(forStep: 20))
        XCTAssertEqual(ckpt.tensors["model.layers.1.mlp.gate.e_score_correction_bias"]?.scalars, b)
        XCTAssertEqual(summary.finalStep, 20)

        // A second run stopped at 10 and resumed to 20 ends bit-identical (weights, bias).
        let dir2 = scratch("resume")
        let first = RecipeRun(recipe: try recipe(dir2, data: data, steps: 10, extra: "moe: {bias_update_rate: 0.01}"))
        _ = try first.run()
        let resumed = RecipeRun(recipe: try recipe(dir2, data: data, steps: 20, extra: "moe: {bias_update_rate: 0.01}"))
        XCTAssertEqual(try resumed.run(resume: true).resumedFrom, 10)
        for (k, t) in run.model.parameters { XCTAssertTrue(t.bitwiseEqual(resumed.model.parameters[k]!), "resumed \(k)") }
    }

    func testBlankInfillingPretrainingFromModelInit() throws {
        let dir = scratch("infill")
        let root = Fixtures.repositoryRoot
        let config = MoETrainingTests.initConfig.replacingOccurrences(of: "vocab_size: 64", with: "vocab_size: 2048")
            .replacingOccurrences(of: "max_position_embeddings: 64", with: "max_position_embeddings: 128")
        let text = """
        task: pretrain
        model:
          init:
        \(config.split(separator: "\n").map { "    " + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n"))
          tokenizer: \(root)/Checkpoints/glm-tiny
        data: {train: \(root)/Data/tiny-corpus/eval.jsonl, shuffle: true}
        objective: {name: blank_infilling, mask_ratio: 0.15, document_prob: 0.5}
        training: {steps: 6, batch_size: 4, seq_len: 64, seed: 1}
        optimizer: {name: adamw, lr: 3.0e-3}
        output_dir: \(dir)/run
        """
        try text.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let run = RecipeRun(recipe: try Recipe.load(path: dir + "/r.yaml"))
        _ = try run.run()
        let lines = try MetricsLog.read(dir + "/run/metrics.jsonl")
        XCTAssertEqual(lines.count, 6)
        XCTAssertTrue(lines.allSatisfy { ($0["loss"] as? Double)?.isFinite == true && $0["moe/layer_1/max_load_ratio"] != nil })
        XCTAssertLessThan(lines.last!["loss"] as! Double, lines.first!["loss"] as! Double)
        XCTAssertTrue(try ModelDirectory.loadModel(dir + "/run/model") is Glm4MoeForCausalLM)
    }

    func testBiasRuleMovesEachExpertAgainstItsLoad() throws {
        let model = try XCTUnwrap(ModelDirectory.loadModel(fixture("moe-b"), storage: .float32) as? Glm4MoeForCausalLM)
        let before = biases(model)
        let balancer = MoEBalancer(model: model, options: MoEOptions(biasUpdateRate: 0.125))
        var seen: [Int: [Int]] = [:]
        let ids: [Int32] = (0..<24).map { Int32(($0 * 7) % 60 + 2) }
        model.parameters["lm_head.weight"]!.setRequiresGrad(true)  // a recording forward pass, as in training
        _ = model.loss(ids: ids, targets: Array(ids.dropFirst()) + [-100], batch: 2, length: 12)
        seen = balancer.loads
        // Not counted: passes without the tape (evaluation, generation).
        _ = Autograd.noGrad { model.loss(ids: ids, targets: Array(ids.dropFirst()) + [-100], batch: 2, length: 12) }
        XCTAssertEqual(balancer.loads, seen)
        XCTAssertEqual(Set(seen.keys), [1, 2])
        for (_, load) in seen { XCTAssertEqual(load.reduce(0, +), 24 * 3, "every token picks top-3") }
        let metrics = balancer.finishStep()
        for (layer, load) in seen {
            let mean = Double(load.reduce(0, +)) / 8
            XCTAssertEqual(metrics["moe/layer_\(layer)/max_load_ratio"]!, Double(load.max()!) / mean, accuracy: 1e-12)
            XCTAssertEqual(metrics["moe/layer_\(layer)/min_load_ratio"]!, Double(load.min()!) / mean, accuracy: 1e-12)
            let name = Glm4MoeWeights.correctionBias(layer)
            let after = model.parameters[name]!.scalars
            for e in 0..<8 {
                let expected: Float = Double(load[e]) < mean ? 0.125 : Double(load[e]) > mean ? -0.125 : 0
                XCTAssertEqual(after[e] - before[name]![e], expected, accuracy: 1e-6, "layer \(layer) expert \(e) load \(load[e]) mean \(mean)")
            }
        }
        XCTAssertTrue(balancer.loads.isEmpty, "counting starts afresh")
        balancer.detach()
        XCTAssertNil(model.routingObserver)
    }

    func testSequenceAuxLossIsMegatronsFormulaAndDifferentiable() throws {
        let (B, T, E, K) = (2, 3, 4, 2)
        var gen = SeededGenerator(seed: 12)
        let s = Tensor.randomUniform([B * T, E], low: 0.05, high: 0.95, generator: &gen)
        s.setRequiresGrad(true)
        let loss = MoEBalancer.sequenceAuxLoss(scores: s, batch: B, length: T, topK: K)
        // Direct: mean over sequences of Σ_e f_e · mean_t p̂_{t,e}, f_e = E/(K·T)·#{t: e in topK(s_t)}.
        let v = s.scalars.map(Double.init)
        var want = 0.0
        for b in 0..<B {
            var f = [Double](repeating: 0, count: E), meanP = [Double](repeating: 0, count: E)
            for t in 0..<T {
                let row = Array(v[((b * T + t) * E)..<((b * T + t) * E + E)])
                let sum = row.reduce(0, +)
                for e in 0..<E { meanP[e] += row[e] / sum / Double(T) }
                for e in row.indices.sorted(by: { row[$0] > row[$1] }).prefix(K) { f[e] += Double(E) / Double(K * T) }
            }
            want += zip(f, meanP).map(*).reduce(0, +) / Double(B)
        }
        XCTAssertEqual(Double(loss.item), want, accuracy: 1e-6)
        XCTAssertEqual(GradientCheck.run([s], step: 1e-3) { MoEBalancer.sequenceAuxLoss(scores: $0[0], batch: B, length: T, topK: K) }, [])
    }

    func testAuxLossIsAddedLoggedAndReachesTheRouter() throws {
        let dir = scratch("aux")
        let data = try writeData(dir)
        let run = RecipeRun(recipe: try recipe(dir, data: data, steps: 3, extra: "moe: {bias_update_rate: 0.0, aux_loss_coef: 0.01}"))
        _ = try run.run()
        let lines = try MetricsLog.read(dir + "/run/metrics.jsonl")
        for l in lines { XCTAssertGreaterThan(try XCTUnwrap(l["moe/aux_loss"] as? Double), 0) }
        XCTAssertEqual(biases(run.model)["model.layers.1.mlp.gate.e_score_correction_bias"]!, [Float](repeating: 0, count: 8), "rate 0 keeps the bias")
        // The aux loss alone has a gradient in the router weight.
        let model = try XCTUnwrap(ModelDirectory.loadModel(fixture("moe-a"), storage: .float32) as? Glm4MoeForCausalLM)
        let balancer = MoEBalancer(model: model, options: MoEOptions(biasUpdateRate: 0, auxLossCoef: 1))
        let router = model.parameters["model.layers.1.mlp.gate.weight"]!
        router.setRequiresGrad(true)
        _ = model.hiddenStates(ids: [3, 4, 5, 6, 7, 8], batch: 1, length: 6)
        let aux = try XCTUnwrap(balancer.takeAuxLoss())
        aux.backward()
        XCTAssertGreaterThan(try XCTUnwrap(router.grad).scalars.map(abs).max()!, 0)
    }

    func testFullFineTuningWithMuonRoutesEachExpertMatrix() throws {
        let dir = scratch("muon")
        let data = try writeData(dir)
        let run = RecipeRun(recipe: try recipe(dir, data: data, steps: 6, extra: "", model: fixture("moe-b"))
            .with { $0.optimizer.name = "muon"; $0.optimizer.lr = 0.02; $0.optimizer.adamwLR = 3e-3 })
        _ = try run.run()
        let losses = try MetricsLog.read(dir + "/run/metrics.jsonl").compactMap { $0["loss"] as? Double }
        XCTAssertLessThan(losses.last!, losses.first!)
        let groups = MuonWithAdamW().partition(run.trainable)
        let muonNames = Set(groups.muon.map(\.name))
        for e in 0..<8 {
            for w in ["gate_proj", "up_proj", "down_proj"] {
                XCTAssertTrue(muonNames.contains("model.layers.2.mlp.experts.\(e).\(w).weight"), "expert \(e) \(w) goes to Muon")
            }
        }
        XCTAssertFalse(muonNames.contains("model.layers.1.mlp.gate.e_score_correction_bias"))
        // Default rate 0.001 for pretraining (here from a model directory): the bias moved.
        let original = try ModelDirectory.loadModel(fixture("moe-b"), storage: .float32)
        XCTAssertNotEqual(biases(run.model), biases(original))
    }

    func testLoRAOnAttentionDenseAndSharedExpertsKeepsTheRouterFrozen() throws {
        let dir = scratch("lora")
        let data = try writeData(dir)
        let run = RecipeRun(recipe: try recipe(dir, data: data, steps: 8, extra: "lora: {rank: 4, alpha: 8}", model: fixture("moe-a"))
            .with { $0.optimizer.lr = 1e-2 })
        let events = EventLog()
        run.observer = events
        _ = try run.run()
        XCTAssertTrue(events.warnings.contains { $0.contains("which peft's layout cannot hold beside the routed experts") },
                      "\(events.warnings)")
        let losses = try MetricsLog.read(dir + "/run/metrics.jsonl").compactMap { $0["loss"] as? Double }
        XCTAssertLessThan(losses.last!, losses.first!)
        // Without lora.targets, every declared linear: attention, the dense MLP (layer 0), the shared expert and the
        // four routed experts (layer 1).
        let lora = try XCTUnwrap(run.lora)
        XCTAssertEqual(Set(lora.pairs.map(\.moduleName)), Set(run.model.adaptableLinears.map(\.module)))
        XCTAssertTrue(lora.pairs.contains { $0.moduleName == "model.layers.1.mlp.shared_experts.gate_proj" })
        XCTAssertTrue(lora.pairs.contains { $0.moduleName == "model.layers.1.mlp.experts.3.down_proj" })
        XCTAssertTrue(lora.pairs.contains { $0.linear.kind == .expert && $0.b.scalars.contains { $0 != 0 } }, "routed-expert adapters train")
        XCTAssertTrue(lora.pairs.contains { $0.moduleName == "model.layers.0.mlp.down_proj" })
        // The base, the router and its bias are untouched (rate 0 under LoRA).
        let base = try ModelDirectory.loadModel(fixture("moe-a"), storage: .float32)
        for (k, t) in base.parameters { XCTAssertTrue(t.bitwiseEqual(run.model.parameters[k]!), k) }
        // The PEFT adapter holds those modules under their HF names; base + adapter scores as the merged model.
        let adapter = try PEFTAdapter.load(directory: dir + "/run/adapter", model: run.config)
        XCTAssertTrue(adapter.tensors.keys.contains("model.layers.1.mlp.shared_experts.up_proj.lora_B.weight"))
        XCTAssertEqual(adapter.moduleNames.count, 14 + 12)
        XCTAssertTrue(adapter.tensors.keys.contains("model.layers.1.mlp.experts.2.gate_proj.lora_A.weight"))
        let ids: [[Int32]] = [[3, 9, 27, 4, 44, 12, 5, 8]]
        let adapted = run.model.tokenLogProbs(ids: ids)[0]
        try run.saveModel(to: dir + "/merged")
        let merged = try ModelDirectory.loadModel(dir + "/merged", storage: .float32)
        XCTAssertTrue(merged is Glm4MoeForCausalLM)
        for (a, m) in zip(adapted, merged.tokenLogProbs(ids: ids)[0]) { XCTAssertEqual(a, m, accuracy: 1e-4) }
        let plain = base.tokenLogProbs(ids: ids)[0]
        XCTAssertGreaterThan(zip(adapted, plain).map { abs($0 - $1) }.max()!, 1e-3, "the adapter changes the model")
    }

    func testMoESectionIsValidated() throws {
        let dir = scratch("errors")
        let data = try writeData(dir)
        XCTAssertThrowsError(try recipe(dir, data: data, steps: 1, extra: "moe: {bias_rate: 0.1}")) {
            XCTAssertTrue("\($0)".contains("moe.bias_rate"), "\($0)")
        }
        XCTAssertThrowsError(try recipe(dir, data: data, steps: 1, extra: "moe: {bias_update_rate: -1}")) {
            XCTAssertTrue("\($0)".contains("moe.bias_update_rate"), "\($0)")
        }
        let glm = RecipeRun(recipe: try recipe(dir, data: data, steps: 1, extra: "moe: {aux_loss_coef: 0.1}",
                                               model: "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm4"))
        XCTAssertThrowsError(try glm.run()) { XCTAssertTrue("\($0)".hasSuffix("moe: this glm4 model has no routed experts"), "\($0)") }
        let lora = RecipeRun(recipe: try recipe(dir + "/b", data: data, steps: 1, extra: "moe: {bias_update_rate: 0.001}\nlora: {rank: 2, targets: [q_proj, gate_proj]}",
                                                model: fixture("moe-a")))
        XCTAssertThrowsError(try lora.run()) { XCTAssertTrue("\($0)".contains("moe.bias_update_rate: 0.001 with LoRA"), "\($0)") }
    }
}

final class EventLog: TrainerObserver {
    var warnings: [String] = []
    func trainerDidReport(_ event: TrainerEvent) { if case .warning(let w) = event { warnings.append(w) } }
}

extension Recipe {
    func with(_ edit: (inout Recipe) -> Void) -> Recipe { var r = self; edit(&r); return r }
}
