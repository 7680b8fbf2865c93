// The embedding's padding index (torch.nn.Embedding(padding_idx:)): the forward reads the pad row like any other,
// the backward leaves that row of the table's gradient untouched, and other uses of the table still reach it.
import XCTest
import GLMCore
import TestSupport

final class EmbeddingPaddingTests: XCTestCase {
    let ids: [Int32] = [1, 4, 1, 0, 4, 3, 2, 4]   // pad id 4 three times, row 5 never used
    let pad = 4

    /// The table as [rows before the pad row; pad row; rows after]: finite differences on the other rows, with
    /// the pad row held constant, are the gradient torch defines for padding_idx.
    func testGradientOfNonPadRowsMatchesFiniteDifferences() {
        for (vocab, hidden) in [(6, 4), (9, 7)] {
            let parts = GradientCheck.inputs([[pad, hidden], [1, hidden], [vocab - pad - 1, hidden]])
            parts[1].setRequiresGrad(false)
            let mismatches = GradientCheck.run(parts) { p in
                Tensor.embedding(Tensor.concat(p, axis: 0), ids: self.ids, idsShape: [2, 4], paddingIndex: self.pad)
            }
            XCTAssertEqual(mismatches, [], "vocab \(vocab), hidden \(hidden)")
        }
    }

    func testPadRowGetsNoGradientButIsRead() {
        let table = GradientCheck.inputs([[6, 3]])[0]
        let plain = Autograd.noGrad { Tensor.embedding(table, ids: ids, idsShape: [2, 4]) }
        let out = Tensor.embedding(table, ids: ids, idsShape: [2, 4], paddingIndex: pad)
        XCTAssertEqual(out.scalars, plain.scalars, "the forward is the same lookup")
        XCTAssertEqual(Array(out.scalars[3..<6]), Array(table.scalars[12..<15]), "position 1 reads the pad row")
        out.sum().backward()
        let g = table.grad!.scalars
        XCTAssertEqual(Array(g[12..<15]), [0, 0, 0], "pad row")
        XCTAssertEqual(Array(g[3..<6]), [2, 2, 2], "row 1 is used twice")
        XCTAssertEqual(Array(g[15..<18]), [0, 0, 0], "row 5 is never used")
        XCTAssertEqual(Array(g[0..<3]), [1, 1, 1])
    }

    /// A tied LM head: y = E[ids] and logits = h·Eᵀ. The head's gradient reaches the pad row (torch accumulates
    /// it into the shared weight); only the lookup's contribution to that row is dropped.
    func testTiedUseStillReachesPadRow() {
        let table = GradientCheck.inputs([[6, 3]])[0]
        var gen = SeededGenerator(seed: 3)
        let h = Tensor.randomNormal([5, 3], generator: &gen)
        func loss() -> Tensor {
            let x = Tensor.embedding(table, ids: ids, idsShape: [8], paddingIndex: pad)
            return x.sum() + Tensor.linear(h, weight: table).sum()
        }
        loss().backward()
        let tied = table.grad!.scalars
        table.zeroGrad()
        Tensor.linear(h, weight: table).sum().backward()
        let head = table.grad!.scalars
        table.zeroGrad()
        XCTAssertEqual(Array(tied[12..<15]), Array(head[12..<15]), "pad row: the head's gradient alone")
        XCTAssertNotEqual(head[12], 0)
        for j in 0..<3 { XCTAssertEqual(tied[3 + j], head[3 + j] + 2, accuracy: 1e-5, "row 1: head + two lookups") }
    }

    func testNoPaddingIndexKeepsScatterAdd() {
        let table = GradientCheck.inputs([[6, 2]])[0]
        Tensor.embedding(table, ids: ids, idsShape: [8]).sum().backward()
        XCTAssertEqual(Array(table.grad!.scalars[8..<10]), [3, 3], "without a padding index the pad id trains")
    }
}
