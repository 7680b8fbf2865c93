// f32 products with one small dimension r (a LoRA rank), split over the cores: the AVX-512 kernels of LowRank.c
// where the CPU has AVX-512 (and `BF16Kernels.useCKernels`), otherwise OpenBLAS sgemm with the same arguments.
// Both sum in f32; only the order of the sums differs.
import CGLMKernels

public enum LowRankMatMul {
    /// Whether the C kernels run (AVX-512 present and C kernels not turned off).
    public static var usesCKernels: Bool { BF16Kernels.cKernelISA >= 2 && BF16Kernels.useCKernels }

    /// The C kernels' level for a call: `isa` when given (tests: 0 is their plain C loops, 2 AVX-512), else 2 when
    /// `usesCKernels`; nil: OpenBLAS.
    static func kernelLevel(_ isa: Int?) -> Int32? {
        if let isa { return Int32(isa) }
        return usesCKernels ? 2 : nil
    }

    /// C[m, r] = alpha · X[m, k] · Wt with Wt `[k, r]` (a LoRA B, or a transposed A).
    public static func nt(m: Int, r: Int, k: Int, alpha: Float = 1, x: UnsafePointer<Float>, ldx: Int,
                          wt: UnsafePointer<Float>, ldwt: Int, c: UnsafeMutablePointer<Float>, ldc: Int, isa: Int? = nil) {
        guard m > 0, r > 0 else { return }
        guard let level = kernelLevel(isa), k > 0 else {
            BLAS.gemm(m: m, n: r, k: k, alpha: alpha, a: x, lda: ldx, b: wt, ldb: ldwt, c: c, ldc: ldc)
            return
        }
        Parallel.forEachChunk(m, costPerItem: r * k, chunksPerWorker: 2) { rows in
            glmk_lowrank_nt(level, rows.count, r, k, alpha, x + rows.lowerBound * ldx, ldx, wt, ldwt,
                            c + rows.lowerBound * ldc, ldc)
        }
    }

    /// C[r, n] = alpha · Pᵀ · Q with P `[m, r]` and Q `[m, n]` (the gradient of a LoRA matrix).
    public static func tn(r: Int, n: Int, m: Int, alpha: Float = 1, p: UnsafePointer<Float>, ldp: Int,
                          q: UnsafePointer<Float>, ldq: Int, c: UnsafeMutablePointer<Float>, ldc: Int, isa: Int? = nil) {
        guard r > 0, n > 0 else { return }
        guard let level = kernelLevel(isa), m > 0 else {
            BLAS.gemm(transA: true, m: r, n: n, k: m, alpha: alpha, a: p, lda: ldp, b: q, ldb: ldq, c: c, ldc: ldc)
            return
        }
        // Work in blocks of 32 columns (the kernel's block width).
        let blocks = (n + 31) / 32
        Parallel.forEachChunk(blocks, costPerItem: 32 * r * m, chunksPerWorker: 2) { range in
            let lo = range.lowerBound * 32, hi = Swift.min(n, range.upperBound * 32)
            glmk_lowrank_tn(level, r, hi - lo, m, alpha, p, ldp, q + lo, ldq, c + lo, ldc)
        }
    }

    /// C[m, n] = beta · C + alpha · D[m, r] · W[r, n] (beta 0 does not read C).
    public static func nn(m: Int, n: Int, r: Int, alpha: Float = 1, d: UnsafePointer<Float>, ldd: Int,
                          w: UnsafePointer<Float>, ldw: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                          isa: Int? = nil) {
        guard m > 0, n > 0 else { return }
        guard let level = kernelLevel(isa), r > 0 else {
            BLAS.gemm(m: m, n: n, k: r, alpha: alpha, a: d, lda: ldd, b: w, ldb: ldw, beta: beta, c: c, ldc: ldc)
            return
        }
        Parallel.forEachChunk(m, costPerItem: r * n, chunksPerWorker: 2) { rows in
            glmk_lowrank_nn(level, rows.count, n, r, alpha, d + rows.lowerBound * ldd, ldd, w, ldw, beta,
                            c + rows.lowerBound * ldc, ldc)
        }
    }

    /// The transpose of `rows × cols` (leading dimension `ld`) into `dst` `[cols, rows]`.
    /// (OpenBLAS's somatcopy, as attention transposes its keys: `AttentionRows.transpose`.)
    public static func transpose(_ src: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, into dst: UnsafeMutablePointer<Float>) {
        guard rows > 0, cols > 0 else { return }
        AttentionRows.transpose(src, ld: ld, rows: rows, cols: cols, dst)
    }
}
