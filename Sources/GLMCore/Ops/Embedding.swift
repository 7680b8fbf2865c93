// Embedding lookup: a row gather forward, a scatter-add backward into the table's gradient that skips the padding
// row, as torch.nn.Embedding(padding_idx:) does.

extension Tensor {
    /// Rows of `table` (`[V, H]`) picked by `ids`; the result has shape `idsShape + [H]`.
    ///
    /// `paddingIndex` is torch's `padding_idx`: positions holding that id still read its row, but the backward
    /// adds nothing to that row of the table's gradient (`embedding_dense_backward` skips it). Other uses of the
    /// same table, such as a tied LM head, still send gradient into the row.
    public static func embedding(_ table: Tensor, ids: [Int32], idsShape: [Int], paddingIndex: Int? = nil) -> Tensor {
        precondition(table.rank == 2, "embedding table must be [vocab, hidden], got \(table.shape)")
        precondition(ids.count == idsShape.reduce(1, *), "\(ids.count) ids do not fill shape \(idsShape)")
        let (vocab, hidden) = (table.shape[0], table.shape[1])
        for id in ids { precondition(id >= 0 && Int(id) < vocab, "token id \(id) outside vocabulary of \(vocab)") }
        if let paddingIndex { precondition(paddingIndex >= 0 && paddingIndex < vocab, "padding index \(paddingIndex) outside vocabulary of \(vocab)") }
        let out = Tensor(uninitialized: idsShape + [hidden])
        let op = out.pointer
        if let bits = table.bf16Bits, !table.requiresGrad {  // frozen bf16 table: widen the picked rows only
            for (i, id) in ids.enumerated() { BF16Kernels.widen(bits + Int(id) * hidden, op + i * hidden, hidden) }
            withExtendedLifetime(table) {}
            return out
        }
        let tp = table.pointer
        for (i, id) in ids.enumerated() { (op + i * hidden).update(from: tp + Int(id) * hidden, count: hidden) }
        let skipped = Int32(paddingIndex ?? -1)
        return out.recorded(from: [table]) { g in
            let dt = Tensor(zeros: table.shape)
            let gp = g.pointer, dp = dt.pointer
            for (i, id) in ids.enumerated() where id != skipped {
                Kernels.addInPlace(dp + Int(id) * hidden, gp + i * hidden, hidden)
            }
            table.accumulateGrad(dt, fresh: true)
        }
    }
}
