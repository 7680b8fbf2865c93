// Load balancing of a Mixture-of-Experts model during training (reference/glm4-moe.md §5):
// - loss-free balancing (DeepSeek-V3, GLM-4.5; Megatron's `get_updated_expert_bias`): after each optimizer step,
//   per MoE layer, b_e += u · sign(mean(load) − load_e), where load_e counts the step's tokens routed to expert e
//   (every micro-batch of the step) and b is the router's `e_score_correction_bias` (f32, selection only);
// - the optional sequence-level auxiliary loss (Megatron `seq_aux_loss`): per sequence of length T,
//   p̂ = s / Σ_E s, f_e = E/(K·T) · #{t: e ∈ topK(s_t)} (plain top-k, no bias), L = α · mean_seq Σ_e f_e · mean_t p̂_{t,e},
//   summed over the MoE layers and added to the objective's loss;
// - router metrics: per layer, the step's largest and smallest expert load over the mean load.
import Foundation
import GLMCore
import GLMModel

/// The recipe's `moe:` section.
public struct MoEOptions: Equatable, Sendable {
    /// u of the bias rule (0: the bias stays as loaded).
    public var biasUpdateRate: Double
    /// α of the sequence-level auxiliary loss (0: none).
    public var auxLossCoef: Double
    public init(biasUpdateRate: Double = 0.001, auxLossCoef: Double = 0) {
        self.biasUpdateRate = biasUpdateRate; self.auxLossCoef = auxLossCoef
    }
}

/// Watches a MoE model's routing while it trains (recording forward passes only; evaluation and generation run
/// without the tape and are not counted), adds the auxiliary loss and applies the bias rule once per step.
public final class MoEBalancer {
    public let model: any MixtureOfExpertsModel
    public let options: MoEOptions
    /// Tokens routed to each expert of each MoE layer since the last step (`[layer: [experts]]`).
    public private(set) var loads: [Int: [Int]] = [:]
    private var pendingAuxLoss: Tensor?

    public init(model: any MixtureOfExpertsModel, options: MoEOptions) {
        self.model = model
        self.options = options
        model.routingObserver = { [unowned self] event in self.observe(event) }
    }

    /// Stops watching the model.
    public func detach() { model.routingObserver = nil }

    func observe(_ event: RoutingEvent) {
        guard Autograd.isRecording else { return }
        var l = loads[event.layer] ?? [Int](repeating: 0, count: event.routing.experts)
        for (e, n) in event.routing.loads.enumerated() { l[e] += n }
        loads[event.layer] = l
        if options.auxLossCoef > 0 {
            let term = MoEBalancer.sequenceAuxLoss(scores: event.scores, batch: event.batch, length: event.length,
                                                   topK: event.routing.topK)
            pendingAuxLoss = pendingAuxLoss.map { $0 + term } ?? term
        }
    }

    /// The auxiliary loss of the forward passes since the last call (α included), or nil when there is none.
    public func takeAuxLoss() -> Tensor? {
        defer { pendingAuxLoss = nil }
        return pendingAuxLoss.map { $0.scaled(Float(options.auxLossCoef)) }
    }

    /// Megatron's `sequence_load_balancing_loss_func` without α, for one layer: `scores` `[B·T, E]` (sigmoid).
    public static func sequenceAuxLoss(scores: Tensor, batch B: Int, length T: Int, topK K: Int) -> Tensor {
        let E = scores.shape[1]
        let p = scores / scores.sum(axis: 1, keepDims: true)                 // p̂ [B·T, E]
        let meanP = p.reshaped([B, T, E]).mean(axis: 1)                      // [B, E]
        // f_e per sequence from the plain top-k of the scores (no bias, no groups; p̂ ∝ s has the same top-k).
        var f = [Float](repeating: 0, count: B * E)
        let s = scores.scalars
        for n in 0..<(B * T) {
            let row = Array(s[(n * E)..<(n * E + E)])
            let top = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(K)
            for e in top { f[(n / T) * E + e] += Float(E) / Float(K * T) }
        }
        return (meanP * Tensor(f, shape: [B, E])).sum().scaled(1 / Float(B))
    }

    /// After an optimizer step: applies the bias rule to every layer seen, returns the step's router metrics
    /// (`moe/layer_<l>/max_load_ratio`, `moe/layer_<l>/min_load_ratio`, and over all layers `moe/max_load_ratio`,
    /// `moe/min_load_ratio`), and starts counting afresh.
    public func finishStep() -> [String: Double] {
        var metrics: [String: Double] = [:]
        var worstMax = 0.0, worstMin = Double.infinity
        for (layer, load) in loads.sorted(by: { $0.key < $1.key }) {
            let mean = Double(load.reduce(0, +)) / Double(max(load.count, 1))
            guard mean > 0 else { continue }
            let maxRatio = Double(load.max()!) / mean, minRatio = Double(load.min()!) / mean
            metrics["moe/layer_\(layer)/max_load_ratio"] = maxRatio
            metrics["moe/layer_\(layer)/min_load_ratio"] = minRatio
            worstMax = max(worstMax, maxRatio); worstMin = min(worstMin, minRatio)
            if options.biasUpdateRate > 0, let bias = model.correctionBias(layer: layer) {
                let u = Float(options.biasUpdateRate), meanF = Float(mean)
                let bp = bias.pointer
                for (e, n) in load.enumerated() {
                    let d = meanF - Float(n)
                    bp[e] += d > 0 ? u : d < 0 ? -u : 0
                }
            }
        }
        if !loads.isEmpty && worstMin.isFinite {
            metrics["moe/max_load_ratio"] = worstMax
            metrics["moe/min_load_ratio"] = worstMin
        }
        loads = [:]
        return metrics
    }
}

/// An objective with the balancer's auxiliary loss added to its loss (logged as `moe/aux_loss`).
public final class MoEAuxLossObjective: TrainingObjective {
    public let inner: TrainingObjective
    public let balancer: MoEBalancer
    public var name: String { inner.name }

    public init(_ inner: TrainingObjective, balancer: MoEBalancer) { self.inner = inner; self.balancer = balancer }

    public func weight(of batch: TrainingBatch) -> Int { inner.weight(of: batch) }

    public func loss(model: any CausalLanguageModel, batch: TrainingBatch) throws -> ObjectiveResult {
        _ = balancer.takeAuxLoss()  // nothing of an earlier (evaluation) pass carries over
        var r = try inner.loss(model: model, batch: batch)
        if let aux = balancer.takeAuxLoss() {
            r.metrics["moe/aux_loss"] = Double(aux.item)
            r.loss = r.loss + aux
        }
        return r
    }
}
