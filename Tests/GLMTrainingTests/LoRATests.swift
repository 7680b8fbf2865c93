// LoRA: gradients through the adapter path, PEFT's initialisation (step 0 = base model), rsLoRA scale, frozen base,
// seeded training-only dropout, merge == adapter, and peft's own log-probabilities for the fixture adapters.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class LoRATests: XCTestCase {
    /// A tiny GLM-4 with GQA and rectangular projections (q width ≠ hidden).
    func tinyConfig(_ type: GLMModelType = .glm4) -> GLMConfig {
        var c = GLMConfig()
        c.modelType = type
        c.vocabSize = 32; c.hiddenSize = 16; c.intermediateSize = 12; c.numHiddenLayers = 2
        c.numAttentionHeads = 2; c.numKeyValueHeads = 1; c.headDim = 12
        c.padTokenId = nil; c.eosTokenIds = [1]
        c.rmsNormEps = 1e-5
        return c
    }

    func randomizeB(_ lora: LoRA, seed: UInt64 = 3, std: Float = 0.3) {
        var gen = SeededGenerator(seed: seed)
        for p in lora.pairs { for i in 0..<p.b.count { p.b.pointer[i] = std * gen.nextNormal() } }
    }

    let ids: [Int32] = [3, 7, 1, 30, 12, 5, 9, 2]

    func logits(_ model: GLMForCausalLM) -> Tensor {
        Autograd.noGrad { model.logits(model.hiddenStates(ids: ids, batch: 2, length: 4)) }
    }

    func testGradientCheckThroughTheLoRAPath() throws {
        let config = tinyConfig()
        let model = try GLMForCausalLM(config: config, seed: 11)
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 3, alpha: 6, targets: ["all-linear"]), seed: 5)
        randomizeB(lora)
        try lora.attach(to: model)
        // Check A and B of modules spread over the layer (attention input/output and both MLP matrices).
        let checked = lora.pairs.filter { ["q_proj", "o_proj", "gate_up_proj", "down_proj"].contains($0.linear.target) }.flatMap { [$0.a, $0.b] }
        let mismatches = GradientCheck.run(checked, step: 2e-3, rtol: 2e-2, atol: 2e-3) { _ in
            model.hiddenStates(ids: self.ids, batch: 2, length: 4)
        }
        XCTAssertEqual(mismatches, [], "\(mismatches.prefix(5))")
        // The base is frozen: no gradient buffers after a backward pass.
        model.hiddenStates(ids: ids, batch: 2, length: 4).sum().backward()
        for (name, t) in model.parameters {
            XCTAssertFalse(t.requiresGrad, name)
            XCTAssertNil(t.grad, name)
        }
        for p in lora.parameters { XCTAssertNotNil(p.tensor.grad, p.name) }
    }

    func testStepZeroEqualsTheBaseModelAndInitialisationIsPEFTs() throws {
        let config = tinyConfig()
        let model = try GLMForCausalLM(config: config, seed: 2)
        let before = logits(model)
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 4, alpha: 8, dropout: 0.1), seed: 9)
        try lora.attach(to: model)
        lora.training = false
        XCTAssertEqual(logits(model).scalars, before.scalars, "B = 0: the adapted model is the base model")
        // Names and shapes as PEFT's (without base_model.model.), A ~ U(±1/√in), B = 0.
        let names = lora.parameters.map(\.name)
        XCTAssertEqual(names.count, 2 * 6 * 2)
        XCTAssertEqual(names[0], "model.layers.0.self_attn.q_proj.lora_A.weight")
        XCTAssertEqual(names[1], "model.layers.0.self_attn.q_proj.lora_B.weight")
        for p in lora.pairs {
            let w = p.linear.shape
            XCTAssertEqual(p.a.shape, [4, w[1]]); XCTAssertEqual(p.b.shape, [w[0], 4])
            XCTAssertTrue(p.b.scalars.allSatisfy { $0 == 0 })
            let bound = 1 / Float(w[1]).squareRoot()
            XCTAssertTrue(p.a.scalars.allSatisfy { abs($0) <= bound }, "\(p.moduleName)")
            XCTAssertGreaterThan(p.a.scalars.map(abs).max()!, 0.7 * bound)
        }
        // Same seed, same initialisation.
        let again = try LoRA(modelConfig: config, config: LoRAConfig(rank: 4, alpha: 8, dropout: 0.1), seed: 9)
        XCTAssertEqual(again.pairs[5].a.scalars, lora.pairs[5].a.scalars)
    }

    func testRSLoRAScaleAndDelta() throws {
        XCTAssertEqual(LoRAConfig(rank: 4, alpha: 8).scale, 2)
        XCTAssertEqual(LoRAConfig(rank: 4, alpha: 8, useRSLoRA: true).scale, 4)
        XCTAssertEqual(LoRAConfig(rank: 16, alpha: 32, useRSLoRA: true).adapterConfig(baseModel: nil).scale, 8)
        // alpha and dropout go to adapter_config.json as the recipe wrote them, not widened from Float
        let written = LoRAConfig(rank: 3, alpha: 7.3, dropout: 0.05).adapterConfig(baseModel: nil)
        XCTAssertEqual(written.loraAlpha, 7.3)
        XCTAssertEqual(written.loraDropout, 0.05)
        XCTAssertTrue(written.jsonText.contains("\"lora_dropout\": 0.05,"), written.jsonText)
        let config = tinyConfig()
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 4, alpha: 8, targets: ["v_proj"], useRSLoRA: true), seed: 1)
        randomizeB(lora)
        let pair = lora.pairs[0]
        var gen = SeededGenerator(seed: 4)
        let x = Tensor.randomNormal([3, config.hiddenSize], generator: &gen)
        let d = Autograd.noGrad { lora.delta(pair, x) }
        let (out, inner, r) = (pair.b.shape[0], pair.a.shape[1], 4)
        for row in 0..<3 {
            for o in 0..<out {
                var s = 0.0
                for k in 0..<r {
                    var xa = 0.0
                    for j in 0..<inner { xa += Double(x.scalars[row * inner + j]) * Double(pair.a.scalars[k * inner + j]) }
                    s += xa * Double(pair.b.scalars[o * r + k])
                }
                XCTAssertEqual(Double(d.scalars[row * out + o]), 4 * s, accuracy: 1e-5)
            }
        }
    }

    func testTargetsAndLayersToTransform() throws {
        let config = tinyConfig()
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 2, targets: ["v_proj", "q_proj"],
                                                                     layersToTransform: [1]), seed: 0)
        XCTAssertEqual(lora.pairs.map(\.moduleName), ["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"])
        XCTAssertEqual(try LoRAConfig(targets: ["all-linear"]).resolvedTargets(for: config), ["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"])
        XCTAssertThrowsError(try LoRAConfig(targets: ["lm_head"]).resolvedTargets(for: config)) { XCTAssertTrue("\($0)".contains("lm_head")) }
        XCTAssertThrowsError(try LoRA(modelConfig: config, config: LoRAConfig(layersToTransform: [2]), seed: 0)) {
            XCTAssertTrue("\($0)".contains("layer 2"), "\($0)")
        }
        let c = lora.peftAdapter(baseModel: "some/base").config
        XCTAssertEqual(c.targetModules, .list(["q_proj", "v_proj"]))
        XCTAssertEqual(c.layersToTransform, [1])
        XCTAssertEqual(c.baseModelNameOrPath, "some/base")
    }

    func testDropoutIsSeededAndOnlyWhileTraining() throws {
        let config = tinyConfig()
        func run(training: Bool, seed: UInt64) throws -> [Float] {
            let model = try GLMForCausalLM(config: config, seed: 2)
            let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 2, alpha: 4, dropout: 0.5), seed: seed)
            randomizeB(lora)
            try lora.attach(to: model)
            lora.training = training
            return model.hiddenStates(ids: ids, batch: 2, length: 4).scalars  // recording: dropout applies in training
        }
        let a = try run(training: true, seed: 1), b = try run(training: true, seed: 1), c = try run(training: true, seed: 2)
        let eval = try run(training: false, seed: 1)
        XCTAssertEqual(a, b, "same seed, same masks")
        XCTAssertNotEqual(a, c)
        XCTAssertNotEqual(a, eval)
        // Evaluation mode is the dropout-free adapter.
        let model = try GLMForCausalLM(config: config, seed: 2)
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 2, alpha: 4, dropout: 0), seed: 1)
        randomizeB(lora)
        try lora.attach(to: model)
        XCTAssertEqual(model.hiddenStates(ids: ids, batch: 2, length: 4).scalars, eval)
    }

    func testMergedModelEqualsAdapterOutputs() throws {
        for type in [GLMModelType.glm, .glm4] {
            let config = tinyConfig(type)
            let model = try GLMForCausalLM(config: config, seed: 8)
            let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 4, alpha: 8, useRSLoRA: true), seed: 3)
            randomizeB(lora)
            try lora.attach(to: model)
            let adapted = logits(model)
            let merged = try lora.merged(model)
            XCTAssertTrue(merged.adaptedLinears.isEmpty)
            XCTAssertLessThan(Fixtures.relativeError(logits(merged), adapted), 1e-5, "\(type)")
            LoRA.detach(from: model)
            XCTAssertGreaterThan(Fixtures.relativeError(logits(model), adapted), 1e-3, "the adapter matters")
        }
    }

    func testPeftFixturesGivePeftsLogProbs() throws {
        let root = Fixtures.repositoryRoot
        for name in ["glm4-r8", "glm4-rslora-all-linear", "glm-qv", "glm4-patterns"] {
            let dir = "\(root)/Tests/GLMIOTests/Fixtures/peft/\(name)"
            let expected = try SafetensorsFile(path: "\(dir)/expected.safetensors")
            let baseDir = "\(root)/\(try AdapterConfig.load(path: "\(dir)/adapter_config.json").baseModelNameOrPath!)"
            let (config, model) = try ModelDirectory.load(baseDir)
            let adapter = try PEFTAdapter.load(directory: dir, model: config)
            let lora = try LoRA(adapter: adapter, modelConfig: config)
            XCTAssertFalse(lora.training)
            try lora.attach(to: model)
            let batch = try expected.tensor("batch.ids"), single = try expected.ids("single.ids")
            let rows = (0..<2).map { r in (0..<batch.shape[1]).map { Int32(batch.scalars[r * batch.shape[1] + $0]) } }
            let got = model.tokenLogProbs(ids: rows + [single])
            let want = try expected.tensor("batch.logprobs").scalars, wantSingle = try expected.tensor("single.logprobs").scalars
            XCTAssertEqual(got[0] + got[1], want, accuracy: 1e-4, name)
            XCTAssertEqual(got[2], wantSingle, accuracy: 1e-4, name)
            // The merged model gives the same (and peft's merge_and_unload's) log-probs.
            let merged = try lora.merged(model)
            XCTAssertEqual(merged.tokenLogProbs(ids: [single])[0], try expected.tensor("single.logprobs_merged").scalars, accuracy: 1e-4, name)
            // Exported again, the adapter is the file it came from.
            let back = lora.peftAdapter(baseModel: nil)
            XCTAssertEqual(back.config, adapter.config)
            for (k, t) in adapter.tensors { XCTAssertEqual(back.tensors[k]!.scalars, t.scalars, k) }
        }
    }
}

private func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, _ message: String = "",
                            file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, message, file: file, line: line)
    let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
    XCTAssertLessThanOrEqual(worst, accuracy, "\(message): max |diff| \(worst)", file: file, line: line)
}
