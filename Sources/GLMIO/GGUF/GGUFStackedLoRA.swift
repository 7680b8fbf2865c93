// LoRA on modules llama.cpp keeps in one stacked tensor (a MoE's routed experts: `blk.N.ffn_gate_exps` is
// `[experts, out, in]`). llama.cpp's runtime (`build_lora_mm_id`) takes one A `[experts, r, in]` and one B
// `[experts, out, r]` per stacked tensor and applies scale alpha/r with r = B's rank dimension; llama.cpp's
// convert_lora_to_gguf.py writes them by `torch.stack`ing the per-expert A and B of a PEFT adapter in the
// transformers-4 layout (`mlp.experts.{e}.gate_proj`), once every expert's three projections of a layer are in.
//
// Stacking here: experts the adapter leaves out get zero A and B (no change), experts of a smaller rank are padded
// with zero rows of A and columns of B to the stack's largest rank R, and B is multiplied by R/r so that
// llama.cpp's alpha/R gives the adapter's own scale alpha/r (R = r for adapters GLMTrain trains from scratch, so B
// is then written as it is; a run started from peft's fused routed-expert adapter keeps gate/up at its rank ρ).
import GLMCore
import GLMModel

enum GGUFStackedLoRA {
    /// One stacked tensor's A and B from the adapter's modules that sit in it (each module's `ggufStack` names it).
    static func stack(_ modules: [AdaptableLinear], adapter: PEFTAdapter) -> (a: Tensor, b: Tensor) {
        let first = modules[0], count = first.ggufStack!.count
        let (out, inner) = (first.shape[0], first.shape[1])
        let rank = modules.map { adapter.matrices(module: $0.module)!.a.shape[0] }.max()!
        let factor = Float(Double(rank) / Double(adapter.config.r))
        let a = Tensor(zeros: [count, rank, inner]), b = Tensor(zeros: [count, out, rank])
        for m in modules {
            let (ma, mb) = adapter.matrices(module: m.module)!
            let e = m.ggufStack!.index, r = ma.shape[0]
            // A_e's first r rows; B_e's first r columns
            (a.pointer + e * rank * inner).update(from: ma.pointer, count: r * inner)
            for row in 0..<out {
                let dst = b.pointer + (e * out + row) * rank, src = mb.pointer + row * r
                for k in 0..<r { dst[k] = rank == adapter.config.r ? src[k] : src[k] * factor }
            }
        }
        return (a, b)
    }

    /// The per-module A and B held in stacked tensors read from a file: `a` `[count, R, in]` and `b` `[count, out, R]`
    /// for the modules at `slots` (index → module); experts whose A and B are both all zero (left out when written)
    /// are dropped. Shapes are checked against `count`; errors name `source` and the tensor.
    static func unstack(a: Tensor, b: Tensor, name: String, slots: [Int: AdaptableLinear], source: String) throws -> [String: Tensor] {
        let count = slots.values.first!.ggufStack!.count
        guard a.rank == 3, b.rank == 3, a.shape[0] == count, b.shape[0] == count, a.shape[1] == b.shape[2] else {
            throw GLMError("\(source): tensor '\(name)': lora_a \(a.shape) and lora_b \(b.shape) are not a stack of \(count) experts' [r, in] and [out, r]")
        }
        let rank = a.shape[1], inner = a.shape[2], out = b.shape[1]
        var tensors: [String: Tensor] = [:]
        for (e, m) in slots.sorted(by: { $0.key < $1.key }) {
            let ma = Tensor(zeros: [rank, inner]), mb = Tensor(zeros: [out, rank])
            ma.pointer.update(from: a.pointer + e * rank * inner, count: rank * inner)
            mb.pointer.update(from: b.pointer + e * out * rank, count: out * rank)
            let zero = UnsafeBufferPointer(start: ma.pointer, count: ma.count).allSatisfy { $0 == 0 }
                && UnsafeBufferPointer(start: mb.pointer, count: mb.count).allSatisfy { $0 == 0 }
            if zero { continue }
            tensors[LoRATensorName.name(module: m.module, isB: false)] = ma
            tensors[LoRATensorName.name(module: m.module, isB: true)] = mb
        }
        return tensors
    }
}
