// backward(leafReady:): each leaf is reported once, as soon as no node still to run can add to its gradient, and
// the gradient it holds then is its final one — also for a weight read in several places and for weights a
// checkpointed block reads both inside and outside the block. Leaves read late in the forward are reported early.
import XCTest
import GLMCore
import TestSupport

final class LeafReadyTests: XCTestCase {
    /// Runs `loss` backward with a leafReady that records (name, gradient at that moment) in report order.
    func reports(_ leaves: [String: Tensor], _ loss: Tensor) -> [(String, [Float])] {
        let names = Dictionary(uniqueKeysWithValues: leaves.map { (ObjectIdentifier($0.value), $0.key) })
        var seen: [(String, [Float])] = []
        loss.backward(leafReady: { t in
            guard let name = names[ObjectIdentifier(t)] else { return XCTFail("a tensor that is not a leaf was reported") }
            seen.append((name, t.grad?.scalars ?? []))
        })
        return seen
    }

    func testEachLeafIsReportedOnceWithItsFinalGradientLateOnesFirst() {
        let p = GradientCheck.inputs([[4, 5], [6, 5], [6, 6], [3, 6], [6]], seed: 3)
        let (x, w1, w2, w3, b) = (p[0], p[1], p[2], p[3], p[4])
        x.setRequiresGrad(false)
        // w2 is read twice (second and third layer), b by the first and the last op.
        let h1 = Tensor.linear(x, weight: w1, bias: b).tanh()
        let h2 = Tensor.linear(h1, weight: w2).silu()
        let h3 = Tensor.linear(h2, weight: w2) + b
        let loss = (Tensor.linear(h3, weight: w3) * Tensor.linear(h3, weight: w3)).sum()
        let seen = reports(["w1": w1, "w2": w2, "w3": w3, "b": b], loss)
        XCTAssertEqual(seen.map(\.0).sorted(), ["b", "w1", "w2", "w3"], "each leaf once")
        for (name, g) in seen {
            let final = ["w1": w1, "w2": w2, "w3": w3, "b": b][name]!.grad!.scalars
            XCTAssertEqual(g, final, "\(name): the reported gradient is the final one")
        }
        let order = seen.map(\.0)
        XCTAssertEqual(order.first, "w3", "the last layer's weight is finished first")
        XCTAssertLessThan(order.firstIndex(of: "w2")!, order.firstIndex(of: "w1")!)
        XCTAssertEqual(Set(order.suffix(2)), ["w1", "b"], "the first layer's weight and its bias finish last")
    }

    func testWeightsBehindACheckpointedBlockWaitForItsRecomputation() {
        let p = GradientCheck.inputs([[3, 5], [5, 5], [5, 5], [5]], seed: 9)
        let (x, inner, shared, late) = (p[0], p[1], p[2], p[3])
        // `shared` is read inside the block (seen only when it recomputes) and after it; `late` only at the end.
        let y = Autograd.checkpoint(x) { t in Tensor.linear(Tensor.linear(t, weight: inner).tanh(), weight: shared) }
        let loss = ((Tensor.linear(y, weight: shared) + late).tanh()).sum()
        let seen = reports(["x": x, "inner": inner, "shared": shared, "late": late], loss)
        for (name, g) in seen {
            let final = ["x": x, "inner": inner, "shared": shared, "late": late][name]!.grad!.scalars
            XCTAssertEqual(g, final, "\(name): reported before the block's recomputation added to it")
        }
        XCTAssertEqual(Set(seen.map(\.0)), ["x", "shared", "late"], "a leaf only the recomputation reads is not reported")
        XCTAssertNotNil(inner.grad)
        // Without leafReady the gradients are the same.
        let q = GradientCheck.inputs([[3, 5], [5, 5], [5, 5], [5]], seed: 9)
        let y2 = Autograd.checkpoint(q[0]) { t in Tensor.linear(Tensor.linear(t, weight: q[1]).tanh(), weight: q[2]) }
        ((Tensor.linear(y2, weight: q[2]) + q[3]).tanh()).sum().backward()
        XCTAssertEqual(q[1].grad?.scalars, inner.grad?.scalars)
        XCTAssertEqual(q[2].grad?.scalars, shared.grad?.scalars)
    }
}
