// GLMTokenizer against the Python tokenizers/transformers libraries (fixtures from Scripts/make_tokenizer_fixtures.py):
// encode and decode on a few thousand strings, the tiktoken rank file, special tokens, character classes, errors.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

/// The committed tokenizer fixtures.
enum TokenizerFixtures {
    static let directory = "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/tokenizer"

    /// The fixture tokenizer loaded from tokenizer.json (loaded once).
    static let tokenizer: GLMTokenizer = try! GLMTokenizer.load(tokenizerJSON: "\(directory)/tokenizer.json")

    /// The lines of a JSONL fixture file. (JSONDecoder, not JSONSerialization: on Linux the latter drops a raw
    /// U+FEFF inside strings.)
    static func lines<T: Decodable>(_ name: String, as type: T.Type) throws -> [T] {
        let text = try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(T.self, from: Data($0.utf8)) }
    }

    struct EncodeCase: Decodable {
        var text: String
        var ids: [Int32]
        var ids_special: [Int32]
        var ids_tiktoken: [Int32]?   // present only where tiktoken's semantics give other ids than the merges
    }
    struct DecodeCase: Decodable { var ids: [Int32]; var text: String; var text_skip: String }
    struct ChatCase: Decodable { var messages: [ChatMessage]; var add_generation_prompt: Bool; var text: String; var ids: [Int32] }

    static var encodeCases: [EncodeCase] { get throws { try lines("encode_cases.jsonl", as: EncodeCase.self) } }
}

final class TokenizerTests: XCTestCase {
    var dir: String!
    override func setUp() {
        dir = NSTemporaryDirectory() + "glmtrain-tok-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Checks `tok` against every encode case; returns the number of cases.
    @discardableResult
    func checkEncodeCases(_ tok: GLMTokenizer, tiktoken: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        let cases = try TokenizerFixtures.encodeCases
        var failures = 0
        for c in cases {
            let expected = tiktoken ? c.ids_tiktoken ?? c.ids : c.ids
            let got = tok.encode(c.text)
            if got != expected {
                failures += 1
                if failures <= 5 { XCTFail("encode(\(c.text.debugDescription)) = \(got); Python: \(expected)", file: file, line: line) }
            }
            let withSpecial = tok.encode(c.text, addSpecialTokens: true)
            let expectedSpecial = tiktoken && c.ids_tiktoken != nil ? Array(c.ids_special.prefix(2)) + expected : c.ids_special
            if withSpecial != expectedSpecial {
                failures += 1
                if failures <= 5 { XCTFail("encode(\(c.text.debugDescription), addSpecialTokens: true) = \(withSpecial)", file: file, line: line) }
            }
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(cases.count) fixture strings disagree with Python", file: file, line: line)
        return cases.count
    }

    func testEncodeMatchesPythonTokenizersOnEveryFixtureString() throws {
        let n = try checkEncodeCases(TokenizerFixtures.tokenizer)
        XCTAssertGreaterThan(n, 2500)
    }

    func testTiktokenRankFileGivesTheSameIds() throws {
        let added = try GLMTokenizer.addedTokens(tokenizerConfig: "\(TokenizerFixtures.directory)/tokenizer_config.json")
        XCTAssertEqual(added.count, 14)
        let tok = try GLMTokenizer.load(tiktokenRanks: "\(TokenizerFixtures.directory)/tokenizer.model", addedTokens: added)
        try checkEncodeCases(tok, tiktoken: true)
        XCTAssertEqual(tok.encode("hi", addSpecialTokens: true).prefix(2), [tok.tokenID("[gMASK]")!, tok.tokenID("<sop>")!])
        XCTAssertEqual(tok.vocabularySize, TokenizerFixtures.tokenizer.vocabularySize)
        // Without a config, GLM-4's 14 special tokens are numbered after the ranks, as in glm-4-9b-chat.
        let plain = try GLMTokenizer.load(tiktokenRanks: "\(TokenizerFixtures.directory)/tokenizer.model")
        XCTAssertEqual(plain.specialTokens, TokenizerFixtures.tokenizer.specialTokens)
        XCTAssertEqual(plain.encode("[gMASK]<sop><|user|>\nHi"), TokenizerFixtures.tokenizer.encode("[gMASK]<sop><|user|>\nHi"))
    }

    func testDecodeMatchesPythonIncludingCutCharacters() throws {
        let tok = TokenizerFixtures.tokenizer
        let cases = try TokenizerFixtures.lines("decode_cases.jsonl", as: TokenizerFixtures.DecodeCase.self)
        var failures = 0, replaced = 0
        for c in cases {
            let text = tok.decode(c.ids), skipped = tok.decode(c.ids, skipSpecialTokens: true)
            if text.contains("\u{FFFD}") { replaced += 1 }
            if text != c.text || skipped != c.text_skip {
                failures += 1
                if failures <= 5 { XCTFail("decode(\(c.ids)) = \(text.debugDescription) / \(skipped.debugDescription); Python: \(c.text.debugDescription) / \(c.text_skip.debugDescription)") }
            }
        }
        XCTAssertEqual(failures, 0, "\(failures) of \(cases.count) decode cases disagree with Python")
        XCTAssertGreaterThan(replaced, 100, "the fixture should cut many characters between tokens")
    }

    func testDecodeInvertsEncode() throws {
        let tok = TokenizerFixtures.tokenizer
        for c in try TokenizerFixtures.encodeCases { XCTAssertEqual(tok.decode(tok.encode(c.text)), c.text) }
        XCTAssertEqual(tok.decode([5_000_000, -1]), "", "ids outside the vocabulary are skipped")
    }

    func testSpecialTokens() throws {
        let tok = TokenizerFixtures.tokenizer
        XCTAssertEqual(tok.specialTokens.count, 14)
        XCTAssertEqual(tok.vocabularySize, 2014)
        let names = GLMTokenizer.glm4SpecialTokens
        for (i, name) in names.enumerated() {
            XCTAssertEqual(tok.tokenID(name), Int32(2000 + i), name)
            XCTAssertEqual(tok.token(Int32(2000 + i)), name)
            XCTAssertTrue(tok.isSpecial(Int32(2000 + i)))
        }
        let user = tok.tokenID("<|user|>")!, assistant = tok.tokenID("<|assistant|>")!
        let gmask = tok.tokenID("[gMASK]")!, sop = tok.tokenID("<sop>")!
        // Matched in raw text before pre-tokenization, leftmost first, longest at a position.
        XCTAssertEqual(tok.encode("<|user|>"), [user])
        XCTAssertEqual(tok.encode("[gMASK]<sop><|user|>"), [gmask, sop, user])
        XCTAssertEqual(tok.encode("a<|assistant|>\nb"), tok.encode("a") + [assistant] + tok.encode("\nb"))
        XCTAssertEqual(tok.encode("<|<|user|>|>"), tok.encode("<|") + [user] + tok.encode("|>"))
        XCTAssertFalse(tok.encode("<|USER|>").contains(user), "added tokens are case-sensitive")
        XCTAssertFalse(tok.encode("<|user").contains(user))
        // addSpecialTokens prepends [gMASK] <sop> (TemplateProcessing), also for empty text.
        XCTAssertEqual(tok.encode("", addSpecialTokens: true), [gmask, sop])
        XCTAssertEqual(tok.encode("hi", addSpecialTokens: true), [gmask, sop] + tok.encode("hi"))
        // Decoding keeps special tokens unless asked to skip them.
        XCTAssertEqual(tok.decode([gmask, sop] + tok.encode("你好")), "[gMASK]<sop>你好")
        XCTAssertEqual(tok.decode([gmask, sop] + tok.encode("你好"), skipSpecialTokens: true), "你好")
        // Byte-level spellings of vocabulary entries.
        XCTAssertEqual(tok.tokenID("Ġ"), tok.encode(" ").first)
        XCTAssertEqual(tok.token(tok.encode("\n")[0]), "Ċ")
    }

    func testMergesWrittenAsStringsGiveTheSameIds() throws {
        // Older tokenizer.json files write merges as "a b" strings instead of [a, b] pairs.
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(TokenizerFixtures.directory)/tokenizer.json"))
        var root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var model = root["model"] as! [String: Any]
        model["merges"] = (model["merges"] as! [[String]]).map { "\($0[0]) \($0[1])" }
        root["model"] = model
        let path = "\(dir!)/tokenizer.json"
        try JSONSerialization.data(withJSONObject: root).write(to: URL(fileURLWithPath: path))
        try checkEncodeCases(try GLMTokenizer.load(tokenizerJSON: path))
    }

    func testLoadDirectoryPrefersTokenizerJSONThenTheRankFile() throws {
        let fm = FileManager.default
        for name in ["tokenizer.model", "tokenizer_config.json"] {
            try fm.copyItem(atPath: "\(TokenizerFixtures.directory)/\(name)", toPath: "\(dir!)/\(name)")
        }
        let fromRanks = try GLMTokenizer.load(directory: dir)
        XCTAssertTrue(fromRanks.source.hasSuffix("tokenizer.model"))
        try fm.copyItem(atPath: "\(TokenizerFixtures.directory)/tokenizer.json", toPath: "\(dir!)/tokenizer.json")
        let fromJSON = try GLMTokenizer.load(directory: dir)
        XCTAssertTrue(fromJSON.source.hasSuffix("tokenizer.json"))
        let text = "GLM-4 说：It's 2024! 😀\n\n  def f(x):\n\treturn x"
        XCTAssertEqual(fromRanks.encode(text, addSpecialTokens: true), fromJSON.encode(text, addSpecialTokens: true))
        let empty = "\(dir!)/empty"
        try fm.createDirectory(atPath: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try GLMTokenizer.load(directory: empty)) { error in
            XCTAssertTrue("\(error)".contains(empty), "\(error)")
        }
    }

    func testPreTokenizerCharacterClassesMatchTheTokenizersLibrary() throws {
        // unicode_classes.json lists the scalars the Python library's regex engine puts in \p{L}, \p{N}, \s; probe
        // ours the same way the script probed Python's, for every scalar value.
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(TokenizerFixtures.directory)/unicode_classes.json"))
        let classes = try JSONSerialization.jsonObject(with: data) as! [String: [[Int]]]
        func members(_ key: String) -> [Bool] {
            var out = [Bool](repeating: false, count: 0x110000)
            for r in classes[key]! { for c in r[0]...r[1] { out[c] = true } }
            return out
        }
        let letters = members("L"), numbers = members("N"), spaces = members("S")
        var mismatches: [String] = []
        for v in 0..<0x110000 {
            guard let u = Unicode.Scalar(UInt32(v)) else { continue }
            let c = String(Character(u))
            let isN = GLMTokenizer.preTokenize("1" + c).count == 1
            let isL = GLMTokenizer.preTokenize("a" + c).count == 1
            let isS = c == "\n" || c == "\r" || (!isN && GLMTokenizer.preTokenize("!" + c).count == 2)
            if isL != letters[v] || isN != numbers[v] || isS != spaces[v] {
                mismatches.append(String(v, radix: 16))
            }
        }
        XCTAssertEqual(mismatches.count, 0, "scalars classified unlike Python: \(mismatches.prefix(20))")
    }

    func testPreTokenizerSplitsLikeTheRegex() {
        XCTAssertEqual(GLMTokenizer.preTokenize("Hello world's 'S 'ſ test\n\n  x  \t\n 12345 你好 😀!!\n"),
                       ["Hello", " world", "'s", " '", "S", " '", "ſ", " test", "\n\n", " ", " x", "  \t\n", " ",
                        "123", "45", " 你好", " 😀!!\n"])
        XCTAssertEqual(GLMTokenizer.preTokenize("they'LL we'Ve   end  "), ["they", "'LL", " we", "'Ve", "  ", " end", "  "])
        XCTAssertEqual(GLMTokenizer.preTokenize(""), [])
    }

    func testMalformedFilesThrowErrorsNamingTheFile() throws {
        let good = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: "\(TokenizerFixtures.directory)/tokenizer.json"))) as! [String: Any]
        func variant(_ edit: (inout [String: Any]) -> Void) throws -> Data {
            var root = good
            edit(&root)
            return try JSONSerialization.data(withJSONObject: root)
        }
        let cases: [(String, Data, String)] = [
            ("not JSON", Data("{\"model\": ".utf8), "not valid JSON"),
            ("a list", Data("[1, 2]".utf8), "not a JSON object"),
            ("normalizer", try variant { $0["normalizer"] = ["type": "NFC"] }, "normalizer NFC"),
            ("pre-tokenizer", try variant { $0["pre_tokenizer"] = ["type": "ByteLevel", "add_prefix_space": false] }, "pre_tokenizer ByteLevel"),
            ("regex", try variant {
                var pre = $0["pre_tokenizer"] as! [String: Any]
                var steps = pre["pretokenizers"] as! [[String: Any]]
                steps[0]["pattern"] = ["Regex": "\\s+"]
                pre["pretokenizers"] = steps
                $0["pre_tokenizer"] = pre
            }, "regex"),
            ("no model", try variant { $0["model"] = nil }, "no \"model\""),
            ("model type", try variant { var m = $0["model"] as! [String: Any]; m["type"] = "WordPiece"; $0["model"] = m }, "WordPiece"),
            ("bad merge", try variant {
                var m = $0["model"] as! [String: Any]
                m["merges"] = [["nosuchtoken", "x"]]
                $0["model"] = m
            }, "merges[0]"),
            ("bad id", try variant { var m = $0["model"] as! [String: Any]; m["vocab"] = ["a": "one"]; $0["model"] = m }, "model.vocab"),
            ("added token", try variant { $0["added_tokens"] = [["content": "<x>"]] }, "added_tokens[0]"),
            ("decoder", try variant { $0["decoder"] = NSNull() }, "decoder null"),
            ("post-processor", try variant { $0["post_processor"] = ["type": "BertProcessing"] }, "BertProcessing"),
        ]
        for (name, data, fragment) in cases {
            let path = "\(dir!)/\(name.replacingOccurrences(of: " ", with: "-")).json"
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try GLMTokenizer.load(tokenizerJSON: path), name) { error in
                let message = "\(error)"
                XCTAssertTrue(error is GLMError, name)
                XCTAssertTrue(message.hasPrefix(path + ":"), "\(name): \(message)")
                XCTAssertTrue(message.contains(fragment), "\(name): \(message)")
                XCTAssertFalse(message.contains("\n"), "\(name): one line")
            }
        }
        let missing = "\(dir!)/missing.json"
        XCTAssertThrowsError(try GLMTokenizer.load(tokenizerJSON: missing)) { XCTAssertTrue("\($0)".hasPrefix(missing)) }
        let ranks = "\(dir!)/tokenizer.model"
        try Data("IQ== 0\nnot-a-rank-line\n".utf8).write(to: URL(fileURLWithPath: ranks))
        XCTAssertThrowsError(try GLMTokenizer.load(tiktokenRanks: ranks)) { error in
            XCTAssertTrue("\(error)".hasPrefix("\(ranks): line 2"), "\(error)")
        }
    }

    func testLongChunksUseTheHeapMergeAndAgreeWithTheShortPath() {
        // Chunks longer than 64 bytes go through the heap merge; a chunk's ids must not depend on its neighbours.
        let tok = TokenizerFixtures.tokenizer
        let word = String(repeating: "人工智能学习", count: 20)
        let ids = tok.encode(word)
        XCTAssertEqual(tok.decode(ids), word)
        var pieces: [Int32] = []
        for _ in 0..<20 { pieces += tok.encode("人工智能学习") }
        XCTAssertEqual(tok.decode(pieces), word)
        XCTAssertLessThanOrEqual(ids.count, pieces.count)
    }

    func testConcurrentEncodingAgreesWithPython() throws {
        // One tokenizer shared by several threads (the chunk cache is shared and locked).
        let tok = try GLMTokenizer.load(tokenizerJSON: "\(TokenizerFixtures.directory)/tokenizer.json")
        let cases = try TokenizerFixtures.encodeCases
        let workers = 4
        let failures = UnsafeMutablePointer<Int>.allocate(capacity: workers)
        failures.initialize(repeating: 0, count: workers)
        defer { failures.deallocate() }
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for round in 0..<3 {
                for (i, c) in cases.enumerated() where (i + round) % workers == w {
                    if tok.encode(c.text) != c.ids { failures[w] += 1 }
                }
            }
        }
        XCTAssertEqual((0..<workers).map { failures[$0] }.reduce(0, +), 0)
    }

    func testEncodeSpeed() throws {
        // Cache-friendly real-looking text: the fixture strings (English, Chinese, emoji, code) shuffled to ~4 MB.
        let tok = try GLMTokenizer.load(tokenizerJSON: "\(TokenizerFixtures.directory)/tokenizer.json")
        var strings = try TokenizerFixtures.encodeCases.map(\.text)
        var text = ""
        var gen = SeededGenerator(seed: 3)
        while text.utf8.count < 4_000_000 { strings.shuffle(using: &gen); text += strings.joined(separator: "\n") }
        let start = Date()
        let ids = tok.encode(text)
        let seconds = Date().timeIntervalSince(start)
        let mb = Double(text.utf8.count) / 1e6
        print("tokenizer encode speed: \(String(format: "%.2f", mb)) MB in \(String(format: "%.3f", seconds)) s = "
              + "\(String(format: "%.1f", mb / seconds)) MB/s (\(ids.count) tokens, vocab 2000)")
        XCTAssertEqual(tok.decode(ids), text)
        XCTAssertLessThan(seconds, 20, "encoding \(mb) MB should take seconds")
    }

    func testFullSizeTokenizerFromEnvironment() throws {
        // Optional check with a real-size tokenizer: GLMTRAIN_TOKENIZER_DIR=DIR, where DIR holds tokenizer.json and/or
        // tokenizer.model, and optionally text.txt with ids.json (the Python ids of text.txt, add_special_tokens false).
        guard let dir = ProcessInfo.processInfo.environment["GLMTRAIN_TOKENIZER_DIR"] else {
            throw XCTSkip("set GLMTRAIN_TOKENIZER_DIR to check a full-size tokenizer")
        }
        let fm = FileManager.default
        var tokenizers: [(String, () throws -> GLMTokenizer)] = []
        if fm.fileExists(atPath: "\(dir)/tokenizer.json") { tokenizers.append(("tokenizer.json", { try GLMTokenizer.load(tokenizerJSON: "\(dir)/tokenizer.json") })) }
        if fm.fileExists(atPath: "\(dir)/tokenizer.model") { tokenizers.append(("tokenizer.model", { try GLMTokenizer.load(tiktokenRanks: "\(dir)/tokenizer.model") })) }
        for (name, load) in tokenizers {
            var start = Date()
            let tok = try load()
            print("\(name): loaded in \(String(format: "%.2f", Date().timeIntervalSince(start))) s, vocabulary \(tok.vocabularySize)")
            guard let text = try? String(contentsOfFile: "\(dir)/text.txt", encoding: .utf8) else { continue }
            start = Date()
            let ids = tok.encode(text)
            let seconds = Date().timeIntervalSince(start)
            print("\(name): encoded \(text.utf8.count) bytes in \(String(format: "%.3f", seconds)) s = "
                  + "\(String(format: "%.1f", Double(text.utf8.count) / 1e6 / seconds)) MB/s, \(ids.count) tokens")
            if let data = fm.contents(atPath: "\(dir)/ids.json") {
                let expected = try JSONDecoder().decode([Int32].self, from: data)
                XCTAssertEqual(ids.count, expected.count, name)
                XCTAssertTrue(ids == expected, "\(name): ids differ from ids.json, first at \(zip(ids, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1)")
            }
            XCTAssertEqual(tok.decode(ids), text, name)
        }
    }
}
