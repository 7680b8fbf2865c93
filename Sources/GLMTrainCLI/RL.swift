// `glm-train rl train --run DIR` and `glm-train rl rollout --run DIR`: the two processes of an asynchronous RL run
// (`glm-train run` on a grpo recipe starts both). Each reads DIR/recipe.yaml; they share only DIR's files, so they
// may run on two machines that mount the same directory.
import ArgumentParser
import Foundation
import GLMCore
import GLMIO
import GLMRL
import GLMTraining

struct RL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rl", abstract: "The trainer and rollout processes of an asynchronous RL (grpo) run.",
        subcommands: [RLTrain.self, RLRollout.self])

    /// The recipe a run directory was started with (its output_dir taken as the directory itself).
    static func recipe(run: String) throws -> Recipe {
        let path = (run as NSString).appendingPathComponent("recipe.yaml")
        guard FileManager.default.fileExists(atPath: path) else {
            throw GLMError("\(run): no recipe.yaml (start the run with glm-train run RECIPE.yaml, which writes it)")
        }
        var r = try Recipe.load(path: path)
        r.outputDir = run
        return r
    }
}

struct RLTrain: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train on rollout batches, publishing each new policy version.")
    @Option(name: .customLong("run"), help: "The run directory.") var runDirectory: String
    @Flag(help: "Continue from the newest valid checkpoint.") var resume = false

    func run() throws {
        let recipe = try RL.recipe(run: runDirectory)
        let placement = try DataParallelPlacement.forRecipe(recipe)  // mpirun -np N glm-train rl train: data-parallel
        let trainer = try RLTrainerRun(recipe: recipe)
        trainer.dataParallel = placement
        trainer.observer = placement?.isPrimary ?? true ? ConsoleTrainerObserver() : nil
        _ = try trainer.run(resume: resume, generate: false)
    }
}

struct RLRollout: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rollout", abstract: "Generate rollout batches with the newest published policy.")
    @Option(name: .customLong("run"), help: "The run directory.") var runDirectory: String

    func run() throws {
        try RLRolloutRun(recipe: try RL.recipe(run: runDirectory)).run()
    }
}

/// `glm-train run` on a grpo recipe.
enum RLRunCommand {
    static func run(_ recipe: Recipe, resume: Bool, overwrite: Bool) throws {
        let rl = try RLConfig(recipe: recipe)
        let dir = recipe.outputDir
        let fm = FileManager.default
        let leftovers = ["checkpoints", "weights", "rollouts", "metrics.jsonl", "best", "adapter", "model", "plots"]
        let started = leftovers.contains { fm.fileExists(atPath: (dir as NSString).appendingPathComponent($0)) }
        let resuming = resume || recipe.training.resume
        if started && !resuming && !overwrite {
            throw GLMError("\(dir): this run directory already holds an RL run; pass --resume to continue it, --overwrite to start again, or set output_dir")
        }
        if started && resuming { try RunDirectoryCheck.checkResumedTask(dir, recipe: recipe) }
        // Everything the run reads is checked before the run directory is touched (an --overwrite removal, the
        // recipe.yaml) or a process starts.
        let syncTrainer = rl.mode == .sync ? try RLTrainerRun(recipe: recipe) : nil
        if rl.mode == .async { try RLTrainerRun.check(recipe: recipe) }
        if started && !resuming {
            for name in leftovers { try? fm.removeItem(atPath: (dir as NSString).appendingPathComponent(name)) }
        }
        try AtomicFile.makeDirectory(dir)
        try AtomicFile.write(Data(try recipe.resolvedYAML().utf8), to: (dir as NSString).appendingPathComponent("recipe.yaml"))
        if let trainer = syncTrainer {
            trainer.observer = ConsoleTrainerObserver()
            _ = try trainer.run(resume: resuming, generate: true)
            return
        }
        try RLSupervisor(executable: "/proc/self/exe", runDirectory: dir, workers: rl.rolloutWorkers, maxRestarts: rl.maxRestarts)
            .run(resume: resuming)
    }
}
