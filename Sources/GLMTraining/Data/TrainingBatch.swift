// One training micro-batch as every objective produces it and the trainer consumes it.
import GLMCore

/// `batch` rows of `length` tokens, with labels already shifted: `targets[b·T + t]` is what position t of row b
/// must predict, or `ignoreLabel` where no loss is taken. Positions, block positions and mask follow
/// `CausalLanguageModel.hiddenStates` (nil: positions 0..<T, no block positions, causal mask).
///
/// What preference and policy losses need rides along (nil when unused), each per target position (`B·T`, aligned
/// with `targets`) unless said otherwise: `tokenWeights` (a per-token loss weight), `advantages`,
/// `referenceLogProbs` (a frozen reference model's log p of each target), `rolloutLogProbs` (the log p the
/// sampling policy gave each target), and `pairs`: rows `0..<pairs` are chosen responses and rows
/// `pairs..<2·pairs` the rejected ones, row i paired with row pairs + i.
public struct TrainingBatch: Sendable, Equatable {
    public var batch: Int
    public var length: Int
    public var ids: [Int32]
    public var targets: [Int32]
    public var positions: [Int32]?
    public var blockPositions: [Int32]?
    public var mask: AttentionMask?
    public var tokenWeights: [Float]?
    public var advantages: [Float]?
    public var referenceLogProbs: [Float]?
    public var rolloutLogProbs: [Float]?
    public var pairs: Int?
    /// The policy version that generated each row (RL rollouts), `batch` values.
    public var versions: [Int]?
    /// Routing replay (RL on MoE models): per MoE layer, the experts each position chose in the rollout,
    /// `batch·length·topK` values, −1 where nothing was recorded (padding: the live selection is used there).
    public var routedExperts: [[Int32]]?

    public init(batch: Int, length: Int, ids: [Int32], targets: [Int32], positions: [Int32]? = nil,
                blockPositions: [Int32]? = nil, mask: AttentionMask? = nil, tokenWeights: [Float]? = nil,
                advantages: [Float]? = nil, referenceLogProbs: [Float]? = nil, rolloutLogProbs: [Float]? = nil,
                pairs: Int? = nil, versions: [Int]? = nil) {
        let n = batch * length
        precondition(ids.count == n && targets.count == n,
                     "TrainingBatch: \(ids.count) ids and \(targets.count) targets for \(batch) × \(length)")
        for (name, values) in [("tokenWeights", tokenWeights), ("advantages", advantages),
                               ("referenceLogProbs", referenceLogProbs), ("rolloutLogProbs", rolloutLogProbs)] {
            precondition(values == nil || values!.count == n, "TrainingBatch: \(values!.count) \(name) for \(batch) × \(length)")
        }
        precondition(pairs == nil || (pairs! > 0 && 2 * pairs! == batch), "TrainingBatch: \(pairs ?? 0) pairs need \(2 * (pairs ?? 0)) rows, got \(batch)")
        self.batch = batch; self.length = length; self.ids = ids; self.targets = targets
        self.positions = positions; self.blockPositions = blockPositions; self.mask = mask
        self.tokenWeights = tokenWeights; self.advantages = advantages
        precondition(versions == nil || versions!.count == batch, "TrainingBatch: \(versions?.count ?? 0) versions for \(batch) rows")
        self.referenceLogProbs = referenceLogProbs; self.rolloutLogProbs = rolloutLogProbs; self.pairs = pairs
        self.versions = versions
    }

    /// Number of positions that carry a loss.
    public var lossTokenCount: Int { targets.reduce(0) { $0 + ($1 == ignoreLabel ? 0 : 1) } }

    /// The loss mask per target position (1 where a target is taken, else 0), `[batch, length]`.
    public var lossMask: Tensor {
        Tensor(targets.map { $0 == ignoreLabel ? 0 : 1 }, shape: [batch, length])
    }
}
