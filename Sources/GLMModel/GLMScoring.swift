// Losses and scores of any causal LM (built on its `hiddenStates` and `lmHead`): mean cross-entropy through the fused output projection, and per-token
// log-probabilities of given sequences (what `glm-train score` prints).
import Foundation
import GLMCore

extension CausalLanguageModel {
    /// Mean cross-entropy of the next-token predictions: `targets[b·T + t]` is the label of position t of row b
    /// (already shifted; `ignoreLabel` (−100) rows count neither in the sum nor in the mean). The logits are never
    /// materialised whole (`Tensor.linearCrossEntropy`). Other arguments as in `hiddenStates`.
    public func loss(ids: [Int32], targets: [Int32], batch: Int, length: Int, positions: [Int32]? = nil,
                     blockPositions: [Int32]? = nil, mask: AttentionMask? = nil) -> Tensor {
        let h = hiddenStates(ids: ids, batch: batch, length: length, positions: positions,
                             blockPositions: blockPositions, mask: mask)
        return Tensor.linearCrossEntropy(hidden: h, weight: lmHead, targets: targets)
    }

    /// Per-position log-probabilities of the (already shifted) `targets` as a differentiable `[batch, length]`
    /// tensor: entry (b, t) is log p(targets[b·T + t] | row b up to t), 0 where the target is `ignoreLabel`.
    /// The logits are made in chunks and never held whole (`Tensor.linearLogProbs`); with `entropy`, each
    /// position's predictive entropy comes back too (a metric). With `temperature`, the log-probabilities are those
    /// of the temperature-scaled distribution (logits / T). Other arguments as in `hiddenStates`.
    public func targetLogProbs(ids: [Int32], targets: [Int32], batch: Int, length: Int, positions: [Int32]? = nil,
                               blockPositions: [Int32]? = nil, mask: AttentionMask? = nil,
                               entropy: Bool = false, temperature: Float = 1) -> Tensor.TokenLogProbs {
        var h = hiddenStates(ids: ids, batch: batch, length: length, positions: positions,
                             blockPositions: blockPositions, mask: mask)
        // Logits / T = (h / T)·Wᵀ: the distribution a sampler at temperature T draws from.
        if temperature != 1 { h = h.scaled(1 / temperature) }
        let r = Tensor.linearLogProbs(hidden: h.reshaped([batch * length, configuration.hiddenSize]), weight: lmHead,
                                      targets: targets, entropy: entropy)
        return Tensor.TokenLogProbs(logProbs: r.logProbs.reshaped([batch, length]), entropy: r.entropy)
    }

    /// `out[s][i] = log p(ids[s][i+1] | ids[s][0...i])` for each sequence (n−1 values; none for n < 2), computed
    /// without recording gradients, causal attention, positions 0..<n. Sequences of equal length run as one batch
    /// (up to `maxBatch`); the logits are made `chunkRows` rows at a time.
    public func tokenLogProbs(ids: [[Int32]], maxBatch: Int = 8, chunkRows: Int = 256) -> [[Float]] {
        var out = [[Float]](repeating: [], count: ids.count)
        let byLength = Dictionary(grouping: ids.indices.filter { ids[$0].count >= 2 }, by: { ids[$0].count })
        Autograd.noGrad {
            for (n, members) in byLength.sorted(by: { $0.key < $1.key }) {
                var start = 0
                while start < members.count {
                    let group = Array(members[start..<min(members.count, start + maxBatch)])
                    start += group.count
                    let flat = group.flatMap { ids[$0] }
                    let hidden = hiddenStates(ids: flat, batch: group.count, length: n)
                    let scores = rowLogProbs(hidden.reshaped([group.count * n, configuration.hiddenSize]), flat, length: n,
                                             chunkRows: chunkRows)
                    for (j, s) in group.enumerated() { out[s] = Array(scores[(j * n)..<(j * n + n - 1)]) }
                }
            }
        }
        return out
    }

    /// For rows `[R, H]` (sequences of `length` back to back): log-softmax of row r's logits at token r+1 of the
    /// same sequence; the last row of each sequence gets 0 (it predicts nothing).
    private func rowLogProbs(_ hidden: Tensor, _ tokens: [Int32], length: Int, chunkRows: Int) -> [Float] {
        let rows = hidden.shape[0], vocab = configuration.vocabSize
        var out = [Float](repeating: 0, count: rows)
        var r0 = 0
        while r0 < rows {
            let n = min(chunkRows, rows - r0)
            let lg = Tensor.linear(hidden.slice(axis: 0, start: r0, length: n), weight: lmHead)
            let lp = lg.pointer
            out.withUnsafeMutableBufferPointer { ob in
                let o = ob.baseAddress!
                Parallel.forEachChunk(n, costPerItem: vocab * 4) { range in
                    for i in range where (r0 + i) % length != length - 1 {
                        let row = lp + i * vocab
                        let m = Kernels.max(row, vocab)
                        var sum = 0.0
                        for j in 0..<vocab { sum += Foundation.exp(Double(row[j] - m)) }
                        o[r0 + i] = Float(Double(row[Int(tokens[r0 + i + 1])] - m) - Foundation.log(sum))
                    }
                }
            }
            r0 += n
        }
        return out
    }
}
