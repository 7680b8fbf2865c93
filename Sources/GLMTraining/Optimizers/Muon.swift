// Muon (MomentUm Orthogonalized by Newton–Schulz) for 2-D hidden weight matrices, following KellerJordan/Muon's
// `muon_update` and `zeropower_via_newtonschulz5`, with the Newton–Schulz iteration in f32 on OpenBLAS sgemm.
import Foundation
import GLMCore

/// Muon: SGD with Nesterov momentum whose update is replaced by (approximately) the nearest semi-orthogonal
/// matrix before it is applied. Per parameter W [rows, cols] with gradient G (Keller Jordan's reference order):
///
///     M ← M + (1 − μ)(G − M)                      momentum as an EMA (`momentum.lerp_(grad, 1 − μ)`)
///     U ← M − (1 − μ)(M − G)  (Nesterov)  or M    (`grad.lerp(momentum, μ)` = (1 − μ)G + μM)
///     O ← NS₅(U)                                   `orthogonalize`: ≈ U′ S′ V′ᵀ with S′ᵢᵢ ∈ ~(0.7, 1.2)
///     W ← W·(1 − lr·wd)                            decoupled weight decay with the unscaled rate
///     W ← W − lr·s·O                               s = `scale.factor(rows:cols:)`
///
/// The EMA momentum of the reference is (1 − μ) times Moonlight's sum form (B ← μB + G, update G + μB); the
/// Frobenius normalisation inside NS₅ removes that constant, so both give the same update (up to the 1e−7 guard).
/// The reference runs NS₅ in bf16; this runs it in f32. Muon is meant for hidden matrices only: route embeddings,
/// the output head, norms and biases to AdamW (`MuonWithAdamW` does). A parameter of rank > 2 is viewed as
/// [shape[0], rest] as the reference does for convolution filters; rank < 2 is a programming error.
public final class Muon {
    /// How the orthogonalised update is scaled for a [rows, cols] matrix.
    public enum Scale: String, Sendable, CaseIterable {
        /// Keller Jordan's reference: sqrt(max(1, rows/cols)) (rows = output features). The learning rate is then
        /// in spectral-norm units per update (reference default 0.02).
        case original
        /// Moonlight ("Muon is Scalable for LLM Training"): 0.2·sqrt(max(rows, cols)), which matches the update RMS
        /// of AdamW so that AdamW's learning rate and weight decay can be reused (e.g. 1e−3, wd 0.1).
        case moonlight

        public func factor(rows: Int, cols: Int) -> Float {
            switch self {
            case .original: return Float(max(1, Double(rows) / Double(cols)).squareRoot())
            case .moonlight: return Float(0.2 * Double(max(rows, cols)).squareRoot())
            }
        }
    }

    /// Quintic Newton–Schulz coefficients (a, b, c) of the reference.
    public static let coefficients: (a: Float, b: Float, c: Float) = (3.4445, -4.7750, 2.0315)

    public var momentum: Float
    public var nesterov: Bool
    public var nsSteps: Int
    public var scale: Scale
    /// Added to the Frobenius norm before dividing by it.
    public var eps: Float
    /// Number of updates applied so far.
    public private(set) var stepCount = 0
    /// Momentum buffers by parameter name (shaped like the parameter).
    public private(set) var momentumBuffers: [String: Tensor] = [:]

    public init(momentum: Float = 0.95, nesterov: Bool = true, nsSteps: Int = 5, scale: Scale = .original,
                eps: Float = 1e-7) {
        precondition(nsSteps >= 0, "Muon: nsSteps must be ≥ 0")
        self.momentum = momentum; self.nesterov = nesterov; self.nsSteps = nsSteps; self.scale = scale; self.eps = eps
    }

    /// The [rows, cols] view Muon uses for a parameter shape: itself for rank 2, [shape[0], rest] above; nil below.
    public static func matrixShape(_ shape: [Int]) -> (rows: Int, cols: Int)? {
        guard shape.count >= 2 else { return nil }
        return (shape[0], shape.dropFirst().reduce(1, *))
    }

    /// Applies one update with learning rate `lr` (times each parameter's `learningRateScale`) to every parameter
    /// that has a gradient. Gradients are read, never modified.
    public func step(_ parameters: [TrainableParameter], lr: Float) {
        stepCount += 1
        for p in parameters {
            guard let g = p.tensor.grad else { continue }
            guard let (rows, cols) = Muon.matrixShape(p.tensor.shape) else {
                preconditionFailure("Muon: parameter '\(p.name)' has shape \(p.tensor.shape); Muon updates matrices only (optimise it with AdamW, e.g. through MuonWithAdamW)")
            }
            let n = p.tensor.count
            let m: Tensor
            if let existing = momentumBuffers[p.name] {
                precondition(existing.count == n, "Muon: momentum of '\(p.name)' has shape \(existing.shape), parameter \(p.tensor.shape)")
                m = existing
            } else {
                m = Tensor(zeros: p.tensor.shape)
                momentumBuffers[p.name] = m
            }
            let u = Tensor(uninitialized: [rows, cols])
            let oneMinusMu = 1 - momentum, nesterov = self.nesterov
            let gp = g.pointer, mp = m.pointer, up = u.pointer
            Parallel.forEachChunk(n, costPerItem: 4) { range in
                for i in range {
                    let gi = gp[i]
                    let mi = mp[i] + oneMinusMu * (gi - mp[i])
                    mp[i] = mi
                    up[i] = nesterov ? mi - (mi - gi) * oneMinusMu : mi
                }
            }
            let o = Muon.newtonSchulz(u, rows: rows, cols: cols, steps: nsSteps, eps: eps)
            let lr = lr * p.learningRateScale
            let decay = 1 - lr * p.weightDecay, s = scale.factor(rows: rows, cols: cols)
            let pp = p.tensor.pointer, op = o.pointer
            Parallel.forEachChunk(n, costPerItem: 4) { range in
                for i in range {
                    pp[i] *= decay
                    pp[i] -= lr * (op[i] * s)
                }
            }
        }
    }

    /// NS₅(G) of a matrix (rank ≥ 2, viewed as [shape[0], rest]): `steps` quintic Newton–Schulz iterations after
    /// dividing by (‖G‖_F + eps). The result has G's shape and approximately the singular vectors of G with
    /// singular values in about (0.7, 1.2) (exactly orthogonal only in the limit of a convergent iteration).
    public static func orthogonalize(_ g: Tensor, steps: Int = 5, eps: Float = 1e-7) -> Tensor {
        guard let (rows, cols) = matrixShape(g.shape) else {
            preconditionFailure("Muon.orthogonalize: needs a matrix, got shape \(g.shape)")
        }
        let x = g.copy()
        return newtonSchulz(x, rows: rows, cols: cols, steps: steps, eps: eps).reshaped(g.shape)
    }

    /// Newton–Schulz on `x` ([rows, cols], overwritten). For rows ≤ cols each step is A = X·Xᵀ, B = b·A + c·A·A,
    /// X ← a·X + B·X. For rows > cols the reference transposes first; the same iteration on Xᵀ, written back in
    /// X's orientation, is A = XᵀX, B = b·A + c·A·A, X ← a·X + X·Bᵀ, which is what runs here (no transposed copies),
    /// so the Gram matrices are always min(rows, cols)².
    static func newtonSchulz(_ x: Tensor, rows: Int, cols: Int, steps: Int, eps: Float) -> Tensor {
        let count = rows * cols
        var norm2 = 0.0
        let xp0 = x.pointer
        for i in 0..<count { norm2 += Double(xp0[i]) * Double(xp0[i]) }
        let denominator = Float(norm2.squareRoot()) + eps
        Parallel.forEachChunk(count, costPerItem: 2) { range in
            for i in range { xp0[i] /= denominator }
        }
        guard steps > 0 else { return x }
        let (a, b, c) = coefficients
        let wide = rows <= cols, k = wide ? rows : cols
        let gram = Tensor(uninitialized: [k, k]), poly = Tensor(uninitialized: [k, k])
        var current = x, next = Tensor(uninitialized: [rows, cols])
        let ap = gram.pointer, bp = poly.pointer
        for _ in 0..<steps {
            let xp = current.pointer, yp = next.pointer
            if wide {   // A = X·Xᵀ  [rows, rows]
                BLAS.gemm(transB: true, m: k, n: k, k: cols, a: xp, lda: cols, b: xp, ldb: cols, c: ap, ldc: k)
            } else {    // A = Xᵀ·X  [cols, cols]
                BLAS.gemm(transA: true, m: k, n: k, k: rows, a: xp, lda: cols, b: xp, ldb: cols, c: ap, ldc: k)
            }
            for i in 0..<(k * k) { bp[i] = b * ap[i] }
            BLAS.gemm(m: k, n: k, k: k, alpha: c, a: ap, lda: k, b: ap, ldb: k, beta: 1, c: bp, ldc: k)
            Parallel.forEachChunk(count, costPerItem: 2) { range in
                for i in range { yp[i] = a * xp[i] }
            }
            if wide {   // Y = a·X + B·X
                BLAS.gemm(m: rows, n: cols, k: rows, a: bp, lda: k, b: xp, ldb: cols, beta: 1, c: yp, ldc: cols)
            } else {    // Y = a·X + X·Bᵀ
                BLAS.gemm(transB: true, m: rows, n: cols, k: cols, a: xp, lda: cols, b: bp, ldb: k, beta: 1, c: yp, ldc: cols)
            }
            swap(&current, &next)
        }
        return current
    }

    /// Restores `stepCount` and the momentum buffers (copied, so the caller's tensors are never written).
    public func restore(step: Int, momentum buffers: [String: Tensor]) {
        stepCount = step
        momentumBuffers = buffers.mapValues { $0.copy() }
    }
}

extension Muon: Optimizer {
    /// `momentum/<parameter>` for every parameter updated so far.
    public func stateTensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, m) in momentumBuffers { out["momentum/" + name] = m }
        return out
    }

    public func restoreState(step: Int, tensors: [String: Tensor]) throws {
        guard step >= 0 else { throw GLMError("Muon state: negative step \(step)") }
        var buffers: [String: Tensor] = [:]
        for (key, t) in tensors {
            guard key.hasPrefix("momentum/"), key.count > 9 else {
                throw GLMError("Muon state: unexpected entry '\(key)' (expected momentum/<parameter>)")
            }
            guard Muon.matrixShape(t.shape) != nil else {
                throw GLMError("Muon state: '\(key)' has shape \(t.shape); expected a matrix")
            }
            buffers[String(key.dropFirst(9))] = t
        }
        restore(step: step, momentum: buffers)
    }
}
