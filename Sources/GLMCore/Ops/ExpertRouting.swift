// Token-to-expert routing of a Mixture-of-Experts layer: the (non-differentiable) selection — sigmoid scores plus a
// per-expert correction bias, group-limited top-k as DeepSeek-V3 / GLM-4.5 do it — and the (differentiable)
// routing weights gathered from the scores without the bias, optionally normalised and scaled.
import Foundation

/// Which experts each token goes to, and the same assignment grouped by expert (what `routedExperts` runs on).
public struct ExpertRouting: Sendable, Equatable {
    public let tokens: Int
    public let experts: Int
    public let topK: Int
    /// `[tokens · topK]`: slot k of token n picks expert `indices[n·topK + k]`.
    public let indices: [Int32]
    /// Slots `n·topK + k` ordered by expert (stable: token order within an expert).
    public let order: [Int32]
    /// Expert e's slots are `order[offsets[e] ..< offsets[e+1]]` (`experts + 1` entries).
    public let offsets: [Int]

    /// Groups the assignment `indices` (`tokens · topK` expert ids, each in `0..<experts`) by expert.
    public init(indices: [Int32], tokens: Int, experts: Int, topK: Int) {
        precondition(indices.count == tokens * topK, "routing: \(indices.count) indices for \(tokens) tokens × top-\(topK)")
        precondition(indices.allSatisfy { $0 >= 0 && Int($0) < experts }, "routing: expert index outside 0..<\(experts)")
        self.tokens = tokens; self.experts = experts; self.topK = topK; self.indices = indices
        var offsets = [Int](repeating: 0, count: experts + 1)
        for e in indices { offsets[Int(e) + 1] += 1 }
        for e in 0..<experts { offsets[e + 1] += offsets[e] }
        var next = offsets, order = [Int32](repeating: 0, count: indices.count)
        for (p, e) in indices.enumerated() { order[next[Int(e)]] = Int32(p); next[Int(e)] += 1 }
        self.order = order
        self.offsets = offsets
    }

    /// Tokens routed to each expert (`[experts]`).
    public var loads: [Int] { (0..<experts).map { offsets[$0 + 1] - offsets[$0] } }

    /// Group-limited top-k selection (transformers' Glm4MoeMoE.route_tokens_to_experts, DeepSeek-V3's
    /// `noaux_tc`): for each token the choice scores are c = scores + bias (`bias` `[experts]`, nil for none);
    /// experts are split into `groups` equal groups, a group scores the sum of its two largest c, the best
    /// `keptGroups` groups stay and the others' experts are masked to −∞ (transformers' `masked_fill(…, -inf)`);
    /// the `topK` largest of what remains are picked. Ties go to the lower expert index. `scores` is
    /// `[tokens, experts]` row-major. Nothing here is differentiable: the weights come from `routingWeights`.
    public static func select(scores: UnsafePointer<Float>, bias: UnsafePointer<Float>?, tokens: Int, experts: Int,
                              topK: Int, groups: Int = 1, keptGroups: Int = 1) -> ExpertRouting {
        precondition(topK >= 1 && topK <= experts, "routing: top-\(topK) of \(experts) experts")
        precondition(groups >= 1 && experts % groups == 0 && experts / groups >= 2 && keptGroups >= 1 && keptGroups <= groups,
                     "routing: \(experts) experts in \(groups) groups keeping \(keptGroups)")
        precondition(topK <= keptGroups * (experts / groups), "routing: top-\(topK) exceeds the experts of \(keptGroups) groups")
        var indices = [Int32](repeating: 0, count: tokens * topK)
        let perGroup = experts / groups
        indices.withUnsafeMutableBufferPointer { ib in
            let out = ib.baseAddress!
            Parallel.forEachChunk(tokens, costPerItem: experts * 4) { range in
                var c = [Float](repeating: 0, count: experts)
                var groupScore = [Float](repeating: 0, count: groups)
                var taken = [Bool](repeating: false, count: experts)
                for n in range {
                    let s = scores + n * experts
                    for e in 0..<experts { c[e] = s[e] + (bias?[e] ?? 0) }
                    if groups > 1 {
                        for g in 0..<groups {
                            var best = -Float.infinity, second = -Float.infinity
                            for e in (g * perGroup)..<((g + 1) * perGroup) {
                                let v = c[e]
                                if v > best { second = best; best = v } else if v > second { second = v }
                            }
                            groupScore[g] = best + second
                        }
                        var keep = [Bool](repeating: false, count: groups)
                        for _ in 0..<keptGroups {
                            var arg = -1
                            for g in 0..<groups where !keep[g] && (arg < 0 || groupScore[g] > groupScore[arg]) { arg = g }
                            keep[arg] = true
                        }
                        for g in 0..<groups where !keep[g] {
                            for e in (g * perGroup)..<((g + 1) * perGroup) { c[e] = -Float.infinity }
                        }
                    }
                    for e in 0..<experts { taken[e] = false }
                    for k in 0..<topK {
                        var arg = -1
                        for e in 0..<experts where !taken[e] && (arg < 0 || c[e] > c[arg] || c[arg].isNaN) { arg = e }
                        taken[arg] = true
                        out[n * topK + k] = Int32(arg)
                    }
                }
            }
        }
        return ExpertRouting(indices: indices, tokens: tokens, experts: experts, topK: topK)
    }
}

extension Tensor {
    /// The routing weights `[tokens, topK]` of `routing` from `scores` (`[tokens, experts]`, e.g. sigmoid router
    /// outputs): w[n,k] = scores[n, expert(n,k)]; with `normalize`, divided by Σ_k w[n,k] + 1e-20; then times
    /// `scale`. Differentiable in `scores` (the selection itself is fixed).
    public static func routingWeights(_ scores: Tensor, routing: ExpertRouting, normalize: Bool, scale: Float) -> Tensor {
        let (N, E, K) = (routing.tokens, routing.experts, routing.topK)
        precondition(scores.count == N * E, "routingWeights: scores \(scores.shape) for \(N) tokens × \(E) experts")
        let out = Tensor(uninitialized: [N, K])
        let sp = scores.pointer, op = out.pointer
        var denominators = [Float](repeating: 1, count: N)
        routing.indices.withUnsafeBufferPointer { ib in
            for n in 0..<N {
                var sum: Float = 0
                for k in 0..<K { let v = sp[n * E + Int(ib[n * K + k])]; op[n * K + k] = v; sum += v }
                let d: Float = normalize ? sum + 1e-20 : 1
                denominators[n] = d
                for k in 0..<K { op[n * K + k] = op[n * K + k] / d * scale }
            }
        }
        return out.recorded(from: [scores]) { g in
            let ds = Tensor(zeros: scores.shape)
            let gp = g.pointer, dp = ds.pointer, sp = scores.pointer
            routing.indices.withUnsafeBufferPointer { ib in
                for n in 0..<N {
                    let d = denominators[n]
                    // w_k = scale·s_k/D, D = Σ s + ε: ∂L/∂s_k = scale·(g_k − Σ_j g_j s_j / D) / D.
                    var dot: Float = 0
                    if normalize { for k in 0..<K { dot += gp[n * K + k] * sp[n * E + Int(ib[n * K + k])] } }
                    for k in 0..<K {
                        let e = Int(ib[n * K + k])
                        dp[n * E + e] += scale * (gp[n * K + k] - (normalize ? dot / d : 0)) / d
                    }
                }
            }
            scores.accumulateGrad(ds, fresh: true)
        }
    }
}
