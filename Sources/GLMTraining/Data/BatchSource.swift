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
    let batchSize: Int, seqLen: Int
    let padID: Int32
    public private(set) var truncatedCount = 0

    public init(examples: [TokenizedExample], batchSize: Int, seqLen: Int, shuffle: Bool, seed: UInt64, padID: Int32) {
        self.examples = examples; self.batchSize = batchSize; self.seqLen = seqLen; self.padID = padID
        order = ExampleOrder(count: examples.count, shuffle: shuffle, seed: seed)
    }

    public var exampleCount: Int { examples.count }
    public var cursor: [String: Int] { order.cursor.merging(["truncated": truncatedCount]) { a, _ in a } }

    public func restore(cursor: [String: Int]) throws {
        try order.restore(cursor)
        truncatedCount = cursor["truncated"] ?? 0
    }

    public func nextBatch() throws -> TrainingBatch {
        var rows: [TokenizedExample] = []
        for _ in 0..<batchSize {
            var e = examples[order.next().index]
            if e.ids.count > seqLen {
                truncatedCount += 1
                e.ids = Array(e.ids.prefix(seqLen)); e.lossMask = e.lossMask.map { Array($0.prefix(seqLen)) }
            }
            rows.append(e)
        }
        let T = rows.map(\.ids.count).max()!
        var ids = [Int32](repeating: padID, count: batchSize * T)
        var targets = [Int32](repeating: ignoreLabel, count: batchSize * T)
        for (b, e) in rows.enumerated() {
            for t in 0..<e.ids.count {
                ids[b * T + t] = e.ids[t]
                if t + 1 < e.ids.count, e.lossMask?[t + 1] ?? true { targets[b * T + t] = e.ids[t + 1] }
            }
        }
        return TrainingBatch(batch: batchSize, length: T, ids: ids, targets: targets)
    }
}
