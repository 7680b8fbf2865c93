// The tape's contract: accumulation, zeroing, no-grad mode, frozen tensors, release after backward.
import XCTest
import GLMCore

final class AutogradTests: XCTestCase {
    func testGradientsAccumulateAcrossBackwardCallsUntilZeroed() {
        let w = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        let x = Tensor([4, 5, 6], shape: [3])
        (w * x).sum().backward()
        XCTAssertEqual(w.grad!.scalars, [4, 5, 6])
        (w * x).sum().backward()
        XCTAssertEqual(w.grad!.scalars, [8, 10, 12])
        w.zeroGrad()
        XCTAssertNil(w.grad)
        (w * x).sum().backward()
        XCTAssertEqual(w.grad!.scalars, [4, 5, 6])
    }

    func testNoGradRecordsNothing() {
        let w = Tensor([1, 2], shape: [2], requiresGrad: true)
        let y = Autograd.noGrad { (w * w).sum() }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertFalse(y.isOnTape)
        XCTAssertTrue(Autograd.isRecording)
    }

    func testFrozenTensorsGetNoGradientBuffer() {
        let frozen = Tensor([1, 2], shape: [2])
        let trained = Tensor([3, 4], shape: [2], requiresGrad: true)
        (frozen * trained).sum().backward()
        XCTAssertNil(frozen.grad)
        XCTAssertEqual(trained.grad!.scalars, [1, 2])
        let both = Tensor([1, 2], shape: [2], requiresGrad: true)
        both.setRequiresGrad(false)
        XCTAssertFalse((both * frozen).requiresGrad)
    }

    func testTapeAndSavedActivationsAreReleasedAfterBackward() {
        let w = Tensor([0.5, -1], shape: [2], requiresGrad: true)
        weak var intermediate: Tensor?
        var loss: Tensor!
        do {
            let h = (w * w).exp()
            intermediate = h
            loss = h.sum()
        }
        XCTAssertNotNil(intermediate, "the tape keeps the intermediate alive before backward")
        loss.backward()
        XCTAssertNil(intermediate, "backward releases the tape and its saved activations")
        XCTAssertFalse(loss.isOnTape)
        XCTAssertEqual(w.grad!.scalars[0], 2 * 0.5 * Foundation.exp(0.25), accuracy: 1e-6)
    }

    func testSharedSubexpressionGetsBothContributions() {
        let x = Tensor([3], shape: [1], requiresGrad: true)
        let y = x * x + x  // dy/dx = 2x + 1
        y.sum().backward()
        XCTAssertEqual(x.grad!.item, 7)
    }

    func testLeafGradientIsNeverAliasedWithAnotherLeaf() {
        let a = Tensor([1, 1], shape: [2], requiresGrad: true)
        let b = Tensor([1, 1], shape: [2], requiresGrad: true)
        (a + b).sum().backward()
        a.grad!.pointer[0] = 100
        XCTAssertEqual(b.grad!.scalars, [1, 1])
    }
}
