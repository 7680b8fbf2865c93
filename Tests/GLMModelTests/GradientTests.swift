// Gradients through the whole model: every parameter gets one, and each agrees with a finite difference.
import XCTest
import GLMCore
import GLMModel
import TestSupport

final class GradientTests: XCTestCase {
    let ids: [Int32] = [3, 9, 4, 4, 17, 2, 30, 8, 1, 49, 0, 7]
    let targets: [Int32] = [9, 4, -100, 17, 2, 30, 8, 1, 49, -100, 7, 5]

    func testLossBackwardReachesEveryParameter() throws {
        for (type, tied, bias) in [(GLMModelType.glm4, false, true), (.glm, true, false)] {
            let model = try ModelFixtures.tinyModel(ModelFixtures.tinyConfig(type, tied: tied, bias: bias))
            for p in model.parameters.values { p.setRequiresGrad(true) }
            let loss = model.loss(ids: ids, targets: targets, batch: 2, length: 6)
            XCTAssertTrue(loss.isOnTape)
            loss.backward()
            for (name, p) in model.parameters {
                let g = try XCTUnwrap(p.grad, "\(type) \(name) has no gradient")
                XCTAssertTrue(g.scalars.allSatisfy(\.isFinite), name)
                XCTAssertGreaterThan(g.scalars.map(abs).max()!, 0, "\(type) \(name) gradient is zero")
            }
        }
    }

    func testLossMatchesCrossEntropyOfLogits() throws {
        let model = try ModelFixtures.tinyModel(ModelFixtures.tinyConfig())
        Autograd.noGrad {
            let fused = model.loss(ids: ids, targets: targets, batch: 2, length: 6).item
            let logits = model.logits(model.hiddenStates(ids: ids, batch: 2, length: 6))
            let plain = Tensor.crossEntropy(logits: logits, targets: targets).item
            XCTAssertEqual(fused, plain, accuracy: 1e-5 * max(1, abs(plain)))
        }
    }

    /// Directional derivative along a random unit direction d of each parameter: (L(p+εd) − L(p−εd)) / 2ε ≈ ⟨∇L, d⟩.
    func testGradientsMatchFiniteDifferences() throws {
        for (type, tied) in [(GLMModelType.glm4, false), (.glm, true)] {
            let model = try ModelFixtures.tinyModel(ModelFixtures.tinyConfig(type, tied: tied))
            for p in model.parameters.values { p.setRequiresGrad(true) }
            model.loss(ids: ids, targets: targets, batch: 2, length: 6).backward()
            var gen = SeededGenerator(seed: 9)
            for (name, p) in model.parameters.sorted(by: { $0.key < $1.key }) {
                let raw = Tensor.randomNormal(p.shape, generator: &gen)
                if name == GLMWeights.embedTokens, let pad = model.config.padTokenId {
                    // torch's padding_idx: the gradient is the derivative with the pad row held fixed (id 0 is in ids).
                    (raw.pointer + pad * model.config.hiddenSize).update(repeating: 0, count: model.config.hiddenSize)
                }
                let d = raw.scaled(1 / raw.scalars.reduce(0) { $0 + $1 * $1 }.squareRoot(), recording: false)
                let analytic = zip(p.grad!.scalars, d.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let eps: Float = 1e-2
                let original = p.scalars
                func lossAt(_ s: Float) -> Double {
                    for i in 0..<p.count { p.pointer[i] = original[i] + s * d.pointer[i] }
                    return Double(Autograd.noGrad { model.loss(ids: ids, targets: targets, batch: 2, length: 6).item })
                }
                let numeric = (lossAt(eps) - lossAt(-eps)) / Double(2 * eps)
                _ = lossAt(0)
                XCTAssertEqual(numeric, analytic, accuracy: 1e-3 + 1e-2 * abs(analytic), "\(type) \(name)")
            }
        }
    }
}
