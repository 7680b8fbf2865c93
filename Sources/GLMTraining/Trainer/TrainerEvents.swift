// What the trainer reports (progress, evaluations, checkpoints, warnings, notes) goes to an observer as events;
// the trainer itself writes nothing to the terminal. The command line installs `ConsoleTrainerObserver`.
// Between backward and clipping there is one gradient-synchronisation point, where data parallelism plugs in.
import Foundation
import GLMCore

public enum TrainerEvent {
    /// Training starts (or resumes) at `step` of `total`.
    case started(step: Int, total: Int, label: String, logEvery: Int)
    /// A step finished: its number (from 1), loss, learning rate, tokens per second and the objective's metrics.
    case step(step: Int, loss: Double, learningRate: Double, tokensPerSecond: Double, metrics: [String: Double])
    /// The evaluation hooks ran at `step`.
    case evaluation(step: Int, values: [String: Double])
    /// A checkpoint was written.
    case checkpoint(step: Int, path: String)
    case warning(String)
    case note(String)
}

public protocol TrainerObserver: AnyObject {
    func trainerDidReport(_ event: TrainerEvent)
}

/// Combines gradients across data-parallel processes. The trainer calls `synchronize` once per optimizer step,
/// after every micro-batch's backward and before clipping; `weight` is what this process's micro-batches counted
/// (loss tokens, pairs, ...), so that the combined gradient weights each process by its share. Only the primary
/// process writes checkpoints, metrics and exports.
public protocol GradientSynchronizer: AnyObject {
    var isPrimary: Bool { get }
    func synchronize(_ parameters: [TrainableParameter], weight: Int) throws
    /// Called before the step's last backward (its forward has run): a function that backward calls with each leaf
    /// as soon as its gradient is final, so that communication overlaps the rest of the backward; `synchronize`
    /// then completes it. nil (the default) leaves all of it to `synchronize`.
    func gradientsWillArrive(_ parameters: [TrainableParameter], weight: Int) throws -> ((Tensor) -> Void)?
    /// Element-wise sums or maxima of `values` over the processes (each passes as many): the step's loss,
    /// metrics and token counts, and the check that every process starts from the same state.
    func reduce(_ values: [Double], _ op: ReduceOperation) throws -> [Double]
    /// The primary process's `data`, on every process (evaluation results, which only the primary computes).
    func broadcast(_ data: Data) throws -> Data
}

public enum ReduceOperation: Sendable { case sum, max }

extension GradientSynchronizer {
    public func gradientsWillArrive(_ parameters: [TrainableParameter], weight: Int) throws -> ((Tensor) -> Void)? { nil }
    /// One process: its own values.
    public func reduce(_ values: [Double], _ op: ReduceOperation) throws -> [Double] { values }
    public func broadcast(_ data: Data) throws -> Data { data }
}

/// Prints the trainer's events on standard error: the progress bar (or plain lines), evaluation results,
/// warnings (`warning: ...`) and notes.
public final class ConsoleTrainerObserver: TrainerObserver {
    private var progress: ProgressReporter?

    public init() {}

    public func trainerDidReport(_ event: TrainerEvent) {
        switch event {
        case .started(let step, let total, let label, let logEvery):
            progress = ProgressReporter(total: total, label: label, startingAt: step, plainEvery: logEvery)
        case .step(let step, let loss, let lr, let tokensPerSecond, _):
            progress?.update(step, fields: [String(format: "loss %.4f", loss), String(format: "lr %.2e", lr),
                                            String(format: "%.0f tok/s", tokensPerSecond)])
        case .evaluation(let step, let values):
            print("eval step \(step): " + values.keys.sorted()
                .filter { !$0.hasSuffix("/count") && !$0.hasSuffix("/tokens") && !$0.hasSuffix("/correct") }
                .map { "\($0) \(String(format: "%.4f", values[$0]!))" }.joined(separator: ", "))
        case .checkpoint:
            break
        case .warning(let text):
            print("warning: \(text)")
        case .note(let text):
            print(text)
        }
    }

    private func print(_ line: String) {
        if let progress { progress.message(line) } else { FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }
}
