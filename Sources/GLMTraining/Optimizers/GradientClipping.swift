// Global-norm gradient clipping (torch.nn.utils.clip_grad_norm_ semantics).
import GLMCore

public enum GradientClipping {
    /// The L2 norm over all gradients, accumulated in Double (in fixed blocks over the cores: `Kernels.sumOfSquares`).
    public static func globalNorm(_ tensors: [Tensor]) -> Float {
        var total = 0.0
        for t in tensors {
            guard let g = t.grad else { continue }
            total += Kernels.sumOfSquares(g.pointer, g.count)
        }
        return Float(total.squareRoot())
    }

    /// Scales all gradients by min(1, maxNorm / (norm + 1e−6)); returns the norm before clipping.
    /// `maxNorm` ≤ 0 disables clipping (the norm is still returned).
    @discardableResult
    public static func clip(_ tensors: [Tensor], maxNorm: Float) -> Float {
        let norm = globalNorm(tensors)
        guard maxNorm > 0 else { return norm }
        let coefficient = maxNorm / (norm + 1e-6)
        guard coefficient < 1 else { return norm }
        for t in tensors {
            guard let g = t.grad else { continue }
            Kernels.scale(g.pointer, coefficient, g.pointer, g.count)
        }
        return norm
    }
}
