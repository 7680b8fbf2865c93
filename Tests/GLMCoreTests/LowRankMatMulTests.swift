// The low-rank product kernels (LoRA's rank-r products) against sums in Double, at every kernel level (the plain C
// loops, AVX-512 where present, the default dispatch, and OpenBLAS with the C kernels off): ranks and widths that are
// not multiples of the kernels' blocks (8 rows × 16 j, 16 j × 16 columns, 8 rows × 32 columns), leading dimensions wider
// than the rows, alpha and beta.
import XCTest
import GLMCore
import TestSupport

final class LowRankMatMulTests: XCTestCase {
    func values(_ count: Int, seed: UInt64) -> [Float] {
        var gen = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float(gen.nextUniform() * 2 - 1) }
    }

    /// Each way of running the kernels: (label, isa argument, C kernels on).
    var levels: [(String, Int?, Bool)] {
        var out: [(String, Int?, Bool)] = [("plain C", 0, true), ("default", nil, true), ("OpenBLAS", nil, false)]
        if BF16Kernels.cKernelISA >= 2 { out.append(("AVX-512", 2, true)) }
        return out
    }

    func check(_ ours: [Float], _ ref: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.count, ref.count, what, file: file, line: line)
        for (i, (o, r)) in zip(ours, ref).enumerated() where abs(Double(o) - r) > 1e-4 * max(1, abs(r)) {
            XCTFail("\(what): element \(i) is \(o), expected \(r)", file: file, line: line)
            return
        }
    }

    func withLevel(_ on: Bool, _ body: () -> Void) {
        let saved = BF16Kernels.useCKernels
        BF16Kernels.useCKernels = on
        defer { BF16Kernels.useCKernels = saved }
        body()
    }

    func testNTMatchesDoubleSums() {
        for (label, isa, on) in levels {
            withLevel(on) {
                for m in [1, 5, 66] { for r in [1, 3, 4, 7, 16, 17, 33] { for k in [1, 15, 16, 17, 300] {
                    let ldx = k + 3, ldw = r + 1, ldc = r + 2
                    let x = values(m * ldx, seed: UInt64(m * 7 + k)), w = values(k * ldw, seed: UInt64(r * 11 + k))
                    var c = [Float](repeating: .nan, count: m * ldc)
                    LowRankMatMul.nt(m: m, r: r, k: k, alpha: 0.75, x: x, ldx: ldx, wt: w, ldwt: ldw, c: &c, ldc: ldc, isa: isa)
                    var ref = [Double](), got = [Float]()
                    for i in 0..<m {
                        for j in 0..<r {
                            ref.append(0.75 * (0..<k).reduce(0.0) { $0 + Double(x[i * ldx + $1]) * Double(w[$1 * ldw + j]) })
                            got.append(c[i * ldc + j])
                        }
                    }
                    check(got, ref, "nt \(label) m \(m) r \(r) k \(k)")
                } } }
            }
        }
    }

    func testTNMatchesDoubleSums() {
        for (label, isa, on) in levels {
            withLevel(on) {
                for m in [1, 5, 70, 130] { for r in [1, 3, 8, 16, 17, 33] { for n in [1, 15, 16, 17, 40, 300] {
                    let ldp = r + 1, ldq = n + 5, ldc = n + 3
                    let p = values(m * ldp, seed: UInt64(m * 13 + r)), q = values(m * ldq, seed: UInt64(n * 17 + m))
                    var c = [Float](repeating: .nan, count: r * ldc)
                    LowRankMatMul.tn(r: r, n: n, m: m, alpha: 1.5, p: p, ldp: ldp, q: q, ldq: ldq, c: &c, ldc: ldc, isa: isa)
                    var ref = [Double](), got = [Float]()
                    for j in 0..<r {
                        for col in 0..<n {
                            ref.append(1.5 * (0..<m).reduce(0.0) { $0 + Double(p[$1 * ldp + j]) * Double(q[$1 * ldq + col]) })
                            got.append(c[j * ldc + col])
                        }
                    }
                    check(got, ref, "tn \(label) m \(m) r \(r) n \(n)")
                } } }
            }
        }
    }

    func testNNMatchesDoubleSumsWithAndWithoutBeta() {
        for (label, isa, on) in levels {
            withLevel(on) {
                for m in [1, 5, 9, 66] { for r in [1, 3, 16, 17] { for n in [1, 15, 16, 17, 33, 300] { for beta in [Float(0), 1, -0.5] {
                    let ldd = r + 2, ldw = n + 1, ldc = n + 4
                    let d = values(m * ldd, seed: UInt64(m * 19 + r)), w = values(r * ldw, seed: UInt64(n * 23 + r))
                    let start = values(m * ldc, seed: UInt64(m + n))
                    // beta 0 must not read C: start from NaN there.
                    var c = beta == 0 ? [Float](repeating: .nan, count: m * ldc) : start
                    LowRankMatMul.nn(m: m, n: n, r: r, alpha: 2, d: d, ldd: ldd, w: w, ldw: ldw, beta: beta, c: &c, ldc: ldc,
                                     isa: isa)
                    var ref = [Double](), got = [Float]()
                    for i in 0..<m {
                        for col in 0..<n {
                            let sum = (0..<r).reduce(0.0) { $0 + Double(d[i * ldd + $1]) * Double(w[$1 * ldw + col]) }
                            ref.append(2 * sum + (beta == 0 ? 0 : Double(beta) * Double(start[i * ldc + col])))
                            got.append(c[i * ldc + col])
                        }
                    }
                    check(got, ref, "nn \(label) m \(m) r \(r) n \(n) beta \(beta)")
                } } } }
            }
        }
    }

    /// bf16 operands as the bf16 kernels round them (nearest even), widened back.
    func rounded(_ v: [Float]) -> [Float] { MixedPrecision.roundToBF16(v).map { Float(bitPattern: UInt32($0) << 16) } }

    /// The bf16 kernels (AVX512_BF16) against Double sums of the operands rounded to bf16: odd summed lengths (a pair
    /// with a zero), ranks and widths off the blocks, strided small operands (a transposed A or B as LoRA passes them).
    func testBF16KernelsMatchSumsOfRoundedOperands() throws {
        try XCTSkipUnless(LowRankMatMul.bf16Available, "no AVX512_BF16 here: LoRA's products stay f32 (the other tests)")
        for m in [1, 5, 9, 130] { for r in [1, 3, 16, 17, 33] { for k in [1, 15, 16, 17, 33, 300] {
            // nt with W[p, j] = w[j·(k+2) + p] (A as stored, [r, k] with leading dimension k + 2).
            let ldx = k + 3, ldc = r + 2
            let x = values(m * ldx, seed: UInt64(m * 7 + k)), w = values(r * (k + 2), seed: UInt64(r * 11 + k))
            let xr = rounded(x), wr = rounded(w)
            var c = [Float](repeating: .nan, count: m * ldc)
            LowRankMatMul.ntBF16(m: m, r: r, k: k, alpha: 0.75, x: x, ldx: ldx, w: w, wsk: 1, wsj: k + 2, c: &c, ldc: ldc)
            var ref = [Double](), got = [Float]()
            for i in 0..<m { for j in 0..<r {
                ref.append(0.75 * (0..<k).reduce(0.0) { $0 + Double(xr[i * ldx + $1]) * Double(wr[j * (k + 2) + $1]) })
                got.append(c[i * ldc + j])
            } }
            check(got, ref, "ntBF16 m \(m) r \(r) k \(k)")
        } } }
        for m in [1, 5, 9, 66] { for r in [1, 3, 16, 17] { for n in [1, 15, 16, 17, 33, 300] { for beta in [Float(0), 1] {
            // nn with W[j, q] = w[q·(r+1) + j] (B as stored, [n, r]), and D's leading dimension past r.
            let ldd = r + 2, ldc = n + 4
            let d = values(m * ldd, seed: UInt64(m * 19 + r)), w = values(n * (r + 1), seed: UInt64(n * 23 + r))
            let start = values(m * ldc, seed: UInt64(m + n))
            let dr = rounded(d), wr = rounded(w)
            var c = beta == 0 ? [Float](repeating: .nan, count: m * ldc) : start
            LowRankMatMul.nnBF16(m: m, n: n, r: r, alpha: 2, d: d, ldd: ldd, w: w, wsj: 1, wsn: r + 1, beta: beta, c: &c, ldc: ldc)
            var ref = [Double](), got = [Float]()
            for i in 0..<m { for col in 0..<n {
                let sum = (0..<r).reduce(0.0) { $0 + Double(dr[i * ldd + $1]) * Double(wr[col * (r + 1) + $1]) }
                ref.append(2 * sum + (beta == 0 ? 0 : Double(start[i * ldc + col])))
                got.append(c[i * ldc + col])
            } }
            check(got, ref, "nnBF16 m \(m) r \(r) n \(n) beta \(beta)")
        } } } }
        for m in [0, 1, 5, 70, 129, 300] { for r in [1, 3, 16, 17, 33] { for n in [1, 15, 16, 17, 40, 300] {
            let ldp = r + 1, ldq = n + 5, ldc = n + 3
            let p = values(Swift.max(1, m * ldp), seed: UInt64(m * 13 + r)), q = values(Swift.max(1, m * ldq), seed: UInt64(n * 17 + m))
            let pr = rounded(p), qr = rounded(q)
            var c = [Float](repeating: .nan, count: r * ldc)
            LowRankMatMul.tnBF16(r: r, n: n, m: m, alpha: 1.5, p: p, ldp: ldp, q: q, ldq: ldq, c: &c, ldc: ldc)
            var ref = [Double](), got = [Float]()
            for j in 0..<r { for col in 0..<n {
                ref.append(1.5 * (0..<m).reduce(0.0) { $0 + Double(pr[$1 * ldp + j]) * Double(qr[$1 * ldq + col]) })
                got.append(c[j * ldc + col])
            } }
            check(got, ref, "tnBF16 m \(m) r \(r) n \(n)")
        } } }
    }

    /// nt on rows rounded beforehand (a bf16 copy with a wider leading dimension, as LoRA's joined product makes)
    /// gives the bits of nt rounding them itself.
    func testBF16NTOnPreroundedRowsEqualsRoundingInside() throws {
        try XCTSkipUnless(LowRankMatMul.bf16Available, "no AVX512_BF16 here")
        for m in [1, 9, 70] { for r in [3, 16, 20] { for k in [2, 16, 34, 300] {
            let ldx = k + 6
            let x = values(m * ldx, seed: UInt64(m + k)), w = values(r * k, seed: UInt64(r * 3 + k))
            let bits = MixedPrecision.roundToBF16(x)
            var fromFloats = [Float](repeating: .nan, count: m * r), fromBits = fromFloats
            LowRankMatMul.ntBF16(m: m, r: r, k: k, alpha: 0.5, x: x, ldx: ldx, w: w, wsk: 1, wsj: k, c: &fromFloats, ldc: r)
            bits.withUnsafeBufferPointer { b in
                LowRankMatMul.ntBF16(m: m, r: r, k: k, alpha: 0.5, xBits: b.baseAddress!, ldx: ldx, w: w, wsk: 1, wsj: k,
                                     c: &fromBits, ldc: r)
            }
            XCTAssertEqual(fromBits, fromFloats, "m \(m) r \(r) k \(k)")
        } } }
    }

    /// The rounding is bf16's and the sums are not f32's: a product whose f32 value differs from its bf16 one shows it.
    func testBF16KernelsRoundTheirOperands() throws {
        try XCTSkipUnless(LowRankMatMul.bf16Available, "no AVX512_BF16 here")
        let x: [Float] = [1 + 1.0 / 512, 1]  // 1 + 2⁻⁹ is not a bf16 (8 significant bits): it rounds to 1
        let w: [Float] = [1, 0]
        var c: [Float] = [0]
        LowRankMatMul.ntBF16(m: 1, r: 1, k: 2, x: x, ldx: 2, w: w, wsk: 1, wsj: 2, c: &c, ldc: 1)
        XCTAssertEqual(c, [1])
        LowRankMatMul.nt(m: 1, r: 1, k: 2, x: x, ldx: 2, wt: w, ldwt: 1, c: &c, ldc: 1)
        XCTAssertEqual(c, [1 + 1.0 / 512])
    }

    func testTransposeAndEmptyShapes() {
        let src: [Float] = [1, 2, 3, 9, 4, 5, 6, 9]  // 2 × 3 with leading dimension 4
        var dst = [Float](repeating: 0, count: 6)
        LowRankMatMul.transpose(src, rows: 2, cols: 3, ld: 4, into: &dst)
        XCTAssertEqual(dst, [1, 4, 2, 5, 3, 6])
        // An empty sum (no rows) gives zeros, at every level.
        for (label, isa, on) in levels {
            withLevel(on) {
                var c = [Float](repeating: .nan, count: 6)
                LowRankMatMul.tn(r: 2, n: 3, m: 0, p: [], ldp: 2, q: [], ldq: 3, c: &c, ldc: 3, isa: isa)
                XCTAssertEqual(c, [Float](repeating: 0, count: 6), "tn with no rows, \(label)")
                var d = [Float](repeating: .nan, count: 6)
                LowRankMatMul.nt(m: 3, r: 2, k: 0, x: [0], ldx: 1, wt: [0], ldwt: 2, c: &d, ldc: 2, isa: isa)
                XCTAssertEqual(d, [Float](repeating: 0, count: 6), "nt with k 0, \(label)")
            }
        }
    }
}
