// Making rollout batches: claim batch k and its prompts, generate each prompt's group of samples under one policy
// version, score them with the reward, drop zero-variance groups and sample more (dynamic sampling), compute
// group-normalised advantages, and record every response token's log-probability with the trainer's own forward
// pass in the trainer's micro-batch layout (so that the trainer's recompute at the same version is bit-identical).
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining

/// What a rollout generates with: a model at a known version.
public struct RolloutPolicy {
    public var model: any CausalLanguageModel
    public var version: Int
    /// Runs `body` with the reference policy (LoRA: adapters off), when there is one.
    public var withReference: ((() -> Void) -> Void)?
    public init(model: any CausalLanguageModel, version: Int, withReference: ((() -> Void) -> Void)?) {
        self.model = model; self.version = version; self.withReference = withReference
    }
}

public final class RolloutWorker {
    let rl: RLConfig
    let prompts: RLPrompts
    let tokenizer: GLMTokenizer
    let directory: RLRunDirectory
    let seed: UInt64
    let shuffle: Bool
    let pad: Int32
    let stops: Set<Int32>
    /// Warnings (reward commands that failed), for the caller to print.
    public var warn: (String) -> Void = { _ in }

    public init(rl: RLConfig, prompts: RLPrompts, tokenizer: GLMTokenizer, directory: RLRunDirectory, seed: UInt64,
                shuffle: Bool, pad: Int32, stops: Set<Int32>) {
        self.rl = rl; self.prompts = prompts; self.tokenizer = tokenizer; self.directory = directory
        self.seed = seed; self.shuffle = shuffle; self.pad = pad; self.stops = stops
    }

    /// Produces and writes batch `k` with `policy` (the caller holds the batch claim). `waited` is the time spent
    /// waiting for the policy version, reported as perf/rollout_wait_s.
    @discardableResult
    public func produce(batch k: Int, policy: RolloutPolicy, waited: Double = 0) throws -> RolloutBatch {
        let started = Date()
        let model = policy.model
        let generator = TextGenerator(model: model)
        let sampling = SamplingParameters(temperature: rl.temperature, topP: rl.topP)
        var inherited = try directory.inheritedPositions(batch: k)
        var nextFree = directory.firstUnclaimedPosition()
        var kept: [[RolloutSample]] = [], dropped: [[RolloutSample]] = []
        var warnings: [String] = []
        var generatedGroups = 0, zeroStd = 0, generatedTokens = 0
        let budget = rl.promptsPerBatch + (rl.dynamicSampling ? rl.maxExtraGroups : 0)
        while kept.count < rl.promptsPerBatch && generatedGroups < budget {
            let position: Int
            if !inherited.isEmpty { position = inherited.removeFirst() }
            else { position = try directory.claimNextPosition(from: nextFree, batch: k); nextFree = position + 1 }
            let index = RLPrompts.index(at: position, count: prompts.count, shuffle: shuffle, seed: seed)
            let prompt = prompts.tokens[index]
            let group = Array(repeating: prompt, count: rl.samplesPerPrompt)
            let out = Autograd.noGrad {
                generator.generate(prompts: group, maxNewTokens: rl.maxNewTokens, sampling: sampling,
                                   seed: ExampleOrder.mix(seed, UInt64(position), 0x5EED), stopTokens: stops)
            }
            generatedGroups += 1
            var samples = out.map { g -> RolloutSample in
                generatedTokens += g.tokens.count
                let text = tokenizer.decode(g.tokens, skipSpecialTokens: true)
                return RolloutSample(position: position, promptIndex: index, group: 0, version: policy.version,
                                     promptTokens: prompt, responseTokens: g.tokens, logProbs: [], referenceLogProbs: nil,
                                     reward: 0, advantage: 0, finishReason: g.finishReason, response: text)
            }
            var w: [String] = []
            let rewards = rl.reward.score(samples.map { RewardInput(prompt: prompts.texts[index], response: $0.response,
                                                                    answer: prompts.answers[index]) }, warnings: &w)
            warnings += w
            for m in w { warn(m) }
            for i in samples.indices { samples[i].reward = rewards[i] }
            let degenerate = Set(rewards).count <= 1
            if degenerate { zeroStd += 1 }
            if degenerate && rl.dynamicSampling && rl.samplesPerPrompt > 1 { dropped.append(samples) } else { kept.append(samples) }
        }
        // Budget spent: fill with dropped groups (their advantages are 0, so they train nothing).
        while kept.count < rl.promptsPerBatch, !dropped.isEmpty { kept.append(dropped.removeFirst()) }
        var samples: [RolloutSample] = []
        for (g, group) in kept.enumerated() { for var s in group { s.group = g; samples.append(s) } }

        try RolloutWorker.score(&samples, model: model, rl: rl, pad: pad, withReference: policy.withReference)
        // Rewards (KL-shaped when asked) to group-normalised advantages.
        var shaped = samples.map(\.reward)
        if rl.klInReward {
            for (i, s) in samples.enumerated() {
                let kl = zip(s.logProbs, s.referenceLogProbs ?? s.logProbs).reduce(0.0) { $0 + Double($1.0 - $1.1) }
                shaped[i] -= rl.klCoef * kl
            }
        }
        let adv = PolicyLoss.advantages(rewards: shaped, groupSize: rl.samplesPerPrompt, normalizeStd: rl.normalizeStd)
        for i in samples.indices { samples[i].advantage = adv[i] }

        let rewards = samples.map(\.reward)
        let mean = rewards.reduce(0, +) / Double(max(rewards.count, 1))
        let std = (rewards.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(rewards.count, 1))).squareRoot()
        let seconds = max(Date().timeIntervalSince(started), 1e-9)
        let stats: [String: Double] = [
            "rollout/reward_mean": mean, "rollout/reward_std": std,
            "rollout/response_length_mean": Double(samples.reduce(0) { $0 + $1.responseTokens.count }) / Double(max(samples.count, 1)),
            "rollout/truncation_ratio": Double(samples.filter { $0.finishReason == "length" }.count) / Double(max(samples.count, 1)),
            "rollout/zero_std_groups": Double(zeroStd), "rollout/groups_sampled": Double(generatedGroups),
            "rollout/version": Double(policy.version),
            "perf/rollout_tokens_per_s": Double(generatedTokens) / seconds, "perf/rollout_seconds": seconds,
            "perf/rollout_wait_s": waited,
        ]
        let batch = RolloutBatch(index: k, samples: samples, stats: stats, warnings: warnings)
        try directory.write(batch)
        return batch
    }

    /// Every sample's response log-probs (and the reference's when the recipe shapes rewards with KL) with the
    /// trainer's own forward pass in its micro-batch layout; with `rl.routing_replay`, the experts every token chose
    /// in that pass (`RolloutSample.routedExperts`), which the trainer replays.
    public static func score(_ samples: inout [RolloutSample], model: any CausalLanguageModel, rl: RLConfig, pad: Int32,
                             withReference: ((() -> Void) -> Void)?) throws {
        // Log-probs (and the reference's) in the trainer's layout; with routing replay, the experts they used.
        let replay = try rl.routingReplay ? RoutingReplay.required(model) : nil
        for slice in stride(from: 0, to: samples.count, by: rl.microBatchSize).map({ $0..<min($0 + rl.microBatchSize, samples.count) }) {
            let batch = RolloutBatch.trainingBatch(samples[slice], pad: pad)
            let score = { Autograd.noGrad { SequenceLogProbs(model: model, batch: batch, temperature: rl.temperature).perToken.scalars } }
            let lp: [Float]
            if let replay {
                let (values, recorded) = RoutingReplay.recording(replay.0, score)
                let shape = replay.1
                lp = values
                RoutingReplay.attach(recorded, to: &samples, slice: slice, length: batch.length, shape: shape)
            } else { lp = score() }
            var ref: [Float]?
            if rl.klInReward, let withReference = withReference {
                withReference { ref = Autograd.noGrad { SequenceLogProbs(model: model, batch: batch, temperature: rl.temperature).perToken.scalars } }
            }
            for (row, i) in slice.enumerated() {
                let P = samples[i].promptTokens.count, T = batch.length
                samples[i].logProbs = (0..<samples[i].responseTokens.count).map { j in P + j >= 1 ? lp[row * T + P + j - 1] : 0 }
                if let ref { samples[i].referenceLogProbs = (0..<samples[i].responseTokens.count).map { j in P + j >= 1 ? ref[row * T + P + j - 1] : 0 } }
            }
        }
    }
}
