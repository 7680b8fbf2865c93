// What the trainer does differently when a `GradientSynchronizer` joins it to other processes (data
// parallelism): the step's loss, metrics and token counts are combined over the processes, evaluation hooks run
// on the primary process and their values are broadcast, and every process must start from the same state.
import Foundation
import GLMCore

extension Trainer.StepResult {
    /// This step over every process: loss and metrics as means weighted by each process's weight (what one
    /// process computes over the whole global batch, as `trainStep` does over micro-batches), tokens summed.
    /// Processes whose weights are all zero count equally.
    func combined(over sync: GradientSynchronizer, weight: Int) throws -> Trainer.StepResult {
        let keys = metrics.keys.sorted()
        let keyHash = Double(Trainer.fingerprint(strings: keys))
        let agree = try sync.reduce([Double(keys.count), keyHash, -Double(keys.count), -keyHash], .max)
        guard agree[0] == -agree[2] && agree[1] == -agree[3] else {
            throw GLMError("data-parallel processes report different metrics (\(keys.joined(separator: ", ")) here); every process must run the same objective")
        }
        let w = Double(weight)
        var local = [w, 1, Double(tokens), Double(lossTokens), loss * w, loss]
        for k in keys { local += [metrics[k]! * w, metrics[k]!] }
        let s = try sync.reduce(local, .sum)
        func mean(_ i: Int) -> Double { s[0] > 0 ? s[i] / s[0] : s[i + 1] / s[1] }
        var out = self
        out.tokens = Int(s[2]); out.lossTokens = Int(s[3])
        out.loss = mean(4)
        for (j, k) in keys.enumerated() { out.metrics[k] = mean(6 + 2 * j) }
        return out
    }
}

extension Trainer {
    /// Runs the hooks (`eval/<hook>/<metric>` values). With other processes, hooks that share out their work
    /// (`runsOnEveryProcess`: the held-out loss) run everywhere and combine their results themselves; the others run
    /// on the primary only (they generate text, run commands, export models), which broadcasts their values, so every
    /// process takes the same best-checkpoint and early-stopping decisions.
    func runHooks(_ context: EvaluationContext) throws -> [String: Double] {
        func run(_ selected: [EvaluationHook]) throws -> [String: Double] {
            var values: [String: Double] = [:]
            for hook in selected {
                for (k, v) in try hook.evaluate(context) { values["eval/\(hook.name)/\(k)"] = v }
            }
            return values
        }
        guard let sync = gradientSynchronizer else { return try run(hooks) }
        let everywhere = try run(hooks.filter(\.runsOnEveryProcess))
        let mine = isPrimary ? try run(hooks.filter { !$0.runsOnEveryProcess }) : [:]
        // key TAB bit pattern, one per line: exact, and NaN survives (the metrics log rejects it with its error).
        let text = mine.keys.sorted().map { "\($0)\t\(mine[$0]!.bitPattern)" }.joined(separator: "\n")
        let received = String(decoding: try sync.broadcast(Data(text.utf8)), as: UTF8.self)
        var values: [String: Double] = [:]
        for line in received.split(separator: "\n") {
            let parts = line.split(separator: "\t")
            guard parts.count == 2, let bits = UInt64(parts[1]) else { throw GLMError("data-parallel evaluation: malformed values from the primary process") }
            values[String(parts[0])] = Double(bitPattern: bits)
        }
        return values.merging(everywhere) { a, _ in a }
    }

    /// Fails unless every process holds the same step, data cursor, trained weights and optimizer state (they
    /// would otherwise train different models while averaging their gradients) and has the same plan: steps,
    /// micro-batches, evaluation schedule and hooks, trained tensors (a difference would leave one process waiting
    /// in a collective the others never reach).
    func checkProcessesAgree(step: Int) throws {
        guard let sync = gradientSynchronizer else { return }
        let cursor = source.cursor
        let state = optimizer.stateTensors()
        let o = options
        let plan = ["steps \(o.steps)", "grad_accum \(o.gradAccum)", "max_grad_norm \(o.maxGradNorm)", "eval \(o.evalEvery) \(o.evalAtStart)",
                    "best \(o.bestMetric ?? "") \(o.bestMode) \(o.earlyStopPatience ?? -1)", "objective \(objective.name)"]
            + hooks.map { "hook \($0.name) \($0.runsOnEveryProcess)" } + parameters.map { "\($0.name) \($0.tensor.shape)" }
        let v: [Double] = [Double(step),
                           Double(Trainer.fingerprint(strings: cursor.keys.sorted().map { "\($0)=\(cursor[$0]!)" })),
                           Double(Trainer.fingerprint(tensors: parameters.map(\.tensor))),
                           Double(Trainer.fingerprint(tensors: state.keys.sorted().map { state[$0]! })),
                           Double(Trainer.fingerprint(strings: plan))]
        let m = try sync.reduce(v + v.map { -$0 }, .max)
        let names = ["step", "data cursor", "trained weights", "optimizer state", "training plan (steps, grad_accum, evaluation, hooks or trained tensors)"]
        let differing = (0..<v.count).filter { m[$0] != -m[v.count + $0] }.map { names[$0] }
        guard differing.isEmpty else {
            throw GLMError("data-parallel processes start from different states (\(differing.joined(separator: ", ")) differ; here step \(step)): every process needs the same recipe, model files and run directory (shared, when resuming)")
        }
    }

    /// 52 bits of FNV-1a over the tensors' float bits (exact as a Double).
    static func fingerprint(tensors: [Tensor]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for t in tensors {
            h = (h ^ UInt64(t.count)) &* 0x100_0000_01b3
            t.pointer.withMemoryRebound(to: UInt32.self, capacity: t.count) { p in
                for i in 0..<t.count { h = (h ^ UInt64(p[i])) &* 0x100_0000_01b3 }
            }
        }
        return h & ((1 << 52) - 1)
    }

    static func fingerprint(strings: [String]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for s in strings { for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }; h = (h ^ 10) &* 0x100_0000_01b3 }
        return h & ((1 << 52) - 1)
    }
}
