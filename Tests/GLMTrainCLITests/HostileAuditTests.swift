// Findings of the 2026-12-07 hostile-input audit, each a one-line error now: a tokenizer whose post-processor adds
// ids beyond the model's vocabulary, a prompt that tokenizes to nothing, a model.init beyond the machine's memory,
// GGUF metadata arrays that would cost 40× their size, a diverged adapter (named by its file, nothing written),
// config files that are devices, directories or not UTF-8, a pipe as safetensors, transformers' default pad id,
// a rope_theta whose angles overflow, and NaN metadata in `inspect --json`.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

extension HostileInputCommandTests {
    /// A copy of the bundled model with `edit` applied to its tokenizer.json object.
    func modelWithTokenizer(_ name: String, edit: (inout [String: Any]) -> Void) throws -> String {
        let m = try model(name)
        let path = "\(m)/tokenizer.json"
        var t = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&t)
        try JSONSerialization.data(withJSONObject: t).write(to: URL(fileURLWithPath: path))
        return m
    }

    func testAPostProcessorIdBeyondTheVocabularyIsRefusedBeforeItIsEmbedded() throws {
        let m = try modelWithTokenizer("post-processor", edit: { t in
            var pp = t["post_processor"] as! [String: Any]
            var special = pp["special_tokens"] as! [String: Any]
            var gmask = special["[gMASK]"] as! [String: Any]
            gmask["ids"] = [100000]
            special["[gMASK]"] = gmask; pp["special_tokens"] = special; t["post_processor"] = pp
        })
        try "{\"text\": \"hello\"}\n".write(toFile: "\(dir)/text.jsonl", atomically: true, encoding: .utf8)
        let message = "\(m)/tokenizer.json: post_processor special token id 100000 is outside config.json's vocab_size 2048"
        for args in [["score", "--model", m, "--input", "\(dir)/text.jsonl"], ["generate", "--model", m, "--prompt", "hello"],
                     ["tokenize", "--model", m, "--input", "\(dir)/text.jsonl"]] {
            assertOneLineError(try GLMTrainBinary.run(args), contains: [message])
        }
        let path = try recipe("pp-run") { $0.replacingOccurrences(of: "model: {path: \(self.tiny)}", with: "model: {path: \(m)}") }
        assertOneLineError(try GLMTrainBinary.run(["run", path]), contains: ["post_processor special token id 100000"])
    }

    func testAPromptThatTokenizesToNothingIsAnError() throws {
        let m = try modelWithTokenizer("no-post-processor", edit: { $0["post_processor"] = NSNull() })
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", m, "--prompt", "", "--max-new-tokens", "2"]),
                           contains: ["--prompt \"\": tokenizes to no tokens"])
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", m, "--prompt", "hi", "--prompt", "", "--max-new-tokens", "2"]),
                           contains: ["--prompt \"\": tokenizes to no tokens"])
        try "{\"prompt\": \"\", \"answer\": \"x\"}\n".write(toFile: "\(dir)/em.jsonl", atomically: true, encoding: .utf8)
        let path = try recipe("empty-prompt") {
            $0.replacingOccurrences(of: "model: {path: \(self.tiny)}", with: "model: {path: \(m)}")
                + "\neval: {every: 1, hooks: [{type: exact_match, name: em, file: \(self.dir)/em.jsonl, chat: false, max_new_tokens: 2}]}\n"
        }
        assertOneLineError(try GLMTrainBinary.run(["eval", "--model", m, "--recipe", path]),
                           contains: ["\(dir)/em.jsonl:1: the prompt tokenizes to no tokens"])
    }

    func testAModelInitBeyondTheMachinesMemoryIsRefusedBeforeAllocating() throws {
        let path = "\(dir)/init.yaml"
        try """
        task: pretrain
        model:
          init: {model_type: glm, vocab_size: 65536, hidden_size: 65536, num_hidden_layers: 1, num_attention_heads: 1, num_key_value_heads: 1, head_dim: 64, intermediate_size: 64, max_position_embeddings: 64, pad_token_id: 0, eos_token_id: [0]}
          tokenizer: \(tiny)
        data: {train: \(Fixtures.repositoryRoot)/Data/tiny-corpus/train.jsonl, shuffle: false}
        training: {steps: 1, batch_size: 1, seq_len: 32, seed: 0}
        optimizer: {name: adamw, lr: 1.0e-4}
        output_dir: \(dir)/init
        """.write(toFile: path, atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["run", path]),
                           contains: ["\(path): model.init has 8619491520 parameters", "16 bytes each), more than the", "MiB this process may use"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/init/checkpoints"))
    }

    func testScoreRefusesAnOutputThatIsItsInputOrInsideTheModel() throws {
        let m = "\(dir)/model"
        try FileManager.default.copyItem(atPath: tiny, toPath: m)
        let input = "\(dir)/in.jsonl"
        try "{\"tokens\": [1, 2]}\n".write(toFile: input, atomically: true, encoding: .utf8)
        let before = try Data(contentsOf: URL(fileURLWithPath: "\(m)/model.safetensors"))
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", m, "--input", input, "--output", "\(m)/model.safetensors"]),
                           contains: ["--output \(m)/model.safetensors is inside the model directory \(m) the command reads"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(m)/model.safetensors")), before, "the model is untouched")
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", m, "--input", input, "--output", input]),
                           contains: ["is the --input file"])
        // A Hugging Face cache snapshot links its files into blobs/: the link is the model's file all the same.
        let blobs = "\(dir)/blobs", snapshot = "\(dir)/snapshot"
        try FileManager.default.createDirectory(atPath: blobs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: snapshot, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: m) {
            try FileManager.default.copyItem(atPath: "\(m)/\(name)", toPath: "\(blobs)/\(name)")
            try FileManager.default.createSymbolicLink(atPath: "\(snapshot)/\(name)", withDestinationPath: "\(blobs)/\(name)")
        }
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", snapshot, "--input", input, "--output", "\(snapshot)/model.safetensors"]),
                           contains: ["is inside the model directory"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(blobs)/model.safetensors")), before)
        let ok = try GLMTrainBinary.run(["score", "--model", m, "--input", input, "--output", "\(dir)/scores.jsonl"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
    }

    func testAnUnknownModelInitKeyIsAnErrorWithTheNearestName() throws {
        let path = "\(dir)/init.yaml"
        try """
        task: pretrain
        model:
          init: {model_type: glm, vocab_size: 2048, hiden_size: 64, num_hidden_layers: 1, num_attention_heads: 2, pad_token_id: 0, eos_token_id: [0]}
          tokenizer: \(tiny)
        data: {train: \(Fixtures.repositoryRoot)/Data/tiny-corpus/train.jsonl, shuffle: false}
        training: {steps: 1, batch_size: 1, seq_len: 32, seed: 0}
        optimizer: {name: adamw, lr: 1.0e-4}
        output_dir: \(dir)/init
        """.write(toFile: path, atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["run", path]),
                           contains: ["\(path): model.init.hiden_size: not a glm config key (did you mean 'hidden_size'?)"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/init"))
    }

    func testMemoryBoundsFollowTheProcessLimitNotTheMachine() throws {
        // Under ulimit -v 3 GB, reading /dev/zero or a 7 GB sparse file stops at a quarter of it with an error
        // (the bound was half the machine's memory: the read died in an allocation).
        let sparse = "\(dir)/sparse.jsonl"
        FileManager.default.createFile(atPath: sparse, contents: nil)
        let h = FileHandle(forWritingAtPath: sparse)!
        try h.truncate(atOffset: 7 << 30); try h.close()
        for input in ["/dev/zero", sparse] {
            let r = try GLMTrainBinary.run(["tokenize", "--model", tiny, "--input", input], addressSpaceKiB: 3_000_000)
            assertOneLineError(r, contains: ["\(input): more than", "bytes; not read"])
        }
        // A KV cache beyond half of what the process may use is refused, not allocated.
        let prompts = (0..<400).flatMap { _ in ["--prompt-tokens", "5"] }
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", tiny, "--max-new-tokens", "1000"] + prompts, addressSpaceKiB: 3_000_000),
                           contains: ["the KV cache for 400 prompts", "MiB this process may use"])
    }

    func testAProcessLimitTooSmallToRunIsRefusedAtStart() throws {
        // Under ulimit -v of 250-500 MB score hung or aborted in allocations no check saw coming; now: one line
        // (below ~350 MB OpenBLAS itself hangs while it initialises, before glm-train runs: a library limit).
        let input = "\(dir)/in.jsonl"
        try "{\"tokens\": [1, 2, 3]}\n".write(toFile: input, atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", tiny, "--input", input], addressSpaceKiB: 400_000),
                           contains: ["MiB (ulimit -v / -d or its cgroup); glm-train needs at least 512 MiB"])
        let doctor = try GLMTrainBinary.run(["doctor"], addressSpaceKiB: 400_000)
        XCTAssertTrue(doctor.stdout.contains("memory limit:"), doctor.stdout + doctor.stderr)
    }

    func testAMicroBatchWhoseActivationsCannotFitIsRefusedBeforeStepOne() throws {
        let path = "\(dir)/big.yaml"
        try """
        task: pretrain
        model: {path: \(tiny)}
        data: {train: \(Fixtures.repositoryRoot)/Data/tiny-corpus/train.jsonl}
        training: {steps: 1, batch_size: 65536, seq_len: 64, seed: 0}
        optimizer: {name: adamw, lr: 1.0e-4}
        output_dir: \(dir)/big
        """.write(toFile: path, atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["run", path]),
                           contains: ["\(path): training.batch_size × seq_len puts 65536 rows × 64 tokens in a micro-batch", "72 KiB a token", "gradient_checkpointing: true"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/big"))
    }

    func testGGUFMetadataArraysAreBoundedInAll() throws {
        func gguf(_ name: String, arrays: [Int]) throws -> String {
            var d = Data("GGUF".utf8)
            func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
            func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
            u32(3); u64(0); u64(UInt64(arrays.count))
            for (i, n) in arrays.enumerated() {
                let key = Data("k\(i)".utf8)
                u64(UInt64(key.count)); d.append(key)
                u32(9); u32(0); u64(UInt64(n)); d.append(Data(count: n))  // an array of n uint8
            }
            let path = "\(dir)/\(name).gguf"
            try d.write(to: URL(fileURLWithPath: path))
            return path
        }
        let one = try gguf("one-array", arrays: [5_000_000])
        assertOneLineError(try GLMTrainBinary.run(["inspect", one]),
                           contains: ["\(one): key 'k0': an array of 5000000 elements passes the 4194304 metadata values read in all"])
        let two = try gguf("two-arrays", arrays: [3_000_000, 3_000_000])
        assertOneLineError(try GLMTrainBinary.run(["inspect", two]), contains: ["\(two): key 'k1': an array of 3000000 elements"])
        let fine = try gguf("fine", arrays: [1000, 2000])
        XCTAssertEqual(try GLMTrainBinary.run(["inspect", fine]).status, 0)
    }

    func testADivergedAdapterIsNamedByItsFileAndNothingIsWritten() throws {
        let path = try recipe("nan-adapter")
        XCTAssertEqual(try GLMTrainBinary.run(["run", path]).status, 0)
        let adapter = "\(dir)/nan-adapter/adapter"
        let weights = "\(adapter)/adapter_model.safetensors"
        var tensors = try SafetensorsFile(path: weights).allTensors()
        let name = tensors.keys.sorted()[0]
        tensors[name]!.pointer[0] = .nan
        try SafetensorsWriter.write(tensors, to: weights)
        for format in ["peft", "vllm", "merged", "gguf-lora"] {
            for output in ["\(dir)/out-\(format)/sub", "\(dir)/out-\(format)-file/sub/x.gguf"] where format == "gguf-lora" || !output.hasSuffix(".gguf") {
                assertOneLineError(try GLMTrainBinary.run(["export", "--adapter", adapter, "--model", tiny, "--format", format, "--output", output]),
                                   contains: ["\(weights): tensor ", "has a non-finite value"])
                XCTAssertFalse(FileManager.default.fileExists(atPath: (output as NSString).deletingLastPathComponent), "\(format): \(output)")
            }
        }
        // Applied to a model — generate, and a run that starts from it (model.adapter) — it is named the same way.
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", tiny, "--adapter", adapter, "--prompt", "hi", "--max-new-tokens", "2"]),
                           contains: ["\(weights): tensor ", "has a non-finite value", "cannot be applied"])
        let start = try recipe("from-nan-adapter") {
            $0.replacingOccurrences(of: "model: {path: \(self.tiny)}", with: "model: {path: \(self.tiny), adapter: \(adapter)}")
        }
        assertOneLineError(try GLMTrainBinary.run(["run", start]), contains: ["\(weights): tensor ", "cannot be applied"])
    }

    func testConfigFilesThatAreDevicesDirectoriesOrNotText() throws {
        let zero = try model("dev-zero")
        try FileManager.default.removeItem(atPath: "\(zero)/config.json")
        try FileManager.default.createSymbolicLink(atPath: "\(zero)/config.json", withDestinationPath: "/dev/zero")
        try "{\"tokens\": [5, 6]}\n".write(toFile: "\(dir)/ids.jsonl", atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", zero, "--input", "\(dir)/ids.jsonl"]),
                           contains: ["\(zero)/config.json: more than \(FileLimits.maxConfigBytes) bytes; not read"])
        assertOneLineError(try GLMTrainBinary.run(["inspect", zero]), contains: ["\(zero)/config.json: more than"])
        let binary = "\(dir)/binary-config"
        try FileManager.default.createDirectory(atPath: binary, withIntermediateDirectories: true)
        try Data([0xff, 0xfe, 0x00, 0x62]).write(to: URL(fileURLWithPath: "\(binary)/config.json"))
        assertOneLineError(try GLMTrainBinary.run(["inspect", binary]), contains: ["\(binary)/config.json: not UTF-8 text; expected JSON"])
        let folder = "\(dir)/folder-config"
        try FileManager.default.createDirectory(atPath: "\(folder)/config.json", withIntermediateDirectories: true)
        assertOneLineError(try GLMTrainBinary.run(["inspect", folder]), contains: ["\(folder)/config.json: is a directory; expected a file"])
    }

    func testAPipeOrADeviceAsSafetensorsIsNotARegularFile() throws {
        let link = "\(dir)/zero.safetensors"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/zero")
        assertOneLineError(try GLMTrainBinary.run(["inspect", link]),
                           contains: ["\(link): not a regular file (a pipe or a device); safetensors files are memory-mapped"])
        // a symlink to a file on disk (as a Hugging Face cache has them) is read
        let file = "\(dir)/linked.safetensors"
        try FileManager.default.createSymbolicLink(atPath: file, withDestinationPath: "\(tiny)/model.safetensors")
        let r = try GLMTrainBinary.run(["inspect", file])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("model.embed_tokens.weight"), r.stdout)
    }

    func testConfigValuesTheFileDoesNotHoldOrThatOverflowAreNamedAsSuch() throws {
        try "{\"tokens\": [5, 6]}\n".write(toFile: "\(dir)/ids.jsonl", atomically: true, encoding: .utf8)
        let noPad = try model("no-pad") { $0.removeValue(forKey: "pad_token_id") }
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", noPad, "--input", "\(dir)/ids.jsonl"]),
                           contains: ["\(noPad)/config.json: pad_token_id is not set, and transformers' default 151329 is outside the vocabulary of 2048"])
        let theta = try model("tiny-theta") { c in
            if var rope = c["rope_parameters"] as? [String: Any] { rope["rope_theta"] = 1e-300; c["rope_parameters"] = rope }
            else { c["rope_theta"] = 1e-300 }
        }
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", theta, "--input", "\(dir)/ids.jsonl"]),
                           contains: ["rope_theta 1e-300 is too small"])
    }

    func testInspectJSONWritesNonFiniteGGUFMetadataAsStrings() throws {
        var d = Data("GGUF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        u32(3); u64(0); u64(2)
        u64(1); d.append(Data("x".utf8)); u32(6); u32(Float.nan.bitPattern)                          // f32 NaN
        u64(1); d.append(Data("y".utf8)); u32(12); u64(Double.infinity.bitPattern)                     // f64 +inf
        let path = "\(dir)/nan.gguf"
        try d.write(to: URL(fileURLWithPath: path))
        let r = try GLMTrainBinary.run(["inspect", "--json", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let values = (obj["metadata"] as? [[String: Any]])?.map { $0["value"] as? String }
        XCTAssertEqual(values, ["nan", "inf"])
    }

    func testSmallerMistakesSayWhatTheyAre() throws {
        // a boolean where a token id belongs is shown as the boolean
        try "{\"tokens\": [true, 5]}\n".write(toFile: "\(dir)/bool.jsonl", atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", tiny, "--input", "\(dir)/bool.jsonl"]),
                           contains: ["\"tokens\"[0] is true; expected an integer"])
        // tokens and text on one line: which one was meant is not guessed
        try "{\"tokens\": [5, 6], \"text\": \"hello\"}\n".write(toFile: "\(dir)/both.jsonl", atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", tiny, "--input", "\(dir)/both.jsonl"]),
                           contains: ["\(dir)/both.jsonl:1: both \"tokens\" and \"text\"; expected one of them"])
        // --chat has no text to render with --prompt-tokens: said, not silently ignored
        let r = try GLMTrainBinary.run(["generate", "--model", tiny, "--prompt-tokens", "5,6", "--chat", "--max-new-tokens", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: --chat renders --prompt text; --prompt-tokens are used as given"), r.stderr)
        // a shard index naming an empty or control-character file name
        for (name, shard) in [("empty-shard", ""), ("nul-shard", "model\u{0}.safetensors")] {
            let m = try model(name)
            try FileManager.default.moveItem(atPath: "\(m)/model.safetensors", toPath: "\(m)/model-00001-of-00001.safetensors")
            let names = try SafetensorsFile(path: "\(m)/model-00001-of-00001.safetensors").names
            var map = Dictionary(uniqueKeysWithValues: names.map { ($0, "model-00001-of-00001.safetensors") })
            map[names[0]] = shard
            try JSONSerialization.data(withJSONObject: ["weight_map": map]).write(to: URL(fileURLWithPath: "\(m)/model.safetensors.index.json"))
            let r = try GLMTrainBinary.run(["score", "--model", m, "--input", "\(dir)/both.jsonl"])
            assertOneLineError(r, contains: ["model.safetensors.index.json: shard file name", "must be a plain file name"])
            XCTAssertFalse(r.stderr.contains("\u{0}"), "a raw NUL in the message")
        }
    }
}
