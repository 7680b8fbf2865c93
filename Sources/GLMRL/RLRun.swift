// The two sides of an RL run over one run directory: the trainer (`glm-train rl train`, or sync mode in one
// process, which also generates) and the rollout process (`glm-train rl rollout`). Both read RUN/recipe.yaml.
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining

/// What both sides set up from the recipe: the model (with the tokenizer and chat template), the prompts, the
/// rollout settings.
final class RLSetup {
    let recipe: Recipe
    let rl: RLConfig
    let run: RecipeRun
    let tokenizer: GLMTokenizer
    let prompts: RLPrompts
    /// rl.eval's held-out prompts (checked here, so that a bad file stops the run before any process starts).
    let evalPrompts: RLPrompts?
    let directory: RLRunDirectory
    let stops: Set<Int32>

    init(recipe: Recipe) throws {
        guard recipe.task == .grpo else { throw GLMError("\(recipe.file): task is \(recipe.task.rawValue); RL runs need task: grpo") }
        self.recipe = recipe
        rl = try RLConfig(recipe: recipe)
        if let l = recipe.lora, l.dropout > 0 {
            throw GLMError("\(recipe.file): lora.dropout \(l.dropout): RL needs the same policy in rollout and training; set lora.dropout: 0")
        }
        run = RecipeRun(recipe: recipe)
        try run.loadModel()
        guard let t = run.tokenizer else { throw GLMError("\(recipe.file): RL needs a tokenizer (model.path with tokenizer.json, or model.tokenizer)") }
        tokenizer = t
        let maxPrompt = run.config.maxPositionEmbeddings - rl.maxNewTokens
        guard maxPrompt >= 1 else {
            throw GLMError("\(recipe.file): rl.max_new_tokens \(rl.maxNewTokens) leaves no room for a prompt within max_position_embeddings \(run.config.maxPositionEmbeddings)")
        }
        try run.checkDataFile(recipe.data.train, key: "data.train")
        prompts = try RLPrompts(file: recipe.data.train, tokenizer: t, template: try run.chatTemplate(), maxPromptTokens: maxPrompt)
        if rl.reward.checksAnswer, let i = prompts.answers.firstIndex(where: { $0 == nil }) {
            throw GLMError("\(prompts.locations[i]): no \"answer\", which the recipe's reward checks the response against")
        }
        if let e = rl.eval {
            try run.checkDataFile(e.file, key: "rl.eval.file")
            let held = try RLPrompts(file: e.file, tokenizer: t, template: try run.chatTemplate(), maxPromptTokens: maxPrompt,
                                     limit: e.limit)
            if (e.reward ?? rl.reward).checksAnswer, let i = held.answers.firstIndex(where: { $0 == nil }) {
                throw GLMError("\(held.locations[i]): no \"answer\", which rl.eval's reward checks the response against")
            }
            evalPrompts = held
        } else {
            evalPrompts = nil
        }
        directory = RLRunDirectory(recipe.outputDir)
        stops = run.generationStops
    }

    func worker() -> RolloutWorker {
        RolloutWorker(rl: rl, prompts: prompts, tokenizer: tokenizer, directory: directory, seed: recipe.training.seed,
                      shuffle: recipe.data.shuffle, pad: run.padID, stops: stops)
    }
}

/// The trainer side: trains step k + 1 on rollout batch k and publishes version k + 1 after it.
public final class RLTrainerRun {
    public var observer: TrainerObserver?
    /// Data parallelism (`mpirun -np N glm-train rl train`): every process reads each rollout batch from the shared
    /// run directory and trains on its share of every micro-batch; only rank 0 publishes versions and writes.
    public var dataParallel: DataParallelPlacement?
    let setup: RLSetup

    public init(recipe: Recipe) throws { setup = try RLSetup(recipe: recipe) }

    /// Checks what both sides of a run read (model, tokenizer, prompts, rl.eval's prompts, the answers the rewards
    /// need) without keeping anything: `glm-train run` calls it before it starts the processes of an async run.
    public static func check(recipe: Recipe) throws { _ = try RLSetup(recipe: recipe) }

    /// Trains to training.steps. With `generate` (sync mode) each batch is generated here first, with the current
    /// weights (version = steps done): the on-policy reference. Otherwise rollout processes write the batches.
    public func run(resume: Bool, generate: Bool) throws -> Trainer.Summary {
        let s = setup, rl = s.rl, run = s.run
        if dataParallel != nil && generate {
            throw GLMError("\(s.recipe.file): rl.mode sync generates in the trainer process and does not run under mpirun; use rl.mode: async with glm-train rl rollout workers")
        }
        run.dataParallel = dataParallel
        let primary = run.isPrimary
        try run.prepareTrainable()
        let source = RolloutSource(directory: s.directory, microBatchSize: rl.microBatchSize, pad: run.padID, promptCount: s.prompts.count,
                                   vocabularySize: run.config.vocabSize, maxPositions: run.config.maxPositionEmbeddings)
        source.expectedSamples = rl.samplesPerBatch
        let objective = GRPOObjective(rl: rl)
        let model = run.model!
        if rl.routingReplay { source.replayShape = try RoutingReplay.required(model).1 }
        if rl.klCoef > 0 && !rl.klInReward {
            objective.referenceLogProbs = try RLTrainerRun.reference(run: run, rl: rl)
        }
        var hooks = try run.makeHooks(eval: nil)
        if let e = rl.eval, let held = s.evalPrompts {
            let hook = RLEvalHook(prompts: held, config: e, reward: e.reward ?? rl.reward, tokenizer: s.tokenizer,
                                  maxNewTokens: rl.maxNewTokens, stops: s.stops, seed: s.recipe.training.seed)
            hook.warn = { [weak self] in self?.observer?.trainerDidReport(.warning($0)) }
            hooks.append(hook)
        }
        let trainer = try run.makeTrainer(objective: objective, source: dataParallel.map { ShardedBatchSource(source, rank: $0.rank, of: $0.size) } ?? source,
                                          hooks: hooks)
        trainer.options.gradAccum = RolloutSource.microBatches(samples: rl.samplesPerBatch, microBatchSize: rl.microBatchSize)
        if let e = rl.eval { trainer.options.evalEvery = e.every }
        trainer.options.progressLabel = "grpo"
        trainer.observer = observer
        let lora = run.lora
        let publish: (Int) throws -> Void = { v in
            guard primary else { return }  // the other processes of a data-parallel trainer hold the same weights
            try s.directory.publish(version: v, adapter: lora?.peftAdapter(baseModel: s.recipe.model.path),
                                    tensors: lora == nil ? Dictionary(uniqueKeysWithValues: run.trainable.map { ($0.name, $0.tensor) }) : [:])
        }
        let earlier = trainer.beforeStep
        var published = Set<Int>()
        trainer.beforeStep = { step in
            earlier?(step)
            objective.version = step
            source.trainerVersion = step
            // The version this step starts from must be on disk before a rollout can use it (v0, and after a resume).
            if primary && !published.contains(step) {
                do { try s.directory.ensurePublished(version: step) { try publish(step) } }
                catch { self.observer?.trainerDidReport(.warning("cannot publish version \(step): \(error)")) }
            }
            published.insert(step)
        }
        trainer.afterStep = { step in
            try publish(step); published.insert(step)
            if primary { s.directory.pruneVersions(before: step - rl.maxStaleness - 2) }
        }
        let communication = trainer.stepMetrics
        trainer.stepMetrics = { source.stats.merging(communication?() ?? [:]) { a, _ in a } }
        source.onWait = { [weak self] k, seconds in
            let holder = s.directory.claimHolder(batch: k).map { "; it is claimed by \($0): is that rollout process still working?" } ?? "; is a rollout process running?"
            self?.observer?.trainerDidReport(.note(String(format: "waiting for rollout batch %d (%.0f s)", k, seconds) + holder))
        }
        if generate {
            let worker = s.worker()
            worker.warn = { [weak self] in self?.observer?.trainerDidReport(.warning($0)) }
            let withReference = RLTrainerRun.referenceSwitch(model: model, lora: lora)
            source.produce = { k in
                _ = try s.directory.claimBatch(k)
                lora?.training = false
                defer { lora?.training = true }
                try worker.produce(batch: k, policy: RolloutPolicy(model: model, version: objective.version, withReference: withReference))
            }
        }
        if rl.samplesPerPrompt == 1 {
            // TRL refuses fewer than 2 generations; here the run goes on, but only a KL term can move the policy.
            observer?.trainerDidReport(.warning("\(s.recipe.file): rl.n_samples_per_prompt 1: each group is one sample, so every advantage is 0 and the rewards train nothing (GRPO compares the samples of a prompt)"))
        }
        observer?.trainerDidReport(.note("grpo (\(rl.mode.rawValue)): \(s.prompts.count) prompts, \(rl.promptsPerBatch) × \(rl.samplesPerPrompt) samples per step; run directory \(s.recipe.outputDir)"))
        let summary = try trainer.train(resume: resume)
        guard primary else { return summary }
        try s.directory.markDone()
        try run.finish(summary)
        return summary
    }

    /// Runs a body with LoRA's adapters off (the reference policy of a LoRA run); nil for full fine-tuning.
    static func referenceSwitch(model: any CausalLanguageModel, lora: LoRA?) -> ((() -> Void) -> Void)? {
        guard lora != nil else { return nil }
        return { body in
            let saved = model.adaptedLinears
            model.adaptedLinears = [:]
            defer { model.adaptedLinears = saved }
            body()
        }
    }

    /// The reference log-probs of a batch: the base with adapters off (LoRA), or the initial model, loaded again
    /// once (full fine-tuning).
    static func reference(run: RecipeRun, rl: RLConfig) throws -> (TrainingBatch) -> [Float] {
        let model = run.model!
        if let lora = run.lora {
            let off = referenceSwitch(model: model, lora: lora)!
            return { b in
                var out: [Float] = []
                off { out = Autograd.noGrad { SequenceLogProbs(model: model, batch: b, temperature: rl.temperature).perToken.scalars } }
                return out
            }
        }
        let copy = RecipeRun(recipe: run.recipe)
        try copy.loadModel()
        let reference = copy.model!
        // bf16 storage halves the copy's memory, but only where it loses nothing (a bf16 checkpoint widened for
        // training): the reference is the initial weights exactly, so the KL is 0 at step 1
        if reference.parameters.values.allSatisfy({ $0.rank != 2 || $0.isExactInBF16 }) { reference.storeFrozenMatricesInBF16() }
        return { b in Autograd.noGrad { SequenceLogProbs(model: reference, batch: b, temperature: rl.temperature).perToken.scalars } }
    }
}

/// The rollout side (`glm-train rl rollout`): claims the lowest unwritten batch no live process holds, waits for a
/// version recent enough (version ≥ k − max_staleness for batch k; a lower batch abandoned meanwhile is taken first),
/// loads the newest, and writes the batch; ends when training.steps batches are written or the trainer marks the
/// run done.
public final class RLRolloutRun {
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    let setup: RLSetup

    public init(recipe: Recipe) throws { setup = try RLSetup(recipe: recipe) }

    /// Checks what both sides of a run read (model, tokenizer, prompts, rl.eval's prompts, the answers the rewards
    /// need) without keeping anything: `glm-train run` calls it before it starts the processes of an async run.
    public static func check(recipe: Recipe) throws { _ = try RLSetup(recipe: recipe) }

    public func run() throws {
        let s = setup, rl = s.rl
        let model = s.run.model!
        let base = model.parameters
        let worker = s.worker()
        worker.warn = { [log] in log("warning: \($0)") }
        var loaded: Int?
        var lora: LoRA?
        func load(_ v: Int) throws {
            let dir = s.directory.versionPath(v)
            if s.recipe.lora != nil {
                let adapter = try PEFTAdapter.load(directory: dir, model: model.configuration)
                let l = try LoRA(adapter: adapter, modelConfig: model.configuration)
                try l.attach(to: model)
                lora = l
            } else {
                let file = try SafetensorsFile(path: dir + "/model.safetensors")
                for name in file.names {
                    guard base[name] != nil else { throw GLMError("\(dir)/model.safetensors: '\(name)' is not a parameter of the model") }
                    try model.replaceParameter(name, with: try file.tensor(name))
                }
            }
            loaded = v
        }
        let steps = s.recipe.training.steps
        var low = 0  // every batch below `low` is written
        scan: while !s.directory.isDone {
            while low < steps && s.directory.hasBatch(low) { low += 1 }
            guard low < steps else { return }
            // The lowest unwritten batch that is free or whose holder is gone; none: the others hold every one left
            // (wait, one of them may die).
            var free: Int?
            for j in low..<steps where !s.directory.hasBatch(j) {
                if try s.directory.claimBatch(j) { free = j; break }
            }
            guard let k = free else {
                Thread.sleep(forTimeInterval: 0.1)
                continue scan
            }
            let need = max(0, k - rl.maxStaleness)
            let started = Date()
            var latest = try s.directory.latestVersion()
            var polls = 0
            while (latest ?? -1) < need {
                if s.directory.isDone { return }
                Thread.sleep(forTimeInterval: 0.02)
                latest = try s.directory.latestVersion()
                // A lower batch whose holder died while this one waits: the trainer needs it first (and cannot
                // publish the version this batch waits for without it), so give this claim back and take that one.
                polls += 1
                if polls % 10 == 0, s.directory.abandonedBatch(below: k, from: low) != nil {
                    s.directory.releaseBatch(k)
                    continue scan
                }
            }
            let waited = Date().timeIntervalSince(started)
            if loaded != latest! { try load(latest!) }
            let reference: ((() -> Void) -> Void)? = lora == nil ? nil : RLTrainerRun.referenceSwitch(model: model, lora: lora)
            let batch = try worker.produce(batch: k, policy: RolloutPolicy(model: model, version: latest!, withReference: reference), waited: waited)
            log(String(format: "rollout: batch %d (version %d, %d samples, reward %.3f, %.1f s)", k, latest!, batch.samples.count,
                       batch.stats["rollout/reward_mean"] ?? 0, batch.stats["perf/rollout_seconds"] ?? 0))
        }
    }
}
