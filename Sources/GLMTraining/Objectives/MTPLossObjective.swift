// The multi-token-prediction loss (DeepSeek-V3 / GLM-4.5 MTP, reference/glm4-moe.md §4): beside the objective's own
// next-token loss, the MTP layer predicts token t+2 from the main model's final hidden state h_t (of the same forward
// pass, so the MTP loss's gradient reaches the main model too) and the embedding of token t+1. The loss trained and
// logged as `loss` is lm_loss + λ·mtp_loss; `lm_loss` (the objective's own) and `mtp_loss` (the mean cross-entropy
// over the MTP targets) are logged beside it.
import GLMCore
import GLMModel

/// An objective with the MTP loss added. The inner objective must run one main forward pass over the batch's ids with
/// next-token targets (`targets[t]` = `ids[t+1]` or ignored: causal pretraining and SFT); others are an error.
public final class MTPLossObjective: TrainingObjective {
    public let inner: TrainingObjective
    public let model: any MultiTokenPredictionModel
    /// λ.
    public let lossWeight: Float
    public let firstPosition: MTPFirstPosition
    public var name: String { inner.name }

    public init(_ inner: TrainingObjective, model: any MultiTokenPredictionModel, lossWeight: Float,
                firstPosition: MTPFirstPosition = .keep) {
        self.inner = inner; self.model = model; self.lossWeight = lossWeight; self.firstPosition = firstPosition
    }

    public func weight(of batch: TrainingBatch) -> Int { inner.weight(of: batch) }

    /// The MTP inputs and targets of a batch: row t reads token t+1 (the last row any token: it predicts nothing)
    /// and predicts `targets[t+1]` (= token t+2) where both `targets[t]` and `targets[t+1]` count; else ignored.
    public static func shifted(ids: [Int32], targets: [Int32], batch B: Int, length T: Int) -> (nextIds: [Int32], targets: [Int32]) {
        var next = ids, out = [Int32](repeating: ignoreLabel, count: B * T)
        for b in 0..<B {
            for t in 0..<T {
                let i = b * T + t
                guard t + 1 < T else { break }
                next[i] = ids[i + 1]
                if targets[i] != ignoreLabel && targets[i + 1] != ignoreLabel { out[i] = targets[i + 1] }
            }
        }
        return (next, out)
    }

    /// The MTP loss (mean cross-entropy) of one main forward pass, nil when no position has an MTP target.
    public func mtpLoss(_ f: MainForward, targets: [Int32]) -> Tensor? {
        let (next, mtpTargets) = MTPLossObjective.shifted(ids: f.ids, targets: targets, batch: f.batch, length: f.length)
        guard mtpTargets.contains(where: { $0 != ignoreLabel }) else { return nil }
        let h = model.mtpHiddenStates(hidden: f.hidden, nextIds: next, batch: f.batch, length: f.length, positions: f.positions,
                                      mask: f.mask, cache: nil, firstPosition: firstPosition)
        return Tensor.linearCrossEntropy(hidden: h, weight: model.mtpHead, targets: mtpTargets)
    }

    public func loss(model _: any CausalLanguageModel, batch b: TrainingBatch) throws -> ObjectiveResult {
        var passes: [MainForward] = []
        model.forwardObserver = { passes.append($0) }
        defer { model.forwardObserver = nil }
        var r = try inner.loss(model: model, batch: b)
        guard passes.count == 1, passes[0].ids == b.ids else {
            throw GLMError("mtp.loss_weight: the \(inner.name) objective ran \(passes.count) forward passes that are not one pass over its batch; the MTP loss needs one (causal or sft)")
        }
        for i in b.targets.indices where b.targets[i] != ignoreLabel && i % b.length != b.length - 1 && b.targets[i] != b.ids[i + 1] {
            throw GLMError("mtp.loss_weight: the \(inner.name) objective's targets are not the next tokens (position \(i)); the MTP loss needs next-token targets (causal or sft)")
        }
        if let mtp = mtpLoss(passes[0], targets: b.targets) {
            r.metrics["lm_loss"] = Double(r.loss.item)
            r.metrics["mtp_loss"] = Double(mtp.item)
            r.loss = r.loss + mtp.scaled(lossWeight)
        }
        return r
    }
}
