// Ten full-batch training steps of a tiny GLM with AdamW, Muon+AdamW and Moonlight-scaled Muon+AdamW against the
// loss trajectories of PyTorch (Scripts/make_optimizer_fixtures.py → Fixtures/optimizers/), and resuming an
// optimizer from its state tensors bit-identically.
import XCTest
import Foundation
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class OptimizerTrajectoryTests: XCTestCase {
    struct Trajectories: Decodable {
        struct Run: Decodable {
            var optimizer: String
            var lr: Float?
            var muon_lr: Float?
            var adamw_lr: Float?
            var momentum: Float?
            var ns_steps: Int?
            var scale: String?
            var betas: [Float]
            var eps: Float
            var weight_decay: Float
            var losses: [Double]
            var losses_float64: [Double]
        }
        var batch: Int
        var length: Int
        var ids: [Int32]
        var steps: Int
        var muon_parameters: [String]
        var adamw_parameters: [String]
        var runs: [String: Run]
    }

    static let directory = "\(Fixtures.repositoryRoot)/Tests/GLMTrainingTests/Fixtures/optimizers"

    /// Losses are O(1) here (4.34 falling to 0.62), so an absolute tolerance is also a relative one of the same
    /// order. PyTorch's own float32 and float64 runs of the same trajectories differ by up to 1e−5 (AdamW; its
    /// normalised update turns rounding noise in near-zero gradients into visible steps) and 6e−7 (Muon), which is
    /// the size of difference two correct float32 implementations can show; 1e−4 leaves 10× room over that and is
    /// still 100× smaller than the smallest step-to-step change of any run or the gap between the runs.
    static let tolerance = 1e-4

    func loadFixture() throws -> Trajectories {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Self.directory)/trajectories.json"))
        return try JSONDecoder().decode(Trajectories.self, from: data)
    }

    /// The fixture model with every parameter trainable, and the parameters in name order with weight decay `wd`.
    func loadModel(weightDecay wd: Float) throws -> (GLMForCausalLM, [TrainableParameter]) {
        let (_, model) = try ModelDirectory.load("\(Self.directory)/model")
        return (model, trainable(model, weightDecay: wd))
    }

    func trainable(_ model: GLMForCausalLM, weightDecay wd: Float) -> [TrainableParameter] {
        model.parameters.keys.sorted().map { name in
            let t = model.parameters[name]!
            t.setRequiresGrad(true)
            return TrainableParameter(name: name, tensor: t, weightDecay: wd)
        }
    }

    /// Labels shifted as transformers does for `labels=ids`: position t predicts token t+1; the last is ignored.
    func shiftedTargets(_ f: Trajectories) -> [Int32] {
        var targets = [Int32](repeating: ignoreLabel, count: f.ids.count)
        for b in 0..<f.batch { for t in 0..<(f.length - 1) { targets[b * f.length + t] = f.ids[b * f.length + t + 1] } }
        return targets
    }

    /// Runs `steps` updates and returns the loss before each update and after the last.
    func train(_ model: GLMForCausalLM, _ params: [TrainableParameter], _ opt: Optimizer, lr: Float,
               steps: Int, _ f: Trajectories) -> [Double] {
        let targets = shiftedTargets(f)
        var losses: [Double] = []
        for _ in 0..<steps {
            for p in params { p.tensor.zeroGrad() }
            let loss = model.loss(ids: f.ids, targets: targets, batch: f.batch, length: f.length)
            losses.append(Double(loss.item))
            loss.backward()
            opt.step(params, lr: lr)
        }
        losses.append(Autograd.noGrad { Double(model.loss(ids: f.ids, targets: targets, batch: f.batch, length: f.length).item) })
        return losses
    }

    func makeOptimizer(_ run: Trajectories.Run) throws -> (Optimizer, lr: Float) {
        let adam = AdamW(beta1: run.betas[0], beta2: run.betas[1], eps: run.eps)
        switch run.optimizer {
        case "adamw":
            return (adam, run.lr!)
        case "muon":
            let scale = try XCTUnwrap(Muon.Scale(rawValue: run.scale!))
            let muon = Muon(momentum: run.momentum!, nesterov: true, nsSteps: run.ns_steps!, scale: scale)
            // The scheduled rate is Muon's; AdamW's is expressed as a ratio to it (see MuonWithAdamW).
            return (MuonWithAdamW(muon: muon, adamW: adam, adamWLearningRateScale: run.adamw_lr! / run.muon_lr!), run.muon_lr!)
        default:
            throw GLMError("unknown optimizer \(run.optimizer) in fixture")
        }
    }

    func check(run name: String) throws {
        let f = try loadFixture()
        let run = try XCTUnwrap(f.runs[name])
        XCTAssertEqual(run.losses.count, f.steps + 1)
        let (model, params) = try loadModel(weightDecay: run.weight_decay)
        let (opt, lr) = try makeOptimizer(run)
        let losses = train(model, params, opt, lr: lr, steps: f.steps, f)
        var worst = 0.0
        for (step, (got, want)) in zip(losses, run.losses).enumerated() {
            XCTAssertEqual(got, want, accuracy: Self.tolerance, "\(name): loss before update \(step + 1)")
            worst = max(worst, abs(got - want))
        }
        print("\(name): largest |loss − PyTorch| over \(losses.count) values: \(String(format: "%.3e", worst))")
        XCTAssertEqual(opt.stepCount, f.steps)
        XCTAssertLessThan(losses.last!, 0.25 * losses[0], "\(name): training should cut the loss by 4× in 10 steps")
    }

    func testAdamWMatchesPyTorch() throws { try check(run: "adamw") }
    func testMuonWithAdamWMatchesReference() throws { try check(run: "muon") }
    func testMoonlightScaledMuonMatchesReference() throws { try check(run: "muon_moonlight") }

    /// The fixture trajectories are distinct enough that using the wrong optimizer or scale fails the comparison,
    /// and the routing of the GLM tensor names is the one the reference used.
    func testFixtureDiscriminatesAndRoutingMatches() throws {
        let f = try loadFixture()
        let names = ["adamw", "muon", "muon_moonlight"]
        for (i, a) in names.enumerated() {
            for b in names[(i + 1)...] {
                let gap = zip(f.runs[a]!.losses, f.runs[b]!.losses).map { abs($0 - $1) }.max()!
                XCTAssertGreaterThan(gap, 100 * Self.tolerance, "\(a) vs \(b)")
            }
        }
        let (_, params) = try loadModel(weightDecay: 0)
        let (m, a) = MuonWithAdamW().partition(params)
        XCTAssertEqual(Set(m.map(\.name)), Set(f.muon_parameters))
        XCTAssertEqual(Set(a.map(\.name)), Set(f.adamw_parameters))
        XCTAssertEqual(m.count, 12)   // 2 layers × q, k, v, o, gate_up, down
        XCTAssertTrue(a.contains { $0.name == GLMWeights.embedTokens } && a.contains { $0.name == GLMWeights.lmHead })
        XCTAssertTrue(a.contains { $0.name == "model.layers.0.self_attn.q_proj.bias" })
    }

    /// Three steps, then state saved; a fresh optimizer restored from it over a copy of the parameters continues
    /// exactly as the uninterrupted run does (every parameter bit for bit, every loss equal).
    func testRestoredStateContinuesBitIdentically() throws {
        let f = try loadFixture()
        for kind in ["adamw", "muon"] {
            let run = f.runs[kind]!
            let (model, params) = try loadModel(weightDecay: run.weight_decay)
            let (opt, lr) = try makeOptimizer(run)
            _ = train(model, params, opt, lr: lr, steps: 3, f)
            let state = opt.stateTensors().mapValues { $0.copy() }
            let weights = model.parameters.mapValues { $0.copy() }
            if kind == "muon" {
                XCTAssertEqual(state.keys.filter { $0.hasPrefix("muon/momentum/") }.count, 12)
                XCTAssertEqual(state.keys.filter { $0.hasPrefix("adamw/exp_avg/") }.count, params.count - 12)
                XCTAssertEqual(state.keys.filter { $0.hasPrefix("adamw/exp_avg_sq/") }.count, params.count - 12)
                XCTAssertNotNil(state["muon/momentum/model.layers.1.mlp.gate_up_proj.weight"])
                XCTAssertNotNil(state["adamw/exp_avg/lm_head.weight"])
            }
            let uninterrupted = train(model, params, opt, lr: lr, steps: 3, f)

            let resumedModel = try GLMForCausalLM(config: model.config, weights: weights)
            let resumedParams = trainable(resumedModel, weightDecay: run.weight_decay)
            let (fresh, _) = try makeOptimizer(run)
            try fresh.restoreState(step: 3, tensors: state)
            XCTAssertEqual(fresh.stepCount, 3)
            let resumed = train(resumedModel, resumedParams, fresh, lr: lr, steps: 3, f)
            XCTAssertEqual(resumed, uninterrupted, kind)
            XCTAssertEqual(fresh.stepCount, 6)
            for (name, t) in model.parameters {
                let r = resumedModel.parameters[name]!
                XCTAssertEqual(memcmp(t.pointer, r.pointer, t.count * MemoryLayout<Float>.stride), 0, "\(kind): \(name)")
            }
            let s1 = opt.stateTensors(), s2 = fresh.stateTensors()
            XCTAssertEqual(Set(s1.keys), Set(s2.keys))
            for (k, t) in s1 {
                XCTAssertEqual(memcmp(t.pointer, s2[k]!.pointer, t.count * MemoryLayout<Float>.stride), 0, "\(kind): \(k)")
            }
        }
    }
}
