// ChatTemplate: rendering and ids against transformers' apply_chat_template with glm-4-9b-chat's template
// (fixtures from Scripts/make_tokenizer_fixtures.py), and the SFT assistant mask on hand-checked conversations.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class ChatTemplateTests: XCTestCase {
    let tok = TokenizerFixtures.tokenizer

    func testRenderAndIdsMatchTransformers() throws {
        let cases = try TokenizerFixtures.lines("chat_cases.jsonl", as: TokenizerFixtures.ChatCase.self)
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        for c in cases {
            let msgs = c.messages, gen = c.add_generation_prompt
            let text = try ChatTemplate.glm4.render(msgs, addGenerationPrompt: gen)
            XCTAssertEqual(text, c.text)
            XCTAssertEqual(tok.encode(text), c.ids)
            // Turn by turn gives the same ids; a final assistant turn is closed with <|endoftext|>.
            let t = try ChatTemplate.glm4.tokenize(msgs, tokenizer: tok, addGenerationPrompt: gen)
            XCTAssertEqual(t.ids.count, t.assistantMask.count)
            let closes = !gen && msgs.last(where: { !$0.content.isEmpty })?.role == .assistant
            XCTAssertEqual(closes ? Array(t.ids.dropLast()) : t.ids, c.ids, "\(msgs)")
            if closes { XCTAssertEqual(t.ids.last, tok.tokenID("<|endoftext|>")); XCTAssertEqual(t.assistantMask.last, true) }
            let open = try ChatTemplate.glm4.tokenize(msgs, tokenizer: tok, addGenerationPrompt: gen, endFinalAssistantTurn: false)
            XCTAssertEqual(open.ids, c.ids)
        }
    }

    func testRenderedExampleFromLlamaCpp() throws {
        let msgs = [ChatMessage(role: .system, content: "You are a helpful assistant"), ChatMessage(role: .user, content: "Hello"),
                    ChatMessage(role: .assistant, content: "Hi there"), ChatMessage(role: .user, content: "Who are you"),
                    ChatMessage(role: .assistant, content: "   I am an assistant   "), ChatMessage(role: .user, content: "Another question")]
        XCTAssertEqual(try ChatTemplate.glm4.render(msgs, addGenerationPrompt: true),
                       "[gMASK]<sop><|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\nHi there<|user|>\nWho are you<|assistant|>\n   I am an assistant   <|user|>\nAnother question<|assistant|>")
    }

    func testAssistantMaskOnAHandCheckedConversation() throws {
        let msgs = [ChatMessage(role: .user, content: "Hi"), ChatMessage(role: .assistant, content: "Hello!"),
                    ChatMessage(role: .user, content: "Weather?"),
                    ChatMessage(role: .assistant, content: "{\"city\": \"Paris\"}", metadata: "get_weather"),
                    ChatMessage(role: .observation, content: "sunny"), ChatMessage(role: .assistant, content: "It is sunny.")]
        let t = try ChatTemplate.glm4.tokenize(msgs, tokenizer: tok)
        let id = { (s: String) in self.tok.tokenID(s)! }
        let e = { (s: String) in self.tok.encode(s) }
        var ids: [Int32] = [], mask: [Bool] = []
        func add(_ x: [Int32], _ m: Bool) { ids += x; mask += Array(repeating: m, count: x.count) }
        add([id("[gMASK]"), id("<sop>"), id("<|user|>")], false)
        add(e("\nHi"), false)
        add([id("<|assistant|>")], false)
        add(e("\nHello!"), true)
        add([id("<|user|>")], true)                        // ends the assistant turn: the model must emit it
        add(e("\nWeather?"), false)
        add([id("<|assistant|>")], false)
        add(e("get_weather\n{\"city\": \"Paris\"}"), true)   // metadata (the tool name) is generated too
        add([id("<|observation|>")], true)
        add(e("\nsunny"), false)
        add([id("<|assistant|>")], false)
        add(e("\nIt is sunny."), true)
        add([id("<|endoftext|>")], true)
        XCTAssertEqual(t.ids, ids)
        XCTAssertEqual(t.assistantMask, mask)
        let trained = zip(t.ids, t.assistantMask).filter(\.1).map(\.0)
        XCTAssertEqual(tok.decode(trained),
                       "\nHello!<|user|>get_weather\n{\"city\": \"Paris\"}<|observation|>\nIt is sunny.<|endoftext|>")
    }

    func testGenerationPromptAndSkippedMessages() throws {
        let msgs = [ChatMessage(role: .system, content: ""), ChatMessage(role: .user, content: "Q"),
                    ChatMessage(role: .assistant, content: "")]
        XCTAssertEqual(try ChatTemplate.glm4.render(msgs, addGenerationPrompt: true), "[gMASK]<sop><|user|>\nQ<|assistant|>")
        let t = try ChatTemplate.glm4.tokenize(msgs, tokenizer: tok, addGenerationPrompt: true)
        XCTAssertEqual(t.ids.last, tok.tokenID("<|assistant|>"))
        XCTAssertFalse(t.assistantMask.contains(true), "empty messages are left out, so nothing is trained")
        // After a final assistant turn, the generation prompt's role token ends that turn.
        let answered = [ChatMessage(role: .user, content: "Q"), ChatMessage(role: .assistant, content: "A")]
        let g = try ChatTemplate.glm4.tokenize(answered, tokenizer: tok, addGenerationPrompt: true)
        XCTAssertEqual(g.ids.last, tok.tokenID("<|assistant|>"))
        XCTAssertEqual(g.assistantMask.last, true)
    }

    func testChatMessageJSONAndMissingRoleTokens() throws {
        let json = #"[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "metadata": "f"}]"#
        let msgs = try JSONDecoder().decode([ChatMessage].self, from: Data(json.utf8))
        XCTAssertEqual(msgs, [ChatMessage(role: .user, content: "hi"), ChatMessage(role: .assistant, content: "x", metadata: "f")])
        XCTAssertThrowsError(try JSONDecoder().decode([ChatMessage].self, from: Data(#"[{"role": "function", "content": "x"}]"#.utf8)))
        // "tool" (GLM-4.5's and OpenAI's name) is an observation.
        XCTAssertEqual(try JSONDecoder().decode([ChatMessage].self, from: Data(#"[{"role": "tool", "content": "x"}]"#.utf8)),
                       [ChatMessage(role: .observation, content: "x")])

        // A tokenizer without GLM-4's role tokens cannot tokenize chats.
        let plain = try GLMTokenizer.load(tiktokenRanks: "\(TokenizerFixtures.directory)/tokenizer.model",
                                          addedTokens: [GLMAddedToken(id: 2000, content: "<|endoftext|>")])
        XCTAssertThrowsError(try ChatTemplate.glm4.tokenize(msgs, tokenizer: plain)) { error in
            XCTAssertTrue("\(error)".contains("<|user|>"), "\(error)")
        }
    }
}
