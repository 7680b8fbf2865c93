// `glm-train run RECIPE.yaml [--set key=value ...]`: runs a recipe and writes its run directory.
import ArgumentParser
import Foundation
import GLMCore
import GLMIO
import GLMTraining

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe (task: pretrain, sft, dpo or grpo): train, evaluate, checkpoint, export, plot.",
        discussion: "Under `mpirun -np N` (pretrain, sft, dpo) the N processes train data-parallel over MPI: each takes its share of every batch, gradients are averaged, and rank 0 writes the run directory.")

    @Argument(help: "The recipe (YAML).")
    var recipe: String
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a recipe key, e.g. --set training.steps=10 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []
    @Flag(help: "Continue from the newest valid checkpoint of the run directory (as training.resume: auto).")
    var resume = false
    @Flag(help: "Start again in a run directory that already has checkpoints (they are removed).")
    var overwrite = false

    func run() throws {
        let r = try Recipe.load(path: recipe, overrides: overrides)
        let placement = try DataParallelPlacement.forRecipe(r)
        if r.task == .grpo {
            if placement != nil { throw GLMError("\(recipe): glm-train run on a grpo recipe starts its own trainer and rollout processes and does not run under mpirun; for a data-parallel trainer start the two sides yourself: mpirun -np N glm-train rl train --run DIR, and glm-train rl rollout --run DIR") }
            return try RLRunCommand.run(r, resume: resume, overwrite: overwrite)
        }
        let run = RecipeRun(recipe: r)
        run.dataParallel = placement
        // The other processes of a data-parallel job print nothing (their errors still reach standard error).
        run.observer = run.isPrimary ? ConsoleTrainerObserver() : nil
        _ = try run.run(resume: resume, overwrite: overwrite)
    }
}

struct Plot: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write SVG plots of a run's metrics.jsonl into RUN/plots.")

    @Argument(help: "The run directory (with metrics.jsonl).")
    var runDirectory: String
    @Option(help: "Where to write the SVG files (default RUN/plots).")
    var output: String?

    func run() throws {
        let run = runDirectory
        let metrics = (run as NSString).appendingPathComponent("metrics.jsonl")
        guard FileManager.default.fileExists(atPath: metrics) else { throw GLMError("\(run): no metrics.jsonl in this directory") }
        let files = try MetricsPlot.writeAll(metrics: metrics, to: output ?? (run as NSString).appendingPathComponent("plots")) {
            FileHandle.standardError.write(Data("warning: \($0)\n".utf8))
        }
        for f in files { print(f) }
    }
}

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe's evaluation hooks once on a model (and adapter); print the metrics as one JSON line.")

    @Option(help: "A model directory (default: the recipe's model.path).")
    var model: String?
    @Option(help: "A PEFT adapter directory to apply.")
    var adapter: String?
    @Option(help: "The recipe whose eval.hooks and data.eval to use.")
    var recipe: String
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a recipe key (repeatable).", valueName: "key=value"))
    var overrides: [String] = []

    func run() throws {
        let r = try Recipe.load(path: recipe, overrides: overrides)
        let values = try RecipeRun(recipe: r).evaluate(modelPath: model, adapter: adapter)
        if let (key, v) = values.first(where: { !$0.value.isFinite }) {
            throw GLMError("\(key) is \(v); the model (or adapter) weights hold NaN or Inf values, or the hook failed")
        }
        print(try JSONLines.encode(values))
    }
}
