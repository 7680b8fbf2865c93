// The model's differentiable per-token log-probabilities equal `glm-train score`'s (tokenLogProbs) on the same
// input, row by row, and gradients reach the parameters.
import XCTest
import Foundation
import GLMCore
import GLMModel
import GLMIO
import TestSupport

final class TargetLogProbsTests: XCTestCase {
    func testEqualsScoreAndPerSequenceSumsAreMasked() throws {
        for fixture in ["glm", "glm4"] {
            let (_, model) = try ModelDirectory.load("\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/\(fixture)")
            let V = model.config.vocabSize
            var gen = SeededGenerator(seed: 11)
            let (B, T) = (3, 9)
            let ids = (0..<(B * T)).map { _ in Int32(gen.next() % UInt64(V)) }
            // Shifted targets: position t predicts token t+1 of its row; the last position of each row predicts nothing.
            let targets = (0..<(B * T)).map { i in i % T == T - 1 ? ignoreLabel : ids[i + 1] }
            let r = Autograd.noGrad { model.targetLogProbs(ids: ids, targets: targets, batch: B, length: T, entropy: true) }
            XCTAssertEqual(r.logProbs.shape, [B, T])
            let scored = model.tokenLogProbs(ids: (0..<B).map { Array(ids[($0 * T)..<($0 * T + T)]) })
            for b in 0..<B {
                for t in 0..<(T - 1) {
                    XCTAssertEqual(r.logProbs.pointer[b * T + t], scored[b][t], accuracy: 2e-5, "\(fixture) row \(b) position \(t)")
                }
                XCTAssertEqual(r.logProbs.pointer[b * T + T - 1], 0)
            }
            XCTAssertTrue(r.entropy!.enumerated().allSatisfy { i, e in i % T == T - 1 ? e == 0 : e > 0 && e <= Float(Foundation.log(Double(V))) + 1e-4 })
        }
    }

    func testGradientsReachTheParameters() throws {
        let (_, model) = try ModelDirectory.load("\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm", storage: .float32)
        for t in model.parameters.values { t.setRequiresGrad(true) }
        let ids: [Int32] = [1, 5, 9, 2, 7, 3]
        let targets: [Int32] = [5, 9, ignoreLabel, 7, 3, ignoreLabel]
        let lp = model.targetLogProbs(ids: ids, targets: targets, batch: 2, length: 3).logProbs
        lp.sum(axis: 1).sum().backward()
        XCTAssertGreaterThan(model.lmHead.grad!.scalars.map(abs).max()!, 0)
        XCTAssertGreaterThan(model.parameters["model.layers.0.self_attn.q_proj.weight"]!.grad!.scalars.map(abs).max()!, 0)
        // The same as the mean cross-entropy's gradient times −(counted tokens): CE = −Σ log p / n.
        let grad = model.lmHead.grad!.scalars
        for t in model.parameters.values { t.zeroGrad() }
        model.loss(ids: ids, targets: targets, batch: 2, length: 3).backward()
        for (a, b) in zip(grad, model.lmHead.grad!.scalars) { XCTAssertEqual(a, -4 * b, accuracy: 1e-5) }
    }
}
