// Self-speculative greedy decoding with the MTP layer gives plain greedy decoding's tokens (and log-probs), on the
// transformers fixture and on random tiny glm4_moe models, for several prompts, stop tokens and length limits.
// (The accepted-draft path on a model whose MTP layer has learnt something: MTPTrainingTests.)
import XCTest
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class SpeculativeGeneratorTests: XCTestCase {
    static func randomModel(seed: UInt64, groups: Bool) throws -> Glm4MoeForCausalLM {
        var c = MoEFixtures.config(groups ? "moe-b" : "moe-c")
        c.numNextnPredictLayers = 1
        c.initializerRange = 0.4  // peaked logits: no near-ties between the 1- and 2-position passes
        let m = try Glm4MoeForCausalLM(config: c, seed: seed)
        try m.initializeMTPLayer(seed: seed + 100)
        return m
    }

    func check(_ m: Glm4MoeForCausalLM, prompts: [[Int32]], maxNew: Int, stops: Set<Int32>?, label: String) -> SpeculativeStats {
        var total = SpeculativeStats()
        for (i, p) in prompts.enumerated() {
            let plain = TextGenerator(model: m).generate(prompts: [p], maxNewTokens: maxNew, stopTokens: stops)[0]
            var streamed: [Int32] = []
            let (spec, stats) = SpeculativeGenerator(model: m).generate(prompt: p, maxNewTokens: maxNew, stopTokens: stops) { streamed.append($0) }
            XCTAssertEqual(spec.tokens, plain.tokens, "\(label) prompt \(i)")
            XCTAssertEqual(streamed, spec.tokens)
            XCTAssertEqual(spec.finishReason, plain.finishReason, "\(label) prompt \(i)")
            XCTAssertEqual(spec.logProbs.count, plain.logProbs.count)
            for (a, b) in zip(spec.logProbs, plain.logProbs) { XCTAssertEqual(a, b, accuracy: 1e-4) }
            XCTAssertEqual(stats.mainPasses, spec.tokens.count - 1 - stats.accepted, "\(label): each pass yields 1 token + 1 per accepted draft")
            total.drafted += stats.drafted; total.accepted += stats.accepted; total.mainPasses += stats.mainPasses
        }
        return total
    }

    let prompts: [[Int32]] = [[7, 21, 4, 30], [5], [11, 50, 3, 3, 59, 42, 17, 8, 19, 61], [40, 40, 40], [63, 0, 62]]

    func testEqualsGreedyOnTheTransformersFixture() throws {
        let m = try Glm4MoeMTPTests.model()
        for maxNew in [1, 2, 3, 24] {
            _ = check(m, prompts: prompts, maxNew: maxNew, stops: [], label: "moe-mtp max \(maxNew)")
        }
        let stats = check(m, prompts: prompts, maxNew: 30, stops: nil, label: "moe-mtp eos")
        print("moe-mtp (random weights): \(stats.accepted)/\(stats.drafted) drafts accepted")
    }

    func testEqualsGreedyOnRandomModels() throws {
        for seed in [1, 2, 3] as [UInt64] {
            for groups in [false, true] {
                let m = try Self.randomModel(seed: seed, groups: groups)
                _ = check(m, prompts: prompts, maxNew: 20, stops: [], label: "seed \(seed) groups \(groups)")
                _ = check(m, prompts: prompts, maxNew: 20, stops: [1, 2, 9], label: "seed \(seed) groups \(groups) stops")
            }
        }
    }

    /// A bf16 directory keeps the MTP layer's matrices bf16 in memory too (as every frozen matrix); drafting works on
    /// them, the MTP log-probs stay near the f32 ones, and the output is still greedy's.
    func testBF16DirectoryKeepsTheMTPLayerAndDrafts() throws {
        let m = try Glm4MoeMTPTests.model()
        let dir = ModelFixtures.scratch("mtp-bf16")
        try ModelDirectory.save(m, to: dir, dtype: .bfloat16)
        let b = try XCTUnwrap(ModelDirectory.loadModel(dir) as? Glm4MoeForCausalLM)
        XCTAssertTrue(b.hasMTPLayer)
        XCTAssertNotNil(b.mtpTensors["model.layers.2.eh_proj.weight"]?.bf16Bits, "frozen MTP matrices stay bf16")
        let ids: [Int32] = [5, 17, 33, 60, 7, 9, 40]
        let (lp32, lp16) = (Glm4MoeMTPTests.mtpLogProbs(m, ids, batch: 1).logProbs, Glm4MoeMTPTests.mtpLogProbs(b, ids, batch: 1).logProbs)
        XCTAssertLessThan(zip(lp32, lp16).map { abs($0 - $1) }.max()!, 0.1)
        _ = check(b, prompts: prompts, maxNew: 16, stops: [], label: "bf16")
    }

    func testStopsAtMaxPositions() throws {
        let m = try Glm4MoeMTPTests.model()
        let p = [Int32](repeating: 5, count: m.config.maxPositionEmbeddings - 3)
        let (out, _) = SpeculativeGenerator(model: m).generate(prompt: p, maxNewTokens: 10, stopTokens: [])
        XCTAssertEqual(out.tokens, TextGenerator(model: m).generate(prompts: [p], maxNewTokens: 10, stopTokens: [])[0].tokens)
        XCTAssertEqual(out.tokens.count, 3)
    }
}
