// The Mixture-of-Experts ops: half-split rotary, two-input SwiGLU, group-limited expert selection, routing weights
// and the grouped routed-expert product — values against direct formulas and gradients against finite differences,
// including the router weight's gradient through the routing weights.
import XCTest
import Foundation
import GLMCore
import TestSupport

final class MoEOpGradientTests: XCTestCase {
    func testRotaryHalfSplitValuesAndGradient() {
        let config = RotaryConfig(headDim: 8, rotaryDim: 4, theta: 10000)
        let ins = GradientCheck.inputs([[2, 3, 2 * 8]])
        XCTAssertEqual(GradientCheck.run(ins) { Tensor.rotaryHalfSplit($0[0], config: config, positions: [0, 1, 2, 7, 3, 0]) }, [])
        // Dim j pairs with j + rot/2: (0, 2) at angle p, (1, 3) at p·10000^(−1/2); dims 4..7 pass through.
        let x = Tensor((0..<8).map { Float($0 + 1) }, shape: [1, 1, 8])
        let y = Tensor.rotaryHalfSplit(x, config: config, positions: [2]).scalars
        let a0: Float = 2, a1: Float = 2 / 100
        XCTAssertEqual(y[0], 1 * Foundation.cos(a0) - 3 * Foundation.sin(a0), accuracy: 1e-6)
        XCTAssertEqual(y[2], 3 * Foundation.cos(a0) + 1 * Foundation.sin(a0), accuracy: 1e-6)
        XCTAssertEqual(y[1], 2 * Foundation.cos(a1) - 4 * Foundation.sin(a1), accuracy: 1e-6)
        XCTAssertEqual(y[3], 4 * Foundation.cos(a1) + 2 * Foundation.sin(a1), accuracy: 1e-6)
        XCTAssertEqual(Array(y[4...]), [5, 6, 7, 8])
        // Not GLM-4's interleaved layout.
        XCTAssertNotEqual(Tensor.rotary(x, config: config, positions: [2]).scalars[0], y[0], accuracy: 1e-3)
    }

    func testSwiGLUOfSeparateGateAndUp() {
        let ins = GradientCheck.inputs([[3, 7], [3, 7]])
        XCTAssertEqual(GradientCheck.run(ins) { Tensor.swiglu(gate: $0[0], up: $0[1]) }, [])
        let fused = Tensor.swiglu(Tensor.concat([ins[0], ins[1]], axis: 1))
        XCTAssertLessThan(Fixtures.relativeError(Tensor.swiglu(gate: ins[0], up: ins[1]), fused), 1e-6)
    }

    func testGroupLimitedSelectionUsesTheBiasAndTheTopTwoOfEachGroup() {
        // 8 experts in 4 groups of 2, keep 2 groups, top-3.
        let s: [Float] = [0.9, 0.1, 0.5, 0.4, 0.6, 0.0, 0.3, 0.3]
        let noBias = s.withUnsafeBufferPointer {
            ExpertRouting.select(scores: $0.baseAddress!, bias: nil, tokens: 1, experts: 8, topK: 3, groups: 4, keptGroups: 2)
        }
        // Group scores 1.0, 0.9, 0.6, 0.6: groups 0 and 1 stay; the top 3 of {0.9, 0.1, 0.5, 0.4} are 0, 2, 3.
        XCTAssertEqual(noBias.indices, [0, 2, 3])
        // A bias that lifts group 2 (experts 4, 5) above group 1 changes the choice; the bias alone decides.
        let bias: [Float] = [0, 0, 0, 0, 0.2, 0.5, 0, 0]
        let biased = s.withUnsafeBufferPointer { sp in bias.withUnsafeBufferPointer { bp in
            ExpertRouting.select(scores: sp.baseAddress!, bias: bp.baseAddress!, tokens: 1, experts: 8, topK: 3, groups: 4, keptGroups: 2)
        } }
        XCTAssertEqual(biased.indices, [0, 4, 5])
        // Without groups: the plain top-k of s + bias.
        let flat = s.withUnsafeBufferPointer { sp in bias.withUnsafeBufferPointer { bp in
            ExpertRouting.select(scores: sp.baseAddress!, bias: bp.baseAddress!, tokens: 1, experts: 8, topK: 2)
        } }
        XCTAssertEqual(flat.indices, [0, 4])
        // Grouped by expert: stable token order within an expert.
        let r = ExpertRouting(indices: [2, 0, 0, 1, 2, 0], tokens: 3, experts: 4, topK: 2)
        XCTAssertEqual(r.loads, [3, 1, 2, 0])
        XCTAssertEqual(r.offsets, [0, 3, 4, 6, 6])
        XCTAssertEqual(r.order, [1, 2, 5, 3, 0, 4])
    }

    func testRoutingWeightsValuesAndGradient() {
        let routing = ExpertRouting(indices: [2, 0, 1, 3, 3, 2], tokens: 3, experts: 4, topK: 2)
        for (normalize, scale) in [(true, Float(2.5)), (false, Float(1)), (true, Float(1))] {
            var gen = SeededGenerator(seed: 4)
            let s = Tensor.randomUniform([3, 4], low: 0.05, high: 1, generator: &gen).copy()
            s.setRequiresGrad(true)
            XCTAssertEqual(GradientCheck.run([s], step: 1e-3) { Tensor.routingWeights($0[0], routing: routing, normalize: normalize, scale: scale) },
                           [], "normalize \(normalize) scale \(scale)")
            let w = Tensor.routingWeights(s, routing: routing, normalize: normalize, scale: scale).scalars
            let v = s.scalars
            let d: Float = normalize ? v[2] + v[0] + 1e-20 : 1
            XCTAssertEqual(w[0], v[2] / d * scale, accuracy: 1e-6)
            XCTAssertEqual(w[1], v[0] / d * scale, accuracy: 1e-6)
        }
    }

    /// Σ_k w·expert(x) token by token, from the primitive ops (the reference the grouped op must equal).
    func naive(_ x: Tensor, _ routing: ExpertRouting, _ w: Tensor, _ experts: [ExpertWeights]) -> Tensor {
        let (N, K, H) = (routing.tokens, routing.topK, x.shape[1])
        var rows: [Tensor] = []
        for n in 0..<N {
            let xn = x.slice(axis: 0, start: n, length: 1)
            var acc = Tensor(zeros: [1, H])
            for k in 0..<K {
                let e = experts[Int(routing.indices[n * K + k])]
                let a = Tensor.swiglu(gate: Tensor.linear(xn, weight: e.gate), up: Tensor.linear(xn, weight: e.up))
                let y = Tensor.linear(a, weight: e.down)
                acc = acc + y * w.slice(axis: 0, start: n, length: 1).slice(axis: 1, start: k, length: 1)
            }
            rows.append(acc)
        }
        return Tensor.concat(rows, axis: 0)
    }

    func experts(_ count: Int, hidden: Int, inner: Int, seed: UInt64) -> [ExpertWeights] {
        let t = GradientCheck.inputs(Array(repeating: [[inner, hidden], [inner, hidden], [hidden, inner]], count: count).flatMap { $0 },
                                     seed: seed, std: 0.5)
        return (0..<count).map { ExpertWeights(gate: t[3 * $0], up: t[3 * $0 + 1], down: t[3 * $0 + 2]) }
    }

    func testRoutedExpertsEqualTheTokenByTokenSumAndGradientCheck() {
        let (N, H, I, E, K) = (7, 6, 5, 4, 2)
        // Expert 3 gets no token: its weights must get no gradient.
        let indices: [Int32] = [0, 1, 1, 2, 2, 0, 0, 2, 1, 0, 2, 1, 0, 1]
        let routing = ExpertRouting(indices: indices, tokens: N, experts: E, topK: K)
        XCTAssertEqual(routing.loads[3], 0)
        let ex = experts(E, hidden: H, inner: I, seed: 11)
        let ins = GradientCheck.inputs([[N, H], [N, K]], seed: 3)
        let (x, w) = (ins[0], ins[1])
        let params = [x, w] + ex.flatMap { [$0.gate, $0.up, $0.down] }
        func rebuild(_ t: [Tensor]) -> [ExpertWeights] { (0..<E).map { ExpertWeights(gate: t[2 + 3 * $0], up: t[3 + 3 * $0], down: t[4 + 3 * $0]) } }
        XCTAssertEqual(GradientCheck.run(params, samplesPerInput: 30) {
            Tensor.routedExperts($0[0], routing: routing, weights: $0[1], experts: rebuild($0))
        }, [])
        // Forward and backward equal the composite of primitive ops.
        let fused = Tensor.routedExperts(x, routing: routing, weights: w, experts: ex)
        let reference = naive(x, routing, w, ex)
        XCTAssertLessThan(Fixtures.relativeError(fused, reference), 1e-5)
        var gen = SeededGenerator(seed: 9)
        let r = Tensor.randomNormal([N, H], generator: &gen)
        (fused * r).sum().backward()
        let fusedGrads = params.map { $0.grad?.scalars }
        params.forEach { $0.zeroGrad() }
        (naive(x, routing, w, ex) * r).sum().backward()
        for (i, p) in params.enumerated() {
            guard let want = p.grad else { XCTAssertNil(fusedGrads[i], "parameter \(i) gets no gradient"); continue }
            XCTAssertLessThan(Fixtures.relativeError(Tensor(fusedGrads[i]!, shape: p.shape), want), 1e-5, "gradient of parameter \(i)")
        }
        XCTAssertNil(fusedGrads[2 + 3 * 3], "an expert without tokens gets no gradient")
    }

    func testGatherAndCombineEqualTheFusedOpAndGradientCheck() {
        let (N, H, I, E, K) = (7, 6, 5, 4, 2)
        let indices: [Int32] = [0, 1, 1, 2, 2, 0, 0, 2, 1, 0, 2, 1, 0, 1]  // expert 3 unused
        let routing = ExpertRouting(indices: indices, tokens: N, experts: E, topK: K)
        let ex = experts(E, hidden: H, inner: I, seed: 11)
        let ins = GradientCheck.inputs([[N, H], [N, K]], seed: 3)
        func composed(_ x: Tensor, _ w: Tensor, _ ex: [ExpertWeights]) -> Tensor {
            let outputs = (0..<E).map { e -> Tensor? in
                let lo = routing.offsets[e], n = routing.offsets[e + 1] - lo
                guard n > 0 else { return nil }
                let xe = Tensor.gatherRows(x, rows: routing.order[lo..<(lo + n)].map { $0 / Int32(K) })
                let a = Tensor.swiglu(gate: Tensor.linear(xe, weight: ex[e].gate), up: Tensor.linear(xe, weight: ex[e].up))
                return Tensor.linear(a, weight: ex[e].down)
            }
            return Tensor.combineExperts(outputs, routing: routing, weights: w, hidden: H)
        }
        XCTAssertLessThan(Fixtures.relativeError(composed(ins[0], ins[1], ex), Tensor.routedExperts(ins[0], routing: routing, weights: ins[1], experts: ex)), 1e-5)
        let params = ins + ex.flatMap { [$0.gate, $0.up, $0.down] }
        XCTAssertEqual(GradientCheck.run(params, samplesPerInput: 30) { t in
            composed(t[0], t[1], (0..<E).map { ExpertWeights(gate: t[2 + 3 * $0], up: t[3 + 3 * $0], down: t[4 + 3 * $0]) })
        }, [])
        XCTAssertEqual(GradientCheck.run([ins[0]]) { Tensor.gatherRows($0[0], rows: [3, 0, 3, 6]) }, [])
    }

    func testRouterWeightGradientFlowsThroughTheRoutingWeights() {
        // scores = sigmoid(x·Wᵀ); the selection is fixed (made once), the weights and the experts' outputs move with W.
        let (N, H, I, E, K) = (6, 5, 4, 4, 2)
        let ins = GradientCheck.inputs([[N, H], [E, H]], seed: 21)
        let ex = experts(E, hidden: H, inner: I, seed: 5)
        let scores0 = Autograd.noGrad { Tensor.linear(ins[0], weight: ins[1]).sigmoid() }
        let routing = ExpertRouting.select(scores: scores0.pointer, bias: nil, tokens: N, experts: E, topK: K, groups: 2, keptGroups: 1)
        for normalize in [true, false] {
            XCTAssertEqual(GradientCheck.run(ins, step: 1e-3) {
                let s = Tensor.linear($0[0], weight: $0[1]).sigmoid()
                let w = Tensor.routingWeights(s, routing: routing, normalize: normalize, scale: 1.5)
                return Tensor.routedExperts($0[0], routing: routing, weights: w, experts: ex)
            }, [], "normalize \(normalize)")
        }
    }

    func testFrozenBF16ExpertsAreReadWithoutWidening() {
        let (N, H, I, E, K) = (9, 16, 8, 3, 2)
        var gen = SeededGenerator(seed: 2)
        let indices = (0..<(N * K)).map { Int32($0 % E) }
        let routing = ExpertRouting(indices: indices, tokens: N, experts: E, topK: K)
        let f32 = (0..<E).map { _ in
            ExpertWeights(gate: Tensor.randomNormal([I, H], generator: &gen).roundedToBF16().widened(),
                          up: Tensor.randomNormal([I, H], generator: &gen).roundedToBF16().widened(),
                          down: Tensor.randomNormal([H, I], generator: &gen).roundedToBF16().widened())
        }
        let bf16 = f32.map { ExpertWeights(gate: $0.gate.roundedToBF16(), up: $0.up.roundedToBF16(), down: $0.down.roundedToBF16()) }
        let ins = GradientCheck.inputs([[N, H], [N, K]], seed: 8)
        let widenings = TensorStorage.widenings.current
        let a = Tensor.routedExperts(ins[0], routing: routing, weights: ins[1], experts: bf16)
        a.sum().backward()
        let (dx, dw) = (ins[0].grad!, ins[1].grad!)
        ins.forEach { $0.zeroGrad() }
        let b = Tensor.routedExperts(ins[0], routing: routing, weights: ins[1], experts: f32)
        b.sum().backward()
        XCTAssertLessThan(Fixtures.relativeError(a, b), 1e-5)
        XCTAssertLessThan(Fixtures.relativeError(dx, ins[0].grad!), 1e-5)
        XCTAssertLessThan(Fixtures.relativeError(dw, ins[1].grad!), 1e-5)
        XCTAssertEqual(TensorStorage.widenings.current, widenings, "bf16 experts were widened")
        XCTAssertTrue(bf16.allSatisfy { $0.gate.dtype == .bfloat16 && $0.down.dtype == .bfloat16 })
    }
}
