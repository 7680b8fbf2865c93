// What the trainer needs from any optimizer: an update, and its state as named tensors for checkpoints.
import GLMCore

public protocol Optimizer: AnyObject {
    /// Number of updates applied so far.
    var stepCount: Int { get }
    /// Applies one update with the scheduled learning rate `lr` (times each parameter's scale) to every
    /// parameter that has a gradient.
    func step(_ parameters: [TrainableParameter], lr: Float)
    /// The whole state as named tensors (for example `exp_avg/<parameter>`), enough to continue bit-identically.
    func stateTensors() -> [String: Tensor]
    /// Restores what `stateTensors()` returned together with `stepCount`; throws naming a malformed entry.
    func restoreState(step: Int, tensors: [String: Tensor]) throws
}

extension AdamW: Optimizer {
    public func stateTensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (name, m) in firstMoments { out["exp_avg/" + name] = m }
        for (name, v) in secondMoments { out["exp_avg_sq/" + name] = v }
        return out
    }

    public func restoreState(step: Int, tensors: [String: Tensor]) throws {
        var first: [String: Tensor] = [:], second: [String: Tensor] = [:]
        for (key, t) in tensors {
            if key.hasPrefix("exp_avg/") { first[String(key.dropFirst(8))] = t }
            else if key.hasPrefix("exp_avg_sq/") { second[String(key.dropFirst(11))] = t }
            else { throw GLMError("AdamW state: unexpected entry '\(key)' (expected exp_avg/… or exp_avg_sq/…)") }
        }
        guard Set(first.keys) == Set(second.keys) else {
            throw GLMError("AdamW state: first and second moments name different parameters")
        }
        restore(step: step, first: first, second: second)
    }
}
