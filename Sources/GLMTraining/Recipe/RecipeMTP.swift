// The recipe's `mtp:` section: with `loss_weight` λ > 0 the model's MTP layer trains (its tensors become
// parameters, or a fresh one is made when the model has none and its config declares one) and the objective gets
// λ·mtp_loss added (MTPLossObjective). λ = 0 (the default): the MTP layer is frozen, kept and not computed.
import GLMCore
import GLMModel

extension RecipeRun {
    /// λ of the MTP loss (0 without an `mtp:` section).
    var mtpLossWeight: Double { recipe.mtp?.lossWeight ?? 0 }

    /// Checks the `mtp:` section against the model and the run, and makes the MTP layer train. Call before the
    /// trainable parameters are listed.
    func prepareMTP() throws {
        guard let section = recipe.mtp else { return }
        guard let m = model as? any MultiTokenPredictionModel else {
            throw GLMError("\(recipe.file): mtp: this \(model.modelTypeName) model has no multi-token-prediction layer")
        }
        guard section.lossWeight > 0 else { return }
        if recipe.lora != nil || recipe.model.adapter != nil {
            throw GLMError("\(recipe.file): mtp.loss_weight: \(section.lossWeight) with LoRA; the MTP layer trains in full fine-tuning only (an adapter cannot carry it), set 0")
        }
        if !m.hasMTPLayer {
            do { try m.initializeMTPLayer(seed: ExampleOrder.mix(recipe.training.seed, 0x4D5450, 0)) } catch let e as GLMError {
                throw GLMError("\(recipe.file): mtp.loss_weight: \(e.message)")
            }
            observer?.trainerDidReport(.note("mtp: the model has no MTP layer; training a freshly initialised one"))
        }
        try m.trainMTPLayer()
    }

    /// `objective` with the MTP loss added when λ > 0.
    func withMTPLoss(_ objective: TrainingObjective) -> TrainingObjective {
        guard mtpLossWeight > 0, let m = model as? any MultiTokenPredictionModel else { return objective }
        return MTPLossObjective(objective, model: m, lossWeight: Float(mtpLossWeight),
                                firstPosition: MTPFirstPosition(rawValue: recipe.mtp?.firstPosition ?? "keep") ?? .keep)
    }
}
