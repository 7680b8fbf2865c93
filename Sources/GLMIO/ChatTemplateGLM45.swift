// GLM-4.5's chat format (GLM-4.5, GLM-4.5-Air): tool calls as `<tool_call>` blocks of `<arg_key>`/`<arg_value>`
// pairs, tool results as `<tool_response>` blocks, reasoning in `<think>`, thinking on or off. Rendered as the Jinja
// template in Tests/GLMIOTests/Fixtures/chat_templates/glm-4.5.jinja does under transformers' apply_chat_template
// (Scripts/make_glm45_template_fixtures.py records the cases the tests compare with).
import GLMCore

/// One tool call of an assistant message: `{"function": {"name", "arguments"}}` or `{"name", "arguments"}`, with the
/// arguments as a JSON object (a JSON text of an object, OpenAI's wire form, is read as that object; none given
/// is no arguments — where the Jinja template would fail).
public struct ChatToolCall: Sendable, Equatable, Codable {
    public var name: String
    /// A JSON object, in the order the data gives its keys (the order the template prints them in).
    public var arguments: JSONValue

    public init(name: String, arguments: JSONValue) { self.name = name; self.arguments = arguments }

    /// The calls of a `tool_calls` list; errors start with `what`.
    public static func parse(_ v: JSONValue, what: String) throws -> [ChatToolCall] {
        guard case .array(let list) = v else { throw GLMError("\(what) must be a list") }
        return try list.enumerated().map { i, item in
            let at = "\(what)[\(i)]"
            guard case .object = item else { throw GLMError("\(at) must be an object") }
            let f = (item["function"]?.isTruthy ?? false) ? item["function"]! : item
            guard case .object = f, let name = f["name"]?.stringValue else { throw GLMError("\(at): the function name must be a string") }
            var args = f["arguments"] ?? .object([])  // none given: no arguments
            if case .string(let text) = args { args = (try? JSONValue.parse(text)) ?? args }
            guard case .object = args else { throw GLMError("\(at).arguments must be a JSON object (GLM-4.5's template prints its keys and values)") }
            return ChatToolCall(name: name, arguments: args)
        }
    }

    public init(from decoder: Decoder) throws {
        let calls = try ChatToolCall.parse(.array([try JSONValue(from: decoder)]), what: "tool_calls")
        self = calls[0]
    }

    public func encode(to encoder: Encoder) throws {
        try JSONValue.object([(key: "type", value: .string("function")), (key: "function", value: .object([
            (key: "name", value: .string(name)), (key: "arguments", value: arguments)]))]).encode(to: encoder)
    }
}

/// The fixed texts of GLM-4.5's tool system block (template data, as the template writes them).
enum GLM45ToolTexts {
    static let header = "\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    static let footer = "</tools>\n\nFor each function call, output the function name and arguments within the following XML format:\n<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n<arg_value>{arg-value-1}</arg_value>\n<arg_key>{arg-key-2}</arg_key>\n<arg_value>{arg-value-2}</arg_value>\n...\n</tool_call>"
}

extension ChatTemplate {
    /// GLM-4.5's messages as pieces (after the prefix). Conversation tools, or the messages' tools when none are
    /// given (as for the 0414 formats), fill the `# Tools` block. Consecutive tool results share one `<|observation|>`.
    func glm45Pieces(_ messages: [ChatMessage], tools: [JSONValue]?) throws -> [Piece] {
        var out: [Piece] = []
        let tools = tools ?? { let t = messages.compactMap(\.tools).flatMap { $0 }; return t.isEmpty ? nil : t }()
        if let tools, !tools.isEmpty {
            out.append(Piece(text: ChatTemplate.roleToken(.system), kind: .roleToken))
            out.append(Piece(text: GLM45ToolTexts.header + tools.map { $0.pythonJSON() + "\n" }.joined() + GLM45ToolTexts.footer,
                             kind: .text(assistant: false)))
        }
        let lastUser = messages.lastIndex { $0.role == .user } ?? -1
        for (i, m) in messages.enumerated() {
            var text = ""
            switch m.role {
            case .system: text = "\n" + m.content
            case .user:
                let off = !thinking && !Self.scalarHasSuffix(m.content, "/nothink")
                text = "\n" + m.content + (off ? "/nothink" : "")
            case .assistant: text = try glm45AssistantText(m, afterLastUser: i > lastUser)
            case .observation:
                text = "\n<tool_response>\n" + m.content + "\n</tool_response>"
                if i > 0 && messages[i - 1].role == .observation, let last = out.last {  // one piece per role token
                    out[out.count - 1].text = last.text + text
                    continue
                }
            }
            out.append(Piece(text: ChatTemplate.roleToken(m.role), kind: .roleToken))
            out.append(Piece(text: text, kind: .text(assistant: m.role == .assistant)))
        }
        return out
    }

    /// An assistant turn after `<|assistant|>`: its `<think>` block, content and tool calls.
    func glm45AssistantText(_ m: ChatMessage, afterLastUser: Bool) throws -> String {
        var content = m.content, reasoning = ""
        if let r = m.reasoningContent {
            reasoning = r
        } else if Self.scalarSplit(content, "</think>").count > 1 {
            // content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n'); content after the last </think>.
            let parts = Self.scalarSplit(content, "</think>")
            reasoning = Self.trimNewlines(Self.scalarSplit(Self.trimNewlines(parts[0], leading: false), "<think>").last!, leading: true)
            content = Self.trimNewlines(parts.last!, leading: true)
        }
        var s = afterLastUser && !reasoning.isEmpty ? "\n<think>" + Self.pythonStrip(reasoning) + "</think>" : "\n<think></think>"
        let visible = Self.pythonStrip(content)
        if !visible.isEmpty { s += "\n" + visible }
        for call in m.toolCalls ?? [] {
            s += "\n<tool_call>" + call.name + "\n"
            guard case .object(let args) = call.arguments else { throw GLMError("tool call \(call.name): arguments must be an object") }
            for (k, v) in args {
                s += "<arg_key>\(k)</arg_key>\n<arg_value>" + (v.stringValue ?? v.pythonJSON()) + "</arg_value>\n"
            }
            s += "</tool_call>"
        }
        return s
    }

    /// Python's `s.split(sep)` (by code point).
    static func scalarSplit(_ s: String, _ sep: String) -> [String] {
        let a = Array(s.unicodeScalars), m = Array(sep.unicodeScalars)
        var parts: [String] = [], start = 0, i = 0
        func piece(_ r: Range<Int>) -> String { var v = String.UnicodeScalarView(); v.append(contentsOf: a[r]); return String(v) }
        while i + m.count <= a.count {
            if Array(a[i..<i + m.count]) == m { parts.append(piece(start..<i)); i += m.count; start = i } else { i += 1 }
        }
        parts.append(piece(start..<a.count))
        return parts
    }

    /// Python's `s.lstrip('\n')` (leading) or `s.rstrip('\n')`.
    static func trimNewlines(_ s: String, leading: Bool) -> String {
        var a = Array(s.unicodeScalars)
        if leading { while a.first == "\n" { a.removeFirst() } } else { while a.last == "\n" { a.removeLast() } }
        var v = String.UnicodeScalarView(); v.append(contentsOf: a); return String(v)
    }

    /// Python's `s.endswith(suffix)` (by code point).
    static func scalarHasSuffix(_ s: String, _ suffix: String) -> Bool {
        let a = Array(s.unicodeScalars), b = Array(suffix.unicodeScalars)
        return a.count >= b.count && Array(a.suffix(b.count)) == b
    }
}
