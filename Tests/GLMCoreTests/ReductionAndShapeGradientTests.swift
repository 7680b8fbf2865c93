// Gradient checks of reductions (sum, mean, max) and shape ops (reshape, permute, slice, concat).
import XCTest
import GLMCore
import TestSupport

final class ReductionAndShapeGradientTests: XCTestCase {
    func testReductions() {
        for shape in [[5], [3, 4], [2, 3, 5]] {
            let x = GradientCheck.inputs([shape])
            XCTAssertEqual(GradientCheck.run(x) { $0[0].sum() }, [])
            XCTAssertEqual(GradientCheck.run(x) { $0[0].mean() }, [])
            for axis in 0..<shape.count {
                XCTAssertEqual(GradientCheck.run(x) { $0[0].sum(axis: axis) }, [], "sum axis \(axis) of \(shape)")
                XCTAssertEqual(GradientCheck.run(x) { $0[0].mean(axis: axis, keepDims: true) }, [])
                // Distinct, well-separated values so no finite-difference step crosses a tie.
                var gen = SeededGenerator(seed: 3)
                let order = Array(0..<x[0].count).shuffled(using: &gen)
                let separated = [Tensor(order.map { Float($0) * 0.1 }, shape: shape, requiresGrad: true)]
                XCTAssertEqual(GradientCheck.run(separated) { $0[0].amax(axis: axis) }, [], "max axis \(axis) of \(shape)")
            }
        }
    }

    func testReductionValues() {
        let x = Tensor([1, 5, 3, 2, 8, 4], shape: [2, 3])
        XCTAssertEqual(x.sum(axis: 0).scalars, [3, 13, 7])
        XCTAssertEqual(x.sum(axis: 1).scalars, [9, 14])
        XCTAssertEqual(x.amax(axis: 1).scalars, [5, 8])
        XCTAssertEqual(x.mean().item, 23.0 / 6, accuracy: 1e-6)
    }

    func testShapeOps() {
        let x = GradientCheck.inputs([[2, 3, 4]])
        XCTAssertEqual(GradientCheck.run(x) { $0[0].reshaped([6, 4]) * $0[0].reshaped([6, 4]) }, [])
        XCTAssertEqual(GradientCheck.run(x) { $0[0].transposed(0, 2) }, [])
        XCTAssertEqual(GradientCheck.run(x) { $0[0].permuted([1, 2, 0]) }, [])
        XCTAssertEqual(GradientCheck.run(x) { $0[0].slice(axis: 1, start: 1, length: 2) }, [])
        XCTAssertEqual(GradientCheck.run(x) { $0[0].slice(axis: -1, start: 3, length: 1) }, [])
        let parts = GradientCheck.inputs([[2, 1, 4], [2, 3, 4], [2, 2, 4]])
        XCTAssertEqual(GradientCheck.run(parts) { Tensor.concat($0, axis: 1) }, [])
        let rows = GradientCheck.inputs([[1, 5], [3, 5]])
        XCTAssertEqual(GradientCheck.run(rows) { Tensor.concat($0, axis: 0) }, [])
    }

    func testShapeOpValues() {
        let x = Tensor([0, 1, 2, 3, 4, 5], shape: [2, 3])
        XCTAssertEqual(x.transposed().scalars, [0, 3, 1, 4, 2, 5])
        XCTAssertEqual(x.slice(axis: 1, start: 1, length: 2).scalars, [1, 2, 4, 5])
        XCTAssertEqual(Tensor.concat([x, x.slice(axis: 1, start: 0, length: 1)], axis: 1).scalars, [0, 1, 2, 0, 3, 4, 5, 3])
        XCTAssertEqual(x.reshaped([3, -1]).shape, [3, 2])
    }
}
