// The glm-train commands on a glm4_moe model directory (Scripts/make_moe_fixtures.py): score and greedy generate
// equal transformers, inspect shows the per-expert tensors, and a broken MoE config is a one-line error.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class MoECommandTests: XCTestCase {
    func fixture(_ name: String) -> String { "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/\(name)" }

    func testScoreAndGenerateEqualTransformers() throws {
        for name in ["moe-a", "moe-b", "moe-c"] {
            let expected = try SafetensorsFile(path: "\(fixture(name))/expected.safetensors")
            let ids = try expected.ids("single.ids")
            let input = GLMTrainBinary.temporary("in.jsonl"), output = GLMTrainBinary.temporary("out.jsonl")
            try Data("{\"tokens\": \(ids)}\n".utf8).write(to: URL(fileURLWithPath: input))
            let r = try GLMTrainBinary.run(["score", "--model", fixture(name), "--input", input, "--output", output])
            XCTAssertEqual(r.status, 0, r.stderr)
            let got = (try JSONLines.read(output)[0].object["logprobs"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) }
            let want = try expected.tensor("single.logprobs").scalars
            XCTAssertEqual(got.count, want.count)
            for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 2e-4, name) }

            let prompt = try expected.ids("generate.prompt").map(String.init).joined(separator: ",")
            let g = try GLMTrainBinary.run(["generate", "--model", fixture(name), "--prompt-tokens", prompt, "--max-new-tokens", "8",
                                            "--temperature", "0", "--json"])
            XCTAssertEqual(g.status, 0, g.stderr)
            let obj = try JSONSerialization.jsonObject(with: Data(g.stdout.utf8)) as! [String: Any]
            let tokens = obj["tokens"] as! [Int]
            let stop = tokens.firstIndex { $0 == 1 || $0 == 2 }.map { $0 + 1 } ?? tokens.count  // eos 1, 2 stop it
            XCTAssertEqual(tokens, Array(try expected.ids("generate.tokens").map(Int.init).prefix(stop)), name)
        }
    }

    func testInspectShowsTheMoEConfigAndPerExpertTensors() throws {
        let r = try GLMTrainBinary.run(["inspect", fixture("moe-b")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"model_type\": \"glm4_moe\""), r.stdout)
        XCTAssertTrue(r.stdout.contains("model.layers.2.mlp.experts.7.down_proj.weight"), r.stdout)
        XCTAssertTrue(r.stdout.contains("model.layers.1.mlp.gate.e_score_correction_bias"), r.stdout)
    }

    func testPeftsRoutedExpertAdapterGivesPeftsLogProbs() throws {
        // peft's own adapter on moe-a (Scripts/make_moe_fixtures.py): peft 0.21 turned its gate/up/down targets into
        // target_parameters on the fused routed experts (rank 8 gate_up, rank 4 down); expected.safetensors holds
        // peft's log-probs with it
        let expected = try SafetensorsFile(path: "\(fixture("moe-a-lora"))/expected.safetensors")
        let batch = try expected.tensor("batch.ids"), single = try expected.ids("single.ids")
        let rows = (0..<batch.shape[0]).map { i in (0..<batch.shape[1]).map { Int(batch.scalars[i * batch.shape[1] + $0]) } }
        let input = GLMTrainBinary.temporary("in.jsonl"), output = GLMTrainBinary.temporary("out.jsonl")
        try Data((rows + [single.map(Int.init)]).map { "{\"tokens\": \($0)}\n" }.joined().utf8).write(to: URL(fileURLWithPath: input))
        let r = try GLMTrainBinary.run(["score", "--model", fixture("moe-a"), "--adapter", fixture("moe-a-lora"), "--input", input, "--output", output])
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = try JSONLines.read(output).map { ($0.object["logprobs"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) } }
        let want = try expected.tensor("batch.logprobs").scalars, wantSingle = try expected.tensor("single.logprobs").scalars
        let n = batch.shape[1] - 1
        var worst: Float = 0
        for i in 0..<rows.count { for (g, w) in zip(got[i], want[(i * n)..<((i + 1) * n)]) { worst = max(worst, abs(g - w)) } }
        for (g, w) in zip(got[rows.count], wantSingle) { worst = max(worst, abs(g - w)) }
        XCTAssertLessThanOrEqual(worst, 1e-5, "max |glm-train score − peft| \(worst)")
        // the adapter moves the log-probs (so the comparison tests the expert LoRA)
        let base = try SafetensorsFile(path: "\(fixture("moe-a"))/expected.safetensors").tensor("single.logprobs").scalars
        XCTAssertGreaterThan(zip(base, wantSingle).map { abs($0 - $1) }.max()!, 1e-2)

        // export --format peft writes it back as peft saved it
        let out = GLMTrainBinary.temporary("moe-peft")
        let e = try GLMTrainBinary.run(["export", "--adapter", fixture("moe-a-lora"), "--model", fixture("moe-a"), "--format", "peft", "--output", out])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(e.stdout.contains("routed experts as target_parameters gate_up_proj, down_proj"), e.stdout)
        // (the same tensors bit for bit; the header's key order within an entry is the newer safetensors' own)
        let ours = try SafetensorsFile(path: "\(out)/adapter_model.safetensors")
        let theirs = try SafetensorsFile(path: "\(fixture("moe-a-lora"))/adapter_model.safetensors")
        XCTAssertEqual(Set(ours.names), Set(theirs.names))
        for n in theirs.names { XCTAssertEqual(try ours.tensor(n).scalars.map(\.bitPattern), try theirs.tensor(n).scalars.map(\.bitPattern), n) }
        XCTAssertEqual(try String(contentsOfFile: "\(out)/adapter_config.json", encoding: .utf8),
                       try String(contentsOfFile: "\(fixture("moe-a-lora"))/adapter_config.json", encoding: .utf8))
        // GGUF LoRA writes the routed experts as llama.cpp's stacked blk.1.ffn_{down,gate,up}_exps
        let g = try GLMTrainBinary.run(["export", "--adapter", fixture("moe-a-lora"), "--model", fixture("moe-a"), "--format", "gguf-lora", "--output", out + ".gguf"])
        XCTAssertEqual(g.status, 0, g.stderr)
        let names = try GGUFFile(path: out + ".gguf").tensors.map(\.name)
        for p in ["down", "gate", "up"] { XCTAssertTrue(names.contains("blk.1.ffn_\(p)_exps.weight.lora_b"), "\(names)") }
    }

    func testPeftsNativeTargetParametersAdapterGivesPeftsLogProbs() throws {
        // peft's own target_parameters adapter on moe-b (Scripts/make_moe_fixtures.py): rsLoRA, gate and up sharing
        // one rank-4 A per expert, two MoE layers of 8 experts; expected.safetensors holds peft's log-probs
        let dir = fixture("moe-b-lora-params")
        let expected = try SafetensorsFile(path: "\(dir)/expected.safetensors")
        let single = try expected.ids("single.ids")
        let input = GLMTrainBinary.temporary("in.jsonl"), output = GLMTrainBinary.temporary("out.jsonl")
        try Data("{\"tokens\": \(single.map(Int.init))}\n".utf8).write(to: URL(fileURLWithPath: input))
        let r = try GLMTrainBinary.run(["score", "--model", fixture("moe-b"), "--adapter", dir, "--input", input, "--output", output])
        XCTAssertEqual(r.status, 0, r.stderr)
        let got = (try JSONLines.read(output)[0].object["logprobs"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) }
        let want = try expected.tensor("single.logprobs").scalars
        XCTAssertEqual(got.count, want.count)
        let worst = zip(got, want).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 1e-5, "max |glm-train score − peft| \(worst)")
        let out = GLMTrainBinary.temporary("moe-b-peft")
        let e = try GLMTrainBinary.run(["export", "--adapter", dir, "--format", "peft", "--output", out])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertEqual(try String(contentsOfFile: "\(out)/adapter_config.json", encoding: .utf8),
                       try String(contentsOfFile: "\(dir)/adapter_config.json", encoding: .utf8))
        let ours = try SafetensorsFile(path: "\(out)/adapter_model.safetensors"), theirs = try SafetensorsFile(path: "\(dir)/adapter_model.safetensors")
        XCTAssertEqual(Set(ours.names), Set(theirs.names))
        for n in theirs.names { XCTAssertEqual(try ours.tensor(n).scalars.map(\.bitPattern), try theirs.tensor(n).scalars.map(\.bitPattern), n) }
    }

    func testARunFromPeftsRoutedExpertAdapterExportsFromItsCheckpoints() throws {
        // Training keeps a routed expert's gate/up A as one tensor (peft's shared A), stored once in checkpoints;
        // export --run reads it back for both (it failed: "lora_B without its lora_A"), in every format.
        let dir = GLMTrainBinary.temporary("moe-from-peft")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try (0..<4).map { i in "{\"tokens\": \((0..<16).map { ($0 * 7 + i * 5) % 64 })}" }.joined(separator: "\n")
            .write(toFile: "\(dir)/tokens.jsonl", atomically: true, encoding: .utf8)
        let recipe = """
        task: pretrain
        model: {path: \(fixture("moe-b")), adapter: \(fixture("moe-b-lora-params"))}
        data: {train: \(dir)/tokens.jsonl, shuffle: false}
        training: {steps: 2, batch_size: 2, seq_len: 16}
        optimizer: {name: adamw, lr: 1.0e-2}
        lora: {rank: 4, alpha: 8, rslora: true, dropout: 0, targets: [q_proj, v_proj, gate_proj, up_proj, down_proj]}
        moe: {bias_update_rate: 0}
        checkpoint: {every: 1}
        output_dir: \(dir)/run
        """
        try recipe.write(toFile: "\(dir)/r.yaml", atomically: true, encoding: .utf8)
        let r = try GLMTrainBinary.run(["run", "\(dir)/r.yaml"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for format in ["peft", "merged", "gguf-lora", "vllm"] {
            let out = "\(dir)/out-\(format)" + (format == "gguf-lora" ? ".gguf" : "")
            let e = try GLMTrainBinary.run(["export", "--run", "\(dir)/run", "--format", format, "--output", out])
            XCTAssertEqual(e.status, 0, "\(format): \(e.stderr)")
        }
        // The checkpoint's export equals the run's own adapter (written with every module's name).
        let fromCheckpoint = try SafetensorsFile(path: "\(dir)/out-peft/adapter_model.safetensors")
        let final = "\(dir)/final-peft"
        XCTAssertEqual(try GLMTrainBinary.run(["export", "--adapter", "\(dir)/run/adapter", "--format", "peft", "--output", final]).status, 0)
        let fromAdapter = try SafetensorsFile(path: "\(final)/adapter_model.safetensors")
        XCTAssertEqual(Set(fromCheckpoint.names), Set(fromAdapter.names))
        XCTAssertTrue(fromCheckpoint.names.contains { $0.hasSuffix("mlp.experts.base_layer.lora_A.weight") }, "\(fromCheckpoint.names)")
        for n in fromAdapter.names { XCTAssertEqual(try fromCheckpoint.tensor(n).scalars, try fromAdapter.tensor(n).scalars, n) }
    }

    func testBrokenMoEConfigIsAOneLineError() throws {
        let dir = GLMTrainBinary.temporary("moe-broken")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: "\(fixture("moe-b"))/\(f)", toPath: "\(dir)/\(f)")
        }
        let config = try String(contentsOfFile: "\(dir)/config.json", encoding: .utf8)
            .replacingOccurrences(of: "\"n_group\": 4", with: "\"n_group\": 3")
        try config.write(toFile: "\(dir)/config.json", atomically: true, encoding: .utf8)
        let r = try GLMTrainBinary.run(["generate", "--model", dir, "--prompt-tokens", "1,2"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr, "error: \(dir)/config.json: n_routed_experts 8 is not a multiple of n_group 3\n")
    }
}
