// Preference lines rendered with the chat template: chosen and rejected share the prompt's tokens, the loss mask
// covers the response only; pair batches put chosen rows first; bad lines are one-line errors naming FILE:LINE,
// skipped pairs are warnings naming FILE:LINE.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMTraining
import TestSupport

final class PreferenceDataTests: XCTestCase {
    static let tokenizer: GLMTokenizer = try! GLMTokenizer.load(directory: "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny")

    func file(_ lines: [String]) throws -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("glmtrain-pref-\(UUID().uuidString).jsonl")
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func read(_ lines: [String], seqLen: Int = 256) throws -> PreferenceDataset {
        try PreferenceData.read(path: try file(lines), tokenizer: Self.tokenizer, template: .glm4, vocabularySize: 2048, seqLen: seqLen)
    }

    func assertError(_ lines: [String], _ parts: [String], line: UInt = #line) throws {
        let path = try file(lines)
        XCTAssertThrowsError(try PreferenceData.read(path: path, tokenizer: Self.tokenizer, template: .glm4, vocabularySize: 2048, seqLen: 256),
                             line: line) { e in
            let m = (e as? GLMError)?.message ?? "\(e)"
            XCTAssertFalse(m.contains("\n"), m, line: line)
            for p in parts + ["\(path):"] { XCTAssertTrue(m.contains(p), "missing '\(p)' in: \(m)", line: line) }
        }
    }

    func testPromptSharedAndLossOnTheResponseOnly() throws {
        let d = try read([#"{"prompt": "Refund for order 12345?", "chosen": "billing", "rejected": "This goes to the billing team."}"#])
        XCTAssertEqual(d.examples.count, 1)
        let e = d.examples[0]
        let prompt = try ChatTemplate.glm4.tokenize(ChatConversation(messages: [ChatMessage(role: .user, content: "Refund for order 12345?")]),
                                                    tokenizer: Self.tokenizer).ids
        XCTAssertEqual(e.promptTokens, prompt.count)
        for s in [e.chosen, e.rejected] {
            XCTAssertEqual(Array(s.ids.prefix(prompt.count)), prompt, "both sequences start with the prompt")
            XCTAssertFalse(s.lossMask!.prefix(prompt.count + 1).contains(true), "no loss on the prompt or the assistant role token")
        }
        let trained = zip(e.chosen.ids, e.chosen.lossMask!).filter(\.1).map(\.0)
        XCTAssertEqual(Self.tokenizer.decode(trained), "\nbilling<|endoftext|>", "the answer and the token that ends the turn (glm-4-9b-chat: <|endoftext|>)")
        let full = try ChatTemplate.glm4.tokenize(ChatConversation(messages: [ChatMessage(role: .user, content: "Refund for order 12345?"),
                                                                         ChatMessage(role: .assistant, content: "billing")]),
                                                  tokenizer: Self.tokenizer)
        XCTAssertEqual(e.chosen.ids, full.ids, "the chat template's rendering of prompt + response")
    }

    func testEndFinalTurnFalseIsTRLsConversationalTokenization() throws {
        // TRL's DPOTrainer renders prompt + response with the chat template and appends nothing after the reply;
        // data.end_final_turn: false gives exactly that (the default ends the turn with <|endoftext|>, trained).
        let line = #"{"prompt": "Refund for order 12345?", "chosen": "billing", "rejected": "This goes to the billing team."}"#
        let d = try PreferenceData.read(path: try file([line]), tokenizer: Self.tokenizer, template: .glm4, vocabularySize: 2048,
                                        seqLen: 256, endFinalTurn: false)
        let e = try XCTUnwrap(d.examples.first)
        let rendered = try ChatTemplate.glm4.render([ChatMessage(role: .user, content: "Refund for order 12345?"),
                                                     ChatMessage(role: .assistant, content: "billing")])
        XCTAssertEqual(e.chosen.ids, Self.tokenizer.encode(rendered))
        XCTAssertEqual(Self.tokenizer.decode(zip(e.chosen.ids, e.chosen.lossMask!).filter(\.1).map(\.0)), "\nbilling")
        let ended = try XCTUnwrap(try read([line]).examples.first)
        XCTAssertEqual(ended.chosen.ids, e.chosen.ids + [try XCTUnwrap(Self.tokenizer.tokenID("<|endoftext|>"))])
    }

    func testMessagesPromptsAndMessageListResponses() throws {
        let line = #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Weather?"}], "chosen": [{"role": "assistant", "metadata": "weather", "content": "{\"city\": \"Leeds\"}"}, {"role": "observation", "content": "rain"}, {"role": "assistant", "content": "Rain."}], "rejected": "No idea."}"#
        let e = try read([line]).examples[0]
        // The earlier assistant turn of the prompt is not trained on; the tool call, its result's reply are.
        XCTAssertFalse(e.chosen.lossMask!.prefix(e.promptTokens).contains(true))
        let trained = Self.tokenizer.decode(zip(e.chosen.ids, e.chosen.lossMask!).filter(\.1).map(\.0))
        XCTAssertTrue(trained.contains("weather") && trained.contains("Rain.") && !trained.contains("rain<"), trained)
        XCTAssertFalse(trained.contains("Hello"), trained)
    }

    func testPairBatchesPutChosenRowsFirstAndCarryStoredReferences() throws {
        let d = try read([#"{"prompt": "a", "chosen": "billing", "rejected": "tech"}"#,
                          #"{"prompt": "b c d", "chosen": "returns", "rejected": "The answer is returns, I think."}"#])
        let ref = PreferenceReference(chosen: d.examples.map { e in e.chosen.lossMask!.dropFirst().filter { $0 }.indices.map { Float($0) } },
                                      rejected: d.examples.map { e in e.rejected.lossMask!.dropFirst().filter { $0 }.indices.map { -Float($0) } })
        let source = try PreferenceBatchSource(examples: d.examples, pairs: 2, seqLen: 256, shuffle: false, seed: 0, padID: 2034, reference: ref)
        let b = try source.nextBatch()
        XCTAssertEqual(b.pairs, 2)
        XCTAssertEqual(b.batch, 4)
        for (row, seq) in [d.examples[0].chosen, d.examples[1].chosen, d.examples[0].rejected, d.examples[1].rejected].enumerated() {
            XCTAssertEqual(Array(b.ids[(row * b.length)..<(row * b.length + seq.ids.count)]), seq.ids, "row \(row)")
            let targets = (0..<b.length).filter { b.targets[row * b.length + $0] != ignoreLabel }
            XCTAssertEqual(targets.map { b.targets[row * b.length + $0] }, (1..<seq.ids.count).filter { seq.lossMask![$0] }.map { seq.ids[$0] })
            let stored = row < 2 ? ref.chosen[row] : ref.rejected[row - 2]
            XCTAssertEqual(targets.map { b.referenceLogProbs![row * b.length + $0] }, stored)
        }
        XCTAssertEqual(PreferenceObjective(PreferenceLoss()).weight(of: b), 2, "a micro-batch weighs its pairs")
    }

    func testBadLinesAreOneLineErrorsNamingFileAndLine() throws {
        let ok = #"{"prompt": "p", "chosen": "a", "rejected": "b"}"#
        try assertError([ok, #"{"prompt": "p", "chosen": "a"}"#], [":2:", "missing \"rejected\""])
        try assertError([#"{"prompt": "p", "rejected": "a"}"#], [":1:", "missing \"chosen\""])
        try assertError([ok, ok, #"{"prompt": "p", "chosen": "", "rejected": "b"}"#], [":3:", "\"chosen\" is an empty response"])
        try assertError([#"{"prompt": "p", "chosen": "a", "rejected": "   "}"#], [":1:", "\"rejected\" is an empty response"])
        try assertError([#"{"prompt": "p", "chosen": 5, "rejected": "b"}"#], [":1:", "\"chosen\" must be a string or a list", "a number"])
        try assertError([#"{"prompt": "p", "chosen": {"a": 1}, "rejected": "b"}"#], [":1:", "an object"])
        try assertError([#"{"prompt": 3, "chosen": "a", "rejected": "b"}"#], [":1:", "\"prompt\" must be a string"])
        try assertError([#"{"chosen": "a", "rejected": "b"}"#], [":1:", "expected \"prompt\""])
        try assertError([#"{"prompt": "p", "messages": [], "chosen": "a", "rejected": "b"}"#], [":1:", "not both"])
        try assertError([#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"}"#],
                        [":1:", "must end with a user or observation message"])
        try assertError([#"{"prompt": "p", "chosen": [{"role": "user", "content": "a"}], "rejected": "b"}"#], [":1:", "chosen[0].role is user"])
        try assertError([#"{"prompt": "p", "chosen": [{"role": "assistant"}], "rejected": "b"}"#], [":1:", "chosen[0].content must be a string"])
        try assertError([#"{"prompt": "p", "chosen": [], "rejected": "b"}"#], [":1:", "empty list"])
        try assertError([#"{"prompt": "p", "chosen": "a", "rejected": "b", "completion": "c"}"#], [":1:", "not \"completion\""])
        try assertError([ok, #"{"prompt": "p", "chosen": "a", "rejected": "b""#], [":2:"])
    }

    func testIdenticalPairsAndOverlongPromptsAreSkippedWithWarnings() throws {
        let long = String(repeating: "word ", count: 300)
        let d = try read([#"{"prompt": "p", "chosen": "a", "rejected": "b"}"#,
                          #"{"prompt": "p", "chosen": "same", "rejected": "same"}"#,
                          #"{"prompt": "\#(long)", "chosen": "a", "rejected": "b"}"#], seqLen: 64)
        XCTAssertEqual(d.examples.count, 1)
        XCTAssertEqual(d.skipped, 2)
        XCTAssertEqual(d.warnings.count, 2)
        XCTAssertTrue(d.warnings[0].contains(":2: chosen and rejected are the same"), d.warnings[0])
        XCTAssertTrue(d.warnings[1].contains(":3: the prompt") && d.warnings[1].contains("seq_len 64"), d.warnings[1])
        // A response running past seq_len is cut, not skipped: its first tokens still train.
        let cut = try read([#"{"prompt": "p", "chosen": "\#(long)", "rejected": "b"}"#], seqLen: 64)
        XCTAssertEqual(cut.examples.count, 1)
        let source = try PreferenceBatchSource(examples: cut.examples, pairs: 1, seqLen: 64, shuffle: false, seed: 0, padID: 2034)
        let b = try source.nextBatch()
        XCTAssertEqual(b.length, 64)
        XCTAssertEqual(source.truncatedCount, 1)
    }
}
