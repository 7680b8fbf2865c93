// Full fine-tuning of tiny GLM / GLM-4 models through GLMTrain's own training step (Trainer.trainStep: loss with
// -100 labels, gradient accumulation, clipping, schedule, AdamW) against transformers' Trainer semantics in PyTorch
// (Scripts/make_fidelity_fixtures.py → Fixtures/fidelity/): every weight after every update, the losses, gradient
// norms and learning rates; the pad row of the embedding (torch's padding_idx); and transformers' initialisation.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class FidelityTests: XCTestCase {
    struct Fixture: Decodable {
        struct MicroBatch: Decodable { var ids: [Int32]; var labels: [Int32] }
        struct Case: Decodable {
            var model_type: String
            var tied: Bool
            var prf: Double
            var steps: Int
            var accum: Int
            var schedule: String
            var warmup: Int
            var lr: Double
            var betas: [Float]
            var eps: Float
            var weight_decay: Float
            var max_grad_norm: Double
            var micro_batches: [MicroBatch]
            var decay_parameters: [String]
            var no_decay_parameters: [String]
            var losses: [Double]
            var grad_norms: [Double]
            var lrs: [Double]
            var max_weight_spread_float32_float64: Double
        }
        struct Stats: Decodable { var mean: Double; var std: Double; var min: Double; var max: Double; var count: Int }
        struct Init: Decodable {
            var model_type: String
            var tied: Bool
            var initializer_range: Double
            var pad_row_abs_max: Double
            var lm_head_is_embedding: Bool
            var parameters: [String: Stats]
        }
        var pad_token_id: Int
        var batch: Int
        var length: Int
        var cases: [String: Case]
        var `init`: [Init]
    }

    static let directory = "\(Fixtures.repositoryRoot)/Tests/GLMTrainingTests/Fixtures/fidelity"

    /// Weights are O(0.1–1) and move by up to lr per update; PyTorch's own float32 and float64 runs agree to 1e−6
    /// on every weight except the pass-through half of k_proj.bias (below). 1e−5 leaves 10× room over float32
    /// rounding and is 500× smaller than one AdamW step (lr ≥ 5e−3), so a wrong decay group, a skipped clip, an
    /// lr one step off or a trained pad row each fail it.
    static let weightTolerance: Float = 1e-5
    static let lossTolerance = 1e-5

    func loadFixture() throws -> Fixture {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Self.directory)/fixtures.json"))
        return try JSONDecoder().decode(Fixture.self, from: data)
    }

    /// transformers shifts `labels` inside the model: position t predicts labels[t+1]; the last position none.
    func shifted(_ labels: [Int32], batch: Int, length: Int) -> [Int32] {
        var t = [Int32](repeating: ignoreLabel, count: labels.count)
        for b in 0..<batch { for i in 0..<(length - 1) { t[b * length + i] = labels[b * length + i + 1] } }
        return t
    }

    /// k_proj.bias entries outside the rotary dims have an exactly zero gradient in exact arithmetic (adding a
    /// constant to every key of a head shifts each query's scores equally), so both implementations get float
    /// rounding noise there, which AdamW's normalised update turns into steps of up to ~lr. They are bounded by
    /// the summed learning rate instead of compared.
    func isGradientFree(_ name: String, index: Int, config: GLMConfig) -> Bool {
        name.hasSuffix("self_attn.k_proj.bias") && index % config.headDim >= config.rotaryDim
    }

    func check(_ name: String) throws {
        let f = try loadFixture()
        let c = try XCTUnwrap(f.cases[name])
        let (config, model) = try ModelDirectory.load("\(Self.directory)/\(name)/model")
        XCTAssertEqual(config.padTokenId, f.pad_token_id)
        XCTAssertEqual(config.tieWordEmbeddings, c.tied)
        let initial = model.parameters.mapValues { $0.copy() }
        // RecipeRun.prepareTrainable's rule for full fine-tuning: weight decay on matrices only.
        let params = model.parameters.keys.sorted().map { n -> TrainableParameter in
            let t = model.parameters[n]!
            t.setRequiresGrad(true)
            return TrainableParameter(name: n, tensor: t, weightDecay: t.rank >= 2 ? c.weight_decay : 0)
        }
        XCTAssertEqual(Set(params.filter { $0.weightDecay > 0 }.map(\.name)), Set(c.decay_parameters),
                       "\(name): decayed parameters vs Trainer.get_decay_parameter_names")
        XCTAssertEqual(Set(params.filter { $0.weightDecay == 0 }.map(\.name)), Set(c.no_decay_parameters))

        let batches = c.micro_batches.map {
            TrainingBatch(batch: f.batch, length: f.length, ids: $0.ids, targets: shifted($0.labels, batch: f.batch, length: f.length))
        }
        XCTAssertTrue(batches.contains { $0.ids.contains(Int32(f.pad_token_id)) && $0.targets.contains(Int32(f.pad_token_id)) })
        let schedule = try LearningRateSchedule(kind: try XCTUnwrap(LearningRateSchedule.Kind(rawValue: c.schedule)),
                                                baseRate: c.lr, warmupSteps: c.warmup, totalSteps: c.steps)
        var options = Trainer.Options(steps: c.steps)
        options.gradAccum = c.accum
        options.maxGradNorm = c.max_grad_norm
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("fidelity-\(name)-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: run) }
        let trainer = Trainer(model: model, parameters: params, optimizer: AdamW(beta1: c.betas[0], beta2: c.betas[1], eps: c.eps),
                              schedule: schedule, source: FixedBatchSource(batches), hooks: [], runDirectory: run, options: options)
        let steps = try Fixtures.safetensors("GLMTrainingTests", "fidelity/\(name)/steps.safetensors")
        let padRow = f.pad_token_id * config.hiddenSize, h = config.hiddenSize
        var decayProduct: Float = 1, lrSum = 0.0
        var worstWeight: Float = 0, worstFree: Float = 0, worstLoss = 0.0, worstNorm = 0.0
        for step in 0..<c.steps {
            let r = try trainer.trainStep(step)
            XCTAssertEqual(r.learningRate, c.lrs[step], accuracy: 1e-12 * c.lr, "\(name): lr of update \(step + 1)")
            XCTAssertEqual(r.loss, c.losses[step], accuracy: Self.lossTolerance, "\(name): loss of update \(step + 1)")
            XCTAssertEqual(Double(r.gradNorm), c.grad_norms[step], accuracy: 1e-5 * c.grad_norms[step], "\(name): grad norm \(step + 1)")
            worstLoss = max(worstLoss, abs(r.loss - c.losses[step]))
            worstNorm = max(worstNorm, abs(Double(r.gradNorm) - c.grad_norms[step]) / c.grad_norms[step])
            lrSum += r.learningRate
            decayProduct *= 1 - Float(r.learningRate) * c.weight_decay
            for (n, t) in model.parameters {
                let want = try steps.tensor("step\(step + 1)/\(n)")
                XCTAssertEqual(want.shape, t.shape, n)
                var worst: Float = 0, where_ = 0
                for i in 0..<t.count {
                    let d = abs(t.pointer[i] - want.pointer[i])
                    if isGradientFree(n, index: i, config: config) {
                        worstFree = max(worstFree, d)
                        XCTAssertLessThanOrEqual(d, Float(2 * lrSum), "\(name): \(n)[\(i)] after update \(step + 1)")
                    } else if d > worst { (worst, where_) = (d, i) }
                }
                XCTAssertLessThanOrEqual(worst, Self.weightTolerance, "\(name): \(n)[\(where_)] after update \(step + 1)")
                worstWeight = max(worstWeight, worst)
            }
            // The pad row of the embedding: untied, only AdamW's decoupled decay moves it (its gradient is zero,
            // so its moments stay zero); tied, the LM head's gradient moves it as well.
            let e = model.embedding.pointer + padRow, e0 = initial[GLMWeights.embedTokens]!.pointer + padRow
            for j in 0..<h {
                if c.tied { continue }
                XCTAssertEqual(e[j], e0[j] * decayProduct, accuracy: 1e-6 * abs(e0[j]), "\(name): pad row [\(j)] after update \(step + 1)")
            }
            if c.tied && step > 0 {
                let moved = (0..<h).map { abs(e[$0] - e0[$0] * decayProduct) }.max()!
                XCTAssertGreaterThan(moved, 1e-3, "\(name): the tied head trains the pad row")
            }
        }
        print("\(name): largest |weight − PyTorch| \(String(format: "%.2e", worstWeight)) (gradient-free k bias dims " +
              "\(String(format: "%.2e", worstFree)), PyTorch f32 vs f64 \(String(format: "%.2e", c.max_weight_spread_float32_float64))); " +
              "|loss − PyTorch| \(String(format: "%.2e", worstLoss)); relative grad-norm difference \(String(format: "%.2e", worstNorm))")
    }

    func testGLMUntiedTrajectoryMatchesTransformers() throws { try check("glm_untied") }
    func testGLMTiedTrajectoryMatchesTransformers() throws { try check("glm_tied") }
    func testGLM4UntiedTrajectoryMatchesTransformers() throws { try check("glm4_untied") }

    /// The first update of a warmup schedule has lr 0 (transformers steps the scheduler after the optimizer), and
    /// gradient accumulation weights micro-batches by their loss tokens: both are visible in the fixture.
    func testFixtureExercisesWarmupClippingAndUnequalMicroBatches() throws {
        let f = try loadFixture()
        for (name, c) in f.cases {
            XCTAssertEqual(c.lrs[0], 0, name)
            if c.max_grad_norm > 0 { XCTAssertTrue(c.grad_norms.contains { $0 > c.max_grad_norm }, "\(name): clipping is active") }
            if c.accum > 1 {
                let counts = c.micro_batches.map { shifted($0.labels, batch: f.batch, length: f.length).filter { $0 != ignoreLabel }.count }
                XCTAssertTrue(stride(from: 0, to: counts.count, by: c.accum).contains { counts[$0] != counts[$0 + 1] },
                              "\(name): micro-batches of one update differ in loss tokens")
            }
        }
    }

    /// transformers' _init_weights: Linear and Embedding weights Normal(0, initializer_range or 0.02), the pad row
    /// zero (tied too), biases zero, norm weights one. Compared with statistics of freshly built PyTorch models.
    func testRandomInitMatchesTransformersInit() throws {
        let f = try loadFixture()
        for (k, ref) in f.`init`.enumerated() {
            var c = GLMConfig()
            c.modelType = ref.model_type == "glm4" ? .glm4 : .glm
            c.vocabSize = 512; c.hiddenSize = 64; c.intermediateSize = 96; c.numHiddenLayers = 2
            c.numAttentionHeads = 4; c.numKeyValueHeads = 2; c.headDim = 16; c.attentionBias = true
            c.tieWordEmbeddings = ref.tied; c.padTokenId = 7; c.eosTokenIds = [1, 2]
            c.initializerRange = ref.initializer_range
            let w = GLMWeights.randomInit(c, seed: UInt64(k))
            XCTAssertEqual(Set(w.keys), Set(ref.parameters.keys), "init \(k): parameter names")
            let expectedStd = ref.initializer_range == 0 ? 0.02 : ref.initializer_range
            for (n, s) in ref.parameters {
                let t = try XCTUnwrap(w[n]).scalars.map(Double.init)
                let mean = t.reduce(0, +) / Double(t.count)
                let std = (t.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(t.count - 1)).squareRoot()
                if s.std == 0 {   // biases (zero) and norms (one)
                    XCTAssertEqual(t.min(), s.min, "init \(k): \(n)"); XCTAssertEqual(t.max(), s.max, "init \(k): \(n)")
                    continue
                }
                // Sample std of n normals: relative standard error 1/√(2n); 5 of them is far beyond chance and far
                // below a wrong std (0.02 vs 0.05) or a truncated/uniform draw.
                let se = 1 / (2 * Double(s.count)).squareRoot()
                XCTAssertEqual(s.std, expectedStd, accuracy: 5 * se * expectedStd, "init \(k): PyTorch's \(n)")
                XCTAssertEqual(std, expectedStd, accuracy: 5 * se * expectedStd, "init \(k): \(n) std")
                XCTAssertEqual(mean, 0, accuracy: 5 * expectedStd / Double(s.count).squareRoot(), "init \(k): \(n) mean")
            }
            XCTAssertEqual(ref.pad_row_abs_max, 0)
            let e = w[GLMWeights.embedTokens]!
            XCTAssertEqual(Array(e.scalars[(7 * 64)..<(8 * 64)]), [Float](repeating: 0, count: 64), "init \(k): pad row")
            XCTAssertEqual(w[GLMWeights.lmHead] == nil, ref.lm_head_is_embedding)
        }
    }
}
