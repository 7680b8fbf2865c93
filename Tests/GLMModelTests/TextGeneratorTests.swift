// Generation: greedy continuations equal step-by-step argmax of full forward passes; batching prompts of
// different lengths changes nothing; the same seed gives the same sample; stop tokens end a row.
import XCTest
import GLMCore
import GLMModel
import TestSupport

final class TextGeneratorTests: XCTestCase {
    func tinyModel() throws -> GLMForCausalLM {
        var c = GLMConfig()
        c.modelType = .glm4
        c.vocabSize = 97; c.hiddenSize = 32; c.intermediateSize = 48; c.numHiddenLayers = 2
        c.numAttentionHeads = 4; c.numKeyValueHeads = 2; c.headDim = 8; c.eosTokenIds = [3]; c.padTokenId = 0
        return try GLMForCausalLM(config: c, seed: 11)
    }

    /// Greedy decoding by recomputing the whole sequence each step (no cache, no stop tokens).
    func naiveGreedy(_ model: GLMForCausalLM, _ prompt: [Int32], _ n: Int) -> [Int32] {
        var seq = prompt, out: [Int32] = []
        Autograd.noGrad {
            for _ in 0..<n {
                let logits = model.logits(model.hiddenStates(ids: seq, batch: 1, length: seq.count)).scalars
                let V = model.config.vocabSize, last = Array(logits[(seq.count - 1) * V..<seq.count * V])
                let next = Int32(last.indices.max { last[$0] < last[$1] }!)
                out.append(next); seq.append(next)
            }
        }
        return out
    }

    func testGreedyWithCacheEqualsRecomputingAndBatchingDoesNotMatter() throws {
        let model = try tinyModel()
        let prompts: [[Int32]] = [[5, 17, 33, 20, 7], [9], [44, 45, 46]]
        let batched = TextGenerator(model: model).generate(prompts: prompts, maxNewTokens: 6, stopTokens: [])
        for (i, p) in prompts.enumerated() {
            let expected = naiveGreedy(model, p, 6)
            XCTAssertEqual(batched[i].tokens, expected, "prompt \(i) batched")
            let alone = TextGenerator(model: model).generate(prompts: [p], maxNewTokens: 6, stopTokens: [])
            XCTAssertEqual(alone[0].tokens, expected, "prompt \(i) alone")
            XCTAssertEqual(batched[i].logProbs.count, expected.count)
        }
    }

    func testSamplingIsReproducibleAndStopsOnStopTokens() throws {
        let model = try tinyModel()
        let params = SamplingParameters(temperature: 1.3, topP: 0.95, topK: 50)
        let a = TextGenerator(model: model).generate(prompts: [[5, 6, 7]], maxNewTokens: 12, sampling: params, seed: 4)
        let b = TextGenerator(model: model).generate(prompts: [[5, 6, 7]], maxNewTokens: 12, sampling: params, seed: 4)
        XCTAssertEqual(a, b)
        let stopAt = a[0].tokens[1]
        let stopped = TextGenerator(model: model).generate(prompts: [[5, 6, 7]], maxNewTokens: 12, sampling: params,
                                                           seed: 4, stopTokens: [stopAt])
        let firstStop = a[0].tokens.firstIndex(of: stopAt)!
        XCTAssertEqual(stopped[0].tokens, Array(a[0].tokens[...firstStop]))
        XCTAssertEqual(stopped[0].finishReason, "stop")
        XCTAssertEqual(a[0].finishReason == "stop" || a[0].tokens.count == 12, true)
    }
}
