// The six rank-r products of an adapted linear layer (LoRA.linear), in f32 or with bf16 operands. With bf16 products
// active (`training.precision: bf16` on an AVX512_BF16 CPU) they take bf16 operands with f32 sums, as PyTorch's
// autocast runs a PEFT LoRA layer; otherwise f32 on the low-rank kernels. A `[r, in]`, B `[out, r]`, x `[rows, in]`,
// g `[rows, out]`, down = x·Aᵀ and gDown = s·g·B `[rows, r]`, all row-major f32.
import GLMCore

struct LoRAProducts {
    let rows: Int, inDim: Int, outDim: Int, rank: Int
    /// bf16 operands (decided once per layer call, so forward and backward agree).
    let bf16: Bool

    init(rows: Int, inDim: Int, outDim: Int, rank: Int) {
        self.rows = rows; self.inDim = inDim; self.outDim = outDim; self.rank = rank
        bf16 = MixedPrecision.isActive && LowRankMatMul.bf16Available
    }

    /// down = x·Aᵀ.
    func down(x: UnsafePointer<Float>, a: UnsafePointer<Float>, into down: UnsafeMutablePointer<Float>) {
        if bf16 {
            LowRankMatMul.ntBF16(m: rows, r: rank, k: inDim, x: x, ldx: inDim, w: a, wsk: 1, wsj: inDim, c: down, ldc: rank)
            return
        }
        let aT = Tensor(uninitialized: [inDim, rank])
        LowRankMatMul.transpose(a, rows: rank, cols: inDim, ld: inDim, into: aT.pointer)
        LowRankMatMul.nt(m: rows, r: rank, k: inDim, x: x, ldx: inDim, wt: aT.pointer, ldwt: rank, c: down, ldc: rank)
    }

    /// y += s·down·Bᵀ.
    func addUp(down: UnsafePointer<Float>, b: UnsafePointer<Float>, scale s: Float, into y: UnsafeMutablePointer<Float>) {
        if bf16 {
            LowRankMatMul.nnBF16(m: rows, n: outDim, r: rank, alpha: s, d: down, ldd: rank, w: b, wsj: 1, wsn: rank,
                                 beta: 1, c: y, ldc: outDim)
            return
        }
        let bT = Tensor(uninitialized: [rank, outDim])
        LowRankMatMul.transpose(b, rows: outDim, cols: rank, ld: rank, into: bT.pointer)
        LowRankMatMul.nn(m: rows, n: outDim, r: rank, alpha: s, d: down, ldd: rank, w: bT.pointer, ldw: outDim,
                         beta: 1, c: y, ldc: outDim)
    }

    /// dB = s·gᵀ·down `[out, r]`.
    func gradB(g: UnsafePointer<Float>, down: UnsafePointer<Float>, scale s: Float) -> Tensor {
        let dbT = Tensor(uninitialized: [rank, outDim])
        if bf16 {
            LowRankMatMul.tnBF16(r: rank, n: outDim, m: rows, alpha: s, p: down, ldp: rank, q: g, ldq: outDim,
                                 c: dbT.pointer, ldc: outDim)
        } else {
            LowRankMatMul.tn(r: rank, n: outDim, m: rows, alpha: s, p: down, ldp: rank, q: g, ldq: outDim,
                             c: dbT.pointer, ldc: outDim)
        }
        let db = Tensor(uninitialized: [outDim, rank])
        LowRankMatMul.transpose(dbT.pointer, rows: rank, cols: outDim, ld: outDim, into: db.pointer)
        return db
    }

    /// gDown = s·g·B `[rows, r]`.
    func gradDown(g: UnsafePointer<Float>, b: UnsafePointer<Float>, scale s: Float) -> Tensor {
        let t = Tensor(uninitialized: [rows, rank])
        if bf16 {
            LowRankMatMul.ntBF16(m: rows, r: rank, k: outDim, alpha: s, x: g, ldx: outDim, w: b, wsk: rank, wsj: 1,
                                 c: t.pointer, ldc: rank)
        } else {
            LowRankMatMul.nt(m: rows, r: rank, k: outDim, alpha: s, x: g, ldx: outDim, wt: b, ldwt: rank,
                             c: t.pointer, ldc: rank)
        }
        return t
    }

    /// dA = gDownᵀ·x `[r, in]`.
    func gradA(gDown: UnsafePointer<Float>, x: UnsafePointer<Float>) -> Tensor {
        let da = Tensor(uninitialized: [rank, inDim])
        if bf16 {
            LowRankMatMul.tnBF16(r: rank, n: inDim, m: rows, p: gDown, ldp: rank, q: x, ldq: inDim, c: da.pointer, ldc: inDim)
        } else {
            LowRankMatMul.tn(r: rank, n: inDim, m: rows, p: gDown, ldp: rank, q: x, ldq: inDim, c: da.pointer, ldc: inDim)
        }
        return da
    }

    /// c = beta·c + gDown·A `[rows, in]` (beta 0 or 1).
    func inputTerm(gDown: UnsafePointer<Float>, a: UnsafePointer<Float>, beta: Float, into c: UnsafeMutablePointer<Float>) {
        if bf16 {
            LowRankMatMul.nnBF16(m: rows, n: inDim, r: rank, d: gDown, ldd: rank, w: a, wsj: inDim, wsn: 1, beta: beta,
                                 c: c, ldc: inDim)
        } else {
            LowRankMatMul.nn(m: rows, n: inDim, r: rank, d: gDown, ldd: rank, w: a, ldw: inDim, beta: beta, c: c, ldc: inDim)
        }
    }
}
