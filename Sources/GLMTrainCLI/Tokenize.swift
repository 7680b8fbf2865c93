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
    @Flag(help: "Add the assistant prompt after {\"messages\"} lines (which are always rendered with the model's chat template, with their \"tools\").")
    var chat = false
    @OptionGroup var templateOptions: ChatTemplateOptions

    func run() throws {
        _ = try templateOptions.override()
        let tokenizer = try GLMTokenizer.load(directory: model)
        // ids the model cannot embed are refused here as score and generate refuse them
        if FileManager.default.fileExists(atPath: "\(model)/config.json") {
            try tokenizer.checkFits(vocabSize: try ModelDirectory.loadConfiguration(model).vocabSize, owner: model)
        }
        var out: [String] = []
        var template: ChatTemplate?
        for chatLine in try ChatData.chatLines(input) {
            let line = chatLine.line
            if line.object["messages"] != nil {
                let conversation = try ChatData.conversation(chatLine)
                if template == nil { template = try templateOptions.template(directory: model) }
                try ChatData.rejectForeignToolCalls(chatLine, template: template)
                let t: ChatTemplate.Tokenized
                do { t = try template!.tokenize(conversation, tokenizer: tokenizer, addGenerationPrompt: chat) }
                catch let e as GLMError { throw GLMError("\(line.location): \(e.message)") }
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
