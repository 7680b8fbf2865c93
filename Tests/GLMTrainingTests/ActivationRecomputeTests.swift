// training.gradient_checkpointing: with activation recompute the model's loss and every gradient are those of the
// plain recorded forward, bit for bit — full fine-tuning and LoRA with dropout (masks replayed, not redrawn).
import XCTest
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class ActivationRecomputeTests: XCTestCase {
    func tinyConfig(_ type: GLMModelType) -> GLMConfig {
        var c = GLMConfig()
        c.modelType = type
        c.vocabSize = 40; c.hiddenSize = 16; c.intermediateSize = 20; c.numHiddenLayers = 3
        c.numAttentionHeads = 2; c.numKeyValueHeads = 1; c.headDim = 12
        c.tieWordEmbeddings = false; c.attentionBias = true
        c.padTokenId = 0; c.eosTokenIds = [1]; c.rmsNormEps = 1e-5
        return c
    }

    let (batch, length) = (2, 7)
    var ids: [Int32] { (0..<(batch * length)).map { Int32(($0 * 7 + 3) % 40) } }
    var targets: [Int32] { (0..<(batch * length)).map { i in i % length == length - 1 ? ignoreLabel : ids[i + 1] } }

    /// Loss and gradients of every tensor that trains, by name.
    func step(_ type: GLMModelType, lora: Bool, recompute: Bool) throws -> (Float, [String: [Float]]) {
        let model = try GLMForCausalLM(config: tinyConfig(type), seed: 3)
        var trained: [(String, Tensor)] = model.parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        for (_, t) in trained { t.setRequiresGrad(true) }
        if lora {
            let adapters = try LoRA(modelConfig: model.config, config: LoRAConfig(rank: 2, alpha: 4, dropout: 0.25), seed: 9)
            var gen = SeededGenerator(seed: 12)
            for p in adapters.pairs { for i in 0..<p.b.count { p.b.pointer[i] = 0.3 * gen.nextNormal() } }
            try adapters.attach(to: model)
            trained = adapters.parameters.map { ($0.name, $0.tensor) }
        }
        model.recomputesActivations = recompute
        let hidden = model.hiddenStates(ids: ids, batch: batch, length: length)
        let loss = Tensor.linearCrossEntropy(hidden: hidden.reshaped([batch * length, 16]), weight: model.lmHead, targets: targets)
        loss.backward()
        var grads: [String: [Float]] = [:]
        for (name, t) in trained { grads[name] = t.grad?.scalars }
        return (loss.scalars[0], grads)
    }

    func testRecomputeGivesTheSameLossAndGradientsBitForBit() throws {
        for type in GLMModelType.allCases {
            for lora in [false, true] {
                let (plainLoss, plain) = try step(type, lora: lora, recompute: false)
                let (loss, recomputed) = try step(type, lora: lora, recompute: true)
                XCTAssertEqual(loss, plainLoss, "\(type) lora \(lora)")
                XCTAssertEqual(Set(recomputed.keys), Set(plain.keys))
                XCTAssertGreaterThan(plain.count, 10)
                for (name, g) in plain {
                    XCTAssertFalse(g.allSatisfy { $0 == 0 } && !name.contains("embed"), "\(name): no gradient")
                    XCTAssertEqual(recomputed[name], g, "\(type) lora \(lora): \(name)")
                }
            }
        }
    }

    func testRecipeKeyTurnsItOnAndIsChecked() throws {
        let text = """
        task: pretrain
        model: {path: x}
        data: {train: x.jsonl}
        training: {gradient_checkpointing: true}
        """
        let recipe = try Recipe(node: try RecipeReader.document(text, file: "r.yaml"), file: "r.yaml")
        XCTAssertTrue(recipe.training.gradientCheckpointing)
        let bad = text.replacingOccurrences(of: "gradient_checkpointing: true", with: "gradient_checkpointing: 3")
        XCTAssertThrowsError(try Recipe(node: try RecipeReader.document(bad, file: "r.yaml"), file: "r.yaml")) { e in
            XCTAssertTrue("\(e)".contains("gradient_checkpointing"), "\(e)")
        }
    }
}
