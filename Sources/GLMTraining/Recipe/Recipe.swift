// A recipe: the YAML file a user runs with `glm-train run`, decoded strictly into typed sections.
import Foundation
import GLMCore
import GLMIO
import Yams

public struct Recipe {
    public enum Task: String { case pretrain, sft, dpo, grpo }

    public struct Model {
        /// An HF model directory to start from.
        public var path: String?
        /// config.json keys of a new model (pretraining from scratch), with `tokenizer:` the directory or file of
        /// its tokenizer.json.
        public var initConfig: [String: Any]?
        public var tokenizer: String?
        /// Seed of the initial weights (defaults to training.seed).
        public var initSeed: UInt64?
        /// The dtype the final model is saved in: float32 (default), bfloat16 or float16.
        public var saveDType: String
        /// A PEFT adapter directory the run's LoRA adapters start from (e.g. an SFT run's RUN/adapter).
        public var adapter: String?
    }

    public struct DataSection {
        public var train: String
        public var eval: String?
        public var shuffle: Bool
        public var packing: Bool
        /// `chat_template`: the template chat data is rendered with; nil (`auto`, the default) takes the model
        /// directory's (tokenizer_config.json `chat_template`, chat_template.jinja, else config.json model_type).
        public var chatTemplate: ChatTemplate?
        /// `end_final_turn` (true): a conversation whose last message is an assistant reply ends with the template's
        /// end-of-turn token (`<|endoftext|>`), trained with the reply — as GLM's own fine-tuning scripts and
        /// LLaMA-Factory append EOS; false renders nothing after it, as TRL's conversational SFT and DPO do.
        public var endFinalTurn: Bool = true
    }

    public struct BlankInfillingOptions {
        public var maskRatio: Double
        public var poissonLambda: Double
        /// Probabilities of the sentence-level ([sMASK]) and document-level ([gMASK]) variants; the rest is span-level.
        public var sentenceProbability: Double
        public var documentProbability: Double
    }

    public enum Objective {
        case causal
        case blankInfilling(BlankInfillingOptions)
    }

    public struct Training {
        public var steps: Int
        public var batchSize: Int
        public var seqLen: Int
        public var gradAccum: Int
        public var maxGradNorm: Double
        public var seed: UInt64
        public var resume: Bool
        public var logEvery: Int
        /// `auto`: data-parallel when mpirun starts several processes; `mpi`: the run must be started by mpirun.
        public var dataParallel: String
        /// Data parallelism: allreduce buckets (MiB of gradients) and whether they overlap the last backward.
        public var allreduceBucketMB = 64.0
        public var allreduceOverlap = false
        /// Activation recompute: decoder layers keep only their inputs and run again in the backward.
        public var gradientCheckpointing = false
        /// Matrix products in f32 (exact, the default) or with bf16 operands and f32 accumulation.
        public var precision: ComputePrecision = .f32
    }

    public struct OptimizerSection {
        public var name: String          // adamw | muon
        public var lr: Double
        public var weightDecay: Double
        public var betas: (Double, Double)
        public var eps: Double
        /// Muon: momentum, Newton–Schulz steps, update scale rule, and the AdamW learning rate of the
        /// parameters Muon does not take (embeddings, head, norms, biases).
        public var momentum: Double
        public var nsSteps: Int
        public var muonScale: String     // default | moonlight
        public var adamwLR: Double?
    }

    public struct Schedule {
        public var name: String          // constant | linear | cosine
        public var warmupSteps: Int
    }

    public struct LoRA {
        public var rank: Int
        public var alpha: Double
        public var dropout: Double
        public var targets: [String]
        /// Whether `targets` was given; without it a run adapts every linear its model declares (for GLM exactly the
        /// default list of `targets`; for glm4_moe q/k/v/o and the dense and shared gate/up/down projections).
        public var targetsGiven = true
        public var rslora: Bool
        public var layers: [Int]?
    }

    public struct MoESection {
        public var biasUpdateRate: Double?
        public var auxLossCoef: Double
    }

    /// `mtp:` (models with an MTP layer): the multi-token-prediction loss.
    public struct MTPSection {
        /// λ of the MTP loss (0: the MTP layer stays frozen and is not computed).
        public var lossWeight: Double
        /// How the MTP layer treats position 0's embedding (`keep`, transformers; `zero_embedding`, vLLM).
        public var firstPosition: String
    }

    public struct Checkpointing {
        public var every: Int
        public var keep: Int
    }

    public struct EvalHook {
        public var type: String          // loss | exact_match | infilling | command
        public var name: String
        public var file: String?
        public var maxNewTokens: Int
        public var normalize: String     // exact | strip | lower | number
        public var limit: Int?
        public var chat: Bool
        public var command: [String]
        public var timeout: Double       // command hooks: seconds before the program is stopped
    }

    public struct Eval {
        public var every: Int
        public var hooks: [EvalHook]
        public var bestMetric: String?
        public var bestMode: String      // min | max
        public var earlyStopPatience: Int?
        public var atStart: Bool
    }

    public var file: String
    public var task: Task
    public var model: Model
    public var data: DataSection
    public var objective: Objective
    public var training: Training
    public var optimizer: OptimizerSection
    public var schedule: Schedule
    public var lora: LoRA?
    /// What the recipe says that a user may not have meant (a null `lora:`, warmup longer than the run): the run
    /// reports each as a warning before step 1.
    public var warnings: [String] = []
    /// `moe:` (Mixture-of-Experts models only): the loss-free balancing rate and the auxiliary loss weight; nil
    /// when absent (RecipeRun then uses bias_update_rate 0.001 for pretraining, 0 for fine-tuning and under LoRA, and
    /// no aux loss).
    public var moe: MoESection?
    /// `mtp:` (models with an MTP layer only); nil when absent (no MTP loss).
    public var mtp: MTPSection?
    /// The preference loss of a dpo recipe (`dpo:`; its defaults when the section is absent).
    public var dpo: PreferenceLoss?
    public var checkpoint: Checkpointing
    public var eval: Eval
    public var outputDir: String
    /// The `rl:` section of a grpo recipe, read by the RL layer (GLMRL's RLConfig).
    public var rl: Node?
    /// The YAML tree with overrides applied: what `run` saves as RUN/recipe.yaml.
    public var resolved: Node

    /// Reads `path`, applies `overrides` ("key.sub=value"), and decodes strictly.
    public static func load(path: String, overrides: [String] = []) throws -> Recipe {
        let data = try FileInput.read(path, hint: "expected a recipe (YAML)", limit: FileLimits.maxConfigBytes)
        guard let text = String(data: data, encoding: .utf8) else { throw GLMError("\(path): the recipe is not UTF-8 text") }
        var node = try RecipeReader.document(text, file: path)
        for o in overrides { node = try RecipeOverride.apply(o, to: node, file: path) }
        return try Recipe(node: node, file: path)
    }

    /// Bounds on recipe counts (the README's error promise lists them).
    public static let maxSteps = 1_000_000_000
    public static let maxBatchSize = 65_536

    public init(node: Node, file: String) throws {
        self.file = file; self.resolved = node
        let r = try RecipeReader(file: file, path: "", node: node)
        guard let taskName = try r.choice("task", ["pretrain", "sft", "dpo", "grpo"]) else {
            throw RecipeReader.error(file: file, node: node, key: "task", "missing (pretrain, sft, dpo or grpo)")
        }
        task = Task(rawValue: taskName)!

        guard let m = try r.section("model") else {
            throw RecipeReader.error(file: file, node: node, key: "model", "missing (model: {path: DIR} or model: {init: {...}})")
        }
        let initNode = m.node("init")
        model = Model(path: try m.string("path"), initConfig: try initNode.map { try Recipe.plainValue($0, file: file, key: "model.init") as? [String: Any] ?? [:] },
                      tokenizer: try m.string("tokenizer"), initSeed: try m.int("init_seed").map { UInt64($0) },
                      saveDType: try m.choice("save_dtype", ["float32", "bfloat16", "float16"], default: "float32")!,
                      adapter: try m.string("adapter"))
        try m.finish()
        if (model.path == nil) == (model.initConfig == nil) {
            throw m.fail("path", nil, "give exactly one of model.path (a model directory) and model.init (a new config)")
        }
        if model.adapter != nil && model.path == nil { throw m.fail("adapter", m.node("adapter"), "an adapter needs model.path (the base model it was made for)") }

        guard let d = try r.section("data") else { throw RecipeReader.error(file: file, node: node, key: "data", "missing (data: {train: FILE.jsonl})") }
        guard let train = try d.string("train") else { throw d.fail("train", nil, "missing (a JSONL file)") }
        data = DataSection(train: train, eval: try d.string("eval"), shuffle: try d.bool("shuffle", default: true),
                           packing: try d.bool("packing", default: false), chatTemplate: try Recipe.readChatTemplate(d),
                           endFinalTurn: try d.bool("end_final_turn", default: true))
        if d.has("end_final_turn") && task != .sft && task != .dpo {
            throw d.fail("end_final_turn", d.node("end_final_turn"), "applies to sft and dpo chat data only")
        }
        if data.packing && (task == .dpo || task == .grpo) {
            throw d.fail("packing", d.node("packing"),
                         "\(task.rawValue) rows are one \(task == .dpo ? "pair's sequences" : "sample") each and are not packed; leave data.packing out")
        }
        try d.finish()

        objective = try Recipe.readObjective(r, task: task)

        let t = try r.section("training")
        training = Training(steps: try t?.int("steps", default: 100, min: 1, max: Recipe.maxSteps) ?? 100,
                            batchSize: try t?.int("batch_size", default: 8, min: 1, max: Recipe.maxBatchSize) ?? 8,
                            seqLen: try t?.int("seq_len", default: 256, min: 2, max: FileLimits.maxPositions) ?? 256,
                            gradAccum: try t?.int("grad_accum", default: 1, min: 1, max: Recipe.maxBatchSize) ?? 1,
                            maxGradNorm: try t?.double("max_grad_norm", default: 1.0, min: 0) ?? 1.0,
                            seed: UInt64(try t?.int("seed", default: 0, min: 0) ?? 0),
                            resume: try Recipe.readResume(t),
                            logEvery: try t?.int("log_every", default: 1, min: 1) ?? 1,
                            dataParallel: try t?.choice("data_parallel", ["auto", "mpi"], default: "auto") ?? "auto",
                            allreduceBucketMB: try t?.double("allreduce_bucket_mb", default: 64, min: 1e-4, max: 65536) ?? 64,
                            allreduceOverlap: try t?.bool("allreduce_overlap", default: false) ?? false,
                            gradientCheckpointing: try t?.bool("gradient_checkpointing", default: false) ?? false,
                            precision: ComputePrecision(rawValue: try t?.choice("precision", ["f32", "bf16"], default: "f32") ?? "f32")!)
        if let t, training.batchSize * training.seqLen > FileLimits.maxBatchTokens {
            throw t.fail("seq_len", t.node("seq_len"), "batch_size \(training.batchSize) × seq_len \(training.seqLen) is more than \(FileLimits.maxBatchTokens) tokens per micro-batch")
        }
        try t?.finish()

        let o = try r.section("optimizer")
        let name = try o?.choice("name", ["adamw", "muon"], default: "adamw") ?? "adamw"
        let betas = try o?.doubles("betas") ?? [0.9, 0.95]
        if betas.count != 2 || betas.contains(where: { $0 < 0 || $0 >= 1 }) {
            throw o!.fail("betas", nil, "expected two numbers in [0, 1), got \(betas)")
        }
        optimizer = OptimizerSection(name: name, lr: try o?.double("lr", default: 3e-4, min: 0) ?? 3e-4,
                                     weightDecay: try o?.double("weight_decay", default: 0.01, min: 0, max: 1e6) ?? 0.01,
                                     betas: (betas[0], betas[1]), eps: try o?.double("eps", default: 1e-8, min: 1e-30, max: 1) ?? 1e-8,
                                     momentum: try o?.double("momentum", default: 0.95, min: 0, max: 1) ?? 0.95,
                                     nsSteps: try o?.int("ns_steps", default: 5, min: 1, max: 100) ?? 5,
                                     muonScale: try o?.choice("muon_scale", ["default", "moonlight"], default: "default") ?? "default",
                                     adamwLR: try o?.double("adamw_lr"))
        if name == "adamw", let o, o.has("momentum") || o.has("ns_steps") || o.has("adamw_lr") || o.has("muon_scale") {
            throw o.fail("name", nil, "momentum, ns_steps, muon_scale and adamw_lr are Muon keys; set optimizer.name: muon")
        }
        try o?.finish()

        let s = try r.section("schedule")
        // transformers' scheduler names: constant_with_warmup is our constant (which warms up over warmup_steps;
        // transformers' own `constant` ignores them), linear and cosine warm up in both.
        let scheduleName = try s?.choice("name", ["constant", "constant_with_warmup", "linear", "cosine"], default: "cosine") ?? "cosine"
        schedule = Schedule(name: scheduleName == "constant_with_warmup" ? "constant" : scheduleName,
                            warmupSteps: try s?.int("warmup_steps", default: 0, min: 0, max: Recipe.maxSteps) ?? 0)
        try s?.finish()
        if schedule.warmupSteps > training.steps {
            warnings.append("\(file): schedule.warmup_steps \(schedule.warmupSteps) is more than training.steps \(training.steps): the learning rate never reaches optimizer.lr (at most \(training.steps)/\(schedule.warmupSteps) of it)")
        }
        if r.isNull("lora") {
            warnings.append("\(file): lora is null: full fine-tuning of every parameter (leave the key out to say so, or give lora: {} for LoRA with its defaults)")
        }

        if let l = try r.section("lora") {
            let targets = try l.strings("targets") ?? ["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"]
            // The names are checked against the linears the model declares once it is loaded (RecipeRun).
            if targets.isEmpty { throw l.fail("targets", nil, "empty; name the modules to adapt or all-linear") }
            lora = LoRA(rank: try l.int("rank", default: 16, min: 1, max: FileLimits.maxModelDimension),
                        alpha: try l.double("alpha", default: 32, min: 1e-12, max: 1e12),
                        dropout: try l.double("dropout", default: 0, min: 0, max: 0.99), targets: targets,
                        rslora: try l.bool("rslora", default: false),
                        layers: try l.list("layers").map { try $0.map { n in
                            guard case .scalar(let sc) = n, let v = Int(sc.string), v >= 0 else { throw l.fail("layers", n, "expected a list of layer indices") }
                            return v } })
            lora?.targetsGiven = l.has("targets")
            try l.finish()
        } else { lora = nil }

        let c = try r.section("checkpoint")
        checkpoint = Checkpointing(every: try c?.int("every", default: 0, min: 0, max: Recipe.maxSteps) ?? 0,
                                   keep: try c?.int("keep", default: 3, min: 1, max: 100_000) ?? 3)
        try c?.finish()

        if let m = try r.section("moe") {
            moe = MoESection(biasUpdateRate: try m.has("bias_update_rate") ? m.double("bias_update_rate", default: 0.001, min: 0, max: 1) : nil,
                             auxLossCoef: try m.double("aux_loss_coef", default: 0, min: 0, max: 1e3))
            try m.finish()
        } else { moe = nil }
        if let m = try r.section("mtp") {
            mtp = MTPSection(lossWeight: try m.double("loss_weight", default: 0, min: 0, max: 100),
                             firstPosition: try m.string("first_position", default: "keep"))
            if !["keep", "zero_embedding"].contains(mtp!.firstPosition) {
                throw GLMError("\(file): mtp.first_position: '\(mtp!.firstPosition)' is not one of keep, zero_embedding")
            }
            if mtp!.lossWeight > 0 && (task == .dpo || task == .grpo) {
                throw GLMError("\(file): mtp.loss_weight: the MTP loss is for task pretrain and sft (next-token objectives), not \(task.rawValue)")
            }
            try m.finish()
        } else { mtp = nil }
        dpo = try Recipe.readPreference(r, task: task)
        eval = try Recipe.readEval(try r.section("eval"))
        outputDir = try r.string("output_dir", default: "Checkpoints/runs/" + ((file as NSString).lastPathComponent as NSString).deletingPathExtension)
        guard !outputDir.isEmpty else { throw r.fail("output_dir", r.raw("output_dir"), "is empty; expected a directory path") }
        rl = r.node("rl")
        if rl != nil && task != .grpo {
            throw RecipeReader.error(file: file, node: rl, key: "rl", "only grpo recipes have an rl section")
        }
        try r.finish()

        if case .blankInfilling = objective, data.packing {
            throw RecipeReader.error(file: file, node: node, key: "data.packing", "packing applies to the causal objective only")
        }
    }

    static func readChatTemplate(_ d: RecipeReader) throws -> ChatTemplate? {
        guard let name = try d.string("chat_template") else { return nil }
        do { return try ChatTemplate.named(name) } catch let e as GLMError {
            throw d.fail("chat_template", d.node("chat_template"), e.message)
        }
    }

    static func readResume(_ t: RecipeReader?) throws -> Bool {
        guard let t, let n = t.node("resume"), case .scalar(let s) = n else { return false }
        switch s.string.lowercased() {
        case "auto", "true", "yes": return true
        case "false", "no", "never", "": return false
        default: throw t.fail("resume", n, "expected auto or false, got '\(s.string)'")
        }
    }

    static func readObjective(_ r: RecipeReader, task: Task) throws -> Objective {
        guard let n = r.node("objective") else { return .causal }
        if task != .pretrain { throw r.fail("objective", n, "only pretrain recipes choose an objective (\(task.rawValue) has its own)") }
        var name: String, opts = BlankInfillingOptions(maskRatio: 0.15, poissonLambda: 3, sentenceProbability: 0, documentProbability: 0)
        if case .scalar(let s) = n { name = s.string }
        else {
            let o = try RecipeReader(file: r.file, path: "objective", node: n)
            name = try o.string("name") ?? "causal"
            opts.maskRatio = try o.double("mask_ratio", default: 0.15, min: 0.01, max: 0.9)
            opts.poissonLambda = try o.double("poisson_lambda", default: 3, min: 0.1)
            opts.sentenceProbability = try o.double("sentence_prob", default: 0, min: 0, max: 1)
            opts.documentProbability = try o.double("document_prob", default: 0, min: 0, max: 1)
            if opts.sentenceProbability + opts.documentProbability > 1 {
                throw o.fail("document_prob", nil, "sentence_prob + document_prob must be at most 1")
            }
            try o.finish()
        }
        switch name {
        case "causal": return .causal
        case "blank_infilling": return .blankInfilling(opts)
        default: throw r.fail("objective", n, "expected causal or blank_infilling, got '\(name)'")
        }
    }

    static func readEval(_ e: RecipeReader?) throws -> Eval {
        guard let e else { return Eval(every: 0, hooks: [], bestMetric: nil, bestMode: "min", earlyStopPatience: nil, atStart: false) }
        var hooks: [EvalHook] = []
        for (i, n) in (try e.list("hooks") ?? []).enumerated() {
            let h = try e.element("hooks", index: i, n)
            guard let type = try h.choice("type", ["loss", "exact_match", "infilling", "command"]) else {
                throw h.fail("type", n, "missing (loss, exact_match, infilling or command)")
            }
            let hook = EvalHook(type: type, name: try h.string("name", default: type), file: try h.string("file"),
                                maxNewTokens: try h.int("max_new_tokens", default: 16, min: 1, max: FileLimits.maxPositions),
                                normalize: try h.choice("normalize", ["exact", "strip", "lower", "number"], default: "strip")!,
                                limit: try h.int("limit").map { v in
                                    guard v >= 1 else { throw h.fail("limit", h.node("limit"), "must be at least 1 (leave it out for every example), got \(v)") }
                                    return v },
                                chat: try h.bool("chat", default: true),
                                command: try h.strings("command") ?? [],
                                timeout: try h.double("timeout", default: CommandHook.defaultTimeout, min: 0.01, max: 604_800))
            if type == "exact_match" && hook.file == nil { throw h.fail("file", n, "exact_match needs a task file of {\"prompt\", \"answer\"} lines") }
            if type == "command" && hook.command.isEmpty { throw h.fail("command", n, "a command hook needs command: [program, args...]") }
            try h.finish()
            hooks.append(hook)
        }
        let eval = Eval(every: try e.int("every", default: 0, min: 0, max: Recipe.maxSteps), hooks: hooks, bestMetric: try e.string("best_metric"),
                        bestMode: try e.choice("best_mode", ["min", "max"], default: "min")!,
                        earlyStopPatience: try e.int("early_stop_patience").map { v in
                            guard v >= 1 else { throw e.fail("early_stop_patience", e.node("early_stop_patience"), "must be at least 1, got \(v)") }
                            return v },
                        atStart: try e.bool("at_start", default: true))
        if let metric = eval.bestMetric {
            let parts = metric.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "eval", hooks.contains(where: { $0.name == parts[1] }) else {
                throw e.fail("best_metric", e.node("best_metric"), "expected eval/<hook name>/<metric> naming one of the hooks (\(hooks.map(\.name).joined(separator: ", "))), got '\(metric)'")
            }
        }
        if eval.earlyStopPatience != nil && eval.bestMetric == nil {
            throw e.fail("early_stop_patience", e.node("early_stop_patience"), "needs eval.best_metric (the metric that must improve)")
        }
        try e.finish()
        return eval
    }

    /// A YAML node as plain Swift values (String, Int, Double, Bool, [Any], [String: Any]) for model.init.
    static func plainValue(_ node: Node, file: String, key: String) throws -> Any {
        switch node {
        case .scalar(let s):
            if s.style == .plain {
                if let i = Int(s.string) { return i }
                if let d = Double(s.string) { return d }
                switch s.string { case "true": return true; case "false": return false; case "null", "~": return NSNull(); default: break }
            }
            return s.string
        case .sequence(let seq): return try seq.enumerated().map { try plainValue($1, file: file, key: "\(key)[\($0)]") }
        case .mapping(let m):
            var out: [String: Any] = [:]
            for (k, v) in m {
                guard case .scalar(let ks) = k else { throw RecipeReader.error(file: file, node: k, key: key, "keys must be strings") }
                out[ks.string] = try plainValue(v, file: file, key: key + "." + ks.string)
            }
            return out
        }
    }

    /// The resolved recipe as YAML text.
    public func resolvedYAML() throws -> String { try Yams.serialize(node: resolved) }
}
