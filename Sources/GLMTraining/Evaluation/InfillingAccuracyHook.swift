// Blank-infilling accuracy on held-out spans: how often the model's most likely token is the span's next token.
import Foundation
import GLMCore
import GLMModel

/// Lays out held-out examples with the blank-infilling objective (fixed spans per evaluation) and measures, over
/// the Part B positions, the share whose argmax prediction is the target token, and the share of spans whose
/// every token is predicted correctly (teacher-forced).
public final class InfillingAccuracyHook: EvaluationHook {
    public let name: String
    let makeSource: () throws -> BatchSource
    let batches: Int
    let endOfPiece: Int32
    /// Data parallelism: each process scores its share of every batch's rows (spans never cross rows); the counts
    /// are added up.
    public var dataParallel: DataParallelPlacement?
    public var runsOnEveryProcess: Bool { dataParallel != nil }

    /// `endOfPiece` (`<eop>`) is the target that ends each span.
    public init(name: String = "infilling", batches: Int, endOfPiece: Int32, makeSource: @escaping () throws -> BatchSource) {
        self.name = name; self.batches = max(1, batches); self.endOfPiece = endOfPiece; self.makeSource = makeSource
    }

    public func evaluate(_ context: EvaluationContext) throws -> [String: Double] {
        let source = try makeSource()
        var correct = 0, total = 0, spansRight = 0, spans = 0
        try Autograd.noGrad {
            for _ in 0..<batches {
                var b = try source.nextBatch()
                if let dp = dataParallel { b = try ShardedBatchSource.shard(b, rank: dp.rank, of: dp.size) }
                let hidden = context.model.hiddenStates(ids: b.ids, batch: b.batch, length: b.length, positions: b.positions,
                                                        blockPositions: b.blockPositions, mask: b.mask)
                let logits = context.model.logits(hidden)
                let V = logits.shape.last!
                var spanOK = true, inSpan = false
                for i in 0..<(b.batch * b.length) {
                    let t = b.targets[i]
                    if t != ignoreLabel {
                        let row = logits.pointer + i * V
                        var best = 0
                        for v in 1..<V where row[v] > row[best] { best = v }
                        total += 1; inSpan = true
                        if Int32(best) == t { correct += 1 } else { spanOK = false }
                    }
                    // A span ends at its <eop> target, or where its row's targets stop (GLM's [gMASK] suffix has no <eop>).
                    let rowEnds = (i + 1) % b.length == 0 || b.targets[i + 1] == ignoreLabel
                    if inSpan && (t == endOfPiece || rowEnds) {
                        spans += 1; spansRight += spanOK ? 1 : 0; inSpan = false; spanOK = true
                    }
                }
            }
        }
        if let dp = dataParallel {
            let sums = try dp.synchronizer.reduce([Double(correct), Double(total), Double(spansRight), Double(spans)], .sum)
            (correct, total, spansRight, spans) = (Int(sums[0]), Int(sums[1]), Int(sums[2]), Int(sums[3]))
        }
        guard total > 0 else { throw GLMError("eval hook '\(name)': the evaluation data gave no infilling targets") }
        return ["accuracy": Double(correct) / Double(total), "tokens": Double(total),
                "span_accuracy": spans > 0 ? Double(spansRight) / Double(spans) : 0]
    }

    public func provides(metric: String) -> Bool { ["accuracy", "tokens", "span_accuracy"].contains(metric) }
}
