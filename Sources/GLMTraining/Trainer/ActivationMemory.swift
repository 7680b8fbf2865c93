// A micro-batch whose activations cannot fit is refused instead of dying in an allocation: the training step keeps,
// per token and layer, at least the input and output of every linear a token passes through (routed experts left
// out), in f32 — 18 KiB a token and layer for glm-tiny, whose measured step holds ~25. That floor times the
// micro-batch's tokens must fit in the memory this process may use (`MemoryBudget`); with activation recompute only
// each layer's input and one layer's activations are kept. The trainer checks every micro-batch (its real rows and
// length, after data-parallel sharding); a recipe whose rows are always `seq_len` long (pretraining, packed SFT) is
// also checked before step 1.
import Foundation
import GLMCore
import GLMModel

public enum ActivationMemory {
    /// The floor on a training step's activation bytes per token of `config` (see above).
    public static func bytesPerToken(_ config: any CausalLMConfig, recompute: Bool) -> Int {
        var perLayer: [Int: Int] = [:]
        for l in config.adaptableLinears where l.kind != .expert && l.shape.count == 2 {
            perLayer[l.layer, default: 0] += l.shape[0] + l.shape[1]
        }
        let floats = recompute ? config.numHiddenLayers * config.hiddenSize + (perLayer.values.max() ?? 0)
                               : perLayer.values.reduce(0, +)
        return 4 * floats
    }

    /// Throws when `rows` × `length` tokens of activations pass the memory this process may use; `what` says where
    /// the shape comes from ("RECIPE: training.batch_size × seq_len").
    public static func check(rows: Int, length: Int, config: any CausalLMConfig, recompute: Bool, what: String) throws {
        let perToken = bytesPerToken(config, recompute: recompute)
        let (tokens, o1) = rows.multipliedReportingOverflow(by: length)
        let (bytes, o2) = tokens.multipliedReportingOverflow(by: perToken)
        let memory = MemoryBudget.available
        guard o1 || o2 || bytes > memory else { return }
        let need = o1 || o2 ? "more than 2^63 bytes" : "at least \(bytes >> 20) MiB"
        throw GLMError("\(what) puts \(rows) rows × \(length) tokens in a micro-batch; their activations need \(need) (\(perToken >> 10) KiB a token for this model), more than the \(memory >> 20) MiB this process may use; lower training.batch_size (and raise grad_accum) or seq_len\(recompute ? "" : ", or set training.gradient_checkpointing: true")")
    }
}
