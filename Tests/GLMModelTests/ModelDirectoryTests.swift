// Model directories: save → load round trips (single file, sharded, bf16), bad checkpoints give one-line errors
// naming the file or tensor, and (with GLM_MODEL_EXPORT_DIR set) directories for the transformers check.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class ModelDirectoryTests: XCTestCase {
    var dirs: [String] = []
    override func tearDown() { for d in dirs { try? FileManager.default.removeItem(atPath: d) } }
    func scratch(_ tag: String) -> String { let d = ModelFixtures.scratch(tag); dirs.append(d); return d }
    func copy(_ name: String) throws -> String { let d = try ModelFixtures.copy(name); dirs.append(d); return d }

    func testSaveLoadRoundTripGivesIdenticalLogits() throws {
        for name in ["glm", "glm4-tied-full-rotary", "chatglm-legacy"] {
            let (config, model) = try ModelDirectory.load(ModelFixtures.path(name))
            let ids = try ModelFixtures.expected(name).ids("single.ids")
            let before = ModelFixtures.logits(model, ids, batch: 1)
            let out = scratch("save-\(name)")
            try ModelDirectory.save(model, to: out)
            let (config2, model2) = try ModelDirectory.load(out)
            var (written, original) = (config2, config)
            (written.dtype, original.dtype) = (nil, nil)
            XCTAssertEqual(written, original)
            XCTAssertEqual(config2.dtype, "float32")
            XCTAssertEqual(ModelFixtures.logits(model2, ids, batch: 1).scalars, before.scalars, name)
            XCTAssertEqual(Set(model2.parameters.keys), Set(model.parameters.keys))
            let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
            XCTAssertEqual(files, ["config.json", "model.safetensors", "generation_config.json"])
            let header = try SafetensorsFile(path: "\(out)/model.safetensors")
            XCTAssertEqual(header.metadata["format"], "pt")
            XCTAssertEqual(header.entries["lm_head.weight"] == nil, config.tieWordEmbeddings)
        }
    }

    func testShardedAndBF16SavesAndStaleFilesAreRemoved() throws {
        let (_, model) = try ModelDirectory.load(ModelFixtures.path("glm4"))
        let ids = try ModelFixtures.expected("glm4").ids("single.ids")
        let before = ModelFixtures.logits(model, ids, batch: 1)
        let out = scratch("sharded")
        try ModelDirectory.save(model, to: out, maxShardBytes: 60_000)
        let files = try FileManager.default.contentsOfDirectory(atPath: out)
        let shards = files.filter { $0.hasPrefix("model-") }.sorted()
        XCTAssertGreaterThan(shards.count, 2)
        XCTAssertEqual(shards.first, "model-00001-of-\(String(format: "%05d", shards.count)).safetensors")
        XCTAssertTrue(files.contains("model.safetensors.index.json"))
        XCTAssertEqual(ModelFixtures.logits(try ModelDirectory.load(out).1, ids, batch: 1).scalars, before.scalars)

        // Saving again unsharded in bf16 into the same directory drops the index and the shards.
        try ModelDirectory.save(model, to: out, dtype: .bfloat16, copyingFilesFrom: ModelFixtures.path("glm4"))
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: out)),
                       ["config.json", "model.safetensors", "generation_config.json"])
        XCTAssertEqual(try SafetensorsFile(path: "\(out)/model.safetensors").entries["model.norm.weight"]?.dtype, .bfloat16)
        let (config, bf16) = try ModelDirectory.load(out)
        XCTAssertEqual(config.dtype, "bfloat16")
        XCTAssertLessThan(Fixtures.relativeError(ModelFixtures.logits(bf16, ids, batch: 1), before), 3e-2)
        XCTAssertEqual(FileManager.default.contents(atPath: "\(out)/generation_config.json"),
                       FileManager.default.contents(atPath: "\(ModelFixtures.path("glm4"))/generation_config.json"))
    }

    /// Bad checkpoints: each error is one line naming the file, key or tensor.
    func testBadCheckpointsGiveOneLineErrors() throws {
        let fm = FileManager.default
        func expectError(_ dir: String, _ fragments: [String], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try ModelDirectory.load(dir), what, file: file, line: line) { error in
                let message = "\(error)"
                XCTAssertTrue(error is GLMError, what, file: file, line: line)
                XCTAssertFalse(message.contains("\n"), message, file: file, line: line)
                for f in fragments { XCTAssertTrue(message.contains(f), "\(what): '\(f)' not in: \(message)", file: file, line: line) }
            }
        }
        func rewrite(_ dir: String, _ change: (inout [String: Tensor]) -> Void) throws {
            var t = try SafetensorsFile(path: "\(dir)/model.safetensors").allTensors()
            change(&t)
            try SafetensorsWriter.write(t, to: "\(dir)/model.safetensors")
        }
        var d = try copy("glm")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: "\(d)/model.safetensors"))
        try bytes.prefix(bytes.count - 100).write(to: URL(fileURLWithPath: "\(d)/model.safetensors"))
        expectError(d, ["\(d)/model.safetensors", "truncated"], "truncated file")

        d = try copy("glm")
        try (Data([0xff, 0xff, 0xff, 0, 0, 0, 0, 0]) + bytes.dropFirst(8)).write(to: URL(fileURLWithPath: "\(d)/model.safetensors"))
        expectError(d, ["\(d)/model.safetensors", "header length"], "wrong header")

        d = try copy("glm")
        try rewrite(d) { $0["model.layers.1.mlp.down_proj.weight"] = nil }
        expectError(d, ["model.layers.1.mlp.down_proj.weight", "missing", "[64, 40]"], "missing tensor")

        d = try copy("glm")
        try rewrite(d) { $0["model.layers.0.self_attn.k_proj.weight"] = Tensor(zeros: [16, 64]) }
        expectError(d, ["model.layers.0.self_attn.k_proj.weight", "[16, 64]", "expected [32, 64]"], "wrong shape")

        d = try copy("glm")
        try rewrite(d) { $0["model.layers.0.self_attn.o_proj.bias"] = Tensor(zeros: [64]) }
        expectError(d, ["model.layers.0.self_attn.o_proj.bias", "unexpected"], "unexpected tensor")

        d = try copy("glm-tied-full-rotary")
        try rewrite(d) { $0["lm_head.weight"] = Tensor(zeros: [256, 64]) }
        expectError(d, ["lm_head.weight", "tie_word_embeddings"], "lm_head differing from a tied embedding")

        d = try copy("glm")
        var config = String(decoding: fm.contents(atPath: "\(d)/config.json")!, as: UTF8.self)
        config = config.replacingOccurrences(of: "\"model_type\": \"glm\"", with: "\"model_type\": \"llama\"")
        try config.write(toFile: "\(d)/config.json", atomically: true, encoding: .utf8)
        expectError(d, ["\(d)/config.json", "model_type", "llama"], "unknown model_type")

        d = try copy("glm")
        try fm.removeItem(atPath: "\(d)/config.json")
        expectError(d, ["\(d)/config.json", "missing"], "no config.json")

        d = try copy("glm")
        try fm.removeItem(atPath: "\(d)/model.safetensors")
        expectError(d, ["\(d)/model.safetensors", "missing"], "no weights")

        d = try copy("glm4-sharded")
        try fm.removeItem(atPath: "\(d)/model-00002-of-00003.safetensors")
        expectError(d, ["\(d)/model-00002-of-00003.safetensors", "missing", "model.safetensors.index.json"], "missing shard")

        // A shard index that leaves out a tensor its shard stores: the index is the contract, so it is an error.
        d = try copy("glm4-sharded")
        let indexPath = "\(d)/model.safetensors.index.json"
        var index = try JSONSerialization.jsonObject(with: fm.contents(atPath: indexPath)!) as! [String: Any]
        var weightMap = index["weight_map"] as! [String: String]
        let dropped = weightMap.keys.sorted().first!
        let droppedShard = weightMap.removeValue(forKey: dropped)!
        index["weight_map"] = weightMap
        try JSONSerialization.data(withJSONObject: index).write(to: URL(fileURLWithPath: indexPath))
        expectError(d, ["\(d)/\(droppedShard)", "'\(dropped)'", "missing from its weight_map"], "index missing a tensor")

        d = try copy("chatglm-legacy")
        try rewrite(d) {
            $0["transformer.encoder.layers.0.self_attention.query_key_value.weight"] = Tensor(zeros: [96, 64])
        }
        expectError(d, ["transformer.encoder.layers.0.self_attention.query_key_value.weight", "[96, 64]", "expected [128, 64]"],
                    "legacy qkv of the wrong size")

        expectError("/nonexistent/model", ["/nonexistent/model", "not a directory"], "no directory")
    }

    /// With GLM_MODEL_EXPORT_DIR set, writes every fixture model as GLMTrain saves it into that directory, for
    /// `.venv/bin/python Scripts/make_model_fixtures.py --check $GLM_MODEL_EXPORT_DIR/*` (transformers loads them).
    func testExportForTransformersCheck() throws {
        guard let root = ProcessInfo.processInfo.environment["GLM_MODEL_EXPORT_DIR"] else {
            throw XCTSkip("set GLM_MODEL_EXPORT_DIR to write the fixture models for the transformers check")
        }
        for name in ModelFixtures.names {
            let (_, model) = try ModelDirectory.load(ModelFixtures.path(name))
            let dtype: StorageDType = name == "glm-bf16" ? .bfloat16 : .float32
            try ModelDirectory.save(model, to: "\(root)/\(name)", dtype: dtype,
                                    maxShardBytes: name == "glm4-sharded" ? 100_000 : 5_000_000_000)
        }
    }
}
