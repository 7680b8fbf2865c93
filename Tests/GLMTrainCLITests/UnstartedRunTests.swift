// A run whose inputs fail their checks stops with one `error:` line before it starts anything: an async GRPO run
// checks its prompts and rl.eval's file before it starts its trainer and rollout processes (each child used to report
// the bad line and be restarted: nine error lines), and a run directory the run made is removed again.
import XCTest
import Foundation
import TestSupport

extension HostileInputCommandTests {
    func grpoRecipe(_ name: String, prompts: String, extraRL: String = "") throws -> (path: String, output: String) {
        let output = "\(dir)/\(name)-run"
        let path = "\(dir)/\(name).yaml"
        try """
        task: grpo
        model: {path: \(tiny)}
        data: {train: \(prompts)}
        training: {steps: 2, seed: 3}
        optimizer: {name: adamw, lr: 1.0e-3}
        lora: {rank: 4, alpha: 8, dropout: 0}
        rl: {mode: async, prompts_per_batch: 2, n_samples_per_prompt: 2, max_new_tokens: 4, micro_batch_size: 2,
             reward: {type: exact_match}\(extraRL)}
        output_dir: \(output)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return (path, output)
    }

    func testAnAsyncGRPORunChecksItsPromptsBeforeStartingItsProcesses() throws {
        let good = "\(dir)/good.jsonl", bad = "\(dir)/bad.jsonl", noAnswer = "\(dir)/no-answer.jsonl"
        try "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": \"2+2=\", \"answer\": \"4\"}\n"
            .write(toFile: good, atomically: true, encoding: .utf8)
        try "{\"prompt\": \"1+1=\", \"answer\": \"2\"}\n{\"prompt\": 7}\n".write(toFile: bad, atomically: true, encoding: .utf8)
        try "{\"prompt\": \"1+1=\"}\n".write(toFile: noAnswer, atomically: true, encoding: .utf8)
        let cases: [(String, String, String, String)] = [
            ("bad-line", bad, "", "\(bad):2"),
            ("no-answer", noAnswer, "", "\(noAnswer):1: no \"answer\""),
            ("bad-eval", good, ", eval: {file: \(bad), every: 1}", "\(bad):2"),
            ("missing-eval", good, ", eval: {file: \(dir)/none.jsonl, every: 1}", "rl.eval.file: '\(dir)/none.jsonl' does not exist"),
        ]
        for (name, prompts, extra, message) in cases {
            let (path, output) = try grpoRecipe(name, prompts: prompts, extraRL: extra)
            let r = try GLMTrainBinary.run(["run", path])
            assertOneLineError(r, contains: [message])
            XCTAssertFalse(r.stderr.contains("restarting"), "\(name): a child process was started: \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: output), "\(name): the run directory was made")
        }
    }

    func testARunThatFailsItsChecksLeavesNoRunDirectoryBehind() throws {
        try "{\"text\": \"hello\"}\n{\"text\": 5}\n".write(toFile: "\(dir)/bad-text.jsonl", atomically: true, encoding: .utf8)
        let output = "\(dir)/sft-run"
        let path = "\(dir)/sft.yaml"
        try """
        task: pretrain
        model: {path: \(tiny)}
        data: {train: \(dir)/bad-text.jsonl}
        training: {steps: 2, batch_size: 1, seq_len: 16}
        output_dir: \(output)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        assertOneLineError(try GLMTrainBinary.run(["run", path]), contains: ["\(dir)/bad-text.jsonl:2"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: output), "the failed run left its directory")
        // An existing empty directory stays (empty).
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        assertOneLineError(try GLMTrainBinary.run(["run", path]), contains: ["\(dir)/bad-text.jsonl:2"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: output), [])
    }
}
