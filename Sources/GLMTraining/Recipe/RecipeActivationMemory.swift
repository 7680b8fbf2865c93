// A micro-batch whose activations cannot fit is refused before step 1: the training step keeps, per token and
// layer, at least the input and output of every linear a token passes through (routed experts left out), in f32.
// That floor (18 KiB a token and layer for glm-tiny, whose measured step holds ~25) times the micro-batch's
// tokens must fit in the memory this process may use (`MemoryBudget`); with activation recompute only each
// layer's input and one layer's activations are kept. Without the check a huge batch_size died in an allocation.
import Foundation
import GLMCore
import GLMModel

extension RecipeRun {
    /// The floor on a training step's activation bytes per token of `config` (see above).
    static func activationBytesPerToken(_ config: any CausalLMConfig, recompute: Bool) -> Int {
        var perLayer: [Int: Int] = [:]
        for l in config.adaptableLinears where l.kind != .expert && l.shape.count == 2 {
            perLayer[l.layer, default: 0] += l.shape[0] + l.shape[1]
        }
        let floats = recompute ? config.numHiddenLayers * config.hiddenSize + (perLayer.values.max() ?? 0)
                               : perLayer.values.reduce(0, +)
        return 4 * floats
    }

    /// Throws when `rows` × `length` tokens of activations pass the memory this process may use.
    func checkActivationMemory(rows: Int, length: Int) throws {
        let perToken = RecipeRun.activationBytesPerToken(config, recompute: recipe.training.gradientCheckpointing)
        let tokens = rows * length  // both ≤ 2^24 by the recipe's bounds
        let (bytes, overflow) = tokens.multipliedReportingOverflow(by: perToken)
        let memory = MemoryBudget.available
        guard overflow || bytes > memory else { return }
        let need = overflow ? "more than 2^63 bytes" : "at least \(bytes >> 20) MiB"
        throw GLMError("\(recipe.file): training.batch_size × seq_len puts \(tokens) tokens in a micro-batch; their activations need \(need) (\(perToken >> 10) KiB a token for this model), more than the \(memory >> 20) MiB this process may use; lower batch_size (and raise grad_accum) or seq_len\(recipe.training.gradientCheckpointing ? "" : ", or set training.gradient_checkpointing: true")")
    }
}
