// Which tokens generation stops on, as transformers' generate() picks them (GenerationMixin.adjust_generation_fn
// loads generation_config.json when it exists, else derives it from config.json).
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class GenerationStopsTests: XCTestCase {
    var dir: String!
    override func setUp() {
        dir = NSTemporaryDirectory() + "glmtrain-stops-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// The bundled tiny model's config and weights with `generation` as generation_config.json (nil: none).
    func model(_ name: String, generation: String?) throws -> String {
        let m = "\(dir!)/\(name)"
        try FileManager.default.createDirectory(atPath: m, withIntermediateDirectories: true)
        let tiny = "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny"
        for f in ["config.json", "model.safetensors"] { try FileManager.default.copyItem(atPath: "\(tiny)/\(f)", toPath: "\(m)/\(f)") }
        if let generation { try generation.write(toFile: "\(m)/generation_config.json", atomically: true, encoding: .utf8) }
        return m
    }

    func testGenerationConfigDecidesWhenItExists() throws {
        let config = try ModelDirectory.loadConfiguration(try model("none", generation: nil))
        XCTAssertEqual(config.eosTokenIds, [2034, 2041, 2043])
        XCTAssertEqual(try GenerationStops.forModel(directory: "\(dir!)/none", config: config), [2034, 2041, 2043])
        XCTAssertEqual(try GenerationStops.forModel(directory: nil, config: config), [2034, 2041, 2043])
        XCTAssertEqual(try GenerationStops.forModel(directory: try model("one", generation: #"{"eos_token_id": 7}"#), config: config), [7])
        XCTAssertEqual(try GenerationStops.forModel(directory: try model("list", generation: #"{"eos_token_id": [7, 9, 99999]}"#), config: config), [7, 9])
        // present without eos_token_id (or null): transformers' generate has no end-of-sequence stop
        XCTAssertEqual(try GenerationStops.forModel(directory: try model("absent", generation: #"{"do_sample": false}"#), config: config), [])
        XCTAssertEqual(try GenerationStops.forModel(directory: try model("null", generation: #"{"eos_token_id": null}"#), config: config), [])
    }

    func testBadGenerationConfigsAreOneLineErrorsNamingTheFile() throws {
        let config = try ModelDirectory.loadConfiguration(try model("base", generation: nil))
        for (name, text, expected) in [("string", #"{"eos_token_id": "2"}"#, "key 'eos_token_id' must be an integer or a list of integers"),
                                       ("float", #"{"eos_token_id": [2.5]}"#, "key 'eos_token_id' must be an integer or a list of integers"),
                                       ("array", "[1, 2]", "expected a JSON object"),
                                       ("torn", #"{"eos_token_id": [2"#, "generation_config.json")] {
            let m = try model(name, generation: text)
            XCTAssertThrowsError(try GenerationStops.forModel(directory: m, config: config), name) { e in
                let message = (e as? GLMError)?.message ?? "\(e)"
                XCTAssertTrue(message.hasPrefix("\(m)/generation_config.json"), message)
                XCTAssertTrue(message.contains(expected), "\(name): \(message)")
                XCTAssertFalse(message.contains("\n"))
            }
        }
    }

    func testGreedyGenerationStopsOnTheGenerationConfigsToken() throws {
        // Greedy continuation of 5,6,7 on the tiny model: 320 1993 306 260 84 ... (no config eos among them).
        let plain = try model("plain", generation: nil)
        let loaded = try ModelDirectory.loadModel(plain)
        let free = TextGenerator(model: loaded).generate(prompts: [[5, 6, 7]], maxNewTokens: 8,
                                                         stopTokens: try GenerationStops.forModel(directory: plain, config: loaded.configuration))[0]
        XCTAssertEqual(free.finishReason, "length")
        let stopAt = free.tokens[3]
        let edited = try model("edited", generation: "{\"eos_token_id\": [\(stopAt)]}")
        let stopped = TextGenerator(model: loaded).generate(prompts: [[5, 6, 7]], maxNewTokens: 8,
                                                            stopTokens: try GenerationStops.forModel(directory: edited, config: loaded.configuration))[0]
        XCTAssertEqual(stopped.finishReason, "stop")
        XCTAssertEqual(stopped.tokens, Array(free.tokens[...3]))
    }

    func testGenerateCommandAndRecipesUseIt() throws {
        let edited = try model("cli", generation: #"{"eos_token_id": [260]}"#)
        let r = try GLMTrainBinary.run(["generate", "--model", edited, "--prompt-tokens", "5,6,7", "--max-new-tokens", "8", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(obj["tokens"] as? [Int], [320, 1993, 306, 260], r.stdout)
        XCTAssertEqual(obj["finish_reason"] as? String, "stop")
    }

    func testTransformersDefaultIdsOutsideASmallVocabularyLoadAndStopNothing() throws {
        // What save_pretrained writes for a small GlmConfig that never set eos_token_id: the class defaults in both
        // files. transformers loads and generates (never stopping); glm-train refused the directory.
        let m = try model("defaults", generation: #"{"eos_token_id": [151329, 151336, 151338], "pad_token_id": 0}"#)
        let configFile = "\(m)/config.json"
        let text = try String(contentsOfFile: configFile, encoding: .utf8)
        let edited = try NSRegularExpression(pattern: #""eos_token_id":\s*\[[^\]]*\]"#)
            .stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: #""eos_token_id": [151329, 151336, 151338]"#)
        XCTAssertNotEqual(edited, text, "the bundled config names its eos ids as a list")
        try edited.write(toFile: configFile, atomically: true, encoding: .utf8)
        let r = try GLMTrainBinary.run(["generate", "--model", m, "--prompt-tokens", "5,6,7", "--max-new-tokens", "6", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(Array((obj["tokens"] as? [Int] ?? []).prefix(4)), [320, 1993, 306, 260], r.stdout)
        XCTAssertEqual(obj["finish_reason"] as? String, "length")
        let tokens = "\(dir!)/tokens.jsonl"
        try #"{"tokens": [5, 6, 7, 8]}"#.write(toFile: tokens, atomically: true, encoding: .utf8)
        let scored = try GLMTrainBinary.run(["score", "--model", m, "--input", tokens])
        XCTAssertEqual(scored.status, 0, scored.stderr)
        XCTAssertTrue(scored.stdout.contains("logprobs"), scored.stdout)
    }
}
