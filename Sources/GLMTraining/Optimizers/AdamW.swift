// AdamW (decoupled weight decay, bias correction), with the update written in torch.optim.AdamW's order.
import Foundation
import GLMCore

/// A trainable tensor with its name and per-parameter hyper-parameters.
public struct TrainableParameter {
    public var name: String
    public var tensor: Tensor
    /// Multiplies the scheduled learning rate (per-group learning rates).
    public var learningRateScale: Float
    public var weightDecay: Float
    public init(name: String, tensor: Tensor, learningRateScale: Float = 1, weightDecay: Float = 0) {
        self.name = name; self.tensor = tensor; self.learningRateScale = learningRateScale; self.weightDecay = weightDecay
    }
}

/// AdamW: p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε). Moments are kept per parameter name.
public final class AdamW {
    public var beta1: Float, beta2: Float, eps: Float
    /// Number of updates applied so far (t in the bias corrections).
    public private(set) var stepCount = 0
    public private(set) var firstMoments: [String: Tensor] = [:]
    public private(set) var secondMoments: [String: Tensor] = [:]

    public init(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
    }

    /// Applies one update with learning rate `lr` to every parameter that has a gradient.
    public func step(_ parameters: [TrainableParameter], lr: Float) {
        stepCount += 1
        let t = Float(stepCount)
        let bc1 = 1 - Foundation.pow(beta1, t), bc2Sqrt = (1 - Foundation.pow(beta2, t)).squareRoot()
        for p in parameters {
            guard let g = p.tensor.grad else { continue }
            let n = p.tensor.count
            let m = firstMoments[p.name] ?? Tensor(zeros: p.tensor.shape)
            let v = secondMoments[p.name] ?? Tensor(zeros: p.tensor.shape)
            firstMoments[p.name] = m; secondMoments[p.name] = v
            let lr = lr * p.learningRateScale
            let decay = 1 - lr * p.weightDecay, stepSize = lr / bc1
            let (b1, b2, eps) = (beta1, beta2, self.eps)
            let pp = p.tensor.pointer, gp = g.pointer, mp = m.pointer, vp = v.pointer
            Parallel.forEachChunk(n, costPerItem: 8) { range in
                for i in range {
                    let gi = gp[i]
                    pp[i] *= decay
                    mp[i] = mp[i] * b1 + (1 - b1) * gi
                    vp[i] = vp[i] * b2 + (1 - b2) * gi * gi
                    pp[i] -= stepSize * mp[i] / (vp[i].squareRoot() / bc2Sqrt + eps)
                }
            }
        }
    }

    /// Restores state saved from `firstMoments`, `secondMoments` and `stepCount` (checkpoint resume).
    public func restore(step: Int, first: [String: Tensor], second: [String: Tensor]) {
        stepCount = step; firstMoments = first; secondMoments = second
    }
}
