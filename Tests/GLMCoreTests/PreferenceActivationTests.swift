// relu and log1mexp: forward values against the definitions and backward against finite differences.
import XCTest
import Foundation
import GLMCore
import TestSupport

final class PreferenceActivationTests: XCTestCase {
    func testReluValuesAndGradient() {
        let x = Tensor([-2, -0.5, 0, 0.25, 3], shape: [5], requiresGrad: true)
        XCTAssertEqual(x.relu().scalars, [0, 0, 0, 0.25, 3])
        x.relu().sum().backward()
        XCTAssertEqual(x.grad!.scalars, [0, 0, 0, 1, 1], "torch.relu's gradient at 0 is 0")
        for shape in [[7], [3, 11]] {
            // Keep the samples away from the kink, where finite differences are not a derivative.
            let ins = GradientCheck.inputs([shape]).map { t in
                Tensor(t.scalars.map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }, shape: shape, requiresGrad: true)
            }
            XCTAssertEqual(GradientCheck.run(ins) { $0[0].relu() }, [], "relu \(shape)")
        }
    }

    func testLog1mexpValuesOnBothBranchesAndGradient() {
        let xs: [Float] = [-30, -5, -1, -0.7, -0.69, -0.1, -1e-3, -1e-6]
        let y = Tensor(xs, shape: [xs.count]).log1mexp().scalars
        for (x, v) in zip(xs, y) {
            let want = Foundation.log(-Foundation.expm1(Double(x)))
            XCTAssertEqual(Double(v), want, accuracy: 1e-6 * max(1, abs(want)), "log1mexp(\(x))")
        }
        for shape in [[7], [3, 11]] {
            // Inputs in (−4.5, −0.05]: both branches, away from the pole at 0.
            let ins = GradientCheck.inputs([shape]).map { t in
                Tensor(t.scalars.map { -0.05 - abs($0) * 1.5 }, shape: shape, requiresGrad: true)
            }
            XCTAssertEqual(GradientCheck.run(ins, step: 1e-3) { $0[0].log1mexp() }, [], "log1mexp \(shape)")
        }
    }
}
