// Differentiable log-probabilities of a batch's targets, per token and summed per sequence: the quantity DPO and
// policy-gradient objectives are built from.
import GLMCore
import GLMModel

public struct SequenceLogProbs {
    /// `[batch, length]`: log p of each target given its row's prefix; 0 where the target is `ignoreLabel`.
    public let perToken: Tensor
    /// `[batch]`: the sum of each row's target log-probabilities (the masked sum).
    public let perSequence: Tensor
    /// Targets counted in each row.
    public let tokenCounts: [Int]
    /// The mean predictive entropy over the counted targets (nats), when asked for.
    public let meanEntropy: Double?

    /// Runs `model` on `batch` (its positions, block positions and mask) and gathers the targets' log-probabilities
    /// through the chunked output projection (`[tokens, vocab]` logits are never held at once).
    public init(model: any CausalLanguageModel, batch b: TrainingBatch, entropy: Bool = false, temperature: Float = 1) {
        let r = model.targetLogProbs(ids: b.ids, targets: b.targets, batch: b.batch, length: b.length,
                                     positions: b.positions, blockPositions: b.blockPositions, mask: b.mask, entropy: entropy,
                                     temperature: temperature)
        perToken = r.logProbs
        perSequence = r.logProbs.sum(axis: 1)
        tokenCounts = (0..<b.batch).map { row in b.targets[(row * b.length)..<(row * b.length + b.length)].reduce(0) { $0 + ($1 == ignoreLabel ? 0 : 1) } }
        let counted = tokenCounts.reduce(0, +)
        meanEntropy = r.entropy.map { e in counted == 0 ? 0 : e.reduce(0.0) { $0 + Double($1) } / Double(counted) }
    }
}
