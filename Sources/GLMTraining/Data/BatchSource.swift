// Where the trainer's micro-batches come from: an objective over a tokenized dataset, with a resumable cursor.
import GLMCore

public protocol BatchSource: AnyObject {
    /// The next micro-batch (advances the cursor).
    func nextBatch() throws -> TrainingBatch
    /// Everything needed to continue with the same batches after a restart.
    var cursor: [String: Int] { get }
    func restore(cursor: [String: Int]) throws
    /// Examples cut to fit `seq_len` so far (reported in the metrics).
    var truncatedCount: Int { get }
    /// Number of examples in one epoch.
    var exampleCount: Int { get }
}

/// Causal LM, one example per row: rows cut at `seqLen` and padded (labels ignored) to the longest row of the
/// batch. Labels follow each example's loss mask: `targets[t] = ids[t+1]` where `lossMask[t+1]`.
/// With pretokenized lines of one length L ≤ seqLen and no shuffling, batch k is lines k·B…k·B+B−1 and the loss
/// is the mean over all B·(L−1) predictions, as DESIGN.md promises.
public final class CausalRowSource: BatchSource {
    let examples: [TokenizedExample]
    var order: ExampleOrder
    let batchSize: Int
    let objective: CausalLMObjective
    public private(set) var truncatedCount = 0

    public init(examples: [TokenizedExample], batchSize: Int, seqLen: Int, shuffle: Bool, seed: UInt64, padID: Int32) throws {
        self.examples = examples; self.batchSize = batchSize
        objective = try CausalLMObjective(seqLen: seqLen, pad: padID)
        order = ExampleOrder(count: examples.count, shuffle: shuffle, seed: seed)
    }

    public var exampleCount: Int { examples.count }
    public var cursor: [String: Int] { order.cursor.merging(["truncated": truncatedCount]) { a, _ in a } }

    public func restore(cursor: [String: Int]) throws {
        try order.restore(cursor)
        truncatedCount = cursor["truncated"] ?? 0
    }

    public func nextBatch() throws -> TrainingBatch {
        let rows = (0..<batchSize).map { _ in examples[order.next().index] }
        truncatedCount += rows.reduce(0) { $0 + ($1.ids.count > objective.seqLen ? 1 : 0) }
        return objective.batch(documents: rows.map(\.ids), lossMasks: rows.map(\.lossMask))
    }
}
