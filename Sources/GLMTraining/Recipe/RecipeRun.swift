// `glm-train run`: builds the model, data, objective, optimizer and hooks a recipe describes, trains, and writes
// the run directory (resolved recipe, metrics, checkpoints, the final model or adapter, plots).
import Foundation
import GLMCore
import GLMIO
import GLMModel

public final class RecipeRun {
    public let recipe: Recipe
    public let runDirectory: String
    public private(set) var model: (any CausalLanguageModel)!
    public private(set) var config: (any CausalLMConfig)!
    public private(set) var tokenizer: GLMTokenizer?
    /// The tokens generation stops on (`GenerationStops`: generation_config.json's eos_token_id, else config.json's).
    public private(set) var generationStops: Set<Int32> = []
    /// The directory tokenizer and generation files are copied from when the model is saved.
    public private(set) var assetDirectory: String?
    public internal(set) var trainable: [TrainableParameter] = []
    /// The adapter of a LoRA run.
    public internal(set) var lora: LoRA?
    /// The load balancing of a Mixture-of-Experts model (made by `makeTrainer`).
    public private(set) var balancer: MoEBalancer?
    /// The directory whose tokenizer_config.json names the chat template (model.tokenizer's, else model.path).
    var templateDirectory: String?
    private var resolvedTemplate: ChatTemplate?
    /// The objective of a dpo run (made with its reference policy by `preparePreference`).
    var preferenceObjective: PreferenceObjective?
    /// The adapted linears of the frozen copy of `model.adapter` (the reference policy of a dpo run started from it).
    var referenceAdapterLinears: [String: LinearOverride]?
    /// Receives the run's progress, warnings and notes (the trainer's events and the run's own); the command line
    /// sets a `ConsoleTrainerObserver`.
    public var observer: TrainerObserver?
    /// Data parallelism (`mpirun -np N`): this process trains on its share of every batch, and only the primary
    /// one writes the run directory. nil: one process.
    public var dataParallel: DataParallelPlacement?
    /// Whether this process writes the run directory (the only process, or rank 0 of a data-parallel job).
    public var isPrimary: Bool { dataParallel?.isPrimary ?? true }
    /// The objective the recipe trains (next-token cross-entropy for pretrain and sft).
    public var objective: TrainingObjective {
        switch (recipe.task, recipe.objective) {
        case (.dpo, _): return preferenceObjective ?? PreferenceObjective(recipe.dpo ?? PreferenceLoss())
        case (.sft, _): return NextTokenObjective(name: "sft")
        case (_, .blankInfilling): return NextTokenObjective(name: "blank_infilling")
        case (_, .causal): return NextTokenObjective(name: recipe.data.packing ? "packed_causal" : "causal")
        }
    }

    public init(recipe: Recipe) {
        self.recipe = recipe
        runDirectory = recipe.outputDir
    }

    var path: (String) -> String { { (self.runDirectory as NSString).appendingPathComponent($0) } }

    /// Runs the recipe. `resume` (or `training.resume: auto`) continues from the newest checkpoint; otherwise an
    /// existing run directory with checkpoints is an error unless `overwrite`.
    public func run(resume resumeFlag: Bool = false, overwrite: Bool = false) throws -> Trainer.Summary {
        let resume = resumeFlag || recipe.training.resume
        if isPrimary { try RunDirectoryCheck.check(runDirectory, overwrite: overwrite) }
        let fm = FileManager.default
        let ckptDir = path("checkpoints")
        if !resume, let existing = try? fm.contentsOfDirectory(atPath: ckptDir), existing.contains(where: { $0.hasSuffix(".h5") }) {
            guard overwrite else {
                throw GLMError("\(runDirectory): this run directory already has checkpoints; pass --resume to continue it, --overwrite to start again, or set output_dir")
            }
            if isPrimary {
                try? fm.removeItem(atPath: ckptDir)
                try? fm.removeItem(atPath: path("best"))
            }
        }
        if let dp = dataParallel, recipe.training.batchSize < dp.size {
            throw GLMError("\(recipe.file): training.batch_size \(recipe.training.batchSize) is less than the \(dp.size) data-parallel processes; each needs at least one \(recipe.task == .dpo ? "pair" : "row") of every batch")
        }
        if resume && isPrimary { try RunDirectoryCheck.checkResumedTask(runDirectory, recipe: recipe) }
        // A run that fails its checks (model, data, hooks) leaves no run behind in a directory that was new or empty.
        let wasNew = isPrimary && RunDirectoryCheck.isNewOrEmpty(runDirectory), existed = fm.fileExists(atPath: runDirectory)
        if isPrimary {
            try AtomicFile.makeDirectory(runDirectory)
            try AtomicFile.write(Data(try recipe.resolvedYAML().utf8), to: path("recipe.yaml"))
        }
        let source: BatchSource, trainer: Trainer
        do { (source, trainer) = try prepareTraining() } catch {
            if wasNew { RunDirectoryCheck.removeUnstartedRun(runDirectory, madeDirectory: !existed) }
            throw error
        }
        let trainableCount = trainable.reduce(0) { $0 + $1.tensor.count }
        let templateNote = resolvedTemplate.map { "; chat template \($0.name)" } ?? ""
        let placement = dataParallel.map { "; data-parallel over \($0.size) processes (MPI), \(recipe.training.batchSize) \(recipe.task == .dpo ? "pairs" : "rows") per batch shared among them" } ?? ""
        let summaryLine = "\(recipe.task.rawValue): \(model.parameterCount) parameters, \(trainableCount) trainable; "
            + "\(source.exampleCount) training \(recipe.task == .dpo ? "pairs" : "examples")\(templateNote); run directory \(runDirectory)\(placement)\n"
        observer?.trainerDidReport(.note(String(summaryLine.dropLast())))
        let summary = try trainer.train(resume: resume)
        if isPrimary { try finish(summary) }
        return summary
    }

    /// Everything a run checks and builds before step 1: the model, the data, the hooks, the trainer.
    func prepareTraining() throws -> (BatchSource, Trainer) {
        try loadModel()
        // Rows of pretraining and packed SFT are always seq_len long: check their activations before anything runs
        // (the trainer checks every micro-batch's real shape; unpacked rows are padded only to the batch's longest).
        if recipe.task == .pretrain || recipe.data.packing {
            try ActivationMemory.check(rows: recipe.training.batchSize / max(dataParallel?.size ?? 1, 1), length: recipe.training.seqLen,
                                       config: config, recompute: recipe.training.gradientCheckpointing,
                                       what: "\(recipe.file): training.batch_size × seq_len")
        }
        let source: BatchSource, hooks: [EvaluationHook]
        if recipe.task == .dpo {
            try prepareTrainable()
            (source, hooks) = try preparePreference()
        } else {
            let train = try loadExamples(recipe.data.train, key: "data.train")
            try checkTrainable(train, key: "data.train")
            source = try makeSource(train, shuffle: recipe.data.shuffle, seed: recipe.training.seed)
            let eval = try recipe.data.eval.map { try loadExamples($0, key: "data.eval") }
            hooks = try makeHooks(eval: eval)
        }
        if let metric = recipe.eval.bestMetric {
            let parts = metric.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
            if let hook = hooks.first(where: { $0.name == parts[1] }), !hook.provides(metric: String(parts[2])) {
                throw GLMError("\(recipe.file): eval.best_metric: hook '\(hook.name)' has no metric '\(parts[2])'")
            }
        }
        if recipe.task != .dpo { try prepareTrainable() }
        let trainer = try makeTrainer(objective: objective, source: dataParallel.map { ShardedBatchSource(source, rank: $0.rank, of: $0.size) } ?? source,
                                      hooks: hooks)
        return (source, trainer)
    }

    /// The trainer of this recipe over `source` with `objective` and `hooks`: optimizer, schedule and the recipe's
    /// training, checkpoint and eval options, checkpoint metadata, the model export and (LoRA) dropout seeding.
    /// Call after `loadModel` and `prepareTrainable`.
    public func makeTrainer(objective: TrainingObjective, source: BatchSource, hooks: [EvaluationHook]) throws -> Trainer {
        let optimizer = try OptimizerFactory.make(recipe.optimizer, parameters: &trainable)
        let schedule = try LearningRateSchedule(kind: LearningRateSchedule.Kind(rawValue: recipe.schedule.name)!,
                                                baseRate: recipe.optimizer.lr, warmupSteps: recipe.schedule.warmupSteps,
                                                totalSteps: recipe.training.steps)
        var options = Trainer.Options(steps: recipe.training.steps)
        options.gradAccum = recipe.training.gradAccum
        options.maxGradNorm = recipe.training.maxGradNorm
        options.logEvery = recipe.training.logEvery
        options.checkpointEvery = recipe.checkpoint.every
        options.keep = recipe.checkpoint.keep
        options.evalEvery = recipe.eval.every
        options.evalAtStart = recipe.eval.atStart
        options.bestMetric = recipe.eval.bestMetric
        options.bestMode = recipe.eval.bestMode
        options.earlyStopPatience = recipe.eval.earlyStopPatience
        options.progressLabel = recipe.task.rawValue
        var objective = withMTPLoss(objective)
        if let moe = try makeBalancer() {
            balancer = moe
            if moe.options.auxLossCoef > 0 { objective = MoEAuxLossObjective(objective, balancer: moe) }
        }
        let trainer = Trainer(model: model, objective: objective, parameters: trainable, optimizer: optimizer, schedule: schedule, source: source,
                              hooks: hooks, runDirectory: runDirectory, options: options)
        if let balancer { trainer.afterOptimizerStep = { balancer.finishStep() } }
        trainer.tokenizer = tokenizer
        trainer.observer = observer
        trainer.gradientSynchronizer = dataParallel?.synchronizer
        if let mpi = dataParallel?.synchronizer as? MPIGradientSynchronizer {
            // Rank 0's view of the step's communication: bytes it allreduced (trainable parameters × 4), the time the
            // buckets took, and the time spent waiting for the slowest process at the sync point.
            trainer.stepMetrics = { ["dp/allreduce_bytes": Double(mpi.lastBytes), "dp/allreduce_s": mpi.lastSeconds,
                                     "dp/wait_s": mpi.lastWaitSeconds, "dp/processes": Double(mpi.group.size)] }
        }
        trainer.checkpointMetadata = ["recipe": try recipe.resolvedYAML(), "task": recipe.task.rawValue,
                                      "base_model": recipe.model.path ?? ""]
        trainer.exportModel = { [unowned self] dir in try self.saveModel(to: dir) }
        trainer.resumeCheck = { [recipe] ckpt in try RecipeRun.resumeDifferences(ckpt, recipe: recipe) }
        if let lora {
            trainer.checkpointMetadata["adapter_config"] = try lora.peftAdapter(baseModel: recipe.model.path).config.jsonText
            let seed = recipe.training.seed
            trainer.beforeStep = { step in lora.dropoutGenerator = SeededGenerator(seed: ExampleOrder.mix(seed, UInt64(step), 0xD809)) }
            trainer.setTraining = { lora.training = $0 }
        }
        return trainer
    }

    /// The LoRA targets of `l`: as given, else every target the model declares.
    func loraTargets(_ l: Recipe.LoRA) -> [String] { l.targetsGiven ? l.targets : model.adaptableTargets }

    /// The balancer of a MoE model: the recipe's `moe:` keys, else bias_update_rate 0.001 for pretraining (GLM-4.5's
    /// and DeepSeek-V3's rate) and 0 for fine-tuning (sft, dpo, grpo: the pretrained balance is kept, as slime's
    /// GLM-4.5 RL scripts do) and under LoRA (the adapter could not carry an updated bias); aux_loss_coef 0. `moe:` on
    /// a model without routed experts, or a non-zero rate with LoRA, is an error naming the key.
    func makeBalancer() throws -> MoEBalancer? {
        guard let m = model as? any MixtureOfExpertsModel else {
            if recipe.moe != nil { throw GLMError("\(recipe.file): moe: this \(model.modelTypeName) model has no routed experts") }
            return nil
        }
        let frozenRouter = lora != nil
        let rate = recipe.moe?.biasUpdateRate ?? (frozenRouter || recipe.task != .pretrain ? 0 : 0.001)
        if frozenRouter && rate > 0 {
            throw GLMError("\(recipe.file): moe.bias_update_rate: \(rate) with LoRA; the router and its correction bias are frozen (the adapter cannot carry an updated bias), set 0")
        }
        return MoEBalancer(model: m, options: MoEOptions(biasUpdateRate: rate, auxLossCoef: recipe.moe?.auxLossCoef ?? 0))
    }

    /// Warnings for settings that change what a resumed run computes (the data order, the batches, the data); a
    /// checkpoint of another task (a dpo run's, resumed by a grpo recipe) is refused: its data cursor, objective and
    /// optimizer state belong to the other run.
    static func resumeDifferences(_ ckpt: TrainingCheckpoint, recipe: Recipe) throws -> [String] {
        guard let text = ckpt.metadata["recipe"], let node = try? RecipeReader.document(text, file: "checkpoint"),
              let old = try? Recipe(node: node, file: "checkpoint") else { return [] }
        guard old.task == recipe.task else {
            throw GLMError("checkpoint step \(ckpt.step) was written by a \(old.task.rawValue) run; \(recipe.file) is a \(recipe.task.rawValue) recipe, which cannot resume it (set output_dir to a new directory)")
        }
        let pairs: [(String, String, String)] = [
            ("training.batch_size", "\(old.training.batchSize)", "\(recipe.training.batchSize)"),
            ("training.seq_len", "\(old.training.seqLen)", "\(recipe.training.seqLen)"),
            ("training.grad_accum", "\(old.training.gradAccum)", "\(recipe.training.gradAccum)"),
            ("training.seed", "\(old.training.seed)", "\(recipe.training.seed)"),
            ("data.train", old.data.train, recipe.data.train),
            ("data.shuffle", "\(old.data.shuffle)", "\(recipe.data.shuffle)"),
            ("data.packing", "\(old.data.packing)", "\(recipe.data.packing)"),
            ("data.end_final_turn", "\(old.data.endFinalTurn)", "\(recipe.data.endFinalTurn)"),
            ("data.chat_template", old.data.chatTemplate?.name ?? "auto", recipe.data.chatTemplate?.name ?? "auto"),
        ]
        return pairs.filter { $0.1 != $0.2 }.map { key, was, now in
            "resuming a checkpoint (step \(ckpt.step)) written with \(key) \(was) under \(key) \(now): the run continues with \(now), so batches from here on differ from the original run's"
        }
    }

    /// `glm-train eval`: runs the recipe's evaluation hooks once on the model at `modelPath` (default the recipe's),
    /// with a PEFT adapter merged in when given; returns `eval/<hook>/<metric>` values.
    public func evaluate(modelPath: String?, adapter: String?) throws -> [String: Double] {
        var r = recipe
        if let modelPath { r.model.path = modelPath; r.model.initConfig = nil }
        guard r.model.path != nil else { throw GLMError("\(recipe.file): eval needs --model (the recipe builds a new model)") }
        let run = RecipeRun(recipe: r)
        try run.loadModel()
        if r.task == .dpo, let adapter {
            try run.preparePreferenceEvaluation(adapter: adapter)
        } else if let adapter {
            try PEFTAdapter.load(directory: adapter, model: run.model.configuration).merge(into: run.model)
        }
        let eval = r.task == .dpo ? nil : try r.data.eval.map { try run.loadExamples($0, key: "data.eval") }
        let hooks = try run.makeHooks(eval: eval)
        guard !hooks.isEmpty else { throw GLMError("\(recipe.file): eval.hooks is empty; nothing to evaluate") }
        let context = EvaluationContext(model: run.model, tokenizer: run.tokenizer, step: 0, runDirectory: runDirectory,
                                        exportModel: { dir in try run.saveModel(to: dir) })
        var values: [String: Double] = [:]
        for hook in hooks {
            for (k, v) in try hook.evaluate(context) { values["eval/\(hook.name)/\(k)"] = v }
        }
        return values
    }

    /// The final export (RUN/adapter for LoRA runs, RUN/model otherwise) and the plots.
    public func finish(_ summary: Trainer.Summary) throws {
        let output: String
        if let lora {
            output = path("adapter")
            try lora.peftAdapter(baseModel: recipe.model.path).save(to: output)
            if model is any MixtureOfExpertsModel, lora.pairs.contains(where: { $0.linear.kind == .mlp || $0.linear.kind == .expert }) {
                let dense = lora.pairs.contains { $0.linear.kind == .mlp }
                observer?.trainerDidReport(.warning("\(output): the adapter has LoRA on gate_proj/up_proj/down_proj in the per-expert layout (transformers 4 names), which GLMTrain applies (score/generate --adapter, export --format merged) but peft 0.21 on transformers 5 does not; " + (dense
                    ? "it also adapts the dense MLP or shared expert, which peft's layout cannot hold beside the routed experts (export --format peft refuses it; train attention-only for peft)"
                    : "glm-train export --format peft writes it as peft's target_parameters on the fused experts")))
            }
        } else {
            output = path("model")
            try saveModel(to: output)
        }
        let plots = try MetricsPlot.writeAll(metrics: path("metrics.jsonl"), to: path("plots"))
        observer?.trainerDidReport(.note("done: step \(summary.finalStep)"
            + (summary.lastLoss.map { String(format: ", loss %.4f", $0) } ?? "")
            + "; \(lora == nil ? "model" : "adapter") in \(output), \(plots.count) plots in \(path("plots"))"))
    }

    /// Saves the model as an HF directory; a LoRA run saves the base with the adapter merged in.
    public func saveModel(to dir: String) throws {
        let m = try lora.map { try ModelRegistry.makeModel(config: config, weights: try $0.mergedWeights(model)) } ?? model!
        try ModelDirectory.save(m, config: config, to: dir, dtype: ModelDirectory.dtype(named: recipe.model.saveDType)!,
                                copyingFilesFrom: assetDirectory)
    }

    public func loadModel() throws {
        if let dir = recipe.model.path {
            let m = try ModelDirectory.loadModel(dir)
            config = m.configuration; model = m; assetDirectory = dir
            let fm = FileManager.default
            if fm.fileExists(atPath: dir + "/tokenizer.json") || fm.fileExists(atPath: dir + "/tokenizer.model") {
                tokenizer = try GLMTokenizer.load(directory: dir)
            }
        } else if let initConfig = recipe.model.initConfig {
            let data = try JSONSerialization.data(withJSONObject: initConfig, options: [.sortedKeys])
            config = try ModelRegistry.decodeConfig(data, source: "\(recipe.file): model.init")
            try RecipeRun.checkInitKeys(initConfig, config: config, file: recipe.file)
            // Training from scratch holds f32 weights, their gradients and the optimizer's two moments: 16 bytes a
            // parameter before any activation. Refused before allocating when that alone passes the machine's memory.
            let memory = MemoryBudget.available
            let (bytes, overflow) = config.parameterCount.multipliedReportingOverflow(by: 16)
            guard !overflow && bytes <= memory else {
                throw GLMError("\(recipe.file): model.init has \(config.parameterCount) parameters; weights, gradients and AdamW state need \(overflow ? "more than 2^63" : "\(bytes >> 20)") MiB (16 bytes each), more than the \(memory >> 20) MiB this process may use")
            }
            model = try ModelRegistry.randomModel(config: config, seed: recipe.model.initSeed ?? recipe.training.seed)
        }
        if let t = recipe.model.tokenizer {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: t, isDirectory: &isDir) else {
                throw GLMError("\(recipe.file): model.tokenizer: '\(t)' does not exist")
            }
            let dir = isDir.boolValue ? t : (t as NSString).deletingLastPathComponent
            tokenizer = try GLMTokenizer.load(directory: dir)
            assetDirectory = assetDirectory ?? dir
            let fm = FileManager.default
            if fm.fileExists(atPath: dir + "/tokenizer_config.json") || fm.fileExists(atPath: dir + "/chat_template.jinja") {
                templateDirectory = dir
            }
        }
        templateDirectory = templateDirectory ?? recipe.model.path
        try tokenizer?.checkFits(vocabSize: config.vocabSize, owner: recipe.file)
        if recipe.training.seqLen > config.maxPositionEmbeddings {
            throw GLMError("\(recipe.file): training.seq_len \(recipe.training.seqLen) is more than the model's max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        generationStops = try GenerationStops.forModel(directory: recipe.model.path, config: config)
        for w in recipe.warnings { observer?.trainerDidReport(.warning(w)) }
        MixedPrecision.requested = recipe.training.precision
        if recipe.training.precision == .bf16 && !MixedPrecision.bf16Available {
            observer?.trainerDidReport(.warning("\(recipe.file): training.precision: bf16 needs AVX512_BF16, which this CPU lacks; matrix products stay f32"))
        } else if recipe.training.precision == .bf16 && !MixedPrecision.allowed {
            observer?.trainerDidReport(.warning("\(recipe.file): training.precision: bf16, but the environment sets GLMTRAIN_BF16=0; matrix products stay f32"))
        }
        if recipe.training.gradientCheckpointing {
            model.recomputesActivations = true
            guard model.recomputesActivations else {
                throw GLMError("\(recipe.file): training.gradient_checkpointing: the \(config.modelTypeName) model does not support activation recompute")
            }
        }
    }

    /// The chat template chat data and chat prompts are rendered with: `data.chat_template`, or the model
    /// directory's (chosen once, on first use, so that recipes without chat data never read it).
    public func chatTemplate() throws -> ChatTemplate {
        if let resolvedTemplate { return resolvedTemplate }
        let t: ChatTemplate
        do { t = try ChatTemplate.resolve(override: recipe.data.chatTemplate, directory: templateDirectory, overrideHint: "data.chat_template") }
        catch let e as GLMError { throw GLMError("\(recipe.file): \(e.message)") }
        resolvedTemplate = t
        return t
    }

    /// A data file named by the recipe's `key` exists and is a file (not a directory).
    public func checkDataFile(_ file: String, key: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw GLMError("\(recipe.file): \(key): '\(file)' does not exist")
        }
        guard !isDirectory.boolValue else { throw GLMError("\(recipe.file): \(key): '\(file)' is a directory; expected a JSONL file") }
    }

    public func loadExamples(_ file: String, key: String) throws -> [TokenizedExample] {
        try checkDataFile(file, key: key)
        let examples: [TokenizedExample]
        switch recipe.task {
        case .pretrain:
            let eot = tokenizer?.tokenID("<|endoftext|>") ?? config.eosTokenIdsInVocabulary.first.map(Int32.init)
            examples = try TokenizedDataset.pretraining(path: file, tokenizer: tokenizer, endOfText: eot, vocabularySize: config.vocabSize)
        case .sft:
            guard let tokenizer else { throw GLMError("\(recipe.file): sft needs a tokenizer (tokenizer.json in the model directory or model.tokenizer)") }
            examples = try TokenizedDataset.sft(path: file, tokenizer: tokenizer, template: try chatTemplate(), vocabularySize: config.vocabSize,
                                                endFinalTurn: recipe.data.endFinalTurn)
        case .dpo:
            throw GLMError("\(recipe.file): \(key): dpo data are preference pairs, read by glm-train run")
        case .grpo:
            throw GLMError("\(recipe.file): task \(recipe.task.rawValue) is not implemented yet")
        }
        guard !examples.isEmpty else { throw GLMError("\(file): no examples (\(key))") }
        return examples
    }

    /// Rows are cut to `seq_len`: at least one example must keep a trained token within it, or nothing would train.
    func checkTrainable(_ examples: [TokenizedExample], key: String) throws {
        let T = recipe.training.seqLen
        let trains = examples.contains { e in
            guard let mask = e.lossMask else { return e.ids.count >= 2 }
            return mask.prefix(T).dropFirst().contains(true)
        }
        guard trains else {
            throw GLMError("\(recipe.file): training.seq_len \(T) is too short: no example of \(key) keeps a trained token within its first \(T) tokens")
        }
    }

    public var padID: Int32 { Int32(config.padTokenId ?? config.eosTokenIdsInVocabulary.first ?? 0) }

    func makeSource(_ examples: [TokenizedExample], shuffle: Bool, seed: UInt64) throws -> BatchSource {
        let t = recipe.training
        switch recipe.objective {
        case .causal:
            if recipe.data.packing {
                return try ObjectiveSources.packedCausal(examples, batchSize: t.batchSize, seqLen: t.seqLen, shuffle: shuffle,
                                                         seed: seed, padID: padID, truncate: recipe.task != .pretrain)
            }
            return try CausalRowSource(examples: examples, batchSize: t.batchSize, seqLen: t.seqLen, shuffle: shuffle, seed: seed, padID: padID)
        case .blankInfilling(let options):
            return try ObjectiveSources.blankInfilling(examples, options: options, tokenizer: tokenizer, config: config,
                                                      batchSize: t.batchSize, seqLen: t.seqLen, shuffle: shuffle, seed: seed)
        }
    }

    public func makeHooks(eval: [TokenizedExample]?) throws -> [EvaluationHook] {
        var hooks: [EvaluationHook] = []
        var names = Set<String>()
        for (i, h) in recipe.eval.hooks.enumerated() {
            let key = "eval.hooks[\(i)]"
            guard names.insert(h.name).inserted else { throw GLMError("\(recipe.file): \(key).name: '\(h.name)' is used twice") }
            if recipe.task == .dpo && h.type == "loss" { hooks.append(try preferenceHook(h, key: key)); continue }
            switch h.type {
            case "loss", "infilling":
                guard let eval else { throw GLMError("\(recipe.file): \(key): a \(h.type) hook needs data.eval") }
                var examples = eval
                if let limit = h.limit { examples = Array(examples.prefix(limit)) }
                let batches = (examples.count + recipe.training.batchSize - 1) / recipe.training.batchSize
                if h.type == "loss" {
                    hooks.append(HeldOutLossHook(name: h.name, batches: batches, objective: objective, dataParallel: dataParallel) { [unowned self] in
                        try self.makeSource(examples, shuffle: false, seed: self.recipe.training.seed ^ 0xE7A1)
                    })
                } else {
                    guard case .blankInfilling(let options) = recipe.objective else {
                        throw GLMError("\(recipe.file): \(key): an infilling hook needs objective: blank_infilling")
                    }
                    let eop = tokenizer?.tokenID("<eop>") ?? -1
                    let objective = try ObjectiveSources.objective(options, tokenizer: tokenizer, config: config,
                                                                   seqLen: recipe.training.seqLen)
                    let (B, seed) = (recipe.training.batchSize, recipe.training.seed ^ 0xE7A1)
                    let hook = InfillingAccuracyHook(name: h.name, batches: batches, endOfPiece: eop) {
                        BlankInfillingSource(examples: examples, objective: objective, batchSize: B, shuffle: false, seed: seed)
                    }
                    hook.dataParallel = dataParallel
                    hooks.append(hook)
                }
            case "exact_match":
                guard let tokenizer else { throw GLMError("\(recipe.file): \(key): exact_match needs a tokenizer") }
                guard let file = h.file, FileManager.default.fileExists(atPath: file) else {
                    throw GLMError("\(recipe.file): \(key).file: '\(h.file ?? "")' does not exist")
                }
                let hook = try ExactMatchHook(name: h.name, file: file, tokenizer: tokenizer, chat: h.chat,
                                              template: h.chat ? try chatTemplate() : .glm4,
                                              maxNewTokens: h.maxNewTokens, normalizer: AnswerNormalizer(rawValue: h.normalize)!,
                                              limit: h.limit, stopTokens: generationStops)
                hook.dataParallel = dataParallel
                hooks.append(hook)
            case "command":
                hooks.append(CommandHook(name: h.name, command: h.command, timeout: h.timeout))
            default:
                throw GLMError("\(recipe.file): \(key).type: unknown hook type '\(h.type)'")
            }
        }
        return hooks
    }

    /// LoRA (`lora:` present): the base is frozen and only the adapter matrices train. Full fine-tuning otherwise:
    /// every parameter trains. Weight decay applies to matrices only (not norms or biases).
    public func prepareTrainable() throws {
        try prepareMTP()
        let wd = Float(recipe.optimizer.weightDecay)
        if let adapter = recipe.model.adapter { try prepareAdapterStart(adapter); return }
        if let l = recipe.lora {
            let declared = model.adaptableTargets
            let targets = loraTargets(l)
            for t in targets where t != "all-linear" && !declared.contains(t) {
                throw GLMError("\(recipe.file): lora.targets: unknown target '\(t)'; this \(model.modelTypeName) model declares \((declared + ["all-linear"]).joined(separator: ", "))")
            }
            let c = LoRAConfig(rank: l.rank, alpha: Float(l.alpha), dropout: Float(l.dropout),
                               targets: targets, layersToTransform: l.layers, useRSLoRA: l.rslora)
            do { try c.validate(for: config) } catch let e as GLMError { throw GLMError("\(recipe.file): lora: \(e.message)") }
            let adapter = try LoRA(modelConfig: config, config: c, seed: recipe.training.seed)
            try adapter.attach(to: model)
            lora = adapter
            trainable = adapter.parameters.map { var p = $0; p.weightDecay = wd; return p }
            return
        }
        trainable = model.parameters.keys.sorted().map { name in
            let t = model.parameters[name]!
            t.setRequiresGrad(true)
            return TrainableParameter(name: name, tensor: t, weightDecay: t.shape.count >= 2 ? wd : 0)
        }
    }
}
