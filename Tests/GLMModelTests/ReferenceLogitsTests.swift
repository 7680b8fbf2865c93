// Every fixture model directory loads and reproduces transformers' logits and log-probs (Scripts/make_model_fixtures.py).
import XCTest
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class ReferenceLogitsTests: XCTestCase {
    let tolerance = 1e-4

    func testEveryFixtureMatchesTransformersLogits() throws {
        var report: [String] = []
        for name in ModelFixtures.names {
            let (config, model) = try ModelDirectory.load(ModelFixtures.path(name))
            let f = try ModelFixtures.expected(name)
            let batchIds = try f.ids("batch.ids"), single = try f.ids("single.ids")
            let length = batchIds.count / 2
            var errors: [(String, Double)] = []
            errors.append(("batch", Fixtures.relativeError(ModelFixtures.logits(model, batchIds, batch: 2), try f.tensor("batch.logits"))))
            errors.append(("single", Fixtures.relativeError(ModelFixtures.logits(model, single, batch: 1), try f.tensor("single.logits"))))
            let offset = try f.ids("offset.positions")
            errors.append(("positions", Fixtures.relativeError(ModelFixtures.logits(model, single, batch: 1, positions: offset),
                                                                try f.tensor("offset.logits"))))
            let prefix = AttentionMask.prefix(lengths: try f.ids("prefix.lengths").map(Int.init), queries: length)
            errors.append(("prefix mask", Fixtures.relativeError(ModelFixtures.logits(model, batchIds, batch: 2, mask: prefix),
                                                                  try f.tensor("prefix.logits"))))
            for (what, e) in errors { XCTAssertLessThan(e, tolerance, "\(name) \(what) logits") }

            // Per-token log-probs, for sequences of two lengths at once.
            let rows = [Array(batchIds[0..<length]), single, Array(batchIds[length...]), [single[0]]]
            let scores = model.tokenLogProbs(ids: rows)
            XCTAssertEqual(scores.map(\.count), [length - 1, single.count - 1, length - 1, 0])
            let expectedBatch = try f.tensor("batch.logprobs").scalars, expectedSingle = try f.tensor("single.logprobs").scalars
            let got = scores[0] + scores[2] + scores[1], want = expectedBatch + expectedSingle
            let lpError = zip(got, want).map { Double(abs($0 - $1)) }.max()!
            XCTAssertLessThan(lpError, 1e-4, "\(name) log-probs")

            if name == "glm-bf16" {
                XCTAssertEqual(config.dtype, "bfloat16")
                // transformers computing in bf16 itself: agreement at bf16 precision only.
                let e = Fixtures.relativeError(ModelFixtures.logits(model, batchIds, batch: 2), try f.tensor("batch.logits_bf16"))
                XCTAssertLessThan(e, 5e-2, "\(name) against bf16 compute")
                errors.append(("vs bf16 compute", e))
            }
            let worst = errors.prefix(4).map(\.1).max()!
            report.append("\(name): max relative logit error \(String(format: "%.2e", worst)), log-prob error \(String(format: "%.1e", lpError))"
                          + (errors.count > 4 ? ", vs bf16 compute \(String(format: "%.2e", errors[4].1))" : ""))
        }
        print(report.joined(separator: "\n"))
    }

    func testFixtureConfigsDecodeAsTransformersReadsThem() throws {
        let (glm, _) = try ModelDirectory.load(ModelFixtures.path("glm"))
        XCTAssertEqual(glm.modelType, .glm)
        XCTAssertEqual(glm.rotaryDim, 8)
        XCTAssertEqual(glm.eosTokenIds, [1, 2])
        let v4 = try ModelDirectory.loadConfig(ModelFixtures.path("glm-v4-config"))
        XCTAssertEqual(v4.ropeTheta, 500)
        XCTAssertEqual(v4.partialRotaryFactor, 1.0)
        XCTAssertEqual(v4.dtype, "float32")
        XCTAssertTrue(v4.tieWordEmbeddings)
        let legacy = try ModelDirectory.loadConfig(ModelFixtures.path("chatglm-legacy"))
        XCTAssertEqual(legacy.modelType, .glm)
        XCTAssertEqual(legacy.ropeTheta, 5000)
        XCTAssertEqual(legacy.numKeyValueHeads, 2)
        XCTAssertEqual(legacy.headDim, 16)
        XCTAssertEqual(legacy.intermediateSize, 40)
        XCTAssertTrue(legacy.attentionBias)
        let (sharded, model) = try ModelDirectory.load(ModelFixtures.path("glm4-sharded"))
        XCTAssertEqual(sharded.modelType, .glm4)
        XCTAssertNotNil(model.parameters["model.layers.1.post_mlp_layernorm.weight"])
        XCTAssertNil(model.parameters["model.layers.0.self_attn.q_proj.bias"])
    }
}
