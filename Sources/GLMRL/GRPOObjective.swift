// The policy-gradient objective (GRPO / DAPO / GSPO, see PolicyLoss) over micro-batches of rollout samples: the
// current policy's log-probs at the rollout temperature, with gradients; the ratio's denominator (the trainer's
// own values before the update, or the rollout's), TIS weights, the KL to the reference, and the metrics in
// slime's `train/` family, including the largest train/rollout log-prob difference over samples generated at the
// trainer's version (0 by construction: same kernels, same layout).
import Foundation
import GLMCore
import GLMModel
import GLMTraining

public final class GRPOObjective: TrainingObjective {
    public let name = "grpo"
    let rl: RLConfig
    let options: PolicyLossOptions
    /// The trainer's current version (steps done); set before each step.
    public var version = 0
    /// The reference policy's log-probs of a batch (needed for a KL loss term).
    public var referenceLogProbs: ((TrainingBatch) -> [Float])?

    public init(rl: RLConfig) { self.rl = rl; options = PolicyLossOptions(rl) }

    public func weight(of b: TrainingBatch) -> Int {
        // micro-batches combine by tokens (token) or by sequences (sequence, constant: each divides by its rows,
        // a row without response tokens included, as TRL counts it)
        rl.reduction == .token ? b.lossTokenCount : b.batch
    }

    public func loss(model: any CausalLanguageModel, batch b: TrainingBatch) throws -> ObjectiveResult {
        guard let rollout = b.rolloutLogProbs, let advantages = b.advantages else {
            throw GLMError("grpo: a batch without rollout log-probs or advantages (not a rollout batch)")
        }
        let policy = { SequenceLogProbs(model: model, batch: b, entropy: true, temperature: self.rl.temperature) }
        let lp: SequenceLogProbs
        if rl.routingReplay {
            let (moe, shape) = try RoutingReplay.required(model)
            guard let recorded = b.routedExperts, recorded.count == shape.layers.count else {
                throw GLMError("rl.routing_replay: a batch without the experts its rollout chose (routed_experts)")
            }
            lp = RoutingReplay.replaying(moe, recorded, shape: shape, policy)
        } else { lp = policy() }
        let prox = lp.perToken.scalars
        let mask = b.targets.map { $0 == ignoreLabel ? Float(0) : 1 }
        var reference: [Float]? = b.referenceLogProbs
        if options.klCoef > 0 || reference == nil, rl.klCoef > 0, !rl.klInReward { reference = referenceLogProbs?(b) }
        let inputs = PolicyLossInputs(logProbs: lp.perToken, mask: mask, oldLogProbs: rl.useRolloutLogProbs ? rollout : prox,
                                      rolloutLogProbs: rollout, proximalLogProbs: prox, advantages: advantages,
                                      referenceLogProbs: reference)
        let (loss, m) = PolicyLoss.compute(inputs, options: options)
        var metrics: [String: Double] = [:]
        for (k, v) in m { metrics["train/" + k] = v }
        metrics["train/entropy"] = lp.meanEntropy ?? 0
        // Train/rollout mismatch over samples generated at this version.
        var diff = 0.0, onPolicy = 0
        for row in 0..<b.batch where b.versions?[row] == version {
            onPolicy += 1
            for t in 0..<b.length where mask[row * b.length + t] > 0 {
                diff = max(diff, Double(abs(prox[row * b.length + t] - rollout[row * b.length + t])))
            }
        }
        metrics["train/rollout_logprob_abs_diff"] = diff
        metrics["train/on_policy_samples"] = Double(onPolicy)
        metrics["train/advantage_abs_mean"] = zip(advantages, mask).reduce(0.0) { $0 + Double(abs($1.0) * $1.1) } / Double(max(b.lossTokenCount, 1))
        return ObjectiveResult(loss: loss, metrics: metrics)
    }
}
