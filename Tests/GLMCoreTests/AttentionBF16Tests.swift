// Attention with bf16 tile products (training.precision: bf16 on AVX512_BF16): the output and the gradients of q, k
// and v stay within bf16 rounding of the f32 tiles under every mask kind — key ranges that start at odd keys
// (packed sequences, prefixes), GQA groups that make odd tile rows, odd head sizes, a cache with spare rows — and
// are not the f32 values (the products did round). Shapes with few query tiles (decode) keep the f32 tiles exactly.
import XCTest
import GLMCore
import TestSupport

final class AttentionBF16Tests: XCTestCase {
    override func tearDown() { MixedPrecision.requested = .f32 }

    /// out, dq, dk, dv of Σ attention ⊙ w under `precision`.
    func run(_ s: AttentionShape, _ mask: AttentionMask, _ precision: ComputePrecision, seed: UInt64 = 1) -> [[Float]] {
        let ins = GradientCheck.inputs([[s.batch, s.queries, s.heads * s.headDim], [s.batch, s.keyRowsPerBatch, s.kvHeads * s.headDim],
                                        [s.batch, s.keyRowsPerBatch, s.kvHeads * s.headDim]], seed: seed)
        var gen = SeededGenerator(seed: seed + 7)
        let w = Tensor.randomNormal([s.batch, s.queries, s.heads * s.headDim], generator: &gen)
        MixedPrecision.requested = precision
        defer { MixedPrecision.requested = .f32 }
        let out = Tensor.attention(q: ins[0], k: ins[1], v: ins[2], shape: s, mask: mask)
        (out * w).sum().backward()
        return [out.scalars] + ins.map { $0.grad!.scalars }
    }

    static func relative(_ a: [Float], _ b: [Float]) -> Double {
        let diff = zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0
        return diff / max(b.map { Double(abs($0)) }.max() ?? 0, 1e-6)
    }

    func testBF16TilesStayWithinRoundingOfF32UnderEveryMask() throws {
        try XCTSkipUnless(MixedPrecision.bf16Available && LowRankMatMul.bf16Available, "no AVX512_BF16 here: attention stays f32")
        let causal = AttentionShape(batch: 2, queries: 70, keys: 70, heads: 8, kvHeads: 2, headDim: 64)
        let odd = AttentionShape(batch: 1, queries: 45, keys: 45, heads: 3, kvHeads: 1, headDim: 5)
        let cache = AttentionShape(batch: 2, queries: 130, keys: 130, heads: 2, kvHeads: 2, headDim: 16, keyRowsPerBatch: 137)
        let segments = (0..<70).map { Int32($0 < 13 ? 0 : $0 < 30 ? 1 : $0 < 51 ? 2 : 3) }
        let cases: [(String, AttentionShape, AttentionMask)] = [
            ("causal", causal, .causal(batch: 2, queries: 70)),
            ("prefix", causal, .prefix(lengths: [33, 0], queries: 70)),
            ("packed at odd keys", causal, .packed(batch: 2, queries: 70, segmentIds: segments + segments.reversed())),
            ("group of 3, head size 5", odd, .prefix(lengths: [17], queries: 45)),
            ("spare cache rows", cache, .causal(batch: 2, queries: 130)),
        ]
        for (name, s, mask) in cases {
            XCTAssertTrue({ MixedPrecision.requested = .bf16; defer { MixedPrecision.requested = .f32 }; return Tensor.attentionUsesBF16(s) }(), name)
            let f32 = run(s, mask, .f32), bf16 = run(s, mask, .bf16)
            for (i, what) in ["out", "dq", "dk", "dv"].enumerated() {
                let r = Self.relative(bf16[i], f32[i])
                XCTAssertLessThan(r, 1.5e-2, "\(name): \(what)")  // measured 2e-3 to 9e-3
                XCTAssertGreaterThan(r, 1e-6, "\(name): \(what) was not rounded")
                XCTAssertTrue(bf16[i].allSatisfy(\.isFinite), "\(name): \(what)")
            }
        }
    }

    func testFewQueryTilesKeepF32Tiles() {
        // 2 positions of a 4-head group: one tile, as in decode; the bf16 request changes nothing.
        let s = AttentionShape(batch: 1, queries: 2, keys: 9, heads: 4, kvHeads: 1, headDim: 8)
        let mask = AttentionMask.causal(batch: 1, queries: 2, keys: 9)
        XCTAssertFalse({ MixedPrecision.requested = .bf16; defer { MixedPrecision.requested = .f32 }; return Tensor.attentionUsesBF16(s) }())
        XCTAssertEqual(run(s, mask, .bf16), run(s, mask, .f32))
    }
}
