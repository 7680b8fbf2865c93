// Grouped-query attention, FlashAttention-2 style on CPU tiles: the backward recomputes the
// probabilities from a saved row log-sum-exp, so no [heads, T, S] matrix outlives a tile.
import Foundation

/// Shapes of one attention call.
public struct AttentionShape: Sendable {
    public var batch: Int, queries: Int, keys: Int
    public var heads: Int, kvHeads: Int, headDim: Int
    /// Rows between consecutive batch entries of k and v: `keys` for dense tensors, the capacity of a
    /// KV cache whose first `keys` rows per batch entry are filled.
    public var keyRowsPerBatch: Int
    public init(batch: Int, queries: Int, keys: Int, heads: Int, kvHeads: Int, headDim: Int, keyRowsPerBatch: Int? = nil) {
        precondition(heads % kvHeads == 0, "\(heads) query heads are not a multiple of \(kvHeads) KV heads")
        precondition((keyRowsPerBatch ?? keys) >= keys, "key rows per batch below the key count")
        self.batch = batch; self.queries = queries; self.keys = keys
        self.heads = heads; self.kvHeads = kvHeads; self.headDim = headDim
        self.keyRowsPerBatch = keyRowsPerBatch ?? keys
    }
}

enum AttentionKernel {
    /// Packed query rows per tile: (query position, head of the GQA group) pairs.
    static let tileRows = 128

    /// Keys spanned by query positions t0..<t1: the union of their intervals.
    @inline(__always)
    static func keySpan(_ mask: AttentionMask, _ b: Int, _ t0: Int, _ t1: Int) -> (Int, Int) {
        var lo = Int.max, hi = 0
        for i in t0..<t1 {
            lo = Swift.min(lo, Int(mask.lower[b * mask.queries + i]))
            hi = Swift.max(hi, Int(mask.upper[b * mask.queries + i]))
        }
        return (lo, hi)
    }

    /// Copies the `group` heads of query positions t0..<t1 (row stride `stride`) into a dense
    /// `[(t1−t0)·group, D]` block (row = position·group + head), or back when `unpack` is true.
    @inline(__always)
    static func pack(_ src: UnsafeMutablePointer<Float>, stride: Int, _ dst: UnsafeMutablePointer<Float>,
                     positions: Int, width: Int, unpack: Bool) {
        for t in 0..<positions {
            if unpack { (src + t * stride).update(from: dst + t * width, count: width) }
            else { (dst + t * width).update(from: src + t * stride, count: width) }
        }
    }

    /// Turns scaled scores of a tile into probabilities in place. Row rr belongs to query position
    /// t0 + rr/group. Forward: writes each row's log-sum-exp; recompute: uses the saved one.
    @inline(__always)
    static func softmaxRows(_ s: UnsafeMutablePointer<Float>, rows: Int, nk: Int, klo: Int, group: Int,
                            mask: AttentionMask, b: Int, t0: Int, lse: UnsafeMutablePointer<Float>, recompute: Bool) {
        for rr in 0..<rows {
            let row = s + rr * nk
            let m = b * mask.queries + t0 + rr / group
            let lo = Int(mask.lower[m]) - klo, hi = Int(mask.upper[m]) - klo
            if lo > 0 { row.update(repeating: 0, count: lo) }
            if hi < nk { (row + hi).update(repeating: 0, count: nk - hi) }
            let n = hi - lo, x = row + lo
            if recompute {
                _ = FastExp.expShiftedInPlace(x, n, shift: lse[rr])
            } else {
                let mx = Kernels.max(x, n)
                let sum = FastExp.expShiftedInPlace(x, n, shift: mx)
                lse[rr] = mx + Foundation.log(sum)
                Kernels.scale(x, 1 / sum, x, n)
            }
        }
    }

    /// LSE layout: [B, KV, T, group] (row-packed like the tiles), i.e. [B, T·H] reordered per KV head.
    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
                        shape s: AttentionShape, mask: AttentionMask, scale: Float) {
        let (T, S, H, KV, D) = (s.queries, s.keys, s.heads, s.kvHeads, s.headDim)
        let group = H / KV, qStride = H * D, kStride = KV * D, width = group * D
        let tileT = Swift.max(1, tileRows / group)
        Parallel.forEachChunk(s.batch * KV, costPerItem: group * T * S * D) { items in
            let rowsMax = tileT * group
            let work = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * S)
            let qp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let op = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            defer { work.deallocate(); qp.deallocate(); op.deallocate() }
            for item in items {
                let b = item / KV, kvh = item % KV
                var t0 = 0
                while t0 < T {
                    let t1 = Swift.min(T, t0 + tileT), rows = (t1 - t0) * group
                    let (klo, khi) = keySpan(mask, b, t0, t1)
                    let nk = khi - klo
                    let qOff = (b * T + t0) * qStride + kvh * width
                    let kvOff = (b * s.keyRowsPerBatch + klo) * kStride + kvh * D
                    pack(UnsafeMutablePointer(mutating: q + qOff), stride: qStride, qp, positions: t1 - t0, width: width, unpack: false)
                    BLAS.gemm(transB: true, m: rows, n: nk, k: D, alpha: scale, a: qp, lda: D,
                              b: k + kvOff, ldb: kStride, c: work, ldc: nk)
                    softmaxRows(work, rows: rows, nk: nk, klo: klo, group: group, mask: mask, b: b, t0: t0,
                                lse: lse + (item * T + t0) * group, recompute: false)
                    BLAS.gemm(m: rows, n: D, k: nk, a: work, lda: nk, b: v + kvOff, ldb: kStride, c: op, ldc: D)
                    pack(out + qOff, stride: qStride, op, positions: t1 - t0, width: width, unpack: true)
                    t0 = t1
                }
            }
        }
    }

    static func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         out: UnsafePointer<Float>, dOut: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         shape s: AttentionShape, mask: AttentionMask, scale: Float) {
        let (T, S, H, KV, D) = (s.queries, s.keys, s.heads, s.kvHeads, s.headDim)
        let group = H / KV, qStride = H * D, kStride = KV * D, width = group * D
        let tileT = Swift.max(1, tileRows / group)
        Parallel.forEachChunk(s.batch * KV, costPerItem: group * T * S * D) { items in
            let rowsMax = tileT * group
            let p = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * S)
            let dp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * S)
            let qp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let gp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let dqp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let rowDot = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax)
            defer { p.deallocate(); dp.deallocate(); qp.deallocate(); gp.deallocate(); dqp.deallocate(); rowDot.deallocate() }
            for item in items {
                let b = item / KV, kvh = item % KV
                var t0 = 0
                while t0 < T {
                    let t1 = Swift.min(T, t0 + tileT), rows = (t1 - t0) * group
                    let (klo, khi) = keySpan(mask, b, t0, t1)
                    let nk = khi - klo
                    let qOff = (b * T + t0) * qStride + kvh * width
                    let kvOff = (b * s.keyRowsPerBatch + klo) * kStride + kvh * D
                    pack(UnsafeMutablePointer(mutating: q + qOff), stride: qStride, qp, positions: t1 - t0, width: width, unpack: false)
                    pack(UnsafeMutablePointer(mutating: dOut + qOff), stride: qStride, gp, positions: t1 - t0, width: width, unpack: false)
                    // D_i = rowsum(dO ⊙ O), rows in packed order.
                    for t in 0..<(t1 - t0) {
                        for g in 0..<group {
                            let off = qOff + t * qStride + g * D
                            rowDot[t * group + g] = Kernels.dot(dOut + off, out + off, D)
                        }
                    }
                    // P = exp(scale·QKᵀ − lse), masked.
                    BLAS.gemm(transB: true, m: rows, n: nk, k: D, alpha: scale, a: qp, lda: D,
                              b: k + kvOff, ldb: kStride, c: p, ldc: nk)
                    softmaxRows(p, rows: rows, nk: nk, klo: klo, group: group, mask: mask, b: b, t0: t0,
                                lse: UnsafeMutablePointer(mutating: lse + (item * T + t0) * group), recompute: true)
                    // dV += Pᵀ·dO
                    BLAS.gemm(transA: true, m: nk, n: D, k: rows, a: p, lda: nk, b: gp, ldb: D,
                              beta: 1, c: dv + kvOff, ldc: kStride)
                    // dP = dO·Vᵀ ; dS = P ⊙ (dP − D_i) · scale
                    BLAS.gemm(transB: true, m: rows, n: nk, k: D, a: gp, lda: D, b: v + kvOff, ldb: kStride, c: dp, ldc: nk)
                    for rr in 0..<rows {
                        let pr = p + rr * nk, dr = dp + rr * nk, c = rowDot[rr]
                        for j in 0..<nk { dr[j] = pr[j] * (dr[j] - c) * scale }
                    }
                    // dQ = dS·K ; dK += dSᵀ·Q
                    BLAS.gemm(m: rows, n: D, k: nk, a: dp, lda: nk, b: k + kvOff, ldb: kStride, c: dqp, ldc: D)
                    pack(dq + qOff, stride: qStride, dqp, positions: t1 - t0, width: width, unpack: true)
                    BLAS.gemm(transA: true, m: nk, n: D, k: rows, a: dp, lda: nk, b: qp, ldb: D,
                              beta: 1, c: dk + kvOff, ldc: kStride)
                    t0 = t1
                }
            }
        }
    }
}

extension Tensor {
    /// Scaled dot-product attention with grouped-query heads. `q` is `[B, T, heads·headDim]`, `k` and `v`
    /// are `[B, S, kvHeads·headDim]`; query head h reads KV head h / (heads/kvHeads). Softmax in f32.
    /// Only the output and one log-sum-exp per (batch, head, query) are kept for the backward.
    public static func attention(q: Tensor, k: Tensor, v: Tensor, shape: AttentionShape, mask: AttentionMask,
                                 scale: Float? = nil) -> Tensor {
        let s = shape
        precondition(q.count == s.batch * s.queries * s.heads * s.headDim, "attention: q \(q.shape) does not match \(s)")
        precondition(k.count == s.batch * s.keyRowsPerBatch * s.kvHeads * s.headDim && v.count == k.count,
                     "attention: k \(k.shape) / v \(v.shape) do not match \(s)")
        precondition(mask.batch == s.batch && mask.queries == s.queries && mask.keys == s.keys,
                     "attention: mask \(mask.batch)×\(mask.queries)×\(mask.keys) does not match \(s)")
        let scale = scale ?? 1 / Float(s.headDim).squareRoot()
        let out = Tensor(uninitialized: [s.batch, s.queries, s.heads * s.headDim])
        let lse = Tensor(uninitialized: [s.batch, s.kvHeads, s.queries, s.heads / s.kvHeads])
        AttentionKernel.forward(q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, lse: lse.pointer,
                                shape: s, mask: mask, scale: scale)
        return out.recorded(from: [q, k, v]) { [unowned out] g in
            let dq = Tensor(uninitialized: q.shape), dk = Tensor(zeros: k.shape), dv = Tensor(zeros: v.shape)
            AttentionKernel.backward(q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, dOut: g.pointer,
                                     lse: lse.pointer, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer,
                                     shape: s, mask: mask, scale: scale)
            q.accumulateGrad(dq, fresh: true)
            k.accumulateGrad(dk, fresh: true)
            v.accumulateGrad(dv, fresh: true)
        }
    }
}
