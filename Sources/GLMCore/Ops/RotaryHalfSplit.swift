// Rotary position embedding in the half-split (GPT-NeoX, `rotate_half`) layout on a prefix of each head, as
// transformers' glm4_moe (and Llama-family models) apply it: dim j of the rotated prefix pairs with j + rot/2.
// GLM-4's interleaved pairs (2i, 2i+1) are `Tensor.rotary` (Rotary.swift); the frequencies are the same.
import Foundation

extension Tensor {
    /// Rotates the first `config.rotaryDim` dims of each head of `x` (`[B, T, heads·headDim]` or
    /// `[B, T, heads, headDim]`) by token positions (`B·T` ids): for j < rot/2, at angle `pos · θ^(−2j/rot)`,
    /// x'_j = x_j·cos − x_{j+rot/2}·sin and x'_{j+rot/2} = x_{j+rot/2}·cos + x_j·sin; dims ≥ rot pass through.
    /// cos/sin are made in f32 from f32 inverse frequencies, as transformers does.
    public static func rotaryHalfSplit(_ x: Tensor, config: RotaryConfig, positions: [Int32]) -> Tensor {
        precondition(!config.twoDimensional, "rotaryHalfSplit: 2D rotary has no half-split form")
        let d = config.headDim, half = config.rotaryDim / 2
        let tokens = positions.count
        precondition(tokens > 0 && x.count % (tokens * d) == 0, "rotaryHalfSplit: \(x.shape) does not hold \(tokens) tokens of head_dim \(d)")
        let heads = x.count / (tokens * d)
        let (cosT, sinT) = config.tables(positions: positions, blockPositions: nil)
        func apply(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, inverse: Bool) {
            let sign: Float = inverse ? -1 : 1
            cosT.withUnsafeBufferPointer { cp in
                sinT.withUnsafeBufferPointer { sp in
                    Parallel.forEachChunk(tokens, costPerItem: heads * d * 4) { range in
                        for t in range {
                            let c = cp.baseAddress! + t * half, s = sp.baseAddress! + t * half
                            for h in 0..<heads {
                                let base = (t * heads + h) * d
                                let xs = src + base, ys = dst + base
                                for j in 0..<half {
                                    let x0 = xs[j], x1 = xs[j + half], sj = sign * s[j]
                                    ys[j] = x0 * c[j] - x1 * sj
                                    ys[j + half] = x1 * c[j] + x0 * sj
                                }
                                if 2 * half < d { (ys + 2 * half).update(from: xs + 2 * half, count: d - 2 * half) }
                            }
                        }
                    }
                }
            }
        }
        let out = Tensor(uninitialized: x.shape)
        apply(x.pointer, out.pointer, inverse: false)
        return out.recorded(from: [x]) { g in
            // The rotation is orthogonal: its transpose is the rotation by the opposite angle.
            let dx = Tensor(uninitialized: x.shape)
            apply(g.pointer, dx.pointer, inverse: true)
            x.accumulateGrad(dx, fresh: true)
        }
    }
}
