// `glm-train export`: a trained adapter (from a run, a training checkpoint or a PEFT directory) written for
// inference engines: PEFT (transformers/peft, vLLM for q/k/v/o/down targets, SGLang, llama.cpp's converter),
// the vLLM flavour (gate_up_proj split into gate_proj/up_proj), a merged Hugging Face model, or a llama.cpp
// GGUF LoRA adapter. Full fine-tuning checkpoints (no adapter) export as merged models.
import ArgumentParser
import Foundation
import GLMCore
import GLMIO
import GLMModel

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a LoRA adapter (or full fine-tune) as peft, merged, gguf-lora or vllm.",
        discussion: """
        Sources: --run DIR (the newest valid checkpoint in DIR/checkpoints), --checkpoint FILE (an HDF5 training \
        checkpoint), or --adapter DIR (a PEFT adapter directory). The base model is --model, else the checkpoint's \
        base_model, else the adapter's base_model_name_or_path.
        Formats: peft (adapter_config.json + adapter_model.safetensors), vllm (PEFT layout with gate_up_proj split \
        into gate_proj/up_proj), merged (a full Hugging Face model in the base model's dtype), gguf-lora (a llama.cpp \
        adapter: --output DIR writes DIR/adapter.gguf, --output FILE.gguf writes that file).
        """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case peft, merged, ggufLoRA = "gguf-lora", vllm
    }

    @Option(name: .customLong("run"), help: "A run directory: exports its newest valid checkpoint (RUN/checkpoints).")
    var runDirectory: String?
    @Option(help: "An HDF5 training checkpoint file.")
    var checkpoint: String?
    @Option(help: "A PEFT adapter directory.")
    var adapter: String?
    @Option(help: "peft | merged | gguf-lora | vllm")
    var format: Format
    @Option(help: "Output directory (gguf-lora: a directory or a .gguf file).")
    var output: String
    @Option(help: "The base model directory (default: recorded in the checkpoint or adapter).")
    var model: String?
    @Option(help: "gguf-lora tensor type: f32 (llama.cpp converter's default), f16 or bf16.")
    var ggufType = "f32"
    @Option(help: "gguf-lora general.name source (default: the adapter or run directory's name, as llama.cpp's converter does).")
    var name: String?
    @Option(help: "merged exports of full fine-tunes: the saved dtype, float32 | bfloat16 | float16 (default: the base model's).")
    var dtype: String?

    func run() throws {
        guard [runDirectory, checkpoint, adapter].compactMap({ $0 }).count == 1 else {
            throw GLMError("give exactly one of --run, --checkpoint, --adapter")
        }
        let ggmlType: GGMLType
        switch ggufType {
        case "f32": ggmlType = .f32
        case "f16": ggmlType = .f16
        case "bf16": ggmlType = .bf16
        default: throw GLMError("--gguf-type: '\(ggufType)' is not one of f32, f16, bf16")
        }

        let chosen = try dtype.map { name -> StorageDType in
            guard let d = ModelDirectory.dtype(named: name) else {
                throw GLMError("--dtype: '\(name)' is not one of float32, bfloat16, float16")
            }
            return d
        }
        // The source (an adapter, or a full fine-tune's weights) and the base model, resolved in GLMIO.
        let source = try ExportSource.resolve(run: runDirectory, checkpoint: checkpoint, adapter: adapter)
        for w in source.warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        let (baseDir, baseConfig) = try source.baseConfig(model: model, required: format != .peft)
        let defaultName = source.defaultName
        // The export replaces what is at --output: never the base model or the adapter it is made from.
        for (what, dir) in [("the base model", baseDir), ("the adapter", adapter), ("the run directory", runDirectory)] {
            if let dir, Export.samePath(dir, output) {
                throw GLMError("--output \(output) is \(what) the export reads; write the export somewhere else")
            }
        }

        guard source.adapterConfig != nil else {
            guard format == .merged else {
                throw GLMError("\(source.label): no adapter_config in the checkpoint (a full fine-tune); only --format merged applies")
            }
            try source.saveFullFineTune(baseDirectory: baseDir!, to: output, dtype: chosen)
            print("wrote merged model (\(source.tensors.count) trained tensors over \(baseDir!)) to \(output)")
            return
        }
        if dtype != nil {
            throw GLMError("--dtype applies to merged exports of full fine-tunes; a LoRA merge keeps the base model's dtype")
        }
        let exported = try source.peftAdapter(baseDirectory: baseDir, baseConfig: baseConfig)
        let config = exported.config
        let summary = "\(exported.moduleNames.count) modules, r=\(config.r), alpha=\(Export.number(config.loraAlpha))\(config.useRslora ? ", rsLoRA" : "")"

        switch format {
        case .peft:
            let experts = (baseConfig as? Glm4MoeConfig)?.nRoutedExperts
            let written = try exported.savePEFT(to: output, experts: experts)
            let fused = written.config.targetParameters.isEmpty ? "" : "; routed experts as target_parameters \(written.config.targetParameters.joined(separator: ", "))"
            print("wrote PEFT adapter (\(summary)\(fused)) to \(output)")
        case .vllm:
            guard exported.vllmMaxLoRARank != nil else {
                throw GLMError("\(source.label): rank \(exported.largestRank) is above what vLLM serves (max_lora_rank at most \(PEFTAdapter.vllmMaxLoRARanks.last!)); export as peft, merged or gguf-lora")
            }
            try exported.saveVLLM(to: output, model: baseConfig!)
            let split = exported.modules(in: baseConfig!).filter { !$0.parts.isEmpty }
            var seen = Set<String>()
            let notes = split.filter { seen.insert($0.target).inserted }
                .map { "; \($0.target) split into \($0.parts.map(\.target).joined(separator: "/"))" }.joined()
            print("wrote vLLM adapter (\(summary)\(notes)) to \(output); serve with --enable-lora --max-lora-rank \(exported.vllmMaxLoRARank!)")
        case .merged:
            try exported.saveMerged(baseDirectory: baseDir!, to: output)
            print("wrote merged model (\(summary)) to \(output)")
        case .ggufLoRA:
            // The whole file is assembled (and checked) before any directory is made for it.
            let writer = try GGUFLoRA.writer(adapter: exported, model: baseConfig!, name: name ?? defaultName, type: ggmlType)
            let path: String, directory: String
            if output.hasSuffix(".gguf") {
                path = output
                directory = (output as NSString).deletingLastPathComponent
            } else {
                path = "\(output)/adapter.gguf"
                directory = output
            }
            // A directory made here is removed again when the write fails (a full disk), so nothing is left half-done.
            var made: String?  // the outermost directory this makes
            var d = directory
            while !d.isEmpty && !FileManager.default.fileExists(atPath: d) { made = d; d = (d as NSString).deletingLastPathComponent }
            if !directory.isEmpty { try AtomicFile.makeDirectory(directory) }
            do { try writer.write(to: path) } catch {
                if let made { try? FileManager.default.removeItem(atPath: made) }
                throw error
            }
            print("wrote GGUF LoRA adapter (\(summary), arch \(baseConfig!.ggufArchitecture), adapter.lora.alpha \(Export.number(config.effectiveAlpha))) to \(path)")
        }
    }

    /// Whether two paths name the same file or directory (after symlinks, `.` and `..`).
    static func samePath(_ a: String, _ b: String) -> Bool {
        func canonical(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        return canonical(a) == canonical(b)
    }

    static func number(_ x: Double) -> String { x.rounded() == x && abs(x) < 1e15 ? String(Int(x)) : String(x) }
}
