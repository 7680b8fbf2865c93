// A second model type added from outside the library, by adding code only: a toy causal LM (embedding, per layer
// a residual SiLU MLP of two linears, final RMSNorm, untied head) that conforms to CausalLanguageModel. LoRA,
// the trainer with its objectives, scoring, generation and PEFT adapter checks all run on it through the
// protocol; GGUF export refuses its linears, which it declares without llama.cpp names.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining

struct ToyConfig: CausalLMConfig {
    var modelTypeName: String { "toy_mlp" }
    var vocabSize = 24, hiddenSize = 8, inner = 12, numHiddenLayers = 2, maxPositionEmbeddings = 64
    var padTokenId: Int? = 0
    var bosTokenId: Int? = nil
    var eosTokenIds = [1]
    var dtype: String? = nil
    var cacheBytesPerPosition: Int { 0 }
    var parameterCount: Int { 2 * vocabSize * hiddenSize + hiddenSize + numHiddenLayers * 2 * inner * hiddenSize }
    var usesBlockPositions: Bool { false }
    var ggufArchitecture: String { "toy" }
    var adaptableLinears: [AdaptableLinear] {
        (0..<numHiddenLayers).flatMap { l in
            [AdaptableLinear(module: "model.layers.\(l).mlp.up", target: "up", layer: l, shape: [inner, hiddenSize], kind: .mlp),
             AdaptableLinear(module: "model.layers.\(l).mlp.down", target: "down", layer: l, shape: [hiddenSize, inner], kind: .mlp)]
        }
    }
}

/// Each position sees only its own token (no attention), so a KV cache has nothing to hold.
final class ToyModel: CausalLanguageModel {
    let config: ToyConfig
    var configuration: any CausalLMConfig { config }
    private(set) var parameters: [String: Tensor]
    var adaptedLinears: [String: LinearOverride] = [:]
    var lmHead: Tensor { parameters["lm_head.weight"]! }

    init(config: ToyConfig, seed: UInt64) {
        self.config = config
        var gen = SeededGenerator(seed: seed)
        var p = ["model.embed_tokens.weight": Tensor.randomNormal([config.vocabSize, config.hiddenSize], std: 0.5, generator: &gen),
                 "model.norm.weight": Tensor(Array(repeating: 1, count: config.hiddenSize), shape: [config.hiddenSize]),
                 "lm_head.weight": Tensor.randomNormal([config.vocabSize, config.hiddenSize], std: 0.5, generator: &gen)]
        for l in config.adaptableLinears { p[l.module + ".weight"] = Tensor.randomNormal(l.shape, std: 0.3, generator: &gen) }
        parameters = p
    }

    func hiddenStates(ids: [Int32], batch: Int, length: Int, positions: [Int32]?, blockPositions: [Int32]?,
                      mask: AttentionMask?, cache: KVCache?) -> Tensor {
        var x = Tensor.embedding(parameters["model.embed_tokens.weight"]!, ids: ids, idsShape: [batch, length],
                                 paddingIndex: config.padTokenId)
        for l in 0..<config.numHiddenLayers {
            let up = linear(x, "model.layers.\(l).mlp.up").silu()
            x = x + linear(up, "model.layers.\(l).mlp.down")
        }
        cache?.advance(by: length)
        return Tensor.rmsNorm(x, weight: parameters["model.norm.weight"]!, eps: 1e-6)
    }

    private func linear(_ x: Tensor, _ module: String) -> Tensor {
        let w = parameters[module + ".weight"]!
        return adaptedLinears[module].map { $0(x, w, nil) } ?? Tensor.linear(x, weight: w)
    }

    func makeCache(batch: Int, capacity: Int) -> KVCache { KVCache(layers: 0, width: 1, batch: batch, capacity: capacity) }

    func replaceParameter(_ name: String, with tensor: Tensor) throws {
        guard parameters[name]?.shape == tensor.shape else { throw GLMError("\(name): no such parameter of that shape") }
        parameters[name] = tensor
    }

    func storeFrozenMatricesInBF16() -> Int { 0 }
}

final class SecondArchitectureTests: XCTestCase {
    func batches() -> [TrainingBatch] {
        var gen = SeededGenerator(seed: 2)
        return (0..<2).map { _ in
            let ids = (0..<12).map { _ in Int32(2 + gen.next() % 22) }
            let targets = (0..<12).map { i in i % 6 == 5 ? ignoreLabel : Int32((Int(ids[i]) * 7) % 22 + 2) }
            return TrainingBatch(batch: 2, length: 6, ids: ids, targets: targets)
        }
    }

    func testLoRATrainingScoringAndGenerationRunThroughTheProtocol() throws {
        let config = ToyConfig()
        let model = ToyModel(config: config, seed: 1)
        XCTAssertThrowsError(try LoRA(modelConfig: config, config: LoRAConfig(rank: 2, targets: ["q_proj"]), seed: 0)) {
            XCTAssertTrue("\($0)".contains("unknown LoRA target 'q_proj' (this toy_mlp model declares up, down, all-linear)"), "\($0)")
        }
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 2, alpha: 4, targets: ["all-linear"]), seed: 3)
        XCTAssertEqual(lora.pairs.map(\.moduleName), config.adaptableLinears.map(\.module))
        try lora.attach(to: model)
        let dir = NSTemporaryDirectory() + "glmtrain-toy-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let trainer = Trainer(model: model, parameters: lora.parameters, optimizer: AdamW(),
                              schedule: try LearningRateSchedule(kind: .constant, baseRate: 5e-2, warmupSteps: 0, totalSteps: 30),
                              source: FixedBatchSource(batches()), hooks: [], runDirectory: dir, options: Trainer.Options(steps: 30))
        let first = try trainer.trainStep(0).loss
        var last = first
        for step in 1..<30 { last = try trainer.trainStep(step).loss }
        XCTAssertLessThan(last, 0.8 * first, "LoRA on the toy model's declared linears learns")
        // Base frozen, adapters trained.
        XCTAssertTrue(model.parameters.values.allSatisfy { !$0.requiresGrad })
        XCTAssertGreaterThan(lora.pairs.map { $0.b.scalars.map(abs).max()! }.max()!, 0)

        // Scoring equals the differentiable log-probs; generation runs with the model's own cache.
        let seq: [Int32] = [3, 9, 4, 11, 5]
        let scores = model.tokenLogProbs(ids: [seq])[0]
        let lp = Autograd.noGrad {
            model.targetLogProbs(ids: seq, targets: Array(seq.dropFirst()) + [ignoreLabel], batch: 1, length: 5).logProbs.scalars
        }
        for i in 0..<4 { XCTAssertEqual(scores[i], lp[i], accuracy: 1e-5) }
        let out = TextGenerator(model: model).generate(prompts: [[3, 4], [5]], maxNewTokens: 4)
        XCTAssertEqual(out.map(\.tokens.count).allSatisfy { $0 >= 1 && $0 <= 4 }, true)

        // The PEFT adapter is checked against the toy model's declaration; merging writes its weights.
        let adapter = lora.peftAdapter(baseModel: nil)
        XCTAssertNoThrow(try adapter.validate(against: config))
        XCTAssertEqual(adapter.modules(in: config).map(\.target), ["up", "down", "up", "down"])
        XCTAssertEqual(adapter.config.targetModules, .list(["up", "down"]))
        let merged = try adapter.merged(into: model.parameters)
        XCTAssertNotEqual(merged["model.layers.0.mlp.up.weight"]!.scalars, model.parameters["model.layers.0.mlp.up.weight"]!.scalars)
        var wrong = ToyConfig()
        wrong.inner = 10
        XCTAssertThrowsError(try adapter.validate(against: wrong)) { XCTAssertTrue("\($0)".contains("does not match the base model: down weight is [8, 10]"), "\($0)") }
        XCTAssertThrowsError(try GGUFLoRA.writer(adapter: adapter, model: config, name: "toy")) {
            XCTAssertTrue("\($0)".contains("llama.cpp has no LoRA tensor for this module (toy)"), "\($0)")
        }
    }
}
