// The matrix-product kernel (OpenBLAS sgemm) and OpenBLAS runtime information.
import COpenBLAS

/// Thin wrapper over `cblas_sgemm` on row-major matrices.
public enum BLAS {
    nonisolated(unsafe) static var singleThreadDepth = 0
    nonisolated(unsafe) static var savedThreads: Int32 = 0

    /// C[m,n] = alpha * op(A)[m,k] · op(B)[k,n] + beta * C, all row-major with leading dimensions
    /// `lda`, `ldb`, `ldc`. `transA`/`transB` read A or B transposed without materialising it.
    @inlinable
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                            alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            else if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
            return
        }
        if m == 1 {
            // One row: a matrix–vector product. OpenBLAS 0.3.21's sgemm would pack all of B for it.
            if transB {  // B stored [n, k]: c = B·a
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(n), Int32(k), alpha, b, Int32(ldb),
                            a, transA ? Int32(lda) : 1, beta, c, 1)
            } else {     // B stored [k, n]: c = Bᵀ·a
                cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), alpha, b, Int32(ldb),
                            a, transA ? Int32(lda) : 1, beta, c, 1)
            }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Runs `body` with OpenBLAS limited to one thread (for calls made from our own worker threads).
    public static func withSingleThread<R>(_ body: () throws -> R) rethrows -> R {
        if singleThreadDepth == 0 {
            savedThreads = openblas_get_num_threads()
            if savedThreads != 1 { openblas_set_num_threads(1) }
        }
        singleThreadDepth += 1
        defer {
            singleThreadDepth -= 1
            if singleThreadDepth == 0 && savedThreads != 1 { openblas_set_num_threads(savedThreads) }
        }
        return try body()
    }

    /// The kernel family OpenBLAS chose at load time (e.g. "Haswell", "SkylakeX").
    public static var coreName: String { String(cString: openblas_get_corename()) }
    /// OpenBLAS's build configuration string.
    public static var config: String { String(cString: openblas_get_config()) }
    public static var threadCount: Int { Int(openblas_get_num_threads()) }
    /// Sets OpenBLAS's thread count (processes sharing the machine, e.g. the ranks of an mpirun job).
    public static func setThreadCount(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
}
