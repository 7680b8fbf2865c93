// Hostile input to the commands, as a user would give it: every case ends with a one-line `error:` (or a stated
// warning) and a clean exit — no trap, hang, huge allocation or half-written file.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

final class HostileInputCommandTests: XCTestCase {
    var dir = ""
    var tiny: String { "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny" }

    override func setUpWithError() throws {
        dir = GLMTrainBinary.temporary("hostile")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func assertOneLineError(_ r: GLMTrainBinary.Result, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { !$0.hasPrefix("warning: ") }
        XCTAssertEqual(lines.last.map { $0.hasPrefix("error: ") }, true, r.stderr, file: file, line: line)
        XCTAssertEqual(lines.filter { $0.hasPrefix("error: ") }.count, 1, r.stderr, file: file, line: line)
        for p in parts { XCTAssertTrue(r.stderr.contains(p), "missing '\(p)' in: \(r.stderr)", file: file, line: line) }
    }

    /// A copy of the bundled model with `edit` applied to its config.json object.
    func model(_ name: String, config edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let m = "\(dir)/\(name)"
        try FileManager.default.copyItem(atPath: tiny, toPath: m)
        var c = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(m)/config.json"))) as! [String: Any]
        edit(&c)
        try JSONSerialization.data(withJSONObject: c).write(to: URL(fileURLWithPath: "\(m)/config.json"))
        return m
    }

    func testGenerationStopsAtMaxPositionEmbeddingsAndRefusesLongerPrompts() throws {
        let m = try model("short") { $0["max_position_embeddings"] = 16 }
        let r = try GLMTrainBinary.run(["generate", "--model", m, "--prompt-tokens", "5,6,7", "--max-new-tokens", "100000000",
                                        "--json", "--temperature", "1", "--seed", "3"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: --max-new-tokens 100000000 with a 3-token prompt passes max_position_embeddings 16; generating at most 13 tokens"), r.stderr)
        let out = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertLessThanOrEqual((out["tokens"] as! [Int]).count, 13)
        let long = (0..<17).map { _ in "5" }.joined(separator: ",")
        try "{\"tokens\": [\(long)]}\n".write(toFile: "\(dir)/long.jsonl", atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", m, "--input", "\(dir)/long.jsonl"]),
                           contains: ["\(dir)/long.jsonl:1: 17 tokens is more than the model's max_position_embeddings 16"])
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", m, "--prompt-tokens", long]),
                           contains: ["prompt 1: 17 tokens is more than the model's max_position_embeddings 16"])
    }

    func testNaNWeightsAreAnErrorNotAFoundationJSONFailure() throws {
        let m = try model("nan")
        let st = try SafetensorsFile(path: "\(m)/model.safetensors")
        var tensors = try st.allTensors()
        let norm = tensors["model.norm.weight"]!
        norm.pointer[0] = .nan
        tensors["model.norm.weight"] = norm
        try SafetensorsWriter.write(tensors, to: "\(m)/model.safetensors")
        try "{\"tokens\": [1, 2, 3]}\n".write(toFile: "\(dir)/in.jsonl", atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", m, "--input", "\(dir)/in.jsonl"]),
                           contains: ["\(dir)/in.jsonl:1: log-probability 0 is nan", "NaN or Inf"])
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", m, "--prompt-tokens", "1,2", "--json", "--max-new-tokens", "2"]),
                           contains: ["prompt 1: a generated token's log-probability is nan"])
        // Training on it: the loss is NaN before any update, which no learning rate causes.
        let path = try recipe("nan-run") { $0.replacingOccurrences(of: "model: {path: \(self.tiny)}", with: "model: {path: \(m)}") }
        let run = try GLMTrainBinary.run(["run", path])
        assertOneLineError(run, contains: ["step 1: the loss is nan before any update"])
        XCTAssertFalse(run.stderr.contains("lower optimizer.lr"), run.stderr)
    }

    func testTokenizerIdsBeyondTheModelVocabularyAreRefused() throws {
        // The model keeps only the first 1000 rows of its vocabulary; its tokenizer still has 2048 tokens.
        let m = try model("small-vocab") { $0["vocab_size"] = 1000; $0["eos_token_id"] = [1]; $0["pad_token_id"] = 0 }
        var tensors = try SafetensorsFile(path: "\(m)/model.safetensors").allTensors()
        for name in ["model.embed_tokens.weight", "lm_head.weight"] {
            tensors[name] = tensors[name]!.slice(axis: 0, start: 0, length: 1000)
        }
        try SafetensorsWriter.write(tensors, to: "\(m)/model.safetensors")
        let message = "\(m): the tokenizer has ids up to 2047 but config.json's vocab_size is 1000"
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", m, "--prompt", "hello"]), contains: [message])
        try "{\"text\": \"hello\"}\n".write(toFile: "\(dir)/text.jsonl", atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", m, "--input", "\(dir)/text.jsonl"]), contains: [message])
        // Token ids from the input are checked against the model too (here without a tokenizer in the way).
        try FileManager.default.removeItem(atPath: "\(m)/tokenizer.json")
        try "{\"tokens\": [5, 1000]}\n".write(toFile: "\(dir)/ids.jsonl", atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", m, "--input", "\(dir)/ids.jsonl"]),
                           contains: ["\(dir)/ids.jsonl:1: token id 1000 at index 1 is outside the vocabulary of 1000"])
    }

    /// A LoRA SFT recipe on the bundled model; `change` edits the text.
    func recipe(_ name: String, steps: Int = 2, _ change: (String) -> String = { $0 }) throws -> String {
        let text = change("""
        task: sft
        model: {path: \(tiny)}
        data: {train: \(Fixtures.repositoryRoot)/Data/quickstart/train.jsonl, packing: true, shuffle: false}
        training: {steps: \(steps), batch_size: 2, seq_len: 64, seed: 1}
        lora: {rank: 4}
        checkpoint: {every: 1}
        output_dir: \(dir)/\(name)
        """)
        let path = "\(dir)/\(name).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testSeqLenTooShortToTrainAnythingFailsBeforeStepOne() throws {
        let path = try recipe("short") { $0.replacingOccurrences(of: "seq_len: 64", with: "seq_len: 3") }
        let r = try GLMTrainBinary.run(["run", path])
        assertOneLineError(r, contains: ["training.seq_len 3 is too short", "data.train"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/short/checkpoints/step-00000001.h5"))
        let long = try recipe("long") { $0.replacingOccurrences(of: "seq_len: 64", with: "seq_len: 5000") }
        assertOneLineError(try GLMTrainBinary.run(["run", long]), contains: ["training.seq_len 5000 is more than the model's max_position_embeddings 1024"])
        let target = try recipe("target") { $0.replacingOccurrences(of: "rank: 4", with: "rank: 4, targets: [q_proj, lm_head]") }
        assertOneLineError(try GLMTrainBinary.run(["run", target]),
                           contains: ["lora.targets: unknown target 'lm_head'; this glm model declares q_proj, k_proj, v_proj, o_proj, gate_up_proj, down_proj, all-linear"])
        let rank = try recipe("rank") { $0.replacingOccurrences(of: "rank: 4", with: "rank: 300") }
        assertOneLineError(try GLMTrainBinary.run(["run", rank]), contains: ["lora rank 300 is larger than the model's hidden_size 256"])
    }

    /// Crafted HDF5 files (metadata checksums valid) that crash libhdf5 1.10.8 itself: read in a child process
    /// first, so each is a one-line error naming the file, and a resume skips such a checkpoint with a warning.
    func testCheckpointsThatCrashTheHDF5LibraryAreAnErrorNotACrash() throws {
        let known = "\(Fixtures.repositoryRoot)/Tests/Fuzz/Known/checkpoint"
        let files = try FileManager.default.contentsOfDirectory(atPath: known).filter { $0.hasSuffix(".h5") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 8)
        for name in files {
            let r = try GLMTrainBinary.run(["inspect", "\(known)/\(name)"])
            assertOneLineError(r, contains: ["\(known)/\(name)"])
        }
        let crash = "\(known)/segv-or-use-after-free-H5F__accum_read-via-H5Aexists.h5"
        assertOneLineError(try GLMTrainBinary.run(["inspect", crash]), contains: ["the HDF5 library crashed reading it"])

        let first = try recipe("crafted", steps: 1)
        XCTAssertEqual(try GLMTrainBinary.run(["run", first]).status, 0)
        try FileManager.default.copyItem(atPath: crash, toPath: "\(dir)/crafted/checkpoints/step-00000005.h5")
        let again = try recipe("crafted", steps: 2)
        let r = try GLMTrainBinary.run(["run", again, "--resume"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("skipped \(dir)/crafted/checkpoints/step-00000005.h5: not a readable checkpoint"), r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(dir)/crafted/checkpoints/step-00000002.h5"))
    }

    func testResumingWithOtherBatchesWarnsWhatChanged() throws {
        let first = try recipe("resume", steps: 2)
        XCTAssertEqual(try GLMTrainBinary.run(["run", first]).status, 0)
        let second = try recipe("resume", steps: 3) {
            $0.replacingOccurrences(of: "batch_size: 2", with: "batch_size: 3").replacingOccurrences(of: "seed: 1", with: "seed: 2")
                .replacingOccurrences(of: "shuffle: false}", with: "shuffle: false, end_final_turn: false}")
        }
        let r = try GLMTrainBinary.run(["run", second, "--resume"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("written with data.end_final_turn true under data.end_final_turn false"), r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: resuming a checkpoint (step 2) written with training.batch_size 2 under training.batch_size 3"), r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: resuming a checkpoint (step 2) written with training.seed 1 under training.seed 2"), r.stderr)
        // The same recipe resumes without a word.
        let third = try recipe("resume", steps: 4) {
            $0.replacingOccurrences(of: "batch_size: 2", with: "batch_size: 3").replacingOccurrences(of: "seed: 1", with: "seed: 2")
                .replacingOccurrences(of: "shuffle: false}", with: "shuffle: false, end_final_turn: false}")
        }
        let quiet = try GLMTrainBinary.run(["run", third, "--resume"])
        XCTAssertEqual(quiet.status, 0, quiet.stderr)
        XCTAssertFalse(quiet.stderr.contains("warning: resuming"), quiet.stderr)
    }

    func testExportOntoAFileOrIntoAReadOnlyPlaceIsAOneLineError() throws {
        let path = try recipe("exp")
        XCTAssertEqual(try GLMTrainBinary.run(["run", path]).status, 0)
        FileManager.default.createFile(atPath: "\(dir)/a-file", contents: Data("x".utf8))
        for format in ["peft", "vllm", "merged", "gguf-lora"] {
            assertOneLineError(try GLMTrainBinary.run(["export", "--run", "\(dir)/exp", "--format", format, "--output", "\(dir)/a-file"]),
                               contains: ["\(dir)/a-file"])
            assertOneLineError(try GLMTrainBinary.run(["export", "--run", "\(dir)/exp", "--format", format, "--output", "\(dir)/a-file/sub"]),
                               contains: ["\(dir)/a-file"])
        }
        XCTAssertEqual(try String(contentsOfFile: "\(dir)/a-file", encoding: .utf8), "x", "the file in the way is untouched")
        // A directory holding other things (a home directory, a folder of models) is never replaced.
        let busy = "\(dir)/busy"
        try FileManager.default.createDirectory(atPath: "\(busy)/other-model", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(busy)/notes.txt", contents: Data("mine".utf8))
        for format in ["peft", "vllm", "merged"] {
            assertOneLineError(try GLMTrainBinary.run(["export", "--run", "\(dir)/exp", "--format", format, "--output", busy]),
                               contains: ["\(busy): exists and holds", "refusing to replace it"])
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: busy).sorted(), ["notes.txt", "other-model"])
        // Exporting again over an export replaces it.
        for format in ["peft", "merged"] {
            XCTAssertEqual(try GLMTrainBinary.run(["export", "--run", "\(dir)/exp", "--format", format, "--output", "\(dir)/again-\(format)"]).status, 0)
            let r = try GLMTrainBinary.run(["export", "--run", "\(dir)/exp", "--format", format, "--output", "\(dir)/again-\(format)"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        // /proc is read-only even for root.
        assertOneLineError(try GLMTrainBinary.run(["export", "--run", "\(dir)/exp", "--format", "merged", "--output", "/proc/glmtrain-export"]),
                           contains: ["/proc/glmtrain-export"])
    }

    func testTokenizeRefusesOpenAIToolCallsAsRunDoes() throws {
        let line = #"{"messages": [{"role": "user", "content": "weather?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get", "arguments": "{}"}}]}]}"#
        try (line + "\n").write(toFile: "\(dir)/tools.jsonl", atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["tokenize", "--model", tiny, "--input", "\(dir)/tools.jsonl"]),
                           contains: ["\(dir)/tools.jsonl:1: messages[1] has \"tool_calls\""])
    }

    func testAFullDiskDuringACheckpointIsAnErrorAndNoCrash() throws {
        let mountPoint = "\(dir)/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=600k", "tmpfs", mountPoint]
        mount.standardError = FileHandle.nullDevice
        try mount.run(); mount.waitUntilExit()
        try XCTSkipUnless(mount.terminationStatus == 0, "cannot mount a small tmpfs here (needs root)")
        defer {
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = [mountPoint]
            try? umount.run(); umount.waitUntilExit()
        }
        // Full fine-tuning: a checkpoint (weights + AdamW moments) is far larger than 600 KiB.
        let path = try recipe("full") {
            $0.replacingOccurrences(of: "lora: {rank: 4}\n", with: "").replacingOccurrences(of: "output_dir: \(self.dir)/full", with: "output_dir: \(mountPoint)/run")
        }
        let r = try GLMTrainBinary.run(["run", path])
        assertOneLineError(r, contains: ["\(mountPoint)/run/checkpoints/step-00000001.h5: cannot write", "No space left on device"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(mountPoint)/run/checkpoints"), [], "no half-written checkpoint is left")
    }
}
