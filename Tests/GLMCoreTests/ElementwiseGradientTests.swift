// Gradient checks of the broadcasting binary ops and the pointwise functions.
import XCTest
import GLMCore
import TestSupport

final class ElementwiseGradientTests: XCTestCase {
    let shapePairs: [([Int], [Int])] = [([3, 5], [3, 5]), ([2, 3, 7], [7]), ([4, 1], [1, 5]), ([2, 1, 3], [5, 1]), ([1], [3, 2])]

    func testBinaryOpsWithBroadcasting() {
        for (sa, sb) in shapePairs {
            let ins = GradientCheck.inputs([sa, sb])
            XCTAssertEqual(GradientCheck.run(ins) { $0[0] + $0[1] }, [], "add \(sa) \(sb)")
            XCTAssertEqual(GradientCheck.run(ins) { $0[0] - $0[1] }, [], "sub \(sa) \(sb)")
            XCTAssertEqual(GradientCheck.run(ins) { $0[0] * $0[1] }, [], "mul \(sa) \(sb)")
            let denominators = [ins[0], Tensor(ins[1].scalars.map { abs($0) + 1 }, shape: sb, requiresGrad: true)]
            XCTAssertEqual(GradientCheck.run(denominators) { $0[0] / $0[1] }, [], "div \(sa) \(sb)")
        }
    }

    func testBroadcastForwardValues() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = Tensor([10, 20], shape: [2, 1])
        XCTAssertEqual((a + b).scalars, [11, 12, 13, 24, 25, 26])
        XCTAssertEqual((a * Tensor([1, 0, -1], shape: [3])).scalars, [1, 0, -3, 4, 0, -6])
    }

    func testPointwiseFunctions() {
        for shape in [[7], [3, 11]] {
            let x = GradientCheck.inputs([shape])
            let positive = [Tensor(x[0].scalars.map { abs($0) + 0.5 }, shape: shape, requiresGrad: true)]
            XCTAssertEqual(GradientCheck.run(x) { $0[0].exp() }, [])
            XCTAssertEqual(GradientCheck.run(positive) { $0[0].log() }, [])
            XCTAssertEqual(GradientCheck.run(positive) { $0[0].sqrt() }, [])
            XCTAssertEqual(GradientCheck.run(x) { $0[0].square() }, [])
            XCTAssertEqual(GradientCheck.run(x) { $0[0].tanh() }, [])
            XCTAssertEqual(GradientCheck.run(x) { $0[0].sigmoid() }, [])
            XCTAssertEqual(GradientCheck.run(x) { $0[0].logSigmoid() }, [])
            XCTAssertEqual(GradientCheck.run(x) { $0[0].silu() }, [])
            XCTAssertEqual(GradientCheck.run(x) { ($0[0] * 3).adding(2) - 1 }, [])
            XCTAssertEqual(GradientCheck.run(x) { -$0[0] }, [])
        }
    }
}
