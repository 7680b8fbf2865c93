// A LoRA training step as the Trainer runs it: no gradient storage on the frozen base, and the loss and the A/B
// gradients of the low-rank path (x·Aᵀ)·Bᵀ equal those of the merged model W + s·B·A (dA = s·Bᵀ·dW, dB = s·dW·Aᵀ).
import XCTest
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class LoRATrainingStepTests: XCTestCase {
    /// A tiny GLM-4 (post-sub-layer norms) with GQA and q width ≠ hidden, untied, with attention bias.
    func tinyConfig() -> GLMConfig {
        var c = GLMConfig()
        c.modelType = .glm4
        c.vocabSize = 40; c.hiddenSize = 16; c.intermediateSize = 20; c.numHiddenLayers = 2
        c.numAttentionHeads = 2; c.numKeyValueHeads = 1; c.headDim = 12
        c.tieWordEmbeddings = false; c.attentionBias = true
        c.padTokenId = nil; c.eosTokenIds = [1]; c.rmsNormEps = 1e-5
        return c
    }

    let (batch, length) = (2, 6)
    var ids: [Int32] { (0..<(batch * length)).map { Int32(($0 * 7 + 3) % 40) } }
    var targets: [Int32] { (0..<(batch * length)).map { i in i % length == length - 1 ? ignoreLabel : ids[i + 1] } }

    /// LoRA on every linear layer with B random (so every gradient is non-trivial).
    func adaptedModel(seed: UInt64 = 4) throws -> (GLMForCausalLM, LoRA) {
        let config = tinyConfig()
        let model = try GLMForCausalLM(config: config, seed: seed)
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 3, alpha: 6, dropout: 0), seed: 7)
        var gen = SeededGenerator(seed: 12)
        for p in lora.pairs { for i in 0..<p.b.count { p.b.pointer[i] = 0.3 * gen.nextNormal() } }
        try lora.attach(to: model)
        return (model, lora)
    }

    func testTrainerStepKeepsTheBaseFrozenWithoutGradientStorage() throws {
        let (model, lora) = try adaptedModel()
        let before = model.parameters.mapValues(\.scalars)
        let parameters = lora.parameters.map { var p = $0; p.weightDecay = 0.01; return p }
        let adapterBefore = parameters.map(\.tensor.scalars)
        var options = Trainer.Options(steps: 2)
        options.maxGradNorm = 1
        let trainer = Trainer(model: model, parameters: parameters, optimizer: AdamW(),
                              schedule: try LearningRateSchedule(kind: .constant, baseRate: 1e-2, warmupSteps: 0, totalSteps: 2),
                              source: FixedBatchSource([TrainingBatch(batch: batch, length: length, ids: ids, targets: targets)]),
                              hooks: [], runDirectory: NSTemporaryDirectory() + "lora-step-test", options: options)
        let first = try trainer.trainStep(0)
        let second = try trainer.trainStep(1)
        XCTAssertLessThan(second.loss, first.loss, "the adapter learns")
        XCTAssertEqual(first.tokens, batch * length)
        for (name, t) in model.parameters {
            XCTAssertFalse(t.requiresGrad, name)
            XCTAssertNil(t.grad, "\(name): a frozen parameter got a gradient buffer")
            XCTAssertFalse(t.isOnTape, name)
            XCTAssertEqual(t.scalars, before[name], "\(name): the base changed")
        }
        for (p, old) in zip(parameters, adapterBefore) {
            XCTAssertNil(p.tensor.grad, "\(p.name): the step drops the gradients")
            XCTAssertNotEqual(p.tensor.scalars, old, "\(p.name) did not train")
        }
        // Inside a step: after backward only the adapter matrices hold gradients.
        model.loss(ids: ids, targets: targets, batch: batch, length: length).backward()
        XCTAssertTrue(model.parameters.values.allSatisfy { $0.grad == nil })
        XCTAssertTrue(parameters.allSatisfy { $0.tensor.grad != nil })
    }

    func testLossAndGradientsEqualTheMergedFormulation() throws {
        let (model, lora) = try adaptedModel()
        let loss = model.loss(ids: ids, targets: targets, batch: batch, length: length)
        loss.backward()
        // The merged model, with the adapted weights trainable: dL/dW of each adapted module.
        let merged = try lora.merged(model)
        for pair in lora.pairs { merged.parameters[pair.moduleName + ".weight"]!.setRequiresGrad(true) }
        let mergedLoss = merged.loss(ids: ids, targets: targets, batch: batch, length: length)
        XCTAssertEqual(loss.item, mergedLoss.item, accuracy: 1e-5 * abs(mergedLoss.item))
        mergedLoss.backward()
        let s = lora.config.scale
        for pair in lora.pairs {
            let dW = merged.parameters[pair.moduleName + ".weight"]!.grad!
            let wantA = Tensor.matmul(pair.b, dW, transposeA: true).scaled(s)   // s·Bᵀ·dW  [r, in]
            let wantB = Tensor.matmul(dW, pair.a, transposeB: true).scaled(s)   // s·dW·Aᵀ  [out, r]
            XCTAssertLessThan(Fixtures.relativeError(pair.a.grad!, wantA), 1e-4, "\(pair.moduleName).lora_A")
            XCTAssertLessThan(Fixtures.relativeError(pair.b.grad!, wantB), 1e-4, "\(pair.moduleName).lora_B")
        }
    }

    /// `LoRA.linear` (one op, one output buffer) against `Tensor.linear + LoRA.delta` (the plain formulation):
    /// outputs and every gradient, frozen or trainable base, with and without bias and dropout.
    func testFusedLinearEqualsLinearPlusDelta() throws {
        var config = tinyConfig()
        config.hiddenSize = 24
        for (trainBase, dropout) in [(false, Float(0)), (true, 0), (false, 0.3)] {
            for withBias in [false, true] {
                let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 4, alpha: 8, dropout: dropout, targets: ["v_proj"]), seed: 3)
                let pair = lora.pairs[0]
                var gen = SeededGenerator(seed: 21)
                for i in 0..<pair.b.count { pair.b.pointer[i] = 0.5 * gen.nextNormal() }
                let (inDim, outDim) = (pair.a.shape[1], pair.b.shape[0])
                let x = Tensor.randomNormal([2, 5, inDim], generator: &gen, requiresGrad: true)
                let w = Tensor.randomNormal([outDim, inDim], std: 0.2, generator: &gen, requiresGrad: trainBase)
                let bias = withBias ? Tensor.randomNormal([outDim], generator: &gen, requiresGrad: trainBase) : nil
                let weights = Tensor.randomNormal([2, 5, outDim], generator: &gen)  // loss = Σ y ⊙ weights
                func run(_ fused: Bool) -> (y: [Float], grads: [[Float]]) {
                    let tensors = [x, w, pair.a, pair.b] + (bias.map { [$0] } ?? [])
                    for t in tensors { t.zeroGrad() }
                    lora.dropoutGenerator = SeededGenerator(seed: 99)
                    let y = fused ? lora.linear(pair, x, weight: w, bias: bias)
                                  : Tensor.linear(x, weight: w, bias: bias) + lora.delta(pair, x)
                    let values = y.scalars
                    (y * weights).sum().backward()
                    return (values, tensors.filter(\.requiresGrad).map { $0.grad!.scalars })
                }
                let fused = run(true), plain = run(false)
                let label = "base trains \(trainBase), dropout \(dropout), bias \(withBias)"
                XCTAssertEqual(fused.grads.count, trainBase ? (withBias ? 5 : 4) : 3, label)
                XCTAssertLessThan(Fixtures.relativeError(Tensor(fused.y, shape: [fused.y.count]), Tensor(plain.y, shape: [plain.y.count])), 1e-5, label)
                for (f, p) in zip(fused.grads, plain.grads) {
                    XCTAssertLessThan(Fixtures.relativeError(Tensor(f, shape: [f.count]), Tensor(p, shape: [p.count])), 1e-5, label)
                }
                if !trainBase { XCTAssertNil(w.grad, label); XCTAssertNil(bias?.grad, label) }
            }
        }
    }

    /// With bf16 products active, the six rank-r products take bf16 operands (the low-rank bf16 kernels) as the
    /// plain formulation's matrix products do under bf16 (oneDNN): the base weight is zero so only the adapter
    /// term shows, and the scale is a power of two so rounding before or after it is the same. Against the f32
    /// run the values differ by rounding only.
    func testFusedLinearUnderBF16RoundsTheAdapterProductsAsThePlainFormulation() throws {
        try XCTSkipUnless(MixedPrecision.bf16Available && LowRankMatMul.bf16Available, "no AVX512_BF16 here: the products stay f32")
        defer { MixedPrecision.requested = .f32 }
        var config = tinyConfig()
        config.hiddenSize = 40
        let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 5, alpha: 10, targets: ["gate_up_proj"]), seed: 3)
        let pair = lora.pairs[0]
        var gen = SeededGenerator(seed: 5)
        for i in 0..<pair.b.count { pair.b.pointer[i] = 0.5 * gen.nextNormal() }
        let (inDim, outDim) = (pair.a.shape[1], pair.b.shape[0])
        let x = Tensor.randomNormal([4, 12, inDim], generator: &gen, requiresGrad: true)  // 48 rows: past the few-row paths
        let w = Tensor(zeros: [outDim, inDim])
        let weights = Tensor.randomNormal([4, 12, outDim], generator: &gen)
        func run(_ fused: Bool, _ precision: ComputePrecision) -> [[Float]] {
            MixedPrecision.requested = precision
            for t in [x, pair.a, pair.b] { t.zeroGrad() }
            let y = fused ? lora.linear(pair, x, weight: w, bias: nil) : Tensor.linear(x, weight: w, bias: nil) + lora.delta(pair, x)
            let values = y.scalars
            (y * weights).sum().backward()
            return [values] + [x, pair.a, pair.b].map { $0.grad!.scalars }
        }
        let fused = run(true, .bf16), plain = run(false, .bf16), f32 = run(true, .f32)
        for (i, name) in ["y", "dx", "dA", "dB"].enumerated() {
            let a = Tensor(fused[i], shape: [fused[i].count])
            XCTAssertLessThan(Fixtures.relativeError(a, Tensor(plain[i], shape: [plain[i].count])), 1e-2, "\(name): bf16 fused vs plain")
            let toF32 = Fixtures.relativeError(a, Tensor(f32[i], shape: [f32[i].count]))
            XCTAssertLessThan(toF32, 2e-2, "\(name): bf16 vs f32")
            XCTAssertGreaterThan(toF32, 1e-5, "\(name): the bf16 run rounds nothing")
        }
    }

    /// Under bf16 with a frozen weight (f32, or bf16 bits as a bf16 checkpoint's) and no dropout, the base product and
    /// the adapter term run as one product on operands placed side by side (LoRAConcatenated): the output and every
    /// gradient, a trainable bias's included, stay within bf16 rounding of the plain formulation under bf16.
    func testJoinedProductUnderBF16MatchesThePlainFormulation() throws {
        try XCTSkipUnless(MixedPrecision.bf16Available && LowRankMatMul.bf16Available, "no AVX512_BF16 here: the products stay f32")
        defer { MixedPrecision.requested = .f32 }
        var config = tinyConfig()
        config.hiddenSize = 40
        for bf16Weight in [false, true] {
            let lora = try LoRA(modelConfig: config, config: LoRAConfig(rank: 5, alpha: 10, targets: ["v_proj"]), seed: 3)
            let pair = lora.pairs[0]
            var gen = SeededGenerator(seed: 9)
            for i in 0..<pair.b.count { pair.b.pointer[i] = 0.5 * gen.nextNormal() }
            let (inDim, outDim) = (pair.a.shape[1], pair.b.shape[0])
            let x = Tensor.randomNormal([3, 20, inDim], generator: &gen, requiresGrad: true)
            let f32Weight = Tensor.randomNormal([outDim, inDim], std: 0.3, generator: &gen)
            let w = bf16Weight ? f32Weight.roundedToBF16() : f32Weight
            let bias = Tensor.randomNormal([outDim], generator: &gen, requiresGrad: true)
            let weights = Tensor.randomNormal([3, 20, outDim], generator: &gen)
            func run(_ fused: Bool, _ precision: ComputePrecision) -> [[Float]] {
                MixedPrecision.requested = precision
                defer { MixedPrecision.requested = .f32 }
                for t in [x, pair.a, pair.b, bias] { t.zeroGrad() }
                let y = fused ? lora.linear(pair, x, weight: w, bias: bias)
                              : Tensor.linear(x, weight: w, bias: bias) + lora.delta(pair, x)
                let values = y.scalars
                (y * weights).sum().backward()
                return [values] + [x, pair.a, pair.b, bias].map { $0.grad!.scalars }
            }
            let fused = run(true, .bf16), plain = run(false, .bf16), f32 = run(true, .f32)
            for (i, name) in ["y", "dx", "dA", "dB", "dbias"].enumerated() {
                let label = "\(name), \(bf16Weight ? "bf16" : "f32") weight"
                let a = Tensor(fused[i], shape: [fused[i].count])
                XCTAssertLessThan(Fixtures.relativeError(a, Tensor(plain[i], shape: [plain[i].count])), 5e-3, label)
                XCTAssertLessThan(Fixtures.relativeError(a, Tensor(f32[i], shape: [f32[i].count])), 2e-2, label)
            }
            XCTAssertGreaterThan(Fixtures.relativeError(Tensor(fused[0], shape: [fused[0].count]), Tensor(f32[0], shape: [f32[0].count])),
                                 1e-5, "the bf16 run rounds nothing")
        }
    }
}
