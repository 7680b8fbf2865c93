// The MTP loss in training: `mtp: {loss_weight: λ}` adds λ·mtp_loss to the objective (checked against a direct
// computation), logs `mtp_loss`, trains and checkpoints the MTP layer (fresh when the model has none), and the trained
// layer's drafts are accepted by self-speculative decoding, whose output stays plain greedy decoding's. λ = 0 keeps the
// layer frozen; the section is validated.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class MTPTrainingTests: XCTestCase {
    func fixture(_ name: String) -> String { "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/\(name)" }

    /// Arithmetic progressions mod 60 (+3), as MoETrainingTests writes them.
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

    func scratch(_ tag: String) -> String {
        let dir = NSTemporaryDirectory() + "glmtrain-mtp-\(tag)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// MoETrainingTests' tiny MoE recipe (its model.init with one MTP layer, or `model` as the path).
    func mtpRecipe(_ dir: String, data: String, steps: Int, extra: String, model: String? = nil, checkpointEvery: Int = 20) throws -> Recipe {
        let initConfig = MoETrainingTests.initConfig.replacingOccurrences(of: "num_nextn_predict_layers: 0", with: "num_nextn_predict_layers: 1")
        let modelSection = model.map { "model: {path: \($0)}" }
            ?? "model:\n  init:\n" + initConfig.split(separator: "\n").map { "    " + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
        let text = """
        task: pretrain
        \(modelSection)
        data: {train: \(data), shuffle: false}
        training: {steps: \(steps), batch_size: 4, seq_len: 17, grad_accum: 2, max_grad_norm: 1.0, seed: 3}
        optimizer: {name: adamw, lr: 3.0e-3, weight_decay: 0.0}
        schedule: {name: constant}
        checkpoint: {every: \(checkpointEvery), keep: 2}
        output_dir: \(dir)/run
        \(extra)
        """
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try text.write(toFile: dir + "/recipe.yaml", atomically: true, encoding: .utf8)
        return try Recipe.load(path: dir + "/recipe.yaml")
    }

    func testObjectiveIsLossPlusLambdaTimesTheMTPLoss() throws {
        let model = try XCTUnwrap(ModelDirectory.loadModel(fixture("moe-mtp"), storage: .float32) as? Glm4MoeForCausalLM)
        let ids: [Int32] = [3, 9, 4, 4, 17, 2, 30, 8, 1, 49, 0, 7]
        let targets: [Int32] = [9, 4, 4, 17, 2, -100, 8, 1, -100, 0, 7, 5]  // row 2 ends with a token beyond its ids
        let batch = TrainingBatch(batch: 2, length: 6, ids: ids, targets: targets)
        let objective = MTPLossObjective(NextTokenObjective(), model: model, lossWeight: 0.3)
        let r = try Autograd.noGrad { try objective.loss(model: model, batch: batch) }
        let main = Autograd.noGrad { model.loss(ids: ids, targets: targets, batch: 2, length: 6).item }
        // By hand: row t reads token t+1 and predicts targets[t+1] where targets[t] and targets[t+1] both count.
        let next: [Int32] = [9, 4, 4, 17, 2, 2, 8, 1, 49, 0, 7, 7]
        let mtpTargets: [Int32] = [4, 4, 17, 2, -100, -100, 1, -100, -100, 7, 5, -100]
        XCTAssertEqual(MTPLossObjective.shifted(ids: ids, targets: targets, batch: 2, length: 6).nextIds, next)
        XCTAssertEqual(MTPLossObjective.shifted(ids: ids, targets: targets, batch: 2, length: 6).targets, mtpTargets)
        let mtp = Autograd.noGrad {
            Tensor.linearCrossEntropy(hidden: model.mtpHiddenStates(hidden: model.hiddenStates(ids: ids, batch: 2, length: 6), nextIds: next,
                                                                    batch: 2, length: 6, positions: nil, mask: nil, cache: nil,
                                                                    firstPosition: MTPFirstPosition.keep),
                                      weight: model.mtpHead, targets: mtpTargets).item
        }
        XCTAssertEqual(try XCTUnwrap(r.metrics["mtp_loss"]), Double(mtp), accuracy: 1e-6)
        XCTAssertEqual(r.loss.item, main + 0.3 * mtp, accuracy: 1e-5)
        XCTAssertNil(model.forwardObserver)
        // Targets that are not next tokens (another objective's) are an error, not a silent wrong loss.
        var shuffled = batch
        shuffled.targets[0] = 33
        XCTAssertThrowsError(try Autograd.noGrad { try objective.loss(model: model, batch: shuffled) }) {
            XCTAssertTrue("\($0)".contains("targets are not the next tokens"), "\($0)")
        }
    }

    func testMTPTrainingLearnsLogsCheckpointsAndDraftsAreAccepted() throws {
        let dir = scratch("mtp-train")
        let data = try writeData(dir)
        let run = RecipeRun(recipe: try mtpRecipe(dir, data: data, steps: 40, extra: "moe: {bias_update_rate: 0.0}\nmtp: {loss_weight: 0.3}"))
        _ = try run.run()
        let lines = try MetricsLog.read(dir + "/run/metrics.jsonl")
        let mtp = lines.compactMap { $0["mtp_loss"] as? Double }
        XCTAssertEqual(mtp.count, 40, "mtp_loss every step")
        XCTAssertLessThan(mtp.last!, 0.5 * mtp.first!, "the MTP layer learns: \(mtp)")
        let ckpt = try TrainingCheckpoint.read(from: CheckpointDirectory(dir + "/run/checkpoints").path(forStep: 40))
        XCTAssertNotNil(ckpt.tensors["model.layers.2.eh_proj.weight"], "the MTP layer is checkpointed")
        let saved = try XCTUnwrap(ModelDirectory.loadModel(dir + "/run/model", storage: .float32) as? Glm4MoeForCausalLM)
        XCTAssertTrue(saved.hasMTPLayer)
        // Self-speculative decoding on the trained model: greedy's tokens, most drafts accepted.
        var stats = SpeculativeStats()
        for a in [4, 10, 30] {
            let prompt = (0..<5).map { Int32(3 + (a + 2 * $0) % 60) }
            let plain = TextGenerator(model: saved).generate(prompts: [prompt], maxNewTokens: 12, stopTokens: [])[0]
            let (spec, s) = SpeculativeGenerator(model: saved).generate(prompt: prompt, maxNewTokens: 12, stopTokens: [])
            XCTAssertEqual(spec.tokens, plain.tokens)
            stats.drafted += s.drafted; stats.accepted += s.accepted
        }
        XCTAssertGreaterThan(stats.acceptanceRate, 0.5, "\(stats)")
        print("trained tiny MoE: acceptance \(stats.accepted)/\(stats.drafted)")
    }

    func testMTPTrainingResumesBitIdentically() throws {
        let dir = scratch("mtp-resume"), data = try writeData(dir)
        let extra = "mtp: {loss_weight: 0.2}"
        let straight = RecipeRun(recipe: try mtpRecipe(dir + "/a", data: data, steps: 8, extra: extra, checkpointEvery: 4))
        _ = try straight.run()
        let first = RecipeRun(recipe: try mtpRecipe(dir + "/b", data: data, steps: 4, extra: extra, checkpointEvery: 4))
        _ = try first.run()
        let resumed = RecipeRun(recipe: try mtpRecipe(dir + "/b", data: data, steps: 8, extra: extra, checkpointEvery: 4))
        XCTAssertEqual(try resumed.run(resume: true).resumedFrom, 4)
        XCTAssertNotNil(resumed.model.parameters["model.layers.2.eh_proj.weight"])
        for (k, t) in straight.model.parameters { XCTAssertTrue(t.bitwiseEqual(resumed.model.parameters[k]!), "resumed \(k)") }
    }

    func testWeightZeroKeepsTheMTPLayerFrozenAndUncomputed() throws {
        let dir = scratch("mtp-frozen")
        let data = try writeData(dir)
        let run = RecipeRun(recipe: try mtpRecipe(dir, data: data, steps: 2, extra: "mtp: {loss_weight: 0}", model: fixture("moe-mtp")))
        _ = try run.run()
        XCTAssertFalse(run.trainable.contains { $0.name.hasPrefix("model.layers.2.") })
        XCTAssertNil(try MetricsLog.read(dir + "/run/metrics.jsonl").first?["mtp_loss"])
        let before = try ModelDirectory.loadWeights(fixture("moe-mtp")), after = try ModelDirectory.loadWeights(dir + "/run/model")
        for (k, t) in before where k.hasPrefix("model.layers.2.") { XCTAssertTrue(t.bitwiseEqual(after[k]!), k) }
    }

    func testMTPSectionIsValidated() throws {
        let dir = scratch("mtp-errors")
        let data = try writeData(dir)
        XCTAssertThrowsError(try mtpRecipe(dir, data: data, steps: 1, extra: "mtp: {weight: 0.1}")) {
            XCTAssertTrue("\($0)".contains("mtp.weight") && "\($0)".contains("unknown key"), "\($0)")
        }
        XCTAssertThrowsError(try mtpRecipe(dir, data: data, steps: 1, extra: "mtp: {loss_weight: -1}")) {
            XCTAssertTrue("\($0)".contains("mtp.loss_weight"), "\($0)")
        }
        XCTAssertThrowsError(try mtpRecipe(dir, data: data, steps: 1, extra: "mtp: {loss_weight: 0.1, first_position: zero}")) {
            XCTAssertTrue("\($0)".contains("mtp.first_position: 'zero' is not one of keep, zero_embedding"), "\($0)")
        }
        let glm = RecipeRun(recipe: try mtpRecipe(dir + "/a", data: data, steps: 1, extra: "mtp: {loss_weight: 0.1}",
                                                  model: "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm4"))
        XCTAssertThrowsError(try glm.run()) { XCTAssertTrue("\($0)".hasSuffix("mtp: this glm4 model has no multi-token-prediction layer"), "\($0)") }
        let noLayer = RecipeRun(recipe: try mtpRecipe(dir + "/b", data: data, steps: 1, extra: "mtp: {loss_weight: 0.1}", model: fixture("moe-a")))
        XCTAssertThrowsError(try noLayer.run()) { XCTAssertTrue("\($0)".contains("mtp.loss_weight: config.json: num_nextn_predict_layers is 0"), "\($0)") }
        let lora = RecipeRun(recipe: try mtpRecipe(dir + "/c", data: data, steps: 1, extra: "mtp: {loss_weight: 0.1}\nlora: {rank: 2, targets: [q_proj]}",
                                                   model: fixture("moe-mtp")))
        XCTAssertThrowsError(try lora.run()) { XCTAssertTrue("\($0)".contains("mtp.loss_weight: 0.1 with LoRA"), "\($0)") }
    }
}
