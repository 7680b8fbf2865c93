// peft's rank_pattern / alpha_pattern on a dense model (fixture glm4-patterns, made by peft): each module's rank and
// scale as peft picks them, the merge, and the vLLM and GGUF exports, which have one alpha (and vLLM one r) and so
// carry each module's scale in its B.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class AdapterModulePatternTests: XCTestCase {
    let dir = "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/peft/glm4-patterns"

    func load() throws -> (String, GLMConfig, PEFTAdapter) {
        let config = try AdapterConfig.load(path: "\(dir)/adapter_config.json")
        let baseDir = "\(Fixtures.repositoryRoot)/\(config.baseModelNameOrPath!)"
        let base = try ModelDirectory.loadConfig(baseDir)
        return (baseDir, base, try PEFTAdapter.load(directory: dir, model: base))
    }

    func testEachModuleTakesTheFirstMatchingPatternAsPeftDoes() throws {
        let (_, _, adapter) = try load()
        let c = adapter.config
        XCTAssertTrue(c.hasModulePatterns)
        // r 4, alpha 8; rank_pattern {layers.0.self_attn.v_proj: 6, model.layers.1.mlp.down_proj: 2, q_proj: 8};
        // alpha_pattern {o_proj: 3, v_proj: 20}
        let expected: [(String, Int, Double)] = [
            ("model.layers.0.self_attn.q_proj", 8, 1), ("model.layers.1.self_attn.q_proj", 8, 1),
            ("model.layers.0.self_attn.k_proj", 4, 2), ("model.layers.0.self_attn.v_proj", 6, 20.0 / 6),
            ("model.layers.1.self_attn.v_proj", 4, 5), ("model.layers.0.self_attn.o_proj", 4, 0.75),
            ("model.layers.0.mlp.down_proj", 4, 2), ("model.layers.1.mlp.down_proj", 2, 4), ("model.layers.1.mlp.gate_up_proj", 4, 2),
        ]
        for (module, rank, scale) in expected {
            XCTAssertEqual(c.rank(forModule: module), rank, module)
            XCTAssertEqual(adapter.matrices(module: module)!.a.shape[0], rank, "\(module): peft saved this rank")
            XCTAssertEqual(c.scale(forModule: module), scale, accuracy: 1e-12, module)
        }
        // A tensor of another rank than its pattern gives is refused, naming it.
        var bad = adapter
        bad.config.rankPattern["q_proj"] = .int(5)
        XCTAssertThrowsError(try bad.validate(against: try load().1, source: "x")) { e in
            XCTAssertTrue("\(e)".contains("its rank from r and rank_pattern is 5"), "\(e)")
        }
    }

    func testMergeUsesEachModulesScale() throws {
        let (baseDir, _, adapter) = try load()
        let weights = try ModelDirectory.loadWeights(baseDir)
        let merged = try adapter.merged(into: weights)
        for module in adapter.moduleNames {
            let (a, b) = adapter.matrices(module: module)!
            let w = weights[module + ".weight"]!, m = merged[module + ".weight"]!
            let (inner, r, s) = (w.shape[1], a.shape[0], adapter.config.scale(forModule: module))
            for (i, j) in [(0, 0), (w.shape[0] - 1, inner - 1), (w.shape[0] / 2, inner / 3)] {
                var d = 0.0
                for k in 0..<r { d += Double(b.scalars[i * r + k]) * Double(a.scalars[k * inner + j]) }
                XCTAssertEqual(Double(m.scalars[i * inner + j]), Double(w.scalars[i * inner + j]) + s * d, accuracy: 1e-5, module)
            }
        }
    }

    func testGGUFCarriesEachScaleAndReadsBackToTheSameWeights() throws {
        let (baseDir, base, adapter) = try load()
        let path = NSTemporaryDirectory() + "glmtrain-patterns-\(UUID().uuidString).gguf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFLoRA.write(adapter: adapter, model: base, to: path, name: "patterns")
        // Read back with llama.cpp's rule (alpha / each tensor's rank): mixed ranks become a rank_pattern.
        let back = try GGUFLoRA.read(path: path, model: base)
        XCTAssertEqual(back.config.r, 4)
        XCTAssertFalse(back.config.rankPattern.isEmpty)
        let weights = try ModelDirectory.loadWeights(baseDir)
        let want = try adapter.merged(into: weights), got = try back.merged(into: weights)
        for module in adapter.moduleNames {
            let name = module + ".weight"
            XCTAssertLessThan(zip(want[name]!.scalars, got[name]!.scalars).map { abs($0 - $1) }.max()!, 1e-6, name)
        }
    }

    func testVLLMHasOneRankAndAlphaWithEachScaleInB() throws {
        let (_, base, adapter) = try load()
        let (c, tensors) = try adapter.vllmAdapter(model: base)
        XCTAssertEqual(c.r, 8)
        XCTAssertTrue(c.rankPattern.isEmpty && c.alphaPattern.isEmpty)
        XCTAssertEqual(adapter.vllmMaxLoRARank, 8)
        for module in ["model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.o_proj", "model.layers.1.mlp.down_proj"] {
            let b = adapter.matrices(module: module)!.b
            let folded = tensors[LoRATensorName.name(module: module, isB: true)]!
            let factor = Float(adapter.config.scale(forModule: module) / c.scale)
            XCTAssertEqual(folded.scalars, b.scalars.map { $0 * factor }, module)
        }
    }

    func testFileOrderSurvivesWritingWithSortedKeys() throws {
        // "v_proj" first in the file: v_proj modules take alpha 20, though "self_attn.v_proj" (7) sorts before it.
        let (_, base, _) = try load()
        let copy = NSTemporaryDirectory() + "glmtrain-order-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.copyItem(atPath: "\(dir)/adapter_model.safetensors", toPath: "\(copy)/adapter_model.safetensors")
        let text = try String(contentsOfFile: "\(dir)/adapter_config.json", encoding: .utf8)
        let from = "\"alpha_pattern\": {\n    \"o_proj\": 3,\n    \"v_proj\": 20\n  }"
        XCTAssertTrue(text.contains(from))
        try text.replacingOccurrences(of: from, with: "\"alpha_pattern\": {\"v_proj\": 20, \"o_proj\": 3, \"self_attn.v_proj\": 7}")
            .write(toFile: "\(copy)/adapter_config.json", atomically: true, encoding: .utf8)
        let adapter = try PEFTAdapter.load(directory: copy, model: base)
        let v = "model.layers.1.self_attn.v_proj"
        XCTAssertEqual(adapter.config.alpha(forModule: v), 20)
        let out = copy + "/saved"
        try adapter.save(to: out)
        let back = try PEFTAdapter.load(directory: out, model: base)
        for m in adapter.moduleNames {
            XCTAssertEqual(back.config.scale(forModule: m), adapter.config.scale(forModule: m), m)
            XCTAssertEqual(back.config.rank(forModule: m), adapter.config.rank(forModule: m), m)
        }
    }

    func testARegexThatBacktracksWithoutEndIsRefusedQuickly() throws {
        // (.*.*.*.*)*X backtracks exponentially on a module name: reading the file must not hang on it.
        let text = try String(contentsOfFile: "\(dir)/adapter_config.json", encoding: .utf8)
        let start = Date()
        for (from, to, key) in [("\"q_proj\": 8", "\"(.*.*.*.*)*X\": 8", "rank_pattern"),
                                ("\"o_proj\": 3", "\"(.*.*.*.*)*X\": 3", "alpha_pattern")] {
            XCTAssertThrowsError(try AdapterConfig.decode(Data(text.replacingOccurrences(of: from, with: to).utf8), source: "a.json")) { e in
                XCTAssertTrue("\(e)".hasPrefix("a.json: key '\(key)': '(.*.*.*.*)*X': the regular expression takes more than"), "\(e)")
            }
        }
        var c = try AdapterConfig.decode(Data(text.utf8), source: "a.json")
        c.targetModules = .regex("(.*.*.*.*)*X")
        let json = c.jsonText
        XCTAssertThrowsError(try AdapterConfig.decode(Data(json.utf8), source: "b.json")) { e in
            XCTAssertTrue("\(e)".contains("key 'target_modules'"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        // A real pattern matches as before.
        let re = try NSRegularExpression(pattern: "^(?:.*\\.(q_proj|v_proj))$")
        XCTAssertEqual(BoundedRegex.firstMatch(re, in: "model.layers.0.self_attn.q_proj"), .match)
        XCTAssertEqual(BoundedRegex.firstMatch(re, in: "model.layers.0.self_attn.k_proj"), .noMatch)
        XCTAssertEqual(BoundedRegex.firstMatch(try NSRegularExpression(pattern: "^(?:(.*.*.*.*)*X)$"), in: "model.layers.0.self_attn.q_proj_abcdefgh"), .timedOut)
    }

    func testPatternKeysHavePythonsMeaning() throws {
        // peft matches with Python's re: `[[:alpha:]]_proj` is the class [[:alph] then "]_proj" (matches no module),
        // not ICU's POSIX class; `(?P<n>…)` is a named group; a global flag group inside peft's pattern is an error.
        let text = try String(contentsOfFile: "\(dir)/adapter_config.json", encoding: .utf8)
        func config(_ key: String) throws -> AdapterConfig {
            try AdapterConfig.decode(Data(text.replacingOccurrences(of: "\"o_proj\": 3", with: "\"\(key)\": 3").utf8), source: "a.json")
        }
        XCTAssertEqual(try config("[[:alpha:]]_proj").alpha(forModule: "model.layers.0.self_attn.o_proj"), 8)
        XCTAssertEqual(try config("[[:alpha:]]_proj").alpha(forModule: "model.layers.0.self_attn.a]_proj"), 3, "Python's reading")
        XCTAssertEqual(try config("(?P<n>o_proj)").alpha(forModule: "model.layers.0.self_attn.o_proj"), 3)
        XCTAssertEqual(try config("(?P<n>o)_(?P=n)_proj").alpha(forModule: "model.layers.0.self_attn.o_o_proj"), 3)
        XCTAssertThrowsError(try config("(?i)O_PROJ")) { e in XCTAssertTrue("\(e)".contains("inline flag group"), "\(e)") }
        XCTAssertEqual(try config("(?i:O_PROJ)").alpha(forModule: "model.layers.0.self_attn.o_proj"), 3)
        XCTAssertEqual(PythonRegex.icu("[]a[&&b]x"), "[\\]a\\[\\&\\&b]x")
        // Python's {,n} and the leading a/u flags, which ICU lacks (found by a peft fidelity sweep).
        XCTAssertEqual(PythonRegex.icu(#".*\.(q|k){,1}_proj"#), #".*\.(q|k){0,1}_proj"#)
        XCTAssertEqual(PythonRegex.icu("[{,1}]x{,12}"), "[{,1}]x{0,12}")
        XCTAssertEqual(PythonRegex.icu("x{,}"), "x{0,}")
        XCTAssertEqual(PythonRegex.icu("(?au)x"), "(?au)x", "Python refuses a with u: left for ICU to refuse")
        XCTAssertEqual(PythonRegex.icu("(?aL)x"), "(?aL)x")
        XCTAssertEqual(PythonRegex.icu(#"(?a).*\.q_proj"#), #".*\.q_proj"#)
        XCTAssertEqual(PythonRegex.icu("(?ai)x(?a)"), "(?i)x(?a)")
        XCTAssertEqual(PythonRegex.icu("(?i)x"), "(?i)x")
    }

    func testBadPatternsAreOneLineErrors() throws {
        let text = try String(contentsOfFile: "\(dir)/adapter_config.json", encoding: .utf8)
        for (from, to, expected) in [("\"q_proj\": 8", "\"q_proj\": 0", "key 'rank_pattern': 'q_proj': expected a positive integer rank"),
                                     ("\"o_proj\": 3", "\"o_proj\": -1", "key 'alpha_pattern': 'o_proj': expected a positive number"),
                                     ("\"o_proj\": 3", "\"o_(proj\": 3", "key 'alpha_pattern': 'o_(proj' is not a valid regular expression")] {
            XCTAssertTrue(text.contains(from))
            let edited = text.replacingOccurrences(of: from, with: to)
            XCTAssertThrowsError(try AdapterConfig.decode(Data(edited.utf8), source: "a.json")) { e in
                XCTAssertTrue("\(e)".hasPrefix("a.json: ") && "\(e)".contains(expected), "\(e)")
            }
        }
    }
}
