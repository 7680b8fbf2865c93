// One training micro-batch as every objective produces it and the trainer consumes it.
import GLMCore

/// `batch` rows of `length` tokens, with labels already shifted: `targets[b·T + t]` is what position t of row b
/// must predict, or `ignoreLabel` where no loss is taken. Positions, block positions and mask follow
/// `GLMForCausalLM.hiddenStates` (nil: positions 0..<T, no block positions, causal mask).
public struct TrainingBatch: Sendable, Equatable {
    public var batch: Int
    public var length: Int
    public var ids: [Int32]
    public var targets: [Int32]
    public var positions: [Int32]?
    public var blockPositions: [Int32]?
    public var mask: AttentionMask?

    public init(batch: Int, length: Int, ids: [Int32], targets: [Int32], positions: [Int32]? = nil,
                blockPositions: [Int32]? = nil, mask: AttentionMask? = nil) {
        precondition(ids.count == batch * length && targets.count == batch * length,
                     "TrainingBatch: \(ids.count) ids and \(targets.count) targets for \(batch) × \(length)")
        self.batch = batch; self.length = length; self.ids = ids; self.targets = targets
        self.positions = positions; self.blockPositions = blockPositions; self.mask = mask
    }

    /// Number of positions that carry a loss.
    public var lossTokenCount: Int { targets.reduce(0) { $0 + ($1 == ignoreLabel ? 0 : 1) } }
}
