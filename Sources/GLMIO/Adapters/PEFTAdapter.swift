// PEFT LoRA adapter directories (adapter_config.json + adapter_model.safetensors) read and written strictly,
// the vLLM flavour (gate_up_proj split into gate_proj/up_proj), and merging into the base weights.
import Foundation
import GLMCore
import GLMModel

/// A LoRA adapter as plain data: its config and its matrices by PEFT name without the "base_model.model."
/// prefix ("model.layers.N.self_attn.q_proj.lora_A.weight" `[r, in]`, "….lora_B.weight" `[out, r]`), in f32.
public struct PEFTAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"
    /// The prefix PEFT puts before the model's own parameter names in adapter files.
    public static let keyPrefix = "base_model.model."
    /// Ranks vLLM accepts as `--max-lora-rank` (vllm/config/lora.py); an adapter's r must not exceed the one chosen.
    public static let vllmMaxLoRARanks = [1, 8, 16, 32, 64, 128, 256, 320, 512]

    public var config: AdapterConfig
    public var tensors: [String: Tensor]

    public init(config: AdapterConfig, tensors: [String: Tensor]) {
        self.config = config
        self.tensors = tensors
    }

    /// The names of the adapted modules present in `tensors` ("model.layers.0.self_attn.q_proj"), sorted.
    public var moduleNames: [String] {
        Set(tensors.keys.compactMap { LoRATensorName.parse($0)?.module }).sorted()
    }

    /// The adapted modules of a model of `config` present in `tensors`, in the model's declaration order.
    public func modules(in config: any CausalLMConfig) -> [AdaptableLinear] {
        let present = Set(moduleNames)
        return config.adaptableLinears.filter { present.contains($0.module) }
    }

    /// A and B of one module.
    public func matrices(module: String) -> (a: Tensor, b: Tensor)? {
        guard let a = tensors[LoRATensorName.name(module: module, isB: false)],
              let b = tensors[LoRATensorName.name(module: module, isB: true)] else { return nil }
        return (a, b)
    }

    // MARK: reading

    /// Reads a PEFT adapter directory. With `model`, everything is checked against the base model (see `validate`).
    /// Only `adapter_model.safetensors` is read; errors name the file and the key.
    public static func load(directory: String, model: (any CausalLMConfig)? = nil) throws -> PEFTAdapter {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw GLMError("\(directory): not a directory (expected a PEFT adapter with \(configFile) and \(weightsFile))")
        }
        let configPath = "\(directory)/\(configFile)", weightsPath = "\(directory)/\(weightsFile)"
        guard fm.fileExists(atPath: configPath) else { throw GLMError("\(configPath): missing (not a PEFT adapter directory)") }
        let config = try AdapterConfig.load(path: configPath)
        guard fm.fileExists(atPath: weightsPath) else {
            let bin = fm.fileExists(atPath: "\(directory)/adapter_model.bin")
            throw GLMError("\(weightsPath): missing\(bin ? "; adapter_model.bin is not supported, save the adapter with safe_serialization=True" : "")")
        }
        let file = try SafetensorsFile(path: weightsPath)
        var tensors: [String: Tensor] = [:]
        for key in file.names {
            guard key.hasPrefix(keyPrefix) else {
                throw GLMError("\(weightsPath): tensor '\(key)': expected a PEFT name starting with '\(keyPrefix)'")
            }
            tensors[String(key.dropFirst(keyPrefix.count))] = try file.tensor(key)
        }
        // peft's target_parameters layout (fused routed experts) becomes per-expert modules
        tensors = try FusedExpertLoRA.unfuse(config: config, tensors: tensors, source: weightsPath, keyPrefix: keyPrefix)
        let modules = Set(tensors.keys.compactMap { LoRATensorName.parse($0)?.module })
        let adapter = PEFTAdapter(config: config.withPatternsResolvingInSortedOrder(modules: Array(modules)), tensors: tensors)
        if let model {
            try config.validate(against: model, source: configPath)
            try adapter.validateTensors(against: model, source: weightsPath, keyPrefix: keyPrefix)
            // Applied to a model (generate, eval, merge, a run's starting adapter): NaN would reach every output.
            try adapter.checkFinite(source: weightsPath, refusing: "a diverged adapter cannot be applied to the model")
        } else {
            try adapter.validateTensors(against: nil, source: weightsPath, keyPrefix: keyPrefix)
        }
        return adapter
    }

    /// Checks config and tensors against a base model: known targets, every targeted module has both matrices,
    /// no others, rank `r`, and the base weight's in/out sizes.
    public func validate(against model: any CausalLMConfig, source: String = "adapter") throws {
        try config.validate(against: model, source: source)
        try validateTensors(against: model, source: source, keyPrefix: "")
    }

    func validateTensors(against model: (any CausalLMConfig)?, source: String, keyPrefix: String) throws {
        let r = config.r
        let declared = model.map(DeclaredLinears.init)
        func fail(_ name: String, _ what: String) -> GLMError { GLMError("\(source): tensor '\(keyPrefix)\(name)': \(what)") }
        for name in tensors.keys.sorted() {
            guard let (module, isB) = LoRATensorName.parse(name), LoRATensorName.layer(ofModule: module) != nil else {
                throw fail(name, "not a lora_A/lora_B matrix of a decoder-layer linear module (expected model.layers.N.<module>.lora_A|lora_B.weight)")
            }
            let t = tensors[name]!
            guard t.rank == 2 else { throw fail(name, "shape \(t.shape); expected a matrix") }
            let partner = LoRATensorName.name(module: module, isB: !isB)
            guard tensors[partner] != nil else {
                throw fail(name, "\(isB ? "lora_B without its lora_A" : "lora_A without its lora_B") ('\(keyPrefix)\(partner)' is missing)")
            }
            let rank = isB ? t.shape[1] : t.shape[0]
            let ranks = FusedExpertLoRA.allowedRanks(config, module: module)
            guard ranks.contains(rank) else {
                let expected = config.hasModulePatterns ? "its rank from r and rank_pattern is \(ranks.first!)" : "r is \(r)"
                throw fail(name, "rank mismatch: shape \(t.shape) has rank \(rank) but \(expected) in \(PEFTAdapter.configFile)\(ranks.count > 1 ? " (gate_up_proj: \(FusedExpertLoRA.gateUpRank(config)))" : "")")
            }
            let partnerRank = isB ? tensors[partner]!.shape[0] : tensors[partner]!.shape[1]
            guard partnerRank == rank else { throw fail(name, "rank \(rank) differs from its partner's \(partnerRank)") }
            guard config.targets(module: module) else {
                throw fail(name, "module \(module) is not targeted by target_modules/layers_to_transform")
            }
            guard let declared else { continue }
            guard let linear = declared[module] else {
                let layer = LoRATensorName.layer(ofModule: module)!
                if layer >= declared.numHiddenLayers {
                    throw fail(name, "layer \(layer) does not exist in the base model (\(declared.numHiddenLayers) layers)")
                }
                throw fail(name, "not a lora_A/lora_B matrix of a linear module the base model declares (expected model.layers.N.{\(declared.layerModulePaths.joined(separator: "|"))}.lora_A|lora_B.weight)")
            }
            let w = linear.shape
            guard w.count == 2 else { throw fail(name, "\(linear.target) has a \(w.count)-D weight \(w); LoRA on it is not supported in PEFT files") }
            let expected = isB ? [w[0], rank] : [rank, w[1]]
            guard t.shape == expected else {
                throw fail(name, "shape \(t.shape) does not match the base model: \(linear.target) weight is \(w), so expected \(expected)")
            }
        }
        if let model {
            for m in config.targetedModules(model) where matrices(module: m.module) == nil {
                throw GLMError("\(source): no tensor '\(keyPrefix)\(LoRATensorName.name(module: m.module, isB: false))' although \(PEFTAdapter.configFile) targets \(m.module)")
            }
        }
    }

    /// Throws when a matrix holds NaN or ±inf (a diverged run): exports refuse to write such an adapter. The
    /// error names `source` and the first such tensor and element.
    public func checkFinite(source: String, refusing: String = "refusing to export a diverged adapter") throws {
        for name in tensors.keys.sorted() {
            let t = tensors[name]!
            if let i = UnsafeBufferPointer(start: t.pointer, count: t.count).firstIndex(where: { !$0.isFinite }) {
                throw GLMError("\(source): tensor '\(name)' has a non-finite value (\(t.pointer[i]) at element \(i)); \(refusing)")
            }
        }
        guard config.scale.isFinite, config.effectiveAlpha.isFinite, config.effectiveAlpha > 0 else {
            throw GLMError("\(source): lora_alpha \(config.loraAlpha) with r \(config.r) gives no finite positive scale")
        }
    }

    // MARK: writing

    /// Writes `directory` as peft's save_pretrained does: adapter_config.json, adapter_model.safetensors (f32, names
    /// with the "base_model.model." prefix, metadata format pt) and the README.md model card front matter peft writes
    /// (read by llama.cpp's converter for the GGUF metadata). The directory is published whole, replacing an older
    /// one (`AtomicDirectory.publish`): readers never see a half-written adapter.
    public func save(to directory: String) throws {
        try checkFinite(source: directory)
        try AtomicDirectory.publish(directory, replacing: PEFTAdapter.isAdapterFile) { dir in
            try SafetensorsWriter.write(Dictionary(uniqueKeysWithValues: tensors.map { (PEFTAdapter.keyPrefix + $0.key, $0.value) }),
                                        to: "\(dir)/\(PEFTAdapter.weightsFile)")
            try AtomicFile.write(Data(config.jsonText.utf8), to: "\(dir)/\(PEFTAdapter.configFile)")
            try AtomicFile.write(Data(modelCard.utf8), to: "\(dir)/README.md")
        }
    }

    /// Whether a file name belongs in a PEFT adapter directory (what `save` may replace): the config, the weights
    /// (safetensors or bin), the model card and tokenizer files saved beside an adapter.
    public static func isAdapterFile(_ name: String) -> Bool {
        [configFile, weightsFile, "adapter_model.bin", "README.md", ".gitattributes"].contains(name)
            || ModelDirectory.auxiliaryFiles.contains(name)
    }

    /// The YAML front matter of peft's model card.
    var modelCard: String {
        var s = "---\n"
        if let base = config.baseModelNameOrPath { s += "base_model: \(base)\n" }
        s += "library_name: peft\npipeline_tag: text-generation\ntags:\n"
        if let base = config.baseModelNameOrPath { s += "- base_model:adapter:\(base)\n" }
        s += "- lora\n- transformers\n---\n\n# LoRA adapter\n\nWritten by GLMTrain in the PEFT layout.\n"
        return s
    }

    /// Writes `directory` in the layout peft 0.21 loads: routed-expert adapters fused into peft's
    /// `target_parameters` form (`FusedExpertLoRA.fuse`; `experts` is the base model's routed-expert count when
    /// known), everything else as `save(to:)`. Returns the adapter written.
    @discardableResult
    public func savePEFT(to directory: String, experts: Int?) throws -> PEFTAdapter {
        try checkFinite(source: directory)
        let fused = try FusedExpertLoRA.fuse(self, experts: experts)
        try fused.save(to: directory)
        return fused
    }

    /// The smallest `--max-lora-rank` vLLM accepts for this adapter, or nil when r is above all of them.
    public var vllmMaxLoRARank: Int? { PEFTAdapter.vllmMaxLoRARanks.first { $0 >= largestRank } }

    /// The largest rank of any module (r, or a rank_pattern value above it).
    public var largestRank: Int {
        moduleNames.compactMap { matrices(module: $0)?.a.shape[0] }.reduce(config.r, max)
    }

    /// The vLLM flavour of the adapter: vLLM's GLM models pack `gate_proj`/`up_proj` and expect LoRAs on those
    /// two, so each gate_up_proj adapter becomes two sharing A, with B split by rows (gate rows first).
    /// `target_modules` lists the module kinds present. Errors when vLLM cannot serve the rank.
    public func vllmAdapter(model: any CausalLMConfig) throws -> (config: AdapterConfig, tensors: [String: Tensor]) {
        guard vllmMaxLoRARank != nil else {
            throw GLMError("rank \(largestRank) is above what vLLM serves (max_lora_rank at most \(PEFTAdapter.vllmMaxLoRARanks.last!))")
        }
        // vLLM scales every module by its config's lora_alpha / r and reads no rank_pattern/alpha_pattern: with
        // patterns, r becomes the largest module rank and each module's scale ratio is folded into its B.
        var c = config
        if c.hasModulePatterns {
            c.r = largestRank
            c.rankPattern = [:]; c.alphaPattern = [:]; c.rankPatternOrder = []; c.alphaPatternOrder = []
        }
        func scaledB(_ b: Tensor, _ module: String) -> Tensor {
            guard config.hasModulePatterns else { return b }
            let factor = config.scale(forModule: module) / c.scale
            return factor == 1 ? b : Autograd.noGrad { b.scaled(Float(factor)) }
        }
        var out: [String: Tensor] = [:]
        var kinds: [String] = []
        for m in modules(in: model) {
            let (a, unscaled) = matrices(module: m.module)!
            let b = scaledB(unscaled, m.module)
            if m.parts.isEmpty {
                out[LoRATensorName.name(module: m.module, isB: false)] = a
                out[LoRATensorName.name(module: m.module, isB: true)] = b
                if !kinds.contains(m.target) { kinds.append(m.target) }
                continue
            }
            let rows = m.parts.reduce(0) { $0 + $1.rows }
            guard b.shape[0] == rows else {
                throw GLMError("\(m.module): lora_B has \(b.shape[0]) rows; expected \(rows) (\(m.parts.map { "\($0.target) \($0.rows)" }.joined(separator: " + ")))")
            }
            var start = 0
            for part in m.parts {
                let piece = Autograd.noGrad { b.slice(axis: 0, start: start, length: part.rows) }
                start += part.rows
                out[LoRATensorName.name(module: m.module(of: part), isB: false)] = a
                out[LoRATensorName.name(module: m.module(of: part), isB: true)] = piece
                if !kinds.contains(part.target) { kinds.append(part.target) }
            }
        }
        c.targetModules = .list(kinds)
        c.excludeModules = nil
        return (c, out)
    }

    /// Writes the vLLM flavour (see `vllmAdapter`) in the PEFT layout, published whole as `save(to:)` does.
    public func saveVLLM(to directory: String, model: any CausalLMConfig) throws {
        try checkFinite(source: directory)
        let (c, t) = try vllmAdapter(model: model)
        try AtomicDirectory.publish(directory, replacing: PEFTAdapter.isAdapterFile) { dir in
            try SafetensorsWriter.write(Dictionary(uniqueKeysWithValues: t.map { (PEFTAdapter.keyPrefix + $0.key, $0.value) }),
                                        to: "\(dir)/\(PEFTAdapter.weightsFile)")
            try AtomicFile.write(Data(c.jsonText.utf8), to: "\(dir)/\(PEFTAdapter.configFile)")
        }
    }

    // MARK: merging

    /// `weights` with every adapted W replaced by W + scale·B·A (computed in f32; the inputs are not modified).
    public func merged(into weights: [String: Tensor]) throws -> [String: Tensor] {
        var out = weights
        for module in moduleNames {
            let s = Float(config.scale(forModule: module))
            let name = module + ".weight"
            guard let w = weights[name] else { throw GLMError("\(name): not in the base model weights") }
            let (a, b) = matrices(module: module)!
            guard w.shape == [b.shape[0], a.shape[1]] else {
                throw GLMError("\(name): base weight \(w.shape) does not match lora_B·lora_A \([b.shape[0], a.shape[1]])")
            }
            // A bf16 base is read through an f32 copy: `+` would widen the caller's tensor in place (a live model's
            // frozen weight would then leave the bf16 kernels, and its products round differently from then on).
            let base = w.bf16Bits != nil ? w.widened() : w
            out[name] = Autograd.noGrad { base + Tensor.matmul(b, a).scaled(s) }
        }
        return out
    }

    /// Loads the base model directory, merges, and writes a full Hugging Face model directory to `output` in the
    /// base model's storage dtype (its config.json `dtype`), with its tokenizer and generation files.
    public func saveMerged(baseDirectory: String, to output: String) throws {
        try checkFinite(source: output)
        let base = try ModelDirectory.loadModel(baseDirectory)
        let config = base.configuration
        try validate(against: config, source: baseDirectory)
        let weights = try merged(into: base.parameters)
        let model: any CausalLanguageModel
        do { model = try ModelRegistry.makeModel(config: config, weights: weights) }
        catch let e as GLMError { throw GLMError("\(baseDirectory): \(e.message)") }
        try ModelDirectory.save(model, to: output, dtype: PEFTAdapter.storageDType(config.dtype), copyingFilesFrom: baseDirectory)
    }

    /// The storage type named by a config's `dtype` ("bfloat16", "float16"; anything else f32).
    /// Merges the adapter into `model`'s weights in place (W + scale·B·A in f32): the adapter's outputs at the
    /// base model's speed.
    public func merge(into model: any CausalLanguageModel) throws {
        let merged = try merged(into: model.parameters)
        for module in moduleNames {
            let name = module + ".weight"
            try model.replaceParameter(name, with: merged[name]!)
        }
    }

    public static func storageDType(_ name: String?) -> StorageDType {
        name.flatMap(ModelDirectory.dtype(named:)) ?? .float32
    }
}
