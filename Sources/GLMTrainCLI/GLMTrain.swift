// Entry point of `glm-train`: picks OpenBLAS's kernels, then dispatches to the subcommands.
import ArgumentParser
import Foundation
import GLMCore
import GLMIO
import GLMTraining

@main
struct GLMTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glm-train",
        abstract: "Fine-tune and post-train GLM models on CPUs.",
        subcommands: [Run.self, Eval.self, Plot.self, Score.self, Generate.self, Tokenize.self, Inspect.self, Export.self, RL.self, Doctor.self, Bench.self])

    /// The hidden first argument of the child that reads an untrusted checkpoint before this process opens it.
    static let checkpointChildArgument = "__read-checkpoint"

    static func main() {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == checkpointChildArgument {
            Foundation.exit(CheckpointIsolation.childMain(path: arguments[2]))
        }
        // libhdf5 can be crashed by a crafted checkpoint: every checkpoint is read in a child process first.
        CheckpointIsolation.enable(.init(executable: "/proc/self/exe", arguments: [checkpointChildArgument]))
        MPIThreads.shareCores()
        BLASCoreSelection.reexecIfUseful()
        do {
            var command = try parseAsRoot()
            // Under a very small `ulimit -v` OpenBLAS retries its buffer allocation forever, and allocations fail
            // where no check can see them coming: refuse to start instead (doctor still runs, to show the limit).
            if !(command is Doctor), MemoryBudget.available < MemoryBudget.minimumToRun {
                throw GLMError("this process may use only \(MemoryBudget.available >> 20) MiB (ulimit -v / -d or its cgroup); glm-train needs at least \(MemoryBudget.minimumToRun >> 20) MiB")
            }
            try command.run()
            MPIProcessGroup.finalizeIfActive()
        } catch let error as GLMError {
            FileHandle.standardError.write(Data("error: \(oneLine(error.message))\n".utf8))
            MPIProcessGroup.abortIfActive(code: 1)  // the other processes of an mpirun job must not wait for this one
            Foundation.exit(1)
        } catch let error as CocoaError {
            // Foundation's file errors, should one escape a command unwrapped: still one line.
            let file = error.userInfo[NSFilePathErrorKey].map { "\($0): " } ?? ""
            FileHandle.standardError.write(Data("error: \(oneLine(file + error.localizedDescription))\n".utf8))
            MPIProcessGroup.abortIfActive(code: 1)
            Foundation.exit(1)
        } catch {
            MPIProcessGroup.abortIfActive(code: 1)
            // --help and --version print as the argument parser prints them; a usage mistake is one line too
            guard exitCode(for: error) != .success else { exit(withError: error) }
            var message = message(for: error).split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: "; ")
            if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
            FileHandle.standardError.write(Data("error: \(oneLine(message)) (see 'glm-train help')\n".utf8))
            Foundation.exit(1)
        }
    }

    /// A message as one line: line breaks (from a value echoed out of a file or flag) written as \n.
    static func oneLine(_ s: String) -> String {
        s.replacingOccurrences(of: "\r\n", with: "\\n").replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
    }
}
