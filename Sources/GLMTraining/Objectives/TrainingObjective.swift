// The objective seam: a training objective turns one micro-batch into a scalar loss and named metrics. The
// trainer is given one and logs whatever metrics it returns; new losses (DPO, policy gradients) are new types
// beside `NextTokenObjective`, not branches in the trainer.
import GLMCore
import GLMModel

/// What an objective computed on one micro-batch.
public struct ObjectiveResult {
    /// A scalar loss (recorded when gradients are on).
    public var loss: Tensor
    /// Extra metrics, logged as `<name>` next to `loss` (combined over a step's micro-batches by their weights).
    public var metrics: [String: Double]

    public init(loss: Tensor, metrics: [String: Double] = [:]) { self.loss = loss; self.metrics = metrics }
}

public protocol TrainingObjective: AnyObject {
    /// The objective's name (`causal`, `sft`, `blank_infilling`, ...).
    var name: String { get }
    /// What a micro-batch counts for when the micro-batches of one step are combined: the loss of a step is
    /// Σ weight_i · loss_i / Σ weight_i (transformers' `num_items_in_batch` for token losses: loss tokens).
    func weight(of batch: TrainingBatch) -> Int
    /// The loss (a mean over what `weight` counts) and metrics of `batch` under `model`.
    func loss(model: any CausalLanguageModel, batch: TrainingBatch) throws -> ObjectiveResult
}

/// Next-token cross-entropy over the batch's targets (`ignoreLabel` skipped), the mean over loss tokens. The causal
/// LM, packed causal, SFT and GLM blank-infilling objectives are all this loss over the batches their sources make
/// (what differs is which tokens carry targets, the positions and the attention mask).
public final class NextTokenObjective: TrainingObjective {
    public let name: String

    public init(name: String = "causal") { self.name = name }

    public func weight(of batch: TrainingBatch) -> Int { batch.lossTokenCount }

    public func loss(model: any CausalLanguageModel, batch b: TrainingBatch) throws -> ObjectiveResult {
        ObjectiveResult(loss: model.loss(ids: b.ids, targets: b.targets, batch: b.batch, length: b.length,
                                         positions: b.positions, blockPositions: b.blockPositions, mask: b.mask))
    }
}
