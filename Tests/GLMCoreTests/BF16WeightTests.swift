// Frozen bf16 weights: the bf16 kernels (small-row SIMD kernel and widened panels + sgemm) and the ops that accept
// a bf16 weight (matmul, linear, linearCrossEntropy, embedding) against the same weight widened to f32 up front.
import XCTest
import GLMCore
import CGLMKernels
import TestSupport

final class BF16WeightTests: XCTestCase {
    /// A random matrix rounded to bf16, and its exact f32 widening.
    func bf16Pair(_ shape: [Int], seed: UInt64) -> (bf16: Tensor, f32: Tensor) {
        var gen = SeededGenerator(seed: seed)
        let w = Tensor.randomNormal(shape, generator: &gen).roundedToBF16()
        return (w, w.widened())
    }

    func random(_ shape: [Int], seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        var gen = SeededGenerator(seed: seed)
        return Tensor.randomNormal(shape, generator: &gen, requiresGrad: requiresGrad)
    }

    func assertClose(_ a: [Float], _ b: [Float], rtol: Float = 2e-6, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = max(1, b.map(abs).max() ?? 0)
        var worst: Float = 0
        for (x, y) in zip(a, b) { worst = max(worst, abs(x - y)) }
        XCTAssertLessThanOrEqual(worst, rtol * scale * 4, "\(what): max difference \(worst) (scale \(scale))", file: file, line: line)
    }

    func testStorageIsTwoBytesPerElementAndWideningIsExact() {
        let (w, wide) = bf16Pair([33, 17], seed: 1)
        XCTAssertEqual(w.dtype, .bfloat16)
        XCTAssertEqual(w.storageBytes, 33 * 17 * 2)
        XCTAssertEqual(wide.storageBytes, 33 * 17 * 4)
        XCTAssertEqual(w.scalars, wide.scalars)          // reading values does not widen the storage
        XCTAssertEqual(w.dtype, .bfloat16)
        XCTAssertTrue(w.bitwiseEqual(wide))
        for (x, y) in zip(w.scalars, wide.scalars) { XCTAssertEqual(DTypeConversion.bf16Bits(x) , DTypeConversion.bf16Bits(y)) }
        // Marking it trainable widens it (trainable weights are f32).
        let t = w.copy()
        XCTAssertEqual(t.dtype, .bfloat16)
        t.setRequiresGrad(true)
        XCTAssertEqual(t.dtype, .float32)
        XCTAssertEqual(t.scalars, wide.scalars)
    }

    /// The small-row kernel (1, 3 and 8 rows) against sgemm on the widened weight, on sizes that are not multiples
    /// of 16 (and an odd K, which leaves an unpaired last element).
    func testSmallRowKernelMatchesSgemm() {
        for (k, n) in [(37, 29), (130, 45), (515, 19), (16, 16), (1, 7)] {
            let (w, wide) = bf16Pair([n, k], seed: UInt64(k * 1000 + n))
            for m in [1, 3, 8] {
                let a = random([m, k], seed: UInt64(m))
                var ours = [Float](repeating: 0, count: m * n), ref = ours
                BF16Kernels.gemvRows(m: m, n: n, k: k, a: a.pointer, lda: k, b: w.bf16Bits!, ldb: k, c: &ours, ldc: n)
                BLAS.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: wide.pointer, ldb: k, c: &ref, ldc: n)
                assertClose(ours, ref, "m \(m) k \(k) n \(n)")
                // Through the public entry point (alpha, beta) too.
                var viaGemm = [Float](repeating: 1, count: m * n), refAB = viaGemm
                BF16Kernels.gemm(transB: true, m: m, n: n, k: k, alpha: 0.5, a: a.pointer, lda: k, b: w.bf16Bits!, ldb: k,
                                 beta: 2, c: &viaGemm, ldc: n)
                BLAS.gemm(transB: true, m: m, n: n, k: k, alpha: 0.5, a: a.pointer, lda: k, b: wide.pointer, ldb: k,
                          beta: 2, c: &refAB, ldc: n)
                assertClose(viaGemm, refAB, "alpha/beta m \(m) k \(k) n \(n)")
            }
        }
    }

    /// The few-row panel path (each core widens its own panels for sgemm) on the same odd shapes and 1, 3, 8, 20 rows.
    func testFewRowPanelsMatchSgemm() {
        for (k, n) in [(37, 29), (130, 45), (515, 300), (1, 7)] {
            let (w, wide) = bf16Pair([n, k], seed: UInt64(k * 7 + n))
            for m in [1, 3, 8, 20] {
                let a = random([m, k], seed: UInt64(m + 40))
                var ours = [Float](repeating: 0, count: m * n), ref = ours
                BF16Kernels.gemmPanelsFewRows(m: m, n: n, k: k, a: a.pointer, lda: k, b: w.bf16Bits!, ldb: k, c: &ours, ldc: n,
                                              panelRows: 16)
                BLAS.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: wide.pointer, ldb: k, c: &ref, ldc: n)
                assertClose(ours, ref, "panels m \(m) k \(k) n \(n)")
                BF16Kernels.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: w.bf16Bits!, ldb: k, c: &ours, ldc: n)
                assertClose(ours, ref, "gemm m \(m) k \(k) n \(n)")
            }
        }
    }

    /// The f32 few-row kernel that `matmul` uses for x · Wᵀ with up to 8 rows, against sgemm.
    func testSmallRowF32KernelMatchesSgemm() {
        for (k, n) in [(37, 29), (130, 45), (515, 19), (16, 16)] {
            let w = random([n, k], seed: UInt64(k + n))
            for m in [1, 3, 8] {
                let a = random([m, k], seed: UInt64(m + 20))
                var ours = [Float](repeating: 0, count: m * n), ref = ours
                SmallRowMatMul.gemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: w.pointer, ldb: k, c: &ours, ldc: n)
                BLAS.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: w.pointer, ldb: k, c: &ref, ldc: n)
                assertClose(ours, ref, "f32 m \(m) k \(k) n \(n)")
            }
        }
    }

    /// The C kernels (CGLMKernels) at every instruction-set level this CPU has (0 = their scalar code, 1 = AVX2,
    /// 2 = AVX-512), bf16 and f32 weights, against sgemm on the widened weight: 1, 2, 3, 8 rows (and 11, done as
    /// 8 + 3), K and N not multiples of 16 (vector tails) nor of the kernels' weight-row blocks, alpha and beta.
    func testCKernelsMatchSgemmAtEveryLevel() {
        XCTAssertGreaterThanOrEqual(BF16Kernels.cKernelISA, 0)
        if CPUInfo.current().flags.contains("avx512bw") { XCTAssertEqual(BF16Kernels.cKernelISA, 2) }
        // With AVX-512, one activation row runs on 256-bit (AMD) or 512-bit (Intel) vectors, and more rows in blocks of
        // one or three weight rows (f32 three-row blocks on 256-bit vectors with the 256-bit row kernel): each is
        // checked here.
        defer { glmk_set_row_kernel(0); glmk_set_block_rows(0) }
        let avx512Variants: [(Int, Int, Int)] = BF16Kernels.cKernelISA == 2 ? [(2, 256, 1), (2, 512, 3), (2, 256, 3)] : []
        for (isa, row, block) in (0...BF16Kernels.cKernelISA).map({ ($0, 0, 0) }) + avx512Variants {
            glmk_set_row_kernel(Int32(row)); glmk_set_block_rows(Int32(block))
            if row != 0 { XCTAssertEqual(glmk_row_kernel(), Int32(row)); XCTAssertEqual(glmk_block_rows(), Int32(block)) }
            for (k, n) in [(37, 29), (515, 19), (130, 45), (16, 16), (1, 7), (33, 300)] {
                let (w, wide) = bf16Pair([n, k], seed: UInt64(k * 31 + n))
                for m in [1, 2, 3, 8, 11] {
                    let a = random([m, k], seed: UInt64(m + 60))
                    var ours = [Float](repeating: 0, count: m * n), ref = ours
                    BLAS.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: wide.pointer, ldb: k, c: &ref, ldc: n)
                    BF16Kernels.gemmFewRowsC(m: m, n: n, k: k, a: a.pointer, lda: k, b: w.bf16Bits!, ldb: k, c: &ours, ldc: n,
                                             isa: isa)
                    assertClose(ours, ref, "C bf16 isa \(isa) row \(row) block \(block) m \(m) k \(k) n \(n)")
                    ours = [Float](repeating: 0, count: m * n)
                    SmallRowMatMul.gemmC(m: m, n: n, k: k, a: a.pointer, lda: k, b: wide.pointer, ldb: k, c: &ours, ldc: n,
                                         isa: isa)
                    assertClose(ours, ref, "C f32 isa \(isa) row \(row) block \(block) m \(m) k \(k) n \(n)")
                    var viaC = [Float](repeating: 1, count: m * n), refAB = viaC
                    BF16Kernels.gemmFewRowsC(m: m, n: n, k: k, alpha: 0.5, a: a.pointer, lda: k, b: w.bf16Bits!, ldb: k,
                                             beta: 2, c: &viaC, ldc: n, isa: isa)
                    BLAS.gemm(transB: true, m: m, n: n, k: k, alpha: 0.5, a: a.pointer, lda: k, b: wide.pointer, ldb: k,
                              beta: 2, c: &refAB, ldc: n)
                    assertClose(viaC, refAB, "C bf16 alpha/beta isa \(isa) m \(m) k \(k) n \(n)")
                }
            }
        }
        // Leading dimensions larger than k (a column slice of wider matrices).
        let (k, n, m, ld) = (45, 23, 3, 50)
        let (w, wide) = bf16Pair([n, ld], seed: 99)
        let a = random([m, ld], seed: 98)
        var ours = [Float](repeating: 0, count: m * (n + 2)), ref = ours
        BLAS.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: ld, b: wide.pointer, ldb: ld, c: &ref, ldc: n + 2)
        BF16Kernels.gemmFewRowsC(m: m, n: n, k: k, a: a.pointer, lda: ld, b: w.bf16Bits!, ldb: ld, c: &ours, ldc: n + 2)
        assertClose(ours, ref, "C bf16 strided")
        ours = [Float](repeating: 0, count: m * (n + 2))
        SmallRowMatMul.gemmC(m: m, n: n, k: k, a: a.pointer, lda: ld, b: wide.pointer, ldb: ld, c: &ours, ldc: n + 2)
        assertClose(ours, ref, "C f32 strided")
    }

    /// The public entry points with the C kernels turned off (the Swift fallback on CPUs without AVX2/FMA) and on,
    /// at 1, 2, 3 and 8 rows, against sgemm on the widened weight.
    func testFewRowEntryPointsWithAndWithoutCKernels() {
        let saved = BF16Kernels.useCKernels
        defer { BF16Kernels.useCKernels = saved }
        for useC in [false, BF16Kernels.cKernelISA > 0] {
            BF16Kernels.useCKernels = useC
            for (k, n) in [(37, 29), (515, 19), (130, 45)] {
                let (w, wide) = bf16Pair([n, k], seed: UInt64(k + 3 * n))
                for m in [1, 2, 3, 8] {
                    let a = random([m, k], seed: UInt64(m + 80))
                    var ours = [Float](repeating: 0, count: m * n), ref = ours
                    BLAS.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: wide.pointer, ldb: k, c: &ref, ldc: n)
                    BF16Kernels.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: w.bf16Bits!, ldb: k, c: &ours, ldc: n)
                    assertClose(ours, ref, "bf16 gemm useC \(useC) m \(m) k \(k) n \(n)")
                    ours = [Float](repeating: 0, count: m * n)
                    SmallRowMatMul.gemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: wide.pointer, ldb: k, c: &ours, ldc: n)
                    assertClose(ours, ref, "f32 few rows useC \(useC) m \(m) k \(k) n \(n)")
                    let out = Tensor.matmul(a, w, transposeB: true)
                    assertClose(out.scalars, ref, "matmul bf16 useC \(useC) m \(m) k \(k) n \(n)")
                }
            }
        }
    }

    /// Many rows: panels of the weight widened and multiplied by sgemm, both weight layouts, several panels.
    func testPanelPathMatchesWidenedSgemm() {
        for (m, k, n) in [(9, 300, 1000), (64, 77, 45), (130, 515, 300)] {
            let a = random([m, k], seed: 3)
            let (wt, wideT) = bf16Pair([n, k], seed: 4)  // [n, k]: Linear layout
            var ours = [Float](repeating: 0, count: m * n), ref = ours
            BF16Kernels.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: wt.bf16Bits!, ldb: k, c: &ours, ldc: n)
            BLAS.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: wideT.pointer, ldb: k, c: &ref, ldc: n)
            assertClose(ours, ref, "transB m \(m) k \(k) n \(n)")
            let (w, wide) = bf16Pair([k, n], seed: 5)    // [k, n]
            BF16Kernels.gemm(transB: false, m: m, n: n, k: k, a: a.pointer, lda: k, b: w.bf16Bits!, ldb: n, c: &ours, ldc: n)
            BLAS.gemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: wide.pointer, ldb: n, c: &ref, ldc: n)
            assertClose(ours, ref, "m \(m) k \(k) n \(n)")
        }
    }

    /// linear / matmul with a frozen bf16 weight: the output and the input gradient equal those with the widened
    /// weight; the weight gets no gradient and stays bf16.
    func testLinearForwardAndInputGradientMatchWidenedWeight() {
        let widenings = TensorStorage.widenings.current
        for rows in [1, 3, 8, 40] {
            let (w, wide) = bf16Pair([29, 37], seed: 6)
            let bias = random([29], seed: 7)
            let x = random([rows, 37], seed: 8, requiresGrad: true)
            let x2 = x.copy(); x2.setRequiresGrad(true)
            let r = random([rows, 29], seed: 9)
            let y = Tensor.linear(x, weight: w, bias: bias)
            let yRef = Tensor.linear(x2, weight: wide, bias: bias)
            assertClose(y.scalars, yRef.scalars, "forward rows \(rows)")
            (y * r).sum().backward()
            (yRef * r).sum().backward()
            assertClose(x.grad!.scalars, x2.grad!.scalars, "dX rows \(rows)")
            XCTAssertNil(w.grad)
            XCTAssertEqual(w.dtype, .bfloat16)
            // matmul with the [k, n] layout (no transpose), batched leading dimensions folded.
            let (wk, wkWide) = bf16Pair([37, 11], seed: 10)
            let xb = random([2, rows, 37], seed: 11, requiresGrad: true)
            let xb2 = xb.copy(); xb2.setRequiresGrad(true)
            let z = Tensor.matmul(xb, wk), zRef = Tensor.matmul(xb2, wkWide)
            assertClose(z.scalars, zRef.scalars, "matmul rows \(rows)")
            z.sum().backward(); zRef.sum().backward()
            assertClose(xb.grad!.scalars, xb2.grad!.scalars, "matmul dX rows \(rows)")
        }
        XCTAssertEqual(TensorStorage.widenings.current, widenings, "a bf16 fast path widened a weight for good")
    }

    /// The bf16 linear's input gradient against finite differences.
    func testLinearWithBF16WeightGradientCheck() {
        let (w, _) = bf16Pair([13, 21], seed: 12)
        let inputs = GradientCheck.inputs([[3, 21], [13]], seed: 13)
        let bad = GradientCheck.run(inputs) { Tensor.linear($0[0], weight: w, bias: $0[1]) }
        XCTAssertEqual(bad, [])
    }

    func testLinearCrossEntropyWithBF16HeadMatchesWidened() {
        let (w, wide) = bf16Pair([50, 37], seed: 14)
        for rows in [1, 7, 600] {   // 600 rows: two chunks of 512
            var gen = SeededGenerator(seed: 15)
            let targets = (0..<rows).map { i in i % 5 == 4 ? ignoreLabel : Int32(gen.next() % 50) }
            let h = random([rows, 37], seed: 16, requiresGrad: true)
            let h2 = h.copy(); h2.setRequiresGrad(true)
            let loss = Tensor.linearCrossEntropy(hidden: h, weight: w, targets: targets)
            let ref = Tensor.linearCrossEntropy(hidden: h2, weight: wide, targets: targets)
            XCTAssertEqual(loss.item, ref.item, accuracy: 1e-5 * max(1, abs(ref.item)), "rows \(rows)")
            loss.backward(); ref.backward()
            assertClose(h.grad!.scalars, h2.grad!.scalars, "dHidden rows \(rows)")
            XCTAssertNil(w.grad)
            XCTAssertEqual(w.dtype, .bfloat16)
        }
    }

    func testEmbeddingFromBF16TableIsExact() {
        let (table, wide) = bf16Pair([40, 19], seed: 17)
        let ids: [Int32] = [3, 0, 39, 3, 17, 21]
        let ours = Tensor.embedding(table, ids: ids, idsShape: [2, 3])
        let ref = Tensor.embedding(wide, ids: ids, idsShape: [2, 3])
        XCTAssertEqual(ours.shape, [2, 3, 19])
        XCTAssertEqual(ours.scalars, ref.scalars)
        XCTAssertEqual(table.dtype, .bfloat16)
    }
}
