// A seeded, reproducible random number generator whose state can be saved and restored.
import Foundation

/// xoshiro256** seeded through SplitMix64. Deterministic across platforms; `state` round-trips
/// through checkpoints so a resumed run draws the same numbers.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    public var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public init(state: [UInt64]) {
        precondition(state.count == 4, "generator state has 4 words")
        self.state = (state[0], state[1], state[2], state[3])
    }

    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0; state.3 ^= state.1; state.1 ^= state.2; state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// Uniform in [0, 1).
    public mutating func nextUniform() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Standard normal (Box–Muller).
    public mutating func nextNormal() -> Float {
        let u1 = Double(next() >> 11) * 0x1p-53, u2 = Double(next() >> 11) * 0x1p-53
        return Float(Foundation.sqrt(-2 * Foundation.log(Swift.max(u1, 1e-300))) * Foundation.cos(2 * Double.pi * u2))
    }

    public static func == (a: SeededGenerator, b: SeededGenerator) -> Bool { a.stateWords == b.stateWords }
}

extension Tensor {
    /// Normal(mean, std) entries.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1,
                                    generator: inout SeededGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let p = t.pointer
        for i in 0..<t.count { p[i] = mean + std * generator.nextNormal() }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Uniform [low, high) entries.
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1,
                                     generator: inout SeededGenerator, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitialized: shape)
        let p = t.pointer
        for i in 0..<t.count { p[i] = low + (high - low) * generator.nextUniform() }
        t.requiresGrad = requiresGrad
        return t
    }
}
