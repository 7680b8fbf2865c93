// An external evaluator: a command that reads one JSON object on stdin and prints metrics as JSON on stdout.
import Foundation
import GLMCore
import GLMIO

/// Runs `command` (no shell) with `{"step", "run_dir", "model_dir"}` on standard input, where model_dir is the
/// current model saved as an HF directory (merged, for adapter runs). The last line of standard output must be a
/// JSON object of numbers: those are the metrics. A non-zero exit, other output, more than `timeout` seconds
/// (the program and what it started are then stopped) or more than 64 MiB of output is an error naming the hook.
public final class CommandHook: EvaluationHook {
    public let name: String
    let command: [String]
    let timeout: Double
    /// The time limit when the recipe gives none (`timeout:` in seconds on the hook).
    public static let defaultTimeout = 600.0

    public init(name: String, command: [String], timeout: Double = CommandHook.defaultTimeout) {
        precondition(!command.isEmpty, "command hook without a command")
        self.name = name; self.command = command; self.timeout = timeout
    }

    public func evaluate(_ context: EvaluationContext) throws -> [String: Double] {
        let modelDir = (context.runDirectory as NSString).appendingPathComponent("eval-model")
        try context.exportModel(modelDir)
        let input = try JSONLines.encode(["step": context.step, "run_dir": context.runDirectory, "model_dir": modelDir])
        let shown = command.joined(separator: " ")
        let output: Data
        switch ExternalProgram.run(command, input: Data((input + "\n").utf8), timeout: timeout) {
        case .cannotRun(let why):
            throw GLMError("eval hook '\(name)': cannot run \(command[0]) (\(why))")
        case .timedOut:
            throw GLMError("eval hook '\(name)': \(shown) did not finish within \(timeout) s (the hook's timeout); it was stopped")
        case .overflowed:
            throw GLMError("eval hook '\(name)': \(shown) printed more than \(FileInput.maxProgramOutputBytes) bytes; expected one JSON object of metrics")
        case .finished(let data, let reason, let status, let inputUnread):
            let how = reason == .uncaughtSignal ? "was killed by signal \(status)" : "exited with status \(status)"
            if inputUnread { throw GLMError("eval hook '\(name)': \(shown) \(how) without reading its input on stdin") }
            guard reason == .exit, status == 0 else { throw GLMError("eval hook '\(name)': \(shown) \(how)") }
            output = data
        }
        let last = String(decoding: output, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard let obj = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any] else {
            throw GLMError("eval hook '\(name)': the last line of its output is not a JSON object: '\(last.prefix(80))'")
        }
        var metrics: [String: Double] = [:]
        for (k, v) in obj {
            guard let n = v as? NSNumber else { continue }
            metrics[k] = n.doubleValue
        }
        guard metrics.count == obj.count else {
            throw GLMError("eval hook '\(name)': every value of its JSON output must be a number")
        }
        return metrics
    }
}
