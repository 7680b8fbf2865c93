// Activation recompute: a checkpointed block gives the same output and the same gradients (bit for bit) as the
// recorded block, and replays its random draws when recomputed instead of drawing again.
import XCTest
import GLMCore
import TestSupport

final class ActivationCheckpointTests: XCTestCase {
    struct Result { var loss: [Float]; var grads: [[Float]?]; var draws: Int }

    /// Two blocks x → (silu(h) ⊙ h ⊙ mask)·W2ᵀ with h = x·W1ᵀ + b, the mask drawn through `replayable` as LoRA
    /// dropout is; then a scalar loss.
    func run(checkpointed: Bool, inputNeedsGrad: Bool = true) -> Result {
        let p = GradientCheck.inputs([[3, 5], [6, 5], [6], [5, 6]], seed: 11)
        let (x, w1, b, w2) = (p[0], p[1], p[2], p[3])
        x.setRequiresGrad(inputNeedsGrad)
        var gen = SeededGenerator(seed: 5)
        var draws = 0
        let block = { (x: Tensor) -> Tensor in
            let h = Tensor.linear(x, weight: w1, bias: b)
            let mask = Autograd.replayable {
                draws += 1
                return Tensor((0..<18).map { _ in gen.nextUniform() < 0.3 ? 0 : 1 / 0.7 }, shape: [3, 6])
            }
            return Tensor.linear(h.silu() * h * mask, weight: w2)
        }
        let y1 = checkpointed ? Autograd.checkpoint(x, block) : block(x)
        let y2 = checkpointed ? Autograd.checkpoint(y1.tanh(), block) : block(y1.tanh())
        let loss = (y2 * y2).sum()
        loss.backward()
        return Result(loss: loss.scalars, grads: [x, w1, b, w2].map { $0.grad?.scalars }, draws: draws)
    }

    func testCheckpointedBlocksGiveTheRecordedGradientsBitForBit() {
        let plain = run(checkpointed: false), recomputed = run(checkpointed: true)
        XCTAssertEqual(recomputed.loss, plain.loss)
        for (i, (a, b)) in zip(recomputed.grads, plain.grads).enumerated() {
            XCTAssertNotNil(b, "input \(i)")
            XCTAssertEqual(a, b, "gradient of input \(i)")
        }
        // Each block drew its mask once; the recompute replayed it (the generator did not advance).
        XCTAssertEqual(plain.draws, 2)
        XCTAssertEqual(recomputed.draws, 2)
    }

    func testAFrozenInputStillGivesTheWeightsTheirGradients() {
        let plain = run(checkpointed: false, inputNeedsGrad: false), recomputed = run(checkpointed: true, inputNeedsGrad: false)
        XCTAssertNil(recomputed.grads[0])
        XCTAssertEqual(Array(recomputed.grads.dropFirst()), Array(plain.grads.dropFirst()))
    }

    func testWithoutRecordingItIsThePlainBlock() {
        let w = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        let y = Autograd.noGrad { Autograd.checkpoint(Tensor([1, 1, 1], shape: [3])) { $0 * w } }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertEqual(y.scalars, [1, 2, 3])
        XCTAssertFalse(Autograd.noGrad { Autograd.isTrainingForward }, "evaluation is not a training forward")
    }

    func testTheUnrecordedFirstRunIsATrainingForward() {
        var seen: [String] = []
        let x = Tensor([1, 2], shape: [2], requiresGrad: true)
        let y = Autograd.checkpoint(x) { t in
            seen.append("training \(Autograd.isTrainingForward), recording \(Autograd.isRecording)")
            return t * t
        }
        y.sum().backward()
        // First run: a training forward that records nothing; the recompute in the backward records.
        XCTAssertEqual(seen, ["training true, recording false", "training true, recording true"])
        XCTAssertEqual(x.grad?.scalars, [2, 4])
    }
}
