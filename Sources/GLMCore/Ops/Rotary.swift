// Rotary position embedding on a prefix of each head, GLM's interleaved-pair layout, optional 2D (block) positions.
import Foundation

/// Rotary embedding parameters. Pair i of the rotated prefix covers dims (2i, 2i+1) and turns by
/// `position · θ^(−2i/rotaryDim)` (GPT-J "rotate every two", as transformers' GLM does). With
/// `twoDimensional`, the first half of the rotated prefix turns with the position id and the second
/// half with the block-position id, each half using frequencies over its own width (ChatGLM-6B's 2D RoPE).
/// `frequencyDim` is the width in the exponent: transformers' `int(head_dim · partial_rotary_factor)`, which may be
/// odd — it then makes ⌈d/2⌉ frequencies θ^(−2i/d) and rotates 2·⌈d/2⌉ = d + 1 dims (`rotaryDim`).
public struct RotaryConfig: Sendable, Equatable {
    public var headDim: Int
    public var rotaryDim: Int
    public var theta: Float
    public var twoDimensional: Bool
    public var frequencyDim: Int

    public init(headDim: Int, rotaryDim: Int, theta: Float, twoDimensional: Bool = false, frequencyDim: Int? = nil) {
        precondition(rotaryDim <= headDim && rotaryDim % (twoDimensional ? 4 : 2) == 0,
                     "rotary dim \(rotaryDim) must be even (a multiple of 4 for 2D) and at most head_dim \(headDim)")
        precondition(frequencyDim.map { !twoDimensional && ($0 == rotaryDim || $0 + 1 == rotaryDim) } ?? true,
                     "rotary: frequencyDim \(frequencyDim ?? 0) must be rotaryDim or rotaryDim − 1 (1D only)")
        self.headDim = headDim
        self.rotaryDim = rotaryDim
        self.theta = theta
        self.twoDimensional = twoDimensional
        self.frequencyDim = frequencyDim ?? rotaryDim
    }

    /// The rotary embedding transformers applies for `int(headDim · partialRotaryFactor)` = `dims` (odd or even).
    public static func partial(headDim: Int, dims: Int, theta: Float) -> RotaryConfig {
        RotaryConfig(headDim: headDim, rotaryDim: dims + dims % 2, theta: theta, frequencyDim: dims)
    }

    /// Inverse frequencies for a width `dim` (⌈dim/2⌉ of them), computed in Float as transformers does
    /// (`1 / θ^(arange(0, dim, 2) / dim)`).
    static func inverseFrequencies(theta: Float, dim: Int) -> [Float] {
        (0..<((dim + 1) / 2)).map { i in 1 / Foundation.pow(theta, Float(2 * i) / Float(dim)) }
    }

    /// cos/sin tables `[tokens, rotaryDim/2]`. Every layer of a forward pass (and the backward) asks for the same
    /// tables, so the last ones made are kept (`RotaryTableCache`) and handed out again for the same arguments.
    func tables(positions: [Int32], blockPositions: [Int32]?) -> (cos: [Float], sin: [Float]) {
        RotaryTableCache.shared.tables(config: self, positions: positions, blockPositions: blockPositions) {
            computeTables(positions: positions, blockPositions: blockPositions)
        }
    }

    func computeTables(positions: [Int32], blockPositions: [Int32]?) -> (cos: [Float], sin: [Float]) {
        let pairs = rotaryDim / 2
        var cosT = [Float](repeating: 0, count: positions.count * pairs)
        var sinT = cosT
        if twoDimensional {
            let inv = RotaryConfig.inverseFrequencies(theta: theta, dim: rotaryDim / 2)
            let half = pairs / 2
            for t in 0..<positions.count {
                let p = Float(positions[t]), bp = Float(blockPositions?[t] ?? 0)
                for i in 0..<half {
                    let a = p * inv[i], b = bp * inv[i]
                    cosT[t * pairs + i] = Foundation.cos(a); sinT[t * pairs + i] = Foundation.sin(a)
                    cosT[t * pairs + half + i] = Foundation.cos(b); sinT[t * pairs + half + i] = Foundation.sin(b)
                }
            }
        } else {
            let inv = RotaryConfig.inverseFrequencies(theta: theta, dim: frequencyDim)
            for t in 0..<positions.count {
                let p = Float(positions[t])
                for i in 0..<pairs {
                    let a = p * inv[i]
                    cosT[t * pairs + i] = Foundation.cos(a); sinT[t * pairs + i] = Foundation.sin(a)
                }
            }
        }
        return (cosT, sinT)
    }
}

extension Tensor {
    /// Rotates `x` (`[B, T, heads·headDim]` or `[B, T, heads, headDim]`) by token positions
    /// (`B·T` ids); `blockPositions` is required iff the config is two-dimensional.
    public static func rotary(_ x: Tensor, config: RotaryConfig, positions: [Int32], blockPositions: [Int32]? = nil) -> Tensor {
        let d = config.headDim, pairs = config.rotaryDim / 2
        let tokens = positions.count
        precondition(x.count % (tokens * d) == 0, "rotary: \(x.shape) does not hold \(tokens) tokens of head_dim \(d)")
        precondition(config.twoDimensional == (blockPositions != nil), "rotary: block positions given iff 2D")
        precondition(blockPositions == nil || blockPositions!.count == tokens, "rotary: block positions count")
        let heads = x.count / (tokens * d)
        let (cosT, sinT) = config.tables(positions: positions, blockPositions: blockPositions)
        func apply(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, inverse: Bool) {
            let sign: Float = inverse ? -1 : 1
            cosT.withUnsafeBufferPointer { cp in
                sinT.withUnsafeBufferPointer { sp in
                    Parallel.forEachChunk(tokens, costPerItem: heads * d * 4) { range in
                    for t in range {
                        let c = cp.baseAddress! + t * pairs, s = sp.baseAddress! + t * pairs
                        for h in 0..<heads {
                            let base = (t * heads + h) * d
                            let xs = src + base, ys = dst + base
                            for i in 0..<pairs {
                                let x0 = xs[2 * i], x1 = xs[2 * i + 1], si = sign * s[i]
                                ys[2 * i] = x0 * c[i] - x1 * si
                                ys[2 * i + 1] = x1 * c[i] + x0 * si
                            }
                            if pairs * 2 < d && src != UnsafePointer(dst) {
                                (ys + 2 * pairs).update(from: xs + 2 * pairs, count: d - 2 * pairs)
                            }
                        }
                    }
                    }
                }
            }
        }
        let out = Tensor(uninitialized: x.shape)
        apply(x.pointer, out.pointer, inverse: false)
        return out.recorded(from: [x]) { g in
            let dx = Tensor(uninitialized: x.shape)
            apply(g.pointer, dx.pointer, inverse: true)
            x.accumulateGrad(dx, fresh: true)
        }
    }
}
