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
    func load(needTokenizer: Bool) throws -> (any CausalLanguageModel, GLMTokenizer?) {
        let m = try ModelDirectory.loadModel(model)
        let t = try tokenizer(required: needTokenizer)
        try t?.checkFits(vocabSize: m.configuration.vocabSize, owner: model)
        return (m, t)
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
    func apply(to model: any CausalLanguageModel) throws {
        guard let adapter else { return }
        try PEFTAdapter.load(directory: adapter, model: model.configuration).merge(into: model)
    }
}

/// `--chat-template NAME` for the commands that render chat (`tokenize`, `generate`): overrides the template the
/// model directory names (tokenizer_config.json `chat_template`, chat_template.jinja, else config.json model_type).
struct ChatTemplateOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The chat template: auto (the model directory's, the default), glm-4-9b-chat, glm-4-9b-chat-hf, glm-4-0414, glm-z1-0414 or glm-edge.",
                               valueName: "name"))
    var chatTemplate = "auto"

    /// The named template (nil for auto); a one-line error for an unknown name. Commands call it first.
    func override() throws -> ChatTemplate? {
        do { return try ChatTemplate.named(chatTemplate) } catch let e as GLMError { throw GLMError("--chat-template: \(e.message)") }
    }

    /// The template for the model in `directory`.
    func template(directory: String) throws -> ChatTemplate {
        try ChatTemplate.resolve(override: try override(), directory: directory, overrideHint: "--chat-template")
    }
}
