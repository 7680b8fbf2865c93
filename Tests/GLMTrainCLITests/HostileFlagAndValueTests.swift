// More hostile input to the commands: values with line breaks, argument-parser mistakes, numbers at the edge of
// their types, configs that say more than GLMTrain computes, and run/export directories a user can get wrong.
// Each ends in one line (`error:`, or a `warning:` where the input may be meant) and no trap or hang.
import XCTest
import Foundation
import GLMCore
import GLMIO
import TestSupport

extension HostileInputCommandTests {
    func testValuesWithLineBreaksStillGiveOneLineErrors() throws {
        let m = try model("newline-type") { $0["model_type"] = "glm\nsecond line" }
        let r = try GLMTrainBinary.run(["generate", "--model", m, "--prompt-tokens", "5,6"])
        assertOneLineError(r, contains: ["glm\\nsecond line"])
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }

    func testArgumentParserMistakesAreOneLineErrors() throws {
        for args in [["generate", "--model", tiny, "--prompt", "hi", "--seed", "1e23"],
                     ["generate", "--model", tiny, "--prompt", "hi", "--max-new-tokens", "abc"],
                     ["generate", "--prompt", "hi"],
                     ["export", "--run", dir, "--format", "onnx", "--output", "\(dir)/x"],
                     ["score", "--model", tiny, "--no-such-flag"]] {
            let r = try GLMTrainBinary.run(args)
            assertOneLineError(r, contains: [])
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(args): \(r.stderr)")
        }
        // a negative number after a numeric option is its value, checked as such
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", tiny, "--prompt", "hi", "--max-new-tokens", "-1"]),
                           contains: ["--max-new-tokens must be ≥ 0, got -1"])
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", tiny, "--prompt", "hi", "--top-k", "-5"]),
                           contains: ["--top-k must be ≥ 0, got -5"])
        // help is still help
        let help = try GLMTrainBinary.run(["generate", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("--max-new-tokens"), help.stdout)
    }

    func testGenerationFlagsAtTheEdgesOfTheirTypes() throws {
        // Int.max new tokens: clamped with the warning, not an arithmetic-overflow trap
        let r = try GLMTrainBinary.run(["generate", "--model", tiny, "--prompt-tokens", "5,6", "--max-new-tokens", "9223372036854775807", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: --max-new-tokens 9223372036854775807"), r.stderr)
        // a temperature whose inverse overflows samples the most likely token, as greedy does
        let greedy = try GLMTrainBinary.run(["generate", "--model", tiny, "--prompt-tokens", "5,6", "--max-new-tokens", "6", "--json"])
        for t in ["1e-38", "1e-45"] {
            let tiny = try GLMTrainBinary.run(["generate", "--model", self.tiny, "--prompt-tokens", "5,6", "--max-new-tokens", "6", "--json", "--temperature", t, "--seed", "2"])
            XCTAssertEqual(tiny.status, 0, tiny.stderr)
            let a = try JSONSerialization.jsonObject(with: Data(tiny.stdout.utf8)) as! [String: Any]
            let b = try JSONSerialization.jsonObject(with: Data(greedy.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(a["tokens"] as? [Int], b["tokens"] as? [Int], t)
        }
        // empty items in --prompt-tokens are a mistake, not skipped
        for ids in ["1,,2", "1,2,", ",1"] {
            assertOneLineError(try GLMTrainBinary.run(["generate", "--model", tiny, "--prompt-tokens", ids]),
                               contains: ["--prompt-tokens: '' is not an integer token id"])
        }
    }

    func testABF16RecipeThatRunsF32SaysWhy() throws {
        // GLMTRAIN_BF16=0 (or a CPU without AVX512_BF16) turns bf16 products off: the run says so instead of
        // silently training f32 under a recipe that reads precision: bf16 (found by a bf16 fidelity audit).
        let path = try recipe("bf16-off", steps: 1) { $0.replacingOccurrences(of: "seed: 1}", with: "seed: 1, precision: bf16}") }
        let r = try GLMTrainBinary.run(["run", path], environment: ["GLMTRAIN_BF16": "0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: \(path): training.precision: bf16") && r.stderr.contains("matrix products stay f32"), r.stderr)
        let doctor = try GLMTrainBinary.run(["doctor"], environment: ["GLMTRAIN_BF16": "0"])
        XCTAssertEqual(doctor.status, 0, doctor.stderr)
        XCTAssertTrue(doctor.stdout.contains("GLMTRAIN_BF16=0") || doctor.stdout.contains("needs AVX512_BF16"), doctor.stdout)
    }

    func testRopeScalingBesideRopeParametersIsCheckedNotIgnored() throws {
        let m = try model("yarn") { $0["rope_scaling"] = ["rope_type": "yarn", "factor": 4] }
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", m, "--prompt-tokens", "5,6", "--max-new-tokens", "1"]),
                           contains: ["\(m)/config.json", "'rope_scaling'", "rope_type \"yarn\" is not supported"])
        let plain = try model("default-scaling") { $0["rope_scaling"] = ["rope_type": "default"] }
        XCTAssertEqual(try GLMTrainBinary.run(["generate", "--model", plain, "--prompt-tokens", "5,6", "--max-new-tokens", "1"]).status, 0)
    }

    func testTokenizeRefusesATokenizerBeyondTheModelVocabulary() throws {
        let m = try model("tok-vocab") { $0["vocab_size"] = 1000; $0["eos_token_id"] = [1]; $0["pad_token_id"] = 0 }
        try "{\"text\": \"hello\"}\n".write(toFile: "\(dir)/t.jsonl", atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["tokenize", "--model", m, "--input", "\(dir)/t.jsonl"]),
                           contains: ["\(m): the tokenizer has ids up to 2047 but config.json's vocab_size is 1000"])
    }

    func testRecipeValuesThatMayNotBeMeantAreWarnedAbout() throws {
        let null = try recipe("null-lora", steps: 1) { $0.replacingOccurrences(of: "lora: {rank: 4}", with: "lora:\nschedule: {warmup_steps: 100}") }
        let r = try GLMTrainBinary.run(["run", null])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: \(null): lora is null: full fine-tuning of every parameter"), r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: \(null): schedule.warmup_steps 100 is more than training.steps 1"), r.stderr)
    }

    func testOutputDirectoriesThatAreNotRunsAreRefusedBeforeStepOne() throws {
        // a directory of someone else's files
        let busy = "\(dir)/busy-run"
        try FileManager.default.createDirectory(atPath: busy, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: "\(busy)/notes.txt", contents: Data("mine".utf8))
        let path = try recipe("busy-run")
        assertOneLineError(try GLMTrainBinary.run(["run", path]), contains: ["\(busy): output_dir holds other files (notes.txt)", "--overwrite"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: busy), ["notes.txt"], "nothing written among them")
        // a file where the run writes a directory: refused before training, not after it
        let run = "\(dir)/in-the-way"
        XCTAssertEqual(try GLMTrainBinary.run(["run", try recipe("in-the-way", steps: 1)]).status, 0)
        try FileManager.default.removeItem(atPath: "\(run)/adapter")
        FileManager.default.createFile(atPath: "\(run)/adapter", contents: Data("x".utf8))
        let again = try GLMTrainBinary.run(["run", "\(dir)/in-the-way.yaml", "--overwrite"])
        assertOneLineError(again, contains: ["\(run)/adapter: is a file where the run writes its adapter directory"])
        XCTAssertFalse(again.stderr.contains("step 1"), again.stderr)
        // a run directory is still a run directory (resume, overwrite)
        try FileManager.default.removeItem(atPath: "\(run)/adapter")
        XCTAssertEqual(try GLMTrainBinary.run(["run", "\(dir)/in-the-way.yaml", "--overwrite"]).status, 0)
    }

    func testExportNeverReplacesWhatItReads() throws {
        let path = try recipe("exp-self", steps: 1)
        XCTAssertEqual(try GLMTrainBinary.run(["run", path]).status, 0)
        let base = "\(dir)/base-copy"
        try FileManager.default.copyItem(atPath: tiny, toPath: base)
        let before = try FileManager.default.contentsOfDirectory(atPath: base).sorted()
        assertOneLineError(try GLMTrainBinary.run(["export", "--adapter", "\(dir)/exp-self/adapter", "--model", base, "--format", "merged", "--output", base + "/."]),
                           contains: ["is the base model the export reads"])
        assertOneLineError(try GLMTrainBinary.run(["export", "--adapter", "\(dir)/exp-self/adapter", "--format", "peft", "--output", "\(dir)/exp-self/adapter"]),
                           contains: ["is the adapter the export reads"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: base).sorted(), before)
        assertOneLineError(try GLMTrainBinary.run(["export", "--run", "\(dir)/exp-self", "--format", "merged", "--dtype", "int8", "--output", "\(dir)/m"]),
                           contains: ["--dtype: 'int8' is not one of float32, bfloat16, float16"])
        assertOneLineError(try GLMTrainBinary.run(["export", "--run", "\(dir)/exp-self", "--format", "merged", "--dtype", "float16", "--output", "\(dir)/m"]),
                           contains: ["--dtype applies to merged exports of full fine-tunes"])
    }
}

extension HostileInputCommandTests {
    func testDirectoriesWhereFilesBelongAreNamedAsSuch() throws {
        let folder = "\(dir)/a-folder"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        assertOneLineError(try GLMTrainBinary.run(["score", "--model", tiny, "--input", folder]),
                           contains: ["\(folder): is a directory; expected a file"])
        assertOneLineError(try GLMTrainBinary.run(["run", folder]), contains: ["\(folder): is a directory; expected a file"])
        assertOneLineError(try GLMTrainBinary.run(["run", "\(folder)/none.yaml"]), contains: ["\(folder)/none.yaml: missing (no such file)"])
        let train = try recipe("train-dir", steps: 1) {
            $0.replacingOccurrences(of: "\(Fixtures.repositoryRoot)/Data/quickstart/train.jsonl", with: folder)
        }
        assertOneLineError(try GLMTrainBinary.run(["run", train]), contains: ["data.train: '\(folder)' is a directory; expected a JSONL file"])
        // a model directory whose config.json is a directory
        let m = "\(dir)/config-dir"
        try FileManager.default.createDirectory(atPath: "\(m)/config.json", withIntermediateDirectories: true)
        assertOneLineError(try GLMTrainBinary.run(["generate", "--model", m, "--prompt-tokens", "1"]),
                           contains: ["\(m)/config.json: is a directory; expected a file"])
    }

    func testInputsMayBePipes() throws {
        // a FIFO (what `--input <(...)` gives) is read like a file; FileManager.contents(atPath:) returned nil for it
        let fifo = "\(dir)/lines.fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let writer = Thread { try? "{\"tokens\": [5, 6, 7]}\n".write(toFile: fifo, atomically: false, encoding: .utf8) }
        writer.start()
        let r = try GLMTrainBinary.run(["score", "--model", tiny, "--input", fifo])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((obj["logprobs"] as? [Double])?.count, 2, r.stdout)
    }
}
