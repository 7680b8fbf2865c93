// The `rl:` section of a grpo recipe: rollout (group sampling, generation, staleness, workers), the policy loss
// (GRPO / DAPO clip-higher / GSPO, KL, TIS, reduction), rewards and evaluation. Unknown keys are errors naming
// the file, line and key, as everywhere in recipes.
import Foundation
import GLMCore
import GLMTraining
import Yams

public struct RLConfig: Sendable {
    public enum Mode: String, Sendable { case async, sync }
    /// token: Σ/(tokens); sequence: mean over sequences of their token means; constant: Σ/(sequences·max_new_tokens)
    /// (Dr. GRPO, TRL's `dr_grpo`).
    public enum Reduction: String, Sendable { case token, sequence, constant }
    public enum KLEstimator: String, Sendable { case k1, k2, k3 }

    public var mode: Mode = .async
    /// Prompts per rollout batch (each sampled `samplesPerPrompt` times); one rollout batch per training step.
    public var promptsPerBatch = 8
    public var samplesPerPrompt = 4
    public var maxNewTokens = 16
    public var temperature: Float = 1
    public var topP: Float = 1
    /// A sample generated under version v may train the step that makes version v + maxStaleness + 1 at the latest.
    public var maxStaleness = 1
    /// Rollout processes `glm-train run` starts (async mode).
    public var rolloutWorkers = 1
    /// Divide the group-centred reward by the group's standard deviation (GRPO); false is Dr. GRPO.
    public var normalizeStd = true
    public var epsClipLow = 0.2
    public var epsClipHigh = 0.2
    /// GSPO: one clipped, length-normalised importance ratio per sequence instead of one per token.
    public var sequenceRatio = false
    public var klCoef = 0.0
    public var klEstimator: KLEstimator = .k3
    /// KL to the reference as reward shaping (−kl_coef · Σ k1 per sample) instead of a loss term.
    public var klInReward = false
    /// Truncated importance sampling: weight min(π_train / π_rollout, tisCap) per token.
    public var tis = false
    public var tisCap = 2.0
    /// The ratio's denominator: the log-probs the rollout recorded (true), or the trainer's own recompute before the
    /// update (false, with TIS correcting for stale data).
    public var useRolloutLogProbs = false
    /// Drop groups whose rewards are all equal and sample more prompts to refill the batch (DAPO).
    public var dynamicSampling = false
    /// At most this many extra groups per batch are sampled to refill it.
    public var maxExtraGroups = 16
    public var reduction: Reduction = .token
    /// Samples per micro-batch of the trainer (the rollout scores them in the same layout).
    public var microBatchSize = 8
    public var reward = RewardSpec.numeric
    public var eval: Eval?
    /// Restarts of a child process `glm-train run` allows before giving up.
    public var maxRestarts = 3
    /// Routing replay on MoE models: the rollout records the experts every token chose, the trainer's recompute
    /// uses them (`RoutingReplay`).
    public var routingReplay = false

    public struct Eval: Sendable {
        public var file: String
        public var every: Int
        public var samples: Int
        public var temperature: Float
        public var limit: Int?
        /// The task metric, scored apart from the training reward.
        public var metric: RewardSpec
        /// The reward reported beside it (default: the training reward).
        public var reward: RewardSpec?
    }

    public init() {}

    /// Reads `recipe.rl` (a grpo recipe); defaults as above.
    public init(recipe: Recipe) throws {
        let r = try RecipeReader(file: recipe.file, path: "rl", node: recipe.rl)
        mode = Mode(rawValue: try r.choice("mode", ["async", "sync"], default: "async")!)!
        promptsPerBatch = try r.int("prompts_per_batch", default: 8, min: 1, max: 65_536)
        samplesPerPrompt = try r.int("n_samples_per_prompt", default: 4, min: 1, max: 1024)
        maxNewTokens = try r.int("max_new_tokens", default: 16, min: 1, max: FileLimits.maxPositions)
        temperature = Float(try r.double("temperature", default: 1, min: 1e-3, max: 100))
        topP = Float(try r.double("top_p", default: 1, min: 1e-6, max: 1))
        maxStaleness = try r.int("max_staleness", default: 1, min: 0, max: 1_000_000)
        rolloutWorkers = try r.int("rollout_workers", default: 1, min: 1, max: 64)
        normalizeStd = try r.bool("normalize_std", default: true)
        epsClipLow = try r.double("eps_clip_low", default: 0.2, min: 0, max: 1)
        epsClipHigh = try r.double("eps_clip_high", default: 0.2, min: 0, max: 100)
        sequenceRatio = try r.choice("ratio", ["token", "sequence"], default: "token") == "sequence"
        klCoef = try r.double("kl_coef", default: 0, min: 0, max: 1e6)
        klEstimator = KLEstimator(rawValue: try r.choice("kl_estimator", ["k1", "k2", "k3"], default: "k3")!)!
        klInReward = try r.bool("kl_in_reward", default: false)
        tis = try r.bool("tis", default: false)
        tisCap = try r.double("tis_cap", default: 2, min: 1, max: 1e6)
        useRolloutLogProbs = try r.bool("use_rollout_logprobs", default: false)
        dynamicSampling = try r.bool("dynamic_sampling", default: false)
        maxExtraGroups = try r.int("max_extra_groups", default: 16, min: 0, max: 1_000_000)
        reduction = Reduction(rawValue: try r.choice("loss_reduction", ["token", "sequence", "constant"], default: "token")!)!
        microBatchSize = try r.int("micro_batch_size", default: 8, min: 1, max: 65_536)
        maxRestarts = try r.int("max_restarts", default: 3, min: 0, max: 1000)
        routingReplay = try r.bool("routing_replay", default: false)
        if r.has("reward") { reward = try RewardSpec.read(r, "reward", r.node("reward")!) }
        if let e = try r.section("eval") {
            guard let file = try e.string("file") else { throw e.fail("file", nil, "missing (a JSONL file of {\"prompt\", \"answer\"} lines)") }
            let metric = e.has("metric") ? try RewardSpec.read(e, "metric", e.node("metric")!) : .numeric
            let evalReward = e.has("reward") ? try RewardSpec.read(e, "reward", e.node("reward")!) : nil
            eval = Eval(file: file, every: try e.int("every", default: 10, min: 1, max: Recipe.maxSteps),
                        samples: try e.int("samples", default: 4, min: 1, max: 1024),
                        temperature: Float(try e.double("temperature", default: 1, min: 0, max: 100)),
                        limit: try e.int("limit").map { v in
                            guard v >= 1 else { throw e.fail("limit", e.node("limit"), "expected at least 1, got \(v)") }
                            return v },
                        metric: metric, reward: evalReward)
            try e.finish()
        }
        try r.finish()
        if klInReward && klCoef == 0 {
            throw r.fail("kl_in_reward", r.node("kl_in_reward"), "true needs kl_coef above 0")
        }
        if sequenceRatio && reduction != .sequence && r.has("loss_reduction") {
            throw r.fail("loss_reduction", r.node("loss_reduction"), "GSPO (ratio: sequence) reduces per sequence; use loss_reduction: sequence or leave it out")
        }
        if sequenceRatio { reduction = .sequence }
        if mode == .sync && rolloutWorkers > 1 {
            throw r.fail("rollout_workers", r.node("rollout_workers"), "sync mode generates in the trainer process; rollout_workers applies to async")
        }
    }

    /// Samples per rollout batch.
    public var samplesPerBatch: Int { promptsPerBatch * samplesPerPrompt }
}
