// Gradient checks of matmul with every transpose combination, batched and shared-weight forms, and Linear.
import XCTest
import GLMCore
import TestSupport

final class MatMulGradientTests: XCTestCase {
    func testTwoDimensionalWithTransposeFlags() {
        let (m, k, n) = (3, 5, 4)
        for ta in [false, true] {
            for tb in [false, true] {
                let ins = GradientCheck.inputs([ta ? [k, m] : [m, k], tb ? [n, k] : [k, n]])
                XCTAssertEqual(GradientCheck.run(ins) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }, [],
                               "transposeA \(ta) transposeB \(tb)")
            }
        }
    }

    func testBatchedAndSharedWeight() {
        for ta in [false, true] {
            for tb in [false, true] {
                let batched = GradientCheck.inputs([ta ? [2, 3, 5, 7] : [2, 3, 7, 5], tb ? [2, 3, 6, 5] : [2, 3, 5, 6]])
                XCTAssertEqual(GradientCheck.run(batched) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }, [],
                               "batched ta \(ta) tb \(tb)")
                let shared = GradientCheck.inputs([ta ? [2, 5, 7] : [2, 7, 5], tb ? [6, 5] : [5, 6]])
                XCTAssertEqual(GradientCheck.run(shared) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }, [],
                               "shared ta \(ta) tb \(tb)")
            }
        }
    }

    func testValuesAgainstNaiveProduct() {
        let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3]), b = Tensor([1, 0, 2, -1, 0, 1], shape: [3, 2])
        XCTAssertEqual(Tensor.matmul(a, b).scalars, [5, 1, 14, 1])
        XCTAssertEqual(Tensor.matmul(a, b, transposeA: true, transposeB: true).shape, [3, 3])
        XCTAssertEqual(Tensor.matmul(a, a, transposeB: true).scalars, [14, 32, 32, 77])
    }

    func testSingleRowProductsTakeTheMatrixVectorPathCorrectly() {
        // m = 1 goes through sgemv; compare every transpose combination with a naive product, and check gradients.
        let (k, n) = (7, 5)
        for ta in [false, true] {
            for tb in [false, true] {
                let ins = GradientCheck.inputs([ta ? [k, 1] : [1, k], tb ? [n, k] : [k, n]])
                let c = Tensor.matmul(ins[0], ins[1], transposeA: ta, transposeB: tb).scalars
                for j in 0..<n {
                    var expected: Float = 0
                    for i in 0..<k { expected += ins[0].pointer[i] * ins[1].pointer[tb ? j * k + i : i * n + j] }
                    XCTAssertEqual(c[j], expected, accuracy: 1e-5, "ta \(ta) tb \(tb) [\(j)]")
                }
                XCTAssertEqual(GradientCheck.run(ins) { Tensor.matmul($0[0], $0[1], transposeA: ta, transposeB: tb) }, [])
            }
        }
    }

    func testLinearWithBias() {
        let ins = GradientCheck.inputs([[2, 3, 5], [4, 5], [4]])
        XCTAssertEqual(GradientCheck.run(ins) { Tensor.linear($0[0], weight: $0[1], bias: $0[2]) }, [])
    }
}
