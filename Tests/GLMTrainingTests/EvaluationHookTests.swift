// Evaluation hooks: answer normalisation, exact match (with per-kind accuracy) on the bundled tiny GLM, the
// token-weighted held-out loss, and the external command hook's protocol and errors.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class EvaluationHookTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let tinyModel = (repository as NSString).appendingPathComponent("Checkpoints/glm-tiny")

    func temporaryDirectory() throws -> String {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("glmtrain-hooks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func context(_ model: GLMForCausalLM, tokenizer: GLMTokenizer?, runDirectory: String,
                 export: @escaping (String) throws -> Void = { _ in }) -> EvaluationContext {
        EvaluationContext(model: model, tokenizer: tokenizer, step: 7, runDirectory: runDirectory, exportModel: export)
    }

    func testAnswerNormalizers() {
        XCTAssertEqual(AnswerNormalizer.exact.apply(" 42\n"), " 42\n")
        XCTAssertEqual(AnswerNormalizer.strip.apply(" F3-D17 \n"), "F3-D17")
        XCTAssertEqual(AnswerNormalizer.lower.apply("  The  Shipping\tTeam "), "the shipping team")
        XCTAssertEqual(AnswerNormalizer.number.apply("The answer is -42."), "-42")
        XCTAssertEqual(AnswerNormalizer.number.apply("about 3.50 euros"), "3.5")
        XCTAssertEqual(AnswerNormalizer.number.apply("7.0"), "7")
        XCTAssertEqual(AnswerNormalizer.number.apply(" none "), "none")
    }

    /// Answers equal to the model's own greedy continuations count as right, others as wrong, per kind too.
    func testExactMatchCountsGreedyAnswersAndReportsEachKind() throws {
        let (_, model) = try ModelDirectory.load(Self.tinyModel)
        let tokenizer = try GLMTokenizer.load(directory: Self.tinyModel)
        let prompts = ["12+30=", "Q: What is the capital of France?\nA:", "Tom has 5 apples."]
        let generated = Autograd.noGrad {
            TextGenerator(model: model).generate(prompts: prompts.map { tokenizer.encode($0, addSpecialTokens: true) },
                                                 maxNewTokens: 6)
        }.map { tokenizer.decode($0.tokens, skipSpecialTokens: true) }
        XCTAssertFalse(generated[0].trimmingCharacters(in: .whitespaces).isEmpty)
        let dir = try temporaryDirectory()
        let file = (dir as NSString).appendingPathComponent("task.jsonl")
        let lines: [[String: Any]] = [
            ["prompt": prompts[0], "answer": "  " + generated[0] + " ", "kind": "a"],
            ["prompt": prompts[1], "answer": generated[1] + "!", "kind": "a"],
            ["prompt": prompts[2], "answer": generated[2], "kind": "b"],
        ]
        try lines.map { try JSONLines.encode($0) }.joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let hook = try ExactMatchHook(name: "task", file: file, tokenizer: tokenizer, chat: false, maxNewTokens: 6,
                                      normalizer: .strip, batchSize: 2)
        let m = try hook.evaluate(context(model, tokenizer: tokenizer, runDirectory: dir))
        XCTAssertEqual(m["correct"], 2)
        XCTAssertEqual(m["count"], 3)
        XCTAssertEqual(m["accuracy"]!, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(m["accuracy_a"], 0.5)
        XCTAssertEqual(m["accuracy_b"], 1.0)
        XCTAssertEqual(hook.lastOutputs, generated)
    }

    /// Under GLM-4.5's template the reasoning of a generation is not part of its answer.
    func testExactMatchDropsGLM45Reasoning() throws {
        XCTAssertEqual(ExactMatchHook.afterReasoning("\n<think>a</think>x</think>\n42"), "\n42")
        XCTAssertEqual(ExactMatchHook.afterReasoning("\n42"), "\n42")
        XCTAssertEqual(AnswerNormalizer.strip.apply(ExactMatchHook.afterReasoning("\n<think></think>\nLiam Byrne")), "Liam Byrne")
    }

    func testExactMatchTaskFileErrorsNameTheLine() throws {
        let tokenizer = try GLMTokenizer.load(directory: Self.tinyModel)
        let dir = try temporaryDirectory()
        let cases: [(String, String)] = [
            ("{\"prompt\": \"a\", \"answer\": \"b\"}\n{\"prompt\": \"c\"}\n", ":2: missing \"answer\""),
            ("{\"prompt\": \"a\", \"answer\": [1]}\n", ":1: \"answer\" must be a string or a number"),
            ("{\"prompt\": \"a\", \"answer\": \"b\", \"kind\": 3}\n", ":1: \"kind\" must be a string"),
            ("", "the task file has no lines"),
        ]
        for (i, (text, expected)) in cases.enumerated() {
            let file = (dir as NSString).appendingPathComponent("task\(i).jsonl")
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ExactMatchHook(file: file, tokenizer: tokenizer, chat: true, maxNewTokens: 4,
                                                    normalizer: .strip)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.contains("task\(i).jsonl") && message.contains(expected), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
    }

    /// Two batches with different numbers of scored tokens: the hook's loss is their token-weighted mean.
    func testHeldOutLossIsTheTokenWeightedMean() throws {
        let (_, model) = try ModelDirectory.load(Self.tinyModel)
        let docs: [[Int32]] = [[5, 9, 14, 200, 31, 7, 88, 2034], [41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51]]
        let objective = try CausalLMObjective(seqLen: 16, pad: 2034)
        let batches = docs.map { objective.batch(documents: [$0]) }
        let perBatch: [(Double, Int)] = Autograd.noGrad {
            batches.map { b in
                let loss = model.loss(ids: b.ids, targets: b.targets, batch: b.batch, length: b.length,
                                      positions: b.positions, blockPositions: b.blockPositions, mask: b.mask)
                return (Double(loss.pointer[0]), b.lossTokenCount)
            }
        }
        XCTAssertNotEqual(perBatch[0].1, perBatch[1].1)
        let expected = (perBatch[0].0 * Double(perBatch[0].1) + perBatch[1].0 * Double(perBatch[1].1))
            / Double(perBatch[0].1 + perBatch[1].1)
        let hook = HeldOutLossHook(batches: 2) { FixedBatchSource(batches) }
        let m = try hook.evaluate(context(model, tokenizer: nil, runDirectory: try temporaryDirectory()))
        XCTAssertEqual(m["loss"]!, expected, accuracy: 1e-9)
        XCTAssertEqual(m["perplexity"]!, Foundation.exp(expected), accuracy: 1e-6)
        XCTAssertEqual(m["tokens"], Double(perBatch[0].1 + perBatch[1].1))
    }

    func testCommandHookSendsStepAndModelAndReadsTheLastLine() throws {
        let (_, model) = try ModelDirectory.load(Self.tinyModel)
        let dir = try temporaryDirectory()
        let seen = (dir as NSString).appendingPathComponent("stdin.json")
        var exported: [String] = []
        let hook = CommandHook(name: "judge", command: ["sh", "-c", "cat > '\(seen)'; echo progress; echo '{\"score\": 0.25, \"n\": 3}'"])
        let m = try hook.evaluate(context(model, tokenizer: nil, runDirectory: dir, export: { exported.append($0) }))
        XCTAssertEqual(m, ["score": 0.25, "n": 3])
        XCTAssertEqual(exported, [(dir as NSString).appendingPathComponent("eval-model")])
        let input = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: seen))) as! [String: Any]
        XCTAssertEqual(input["step"] as? Int, 7)
        XCTAssertEqual(input["run_dir"] as? String, dir)
        XCTAssertEqual(input["model_dir"] as? String, exported.first)
    }

    func testCommandHookErrorsNameTheHook() throws {
        let (_, model) = try ModelDirectory.load(Self.tinyModel)
        let dir = try temporaryDirectory()
        let cases: [([String], String)] = [
            (["sh", "-c", "cat >/dev/null; exit 3"], "exited with status 3"),
            (["sh", "-c", "cat >/dev/null; kill -SEGV $$"], "was killed by signal 11"),
            (["sh", "-c", "cat >/dev/null; echo 'score: 1'"], "not a JSON object"),
            (["sh", "-c", "cat >/dev/null; echo '{\"score\": \"high\"}'"], "must be a number"),
        ]
        for (command, expected) in cases {
            XCTAssertThrowsError(try CommandHook(name: "judge", command: command)
                .evaluate(context(model, tokenizer: nil, runDirectory: dir))) { error in
                XCTAssertTrue("\(error)".contains("eval hook 'judge'") && "\(error)".contains(expected), "\(error)")
            }
        }
    }
}
