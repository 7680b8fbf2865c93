// Evaluation hooks: run on the model in no-grad mode every `eval.every` steps and return named metrics.
import Foundation
import GLMCore
import GLMIO
import GLMModel

/// What a hook sees: the model being trained (adapters applied), its tokenizer, the step and the run directory.
public struct EvaluationContext {
    public let model: any CausalLanguageModel
    public let tokenizer: GLMTokenizer?
    public let step: Int
    public let runDirectory: String
    /// Saves the current model (merged, for adapter runs) as an HF directory at the given path.
    public let exportModel: (String) throws -> Void

    public init(model: any CausalLanguageModel, tokenizer: GLMTokenizer?, step: Int, runDirectory: String,
                exportModel: @escaping (String) throws -> Void) {
        self.model = model; self.tokenizer = tokenizer; self.step = step; self.runDirectory = runDirectory
        self.exportModel = exportModel
    }
}

public protocol EvaluationHook: AnyObject {
    /// The hook's name: metrics appear as `eval/<name>/<metric>`.
    var name: String { get }
    /// Metrics of the model as it is now. Runs without recording gradients.
    func evaluate(_ context: EvaluationContext) throws -> [String: Double]
    /// Whether `evaluate` returns `metric` (checked before training, so a wrong `eval.best_metric` fails at once).
    func provides(metric: String) -> Bool
    /// Whether every process of a data-parallel job runs `evaluate` (a hook that shares out its work and combines
    /// the results itself); otherwise only the primary process runs it and its values are broadcast.
    var runsOnEveryProcess: Bool { get }
}

extension EvaluationHook {
    /// Hooks whose metric names are not known in advance (external commands) accept any name.
    public func provides(metric: String) -> Bool { true }
    public var runsOnEveryProcess: Bool { false }
}

/// Held-out loss and perplexity: the token-weighted mean loss over batches of the evaluation data, made by the
/// training objective with a fixed order, so every evaluation sees the same tokens.
public final class HeldOutLossHook: EvaluationHook {
    public let name: String
    let makeSource: () throws -> BatchSource
    let batches: Int
    let objective: TrainingObjective
    /// Data parallelism: each process scores its share of every batch's rows and the sums are added up.
    let dataParallel: DataParallelPlacement?

    /// `makeSource` builds a fresh, unshuffled source over the evaluation examples; `batches` of it are scored with
    /// the training objective (each batch weighted as the objective weighs it: by loss tokens for token losses).
    public init(name: String = "loss", batches: Int, objective: TrainingObjective = NextTokenObjective(),
                dataParallel: DataParallelPlacement? = nil, makeSource: @escaping () throws -> BatchSource) {
        self.name = name; self.batches = max(1, batches); self.objective = objective; self.makeSource = makeSource
        self.dataParallel = dataParallel
    }

    public var runsOnEveryProcess: Bool { dataParallel != nil }

    public func evaluate(_ context: EvaluationContext) throws -> [String: Double] {
        let source = try makeSource()
        var sum = 0.0, tokens = 0
        try Autograd.noGrad {
            for _ in 0..<batches {
                var b = try source.nextBatch()
                if let dp = dataParallel { b = try ShardedBatchSource.shard(b, rank: dp.rank, of: dp.size) }
                let n = objective.weight(of: b)
                guard n > 0 else { continue }
                let loss = try objective.loss(model: context.model, batch: b).loss
                sum += Double(loss.pointer[0]) * Double(n); tokens += n
            }
        }
        if let dp = dataParallel {
            let total = try dp.synchronizer.reduce([sum, Double(tokens)], .sum)
            (sum, tokens) = (total[0], Int(total[1]))
        }
        guard tokens > 0 else { throw GLMError("eval hook '\(name)': the evaluation data has no tokens to score") }
        let mean = sum / Double(tokens)
        return ["loss": mean, "perplexity": Foundation.exp(mean), "tokens": Double(tokens)]
    }

    public func provides(metric: String) -> Bool { ["loss", "perplexity", "tokens"].contains(metric) }
}
