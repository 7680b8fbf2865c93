// The GLM chat templates (glm-4-9b-chat with tools, GLM-4-0414, GLM-Z1-0414, glm-edge) against transformers'
// apply_chat_template on the committed Jinja templates (Scripts/make_tokenizer_fixtures.py →
// chat_template_cases.jsonl): text, ids and assistant mask; template identification; Python-exact JSON.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class ChatTemplateFormatsTests: XCTestCase {
    let tok = TokenizerFixtures.tokenizer
    static let templates = "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/chat_templates"

    struct Case {
        var template: String
        var conversation: ChatConversation
        var generationPrompt: Bool
        var text: String
        var ids: [Int32]
        var mask: [Bool]
        var endsInAssistant: Bool
    }

    /// The cases, parsed with `JSONValue` so that tool schemas keep their key order.
    static func cases() throws -> [Case] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(TokenizerFixtures.directory)/chat_template_cases.jsonl"))
        return try data.split(separator: 0x0A).map { line in
            let v = try JSONValue.parse(String(decoding: line, as: UTF8.self))
            func ints(_ key: String) -> [JSONValue] { if case .array(let a)? = v[key] { return a }; return [] }
            return Case(template: v["template"]!.stringValue!, conversation: try ChatConversation(json: v),
                        generationPrompt: v["add_generation_prompt"] == .bool(true), text: v["text"]!.stringValue!,
                        ids: ints("ids").map { if case .integer(let d) = $0 { return Int32(d)! }; return -1 },
                        mask: v["assistant_mask"]!.stringValue!.map { $0 == "1" }, endsInAssistant: v["ends_in_assistant"] == .bool(true))
        }
    }

    /// Each fixture template identified from its Jinja text, as a model directory's tokenizer_config.json gives it.
    static func template(_ name: String) throws -> ChatTemplate {
        let jinja = try String(contentsOfFile: "\(templates)/\(name).jinja", encoding: .utf8)
        return try XCTUnwrap(ChatTemplate.identify(jinja: jinja), name)
    }

    func testIdentifiesEachTemplateFromItsJinja() throws {
        XCTAssertEqual(try Self.template("glm-4-9b-chat"), .glm4)
        XCTAssertEqual(try Self.template("glm-4-9b-chat-1m-hf"), .glm4HF)
        XCTAssertEqual(try Self.template("glm-4-0414"), .glm4_0414)
        XCTAssertEqual(try Self.template("glm-z1-0414"), .glmZ1_0414)
        XCTAssertEqual(try Self.template("glm-edge-4b-chat"), .glmEdge)
        XCTAssertNil(ChatTemplate.identify(jinja: "{% for m in messages %}<|im_start|>{{ m.role }}{% endfor %}"))
        // The existing tokenizer fixture's tokenizer_config.json carries glm-4-9b-chat's template.
        XCTAssertEqual(try ChatTemplate.forModel(directory: TokenizerFixtures.directory), .glm4)
    }

    func testEveryTemplateMatchesTransformersTextIdsAndMask() throws {
        let cases = try Self.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 200)
        var seen: [String: Int] = [:]
        for c in cases {
            seen[c.template, default: 0] += 1
            let t = try Self.template(c.template)
            let where_ = "\(c.template) gen=\(c.generationPrompt) \(c.conversation.messages.map { "\($0.role)" })"
            XCTAssertEqual(try t.render(c.conversation, addGenerationPrompt: c.generationPrompt), c.text, where_)
            XCTAssertEqual(tok.encode(c.text), c.ids, where_)
            let open = try t.tokenize(c.conversation, tokenizer: tok, addGenerationPrompt: c.generationPrompt, endFinalAssistantTurn: false)
            XCTAssertEqual(open.ids, c.ids, where_)
            XCTAssertEqual(open.assistantMask, c.mask, where_)
            let closed = try t.tokenize(c.conversation, tokenizer: tok, addGenerationPrompt: c.generationPrompt)
            let end = tok.tokenID("<|endoftext|>")!
            XCTAssertEqual(closed.ids, c.endsInAssistant ? c.ids + [end] : c.ids, where_)
            XCTAssertEqual(closed.assistantMask, c.endsInAssistant ? c.mask + [true] : c.mask, where_)
        }
        XCTAssertEqual(Set(seen.keys), ["glm-4-9b-chat", "glm-4-9b-chat-1m-hf", "glm-4-0414", "glm-z1-0414", "glm-edge-4b-chat"])
    }

    func testToolCallTurnIsTrainedIncludingTheFunctionName() throws {
        let tools = try JSONValue.parse(#"[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]"#)
        guard case .array(let list) = tools else { return XCTFail() }
        let msgs = [ChatMessage(role: .user, content: "Weather?"),
                    ChatMessage(role: .assistant, content: "{\"city\": \"Paris\"}", metadata: "get_weather"),
                    ChatMessage(role: .observation, content: "sunny"), ChatMessage(role: .assistant, content: "Sunny.")]
        for t in [ChatTemplate.glm4, .glm4_0414, .glmZ1_0414] {
            let r = try t.tokenize(msgs, tools: list, tokenizer: tok)
            let trained = tok.decode(zip(r.ids, r.assistantMask).filter(\.1).map(\.0))
            let sep = t == .glm4_0414 ? " \n" : "\n"
            XCTAssertEqual(trained, "get_weather\(sep){\"city\": \"Paris\"}<|observation|>\nSunny.<|endoftext|>", "\(t.format)")
            XCTAssertFalse(trained.contains("可用工具"), "the tool definitions are never trained on")
        }
    }

    func testGLMEdgeRefusesToolsAndDropsObservations() throws {
        let tool = JSONValue.object([(key: "type", value: .string("function")), (key: "function", value: .object([(key: "name", value: .string("f"))]))])
        XCTAssertThrowsError(try ChatTemplate.glmEdge.render([ChatMessage(role: .user, content: "q")], tools: [tool])) {
            XCTAssertTrue("\($0)".contains("glm-edge"), "\($0)")
        }
        let msgs = [ChatMessage(role: .user, content: "q"), ChatMessage(role: .observation, content: "o"),
                    ChatMessage(role: .assistant, content: "a", metadata: "m")]
        XCTAssertEqual(try ChatTemplate.glmEdge.render(msgs, addGenerationPrompt: true), "<|user|>\nq<|assistant|>\na<|assistant|>\n")
    }

    func testZ1CutsThinkingAndStripsLikePython() throws {
        func visible(_ content: String) throws -> String {
            let text = try ChatTemplate.glmZ1_0414.render([ChatMessage(role: .user, content: content)])
            return String(text.dropFirst("[gMASK]<sop><|user|>\n".count))
        }
        XCTAssertEqual(try visible("<think>x</think>\n\n answer\u{1F}\u{3000}"), "answer")  // U+001F is a space to Python
        XCTAssertEqual(try visible("a</think>b</think>  c\u{200B} "), "c\u{200B}")  // U+200B is not
        XCTAssertEqual(try visible(" \u{301}e\u{301} "), "\u{301}e\u{301}")  // by code point, not by character
    }

    func testModelDirectoryChoosesTheTemplate() throws {
        let dir = NSTemporaryDirectory() + "glmtrain-tmpl-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func write(_ name: String, _ text: String) throws { try Data(text.utf8).write(to: URL(fileURLWithPath: "\(dir)/\(name)")) }
        try write("config.json", #"{"model_type": "glm4"}"#)
        XCTAssertEqual(try ChatTemplate.forModel(directory: dir), .glm4_0414)
        try write("config.json", #"{"model_type": "glm"}"#)
        XCTAssertEqual(try ChatTemplate.forModel(directory: dir), .glm4)
        for name in ["glm-z1-0414", "glm-edge-4b-chat", "glm-4-9b-chat-1m-hf"] {
            let jinja = try String(contentsOfFile: "\(Self.templates)/\(name).jinja", encoding: .utf8)
            let config = try JSONSerialization.data(withJSONObject: ["chat_template": jinja, "eos_token": "<|endoftext|>"])
            try write("tokenizer_config.json", String(decoding: config, as: UTF8.self))
            XCTAssertEqual(try ChatTemplate.forModel(directory: dir), try Self.template(name))
        }
        try FileManager.default.removeItem(atPath: "\(dir)/tokenizer_config.json")
        try write("chat_template.jinja", try String(contentsOfFile: "\(Self.templates)/glm-z1-0414.jinja", encoding: .utf8))
        XCTAssertEqual(try ChatTemplate.forModel(directory: dir), .glmZ1_0414)
        try write("tokenizer_config.json", #"{"chat_template": "{{ messages }}"}"#)
        XCTAssertThrowsError(try ChatTemplate.forModel(directory: dir)) {
            XCTAssertTrue("\($0)".contains("tokenizer_config.json: chat_template is not a chat template GLMTrain renders"), "\($0)")
        }
    }

    func testJSONIsWrittenAsPythonWritesIt() throws {
        let text = #"{"z": 1, "a": [1.0, 0.1, 1e-05, 0.0001, 1E16, 1.5e300, -0.0, 12345678901234567890, -0, true, null],"#
            + #" "s": "q\" b\\ t\t n\n c\u0001 d\u007f é 😀 \ud83d\ude00", "e": {}, "l": [], "z": 2}"#
        let v = try JSONValue.parse(text)
        XCTAssertEqual(v.pythonJSON(),
                       #"{"z": 2, "a": [1.0, 0.1, 1e-05, 0.0001, 1e+16, 1.5e+300, -0.0, 12345678901234567890, 0, true, null], "#
                       + #""s": "q\" b\\ t\t n\n c\u0001 d"# + "\u{7F}" + #" é 😀 😀", "e": {}, "l": []}"#)
        XCTAssertEqual(try JSONValue.parse("[1, {\"a\": []}]").pythonJSON(indent: 2), "[\n  1,\n  {\n    \"a\": []\n  }\n]")
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01", "\"\\x\"", "tru", "1 2", "\"a\nb\"", "1e999", "[-1.5e400]", "NaN", "Infinity"] {
            XCTAssertThrowsError(try JSONValue.parse(bad), bad)
        }
    }
}
