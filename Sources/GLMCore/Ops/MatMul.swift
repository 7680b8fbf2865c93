// Matrix products on OpenBLAS sgemm with transpose flags (no materialised transposes), and Linear; with
// `MixedPrecision` active (training.precision: bf16) the many-row products take bf16 operands (MixedPrecision.swift).

extension Tensor {
    /// Matrix product. `a` is `[..., m, k]` (or `[..., k, m]` with `transposeA`). `b` is either a
    /// matrix `[k, n]` (`[n, k]` with `transposeB`) shared by every leading index of `a` — the leading
    /// dimensions are folded into m, one sgemm — or a batch `[..., k, n]` with the same leading
    /// dimensions as `a` (one sgemm per batch entry).
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
        let batchShape = Array(a.shape.dropLast(2))
        let shared = b.rank == 2
        precondition(shared || Array(b.shape.dropLast(2)) == batchShape,
                     "matmul batch dimensions differ: \(a.shape) and \(b.shape)")
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let (kb, n) = transposeB ? (bc, br) : (br, bc)
        precondition(k == kb, "matmul inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") · \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batch = batchShape.reduce(1, *)
        if let bits = b.bf16Bits, !b.requiresGrad {
            if shared && !transposeA { return matmulBF16(a, b, bits, m: batch * m, n: n, k: k, transposeB: transposeB) }
            // Other layouts with a bf16 operand: widen it for this call only (the storage stays bf16).
            return matmul(a, b.widened(), transposeA: transposeA, transposeB: transposeB)
        }
        let out = Tensor(uninitialized: batchShape + [m, n])
        let ap = a.pointer, bp = b.pointer, cp = out.pointer
        if shared && !transposeA && transposeB && batch * m <= SmallRowMatMul.maxRows {
            // Few rows times a Linear-layout weight (decode): read the weight once for all rows.
            SmallRowMatMul.gemm(m: batch * m, n: n, k: k, a: ap, lda: ac, b: bp, ldb: bc, c: cp, ldc: n)
        } else if shared && !transposeA {
            MixedPrecision.gemm(transA: false, transB: transposeB, m: batch * m, n: n, k: k,
                      a: ap, lda: ac, b: bp, ldb: bc, c: cp, ldc: n)
        } else {
            for i in 0..<batch {
                MixedPrecision.gemm(transA: transposeA, transB: transposeB, m: m, n: n, k: k,
                          a: ap + i * ar * ac, lda: ac, b: bp + (shared ? 0 : i * br * bc), ldb: bc,
                          c: cp + i * m * n, ldc: n)
            }
        }
        return out.recorded(from: [a, b]) { g in
            let gp = g.pointer
            if shared && !transposeA && a.requiresGrad && b.requiresGrad,
               let (da, db) = sharedGradientsBF16(a: a, b: b, g: g, m: batch * m, n: n, k: k, transposeB: transposeB) {
                a.accumulateGrad(da, fresh: true)
                b.accumulateGrad(db, fresh: true)
                return
            }
            if a.requiresGrad {
                let da = Tensor(uninitialized: a.shape)
                let dp = da.pointer
                if shared && !transposeA {
                    // dA = dC · op(B)ᵀ over all folded rows at once.
                    MixedPrecision.gemm(transA: false, transB: !transposeB, m: batch * m, n: k, k: n,
                              a: gp, lda: n, b: bp, ldb: bc, c: dp, ldc: ac)
                } else {
                    for i in 0..<batch {
                        let bi = bp + (shared ? 0 : i * br * bc), gi = gp + i * m * n, di = dp + i * ar * ac
                        if transposeA {  // A stored [k, m]: dA = op(B) · dCᵀ
                            MixedPrecision.gemm(transA: transposeB, transB: true, m: k, n: m, k: n,
                                      a: bi, lda: bc, b: gi, ldb: n, c: di, ldc: ac)
                        } else {         // dA = dC · op(B)ᵀ
                            MixedPrecision.gemm(transA: false, transB: !transposeB, m: m, n: k, k: n,
                                      a: gi, lda: n, b: bi, ldb: bc, c: di, ldc: ac)
                        }
                    }
                }
                a.accumulateGrad(da, fresh: true)
            }
            if b.requiresGrad {
                let db = Tensor(uninitialized: b.shape)
                let dp = db.pointer
                if shared && !transposeA {
                    if transposeB {  // B stored [n, k]: dB = dCᵀ · A
                        MixedPrecision.gemm(transA: true, transB: false, m: n, n: k, k: batch * m,
                                  a: gp, lda: n, b: ap, ldb: ac, c: dp, ldc: bc)
                    } else {         // dB = Aᵀ · dC
                        MixedPrecision.gemm(transA: true, transB: false, m: k, n: n, k: batch * m,
                                  a: ap, lda: ac, b: gp, ldb: n, c: dp, ldc: bc)
                    }
                } else {
                    for i in 0..<batch {
                        let ai = ap + i * ar * ac, gi = gp + i * m * n
                        let di = dp + (shared ? 0 : i * br * bc)
                        let beta: Float = shared && i > 0 ? 1 : 0
                        if transposeB {  // dB = dCᵀ · op(A)
                            MixedPrecision.gemm(transA: true, transB: transposeA, m: n, n: k, k: m,
                                      a: gi, lda: n, b: ai, ldb: ac, beta: beta, c: di, ldc: bc)
                        } else {         // dB = op(A)ᵀ · dC
                            MixedPrecision.gemm(transA: !transposeA, transB: false, m: k, n: n, k: m,
                                      a: ai, lda: ac, b: gi, ldb: n, beta: beta, c: di, ldc: bc)
                        }
                    }
                }
                b.accumulateGrad(db, fresh: true)
            }
        }
    }

    /// `a` (`[..., k]` rows folded into m) times a frozen bf16 matrix `b` (`[n, k]` with `transposeB`, else `[k, n]`).
    /// The backward gives `a` the exact gradient dC · op(B)ᵀ with B widened; `b` gets none (it does not train).
    static func matmulBF16(_ a: Tensor, _ b: Tensor, _ bits: UnsafeMutablePointer<UInt16>, m: Int, n: Int, k: Int,
                           transposeB: Bool) -> Tensor {
        let out = Tensor(uninitialized: Array(a.shape.dropLast()) + [n])
        let ldb = b.shape[1]
        // bf16 compute: the weight's bits are already the operand (many rows; few-row decode keeps its kernels).
        BF16Kernels.product(transB: transposeB, m: m, n: n, k: k, a: a.pointer, lda: k, b: bits, ldb: ldb,
                            c: out.pointer, ldc: n)
        withExtendedLifetime(b) {}
        return out.recorded(from: [a]) { g in
            let da = Tensor(uninitialized: a.shape)
            if let bits = b.bf16Bits {  // re-read: something may have widened b since the forward pass
                BF16Kernels.product(transB: !transposeB, m: m, n: k, k: n, a: g.pointer, lda: n, b: bits, ldb: ldb,
                                    c: da.pointer, ldc: k)
            } else {
                MixedPrecision.gemm(transB: !transposeB, m: m, n: k, k: n, a: g.pointer, lda: n, b: b.pointer, ldb: ldb,
                          c: da.pointer, ldc: k)
            }
            a.accumulateGrad(da, fresh: true)
        }
    }

    /// x · Wᵀ (+ bias): the layout of `torch.nn.Linear` (W is `[out, in]`).
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
        let y = matmul(x, weight, transposeB: true)
        guard let bias else { return y }
        return y + bias
    }
}
