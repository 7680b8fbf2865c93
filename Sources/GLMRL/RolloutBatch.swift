// One rollout batch as the rollout process writes it and the trainer reads it (RUN/rollouts/batch-NNNNNN.json,
// written atomically, never changed): its samples — prompt and response tokens, per-token log-probs computed with
// the trainer's own code path, rewards, advantages, group and the policy version that generated each — and the
// batch's rollout statistics. `trainingBatch` lays samples out as the trainer's micro-batches; the rollout scores
// in exactly that layout, so the trainer's recompute at the same version is bit-identical.
import Foundation
import GLMCore
import GLMTraining

public struct RolloutSample: Codable, Sendable, Equatable {
    /// Position in the prompt stream (what was claimed).
    public var position: Int
    /// Line of the prompt file.
    public var promptIndex: Int
    /// Group (one prompt's samples) within the batch.
    public var group: Int
    /// The policy version (training steps done) that generated the response.
    public var version: Int
    public var promptTokens: [Int32]
    public var responseTokens: [Int32]
    /// log π(response token j | prefix) at `version` and the rollout temperature, one per response token.
    public var logProbs: [Float]
    /// The reference policy's, when the recipe asks for KL in the reward.
    public var referenceLogProbs: [Float]?
    public var reward: Double
    public var advantage: Double
    /// "stop" or "length".
    public var finishReason: String
    public var response: String
    /// Routing replay (`rl.routing_replay`): per MoE layer (the model's `moeLayers` order), the experts each token
    /// of prompt ⧺ response chose when the rollout scored it, `topK` per token in selection order. nil otherwise.
    public var routedExperts: [[Int32]]? = nil

    public init(position: Int, promptIndex: Int, group: Int, version: Int, promptTokens: [Int32], responseTokens: [Int32],
                logProbs: [Float], referenceLogProbs: [Float]?, reward: Double, advantage: Double, finishReason: String,
                response: String, routedExperts: [[Int32]]? = nil) {
        self.position = position; self.promptIndex = promptIndex; self.group = group; self.version = version
        self.promptTokens = promptTokens; self.responseTokens = responseTokens; self.logProbs = logProbs
        self.referenceLogProbs = referenceLogProbs; self.reward = reward; self.advantage = advantage
        self.finishReason = finishReason; self.response = response; self.routedExperts = routedExperts
    }
}

public struct RolloutBatch: Codable, Sendable {
    public var index: Int
    public var samples: [RolloutSample]
    /// `rollout/...` and `perf/...` statistics of the batch.
    public var stats: [String: Double]
    public var warnings: [String]

    public init(index: Int, samples: [RolloutSample], stats: [String: Double], warnings: [String]) {
        self.index = index; self.samples = samples; self.stats = stats; self.warnings = warnings
    }

    /// Throws a one-line error naming `source` and the sample when a batch read from disk cannot be trained on:
    /// token ids outside the vocabulary, an empty or too long sequence, log-probs that do not match the response,
    /// non-finite numbers, or a version from the future.
    public func validate(source: String, vocabularySize: Int, maxPositions: Int, trainerVersion: Int) throws {
        for (i, s) in samples.enumerated() {
            func fail(_ what: String) -> GLMError { GLMError("\(source): sample \(i): \(what)") }
            let n = s.promptTokens.count + s.responseTokens.count
            guard !s.promptTokens.isEmpty, n <= maxPositions else { throw fail("\(n) tokens with a prompt of \(s.promptTokens.count); expected a prompt and at most \(maxPositions) tokens") }
            if let bad = (s.promptTokens + s.responseTokens).first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                throw fail("token id \(bad) is outside the vocabulary of \(vocabularySize)")
            }
            guard s.logProbs.count == s.responseTokens.count else { throw fail("\(s.logProbs.count) log-probs for \(s.responseTokens.count) response tokens") }
            if let r = s.referenceLogProbs, r.count != s.responseTokens.count { throw fail("\(r.count) reference log-probs for \(s.responseTokens.count) response tokens") }
            guard s.logProbs.allSatisfy({ $0.isFinite && $0 <= 0 }), s.referenceLogProbs?.allSatisfy({ $0.isFinite && $0 <= 0 }) ?? true else {
                throw fail("a log-probability that is not a finite number ≤ 0")
            }
            // Rewards are at most 1e15 in magnitude (RewardCommand.maxMagnitude) and advantages differences of them;
            // larger values would overflow the f32 loss.
            guard s.reward.isFinite, s.advantage.isFinite, abs(s.reward) <= 1e16, abs(s.advantage) <= 1e16 else {
                throw fail("reward \(s.reward), advantage \(s.advantage); expected finite numbers of magnitude at most 1e16")
            }
            guard s.version >= 0, s.version <= trainerVersion else { throw fail("version \(s.version); the trainer is at version \(trainerVersion)") }
        }
    }

    /// The trainer's micro-batches of `microBatchSize` samples, in order.
    public func microBatches(_ microBatchSize: Int) -> [ArraySlice<RolloutSample>] {
        stride(from: 0, to: samples.count, by: microBatchSize).map { samples[$0..<min($0 + microBatchSize, samples.count)] }
    }

    /// Rows of prompt ⧺ response, right-padded with `pad` to the longest; targets, rollout and reference log-probs
    /// and advantages at the positions that predict response tokens.
    public static func trainingBatch(_ samples: ArraySlice<RolloutSample>, pad: Int32) -> TrainingBatch {
        let B = samples.count
        let T = samples.map { $0.promptTokens.count + $0.responseTokens.count }.max() ?? 1
        var ids = [Int32](repeating: pad, count: B * T), targets = [Int32](repeating: ignoreLabel, count: B * T)
        var rollout = [Float](repeating: 0, count: B * T), advantages = [Float](repeating: 0, count: B * T)
        let withReference = samples.allSatisfy { $0.referenceLogProbs != nil }
        var reference = [Float](repeating: 0, count: B * T)
        for (row, s) in samples.enumerated() {
            let seq = s.promptTokens + s.responseTokens
            for (t, id) in seq.enumerated() { ids[row * T + t] = id }
            let P = s.promptTokens.count
            for j in 0..<s.responseTokens.count where P + j >= 1 {
                let at = row * T + P + j - 1
                targets[at] = s.responseTokens[j]
                rollout[at] = j < s.logProbs.count ? s.logProbs[j] : 0
                advantages[at] = Float(s.advantage)
                if withReference, let r = s.referenceLogProbs, j < r.count { reference[at] = r[j] }
            }
        }
        return TrainingBatch(batch: B, length: T, ids: ids, targets: targets, advantages: advantages,
                             referenceLogProbs: withReference ? reference : nil, rolloutLogProbs: rollout,
                             versions: samples.map(\.version))
    }
}
