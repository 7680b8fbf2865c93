// The policy-gradient loss of GRPO and its variants as one differentiable op of the per-token log-probabilities:
// the clipped surrogate with separate low/high clip ranges (DAPO clip-higher), GSPO's length-normalised sequence
// ratio, truncated importance sampling against the rollout's log-probs, a KL penalty to the reference (k1, k2
// or k3), and token- or sequence-level reduction. Scripts/make_rl_fixtures.py transcribes the same formulas to
// PyTorch; RLPolicyLossTests compares loss and gradient.
import Foundation
import GLMCore

public struct PolicyLossInputs {
    /// `[B, T]` log π_θ of each target (0 where masked); the loss's gradient flows into it.
    public var logProbs: Tensor
    /// 1 where a response token is trained, else 0 (`B·T`).
    public var mask: [Float]
    /// The ratio's denominator per token (the trainer's own log-probs before the update, or the rollout's).
    public var oldLogProbs: [Float]
    /// What the rollout recorded per token (for TIS).
    public var rolloutLogProbs: [Float]
    /// The trainer's log-probs before the update (TIS numerator).
    public var proximalLogProbs: [Float]
    /// The advantage of each token (its sequence's).
    public var advantages: [Float]
    /// The reference policy's log-probs (KL term), or nil.
    public var referenceLogProbs: [Float]?

    public init(logProbs: Tensor, mask: [Float], oldLogProbs: [Float], rolloutLogProbs: [Float], proximalLogProbs: [Float],
                advantages: [Float], referenceLogProbs: [Float]?) {
        self.logProbs = logProbs; self.mask = mask; self.oldLogProbs = oldLogProbs; self.rolloutLogProbs = rolloutLogProbs
        self.proximalLogProbs = proximalLogProbs; self.advantages = advantages; self.referenceLogProbs = referenceLogProbs
    }
}

public struct PolicyLossOptions: Sendable {
    public var epsClipLow = 0.2, epsClipHigh = 0.2
    public var sequenceRatio = false
    public var reduction: RLConfig.Reduction = .token
    public var klCoef = 0.0
    public var klEstimator: RLConfig.KLEstimator = .k3
    public var tis = false
    public var tisCap = 2.0
    /// The constant reduction's length (`rl.max_new_tokens`, TRL's max_completion_length).
    public var maxResponseTokens = 1
    public init() {}
    public init(_ c: RLConfig) {
        epsClipLow = c.epsClipLow; epsClipHigh = c.epsClipHigh; sequenceRatio = c.sequenceRatio; reduction = c.reduction
        maxResponseTokens = c.maxNewTokens
        klCoef = c.klInReward ? 0 : c.klCoef; klEstimator = c.klEstimator; tis = c.tis; tisCap = c.tisCap
    }
}

public enum PolicyLoss {
    /// The loss (a scalar tensor on the tape of `logProbs`) and its metrics: `pg_loss`, `kl`, `clip_fraction` (of
    /// the tokens; of the sequences under GSPO), `ratio_mean`, `tis_weight_mean`. Per token, with r = exp(log π − old) and w the TIS weight
    /// min(exp(prox − rollout), cap) (1 without TIS):
    ///   pg = −w · min(r·A, clip(r, 1−ε_low, 1+ε_high)·A)     (GSPO: r and w per sequence, from mean log-ratios)
    ///   kl = k1: log π − ref;  k2: ½(log π − ref)²;  k3: e^(ref − log π) − (ref − log π) − 1
    /// reduced as Σ mask·(pg + β·kl) / Σ mask (token), the mean over sequences of each one's token mean (sequence),
    /// or Σ mask·(pg + β·kl) / (sequences · max_new_tokens) (constant: Dr. GRPO).
    public static func compute(_ x: PolicyLossInputs, options o: PolicyLossOptions) -> (loss: Tensor, metrics: [String: Double]) {
        let shape = x.logProbs.shape
        let (B, T) = (shape[0], shape[1])
        let n = B * T
        let lp = x.logProbs.scalars
        var grad = [Double](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: B)
        for i in 0..<n where x.mask[i] > 0 { counts[i / T] += 1 }
        // Every row counts in the sequence and constant reductions, one without response tokens too (it adds 0),
        // as TRL's `grpo` (mean over rows of clamp(min=1) token means) and `dr_grpo` (rows · max_completion_length).
        let rows = B
        let tokens = counts.reduce(0, +)
        guard tokens > 0 else {
            let zero = Tensor([0], shape: []).recorded(from: [x.logProbs]) { _ in }
            return (zero, ["pg_loss": 0, "kl": 0, "clip_fraction": 0, "ratio_mean": 1, "tis_weight_mean": 1])
        }
        // The factor of each token's term in the reduction.
        func scale(_ row: Int) -> Double {
            switch o.reduction {
            case .token: return 1 / Double(tokens)
            case .sequence: return 1 / (Double(rows) * Double(counts[row]))
            case .constant: return 1 / (Double(rows) * Double(o.maxResponseTokens))
            }
        }
        var pgSum = 0.0, klSum = 0.0, clipped = 0.0, ratioSum = 0.0, tisSum = 0.0, loss = 0.0
        let low = 1 - o.epsClipLow, high = 1 + o.epsClipHigh
        func surrogate(_ r: Double, _ a: Double) -> (value: Double, gradFactor: Double, clipped: Bool) {
            let clippedR = min(max(r, low), high)
            let unclippedLoss = -r * a, clippedLoss = -clippedR * a
            if clippedLoss > unclippedLoss { return (clippedLoss, 0, true) }
            return (unclippedLoss, -a * r, false)
        }
        if o.sequenceRatio {
            for b in 0..<B where counts[b] > 0 {
                var logRatio = 0.0, logTIS = 0.0, a = 0.0
                for t in 0..<T where x.mask[b * T + t] > 0 {
                    let i = b * T + t
                    logRatio += Double(lp[i]) - Double(x.oldLogProbs[i])
                    logTIS += Double(x.proximalLogProbs[i]) - Double(x.rolloutLogProbs[i])
                    a = Double(x.advantages[i])
                }
                let m = Double(counts[b])
                let s = Foundation.exp(logRatio / m)
                let w = o.tis ? min(Foundation.exp(logTIS / m), o.tisCap) : 1
                let (v, g, c) = surrogate(s, a)
                let k = 1 / Double(rows)
                loss += k * w * v; pgSum += w * v * Double(counts[b]); clipped += c ? 1 : 0
                ratioSum += s * m; tisSum += w * m
                for t in 0..<T where x.mask[b * T + t] > 0 { grad[b * T + t] += k * w * g / m }
            }
        } else {
            for i in 0..<n where x.mask[i] > 0 {
                let r = Foundation.exp(Double(lp[i]) - Double(x.oldLogProbs[i]))
                let w = o.tis ? min(Foundation.exp(Double(x.proximalLogProbs[i]) - Double(x.rolloutLogProbs[i])), o.tisCap) : 1
                let (v, g, c) = surrogate(r, Double(x.advantages[i]))
                let k = scale(i / T)
                loss += k * w * v; grad[i] += k * w * g
                pgSum += w * v; clipped += c ? 1 : 0; ratioSum += r; tisSum += w
            }
        }
        if let ref = x.referenceLogProbs {
            for i in 0..<n where x.mask[i] > 0 {
                let d = Double(lp[i]) - Double(ref[i])
                let (v, g): (Double, Double)
                switch o.klEstimator {
                case .k1: (v, g) = (d, 1)
                case .k2: (v, g) = (0.5 * d * d, d)
                case .k3: (v, g) = (Foundation.exp(-d) + d - 1, 1 - Foundation.exp(-d))
                }
                klSum += v
                if o.klCoef > 0 {
                    let k = scale(i / T)
                    loss += k * o.klCoef * v; grad[i] += k * o.klCoef * g
                }
            }
        }
        let gradient = grad.map(Float.init)
        let logProbs = x.logProbs
        let out = Tensor([Float(loss)], shape: []).recorded(from: [logProbs]) { g in
            let s = g.pointer[0]
            logProbs.accumulateGrad(Tensor(gradient.map { $0 * s }, shape: shape), fresh: true)
        }
        let count = Double(tokens)
        // GSPO clips whole sequences: its clip fraction is over the rows (a row without response tokens has ratio 1
        // and is never clipped), as TRL's clip_ratio/region_mean for importance_sampling_level "sequence"; per token
        // otherwise.
        let clipCount = o.sequenceRatio ? Double(B) : count
        return (out, ["pg_loss": pgSum / count, "kl": klSum / count, "clip_fraction": clipped / clipCount,
                      "ratio_mean": ratioSum / count, "tis_weight_mean": tisSum / count])
    }

    /// Group-normalised advantages: each reward minus its group's mean, divided by the group's standard deviation
    /// (unbiased, as torch.std) plus 1e-6 when `normalizeStd` (GRPO), not divided when false (Dr. GRPO).
    public static func advantages(rewards: [Double], groupSize: Int, normalizeStd: Bool) -> [Double] {
        precondition(groupSize > 0 && rewards.count % groupSize == 0, "rewards do not split into groups of \(groupSize)")
        var out = [Double](repeating: 0, count: rewards.count)
        for g in stride(from: 0, to: rewards.count, by: groupSize) {
            let group = rewards[g..<(g + groupSize)]
            let mean = group.reduce(0, +) / Double(groupSize)
            var std = 0.0
            if groupSize > 1 {
                std = (group.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(groupSize - 1)).squareRoot()
            }
            for i in 0..<groupSize {
                let centred = rewards[g + i] - mean
                out[g + i] = normalizeStd ? centred / (std + 1e-6) : centred
            }
        }
        return out
    }
}
