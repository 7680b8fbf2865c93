// SFT data rendered with the model's chat template: tool definitions and tool calls are kept, the loss mask is
// exactly transformers' assistant mask (chat_template_cases.jsonl from Scripts/make_tokenizer_fixtures.py) plus the
// token that ends a final assistant turn; the template comes from the model directory or data.chat_template; bad
// lines give one-line errors naming FILE:LINE.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMTraining
import TestSupport

final class SFTChatTemplateTests: XCTestCase {
    static let tokenizerDirectory = "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/tokenizer"
    static let templates = "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/chat_templates"
    static let tokenizer: GLMTokenizer = try! GLMTokenizer.load(tokenizerJSON: "\(tokenizerDirectory)/tokenizer.json")

    func temporaryDirectory() throws -> String {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("glmtrain-sft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    /// A model directory whose tokenizer_config.json carries the fixture Jinja template `name`.
    func modelDirectory(template name: String) throws -> String {
        let dir = try temporaryDirectory()
        try FileManager.default.copyItem(atPath: "\(Self.tokenizerDirectory)/tokenizer.json", toPath: "\(dir)/tokenizer.json")
        let jinja = try String(contentsOfFile: "\(Self.templates)/\(name).jinja", encoding: .utf8)
        let config = try JSONSerialization.data(withJSONObject: ["chat_template": jinja, "eos_token": "<|endoftext|>"])
        try config.write(to: URL(fileURLWithPath: "\(dir)/tokenizer_config.json"))
        return dir
    }

    /// The fixture lines of `template` without a generation prompt, as text, with their ids, mask and whether they
    /// end in an assistant turn.
    static func fixtureCases(_ template: String) throws -> [(text: String, ids: [Int32], mask: [Bool], endsInAssistant: Bool, toolCall: Bool)] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(tokenizerDirectory)/chat_template_cases.jsonl"))
        return try data.split(separator: 0x0A).compactMap { raw in
            let text = String(decoding: raw, as: UTF8.self)
            let v = try JSONValue.parse(text)
            guard v["template"]?.stringValue == template, v["add_generation_prompt"] == .bool(false) else { return nil }
            let c = try ChatConversation(json: v)
            guard c.messages.contains(where: { $0.role == .assistant }) else { return nil }
            guard case .array(let ids)? = v["ids"] else { return nil }
            // (A conversation whose only assistant turn is empty has nothing to train on: an error, tested below.)
            guard v["assistant_mask"]!.stringValue!.contains("1") || v["ends_in_assistant"] == .bool(true) else { return nil }
            // (glm-4-9b-chat drops a tool call with empty arguments, so training refuses it: tested below.)
            if template == "glm-4-9b-chat" && c.messages.contains(where: { $0.role == .assistant && !$0.metadata.isEmpty && $0.content.isEmpty }) {
                return nil
            }
            return (text, ids.map { if case .integer(let d) = $0 { return Int32(d)! }; return -1 },
                    v["assistant_mask"]!.stringValue!.map { $0 == "1" }, v["ends_in_assistant"] == .bool(true),
                    c.messages.contains { $0.role == .assistant && !$0.metadata.isEmpty })
        }
    }

    /// Every fixture conversation with an assistant turn (tool definitions, tool calls, observations among them),
    /// written as an SFT file and loaded for a model directory with the glm-4-9b-chat or GLM-4-0414 template: the
    /// ids are the template's, and the loss mask is transformers' assistant mask (+ the end token of a final
    /// assistant turn), so it covers exactly the assistant text and tool calls (function name line and arguments).
    func testLossMaskIsTheTemplatesAssistantMaskWithToolCalls() throws {
        let end = Self.tokenizer.tokenID("<|endoftext|>")!
        for (name, expected) in [("glm-4-9b-chat", ChatTemplate.glm4), ("glm-4-0414", .glm4_0414)] {
            let model = try modelDirectory(template: name)
            let template = try ChatTemplate.resolve(override: nil, directory: model, overrideHint: "data.chat_template")
            XCTAssertEqual(template, expected)
            let cases = try Self.fixtureCases(name)
            XCTAssertGreaterThanOrEqual(cases.filter(\.toolCall).count, 3, "\(name): tool-call cases in the fixture")
            let file = "\(try temporaryDirectory())/sft.jsonl"
            try cases.map(\.text).joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
            let examples = try TokenizedDataset.sft(path: file, tokenizer: Self.tokenizer, template: template, vocabularySize: 4096)
            XCTAssertEqual(examples.count, cases.count)
            for (i, (x, c)) in zip(examples, cases).enumerated() {
                XCTAssertEqual(x.source, "\(file):\(i + 1)")
                XCTAssertEqual(x.ids, c.endsInAssistant ? c.ids + [end] : c.ids, "\(name) line \(i + 1)")
                XCTAssertEqual(x.lossMask, c.endsInAssistant ? c.mask + [true] : c.mask, "\(name) line \(i + 1)")
            }
        }
    }

    func testEndFinalTurnFalseLeavesTheLastReplyUnended() throws {
        let file = "\(try temporaryDirectory())/plain.jsonl"
        try (#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}"# + "\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let ended = try XCTUnwrap(TokenizedDataset.sft(path: file, tokenizer: Self.tokenizer, template: .glm4, vocabularySize: 4096).first)
        let open = try XCTUnwrap(TokenizedDataset.sft(path: file, tokenizer: Self.tokenizer, template: .glm4, vocabularySize: 4096,
                                                      endFinalTurn: false).first)
        XCTAssertEqual(Self.tokenizer.decode(zip(ended.ids, ended.lossMask!).filter(\.1).map(\.0)), "\nHello.<|endoftext|>")
        XCTAssertEqual(Self.tokenizer.decode(zip(open.ids, open.lossMask!).filter(\.1).map(\.0)), "\nHello.")
        XCTAssertEqual(Array(ended.ids.dropLast()), open.ids)
    }

    /// One tool-calling conversation, by hand: what the loss covers, decoded, for both templates.
    func testToolCallNameAndArgumentsAreTrainedAndToolDefinitionsAreNot() throws {
        let line = #"{"messages": [{"role": "user", "content": "Weather in Paris?"}, "#
            + #"{"role": "assistant", "metadata": "get_weather", "content": "{\"city\": \"Paris\"}"}, "#
            + #"{"role": "observation", "content": "{\"sky\": \"sunny\"}"}, {"role": "assistant", "content": "Sunny."}], "#
            + #""tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]}"#
        let file = "\(try temporaryDirectory())/tools.jsonl"
        try (line + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        for (template, sep) in [(ChatTemplate.glm4, "\n"), (.glm4_0414, " \n")] {
            let x = try XCTUnwrap(TokenizedDataset.sft(path: file, tokenizer: Self.tokenizer, template: template, vocabularySize: 4096).first)
            let trained = Self.tokenizer.decode(zip(x.ids, x.lossMask!).filter(\.1).map(\.0))
            XCTAssertEqual(trained, "get_weather\(sep){\"city\": \"Paris\"}<|observation|>\nSunny.<|endoftext|>", template.name)
            let all = Self.tokenizer.decode(x.ids)
            XCTAssertTrue(all.contains("## get_weather"), "the tool definitions are rendered: \(all)")
            // Tool schemas keep the order of the file ("type" before "properties").
            let schema = try XCTUnwrap(all.range(of: "\"type\": \"object\""))
            XCTAssertLessThan(schema.lowerBound, try XCTUnwrap(all.range(of: "\"properties\"")).lowerBound)
        }
    }

    func testBadChatLinesGiveOneLineErrorsNamingTheLine() throws {
        let dir = try temporaryDirectory()
        let ok = #"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#
        let cases: [(String, ChatTemplate, String)] = [
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "{\"x\": 1}"}, {"role": "observation", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
             .glm4, "messages[2] is an observation after messages[1], a tool call without a name"),
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "metadata": " ", "content": "{}"}]}"#,
             .glm4_0414, "messages[1].metadata is blank"),
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f"}}]}]}"#,
             .glm4, "messages[1] has \"tool_calls\""),
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "metadata": "f", "content": ""}, {"role": "observation", "content": "r"}, {"role": "assistant", "content": "a"}]}"#,
             .glm4, "tool call with empty arguments"),
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": [{"type": "function", "function": {"name": "f"}}]}"#,
             .glmEdge, "glm-edge"),
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "metadata": "f", "content": "{}"}]}"#,
             .glmEdge, "glm-edge"),
            (#"{"messages": [{"role": "function", "content": "q"}]}"#, .glm4, "messages[0].role must be one of"),
            (#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}, {"role": "user", "content": "r"}]}"#,
             .glm4, "renders no assistant tokens"),
            (#"{"messages": [{"role": "user", "content": "q"}], "tools": {"a": 1}}"#, .glm4, "\"tools\" must be a list"),
        ]
        for (i, (bad, template, expected)) in cases.enumerated() {
            let file = "\(dir)/bad\(i).jsonl"
            try (ok + "\n\n" + bad + "\n").write(toFile: file, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try TokenizedDataset.sft(path: file, tokenizer: Self.tokenizer, template: template, vocabularySize: 4096)) {
                let message = "\($0)"
                XCTAssertTrue(message.hasPrefix("\(file):3: "), message)
                XCTAssertTrue(message.contains(expected), "missing '\(expected)' in: \(message)")
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
    }

    func testRecipeKeyChoosesOrRejectsTheTemplate() throws {
        let dir = try temporaryDirectory()
        func recipe(_ value: String) throws -> String {
            let path = "\(dir)/r.yaml"
            try """
            task: sft
            model: {path: \(dir)/model}
            data:
              train: \(dir)/train.jsonl
              chat_template: \(value)
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        XCTAssertEqual(try Recipe.load(path: try recipe("glm-z1-0414")).data.chatTemplate, .glmZ1_0414)
        XCTAssertEqual(try Recipe.load(path: try recipe("glm-edge")).data.chatTemplate, .glmEdge)
        XCTAssertNil(try Recipe.load(path: try recipe("auto")).data.chatTemplate)
        let path = try recipe("glm4-0414")
        XCTAssertThrowsError(try Recipe.load(path: path)) {
            let message = "\($0)"
            XCTAssertTrue(message.hasPrefix("\(path):5: data.chat_template: unknown chat template 'glm4-0414' (did you mean 'glm-4-0414'?)"), message)
            XCTAssertTrue(message.contains("glm-4-9b-chat, glm-4-9b-chat-hf, glm-4-0414, glm-z1-0414, glm-edge, glm-4.5, glm-4.5-nothink, auto"), message)
        }
        XCTAssertThrowsError(try Recipe.load(path: try recipe("glm-4-0414"), overrides: ["data.chat_templte=glm-edge"])) {
            XCTAssertTrue("\($0)".contains("did you mean 'chat_template'"), "\($0)")
        }
    }
}
