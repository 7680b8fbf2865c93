// `glm-train generate`: text generation with a KV cache (greedy at temperature 0, otherwise sampled).
import ArgumentParser
import Foundation
import GLMCore
import GLMIO
import GLMModel

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate continuations; several --prompt options run as one batch.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapterOptions: AdapterOptions
    @Option(parsing: .unconditionalSingleValue, help: "Prompt text (repeat for a batch).")
    var prompt: [String] = []
    @Option(parsing: .unconditionalSingleValue, help: "Prompt as comma-separated token ids, e.g. 1,2,3 (repeat for a batch).")
    var promptTokens: [String] = []
    @Flag(help: "Wrap each prompt as a user message in the model's chat template, with the assistant prompt.")
    var chat = false
    @OptionGroup var templateOptions: ChatTemplateOptions
    @Option(parsing: .unconditional, help: "Maximum number of new tokens.")
    var maxNewTokens = 128
    @Option(parsing: .unconditional, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0
    @Option(parsing: .unconditional, help: "Nucleus sampling: keep the most likely tokens up to this total probability.")
    var topP: Float = 1
    @Option(parsing: .unconditional, help: "Keep only the K most likely tokens (0: all).")
    var topK = 0
    @Option(parsing: .unconditional, help: "Random seed; the same seed gives the same text.")
    var seed: UInt64 = 0
    @Flag(help: "Print one JSON object per prompt.")
    var json = false
    @Option(help: ArgumentHelp("Self-speculative decoding: 'mtp' drafts one token per step with the model's MTP layer and checks it with the main model (greedy, one prompt; the output equals plain greedy decoding). Off by default.", valueName: "mtp"))
    var speculative: String?

    func run() throws {
        _ = try templateOptions.override()
        let sampling = SamplingParameters(temperature: temperature, topP: topP, topK: topK)
        try sampling.validate()
        guard prompt.isEmpty != promptTokens.isEmpty else {
            throw GLMError("give either --prompt or --prompt-tokens (one or more times)")
        }
        guard maxNewTokens >= 0 else { throw GLMError("--max-new-tokens must be ≥ 0, got \(maxNewTokens)") }
        if let speculative {
            guard speculative == "mtp" else { throw GLMError("--speculative: '\(speculative)' is not supported; expected mtp") }
            guard temperature == 0 else { throw GLMError("--speculative mtp is greedy only; use --temperature 0 (got \(temperature))") }
            guard prompt.count + promptTokens.count == 1 else {
                throw GLMError("--speculative mtp takes one prompt (batch 1); got \(prompt.count + promptTokens.count)")
            }
        }
        let (model, tokenizer) = try modelOptions.load(needTokenizer: !prompt.isEmpty)
        try adapterOptions.apply(to: model)
        var prompts: [[Int32]] = []
        for text in promptTokens {
            let ids = try text.split(separator: ",", omittingEmptySubsequences: false).map { part -> Int32 in
                guard let v = Int32(part.trimmingCharacters(in: .whitespaces)) else {
                    throw GLMError("--prompt-tokens: '\(part)' is not an integer token id")
                }
                return v
            }
            guard !ids.isEmpty else { throw GLMError("--prompt-tokens: empty prompt") }
            try model.checkTokenIds(ids, source: "--prompt-tokens")
            prompts.append(ids)
        }
        if chat && prompt.isEmpty {
            FileHandle.standardError.write(Data("warning: --chat renders --prompt text; --prompt-tokens are used as given\n".utf8))
        }
        let template = chat && !prompt.isEmpty ? try templateOptions.template(directory: modelOptions.model) : nil
        for text in prompt {
            if let template {
                prompts.append(try template.tokenize([ChatMessage(role: .user, content: text)], tokenizer: tokenizer!,
                                                     addGenerationPrompt: true).ids)
            } else {
                prompts.append(tokenizer!.encode(text, addSpecialTokens: true))
            }
            guard !prompts.last!.isEmpty else {
                throw GLMError("--prompt \(JSONValue.quoted(text)): tokenizes to no tokens (the tokenizer adds none of its own); nothing to continue")
            }
        }
        let maxPositions = model.configuration.maxPositionEmbeddings
        for (i, p) in prompts.enumerated() where p.count > maxPositions {
            throw GLMError("prompt \(i + 1): \(p.count) tokens is more than the model's max_position_embeddings \(maxPositions)")
        }
        let longest = prompts.map(\.count).max() ?? 0
        var maxNewTokens = self.maxNewTokens
        if maxNewTokens > maxPositions - longest {
            maxNewTokens = maxPositions - longest
            FileHandle.standardError.write(Data("warning: --max-new-tokens \(self.maxNewTokens) with a \(longest)-token prompt passes max_position_embeddings \(maxPositions); generating at most \(maxNewTokens) tokens\n".utf8))
        }
        // The KV cache holds every position of every row: refuse one that cannot fit in memory.
        let cacheBytes = try Checked.multiply(try Checked.multiply(prompts.count, longest + maxNewTokens, "KV cache"),
                                              model.configuration.cacheBytesPerPosition, "KV cache")
        let memory = MemoryBudget.available
        guard cacheBytes <= memory / 2 else {
            throw GLMError("the KV cache for \(prompts.count) prompts of up to \(longest + maxNewTokens) positions needs \(cacheBytes >> 20) MiB, more than half of the \(memory >> 20) MiB this process may use; lower --max-new-tokens or the batch")
        }
        let stops = try GenerationStops.forModel(directory: modelOptions.model, config: model.configuration)
        var stats: SpeculativeStats?
        let results: [GeneratedSequence]
        if speculative != nil {
            guard let m = model as? any MultiTokenPredictionModel, m.hasMTPLayer else {
                throw GLMError("--speculative mtp: \(modelOptions.model) has no MTP layer (a glm4_moe checkpoint with model.layers.{num_hidden_layers}.eh_proj.weight, ...)")
            }
            let (r, s) = SpeculativeGenerator(model: m).generate(prompt: prompts[0], maxNewTokens: maxNewTokens, stopTokens: stops)
            (results, stats) = ([r], s)
            FileHandle.standardError.write(Data("speculative: \(s.accepted)/\(s.drafted) MTP drafts accepted (\(String(format: "%.1f", 100 * s.acceptanceRate))%), \(s.mainPasses) main-model passes after the prompt\n".utf8))
        } else {
            results = TextGenerator(model: model).generate(prompts: prompts, maxNewTokens: maxNewTokens, sampling: sampling, seed: seed, stopTokens: stops)
        }
        for (i, r) in results.enumerated() {
            if let bad = r.logProbs.first(where: { !$0.isFinite }) {
                throw GLMError("prompt \(i + 1): a generated token's log-probability is \(bad); the model (or adapter) weights hold NaN or Inf values")
            }
        }
        for (p, r) in zip(prompts, results) {
            let text = tokenizer?.decode(r.tokens, skipSpecialTokens: true)
            if json {
                var obj: [String: Any] = ["prompt_tokens": p.map(Int.init), "tokens": r.tokens.map(Int.init),
                                          "logprobs": r.logProbs.map(Double.init), "finish_reason": r.finishReason]
                if let text { obj["text"] = text }
                if let stats {
                    obj["speculative"] = ["drafted": stats.drafted, "accepted": stats.accepted, "acceptance_rate": stats.acceptanceRate]
                }
                print(try JSONLines.encode(obj))
            } else {
                print(text ?? r.tokens.map(String.init).joined(separator: ","))
            }
        }
    }
}
