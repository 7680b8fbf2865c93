// Routed-expert LoRA in peft's target_parameters layout (FusedExpertLoRA): peft's own adapter on the tiny glm4_moe
// fixture read and written back byte for byte, GLMTrain's per-expert adapters fused and read back exactly, the
// fused delta equal to peft's formula, and what cannot be written refused with one-line errors.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class FusedExpertLoRATests: XCTestCase {
    func model(_ name: String) -> String { "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/\(name)" }
    func temporary(_ name: String) -> String { NSTemporaryDirectory() + "glmtrain-fused-\(UUID().uuidString)/\(name)" }

    func assertBitwiseEqual(_ a: Tensor?, _ b: Tensor?, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let a, let b else { return XCTFail("\(what): missing", file: file, line: line) }
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern), what, file: file, line: line)
    }

    /// A per-expert adapter (GLMTrain's layout) on every linear of `config` that `keep` accepts, seeded random.
    func randomAdapter(_ config: any CausalLMConfig, r: Int, alpha: Double, keep: (AdaptableLinear) -> Bool) -> PEFTAdapter {
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 5000
        }
        var tensors: [String: Tensor] = [:]
        for m in config.adaptableLinears where keep(m) {
            tensors[LoRATensorName.name(module: m.module, isB: false)] = Tensor((0..<(r * m.shape[1])).map { _ in next() }, shape: [r, m.shape[1]])
            tensors[LoRATensorName.name(module: m.module, isB: true)] = Tensor((0..<(m.shape[0] * r)).map { _ in next() }, shape: [m.shape[0], r])
        }
        return PEFTAdapter(config: AdapterConfig(r: r, loraAlpha: alpha, targetModules: .allLinear), tensors: tensors)
    }

    func testPeftsOwnExpertAdapterRoundTripsByteForByte() throws {
        // Scripts/make_moe_fixtures.py: peft 0.21.2 on moe-a turned gate/up/down targets into target_parameters
        let dir = model("moe-a-lora")
        let base = try ModelDirectory.loadConfiguration(model("moe-a"))
        let adapter = try PEFTAdapter.load(directory: dir, model: base)
        XCTAssertEqual(adapter.config.targetParameters, ["gate_up_proj", "down_proj"])
        XCTAssertEqual(adapter.tensors["model.layers.1.mlp.experts.3.gate_proj.lora_A.weight"]?.shape, [8, 32])  // shared A, rank 2r
        XCTAssertEqual(adapter.tensors["model.layers.1.mlp.experts.3.down_proj.lora_B.weight"]?.shape, [32, 4])
        XCTAssertNil(adapter.tensors["model.layers.1.mlp.shared_experts.gate_proj.lora_A.weight"])
        let out = temporary("again")
        let written = try adapter.savePEFT(to: out, experts: 4)
        XCTAssertEqual(written.config.targetParameters, ["gate_up_proj", "down_proj"])
        let theirs = try SafetensorsFile(path: "\(dir)/adapter_model.safetensors"), ours = try SafetensorsFile(path: "\(out)/adapter_model.safetensors")
        XCTAssertEqual(Set(theirs.names), Set(ours.names))
        for n in theirs.names { assertBitwiseEqual(try ours.tensor(n), try theirs.tensor(n), n) }
        XCTAssertEqual(try String(contentsOfFile: "\(out)/adapter_config.json", encoding: .utf8),
                       try String(contentsOfFile: "\(dir)/adapter_config.json", encoding: .utf8))
    }

    func testGLMTrainExpertAdapterFusesAndReadsBackExactly() throws {
        // moe-c: no dense layer, no shared expert: attention and routed experts only, all representable in peft
        let config = try ModelDirectory.loadConfiguration(model("moe-c")) as! Glm4MoeConfig
        let adapter = randomAdapter(config, r: 3, alpha: 6, keep: { _ in true })
        let fused = try FusedExpertLoRA.fuse(adapter, experts: config.nRoutedExperts)
        XCTAssertEqual(fused.config.targetParameters, ["gate_up_proj", "down_proj"])
        XCTAssertEqual(fused.config.targetModules, .list(["k_proj", "o_proj", "q_proj", "v_proj"]))
        XCTAssertEqual(fused.config.rankPattern, [FusedExpertLoRA.gateUpPatternKey: .int(6)])
        XCTAssertEqual(fused.config.alphaPattern[FusedExpertLoRA.gateUpPatternKey], .int(12))
        let (e, h, im, layer) = (config.nRoutedExperts, config.hiddenSize, config.moeIntermediateSize, 0)
        let a = fused.tensors["model.layers.\(layer).mlp.experts.base_layer.lora_A.weight"]!
        let b = fused.tensors["model.layers.\(layer).mlp.experts.base_layer.lora_B.weight"]!
        XCTAssertEqual(a.shape, [e * 6, h]); XCTAssertEqual(b.shape, [2 * im, 6 * e])
        XCTAssertEqual(fused.tensors["model.layers.\(layer).mlp.experts.lora_A.weight"]?.shape, [e * 3, im])
        XCTAssertEqual(fused.tensors["model.layers.\(layer).mlp.experts.lora_B.weight"]?.shape, [h, 3 * e])
        // peft's ParamWrapper delta: A as (E, ρ, in), B as (out, ρ, E); ΔW_e = B_e·A_e (scale equal on both sides)
        for x in 0..<e {
            let pa = Tensor((0..<(6 * h)).map { a.scalars[(x * 6) * h + $0] }, shape: [6, h])
            let pb = Tensor((0..<(2 * im)).flatMap { o in (0..<6).map { k in b.scalars[o * 6 * e + k * e + x] } }, shape: [2 * im, 6])
            let peft = Tensor.matmul(pb, pa).scalars
            let (ga, gb) = adapter.matrices(module: "model.layers.\(layer).mlp.experts.\(x).gate_proj")!
            let (ua, ub) = adapter.matrices(module: "model.layers.\(layer).mlp.experts.\(x).up_proj")!
            let ours = Tensor.matmul(gb, ga).scalars + Tensor.matmul(ub, ua).scalars
            for (p, q) in zip(peft, ours) { XCTAssertEqual(p, q, accuracy: 1e-6) }
        }
        let dir = temporary("fused")
        try adapter.savePEFT(to: dir, experts: config.nRoutedExperts)
        let back = try PEFTAdapter.load(directory: dir, model: config)
        XCTAssertEqual(Set(back.tensors.keys), Set(adapter.tensors.keys))
        XCTAssertEqual(back.config.scale, adapter.config.scale)
        // Read back as peft reads that file: gate and up share A_e of rank 2r (what peft trains from it), with the
        // same ΔW; every other module bit for bit.
        for m in adapter.moduleNames {
            let (a0, b0) = adapter.matrices(module: m)!, (a1, b1) = back.matrices(module: m)!
            guard let info = FusedExpertLoRA.expertModule(m), info.fused == "gate_up_proj" else {
                assertBitwiseEqual(a1, a0, m); assertBitwiseEqual(b1, b0, m); continue
            }
            XCTAssertEqual(a1.shape, [6, h], m)
            let twin = m.replacingOccurrences(of: info.proj, with: info.proj == "gate_proj" ? "up_proj" : "gate_proj")
            assertBitwiseEqual(back.matrices(module: twin)!.a, a1, "\(m): A shared with \(twin)")
            for (p, q) in zip(Tensor.matmul(b1, a1).scalars, Tensor.matmul(b0, a0).scalars) { XCTAssertEqual(p, q, accuracy: 1e-6, m) }
        }
        // Exports split such a block-diagonal pair back into the rank-r adapters it came from, bit for bit (vLLM
        // and llama.cpp then serve rank r, as the config says); a pair whose B is not block-diagonal stays shared.
        let split = FusedExpertLoRA.splittingBlockDiagonal(back)
        XCTAssertEqual(Set(split.tensors.keys), Set(adapter.tensors.keys))
        for (n, t) in adapter.tensors { assertBitwiseEqual(split.tensors[n], t, n) }
        var dense = back.tensors
        let someB = "model.layers.0.mlp.experts.1.gate_proj.lora_B.weight"
        dense[someB] = Tensor(dense[someB]!.scalars.map { $0 == 0 ? 0.25 : $0 }, shape: dense[someB]!.shape)
        let kept = FusedExpertLoRA.splittingBlockDiagonal(PEFTAdapter(config: back.config, tensors: dense))
        XCTAssertEqual(kept.matrices(module: "model.layers.0.mlp.experts.1.gate_proj")!.a.shape, [6, h])
        XCTAssertEqual(kept.matrices(module: "model.layers.0.mlp.experts.0.gate_proj")!.a.shape, [3, h])
        // and written again, the same files
        let again = temporary("again")
        try back.savePEFT(to: again, experts: config.nRoutedExperts)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(again)/adapter_model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: "\(dir)/adapter_model.safetensors")))
    }

    func testOnlyDownProjFusesUnnested() throws {
        let config = try ModelDirectory.loadConfiguration(model("moe-c")) as! Glm4MoeConfig
        let adapter = randomAdapter(config, r: 2, alpha: 2, keep: { $0.target == "down_proj" || $0.target == "q_proj" })
        let fused = try FusedExpertLoRA.fuse(adapter, experts: config.nRoutedExperts)
        XCTAssertEqual(fused.config.targetParameters, ["down_proj"])
        XCTAssertTrue(fused.config.rankPattern.isEmpty)
        XCTAssertNotNil(fused.tensors["model.layers.0.mlp.experts.lora_A.weight"])
        let dir = temporary("down")
        try adapter.savePEFT(to: dir, experts: config.nRoutedExperts)
        let back = try PEFTAdapter.load(directory: dir, model: config)
        for (n, t) in adapter.tensors { assertBitwiseEqual(back.tensors[n], t, n) }
    }

    func testDenseAndSharedMLPLoRABesideExpertsIsRefused() throws {
        let config = try ModelDirectory.loadConfiguration(model("moe-a"))
        let adapter = randomAdapter(config, r: 2, alpha: 4, keep: { _ in true })
        XCTAssertThrowsError(try FusedExpertLoRA.fuse(adapter, experts: 4)) { e in
            let m = (e as! GLMError).message
            XCTAssertTrue(m.hasPrefix("model.layers.0.mlp.down_proj: LoRA on a dense or shared-expert MLP projection cannot be written in peft's layout"), m)
            XCTAssertFalse(m.contains("\n"))
        }
        // attention-only adapters on a MoE model are written as before (no target_parameters)
        let attention = randomAdapter(config, r: 2, alpha: 4, keep: { $0.kind == .attention })
        XCTAssertTrue(try FusedExpertLoRA.fuse(attention, experts: 4).config.targetParameters.isEmpty)
    }

    func testHostileFusedFilesAreOneLineErrors() throws {
        let base = try ModelDirectory.loadConfiguration(model("moe-a"))
        let src = model("moe-a-lora")
        func variant(_ edit: (inout [String: Tensor], inout String) -> Void) throws -> String {
            let dir = temporary("bad")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let file = try SafetensorsFile(path: "\(src)/adapter_model.safetensors")
            var t = Dictionary(uniqueKeysWithValues: try file.names.map { ($0, try file.tensor($0)) })
            var json = try String(contentsOfFile: "\(src)/adapter_config.json", encoding: .utf8)
            edit(&t, &json)
            try SafetensorsWriter.write(t, to: "\(dir)/adapter_model.safetensors")
            try json.write(toFile: "\(dir)/adapter_config.json", atomically: true, encoding: .utf8)
            return dir
        }
        func assertError(_ dir: String, _ prefix: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try PEFTAdapter.load(directory: dir, model: base), file: file, line: line) { e in
                let m = (e as! GLMError).message
                XCTAssertTrue(m.contains(prefix), m, file: file, line: line)
                XCTAssertFalse(m.contains("\n"), file: file, line: line)
            }
        }
        let key = "base_model.model.model.layers.1.mlp.experts.lora_B.weight"
        assertError(try variant { t, _ in t[key] = Tensor(zeros: [32, 15]) }, "tensor '\(key)': shape [32, 15]")
        assertError(try variant { t, _ in t[key] = nil }, "missing (lora_A and lora_B come in pairs)")
        assertError(try variant { _, j in j = j.replacingOccurrences(of: "\"gate_up_proj\",\n    \"down_proj\"", with: "\"gate_up_proj\",\n    \"w2\"") },
                    "key 'target_parameters': 'w2' is not a fused routed-expert parameter")
        assertError(try variant { _, j in j = j.replacingOccurrences(of: "\"k_proj\",", with: "\"k_proj\",\n    \"shared_experts.up_proj\",") },
                    "key 'target_modules': 'shared_experts.up_proj' beside target_parameters")
        assertError(try variant { _, j in j = j.replacingOccurrences(of: "\".*\\\\.gate_up_proj\": 16", with: "\".*\\\\.gate_up_proj\": 12") },
                    "key 'alpha_pattern': gate_up_proj scale 1.5 differs from lora_alpha/r = 2.0")
        assertError(try variant { _, j in j = j.replacingOccurrences(of: "\".*\\\\.gate_up_proj\": 8", with: "\"q_proj\": 8") },
                    "key 'rank_pattern': 'q_proj': per-module patterns are supported only for the fused routed-expert gate_up_proj")
        // a dense model has no routed experts
        let dense = try ModelDirectory.loadConfiguration("\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm4")
        let cfg = try AdapterConfig.load(path: "\(src)/adapter_config.json")
        XCTAssertThrowsError(try cfg.validate(against: dense, source: "x")) { e in
            XCTAssertTrue((e as! GLMError).message.hasPrefix("x: key 'target_parameters': this glm4 model has no routed experts"), (e as! GLMError).message)
        }
    }
}
