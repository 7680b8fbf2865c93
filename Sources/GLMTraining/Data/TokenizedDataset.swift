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

    /// SFT lines: `{"messages": [...]}` or `{"prompt": ..., "completion": ...}`, rendered with the chat template;
    /// the loss covers the assistant turns and the token that ends each of them.
    public static func sft(path: String, tokenizer: GLMTokenizer, template: ChatTemplate = .glm4, vocabularySize: Int) throws -> [TokenizedExample] {
        try JSONLines.read(path).map { line in
            let messages = try conversation(line)
            guard messages.contains(where: { $0.role == .assistant }) else {
                throw GLMError("\(line.location): the conversation has no assistant message to train on")
            }
            let t: ChatTemplate.Tokenized
            do { t = try template.tokenize(messages, tokenizer: tokenizer) } catch let e as GLMError {
                throw GLMError("\(line.location): \(e.message)")
            }
            try check(t.ids, vocabularySize, line)
            return TokenizedExample(ids: t.ids, lossMask: t.assistantMask, source: line.location)
        }
    }

    /// The messages of an SFT or prompt line (`messages`, or `prompt` + optional `completion`).
    public static func conversation(_ line: JSONLine, requireCompletion: Bool = true) throws -> [ChatMessage] {
        if let raw = line.object["messages"] {
            guard let list = raw as? [[String: Any]] else { throw GLMError("\(line.location): \"messages\" must be a list of {\"role\", \"content\"} objects") }
            return try list.enumerated().map { i, m in
                guard let roleName = m["role"] as? String, let role = ChatMessage.Role(rawValue: roleName) else {
                    throw GLMError("\(line.location): messages[\(i)].role must be one of system, user, assistant, observation")
                }
                guard let content = m["content"] as? String else { throw GLMError("\(line.location): messages[\(i)].content must be a string") }
                return ChatMessage(role: role, content: content)
            }
        }
        guard let prompt = try line.string("prompt") else {
            throw GLMError("\(line.location): expected \"messages\" or \"prompt\" (keys found: \(line.object.keys.sorted().joined(separator: ", ")))")
        }
        var messages = [ChatMessage(role: .user, content: prompt)]
        if let completion = try line.string("completion") { messages.append(ChatMessage(role: .assistant, content: completion)) }
        else if requireCompletion { throw GLMError("\(line.location): a \"prompt\" line needs a \"completion\"") }
        return messages
    }

    static func check(_ ids: [Int32], _ vocab: Int, _ line: JSONLine) throws {
        if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw GLMError("\(line.location): token id \(bad) outside the model's vocabulary of \(vocab)")
        }
        if ids.count < 2 { throw GLMError("\(line.location): fewer than 2 tokens, nothing to predict") }
    }
}
