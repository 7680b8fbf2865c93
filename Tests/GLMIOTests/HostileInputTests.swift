// Hostile files for the GLMIO readers (what the fuzzers of Tests/Fuzz found, and the known cases): each is a
// one-line GLMError naming the file and the key, tensor or line, never a trap, a hang or a huge allocation.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class HostileInputTests: XCTestCase {
    func temporary(_ name: String, _ data: Data) throws -> String {
        let dir = NSTemporaryDirectory() + "glmtrain-hostile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/\(name)"
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Asserts that `body` throws a one-line GLMError containing every string of `expected`.
    func assertError(_ expected: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("no error; expected one containing \(expected)", file: file, line: line)
        } catch let e as GLMError {
            for s in expected { XCTAssertTrue(e.message.contains(s), "'\(s)' not in: \(e.message)", file: file, line: line) }
            XCTAssertFalse(e.message.contains("\n"), "message spans lines: \(e.message)", file: file, line: line)
        } catch {
            XCTFail("threw \(type(of: error)) instead of a GLMError: \(error)", file: file, line: line)
        }
    }

    // MARK: tokenizer.json

    var tokenizerFixture: String { "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/tokenizer/tokenizer.json" }

    /// The fixture tokenizer.json with `edit` applied, written to a temporary file.
    func tokenizerFile(_ edit: (inout [String: Any]) -> Void) throws -> String {
        var root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tokenizerFixture))) as! [String: Any]
        edit(&root)
        return try temporary("tokenizer.json", JSONSerialization.data(withJSONObject: root))
    }

    func vocab(_ root: [String: Any]) -> [String: Any] { (root["model"] as! [String: Any])["vocab"] as! [String: Any] }
    func setVocab(_ root: inout [String: Any], _ v: [String: Any]) {
        var model = root["model"] as! [String: Any]
        model["vocab"] = v
        root["model"] = model
    }

    func testTokenizerVocabIDOfABillionIsAnErrorNamingTheToken() throws {
        let path = try tokenizerFile { root in
            var v = vocab(root)
            v["zz"] = 1_000_000_000
            setVocab(&root, v)
        }
        assertError([path, "model.vocab[\"zz\"]", "1000000000", "0..<16777216"]) { _ = try GLMTokenizer.load(tokenizerJSON: path) }
        let added = try tokenizerFile { root in
            var list = root["added_tokens"] as! [[String: Any]]
            list[0]["id"] = 4_000_000_000
            root["added_tokens"] = list
        }
        assertError([added, "added_tokens[0]", "0..<16777216"]) { _ = try GLMTokenizer.load(tokenizerJSON: added) }
    }

    func testTokenizerSparseIDsAreAnError() throws {
        let path = try tokenizerFile { root in
            var list = root["added_tokens"] as! [[String: Any]]
            list[0]["id"] = 10_000_000   // below 2^24, but a table of 10M entries for 2,014 tokens
            root["added_tokens"] = list
        }
        assertError([path, "ids go up to 10000000", "without large gaps"]) { _ = try GLMTokenizer.load(tokenizerJSON: path) }
    }

    func testTokenizerDuplicateIDsNameBothTokens() throws {
        let path = try tokenizerFile { root in
            var v = vocab(root)
            v["zz"] = v["a"]
            setVocab(&root, v)
        }
        assertError([path, "model.vocab gives id", "\"a\"", "\"zz\""]) { _ = try GLMTokenizer.load(tokenizerJSON: path) }

        // An added token taking a vocabulary entry's id.
        let taken = try tokenizerFile { root in
            var list = root["added_tokens"] as! [[String: Any]]
            list[1]["id"] = vocab(root)["a"]
            root["added_tokens"] = list
        }
        assertError([taken, "added_tokens[1]", "\"[MASK]\"", "which \"a\" already has"]) { _ = try GLMTokenizer.load(tokenizerJSON: taken) }

        // Two added tokens with one id.
        let twice = try tokenizerFile { root in
            var list = root["added_tokens"] as! [[String: Any]]
            list[1]["id"] = list[0]["id"]
            root["added_tokens"] = list
        }
        assertError([twice, "added_tokens[1]", "\"[MASK]\"", "\"<|endoftext|>\" already has"]) { _ = try GLMTokenizer.load(tokenizerJSON: twice) }

        // One added token with two ids.
        let twoIDs = try tokenizerFile { root in
            var list = root["added_tokens"] as! [[String: Any]]
            var copy = list[0]
            copy["id"] = 2100
            list.append(copy)
            root["added_tokens"] = list
        }
        assertError([twoIDs, "\"<|endoftext|>\" has id 2100", "already has id 2000"]) { _ = try GLMTokenizer.load(tokenizerJSON: twoIDs) }
    }

    func testAddedTokenRedeclaringItsVocabularyEntryLoads() throws {
        // Hugging Face files list special tokens both in model.vocab and in added_tokens, with the same id.
        let path = try tokenizerFile { root in
            var v = vocab(root)
            for t in root["added_tokens"] as! [[String: Any]] { v[t["content"] as! String] = t["id"] }
            setVocab(&root, v)
            var list = root["added_tokens"] as! [[String: Any]]
            list.append(list[0])   // and an added token listed twice
            root["added_tokens"] = list
        }
        let tok = try GLMTokenizer.load(tokenizerJSON: path)
        let reference = try GLMTokenizer.load(tokenizerJSON: tokenizerFixture)
        XCTAssertEqual(tok.vocabularySize, reference.vocabularySize)
        XCTAssertEqual(tok.encode("[gMASK]<sop>hello"), reference.encode("[gMASK]<sop>hello"))
        _ = try GLMTokenizer.load(tokenizerJSON: "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny/tokenizer.json")
    }

    func testTokenizerPostProcessorIDOutOfRangeIsAnError() throws {
        let path = try tokenizerFile { root in
            root["post_processor"] = ["type": "TemplateProcessing", "single": "[gMASK]:0 $A:0",
                                      "special_tokens": ["[gMASK]": ["id": "[gMASK]", "ids": [1e10], "tokens": ["[gMASK]"]]]]
        }
        assertError([path, "special_tokens[\"[gMASK]\"]", "0..<16777216"]) { _ = try GLMTokenizer.load(tokenizerJSON: path) }
    }

    func testDeeplyNestedTokenizerFilesAreErrorsNotStackOverflows() throws {
        let deep = Data(("{\"added_tokens\": " + String(repeating: "[", count: 200_000)).utf8)
        let path = try temporary("tokenizer.json", deep)
        assertError([path, "nested deeper than"]) { _ = try GLMTokenizer.load(tokenizerJSON: path) }
        let config = try temporary("tokenizer_config.json", deep)
        assertError([config, "nested deeper than"]) { _ = try GLMTokenizer.addedTokens(tokenizerConfig: config) }
    }

    func testChatJSONEscapeNeedsFourHexDigits() throws {
        XCTAssertEqual(try JSONValue.parse("\"\\u00e9\""), .string("é"))
        for text in ["\"\\u+0e9\"", "\"\\u-0e9\"", "\"\\u 0e9\"", "\"\\u00e\""] {
            assertError(["4 hex digits"]) { _ = try JSONValue.parse(text) }
        }
    }

    func testTiktokenRankBeyondTheIDLimitIsAnError() throws {
        let path = try temporary("tokenizer.model", Data("YQ== 0\nYg== 2147483640\n".utf8))
        assertError([path, "line 2"]) { _ = try GLMTokenizer.load(tiktokenRanks: path) }
        let twice = try temporary("tokenizer.model", Data("YQ== 0\nYg== 0\n".utf8))
        assertError([twice, "gives id 0 to both"]) { _ = try GLMTokenizer.load(tiktokenRanks: twice) }
    }

    func testTiktokenRankFileOfVeryLongTokensIsRefusedQuickly() throws {
        // One 64 KiB token: listing its splits would copy 2^32 bytes; the file is refused before that.
        let long = Data(repeating: 0x61, count: 1 << 16).base64EncodedString()
        let path = try temporary("tokenizer.model", Data("\(long) 0\nYQ== 1\n".utf8))
        assertError([path, "tokens too long", "65536-byte token"]) { _ = try GLMTokenizer.load(tiktokenRanks: path) }
        // Tokens of a few hundred bytes, as real rank files have, load.
        let normal = (0..<200).map { "\(Data(repeating: UInt8(0x41 + $0 % 26), count: 1 + $0).base64EncodedString()) \($0)" }
        let ok = try temporary("tokenizer.model", Data(normal.joined(separator: "\n").utf8))
        XCTAssertEqual(try GLMTokenizer.load(tiktokenRanks: ok).vocabularySize, 200 + GLMTokenizer.glm4SpecialTokens.count)
    }

    // MARK: adapter_config.json

    var adapterFixture: String { "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/peft/glm-qv/adapter_config.json" }

    /// The glm-qv fixture's adapter_config.json with `key` set to `value`.
    func adapterConfig(_ key: String, _ value: Any) throws -> Data {
        var o = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: adapterFixture))) as! [String: Any]
        o[key] = value
        return try JSONSerialization.data(withJSONObject: o)
    }

    func testAdapterAlphaMustBeAPositiveSaneNumber() throws {
        for value: Any in [0, -4, 1e30, "4"] {
            let data = try adapterConfig("lora_alpha", value)
            assertError(["adapter_config.json", "'lora_alpha'"]) { _ = try AdapterConfig.decode(data, source: "adapter_config.json") }
        }
        XCTAssertEqual(try AdapterConfig.decode(adapterConfig("lora_alpha", 16.5), source: "x").loraAlpha, 16.5)
    }

    func testAdapterRankMustBeAPositiveIntegerWithinBounds() throws {
        for value: Any in [0, -1, 1.5, 1e30, 4_294_967_296, true] {
            let data = try adapterConfig("r", value)
            assertError(["adapter_config.json", "'r'"]) { _ = try AdapterConfig.decode(data, source: "adapter_config.json") }
        }
        let data = try adapterConfig("layers_to_transform", -3)
        assertError(["'layers_to_transform'"]) { _ = try AdapterConfig.decode(data, source: "adapter_config.json") }
    }

    func testPeftOptionsThatChangeTheForwardPassAreRefused() throws {
        // an aLoRA adapter (peft 0.21: LoRA only from the invocation tokens on) must not be applied as plain LoRA
        for (key, value) in [("alora_invocation_tokens", [17, 33] as Any), ("layer_replication", [[0, 1], [0, 1]]),
                             ("trainable_token_indices", [5]), ("arrow_config", ["top_k": 2]), ("kasa_config", ["x": 1]),
                             ("monteclora_config", ["n": 1])] {
            let data = try adapterConfig(key, value)
            assertError(["adapter_config.json", "'\(key)'", "not supported"]) { _ = try AdapterConfig.decode(data, source: "adapter_config.json") }
        }
        // their empty values are what peft writes for plain LoRA
        for (key, value) in [("alora_invocation_tokens", NSNull() as Any), ("layer_replication", [Any]()), ("arrow_config", NSNull())] {
            XCTAssertNoThrow(try AdapterConfig.decode(adapterConfig(key, value), source: "x"), key)
        }
    }

    func testLayersToTransformFiltersAsPeftDoes() throws {
        // peft's check_target_module_exists: the layer filter applies to suffix matches of a target_modules list only;
        // a module named in full, or a regex, is adapted in whatever layer it is
        var c = AdapterConfig(r: 4, loraAlpha: 8, targetModules: .list(["q_proj", "model.layers.0.self_attn.v_proj"]), layersToTransform: [1])
        XCTAssertTrue(c.targets(module: "model.layers.1.self_attn.q_proj"))
        XCTAssertFalse(c.targets(module: "model.layers.0.self_attn.q_proj"))
        XCTAssertTrue(c.targets(module: "model.layers.0.self_attn.v_proj"))
        XCTAssertFalse(c.targets(module: "model.layers.1.self_attn.v_proj"))
        c.targetModules = .regex(#".*\.(q|k)_proj"#)
        XCTAssertTrue(c.targets(module: "model.layers.0.self_attn.q_proj"))
        XCTAssertTrue(c.targets(module: "model.layers.1.self_attn.k_proj"))
        XCTAssertFalse(c.targets(module: "model.layers.1.self_attn.v_proj"))
        c.targetModules = .allLinear
        XCTAssertFalse(c.targets(module: "model.layers.0.mlp.down_proj"))
        XCTAssertTrue(c.targets(module: "model.layers.1.mlp.down_proj"))
        c.excludeModules = .list(["model.layers.1.mlp.down_proj"])
        XCTAssertFalse(c.targets(module: "model.layers.1.mlp.down_proj"))
    }

    // MARK: what the fuzzers found

    /// Every regression input of `target` (Tests/Fuzz/Regressions) run through `read`: each must be an error.
    func assertRegressionsFail(_ target: String, _ read: (String) throws -> Void) throws {
        let dir = "\(Fixtures.repositoryRoot)/Tests/Fuzz/Regressions/\(target)"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for name in names.sorted() { assertError([name]) { try read("\(dir)/\(name)") } }
    }

    func testFuzzerRegressionInputsGiveErrors() throws {
        try assertRegressionsFail("gguf") { _ = try GGUFFile(path: $0) }
        try assertRegressionsFail("adapter-config") { path in
            _ = try AdapterConfig.decode(Data(contentsOf: URL(fileURLWithPath: path)), source: path)
        }
        try assertRegressionsFail("tokenizer") { _ = try GLMTokenizer.load(tokenizerJSON: $0) }
        try assertRegressionsFail("checkpoint") { _ = try TrainingCheckpoint.read(from: $0) }
    }

    // MARK: GGUF

    /// GGUF bytes written field by field (so that any field can be wrong).
    struct RawGGUF {
        var data = Data()
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); data.append(contentsOf: Array(s.utf8)) }
        mutating func header(tensors: UInt64, kv: UInt64) { u32(0x4655_4747); u32(3); u64(tensors); u64(kv) }
        mutating func tensor(_ name: String, _ dims: [UInt64], type: UInt32 = 0, offset: UInt64) {
            string(name); u32(UInt32(dims.count)); for d in dims { u64(d) }; u32(type); u64(offset)
        }
        mutating func pad(_ alignment: Int = 32) { while data.count % alignment != 0 { data.append(0) } }
    }

    /// A file with one key and the given tensors, then `dataBytes` zero bytes of data.
    func gguf(_ tensors: [(String, [UInt64], UInt32, UInt64)], dataBytes: Int) -> Data {
        var g = RawGGUF()
        g.header(tensors: UInt64(tensors.count), kv: 1)
        g.string("general.type"); g.u32(8); g.string("adapter")
        for t in tensors { g.tensor(t.0, t.1, type: t.2, offset: t.3) }
        g.pad()
        g.data.append(Data(count: dataBytes))
        return g.data
    }

    func testGGUFGoodFileOfRawFieldsReads() throws {
        let path = try temporary("ok.gguf", gguf([("a", [4, 2], 0, 0), ("b", [8], 1, 32)], dataBytes: 48))
        let file = try GGUFFile(path: path)
        XCTAssertEqual(try file.tensor("a").shape, [2, 4])
        XCTAssertEqual(try file.tensor("b").shape, [8])
    }

    func testGGUFUnknownTypeIsAnErrorNamingTheTensor() throws {
        let path = try temporary("t.gguf", gguf([("blk.0.w", [4], 77, 0)], dataBytes: 32))
        assertError([path, "tensor 'blk.0.w'", "unknown ggml type 77"]) { _ = try GGUFFile(path: path) }
        // A known quantized type is read as a header (inspect shows it), its data range checked by blocks.
        let q = try temporary("q.gguf", gguf([("q", [64], 8, 0)], dataBytes: 68))
        XCTAssertEqual(try GGUFFile(path: q).tensors.first?.typeID, 8)
        assertError([q, "tensor 'q'", "only F32, F16 and BF16"]) { _ = try GGUFFile(path: q).tensor("q") }
        let odd = try temporary("q.gguf", gguf([("q", [40], 8, 0)], dataBytes: 68))
        assertError([odd, "tensor 'q'", "multiple of its block of 32"]) { _ = try GGUFFile(path: odd) }
    }

    func testGGUFTensorDataOutsideTheFileOrOverlappingIsAnError() throws {
        let past = try temporary("t.gguf", gguf([("a", [4], 0, 0), ("b", [16], 0, 32)], dataBytes: 64))
        assertError([past, "tensor 'b'", "lies outside the file"]) { _ = try GGUFFile(path: past) }
        let overlap = try temporary("t.gguf", gguf([("a", [16], 0, 0), ("b", [4], 0, 32)], dataBytes: 64))
        assertError([overlap, "tensor 'b'", "inside tensor 'a'", "overlap"]) { _ = try GGUFFile(path: overlap) }
        let huge = try temporary("t.gguf", gguf([("a", [1 << 36, 1 << 36], 0, 0)], dataBytes: 64))
        assertError([huge, "tensor 'a'", "elements"]) { _ = try GGUFFile(path: huge) }
        let twice = try temporary("t.gguf", gguf([("a", [4], 0, 0), ("a", [4], 0, 32)], dataBytes: 64))
        assertError([twice, "tensor 'a' appears twice"]) { _ = try GGUFFile(path: twice) }
        let misaligned = try temporary("t.gguf", gguf([("a", [4], 0, 4)], dataBytes: 64))
        assertError([misaligned, "tensor 'a'", "alignment"]) { _ = try GGUFFile(path: misaligned) }
    }

    func testGGUFCountsAndLengthsThatDoNotFitTheFileAreErrors() throws {
        var g = RawGGUF()
        g.header(tensors: 1 << 19, kv: 0)
        let tensors = try temporary("t.gguf", g.data)
        assertError([tensors, "tensor count 524288", "does not fit"]) { _ = try GGUFFile(path: tensors) }

        g = RawGGUF(); g.header(tensors: 0, kv: UInt64(Int64.max))
        let kv = try temporary("t.gguf", g.data)
        assertError([kv, "metadata count"]) { _ = try GGUFFile(path: kv) }

        g = RawGGUF(); g.header(tensors: 0, kv: 1); g.u64(1 << 30); g.data.append(Data(count: 20))
        let key = try temporary("t.gguf", g.data)
        assertError([key, "length of the key of metadata entry 0", "does not fit"]) { _ = try GGUFFile(path: key) }

        g = RawGGUF(); g.header(tensors: 0, kv: 1); g.string("tokenizer.ggml.tokens"); g.u32(9); g.u32(8); g.u64(1 << 33)
        let array = try temporary("t.gguf", g.data)
        assertError([array, "array length of 'tokenizer.ggml.tokens'", "does not fit"]) { _ = try GGUFFile(path: array) }

        g = RawGGUF(); g.header(tensors: 0, kv: 1); g.string("k"); g.u32(8); g.u64(100); g.data.append(contentsOf: [0x61])
        let value = try temporary("t.gguf", g.data)
        assertError([value, "string value of 'k'", "does not fit"]) { _ = try GGUFFile(path: value) }

        g = RawGGUF(); g.header(tensors: 0, kv: 2); g.string("k"); g.u32(4); g.u32(1); g.string("k"); g.u32(4); g.u32(2)
        let duplicate = try temporary("t.gguf", g.data)
        assertError([duplicate, "metadata key 'k' appears twice"]) { _ = try GGUFFile(path: duplicate) }

        g = RawGGUF(); g.header(tensors: 0, kv: 1); g.string("general.alignment"); g.u32(10); g.u64(1 << 62)
        let alignment = try temporary("t.gguf", g.data)
        assertError([alignment, "general.alignment"]) { _ = try GGUFFile(path: alignment) }

        // Arrays of arrays nested without end (12 bytes a level) stop at a fixed depth, not at the stack's end.
        g = RawGGUF(); g.header(tensors: 0, kv: 1); g.string("deep"); g.u32(9)
        for _ in 0..<2000 { g.u32(9); g.u64(1) }
        let deep = try temporary("t.gguf", g.data)
        assertError([deep, "key 'deep' nests arrays deeper than"]) { _ = try GGUFFile(path: deep) }
    }

    // MARK: exports of a diverged adapter

    func nanAdapter() throws -> (PEFTAdapter, GLMConfig) {
        let dir = "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/peft/glm-qv"
        let config = try AdapterConfig.load(path: "\(dir)/adapter_config.json")
        let base = try ModelDirectory.loadConfig("\(Fixtures.repositoryRoot)/\(config.baseModelNameOrPath!)")
        var adapter = try PEFTAdapter.load(directory: dir, model: base)
        let name = adapter.tensors.keys.sorted()[1]
        let t = adapter.tensors[name]!.copy()
        t.pointer[3] = .nan
        adapter.tensors[name] = t
        return (adapter, base)
    }

    func testGGUFExportOfANaNWeightIsAnErrorNamingTheTensor() throws {
        let (adapter, base) = try nanAdapter()
        let name = adapter.tensors.keys.sorted()[1]
        let out = NSTemporaryDirectory() + "glmtrain-hostile-\(UUID().uuidString).gguf"
        assertError(["tensor '\(name)'", "non-finite", "element 3"]) {
            try GGUFLoRA.write(adapter: adapter, model: base, to: out, name: "nan-adapter")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        var inf = adapter
        let t = inf.tensors[name]!.copy()
        t.pointer[3] = .infinity
        inf.tensors[name] = t
        assertError(["tensor '\(name)'", "non-finite"]) { _ = try GGUFLoRA.writer(adapter: inf, model: base, name: "x") }
    }

    func testPEFTExportsOfANaNWeightAreErrorsNamingTheTensor() throws {
        let (adapter, base) = try nanAdapter()
        let name = adapter.tensors.keys.sorted()[1]
        let out = NSTemporaryDirectory() + "glmtrain-hostile-\(UUID().uuidString)"
        assertError([out, "tensor '\(name)'", "non-finite"]) { try adapter.save(to: out) }
        assertError([out, "tensor '\(name)'", "non-finite"]) { try adapter.saveVLLM(to: out, model: base) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    // MARK: JSON Lines

    func testHostileJSONLinesGiveOneLineErrorsNamingFileAndLine() throws {
        let cases: [(String, Data, [String])] = [
            ("huge", Data("{\"tokens\": [1, 2]}\n{\"tokens\": [1, 99999999999999999999999]}\n".utf8), [":2:", "\"tokens\"[1]", "32 bits"]),
            ("1e300", Data("{\"tokens\": [1e300]}\n".utf8), [":1:", "\"tokens\"[0]"]),
            ("fraction", Data("{\"tokens\": [3, 1.5]}\n".utf8), [":1:", "\"tokens\"[1]"]),
            ("bool", Data("{\"tokens\": [true]}\n".utf8), [":1:", "\"tokens\"[0]"]),
            ("string", Data("{\"tokens\": [\"7\"]}\n".utf8), [":1:", "\"tokens\"[0]"]),
        ]
        for (name, data, expected) in cases {
            let path = try temporary("\(name).jsonl", data)
            assertError([path] + expected) { for line in try JSONLines.read(path) { _ = try line.intArray("tokens") } }
        }
        let negative = try temporary("neg.jsonl", Data("{\"tokens\": [-1, 5]}\n".utf8))
        XCTAssertEqual(try JSONLines.read(negative)[0].intArray("tokens"), [-1, 5])   // the dataset rejects ids outside the vocabulary

        let deep = try temporary("deep.jsonl", Data(("{\"a\": 1}\n{\"x\": " + String(repeating: "[", count: 100_000) + "\n").utf8))
        assertError(["\(deep):2:", "nested deeper than"]) { _ = try JSONLines.read(deep) }
        let utf8 = try temporary("utf8.jsonl", Data([0x7B, 0x22, 0x74, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D, 0x0A]))
        assertError(["\(utf8):1:", "invalid UTF-8"]) { _ = try JSONLines.read(utf8) }
        let array = try temporary("array.jsonl", Data("[1, 2]\n".utf8))
        assertError(["\(array):1:", "not a JSON object"]) { _ = try JSONLines.read(array) }
    }
}
