// The trainer's seams: an objective plugged in from outside (tokens weighted through the batch, the loss built
// from differentiable per-token log-probabilities), events to an observer, and the gradient-sync point with a
// non-primary process that writes nothing.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining

/// −Σ w_t log p_t / Σ w_t over the batch's targets, with w from `batch.tokenWeights`; reports Σ w as a metric.
final class TokenWeightedObjective: TrainingObjective {
    let name = "token_weighted"
    func weight(of batch: TrainingBatch) -> Int { batch.lossTokenCount }
    func loss(model: any CausalLanguageModel, batch: TrainingBatch) throws -> ObjectiveResult {
        let lp = SequenceLogProbs(model: model, batch: batch, entropy: true)
        let w = batch.tokenWeights ?? [Float](repeating: 1, count: batch.batch * batch.length)
        let masked = zip(w, batch.targets).map { $1 == ignoreLabel ? 0 : $0 }
        let total = masked.reduce(0, +)
        let loss = (lp.perToken * Tensor(masked, shape: [batch.batch, batch.length])).sum().scaled(-1 / max(total, 1e-12))
        return ObjectiveResult(loss: loss, metrics: ["weighted_tokens": Double(total), "entropy": lp.meanEntropy!])
    }
}

final class RecordingObserver: TrainerObserver {
    var events: [TrainerEvent] = []
    func trainerDidReport(_ event: TrainerEvent) { events.append(event) }
}

final class FakeSynchronizer: GradientSynchronizer {
    let isPrimary: Bool
    var calls: [Int] = []
    init(isPrimary: Bool) { self.isPrimary = isPrimary }
    func synchronize(_ parameters: [TrainableParameter], weight: Int) throws { calls.append(weight) }
}

final class TrainerSeamTests: XCTestCase {
    func temporaryDirectory() -> String {
        let dir = NSTemporaryDirectory() + "glmtrain-seams-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func model() throws -> GLMForCausalLM {
        var c = GLMConfig()
        (c.vocabSize, c.hiddenSize, c.intermediateSize, c.numHiddenLayers) = (40, 16, 24, 2)
        (c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.padTokenId, c.eosTokenIds) = (2, 1, 8, 0, [1])
        return try GLMForCausalLM(config: c, seed: 3)
    }

    func batches(weights: Bool) -> [TrainingBatch] {
        var gen = SeededGenerator(seed: 5)
        return (0..<2).map { k in
            let (B, T) = (2, 6)
            let ids = (0..<(B * T)).map { _ in Int32(2 + gen.next() % 38) }
            let targets = (0..<(B * T)).map { i in i % T == T - 1 || (k == 1 && i < 3) ? ignoreLabel : ids[i + 1] }
            let w = weights ? (0..<(B * T)).map { Float(1 + $0 % 3) } : nil
            return TrainingBatch(batch: B, length: T, ids: ids, targets: targets, tokenWeights: w)
        }
    }

    func trainer(_ model: GLMForCausalLM, objective: TrainingObjective, batches: [TrainingBatch], dir: String, steps: Int = 3) throws -> Trainer {
        let params = model.parameters.keys.sorted().map { name -> TrainableParameter in
            let t = model.parameters[name]!
            t.setRequiresGrad(true)
            return TrainableParameter(name: name, tensor: t, weightDecay: 0.01)
        }
        var options = Trainer.Options(steps: steps)
        options.gradAccum = 2
        // eps 1e-4: Adam's default 1e-8 turns the float noise of gradients that are zero in exact arithmetic (the part
        // of k_proj's bias that RoPE does not rotate) into lr-sized steps whose sign depends on summation order,
        // which differs between the two objectives (seen on an AVX2 CPU: 2e-5 apart after 3 steps).
        return Trainer(model: model, objective: objective, parameters: params, optimizer: AdamW(eps: 1e-4),
                       schedule: try LearningRateSchedule(kind: .constant, baseRate: 1e-2, warmupSteps: 0, totalSteps: steps),
                       source: FixedBatchSource(batches), hooks: [], runDirectory: dir, options: options)
    }

    func testAnObjectiveFromOutsideTrainsAndItsMetricsAreLogged() throws {
        // With unit weights the token-weighted objective is next-token cross-entropy: the same trajectory.
        let reference = try trainer(try model(), objective: NextTokenObjective(), batches: batches(weights: false), dir: temporaryDirectory())
        let plugged = try trainer(try model(), objective: TokenWeightedObjective(), batches: batches(weights: false), dir: temporaryDirectory())
        let counts = batches(weights: false).map { Double($0.lossTokenCount) }
        let expectedWeighted = counts.map { $0 * $0 }.reduce(0, +) / counts.reduce(0, +)  // Σ n_i · (n_i / N)
        for step in 0..<3 {
            let a = try reference.trainStep(step), b = try plugged.trainStep(step)
            XCTAssertEqual(a.loss, b.loss, accuracy: 1e-5, "step \(step)")
            XCTAssertEqual(a.gradNorm, b.gradNorm, accuracy: 1e-4 * max(1, a.gradNorm))
            XCTAssertEqual(b.metrics["weighted_tokens"]!, expectedWeighted, accuracy: 1e-5, "weight-averaged (Float weights) over 2 micro-batches")
        }
        for (name, t) in reference.model.parameters {
            let u = plugged.model.parameters[name]!
            for i in 0..<t.count { XCTAssertEqual(t.pointer[i], u.pointer[i], accuracy: 2e-5, name) }
        }
        // Weights from the batch change the loss; the objective's metrics reach metrics.jsonl.
        let dir = temporaryDirectory()
        let weighted = try trainer(try model(), objective: TokenWeightedObjective(), batches: batches(weights: true), dir: dir)
        _ = try weighted.train(resume: false)
        let lines = try MetricsLog.read("\(dir)/metrics.jsonl")
        XCTAssertEqual(lines.count, 3)
        XCTAssertNotNil(lines[0]["weighted_tokens"] as? Double)
        XCTAssertGreaterThan(lines[0]["entropy"] as! Double, 0)
        XCTAssertNotEqual(lines[0]["loss"] as! Double, try reference.trainStep(3).loss, accuracy: 1e-6)
    }

    func testEventsGoToTheObserver() throws {
        let observer = RecordingObserver()
        let t = try trainer(try model(), objective: NextTokenObjective(), batches: batches(weights: false), dir: temporaryDirectory())
        t.observer = observer
        _ = try t.train(resume: false)
        var started = 0, steps: [Int] = [], checkpoints: [Int] = []
        for e in observer.events {
            switch e {
            case .started(let step, let total, _, _): started += 1; XCTAssertEqual(step, 0); XCTAssertEqual(total, 3)
            case .step(let step, let loss, _, _, _): steps.append(step); XCTAssertTrue(loss.isFinite)
            case .checkpoint(let step, let path): checkpoints.append(step); XCTAssertTrue(FileManager.default.fileExists(atPath: path))
            default: break
            }
        }
        XCTAssertEqual(started, 1)
        XCTAssertEqual(steps, [1, 2, 3])
        XCTAssertEqual(checkpoints, [3])
    }

    func testTheSyncPointIsCalledOncePerStepAndANonPrimaryProcessWritesNothing() throws {
        let dir = temporaryDirectory()
        let bs = batches(weights: false)
        let t = try trainer(try model(), objective: NextTokenObjective(), batches: bs, dir: dir)
        let sync = FakeSynchronizer(isPrimary: false)
        t.gradientSynchronizer = sync
        _ = try t.train(resume: false)
        XCTAssertEqual(sync.calls, [Int](repeating: bs[0].lossTokenCount + bs[1].lossTokenCount, count: 3))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/metrics.jsonl"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/checkpoints"))
        // The primary one writes both.
        let primaryDir = temporaryDirectory()
        let p = try trainer(try model(), objective: NextTokenObjective(), batches: bs, dir: primaryDir)
        p.gradientSynchronizer = FakeSynchronizer(isPrimary: true)
        _ = try p.train(resume: false)
        XCTAssertEqual(try MetricsLog.read("\(primaryDir)/metrics.jsonl").count, 3)
        XCTAssertEqual(try CheckpointDirectory("\(primaryDir)/checkpoints").checkpoints().count, 1)
    }
}
