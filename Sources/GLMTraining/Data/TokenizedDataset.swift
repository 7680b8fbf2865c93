// JSONL training data turned into token sequences: pretraining text or tokens, and SFT conversations with the
// mask of the tokens that carry a loss.
import Foundation
import GLMCore
import GLMIO

/// One tokenized example. `lossMask[i]` says whether token i is a training target (predicted from the tokens
/// before it); nil means every token is.
public struct TokenizedExample: Sendable, Equatable {
    public var ids: [Int32]
    public var lossMask: [Bool]?
    /// "FILE:LINE" of the line it came from.
    public var source: String

    public init(ids: [Int32], lossMask: [Bool]? = nil, source: String) {
        self.ids = ids; self.lossMask = lossMask; self.source = source
    }
}

public enum TokenizedDataset {
    /// Pretraining lines: `{"text": ...}` (encoded, then the end-of-text token appended) or `{"tokens": [...]}` (as is).
    public static func pretraining(path: String, tokenizer: GLMTokenizer?, endOfText: Int32?, vocabularySize: Int) throws -> [TokenizedExample] {
        try JSONLines.read(path).map { line in
            if let tokens = try line.intArray("tokens") {
                try check(tokens, vocabularySize, line)
                return TokenizedExample(ids: tokens, source: line.location)
            }
            guard let text = try line.string("text") else {
                throw GLMError("\(line.location): expected a \"text\" string or a \"tokens\" array (keys found: \(line.object.keys.sorted().joined(separator: ", ")))")
            }
            guard let tokenizer else { throw GLMError("\(line.location): \"text\" needs a tokenizer.json in the model directory") }
            var ids = tokenizer.encode(text)
            if let endOfText { ids.append(endOfText) }
            try check(ids, vocabularySize, line)
            return TokenizedExample(ids: ids, source: line.location)
        }
    }

    /// SFT lines: `{"messages": [...], "tools": [...]}` or `{"prompt": ..., "completion": ...}`, rendered with the
    /// model's chat template (tool definitions, tool calls with the function name in `metadata`, observations);
    /// the loss covers exactly the template's assistant mask: each assistant turn (a tool call's function name and
    /// arguments included) and the token that ends it. Errors name FILE:LINE.
    public static func sft(path: String, tokenizer: GLMTokenizer, template: ChatTemplate = .glm4, vocabularySize: Int,
                           endFinalTurn: Bool = true) throws -> [TokenizedExample] {
        try chatLines(path).map { line in
            let c = try conversation(line)
            guard c.messages.contains(where: { $0.role == .assistant }) else {
                throw GLMError("\(line.location): the conversation has no assistant message to train on")
            }
            try checkConversation(c, line: line, template: template)
            let t: ChatTemplate.Tokenized
            do { t = try template.tokenize(c, tokenizer: tokenizer, endFinalAssistantTurn: endFinalTurn) } catch let e as GLMError {
                throw GLMError("\(line.location): \(e.message)")
            }
            guard t.assistantMask.contains(true) else {
                throw GLMError("\(line.location): the \(template.name) chat template renders no assistant tokens for this conversation")
            }
            try check(t.ids, vocabularySize, line.line)
            return TokenizedExample(ids: t.ids, lossMask: t.assistantMask, source: line.location)
        }
    }

    static func check(_ ids: [Int32], _ vocab: Int, _ line: JSONLine) throws {
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw GLMError("\(line.location): token id \(bad) outside the model's vocabulary of \(vocab)")
        }
        if ids.count < 2 { throw GLMError("\(line.location): fewer than 2 tokens, nothing to predict") }
    }
}
