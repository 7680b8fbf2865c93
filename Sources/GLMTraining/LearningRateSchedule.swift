// Learning-rate schedules with linear warmup: constant, linear decay and cosine decay, as transformers'
// get_constant_schedule_with_warmup / get_linear_schedule_with_warmup / get_cosine_schedule_with_warmup.
import Foundation
import GLMCore

/// The learning rate as a function of the optimizer step (0-based: the rate used for the first update is at 0).
public struct LearningRateSchedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case constant, linear, cosine }
    public var kind: Kind
    public var baseRate: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    /// Errors name the offending value (the recipe layer adds the key and file).
    public init(kind: Kind, baseRate: Double, warmupSteps: Int, totalSteps: Int) throws {
        guard baseRate >= 0, baseRate.isFinite else { throw GLMError("learning rate must be ≥ 0, got \(baseRate)") }
        guard warmupSteps >= 0 else { throw GLMError("warmup_steps must be ≥ 0, got \(warmupSteps)") }
        guard totalSteps > 0 else { throw GLMError("steps must be > 0, got \(totalSteps)") }
        self.kind = kind; self.baseRate = baseRate; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps
    }

    /// The rate for update `step`.
    public func rate(at step: Int) -> Double {
        if step < warmupSteps { return baseRate * Double(step) / Double(max(1, warmupSteps)) }
        let span = Double(max(1, totalSteps - warmupSteps))
        let progress = Double(step - warmupSteps) / span
        switch kind {
        case .constant: return baseRate
        case .linear: return baseRate * max(0, 1 - progress)
        case .cosine: return baseRate * max(0, 0.5 * (1 + Foundation.cos(Double.pi * progress)))
        }
    }
}
