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
            try command.run()
            MPIProcessGroup.finalizeIfActive()
        } catch let error as GLMError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            MPIProcessGroup.abortIfActive(code: 1)  // the other processes of an mpirun job must not wait for this one
            Foundation.exit(1)
        } catch let error as CocoaError {
            // Foundation's file errors, should one escape a command unwrapped: still one line.
            let file = error.userInfo[NSFilePathErrorKey].map { "\($0): " } ?? ""
            FileHandle.standardError.write(Data("error: \(file)\(error.localizedDescription)\n".utf8))
            MPIProcessGroup.abortIfActive(code: 1)
            Foundation.exit(1)
        } catch {
            MPIProcessGroup.abortIfActive(code: 1)
            exit(withError: error)
        }
    }
}
