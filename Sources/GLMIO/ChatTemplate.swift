// GLM-4's chat format (glm-4-9b-chat's jinja template, without tools): rendering to text, and tokenizing turn by
// turn with a mask of the tokens an SFT loss should train on (assistant replies and the token ending each).
import GLMCore

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    public enum Role: String, Sendable, Codable, CaseIterable { case system, user, assistant, observation }
    public var role: Role
    public var content: String
    /// Text between the role token and the newline; normally empty (GLM-4 puts a called tool's name here).
    public var metadata: String

    public init(role: Role, content: String, metadata: String = "") {
        self.role = role; self.content = content; self.metadata = metadata
    }

    enum CodingKeys: String, CodingKey { case role, content, metadata }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        role = try c.decode(Role.self, forKey: .role)
        content = try c.decode(String.self, forKey: .content)
        metadata = try c.decodeIfPresent(String.self, forKey: .metadata) ?? ""
    }
}

/// GLM-4's chat template.
///
/// Rendering matches transformers' `apply_chat_template` with glm-4-9b-chat's template for conversations without
/// tools: `[gMASK]<sop>`, then for each message with non-empty content `<|role|>` + metadata + `\n` + content
/// (messages with empty content are left out, as the template does), then `<|assistant|>` (no newline) when a
/// generation prompt is asked for.
public struct ChatTemplate: Sendable {
    /// Text before the first message.
    public var prefix: String
    /// What `addGenerationPrompt` appends.
    public var generationPrompt: String
    /// The token that ends a conversation's final assistant turn when tokenizing for training.
    public var endOfTurn: String

    public init(prefix: String, generationPrompt: String, endOfTurn: String) {
        self.prefix = prefix; self.generationPrompt = generationPrompt; self.endOfTurn = endOfTurn
    }

    /// glm-4-9b-chat (also GLM-4 `-hf` checkpoints).
    public static let glm4 = ChatTemplate(prefix: "[gMASK]<sop>", generationPrompt: "<|assistant|>", endOfTurn: "<|endoftext|>")

    /// The role token of a role, e.g. `<|user|>`.
    public static func roleToken(_ role: ChatMessage.Role) -> String { "<|\(role.rawValue)|>" }

    /// The conversation as text, as the Python template renders it.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = false) -> String {
        var s = prefix
        for m in messages where !m.content.isEmpty {
            s += ChatTemplate.roleToken(m.role) + m.metadata + "\n" + m.content
        }
        if addGenerationPrompt { s += generationPrompt }
        return s
    }

    /// A tokenized conversation.
    public struct Tokenized: Sendable, Equatable {
        public var ids: [Int32]
        /// True for the tokens of assistant turns (metadata, newline and content) and for the token that ends each
        /// assistant turn: the next role token, or `endOfTurn` appended after a final assistant turn.
        public var assistantMask: [Bool]
    }

    /// Tokenizes the conversation segment by segment, so that the mask is exact. The ids equal
    /// `tokenizer.encode(render(messages, addGenerationPrompt:))`, plus `endOfTurn` at the end when the last
    /// rendered message is an assistant turn, no generation prompt follows and `endFinalAssistantTurn` is true.
    /// Throws when the tokenizer lacks a role token or `endOfTurn` as an added token.
    public func tokenize(_ messages: [ChatMessage], tokenizer: GLMTokenizer, addGenerationPrompt: Bool = false,
                         endFinalAssistantTurn: Bool = true) throws -> Tokenized {
        var ids: [Int32] = [], mask: [Bool] = []
        func append(_ text: String, _ assistant: Bool) {
            let t = tokenizer.encode(text)
            ids += t
            mask += [Bool](repeating: assistant, count: t.count)
        }
        func special(_ token: String) throws -> Int32 {
            guard let id = tokenizer.tokenID(token), tokenizer.addedTokens.contains(where: { $0.id == id }) else {
                throw GLMError("\(tokenizer.source): the tokenizer has no added token \(token), which GLM-4 chat needs")
            }
            return id
        }
        append(prefix, false)
        var previousWasAssistant = false
        for m in messages where !m.content.isEmpty {
            ids.append(try special(ChatTemplate.roleToken(m.role)))
            mask.append(previousWasAssistant)
            append(m.metadata + "\n" + m.content, m.role == .assistant)
            previousWasAssistant = m.role == .assistant
        }
        if addGenerationPrompt {
            let start = ids.count
            append(generationPrompt, false)
            if previousWasAssistant && ids.count > start { mask[start] = true }
        } else if previousWasAssistant && endFinalAssistantTurn {
            ids.append(try special(endOfTurn))
            mask.append(true)
        }
        return Tokenized(ids: ids, assistantMask: mask)
    }
}
