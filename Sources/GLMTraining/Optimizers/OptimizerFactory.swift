// The optimizer a recipe's `optimizer:` section names.
import GLMCore

public enum OptimizerFactory {
    public static func make(_ o: Recipe.OptimizerSection, parameters: inout [TrainableParameter]) throws -> Optimizer {
        switch o.name {
        case "adamw":
            return AdamW(beta1: Float(o.betas.0), beta2: Float(o.betas.1), eps: Float(o.eps))
        case "muon":
            // Muon orthogonalises matrices; a tensor of 3 or more dimensions (stacked experts) has no default rule,
            // and is never routed to AdamW silently.
            if let p = parameters.first(where: { $0.tensor.rank > 2 }) {
                throw GLMError("optimizer.name: muon: parameter '\(p.name)' has shape \(p.tensor.shape); Muon takes 2-D matrices and a \(p.tensor.rank)-D parameter has no routing rule (use adamw)")
            }
            // The recipe's lr is the scheduled rate of the Muon group; adamw_lr (default: the same) that of the rest.
            let muon = Muon(momentum: Float(o.momentum), nsSteps: o.nsSteps, scale: o.muonScale == "moonlight" ? .moonlight : .original)
            return MuonWithAdamW(muon: muon, adamW: AdamW(beta1: Float(o.betas.0), beta2: Float(o.betas.1), eps: Float(o.eps)),
                                 adamWLearningRateScale: o.lr > 0 ? Float((o.adamwLR ?? o.lr) / o.lr) : 1)
        default:
            throw GLMError("optimizer.name: '\(o.name)' is not available yet")
        }
    }
}
