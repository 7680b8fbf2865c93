// The preference loss and TRL's reward metrics on held-out pairs (the `loss` hook of a dpo run).
import Foundation
import GLMCore

public final class PreferenceEvalHook: EvaluationHook {
    public let name: String
    let objective: PreferenceObjective
    let batches: Int
    let makeSource: () throws -> PreferenceBatchSource
    /// Data parallelism: each process scores its share of every batch's pairs; the pair-weighted sums are added
    /// up (a term that is a token mean within a batch — `rpo_alpha`'s and ORPO's NLL — is then a mean within each
    /// process's share, as in data-parallel training).
    public var dataParallel: DataParallelPlacement?
    public var runsOnEveryProcess: Bool { dataParallel != nil }

    /// `batches` batches of a fresh, unshuffled source are scored with `objective`; metrics are means over pairs.
    public init(name: String, objective: PreferenceObjective, batches: Int, makeSource: @escaping () throws -> PreferenceBatchSource) {
        self.name = name; self.objective = objective; self.batches = max(1, batches); self.makeSource = makeSource
    }

    public static let metricNames = ["loss", "pairs", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                                     "logps/chosen", "logps/rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen"]

    public func evaluate(_ context: EvaluationContext) throws -> [String: Double] {
        let source = try makeSource()
        var sums: [String: Double] = [:], pairs = 0
        try Autograd.noGrad {
            for k in 0..<batches {
                // The last batch holds the remaining pairs only (no wrap-around into the first ones).
                let start = k * source.pairs
                guard start < source.exampleCount else { break }
                var indices = Array(start..<min(start + source.pairs, source.exampleCount))
                if let dp = dataParallel {
                    let m = indices.count
                    indices = Array(indices[(m * dp.rank / dp.size)..<(m * (dp.rank + 1) / dp.size)])
                    guard !indices.isEmpty else { continue }
                }
                let b = try source.batch(indices)
                let r = try objective.loss(model: context.model, batch: b)
                let n = b.pairs!
                sums["loss", default: 0] += Double(r.loss.scalars[0]) * Double(n)
                for (key, v) in r.metrics { sums[key, default: 0] += v * Double(n) }
                pairs += n
            }
        }
        if let dp = dataParallel {  // the objective's metric names, in one order; a process without pairs has none
            let keys = PreferenceEvalHook.metricNames.filter { $0 != "pairs" }
            let unknown = sums.keys.filter { !keys.contains($0) }
            guard unknown.isEmpty else { throw GLMError("eval hook '\(name)': metric \(unknown.sorted()[0]) cannot be combined across processes") }
            let present = try dp.synchronizer.reduce(keys.map { sums[$0] == nil ? 0 : 1 }, .max)
            let total = try dp.synchronizer.reduce([Double(pairs)] + keys.map { sums[$0] ?? 0 }, .sum)
            pairs = Int(total[0])
            sums = [:]
            for (i, key) in keys.enumerated() where present[i] > 0 { sums[key] = total[1 + i] }
        }
        var out = sums.mapValues { $0 / Double(max(pairs, 1)) }
        out["pairs"] = Double(pairs)
        return out
    }

    public func provides(metric: String) -> Bool {
        let always = ["loss", "pairs", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"]
        switch objective.preference.kind {
        case .orpo: return PreferenceEvalHook.metricNames.contains(metric)
        default: return always.contains(metric) || (metric == "nll_loss" && (objective.preference.rpoAlpha ?? 0) != 0)
        }
    }
}
