// SwiGLU on GLM's fused gate_up layout: the last dimension holds [gate | up]; out = silu(gate) ⊙ up.
// With AVX-512 (and the C kernels on) each row runs on SwiGLU.c, the same operations bit for bit.
import CGLMKernels
import Foundation

enum SwiGLUKernel {
    /// Whether the AVX-512 kernels of SwiGLU.c run (same results as the Swift loops, which tests check).
    static var useC: Bool { BF16Kernels.cKernelISA >= 2 && BF16Kernels.useCKernels }
}

extension Tensor {
    /// `[..., 2I]` → `[..., I]`, gate rows first (as `mlp.gate_up_proj` writes them).
    public static func swiglu(_ gateUp: Tensor) -> Tensor {
        let two = gateUp.shape.last!
        precondition(two % 2 == 0, "gate_up last dimension \(two) is odd")
        let n = two / 2, rows = gateUp.count / max(two, 1)
        let out = Tensor(uninitialized: Array(gateUp.shape.dropLast()) + [n])
        let xp = gateUp.pointer, op = out.pointer
        Parallel.forEachChunk(rows, costPerItem: n * 4) { range in
            for r in range {
                let gr = xp + r * two, ur = gr + n, yr = op + r * n
                if SwiGLUKernel.useC && glmk_swiglu_forward(n, gr, ur, yr) != 0 { continue }
                var j = 0
                while j + 8 <= n {
                    let g = UnsafeRawPointer(gr + j).loadUnaligned(as: SIMD8<Float>.self)
                    let u = UnsafeRawPointer(ur + j).loadUnaligned(as: SIMD8<Float>.self)
                    let y = g / (1 + FastExp.exp(-g)) * u
                    UnsafeMutableRawPointer(yr + j).storeBytes(of: y, as: SIMD8<Float>.self)
                    j += 8
                }
                while j < n { let g = gr[j]; yr[j] = g / (1 + FastExp.exp(-g)) * ur[j]; j += 1 }
            }
        }
        return out.recorded(from: [gateUp]) { g in
            let dx = Tensor(uninitialized: gateUp.shape)
            let gp = g.pointer, dp = dx.pointer
            Parallel.forEachChunk(rows, costPerItem: n * 6) { range in
                for r in range {
                    let gr = xp + r * two, ur = gr + n, dyr = gp + r * n
                    let dg = dp + r * two, du = dg + n
                    if SwiGLUKernel.useC && glmk_swiglu_backward(n, gr, ur, dyr, dg, du) != 0 { continue }
                    var j = 0
                    while j + 8 <= n {
                        let x = UnsafeRawPointer(gr + j).loadUnaligned(as: SIMD8<Float>.self)
                        let u = UnsafeRawPointer(ur + j).loadUnaligned(as: SIMD8<Float>.self)
                        let dy = UnsafeRawPointer(dyr + j).loadUnaligned(as: SIMD8<Float>.self)
                        let s = 1 / (1 + FastExp.exp(-x))
                        UnsafeMutableRawPointer(du + j).storeBytes(of: dy * x * s, as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(dg + j).storeBytes(of: dy * u * s * (1 + x * (1 - s)), as: SIMD8<Float>.self)
                        j += 8
                    }
                    while j < n {
                        let x = gr[j], s = 1 / (1 + FastExp.exp(-x))
                        du[j] = dyr[j] * x * s
                        dg[j] = dyr[j] * ur[j] * s * (1 + x * (1 - s))
                        j += 1
                    }
                }
            }
            gateUp.accumulateGrad(dx, fresh: true)
        }
    }
}

extension Tensor {
    /// silu(gate) ⊙ up for separate `gate` and `up` tensors of one shape (the `gate_proj` / `up_proj` layout of
    /// Llama-style MLPs such as glm4_moe's dense and shared experts).
    public static func swiglu(gate: Tensor, up: Tensor) -> Tensor {
        precondition(gate.shape == up.shape, "swiglu: gate \(gate.shape) and up \(up.shape) differ")
        let n = gate.count
        let out = Tensor(uninitialized: gate.shape)
        let gp = gate.pointer, upp = up.pointer, op = out.pointer
        Parallel.forEachChunk(n, costPerItem: 4) { range in
            let lo = range.lowerBound
            if SwiGLUKernel.useC && glmk_swiglu_forward(range.count, gp + lo, upp + lo, op + lo) != 0 { return }
            for j in range { let x = gp[j]; op[j] = x / (1 + FastExp.exp(-x)) * upp[j] }
        }
        return out.recorded(from: [gate, up]) { g in
            let dg = gate.requiresGrad ? Tensor(uninitialized: gate.shape) : nil
            let du = up.requiresGrad ? Tensor(uninitialized: up.shape) : nil
            let dy = g.pointer, dgp = dg?.pointer, dup = du?.pointer
            Parallel.forEachChunk(n, costPerItem: 6) { range in
                let lo = range.lowerBound
                if SwiGLUKernel.useC && glmk_swiglu_backward(range.count, gp + lo, upp + lo, dy + lo, dgp.map { $0 + lo },
                                                             dup.map { $0 + lo }) != 0 { return }
                for j in range {
                    let x = gp[j], s = 1 / (1 + FastExp.exp(-x))
                    dup?[j] = dy[j] * x * s
                    dgp?[j] = dy[j] * upp[j] * s * (1 + x * (1 - s))
                }
            }
            if let dg { gate.accumulateGrad(dg, fresh: true) }
            if let du { up.accumulateGrad(du, fresh: true) }
        }
    }
}
