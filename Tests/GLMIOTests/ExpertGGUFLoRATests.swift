// GGUF LoRA on a MoE's routed experts (GGUFStackedLoRA): llama.cpp stacks them into blk.N.ffn_*_exps, so their
// A and B are written as [experts, r, in] / [experts, out, r] stacks. Checked against what llama.cpp's
// convert_lora_to_gguf.py writes (Scripts/make_moe_gguf_lora_fixture.py), read back exactly, with left-out experts
// and a peft adapter whose gate/up rank differs from r; malformed stacks are one-line errors.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class ExpertGGUFLoRATests: XCTestCase {
    func model(_ name: String) -> String { "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/\(name)" }
    func temporary(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "glmtrain-expert-gguf-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return "\(dir)/\(name)"
    }

    func assertBitwiseEqual(_ a: Tensor?, _ b: Tensor?, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let a, let b else { return XCTFail("\(what): missing", file: file, line: line) }
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        XCTAssertEqual(a.scalars.map(\.bitPattern), b.scalars.map(\.bitPattern), what, file: file, line: line)
    }

    /// ΔW = scale·B·A of one module, [out, in].
    func delta(a: Tensor, b: Tensor, scale: Double) -> [Double] {
        let (out, r, inner) = (b.shape[0], a.shape[0], a.shape[1])
        var d = [Double](repeating: 0, count: out * inner)
        for i in 0..<out { for j in 0..<inner { for k in 0..<r { d[i * inner + j] += Double(b.pointer[i * r + k]) * Double(a.pointer[k * inner + j]) } } }
        return d.map { $0 * scale }
    }

    func testRoutedExpertsAreWrittenAsLlamaCppsConverterStacksThem() throws {
        let dir = model("moe-a-experts-lora")
        let base = try ModelDirectory.loadConfiguration(model("moe-a"))
        let adapter = try PEFTAdapter.load(directory: dir, model: base)
        XCTAssertTrue(adapter.moduleNames.contains("model.layers.1.mlp.experts.3.down_proj"))
        let ours = try GGUFLoRA.writer(adapter: adapter, model: base, name: "moe-a-experts-lora").data()
        let theirs = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/adapter.gguf"))
        XCTAssertEqual(ours, theirs, "GGUF bytes differ from convert_lora_to_gguf.py's")
        let file = try GGUFFile(path: "\(dir)/adapter.gguf")
        let gate = file.tensors.first { $0.name == "blk.1.ffn_gate_exps.weight.lora_b" }!
        XCTAssertEqual(gate.dimensions, [4, 16, 4])  // ggml ne: [r, out, experts]
    }

    func testReadingTheStacksGivesThePerExpertMatricesBack() throws {
        let dir = model("moe-a-experts-lora")
        let base = try ModelDirectory.loadConfiguration(model("moe-a"))
        let adapter = try PEFTAdapter.load(directory: dir, model: base)
        let back = try GGUFLoRA.read(path: "\(dir)/adapter.gguf", model: base)
        XCTAssertEqual(Set(back.tensors.keys), Set(adapter.tensors.keys))
        for (k, t) in adapter.tensors { assertBitwiseEqual(back.tensors[k], t, k) }
        XCTAssertEqual(back.config.r, 4)
    }

    func testLeftOutExpertsAreZeroInTheStackAndAbsentWhenRead() throws {
        let base = try ModelDirectory.loadConfiguration(model("moe-a"))
        var tensors: [String: Tensor] = [:]
        var value: Float = 0.01
        let kept = base.adaptableLinears.filter { $0.module.hasSuffix("experts.0.gate_proj") || $0.module.hasSuffix("experts.2.gate_proj") || $0.target == "q_proj" }
        XCTAssertEqual(kept.count, 4)
        for m in kept {
            tensors[LoRATensorName.name(module: m.module, isB: false)] = Tensor((0..<(2 * m.shape[1])).map { _ in value += 0.003; return value }, shape: [2, m.shape[1]])
            tensors[LoRATensorName.name(module: m.module, isB: true)] = Tensor((0..<(m.shape[0] * 2)).map { _ in value -= 0.005; return value }, shape: [m.shape[0], 2])
        }
        let adapter = PEFTAdapter(config: AdapterConfig(r: 2, loraAlpha: 3, targetModules: .regex(#".*(q_proj|experts\.(0|2)\.gate_proj)"#)), tensors: tensors)
        let path = temporary("partial.gguf")
        try GGUFLoRA.write(adapter: adapter, model: base, to: path, name: "partial")
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.tensors.map(\.name), ["blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b",
                                                  "blk.1.ffn_gate_exps.weight.lora_a", "blk.1.ffn_gate_exps.weight.lora_b",
                                                  "blk.1.attn_q.weight.lora_a", "blk.1.attn_q.weight.lora_b"])
        let b = try file.tensor("blk.1.ffn_gate_exps.weight.lora_b")
        XCTAssertEqual(b.shape, [4, 16, 2])
        for e in [1, 3] { XCTAssertTrue(b.scalars[(e * 32)..<((e + 1) * 32)].allSatisfy { $0 == 0 }, "expert \(e)") }
        let back = try GGUFLoRA.read(path: path, model: base)
        XCTAssertEqual(Set(back.tensors.keys), Set(tensors.keys))
        for (k, t) in tensors { assertBitwiseEqual(back.tensors[k], t, k) }
    }

    func testAGateUpRankAboveRIsRescaledSoLlamaCppsScaleIsTheAdapters() throws {
        // peft's moe-a-lora: gate and up share one rank-8 A per expert (rank_pattern 8, alpha_pattern 16, r 4,
        // alpha 8): llama.cpp applies alpha/8 to that stack, so B is written ×2 and every expert's ΔW is peft's
        let base = try ModelDirectory.loadConfiguration(model("moe-a"))
        let adapter = try PEFTAdapter.load(directory: model("moe-a-lora"), model: base)
        let path = temporary("moe-a-lora.gguf")
        try GGUFLoRA.write(adapter: adapter, model: base, to: path, name: "moe-a-lora")
        let file = try GGUFFile(path: path)
        let alpha = Double(adapter.config.effectiveAlpha)
        XCTAssertEqual(file.value("adapter.lora.alpha"), .float32(Float(alpha)))
        for proj in ["gate", "up", "down"] {
            let a = try file.tensor("blk.1.ffn_\(proj)_exps.weight.lora_a"), b = try file.tensor("blk.1.ffn_\(proj)_exps.weight.lora_b")
            let rank = a.shape[1], inner = a.shape[2], out = b.shape[1]
            XCTAssertEqual(rank, proj == "down" ? 4 : 8, proj)
            for e in 0..<4 {
                let (ma, mb) = adapter.matrices(module: "model.layers.1.mlp.experts.\(e).\(proj)_proj")!
                let ea = Tensor(Array(a.scalars[(e * rank * inner)..<((e + 1) * rank * inner)]), shape: [rank, inner])
                let eb = Tensor(Array(b.scalars[(e * out * rank)..<((e + 1) * out * rank)]), shape: [out, rank])
                let want = delta(a: ma, b: mb, scale: adapter.config.scale), got = delta(a: ea, b: eb, scale: alpha / Double(rank))
                let worst = zip(want, got).map { abs($0 - $1) }.max()!
                XCTAssertLessThan(worst, 1e-6, "\(proj) expert \(e): ΔW under llama.cpp's alpha/rank")
                XCTAssertGreaterThan(want.map(abs).max()!, 1e-3)
            }
        }
    }

    func testMalformedStacksAreOneLineErrors() throws {
        let base = try ModelDirectory.loadConfiguration(model("moe-a"))
        func file(_ tensors: [(String, [Int])]) throws -> String {
            var w = GGUFWriter()
            w.add("general.architecture", .string("glm4moe"))
            w.add("general.type", .string("adapter"))
            w.add("adapter.type", .string("lora"))
            w.add("adapter.lora.alpha", .float32(8))
            for (name, shape) in tensors { w.add(tensor: Tensor(Array(repeating: 0.5, count: shape.reduce(1, *)), shape: shape), name: name) }
            let path = temporary("bad.gguf")
            try w.write(to: path)
            return path
        }
        let cases: [([(String, [Int])], String)] = [
            ([("blk.1.ffn_gate_exps.weight.lora_a", [3, 4, 32]), ("blk.1.ffn_gate_exps.weight.lora_b", [3, 16, 4])], "not a stack of 4 experts"),
            ([("blk.1.ffn_gate_exps.weight.lora_a", [4, 4, 32]), ("blk.1.ffn_gate_exps.weight.lora_b", [4, 16, 2])], "lora_a [4, 4, 32] and lora_b [4, 16, 2] are not a stack"),
            ([("blk.1.ffn_gate_exps.weight.lora_a", [4, 4, 32])], "blk.1.ffn_gate_exps.weight.lora_b' is missing"),
            ([("blk.1.ffn_gate_exps.weight.lora_a", [128, 32]), ("blk.1.ffn_gate_exps.weight.lora_b", [4, 16, 4])], "expected a stack"),
            ([("blk.1.ffn_gate_exps.weight.lora_a", [4, 4, 33]), ("blk.1.ffn_gate_exps.weight.lora_b", [4, 16, 4])], "gate_proj"),
            ([("blk.0.ffn_gate_exps.weight.lora_a", [4, 4, 32]), ("blk.0.ffn_gate_exps.weight.lora_b", [4, 16, 4])], "not a LoRA matrix"),
            ([("blk.0.attn_q.weight.lora_a", [4, 4, 32]), ("blk.0.attn_q.weight.lora_b", [32, 4])], "expected a matrix"),
        ]
        for (tensors, message) in cases {
            let path = try file(tensors)
            XCTAssertThrowsError(try GGUFLoRA.read(path: path, model: base), message) { e in
                let text = "\(e)"
                XCTAssertTrue(text.contains(message), "\(text) (expected '\(message)')")
                XCTAssertTrue(text.contains(path), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
        }
    }
}
