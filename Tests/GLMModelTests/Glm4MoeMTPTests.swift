// glm4_moe's MTP layer against transformers' MtpModel (Scripts/make_mtp_fixtures.py → Fixtures/moe-mtp): logits
// and log-probs of token t+2 (2e-4), vLLM's zeroed first embedding, a shared_head.head of its own, strict errors
// for misshapen MTP tensors, the KV-cached MTP pass, and MTP-loss gradients against finite differences.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class Glm4MoeMTPTests: XCTestCase {
    static func model(_ extra: [String: Tensor] = [:]) throws -> Glm4MoeForCausalLM {
        let dir = ModelFixtures.path("moe-mtp")
        let base = try XCTUnwrap(ModelDirectory.loadModel(dir) as? Glm4MoeForCausalLM)
        if extra.isEmpty { return base }
        let w = try ModelDirectory.loadWeights(dir).merging(extra) { _, b in b }
        return try Glm4MoeForCausalLM(config: base.config, weights: w)
    }

    /// log p_mtp(ids[t+2]) for t < T-2 of each row, with the MTP pass over the whole sequence.
    static func mtpLogProbs(_ m: Glm4MoeForCausalLM, _ ids: [Int32], batch B: Int, first: MTPFirstPosition = .keep) -> (logits: Tensor, logProbs: [Float]) {
        let T = ids.count / B, V = m.config.vocabSize
        return Autograd.noGrad {
            let h = m.hiddenStates(ids: ids, batch: B, length: T)
            let next = (0..<(B * T)).map { $0 % T == T - 1 ? ids[$0] : ids[$0 + 1] }
            let logits = m.mtpLogits(m.mtpHiddenStates(hidden: h, nextIds: next, batch: B, length: T, positions: nil, mask: nil,
                                                       cache: nil, firstPosition: first))
            var lp: [Float] = [], rows: [Float] = []
            for b in 0..<B {
                for t in 0..<(T - 1) {
                    let row = Array(logits.scalars[((b * T + t) * V)..<((b * T + t + 1) * V)])
                    rows += row
                    guard t < T - 2 else { continue }
                    let mx = row.max()!
                    let lse = Double(mx) + Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1 - mx)) })
                    lp.append(Float(Double(row[Int(ids[b * T + t + 2])]) - lse))
                }
            }
            return (Tensor(rows, shape: [B, T - 1, V]), lp)
        }
    }

    func testMTPLogProbsMatchTransformersMtpModel() throws {
        let m = try Self.model()
        XCTAssertTrue(m.hasMTPLayer)
        let f = try ModelFixtures.expected("moe-mtp")
        let ids = try f.ids("mtp.ids")
        // The MTP layer leaves the main model alone.
        let main = m.tokenLogProbs(ids: [Array(ids[0..<7]), Array(ids[7...])]).flatMap { $0 }
        XCTAssertLessThan(zip(main, try f.tensor("main.logprobs").scalars).map { abs($0 - $1) }.max()!, 2e-4)
        let (logits, lp) = Self.mtpLogProbs(m, ids, batch: 2)
        XCTAssertLessThan(Fixtures.relativeError(logits, try f.tensor("mtp.logits")), 1e-4)
        let err = zip(lp, try f.tensor("mtp.logprobs").scalars).map { abs($0 - $1) }.max()!
        XCTAssertLessThan(err, 2e-4, "MTP log-probs")
        let zeroed = Self.mtpLogProbs(m, ids, batch: 2, first: .zeroEmbedding).logProbs
        XCTAssertLessThan(zip(zeroed, try f.tensor("mtp.logprobs_zero_first").scalars).map { abs($0 - $1) }.max()!, 2e-4, "vLLM's zeroed position 0")
        XCTAssertGreaterThan(zip(zeroed, lp).map { abs($0 - $1) }.max()!, 1e-3, "zeroing position 0 changes the first row")
        // A shared_head.head of its own replaces lm_head for the MTP logits only.
        let withHead = try Self.model(["model.layers.2.shared_head.head.weight": try f.tensor("mtp.head")])
        let headLP = Self.mtpLogProbs(withHead, ids, batch: 2).logProbs
        XCTAssertLessThan(zip(headLP, try f.tensor("mtp.logprobs_head").scalars).map { abs($0 - $1) }.max()!, 2e-4, "shared_head.head")
        print("moe-mtp: MTP log-prob error \(String(format: "%.1e", err))")
    }

    func testIncrementalMTPPassEqualsTheFullPass() throws {
        let m = try Self.model()
        let ids: [Int32] = [5, 17, 33, 60, 7, 9, 40, 12], T = ids.count, H = m.config.hiddenSize
        let next = Array(ids.dropFirst()) + [3]
        let full: Tensor = Autograd.noGrad {
            m.mtpHiddenStates(hidden: m.hiddenStates(ids: ids, batch: 1, length: T), nextIds: next, batch: 1, length: T,
                              positions: nil, mask: nil, cache: nil, firstPosition: .keep)
        }
        let cache = m.makeMTPCache(batch: 1, capacity: 2)
        var parts: [Float] = []
        Autograd.noGrad {
            let h = m.hiddenStates(ids: ids, batch: 1, length: T)
            for (start, n) in [(0, 3), (3, 1), (4, 2), (6, 2)] {
                let hs = h.reshaped([T, H]).slice(axis: 0, start: start, length: n)
                parts += m.mtpHiddenStates(hidden: hs, nextIds: Array(next[start..<(start + n)]), batch: 1, length: n,
                                           positions: nil, mask: nil, cache: cache, firstPosition: .keep).scalars
            }
        }
        XCTAssertEqual(cache.length, T)
        XCTAssertLessThan(Fixtures.relativeError(Tensor(parts, shape: full.shape), full), 1e-5)
    }

    func testMisshapenOrMissingMTPTensorsAreOneLineErrors() throws {
        let dir = ModelFixtures.path("moe-mtp")
        let base = try XCTUnwrap(ModelDirectory.loadModel(dir) as? Glm4MoeForCausalLM)
        let weights = try ModelDirectory.loadWeights(dir)
        func error(_ w: [String: Tensor]) -> String {
            do { _ = try Glm4MoeForCausalLM(config: base.config, weights: w); return "no error" } catch { return "\(error)" }
        }
        var w = weights
        w["model.layers.2.eh_proj.weight"] = Tensor(zeros: [32, 32])
        XCTAssertEqual(error(w), "model.layers.2.eh_proj.weight: shape [32, 32]; expected [32, 64]")
        w = weights
        w["model.layers.2.shared_head.norm.weight"] = nil
        XCTAssertEqual(error(w), "model.layers.2.shared_head.norm.weight: missing; expected shape [32] for a glm4_moe model with 2 layers (1 dense), 4 routed experts")
        w = weights
        w["model.layers.2.shared_head.head.weight"] = Tensor(zeros: [63, 32])
        XCTAssertEqual(error(w), "model.layers.2.shared_head.head.weight: shape [63, 32]; expected [64, 32]")
        w = weights
        w["model.layers.2.mlp.experts.1.gate_proj.weight"] = Tensor(zeros: [16, 31])
        XCTAssertEqual(error(w), "model.layers.2.mlp.experts.1.gate_proj.weight: shape [16, 31]; expected [16, 32]")
        for msg in [error(w)] { XCTAssertFalse(msg.contains("\n")) }
        // A model without an MTP layer says so when asked to train one, and makes one only when the config declares it.
        let plain = try MoEFixtures.model("moe-a")
        XCTAssertFalse(plain.hasMTPLayer)
        XCTAssertThrowsError(try plain.trainMTPLayer()) { XCTAssertTrue("\($0)".hasPrefix("this glm4_moe model has no MTP layer"), "\($0)") }
        XCTAssertThrowsError(try plain.initializeMTPLayer(seed: 1)) { XCTAssertTrue("\($0)".contains("num_nextn_predict_layers is 0"), "\($0)") }
    }

    /// Directional derivatives of the MTP loss (through the MTP layer, the shared head and embedding, and h_t into the
    /// main model) against central differences.
    func testMTPLossGradientsMatchFiniteDifferences() throws {
        let m = try Self.model()
        try m.trainMTPLayer()
        XCTAssertNotNil(m.parameters["model.layers.2.eh_proj.weight"])
        XCTAssertTrue(m.mtpTensors.isEmpty)
        for p in m.parameters.values { p.setRequiresGrad(true) }
        let ids: [Int32] = [3, 9, 4, 4, 17, 2, 30, 8, 1, 49, 6, 7], T = 6  // no pad token 0: its embedding row takes no gradient by design
        let next = (0..<12).map { $0 % T == T - 1 ? ids[$0] : ids[$0 + 1] }
        let targets: [Int32] = (0..<12).map { $0 % T >= T - 2 ? -100 : ids[$0 + 2] }
        func loss() -> Tensor {
            let h = m.hiddenStates(ids: ids, batch: 2, length: T)
            return Tensor.linearCrossEntropy(hidden: m.mtpHiddenStates(hidden: h, nextIds: next, batch: 2, length: T, positions: nil,
                                                                       mask: nil, cache: nil, firstPosition: .zeroEmbedding),
                                             weight: m.mtpHead, targets: targets)
        }
        loss().backward()
        var gen = SeededGenerator(seed: 5)
        let used = (0..<4).filter { m.parameters["model.layers.2.mlp.experts.\($0).up_proj.weight"]!.grad != nil }
        XCTAssertFalse(used.isEmpty)
        let names = ["model.layers.2.eh_proj.weight", "model.layers.2.enorm.weight", "model.layers.2.hnorm.weight",
                     "model.layers.2.shared_head.norm.weight", "model.layers.2.mlp.gate.weight",
                     "model.layers.2.mlp.experts.\(used[0]).down_proj.weight", "model.layers.2.self_attn.q_proj.weight",
                     "model.layers.1.self_attn.v_proj.weight", "model.norm.weight", "lm_head.weight", "model.embed_tokens.weight"]
        for name in names {
            let p = m.parameters[name]!
            let raw = Tensor.randomNormal(p.shape, generator: &gen)
            let d = raw.scaled(1 / raw.scalars.reduce(0) { $0 + $1 * $1 }.squareRoot(), recording: false)
            let analytic = zip(try XCTUnwrap(p.grad, name).scalars, d.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let eps: Float = 1e-3, original = p.scalars
            func lossAt(_ s: Float) -> Double {
                for i in 0..<p.count { p.pointer[i] = original[i] + s * d.pointer[i] }
                return Double(Autograd.noGrad { loss().item })
            }
            let numeric = (lossAt(eps) - lossAt(-eps)) / Double(2 * eps)
            _ = lossAt(0)
            XCTAssertEqual(numeric, analytic, accuracy: 2e-3 + 2e-2 * abs(analytic), name)
        }
        XCTAssertNil(m.parameters["model.layers.2.mlp.gate.e_score_correction_bias"]!.grad)
    }

    /// With GLM_MTP_EXPORT_DIR set: moe-mtp after 3 plain gradient steps on loss + MTP loss, saved by GLMTrain, with
    /// GLMTrain's MTP log-probs of the fixture ids (glmtrain_mtp.json), for `make_mtp_fixtures.py --check DIR`.
    func testExportForTransformersCheck() throws {
        guard let dir = ProcessInfo.processInfo.environment["GLM_MTP_EXPORT_DIR"] else {
            throw XCTSkip("set GLM_MTP_EXPORT_DIR to write a trained MTP model for the transformers check")
        }
        let m = try Self.model()
        try m.trainMTPLayer()
        for p in m.parameters.values { p.setRequiresGrad(true) }
        let ids: [Int32] = [3, 9, 4, 4, 17, 2, 30, 8, 1, 49, 6, 7], T = 6
        let next = (0..<12).map { $0 % T == T - 1 ? ids[$0] : ids[$0 + 1] }
        let targets: [Int32] = (0..<12).map { $0 % T >= T - 2 ? -100 : ids[$0 + 2] }
        for _ in 0..<3 {
            let h = m.hiddenStates(ids: ids, batch: 2, length: T)
            let mtp = Tensor.linearCrossEntropy(hidden: m.mtpHiddenStates(hidden: h, nextIds: next, batch: 2, length: T, positions: nil,
                                                                          mask: nil, cache: nil, firstPosition: .keep),
                                                weight: m.mtpHead, targets: targets)
            (Tensor.linearCrossEntropy(hidden: h, weight: m.lmHead, targets: next) + mtp).backward()
            for p in m.parameters.values {
                if let g = p.grad { for i in 0..<p.count { p.pointer[i] -= 0.5 * g.pointer[i] } }
                p.zeroGrad()
            }
        }
        try? FileManager.default.removeItem(atPath: dir)
        try ModelDirectory.save(m, to: dir)
        let f = try ModelFixtures.expected("moe-mtp")
        let fixtureIds = try f.ids("mtp.ids")
        let lp = Self.mtpLogProbs(m, fixtureIds, batch: 2).logProbs
        let obj: [String: Any] = ["ids": [Array(fixtureIds[0..<7]), Array(fixtureIds[7...])].map { $0.map(Int.init) },
                                  "logprobs": [Array(lp[0..<5]), Array(lp[5...])].map { $0.map(Double.init) }]
        try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: dir + "/glmtrain_mtp.json"))
        let before = Self.mtpLogProbs(try Self.model(), fixtureIds, batch: 2).logProbs
        XCTAssertGreaterThan(zip(before, lp).map { abs($0 - $1) }.max()!, 1e-3, "the steps moved the MTP layer")
    }
}
