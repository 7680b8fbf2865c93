// The DPO-family objective: chosen and rejected responses of a pair batch through one forward pass, the
// reference policy's log-probabilities from the batch (precomputed for full fine-tuning) or from the same model
// with its adapters swapped for the reference's (LoRA: no second copy of the weights), and `PreferenceLoss`.
import GLMCore
import GLMModel

public final class PreferenceObjective: TrainingObjective {
    public let name: String
    public let preference: PreferenceLoss
    /// The adapted linears the reference policy runs with, swapped in for a no-grad forward when a batch carries
    /// no reference log-probabilities: empty for the base model (new LoRA adapters), or the hooks of a frozen copy
    /// of the adapter training started from. nil: the batch must carry them (or the loss is reference-free).
    public let referenceLinears: [String: LinearOverride]?

    public init(_ preference: PreferenceLoss, referenceLinears: [String: LinearOverride]? = nil, name: String = "dpo") {
        self.preference = preference; self.referenceLinears = referenceLinears; self.name = name
    }

    /// A micro-batch counts its pairs (the loss is a mean over pairs, as TRL's).
    public func weight(of batch: TrainingBatch) -> Int { batch.pairs ?? 0 }

    public func loss(model: any CausalLanguageModel, batch b: TrainingBatch) throws -> ObjectiveResult {
        guard let pairs = b.pairs else { throw GLMError("the \(name) objective needs a batch of chosen/rejected pairs") }
        let policy = SequenceLogProbs(model: model, batch: b)
        let reference = preference.usesReference ? try referenceLogProbs(model: model, batch: b) : nil
        let (loss, metrics) = preference.evaluate(policy: policy.perSequence, tokenCounts: policy.tokenCounts, reference: reference)
        precondition(policy.tokenCounts.count == 2 * pairs)
        return ObjectiveResult(loss: loss, metrics: metrics)
    }

    /// The reference policy's summed log-probabilities of each row of `b` (`[2·pairs]`).
    public func referenceLogProbs(model: any CausalLanguageModel, batch b: TrainingBatch) throws -> [Float] {
        if let stored = b.referenceLogProbs {
            return (0..<b.batch).map { row in
                var s: Float = 0
                for t in 0..<b.length where b.targets[row * b.length + t] != ignoreLabel { s += stored[row * b.length + t] }
                return s
            }
        }
        guard let referenceLinears else {
            throw GLMError("the \(name) objective has no reference policy: the batch carries no reference log-probabilities and no adapters can be switched off")
        }
        let trained = model.adaptedLinears
        model.adaptedLinears = referenceLinears
        defer { model.adaptedLinears = trained }
        return Autograd.noGrad { SequenceLogProbs(model: model, batch: b).perSequence.scalars }
    }
}
