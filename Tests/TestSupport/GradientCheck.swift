// Compares an op's analytical backward with central finite differences.
import GLMCore

/// One disagreement between an analytical and a numerical gradient entry.
public struct GradientMismatch: CustomStringConvertible, Equatable {
    public var input: Int, index: Int
    public var analytic: Double, numeric: Double
    public var description: String { "input \(input)[\(index)]: analytic \(analytic) vs numeric \(numeric)" }
}

/// Finite-difference gradient checking for ops evaluated in Float.
///
/// The scalar checked is L = Σ f(x) ⊙ R for a fixed random R, summed in Double. Central differences
/// with step h have truncation error O(h²·|f‴|) ≈ 1e−4 relative for h = 1e−2 on inputs of order 1, and
/// rounding error ≈ ε_f32·|L|/h ≈ 1e−5·|L| because each output carries one f32 rounding; the default
/// tolerance |a − n| ≤ atol + rtol·max(|a|, |n|) with rtol = 1e−2, atol = 1e−3·max(1, max|a|) sits an
/// order above both, while a wrong backward is off by O(1).
public enum GradientCheck {
    public static func run(_ inputs: [Tensor], step: Float = 1e-2, rtol: Double = 1e-2, atol: Double = 1e-3,
                           samplesPerInput: Int = 40, seed: UInt64 = 7,
                           _ f: ([Tensor]) -> Tensor) -> [GradientMismatch] {
        for x in inputs { x.zeroGrad() }
        var gen = SeededGenerator(seed: seed)
        let out0 = Autograd.noGrad { f(inputs) }
        let r = Tensor.randomNormal(out0.shape, generator: &gen)
        (f(inputs) * r).sum().backward()
        func loss() -> Double {
            let out = Autograd.noGrad { f(inputs) }
            var s = 0.0
            let op = out.pointer, rp = r.pointer
            for i in 0..<out.count { s += Double(op[i]) * Double(rp[i]) }
            return s
        }
        var mismatches: [GradientMismatch] = []
        for (n, x) in inputs.enumerated() where x.requiresGrad {
            let analytic = x.grad?.scalars ?? [Float](repeating: 0, count: x.count)
            let scale = max(1, analytic.map { Double(abs($0)) }.max() ?? 0)
            var indices = Array(0..<x.count)
            if x.count > samplesPerInput {
                indices = (0..<samplesPerInput).map { _ in Int(gen.next() % UInt64(x.count)) }
            }
            for i in indices {
                let saved = x.pointer[i]
                x.pointer[i] = saved + step
                let plus = loss()
                x.pointer[i] = saved - step
                let minus = loss()
                x.pointer[i] = saved
                let numeric = (plus - minus) / (2 * Double(step))
                let a = Double(analytic[i])
                if abs(a - numeric) > atol * scale + rtol * max(abs(a), abs(numeric)) {
                    mismatches.append(GradientMismatch(input: n, index: i, analytic: a, numeric: numeric))
                }
            }
        }
        for x in inputs { x.zeroGrad() }
        return mismatches
    }

    /// Random trainable inputs of the given shapes.
    public static func inputs(_ shapes: [[Int]], seed: UInt64 = 1, std: Float = 1) -> [Tensor] {
        var gen = SeededGenerator(seed: seed)
        return shapes.map { Tensor.randomNormal($0, std: std, generator: &gen, requiresGrad: true) }
    }
}
