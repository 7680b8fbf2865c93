// The optimizer a recipe's `optimizer:` section names.
import GLMCore

public enum OptimizerFactory {
    public static func make(_ o: Recipe.OptimizerSection, parameters: inout [TrainableParameter]) throws -> Optimizer {
        switch o.name {
        case "adamw":
            return AdamW(beta1: Float(o.betas.0), beta2: Float(o.betas.1), eps: Float(o.eps))
        default:
            throw GLMError("optimizer.name: '\(o.name)' is not available yet")
        }
    }
}
