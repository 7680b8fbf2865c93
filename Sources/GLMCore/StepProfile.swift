// Where a training step's time goes: seconds spent in matrix products (linear layers, LoRA, the LM head; f32, bf16
// weights or bf16 compute) and in attention (its kernel, forward and backward), accumulated while `enabled`.
// `glm-train bench train` prints them beside the step's forward / backward / optimizer split; everything else
// (norms, rotary, SwiGLU, the loss's softmax, copies) is the remainder. Off by default: no cost when off beyond a
// branch.
import Foundation

public enum StepProfile {
    public enum Category: Int, CaseIterable, Sendable {
        case matrixProducts, attention
        public var name: String { self == .matrixProducts ? "matrix products" : "attention" }
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

    /// The accumulated seconds by category, and zeroes them.
    public static func take() -> [(Category, Double)] {
        defer { seconds = seconds.map { _ in 0 } }
        return Category.allCases.map { ($0, seconds[$0.rawValue]) }
    }
}
