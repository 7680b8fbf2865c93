// A model directory's chat template as transformers reads it: verbatim known templates silently, an edited copy of
// one with a warning (its edits are not rendered), a list without "default", a non-string or an unreadable
// chat_template.jinja as one-line errors.
import XCTest
import Foundation
import GLMIO
import TestSupport

final class ChatTemplateVerbatimTests: XCTestCase {
    var dir = ""
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "glmtrain-template-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    var fixtures: String { "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/chat_templates" }

    func directory(_ name: String, chatTemplate: Any?, jinjaFile: String? = nil) throws -> String {
        let d = "\(dir)/\(name)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        var o: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast"]
        if let chatTemplate { o["chat_template"] = chatTemplate }
        try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: "\(d)/tokenizer_config.json"))
        if let jinjaFile { try jinjaFile.write(toFile: "\(d)/chat_template.jinja", atomically: true, encoding: .utf8) }
        return d
    }

    func testEveryCheckedTemplateIsVerbatimAndAnEditedOneWarns() throws {
        for f in try FileManager.default.contentsOfDirectory(atPath: fixtures) where f.hasSuffix(".jinja") {
            let text = try String(contentsOfFile: "\(fixtures)/\(f)", encoding: .utf8)
            XCTAssertTrue(ChatTemplate.isVerbatim(jinja: text), f)
            XCTAssertTrue(ChatTemplate.isVerbatim(jinja: text + "\n\n"), f)
            var warnings: [String] = []
            _ = try ChatTemplate.forModel(directory: try directory(f, chatTemplate: text), warn: { warnings.append($0) })
            XCTAssertEqual(warnings, [], f)
        }
        let stock = try String(contentsOfFile: "\(fixtures)/glm-4-9b-chat.jinja", encoding: .utf8)
        let edited = stock.replacingOccurrences(of: "<|assistant|>", with: "<|assistant|>\nSure! Here you go:")
        XCTAssertNotEqual(edited, stock)
        var warnings: [String] = []
        let t = try ChatTemplate.forModel(directory: try directory("edited", chatTemplate: edited), warn: { warnings.append($0) })
        XCTAssertEqual(t.format, ChatTemplate.glm4.format)
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings.first?.contains("tokenizer_config.json: chat_template is not verbatim") == true, "\(warnings)")
    }

    func testMalformedChatTemplateEntriesAreErrors() throws {
        let stock = try String(contentsOfFile: "\(fixtures)/glm-4.5.jinja", encoding: .utf8)
        let cases: [(String, () throws -> String, String)] = [
            ("list", { try self.directory("list", chatTemplate: [["name": "tool_use", "template": stock]]) }, "without a \"default\" one (its names: tool_use)"),
            ("number", { try self.directory("number", chatTemplate: 5) }, "expected a string or a list"),
            ("jinja-dir", {
                let d = try self.directory("jinja-dir", chatTemplate: nil)
                try FileManager.default.createDirectory(atPath: "\(d)/chat_template.jinja", withIntermediateDirectories: true)
                return d
            }, "chat_template.jinja: is a directory; expected a file"),
            ("default-not-text", { try self.directory("default-not-text", chatTemplate: [["name": "default", "template": 5]]) },
             "the \"default\" entry's \"template\" is not a string"),
        ]
        for (name, make, message) in cases {
            let d = try make()
            XCTAssertThrowsError(try ChatTemplate.forModel(directory: d, warn: { _ in }), name) { e in
                XCTAssertTrue("\(e)".contains(message), "\(name): \(e)")
                XCTAssertFalse("\(e)".contains("\n"))
            }
        }
        // a list with a default is read as transformers reads it
        let d = try directory("named", chatTemplate: [["name": "default", "template": stock], ["name": "rag", "template": "x"]])
        XCTAssertEqual(try ChatTemplate.forModel(directory: d, warn: { XCTFail($0) }).format, ChatTemplate.glm45.format)
    }
}
