// The GLM-4 tokenizer: added tokens → GLM-4 pre-tokenizer → byte-level BPE → optional [gMASK]<sop> prefix;
// decoding maps ids back to bytes and UTF-8. Loaded from tokenizer.json or a tiktoken rank file.
import Foundation
import GLMCore
import GLMModel

/// A byte-level BPE tokenizer for GLM-4 models, giving the same ids as the Hugging Face `tokenizers` library.
///
/// Load it with ``load(directory:)`` (tokenizer.json, or the legacy tiktoken `tokenizer.model` of glm-4-9b-chat),
/// ``load(tokenizerJSON:)`` or ``load(tiktokenRanks:addedTokens:)``. Encoding is safe from several threads.
///
/// ```swift
/// let tok = try GLMTokenizer.load(directory: "Checkpoints/glm-tiny")
/// let ids = tok.encode("你好, world", addSpecialTokens: true)   // [gMASK] <sop> ...
/// let text = tok.decode(ids, skipSpecialTokens: true)
/// ```
public final class GLMTokenizer: @unchecked Sendable {
    /// Where the tokenizer was loaded from (for messages).
    public let source: String
    /// One more than the largest id (vocabulary plus added tokens).
    public let vocabularySize: Int
    /// The added tokens marked special, by content.
    public let specialTokens: [String: Int32]
    /// All added tokens, by id.
    public let addedTokens: [GLMAddedToken]

    /// What `addSpecialTokens` wraps around a sequence (tokenizer.json's TemplateProcessing `single`).
    enum TemplatePiece: Equatable { case tokens([Int32]); case sequence }

    let bpe: BPEModel
    let template: [TemplatePiece]?
    private let tokenToID: [String: Int32]
    private let idToToken: [Int32: String]
    private let decodeTable: [[UInt8]?]
    private let specialIDs: Set<Int32>
    private let rawMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher

    /// Assembles a tokenizer. `vocabulary` maps byte-level spellings (tokenizer.json form) to ids.
    init(source: String, bpe: BPEModel, vocabulary: [String: Int32], addedTokens: [GLMAddedToken],
         template: [TemplatePiece]?) {
        self.source = source
        self.bpe = bpe
        self.template = template
        self.addedTokens = addedTokens.sorted { $0.id < $1.id }
        var tokenToID = vocabulary
        var idToToken: [Int32: String] = [:]
        for (t, id) in vocabulary { idToToken[id] = t }
        for t in addedTokens { tokenToID[t.content] = t.id; idToToken[t.id] = t.content }
        self.tokenToID = tokenToID
        self.idToToken = idToToken
        let maxID = max(vocabulary.values.max() ?? -1, addedTokens.map(\.id).max() ?? -1)
        vocabularySize = Int(maxID) + 1
        var table = [[UInt8]?](repeating: nil, count: vocabularySize)
        for (t, id) in vocabulary { table[Int(id)] = ByteLevel.decode(t) ?? Array(t.utf8) }
        // The ByteLevel decoder reads an added token through the byte alphabet when it can, else as UTF-8.
        for t in addedTokens { table[Int(t.id)] = ByteLevel.decode(t.content) ?? Array(t.content.utf8) }
        decodeTable = table
        specialTokens = Dictionary(addedTokens.filter(\.special).map { ($0.content, $0.id) }, uniquingKeysWith: { a, _ in a })
        specialIDs = Set(addedTokens.filter(\.special).map(\.id))
        rawMatcher = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        normalizedMatcher = AddedTokenMatcher(addedTokens.filter { $0.normalized })
    }

    /// The ids of `text`. With `addSpecialTokens`, the post-processor's tokens are added (`[gMASK]` `<sop>` in
    /// front for GLM-4), as `tokenizer(text)` does in Python; chat templates write those tokens as text instead.
    public func encode(_ text: String, addSpecialTokens: Bool = false) -> [Int32] {
        var ids: [Int32] = []
        var text = text
        text.withUTF8 { encodeUTF8($0, into: &ids) }
        guard addSpecialTokens, let template else { return ids }
        var out: [Int32] = []
        out.reserveCapacity(ids.count + 4)
        for piece in template {
            switch piece {
            case .tokens(let t): out.append(contentsOf: t)
            case .sequence: out.append(contentsOf: ids)
            }
        }
        return out
    }

    /// Appends the ids of valid UTF-8 text to `ids` (no post-processing).
    func encodeUTF8(_ text: UnsafeBufferPointer<UInt8>, into ids: inout [Int32]) {
        ids.reserveCapacity(ids.count + text.count / 3 + 1)
        var pieces: [AddedTokenMatcher.Piece] = []
        rawMatcher.split(text, 0..<text.count, into: &pieces)
        if !normalizedMatcher.isEmpty {
            var refined: [AddedTokenMatcher.Piece] = []
            for p in pieces {
                if p.id != nil { refined.append(p) } else { normalizedMatcher.split(text, p.range, into: &refined) }
            }
            pieces = refined
        }
        var scratch = GLM4PreTokenizer.Scratch()
        for p in pieces {
            if let id = p.id { ids.append(id); continue }
            GLM4PreTokenizer.split(text, p.range, scratch: &scratch) { start, end in
                bpe.encode(UnsafeBufferPointer(rebasing: text[start..<end]), into: &ids)
            }
        }
    }

    /// The text of `ids`. Bytes that do not form valid UTF-8 (a character cut between tokens) become U+FFFD, as in
    /// Python; ids outside the vocabulary are skipped. `skipSpecialTokens` drops the special added tokens.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        decodeUTF8Lossy(bytes(ids, skipSpecialTokens: skipSpecialTokens))
    }

    /// The raw bytes of `ids` (for streaming: decode once a character is complete).
    public func bytes(_ ids: [Int32], skipSpecialTokens: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            guard id >= 0, Int(id) < decodeTable.count, let b = decodeTable[Int(id)] else { continue }
            if skipSpecialTokens && specialIDs.contains(id) { continue }
            bytes.append(contentsOf: b)
        }
        return bytes
    }

    /// The id of an added token (`"<|user|>"`) or of a vocabulary entry in its byte-level spelling (`"Ġthe"`).
    public func tokenID(_ token: String) -> Int32? { tokenToID[token] }

    /// Refuses a tokenizer that can produce ids a model with `vocabSize` rows cannot embed: its vocabulary and added
    /// tokens, and the ids its post-processor puts around every text (`[gMASK]` `<sop>`), which tokenizer.json
    /// gives on their own. `owner` names the model or recipe in the message.
    public func checkFits(vocabSize: Int, owner: String) throws {
        if vocabularySize > vocabSize {
            throw GLMError("\(owner): the tokenizer has ids up to \(vocabularySize - 1) but config.json's vocab_size is \(vocabSize)")
        }
        for case .tokens(let ids) in template ?? [] {
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= vocabSize }) {
                throw GLMError("\(source): post_processor special token id \(bad) is outside config.json's vocab_size \(vocabSize)")
            }
        }
    }

    /// The added token or byte-level vocabulary spelling of `id`.
    public func token(_ id: Int32) -> String? { idToToken[id] }

    /// Whether `id` is a special added token.
    public func isSpecial(_ id: Int32) -> Bool { specialIDs.contains(id) }

    /// The chunks GLM-4's pre-tokenizer splits `text` into (no added-token handling), like `pre_tokenize_str` of
    /// tokenizers' Split pre-tokenizer.
    public static func preTokenize(_ text: String) -> [String] {
        var text = text
        var out: [String] = []
        text.withUTF8 { buf in
            var scratch = GLM4PreTokenizer.Scratch()
            GLM4PreTokenizer.split(buf, 0..<buf.count, scratch: &scratch) { start, end in
                out.append(String(decoding: UnsafeBufferPointer(rebasing: buf[start..<end]), as: UTF8.self))
            }
        }
        return out
    }
}

extension GLMTokenizer {
    /// Token ids read from files are below this (2^24, `FileLimits.maxModelDimension`): ids index the decode table.
    public static let idLimit = FileLimits.maxModelDimension

    /// A token for an error message: JSON-quoted (so the message stays on one line), long ones cut.
    static func shown(_ token: String) -> String {
        JSONValue.quoted(token.count > 48 ? String(token.prefix(48)) + "…" : token)
    }

    /// Checks the ids of a vocabulary and its added tokens before a tokenizer is built from them: each below
    /// `idLimit`; numbered without large gaps (the id table stays proportional to the number of tokens); no id
    /// shared by two different tokens; no added token with an id other than the one the vocabulary or another
    /// added token gives the same text. An added token re-declaring a vocabulary entry with the same id is fine
    /// (Hugging Face files do that). `vocabKey` and `addedKey(i)` name the entries in errors.
    static func checkIDs(vocabulary: [String: Int32], addedTokens: [GLMAddedToken], source: String,
                         vocabKey: String, addedKey: (Int) -> String) throws {
        var tokenOf: [Int32: String] = [:]
        tokenOf.reserveCapacity(vocabulary.count + addedTokens.count)
        var maxID: Int32 = -1
        for (token, id) in vocabulary {
            guard id >= 0, Int(id) < idLimit else {
                throw GLMError("\(source): \(vocabKey) gives \(shown(token)) id \(id); expected an id in 0..<\(idLimit)")
            }
            if let other = tokenOf.updateValue(token, forKey: id) {
                let (a, b) = other < token ? (other, token) : (token, other)
                throw GLMError("\(source): \(vocabKey) gives id \(id) to both \(shown(a)) and \(shown(b)); expected one token per id")
            }
            maxID = max(maxID, id)
        }
        var addedID: [String: Int32] = [:]
        for (i, t) in addedTokens.enumerated() {
            guard t.id >= 0, Int(t.id) < idLimit else {
                throw GLMError("\(source): \(addedKey(i)) \(shown(t.content)) has id \(t.id); expected an id in 0..<\(idLimit)")
            }
            if let id = vocabulary[t.content] ?? addedID[t.content], id != t.id {
                throw GLMError("\(source): \(addedKey(i)) \(shown(t.content)) has id \(t.id), but the same token already has id \(id)")
            }
            if let other = tokenOf[t.id], other != t.content {
                throw GLMError("\(source): \(addedKey(i)) \(shown(t.content)) has id \(t.id), which \(shown(other)) already has; expected one token per id")
            }
            tokenOf[t.id] = t.content
            addedID[t.content] = t.id
            maxID = max(maxID, t.id)
        }
        let slack = 1 << 16
        guard Int(maxID) < 2 * tokenOf.count + slack else {
            throw GLMError("\(source): ids go up to \(maxID) for only \(tokenOf.count) tokens; expected ids numbered from 0 without large gaps")
        }
    }

    /// Loads the tokenizer of a model directory: `tokenizer.json` when present, else the tiktoken rank file
    /// `tokenizer.model` with the added tokens of `tokenizer_config.json` (`added_tokens_decoder`), or GLM-4's
    /// 14 special tokens numbered after the ranks when the config lists none.
    public static func load(directory: String) throws -> GLMTokenizer {
        let fm = FileManager.default
        let json = (directory as NSString).appendingPathComponent("tokenizer.json")
        if fm.fileExists(atPath: json) { return try load(tokenizerJSON: json) }
        let ranks = (directory as NSString).appendingPathComponent("tokenizer.model")
        guard fm.fileExists(atPath: ranks) else {
            throw GLMError("\(directory): no tokenizer.json or tokenizer.model (tiktoken rank file) in this directory")
        }
        let config = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        let added = fm.fileExists(atPath: config) ? try addedTokens(tokenizerConfig: config) : []
        return try load(tiktokenRanks: ranks, addedTokens: added.isEmpty ? nil : added)
    }

    /// GLM-4's special tokens in id order (glm-4-9b-chat numbers them from 151329, right after the ranks).
    public static let glm4SpecialTokens = [
        "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>", "<|system|>", "<|user|>", "<|assistant|>",
        "<|observation|>", "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>",
    ]
}
