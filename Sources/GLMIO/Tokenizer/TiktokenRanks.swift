// Reads glm-4-9b-chat's legacy tokenizer: a tiktoken rank file (`tokenizer.model`, lines "base64(bytes) rank")
// plus added tokens from tokenizer_config.json; BPE merges the adjacent pair whose concatenation ranks lowest.
import Foundation
import GLMCore

extension GLMTokenizer {
    /// The bound on the sum of squared token lengths of a rank file (see `load(tiktokenRanks:)`).
    static let maxSplitWork = 1 << 30

    /// Loads a tiktoken rank file. `addedTokens` nil means GLM-4's special tokens numbered from the number of
    /// ranks (as glm-4-9b-chat's `ChatGLM4Tokenizer` does). `addSpecialTokens` then prepends `[gMASK]` `<sop>`.
    public static func load(tiktokenRanks path: String, addedTokens: [GLMAddedToken]? = nil) throws -> GLMTokenizer {
        let data = try FileInput.read(path, limit: FileLimits.maxConfigBytes)
        var ranks: [[UInt8]: Int32] = [:]
        var lineNumber = 0
        var maxRank: Int32 = -1
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            while start < bytes.count {
                var end = start
                while end < bytes.count && bytes[end] != 0x0A { end += 1 }
                lineNumber += 1
                var lineEnd = end
                if lineEnd > start && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                if lineEnd > start {
                    let line = UnsafeBufferPointer(rebasing: bytes[start..<lineEnd])
                    guard let space = line.firstIndex(of: 0x20),
                          let token = Data(base64Encoded: Data(UnsafeBufferPointer(rebasing: line[..<space]))),
                          let rankText = String(bytes: UnsafeBufferPointer(rebasing: line[(space + 1)...]), encoding: .ascii),
                          let rank = Int32(rankText), rank >= 0, Int(rank) < idLimit, !token.isEmpty else {
                        throw GLMError("\(path): line \(lineNumber) is not \"base64(token bytes) rank\"; expected a tiktoken rank file (SentencePiece tokenizer.model files of ChatGLM2/3 are not supported)")
                    }
                    guard ranks.updateValue(rank, forKey: [UInt8](token)) == nil else {
                        throw GLMError("\(path): line \(lineNumber) repeats a token already ranked")
                    }
                    maxRank = max(maxRank, rank)
                }
                start = end + 1
            }
        }
        guard !ranks.isEmpty else { throw GLMError("\(path): empty; expected a tiktoken rank file") }
        // Listing a token's splits below looks up every prefix and suffix: work grows with the square of its
        // length. Real rank files (glm-4-9b-chat: 151,329 tokens of at most a few hundred bytes) stay far below
        // this bound; a file of very long tokens would take hours.
        var splitWork = 0
        for token in ranks.keys {
            splitWork += token.count * token.count
            guard splitWork <= maxSplitWork else {
                throw GLMError("\(path): tokens too long for a tiktoken rank file (the sum of squared token lengths exceeds \(maxSplitWork); a \(token.count)-byte token is ranked)")
            }
        }

        // tiktoken merges any adjacent pair whose concatenation is a rank, at that rank: list every split of
        // every token into two ranked parts.
        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(ranks.count * 2)
        for (token, rank) in ranks where token.count > 1 {
            for k in 1..<token.count {
                guard let a = ranks[Array(token[..<k])], let b = ranks[Array(token[k...])] else { continue }
                merges[BPEModel.key(a, b)] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: rank))
            }
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(ranks.count)
        for (token, rank) in ranks { vocabulary[ByteLevel.encode(token)] = rank }

        let added = addedTokens ?? glm4SpecialTokens.enumerated().map {
            GLMAddedToken(id: maxRank + 1 + Int32($0.offset), content: $0.element, special: true)
        }
        var template: [TemplatePiece]?
        if let gmask = added.first(where: { $0.content == "[gMASK]" }), let sop = added.first(where: { $0.content == "<sop>" }) {
            template = [.tokens([gmask.id, sop.id]), .sequence]
        }
        try checkIDs(vocabulary: vocabulary, addedTokens: added, source: path, vocabKey: "the rank file",
                     addedKey: { addedTokens == nil ? "GLM-4 special token \($0)" : "added token \($0)" })
        let bpe = BPEModel(vocab: ranks, merges: merges, ignoreMerges: true)
        return GLMTokenizer(source: path, bpe: bpe, vocabulary: vocabulary, addedTokens: added, template: template)
    }

    /// The added tokens listed in a tokenizer_config.json's `added_tokens_decoder` ({"151329": {"content": ...}}).
    public static func addedTokens(tokenizerConfig path: String) throws -> [GLMAddedToken] {
        let data = try FileInput.read(path, limit: FileLimits.maxConfigBytes)
        try NestingDepth.checkJSON(data, source: path)
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw GLMError("\(path): not a JSON object; expected a tokenizer_config.json")
        }
        guard let decoder = root["added_tokens_decoder"] else { return [] }
        guard let entries = decoder as? [String: Any] else {
            throw GLMError("\(path): added_tokens_decoder is not an object of id → token")
        }
        var out: [GLMAddedToken] = []
        for (key, value) in entries {
            guard let id = Int32(key), id >= 0, let t = value as? [String: Any], let content = t["content"] as? String,
                  !content.isEmpty else {
                throw GLMError("\(path): added_tokens_decoder[\"\(key)\"] needs an integer id key and a non-empty \"content\"")
            }
            out.append(GLMAddedToken(id: id, content: content, special: t["special"] as? Bool ?? false,
                                     singleWord: t["single_word"] as? Bool ?? false, lstrip: t["lstrip"] as? Bool ?? false,
                                     rstrip: t["rstrip"] as? Bool ?? false, normalized: t["normalized"] as? Bool ?? false))
        }
        return out.sorted { $0.id < $1.id }
    }
}
