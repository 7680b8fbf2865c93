// What `glm-train export` exports, resolved in the IO layer: a PEFT adapter directory, a training checkpoint file,
// or a run directory's newest valid checkpoint — giving the adapter config (absent for full fine-tunes), the
// trained tensors and the base model recorded with them — and the full-fine-tune merge into the base model.
import Foundation
import GLMCore
import GLMModel

public struct ExportSource {
    /// The adapter's config; nil for a checkpoint of a full fine-tune (its tensors are model weights).
    public var adapterConfig: AdapterConfig?
    /// The trained tensors (an adapter's LoRA matrices, or a full fine-tune's parameters).
    public var tensors: [String: Tensor]
    /// The base model directory the adapter or checkpoint names, if any.
    public var recordedBase: String?
    /// The file errors name.
    public var label: String
    /// The default `general.name` of a GGUF export: the adapter or run directory's name (as llama.cpp's converter).
    public var defaultName: String
    /// Torn or corrupt checkpoints skipped on the way.
    public var warnings: [String] = []
    /// Whether the tensors came from a PEFT adapter directory (as opposed to a checkpoint, which may hold more).
    public var isAdapterDirectory: Bool

    /// Resolves exactly one of `run` (RUN/checkpoints' newest valid checkpoint), `checkpoint` (an HDF5 training
    /// checkpoint) and `adapter` (a PEFT directory).
    public static func resolve(run: String?, checkpoint: String?, adapter: String?) throws -> ExportSource {
        guard [run, checkpoint, adapter].compactMap({ $0 }).count == 1 else {
            throw GLMError("give exactly one of --run, --checkpoint, --adapter")
        }
        if let dir = adapter {
            let loaded = try PEFTAdapter.load(directory: dir, model: nil)
            return ExportSource(adapterConfig: loaded.config, tensors: loaded.tensors, recordedBase: loaded.config.baseModelNameOrPath,
                                label: "\(dir)/\(PEFTAdapter.configFile)", defaultName: baseName(dir), isAdapterDirectory: true)
        }
        let file: String, defaultName: String
        var warnings: [String] = []
        if let run {
            let scan = try CheckpointDirectory("\(run)/checkpoints").newestValid()
            warnings = scan.warnings
            guard let f = scan.file else { throw GLMError("\(run)/checkpoints: no valid training checkpoint") }
            file = f.path
            defaultName = baseName(run)
        } else {
            file = checkpoint!
            let parent = (file as NSString).deletingLastPathComponent
            defaultName = (parent as NSString).lastPathComponent == "checkpoints"
                ? baseName((parent as NSString).deletingLastPathComponent)
                : ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        }
        let ckpt = try TrainingCheckpoint.read(from: file)
        let config = try ckpt.metadata["adapter_config"].map {
            try AdapterConfig.decode(Data($0.utf8), source: "\(file): metadata adapter_config")
        }
        return ExportSource(adapterConfig: config, tensors: ckpt.tensors, recordedBase: ckpt.metadata["base_model"],
                            label: file, defaultName: defaultName, warnings: warnings, isAdapterDirectory: false)
    }

    /// The base model's config: `model` (given by the user) or the recorded base. `required` (every format but a
    /// PEFT re-export) makes a missing base an error; a given `model` must exist either way.
    public func baseConfig(model: String?, required: Bool) throws -> (directory: String?, config: (any CausalLMConfig)?) {
        guard let dir = model ?? recordedBase else {
            if required { throw GLMError("\(label): no base model recorded; pass --model BASEDIR") }
            return (nil, nil)
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue {
            return (dir, try ModelDirectory.loadConfiguration(dir))
        }
        if required || model != nil {
            throw GLMError("\(dir): base model directory not found\(model == nil ? " (recorded in \(label); pass --model)" : "")")
        }
        return (dir, nil)
    }

    /// The adapter to export: the adapter config (base recorded as `baseDirectory` when it names none) over the LoRA
    /// matrices (a checkpoint may carry more tensors; nothing else is exported), checked against `baseConfig`.
    public func peftAdapter(baseDirectory: String?, baseConfig: (any CausalLMConfig)?) throws -> PEFTAdapter {
        guard var config = adapterConfig else {
            throw GLMError("\(label): no adapter_config in the checkpoint (a full fine-tune); only --format merged applies")
        }
        if config.baseModelNameOrPath == nil { config.baseModelNameOrPath = baseDirectory }
        let lora = isAdapterDirectory ? tensors : FusedExpertLoRA.completingSharedA(tensors.filter { LoRATensorName.parse($0.key) != nil })
        let exported = FusedExpertLoRA.splittingBlockDiagonal(PEFTAdapter(config: config, tensors: lora))
        if let baseConfig { try exported.validate(against: baseConfig, source: label) }
        // A diverged adapter is refused before any output exists, naming the file its tensors came from.
        try exported.checkFinite(source: isAdapterDirectory
            ? (label as NSString).deletingLastPathComponent + "/" + PEFTAdapter.weightsFile : label)
        return exported
    }

    /// A full fine-tune merged into its base: the base model with the trained tensors in place, saved as an HF
    /// directory at `output` in `dtype` (default: the base's), with the base's tokenizer and generation files.
    public func saveFullFineTune(baseDirectory: String, to output: String, dtype: StorageDType?) throws {
        let base = try ModelDirectory.loadModel(baseDirectory)
        for (n, t) in tensors { try base.replaceParameter(n, with: t) }
        try ModelDirectory.save(base, to: output, dtype: dtype ?? PEFTAdapter.storageDType(base.configuration.dtype),
                                copyingFilesFrom: baseDirectory)
    }

    static func baseName(_ path: String) -> String {
        let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
        return (trimmed as NSString).lastPathComponent
    }
}
