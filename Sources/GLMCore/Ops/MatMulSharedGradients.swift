// Both gradients of a product with a shared matrix (a linear layer whose input and weight both train) under bf16
// products, with the output gradient rounded once: dA = dC·op(B)ᵀ and dB = dCᵀ·A (or Aᵀ·dC) each rounded dC for
// themselves. The rounded values and oneDNN's products are those of the two separate calls, so the gradients are
// the same bits; one rounding pass over dC `[rows, n]` is saved (a sixth of a full bf16 step's rounding).

extension Tensor {
    /// (dA, dB) of `a · op(b)` with `a` `[..., k]` folded into `m` rows, or nil (bf16 products not active, few
    /// rows, or oneDNN failed) for the caller's separate products.
    static func sharedGradientsBF16(a: Tensor, b: Tensor, g: Tensor, m: Int, n: Int, k: Int, transposeB: Bool) -> (Tensor, Tensor)? {
        guard MixedPrecision.isActive, m > BF16Kernels.fewRows, n > 0, k > 0, b.bf16Bits == nil else { return nil }
        let da = Tensor(uninitialized: a.shape), db = Tensor(uninitialized: b.shape)
        let ldb = b.shape[1]
        let ok = StepProfile.time(.matrixProducts) { BF16Operands.withScratch(m * n) { gb in
            BF16Operands.withScratch(m * k) { ab in
                BF16Operands.withScratch(n * k) { bb in
                    BF16Operands.round(rows: m, cols: n, g.pointer, ld: n, into: gb, ldd: n)
                    BF16Operands.round(rows: m, cols: k, a.pointer, ld: k, into: ab, ldd: k)
                    BF16Operands.round(rows: b.shape[0], cols: ldb, b.pointer, ld: ldb, into: bb, ldd: ldb)
                    // dA = dC · op(B)ᵀ
                    guard BF16Operands.product(transB: !transposeB, m: m, n: k, k: n, a: gb, lda: n, b: bb, ldb: ldb,
                                               c: da.pointer, ldc: k) else { return false }
                    if transposeB {  // B stored [n, k]: dB = dCᵀ · A
                        return BF16Operands.product(transA: true, m: n, n: k, k: m, a: gb, lda: n, b: ab, ldb: k,
                                                    c: db.pointer, ldc: k)
                    }
                    return BF16Operands.product(transA: true, m: k, n: n, k: m, a: ab, lda: k, b: gb, ldb: n,
                                                c: db.pointer, ldc: n)
                }
            }
        } }
        return ok ? (da, db) : nil
    }
}
