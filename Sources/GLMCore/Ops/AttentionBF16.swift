// The attention tiles of Attention.swift with bf16 products (`training.precision: bf16` on AVX512_BF16): the same
// FlashAttention-2 loop, softmax and log-sum-exp in f32, but each of the seven tile products takes bf16 operands with
// f32 sums (PackedBF16GEMM.c), as PyTorch's CPU autocast runs scaled_dot_product_attention in bf16. Each (batch,
// KV head) item packs its keys and values once as bf16 pairs along the summed dimension (along the head dimension
// for Q·Kᵀ and dO·Vᵀ, along the keys for P·V and dS·K); each tile rounds its rows as it goes.
import CGLMKernels

enum AttentionKernelBF16 {
    /// Whether attention of this shape runs here: bf16 products active, AVX512_BF16 kernels on, and several query
    /// tiles per item (training and scoring; decode keeps the f32 tiles, which need no packing per token).
    static func applies(_ s: AttentionShape) -> Bool {
        guard MixedPrecision.isActive && LowRankMatMul.bf16Available else { return false }
        let tileT = Swift.max(1, AttentionKernel.tileRows / (s.heads / s.kvHeads))
        return s.queries >= 4 * tileT
    }

    /// Packs `rows × cols` (element (i, j) at src[i·si + j·sj]) as bf16 pairs along i: [(rows + 1) / 2, cols].
    @inline(__always)
    static func pack(_ rows: Int, _ cols: Int, _ src: UnsafePointer<Float>, si: Int, sj: Int, _ dst: UnsafeMutablePointer<UInt32>) {
        glmk_pack_bf16_pairs(rows, cols, src, si, sj, dst)
    }

    /// C = beta·C + alpha·A·B on pairs (see glmk_bf16_gemm_packed).
    @inline(__always)
    static func gemm(m: Int, n: Int, k2: Int, alpha: Float = 1, a: UnsafePointer<UInt32>, sam: Int, sak: Int,
                     b: UnsafePointer<UInt32>, ldb: Int, beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = glmk_bf16_gemm_packed(m, n, k2, alpha, a, sam, sak, b, ldb, beta, c, ldc)
    }

    /// Rows of `src` (leading dimension `lds`) as pairs along the row, `shift` 0 or 1 (see glmk_bf16_round_pairs).
    @inline(__always)
    static func roundRows(_ rows: Int, _ n: Int, _ src: UnsafePointer<Float>, lds: Int, shift: Int,
                          _ dst: UnsafeMutablePointer<UInt32>, ldd: Int) {
        _ = glmk_bf16_round_pairs(rows, n, src, lds, Int32(shift), dst, ldd)
    }

    static func forward(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        out: UnsafeMutablePointer<Float>, lse: UnsafeMutablePointer<Float>,
                        shape s: AttentionShape, mask: AttentionMask, scale: Float) {
        let (T, S, H, KV, D) = (s.queries, s.keys, s.heads, s.kvHeads, s.headDim)
        let group = H / KV, qStride = H * D, kStride = KV * D, width = group * D
        let tileT = Swift.max(1, AttentionKernel.tileRows / group)
        let (D2, S2) = ((D + 1) / 2, (S + 1) / 2)
        mask.lower.withUnsafeBufferPointer { lowerAll in
        mask.upper.withUnsafeBufferPointer { upperAll in
        Parallel.forEachChunk(s.batch * KV, costPerItem: group * T * S * D) { items in
            let rowsMax = tileT * group
            let work = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * S)
            let qp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let op = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let inv = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax)
            let kd = UnsafeMutablePointer<UInt32>.allocate(capacity: D2 * S)     // K pairs along d: [D2, S]
            let vs = UnsafeMutablePointer<UInt32>.allocate(capacity: S2 * D)     // V pairs along keys: [S2, D]
            let qa = UnsafeMutablePointer<UInt32>.allocate(capacity: rowsMax * D2)
            let pa = UnsafeMutablePointer<UInt32>.allocate(capacity: rowsMax * (S2 + 1))
            defer {
                work.deallocate(); qp.deallocate(); op.deallocate(); inv.deallocate()
                kd.deallocate(); vs.deallocate(); qa.deallocate(); pa.deallocate()
            }
            for item in items {
                let b = item / KV, kvh = item % KV
                let lower = lowerAll.baseAddress! + b * T, upper = upperAll.baseAddress! + b * T
                let kvBase = b * s.keyRowsPerBatch * kStride + kvh * D
                pack(D, S, k + kvBase, si: 1, sj: kStride, kd)
                pack(S, D, v + kvBase, si: kStride, sj: 1, vs)
                var t0 = 0
                while t0 < T {
                    let t1 = Swift.min(T, t0 + tileT), rows = (t1 - t0) * group
                    let (klo, khi) = AttentionKernel.keySpan(lower, upper, t0, t1)
                    let nk = khi - klo
                    let qOff = (b * T + t0) * qStride + kvh * width
                    AttentionRows.gather(q + qOff, stride: qStride, qp, count: t1 - t0, width: width)
                    roundRows(rows, D, qp, lds: D, shift: 0, qa, ldd: D2)
                    gemm(m: rows, n: nk, k2: D2, alpha: scale * AttentionRows.log2e, a: qa, sam: D2, sak: 1,
                         b: kd + klo, ldb: S, c: work, ldc: nk)
                    let lseTile = lse + (item * T + t0) * group
                    for rr in 0..<rows {
                        let t = t0 + rr / group
                        let (l, i) = AttentionRows.forwardRow(work + rr * nk, nk: nk, lo: Int(lower[t]) - klo,
                                                              hi: Int(upper[t]) - klo)
                        lseTile[rr] = l; inv[rr] = i
                    }
                    // P·V over key pairs starting at an even key (a leading 0 when klo is odd).
                    let shift = klo & 1, k2 = (nk + shift + 1) / 2
                    roundRows(rows, nk, work, lds: nk, shift: shift, pa, ldd: k2)
                    gemm(m: rows, n: D, k2: k2, a: pa, sam: k2, sak: 1, b: vs + (klo - shift) / 2 * D, ldb: D, c: op, ldc: D)
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
        let tileT = Swift.max(1, AttentionKernel.tileRows / group)
        let (D2, S2) = ((D + 1) / 2, (S + 1) / 2)
        mask.lower.withUnsafeBufferPointer { lowerAll in
        mask.upper.withUnsafeBufferPointer { upperAll in
        Parallel.forEachChunk(s.batch * KV, costPerItem: group * T * S * D) { items in
            let rowsMax = tileT * group, R2 = (rowsMax + 1) / 2
            let p = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * S)
            let dp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * S)
            let qp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let gp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let dqp = UnsafeMutablePointer<Float>.allocate(capacity: rowsMax * D)
            let kd = UnsafeMutablePointer<UInt32>.allocate(capacity: D2 * S)     // K pairs along d
            let vd = UnsafeMutablePointer<UInt32>.allocate(capacity: D2 * S)     // V pairs along d
            let ks = UnsafeMutablePointer<UInt32>.allocate(capacity: S2 * D)     // K pairs along keys
            let qa = UnsafeMutablePointer<UInt32>.allocate(capacity: rowsMax * D2)
            let ga = UnsafeMutablePointer<UInt32>.allocate(capacity: rowsMax * D2)
            let qr = UnsafeMutablePointer<UInt32>.allocate(capacity: R2 * D)     // Q rows paired: [R2, D]
            let gr = UnsafeMutablePointer<UInt32>.allocate(capacity: R2 * D)     // dO rows paired
            let tr = UnsafeMutablePointer<UInt32>.allocate(capacity: R2 * S)     // P or dS rows paired: [R2, nk]
            let sa = UnsafeMutablePointer<UInt32>.allocate(capacity: rowsMax * (S2 + 1))
            defer {
                p.deallocate(); dp.deallocate(); qp.deallocate(); gp.deallocate(); dqp.deallocate()
                kd.deallocate(); vd.deallocate(); ks.deallocate(); qa.deallocate(); ga.deallocate()
                qr.deallocate(); gr.deallocate(); tr.deallocate(); sa.deallocate()
            }
            for item in items {
                let b = item / KV, kvh = item % KV
                let lower = lowerAll.baseAddress! + b * T, upper = upperAll.baseAddress! + b * T
                let kvBase = b * s.keyRowsPerBatch * kStride + kvh * D
                for j in 0..<s.keyRowsPerBatch {  // this item's dk, dv rows (also cache rows past the keys)
                    (dk + kvBase + j * kStride).update(repeating: 0, count: D)
                    (dv + kvBase + j * kStride).update(repeating: 0, count: D)
                }
                pack(D, S, k + kvBase, si: 1, sj: kStride, kd)
                pack(D, S, v + kvBase, si: 1, sj: kStride, vd)
                pack(S, D, k + kvBase, si: kStride, sj: 1, ks)
                var t0 = 0
                while t0 < T {
                    let t1 = Swift.min(T, t0 + tileT), rows = (t1 - t0) * group, r2 = (rows + 1) / 2
                    let (klo, khi) = AttentionKernel.keySpan(lower, upper, t0, t1)
                    let nk = khi - klo
                    let qOff = (b * T + t0) * qStride + kvh * width
                    let kvOff = (b * s.keyRowsPerBatch + klo) * kStride + kvh * D
                    AttentionRows.gather(q + qOff, stride: qStride, qp, count: t1 - t0, width: width)
                    AttentionRows.gather(dOut + qOff, stride: qStride, gp, count: t1 - t0, width: width)
                    roundRows(rows, D, qp, lds: D, shift: 0, qa, ldd: D2)
                    roundRows(rows, D, gp, lds: D, shift: 0, ga, ldd: D2)
                    gemm(m: rows, n: nk, k2: D2, alpha: scale * AttentionRows.log2e, a: qa, sam: D2, sak: 1,
                         b: kd + klo, ldb: S, c: p, ldc: nk)
                    gemm(m: rows, n: nk, k2: D2, alpha: scale, a: ga, sam: D2, sak: 1, b: vd + klo, ldb: S, c: dp, ldc: nk)
                    let lseTile = lse + (item * T + t0) * group
                    for rr in 0..<rows {
                        let t = t0 + rr / group
                        AttentionRows.backwardRow(p + rr * nk, dp + rr * nk, nk: nk, lo: Int(lower[t]) - klo,
                                                  hi: Int(upper[t]) - klo, lse: lseTile[rr])
                    }
                    // dV += Pᵀ·dO and dK += dSᵀ·Q over pairs of tile rows.
                    pack(rows, D, gp, si: D, sj: 1, gr)
                    pack(rows, D, qp, si: D, sj: 1, qr)
                    pack(rows, nk, p, si: nk, sj: 1, tr)
                    gemm(m: nk, n: D, k2: r2, a: tr, sam: 1, sak: nk, b: gr, ldb: D, beta: 1, c: dv + kvOff, ldc: kStride)
                    pack(rows, nk, dp, si: nk, sj: 1, tr)
                    gemm(m: nk, n: D, k2: r2, a: tr, sam: 1, sak: nk, b: qr, ldb: D, beta: 1, c: dk + kvOff, ldc: kStride)
                    // dQ = dS·K over key pairs starting at an even key.
                    let shift = klo & 1, k2 = (nk + shift + 1) / 2
                    roundRows(rows, nk, dp, lds: nk, shift: shift, sa, ldd: k2)
                    gemm(m: rows, n: D, k2: k2, a: sa, sam: k2, sak: 1, b: ks + (klo - shift) / 2 * D, ldb: D, c: dqp, ldc: D)
                    AttentionRows.scatter(dqp, dq + qOff, stride: qStride, count: t1 - t0, width: width)
                    t0 = t1
                }
            }
        }
        }
        }
    }
}
