// `task: dpo` in a run: the preference data and its pair batches, the reference policy (adapters switched off,
// or swapped for a frozen copy of the adapter training started from; reference log-probabilities computed once
// and stored in the run directory for full fine-tuning), the objective and the preference evaluation hooks; and
// LoRA runs that start from an existing adapter (`model.adapter`).
import Foundation
import GLMCore
import GLMIO
import GLMModel

extension RecipeRun {
    /// Reads a preference file for this run; its warnings (skipped pairs) go to the observer, the first five
    /// one by one and the rest as a count.
    func loadPreferences(_ file: String, key: String) throws -> [PreferenceExample] {
        try checkDataFile(file, key: key)
        guard let tokenizer else { throw GLMError("\(recipe.file): dpo needs a tokenizer (tokenizer.json in the model directory or model.tokenizer)") }
        let d = try PreferenceData.read(path: file, tokenizer: tokenizer, template: try chatTemplate(),
                                        vocabularySize: config.vocabSize, seqLen: recipe.training.seqLen,
                                        endFinalTurn: recipe.data.endFinalTurn)
        for w in d.warnings.prefix(5) { observer?.trainerDidReport(.warning(w)) }
        if d.warnings.count > 5 {
            observer?.trainerDidReport(.warning("\(file): \(d.warnings.count - 5) more pairs skipped (\(d.skipped) of \(d.skipped + d.examples.count) in all)"))
        }
        guard !d.examples.isEmpty else { throw GLMError("\(file): no preference pairs left to train on (\(key); \(d.skipped) skipped)") }
        return d.examples
    }

    /// The training source and evaluation hooks of a dpo run, after `prepareTrainable` (the reference policy
    /// depends on the adapters). Sets `preferenceObjective`.
    func preparePreference() throws -> (BatchSource, [EvaluationHook]) {
        let loss = recipe.dpo ?? PreferenceLoss()
        let t = recipe.training
        let train = try loadPreferences(recipe.data.train, key: "data.train")
        var referenceLinears: [String: LinearOverride]?
        var trainReference: PreferenceReference?
        if lora != nil {
            referenceLinears = referenceAdapterLinears ?? [:]
        } else if loss.usesReference {
            trainReference = try storedReference(train, name: "train", file: recipe.data.train)
        }
        preferenceObjective = PreferenceObjective(loss, referenceLinears: referenceLinears)
        let source = try PreferenceBatchSource(examples: train, pairs: t.batchSize, seqLen: t.seqLen, shuffle: recipe.data.shuffle,
                                               seed: t.seed, padID: padID, reference: trainReference)
        return (source, try makeHooks(eval: nil))
    }

    /// A `loss` hook of a dpo run: the preference loss and TRL's metrics on `file` (default `data.eval`).
    func preferenceHook(_ h: Recipe.EvalHook, key: String) throws -> EvaluationHook {
        guard let file = h.file ?? recipe.data.eval else {
            throw GLMError("\(recipe.file): \(key): a loss hook of a dpo run needs data.eval or file: (a preference file)")
        }
        guard let objective = preferenceObjective else {
            throw GLMError("\(recipe.file): \(key): preference metrics need the reference policy of a run (glm-train run)")
        }
        var examples = try loadPreferences(file, key: "\(key).file")
        if let limit = h.limit { examples = Array(examples.prefix(limit)) }
        var reference: PreferenceReference?
        if lora == nil && objective.preference.usesReference {
            reference = try storedReference(examples, name: "eval-\(h.name)", file: file)
        }
        let (pairs, seqLen, pad) = (recipe.training.batchSize, recipe.training.seqLen, padID)
        let hook = PreferenceEvalHook(name: h.name, objective: objective, batches: (examples.count + pairs - 1) / pairs) {
            try PreferenceBatchSource(examples: examples, pairs: pairs, seqLen: seqLen, shuffle: false, seed: 0, padID: pad,
                                      reference: reference)
        }
        hook.dataParallel = dataParallel
        return hook
    }

    /// Full fine-tuning: the reference (initial) model's log-probabilities of `examples`, read from
    /// RUN/reference/NAME.safetensors when it holds them for this data, else computed now (before training, so
    /// from the initial weights even on a resume) and written there atomically.
    func storedReference(_ examples: [PreferenceExample], name: String, file: String) throws -> PreferenceReference {
        let dir = path("reference")
        let target = (dir as NSString).appendingPathComponent("\(name).safetensors")
        let identity = ["data": file, "data_fnv1a64": try fileDigest(file), "seq_len": "\(recipe.training.seqLen)",
                        "model": recipe.model.path ?? "model.init seed \(recipe.model.initSeed ?? recipe.training.seed)"]
        func counts(_ side: KeyPath<PreferenceExample, TokenizedExample>) -> [Int] {
            examples.map { e in
                let mask = e[keyPath: side].lossMask!.prefix(recipe.training.seqLen)
                return mask.dropFirst().reduce(0) { $0 + ($1 ? 1 : 0) }
            }
        }
        let (stored, reason) = PreferenceReference.load(path: target, identity: identity, chosenCounts: counts(\.chosen),
                                                        rejectedCounts: counts(\.rejected))
        if let stored {
            observer?.trainerDidReport(.note("reference log-probabilities of \(file) read from \(target)"))
            return stored
        }
        if let reason { observer?.trainerDidReport(.warning("\(reason); computing them again")) }
        let started = Date()
        let r = try PreferenceReference.compute(model: model, examples: examples, pairs: recipe.training.batchSize,
                                                seqLen: recipe.training.seqLen, padID: padID)
        guard isPrimary else { return r }  // the other processes of a data-parallel job compute it too and write nothing
        try AtomicFile.makeDirectory(dir)
        try r.save(to: target, identity: identity)
        observer?.trainerDidReport(.note(String(format: "reference log-probabilities of %d pairs of %@ computed in %.1f s and stored in %@",
                                                examples.count, file, Date().timeIntervalSince(started), target)))
        return r
    }

    /// FNV-1a (64 bit) of a file's bytes, in hex: tells a stored reference that its data file changed.
    func fileDigest(_ file: String) throws -> String {
        let data = try FileInput.read(file)
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        data.withUnsafeBytes { for b in $0 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 } }
        return String(h, radix: 16)
    }

    /// `model.adapter`: the run's LoRA adapters start as a copy of this PEFT adapter (its rank, alpha, targets and
    /// layers, which `lora:` must repeat or leave at their defaults; `lora.dropout` applies). A frozen second copy
    /// of the adapter's matrices (no copy of the base weights) is the reference policy of a dpo run.
    func prepareAdapterStart(_ directory: String) throws {
        guard let l = recipe.lora else {
            throw GLMError("\(recipe.file): model.adapter needs a lora: section (the adapter keeps training as LoRA)")
        }
        let adapter: PEFTAdapter
        do { adapter = try PEFTAdapter.load(directory: directory, model: config) } catch let e as GLMError {
            throw GLMError("\(recipe.file): model.adapter: \(e.message)")
        }
        let start = LoRAConfig(adapter, model: config)
        let recipeTargets = try LoRAConfig(targets: loraTargets(l)).resolvedTargets(for: config)
        let mismatches = [("rank", "\(l.rank)", "\(start.rank)", l.rank == start.rank),
                          ("alpha", "\(l.alpha)", "\(start.alpha)", Float(l.alpha) == start.alpha),
                          ("rslora", "\(l.rslora)", "\(start.useRSLoRA)", l.rslora == start.useRSLoRA),
                          ("targets", recipeTargets.joined(separator: ", "), start.targets.joined(separator: ", "), recipeTargets == start.targets),
                          ("layers", "\(l.layers ?? [])", "\(start.layersToTransform ?? [])", (l.layers ?? []) == (start.layersToTransform ?? []))]
        if let m = mismatches.first(where: { !$0.3 }) {
            throw GLMError("\(recipe.file): lora.\(m.0) is \(m.1) but model.adapter \(directory) has \(m.2); make them equal (the adapter keeps its shape)")
        }
        var trainedConfig = adapter.config
        trainedConfig.loraDropout = l.dropout
        let trained = try LoRA(adapter: PEFTAdapter(config: trainedConfig, tensors: adapter.tensors), modelConfig: config, seed: recipe.training.seed)
        trained.training = true
        let reference = try LoRA(adapter: adapter, modelConfig: config)
        for p in reference.parameters { p.tensor.setRequiresGrad(false) }
        try reference.attach(to: model)
        referenceAdapterLinears = model.adaptedLinears
        try trained.attach(to: model)
        lora = trained
        let wd = Float(recipe.optimizer.weightDecay)
        trainable = trained.parameters.map { var p = $0; p.weightDecay = wd; return p }
        observer?.trainerDidReport(.note("LoRA adapters start from \(directory) (r \(start.rank), \(start.targets.count) targets)"))
    }

    /// `glm-train eval --adapter A` on a dpo recipe: the policy is the base with A's adapters, the reference the
    /// run's — the base with the recipe's `model.adapter` (the adapter the run started from), or the base alone —
    /// so the preference metrics are those the run logged.
    func preparePreferenceEvaluation(adapter directory: String) throws {
        if let start = recipe.model.adapter {
            let reference: LoRA
            do { reference = try LoRA(adapter: try PEFTAdapter.load(directory: start, model: config), modelConfig: config) }
            catch let e as GLMError { throw GLMError("\(recipe.file): model.adapter: \(e.message)") }
            for p in reference.parameters { p.tensor.setRequiresGrad(false) }
            try reference.attach(to: model)
            referenceAdapterLinears = model.adaptedLinears
        }
        let policy: LoRA
        do { policy = try LoRA(adapter: try PEFTAdapter.load(directory: directory, model: config), modelConfig: config) }
        catch let e as GLMError { throw GLMError("--adapter: \(e.message)") }
        try policy.attach(to: model)
        lora = policy
        preferenceObjective = PreferenceObjective(recipe.dpo ?? PreferenceLoss(), referenceLinears: referenceAdapterLinears ?? [:])
    }
}
