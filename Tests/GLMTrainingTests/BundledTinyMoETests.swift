// The bundled tiny MoE (Checkpoints/glm-tiny-moe, pretrained by Recipes/pretrain-tiny-moe.yaml): it loads as a
// glm4_moe model with the bundled tokenizer and GLM-4.5's chat template, scores held-out corpus text far better
// than chance, and takes LoRA SFT steps on the quickstart data with the loss going down.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class BundledTinyMoETests: XCTestCase {
    static let dir = "\(Fixtures.repositoryRoot)/Checkpoints/glm-tiny-moe"

    func testLoadsAsGlm4MoeWithTheBundledTokenizerAndGLM45Template() throws {
        let config = try ModelDirectory.loadConfiguration(Self.dir)
        let model = try ModelDirectory.loadModel(Self.dir, storage: .automatic)
        let moe = try XCTUnwrap(config as? Glm4MoeConfig)
        XCTAssertTrue(model is Glm4MoeForCausalLM)
        XCTAssertEqual(moe.numHiddenLayers, 4)
        XCTAssertEqual(moe.firstKDenseReplace, 1)
        XCTAssertEqual(moe.nRoutedExperts, 8)
        XCTAssertEqual(moe.numExpertsPerTok, 2)
        XCTAssertEqual(moe.nSharedExperts, 1)
        let tokenizer = try GLMTokenizer.load(directory: Self.dir)
        XCTAssertEqual(config.vocabSize, tokenizer.vocabularySize)
        XCTAssertEqual(try ChatTemplate.forModel(directory: Self.dir), .glm45)
        // Small enough to ship: the weights are bf16, a few MB.
        let bytes = try FileManager.default.attributesOfItem(atPath: Self.dir + "/model.safetensors")[.size] as! Int
        XCTAssertLessThan(bytes, 6_000_000)
    }

    func testScoresHeldOutTextFarBetterThanChance() throws {
        let model = try ModelDirectory.loadModel(Self.dir, storage: .automatic)
        let tokenizer = try GLMTokenizer.load(directory: Self.dir)
        let lines = try JSONLines.read("\(Fixtures.repositoryRoot)/Data/tiny-corpus/eval.jsonl").prefix(4)
        var nll = 0.0, count = 0
        for line in lines {
            let ids = Array(tokenizer.encode(try XCTUnwrap(try line.string("text")), addSpecialTokens: true).prefix(128))
            let lp = model.tokenLogProbs(ids: [ids])[0]
            nll -= lp.reduce(0) { $0 + Double($1) }; count += lp.count
        }
        let mean = nll / Double(count)
        XCTAssertLessThan(mean, 3.0, "pretrained: log(2048) = 7.6 is chance")
        XCTAssertGreaterThan(mean, 0.1)
    }

    func testLoRASFTStepsOnTheQuickstartDataLowerTheLoss() throws {
        let root = Fixtures.repositoryRoot
        let dir = NSTemporaryDirectory() + "glmtrain-tiny-moe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = """
        task: sft
        model: {path: \(Self.dir)}
        data: {train: \(root)/Data/quickstart/train.jsonl, shuffle: false, packing: true, chat_template: glm-4.5-nothink}
        training: {steps: 10, batch_size: 4, seq_len: 160, max_grad_norm: 1.0, seed: 0, log_every: 1}
        optimizer: {name: adamw, lr: 5.0e-3, weight_decay: 0.0}
        schedule: {name: constant}
        lora: {rank: 8, alpha: 16, targets: [all-linear]}
        checkpoint: {every: 0, keep: 1}
        output_dir: \(dir)/run
        """
        try text.write(toFile: dir + "/r.yaml", atomically: true, encoding: .utf8)
        let run = RecipeRun(recipe: try Recipe.load(path: dir + "/r.yaml"))
        _ = try run.run()
        let losses = try MetricsLog.read(dir + "/run/metrics.jsonl").compactMap { $0["loss"] as? Double }
        XCTAssertEqual(losses.count, 10)
        XCTAssertTrue(losses.allSatisfy(\.isFinite), "\(losses)")
        let first = (losses[0] + losses[1]) / 2, last = (losses[8] + losses[9]) / 2
        XCTAssertLessThan(last, 0.8 * first, "\(losses)")
        XCTAssertTrue(try XCTUnwrap(run.lora).pairs.contains { $0.moduleName == "model.layers.3.mlp.experts.7.down_proj" })
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/run/adapter/adapter_model.safetensors"))
    }
}
