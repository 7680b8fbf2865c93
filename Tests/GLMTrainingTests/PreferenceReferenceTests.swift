// Every preference loss against TRL (Scripts/make_dpo_fixtures.py): the loss, TRL's metrics and the gradient with
// respect to every LoRA matrix on a fixed batch of pairs through a tiny GLM with a PEFT adapter; and step 1 of a
// new LoRA (B = 0, policy = reference): the sigmoid loss is ln 2 and the margins are 0.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class PreferenceReferenceTests: XCTestCase {
    var fixtureDir: String { "\(Fixtures.repositoryRoot)/Tests/GLMTrainingTests/Fixtures/dpo" }

    struct Expected {
        var pairs: [([Int32], [Int32], [Int32])]
        var pad: Int32
        var cases: [String: [String: Any]]
    }

    func expected() throws -> Expected {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixtureDir + "/expected.json"))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let pairs = (root["pairs"] as! [[[Int]]]).map { p in (p[0].map(Int32.init), p[1].map(Int32.init), p[2].map(Int32.init)) }
        return Expected(pairs: pairs, pad: Int32(root["pad"] as! Int), cases: root["cases"] as! [String: [String: Any]])
    }

    /// The fixture's batch as a pair batch: chosen rows first, right-padded, targets on the response tokens only.
    func batch(_ e: Expected) -> TrainingBatch {
        let rows = e.pairs.map { $0.0 + $0.1 } + e.pairs.map { $0.0 + $0.2 }
        let prompts = e.pairs.map(\.0.count) + e.pairs.map(\.0.count)
        let T = rows.map(\.count).max()!
        var ids: [Int32] = [], targets: [Int32] = []
        for (row, p) in zip(rows, prompts) {
            ids += row + [Int32](repeating: e.pad, count: T - row.count)
            targets += (0..<T).map { t in t + 1 < row.count && t + 1 >= p ? row[t + 1] : ignoreLabel }
        }
        return TrainingBatch(batch: rows.count, length: T, ids: ids, targets: targets, pairs: e.pairs.count)
    }

    func loss(_ c: [String: Any]) -> PreferenceLoss {
        let kind: PreferenceLoss.Kind = PreferenceLoss.Kind(rawValue: c["loss_type"] as! String)!
        return PreferenceLoss(kind: kind, beta: c["beta"] as! Double, labelSmoothing: c["label_smoothing"] as? Double ?? 0,
                              gamma: c["gamma"] as? Double ?? 0.5, lambda: c["lam"] as? Double ?? 0.1,
                              rpoAlpha: c["rpo_alpha"] as? Double)
    }

    func testEveryLossTypeMatchesTRLInLossMetricsAndLoRAGradients() throws {
        let e = try expected()
        let model = try ModelDirectory.loadModel("\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm")
        let lora = try LoRA(adapter: try PEFTAdapter.load(directory: fixtureDir + "/adapter", model: model.configuration),
                            modelConfig: model.configuration)
        try lora.attach(to: model)
        let grads = try SafetensorsFile(path: fixtureDir + "/grads.safetensors")
        let b = batch(e)
        let names = Set(e.cases.keys)
        XCTAssertEqual(names, ["sigmoid", "ipo", "hinge", "robust", "sigmoid_rpo", "simpo", "orpo"])
        XCTAssertEqual(Set(e.cases.values.map { $0["loss_type"] as! String }), Set(PreferenceLoss.Kind.allCases.map(\.rawValue)),
                       "every loss type has a reference case")
        for name in names.sorted() {
            let c = e.cases[name]!
            let objective = PreferenceObjective(loss(c), referenceLinears: [:])
            let r = try objective.loss(model: model, batch: b)
            let want = c["loss"] as! Double
            XCTAssertEqual(Double(r.loss.scalars[0]), want, accuracy: 1e-5 * max(1, abs(want)), "\(name): loss")
            for (k, v) in c["metrics"] as! [String: Double] {
                guard let got = r.metrics[k] else { XCTFail("\(name): no metric \(k)"); continue }
                XCTAssertEqual(got, v, accuracy: 1e-5 * max(1, abs(v)), "\(name): \(k)")
            }
            r.loss.backward()
            var compared = 0
            for p in lora.parameters {
                let ref = try grads.tensor("\(name)/\(p.name)")
                guard let g = p.tensor.grad else { XCTFail("\(name): \(p.name) got no gradient"); continue }
                XCTAssertEqual(g.shape, ref.shape)
                XCTAssertLessThan(Fixtures.relativeError(g, ref), 1e-4, "\(name): d loss / d \(p.name)")
                compared += 1
                p.tensor.zeroGrad()
            }
            XCTAssertEqual(compared, 24, "two layers × six projections × (A, B)")
        }
    }

    func testORPOWithRPOAlphaLogsTheNLLOnceAndAddsItAlphaTimes() throws {
        // The logged nll_loss is the NLL itself whatever α is (it was logged twice over with orpo; audit).
        let e = try expected()
        let model = try ModelDirectory.loadModel("\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm")
        let b = batch(e)
        let plain = try PreferenceObjective(PreferenceLoss(kind: .orpo, lambda: 0.2), referenceLinears: [:]).loss(model: model, batch: b)
        let alpha = 0.7
        let rpo = try PreferenceObjective(PreferenceLoss(kind: .orpo, lambda: 0.2, rpoAlpha: alpha), referenceLinears: [:]).loss(model: model, batch: b)
        let nll = try XCTUnwrap(plain.metrics["nll_loss"])
        XCTAssertEqual(try XCTUnwrap(rpo.metrics["nll_loss"]), nll, accuracy: 1e-9)
        XCTAssertEqual(Double(rpo.loss.scalars[0]), Double(plain.loss.scalars[0]) + alpha * nll, accuracy: 1e-5 * max(1, nll))
    }

    func testStepOneOfANewLoRAIsLn2WithZeroMargins() throws {
        let e = try expected()
        let model = try ModelDirectory.loadModel("\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm")
        let lora = try LoRA(modelConfig: model.configuration, config: LoRAConfig(rank: 4, alpha: 8), seed: 3)
        try lora.attach(to: model)
        let r = try PreferenceObjective(PreferenceLoss(kind: .sigmoid), referenceLinears: [:]).loss(model: model, batch: batch(e))
        XCTAssertEqual(r.loss.scalars[0], Float(log(2.0)), "B = 0: the policy is the reference, −log σ(0) = ln 2")
        XCTAssertEqual(r.metrics["rewards/margins"], 0)
        XCTAssertEqual(r.metrics["rewards/chosen"], 0)
        XCTAssertEqual(r.metrics["rewards/rejected"], 0)
        XCTAssertEqual(r.metrics["rewards/accuracies"], 0)
        r.loss.backward()
        // B = 0 makes dL/dA zero, but dL/dB is not: the first step moves the adapter.
        XCTAssertTrue(lora.pairs.contains { p in p.b.grad!.scalars.contains { $0 != 0 } })
    }

    func testReferenceFromStoredLogProbsEqualsTheSwitchedOffAdapters() throws {
        let e = try expected()
        let model = try ModelDirectory.loadModel("\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm")
        var b = batch(e)
        // The base model's per-token log-probabilities, stored as a full fine-tuning run does.
        let stored = Autograd.noGrad { SequenceLogProbs(model: model, batch: b).perToken.scalars }
        let lora = try LoRA(adapter: try PEFTAdapter.load(directory: fixtureDir + "/adapter", model: model.configuration),
                            modelConfig: model.configuration)
        try lora.attach(to: model)
        let objective = PreferenceObjective(PreferenceLoss(kind: .sigmoid), referenceLinears: [:])
        let switchedOff = try objective.referenceLogProbs(model: model, batch: b)
        XCTAssertFalse(model.adaptedLinears.isEmpty, "the adapters are back after the reference forward")
        b.referenceLogProbs = stored
        let fromBatch = try PreferenceObjective(PreferenceLoss(kind: .sigmoid)).referenceLogProbs(model: model, batch: b)
        for (x, y) in zip(switchedOff, fromBatch) { XCTAssertEqual(x, y, accuracy: 1e-5 * max(1, abs(y))) }
        let withAdapter = Autograd.noGrad { SequenceLogProbs(model: model, batch: b).perSequence.scalars }
        XCTAssertGreaterThan(zip(withAdapter, switchedOff).map { abs($0 - $1) }.max()!, 0.1, "the adapter changes the policy")
    }
}
