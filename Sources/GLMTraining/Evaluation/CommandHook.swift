// An external evaluator: a command that reads one JSON object on stdin and prints metrics as JSON on stdout.
import Foundation
import GLMCore
import GLMIO

/// Runs `command` (no shell) with `{"step", "run_dir", "model_dir"}` on standard input, where model_dir is the
/// current model saved as an HF directory (merged, for adapter runs). The last line of standard output must be a
/// JSON object of numbers: those are the metrics. A non-zero exit or other output is an error naming the hook.
public final class CommandHook: EvaluationHook {
    public let name: String
    let command: [String]

    public init(name: String, command: [String]) {
        precondition(!command.isEmpty, "command hook without a command")
        self.name = name; self.command = command
    }

    public func evaluate(_ context: EvaluationContext) throws -> [String: Double] {
        let modelDir = (context.runDirectory as NSString).appendingPathComponent("eval-model")
        try context.exportModel(modelDir)
        let input = try JSONLines.encode(["step": context.step, "run_dir": context.runDirectory, "model_dir": modelDir])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin; process.standardOutput = stdout
        do { try process.run() } catch {
            throw GLMError("eval hook '\(name)': cannot run \(command[0]) (\(error.localizedDescription))")
        }
        // A command that exits without reading its input must not take the run down with SIGPIPE: the signal is
        // ignored and the write's EPIPE is this hook's failure.
        signal(SIGPIPE, SIG_IGN)
        var writeError: Error?
        do { try stdin.fileHandleForWriting.write(contentsOf: Data((input + "\n").utf8)) } catch { writeError = error }
        try? stdin.fileHandleForWriting.close()
        let (output, overflowed) = FileInput.readOutput(stdout.fileHandleForReading)
        if overflowed { kill(-process.processIdentifier, SIGKILL) }  // its own process group (Foundation's Process)
        process.waitUntilExit()
        if overflowed {
            throw GLMError("eval hook '\(name)': \(command.joined(separator: " ")) printed more than \(FileInput.maxProgramOutputBytes) bytes; expected one JSON object of metrics")
        }
        let how = process.terminationReason == .uncaughtSignal ? "was killed by signal \(process.terminationStatus)"
                                                                : "exited with status \(process.terminationStatus)"
        if writeError != nil {
            throw GLMError("eval hook '\(name)': \(command.joined(separator: " ")) \(how) without reading its input on stdin")
        }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw GLMError("eval hook '\(name)': \(command.joined(separator: " ")) \(how)")
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
