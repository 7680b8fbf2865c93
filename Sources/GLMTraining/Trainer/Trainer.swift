// The training loop: micro-batches with gradient accumulation, clipping, the optimizer step, metrics, progress,
// evaluation hooks, and HDF5 checkpoints from which a killed run resumes bit-identically.
import Foundation
import GLMCore
import GLMIO
import GLMModel

public final class Trainer {
    public struct Options {
        public var steps: Int
        public var gradAccum = 1
        /// 0 disables clipping.
        public var maxGradNorm: Double = 1
        public var logEvery = 1
        /// 0: no periodic checkpoints (one is still written at the end).
        public var checkpointEvery = 0
        public var keep = 3
        /// 0: evaluate only at the end (and at the start with `evalAtStart`).
        public var evalEvery = 0
        public var evalAtStart = false
        /// A metric key such as `eval/loss/loss`; its best checkpoint is kept in RUN/best/.
        public var bestMetric: String?
        public var bestMode = "min"
        public var earlyStopPatience: Int?
        public var progressLabel = "train"

        public init(steps: Int) { self.steps = steps }
    }

    /// What a finished (or early-stopped) run did.
    public struct Summary {
        public var finalStep: Int
        public var resumedFrom: Int?
        public var lastLoss: Double?
        public var lastEval: [String: Double]
        public var bestValue: Double?
        public var stoppedEarly: Bool
    }

    public let model: any CausalLanguageModel
    /// Turns each micro-batch into the loss (and metrics) the step minimises.
    public let objective: TrainingObjective
    public let parameters: [TrainableParameter]
    public let optimizer: Optimizer
    public let schedule: LearningRateSchedule
    public let source: BatchSource
    public let hooks: [EvaluationHook]
    public let runDirectory: String
    public var options: Options
    /// Strings stored in every checkpoint (the recipe, the base model, an adapter config, ...).
    public var checkpointMetadata: [String: String] = [:]
    /// Called before each optimizer step's first micro-batch with the step number (e.g. to seed dropout).
    public var beforeStep: ((Int) -> Void)?
    /// Switches training-only behaviour (dropout) on and off around evaluations.
    public var setTraining: ((Bool) -> Void)?
    /// Called after each step is logged, with the step count (e.g. to publish the new weights for a rollout
    /// process); before that step's evaluation and checkpoint.
    public var afterStep: ((Int) throws -> Void)?
    /// Called right after each optimizer update (e.g. a MoE model's loss-free balancing bias update); the metrics it
    /// returns are logged with the step.
    public var afterOptimizerStep: (() -> [String: Double])?
    /// Metrics logged with each step beside the objective's (e.g. a data source's statistics of the step's data).
    public var stepMetrics: (() -> [String: Double])?
    /// Saves the model (merged, for adapter runs) as an HF directory; used by command hooks.
    public var exportModel: (String) throws -> Void = { _ in throw GLMError("this run cannot export its model") }
    public var tokenizer: GLMTokenizer?
    /// Compares a checkpoint being resumed with the run's settings; each string returned is printed as a warning, and
    /// an error thrown refuses the checkpoint.
    public var resumeCheck: ((TrainingCheckpoint) throws -> [String])?
    /// Receives progress, evaluations, checkpoints, warnings and notes (nothing is printed without one).
    public var observer: TrainerObserver?
    /// Combines gradients across data-parallel processes between backward and clipping (nil: one process).
    public var gradientSynchronizer: GradientSynchronizer?
    /// Whether this process writes checkpoints and metrics (the primary one of a data-parallel group).
    public var isPrimary: Bool { gradientSynchronizer?.isPrimary ?? true }

    public init(model: any CausalLanguageModel, objective: TrainingObjective = NextTokenObjective(), parameters: [TrainableParameter],
                optimizer: Optimizer, schedule: LearningRateSchedule,
                source: BatchSource, hooks: [EvaluationHook], runDirectory: String, options: Options) {
        self.model = model; self.objective = objective
        self.parameters = parameters; self.optimizer = optimizer; self.schedule = schedule
        self.source = source; self.hooks = hooks; self.runDirectory = runDirectory; self.options = options
    }

    var checkpoints: CheckpointDirectory { CheckpointDirectory((runDirectory as NSString).appendingPathComponent("checkpoints")) }
    var metricsPath: String { (runDirectory as NSString).appendingPathComponent("metrics.jsonl") }

    private var bestValue: Double?
    private var evalsSinceBest = 0

    /// Trains to `options.steps`. With `resume`, continues from the newest valid checkpoint of the run (torn or
    /// corrupt ones are skipped with a warning).
    public func train(resume: Bool) throws -> Summary {
        let fm = FileManager.default
        if isPrimary { try? fm.createDirectory(atPath: runDirectory, withIntermediateDirectories: true) }
        var step = 0
        var resumedFrom: Int?
        if resume {
            let scan = try checkpoints.newestValid()
            for w in scan.warnings { warn(w) }
            if let ckpt = scan.checkpoint {
                try restore(ckpt)
                step = ckpt.step; resumedFrom = step
                note("resuming from \(scan.file!.path) (step \(step))")
            }
        }
        try checkProcessesAgree(step: step)
        let metrics = isPrimary ? try MetricsLog(path: metricsPath, keepThrough: resumedFrom) : nil
        report(.started(step: step, total: options.steps, label: options.progressLabel, logEvery: options.logEvery))
        var summary = Summary(finalStep: step, resumedFrom: resumedFrom, lastLoss: nil, lastEval: [:], bestValue: bestValue, stoppedEarly: false)

        if step == 0 && options.evalAtStart && !hooks.isEmpty {
            summary.lastEval = try evaluate(step: 0, metrics: metrics)
        }
        while step < options.steps {
            let started = Date()
            let result = try trainStep(step)
            let (gradNorm, lr, tokens, lossTokens) = (result.gradNorm, result.learningRate, result.tokens, result.lossTokens)
            step += 1
            let seconds = Date().timeIntervalSince(started)
            let loss = result.loss
            summary.lastLoss = loss
            guard loss.isFinite else {
                // At step 1 no update has happened yet: the learning rate cannot be the cause.
                if step == 1 {
                    throw GLMError("step 1: the loss is \(loss) before any update; check the model's weights, the data and the objective's settings")
                }
                throw GLMError("step \(step): the loss is \(loss); lower optimizer.lr or check the data")
            }
            var record: [String: Any] = ["step": step, "loss": loss, "lr": lr, "grad_norm": Double(gradNorm),
                                         "tokens_per_s": Double(tokens) / max(seconds, 1e-9), "loss_tokens": lossTokens,
                                         "epoch": source.cursor["epoch"] ?? 0, "truncated": source.truncatedCount]
            for (k, v) in result.metrics where record[k] == nil { record[k] = v }
            for (k, v) in stepMetrics?() ?? [:] where record[k] == nil { record[k] = v }
            try metrics?.append(record)
            report(.step(step: step, loss: loss, learningRate: lr, tokensPerSecond: Double(tokens) / max(seconds, 1e-9),
                         metrics: result.metrics))
            try afterStep?(step)
            let evalNow = !hooks.isEmpty && ((options.evalEvery > 0 && step % options.evalEvery == 0) || step == options.steps)
            if evalNow {
                summary.lastEval = try evaluate(step: step, metrics: metrics)
            }
            if (options.checkpointEvery > 0 && step % options.checkpointEvery == 0) || step == options.steps {
                try saveCheckpoint(step: step)
            }
            if evalNow, let patience = options.earlyStopPatience, evalsSinceBest >= patience, step < options.steps {
                note("early stop at step \(step): \(options.bestMetric ?? "the metric") has not improved for \(patience) evaluations")
                try saveCheckpoint(step: step)
                summary.stoppedEarly = true
                break
            }
        }
        summary.finalStep = step; summary.bestValue = bestValue
        return summary
    }

    /// What one optimizer step did.
    public struct StepResult {
        /// The step's loss: mean over all loss tokens of its micro-batches (each micro-batch weighted by its tokens).
        public var loss: Double
        /// Global gradient norm before clipping.
        public var gradNorm: Float
        public var learningRate: Double
        /// Tokens (batch × length) and loss-carrying positions over the step's micro-batches.
        public var tokens: Int
        public var lossTokens: Int
        /// The objective's metrics, combined over the micro-batches by their weights.
        public var metrics: [String: Double] = [:]
    }

    /// Writes the step's checkpoint (primary process only) and reports it.
    func saveCheckpoint(step: Int) throws {
        guard isPrimary else { return }
        let save = try checkpoints.save(checkpoint(step: step), keep: options.keep)
        for w in save.warnings { warn(w) }
        report(.checkpoint(step: step, path: checkpoints.path(forStep: step)))
    }

    /// One optimizer step (step number `step`, counted from 0): `gradAccum` micro-batches of forward and backward,
    /// clipping, the update, and the gradients dropped. No metrics, checkpoints or evaluation (`train` adds
    /// those); `glm-train bench train` times this.
    public func trainStep(_ step: Int) throws -> StepResult {
        let trainable = parameters.map(\.tensor)
        beforeStep?(step)
        var lossSum = 0.0, tokens = 0, lossTokens = 0
        var metrics: [String: Double] = [:]
        // As transformers' Trainer (num_items_in_batch): the step's loss is Σ weight_i · loss_i / Σ weight_i over its
        // micro-batches, where the objective says what a micro-batch weighs (loss tokens for token losses).
        let micro = try (0..<options.gradAccum).map { _ in try source.nextBatch() }
        let weights = micro.map { objective.weight(of: $0) }
        let stepWeight = weights.reduce(0, +)
        for (i, (b, w)) in zip(micro, weights).enumerated() {
            try ActivationMemory.check(rows: b.batch, length: b.length, config: model.configuration,
                                       recompute: model.recomputesActivations, what: "step \(step): this micro-batch")
            let result = try objective.loss(model: model, batch: b)
            let weight = stepWeight > 0 ? Float(w) / Float(stepWeight) : 1 / Float(options.gradAccum)
            lossSum += Double(result.loss.pointer[0]) * Double(weight)
            for (k, v) in result.metrics { metrics[k, default: 0] += v * Double(weight) }
            tokens += b.batch * b.length; lossTokens += b.lossTokenCount
            // The last backward may hand finished gradients to the synchronizer while it runs (allreduce overlap).
            let leafReady = i == micro.count - 1 ? try gradientSynchronizer?.gradientsWillArrive(parameters, weight: stepWeight) : nil
            result.loss.backward(seed: Tensor([weight], shape: result.loss.shape), leafReady: leafReady)
        }
        // The one place gradients are combined across processes (MPI data parallelism plugs in here).
        try gradientSynchronizer?.synchronize(parameters, weight: stepWeight)
        let gradNorm = options.maxGradNorm > 0
            ? GradientClipping.clip(trainable, maxNorm: Float(options.maxGradNorm))
            : GradientClipping.globalNorm(trainable)
        let lr = schedule.rate(at: step)
        optimizer.step(parameters, lr: Float(lr))
        for (k, v) in afterOptimizerStep?() ?? [:] { metrics[k] = v }
        for t in trainable { t.zeroGrad() }
        let result = StepResult(loss: lossSum, gradNorm: gradNorm, learningRate: lr,
                                tokens: tokens, lossTokens: lossTokens, metrics: metrics)
        return try gradientSynchronizer.map { try result.combined(over: $0, weight: stepWeight) } ?? result
    }

    /// Runs every hook once and logs `eval/<hook>/<metric>`; keeps the best checkpoint by `bestMetric`.
    func evaluate(step: Int, metrics: MetricsLog?) throws -> [String: Double] {
        setTraining?(false)
        defer { setTraining?(true) }
        let context = EvaluationContext(model: model, tokenizer: tokenizer, step: step, runDirectory: runDirectory,
                                        exportModel: exportModel)
        var record: [String: Any] = ["step": step]
        let values = try runHooks(context)
        for (k, v) in values { record[k] = v }
        try metrics?.append(record)
        report(.evaluation(step: step, values: values))
        if let key = options.bestMetric {
            guard let v = values[key] else {
                throw GLMError("eval.best_metric: '\(key)' is not among the metrics (\(values.keys.sorted().joined(separator: ", ")))")
            }
            let better = bestValue.map { options.bestMode == "min" ? v < $0 : v > $0 } ?? true
            if better {
                bestValue = v; evalsSinceBest = 0
                if step > 0 && isPrimary {
                    let path = ((runDirectory as NSString).appendingPathComponent("best") as NSString).appendingPathComponent("checkpoint.h5")
                    try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    try checkpoint(step: step).write(to: path)
                }
            } else { evalsSinceBest += 1 }
        }
        return values
    }

    func checkpoint(step: Int) -> TrainingCheckpoint {
        var tensors: [String: Tensor] = [:]
        for p in parameters { tensors[p.name] = p.tensor }
        var scalars: [String: Double] = ["evals_since_best": Double(evalsSinceBest)]
        if let bestValue { scalars["best_value"] = bestValue }
        return TrainingCheckpoint(tensors: tensors, optimizerState: optimizer.stateTensors(), step: step, scalars: scalars,
                                  rngState: [], dataCursor: source.cursor, metadata: checkpointMetadata)
    }

    func restore(_ c: TrainingCheckpoint) throws {
        for w in try resumeCheck?(c) ?? [] { warn(w) }
        for p in parameters {
            guard let t = c.tensors[p.name] else { throw GLMError("checkpoint step \(c.step): missing trained tensor '\(p.name)'") }
            guard t.shape == p.tensor.shape else {
                throw GLMError("checkpoint step \(c.step): '\(p.name)' has shape \(t.shape), the model expects \(p.tensor.shape)")
            }
            p.tensor.pointer.update(from: t.pointer, count: t.count)
        }
        if c.tensors.count != parameters.count {
            let extra = Set(c.tensors.keys).subtracting(parameters.map(\.name)).sorted()
            // Checkpoints written before a routed expert's gate and up shared one trained A (peft's fused layout) hold
            // an up_proj lora_A that training now keeps under the gate's name.
            let why = extra.contains { $0.hasSuffix(".up_proj.lora_A.weight") && $0.contains(".mlp.experts.") }
                ? " (a routed expert's gate and up now train one shared A, as peft does; this checkpoint trained two copies — start the run again)" : ""
            throw GLMError("checkpoint step \(c.step): tensors the run does not train: \(extra.prefix(3).joined(separator: ", "))\(why)")
        }
        try optimizer.restoreState(step: c.step, tensors: c.optimizerState)
        try source.restore(cursor: c.dataCursor)
        bestValue = c.scalars["best_value"]
        evalsSinceBest = Int(c.scalars["evals_since_best"] ?? 0)
    }

    func report(_ event: TrainerEvent) { observer?.trainerDidReport(event) }
    func warn(_ s: String) { report(.warning(s)) }
    func note(_ s: String) { report(.note(s)) }
}
