// Row kernels of the attention tiles: the masked base-2 softmax of the forward, the fused probability
// recompute and dS of the backward, and the (un)packing of grouped query rows.
import Foundation
import COpenBLAS

/// Elementwise work on one attention tile. Scores arrive from the gemm already multiplied by
/// `scale·log2(e)`, so probabilities are `2^(s − lse₂)` with `lse₂` the row's log-sum-exp in base 2.
enum AttentionRows {
    typealias V = SIMD8<Float>

    static let log2e: Float = 1.442_695_04

    /// 2^t per lane, for t < 127: the tiles only produce t ≤ 0 (a score minus its row's maximum or
    /// log-sum-exp, up to rounding). t is clamped below at −126, so far-off lanes give ~10⁻³⁸, not 0.
    /// n = round(t), 2^(t−n) by a degree-5 polynomial fitted on [−½, ½] (relative error ≤ 2·10⁻⁷
    /// evaluated in Float), 2^n by exponent bits. About half the instructions of `FastExp.exp` (no upper
    /// clamp, no second range-reduction constant, two fewer terms), which matters here: the exp of every
    /// score, forward and again in the backward, was ~15% of attention's time.
    @inline(__always)
    static func exp2(_ x: V) -> V {
        let lo = V(repeating: -126)
        let t = x.replacing(with: lo, where: x .< lo)
        let magic = V(repeating: 12_582_912)  // 1.5·2^23: t + magic rounds t to an integer in the low bits
        let r = t + magic
        let f = t - (r - magic)
        var p = V(repeating: 1.330_882_427e-3)
        p = p * f + V(repeating: 9.671_516_716e-3)
        p = p * f + V(repeating: 5.550_582_334e-2)
        p = p * f + V(repeating: 2.402_224_243e-1)
        p = p * f + V(repeating: 6.931_470_633e-1)
        p = p * f + V(repeating: 1)
        // bits(r) = 0x4B40_0000 + n, whose low 9 bits are n; (n + 127) << 23 is the float 2^n.
        let bits = (unsafeBitCast(r, to: SIMD8<UInt32>.self) &+ 127) &<< 23
        return p * unsafeBitCast(bits, to: V.self)
    }

    @inline(__always)
    static func exp2(_ x: Float) -> Float { exp2(V(repeating: x))[0] }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    /// Lanes at or past `count` (0...8) replaced by `value`.
    @inline(__always)
    static func keepLanes(_ v: V, below count: Int, else value: Float) -> V {
        v.replacing(with: V(repeating: value), where: V(0, 1, 2, 3, 4, 5, 6, 7) .>= V(repeating: Float(count)))
    }

    @inline(__always)
    static func horizontalMax(_ v: V) -> Float {
        let a = v.lowHalf, b = v.highHalf
        let c = a.replacing(with: b, where: b .> a)
        return Swift.max(Swift.max(c[0], c[1]), Swift.max(c[2], c[3]))
    }

    @inline(__always)
    static func horizontalSum(_ v: V) -> Float {
        let c = v.lowHalf + v.highHalf
        return (c[0] + c[1]) + (c[2] + c[3])
    }

    /// Forward, one row of `nk` scores whose visible keys are `lo..<hi`: replaces the row by
    /// unnormalised probabilities `2^(s − max)` (0 outside the interval) and returns
    /// (lse₂, 1 / Σ) for the row.
    @inline(__always)
    static func forwardRow(_ row: UnsafeMutablePointer<Float>, nk: Int, lo: Int, hi: Int) -> (Float, Float) {
        let n = hi - lo, x = row + lo
        // Whole vectors, then one lane-masked vector if it still fits inside the row buffer.
        let full = n & ~7
        let padded = (n > full && lo + full + 8 <= nk) ? full + 8 : full
        var mv = V(repeating: -.infinity)
        var j = 0
        while j < full { mv = mv.replacing(with: load(x + j), where: load(x + j) .> mv); j += 8 }
        var m = horizontalMax(mv)
        while j < n { if x[j] > m { m = x[j] }; j += 1 }
        let s = V(repeating: m)
        var acc = V(repeating: 0)
        j = 0
        while j < full {
            let e = exp2(load(x + j) - s)
            store(e, x + j); acc += e
            j += 8
        }
        if padded > full {
            var e = exp2(load(x + j) - s)
            e = keepLanes(e, below: n - full, else: 0)
            store(e, x + j); acc += e
            j += 8
        }
        var sum = horizontalSum(acc)
        while j < n { let e = exp2(x[j] - m); x[j] = e; sum += e; j += 1 }
        if lo > 0 { row.update(repeating: 0, count: lo) }
        let end = lo + Swift.max(n, padded)
        if end < nk { (row + end).update(repeating: 0, count: nk - end) }
        return (m + log2(sum), 1 / sum)
    }

    /// Backward, one row: p ← 2^(s − lse₂) (the forward's probabilities) and dp ← p ⊙ (dp − c), 0 outside
    /// `lo..<hi`, where `dp` holds `scale·dO·Vᵀ` and c = Σⱼ pⱼ·dpⱼ = scale·(dO·O) (as Σⱼ pⱼ vⱼ = O, the
    /// row's whole key range being in the tile): no read of the output O is needed.
    @inline(__always)
    static func backwardRow(_ p: UnsafeMutablePointer<Float>, _ dp: UnsafeMutablePointer<Float>, nk: Int,
                            lo: Int, hi: Int, lse: Float) {
        let n = hi - lo, x = p + lo, d = dp + lo
        let full = n & ~7
        let padded = (n > full && lo + full + 8 <= nk) ? full + 8 : full
        let sv = V(repeating: lse)
        var acc = V(repeating: 0)
        var j = 0
        while j < full {
            let e = exp2(load(x + j) - sv)
            store(e, x + j)
            acc += e * load(d + j)
            j += 8
        }
        if padded > full {
            let e = keepLanes(exp2(load(x + j) - sv), below: n - full, else: 0)
            store(e, x + j)
            acc += e * keepLanes(load(d + j), below: n - full, else: 0)
            j += 8
        }
        var c = horizontalSum(acc)
        while j < n { let e = exp2(x[j] - lse); x[j] = e; c += e * d[j]; j += 1 }
        let end = lo + Swift.max(n, padded)
        let cv = V(repeating: c)
        j = 0
        while j + 8 <= end - lo { store(load(x + j) * (load(d + j) - cv), d + j); j += 8 }
        while j < end - lo { d[j] = x[j] * (d[j] - c); j += 1 }
        if lo > 0 { p.update(repeating: 0, count: lo); dp.update(repeating: 0, count: lo) }
        if end < nk { (p + end).update(repeating: 0, count: nk - end); (dp + end).update(repeating: 0, count: nk - end) }
    }

    /// dst[cols, rows] = srcᵀ for a `[rows, cols]` source with row stride `ld` (OpenBLAS's omatcopy).
    @inline(__always)
    static func transpose(_ src: UnsafePointer<Float>, ld: Int, rows: Int, cols: Int, _ dst: UnsafeMutablePointer<Float>) {
        cblas_somatcopy(CblasRowMajor, CblasTrans, Int32(rows), Int32(cols), 1, src, Int32(ld), dst, Int32(rows))
    }

    /// dst[r·width ..< r·width + width] = src row r (stride `stride`) for r < count.
    @inline(__always)
    static func gather(_ src: UnsafePointer<Float>, stride: Int, _ dst: UnsafeMutablePointer<Float>, count: Int, width: Int) {
        for r in 0..<count { (dst + r * width).update(from: src + r * stride, count: width) }
    }

    /// Inverse of `gather`: dst row r (stride `stride`) = src[r·width ..< r·width + width].
    @inline(__always)
    static func scatter(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, stride: Int, count: Int, width: Int) {
        for r in 0..<count { (dst + r * stride).update(from: src + r * width, count: width) }
    }

    /// Like `scatter`, multiplying each packed `d`-wide row i (`width / d` per position) by `factor[i]`.
    @inline(__always)
    static func scatterScaled(_ src: UnsafePointer<Float>, _ factor: UnsafePointer<Float>,
                              _ dst: UnsafeMutablePointer<Float>, stride: Int, count: Int, width: Int, d: Int) {
        let perPosition = width / d
        for r in 0..<count {
            for g in 0..<perPosition {
                let i = r * perPosition + g
                let s = src + i * d, o = dst + r * stride + g * d, f = factor[i], fv = V(repeating: f)
                var j = 0
                while j + 8 <= d { store(load(s + j) * fv, o + j); j += 8 }
                while j < d { o[j] = s[j] * f; j += 1 }
            }
        }
    }
}
