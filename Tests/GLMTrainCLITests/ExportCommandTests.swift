// `glm-train export` and `--adapter`, run as a user runs them: a run directory's LoRA checkpoint exported as PEFT
// (the files peft saved for the same weights), GGUF (llama.cpp converter's bytes) and merged (peft's log-probs
// through `score`); `score --adapter`; one-line errors.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class ExportCommandTests: XCTestCase {
    let fixtureName = "glm4-r8"
    var adapterDir: String { "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/peft/\(fixtureName)" }
    var baseDir: String { "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures/glm4" }

    /// A run directory holding a LoRA training checkpoint (the trainer's contract) with the fixture's weights.
    func makeRun() throws -> String {
        let run = GLMTrainBinary.temporary(fixtureName)
        let adapter = try PEFTAdapter.load(directory: adapterDir)
        let configText = try String(contentsOfFile: "\(adapterDir)/adapter_config.json", encoding: .utf8)
        var ckpt = TrainingCheckpoint(tensors: adapter.tensors, optimizerState: [:], step: 5)
        ckpt.metadata = ["adapter_config": configText, "base_model": baseDir]
        try CheckpointDirectory("\(run)/checkpoints").save(ckpt, keep: 2)
        return run
    }

    func singleLogProbs(_ args: [String]) throws -> [Float] {
        let expected = try SafetensorsFile(path: "\(adapterDir)/expected.safetensors")
        let input = GLMTrainBinary.temporary("in.jsonl"), output = GLMTrainBinary.temporary("out.jsonl")
        try Data("{\"tokens\": \(try expected.ids("single.ids"))}\n".utf8).write(to: URL(fileURLWithPath: input))
        let r = try GLMTrainBinary.run(["score", "--input", input, "--output", output] + args)
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try JSONLines.read(output)[0]
        return (line.object["logprobs"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) }
    }

    func assertClose(_ got: [Float], _ want: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-4, what, file: file, line: line) }
    }

    func testExportRunAsPEFTGGUFAndMerged() throws {
        let run = try makeRun()
        // PEFT: the same tensors peft saved; the config names the base model.
        let peft = GLMTrainBinary.temporary("peft")
        var r = try GLMTrainBinary.run(["export", "--run", run, "--format", "peft", "--output", peft])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("12 modules, r=8, alpha=16"), r.stdout)
        let ours = try SafetensorsFile(path: "\(peft)/adapter_model.safetensors")
        let theirs = try SafetensorsFile(path: "\(adapterDir)/adapter_model.safetensors")
        XCTAssertEqual(ours.names, theirs.names)
        for n in theirs.names { XCTAssertEqual(try ours.tensor(n).scalars, try theirs.tensor(n).scalars, n) }
        XCTAssertEqual(try String(contentsOfFile: "\(peft)/adapter_config.json", encoding: .utf8),
                       try String(contentsOfFile: "\(adapterDir)/adapter_config.json", encoding: .utf8))

        // GGUF: byte for byte what llama.cpp's convert_lora_to_gguf.py wrote (the run directory's name is the fixture's).
        let gguf = GLMTrainBinary.temporary("gguf")
        r = try GLMTrainBinary.run(["export", "--run", run, "--format", "gguf-lora", "--output", gguf, "--name", fixtureName])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(gguf)/adapter.gguf")),
                       try Data(contentsOf: URL(fileURLWithPath: "\(adapterDir)/adapter.gguf")))

        // Merged: a model directory that scores as peft's merge_and_unload does.
        let merged = GLMTrainBinary.temporary("merged")
        r = try GLMTrainBinary.run(["export", "--checkpoint", "\(run)/checkpoints/step-00000005.h5", "--format", "merged", "--output", merged])
        XCTAssertEqual(r.status, 0, r.stderr)
        let expected = try SafetensorsFile(path: "\(adapterDir)/expected.safetensors")
        assertClose(try singleLogProbs(["--model", merged]), try expected.tensor("single.logprobs_merged").scalars, "merged")

        // vLLM flavour from a PEFT directory.
        let vllm = GLMTrainBinary.temporary("vllm")
        r = try GLMTrainBinary.run(["export", "--adapter", adapterDir, "--model", baseDir, "--format", "vllm", "--output", vllm])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("--max-lora-rank 8"), r.stdout)
        XCTAssertNotNil(try SafetensorsFile(path: "\(vllm)/adapter_model.safetensors").entries["base_model.model.model.layers.0.mlp.up_proj.lora_B.weight"])
    }

    func testScoreWithAdapterGivesPeftsLogProbs() throws {
        let expected = try SafetensorsFile(path: "\(adapterDir)/expected.safetensors")
        assertClose(try singleLogProbs(["--model", baseDir, "--adapter", adapterDir]), try expected.tensor("single.logprobs").scalars, "--adapter")
        let r = try GLMTrainBinary.run(["generate", "--model", baseDir, "--adapter", adapterDir, "--prompt-tokens", "5,17,33",
                                        "--max-new-tokens", "3", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func testErrorsAreOneLine() throws {
        func assertOneLineError(_ args: [String], contains: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let r = try GLMTrainBinary.run(args)
            XCTAssertNotEqual(r.status, 0, file: file, line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, file: file, line: line)
            XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains(contains), r.stderr, file: file, line: line)
        }
        let out = GLMTrainBinary.temporary("never")
        try assertOneLineError(["export", "--run", "/nonexistent-run", "--format", "peft", "--output", out], contains: "/nonexistent-run/checkpoints")
        try assertOneLineError(["export", "--adapter", adapterDir, "--run", "/x", "--format", "peft", "--output", out], contains: "exactly one")
        // An adapter whose shapes do not fit the base model (the glm4 adapter on a model with another hidden size).
        try assertOneLineError(["export", "--adapter", adapterDir, "--model", "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/peft/glm-qv",
                                "--format", "merged", "--output", out], contains: "config.json")
        // A PEFT directory whose rank disagrees with its tensors.
        let bad = GLMTrainBinary.temporary("bad-adapter")
        try FileManager.default.createDirectory(atPath: bad, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: "\(adapterDir)/adapter_model.safetensors", toPath: "\(bad)/adapter_model.safetensors")
        let text = try String(contentsOfFile: "\(adapterDir)/adapter_config.json", encoding: .utf8)
        try Data(text.replacingOccurrences(of: "\"r\": 8,", with: "\"r\": 4,").utf8).write(to: URL(fileURLWithPath: "\(bad)/adapter_config.json"))
        let input = GLMTrainBinary.temporary("in.jsonl")
        try Data("{\"tokens\": [1, 2, 3]}\n".utf8).write(to: URL(fileURLWithPath: input))
        try assertOneLineError(["score", "--model", baseDir, "--adapter", bad, "--input", input],
                               contains: "\(bad)/adapter_model.safetensors: tensor 'base_model.model.model.layers.0.mlp.down_proj.lora_A.weight': rank mismatch")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}
