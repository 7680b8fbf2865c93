// Matrix products with a bf16 right-hand matrix (a frozen weight kept in bf16), by the number of rows m:
// - m ≤ 8 with a transposed (Linear-layout) weight, on a CPU with AVX2+FMA or AVX-512: the C kernels of
//   CGLMKernels (per-function target attributes, chosen at run time) read each weight row once for all rows,
//   widening it in registers; the rows of the weight are split over the cores (`gemmFewRowsC`);
// - otherwise, m = 1 (decode at batch 1): a Swift SIMD kernel widens the weight in registers while it streams;
// - m ≤ 32 (batched decode): each core widens its own cache-sized panels and multiplies them with sgemm;
// - more rows: one widened panel at a time, multiplied by multi-threaded sgemm.
// bf16 → f32 widening is exact, so the results equal those of widening the whole weight first up to f32 summation
// order (the same sgemm calls on the same values for more than 32 rows: bit for bit in practice).

import CGLMKernels
import Foundation

/// Kernels on bf16 matrices. Row-major; `ld*` are leading dimensions in elements.
public enum BF16Kernels {
    /// Instruction set of the C kernels on this CPU: 2 = AVX-512 (F, BW, VL) + FMA, 1 = AVX2 + FMA, 0 = none.
    public static let cKernelISA = Int(glmk_isa_level())
    /// Whether few-row `x · Wᵀ` products (bf16 here, f32 in `SmallRowMatMul`) use the C kernels. On by default
    /// where the CPU has AVX2 + FMA, unless the environment sets `GLMTRAIN_C_KERNELS=0` (for A/B measurements);
    /// tests turn it off to exercise the Swift fallbacks.
    nonisolated(unsafe) public static var useCKernels =
        cKernelISA > 0 && ProcessInfo.processInfo.environment["GLMTRAIN_C_KERNELS"] != "0"
    /// Rows up to which a transposed-weight product goes to the C kernels (each weight row is read once and
    /// `rows` accumulators per weight row stay in registers).
    public static let cKernelRows = 8

    /// Rows at or below which `gemm` with a transposed (`[n, k]`, nn.Linear layout) weight uses the SIMD kernel
    /// `gemvRows`. One row is bandwidth bound and the SIMD kernel reads the weight at memory speed; from two rows on,
    /// the compiler's baseline x86-64 target (SSE2, no FMA: no `unsafeFlags` may raise it) makes the SIMD kernel
    /// compute bound, and widening per-core panels for OpenBLAS's AVX-512 sgemm (`gemmPanelsFewRows`) measured
    /// faster (8 rows: 11 vs 15 ms per bench-model token step, loaded machine).
    public static let simdKernelRows = 1
    /// Rows up to which `gemm` uses `gemmPanelsFewRows` (each core widens its own panels); above, one widened panel
    /// at a time is multiplied by multi-threaded sgemm.
    public static let fewRows = 32
    /// f32 elements of one widened weight panel for many rows: 512 KiB (stays in L2 next to sgemm's own packing),
    /// and 4 MiB from 256 rows on, where sgemm's repacking of the activations for every panel would cost more
    /// (scoring 16 × 256 tokens of the bench model took 6.4 s with 512 KiB panels against 5.7 s with f32 weights;
    /// with 4 MiB panels the two are on par).
    static func panelElements(rows m: Int) -> Int { m >= 256 ? 1 << 20 : 131_072 }

    /// Exact bf16 → f32 widening (the bf16 bits are the top half of the f32 bits).
    @inlinable public static func widen(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { dst[i] = Float(bitPattern: UInt32(src[i]) << 16) }
    }

    /// C[m,n] = alpha · A[m,k] · op(B) + beta · C where B is bf16: `transB` B is stored `[n, k]` (a Linear weight),
    /// otherwise `[k, n]`. A and C are f32.
    public static func gemm(transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<UInt16>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        StepProfile.time(.matrixProducts) {
            gemmBody(transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// `gemm` for a product whose bf16 matrix is a frozen weight: on oneDNN's bf16 kernels when bf16 products are
    /// active and there are more than `fewRows` rows (A rounded to bf16, as every product under
    /// `training.precision: bf16`; the weight's bits are already the operand), otherwise `gemm` (widened, f32 sums).
    /// `fewRowKernels` false: bf16 at any row count (for bits rounded from an f32 weight, whose own products are).
    public static func product(transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                               b: UnsafePointer<UInt16>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                               fewRowKernels: Bool = true) {
        if (m > fewRows || !fewRowKernels) && MixedPrecision.gemm(transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, bBits: b,
                                              ldb: ldb, beta: beta, c: c, ldc: ldc) { return }
        gemm(transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    static func gemmBody(transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                         b: UnsafePointer<UInt16>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if transB && k > 0 && m <= cKernelRows && useCKernels {
            gemmFewRowsC(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if k == 0 || (transB && m <= simdKernelRows) {
            gemvRows(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        if transB && m <= fewRows && alpha == 1 && beta == 0 {
            gemmPanelsFewRows(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
            return
        }
        // Panels of `nb` output columns: widen B's part for those columns into one scratch buffer, one sgemm each.
        let nb = Swift.min(n, Swift.max(16, panelElements(rows: m) / k / 16 * 16))
        let panel = TensorStorage(count: nb * k, zeroed: false)
        let pp = panel.pointer
        var j0 = 0
        while j0 < n {
            let cols = Swift.min(nb, n - j0)
            if transB {  // whole weight rows j0..<j0+cols, as [cols, k]
                Parallel.forEachChunk(cols, costPerItem: k) { rows in
                    for j in rows { widen(b + (j0 + j) * ldb, pp + j * k, k) }
                }
            } else {  // B[:, j0..<j0+cols], as [k, cols]
                Parallel.forEachChunk(k, costPerItem: cols) { rows in
                    for p in rows { widen(b + p * ldb + j0, pp + p * cols, cols) }
                }
            }
            BLAS.gemm(transA: false, transB: transB, m: m, n: cols, k: k, alpha: alpha, a: a, lda: lda,
                      b: pp, ldb: transB ? k : cols, beta: beta, c: c + j0, ldc: ldc)
            j0 += cols
        }
        withExtendedLifetime(panel) {}
    }

    /// C[m,n] = alpha · A · Bᵀ + beta · C, B `[n, k]` bf16, on the C kernels (`isa` as `cKernelISA`, lower levels
    /// for tests; 0 is the kernels' scalar code). The weight rows are split over the cores; each chunk is one C call.
    public static func gemmFewRowsC(m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                                    b: UnsafePointer<UInt16>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>,
                                    ldc: Int, isa: Int = cKernelISA) {
        if m == 0 || n == 0 { return }
        let level = Int32(isa)
        Parallel.forEachChunk(n, costPerItem: Swift.max(1, k * m / 2), chunksPerWorker: 2) { range in
            glmk_gemm_nt_bf16(level, m, range.count, k, alpha, a, lda, b + range.lowerBound * ldb, ldb, beta,
                              c + range.lowerBound, ldc)
        }
    }

    /// C[m,n] = A · Bᵀ for few rows, B `[n, k]` bf16: each core widens panels of `panelRows` weight rows into its
    /// own L2-resident f32 scratch and multiplies them with OpenBLAS as Cᵀ = panel · Aᵀ (sgemv for one row), so
    /// the weight is read from memory once and the multiply runs on OpenBLAS's AVX-512 kernels.
    public static func gemmPanelsFewRows(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                         b: UnsafePointer<UInt16>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                         panelRows: Int? = nil) {
        if m == 0 || n == 0 { return }
        let panelRows = panelRows ?? Swift.max(16, Swift.min(256, 65_536 / Swift.max(k, 1)))  // 256 KiB panels
        let panels = (n + panelRows - 1) / panelRows
        Parallel.forEachChunk(panels, costPerItem: 1 << 20, chunksPerWorker: 4) { range in
            let scratch = TensorStorage(count: panelRows * k + panelRows * m, zeroed: false)  // pooled: no page faults
            let panel = scratch.pointer, ct = panel + panelRows * k
            defer { withExtendedLifetime(scratch) {} }
            for p in range {
                let j0 = p * panelRows, rows = Swift.min(panelRows, n - j0)
                for j in 0..<rows { widen(b + (j0 + j) * ldb, panel + j * k, k) }
                if m == 1 {
                    BLAS.gemm(transA: false, transB: true, m: 1, n: rows, k: k, a: a, lda: lda, b: panel, ldb: k, c: c + j0, ldc: ldc)
                } else {
                    BLAS.gemm(transA: false, transB: true, m: rows, n: m, k: k, a: panel, lda: k, b: a, ldb: lda, c: ct, ldc: m)
                    for j in 0..<rows { for r in 0..<m { c[r * ldc + j0 + j] = ct[j * m + r] } }
                }
            }
        }
    }

    /// C[m,n] = alpha · A · Bᵀ + beta · C for few rows, B `[n, k]` bf16, reading B once for all rows. The rows of A
    /// are first split into even and odd elements, so that a pair of bf16 weights loaded as one UInt32 widens with
    /// a shift (even) and a mask (odd), with no shuffles. Work is split over the cores by weight rows.
    public static func gemvRows(m: Int, n: Int, k: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafePointer<UInt16>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let half = k / 2
        // Deinterleaved rows: row r's evens at split[r·2·half ..], odds after them.
        let split = TensorStorage(count: Swift.max(1, m * 2 * half), zeroed: false)
        let sp = split.pointer
        for r in 0..<m {
            let src = a + r * lda, ev = sp + r * 2 * half, od = ev + half
            for i in 0..<half { ev[i] = src[2 * i]; od[i] = src[2 * i + 1] }
        }
        let tail = k % 2 == 1  // last element of an odd k, done in scalar
        Parallel.forEachChunk(n, costPerItem: Swift.max(1, k * m / 2), chunksPerWorker: 4) { range in
            var r0 = 0
            while r0 < m {
                let rows = Swift.min(4, m - r0)
                let base = sp + r0 * 2 * half
                for j in range {
                    let w = b + j * ldb
                    var s = SIMD4<Float>()
                    switch rows {
                    case 4: s = dotPairs(4, w, base, half)
                    case 3: s = dotPairs(3, w, base, half)
                    case 2: s = dotPairs(2, w, base, half)
                    default: s = dotPairs(1, w, base, half)
                    }
                    for r in 0..<rows {
                        var v = s[r]
                        if tail { v += a[(r0 + r) * lda + k - 1] * Float(bitPattern: UInt32(w[k - 1]) << 16) }
                        let o = c + (r0 + r) * ldc + j
                        o.pointee = beta == 0 ? alpha * v : alpha * v + beta * o.pointee
                    }
                }
                r0 += rows
            }
        }
        withExtendedLifetime(split) {}
    }

    /// Dot products of one bf16 weight row (`2·half` elements) with `rows` (1–4) deinterleaved activation rows.
    @inline(__always)
    static func dotPairs(_ rows: Int, _ w: UnsafePointer<UInt16>, _ x: UnsafePointer<Float>, _ half: Int) -> SIMD4<Float> {
        let stride = 2 * half
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        let hiMask = SIMD8<UInt32>(repeating: 0xFFFF_0000)
        let raw = UnsafeRawPointer(w)
        var i = 0
        while i + 8 <= half {
            let pair = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<UInt32>.self)
            let we = unsafeBitCast(pair &<< 16, to: SIMD8<Float>.self)
            let wo = unsafeBitCast(pair & hiMask, to: SIMD8<Float>.self)
            @inline(__always) func row(_ r: Int) -> SIMD8<Float> {
                let e = UnsafeRawPointer(x + r * stride + i).loadUnaligned(as: SIMD8<Float>.self)
                let o = UnsafeRawPointer(x + r * stride + half + i).loadUnaligned(as: SIMD8<Float>.self)
                return we * e + wo * o
            }
            a0 += row(0)
            if rows > 1 { a1 += row(1) }
            if rows > 2 { a2 += row(2) }
            if rows > 3 { a3 += row(3) }
            i += 8
        }
        var out = SIMD4<Float>(a0.sum(), a1.sum(), a2.sum(), a3.sum())
        while i < half {
            let we = Float(bitPattern: UInt32(w[2 * i]) << 16), wo = Float(bitPattern: UInt32(w[2 * i + 1]) << 16)
            for r in 0..<rows { out[r] += we * x[r * stride + i] + wo * x[r * stride + half + i] }
            i += 1
        }
        return out
    }
}
