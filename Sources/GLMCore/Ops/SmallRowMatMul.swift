// x · Wᵀ for a few rows of x (decode: one row per sequence) with an f32 weight `[n, k]`, reading the weight from
// memory once for all rows: sgemm would first pack the whole weight (a second pass over it) and sgemv reads it
// once per row. Where the CPU has AVX2 + FMA (`BF16Kernels.useCKernels`), the C kernels of CGLMKernels do it all
// (`gemmC`), split over the cores by weight rows, one row included: on the Intel Xeon, whose 260 MB L3 holds the
// bench model's 130 MB of f32 weights, the Swift kernel below (SSE: the package targets baseline x86-64) held
// batch-1 decode to 235-312 tok/s against 410 with the AVX-512 one (an earlier session's measurement); on AMD Zen 4
// the C kernel's one-row case runs on 256-bit vectors (`glmk_row_kernel`), which streamed faster there than both
// the 512-bit kernel and this one. Without the C kernels: one row: that SIMD
// dot-product kernel split over the cores; several rows: each core multiplies its own
// cache-sized panels of weight rows with single-threaded sgemm as Cᵀ = panel · xᵀ (AVX-512 kernels, which the
// Swift code cannot use: the package compiles for baseline x86-64).

import CGLMKernels

/// The few-row kernel on f32 weights (the bf16 one is `BF16Kernels.gemvRows`).
public enum SmallRowMatMul {
    /// Rows up to which `Tensor.matmul` uses this kernel for an f32 `x · Wᵀ`.
    public static let maxRows = 8

    /// C[m,n] = A[m,k] · Bᵀ, B `[n, k]` (row-major, leading dimensions in elements). Split over the cores by
    /// weight rows.
    public static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if BF16Kernels.useCKernels {
            gemmC(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc)
            return
        }
        if m > 1 {
            let panelRows = Swift.max(16, Swift.min(256, 65_536 / Swift.max(k, 1)))
            let panels = (n + panelRows - 1) / panelRows
            Parallel.forEachChunk(panels, costPerItem: 1 << 20, chunksPerWorker: 4) { range in
                let ct = UnsafeMutablePointer<Float>.allocate(capacity: panelRows * m)
                defer { ct.deallocate() }
                for p in range {
                    let j0 = p * panelRows, rows = Swift.min(panelRows, n - j0)
                    BLAS.gemm(transA: false, transB: true, m: rows, n: m, k: k, a: b + j0 * ldb, lda: ldb, b: a, ldb: lda,
                              c: ct, ldc: m)
                    for j in 0..<rows { for r in 0..<m { c[r * ldc + j0 + j] = ct[j * m + r] } }
                }
            }
            return
        }
        Parallel.forEachChunk(n, costPerItem: Swift.max(1, k * m / 2), chunksPerWorker: 4) { range in
            var r0 = 0
            while r0 < m {
                let rows = Swift.min(4, m - r0)
                let x = a + r0 * lda
                for j in range {
                    let w = b + j * ldb
                    let s: SIMD4<Float>
                    switch rows {
                    case 4: s = dot(4, w, x, lda, k)
                    case 3: s = dot(3, w, x, lda, k)
                    case 2: s = dot(2, w, x, lda, k)
                    default: s = dot(1, w, x, lda, k)
                    }
                    for r in 0..<rows { c[(r0 + r) * ldc + j] = s[r] }
                }
                r0 += rows
            }
        }
    }

    /// C[m,n] = A · Bᵀ on the C kernels (`isa` as `BF16Kernels.cKernelISA`, lower levels for tests), the weight
    /// rows split over the cores with one C call per chunk.
    public static func gemmC(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                             c: UnsafeMutablePointer<Float>, ldc: Int, isa: Int = BF16Kernels.cKernelISA) {
        if m == 0 || n == 0 { return }
        let level = Int32(isa)
        Parallel.forEachChunk(n, costPerItem: Swift.max(1, k * m / 2), chunksPerWorker: 2) { range in
            glmk_gemm_nt_f32(level, m, range.count, k, 1, a, lda, b + range.lowerBound * ldb, ldb, 0, c + range.lowerBound, ldc)
        }
    }

    /// Dot products of one weight row with `rows` (1–4) rows of x, two SIMD8 accumulators per row.
    @inline(__always)
    static func dot(_ rows: Int, _ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ lda: Int, _ k: Int) -> SIMD4<Float> {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var b0 = SIMD8<Float>(), b1 = SIMD8<Float>(), b2 = SIMD8<Float>(), b3 = SIMD8<Float>()
        var i = 0
        while i + 16 <= k {
            let wl = UnsafeRawPointer(w + i).loadUnaligned(as: SIMD8<Float>.self)
            let wh = UnsafeRawPointer(w + i + 8).loadUnaligned(as: SIMD8<Float>.self)
            @inline(__always) func lo(_ r: Int) -> SIMD8<Float> { UnsafeRawPointer(x + r * lda + i).loadUnaligned(as: SIMD8<Float>.self) }
            @inline(__always) func hi(_ r: Int) -> SIMD8<Float> { UnsafeRawPointer(x + r * lda + i + 8).loadUnaligned(as: SIMD8<Float>.self) }
            a0 += wl * lo(0); b0 += wh * hi(0)
            if rows > 1 { a1 += wl * lo(1); b1 += wh * hi(1) }
            if rows > 2 { a2 += wl * lo(2); b2 += wh * hi(2) }
            if rows > 3 { a3 += wl * lo(3); b3 += wh * hi(3) }
            i += 16
        }
        var out = SIMD4<Float>((a0 + b0).sum(), (a1 + b1).sum(), (a2 + b2).sum(), (a3 + b3).sum())
        while i < k {
            for r in 0..<rows { out[r] += w[i] * x[r * lda + i] }
            i += 1
        }
        return out
    }
}
