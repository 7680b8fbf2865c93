// Routing replay (rl.routing_replay) on the tiny glm4_moe fixture: the rollout's scoring pass records the experts,
// the trainer's recompute replays them — its log-probs equal the rollout's exactly even after the correction bias
// changed so that the live selection differs, while without replay they differ; the router still gets gradients;
// recorded experts that do not fit the model are one-line errors.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport
import GLMRL

final class RoutingReplayTests: XCTestCase {
    let base = "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/moe-a"

    func samples() -> [RolloutSample] {
        let rows: [([Int32], [Int32])] = [([5, 17, 33], [60, 7, 9, 40, 2]), ([0, 63, 1, 2], [28, 44]), ([11, 50], [3, 3, 59, 42, 17, 8])]
        return rows.enumerated().map { i, r in
            RolloutSample(position: i, promptIndex: i, group: 0, version: 0, promptTokens: r.0, responseTokens: r.1, logProbs: [],
                          referenceLogProbs: nil, reward: Double(i), advantage: Double(i) - 1, finishReason: "stop", response: "")
        }
    }

    func config(replay: Bool) -> RLConfig {
        var rl = RLConfig()
        rl.routingReplay = replay
        rl.microBatchSize = 2  // two micro-batches, one padded
        return rl
    }

    /// The trainer's side: micro-batches as RolloutSource gives them, the objective's largest |recompute − rollout|.
    func trainerDifference(_ model: any CausalLanguageModel, _ batch: RolloutBatch, rl: RLConfig) throws -> Double {
        let objective = GRPOObjective(rl: rl)
        let shape = RoutingReplay.Shape(model)!
        var worst = 0.0
        for slice in batch.microBatches(rl.microBatchSize) {
            var b = RolloutBatch.trainingBatch(slice, pad: 0)
            if rl.routingReplay { b.routedExperts = RoutingReplay.batchIndices(slice, length: b.length, shape: shape) }
            let r = try Autograd.noGrad { try objective.loss(model: model, batch: b) }
            worst = max(worst, r.metrics["train/rollout_logprob_abs_diff"]!)
        }
        return worst
    }

    func liveSelection(_ model: any MixtureOfExpertsModel, _ batch: RolloutBatch) -> [Int: [Int32]] {
        let b = RolloutBatch.trainingBatch(batch.samples[...], pad: 0)
        return RoutingReplay.recording(model) { _ = Autograd.noGrad { SequenceLogProbs(model: model, batch: b, temperature: 1) } }.1
    }

    func testReplayedRecomputeEqualsTheRolloutExactlyAfterTheSelectionChanged() throws {
        let model = try ModelDirectory.loadModel(base) as! Glm4MoeForCausalLM
        let shape = RoutingReplay.Shape(model)!
        XCTAssertEqual(shape, RoutingReplay.Shape(layers: [1], experts: 4, topK: 2))
        var s = samples()
        try RolloutWorker.score(&s, model: model, rl: config(replay: true), pad: 0, withReference: nil)
        for x in s {
            XCTAssertEqual(x.routedExperts?.count, 1)
            XCTAssertEqual(x.routedExperts?[0].count, (x.promptTokens.count + x.responseTokens.count) * 2)
        }
        let batch = RolloutBatch(index: 0, samples: s, stats: [:], warnings: [])
        // the file round trip keeps them; validation passes
        let dir = RLRunDirectory(NSTemporaryDirectory() + "glmtrain-replay-\(UUID().uuidString)")
        try dir.write(batch)
        let read = try dir.readBatch(0)
        XCTAssertEqual(read.samples, s)
        try RoutingReplay.validate(read, shape: shape, source: "b")
        // at the same weights: equal with and without replay
        XCTAssertEqual(try trainerDifference(model, read, rl: config(replay: true)), 0)
        XCTAssertEqual(try trainerDifference(model, read, rl: config(replay: false)), 0)

        // the correction bias moves (selection only): some tokens now pick other experts
        let before = liveSelection(model, read)
        var bias = model.correctionBias(layer: 1)!.scalars
        bias[0] += 0.6; bias[3] -= 0.4
        try model.replaceParameter("model.layers.1.mlp.gate.e_score_correction_bias", with: Tensor(bias, shape: [4]))
        let after = liveSelection(model, read)
        let flipped = zip(before[1]!, after[1]!).filter { $0 != $1 }.count
        XCTAssertGreaterThan(flipped, 0, "the bias change flips some selections")
        XCTAssertEqual(try trainerDifference(model, read, rl: config(replay: true)), 0, "replay: the rollout's log-probs exactly")
        let without = try trainerDifference(model, read, rl: config(replay: false))
        XCTAssertGreaterThan(without, 1e-4, "without replay the recompute differs")
        print("routing replay: \(flipped) of \(before[1]!.count) expert slots flipped; max |recompute − rollout| 0 with replay, \(without) without")
    }

    func testReplayKeepsTheSelectionAndTheRouterGetsGradients() throws {
        let model = try ModelDirectory.loadModel(base) as! Glm4MoeForCausalLM
        var s = samples()
        try RolloutWorker.score(&s, model: model, rl: config(replay: true), pad: 0, withReference: nil)
        let batch = RolloutBatch(index: 0, samples: s, stats: [:], warnings: [])
        let recorded = liveSelection(model, batch)
        // change the router itself: the live selection may change, the replayed one does not
        let routerName = "model.layers.1.mlp.gate.weight"
        let old = model.parameters[routerName]!
        let router = Tensor(old.scalars.map { $0 * 1.5 }, shape: old.shape, requiresGrad: true)
        try model.replaceParameter(routerName, with: router)
        let rl = config(replay: true), shape = RoutingReplay.Shape(model)!
        let slice = batch.samples[...]
        var b = RolloutBatch.trainingBatch(slice, pad: 0)
        b.routedExperts = RoutingReplay.batchIndices(slice, length: b.length, shape: shape)
        var seen: [Int32] = []
        let previous = model.routingObserver
        model.routingObserver = { seen += $0.routing.indices }
        defer { model.routingObserver = previous }
        var rl1 = rl; rl1.microBatchSize = 3
        let r = try GRPOObjective(rl: rl1).loss(model: model, batch: b)
        r.loss.backward()
        let T = b.length
        let live = recorded[1]!
        for (row, x) in s.enumerated() {
            let n = x.promptTokens.count + x.responseTokens.count
            let lo = row * T * 2, hi = (row * T + n) * 2
            XCTAssertEqual(Array(seen[lo..<hi]), Array(live[lo..<hi]), "row \(row): replayed")
        }
        let g = try XCTUnwrap(router.grad)
        XCTAssertTrue(g.scalars.contains { $0 != 0 }, "the router gets gradients through the replayed experts' weights")
    }

    func testRecordedExpertsThatDoNotFitAreOneLineErrors() throws {
        let model = try ModelDirectory.loadModel(base) as! Glm4MoeForCausalLM
        let shape = RoutingReplay.Shape(model)!
        var s = samples()
        try RolloutWorker.score(&s, model: model, rl: config(replay: true), pad: 0, withReference: nil)
        func check(_ edit: (inout RolloutSample) -> Void, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
            var bad = s
            edit(&bad[1])
            XCTAssertThrowsError(try RoutingReplay.validate(RolloutBatch(index: 0, samples: bad, stats: [:], warnings: []), shape: shape, source: "B"),
                                 file: file, line: line) { e in
                XCTAssertEqual((e as! GLMError).message, message, file: file, line: line)
            }
        }
        check({ $0.routedExperts![0][3] = 4 }, "B: sample 1: routed_experts: layer 1 names expert 4; the model has experts 0..<4")
        check({ $0.routedExperts![0][0] = -1 }, "B: sample 1: routed_experts: layer 1 names expert -1; the model has experts 0..<4")
        check({ $0.routedExperts![0].removeLast() }, "B: sample 1: routed_experts: layer 1 has 11 values; expected 6 tokens × top-2 = 12")
        check({ $0.routedExperts!.append([]) }, "B: sample 1: routed_experts: 2 layers; the model routes in 1 (layers 1)")
        check({ $0.routedExperts = nil }, "B: sample 1: routed_experts: missing; rl.routing_replay needs the experts the rollout chose (a rollout run without routing_replay wrote this batch)")
        check({ $0.routedExperts![0][1] = $0.routedExperts![0][0] }, "B: sample 1: routed_experts: layer 1 token 0 chooses expert \(s[1].routedExperts![0][0]), \(s[1].routedExperts![0][0]): an expert twice")
        // a dense model cannot replay routing
        let dense = try ModelDirectory.loadModel("\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm4")
        var t = samples()
        XCTAssertThrowsError(try RolloutWorker.score(&t, model: dense, rl: config(replay: true), pad: 0, withReference: nil)) { e in
            XCTAssertEqual((e as! GLMError).message, "rl.routing_replay: true needs a model with routed experts (this glm4 model has none)")
        }
    }
}
