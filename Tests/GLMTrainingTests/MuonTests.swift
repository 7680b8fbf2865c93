// Muon's Newton–Schulz orthogonalisation against the iteration in Double and its spectral properties, the update
// rule worked out by hand in Double, state handling, and the MuonWithAdamW routing and learning rates.
import XCTest
import Foundation
import GLMCore
import GLMTraining

final class MuonTests: XCTestCase {
    // MARK: Double-precision helpers

    static func matmul(_ a: [Double], _ b: [Double], _ m: Int, _ k: Int, _ n: Int) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for p in 0..<k { let x = a[i * k + p]; for j in 0..<n { c[i * n + j] += x * b[p * n + j] } } }
        return c
    }

    static func transpose(_ a: [Double], _ rows: Int, _ cols: Int) -> [Double] {
        var t = [Double](repeating: 0, count: a.count)
        for i in 0..<rows { for j in 0..<cols { t[j * rows + i] = a[i * cols + j] } }
        return t
    }

    /// The reference `zeropower_via_newtonschulz5`, literally (explicit transpose when rows > cols), in Double.
    static func referenceNS(_ g: [Double], rows: Int, cols: Int, steps: Int = 5) -> [Double] {
        let (a, b, c) = (3.4445, -4.7750, 2.0315)
        let tall = rows > cols
        var x = tall ? transpose(g, rows, cols) : g
        let (r, n) = tall ? (cols, rows) : (rows, cols)
        let norm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
        x = x.map { $0 / (norm + 1e-7) }
        for _ in 0..<steps {
            let gram = matmul(x, transpose(x, r, n), r, n, r)
            let gram2 = matmul(gram, gram, r, r, r)
            let poly = zip(gram, gram2).map { b * $0 + c * $1 }
            let px = matmul(poly, x, r, r, n)
            x = zip(x, px).map { a * $0 + $1 }
        }
        return tall ? transpose(x, r, n) : x
    }

    /// Eigenvalues of a symmetric matrix (cyclic Jacobi rotations).
    static func symmetricEigenvalues(_ m: [Double], _ n: Int) -> [Double] {
        var a = m
        for _ in 0..<100 {
            var off = 0.0
            for p in 0..<n { for q in (p + 1)..<n { off += a[p * n + q] * a[p * n + q] } }
            if off < 1e-26 { break }
            for p in 0..<(n - 1) {
                for q in (p + 1)..<n where abs(a[p * n + q]) > 1e-300 {
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let cs = 1 / (t * t + 1).squareRoot(), sn = t * cs
                    for k in 0..<n {
                        let (kp, kq) = (a[k * n + p], a[k * n + q])
                        a[k * n + p] = cs * kp - sn * kq; a[k * n + q] = sn * kp + cs * kq
                    }
                    for k in 0..<n {
                        let (pk, qk) = (a[p * n + k], a[q * n + k])
                        a[p * n + k] = cs * pk - sn * qk; a[q * n + k] = sn * pk + cs * qk
                    }
                }
            }
        }
        return (0..<n).map { a[$0 * n + $0] }.sorted()
    }

    static func random(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
        var gen = SeededGenerator(seed: seed)
        return Tensor.randomNormal(shape, std: std, generator: &gen)
    }

    static func doubles(_ t: Tensor) -> [Double] { t.scalars.map(Double.init) }

    static func maxRelativeError(_ got: [Double], _ want: [Double]) -> Double {
        let diff = zip(got, want).map { abs($0 - $1) }.max()!, scale = want.map(abs).max()!
        return diff / max(scale, 1e-12)
    }

    // MARK: Newton–Schulz

    func testNewtonSchulzMatchesTheReferenceIterationInDouble() {
        // Wide, tall (the reference transposes), square, single row/column (sgemv paths), larger than a BLAS block.
        for (i, shape) in [[6, 10], [10, 6], [7, 7], [1, 5], [5, 1], [48, 32], [40, 96]].enumerated() {
            let g = Self.random(shape, seed: UInt64(10 + i), std: 0.3)
            let got = Self.doubles(Muon.orthogonalize(g))
            let want = Self.referenceNS(Self.doubles(g), rows: shape[0], cols: shape[1])
            XCTAssertLessThan(Self.maxRelativeError(got, want), 1e-5, "shape \(shape)")
        }
        // zero steps: just the Frobenius normalisation
        let g = Self.random([3, 4], seed: 3)
        let norm = Self.doubles(g).reduce(0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertLessThan(Self.maxRelativeError(Self.doubles(Muon.orthogonalize(g, steps: 0)), Self.doubles(g).map { $0 / (norm + 1e-7) }), 1e-6)
    }

    /// NS₅(G) = U S′ Vᵀ for G = U S Vᵀ: the singular values land in about (0.7, 1.2) (the reference's docstring:
    /// "S′ ~ Uniform(0.5, 1.5)"), O·Gᵀ = U S′S Uᵀ is symmetric positive definite (same singular vectors), and the
    /// result does not depend on G's scale or orientation.
    func testNewtonSchulzOrthogonalisesKeepingSingularVectors() {
        for (shape, seed) in [([16, 40], UInt64(1)), ([40, 16], 2), ([24, 24], 3)] {
            let (r, c) = (shape[0], shape[1]), k = min(r, c)
            let g = Self.random(shape, seed: seed)
            let o = Muon.orthogonalize(g)
            XCTAssertEqual(o.shape, shape)
            let od = Self.doubles(o), gd = Self.doubles(g)
            // Gram of the smaller side: its eigenvalues are the squared singular values.
            let gram = r <= c ? Self.matmul(od, Self.transpose(od, r, c), r, c, r) : Self.matmul(Self.transpose(od, r, c), od, c, r, c)
            let sv = Self.symmetricEigenvalues(gram, k).map { $0.squareRoot() }
            XCTAssertGreaterThan(sv.first!, 0.6, "\(shape): smallest singular value \(sv.first!)")
            XCTAssertLessThan(sv.last!, 1.25, "\(shape): largest singular value \(sv.last!)")
            let identityGap = zip(gram, (0..<(k * k)).map { $0 % (k + 1) == 0 ? 1.0 : 0.0 }).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(identityGap, 0.6, "\(shape): ‖OOᵀ − I‖∞")
            // O·Gᵀ (or Oᵀ·G when tall) symmetric positive definite.
            let cross = r <= c ? Self.matmul(od, Self.transpose(gd, r, c), r, c, r) : Self.matmul(Self.transpose(od, r, c), gd, c, r, c)
            let asym = (0..<k).flatMap { i in (0..<k).map { j in abs(cross[i * k + j] - cross[j * k + i]) } }.max()!
            XCTAssertLessThan(asym / cross.map(abs).max()!, 1e-5, "\(shape): O·Gᵀ symmetric")
            XCTAssertGreaterThan(Self.symmetricEigenvalues(cross, k).first!, 0, "\(shape): O·Gᵀ positive definite")
            // scale invariance and transpose equivariance
            XCTAssertLessThan(Self.maxRelativeError(Self.doubles(Muon.orthogonalize(g * 250)), od), 1e-5)
            let gt = Tensor(Self.transpose(gd, r, c).map(Float.init), shape: [c, r])
            XCTAssertLessThan(Self.maxRelativeError(Self.transpose(Self.doubles(Muon.orthogonalize(gt)), c, r), od), 1e-5)
        }
    }

    // MARK: The update rule

    /// Two steps on a wide and a tall matrix, with weight decay, both scales, with and without Nesterov, against
    /// the rule evaluated in Double (EMA momentum, Nesterov lerp, NS₅, scale, decoupled decay).
    func testTwoStepsMatchTheUpdateRuleInDouble() {
        for (shape, scale, nesterov) in [([4, 6], Muon.Scale.original, true), ([6, 4], .original, true),
                                         ([6, 4], .moonlight, true), ([5, 3], .original, false)] {
            let (rows, cols) = (shape[0], shape[1]), n = rows * cols
            let w = Self.random(shape, seed: 7, std: 0.5)
            w.setRequiresGrad(true)
            let c1 = Self.random(shape, seed: 8), c2 = Self.random(shape, seed: 9)
            let opt = Muon(momentum: 0.9, nesterov: nesterov, scale: scale)
            let (lr, wd, mu) = (0.05, 0.1, 0.9)
            var p = Self.doubles(w), m = [Double](repeating: 0, count: n)
            for step in 1...2 {
                w.zeroGrad()
                (w * w * c1 + w * c2).sum().backward()      // g = 2·c1·w + c2
                let g = (0..<n).map { 2 * Double(c1.pointer[$0]) * p[$0] + Double(c2.pointer[$0]) }
                opt.step([TrainableParameter(name: "w", tensor: w, learningRateScale: 0.5, weightDecay: Float(wd))], lr: Float(lr) * 2)
                for i in 0..<n { m[i] = mu * m[i] + (1 - mu) * g[i] }
                let u = nesterov ? (0..<n).map { (1 - mu) * g[$0] + mu * m[$0] } : m
                let o = Self.referenceNS(u, rows: rows, cols: cols)
                let s = scale == .original ? max(1, Double(rows) / Double(cols)).squareRoot() : 0.2 * Double(max(rows, cols)).squareRoot()
                for i in 0..<n { p[i] = p[i] * (1 - lr * wd) - lr * s * o[i] }
                XCTAssertLessThan(Self.maxRelativeError(Self.doubles(w), p), 2e-6, "\(shape) \(scale) step \(step)")
                XCTAssertLessThan(Self.maxRelativeError(Self.doubles(opt.momentumBuffers["w"]!), m), 2e-6)
            }
            XCTAssertEqual(opt.stepCount, 2)
        }
        XCTAssertEqual(Muon.Scale.original.factor(rows: 8, cols: 2), 2)
        XCTAssertEqual(Muon.Scale.original.factor(rows: 2, cols: 8), 1)
        XCTAssertEqual(Muon.Scale.moonlight.factor(rows: 2, cols: 25), 1, accuracy: 1e-6)
    }

    /// Gradients accumulated over two backward calls give the same step as one backward of the summed loss, and
    /// the step leaves the gradient untouched (so clipping statistics and logging see what backward produced).
    func testAccumulatedGradientsAndParametersWithoutGradients() {
        let c1 = Self.random([3, 5], seed: 21), c2 = Self.random([3, 5], seed: 22)
        let a = Self.random([3, 5], seed: 23), b = a.copy()
        a.setRequiresGrad(true); b.setRequiresGrad(true)
        (a * a * c1).sum().backward(); (a * c2).sum().backward()
        (b * b * c1 + b * c2).sum().backward()
        let gradBefore = a.grad!.scalars
        XCTAssertLessThan(Self.maxRelativeError(Self.doubles(a.grad!), Self.doubles(b.grad!)), 1e-6)
        let (oa, ob) = (Muon(), Muon())
        oa.step([TrainableParameter(name: "x", tensor: a)], lr: 0.1)
        ob.step([TrainableParameter(name: "x", tensor: b)], lr: 0.1)
        XCTAssertLessThan(Self.maxRelativeError(Self.doubles(a), Self.doubles(b)), 1e-6)
        XCTAssertEqual(a.grad!.scalars, gradBefore)

        let frozen = Self.random([2, 2], seed: 5), before = frozen.scalars
        let opt = Muon()
        opt.step([TrainableParameter(name: "f", tensor: frozen, weightDecay: 0.1)], lr: 1)
        XCTAssertEqual(frozen.scalars, before)
        XCTAssertNil(opt.momentumBuffers["f"])
        XCTAssertTrue(opt.stateTensors().isEmpty)
    }

    // MARK: State and the hybrid

    func testStateRoundTripAndMalformedState() throws {
        let w = Self.random([3, 4], seed: 30)
        w.setRequiresGrad(true)
        (w * w).sum().backward()
        let opt = Muon()
        opt.step([TrainableParameter(name: "layer.w", tensor: w)], lr: 0.1)
        let state = opt.stateTensors()
        XCTAssertEqual(Array(state.keys), ["momentum/layer.w"])
        let restored = Muon()
        try restored.restoreState(step: 1, tensors: state)
        XCTAssertEqual(restored.stepCount, 1)
        XCTAssertEqual(restored.momentumBuffers["layer.w"]!.scalars, opt.momentumBuffers["layer.w"]!.scalars)
        XCTAssertFalse(restored.momentumBuffers["layer.w"]! === state["momentum/layer.w"]!, "restore copies")

        XCTAssertThrowsError(try Muon().restoreState(step: 1, tensors: ["exp_avg/x": Tensor(zeros: [2, 2])])) {
            XCTAssertTrue("\($0)".contains("exp_avg/x"), "\($0)")
        }
        XCTAssertThrowsError(try Muon().restoreState(step: 1, tensors: ["momentum/b": Tensor(zeros: [4])]))
        XCTAssertThrowsError(try MuonWithAdamW().restoreState(step: 1, tensors: ["sgd/momentum/x": Tensor(zeros: [2, 2])])) {
            XCTAssertTrue("\($0)".contains("sgd/momentum/x"), "\($0)")
        }
        XCTAssertThrowsError(try MuonWithAdamW().restoreState(step: 1, tensors: ["adamw/exp_avg/x": Tensor(zeros: [2])]))
    }

    /// Routing by GLM name and rank, and each group's rate: Muon at lr × muonLearningRateScale, AdamW at
    /// lr × adamWLearningRateScale (the first AdamW step moves each element by ≈ its rate).
    func testHybridRoutesAndScalesRates() {
        let names: [(String, [Int], Bool)] = [
            ("model.embed_tokens.weight", [16, 4], false), ("lm_head.weight", [16, 4], false),
            ("model.norm.weight", [4], false), ("model.layers.0.input_layernorm.weight", [4], false),
            ("model.layers.0.self_attn.q_proj.bias", [4], false), ("model.layers.0.self_attn.q_proj.weight", [4, 4], true),
            ("model.layers.3.mlp.gate_up_proj.weight", [8, 4], true), ("model.layers.11.mlp.down_proj.weight", [4, 4], true),
        ]
        for (name, shape, muon) in names {
            XCTAssertEqual(MuonWithAdamW.isHiddenMatrix(name: name, shape: shape), muon, name)
        }
        let hidden = Self.random([4, 4], seed: 40), bias = Tensor([1, -1, 2, -2], shape: [4])
        hidden.setRequiresGrad(true); bias.setRequiresGrad(true)
        (hidden * Self.random([4, 4], seed: 41)).sum().backward()
        (bias * Tensor([3, -3, 1, 5], shape: [4])).sum().backward()
        let h0 = Self.doubles(hidden)
        let opt = MuonWithAdamW(muonLearningRateScale: 2, adamWLearningRateScale: 0.25)
        opt.step([TrainableParameter(name: "model.layers.0.self_attn.o_proj.weight", tensor: hidden),
                  TrainableParameter(name: "model.layers.0.self_attn.q_proj.bias", tensor: bias)], lr: 0.04)
        // AdamW's first step is lr·sign(g) (up to eps): 0.04 × 0.25 = 0.01.
        assertClose(bias.scalars.map(Double.init), [0.99, -0.99, 1.99, -2.01], accuracy: 1e-6)
        // Muon (square: scale 1) at 0.04 × 2 = 0.08 times NS₅ of the first Nesterov direction (∝ g).
        let o = Self.doubles(Muon.orthogonalize(hidden.grad!))
        XCTAssertLessThan(Self.maxRelativeError(Self.doubles(hidden), zip(h0, o).map { $0 - 0.08 * $1 }), 1e-5)
        XCTAssertEqual(Set(opt.stateTensors().keys), ["muon/momentum/model.layers.0.self_attn.o_proj.weight",
                                                     "adamw/exp_avg/model.layers.0.self_attn.q_proj.bias",
                                                     "adamw/exp_avg_sq/model.layers.0.self_attn.q_proj.bias"])
        XCTAssertEqual(opt.stepCount, 1); XCTAssertEqual(opt.muon.stepCount, 1); XCTAssertEqual(opt.adamW.stepCount, 1)
    }
}

private func assertClose(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
