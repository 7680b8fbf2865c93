// Cross-entropy: gradient checks, ignored labels, the fused output projection, and chunking.
import XCTest
import GLMCore
import TestSupport

final class CrossEntropyTests: XCTestCase {
    func testGradientWithIgnoredLabels() {
        let targets: [Int32] = [2, ignoreLabel, 0, 6, ignoreLabel, 1]
        let ins = GradientCheck.inputs([[2, 3, 7]], std: 2)
        XCTAssertEqual(GradientCheck.run(ins) { Tensor.crossEntropy(logits: $0[0], targets: targets) }, [])
        let loss = Tensor.crossEntropy(logits: ins[0], targets: targets)
        // By hand: mean over the four counted rows of logsumexp − logit[target].
        var expected = 0.0
        for (r, t) in targets.enumerated() where t != ignoreLabel {
            let row = (0..<7).map { Double(ins[0].pointer[r * 7 + $0]) }
            expected += Foundation.log(row.map { Foundation.exp($0) }.reduce(0, +)) - row[Int(t)]
        }
        XCTAssertEqual(Double(loss.item), expected / 4, accuracy: 1e-5)
    }

    func testAllLabelsIgnoredGivesZeroLossAndGradient() {
        let logits = GradientCheck.inputs([[2, 5]])[0]
        let loss = Tensor.crossEntropy(logits: logits, targets: [ignoreLabel, ignoreLabel])
        XCTAssertEqual(loss.item, 0)
        loss.backward()
        XCTAssertEqual(logits.grad!.scalars.map(abs).max(), 0)
    }

    func testFusedLinearCrossEntropyMatchesUnfusedAndChunks() {
        let targets: [Int32] = [3, 0, ignoreLabel, 10, 7, 7, 1]
        let ins = GradientCheck.inputs([[7, 6], [11, 6]])
        for chunk in [1, 3, 512] {
            XCTAssertEqual(GradientCheck.run(ins) {
                Tensor.linearCrossEntropy(hidden: $0[0], weight: $0[1], targets: targets, chunkRows: chunk)
            }, [], "chunk \(chunk)")
        }
        let fused = Tensor.linearCrossEntropy(hidden: ins[0], weight: ins[1], targets: targets, chunkRows: 2)
        let unfused = Tensor.crossEntropy(logits: Tensor.matmul(ins[0], ins[1], transposeB: true), targets: targets)
        XCTAssertEqual(fused.item, unfused.item, accuracy: 1e-5)
        fused.backward()
        let g1 = (ins[0].grad!.copy(), ins[1].grad!.copy())
        ins[0].zeroGrad(); ins[1].zeroGrad()
        unfused.backward()
        XCTAssertLessThan(Fixtures.relativeError(g1.0, ins[0].grad!), 1e-5)
        XCTAssertLessThan(Fixtures.relativeError(g1.1, ins[1].grad!), 1e-5)
    }

    func testFusedLossUnderNoGradComputesNoGradients() {
        let h = GradientCheck.inputs([[3, 4]])[0], w = GradientCheck.inputs([[5, 4]], seed: 2)[0]
        let loss = Autograd.noGrad { Tensor.linearCrossEntropy(hidden: h, weight: w, targets: [1, 2, 3]) }
        XCTAssertFalse(loss.requiresGrad)
        XCTAssertGreaterThan(loss.item, 0)
    }
}
