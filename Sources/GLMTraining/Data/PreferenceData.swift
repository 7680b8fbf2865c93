// Preference data: `{"prompt" | "messages", "chosen", "rejected"}` lines rendered with the model's chat template
// into a chosen and a rejected token sequence sharing the prompt, with the loss on the response tokens only.
import Foundation
import GLMCore
import GLMIO

/// One preference pair, tokenized: both sequences start with the same prompt tokens; each loss mask covers that
/// sequence's response (the assistant tokens after the prompt and the token that ends each assistant turn).
public struct PreferenceExample: Sendable, Equatable {
    public var chosen: TokenizedExample
    public var rejected: TokenizedExample
    /// Tokens of the rendered prompt (the shared prefix).
    public var promptTokens: Int
    /// "FILE:LINE".
    public var source: String
}

/// A preference file read for training: the pairs kept, and a warning for each line skipped.
public struct PreferenceDataset {
    public var examples: [PreferenceExample]
    public var warnings: [String]
    /// Lines skipped (chosen identical to rejected, or no response token within `seq_len`).
    public var skipped: Int
}

public enum PreferenceData {
    /// Reads `path`. A line missing `chosen` or `rejected`, with a value of the wrong type, an empty response, a
    /// response that is not assistant (tool-call) and observation messages ending with an assistant one, or a prompt
    /// that does not end with a user or observation message is an error naming `FILE:LINE`. A pair whose chosen and
    /// rejected responses are the same, or whose prompt leaves no response token of either sequence within `seqLen`
    /// tokens, is skipped with a warning naming `FILE:LINE`; longer responses are cut at `seqLen` by the batches.
    public static func read(path: String, tokenizer: GLMTokenizer, template: ChatTemplate, vocabularySize: Int,
                            seqLen: Int, endFinalTurn: Bool = true) throws -> PreferenceDataset {
        var examples: [PreferenceExample] = [], warnings: [String] = [], skipped = 0
        for line in try ChatData.chatLines(path) {
            let (prompt, chosen, rejected) = try conversation(line, template: template)
            if chosen.messages == rejected.messages {
                warnings.append("\(line.location): chosen and rejected are the same response; the pair is skipped")
                skipped += 1; continue
            }
            let promptIDs: [Int32]
            do { promptIDs = try template.tokenize(prompt, tokenizer: tokenizer).ids } catch let e as GLMError {
                throw GLMError("\(line.location): \(e.message)")
            }
            func sequence(_ response: ChatConversation, _ key: String) throws -> TokenizedExample {
                let c = ChatConversation(messages: prompt.messages + response.messages, tools: prompt.tools)
                try ChatData.checkConversation(c, line: line, template: template)
                let t: ChatTemplate.Tokenized
                do { t = try template.tokenize(c, tokenizer: tokenizer, endFinalAssistantTurn: endFinalTurn) } catch let e as GLMError {
                    throw GLMError("\(line.location): \(key): \(e.message)")
                }
                guard t.ids.count > promptIDs.count, Array(t.ids.prefix(promptIDs.count)) == promptIDs else {
                    throw GLMError("\(line.location): \(key): the \(template.name) chat template does not render the prompt as a prefix of prompt + response")
                }
                let mask = t.assistantMask.indices.map { $0 >= promptIDs.count && t.assistantMask[$0] }
                guard mask.contains(true) else {
                    throw GLMError("\(line.location): \(key): the \(template.name) chat template renders no assistant tokens for this response")
                }
                if let bad = t.ids.first(where: { $0 < 0 || Int($0) >= vocabularySize }) {
                    throw GLMError("\(line.location): token id \(bad) outside the model's vocabulary of \(vocabularySize)")
                }
                return TokenizedExample(ids: t.ids, lossMask: mask, source: line.location)
            }
            let c = try sequence(chosen, "chosen"), r = try sequence(rejected, "rejected")
            // Row t predicts token t+1, and rows are cut at seqLen: a response token must sit at an index < seqLen.
            if let (key, _) = [("chosen", c), ("rejected", r)].first(where: { !$0.1.lossMask!.prefix(seqLen).dropFirst().contains(true) }) {
                warnings.append("\(line.location): the prompt (\(promptIDs.count) tokens) leaves no \(key) response token within training.seq_len \(seqLen); the pair is skipped")
                skipped += 1; continue
            }
            examples.append(PreferenceExample(chosen: c, rejected: r, promptTokens: promptIDs.count, source: line.location))
        }
        return PreferenceDataset(examples: examples, warnings: warnings, skipped: skipped)
    }

    /// The prompt and the two responses of a line (errors name `FILE:LINE` and the key).
    static func conversation(_ line: ChatDataLine, template: ChatTemplate? = nil) throws -> (prompt: ChatConversation, chosen: ChatConversation, rejected: ChatConversation) {
        let object = line.line.object, at = line.location
        if object["completion"] != nil { throw GLMError("\(at): a preference line has \"chosen\" and \"rejected\", not \"completion\"") }
        let prompt: ChatConversation
        switch (object["prompt"], object["messages"]) {
        case (.some, .some): throw GLMError("\(at): give \"prompt\" or \"messages\", not both")
        case (nil, nil): throw GLMError("\(at): expected \"prompt\" (a string) or \"messages\" (keys found: \(object.keys.sorted().joined(separator: ", ")))")
        case (.some(let p), nil):
            guard let text = p as? String else { throw GLMError("\(at): \"prompt\" must be a string") }
            guard !text.allSatisfy(\.isWhitespace) else { throw GLMError("\(at): \"prompt\" is empty") }
            prompt = try ChatData.conversation(line, requireCompletion: false)
        case (nil, .some):
            prompt = try ChatData.conversation(line, requireCompletion: false)
            guard let last = prompt.messages.last else { throw GLMError("\(at): \"messages\" is empty") }
            guard last.role == .user || last.role == .observation else {
                throw GLMError("\(at): \"messages\" must end with a user or observation message (the responses are in \"chosen\" and \"rejected\"), not \(last.role.rawValue)")
            }
        }
        try ChatData.rejectForeignToolCalls(line, template: template)
        let json: JSONValue
        do { json = try JSONValue.parse(line.text) } catch let e as GLMError { throw GLMError("\(at): \(e.message)") }
        func response(_ key: String) throws -> ChatConversation {
            guard let v = json[key], v != .null else { throw GLMError("\(at): missing \"\(key)\" (a string, or a list of assistant and observation messages)") }
            switch v {
            case .string(let s):
                guard !s.allSatisfy(\.isWhitespace) else { throw GLMError("\(at): \"\(key)\" is an empty response") }
                return ChatConversation(messages: [ChatMessage(role: .assistant, content: s)])
            case .array(let list):
                guard !list.isEmpty else { throw GLMError("\(at): \"\(key)\" is an empty list") }
                let c: ChatConversation
                do { c = try ChatConversation(json: .object([(key: "messages", value: v)])) } catch let e as GLMError {
                    throw GLMError("\(at): \(e.message.replacingOccurrences(of: "messages[", with: "\(key)["))")
                }
                for (i, m) in c.messages.enumerated() where m.role != .assistant && m.role != .observation {
                    throw GLMError("\(at): \(key)[\(i)].role is \(m.role.rawValue); a response holds assistant and observation messages")
                }
                guard c.messages.last!.role == .assistant else { throw GLMError("\(at): \"\(key)\" must end with an assistant message") }
                guard c.messages.contains(where: { $0.role == .assistant && !($0.content + $0.metadata).allSatisfy(\.isWhitespace) }) else {
                    throw GLMError("\(at): \"\(key)\" is an empty response")
                }
                return c
            default:
                throw GLMError("\(at): \"\(key)\" must be a string or a list of messages, got \(kindName(v))")
            }
        }
        return (prompt, try response("chosen"), try response("rejected"))
    }

    static func kindName(_ v: JSONValue) -> String {
        switch v {
        case .string: return "a string"
        case .array: return "a list"
        case .object: return "an object"
        case .bool: return "a boolean"
        case .null: return "null"
        default: return "a number"
        }
    }
}
