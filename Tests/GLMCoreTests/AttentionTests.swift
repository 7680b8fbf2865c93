// Attention: values against a naive Double reference under every mask kind, and gradient checks.
import XCTest
import GLMCore
import TestSupport

final class AttentionTests: XCTestCase {
    /// softmax(q·kᵀ·scale + mask)·v computed directly in Double.
    func naiveAttention(q: Tensor, k: Tensor, v: Tensor, shape s: AttentionShape, mask: AttentionMask) -> [Float] {
        let (T, S, H, KV, D) = (s.queries, s.keys, s.heads, s.kvHeads, s.headDim)
        var out = [Float](repeating: 0, count: s.batch * T * H * D)
        let scale = 1 / Double(D).squareRoot()
        for b in 0..<s.batch {
            for h in 0..<H {
                let kvh = h / (H / KV)
                for i in 0..<T {
                    var scores = [Double](repeating: -.infinity, count: S)
                    for j in 0..<S where mask.allows(batch: b, query: i, key: j) {
                        var dot = 0.0
                        for d in 0..<D {
                            dot += Double(q.pointer[((b * T + i) * H + h) * D + d]) * Double(k.pointer[((b * S + j) * KV + kvh) * D + d])
                        }
                        scores[j] = dot * scale
                    }
                    let m = scores.max()!
                    let e = scores.map { $0 == -.infinity ? 0 : Foundation.exp($0 - m) }
                    let z = e.reduce(0, +)
                    for d in 0..<D {
                        var acc = 0.0
                        for j in 0..<S { acc += e[j] / z * Double(v.pointer[((b * S + j) * KV + kvh) * D + d]) }
                        out[((b * T + i) * H + h) * D + d] = Float(acc)
                    }
                }
            }
        }
        return out
    }

    func cases() -> [(String, AttentionShape, AttentionMask)] {
        let s1 = AttentionShape(batch: 2, queries: 5, keys: 5, heads: 4, kvHeads: 2, headDim: 3)
        let s2 = AttentionShape(batch: 1, queries: 3, keys: 7, heads: 2, kvHeads: 1, headDim: 4)
        let s3 = AttentionShape(batch: 2, queries: 9, keys: 9, heads: 3, kvHeads: 3, headDim: 5)
        let big = AttentionShape(batch: 1, queries: 150, keys: 150, heads: 4, kvHeads: 1, headDim: 8)
        return [
            ("causal", s1, .causal(batch: 2, queries: 5)),
            ("prefix", s1, .prefix(lengths: [3, 0], queries: 5)),
            ("kv-cache causal", s2, .causal(batch: 1, queries: 3, keys: 7)),
            ("packed", s3, .packed(batch: 2, queries: 9, segmentIds: [0, 0, 0, 1, 1, 2, 2, 2, 2, 5, 5, 5, 5, 5, 5, 6, 6, 6])),
            ("packed with prefixes", s3, .packed(batch: 2, queries: 9, segmentIds: [Int32](repeating: 0, count: 4) + [Int32](repeating: 1, count: 14),
                                                 prefixEnds: [2, 2, 2, 2, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
            ("several tiles", big, .prefix(lengths: [40], queries: 150)),
        ]
    }

    func testForwardMatchesNaiveReference() {
        for (name, s, mask) in cases() {
            let ins = GradientCheck.inputs([[s.batch, s.queries, s.heads * s.headDim], [s.batch, s.keys, s.kvHeads * s.headDim],
                                            [s.batch, s.keys, s.kvHeads * s.headDim]])
            let out = Tensor.attention(q: ins[0], k: ins[1], v: ins[2], shape: s, mask: mask)
            let ref = Tensor(naiveAttention(q: ins[0], k: ins[1], v: ins[2], shape: s, mask: mask), shape: out.shape)
            XCTAssertLessThan(Fixtures.relativeError(out, ref), 1e-5, name)
        }
    }

    func testGradientsUnderEveryMask() {
        for (name, s, mask) in cases() {
            let ins = GradientCheck.inputs([[s.batch, s.queries, s.heads * s.headDim], [s.batch, s.keys, s.kvHeads * s.headDim],
                                            [s.batch, s.keys, s.kvHeads * s.headDim]])
            XCTAssertEqual(GradientCheck.run(ins, samplesPerInput: 30) {
                Tensor.attention(q: $0[0], k: $0[1], v: $0[2], shape: s, mask: mask)
            }, [], name)
        }
    }

    func testKeysReadInPlaceFromACacheWithSpareCapacity() {
        // k/v hold 9 rows per batch entry of which the first 6 are filled; the result must equal dense 6-key attention.
        let (B, T, S, cap, H, KV, D) = (2, 2, 6, 9, 4, 2, 3)
        let ins = GradientCheck.inputs([[B, T, H * D], [B, cap, KV * D], [B, cap, KV * D]])
        let mask = AttentionMask.causal(batch: B, queries: T, keys: S)
        let cached = Tensor.attention(q: ins[0], k: ins[1], v: ins[2],
                                      shape: AttentionShape(batch: B, queries: T, keys: S, heads: H, kvHeads: KV, headDim: D,
                                                            keyRowsPerBatch: cap), mask: mask)
        let dense = Tensor.attention(q: ins[0], k: ins[1].slice(axis: 1, start: 0, length: S), v: ins[2].slice(axis: 1, start: 0, length: S),
                                     shape: AttentionShape(batch: B, queries: T, keys: S, heads: H, kvHeads: KV, headDim: D), mask: mask)
        XCTAssertEqual(cached.scalars, dense.scalars)
    }

    func testMaskIntervals() {
        let prefix = AttentionMask.prefix(lengths: [3], queries: 5)
        XCTAssertEqual(prefix.upper, [3, 3, 3, 4, 5])
        XCTAssertTrue(prefix.allows(batch: 0, query: 0, key: 2))
        XCTAssertFalse(prefix.allows(batch: 0, query: 2, key: 3))
        let packed = AttentionMask.packed(batch: 1, queries: 5, segmentIds: [4, 4, 9, 9, 9])
        XCTAssertEqual(packed.lower, [0, 0, 2, 2, 2])
        XCTAssertEqual(packed.upper, [1, 2, 3, 4, 5])
        XCTAssertEqual(AttentionMask.causal(batch: 1, queries: 2, keys: 4).upper, [3, 4])
    }
}
