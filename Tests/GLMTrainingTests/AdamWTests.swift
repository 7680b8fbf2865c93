// AdamW against the update rule computed by hand in Double, and global-norm clipping.
import XCTest
import Foundation
import GLMCore
import GLMTraining

final class AdamWTests: XCTestCase {
    func testThreeStepsMatchTheUpdateRuleInDouble() {
        let w = Tensor([0.5, -1.0, 2.0], shape: [3], requiresGrad: true)
        let opt = AdamW(beta1: 0.9, beta2: 0.95, eps: 1e-8)
        var p = [0.5, -1.0, 2.0], m = [0.0, 0, 0], v = [0.0, 0, 0]
        let (lr, wd) = (0.1, 0.01)
        for step in 1...3 {
            w.zeroGrad()
            (w * w * Tensor([1, 2, 3], shape: [3])).sum().backward()   // g = 2·c·w
            let g = (0..<3).map { 2 * [1.0, 2, 3][$0] * p[$0] }
            opt.step([TrainableParameter(name: "w", tensor: w, weightDecay: Float(wd))], lr: Float(lr))
            for i in 0..<3 {
                p[i] *= 1 - lr * wd
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i]
                let mh = m[i] / (1 - pow(0.9, Double(step))), vh = v[i] / (1 - pow(0.95, Double(step)))
                p[i] -= lr * mh / (vh.squareRoot() + 1e-8)
            }
            for i in 0..<3 { XCTAssertEqual(Double(w.scalars[i]), p[i], accuracy: 1e-5, "step \(step) [\(i)]") }
        }
        XCTAssertEqual(opt.stepCount, 3)
    }

    func testParametersWithoutGradientsAreSkipped() {
        let frozen = Tensor([1, 2], shape: [2])
        let opt = AdamW()
        opt.step([TrainableParameter(name: "f", tensor: frozen, weightDecay: 0.1)], lr: 1)
        XCTAssertEqual(frozen.scalars, [1, 2])
        XCTAssertNil(opt.firstMoments["f"])
    }

    func testClippingScalesToTheMaximumNorm() {
        let a = Tensor([3, 0], shape: [2], requiresGrad: true), b = Tensor([4], shape: [1], requiresGrad: true)
        ((a * Tensor([3, 0], shape: [2])).sum() + (b * Tensor([4], shape: [1])).sum()).backward()  // grads (3,0), (4)
        XCTAssertEqual(GradientClipping.clip([a, b], maxNorm: 0), 5, accuracy: 1e-6)
        XCTAssertEqual(a.grad!.scalars, [3, 0])
        XCTAssertEqual(GradientClipping.clip([a, b], maxNorm: 1), 5, accuracy: 1e-6)
        XCTAssertEqual(GradientClipping.globalNorm([a, b]), 1, accuracy: 1e-5)
        XCTAssertEqual(GradientClipping.clip([a, b], maxNorm: 10), 1, accuracy: 1e-5)
        XCTAssertEqual(GradientClipping.globalNorm([a, b]), 1, accuracy: 1e-5)
    }
}
