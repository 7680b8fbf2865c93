// The policy losses against their PyTorch transcription (Scripts/make_rl_fixtures.py): loss and gradient with
// respect to the log-probabilities for GRPO (token, sequence and Dr. GRPO's constant reduction), DAPO's clip-higher, GSPO, the three KL
// estimators and TIS; group-normalised advantages (GRPO and Dr. GRPO).
import XCTest
import GLMCore
import GLMIO
import GLMRL
import TestSupport

final class RLPolicyLossTests: XCTestCase {
    func fixture() throws -> SafetensorsFile {
        try SafetensorsFile(path: "\(Fixtures.repositoryRoot)/Tests/GLMRLTests/Fixtures/policy_loss.safetensors")
    }

    func testLossesAndGradientsMatchPyTorch() throws {
        let f = try fixture()
        let mask = try f.tensor("mask").scalars, logp = try f.tensor("logp")
        let configs: [(String, (inout PolicyLossOptions) -> Void)] = [
            ("grpo_token", { _ in }),
            ("dapo_clip_higher", { $0.epsClipHigh = 0.28 }),
            ("grpo_sequence_k3", { $0.reduction = .sequence; $0.klCoef = 0.05; $0.klEstimator = .k3 }),
            ("token_k1_tis", { $0.epsClipLow = 0.1; $0.epsClipHigh = 0.3; $0.klCoef = 0.1; $0.klEstimator = .k1; $0.tis = true; $0.tisCap = 1.5 }),
            ("token_k2", { $0.klCoef = 0.2; $0.klEstimator = .k2 }),
            ("gspo", { $0.epsClipLow = 3e-4; $0.epsClipHigh = 4e-4; $0.sequenceRatio = true; $0.reduction = .sequence }),
            ("gspo_wide_tis", { $0.sequenceRatio = true; $0.reduction = .sequence; $0.tis = true; $0.tisCap = 1.2 }),
            ("dr_grpo_constant_k3", { $0.epsClipHigh = 0.28; $0.reduction = .constant; $0.maxResponseTokens = 9; $0.klCoef = 0.05; $0.klEstimator = .k3 }),
        ]
        for (name, edit) in configs {
            var o = PolicyLossOptions()
            edit(&o)
            let x = Tensor(logp.scalars, shape: logp.shape, requiresGrad: true)
            let inputs = PolicyLossInputs(logProbs: x, mask: mask, oldLogProbs: try f.tensor("old").scalars,
                                          rolloutLogProbs: try f.tensor("rollout").scalars, proximalLogProbs: logp.scalars,
                                          advantages: try f.tensor("adv").scalars,
                                          referenceLogProbs: o.klCoef > 0 ? try f.tensor("ref").scalars : nil)
            let (loss, metrics) = PolicyLoss.compute(inputs, options: o)
            let expected = try f.tensor("\(name).loss").scalars[0]
            XCTAssertEqual(loss.scalars[0], expected, accuracy: 1e-6 * max(1, abs(expected)), name)
            loss.backward()
            let g = x.grad!.scalars, e = try f.tensor("\(name).grad").scalars
            for i in 0..<g.count { XCTAssertEqual(g[i], e[i], accuracy: 1e-6, "\(name) gradient \(i)") }
            XCTAssertGreaterThan(e.map(abs).max()!, 1e-4, "\(name): a gradient that is all zero checks nothing")
            XCTAssertNotNil(metrics["clip_fraction"])
        }
    }

    func testClippingActsOnTheRightSideAndRatioOneGivesNoClip() throws {
        // r = e^0.5 > 1 + ε with A > 0: clipped, no gradient; with A < 0: not clipped.
        for (a, clipped) in [(Float(1), true), (Float(-1), false)] {
            let x = Tensor([0.5], shape: [1, 1], requiresGrad: true)
            let (loss, m) = PolicyLoss.compute(PolicyLossInputs(logProbs: x, mask: [1], oldLogProbs: [0], rolloutLogProbs: [0],
                                                                proximalLogProbs: [0.5], advantages: [a], referenceLogProbs: nil),
                                               options: PolicyLossOptions())
            loss.backward()
            XCTAssertEqual(m["clip_fraction"], clipped ? 1 : 0)
            XCTAssertEqual(x.grad!.scalars[0], clipped ? 0 : -a * Float(exp(0.5)), accuracy: 1e-6)
        }
        let x = Tensor([-1.25, -0.5], shape: [1, 2], requiresGrad: true)
        let (_, m) = PolicyLoss.compute(PolicyLossInputs(logProbs: x, mask: [1, 1], oldLogProbs: [-1.25, -0.5], rolloutLogProbs: [-1.25, -0.5],
                                                         proximalLogProbs: [-1.25, -0.5], advantages: [2, 2], referenceLogProbs: [-1.25, -0.5]),
                                        options: PolicyLossOptions())
        XCTAssertEqual(m["ratio_mean"], 1); XCTAssertEqual(m["kl"], 0); XCTAssertEqual(m["clip_fraction"], 0)
    }

    func testGSPOClipFractionCountsSequences() throws {
        // Sequence 0 (3 tokens, ratio e^0.5, A > 0) is clipped, sequence 1 (1 token, ratio 1) is not: half of the
        // sequences, as TRL's clip_ratio/region_mean under importance_sampling_level "sequence" (3/4 by tokens).
        let x = Tensor([0.5, 0.5, 0.5, -1, -1, -1], shape: [2, 3], requiresGrad: true)
        var o = PolicyLossOptions()
        (o.sequenceRatio, o.reduction) = (true, .sequence)
        let (_, m) = PolicyLoss.compute(PolicyLossInputs(logProbs: x, mask: [1, 1, 1, 1, 0, 0], oldLogProbs: [0, 0, 0, -1, 0, 0],
                                                         rolloutLogProbs: [0, 0, 0, -1, 0, 0], proximalLogProbs: [0.5, 0.5, 0.5, -1, 0, 0],
                                                         advantages: [1, 1, 1, 1, 1, 1], referenceLogProbs: nil), options: o)
        XCTAssertEqual(m["clip_fraction"], 0.5)
        o.sequenceRatio = false
        let (_, t) = PolicyLoss.compute(PolicyLossInputs(logProbs: x, mask: [1, 1, 1, 1, 0, 0], oldLogProbs: [0, 0, 0, -1, 0, 0],
                                                         rolloutLogProbs: [0, 0, 0, -1, 0, 0], proximalLogProbs: [0.5, 0.5, 0.5, -1, 0, 0],
                                                         advantages: [1, 1, 1, 1, 1, 1], referenceLogProbs: nil), options: o)
        XCTAssertEqual(t["clip_fraction"], 0.75, "per token without GSPO")
    }

    func testGroupAdvantagesMatchPyTorch() throws {
        let f = try fixture()
        let rewards = try f.tensor("group.rewards").scalars.map(Double.init)
        let grpo = PolicyLoss.advantages(rewards: rewards, groupSize: 4, normalizeStd: true)
        let dr = PolicyLoss.advantages(rewards: rewards, groupSize: 4, normalizeStd: false)
        for (i, e) in try f.tensor("group.grpo").scalars.enumerated() { XCTAssertEqual(grpo[i], Double(e), accuracy: 1e-5) }
        for (i, e) in try f.tensor("group.drgrpo").scalars.enumerated() { XCTAssertEqual(dr[i], Double(e), accuracy: 1e-6) }
    }
}
