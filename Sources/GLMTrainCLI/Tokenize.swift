// `glm-train tokenize`: {"text": ...} or {"messages": [...]} lines → {"ids": [...]} lines.
import ArgumentParser
import Foundation
import GLMCore
import GLMIO

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn {\"text\"} or {\"messages\"} JSONL lines into {\"ids\": [...]} lines.")

    @Option(help: "A model directory with tokenizer.json (or tokenizer.model).")
    var model: String
    @Option(help: "Input JSONL.")
    var input: String
    @Flag(help: "Render {\"messages\"} lines with the GLM-4 chat template and add the assistant prompt.")
    var chat = false

    func run() throws {
        let tokenizer = try GLMTokenizer.load(directory: model)
        var out: [String] = []
        for line in try JSONLines.read(input) {
            if let raw = line.object["messages"] {
                guard let data = try? JSONSerialization.data(withJSONObject: raw),
                      let messages = try? JSONDecoder().decode([ChatMessage].self, from: data) else {
                    throw GLMError("\(line.location): \"messages\" must be a list of {\"role\", \"content\"} objects with roles system, user, assistant or observation")
                }
                let t = try ChatTemplate.glm4.tokenize(messages, tokenizer: tokenizer, addGenerationPrompt: chat)
                out.append(try JSONLines.encode(["ids": t.ids.map(Int.init)]))
            } else if let text = try line.string("text") {
                out.append(try JSONLines.encode(["ids": tokenizer.encode(text, addSpecialTokens: true).map(Int.init)]))
            } else {
                throw GLMError("\(line.location): expected a \"text\" string or a \"messages\" list")
            }
        }
        try JSONLines.write(out, to: nil)
    }
}
