// A GLM attention block and MLP block built from the ops, against PyTorch's outputs and gradients
// (Tests/GLMCoreTests/Fixtures/blocks.safetensors, written by Scripts/make_core_fixtures.py).
import XCTest
import GLMCore
import GLMIO
import TestSupport

final class BlockReferenceTests: XCTestCase {
    let (B, T, H, NH, KV, D, I) = (2, 7, 32, 4, 2, 8, 24)
    let tolerance = 1e-4

    func load() throws -> SafetensorsFile { try Fixtures.safetensors("GLMCoreTests", "blocks.safetensors") }

    func attentionBlock(_ p: [String: Tensor], x: Tensor, mask: AttentionMask, rotary: RotaryConfig,
                        positions: [Int32], blockPositions: [Int32]?) -> Tensor {
        let h = Tensor.rmsNorm(x, weight: p["norm"]!, eps: 1e-5)
        var q = Tensor.linear(h, weight: p["wq"]!, bias: p["bq"]!)
        var k = Tensor.linear(h, weight: p["wk"]!, bias: p["bk"]!)
        let v = Tensor.linear(h, weight: p["wv"]!, bias: p["bv"]!)
        q = Tensor.rotary(q, config: rotary, positions: positions, blockPositions: blockPositions)
        k = Tensor.rotary(k, config: rotary, positions: positions, blockPositions: blockPositions)
        let shape = AttentionShape(batch: B, queries: T, keys: T, heads: NH, kvHeads: KV, headDim: D)
        let a = Tensor.attention(q: q, k: k, v: v, shape: shape, mask: mask)
        return x + Tensor.linear(a, weight: p["wo"]!)
    }

    func testAttentionBlockMatchesPyTorchUnderEachMask() throws {
        let f = try load()
        let positions = (0..<B).flatMap { _ in (0..<T).map(Int32.init) }
        let cases: [(String, AttentionMask, [Int32], [Int32]?)] = [
            ("causal", .causal(batch: B, queries: T), positions, nil),
            ("prefix", .prefix(lengths: try f.ids("attn.prefix_lengths").map(Int.init), queries: T), positions, nil),
            ("packed", .packed(batch: B, queries: T, segmentIds: try f.ids("attn.segments")), positions, nil),
            ("block2d", .prefix(lengths: try f.ids("attn.prefix_lengths").map(Int.init), queries: T),
             try f.ids("attn.pos2d"), try f.ids("attn.block2d")),
        ]
        for (name, mask, pos, block) in cases {
            var params: [String: Tensor] = [:]
            for key in ["norm", "wq", "bq", "wk", "bk", "wv", "bv", "wo"] {
                params[key] = try f.tensor("attn.param.\(key)")
                params[key]!.setRequiresGrad(true)
            }
            let x = try f.tensor("attn.x")
            x.setRequiresGrad(true)
            let rotary = RotaryConfig(headDim: D, rotaryDim: D / 2, theta: 10000, twoDimensional: block != nil)
            let out = attentionBlock(params, x: x, mask: mask, rotary: rotary, positions: pos, blockPositions: block)
            XCTAssertLessThan(Fixtures.relativeError(out, try f.tensor("attn.\(name).out")), tolerance, "\(name) output")
            (out * (try f.tensor("attn.r"))).sum().backward()
            XCTAssertLessThan(Fixtures.relativeError(x.grad!, try f.tensor("attn.\(name).grad.x")), tolerance, "\(name) dx")
            for (key, p) in params {
                XCTAssertLessThan(Fixtures.relativeError(p.grad!, try f.tensor("attn.\(name).grad.\(key)")), tolerance,
                                  "\(name) d\(key)")
            }
        }
    }

    func testMLPBlockMatchesPyTorch() throws {
        let f = try load()
        let x = try f.tensor("mlp.x"), norm = try f.tensor("mlp.param.norm")
        let gateUp = try f.tensor("mlp.param.gate_up"), down = try f.tensor("mlp.param.down")
        for t in [x, norm, gateUp, down] { t.setRequiresGrad(true) }
        let h = Tensor.rmsNorm(x, weight: norm, eps: 1e-5)
        let out = x + Tensor.linear(Tensor.swiglu(Tensor.linear(h, weight: gateUp)), weight: down)
        XCTAssertLessThan(Fixtures.relativeError(out, try f.tensor("mlp.out")), tolerance)
        (out * (try f.tensor("mlp.r"))).sum().backward()
        for (t, key) in [(x, "x"), (norm, "norm"), (gateUp, "gate_up"), (down, "down")] {
            XCTAssertLessThan(Fixtures.relativeError(t.grad!, try f.tensor("mlp.grad.\(key)")), tolerance, "d\(key)")
        }
    }

    func testCrossEntropyMatchesPyTorch() throws {
        let f = try load()
        let logits = try f.tensor("ce.logits")
        logits.setRequiresGrad(true)
        let loss = Tensor.crossEntropy(logits: logits, targets: try f.ids("ce.targets"))
        XCTAssertEqual(loss.item, try f.tensor("ce.loss").item, accuracy: 1e-5)
        loss.backward()
        XCTAssertLessThan(Fixtures.relativeError(logits.grad!, try f.tensor("ce.grad")), tolerance)
    }
}
