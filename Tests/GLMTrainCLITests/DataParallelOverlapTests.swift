// `training.allreduce_overlap`: buckets allreduced while the last backward still runs give, bit for bit, the
// losses, weights and optimizer state of the allreduce after the backward (two processes: each element is the sum
// of the same two numbers, only computed earlier) — with tiny buckets so that many of them overlap, for a dense
// model, for the bundled MoE (experts that get no tokens on one process leave its tape shaped differently) and
// with activation recompute (whose parameters are only known to be final when the backward returns).
import XCTest
import Foundation
import GLMIO
import TestSupport

extension DataParallelCommandTests {
    static let overlap = ["--set", "training.allreduce_overlap=true", "--set", "training.allreduce_bucket_mb=0.002"]

    /// Same losses (exactly) and the same tensors (byte for byte) in two runs.
    func assertIdenticalRuns(_ a: String, _ b: String, weights: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let la = try MetricsLines(path: "\(a)/metrics.jsonl").records.compactMap { $0["loss"] as? NSNumber }.map(\.doubleValue)
        let lb = try MetricsLines(path: "\(b)/metrics.jsonl").records.compactMap { $0["loss"] as? NSNumber }.map(\.doubleValue)
        XCTAssertFalse(la.isEmpty, file: file, line: line)
        XCTAssertEqual(la, lb, "losses", file: file, line: line)
        let ta = try SafetensorsFile(path: "\(a)/\(weights)").allTensors(), tb = try SafetensorsFile(path: "\(b)/\(weights)").allTensors()
        XCTAssertEqual(Set(ta.keys), Set(tb.keys), file: file, line: line)
        for (name, t) in ta {
            guard let u = tb[name], u.count == t.count else { XCTFail("\(name) differs in shape", file: file, line: line); continue }
            if let i = (0..<t.count).first(where: { t.pointer[$0] != u.pointer[$0] }) {
                XCTFail("\(weights) \(name)[\(i)]: \(t.pointer[i]) vs \(u.pointer[i])", file: file, line: line)
            }
        }
    }

    func testOverlappedAllreduceTrainsBitForBitAsTheAllreduceAfterBackward() throws {
        _ = try mpirun()
        // Dense pretraining, full fine-tuning, grad_accum 2 (the last micro-batch's backward overlaps).
        let pre = try write(pretrainRecipe(steps: 6, checkpointEvery: 6), "pre.yaml")
        let plain = try runMPI(2, ["run", pre, "--set", "output_dir=\(dir)/plain"])
        XCTAssertEqual(plain.status, 0, plain.stderr + plain.stdout)
        let overlapped = try runMPI(2, ["run", pre, "--set", "output_dir=\(dir)/overlap"] + Self.overlap)
        XCTAssertEqual(overlapped.status, 0, overlapped.stderr + overlapped.stdout)
        try assertIdenticalRuns("\(dir)/plain", "\(dir)/overlap", weights: "model/model.safetensors")
        try assertCommunication("\(dir)/overlap", trained: "model/model.safetensors")
        let ca = try TrainingCheckpoint.read(from: CheckpointDirectory("\(dir)/plain/checkpoints").path(forStep: 6))
        let cb = try TrainingCheckpoint.read(from: CheckpointDirectory("\(dir)/overlap/checkpoints").path(forStep: 6))
        for (k, t) in ca.optimizerState {
            let u = try XCTUnwrap(cb.optimizerState[k], k)
            XCTAssertEqual(t.scalars, u.scalars, "optimizer state \(k)")
        }

        // The bundled MoE, full fine-tuning: 8 experts top-2 over 2 × 16 tokens per process leave some experts
        // without tokens on one process and not on the other.
        let moe = try write("""
            task: pretrain
            model: {path: \(Fixtures.repositoryRoot)/Checkpoints/glm-tiny-moe}
            data: {train: \(dir)/train.jsonl, shuffle: true}
            training: {steps: 3, batch_size: 4, seq_len: 16, grad_accum: 1, seed: 5}
            optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 0.1, eps: 1.0e-6}
            checkpoint: {every: 0, keep: 1}
            output_dir: \(dir)/unused
            """, "moe.yaml")
        let m1 = try runMPI(2, ["run", moe, "--set", "output_dir=\(dir)/moe-plain"])
        XCTAssertEqual(m1.status, 0, m1.stderr + m1.stdout)
        let m2 = try runMPI(2, ["run", moe, "--set", "output_dir=\(dir)/moe-overlap"] + Self.overlap)
        XCTAssertEqual(m2.status, 0, m2.stderr + m2.stdout)
        try assertIdenticalRuns("\(dir)/moe-plain", "\(dir)/moe-overlap", weights: "model/model.safetensors")

        // LoRA SFT with activation recompute.
        let sft = try write("""
            task: sft
            model: {path: \(model)}
            data: {train: \(Fixtures.repositoryRoot)/Data/quickstart/train.jsonl, shuffle: true}
            training: {steps: 3, batch_size: 4, seq_len: 64, grad_accum: 1, seed: 0, gradient_checkpointing: true}
            optimizer: {name: adamw, lr: 2.0e-3, weight_decay: 0.0, eps: 1.0e-6}
            lora: {rank: 4, alpha: 8, dropout: 0.1, targets: [all-linear]}
            checkpoint: {every: 0, keep: 1}
            output_dir: \(dir)/unused
            """, "sft.yaml")
        let s1 = try runMPI(2, ["run", sft, "--set", "output_dir=\(dir)/sft-plain"])
        XCTAssertEqual(s1.status, 0, s1.stderr + s1.stdout)
        let s2 = try runMPI(2, ["run", sft, "--set", "output_dir=\(dir)/sft-overlap"] + Self.overlap)
        XCTAssertEqual(s2.status, 0, s2.stderr + s2.stdout)
        try assertIdenticalRuns("\(dir)/sft-plain", "\(dir)/sft-overlap", weights: "adapter/adapter_model.safetensors")
    }
}
