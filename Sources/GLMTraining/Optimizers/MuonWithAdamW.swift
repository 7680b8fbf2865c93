// Muon for the hidden matrices of a GLM model and AdamW for everything else, as one Optimizer.
import GLMCore

/// Muon on the 2-D hidden weight matrices and AdamW on the rest (embedding, output head, norms, biases), the way
/// Keller Jordan's `MuonWithAuxAdam` and Moonlight split a model.
///
/// **Routing** (default `isHiddenMatrix`): a parameter goes to Muon when its name contains `layers.`, ends in
/// `.weight` and it has two dimensions — for GLM the q/k/v/o projections, `mlp.gate_up_proj` (orthogonalised as
/// one [2·I, H] matrix) and `mlp.down_proj`. `model.embed_tokens.weight`, `lm_head.weight`, every norm weight and
/// the q/k/v biases go to AdamW. Pass `routesToMuon` to choose otherwise.
///
/// **Learning rates**: `step(_, lr:)` receives the one scheduled rate. Muon parameters are updated with
/// `lr × muonLearningRateScale`, AdamW parameters with `lr × adamWLearningRateScale` (each also times the
/// parameter's own `learningRateScale`), so warm-up and decay apply to both groups alike, like a torch
/// LambdaLR over two param groups. Both scales default to 1, i.e. one shared rate:
/// - Moonlight style (`Muon(scale: .moonlight)`): share one AdamW-sized rate and weight decay for both groups,
///   e.g. lr 1e−3 … 1e−2, weight decay 0.1 — the Moonlight recipe, scales left at 1.
/// - Keller Jordan style (`Muon(scale: .original)`, the default): the scheduled rate is Muon's, in spectral-norm
///   units (reference 0.02), and the AdamW group gets its own rate as a ratio: for Muon 0.02 and AdamW 3e−4 use
///   lr 0.02 with `adamWLearningRateScale` 0.015.
/// Weight decay is per parameter (`TrainableParameter.weightDecay`), decoupled in both groups: p ← p(1 − lr·wd)
/// with the group's rate (not multiplied by Moonlight's update scale).
///
/// **State** (`stateTensors`): `muon/momentum/<name>`, `adamw/exp_avg/<name>`, `adamw/exp_avg_sq/<name>`; both
/// inner optimizers count every step, so AdamW's bias correction uses the global step.
public final class MuonWithAdamW {
    public let muon: Muon
    public let adamW: AdamW
    public var muonLearningRateScale: Float
    public var adamWLearningRateScale: Float
    /// Whether a parameter is updated by Muon (otherwise AdamW).
    public let routesToMuon: (TrainableParameter) -> Bool
    public private(set) var stepCount = 0

    /// `adamW` defaults to betas (0.9, 0.95), eps 1e−8 (the usual LLM setting and Moonlight's).
    public init(muon: Muon = Muon(), adamW: AdamW = AdamW(beta1: 0.9, beta2: 0.95, eps: 1e-8),
                muonLearningRateScale: Float = 1, adamWLearningRateScale: Float = 1,
                routesToMuon: @escaping (TrainableParameter) -> Bool = { MuonWithAdamW.isHiddenMatrix(name: $0.name, shape: $0.tensor.shape) }) {
        self.muon = muon; self.adamW = adamW
        self.muonLearningRateScale = muonLearningRateScale; self.adamWLearningRateScale = adamWLearningRateScale
        self.routesToMuon = routesToMuon
    }

    /// The default routing: a 2-D tensor of a decoder layer whose name ends in `.weight`.
    public static func isHiddenMatrix(name: String, shape: [Int]) -> Bool {
        shape.count == 2 && name.contains("layers.") && name.hasSuffix(".weight")
    }

    /// Splits `parameters` into the Muon group and the AdamW group (order kept).
    public func partition(_ parameters: [TrainableParameter]) -> (muon: [TrainableParameter], adamW: [TrainableParameter]) {
        var m: [TrainableParameter] = [], a: [TrainableParameter] = []
        for p in parameters { if routesToMuon(p) { m.append(p) } else { a.append(p) } }
        return (m, a)
    }

    public func step(_ parameters: [TrainableParameter], lr: Float) {
        let (m, a) = partition(parameters)
        stepCount += 1
        muon.step(m, lr: lr * muonLearningRateScale)
        adamW.step(a, lr: lr * adamWLearningRateScale)
    }
}

extension MuonWithAdamW: Optimizer {
    public func stateTensors() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (k, t) in muon.stateTensors() { out["muon/" + k] = t }
        for (k, t) in adamW.stateTensors() { out["adamw/" + k] = t }
        return out
    }

    /// Restores both groups (the tensors are copied). Throws naming an entry that is neither `muon/…` nor `adamw/…`
    /// or that the inner optimizer rejects.
    public func restoreState(step: Int, tensors: [String: Tensor]) throws {
        var m: [String: Tensor] = [:], a: [String: Tensor] = [:]
        for (key, t) in tensors {
            if key.hasPrefix("muon/") { m[String(key.dropFirst(5))] = t }
            else if key.hasPrefix("adamw/") { a[String(key.dropFirst(6))] = t.copy() }
            else { throw GLMError("MuonWithAdamW state: unexpected entry '\(key)' (expected muon/… or adamw/…)") }
        }
        do {
            try muon.restoreState(step: step, tensors: m)
            try adamW.restoreState(step: step, tensors: a)
        } catch let e as GLMError {
            throw GLMError("MuonWithAdamW state: \(e.message)")
        }
        stepCount = step
    }
}
