// Generation-based evaluation: greedy answers to the prompts of a task file, compared with the expected answers.
import Foundation
import GLMCore
import GLMIO
import GLMModel

/// How an answer is normalised before comparison.
public enum AnswerNormalizer: String, Sendable {
    /// Compared as generated.
    case exact
    /// Leading and trailing white space removed.
    case strip
    /// Stripped and lower-cased, inner white space collapsed.
    case lower
    /// The first number in the text (with sign and decimals), so "The answer is 42." matches "42".
    case number

    public func apply(_ text: String) -> String {
        switch self {
        case .exact: return text
        case .strip: return text.trimmingCharacters(in: .whitespacesAndNewlines)
        case .lower:
            return text.lowercased().split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        case .number:
            guard let r = text.range(of: #"-?\d+(\.\d+)?"#, options: .regularExpression) else {
                return text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            var s = String(text[r])
            if s.contains(".") { while s.hasSuffix("0") { s.removeLast() }; if s.hasSuffix(".") { s.removeLast() } }
            return s
        }
    }
}

/// Exact match / accuracy on a task file of `{"prompt" | "messages", "answer"}` lines (`"tools"` optional): each
/// prompt (rendered with the model's chat template `template` and its generation prompt when `chat`) is continued
/// greedily up to `maxNewTokens` or a stop token; the decoded continuation, normalised, must equal the normalised answer. Lines may carry a `"kind"`
/// string; the accuracy of each kind is then reported too, as `accuracy_<kind>`. Under GLM-4.5's template the answer is
/// what follows the continuation's last `</think>` (its reasoning is not compared).
public final class ExactMatchHook: EvaluationHook {
    public let name: String
    public let prompts: [[Int32]]
    public let answers: [String]
    /// Each line's `"kind"`, when the file has them.
    public let kinds: [String?]
    let maxNewTokens: Int
    let normalizer: AnswerNormalizer
    let tokenizer: GLMTokenizer
    let batchSize: Int
    /// GLM-4.5: compare what follows the last `</think>`.
    let dropsReasoning: Bool
    /// The last evaluation's generated texts (this process's share of the prompts, in order), for inspection.
    public private(set) var lastOutputs: [String] = []
    /// Data parallelism: each process answers its contiguous share of the prompts; the counts are added up.
    public var dataParallel: DataParallelPlacement?
    /// The tokens generation stops on; nil: the model config's eos_token_id.
    let stopTokens: Set<Int32>?
    public var runsOnEveryProcess: Bool { dataParallel != nil }

    public init(name: String = "exact_match", file: String, tokenizer: GLMTokenizer, chat: Bool, template: ChatTemplate = .glm4,
                maxNewTokens: Int, normalizer: AnswerNormalizer, limit: Int? = nil, batchSize: Int = 16,
                stopTokens: Set<Int32>? = nil) throws {
        self.name = name; self.tokenizer = tokenizer; self.maxNewTokens = maxNewTokens; self.stopTokens = stopTokens
        self.normalizer = normalizer; self.batchSize = batchSize
        dropsReasoning = chat && template.format == .glm45
        var lines = try TokenizedDataset.chatLines(file)
        if let limit { lines = Array(lines.prefix(limit)) }
        guard !lines.isEmpty else { throw GLMError("\(file): the task file has no lines") }
        var p: [[Int32]] = [], a: [String] = [], k: [String?] = []
        for chatLine in lines {
            let line = chatLine.line
            guard let answerValue = line.object["answer"] else { throw GLMError("\(line.location): missing \"answer\"") }
            let answer = (answerValue as? String) ?? (answerValue as? NSNumber).map { "\($0)" }
            guard let answer else { throw GLMError("\(line.location): \"answer\" must be a string or a number") }
            let conversation = try TokenizedDataset.conversation(chatLine, requireCompletion: false)
            if chat {
                try TokenizedDataset.checkConversation(conversation, line: chatLine, template: template)
                do { p.append(try template.tokenize(conversation, tokenizer: tokenizer, addGenerationPrompt: true).ids) }
                catch let e as GLMError { throw GLMError("\(line.location): \(e.message)") }
            } else {
                guard conversation.messages.count == 1, conversation.tools == nil else {
                    throw GLMError("\(line.location): chat: false needs a plain \"prompt\"")
                }
                p.append(tokenizer.encode(conversation.messages[0].content, addSpecialTokens: true))
            }
            guard !p.last!.isEmpty else { throw GLMError("\(line.location): the prompt tokenizes to no tokens; nothing to continue") }
            if let kind = line.object["kind"], !(kind is String) {
                throw GLMError("\(line.location): \"kind\" must be a string")
            }
            a.append(answer)
            k.append(line.object["kind"] as? String)
        }
        prompts = p; answers = a; kinds = k
    }

    /// What follows the last `</think>` of a generated text (all of it when it has none).
    public static func afterReasoning(_ text: String) -> String {
        guard let end = text.range(of: "</think>", options: .backwards) else { return text }
        return String(text[end.upperBound...])
    }

    public func evaluate(_ context: EvaluationContext) throws -> [String: Double] {
        let generator = TextGenerator(model: context.model)
        var correct = 0
        var byKind: [String: (correct: Int, count: Int)] = [:]
        var outputs: [String] = []
        let n = prompts.count
        let (lo, hi) = dataParallel.map { (n * $0.rank / $0.size, n * ($0.rank + 1) / $0.size) } ?? (0, n)
        Autograd.noGrad {
            for start in stride(from: lo, to: hi, by: batchSize) {
                let batch = Array(prompts[start..<min(start + batchSize, hi)])
                let results = generator.generate(prompts: batch, maxNewTokens: maxNewTokens, stopTokens: stopTokens)
                for (i, r) in results.enumerated() {
                    var text = tokenizer.decode(r.tokens, skipSpecialTokens: true)
                    outputs.append(text)
                    if dropsReasoning { text = ExactMatchHook.afterReasoning(text) }
                    let right = normalizer.apply(text) == normalizer.apply(answers[start + i])
                    if right { correct += 1 }
                    if let kind = kinds[start + i] {
                        let old = byKind[kind] ?? (0, 0)
                        byKind[kind] = (old.correct + (right ? 1 : 0), old.count + 1)
                    }
                }
            }
        }
        lastOutputs = outputs
        if let dp = dataParallel {  // every process has the same kinds (the same file): sum the tallies in one order
            let names = Set(kinds.compactMap { $0 }).sorted()
            let total = try dp.synchronizer.reduce([Double(correct)] + names.flatMap { name -> [Double] in
                let t = byKind[name] ?? (0, 0)
                return [Double(t.correct), Double(t.count)]
            }, .sum)
            correct = Int(total[0])
            byKind = [:]
            for (i, name) in names.enumerated() where total[2 + 2 * i] > 0 {
                byKind[name] = (Int(total[1 + 2 * i]), Int(total[2 + 2 * i]))
            }
        }
        var metrics = ["accuracy": Double(correct) / Double(prompts.count), "correct": Double(correct),
                       "count": Double(prompts.count)]
        for (kind, tally) in byKind { metrics["accuracy_\(kind)"] = Double(tally.correct) / Double(tally.count) }
        return metrics
    }

    public func provides(metric: String) -> Bool {
        ["accuracy", "correct", "count"].contains(metric) || (metric.hasPrefix("accuracy_") && metric.count > 9)
    }
}
