// Hugging Face model directories: config.json + model.safetensors (or shards + model.safetensors.index.json)
// + generation_config.json, read into the model its `model_type` names (ModelRegistry) and written back so that
// transformers loads them.
import Foundation
import GLMCore
import GLMModel

/// Loading and saving GLM models in the transformers directory layout.
public enum ModelDirectory {
    public static let configFile = "config.json"
    public static let weightsFile = "model.safetensors"
    public static let indexFile = "model.safetensors.index.json"
    public static let generationConfigFile = "generation_config.json"
    /// Files copied along by `save(..., copyingFilesFrom:)` when the source has them.
    public static let auxiliaryFiles = ["generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                        "special_tokens_map.json", "chat_template.jinja", "tokenizer.model", "added_tokens.json"]

    /// Reads `path/config.json` with the architecture its `model_type` names (ModelRegistry).
    public static func loadConfiguration(_ path: String) throws -> any CausalLMConfig {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw GLMError("\(path): not a directory (expected a model directory with config.json and model.safetensors)")
        }
        let file = "\(path)/\(configFile)"
        let data = try FileInput.read(file, hint: "a model directory needs config.json", limit: FileLimits.maxConfigBytes)
        return try ModelRegistry.decodeConfig(data, source: file)
    }

    /// Reads `path/config.json` of a GLM model (glm, glm4 or legacy chatglm).
    public static func loadConfig(_ path: String) throws -> GLMConfig {
        let c = try loadConfiguration(path)
        guard let glm = c as? GLMConfig else {
            throw GLMError("\(path)/\(configFile): model_type '\(c.modelTypeName)' is not a GLM model (glm, glm4, chatglm)")
        }
        return glm
    }

    /// How loaded weights are held in memory.
    public enum WeightStorage: Sendable {
        /// Matrices stored as bf16 in the files stay bf16 in memory (2 bytes per element; the matrix kernels widen
        /// them block by block), everything else is f32. A tensor later marked trainable (`setRequiresGrad(true)`,
        /// as full fine-tuning does) is widened to f32 then, so only frozen weights — scoring, generation, the base
        /// of LoRA training — stay bf16. The environment variable `GLMTRAIN_FLOAT32_WEIGHTS=1` turns this into
        /// `.float32`.
        case automatic
        /// Every tensor widened to f32 on load.
        case float32

        /// Whether bf16 matrices stay bf16 (`.automatic` unless `GLMTRAIN_FLOAT32_WEIGHTS` is set to 1/true/yes).
        public var keepsBF16: Bool {
            guard self == .automatic else { return false }
            let env = ProcessInfo.processInfo.environment["GLMTRAIN_FLOAT32_WEIGHTS"]?.lowercased()
            return !(env == "1" || env == "true" || env == "yes")
        }
    }

    /// Every tensor of the directory's safetensors (single file or the shards its index lists), by file name,
    /// converted to f32 (bf16 matrices stay bf16 under `.automatic`, see `WeightStorage`). A tensor listed in the
    /// index but absent from its shard, stored in a shard the index does not name for it, or stored twice, is an error.
    public static func loadWeights(_ path: String, storage: WeightStorage = .float32) throws -> [String: Tensor] {
        let keepBF16 = storage.keepsBF16
        let fm = FileManager.default
        let indexPath = "\(path)/\(indexFile)"
        if fm.fileExists(atPath: indexPath) {
            let map = try weightMap(indexPath)
            var out: [String: Tensor] = [:]
            for shard in Set(map.values).sorted() {
                let shardPath = "\(path)/\(shard)"
                guard fm.fileExists(atPath: shardPath) else {
                    throw GLMError("\(shardPath): missing (listed in \(indexFile))")
                }
                let file = try SafetensorsFile(path: shardPath)
                for (name, listed) in map where listed == shard && file.entries[name] == nil {
                    throw GLMError("\(shardPath): no tensor '\(name)' although \(indexFile) lists it there")
                }
                for name in file.names {
                    guard out[name] == nil else { throw GLMError("\(shardPath): tensor '\(name)' is also stored in another shard") }
                    guard map[name] == shard else {
                        throw GLMError("\(shardPath): tensor '\(name)' is not listed for this shard in \(indexFile) (\(map[name].map { "it names \($0)" } ?? "missing from its weight_map"))")
                    }
                    out[name] = try file.tensor(name, keepBF16: keepBF16)
                }
            }
            return out
        }
        let single = "\(path)/\(weightsFile)"
        guard fm.fileExists(atPath: single) else {
            let bin = fm.fileExists(atPath: "\(path)/pytorch_model.bin") || fm.fileExists(atPath: "\(path)/pytorch_model.bin.index.json")
            throw GLMError("\(single): missing (and no \(indexFile))\(bin ? "; pytorch_model.bin is not supported, convert it to safetensors" : "")")
        }
        return try SafetensorsFile(path: single).allTensors(keepBF16: keepBF16)
    }

    /// Loads config and weights; errors name the file, key or tensor (and expected shape). By default bf16 matrices
    /// stay bf16 in memory until they are marked trainable (`WeightStorage.automatic`).
    public static func loadModel(_ path: String, storage: WeightStorage = .automatic) throws -> any CausalLanguageModel {
        let config = try loadConfiguration(path)
        let weights = try loadWeights(path, storage: storage)
        do { return try ModelRegistry.makeModel(config: config, weights: weights) }
        catch let e as GLMError { throw GLMError("\(path): \(e.message)") }
    }

    /// `loadModel` for a GLM model directory.
    public static func load(_ path: String, storage: WeightStorage = .automatic) throws -> (GLMConfig, GLMForCausalLM) {
        let config = try loadConfig(path)
        let weights = try loadWeights(path, storage: storage)
        do { return (config, try GLMForCausalLM(config: config, weights: weights)) }
        catch let e as GLMError { throw GLMError("\(path): \(e.message)") }
    }

    /// Writes `model` to `path` as transformers 5 would: config.json (`config`, default the model's, with "dtype"
    /// set), model.safetensors — or `model-0000k-of-0000n.safetensors` shards of at most `maxShardBytes` each plus
    /// model.safetensors.index.json — and generation_config.json. The directory is published whole
    /// (`AtomicDirectory.publish`): readers, and whoever looks after a crash, see the older directory or the complete
    /// new one, and nothing of an older save (stale shards, an index) survives into the new one.
    /// `copyingFilesFrom` copies tokenizer and generation files (`auxiliaryFiles`) from another model directory (or
    /// from `path` itself, whose older files are still in place while the new directory is written).
    public static func save(_ model: any CausalLanguageModel, config: (any CausalLMConfig)? = nil, to path: String,
                            dtype: StorageDType = .float32, maxShardBytes: Int = 5_000_000_000,
                            copyingFilesFrom source: String? = nil) throws {
        let config = config ?? model.configuration
        let architecture = try ModelRegistry.architecture(of: config)
        let tensors = try architecture.savedTensors(model, config: config)
        let configData = try architecture.encodeConfig(config, dtype: dtypeName(dtype))
        let fm = FileManager.default

        // Shards in name order, each up to maxShardBytes (a tensor larger than that gets a shard of its own).
        var shards: [[String]] = [[]], bytes = 0
        for name in tensors.keys.sorted() {
            let size = tensors[name]!.count * (architecture.keepsFloat32(name) ? 4 : dtype.byteCount)
            if bytes + size > maxShardBytes && !shards[shards.count - 1].isEmpty { shards.append([]); bytes = 0 }
            shards[shards.count - 1].append(name)
            bytes += size
        }
        try AtomicDirectory.publish(path, replacing: ModelDirectory.isModelFile) { dir in
            if shards.count == 1 {
                try SafetensorsWriter.write(tensors, to: "\(dir)/\(weightsFile)", dtype: dtype, keepFloat32: { architecture.keepsFloat32($0) })
            } else {
                var map: [String: Any] = [:]
                for (k, names) in shards.enumerated() {
                    let file = String(format: "model-%05d-of-%05d.safetensors", k + 1, shards.count)
                    try SafetensorsWriter.write(tensors.filter { names.contains($0.key) }, to: "\(dir)/\(file)", dtype: dtype, keepFloat32: { architecture.keepsFloat32($0) })
                    for n in names { map[n] = file }
                }
                let total = tensors.reduce(0) { $0 + $1.value.count * (architecture.keepsFloat32($1.key) ? 4 : dtype.byteCount) }
                let index: [String: Any] = ["metadata": ["total_size": total, "total_parameters": tensors.values.reduce(0) { $0 + $1.count }],
                                            "weight_map": map]
                try AtomicFile.write(try JSONSerialization.data(withJSONObject: index, options: [.prettyPrinted, .sortedKeys]),
                                     to: "\(dir)/\(indexFile)")
            }
            try AtomicFile.write(configData, to: "\(dir)/\(configFile)")
            var copied: Set<String> = []
            if let source {
                for file in auxiliaryFiles where fm.fileExists(atPath: "\(source)/\(file)") {
                    guard let data = fm.contents(atPath: "\(source)/\(file)") else { throw GLMError("\(source)/\(file): unreadable") }
                    try AtomicFile.write(data, to: "\(dir)/\(file)")
                    copied.insert(file)
                }
            }
            if !copied.contains(generationConfigFile) {
                try AtomicFile.write(generationConfig(config), to: "\(dir)/\(generationConfigFile)")
            }
        }
    }

    /// Whether a file name belongs in an HF model directory (what `save` may replace): config, weights, index,
    /// tokenizer and generation files, a model card, git attributes.
    public static func isModelFile(_ name: String) -> Bool {
        [configFile, weightsFile, indexFile, "README.md", ".gitattributes"].contains(name) || auxiliaryFiles.contains(name)
            || (name.hasPrefix("model-") && name.hasSuffix(".safetensors"))
    }

    /// The `weight_map` of a sharded checkpoint's index.
    static func weightMap(_ indexPath: String) throws -> [String: String] {
        let data = try FileInput.read(indexPath, limit: FileLimits.maxConfigBytes)
        try NestingDepth.checkJSON(data, source: indexPath)
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw GLMError("\(indexPath): not a JSON object")
        }
        guard let map = obj["weight_map"] as? [String: String], !map.isEmpty else {
            throw GLMError("\(indexPath): key 'weight_map' must map tensor names to shard files")
        }
        // A plain file name in the directory: not empty, no path separator, no leading dot, no control character.
        if let bad = map.values.first(where: { $0.isEmpty || $0.contains("/") || $0.hasPrefix(".")
                                              || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) {
            throw GLMError("\(indexPath): shard file name \(JSONValue.quoted(bad)) must be a plain file name in the directory")
        }
        return map
    }

    /// transformers' dtype name for a storage type.
    public static func dtypeName(_ dtype: StorageDType) -> String {
        switch dtype {
        case .float32: return "float32"
        case .bfloat16: return "bfloat16"
        case .float16: return "float16"
        }
    }

    /// The storage type of a transformers dtype name (`float32`, `bfloat16`, `float16`), or nil for any other name.
    public static func dtype(named name: String) -> StorageDType? {
        StorageDType.allCases.first { dtypeName($0) == name }
    }

    /// generation_config.json as transformers derives it from the model config.
    static func generationConfig(_ c: any CausalLMConfig) throws -> Data {
        var g: [String: Any] = ["_from_model_config": true, "use_cache": true]
        if let p = c.padTokenId { g["pad_token_id"] = p }
        if let b = c.bosTokenId { g["bos_token_id"] = b }
        let eos = c.eosTokenIds  // as config.json writes them
        if eos.count == 1 { g["eos_token_id"] = eos[0] } else if !eos.isEmpty { g["eos_token_id"] = eos }
        return try JSONSerialization.data(withJSONObject: g, options: [.prettyPrinted, .sortedKeys])
    }
}
