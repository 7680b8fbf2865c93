// The prompts of an RL run ({"prompt" | "messages", "answer"} lines), rendered with the model's chat template and
// its generation prompt, and the order a prompt stream takes through them (a seeded shuffle per epoch).
import Foundation
import GLMCore
import GLMIO
import GLMTraining

public struct RLPrompts: Sendable {
    public var tokens: [[Int32]]
    /// The last user message, as a reward program sees it.
    public var texts: [String]
    public var answers: [String?]
    /// "FILE:LINE" of each prompt, for messages.
    public var locations: [String] = []

    public init(file: String, tokenizer: GLMTokenizer, template: ChatTemplate, maxPromptTokens: Int, limit: Int? = nil) throws {
        var lines = try TokenizedDataset.chatLines(file)
        if let limit { lines = Array(lines.prefix(limit)) }
        guard !lines.isEmpty else { throw GLMError("\(file): no prompts") }
        tokens = []; texts = []; answers = []
        for chatLine in lines {
            let line = chatLine.line
            var answer: String?
            if let a = line.object["answer"] {
                guard let s = (a as? String) ?? (a as? NSNumber).map({ "\($0)" }) else {
                    throw GLMError("\(line.location): \"answer\" must be a string or a number")
                }
                answer = s
            }
            let conversation = try TokenizedDataset.conversation(chatLine, requireCompletion: false)
            try TokenizedDataset.checkConversation(conversation, line: chatLine, template: template)
            let ids: [Int32]
            do { ids = try template.tokenize(conversation, tokenizer: tokenizer, addGenerationPrompt: true).ids }
            catch let e as GLMError { throw GLMError("\(line.location): \(e.message)") }
            guard !ids.isEmpty else { throw GLMError("\(line.location): the prompt renders to no tokens; nothing to continue") }
            guard ids.count <= maxPromptTokens else {
                throw GLMError("\(line.location): the rendered prompt has \(ids.count) tokens; with rl.max_new_tokens the model's max_position_embeddings allows \(maxPromptTokens)")
            }
            tokens.append(ids)
            locations.append(line.location)
            texts.append(conversation.messages.last { $0.role == .user }?.content ?? conversation.messages.last?.content ?? "")
            answers.append(answer)
        }
    }

    public var count: Int { tokens.count }

    /// The prompt at stream position `p`: epoch p / count in a seeded shuffle of that epoch (or file order).
    public static func index(at p: Int, count: Int, shuffle: Bool, seed: UInt64) -> Int {
        let epoch = p / count, i = p % count
        guard shuffle else { return i }
        var order = Array(0..<count)
        var gen = SeededGenerator(seed: ExampleOrder.mix(seed, UInt64(epoch), 0x9E0))
        for j in stride(from: count - 1, to: 0, by: -1) {
            let k = Int(gen.next() % UInt64(j + 1))
            order.swapAt(j, k)
        }
        return order[i]
    }
}
