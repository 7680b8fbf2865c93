// Options shared by the commands that load a model (`score`, `generate`, `tokenize`), and `--adapter` (`score`, `generate`).
import ArgumentParser
import Foundation
import GLMCore
import GLMIO
import GLMModel

struct ModelOptions: ParsableArguments {
    @Option(help: "A Hugging Face model directory (config.json, *.safetensors, tokenizer.json).")
    var model: String

    /// The model and, when the directory has one, its tokenizer.
    func load(needTokenizer: Bool) throws -> (GLMForCausalLM, GLMTokenizer?) {
        let (_, m) = try ModelDirectory.load(model)
        return (m, try tokenizer(required: needTokenizer))
    }

    func tokenizer(required: Bool) throws -> GLMTokenizer? {
        let fm = FileManager.default
        let has = fm.fileExists(atPath: "\(model)/tokenizer.json") || fm.fileExists(atPath: "\(model)/tokenizer.model")
        if !has {
            if required { throw GLMError("\(model): no tokenizer.json or tokenizer.model (needed for text input)") }
            return nil
        }
        return try GLMTokenizer.load(directory: model)
    }
}

/// `--adapter DIR` for the commands that run a model (`score`, `generate`).
struct AdapterOptions: ParsableArguments {
    @Option(help: "A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) to apply to the model.")
    var adapter: String?

    /// Merges the adapter into `model`'s weights (W + scale·B·A in f32): the same outputs as running the adapter
    /// beside the base, at the base model's speed. Errors name the adapter file and key.
    func apply(to model: GLMForCausalLM) throws {
        guard let adapter else { return }
        try PEFTAdapter.load(directory: adapter, model: model.config).merge(into: model)
    }
}
