// The `dpo:` section of a recipe (task: dpo only): the preference loss and its settings, strictly checked.
import Foundation
import GLMCore
import Yams

extension Recipe {
    /// Reads `dpo:` (defaults when absent in a dpo recipe). A key that the chosen loss does not use is an error
    /// naming it, as an unknown key is.
    static func readPreference(_ r: RecipeReader, task: Task) throws -> PreferenceLoss? {
        let d = try r.section("dpo")
        guard task == .dpo else {
            if d != nil { throw r.fail("dpo", r.node("dpo"), "only task: dpo recipes have a dpo section (this one is task: \(task.rawValue))") }
            return nil
        }
        guard let d else { return PreferenceLoss() }
        let names = PreferenceLoss.Kind.allCases.map(\.rawValue)
        let kind = PreferenceLoss.Kind(rawValue: try d.choice("loss_type", names, default: "sigmoid")!)!
        var loss = PreferenceLoss(kind: kind)
        loss.beta = try d.double("beta", default: 0.1, min: 0, max: 1e6)
        if loss.beta <= 0 { throw d.fail("beta", d.node("beta"), "must be greater than 0, got \(loss.beta)") }
        loss.labelSmoothing = try d.double("label_smoothing", default: 0, min: 0, max: 0.5)
        loss.gamma = try d.double("gamma", default: 0.5, min: -1e6, max: 1e6)
        loss.lambda = try d.double("lambda", default: 0.1, min: 0, max: 1e6)
        loss.rpoAlpha = try d.double("rpo_alpha")
        if let a = loss.rpoAlpha, a < 0 { throw d.fail("rpo_alpha", d.node("rpo_alpha"), "must be at least 0 (or null), got \(a)") }
        let smoothing: Set<PreferenceLoss.Kind> = [.sigmoid, .robust, .simpo]
        if d.has("label_smoothing") && !smoothing.contains(kind) {
            throw d.fail("label_smoothing", d.node("label_smoothing"), "loss_type \(kind.rawValue) has no label smoothing (sigmoid, robust and simpo do)")
        }
        // The robust loss divides by 1 − 2·label_smoothing, IPO's target is 1/(2·beta) squared: values that make the
        // first loss infinite in f32 are refused here, not at step 1.
        if kind == .robust && loss.labelSmoothing > 0.4999 {
            throw d.fail("label_smoothing", d.node("label_smoothing"), "the robust loss divides by 1 − 2·label_smoothing and needs label_smoothing in [0, 0.4999], got \(loss.labelSmoothing)")
        }
        if kind == .ipo && loss.beta < 1e-12 {
            throw d.fail("beta", d.node("beta"), "IPO's target 1/(2·beta) is squared and needs beta of at least 1e-12, got \(loss.beta)")
        }
        if d.has("gamma") && kind != .simpo { throw d.fail("gamma", d.node("gamma"), "gamma is SimPO's margin; it needs loss_type: simpo") }
        if d.has("lambda") && kind != .orpo { throw d.fail("lambda", d.node("lambda"), "lambda is ORPO's odds-ratio weight; it needs loss_type: orpo") }
        try d.finish()
        return loss
    }
}
