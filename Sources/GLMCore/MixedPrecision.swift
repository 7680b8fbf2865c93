// bf16 mixed precision for matrix products (`training.precision: bf16`): operands rounded to bf16 (round to nearest
// even), products and sums in f32 (AVX512_BF16's dot-product instruction, through oneDNN's kernels), results f32.
// Weights, gradients, optimizer state, norms, softmax and the loss stay f32; only the operands of matrix products are
// rounded — PyTorch's CPU autocast to bf16 does the same for linear layers. Where the CPU has no AVX512_BF16 (or
// oneDNN gives no bf16 kernel) the products stay plain f32 sgemm, which `MixedPrecision.isActive` reports.
import CBF16GEMM
import Foundation

/// How matrix products compute.
public enum ComputePrecision: String, Sendable, CaseIterable {
    case f32, bf16
}

public enum MixedPrecision {
    /// The precision asked for (process-wide; a recipe sets it once before training).
    nonisolated(unsafe) public static var requested: ComputePrecision = .f32 {
        didSet { if requested == .bf16 && bf16Available { glmb_set_threads(Int32(max(1, BLAS.threadCount))) } }
    }
    /// Whether this CPU and oneDNN give bf16 products (AVX512_BF16).
    public static let bf16Available = glmb_available() != 0
    /// oneDNN's kernel for them, e.g. "brg:avx512_core_bf16" ("" when unavailable).
    public static var kernelName: String { String(cString: glmb_kernel_name()) }
    /// Whether bf16 products may be used at all: false when the environment sets `GLMTRAIN_BF16=0`; tests turn it
    /// off to run the f32 fallback a CPU without AVX512_BF16 takes.
    nonisolated(unsafe) public static var allowed = ProcessInfo.processInfo.environment["GLMTRAIN_BF16"] != "0"
    /// Whether products now go to bf16: asked for, allowed and available.
    public static var isActive: Bool { requested == .bf16 && allowed && bf16Available }

    /// `BLAS.gemm` (same arguments), in bf16 when active.
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        StepProfile.time(.matrixProducts) {
            gemmF32Operands(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                            beta: beta, c: c, ldc: ldc)
        }
    }

    static func gemmF32Operands(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>,
                                lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard isActive, beta == 0 || beta == 1 else {
            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c, ldc: ldc)
            return
        }
        let bRows = transB ? n : k, bCols = transB ? k : n
        let ok = withBF16Copy(rows: bRows, cols: bCols, of: b, ld: ldb) { bBits in
            gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                 bBits: bBits, ldb: bCols, beta: beta, c: c, ldc: ldc)
        }
        if !ok {
            BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                      beta: beta, c: c, ldc: ldc)
        }
    }

    /// op(A) · op(B) with B already bf16 (a frozen weight's bits, leading dimension `ldb`); beta 0 or 1.
    /// Returns false (C untouched) when bf16 is not active or oneDNN failed, so the caller takes its f32 path.
    @discardableResult
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            bBits: UnsafePointer<UInt16>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        guard isActive, m > 0, n > 0, k > 0, beta == 0 || beta == 1 else { return false }
        return StepProfile.time(.matrixProducts) {
            gemmBF16Bits(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, bBits: bBits, ldb: ldb,
                         beta: beta, c: c, ldc: ldc)
        }
    }

    static func gemmBF16Bits(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
                             bBits: UnsafePointer<UInt16>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        let aRows = transA ? k : m, aCols = transA ? m : k
        return withBF16Copy(rows: aRows, cols: aCols, of: a, ld: lda) { aBits in
            productOfBF16(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, aBits: aBits, aCols: aCols,
                          bBits: bBits, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    static func productOfBF16(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, aBits: UnsafePointer<UInt16>,
                              aCols: Int, bBits: UnsafePointer<UInt16>, ldb: Int, beta: Float,
                              c: UnsafeMutablePointer<Float>, ldc: Int) -> Bool {
        if alpha == 1 {
            return BF16Operands.product(transA: transA, transB: transB, m: m, n: n, k: k, a: aBits, lda: aCols, b: bBits,
                                        ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
        // Element strides of op(A)[i, p] and op(B)[p, j] in the stored layouts.
        let (sam, sak) = transA ? (1, aCols) : (aCols, 1)
        let (sbk, sbn) = transB ? (1, ldb) : (ldb, 1)
        // A scale: the product into a scratch matrix, then C = beta·C + alpha·product.
        let product = StoragePool.shared.take(m * n)
        defer { StoragePool.shared.give(product, m * n) }
        guard glmb_gemm(m, n, k, aBits, sam, sak, bBits, sbk, sbn, 0, product, n) == 0 else { return false }
        for i in 0..<m {
            let ci = c + i * ldc, pi = product + i * n
            if beta == 0 { for j in 0..<n { ci[j] = alpha * pi[j] } } else { for j in 0..<n { ci[j] += alpha * pi[j] } }
        }
        return true
    }

    /// `body` over `rows × cols` of `src` (leading dimension `ld`) rounded to bf16 (nearest even), packed with
    /// leading dimension `cols` into a scratch buffer from the storage pool (a fresh allocation per product would
    /// page-fault through megabytes each time); the rows are rounded on every core.
    static func withBF16Copy<R>(rows: Int, cols: Int, of src: UnsafePointer<Float>, ld: Int,
                                _ body: (UnsafePointer<UInt16>) -> R) -> R {
        BF16Operands.withScratch(rows * cols) { bits in
            BF16Operands.round(rows: rows, cols: cols, src, ld: ld, into: bits, ldd: cols)
            return body(bits)
        }
    }

    /// Rounds f32 values to bf16 bits as the products do (round to nearest even).
    public static func roundToBF16(_ values: [Float]) -> [UInt16] {
        var out = [UInt16](repeating: 0, count: values.count)
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { glmb_to_bf16(1, values.count, src.baseAddress, values.count, $0.baseAddress) }
        }
        return out
    }
}
