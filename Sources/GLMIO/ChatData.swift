// Chat data lines (`{"messages", "tools"}` or `{"prompt", "completion"}`) read with the order of tool schemas kept,
// the checks that make a conversation trainable, and the choice of chat template by name or by model directory.
// IO-layer: `score`, `generate` and `tokenize` use them without the training layer.
import Foundation
import GLMCore

/// One line of a JSONL file with chat data: the parsed object, plus the line's text for `ChatConversation.parse`
/// (which keeps the key order of tool schemas, as the templates print them).
public struct ChatDataLine {
    public let line: JSONLine
    public let text: String
    public var location: String { line.location }
}

/// Reading and checking chat data lines.
public enum ChatData {
    /// Reads every non-blank line of `path` (errors as `JSONLines.read`), keeping each line's text.
    public static func chatLines(_ path: String) throws -> [ChatDataLine] {
        let data = try FileInput.read(path)
        let lines = try JSONLines.parse(data, file: path)
        let raw = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        return lines.map { l in
            ChatDataLine(line: l, text: l.line - 1 < raw.count ? String(decoding: raw[l.line - 1], as: UTF8.self) : "")
        }
    }

    /// The conversation of an SFT or prompt line: `messages` (+ optional `tools`), or `prompt` + optional
    /// `completion` (+ optional `tools`). Errors name FILE:LINE.
    public static func conversation(_ line: ChatDataLine, requireCompletion: Bool = true) throws -> ChatConversation {
        let object = line.line.object
        if object["messages"] != nil {
            guard object["messages"] is [[String: Any]] else {
                throw GLMError("\(line.location): \"messages\" must be a list of {\"role\", \"content\"} objects")
            }
            do { return try ChatConversation.parse(line.text) } catch let e as GLMError {
                throw GLMError("\(line.location): \(e.message)")
            }
        }
        guard let prompt = try line.line.string("prompt") else {
            throw GLMError("\(line.location): expected \"messages\" or \"prompt\" (keys found: \(object.keys.sorted().joined(separator: ", ")))")
        }
        var messages = [ChatMessage(role: .user, content: prompt)]
        if let completion = try line.line.string("completion") { messages.append(ChatMessage(role: .assistant, content: completion)) }
        else if requireCompletion { throw GLMError("\(line.location): a \"prompt\" line needs a \"completion\"") }
        var tools: [JSONValue]?
        if object["tools"] != nil {
            do {
                let v = try JSONValue.parse(line.text)
                tools = try ChatConversation(json: .object([(key: "messages", value: .array([])), (key: "tools", value: v["tools"] ?? .null)])).tools
            } catch let e as GLMError { throw GLMError("\(line.location): \(e.message)") }
        }
        return ChatConversation(messages: messages, tools: tools)
    }

    /// Rejects what a template would drop or garble silently, so that training sees the data as written:
    /// OpenAI-style `tool_calls`/`function_call` keys (GLM writes a tool call as an assistant message with the function
    /// name in `metadata` and the arguments in `content`), a function name that is blank or spans lines, an
    /// observation right after an assistant message without a function name (a tool call without a name), a tool
    /// call with empty arguments
    /// under glm-4-9b-chat (whose template skips empty messages), and tool calls or observations under glm-edge
    /// (whose template has neither). `location` prefixes the errors.
    public static func checkConversation(_ c: ChatConversation, line: ChatDataLine, template: ChatTemplate) throws {
        let where_ = line.location
        try rejectForeignToolCalls(line, template: template)
        for (i, m) in c.messages.enumerated() {
            if template.format == .glm45 {
                if !m.metadata.isEmpty {
                    throw GLMError("\(where_): messages[\(i)] has \"metadata\", which GLM-4.5's chat template ignores; write a tool call as \"tool_calls\": [{\"function\": {\"name\": ..., \"arguments\": {...}}}]")
                }
                continue
            }
            if m.toolCalls != nil || m.reasoningContent != nil {
                let key = m.toolCalls != nil ? "tool_calls" : "reasoning_content"
                throw GLMError("\(where_): messages[\(i)] has \"\(key)\", which only GLM-4.5's chat template renders (this model's is \(template.name))")
            }
            if m.role == .assistant && !m.metadata.isEmpty {
                if m.metadata.allSatisfy({ $0.isWhitespace }) {
                    throw GLMError("\(where_): messages[\(i)].metadata is blank; a tool call needs the function name there")
                }
                if m.metadata.contains(where: { $0.isNewline }) {
                    throw GLMError("\(where_): messages[\(i)].metadata must be a function name on one line")
                }
                if template.format == .glmEdge {
                    throw GLMError("\(where_): messages[\(i)] is a tool call, which glm-edge's chat template cannot render; use a GLM-4 model")
                }
                if template.format == .glm4Chat && m.content.isEmpty {
                    throw GLMError("\(where_): messages[\(i)] is a tool call with empty arguments, which glm-4-9b-chat's template drops; write \"{}\"")
                }
            }
            if m.role == .observation {
                if template.format == .glmEdge {
                    throw GLMError("\(where_): messages[\(i)] is an observation, which glm-edge's chat template does not render; use a GLM-4 model")
                }
                if i > 0, c.messages[i - 1].role == .assistant, c.messages[i - 1].metadata.isEmpty {
                    throw GLMError("\(where_): messages[\(i)] is an observation after messages[\(i - 1)], a tool call without a name; put the function name in its \"metadata\"")
                }
            }
        }
    }
}

extension ChatData {
    /// OpenAI-style `tool_calls`/`function_call` keys, which every GLM chat template ignores (`tokenize` refuses them
    /// as `run` does). GLM-4.5's template reads `tool_calls`, so under it only `function_call` is refused.
    public static func rejectForeignToolCalls(_ line: ChatDataLine, template: ChatTemplate? = nil) throws {
        guard case .array(let list)? = try? JSONValue.parse(line.text)["messages"] else { return }
        let keys = template?.format == .glm45 ? ["function_call"] : ["tool_calls", "function_call"]
        for (i, m) in list.enumerated() {
            for key in keys where m[key] != nil {
                throw GLMError("\(line.location): messages[\(i)] has \"\(key)\"; GLM data writes a tool call as {\"role\": \"assistant\", \"metadata\": FUNCTION_NAME, \"content\": ARGUMENTS}")
            }
        }
    }
}

extension ChatTemplate {
    /// The names `data.chat_template` and `--chat-template` accept, each with its template.
    public static let named: [(name: String, template: ChatTemplate)] = [
        ("glm-4-9b-chat", .glm4), ("glm-4-9b-chat-hf", .glm4HF), ("glm-4-0414", .glm4_0414),
        ("glm-z1-0414", .glmZ1_0414), ("glm-edge", .glmEdge), ("glm-4.5", .glm45), ("glm-4.5-nothink", .glm45NoThinking),
    ]

    /// The name of a template in `named` (its format's name for templates with other texts).
    public var name: String { ChatTemplate.named.first { $0.template == self }?.name ?? format.rawValue }

    /// The template called `name` (one of `named`, or `auto` for nil). The error (without a prefix; callers add the
    /// key or option) suggests the nearest name.
    public static func named(_ name: String) throws -> ChatTemplate? {
        if name == "auto" { return nil }
        if let t = named.first(where: { $0.name == name }) { return t.template }
        let names = named.map(\.name) + ["auto"]
        throw GLMError("unknown chat template '\(name)'\(NearestName.suggestion(name, names)); expected one of \(names.joined(separator: ", "))")
    }

    /// The template to render chat data for a model: `override` when given, otherwise the one the directory's
    /// tokenizer_config.json / chat_template.jinja names (or its config.json model_type; glm-4-9b-chat without one).
    /// `overrideHint` names the override in errors (e.g. "data.chat_template").
    public static func resolve(override: ChatTemplate?, directory: String?, overrideHint: String) throws -> ChatTemplate {
        if let override { return override }
        guard let directory else { return .glm4 }
        do { return try ChatTemplate.forModel(directory: directory) } catch let e as GLMError {
            throw GLMError("\(e.message); choose one with \(overrideHint) (\(named.map(\.name).joined(separator: ", ")))")
        }
    }
}
