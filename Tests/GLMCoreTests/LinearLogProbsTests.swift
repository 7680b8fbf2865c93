// Per-token log-probabilities through the output projection: gradient checks (hidden and weight, every chunking,
// ignored rows, a frozen bf16 weight), values against an explicit log-softmax, and the entropy metric.
import XCTest
import Foundation
import GLMCore
import TestSupport

final class LinearLogProbsTests: XCTestCase {
    let targets: [Int32] = [3, 0, ignoreLabel, 10, 7, 7, 1]

    func testGradientCheckForEveryChunking() {
        let ins = GradientCheck.inputs([[7, 6], [11, 6]])
        for chunk in [1, 3, 512] {
            XCTAssertEqual(GradientCheck.run(ins) {
                Tensor.linearLogProbs(hidden: $0[0], weight: $0[1], targets: self.targets, chunkRows: chunk).logProbs
            }, [], "chunk \(chunk)")
        }
        // Through a masked sequence sum, as DPO uses it.
        let mask = Tensor([1, 1, 0, 1, 0, 1, 1], shape: [7])
        XCTAssertEqual(GradientCheck.run(ins) {
            (Tensor.linearLogProbs(hidden: $0[0], weight: $0[1], targets: self.targets, chunkRows: 2).logProbs * mask).sum()
        }, [])
    }

    func testValuesEqualAnExplicitLogSoftmaxAndIgnoredRowsAreZero() {
        let ins = GradientCheck.inputs([[7, 6], [11, 6]], seed: 4)
        let r = Tensor.linearLogProbs(hidden: ins[0], weight: ins[1], targets: targets, chunkRows: 2, entropy: true)
        let logits = Autograd.noGrad { Tensor.matmul(ins[0], ins[1], transposeB: true) }
        for (i, t) in targets.enumerated() {
            let row = (0..<11).map { Double(logits.pointer[i * 11 + $0]) }
            let m = row.max()!
            let z = m + Foundation.log(row.map { Foundation.exp($0 - m) }.reduce(0, +))
            let p = row.map { Foundation.exp($0 - z) }
            let entropy = -zip(p, row).map { $0 * ($1 - z) }.reduce(0, +)
            if t == ignoreLabel {
                XCTAssertEqual(r.logProbs.pointer[i], 0)
                XCTAssertEqual(r.entropy![i], 0)
            } else {
                XCTAssertEqual(Double(r.logProbs.pointer[i]), row[Int(t)] - z, accuracy: 1e-5, "row \(i)")
                XCTAssertEqual(Double(r.entropy![i]), entropy, accuracy: 1e-5, "row \(i)")
            }
        }
        // An ignored row's hidden state gets no gradient.
        r.logProbs.sum().backward()
        XCTAssertEqual((0..<6).map { ins[0].grad!.pointer[2 * 6 + $0] }, [Float](repeating: 0, count: 6))
    }

    func testAFrozenBF16WeightGivesTheWidenedWeightsValuesAndInputGradients() {
        let ins = GradientCheck.inputs([[7, 6]], seed: 9)
        var gen = SeededGenerator(seed: 3)
        let w32 = Tensor.randomNormal([11, 6], generator: &gen).roundedToBF16()
        let widened = Tensor(w32.scalars, shape: [11, 6])
        XCTAssertNotNil(w32.bf16Bits)
        let a = Tensor.linearLogProbs(hidden: ins[0], weight: w32, targets: targets, chunkRows: 3).logProbs
        a.sum().backward()
        let gradBF16 = ins[0].grad!.scalars
        ins[0].zeroGrad()
        let b = Tensor.linearLogProbs(hidden: ins[0], weight: widened, targets: targets, chunkRows: 3).logProbs
        b.sum().backward()
        for i in 0..<7 { XCTAssertEqual(a.pointer[i], b.pointer[i], accuracy: 1e-6) }
        for (x, y) in zip(gradBF16, ins[0].grad!.scalars) { XCTAssertEqual(x, y, accuracy: 1e-5) }
        XCTAssertEqual(GradientCheck.run(ins) {
            Tensor.linearLogProbs(hidden: $0[0], weight: w32, targets: self.targets, chunkRows: 3).logProbs
        }, [])
    }
}
