// Per-token log-probabilities through the output projection, as a differentiable tensor: what DPO and policy
// gradient losses need. Like `linearCrossEntropy`, the `[tokens, vocab]` logits are made one chunk at a time and
// never held whole; backward recomputes each chunk's logits (the upstream gradient differs per token).
import Foundation

extension Tensor {
    /// Per-row results of `linearLogProbs`.
    public struct TokenLogProbs {
        /// `[rows]`: `log softmax(hidden[i] · weightᵀ)[targets[i]]`, 0 where `targets[i] == ignoreLabel`. Recorded:
        /// gradients flow to `hidden` and `weight`.
        public let logProbs: Tensor
        /// The entropy of each row's distribution in nats (0 for ignored rows), when asked for; a metric, not recorded.
        public let entropy: [Float]?

        public init(logProbs: Tensor, entropy: [Float]?) { self.logProbs = logProbs; self.entropy = entropy }
    }

    /// `log p(targets[i] | hidden[i])` for every row of `hidden` (`[..., H]`) under the output projection
    /// `weight` (`[V, H]`), computed `chunkRows` rows at a time. Rows whose target is `ignoreLabel` give 0 and
    /// receive no gradient. With `entropy`, also each row's entropy −Σ p log p.
    public static func linearLogProbs(hidden: Tensor, weight: Tensor, targets: [Int32], chunkRows: Int = 512,
                                      entropy wantEntropy: Bool = false) -> TokenLogProbs {
        let h = hidden.shape.last!, vocab = weight.shape[0]
        precondition(weight.shape == [vocab, h], "output weight \(weight.shape) does not match hidden size \(h)")
        let rows = hidden.count / h
        checkTargets(targets, rows: rows, vocab: vocab)
        let chunk = max(1, min(chunkRows, rows))
        let wbits = weight.requiresGrad ? nil : weight.bf16Bits
        let out = Tensor(zeros: [rows])
        var lse = [Float](repeating: 0, count: rows)
        let entropyBuffer: UnsafeMutablePointer<Float>? = wantEntropy ? .allocate(capacity: rows) : nil
        entropyBuffer?.initialize(repeating: 0, count: rows)
        defer { entropyBuffer?.deallocate() }
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: chunk * vocab)
        defer { logits.deallocate() }

        /// Logits of rows r0 ..< r0+n into `logits`.
        func project(_ r0: Int, _ n: Int, into buffer: UnsafeMutablePointer<Float>) {
            if let wbits {
                BF16Kernels.product(transB: true, m: n, n: vocab, k: h, a: hidden.pointer + r0 * h, lda: h, b: wbits, ldb: h,
                                    c: buffer, ldc: vocab)
            } else {
                MixedPrecision.gemm(transB: true, m: n, n: vocab, k: h, a: hidden.pointer + r0 * h, lda: h, b: weight.pointer, ldb: h,
                          c: buffer, ldc: vocab)
            }
        }

        let op = out.pointer
        var r0 = 0
        while r0 < rows {
            let n = min(chunk, rows - r0)
            project(r0, n, into: logits)
            lse.withUnsafeMutableBufferPointer { lb in
                let l = lb.baseAddress!
                let ep = entropyBuffer
                Parallel.forEachChunk(n, costPerItem: vocab * (wantEntropy ? 10 : 6)) { range in
                    for i in range {
                        let t = targets[r0 + i]
                        guard t != ignoreLabel else { continue }
                        let row = logits + i * vocab
                        let z = SoftmaxRows.logSumExp(row, vocab)
                        l[r0 + i] = z
                        op[r0 + i] = row[Int(t)] - z
                        if let ep {
                            // H = z − Σ p_j x_j with p_j = exp(x_j − z).
                            var expected = 0.0
                            for j in 0..<vocab { expected += Double(Foundation.exp(row[j] - z) * row[j]) }
                            ep[r0 + i] = Float(Double(z) - expected)
                        }
                    }
                }
            }
            r0 += n
        }
        withExtendedLifetime(weight) {}

        let result = out.recorded(from: [hidden, weight]) { g in
            let recordHidden = hidden.requiresGrad, recordWeight = weight.requiresGrad
            let dHidden = recordHidden ? Tensor(zeros: hidden.shape) : nil
            let dWeight = recordWeight ? Tensor(zeros: weight.shape) : nil
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: chunk * vocab)
            defer { buffer.deallocate() }
            let gp = g.pointer
            var r0 = 0
            while r0 < rows {
                let n = min(chunk, rows - r0)
                project(r0, n, into: buffer)
                // d log p_t / d x = onehot(t) − softmax(x), times the row's upstream gradient.
                Parallel.forEachChunk(n, costPerItem: vocab * 4) { range in
                    for i in range {
                        let t = targets[r0 + i], row = buffer + i * vocab
                        if t == ignoreLabel || gp[r0 + i] == 0 { row.update(repeating: 0, count: vocab); continue }
                        SoftmaxRows.gradient(row, vocab, lse: lse[r0 + i], target: Int(t), scale: -gp[r0 + i])
                    }
                }
                if let dHidden {
                    if let wbits {
                        BF16Kernels.product(transB: false, m: n, n: h, k: vocab, a: buffer, lda: vocab, b: wbits, ldb: h,
                                            c: dHidden.pointer + r0 * h, ldc: h)
                    } else {
                        MixedPrecision.gemm(m: n, n: h, k: vocab, a: buffer, lda: vocab, b: weight.pointer, ldb: h,
                                  c: dHidden.pointer + r0 * h, ldc: h)
                    }
                }
                if let dWeight {
                    MixedPrecision.gemm(transA: true, m: vocab, n: h, k: n, a: buffer, lda: vocab, b: hidden.pointer + r0 * h, ldb: h,
                              beta: 1, c: dWeight.pointer, ldc: h)
                }
                r0 += n
            }
            if let dHidden { hidden.accumulateGrad(dHidden, fresh: true) }
            if let dWeight { weight.accumulateGrad(dWeight, fresh: true) }
        }
        return TokenLogProbs(logProbs: result, entropy: entropyBuffer.map { Array(UnsafeBufferPointer(start: $0, count: rows)) })
    }
}
