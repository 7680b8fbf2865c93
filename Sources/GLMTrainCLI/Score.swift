// `glm-train score`: per-token log-probabilities of sequences, logprobs[i] = log p(tokens[i+1] | tokens[0...i]).
import ArgumentParser
import Foundation
import GLMCore
import GLMIO
import GLMModel

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-token log-probabilities of {\"tokens\": [...]} or {\"text\": ...} lines.")

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapterOptions: AdapterOptions
    @Option(help: "Input JSONL: {\"tokens\": [int, ...]} or {\"text\": \"...\"} per line.")
    var input: String
    @Option(help: "Output JSONL (default: standard output); written atomically.")
    var output: String?

    func run() throws {
        if let output { try Score.checkOutput(output, input: input, reads: [("model", modelOptions.model), ("adapter", adapterOptions.adapter)]) }
        let lines = try JSONLines.read(input)
        let needsText = lines.contains { $0.object["text"] != nil }
        let (model, tokenizer) = try modelOptions.load(needTokenizer: needsText)
        try adapterOptions.apply(to: model)
        var sequences: [[Int32]] = []
        for line in lines {
            if line.object["tokens"] != nil && line.object["text"] != nil {
                throw GLMError("\(line.location): both \"tokens\" and \"text\"; expected one of them")
            }
            if let tokens = try line.intArray("tokens") {
                try model.checkTokenIds(tokens, source: line.location)
                sequences.append(tokens)
            } else if let text = try line.string("text") {
                sequences.append(tokenizer!.encode(text, addSpecialTokens: true))
            } else {
                throw GLMError("\(line.location): expected a \"tokens\" array or a \"text\" string")
            }
        }
        let maxPositions = model.configuration.maxPositionEmbeddings
        for (line, tokens) in zip(lines, sequences) where tokens.count > maxPositions {
            throw GLMError("\(line.location): \(tokens.count) tokens is more than the model's max_position_embeddings \(maxPositions)")
        }
        let scores = model.tokenLogProbs(ids: sequences)
        for (line, lp) in zip(lines, scores) {
            if let bad = lp.firstIndex(where: { !$0.isFinite }) {
                throw GLMError("\(line.location): log-probability \(bad) is \(lp[bad]); the model (or adapter) weights hold NaN or Inf values")
            }
        }
        try JSONLines.write(try zip(sequences, scores).map { tokens, lp in
            try JSONLines.encode(["tokens": tokens.map(Int.init), "logprobs": lp.map(Double.init)])
        }, to: output)
    }

    /// Refuses an --output that is the input file or a file inside a directory the command reads (it would be
    /// replaced: a score line over model.safetensors destroyed the model).
    static func checkOutput(_ output: String, input: String, reads: [(String, String?)]) throws {
        if Export.samePath(output, input) { throw GLMError("--output \(output) is the --input file; write the scores somewhere else") }
        func canonical(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        func standardized(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.path }
        // The output's directory resolved and its own name kept (a snapshot's model.safetensors is a link into
        // blobs/: resolving it would hide that it is the model's file), and the output resolved whole.
        let name = (output as NSString).lastPathComponent
        let outs = [(canonical((output as NSString).deletingLastPathComponent.isEmpty ? "." : (output as NSString).deletingLastPathComponent) as NSString).appendingPathComponent(name),
                    standardized(output), canonical(output)]
        for case let (what, directory?) in reads {
            for dir in Set([canonical(directory), standardized(directory)]) {
                guard outs.contains(where: { $0 == dir || $0.hasPrefix(dir.hasSuffix("/") ? dir : dir + "/") }) else { continue }
                throw GLMError("--output \(output) is inside the \(what) directory \(directory) the command reads; write the scores somewhere else")
            }
        }
    }
}
