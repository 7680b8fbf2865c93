// Adapter formats against the files peft and llama.cpp write for the same adapters (Scripts/make_peft_fixtures.py):
// PEFT round trip byte for byte, the vLLM split, GGUF against convert_lora_to_gguf.py's output, strict one-line
// errors on bad adapter directories.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class AdapterFormatTests: XCTestCase {
    static let names = ["glm4-r8", "glm4-rslora-all-linear", "glm-qv"]

    func fixture(_ name: String) -> String { "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/peft/\(name)" }

    /// The base model config of a fixture adapter (its base_model_name_or_path is relative to the repository root).
    func baseConfig(_ name: String) throws -> (String, GLMConfig) {
        let config = try AdapterConfig.load(path: "\(fixture(name))/adapter_config.json")
        let dir = "\(Fixtures.repositoryRoot)/\(config.baseModelNameOrPath!)"
        return (dir, try ModelDirectory.loadConfig(dir))
    }

    func temporary(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "glmtrain-adapter-\(UUID().uuidString)"
        return "\(dir)/\(name)"
    }

    func assertBitwiseEqual(_ a: Tensor, _ b: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern), what, file: file, line: line)
    }

    // MARK: PEFT

    func testPEFTWriteReproducesWhatPeftSaved() throws {
        for name in Self.names + ["glm4-patterns"] {
            let (_, base) = try baseConfig(name)
            let adapter = try PEFTAdapter.load(directory: fixture(name), model: base)
            let out = temporary(name)
            try adapter.save(to: out)
            // adapter_config.json: the same text as peft's save_pretrained.
            let ours = try String(contentsOfFile: "\(out)/adapter_config.json", encoding: .utf8)
            let theirs = try String(contentsOfFile: "\(fixture(name))/adapter_config.json", encoding: .utf8)
            XCTAssertEqual(ours, theirs, name)
            // adapter_model.safetensors: the same names, shapes, dtypes and values.
            let a = try SafetensorsFile(path: "\(out)/adapter_model.safetensors")
            let b = try SafetensorsFile(path: "\(fixture(name))/adapter_model.safetensors")
            XCTAssertEqual(a.names, b.names, name)
            XCTAssertEqual(a.metadata, b.metadata, name)
            for n in b.names {
                XCTAssertEqual(a.entries[n]!.dtype, b.entries[n]!.dtype, n)
                assertBitwiseEqual(try a.tensor(n), try b.tensor(n), n)
            }
            // The whole file, byte for byte (header order and padding as safetensors' own serializer).
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(out)/adapter_model.safetensors")),
                           try Data(contentsOf: URL(fileURLWithPath: "\(fixture(name))/adapter_model.safetensors")), name)
            // And it reads back identically.
            let again = try PEFTAdapter.load(directory: out, model: base)
            XCTAssertEqual(again.config, adapter.config)
            XCTAssertEqual(Set(again.tensors.keys), Set(adapter.tensors.keys))
            for (k, t) in adapter.tensors { assertBitwiseEqual(again.tensors[k]!, t, k) }
        }
    }

    func testConfigFieldsAndScale() throws {
        let plain = try AdapterConfig.load(path: "\(fixture("glm4-r8"))/adapter_config.json")
        XCTAssertEqual(plain.r, 8)
        XCTAssertEqual(plain.loraAlpha, 16)
        XCTAssertEqual(plain.loraDropout, 0.05)
        XCTAssertEqual(plain.scale, 2)
        XCTAssertEqual(plain.taskType, "CAUSAL_LM")
        let rs = try AdapterConfig.load(path: "\(fixture("glm4-rslora-all-linear"))/adapter_config.json")
        XCTAssertTrue(rs.useRslora)
        XCTAssertEqual(rs.scale, 4)           // 8 / √4
        XCTAssertEqual(rs.effectiveAlpha, 16) // llama.cpp's α/r gives the same scale
        // A config made from scratch (as the trainer makes it) is written exactly as peft writes it.
        var fresh = AdapterConfig(r: 8, loraAlpha: 16, loraDropout: 0.05,
                                  targetModules: .list(["down_proj", "gate_up_proj", "k_proj", "o_proj", "q_proj", "v_proj"]),
                                  baseModelNameOrPath: "Tests/GLMModelTests/Fixtures/glm4")
        XCTAssertEqual(fresh.jsonText, try String(contentsOfFile: "\(fixture("glm4-r8"))/adapter_config.json", encoding: .utf8))
        fresh = AdapterConfig(r: 4, loraAlpha: 4, targetModules: .list(["q_proj", "v_proj"]), layersToTransform: [1],
                              baseModelNameOrPath: "Tests/GLMModelTests/Fixtures/glm")
        XCTAssertEqual(fresh.jsonText, try String(contentsOfFile: "\(fixture("glm-qv"))/adapter_config.json", encoding: .utf8))
        let qv = try AdapterConfig.load(path: "\(fixture("glm-qv"))/adapter_config.json")
        XCTAssertEqual(qv.layersToTransform, [1])
        XCTAssertTrue(qv.targets(module: "model.layers.1.self_attn.q_proj"))
        XCTAssertFalse(qv.targets(module: "model.layers.0.self_attn.q_proj"))
        XCTAssertFalse(qv.targets(module: "model.layers.1.self_attn.k_proj"))
    }

    // MARK: vLLM

    func testVLLMFlavourSplitsGateUpByRows() throws {
        let (_, base) = try baseConfig("glm4-r8")
        let adapter = try PEFTAdapter.load(directory: fixture("glm4-r8"), model: base)
        let out = temporary("vllm")
        try adapter.saveVLLM(to: out, model: base)
        let file = try SafetensorsFile(path: "\(out)/adapter_model.safetensors")
        let config = try AdapterConfig.load(path: "\(out)/adapter_config.json")
        guard case .list(let targets) = config.targetModules else { return XCTFail("target_modules should be a list") }
        XCTAssertEqual(Set(targets), ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        XCTAssertFalse(file.names.contains { $0.contains("gate_up_proj") })
        let I = base.intermediateSize
        for l in 0..<base.numHiddenLayers {
            let (a, b) = adapter.matrices(module: "model.layers.\(l).mlp.gate_up_proj")!
            let p = "base_model.model.model.layers.\(l).mlp."
            assertBitwiseEqual(try file.tensor(p + "gate_proj.lora_A.weight"), a, "gate A")
            assertBitwiseEqual(try file.tensor(p + "up_proj.lora_A.weight"), a, "up A")
            let gate = try file.tensor(p + "gate_proj.lora_B.weight"), up = try file.tensor(p + "up_proj.lora_B.weight")
            XCTAssertEqual(gate.shape, [I, 8]); XCTAssertEqual(up.shape, [I, 8])
            XCTAssertEqual(gate.scalars, Array(b.scalars[0..<(I * 8)]))
            XCTAssertEqual(up.scalars, Array(b.scalars[(I * 8)...]))
            let (qa, qb) = adapter.matrices(module: "model.layers.\(l).self_attn.q_proj")!
            assertBitwiseEqual(try file.tensor("base_model.model.model.layers.\(l).self_attn.q_proj.lora_A.weight"), qa, "q A")
            assertBitwiseEqual(try file.tensor("base_model.model.model.layers.\(l).self_attn.q_proj.lora_B.weight"), qb, "q B")
        }
        XCTAssertEqual(adapter.vllmMaxLoRARank, 8)
        // A rank vLLM cannot serve is refused.
        var big = adapter
        big.config.r = 600
        XCTAssertThrowsError(try big.vllmAdapter(model: base)) { e in
            XCTAssertTrue("\(e)".contains("rank 600"), "\(e)")
        }
    }

    // MARK: GGUF

    func testGGUFEqualsLlamaCppConverterOutput() throws {
        for name in ["glm4-r8", "glm-qv"] {
            let (_, base) = try baseConfig(name)
            let adapter = try PEFTAdapter.load(directory: fixture(name), model: base)
            let ours = try GGUFLoRA.writer(adapter: adapter, model: base, name: name).data()
            let theirs = try Data(contentsOf: URL(fileURLWithPath: "\(fixture(name))/adapter.gguf"))
            XCTAssertEqual(ours, theirs, "\(name): GGUF bytes differ from convert_lora_to_gguf.py's")
        }
    }

    func testGGUFMetadataTensorsAndRSLoRAAlpha() throws {
        let name = "glm4-rslora-all-linear"
        let (_, base) = try baseConfig(name)
        let adapter = try PEFTAdapter.load(directory: fixture(name), model: base)
        let path = temporary("\(name).gguf")
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try GGUFLoRA.write(adapter: adapter, model: base, to: path, name: name)
        let ours = try GGUFFile(path: path), theirs = try GGUFFile(path: "\(fixture(name))/adapter.gguf")
        XCTAssertEqual(ours.metadata.map(\.key), theirs.metadata.map(\.key))
        for ((k, a), (_, b)) in zip(ours.metadata, theirs.metadata) where k != "adapter.lora.alpha" { XCTAssertEqual(a, b, k) }
        XCTAssertEqual(theirs.value("general.architecture"), .string("glm4"))
        XCTAssertEqual(theirs.value("general.name"), .string("Glm4 Rslora All Linear"))
        // The converter writes lora_alpha as is (8), which llama.cpp scales by 8/4; GLMTrain writes α·√r = 16,
        // giving llama.cpp's 16/4 = 4 = PEFT's rsLoRA scale 8/√4.
        XCTAssertEqual(theirs.value("adapter.lora.alpha"), .float32(8))
        XCTAssertEqual(ours.value("adapter.lora.alpha"), .float32(16))
        XCTAssertEqual(ours.tensors, theirs.tensors)
        for t in theirs.tensors {
            assertBitwiseEqual(try ours.tensor(t.name), try theirs.tensor(t.name), t.name)
        }
        // ffn_up is the fused gate_up_proj: lora_b has 2·intermediate rows (ggml ne = [r, 2I]).
        let up = theirs.tensors.first { $0.name == "blk.0.ffn_up.weight.lora_b" }!
        XCTAssertEqual(up.dimensions, [4, 2 * base.intermediateSize])
        XCTAssertEqual(up.type, .f32)
    }

    func testGGUFReaderGivesThePEFTTensors() throws {
        for name in Self.names {
            let (_, base) = try baseConfig(name)
            let adapter = try PEFTAdapter.load(directory: fixture(name), model: base)
            let back = try GGUFLoRA.read(path: "\(fixture(name))/adapter.gguf", model: base)
            XCTAssertEqual(Set(back.tensors.keys), Set(adapter.tensors.keys), name)
            for (k, t) in adapter.tensors { assertBitwiseEqual(back.tensors[k]!, t, k) }
            XCTAssertEqual(back.config.r, adapter.config.r)
        }
    }

    func testGGUFNamingHeuristics() throws {
        // What gguf-py's Metadata heuristics make of some adapter directory names (checked against gguf-py 0.19).
        func name(_ dir: String) throws -> [String: GGUFValue] {
            let (_, base) = try baseConfig("glm4-r8")
            let adapter = try PEFTAdapter.load(directory: fixture("glm4-r8"), model: base)
            let w = try GGUFLoRA.writer(adapter: adapter, model: base, name: dir)
            return Dictionary(w.metadata.filter { $0.key.hasPrefix("general.") && !$0.key.hasPrefix("general.base_model") }
                .map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        }
        // (directory, name, basename, finetune, version, size_label) as gguf-py 0.19 computes them for a LoRA.
        let cases: [(String, String, String?, String?, String?, String?)] = [
            ("glm4-r8", "Glm4 R8", nil, nil, nil, nil),
            ("adapter", "Adapter", nil, nil, nil, nil),
            ("GLM-4-9B-chat-sft-v2", "GLM 4 9B Chat Sft v2", "GLM-4", "chat-sft", "v2", "9B"),
            ("sft-lora-run", "Sft Lora Run", "sft", "run", nil, nil),
            ("my_adapter-7b1", "My_Adapter 7b1", "my_adapter", nil, nil, "7.1B"),
            ("Qwen2.5-0.5B-instruct-lora", "Qwen2.5 0.5B Instruct Lora", "Qwen2.5", "instruct", nil, "0.5B"),
            ("glm4x-lora", "Glm4X Lora", nil, nil, nil, nil),
        ]
        for (dir, title, basename, finetune, version, size) in cases {
            let m = try name(dir)
            XCTAssertEqual(m["general.name"], .string(title), dir)
            XCTAssertEqual(m["general.basename"], basename.map { .string($0) }, dir)
            XCTAssertEqual(m["general.finetune"], finetune.map { .string($0) }, dir)
            XCTAssertEqual(m["general.version"], version.map { .string($0) }, dir)
            XCTAssertEqual(m["general.size_label"], size.map { .string($0) }, dir)
        }
        // An absolute base path has an empty organization, which gguf-py's add_string leaves out
        let (_, base) = try baseConfig("glm4-r8")
        var adapter = try PEFTAdapter.load(directory: fixture("glm4-r8"), model: base)
        adapter.config.baseModelNameOrPath = "/models/glm4-base"
        let keys = try GGUFLoRA.writer(adapter: adapter, model: base, name: "x").metadata.map(\.key)
        XCTAssertTrue(keys.contains("general.base_model.0.name"), "\(keys)")
        XCTAssertFalse(keys.contains("general.base_model.0.organization"), "\(keys)")
    }

    // MARK: errors

    /// Copies a fixture adapter to a temporary directory, lets `edit` change it, and returns the load error.
    func loadError(_ name: String = "glm4-r8", config editConfig: ((inout [String: Any]) -> Void)? = nil,
                   tensors editTensors: ((inout [String: Tensor]) -> Void)? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let (_, base) = try baseConfig(name)
        let dir = temporary(name)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(fixture(name))/adapter_config.json"))) as! [String: Any]
        editConfig?(&cfg)
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: "\(dir)/adapter_config.json"))
        var tensors = try SafetensorsFile(path: "\(fixture(name))/adapter_model.safetensors").allTensors()
        editTensors?(&tensors)
        try SafetensorsWriter.write(tensors, to: "\(dir)/adapter_model.safetensors")
        do {
            _ = try PEFTAdapter.load(directory: dir, model: base)
        } catch let e as GLMError {
            XCTAssertFalse(e.message.contains("\n"), "not one line: \(e.message)", file: file, line: line)
            XCTAssertTrue(e.message.hasPrefix(dir), "does not name the file: \(e.message)", file: file, line: line)
            return e.message
        }
        XCTFail("loaded a bad adapter", file: file, line: line)
        return ""
    }

    func testTargetListsAndLayerListsReadAsPeftReadsThem() throws {
        // peft adapts the entries that name a module and ignores the rest (lists written for several architectures);
        // an empty layers_to_transform transforms every layer. Both were refused.
        let base = try baseConfig("glm-qv").1
        let text = try String(contentsOfFile: "\(fixture("glm-qv"))/adapter_config.json", encoding: .utf8)
        var cfg = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        cfg["target_modules"] = ["q_proj", "v_proj", "query_key_value", "c_attn", "gate", "output_layer"]
        cfg["layers_to_transform"] = [Int]()
        let read = try AdapterConfig.decode(try JSONSerialization.data(withJSONObject: cfg), source: "a.json")
        try read.validate(against: base, source: "a.json")
        XCTAssertNil(read.layersToTransform)
        XCTAssertEqual(Set(read.targetedModules(base).map(\.target)), ["q_proj", "v_proj"])
        XCTAssertEqual(read.targetedModules(base).count, 2 * base.numHiddenLayers)
        cfg["target_modules"] = ["query_key_value"]
        let none = try AdapterConfig.decode(try JSONSerialization.data(withJSONObject: cfg), source: "a.json")
        XCTAssertThrowsError(try none.validate(against: base, source: "a.json")) { e in
            XCTAssertTrue("\(e)".contains("targets no linear module of the model"), "\(e)")
        }
    }

    func testBadAdaptersGiveOneLineErrorsNamingFileAndKey() throws {
        let key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        let unknown = try loadError(config: { $0["target_modules"] = ["q_proj", "lm_head"] })
        XCTAssertTrue(unknown.contains("adapter_config.json") && unknown.contains("unknown target 'lm_head'"), unknown)

        let shape = try loadError(tensors: { $0[key] = Tensor(zeros: [8, 32]) })
        XCTAssertTrue(shape.contains("adapter_model.safetensors") && shape.contains(key) && shape.contains("does not match the base model"), shape)

        let rank = try loadError(config: { $0["r"] = 4 })
        XCTAssertTrue(rank.contains("rank mismatch") && rank.contains("r is 4"), rank)

        let missingB = try loadError(tensors: { $0["base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"] = nil })
        XCTAssertTrue(missingB.contains("layers.1.mlp.down_proj.lora_A.weight") && missingB.contains("without its lora_B"), missingB)

        let stray = try loadError(tensors: { $0["base_model.model.lm_head.weight"] = Tensor(zeros: [256, 64]) })
        XCTAssertTrue(stray.contains("base_model.model.lm_head.weight") && stray.contains("not a lora_A/lora_B"), stray)

        let untargeted = try loadError("glm-qv", tensors: {
            $0["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = Tensor(zeros: [4, 64])
            $0["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"] = Tensor(zeros: [64, 4])
        })
        XCTAssertTrue(untargeted.contains("not targeted"), untargeted)

        let dora = try loadError(config: { $0["use_dora"] = true })
        XCTAssertTrue(dora.contains("use_dora"), dora)

        // adapter_model.bin only: refused with a hint.
        let dir = temporary("bin-only")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(fixture("glm4-r8"))/adapter_config.json", toPath: "\(dir)/adapter_config.json")
        try Data("not really".utf8).write(to: URL(fileURLWithPath: "\(dir)/adapter_model.bin"))
        XCTAssertThrowsError(try PEFTAdapter.load(directory: dir)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.hasPrefix("\(dir)/adapter_model.safetensors: missing") && m.contains("adapter_model.bin is not supported"), m)
        }
    }

    // MARK: merge

    func testMergeIsWPlusScaleBA() throws {
        let (baseDir, base) = try baseConfig("glm4-rslora-all-linear")
        let adapter = try PEFTAdapter.load(directory: fixture("glm4-rslora-all-linear"), model: base)
        let weights = try ModelDirectory.loadWeights(baseDir)
        let merged = try adapter.merged(into: weights)
        let name = "model.layers.1.mlp.down_proj.weight"
        let (a, b) = adapter.matrices(module: "model.layers.1.mlp.down_proj")!
        let w = weights[name]!, m = merged[name]!
        let (out, inner, r) = (w.shape[0], w.shape[1], a.shape[0])
        for i in stride(from: 0, to: out, by: 7) {
            for j in stride(from: 0, to: inner, by: 5) {
                var s = 0.0
                for k in 0..<r { s += Double(b.scalars[i * r + k]) * Double(a.scalars[k * inner + j]) }
                XCTAssertEqual(Double(m.scalars[i * inner + j]), Double(w.scalars[i * inner + j]) + 4 * s, accuracy: 1e-5)
            }
        }
        XCTAssertTrue(merged["model.embed_tokens.weight"]! === weights["model.embed_tokens.weight"]!, "untouched weights are shared")
    }
}
