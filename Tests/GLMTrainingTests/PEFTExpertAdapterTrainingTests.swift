// Training from peft's own routed-expert adapter (target_parameters: gate and up share one A per expert) trains
// what peft trains: one A whose gradient sums both uses. GLMTrain gave gate and up each a copy of A, which then
// trained apart (found by a peft fidelity sweep: 0.05-0.31 in log-probs after one AdamW step). Fixture:
// Scripts/make_moe_fixtures.py (moe-b-lora-params/grads.safetensors, peft's gradients of the mean cross-entropy).
import XCTest
import GLMCore
import GLMIO
import GLMModel
import GLMTraining
import TestSupport

final class PEFTExpertAdapterTrainingTests: XCTestCase {
    let fixtures = "\(Fixtures.repositoryRoot)/Tests/GLMModelTests/Fixtures"

    func testGradientsInPeftsLayoutEqualPeftsOwn() throws {
        let model = try ModelDirectory.loadModel("\(fixtures)/moe-b")
        let config = model.configuration as! Glm4MoeConfig
        let dir = "\(fixtures)/moe-b-lora-params"
        let lora = try LoRA(adapter: try PEFTAdapter.load(directory: dir, model: config), modelConfig: config)
        // each routed expert's gate and up hold one A, listed once among the trained parameters
        let byModule = Dictionary(uniqueKeysWithValues: lora.pairs.map { ($0.moduleName, $0) })
        var shared = 0
        for p in lora.pairs {
            guard let e = FusedExpertLoRA.expertModule(p.moduleName), e.proj == "gate_proj" else { continue }
            let up = try XCTUnwrap(byModule[p.moduleName.replacingOccurrences(of: "gate_proj", with: "up_proj")])
            XCTAssertTrue(up.a === p.a, p.moduleName)
            shared += 1
        }
        XCTAssertEqual(shared, 2 * config.nRoutedExperts, "two MoE layers")
        XCTAssertEqual(lora.parameters.count, 2 * lora.pairs.count - shared)
        XCTAssertEqual(Set(lora.parameters.map(\.name)).count, lora.parameters.count)
        XCTAssertEqual(lora.tensors.count, 2 * lora.pairs.count)

        try lora.attach(to: model)
        let grads = try SafetensorsFile(path: "\(dir)/grads.safetensors")
        let ids = try SafetensorsFile(path: "\(dir)/expected.safetensors").ids("single.ids")
        let targets = ids.indices.map { $0 + 1 < ids.count ? ids[$0 + 1] : ignoreLabel }
        let loss = model.loss(ids: ids, targets: targets, batch: 1, length: ids.count)
        XCTAssertEqual(loss.item, try grads.tensor("loss").scalars[0], accuracy: 1e-5)
        loss.backward()
        // our per-module gradients, written in peft's layout as an adapter's tensors would be (an expert no token
        // was routed to has none: zero, as in peft's fused tensor)
        var perModule: [String: Tensor] = [:]
        var zeros: [ObjectIdentifier: Tensor] = [:]
        func grad(_ t: Tensor) -> Tensor {
            if let g = t.grad { return g }
            if let z = zeros[ObjectIdentifier(t)] { return z }
            let z = Tensor(zeros: t.shape)
            zeros[ObjectIdentifier(t)] = z
            return z
        }
        for p in lora.pairs {
            perModule[LoRATensorName.name(module: p.moduleName, isB: false)] = grad(p.a)
            perModule[LoRATensorName.name(module: p.moduleName, isB: true)] = grad(p.b)
        }
        XCTAssertTrue(lora.pairs.contains { $0.a.grad != nil && FusedExpertLoRA.expertModule($0.moduleName) != nil })
        let fused = try FusedExpertLoRA.fuse(PEFTAdapter(config: lora.peftAdapter(baseModel: nil).config, tensors: perModule),
                                             experts: config.nRoutedExperts)
        var compared = 0
        for name in grads.names where name != "loss" {
            let key = String(name.dropFirst(PEFTAdapter.keyPrefix.count))
            let ours = try XCTUnwrap(fused.tensors[key], key), theirs = try grads.tensor(name)
            XCTAssertEqual(ours.shape, theirs.shape, key)
            XCTAssertLessThan(Fixtures.relativeError(ours, theirs), 1e-4, key)
            compared += 1
        }
        XCTAssertEqual(compared, 3 * 2 * 2 + 2 * 2 * 2, "q_proj, v_proj (A, B) in three layers, two fused parameters (A, B) in two MoE layers")
    }
}
