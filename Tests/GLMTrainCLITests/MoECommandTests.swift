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

    func testPEFTExpertAdaptersAreAOneLineError() throws {
        // peft's own adapter on moe-a (Scripts/make_moe_fixtures.py): peft 0.21 turned its gate/up/down targets into
        // target_parameters on the fused routed experts, which GLMTrain does not adapt yet.
        let input = GLMTrainBinary.temporary("in.jsonl")
        try Data("{\"tokens\": [1, 2, 3]}\n".utf8).write(to: URL(fileURLWithPath: input))
        let r = try GLMTrainBinary.run(["score", "--model", fixture("moe-a"), "--adapter", fixture("moe-a-lora"), "--input", input])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(fixture("moe-a-lora"))/adapter_config.json: key 'target_parameters': LoRA on fused expert parameters (gate_up_proj, down_proj"), r.stderr)
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
