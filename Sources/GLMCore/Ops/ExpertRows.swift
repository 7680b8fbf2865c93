// The two ends of a routed-expert layer built from ordinary ops (used when an expert's linears are adapted, e.g. by
// LoRA, and `Tensor.routedExperts` cannot run them fused): gathering each expert's token rows, and combining every
// expert's outputs into the token rows weighted by the routing weights. Both differentiable.

extension Tensor {
    /// Rows `rows` of `x` (`[N, H]` or `[..., H]`): `[rows.count, H]`; the backward scatter-adds into x's gradient.
    public static func gatherRows(_ x: Tensor, rows: [Int32]) -> Tensor {
        let H = x.shape.last!, N = x.count / max(H, 1)
        precondition(rows.allSatisfy { $0 >= 0 && Int($0) < N }, "gatherRows: row outside 0..<\(N)")
        let out = Tensor(uninitialized: [rows.count, H])
        let xp = x.pointer, op = out.pointer
        for (i, r) in rows.enumerated() { (op + i * H).update(from: xp + Int(r) * H, count: H) }
        return out.recorded(from: [x]) { g in
            let dx = Tensor(zeros: x.shape)
            let gp = g.pointer, dp = dx.pointer
            for (i, r) in rows.enumerated() { Kernels.addInPlace(dp + Int(r) * H, gp + i * H, H) }
            x.accumulateGrad(dx, fresh: true)
        }
    }

    /// out[n] = Σ over the slots (n, k): weights[n, k] · outputs[e][row of the slot], where `outputs[e]` holds expert
    /// e's rows in `routing.order` (`[loads[e], H]`; an expert without tokens may be any tensor with 0 rows, or nil).
    /// Returns `[routing.tokens, H]`; differentiable in every output and in `weights` (`[tokens, topK]`).
    public static func combineExperts(_ outputs: [Tensor?], routing: ExpertRouting, weights: Tensor, hidden H: Int) -> Tensor {
        let (N, K) = (routing.tokens, routing.topK)
        precondition(outputs.count == routing.experts && weights.count == N * K, "combineExperts: \(outputs.count) outputs, weights \(weights.shape)")
        for e in 0..<routing.experts {
            let rows = routing.offsets[e + 1] - routing.offsets[e]
            precondition(rows == 0 || outputs[e]?.count == rows * H, "combineExperts: expert \(e) output \(outputs[e]?.shape ?? []) for \(rows) rows")
        }
        let out = Tensor(zeros: [N, H])
        let op = out.pointer, wp = weights.pointer
        for e in 0..<routing.experts {
            let lo = routing.offsets[e], rows = routing.offsets[e + 1] - lo
            guard rows > 0, let y = outputs[e] else { continue }
            let yp = y.pointer
            for r in 0..<rows {
                let p = Int(routing.order[lo + r]), w = wp[p], dst = op + p / K * H, src = yp + r * H
                for j in 0..<H { dst[j] += w * src[j] }
            }
        }
        let used = outputs.compactMap { $0 }
        return out.recorded(from: used + [weights]) { g in
            let gp = g.pointer, wp = weights.pointer
            let dw = weights.requiresGrad ? Tensor(zeros: weights.shape) : nil
            for e in 0..<routing.experts {
                let lo = routing.offsets[e], rows = routing.offsets[e + 1] - lo
                guard rows > 0, let y = outputs[e] else { continue }
                let dy = y.requiresGrad ? Tensor(uninitialized: y.shape) : nil
                let yp = y.pointer
                for r in 0..<rows {
                    let p = Int(routing.order[lo + r]), gr = gp + p / K * H
                    if let dw { dw.pointer[p] = Kernels.dot(gr, yp + r * H, H) }
                    if let dy { Kernels.scale(gr, wp[p], dy.pointer + r * H, H) }
                }
                if let dy { y.accumulateGrad(dy, fresh: true) }
            }
            if let dw { weights.accumulateGrad(dw, fresh: true) }
        }
    }
}
