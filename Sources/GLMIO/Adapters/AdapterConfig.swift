// adapter_config.json of a PEFT LoRA adapter: the fields GLMTrain understands, checked strictly, and the file
// written with every key peft 0.21 writes (so peft, vLLM and llama.cpp read it as one of their own).
import Foundation
import GLMCore
import GLMModel

/// PEFT's `target_modules`: a list of names (each matches a module whose name equals it or ends with "." + it),
/// `"all-linear"`, or another string, which is a regular expression the whole module name must match.
public enum AdapterTargets: Equatable, Sendable {
    case list([String])
    case allLinear
    case regex(String)

    /// The JSON value peft writes.
    var json: AdapterJSON {
        switch self {
        case .list(let l): return .array(l.map { .string($0) })
        case .allLinear: return .string("all-linear")
        case .regex(let r): return .string(r)
        }
    }

    /// Whether the module `name` (e.g. "model.layers.0.self_attn.q_proj") is targeted.
    public func matches(_ name: String) -> Bool {
        switch self {
        case .allLinear: return true
        case .list(let l): return l.contains { name == $0 || name.hasSuffix("." + $0) }
        case .regex(let r): return AdapterTargets.fullMatch(r, name)
        }
    }

    /// Whether `pattern` matches all of `s` (false when the match runs out of `BoundedRegex.budget`; patterns are
    /// probed when a file is read, see `checkRegexSpeed`).
    static func fullMatch(_ pattern: String, _ s: String) -> Bool {
        guard let re = try? NSRegularExpression(pattern: "^(?:" + PythonRegex.icu(pattern) + ")$") else { return false }
        return BoundedRegex.firstMatch(re, in: s) == .match
    }

    /// Module names a pattern is tried on when a file is read: a pattern that takes longer than the budget on any
    /// of them (nested repetition backtracks exponentially) is refused then, rather than stalling every match.
    static let probeNames = ["model.layers.0.self_attn.q_proj", "model.layers.4095.mlp.experts.65535.gate_proj",
                             "model.layers.10.mlp.shared_experts.down_proj", "model.layers.1.self_attn.query_key_value_x"]

    /// Throws when `pattern` (as `fullMatch` runs it) runs out of the time budget on a probe name.
    static func checkRegexSpeed(_ pattern: String, _ what: @autoclosure () -> String) throws {
        guard let re = try? NSRegularExpression(pattern: "^(?:" + PythonRegex.icu(pattern) + ")$") else { return }
        for name in probeNames where BoundedRegex.firstMatch(re, in: name) == .timedOut {
            throw GLMError("\(what()): the regular expression takes more than \(BoundedRegex.budget) s to match the module name '\(name)' (nested repetition such as (a*)* backtracks without end); simplify it")
        }
    }
}

/// The fields of a PEFT `LoraConfig` that matter to GLMTrain. Other keys read from a file are kept in `extra`
/// and written back unchanged.
public struct AdapterConfig: Equatable, Sendable {
    public var peftType = "LORA"
    public var taskType: String? = "CAUSAL_LM"
    /// The base model: a Hugging Face id or a directory (llama.cpp's converter reads its config.json).
    public var baseModelNameOrPath: String? = nil
    public var r = 8
    public var loraAlpha: Double = 8
    public var loraDropout: Double = 0
    public var targetModules: AdapterTargets = .list([])
    public var excludeModules: AdapterTargets? = nil
    /// Scale α/√r instead of α/r.
    public var useRslora = false
    /// Only these layer indices carry adapters (nil: all layers).
    public var layersToTransform: [Int]? = nil
    public var layersPattern: AdapterJSON = .null
    public var bias = "none"
    public var fanInFanOut = false
    public var modulesToSave: AdapterJSON = .null
    public var useDora = false
    public var rankPattern: [String: AdapterJSON] = [:]
    public var alphaPattern: [String: AdapterJSON] = [:]
    /// The keys of `rankPattern` / `alphaPattern` in the file's order (peft takes the first that matches).
    public var rankPatternOrder: [String] = []
    public var alphaPatternOrder: [String] = []
    public var inferenceMode = true
    public var initLoraWeights: AdapterJSON = .bool(true)
    public var revision: String? = nil
    /// peft's `target_parameters`: the fused routed-expert parameters of a MoE model ("gate_up_proj", "down_proj",
    /// or names ending in them), which peft adapts with its ParamWrapper (see `FusedExpertLoRA`). Empty: none.
    public var targetParameters: [String] = []
    /// Keys not modelled above, as read.
    public var extra: [String: AdapterJSON] = [:]

    public init(r: Int = 8, loraAlpha: Double = 8, loraDropout: Double = 0, targetModules: AdapterTargets = .list([]),
                useRslora: Bool = false, layersToTransform: [Int]? = nil, baseModelNameOrPath: String? = nil) {
        self.r = r; self.loraAlpha = loraAlpha; self.loraDropout = loraDropout; self.targetModules = targetModules
        self.useRslora = useRslora; self.layersToTransform = layersToTransform; self.baseModelNameOrPath = baseModelNameOrPath
    }

    /// The factor on B·A: α/r, or α/√r with rsLoRA.
    public var scale: Double { useRslora ? loraAlpha / Double(r).squareRoot() : loraAlpha / Double(r) }

    /// The alpha that gives the same scale under the plain α/r rule (llama.cpp's): α·√r with rsLoRA.
    public var effectiveAlpha: Double { useRslora ? loraAlpha * Double(r).squareRoot() : loraAlpha }

    /// Whether the linear `module` (e.g. "model.layers.0.self_attn.q_proj") carries an adapter under this config.
    /// peft's `check_target_module_exists`: excluded modules first; `layers_to_transform` filters only modules
    /// matched by a suffix of a `target_modules` list (peft ignores it for a module named in full and for a regex).
    public func targets(module name: String) -> Bool {
        if let ex = excludeModules, ex.matches(name) { return false }
        if !targetParameters.isEmpty, let expert = FusedExpertLoRA.expertModule(name) {
            // with target_parameters, the routed experts are adapted through their fused parameters only
            if let layers = layersToTransform {
                guard let layer = LoRATensorName.layer(ofModule: name), layers.contains(layer) else { return false }
            }
            return targetParameters.contains { $0 == expert.fused || $0.hasSuffix("." + expert.fused) }
        }
        switch targetModules {
        case .regex: return targetModules.matches(name)
        case .list(let l) where l.contains(name): return true
        default:
            if let layers = layersToTransform {
                guard let layer = LoRATensorName.layer(ofModule: name), layers.contains(layer) else { return false }
            }
            return targetModules.matches(name)
        }
    }

    /// Every linear of a model of `config` this config targets, in the model's declaration order.
    public func targetedModules(_ config: any CausalLMConfig) -> [AdaptableLinear] {
        config.adaptableLinears.filter { targets(module: $0.module) }
    }

    // MARK: reading

    /// The largest rank read from a file (far above any useful LoRA; vLLM serves up to 512).
    public static let maxRank = 1 << 16
    /// The largest lora_alpha read from a file.
    public static let maxAlpha = 1e9

    /// Throws unless `alpha` is finite, positive and at most `maxAlpha`; `what` names the file and key.
    static func checkAlpha(_ alpha: Double, _ what: @autoclosure () -> String) throws {
        guard alpha.isFinite, alpha > 0, alpha <= maxAlpha else {
            throw GLMError("\(what()): expected a positive number up to \(Int(maxAlpha)), got \(alpha)")
        }
    }

    /// Parses adapter_config.json; `source` names the file in errors. Checks what GLMTrain cannot honour:
    /// a non-LoRA type, DoRA, trained biases, fan_in_fan_out, modules_to_save, per-module rank/alpha patterns.
    public static func decode(_ data: Data, source: String) throws -> AdapterConfig {
        guard let o = try AdapterJSON.parse(data, source: source).dictionary else {
            throw GLMError("\(source): expected a JSON object")
        }
        func fail(_ key: String, _ what: String) -> GLMError { GLMError("\(source): key '\(key)': \(what)") }
        func string(_ key: String) throws -> String? {
            switch o[key] {
            case nil, .null?: return nil
            case .string(let s)?: return s
            default: throw fail(key, "expected a string")
            }
        }
        func number(_ key: String) throws -> Double? {
            switch o[key] {
            case nil, .null?: return nil
            case .integer(let digits)?: return Double(digits) ?? .infinity
            case .double(let d)?: return d
            default: throw fail(key, "expected a number")
            }
        }
        func bool(_ key: String) throws -> Bool? {
            switch o[key] {
            case nil, .null?: return nil
            case .bool(let b)?: return b
            default: throw fail(key, "expected true or false")
            }
        }
        func targets(_ key: String) throws -> AdapterTargets? {
            switch o[key] {
            case nil, .null?: return nil
            case .string(let s)?:
                if s == "all-linear" { return .allLinear }
                guard (try? NSRegularExpression(pattern: PythonRegex.icu(s))) != nil else { throw fail(key, "'\(s)' is not a valid regular expression") }
                try AdapterTargets.checkRegexSpeed(s, "\(source): key '\(key)': '\(s)'")
                return .regex(s)
            case .array(let a)?:
                return .list(try a.map { v -> String in
                    guard case .string(let s) = v else { throw fail(key, "expected a list of module names") }
                    return s
                })
            default: throw fail(key, "expected a list of module names or a string")
            }
        }
        var c = AdapterConfig()
        let known: Set<String> = ["peft_type", "task_type", "base_model_name_or_path", "r", "lora_alpha", "lora_dropout",
                                  "target_modules", "exclude_modules", "use_rslora", "layers_to_transform", "layers_pattern",
                                  "bias", "fan_in_fan_out", "modules_to_save", "use_dora", "rank_pattern", "alpha_pattern",
                                  "inference_mode", "init_lora_weights", "revision", "target_parameters"]
        c.peftType = try string("peft_type") ?? "LORA"
        guard c.peftType == "LORA" else { throw fail("peft_type", "'\(c.peftType)' is not supported (expected LORA)") }
        c.taskType = try string("task_type")
        c.baseModelNameOrPath = try string("base_model_name_or_path")
        guard let r = try number("r") else { throw fail("r", "missing (the LoRA rank)") }
        guard r.isFinite, r >= 1, r <= Double(maxRank), r.rounded() == r else {
            throw fail("r", "expected a positive integer rank up to \(maxRank), got \(r)")
        }
        c.r = Int(r)
        c.loraAlpha = try number("lora_alpha") ?? 8
        try checkAlpha(c.loraAlpha, "\(source): key 'lora_alpha'")
        c.loraDropout = try number("lora_dropout") ?? 0
        guard c.loraDropout >= 0 && c.loraDropout < 1 else { throw fail("lora_dropout", "expected 0 ≤ p < 1, got \(c.loraDropout)") }
        switch o["target_parameters"] {
        case nil, .null?: break
        case .array(let a)?:
            c.targetParameters = try a.map { v -> String in
                guard case .string(let s) = v else { throw fail("target_parameters", "expected a list of parameter names") }
                return s
            }
        default: throw fail("target_parameters", "expected a list of parameter names")
        }
        if let t = try targets("target_modules") { c.targetModules = t }
        else if c.targetParameters.isEmpty { throw fail("target_modules", "missing") }
        c.excludeModules = try targets("exclude_modules")
        c.useRslora = try bool("use_rslora") ?? false
        switch o["layers_to_transform"] {
        case nil, .null?: c.layersToTransform = nil
        case .integer(let digits)?:
            guard let i = Int(digits), i >= 0 else { throw fail("layers_to_transform", "expected a layer index, got \(digits)") }
            c.layersToTransform = [i]
        case .array(let a)? where a.isEmpty:
            c.layersToTransform = nil  // peft: an empty list transforms every layer (is_using_layer_indexes is false)
        case .array(let a)?:
            c.layersToTransform = try a.map { v -> Int in
                guard let i = v.intValue, i >= 0 else { throw fail("layers_to_transform", "expected layer indices") }
                return i
            }
        default: throw fail("layers_to_transform", "expected a layer index or a list of them")
        }
        c.layersPattern = o["layers_pattern"] ?? .null
        if case .string(let p) = c.layersPattern, p != "layers" {
            throw fail("layers_pattern", "'\(p)' does not name GLM's decoder layers (model.layers)")
        }
        c.bias = try string("bias") ?? "none"
        guard c.bias == "none" else { throw fail("bias", "'\(c.bias)' is not supported (only \"none\": no trained biases)") }
        c.fanInFanOut = try bool("fan_in_fan_out") ?? false
        guard !c.fanInFanOut else { throw fail("fan_in_fan_out", "true is for Conv1D weights; GLM's linears are [out, in]") }
        c.modulesToSave = o["modules_to_save"] ?? .null
        switch c.modulesToSave {
        case .null: break
        case .array(let a) where a.isEmpty: break
        default: throw fail("modules_to_save", "fully trained modules are not supported (vLLM and llama.cpp reject them too)")
        }
        c.useDora = try bool("use_dora") ?? false
        guard !c.useDora else { throw fail("use_dora", "DoRA is not supported") }
        for key in ["rank_pattern", "alpha_pattern"] {
            switch o[key] {
            case nil, .null?: break
            case .object(let p)?:
                let d = Dictionary(p.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
                var order: [String] = [], seen = Set<String>()
                for (k, _) in p where seen.insert(k).inserted { order.append(k) }
                if key == "rank_pattern" { c.rankPattern = d; c.rankPatternOrder = order } else { c.alphaPattern = d; c.alphaPatternOrder = order }
            default: throw fail(key, "expected an object")
            }
        }
        try FusedExpertLoRA.checkConfig(c, source: source)
        c.inferenceMode = try bool("inference_mode") ?? true
        c.initLoraWeights = o["init_lora_weights"] ?? .bool(true)
        c.revision = try string("revision")
        for (k, v) in o where !known.contains(k) {
            if k == "use_qalora" || k == "lora_bias" || k == "use_bdlora", case .bool(true) = v {
                throw fail(k, "true is not supported")
            }
            // peft options that change the adapted forward pass: refused rather than silently applied as plain LoRA
            if let what = Self.forwardChangingOptions[k] {
                switch v {
                case .null, .bool(false): break
                case .array(let a) where a.isEmpty: break
                case .object(let o) where o.isEmpty: break
                default: throw fail(k, "\(what) is not supported (GLMTrain would apply the adapter as plain LoRA)")
                }
            }
            c.extra[k] = v
        }
        return c
    }

    /// peft LoraConfig keys whose non-empty value changes what the adapter computes, with what they are.
    static let forwardChangingOptions = [
        "alora_invocation_tokens": "aLoRA (the adapter acts only from its invocation tokens on)",
        "arrow_config": "Arrow routing between LoRA experts",
        "monteclora_config": "MonteCLoRA",
        "kasa_config": "KaSA",
        "layer_replication": "layer replication",
        "trainable_token_indices": "training token embeddings beside LoRA",
    ]

    /// The modules of `model` that are not LoRA targets here: the output head and the embedding (chatglm's names
    /// for them too), and a MoE model's routers.
    static func unadaptedModules(of model: any CausalLMConfig) -> Set<String> {
        var names: Set<String> = ["lm_head", "embed_tokens"]
        if model.modelTypeName == "chatglm" { names.formUnion(["word_embeddings", "output_layer"]) }
        if model.adaptableLinears.contains(where: { $0.kind == .expert }) { names.insert("gate") }
        return names
    }

    /// Reads `path` (an adapter_config.json).
    public static func load(path: String) throws -> AdapterConfig {
        let data = try FileInput.read(path, limit: FileLimits.maxConfigBytes)
        return try decode(data, source: path)
    }

    /// Checks the targets against a base model: a layer index beyond it is an error naming it, and so is a config
    /// that adapts no linear module. A list entry that names no module of this model is ignored, as peft ignores
    /// it (a list written for several architectures, e.g. [q_proj, v_proj, query_key_value]).
    public func validate(against model: any CausalLMConfig, source: String) throws {
        let n = model.numHiddenLayers
        let linears = model.adaptableLinears
        if case .list(let l) = targetModules {
            guard !l.isEmpty || !targetParameters.isEmpty else { throw GLMError("\(source): key 'target_modules': empty list") }
            // Modules this model has that peft would adapt (or refuse) and GLMTrain does not: refused by name (a
            // name the model lacks is ignored, as peft ignores it).
            let unadapted = AdapterConfig.unadaptedModules(of: model)
            for t in l where unadapted.contains(t.split(separator: ".").last.map(String.init) ?? t) {
                throw GLMError("\(source): key 'target_modules': unknown target '\(t)': LoRA on it is not supported (this \(model.modelTypeName) model's linear modules: \(model.adaptableTargets.joined(separator: ", ")))")
            }
        }
        if !targetParameters.isEmpty, !linears.contains(where: { $0.kind == .expert }) {
            throw GLMError("\(source): key 'target_parameters': this \(model.modelTypeName) model has no routed experts")
        }
        if let layers = layersToTransform, let bad = layers.first(where: { $0 >= n }) {
            throw GLMError("\(source): key 'layers_to_transform': layer \(bad) does not exist (the model has \(n) layers)")
        }
        if targetedModules(model).isEmpty {
            throw GLMError("\(source): key 'target_modules': targets no linear module of the model (its linear modules: \(model.adaptableTargets.joined(separator: ", ")))")
        }
    }

    // MARK: writing

    /// Every key peft 0.21.2 writes for a LoRA adapter, with this config's values.
    public var jsonObject: [String: AdapterJSON] {
        var o: [String: AdapterJSON] = [
            "alora_invocation_tokens": .null, "alpha_pattern": .keyed(alphaPattern), "arrow_config": .null,
            "auto_mapping": .null, "base_model_name_or_path": baseModelNameOrPath.map { .string($0) } ?? .null,
            "bias": .string(bias), "corda_config": .null, "ensure_weight_tying": .bool(false), "eva_config": .null,
            "exclude_modules": excludeModules?.json ?? .null, "fan_in_fan_out": .bool(fanInFanOut),
            "inference_mode": .bool(inferenceMode), "init_lora_weights": initLoraWeights, "kasa_config": .null,
            "layer_replication": .null, "layers_pattern": layersPattern,
            "layers_to_transform": layersToTransform.map { .array($0.map { .int($0) }) } ?? .null,
            "loftq_config": .keyed([:]), "lora_alpha": AdapterJSON.number(loraAlpha), "lora_bias": .bool(false),
            "lora_dropout": .double(loraDropout), "lora_ga_config": .null, "megatron_config": .null,
            "megatron_core": .string("megatron.core"), "modules_to_save": modulesToSave, "monteclora_config": .null,
            "peft_type": .string(peftType), "peft_version": .string("0.21.2"), "qalora_group_size": .int(16),
            "r": .int(r), "rank_pattern": .keyed(rankPattern), "revision": revision.map { .string($0) } ?? .null,
            "target_modules": targetModules.json,
            "target_parameters": targetParameters.isEmpty ? .null : .array(targetParameters.map { .string($0) }),
            "task_type": taskType.map { .string($0) } ?? .null, "trainable_token_indices": .null, "use_bdlora": .null,
            "use_dora": .bool(useDora), "use_qalora": .bool(false), "use_rslora": .bool(useRslora), "velora_config": .null,
        ]
        for (k, v) in extra { o[k] = v }
        return o
    }

    /// The file text, laid out as peft writes it (`json.dumps(indent=2, sort_keys=True)`).
    public var jsonText: String { AdapterJSON.keyed(jsonObject).rendered(style: .python) }
}
