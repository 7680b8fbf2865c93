// The routed experts of a Mixture-of-Experts layer, grouped by expert: each expert gathers the rows of the tokens
// routed to it and runs ONE product per weight over them (gate and up into one [rows, 2I] buffer, SwiGLU, down),
// and the results are scatter-added into the output, weighted by the routing weights. The backward does the same
// per expert (no per-token loops over experts) and gives gradients to the input, the routing weights and every
// expert weight that trains. Frozen expert weights may be bf16 (read by the bf16 kernels, never widened).
import Foundation

/// One SwiGLU expert: `gate` and `up` `[I, H]`, `down` `[H, I]` (nn.Linear layout, as the per-expert checkpoint
/// tensors `mlp.experts.{e}.{gate,up,down}_proj.weight` are stored).
public struct ExpertWeights {
    public let gate: Tensor, up: Tensor, down: Tensor
    public init(gate: Tensor, up: Tensor, down: Tensor) {
        precondition(gate.rank == 2 && up.shape == gate.shape && down.shape == [gate.shape[1], gate.shape[0]],
                     "expert weights: gate \(gate.shape), up \(up.shape), down \(down.shape)")
        self.gate = gate; self.up = up; self.down = down
    }
}

extension Tensor {
    /// out[n] = Σ_k w[n,k] · down_e(silu(gate_e x_n) ⊙ up_e x_n), e = expert of slot (n, k): `x` `[N, H]` (or any
    /// `[..., H]` with N rows), `weights` `[N, topK]` (differentiable routing weights), `routing` the fixed
    /// assignment, `experts` one entry per expert. Returns `[..., H]` like `x`.
    public static func routedExperts(_ x: Tensor, routing: ExpertRouting, weights: Tensor, experts: [ExpertWeights]) -> Tensor {
        let H = x.shape.last!, N = x.count / max(H, 1), K = routing.topK
        precondition(routing.tokens == N && routing.experts == experts.count,
                     "routedExperts: routing of \(routing.tokens) tokens × \(routing.experts) experts for \(N) rows and \(experts.count) experts")
        precondition(weights.count == N * K, "routedExperts: weights \(weights.shape) for \(N) tokens × top-\(K)")
        let I = experts.first?.gate.shape[0] ?? 0
        precondition(experts.allSatisfy { $0.gate.shape == [I, H] }, "routedExperts: experts must all be [\(I), \(H)]")
        let out = Tensor(zeros: x.shape)
        // Saved for the backward: every slot's [gate | up] pre-activations, in expert order (rows of `order`).
        let gateUp = Tensor(uninitialized: [N * K, 2 * I])
        let xp = x.pointer, wp = weights.pointer, op = out.pointer, gup = gateUp.pointer
        let maxRows = (0..<experts.count).map { routing.offsets[$0 + 1] - routing.offsets[$0] }.max() ?? 0
        let scratch = TensorStorage(count: max(1, maxRows * (H + I + H)), zeroed: false)
        let xs = scratch.pointer, act = xs + maxRows * H, ys = act + maxRows * I
        routing.order.withUnsafeBufferPointer { ob in
            for (e, ex) in experts.enumerated() {
                let lo = routing.offsets[e], rows = routing.offsets[e + 1] - lo
                if rows == 0 { continue }
                let slots = ob.baseAddress! + lo
                for r in 0..<rows { (xs + r * H).update(from: xp + Int(slots[r]) / K * H, count: H) }
                let gu = gup + lo * 2 * I
                gemmWeight(ex.gate, transB: true, m: rows, n: I, k: H, a: xs, lda: H, c: gu, ldc: 2 * I)
                gemmWeight(ex.up, transB: true, m: rows, n: I, k: H, a: xs, lda: H, c: gu + I, ldc: 2 * I)
                swigluRows(gu, act, rows: rows, width: I)
                gemmWeight(ex.down, transB: true, m: rows, n: H, k: I, a: act, lda: I, c: ys, ldc: H)
                for r in 0..<rows {
                    let p = Int(slots[r])
                    let w = wp[p], dst = op + p / K * H, src = ys + r * H
                    for j in 0..<H { dst[j] += w * src[j] }
                }
            }
        }
        withExtendedLifetime(scratch) {}
        var inputs = [x, weights]
        for ex in experts { inputs += [ex.gate, ex.up, ex.down] }
        return out.recorded(from: inputs) { g in
            let gp = g.pointer, gup = gateUp.pointer, wp = weights.pointer, xp = x.pointer
            let dx = x.requiresGrad ? Tensor(zeros: x.shape) : nil
            let dw = weights.requiresGrad ? Tensor(zeros: weights.shape) : nil
            let scratch = TensorStorage(count: max(1, maxRows * (H + H + I + I + 2 * I + H)), zeroed: false)
            let xs = scratch.pointer, gs = xs + maxRows * H, pa = gs + maxRows * H, act = pa + maxRows * I
            let dgu = act + maxRows * I, dxs = dgu + maxRows * 2 * I
            routing.order.withUnsafeBufferPointer { ob in
                for (e, ex) in experts.enumerated() {
                    let lo = routing.offsets[e], rows = routing.offsets[e + 1] - lo
                    if rows == 0 { continue }
                    let slots = ob.baseAddress! + lo, gu = gup + lo * 2 * I
                    for r in 0..<rows {
                        let n = Int(slots[r]) / K
                        (xs + r * H).update(from: xp + n * H, count: H)
                        (gs + r * H).update(from: gp + n * H, count: H)
                    }
                    swigluRows(gu, act, rows: rows, width: I)
                    // P = G · down (the gradient of the expert output's activation before weighting).
                    gemmWeight(ex.down, transB: false, m: rows, n: I, k: H, a: gs, lda: H, c: pa, ldc: I)
                    for r in 0..<rows {
                        let p = Int(slots[r]), w = wp[p]
                        let pr = pa + r * I, ar = act + r * I
                        if let dw { dw.pointer[p] = Kernels.dot(pr, ar, I) }  // ∂L/∂w = g · y = P · act
                        for j in 0..<I { pr[j] *= w }                          // now ∂L/∂act
                    }
                    if ex.down.requiresGrad {  // ∂L/∂down = (w∘G)ᵀ · act = Gᵀ · (w∘act)
                        for r in 0..<rows { let w = wp[Int(slots[r])], ar = act + r * I; for j in 0..<I { ar[j] *= w } }
                        let dd = Tensor(uninitialized: ex.down.shape)
                        BLAS.gemm(transA: true, transB: false, m: H, n: I, k: rows, a: gs, lda: H, b: act, ldb: I,
                                  c: dd.pointer, ldc: I)
                        ex.down.accumulateGrad(dd, fresh: true)
                    }
                    swigluBackwardRows(gu, pa, dgu, rows: rows, width: I)
                    if ex.gate.requiresGrad {
                        let dg = Tensor(uninitialized: ex.gate.shape)
                        BLAS.gemm(transA: true, transB: false, m: I, n: H, k: rows, a: dgu, lda: 2 * I, b: xs, ldb: H,
                                  c: dg.pointer, ldc: H)
                        ex.gate.accumulateGrad(dg, fresh: true)
                    }
                    if ex.up.requiresGrad {
                        let du = Tensor(uninitialized: ex.up.shape)
                        BLAS.gemm(transA: true, transB: false, m: I, n: H, k: rows, a: dgu + I, lda: 2 * I, b: xs, ldb: H,
                                  c: du.pointer, ldc: H)
                        ex.up.accumulateGrad(du, fresh: true)
                    }
                    if let dx {
                        gemmWeight(ex.gate, transB: false, m: rows, n: H, k: I, a: dgu, lda: 2 * I, c: dxs, ldc: H)
                        gemmWeight(ex.up, transB: false, m: rows, n: H, k: I, a: dgu + I, lda: 2 * I, beta: 1, c: dxs, ldc: H)
                        let dp = dx.pointer
                        for r in 0..<rows { Kernels.addInPlace(dp + Int(slots[r]) / K * H, dxs + r * H, H) }
                    }
                }
            }
            withExtendedLifetime(scratch) {}
            if let dx { x.accumulateGrad(dx, fresh: true) }
            if let dw { weights.accumulateGrad(dw, fresh: true) }
        }
    }

    /// C = A · op(W) (+ beta·C) for a weight W `[rows, cols]` stored f32 or (frozen) bf16: `transB` multiplies by Wᵀ.
    static func gemmWeight(_ w: Tensor, transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                           beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if let bits = w.bf16Bits {
            BF16Kernels.product(transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: bits, ldb: w.shape[1], beta: beta, c: c, ldc: ldc)
            withExtendedLifetime(w) {}
        } else {
            BLAS.gemm(transA: false, transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: w.pointer, ldb: w.shape[1],
                      beta: beta, c: c, ldc: ldc)
        }
    }

    /// act[r] = silu(gate[r]) ⊙ up[r] for rows `[gate | up]` of width 2·`width`.
    static func swigluRows(_ gu: UnsafePointer<Float>, _ act: UnsafeMutablePointer<Float>, rows: Int, width n: Int) {
        for r in 0..<rows {
            let g = gu + r * 2 * n, u = g + n, y = act + r * n
            for j in 0..<n { let x = g[j]; y[j] = x / (1 + Foundation.exp(-x)) * u[j] }
        }
    }

    /// [dgate | dup] of SwiGLU rows from ∂L/∂act.
    static func swigluBackwardRows(_ gu: UnsafePointer<Float>, _ dAct: UnsafePointer<Float>, _ dgu: UnsafeMutablePointer<Float>,
                                   rows: Int, width n: Int) {
        for r in 0..<rows {
            let g = gu + r * 2 * n, u = g + n, dy = dAct + r * n, dg = dgu + r * 2 * n, du = dg + n
            for j in 0..<n {
                let x = g[j], s = 1 / (1 + Foundation.exp(-x))
                du[j] = dy[j] * x * s
                dg[j] = dy[j] * u[j] * s * (1 + x * (1 - s))
            }
        }
    }
}
