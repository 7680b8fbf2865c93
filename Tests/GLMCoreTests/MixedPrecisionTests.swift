// bf16 matrix products: equal to f32 products of the bf16-rounded operands (up to f32 summation order) in every
// layout the ops use (transposed A or B, accumulate, a scale, a bf16 weight's bits with a leading dimension).
import XCTest
import GLMCore
import TestSupport

final class MixedPrecisionTests: XCTestCase {
    override func tearDown() { MixedPrecision.requested = .f32 }

    func rounded(_ t: Tensor) -> Tensor {
        let bits = MixedPrecision.roundToBF16(t.scalars)
        return Tensor(bits.map { Float(bitPattern: UInt32($0) << 16) }, shape: t.shape)
    }

    func testRoundingIsNearestEven() {
        let cases: [(Float, UInt16)] = [(1, 0x3F80), (Float(bitPattern: 0x3F80_8000), 0x3F80), (Float(bitPattern: 0x3F81_8000), 0x3F82),
                                        (Float(bitPattern: 0x3F80_8001), 0x3F81), (-2.5, 0xC020), (.infinity, 0x7F80)]
        XCTAssertEqual(MixedPrecision.roundToBF16(cases.map(\.0)), cases.map(\.1))
        XCTAssertTrue(Float(bitPattern: UInt32(MixedPrecision.roundToBF16([.nan])[0]) << 16).isNaN)
        // 37 values: the vector body and its tail.
        let many = (0..<37).map { Float($0) * 1.001 + 0.0007 }
        XCTAssertEqual(MixedPrecision.roundToBF16(many), many.map { MixedPrecision.roundToBF16([$0])[0] })
    }

    func testProductsEqualF32ProductsOfRoundedOperands() throws {
        try XCTSkipUnless(MixedPrecision.bf16Available, "no AVX512_BF16 on this CPU")
        let (m, n, k) = (37, 29, 70)
        var gen = SeededGenerator(seed: 3)
        for transA in [false, true] {
            for transB in [false, true] {
                for (alpha, beta) in [(Float(1), Float(0)), (1, 1), (0.5, 0), (-2, 1)] {
                    let a = Tensor.randomNormal(transA ? [k, m] : [m, k], std: 1, generator: &gen)
                    let b = Tensor.randomNormal(transB ? [n, k] : [k, n], std: 1, generator: &gen)
                    let c0 = Tensor.randomNormal([m, n], std: 1, generator: &gen)
                    let want = c0.copy(), got = c0.copy()
                    let (ra, rb) = (rounded(a), rounded(b))
                    BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: ra.pointer, lda: a.shape[1],
                              b: rb.pointer, ldb: b.shape[1], beta: beta, c: want.pointer, ldc: n)
                    MixedPrecision.requested = .bf16
                    MixedPrecision.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a.pointer, lda: a.shape[1],
                                        b: b.pointer, ldb: b.shape[1], beta: beta, c: got.pointer, ldc: n)
                    MixedPrecision.requested = .f32
                    withExtendedLifetime((ra, rb)) {}
                    let err = zip(got.scalars, want.scalars).map { abs($0 - $1) }.max()!
                    XCTAssertLessThan(err, 1e-4, "transA \(transA) transB \(transB) alpha \(alpha) beta \(beta)")
                    // And it is not the f32 product of the unrounded operands.
                    let exact = c0.copy()
                    BLAS.gemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a.pointer, lda: a.shape[1],
                              b: b.pointer, ldb: b.shape[1], beta: beta, c: exact.pointer, ldc: n)
                    XCTAssertGreaterThan(zip(got.scalars, exact.scalars).map { abs($0 - $1) }.max()!, 1e-3)
                }
            }
        }
    }

    /// Operands large enough that their rounding is split across the cores, read with leading dimensions wider than
    /// their rows, twice in a row (the second product gets the first one's recycled scratch buffers).
    func testLargeProductsWithWideLeadingDimensionsRoundOnEveryCore() throws {
        try XCTSkipUnless(MixedPrecision.bf16Available, "no AVX512_BF16 on this CPU")
        let (m, n, k, lda, ldb) = (700, 300, 520, 530, 531)
        var gen = SeededGenerator(seed: 7)
        for round in 0..<2 {
            let a = Tensor.randomNormal([m, lda], std: 1, generator: &gen)
            let b = Tensor.randomNormal([n, ldb], std: 1, generator: &gen)
            let want = Tensor(zeros: [m, n]), got = Tensor(zeros: [m, n])
            let (ra, rb) = (rounded(a), rounded(b))
            BLAS.gemm(transB: true, m: m, n: n, k: k, a: ra.pointer, lda: lda, b: rb.pointer, ldb: ldb, c: want.pointer, ldc: n)
            MixedPrecision.requested = .bf16
            MixedPrecision.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: lda, b: b.pointer, ldb: ldb, c: got.pointer, ldc: n)
            MixedPrecision.requested = .f32
            withExtendedLifetime((ra, rb)) {}
            let err = zip(got.scalars, want.scalars).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(err, 1e-3, "round \(round)")
        }
    }

    func testBF16WeightBitsWithALeadingDimension() throws {
        try XCTSkipUnless(MixedPrecision.bf16Available, "no AVX512_BF16 on this CPU")
        let (m, n, k, ldb) = (40, 24, 33, 48)
        var gen = SeededGenerator(seed: 4)
        let a = Tensor.randomNormal([m, k], std: 1, generator: &gen)
        let wide = Tensor.randomNormal([n, ldb], std: 1, generator: &gen)
        let bits = MixedPrecision.roundToBF16(wide.scalars)
        let rw = Tensor(bits.map { Float(bitPattern: UInt32($0) << 16) }, shape: [n, ldb])
        let want = Tensor(zeros: [m, n]), got = Tensor(zeros: [m, n])
        let ra = rounded(a)
        BLAS.gemm(transB: true, m: m, n: n, k: k, a: ra.pointer, lda: k, b: rw.pointer, ldb: ldb, c: want.pointer, ldc: n)
        withExtendedLifetime(ra) {}
        MixedPrecision.requested = .bf16
        let ok = bits.withUnsafeBufferPointer {
            MixedPrecision.gemm(transB: true, m: m, n: n, k: k, a: a.pointer, lda: k, bBits: $0.baseAddress!, ldb: ldb, c: got.pointer, ldc: n)
        }
        XCTAssertTrue(ok)
        XCTAssertLessThan(zip(got.scalars, want.scalars).map { abs($0 - $1) }.max()!, 1e-4)
    }

    /// The output projection and its gradient with a frozen bf16 weight (a bf16 checkpoint's lm_head) run on the bf16
    /// products under bf16, as the same weight widened to f32 does: the loss and the hidden states' gradient equal
    /// those of the widened weight, and differ from f32's (the hidden states are rounded). Likewise the log-probs.
    func testFrozenBF16OutputProjectionUsesBF16Products() throws {
        try XCTSkipUnless(MixedPrecision.bf16Available, "no AVX512_BF16 on this CPU")
        var gen = SeededGenerator(seed: 8)
        let (rows, h, vocab) = (80, 48, 90)  // chunks of 40 rows: past the few-row (decode) kernels
        let bits = Tensor.randomNormal([vocab, h], std: 0.3, generator: &gen).roundedToBF16()
        let wide = bits.widened()
        let hidden = Tensor.randomNormal([rows, h], generator: &gen)
        let targets = (0..<rows).map { Int32(($0 * 7) % vocab) }
        func run(_ w: Tensor, _ precision: ComputePrecision) -> (loss: Float, grad: [Float], logProbs: [Float]) {
            MixedPrecision.requested = precision
            defer { MixedPrecision.requested = .f32 }
            let x = hidden.copy()
            x.setRequiresGrad(true)
            let loss = Tensor.linearCrossEntropy(hidden: x, weight: w, targets: targets, chunkRows: 40)
            loss.backward()
            let lp = Tensor.linearLogProbs(hidden: hidden, weight: w, targets: targets, chunkRows: 40).logProbs.scalars
            return (loss.item, x.grad!.scalars, lp)
        }
        let fromBits = run(bits, .bf16), fromWide = run(wide, .bf16), f32 = run(bits, .f32)
        XCTAssertEqual(fromBits.loss, fromWide.loss, accuracy: 1e-6)
        XCTAssertLessThan(zip(fromBits.grad, fromWide.grad).map { abs($0 - $1) }.max()!, 1e-6)
        XCTAssertLessThan(zip(fromBits.logProbs, fromWide.logProbs).map { abs($0 - $1) }.max()!, 1e-5)
        XCTAssertGreaterThan(abs(fromBits.loss - f32.loss), 1e-6, "the bf16 weight's product rounded nothing")
        XCTAssertGreaterThan(zip(fromBits.logProbs, f32.logProbs).map { abs($0 - $1) }.max()!, 1e-5)
    }

    /// Under bf16 an f32 output weight (frozen or trained) is rounded once for all chunks of the loss: the same loss
    /// and gradients as a single chunk (where it is rounded once anyway), chunk sizes past and below the few-row kernels.
    func testChunkedLossRoundsTheF32WeightOnceWithTheSameValues() throws {
        try XCTSkipUnless(MixedPrecision.bf16Available, "no AVX512_BF16 on this CPU")
        var gen = SeededGenerator(seed: 4)
        let (rows, h, vocab) = (90, 40, 70)
        let w0 = Tensor.randomNormal([vocab, h], std: 0.3, generator: &gen)
        let hidden = Tensor.randomNormal([rows, h], generator: &gen)
        let targets = (0..<rows).map { Int32(($0 * 5) % vocab) }
        for trains in [false, true] {
            func run(_ chunkRows: Int) -> (Float, [Float], [Float]) {
                MixedPrecision.requested = .bf16
                defer { MixedPrecision.requested = .f32 }
                let x = hidden.copy(), w = w0.copy()
                x.setRequiresGrad(true)
                w.setRequiresGrad(trains)
                let loss = Tensor.linearCrossEntropy(hidden: x, weight: w, targets: targets, chunkRows: chunkRows)
                loss.backward()
                return (loss.item, x.grad!.scalars, w.grad?.scalars ?? [])
            }
            let whole = run(rows)
            XCTAssertEqual(whole.2.isEmpty, !trains)
            for chunkRows in [40, 7] {
                let (loss, grad, wgrad) = run(chunkRows)
                let label = "chunks of \(chunkRows), weight trains \(trains)"
                XCTAssertEqual(loss, whole.0, accuracy: 1e-5, label)
                XCTAssertLessThan(zip(grad, whole.1).map { abs($0 - $1) }.max()!, 1e-5, label)
                XCTAssertLessThan(zip(wgrad, whole.2).map { abs($0 - $1) }.max() ?? 0, 1e-5, label)
            }
        }
    }

    /// A linear layer whose input and weight both train, under bf16: the two gradients from one rounding of dC are
    /// the bits the separate products give (each gradient alone), in both weight layouts.
    func testSharedGradientsEqualTheSeparateProducts() throws {
        try XCTSkipUnless(MixedPrecision.bf16Available, "no AVX512_BF16 on this CPU")
        var gen = SeededGenerator(seed: 6)
        let x0 = Tensor.randomNormal([3, 20, 24], generator: &gen)
        for transposeB in [true, false] {
            let w0 = Tensor.randomNormal(transposeB ? [18, 24] : [24, 18], generator: &gen)
            let weights = Tensor.randomNormal([3, 20, 18], generator: &gen)
            func grads(_ xTrains: Bool, _ wTrains: Bool) -> ([Float]?, [Float]?) {
                MixedPrecision.requested = .bf16
                defer { MixedPrecision.requested = .f32 }
                let x = x0.copy(), w = w0.copy()
                x.setRequiresGrad(xTrains); w.setRequiresGrad(wTrains)
                (Tensor.matmul(x, w, transposeB: transposeB) * weights).sum().backward()
                return (x.grad?.scalars, w.grad?.scalars)
            }
            let both = grads(true, true)
            XCTAssertEqual(both.0, grads(true, false).0, "dx, transposeB \(transposeB)")
            XCTAssertEqual(both.1, grads(false, true).1, "dW, transposeB \(transposeB)")
            XCTAssertNotNil(both.0); XCTAssertNotNil(both.1)
        }
    }

    func testInactiveIsPlainSgemm() {
        let a = Tensor((0..<12).map { Float($0) * 0.37 }, shape: [3, 4]), b = Tensor((0..<8).map { Float($0) * 0.11 }, shape: [4, 2])
        let want = Tensor(zeros: [3, 2]), got = Tensor(zeros: [3, 2])
        BLAS.gemm(m: 3, n: 2, k: 4, a: a.pointer, lda: 4, b: b.pointer, ldb: 2, c: want.pointer, ldc: 2)
        MixedPrecision.gemm(m: 3, n: 2, k: 4, a: a.pointer, lda: 4, b: b.pointer, ldb: 2, c: got.pointer, ldc: 2)
        XCTAssertEqual(got.scalars, want.scalars)
    }
}
