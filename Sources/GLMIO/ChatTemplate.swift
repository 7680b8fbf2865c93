// The chat formats of the GLM-4 family (glm-4-9b-chat, GLM-4-0414, GLM-Z1-0414, glm-edge), rendered to text as
// their Jinja templates do under transformers' apply_chat_template, with tool definitions, tool calls and tool
// results; and tokenized turn by turn with the mask of the tokens an SFT loss trains on.
import Foundation
import GLMCore
import GLMModel

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    public enum Role: String, Sendable, Codable, CaseIterable { case system, user, assistant, observation }
    public var role: Role
    public var content: String
    /// Text between the role token and the newline; normally empty. A tool call is an assistant message whose
    /// metadata is the function name and whose content is the arguments (GLM-4's convention).
    public var metadata: String
    /// Tool definitions (`{"type": "function", "function": {...}}`) carried by the message, as glm-4-9b-chat's
    /// data puts them on a system message; nil when the message has none.
    public var tools: [JSONValue]?
    /// GLM-4.5's `reasoning_content` of an assistant message (the text of its `<think>` block); nil when absent.
    public var reasoningContent: String?
    /// GLM-4.5's `tool_calls` of an assistant message (the OpenAI layout GLM-4.5's template reads); nil when absent.
    public var toolCalls: [ChatToolCall]?

    public init(role: Role, content: String, metadata: String = "", tools: [JSONValue]? = nil,
                reasoningContent: String? = nil, toolCalls: [ChatToolCall]? = nil) {
        self.role = role; self.content = content; self.metadata = metadata; self.tools = tools
        self.reasoningContent = reasoningContent; self.toolCalls = toolCalls
    }

    enum CodingKeys: String, CodingKey {
        case role, content, metadata, tools
        case reasoningContent = "reasoning_content", toolCalls = "tool_calls"
    }

    /// Decoding through `Decoder` sorts the keys of tool schemas (the order is not visible there); use
    /// `ChatConversation.parse` on the JSON text to keep them in file order.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .role)
        guard let role = Role(rawValue: name == "tool" ? "observation" : name) else {
            throw DecodingError.dataCorruptedError(forKey: .role, in: c, debugDescription: "unknown role \(name)")
        }
        self.role = role
        toolCalls = try c.decodeIfPresent([ChatToolCall].self, forKey: .toolCalls)
        content = try c.decodeIfPresent(String.self, forKey: .content) ?? ""
        metadata = try c.decodeIfPresent(String.self, forKey: .metadata) ?? ""
        tools = try c.decodeIfPresent([JSONValue].self, forKey: .tools)
        reasoningContent = try c.decodeIfPresent(String.self, forKey: .reasoningContent)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(role, forKey: .role)
        try c.encode(content, forKey: .content)
        if !metadata.isEmpty { try c.encode(metadata, forKey: .metadata) }
        try c.encodeIfPresent(tools, forKey: .tools)
        try c.encodeIfPresent(reasoningContent, forKey: .reasoningContent)
        try c.encodeIfPresent(toolCalls, forKey: .toolCalls)
    }
}

/// A conversation as a JSON line carries it: `{"messages": [...], "tools": [...]}` (tools optional).
public struct ChatConversation: Sendable, Equatable {
    public var messages: [ChatMessage]
    /// Conversation-level tool definitions (what `apply_chat_template(tools=...)` takes).
    public var tools: [JSONValue]?

    public init(messages: [ChatMessage], tools: [JSONValue]? = nil) { self.messages = messages; self.tools = tools }

    /// Parses a JSON object with `messages` (and optionally `tools`), keeping the keys of tool schemas in order.
    /// Errors name what is wrong (`messages[2].role must be ...`).
    public static func parse(_ text: String) throws -> ChatConversation {
        try ChatConversation(json: JSONValue.parse(text))
    }

    public init(json: JSONValue) throws {
        guard case .object = json, case .array(let list)? = json["messages"] else {
            throw GLMError("expected an object with a \"messages\" list")
        }
        messages = try list.enumerated().map { i, m in
            guard case .object = m else { throw GLMError("messages[\(i)] must be an object") }
            // "tool" is GLM-4.5's (and OpenAI's) name for a tool result, GLM-4's "observation".
            guard let name = m["role"]?.stringValue, let role = ChatMessage.Role(rawValue: name == "tool" ? "observation" : name) else {
                throw GLMError("messages[\(i)].role must be one of system, user, assistant, observation (or tool)")
            }
            var toolCalls: [ChatToolCall]?
            if let t = m["tool_calls"], t != .null {
                guard role == .assistant else { throw GLMError("messages[\(i)].tool_calls: only an assistant message makes tool calls") }
                toolCalls = try ChatToolCall.parse(t, what: "messages[\(i)].tool_calls")
            }
            var reasoning: String?
            if let r = m["reasoning_content"], r != .null {
                guard let s = r.stringValue else { throw GLMError("messages[\(i)].reasoning_content must be a string") }
                reasoning = s
            }
            // An assistant message with tool calls may leave its content out (or null), as OpenAI-style data does.
            let content: String
            if let s = m["content"]?.stringValue { content = s }
            else if toolCalls != nil && (m["content"] == nil || m["content"] == .null) { content = "" }
            else { throw GLMError("messages[\(i)].content must be a string") }
            var metadata = ""
            if let meta = m["metadata"], meta != .null {
                guard let s = meta.stringValue else { throw GLMError("messages[\(i)].metadata must be a string") }
                metadata = s
            }
            var tools: [JSONValue]?
            if let t = m["tools"], t != .null {
                guard case .array(let list) = t else { throw GLMError("messages[\(i)].tools must be a list") }
                tools = list
            }
            return ChatMessage(role: role, content: content, metadata: metadata, tools: tools, reasoningContent: reasoning, toolCalls: toolCalls)
        }
        if let t = json["tools"], t != .null {
            guard case .array(let list) = t else { throw GLMError("\"tools\" must be a list") }
            tools = list
        }
    }
}

/// A GLM chat template.
///
/// Rendering equals transformers' `apply_chat_template` with the model's Jinja template (the fixtures of
/// Scripts/make_tokenizer_fixtures.py check it byte for byte):
/// - `glm4Chat` (glm-4-9b-chat, glm-4-9b-chat-hf, -1m): `[gMASK]<sop>`, then per message its tool block if it
///   carries `tools`, and `<|role|>` + metadata + `\n` + content when the content is not empty; `<|assistant|>`.
/// - `glm4_0414` (GLM-4-9B-0414, GLM-4-32B-0414): `[gMASK]<sop>`, the tool block, all system messages first, then
///   the others (`<|assistant|>meta \ncontent` for tool calls); `<|assistant|>`.
/// - `glmZ1_0414` (GLM-Z1-9B-0414, GLM-Z1-32B-0414): as 0414 with a longer tool preamble, contents cut to what
///   follows the last `</think>` and stripped, `<|assistant|>meta\ncontent`; `<|assistant|>\n<think>`.
/// - `glmEdge` (glm-edge-1.5b-chat, glm-edge-4b-chat): no prefix, `<|role|>\ncontent` for system, user and
///   assistant messages (observations and metadata are not rendered); `<|assistant|>\n`.
/// - `glm45` (GLM-4.5, GLM-4.5-Air): `[gMASK]<sop>`, the `# Tools` system block, messages in order, assistant turns
///   as `\n<think>reasoning</think>` (reasoning only after the last user turn) + `\ncontent` + `<tool_call>`s with
///   `<arg_key>`/`<arg_value>` pairs, tool results in `<|observation|>` blocks; `<|assistant|>`. With `thinking`
///   false (`enable_thinking=False`) user turns end in `/nothink` and the prompt is `<|assistant|>\n<think></think>`
///   (ChatTemplateGLM45.swift).
///
/// Tool definitions may be given per conversation (`tools:`) or on messages; each format uses them where its
/// template reads them: glm4Chat puts conversation tools on a leading empty system message (the layout of GLM-4's
/// fine-tuning data), the 0414 formats take message tools as conversation tools when none are given.
public struct ChatTemplate: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        case glm4Chat = "glm-4-9b-chat"
        case glm4_0414 = "glm-4-0414"
        case glmZ1_0414 = "glm-z1-0414"
        case glmEdge = "glm-edge"
        case glm45 = "glm-4.5"
    }

    public var format: Format
    /// Text before the first message.
    public var prefix: String
    /// What `addGenerationPrompt` appends.
    public var generationPrompt: String
    /// The token that ends a conversation's final assistant turn when tokenizing for training.
    public var endOfTurn: String
    /// The assistant's name in glm-4-9b-chat's tool preamble: "ChatGLM" (glm-4-9b-chat) or "GLM-4" (-hf checkpoints).
    public var assistantName: String
    /// GLM-4.5's `enable_thinking` (only glm45 reads it): false appends `/nothink` to user turns and an empty
    /// `<think></think>` to the generation prompt.
    public var thinking: Bool

    /// A glm-4-9b-chat style template with other prefix, prompt or end token.
    public init(prefix: String, generationPrompt: String, endOfTurn: String) {
        self.init(format: .glm4Chat)
        self.prefix = prefix; self.generationPrompt = generationPrompt; self.endOfTurn = endOfTurn
    }

    public init(format: Format, assistantName: String = "ChatGLM", thinking: Bool = true) {
        self.format = format
        self.assistantName = assistantName
        self.thinking = thinking
        endOfTurn = "<|endoftext|>"
        switch format {
        case .glm4Chat, .glm4_0414: prefix = "[gMASK]<sop>"; generationPrompt = "<|assistant|>"
        case .glm45: prefix = "[gMASK]<sop>"; generationPrompt = thinking ? "<|assistant|>" : "<|assistant|>\n<think></think>"
        case .glmZ1_0414: prefix = "[gMASK]<sop>"; generationPrompt = "<|assistant|>\n<think>"
        case .glmEdge: prefix = ""; generationPrompt = "<|assistant|>\n"
        }
    }

    /// glm-4-9b-chat.
    public static let glm4 = ChatTemplate(format: .glm4Chat)
    /// glm-4-9b-chat-hf, glm-4-9b-chat-1m-hf (the tool preamble says "GLM-4").
    public static let glm4HF = ChatTemplate(format: .glm4Chat, assistantName: "GLM-4")
    /// GLM-4-9B-0414, GLM-4-32B-0414.
    public static let glm4_0414 = ChatTemplate(format: .glm4_0414)
    /// GLM-Z1-9B-0414, GLM-Z1-32B-0414.
    public static let glmZ1_0414 = ChatTemplate(format: .glmZ1_0414)
    /// glm-edge-1.5b-chat, glm-edge-4b-chat.
    public static let glmEdge = ChatTemplate(format: .glmEdge)
    /// GLM-4.5, GLM-4.5-Air (thinking on: `enable_thinking` unset or true).
    public static let glm45 = ChatTemplate(format: .glm45)
    /// GLM-4.5 with `enable_thinking=False`.
    public static let glm45NoThinking = ChatTemplate(format: .glm45, thinking: false)

    /// The role token of a role, e.g. `<|user|>`.
    public static func roleToken(_ role: ChatMessage.Role) -> String { "<|\(role.rawValue)|>" }

    /// The conversation as text, as the Jinja template renders it. Throws for tool definitions the template cannot
    /// render (a function tool without "function" for glm-4-9b-chat, a tool that is not an object for 0414,
    /// any tools for glm-edge).
    public func render(_ messages: [ChatMessage], tools: [JSONValue]? = nil, addGenerationPrompt: Bool = false) throws -> String {
        var s = ""
        for p in try pieces(messages, tools: tools) { s += p.text }
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
    /// `tokenizer.encode(render(messages, tools:, addGenerationPrompt:))`, plus `endOfTurn` at the end when the
    /// last rendered message is an assistant turn, no generation prompt follows and `endFinalAssistantTurn` is true.
    /// Throws when the tokenizer lacks a role token or `endOfTurn` as an added token.
    public func tokenize(_ messages: [ChatMessage], tools: [JSONValue]? = nil, tokenizer: GLMTokenizer,
                         addGenerationPrompt: Bool = false, endFinalAssistantTurn: Bool = true) throws -> Tokenized {
        var ids: [Int32] = [], mask: [Bool] = []
        func append(_ text: String, _ assistant: Bool) {
            let t = tokenizer.encode(text)
            ids += t
            mask += [Bool](repeating: assistant, count: t.count)
        }
        func special(_ token: String) throws -> Int32 {
            guard let id = tokenizer.tokenID(token), tokenizer.addedTokens.contains(where: { $0.id == id }) else {
                throw GLMError("\(tokenizer.source): the tokenizer has no added token \(token), which GLM chat needs")
            }
            return id
        }
        var previousWasAssistant = false
        for p in try pieces(messages, tools: tools) {
            switch p.kind {
            case .roleToken:
                ids.append(try special(p.text))
                mask.append(previousWasAssistant)
                previousWasAssistant = false
            case .text(let assistant):
                append(p.text, assistant)
                previousWasAssistant = assistant
            }
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

    /// A conversation from a JSON line (`ChatConversation`).
    public func render(_ c: ChatConversation, addGenerationPrompt: Bool = false) throws -> String {
        try render(c.messages, tools: c.tools, addGenerationPrompt: addGenerationPrompt)
    }

    public func tokenize(_ c: ChatConversation, tokenizer: GLMTokenizer, addGenerationPrompt: Bool = false,
                         endFinalAssistantTurn: Bool = true) throws -> Tokenized {
        try tokenize(c.messages, tools: c.tools, tokenizer: tokenizer, addGenerationPrompt: addGenerationPrompt,
                     endFinalAssistantTurn: endFinalAssistantTurn)
    }

    // MARK: Rendering

    /// The rendered conversation (without the generation prompt) as role tokens and the text between them; text
    /// after a role token up to the next is one piece, so tokenizing piece by piece equals tokenizing the whole.
    struct Piece {
        enum Kind { case roleToken, text(assistant: Bool) }
        var text: String
        var kind: Kind
    }

    func pieces(_ messages: [ChatMessage], tools: [JSONValue]?) throws -> [Piece] {
        var out: [Piece] = []
        if !prefix.isEmpty { out.append(Piece(text: prefix, kind: .text(assistant: false))) }
        func role(_ r: ChatMessage.Role) { out.append(Piece(text: ChatTemplate.roleToken(r), kind: .roleToken)) }
        func text(_ s: String, assistant: Bool = false) { out.append(Piece(text: s, kind: .text(assistant: assistant))) }
        switch format {
        case .glm4Chat:
            var messages = messages
            if let tools, !messages.contains(where: { $0.tools != nil }) {
                messages.insert(ChatMessage(role: .system, content: "", tools: tools), at: 0)
            }
            for m in messages {
                if let tools = m.tools {
                    role(.system)
                    text(try glm4ChatToolBlock(tools))
                }
                if !m.content.isEmpty {
                    role(m.role)
                    text(m.metadata + "\n" + m.content, assistant: m.role == .assistant)
                }
            }
        case .glm4_0414, .glmZ1_0414:
            let z1 = format == .glmZ1_0414
            let tools = tools ?? { let t = messages.compactMap(\.tools).flatMap { $0 }; return t.isEmpty ? nil : t }()
            if let tools, !tools.isEmpty {
                role(.system)
                var block = z1 ? GLM4ChatToolTexts.z1Preamble : "\n# 可用工具\n"
                for (i, tool) in tools.enumerated() {
                    guard case .object = tool else { throw GLMError("tools[\(i)] must be an object, as GLM-4-0414's template reads tool.get(\"function\")") }
                    let function = (tool["function"]?.isTruthy ?? false) ? tool["function"]! : tool
                    var name = ""
                    if case .object = function, let n = function["name"] { name = try ChatTemplate.pythonString(n, what: "tools[\(i)] name") }
                    block += "\n## \(name)\n\n" + function.pythonJSON(indent: 4) + GLM4ChatToolTexts.functionCallHint
                }
                text(block)
            }
            for m in messages where m.role == .system {
                role(.system)
                text("\n" + m.content)
            }
            for m in messages where m.role != .system {
                let visible = z1 ? ChatTemplate.pythonStrip(ChatTemplate.afterLastThink(m.content)) : m.content
                role(m.role)
                if m.role == .assistant && !m.metadata.isEmpty {
                    text(m.metadata + (z1 ? "\n" : " \n") + visible, assistant: true)
                } else {
                    text("\n" + visible, assistant: m.role == .assistant)
                }
            }
        case .glm45:
            out += try glm45Pieces(messages, tools: tools)
        case .glmEdge:
            if tools != nil || messages.contains(where: { $0.tools != nil }) {
                throw GLMError("glm-edge's chat template has no tool definitions; remove \"tools\" or use a GLM-4 model")
            }
            for m in messages where m.role != .observation {
                role(m.role)
                text("\n" + m.content, assistant: m.role == .assistant)
            }
        }
        return out
    }

    /// glm-4-9b-chat's system block for a message's `tools` (after the `<|system|>` token).
    func glm4ChatToolBlock(_ tools: [JSONValue]) throws -> String {
        var s = GLM4ChatToolTexts.preamble(assistantName: assistantName)
        for (i, tool) in tools.enumerated() {
            switch tool["type"] {
            case .string("function")?:
                guard let function = tool["function"] else {
                    throw GLMError("tools[\(i)] has type \"function\" but no \"function\" definition")
                }
                var name = ""
                if case .object = function, let n = function["name"] { name = try ChatTemplate.pythonString(n, what: "tools[\(i)].function.name") }
                s += "\n## \(name)\n\n" + function.pythonJSON(indent: 4) + GLM4ChatToolTexts.functionCallHint
            case .string("python")?: s += GLM4ChatToolTexts.python
            case .string("simple_browser")?: s += GLM4ChatToolTexts.simpleBrowser
            case .string("cogview")?: s += GLM4ChatToolTexts.cogview
            default: break  // the template renders nothing for other tool types
            }
        }
        return s
    }

    /// How Jinja prints a scalar (Python's `str`); containers are refused rather than printed as Python reprs.
    static func pythonString(_ v: JSONValue, what: String) throws -> String {
        switch v {
        case .string(let s): return s
        case .integer(let d): return d
        case .double(let d): return JSONValue.pythonRepr(d).replacingOccurrences(of: "Infinity", with: "inf").replacingOccurrences(of: "NaN", with: "nan")
        case .bool(let b): return b ? "True" : "False"
        case .null: return "None"
        case .array, .object: throw GLMError("\(what) must be a string")
        }
    }

    /// `s.split('</think>')[-1]`.
    static func afterLastThink(_ s: String) -> String {
        let scalars = Array(s.unicodeScalars), marker = Array("</think>".unicodeScalars)
        guard scalars.count >= marker.count else { return s }
        var i = scalars.count - marker.count
        while i >= 0 {
            if Array(scalars[i..<i + marker.count]) == marker {
                var v = String.UnicodeScalarView(); v.append(contentsOf: scalars[(i + marker.count)...]); return String(v)
            }
            i -= 1
        }
        return s
    }

    /// Python's `str.strip()`: removes the characters `str.isspace()` is true for from both ends.
    static func pythonStrip(_ s: String) -> String {
        let scalars = Array(s.unicodeScalars)
        var lo = 0, hi = scalars.count
        while lo < hi && isPythonSpace(scalars[lo]) { lo += 1 }
        while hi > lo && isPythonSpace(scalars[hi - 1]) { hi -= 1 }
        var v = String.UnicodeScalarView(); v.append(contentsOf: scalars[lo..<hi]); return String(v)
    }

    /// `str.isspace()` for one character: Unicode White_Space plus U+001C–U+001F (bidirectional class B or S).
    static func isPythonSpace(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }
}

extension ChatTemplate {
    /// The known template a Jinja chat template is, by its distinctive text; nil for others.
    public static func identify(jinja t: String) -> ChatTemplate? {
        if t.contains("[gMASK]<sop>") && t.contains("<arg_key>") && t.contains("<tool_response>") && t.contains("enable_thinking")
            && t.contains("last_user_index") {
            return .glm45
        }
        if t.contains("item['tools'] is defined") && t.contains("[gMASK]<sop>") {
            // "你是一个名为 ChatGLM 的人工智能助手" (glm-4-9b-chat) or "名为 GLM-4 的" (-hf checkpoints).
            if let r = t.range(of: "你是一个名为 "), let e = t.range(of: " 的人工智能助手", range: r.upperBound..<t.endIndex) {
                return ChatTemplate(format: .glm4Chat, assistantName: String(t[r.upperBound..<e.lowerBound]))
            }
            return .glm4
        }
        if t.contains("message.get(\"metadata\"") && t.contains("[gMASK]<sop>") && t.contains("{%- if tools -%}") {
            if t.contains("{% if add_generation_prompt %}<|assistant|>\n<think>{% endif %}") { return .glmZ1_0414 }
            if !t.contains("<think>") && !t.contains("</think>") { return .glm4_0414 }
            return nil  // e.g. GLM-Z1-Rumination's, with its fixed research-assistant system prompt
        }
        if !t.contains("[gMASK]") && t.contains("{% if item['role'] == 'system' %}<|system|>\n{{ item['content'] }}")
            && t.contains("{% elif item['role'] == 'assistant' %}<|assistant|>\n{{ item['content'] }}") {
            return .glmEdge
        }
        return nil
    }

    /// The chat template of a model directory: the `chat_template` of tokenizer_config.json (or chat_template.jinja)
    /// when there is one, which must be a known template; otherwise by config.json's model_type (glm4 → GLM-4-0414,
    /// glm4_moe → GLM-4.5, glm / chatglm → glm-4-9b-chat). Errors name the file.
    /// A template recognised by its parts but not verbatim one GLMTrain was checked against is rendered as the
    /// known one, and `warn` says so (by default on standard error).
    public static func forModel(directory: String, warn: (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }) throws -> ChatTemplate {
        var jinja: String?, source = ""
        let configPath = "\(directory)/tokenizer_config.json"
        if FileManager.default.fileExists(atPath: configPath) {
            let data = try FileInput.read(configPath, limit: FileLimits.maxConfigBytes)
            guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw GLMError("\(configPath): not a JSON object")
            }
            // as transformers reads it: a string, or a list of {name, template} with a "default" one
            switch obj["chat_template"] {
            case nil, is NSNull: break
            case let s as String: jinja = s
            case let list as [[String: Any]]:
                guard let named = list.first(where: { $0["name"] as? String == "default" }) else {
                    throw GLMError("\(configPath): key 'chat_template': a list of named templates without a \"default\" one (its names: \(list.compactMap { $0["name"] as? String }.joined(separator: ", ")))")
                }
                guard let t = named["template"] as? String else {
                    throw GLMError("\(configPath): key 'chat_template': the \"default\" entry's \"template\" is not a string")
                }
                jinja = t
            default: throw GLMError("\(configPath): key 'chat_template': expected a string or a list of {\"name\", \"template\"} objects")
            }
            source = "\(configPath): chat_template"
        }
        let jinjaPath = "\(directory)/chat_template.jinja"
        var isDirectory: ObjCBool = false
        if jinja == nil, FileManager.default.fileExists(atPath: jinjaPath, isDirectory: &isDirectory) {
            let data = try FileInput.read(jinjaPath, limit: FileLimits.maxConfigBytes)
            jinja = String(decoding: data, as: UTF8.self); source = jinjaPath
        }
        if let jinja {
            guard let t = identify(jinja: jinja) else {
                throw GLMError("\(source) is not a chat template GLMTrain renders (it knows glm-4-9b-chat, GLM-4-0414, GLM-Z1-0414, glm-edge and GLM-4.5)")
            }
            if !isVerbatim(jinja: jinja) {
                warn("\(source) is not verbatim a template GLMTrain was checked against; it is rendered as the stock one it resembles, so edits to it are not applied (choose one with --chat-template or data.chat_template to silence this)")
            }
            return t
        }
        let modelConfig = "\(directory)/config.json"
        if let data = FileManager.default.contents(atPath: modelConfig),
           let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let type = obj["model_type"] as? String {
            switch type {
            case "glm4": return .glm4_0414
            case "glm4_moe": return .glm45
            case "glm", "chatglm": return .glm4
            default: throw GLMError("\(modelConfig): model_type \"\(type)\" has no GLM chat template (expected glm, glm4, glm4_moe or chatglm)")
            }
        }
        return .glm4
    }
}
