// LoRA on a base loaded from a bf16 checkpoint: the frozen base stays bf16 (2 bytes per element) through a training
// step, and the loss and the A/B gradients equal those on the same base widened to f32 on load.
import XCTest
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class LoRABF16BaseTests: XCTestCase {
    func testLoRAStepOnBF16BaseMatchesWidenedBase() throws {
        let dir = "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny"
        let (config, bf16) = try ModelDirectory.load(dir, storage: .automatic)
        let (_, f32) = try ModelDirectory.load(dir, storage: .float32)
        XCTAssertEqual(bf16.parameters["model.layers.0.mlp.gate_up_proj.weight"]!.dtype, .bfloat16)
        let (batch, length) = (2, 24)
        let ids = (0..<(batch * length)).map { Int32(($0 * 37 + 11) % config.vocabSize) }
        let targets = (0..<(batch * length)).map { i in i % length == length - 1 ? ignoreLabel : ids[i + 1] }
        var grads: [[Float]] = [], losses: [Float] = []
        for model in [bf16, f32] {
            let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 4, alpha: 8, dropout: 0), seed: 3)
            var gen = SeededGenerator(seed: 5)
            for p in lora.pairs { for i in 0..<p.b.count { p.b.pointer[i] = 0.05 * gen.nextNormal() } }
            try lora.attach(to: model)
            let loss = model.loss(ids: ids, targets: targets, batch: batch, length: length)
            loss.backward()
            losses.append(loss.item)
            grads.append(lora.parameters.flatMap { $0.tensor.grad!.scalars })
        }
        XCTAssertEqual(losses[0], losses[1], accuracy: 1e-5 * abs(losses[1]))
        let scale = grads[1].map(abs).max()!
        let worst = zip(grads[0], grads[1]).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(worst, 1e-4 * scale, "A/B gradients on the bf16 base")
        // The base stayed frozen and bf16, with no gradient buffers.
        for (name, t) in bf16.parameters {
            XCTAssertNil(t.grad, name)
            XCTAssertEqual(t.dtype, t.rank == 2 ? .bfloat16 : .float32, name)
        }
        XCTAssertLessThan(Double(bf16.parameterBytes), 0.51 * Double(f32.parameterBytes))
    }

    /// Merging the adapter (what a command hook's export does mid-run) reads the bf16 base without widening the live
    /// model's tensors: widened, they would leave the bf16 kernels and the run after an export would round
    /// differently from a run resumed from a checkpoint (seen as a kill -9 resume that was not bit-identical).
    func testMergingLeavesTheLiveBaseBF16() throws {
        let dir = "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny"
        let (config, model) = try ModelDirectory.load(dir, storage: .automatic)
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 4, alpha: 8, dropout: 0), seed: 3)
        var gen = SeededGenerator(seed: 5)
        for p in lora.pairs { for i in 0..<p.b.count { p.b.pointer[i] = 0.05 * gen.nextNormal() } }
        try lora.attach(to: model)
        let bf16Before = model.parameters.filter { $0.value.dtype == .bfloat16 }.keys.sorted()
        XCTAssertFalse(bf16Before.isEmpty)
        let merged = try lora.mergedWeights(model)
        XCTAssertEqual(model.parameters.filter { $0.value.dtype == .bfloat16 }.keys.sorted(), bf16Before, "the live base stays bf16")
        let name = "model.layers.0.mlp.down_proj.weight"
        let base = model.parameters[name]!.widened()
        let pair = try XCTUnwrap(lora.pairs.first { $0.moduleName == "model.layers.0.mlp.down_proj" })
        let delta = Autograd.noGrad { Tensor.matmul(pair.b, pair.a).scaled(2) }  // scale α/r = 8/4
        let m = merged[name]!
        for i in 0..<m.count { XCTAssertEqual(m.pointer[i], base.pointer[i] + delta.pointer[i], name) }
    }
}
