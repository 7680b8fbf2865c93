// GLM-4.5's chat template against transformers' rendering of the committed Jinja template
// (Scripts/make_glm45_template_fixtures.py → glm45_template_cases.jsonl): text byte for byte, ids, and the assistant
// mask (exactly the assistant turns as the template writes them, plus the token that ends each); how the template is
// chosen (its Jinja text, model_type glm4_moe, the names glm-4.5 and glm-4.5-nothink); the data checks.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class ChatTemplateGLM45Tests: XCTestCase {
    let tok = TokenizerFixtures.tokenizer
    static let jinjaPath = "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/chat_templates/glm-4.5.jinja"

    struct Case {
        var template: String
        var conversation: ChatConversation
        var generationPrompt: Bool
        var text: String
        var ids: [Int32]
        var mask: [Bool]
        var endsInAssistant: Bool
    }

    static func cases() throws -> [Case] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(TokenizerFixtures.directory)/glm45_template_cases.jsonl"))
        return try data.split(separator: 0x0A).map { line in
            let v = try JSONValue.parse(String(decoding: line, as: UTF8.self))
            guard case .array(let ids)? = v["ids"] else { throw GLMError("case without ids") }
            return Case(template: v["template"]!.stringValue!, conversation: try ChatConversation(json: v),
                        generationPrompt: v["add_generation_prompt"] == .bool(true), text: v["text"]!.stringValue!,
                        ids: ids.map { if case .integer(let d) = $0 { return Int32(d)! }; return -1 },
                        mask: v["assistant_mask"]!.stringValue!.map { $0 == "1" }, endsInAssistant: v["ends_in_assistant"] == .bool(true))
        }
    }

    func testEveryCaseMatchesTransformersTextIdsAndMask() throws {
        let cases = try Self.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 120)
        XCTAssertEqual(Set(cases.map(\.template)), ["glm-4.5", "glm-4.5-nothink"])
        let end = try XCTUnwrap(tok.tokenID("<|endoftext|>"))
        for c in cases {
            let t = try XCTUnwrap(try ChatTemplate.named(c.template))
            let where_ = "\(c.template) gen=\(c.generationPrompt) \(c.conversation.messages.map { "\($0.role)" })"
            XCTAssertEqual(try t.render(c.conversation, addGenerationPrompt: c.generationPrompt), c.text, where_)
            XCTAssertEqual(tok.encode(c.text), c.ids, where_)
            let open = try t.tokenize(c.conversation, tokenizer: tok, addGenerationPrompt: c.generationPrompt, endFinalAssistantTurn: false)
            XCTAssertEqual(open.ids, c.ids, where_)
            XCTAssertEqual(open.assistantMask, c.mask, where_)
            let closed = try t.tokenize(c.conversation, tokenizer: tok, addGenerationPrompt: c.generationPrompt)
            XCTAssertEqual(closed.ids, c.endsInAssistant ? c.ids + [end] : c.ids, where_)
            XCTAssertEqual(closed.assistantMask, c.endsInAssistant ? c.mask + [true] : c.mask, where_)
        }
    }

    /// The trained tokens of a tool conversation, spelled out: reasoning after the last user turn, the calls with
    /// their arguments, and the role tokens that end each turn; never the tool definitions, user text or results.
    func testMaskCoversTheAssistantTurnsAsWritten() throws {
        let c = try ChatConversation.parse(#"""
        {"messages": [{"role": "user", "content": "Weather?"},
          {"role": "assistant", "content": "", "reasoning_content": "call it",
           "tool_calls": [{"function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 2}"}}]},
          {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "Sunny."}],
         "tools": [{"type": "function", "function": {"name": "get_weather"}}]}
        """#)
        for t in [ChatTemplate.glm45, .glm45NoThinking] {
            let r = try t.tokenize(c, tokenizer: tok)
            let trained = tok.decode(zip(r.ids, r.assistantMask).filter(\.1).map(\.0))
            XCTAssertEqual(trained, "\n<think>call it</think>\n<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Paris</arg_value>\n"
                           + "<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call><|observation|>\n<think></think>\nSunny.<|endoftext|>")
            let all = tok.decode(r.ids)
            XCTAssertTrue(all.contains(t.thinking ? "<|user|>\nWeather?<|assistant|>" : "<|user|>\nWeather?/nothink<|assistant|>"), all)
        }
        XCTAssertEqual(try ChatTemplate.glm45NoThinking.render(c.messages.prefix(1).map { $0 }, addGenerationPrompt: true),
                       "[gMASK]<sop><|user|>\nWeather?/nothink<|assistant|>\n<think></think>")
    }

    func testChosenByJinjaModelTypeAndName() throws {
        let jinja = try String(contentsOfFile: Self.jinjaPath, encoding: .utf8)
        XCTAssertEqual(ChatTemplate.identify(jinja: jinja), .glm45)
        XCTAssertEqual(try ChatTemplate.named("glm-4.5"), .glm45)
        XCTAssertEqual(try ChatTemplate.named("glm-4.5-nothink"), .glm45NoThinking)
        XCTAssertEqual(ChatTemplate.glm45NoThinking.name, "glm-4.5-nothink")
        let dir = NSTemporaryDirectory() + "glmtrain-glm45-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(#"{"model_type": "glm4_moe"}"#.utf8).write(to: URL(fileURLWithPath: "\(dir)/config.json"))
        XCTAssertEqual(try ChatTemplate.forModel(directory: dir), .glm45)
        try Data(jinja.utf8).write(to: URL(fileURLWithPath: "\(dir)/chat_template.jinja"))
        XCTAssertEqual(try ChatTemplate.forModel(directory: dir), .glm45)
        XCTAssertEqual(try ChatTemplate.resolve(override: .glm4_0414, directory: dir, overrideHint: "x"), .glm4_0414)
    }

    func testDataChecksFollowTheTemplate() throws {
        let file = NSTemporaryDirectory() + "glmtrain-glm45-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: file) }
        func line(_ text: String) throws -> ChatDataLine {
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
            return try ChatData.chatLines(file)[0]
        }
        let calls = #"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}, {"role": "tool", "content": "r"}]}"#
        let c = try ChatConversation.parse(calls)
        XCTAssertNoThrow(try ChatData.checkConversation(c, line: try line(calls), template: .glm45))
        XCTAssertThrowsError(try ChatData.checkConversation(c, line: try line(calls), template: .glm4_0414)) {
            XCTAssertTrue("\($0)".contains("tool_calls"), "\($0)")
        }
        let meta = #"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "metadata": "f", "content": "{}"}]}"#
        XCTAssertThrowsError(try ChatData.checkConversation(try ChatConversation.parse(meta), line: try line(meta), template: .glm45)) {
            XCTAssertTrue("\($0)".contains("metadata"), "\($0)")
        }
        XCTAssertThrowsError(try ChatConversation.parse(#"{"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]}"#)) {
            XCTAssertTrue("\($0)".contains("arguments must be a JSON object"), "\($0)")
        }
    }
}
