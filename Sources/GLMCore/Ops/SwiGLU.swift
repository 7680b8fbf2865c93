// SwiGLU on GLM's fused gate_up layout: the last dimension holds [gate | up]; out = silu(gate) ⊙ up.
import Foundation

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
                for j in 0..<n {
                    let g = gr[j]
                    yr[j] = g / (1 + Foundation.exp(-g)) * ur[j]
                }
            }
        }
        return out.recorded(from: [gateUp]) { g in
            let dx = Tensor(uninitialized: gateUp.shape)
            let gp = g.pointer, dp = dx.pointer
            Parallel.forEachChunk(rows, costPerItem: n * 6) { range in
                for r in range {
                    let gr = xp + r * two, ur = gr + n, dyr = gp + r * n
                    let dg = dp + r * two, du = dg + n
                    for j in 0..<n {
                        let x = gr[j], s = 1 / (1 + Foundation.exp(-x))
                        let silu = x * s
                        du[j] = dyr[j] * silu
                        dg[j] = dyr[j] * ur[j] * s * (1 + x * (1 - s))
                    }
                }
            }
            gateUp.accumulateGrad(dx, fresh: true)
        }
    }
}
