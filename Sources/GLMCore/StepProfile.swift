// Where a training step's time goes: seconds spent in matrix products (linear layers, LoRA, the LM head; f32, bf16
// weights or bf16 compute) and in attention (its kernel, forward and backward), accumulated while `enabled`.
// `glm-train bench train` prints them beside the step's forward / backward / optimizer split; everything else
// (norms, rotary, SwiGLU, the loss's softmax, copies) is the remainder. Off by default: no cost when off beyond a
// branch.
import Foundation

public enum StepProfile {
    public enum Category: Int, CaseIterable, Sendable {
        case matrixProducts, adapterProducts, attention
        public var name: String {
            switch self {
            case .matrixProducts: "matrix products"
            case .adapterProducts: "LoRA low-rank products"
            case .attention: "attention"
            }
        }
    }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) static var seconds = [Double](repeating: 0, count: Category.allCases.count)
    /// Nesting: time inside an already timed region (attention's own products) is not counted again.
    nonisolated(unsafe) static var depth = 0

    /// Runs `body`, adding its wall time to `category` when profiling (and not inside another timed region).
    @inline(__always)
    public static func time<R>(_ category: Category, _ body: () throws -> R) rethrows -> R {
        guard enabled && depth == 0 else { return try body() }
        depth += 1
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            seconds[category.rawValue] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            depth -= 1
        }
        return try body()
    }

    /// Seconds spent rounding matrix-product operands to bf16: a part of the products' time, counted on its own.
    nonisolated(unsafe) static var roundingSeconds = 0.0

    /// Runs `body`, adding its wall time to the rounding seconds when profiling (nested or not).
    @inline(__always)
    public static func timeRounding<R>(_ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer { roundingSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        return try body()
    }

    /// The accumulated seconds by category, and zeroes them.
    public static func take() -> [(Category, Double)] {
        defer { seconds = seconds.map { _ in 0 }; roundingSeconds = 0 }
        return Category.allCases.map { ($0, seconds[$0.rawValue]) }
    }

    /// The rounding seconds accumulated since the last `take`, and zeroes them.
    public static func takeRounding() -> Double {
        defer { roundingSeconds = 0 }
        return roundingSeconds
    }
}
