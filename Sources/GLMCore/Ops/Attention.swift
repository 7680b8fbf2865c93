// Grouped-query attention, FlashAttention-2 style on CPU tiles: the backward recomputes the
// probabilities from a saved row log-sum-exp, so no [heads, T, S] matrix outlives a tile. A tile stacks
// the query heads sharing a KV head (row = position·group + head), so it is a few OpenBLAS gemms plus
// the row kernels of AttentionSoftmax.swift.
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
    /// Packed query rows per tile: (query position, head of the GQA group) pairs. 32 rows (8 positions
    /// of a 4-head group) measured fastest on the bench shape: the fewer positions per tile, the less work
    /// above the causal diagonal, and OpenBLAS's small-matrix kernels stay near peak down to this size.
    static let tileRows = 32

    /// Keys spanned by query positions t0..<t1: the union of their intervals.
    @inline(__always)
    static func keySpan(_ lower: UnsafePointer<Int32>, _ upper: UnsafePointer<Int32>, _ t0: Int, _ t1: Int) -> (Int, Int) {
        var lo = Int.max, hi = 0
        for i in t0..<t1 {
            lo = Swift.min(lo, Int(lower[i]))
            hi = Swift.max(hi, Int(upper[i]))
        }
        return (lo, hi)
    }

    /// c[rows, keys] = alpha · a · kᵀ. With `kT` (the item's keys transposed, `[d, ldkT]`) the product is a
    /// plain NN gemm, which OpenBLAS's small-matrix kernels run 10–40% faster than the NT form on these
    /// shapes; the per-item transpose pays off once there are several query tiles.
    @inline(__always)
    static func scores(_ a: UnsafePointer<Float>, rows: Int, kT: UnsafePointer<Float>?, k: UnsafePointer<Float>, ldk: Int,
                       keys: Int, ldkT: Int, d: Int, alpha: Float, into c: UnsafeMutablePointer<Float>) {
        if let kT {
            BLAS.gemm(m: rows, n: keys, k: d, alpha: alpha, a: a, lda: d, b: kT, ldb: ldkT, c: c, ldc: keys)
        } else {
            BLAS.gemm(transB: true, m: rows, n: keys, k: d, alpha: alpha, a: a, lda: d, b: k, ldb: ldk, c: c, ldc: keys)
        }
    }

    /// LSE layout: [B, KV, T, group] (row-packed like the tiles), in base 2: lse₂ = log₂ Σ 2^(scale·log₂e·q·k).
    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
                        shape s: AttentionShape, mask: AttentionMask, scale: Float) {
        let (T, S, H, KV, D) = (s.queries, s.keys, s.heads, s.kvHeads, s.headDim)
        let group = H / KV, qStride = H * D, kStride = KV * D, width = group * D
        let tileT = Swift.max(1, tileRows / group)
        let transposeKV = T >= 4 * tileT
        mask.lower.withUnsafeBufferPointer { lowerAll in
        mask.upper.withUnsafeBufferPointer { upperAll in
        Parallel.forEachChunk(s.batch * KV, costPerItem: group * T * S * D) { items in
            let rowsMax = tileT * group
            let work = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * S)
            let qp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let op = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let inv = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax)
            let kT = UnsafeMutablePointer<Float>.allocate(capacity: transposeKV ? D * S : 0)
            defer { work.deallocate(); qp.deallocate(); op.deallocate(); inv.deallocate(); kT.deallocate() }
            for item in items {
                let b = item / KV, kvh = item % KV
                let lower = lowerAll.baseAddress! + b * T, upper = upperAll.baseAddress! + b * T
                let kvBase = b * s.keyRowsPerBatch * kStride + kvh * D
                if transposeKV { AttentionRows.transpose(k + kvBase, ld: kStride, rows: S, cols: D, kT) }
                var t0 = 0
                while t0 < T {
                    let t1 = Swift.min(T, t0 + tileT), rows = (t1 - t0) * group
                    let (klo, khi) = keySpan(lower, upper, t0, t1)
                    let nk = khi - klo
                    let qOff = (b * T + t0) * qStride + kvh * width
                    let kvOff = (b * s.keyRowsPerBatch + klo) * kStride + kvh * D
                    AttentionRows.gather(q + qOff, stride: qStride, qp, count: t1 - t0, width: width)
                    scores(qp, rows: rows, kT: transposeKV ? kT + klo : nil, k: k + kvOff, ldk: kStride, keys: nk, ldkT: S,
                           d: D, alpha: scale * AttentionRows.log2e, into: work)
                    let lseTile = lse + (item * T + t0) * group
                    for rr in 0..<rows {
                        let t = t0 + rr / group
                        let (l, i) = AttentionRows.forwardRow(work + rr * nk, nk: nk, lo: Int(lower[t]) - klo,
                                                              hi: Int(upper[t]) - klo)
                        lseTile[rr] = l; inv[rr] = i
                    }
                    BLAS.gemm(m: rows, n: D, k: nk, a: work, lda: nk, b: v + kvOff, ldb: kStride, c: op, ldc: D)
                    AttentionRows.scatterScaled(op, inv, out + qOff, stride: qStride, count: t1 - t0, width: width, d: D)
                    t0 = t1
                }
            }
        }
        }
        }
    }

    /// Writes all of dq, dk and dv (no need to zero them first).
    static func backward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         dOut: UnsafePointer<Float>, lse: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                         shape s: AttentionShape, mask: AttentionMask, scale: Float) {
        let (T, S, H, KV, D) = (s.queries, s.keys, s.heads, s.kvHeads, s.headDim)
        let group = H / KV, qStride = H * D, kStride = KV * D, width = group * D
        let tileT = Swift.max(1, tileRows / group)
        let transposeKV = T >= 4 * tileT
        mask.lower.withUnsafeBufferPointer { lowerAll in
        mask.upper.withUnsafeBufferPointer { upperAll in
        Parallel.forEachChunk(s.batch * KV, costPerItem: group * T * S * D) { items in
            let rowsMax = tileT * group
            let p = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * S)
            let dp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * S)
            let qp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let gp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let dqp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let kT = UnsafeMutablePointer<Float>.allocate(capacity: transposeKV ? D * S : 0)
            let vT = UnsafeMutablePointer<Float>.allocate(capacity: transposeKV ? D * S : 0)
            defer {
                p.deallocate(); dp.deallocate(); qp.deallocate(); gp.deallocate(); dqp.deallocate()
                kT.deallocate(); vT.deallocate()
            }
            for item in items {
                let b = item / KV, kvh = item % KV
                let lower = lowerAll.baseAddress! + b * T, upper = upperAll.baseAddress! + b * T
                let kvBase = b * s.keyRowsPerBatch * kStride + kvh * D
                for j in 0..<s.keyRowsPerBatch {  // this item's dk, dv rows (also cache rows past the keys)
                    (dk + kvBase + j * kStride).update(repeating: 0, count: D)
                    (dv + kvBase + j * kStride).update(repeating: 0, count: D)
                }
                if transposeKV {
                    AttentionRows.transpose(k + kvBase, ld: kStride, rows: S, cols: D, kT)
                    AttentionRows.transpose(v + kvBase, ld: kStride, rows: S, cols: D, vT)
                }
                var t0 = 0
                while t0 < T {
                    let t1 = Swift.min(T, t0 + tileT), rows = (t1 - t0) * group
                    let (klo, khi) = keySpan(lower, upper, t0, t1)
                    let nk = khi - klo
                    let qOff = (b * T + t0) * qStride + kvh * width
                    let kvOff = (b * s.keyRowsPerBatch + klo) * kStride + kvh * D
                    AttentionRows.gather(q + qOff, stride: qStride, qp, count: t1 - t0, width: width)
                    AttentionRows.gather(dOut + qOff, stride: qStride, gp, count: t1 - t0, width: width)
                    // S·log₂e = scale·log₂e·QKᵀ and dP·scale = scale·dO·Vᵀ, then per row P = 2^(S·log₂e − lse₂)
                    // and dS = P ⊙ (dP − D_i)·scale with D_i = rowsum(dO ⊙ O) = rowsum(P ⊙ dP).
                    scores(qp, rows: rows, kT: transposeKV ? kT + klo : nil, k: k + kvOff, ldk: kStride, keys: nk, ldkT: S,
                           d: D, alpha: scale * AttentionRows.log2e, into: p)
                    scores(gp, rows: rows, kT: transposeKV ? vT + klo : nil, k: v + kvOff, ldk: kStride, keys: nk, ldkT: S,
                           d: D, alpha: scale, into: dp)
                    let lseTile = lse + (item * T + t0) * group
                    for rr in 0..<rows {
                        let t = t0 + rr / group
                        AttentionRows.backwardRow(p + rr * nk, dp + rr * nk, nk: nk, lo: Int(lower[t]) - klo,
                                                  hi: Int(upper[t]) - klo, lse: lseTile[rr])
                    }
                    // dV += Pᵀ·dO ; dQ = dS·K ; dK += dSᵀ·Q
                    BLAS.gemm(transA: true, m: nk, n: D, k: rows, a: p, lda: nk, b: gp, ldb: D,
                              beta: 1, c: dv + kvOff, ldc: kStride)
                    BLAS.gemm(m: rows, n: D, k: nk, a: dp, lda: nk, b: k + kvOff, ldb: kStride, c: dqp, ldc: D)
                    AttentionRows.scatter(dqp, dq + qOff, stride: qStride, count: t1 - t0, width: width)
                    BLAS.gemm(transA: true, m: nk, n: D, k: rows, a: dp, lda: nk, b: qp, ldb: D,
                              beta: 1, c: dk + kvOff, ldc: kStride)
                    t0 = t1
                }
            }
        }
        }
        }
    }
}

extension Tensor {
    /// Whether `attention` of this shape now runs its tile products in bf16 (bf16 products active, AVX512_BF16,
    /// several query tiles per KV head).
    public static func attentionUsesBF16(_ shape: AttentionShape) -> Bool { AttentionKernelBF16.applies(shape) }

    /// Scaled dot-product attention with grouped-query heads. `q` is `[B, T, heads·headDim]`, `k` and `v`
    /// are `[B, S, kvHeads·headDim]`; query head h reads KV head h / (heads/kvHeads). Softmax in f32; the tile
    /// products take bf16 operands when bf16 products are active (AttentionBF16.swift).
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
        // bf16 products when active (AttentionBF16.swift), decided once for the forward and its backward.
        let bf16 = AttentionKernelBF16.applies(s)
        StepProfile.time(.attention) {
            if bf16 {
                AttentionKernelBF16.forward(q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, lse: lse.pointer,
                                            shape: s, mask: mask, scale: scale)
            } else {
                AttentionKernel.forward(q: q.pointer, k: k.pointer, v: v.pointer, out: out.pointer, lse: lse.pointer,
                                        shape: s, mask: mask, scale: scale)
            }
        }
        return out.recorded(from: [q, k, v]) { g in
            let dq = Tensor(uninitialized: q.shape), dk = Tensor(uninitialized: k.shape), dv = Tensor(uninitialized: v.shape)
            StepProfile.time(.attention) {
                if bf16 {
                    AttentionKernelBF16.backward(q: q.pointer, k: k.pointer, v: v.pointer, dOut: g.pointer,
                                                 lse: lse.pointer, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer,
                                                 shape: s, mask: mask, scale: scale)
                } else {
                    AttentionKernel.backward(q: q.pointer, k: k.pointer, v: v.pointer, dOut: g.pointer,
                                             lse: lse.pointer, dq: dq.pointer, dk: dk.pointer, dv: dv.pointer,
                                             shape: s, mask: mask, scale: scale)
                }
            }
            q.accumulateGrad(dq, fresh: true)
            k.accumulateGrad(dk, fresh: true)
            v.accumulateGrad(dv, fresh: true)
        }
    }
}
