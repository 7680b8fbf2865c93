// Data parallelism's view of the data: every process builds the same global micro-batch from the same global
// cursor (so the order, the masking randomness and resuming do not depend on how many processes there are) and
// keeps its own contiguous share of the rows. Pair batches (DPO) are split by pairs, each process keeping the
// chosen and the rejected row of its pairs.
import GLMCore

public final class ShardedBatchSource: BatchSource {
    public let inner: BatchSource
    public let rank: Int
    public let count: Int

    public init(_ inner: BatchSource, rank: Int, of count: Int) {
        precondition(count >= 1 && rank >= 0 && rank < count, "shard \(rank) of \(count)")
        self.inner = inner; self.rank = rank; self.count = count
    }

    public func nextBatch() throws -> TrainingBatch {
        let b = try inner.nextBatch()
        return try ShardedBatchSource.shard(b, rank: rank, of: count)
    }

    /// Rows `⌊n·r/N⌋ ..< ⌊n·(r+1)/N⌋` of the batch's n rows (n pairs for a pair batch).
    public static func shard(_ b: TrainingBatch, rank: Int, of count: Int) throws -> TrainingBatch {
        guard count > 1 else { return b }
        let units = b.pairs ?? b.batch
        guard units >= count else {
            throw GLMError("a micro-batch of \(units) \(b.pairs == nil ? "rows" : "pairs") cannot be shared by \(count) data-parallel processes; each needs at least one (training.batch_size; rl.micro_batch_size and the last micro-batch of a rollout batch)")
        }
        let lo = units * rank / count, hi = units * (rank + 1) / count
        let rows = b.pairs.map { p in Array(lo..<hi) + Array((p + lo)..<(p + hi)) } ?? Array(lo..<hi)
        let T = b.length
        func take<E>(_ values: [E]?) -> [E]? {  // per target position (B·T); positions may also be one row (T)
            values.map { v in v.count == T && b.batch > 1 ? v : rows.flatMap { v[($0 * T)..<(($0 + 1) * T)] } }
        }
        let mask = b.mask.map { m -> AttentionMask in
            let q = m.queries
            func cut(_ v: [Int32]) -> [Int32] { rows.flatMap { v[($0 * q)..<(($0 + 1) * q)] } }
            return AttentionMask(batch: rows.count, queries: q, keys: m.keys, lower: cut(m.lower), upper: cut(m.upper))
        }
        return TrainingBatch(batch: rows.count, length: T, ids: take(b.ids)!, targets: take(b.targets)!,
                             positions: take(b.positions), blockPositions: take(b.blockPositions), mask: mask,
                             tokenWeights: take(b.tokenWeights), advantages: take(b.advantages),
                             referenceLogProbs: take(b.referenceLogProbs), rolloutLogProbs: take(b.rolloutLogProbs),
                             pairs: b.pairs.map { _ in hi - lo }, versions: b.versions.map { v in rows.map { v[$0] } })
    }

    public var cursor: [String: Int] { inner.cursor }
    public func restore(cursor: [String: Int]) throws { try inner.restore(cursor: cursor) }
    public var truncatedCount: Int { inner.truncatedCount }
    public var exampleCount: Int { inner.exampleCount }
}
