// bf16 operands that the caller assembles itself, for products that `MixedPrecision.gemm` cannot express in one call:
// two matrices placed side by side along the summed dimension make x·Wᵀ + d·Bᵀ a single product (LoRA's adapted
// layers), so the sum is written once instead of being read back and added to. Scratch comes from the storage pool,
// rounding is to nearest even on every core (as `MixedPrecision`), and the product is oneDNN's, f32 sums.
import CBF16GEMM
import Foundation

public enum BF16Operands {
    /// `body` with pooled scratch room for `count` bf16 values.
    public static func withScratch<R>(_ count: Int, _ body: (UnsafeMutablePointer<UInt16>) throws -> R) rethrows -> R {
        let floats = Swift.max(1, (count + 1) / 2)
        let scratch = StoragePool.shared.take(floats)
        defer { StoragePool.shared.give(scratch, floats) }
        return try scratch.withMemoryRebound(to: UInt16.self, capacity: 2 * floats) { try body($0) }
    }

    /// Rounds `rows × cols` of `src` (leading dimension `ld`) into `dst` (leading dimension `ldd`), on every core.
    public static func round(rows: Int, cols: Int, _ src: UnsafePointer<Float>, ld: Int, into dst: UnsafeMutablePointer<UInt16>, ldd: Int) {
        guard rows > 0, cols > 0 else { return }
        StepProfile.timeRounding {
            Parallel.forEachChunk(rows, costPerItem: Swift.max(1, cols / 4)) { r in
                for i in r { glmb_to_bf16(1, cols, src + i * ld, ld, dst + i * ldd) }
            }
        }
    }

    /// Copies `rows × cols` bf16 values (leading dimension `ld`) into `dst` (leading dimension `ldd`).
    public static func copy(rows: Int, cols: Int, _ src: UnsafePointer<UInt16>, ld: Int, into dst: UnsafeMutablePointer<UInt16>, ldd: Int) {
        guard rows > 0, cols > 0 else { return }
        Parallel.forEachChunk(rows, costPerItem: Swift.max(1, cols / 16)) { r in
            for i in r { (dst + i * ldd).update(from: src + i * ld, count: cols) }
        }
    }

    /// C = beta·C + op(A)·op(B) on bf16 operands (`lda`/`ldb` their stored leading dimensions; `transB`: B stored
    /// `[n, k]`), beta 0 or 1. False (C untouched) when bf16 products are not active or oneDNN failed.
    public static func product(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                               a: UnsafePointer<UInt16>, lda: Int, b: UnsafePointer<UInt16>, ldb: Int,
                               beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        guard MixedPrecision.isActive, m > 0, n > 0, k > 0, beta == 0 || beta == 1 else { return false }
        let (sam, sak) = transA ? (1, lda) : (lda, 1)
        let (sbk, sbn) = transB ? (1, ldb) : (ldb, 1)
        return StepProfile.time(.matrixProducts) {
            glmb_gemm(m, n, k, a, sam, sak, b, sbk, sbn, beta == 1 ? 1 : 0, c, ldc) == 0
        }
    }
}
