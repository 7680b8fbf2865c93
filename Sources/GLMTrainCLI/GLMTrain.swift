// Entry point of `glm-train`: picks OpenBLAS's kernels, then dispatches to the subcommands.
import ArgumentParser
import Foundation
import GLMCore

@main
struct GLMTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "glm-train",
        abstract: "Fine-tune and post-train GLM models on CPUs.",
        subcommands: [Run.self, Eval.self, Plot.self, Score.self, Generate.self, Tokenize.self, Inspect.self, Export.self, Doctor.self, Bench.self])

    static func main() {
        BLASCoreSelection.reexecIfUseful()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as GLMError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            Foundation.exit(1)
        } catch let error as CocoaError {
            // Foundation's file errors, should one escape a command unwrapped: still one line.
            let file = error.userInfo[NSFilePathErrorKey].map { "\($0): " } ?? ""
            FileHandle.standardError.write(Data("error: \(file)\(error.localizedDescription)\n".utf8))
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}
