// LowRankMatMul's three products with bf16 operands and f32 sums (LowRankBF16.c, AVX512_BF16), split over the cores
// as the f32 ones are. The small operand (a LoRA A or B, or a `[rows, r]` intermediate) is given with element
// strides and packed once per call into bf16 pairs along the summed dimension; the big one (an activation or a
// gradient, f32) is rounded inside the kernels. Callers check `bf16Available` first.
import CGLMKernels
import Foundation

extension LowRankMatMul {
    /// Whether the bf16 kernels run here: AVX512_BF16 present, the C kernels not turned off, and the environment
    /// does not set `GLMTRAIN_LORA_BF16=0` (for A/B measurements: LoRA's products then stay f32 under bf16).
    public static var bf16Available: Bool { glmk_has_avx512_bf16() != 0 && BF16Kernels.useCKernels && bf16Allowed }
    static let bf16Allowed = ProcessInfo.processInfo.environment["GLMTRAIN_LORA_BF16"] != "0"

    /// `src` (element (k, n) at `src[k·sk + n·sn]`, k < K, n < N) packed as bf16 pairs along k.
    static func packedPairs(_ K: Int, _ N: Int, _ src: UnsafePointer<Float>, sk: Int, sn: Int) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: Swift.max(1, (K + 1) / 2 * N))
        out.withUnsafeMutableBufferPointer { glmk_pack_bf16_pairs(K, N, src, sk, sn, $0.baseAddress) }
        return out
    }

    /// C[m, r] = alpha · X[m, k] · W with W[p, j] = `w[p·wsk + j·wsj]` (`[k, r]`).
    public static func ntBF16(m: Int, r: Int, k: Int, alpha: Float = 1, x: UnsafePointer<Float>, ldx: Int,
                              w: UnsafePointer<Float>, wsk: Int, wsj: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(bf16Available, "bf16 low-rank kernels used without AVX512_BF16")
        guard m > 0, r > 0 else { return }
        let wp = packedPairs(k, r, w, sk: wsk, sn: wsj)
        let k2 = (k + 1) / 2
        wp.withUnsafeBufferPointer { wpp in
            Parallel.forEachChunk(m, costPerItem: r * k / 2, chunksPerWorker: 2) { rows in
                let scratch = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * k2 + 16)
                defer { scratch.deallocate() }
                _ = glmk_lowrank_nt_bf16(rows.count, r, k, alpha, x + rows.lowerBound * ldx, ldx, wpp.baseAddress,
                                         c + rows.lowerBound * ldc, ldc, scratch)
            }
        }
    }

    /// C[m, n] = beta · C + alpha · D[m, r] · W with W[j, q] = `w[j·wsj + q·wsn]` (`[r, n]`; beta 0 does not read C).
    public static func nnBF16(m: Int, n: Int, r: Int, alpha: Float = 1, d: UnsafePointer<Float>, ldd: Int,
                              w: UnsafePointer<Float>, wsj: Int, wsn: Int, beta: Float = 0,
                              c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(bf16Available, "bf16 low-rank kernels used without AVX512_BF16")
        guard m > 0, n > 0 else { return }
        let wp = packedPairs(r, n, w, sk: wsj, sn: wsn)
        let r2 = (r + 1) / 2
        wp.withUnsafeBufferPointer { wpp in
            Parallel.forEachChunk(m, costPerItem: r * n / 2, chunksPerWorker: 2) { rows in
                let scratch = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * r2 + 1)
                defer { scratch.deallocate() }
                _ = glmk_lowrank_nn_bf16(rows.count, n, r, alpha, d + rows.lowerBound * ldd, ldd, wpp.baseAddress, beta,
                                         c + rows.lowerBound * ldc, ldc, scratch)
            }
        }
    }

    /// C[r, n] = alpha · Pᵀ · Q with P `[m, r]` and Q `[m, n]` (the gradient of a LoRA matrix).
    public static func tnBF16(r: Int, n: Int, m: Int, alpha: Float = 1, p: UnsafePointer<Float>, ldp: Int,
                              q: UnsafePointer<Float>, ldq: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(bf16Available, "bf16 low-rank kernels used without AVX512_BF16")
        guard r > 0, n > 0 else { return }
        let pp = packedPairs(m, r, p, sk: ldp, sn: 1)
        let blocks = (n + 31) / 32
        pp.withUnsafeBufferPointer { ppp in
            Parallel.forEachChunk(blocks, costPerItem: 16 * r * m, chunksPerWorker: 2) { range in
                let lo = range.lowerBound * 32, hi = Swift.min(n, range.upperBound * 32)
                _ = glmk_lowrank_tn_bf16(r, hi - lo, m, alpha, ppp.baseAddress, q + lo, ldq, c + lo, ldc)
            }
        }
    }
}

extension LowRankMatMul {
    /// C[m, r] = alpha · X · W with X's rows already bf16 (`xBits`, leading dimension `ldx` elements; `k` and `ldx`
    /// even, so each row is whole pairs) and W[p, j] = `w[p·wsk + j·wsj]` (`[k, r]`, f32, packed here).
    public static func ntBF16(m: Int, r: Int, k: Int, alpha: Float = 1, xBits: UnsafePointer<UInt16>, ldx: Int,
                              w: UnsafePointer<Float>, wsk: Int, wsj: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(bf16Available && k % 2 == 0 && ldx % 2 == 0, "bf16 pairs need AVX512_BF16 and even k and ldx")
        guard m > 0, r > 0 else { return }
        let wp = packedPairs(k, r, w, sk: wsk, sn: wsj)
        xBits.withMemoryRebound(to: UInt32.self, capacity: Swift.max(1, m * ldx / 2)) { xp in
            wp.withUnsafeBufferPointer { wpp in
                Parallel.forEachChunk(m, costPerItem: r * k / 2, chunksPerWorker: 2) { rows in
                    _ = glmk_lowrank_nt_bf16_pairs(rows.count, r, k / 2, alpha, xp + rows.lowerBound * (ldx / 2), ldx / 2,
                                                   wpp.baseAddress, c + rows.lowerBound * ldc, ldc)
                }
            }
        }
    }
}
