// The DPO family's losses over per-sequence log-probabilities of chosen and rejected responses, with TRL's
// formulas and TRL's metric names. Built from differentiable tensor ops, so gradients reach whatever produced the
// policy's log-probabilities (LoRA matrices or every weight).
import Foundation
import GLMCore

/// A preference loss and its settings (a recipe's `dpo:` section).
///
/// With Δ = (log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r)) (sequence log-probabilities summed over the
/// response tokens), β `beta`, ε `label_smoothing`, and means over the pairs of a micro-batch:
/// - `sigmoid` (DPO): −(1−ε)·log σ(βΔ) − ε·log σ(−βΔ) (TRL's DPOTrainer `sigmoid` is ε = 0; with ε > 0 this is
///   the conservative form TRL's CPOTrainer and earlier DPOTrainer versions use);
/// - `robust` (cDPO, Chowdhury et al.): (−(1−ε)·log σ(βΔ) + ε·log σ(−βΔ)) / (1 − 2ε), ε ∈ [0, 0.5);
/// - `hinge`: relu(1 − βΔ);
/// - `ipo`: (Δ_c/n_c − Δ_r/n_r − 1/(2β))², the log-ratios divided by the response lengths n as TRL does;
/// - `simpo` (reference-free): −(1−ε)·log σ(z) − ε·log σ(−z), z = β·(ℓ_c − ℓ_r) − γ with ℓ the length-averaged
///   log-probability (TRL's CPOTrainer `simpo` with `simpo_gamma` = γ: its logits − γ/β, times β);
/// - `orpo` (reference-free): NLL(c) − λ·log σ(log-odds), log-odds = (ℓ_c − ℓ_r) − (log(1−e^ℓ_c) − log(1−e^ℓ_r)),
///   ℓ length-averaged, NLL the mean cross-entropy over the chosen response tokens (TRL's ORPOTrainer, whose
///   `beta` is λ here).
/// `rpo_alpha` α adds α·NLL(c) to any of them (RPO; TRL's `sft` loss term with weight α).
public struct PreferenceLoss: Equatable, Sendable {
    public enum Kind: String, CaseIterable, Sendable { case sigmoid, ipo, hinge, robust, simpo, orpo }

    public var kind: Kind
    public var beta: Double
    public var labelSmoothing: Double
    /// SimPO's target margin γ (in reward units, as TRL's `simpo_gamma`).
    public var gamma: Double
    /// ORPO's weight λ on the odds-ratio term.
    public var lambda: Double
    /// Weight of the chosen response's NLL added to the loss (nil: none).
    public var rpoAlpha: Double?

    public init(kind: Kind = .sigmoid, beta: Double = 0.1, labelSmoothing: Double = 0, gamma: Double = 0.5,
                lambda: Double = 0.1, rpoAlpha: Double? = nil) {
        self.kind = kind; self.beta = beta; self.labelSmoothing = labelSmoothing; self.gamma = gamma
        self.lambda = lambda; self.rpoAlpha = rpoAlpha
    }

    /// Whether the loss compares with a reference policy (simpo and orpo do not).
    public var usesReference: Bool { kind != .simpo && kind != .orpo }
    /// Whether the losses (and TRL's logged logps) use length-averaged log-probabilities.
    public var averagesLogProbs: Bool { kind == .simpo || kind == .orpo }

    /// The loss and TRL's metrics of `pairs` pairs: `policy` `[2·pairs]` (chosen rows first) summed log-probabilities
    /// with gradients, `tokenCounts` the response tokens of each row, `reference` the reference policy's summed
    /// log-probabilities (required when `usesReference`). Metrics: `rewards/chosen`, `rewards/rejected`,
    /// `rewards/accuracies`, `rewards/margins`, `logps/chosen`, `logps/rejected` (means over the pairs; rewards are
    /// β·log-ratio, or β·ℓ for simpo and λ·ℓ for orpo; logps are sums, or length averages for simpo and orpo, as
    /// TRL logs them), plus `nll_loss` when an NLL term is in the loss and `log_odds_ratio`, `log_odds_chosen`
    /// for orpo.
    public func evaluate(policy: Tensor, tokenCounts: [Int], reference: [Float]?) -> (loss: Tensor, metrics: [String: Double]) {
        let n = policy.count
        precondition(n % 2 == 0 && n > 0 && tokenCounts.count == n, "PreferenceLoss: \(n) sequences, \(tokenCounts.count) counts")
        precondition(!usesReference || reference?.count == n, "PreferenceLoss \(kind.rawValue) needs \(n) reference log-probabilities")
        let P = n / 2
        let counts = tokenCounts.map { Float(max($0, 1)) }
        let (cCounts, rCounts) = (Tensor(Array(counts[..<P]), shape: [P]), Tensor(Array(counts[P...]), shape: [P]))
        let chosen = policy.slice(axis: 0, start: 0, length: P), rejected = policy.slice(axis: 0, start: P, length: P)
        let (b, eps) = (Float(beta), Float(labelSmoothing))
        var metrics: [String: Double] = [:]
        var loss: Tensor
        var chosenRewards: [Float], rejectedRewards: [Float]
        var loggedChosen = chosen, loggedRejected = rejected
        func smoothedSigmoid(_ z: Tensor) -> Tensor {
            eps == 0 ? -z.logSigmoid() : -(z.logSigmoid() * (1 - eps)) - (-z).logSigmoid() * eps
        }
        if usesReference {
            let ref = reference!
            let chosenRatio = chosen - Tensor(Array(ref[..<P]), shape: [P])
            let rejectedRatio = rejected - Tensor(Array(ref[P...]), shape: [P])
            let delta = chosenRatio - rejectedRatio
            switch kind {
            case .sigmoid: loss = smoothedSigmoid(delta * b).mean()
            case .robust:
                let z = delta * b
                loss = ((-(z.logSigmoid() * (1 - eps)) + (-z).logSigmoid() * eps) * (1 / (1 - 2 * eps))).mean()
            case .hinge: loss = (delta * -b).adding(1).relu().mean()
            case .ipo:
                let d = chosenRatio / cCounts - rejectedRatio / rCounts
                loss = (d - 1 / (2 * b)).square().mean()
            case .simpo, .orpo: fatalError("unreachable")
            }
            chosenRewards = chosenRatio.scalars.map { $0 * b }; rejectedRewards = rejectedRatio.scalars.map { $0 * b }
        } else {
            let avgChosen = chosen / cCounts, avgRejected = rejected / rCounts
            (loggedChosen, loggedRejected) = (avgChosen, avgRejected)
            if kind == .simpo {
                loss = smoothedSigmoid((avgChosen - avgRejected) * b - Float(gamma)).mean()
            } else {
                let logOdds = (avgChosen - avgRejected) - (avgChosen.log1mexp() - avgRejected.log1mexp())
                let ratio = logOdds.logSigmoid()
                let nll = chosenNLL(chosen, counts: tokenCounts, pairs: P)
                metrics["nll_loss"] = Double(nll.scalars[0])
                metrics["log_odds_ratio"] = mean(ratio.scalars)
                metrics["log_odds_chosen"] = mean(logOdds.scalars)
                loss = nll - ratio.mean() * Float(lambda)
            }
            // TRL's CPO/ORPO trainers log their `beta` times ℓ; ORPO's `beta` is λ here.
            let scale = kind == .orpo ? Float(lambda) : b
            chosenRewards = avgChosen.scalars.map { $0 * scale }; rejectedRewards = avgRejected.scalars.map { $0 * scale }
        }
        if let alpha = rpoAlpha, alpha != 0 {
            let nll = chosenNLL(chosen, counts: tokenCounts, pairs: P)
            metrics["nll_loss"] = Double(nll.scalars[0])  // the NLL itself, as TRL logs it (orpo's term is the same value)
            loss = loss + nll * Float(alpha)
        }
        metrics["rewards/chosen"] = mean(chosenRewards)
        metrics["rewards/rejected"] = mean(rejectedRewards)
        metrics["rewards/accuracies"] = zip(chosenRewards, rejectedRewards).reduce(0.0) { $0 + ($1.0 > $1.1 ? 1 : 0) } / Double(P)
        metrics["rewards/margins"] = zip(chosenRewards, rejectedRewards).reduce(0.0) { $0 + Double($1.0 - $1.1) } / Double(P)
        metrics["logps/chosen"] = mean(loggedChosen.scalars)
        metrics["logps/rejected"] = mean(loggedRejected.scalars)
        return (loss, metrics)
    }

    /// Mean cross-entropy over the chosen responses' tokens: −Σ log π(c) / Σ n_c (torch's cross_entropy over them).
    func chosenNLL(_ chosen: Tensor, counts: [Int], pairs: Int) -> Tensor {
        -(chosen.sum() * (1 / Float(max(1, counts[..<pairs].reduce(0, +)))))
    }

    func mean(_ v: [Float]) -> Double { v.reduce(0.0) { $0 + Double($1) } / Double(max(v.count, 1)) }
}
