// Reads a Hugging Face tokenizer.json of GLM-4's form (as transformers' TikTokenConverter writes it): BPE model,
// Split + ByteLevel pre-tokenizer, ByteLevel decoder, added tokens, optional TemplateProcessing post-processor.
import Foundation
import GLMCore

extension GLMTokenizer {
    /// Loads `tokenizer.json`. Anything this tokenizer would not reproduce exactly (another normalizer,
    /// pre-tokenizer, model or decoder) is an error naming the file and what was expected.
    public static func load(tokenizerJSON path: String) throws -> GLMTokenizer {
        let data = try FileInput.read(path, limit: FileLimits.maxConfigBytes)
        try NestingDepth.checkJSON(data, source: path)   // Foundation's parser would overflow the stack first
        let root: [String: Any]
        do {
            guard let object = try JSONLines.jsonObject(data) as? [String: Any] else {
                throw GLMError("\(path): not a JSON object; expected a Hugging Face tokenizer.json")
            }
            root = object
        } catch let error as GLMError { throw error }
        catch { throw GLMError("\(path): not valid JSON; expected a Hugging Face tokenizer.json") }

        if let normalizer = root["normalizer"], !(normalizer is NSNull) {
            throw GLMError("\(path): normalizer \(typeName(normalizer)) is not supported; expected null (GLM-4 byte-level BPE)")
        }
        try checkPreTokenizer(root["pre_tokenizer"], path)
        if let decoder = root["decoder"] as? [String: Any], decoder["type"] as? String == "ByteLevel" {} else {
            throw GLMError("\(path): decoder \(typeName(root["decoder"])) is not supported; expected ByteLevel")
        }

        // Model: BPE with a byte-level vocabulary and merges.
        guard let model = root["model"] as? [String: Any] else { throw GLMError("\(path): no \"model\" object") }
        if let type = model["type"] as? String, type != "BPE" {
            throw GLMError("\(path): model type \(type) is not supported; expected BPE")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix", "dropout"] {
            if let v = model[key], !(v is NSNull) {
                throw GLMError("\(path): model.\(key) = \(v) is not supported; expected null (byte-level BPE)")
            }
        }
        guard let vocabObject = model["vocab"] as? [String: Any] else {
            throw GLMError("\(path): model.vocab is missing or not an object of token → id")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(vocabObject.count)
        var byteVocab: [[UInt8]: Int32] = [:]
        byteVocab.reserveCapacity(vocabObject.count)
        for (token, value) in vocabObject {
            guard let number = value as? NSNumber, !isBoolean(number), let id = Int(exactly: number.doubleValue), id >= 0, id < idLimit else {
                throw GLMError("\(path): model.vocab[\(shown(token))] is \(shownValue(value)); expected an integer id in 0..<\(idLimit)")
            }
            vocabulary[token] = Int32(id)
            if let bytes = ByteLevel.decode(token) { byteVocab[bytes] = Int32(id) }   // else unreachable by encoding
        }
        guard let mergeList = model["merges"] as? [Any] else {
            throw GLMError("\(path): model.merges is missing or not a list")
        }
        var merges: [UInt64: UInt64] = [:]
        merges.reserveCapacity(mergeList.count)
        for (rank, entry) in mergeList.enumerated() {
            let pair: [String]
            if let s = entry as? String {
                pair = s.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else if let p = entry as? [String] {
                pair = p
            } else {
                throw GLMError("\(path): model.merges[\(rank)] is \(entry); expected \"a b\" or [\"a\", \"b\"]")
            }
            guard pair.count == 2 else {
                throw GLMError("\(path): model.merges[\(rank)] \(entry) is not a pair of tokens")
            }
            guard let a = vocabulary[pair[0]], let b = vocabulary[pair[1]], let merged = vocabulary[pair[0] + pair[1]] else {
                throw GLMError("\(path): model.merges[\(rank)] (\(pair[0]) \(pair[1])) uses a token missing from model.vocab")
            }
            merges[BPEModel.key(a, b)] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
        }
        let ignoreMerges = model["ignore_merges"] as? Bool ?? false

        // Added tokens.
        var added: [GLMAddedToken] = []
        if let list = root["added_tokens"] as? [Any] {
            for (i, item) in list.enumerated() {
                guard let t = item as? [String: Any], let number = t["id"] as? NSNumber, !isBoolean(number),
                      let id = Int(exactly: number.doubleValue), id >= 0, id < idLimit,
                      let content = t["content"] as? String, !content.isEmpty else {
                    throw GLMError("\(path): added_tokens[\(i)] needs an integer \"id\" in 0..<\(idLimit) and a non-empty \"content\"")
                }
                added.append(GLMAddedToken(id: Int32(id), content: content, special: t["special"] as? Bool ?? false,
                                           singleWord: t["single_word"] as? Bool ?? false,
                                           lstrip: t["lstrip"] as? Bool ?? false, rstrip: t["rstrip"] as? Bool ?? false,
                                           normalized: t["normalized"] as? Bool ?? false))
            }
        } else if let v = root["added_tokens"], !(v is NSNull) {
            throw GLMError("\(path): added_tokens is not a list")
        }

        try checkIDs(vocabulary: vocabulary, addedTokens: added, source: path, vocabKey: "model.vocab", addedKey: { "added_tokens[\($0)]" })
        let template = try postProcessorTemplate(root["post_processor"], path)
        let bpe = BPEModel(vocab: byteVocab, merges: merges, ignoreMerges: ignoreMerges)
        return GLMTokenizer(source: path, bpe: bpe, vocabulary: vocabulary, addedTokens: added, template: template)
    }

    static func isBoolean(_ n: NSNumber) -> Bool { JSONLines.isBoolean(n) }

    /// A value for an error message, on one line and short.
    static func shownValue(_ value: Any) -> String { JSONLines.shown(value) }

    private static func typeName(_ value: Any?) -> String {
        guard let value, !(value is NSNull) else { return "null" }
        if let obj = value as? [String: Any], let t = obj["type"] as? String { return t }
        return "\(value)"
    }

    /// Accepts only Sequence[Split(GLM-4 regex, Isolated, invert false), ByteLevel(add_prefix_space false, use_regex false)].
    private static func checkPreTokenizer(_ value: Any?, _ path: String) throws {
        let expected = "expected Sequence[Split(GLM-4 regex, Isolated), ByteLevel(add_prefix_space false, use_regex false)]"
        guard let seq = value as? [String: Any], seq["type"] as? String == "Sequence",
              let steps = seq["pretokenizers"] as? [[String: Any]], steps.count == 2 else {
            throw GLMError("\(path): pre_tokenizer \(typeName(value)) is not supported; \(expected)")
        }
        let split = steps[0], byteLevel = steps[1]
        guard split["type"] as? String == "Split", let pattern = split["pattern"] as? [String: Any],
              let regex = pattern["Regex"] as? String else {
            throw GLMError("\(path): pre_tokenizer step 1 is \(typeName(split)), not a Split on a regex; \(expected)")
        }
        guard regex == GLM4PreTokenizer.pattern else {
            throw GLMError("\(path): pre_tokenizer Split regex \(regex) is not GLM-4's \(GLM4PreTokenizer.pattern)")
        }
        guard (split["behavior"] as? String ?? "Isolated") == "Isolated", (split["invert"] as? Bool ?? false) == false else {
            throw GLMError("\(path): pre_tokenizer Split must have behavior Isolated and invert false")
        }
        guard byteLevel["type"] as? String == "ByteLevel", (byteLevel["add_prefix_space"] as? Bool ?? true) == false,
              (byteLevel["use_regex"] as? Bool ?? true) == false else {
            throw GLMError("\(path): pre_tokenizer step 2 is not ByteLevel(add_prefix_space false, use_regex false); \(expected)")
        }
    }

    /// The `single` template of a TemplateProcessing post-processor (also inside a Sequence); ByteLevel
    /// post-processing only trims offsets and leaves ids alone.
    private static func postProcessorTemplate(_ value: Any?, _ path: String) throws -> [TemplatePiece]? {
        guard let value, !(value is NSNull) else { return nil }
        guard let obj = value as? [String: Any], let type = obj["type"] as? String else {
            throw GLMError("\(path): post_processor is not an object with a \"type\"")
        }
        switch type {
        case "ByteLevel": return nil
        case "Sequence":
            guard let list = obj["processors"] as? [Any] else { throw GLMError("\(path): post_processor Sequence has no processors list") }
            var found: [TemplatePiece]?
            for p in list {
                if let t = try postProcessorTemplate(p, path) {
                    guard found == nil else { throw GLMError("\(path): post_processor has more than one TemplateProcessing") }
                    found = t
                }
            }
            return found
        case "TemplateProcessing":
            var specials: [String: [Int32]] = [:]
            for (name, v) in obj["special_tokens"] as? [String: Any] ?? [:] {
                guard let entry = v as? [String: Any], let ids = entry["ids"] as? [Any] else {
                    throw GLMError("\(path): post_processor special_tokens[\(shown(name))] has no ids list")
                }
                specials[name] = try ids.map { v in
                    guard let n = v as? NSNumber, !isBoolean(n), let id = Int(exactly: n.doubleValue), id >= 0, id < idLimit else {
                        throw GLMError("\(path): post_processor special_tokens[\(shown(name))] has id \(shownValue(v)); expected an integer in 0..<\(idLimit)")
                    }
                    return Int32(id)
                }
            }
            var pieces: [TemplatePiece] = []
            func special(_ name: String) throws -> TemplatePiece {
                guard let ids = specials[name] else {
                    throw GLMError("\(path): post_processor template uses \(name), which is not in its special_tokens")
                }
                return .tokens(ids)
            }
            if let list = obj["single"] as? [[String: Any]] {
                for item in list {
                    if let s = item["SpecialToken"] as? [String: Any], let name = s["id"] as? String {
                        pieces.append(try special(name))
                    } else if item["Sequence"] != nil {
                        pieces.append(.sequence)
                    } else {
                        throw GLMError("\(path): post_processor single template item \(item) is neither SpecialToken nor Sequence")
                    }
                }
            } else if let text = obj["single"] as? String {   // "[gMASK]:0 <sop>:0 $A:0"
                for word in text.split(separator: " ") {
                    let name = word.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0]
                    if name.hasPrefix("$") { pieces.append(.sequence) } else { pieces.append(try special(String(name))) }
                }
            } else {
                throw GLMError("\(path): post_processor TemplateProcessing has no single template")
            }
            guard pieces.filter({ $0 == .sequence }).count == 1 else {
                throw GLMError("\(path): post_processor single template must contain the sequence exactly once")
            }
            return pieces
        default:
            throw GLMError("\(path): post_processor \(type) is not supported; expected TemplateProcessing, ByteLevel, Sequence or null")
        }
    }
}
