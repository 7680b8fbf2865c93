// Batched autoregressive generation with a KV cache: prompts of different lengths are left-padded, and each
// row's keys stay one contiguous interval (its own tokens), so padding is masked exactly and costs nothing.
import GLMCore

/// One generated continuation.
public struct GeneratedSequence: Sendable, Equatable {
    /// New tokens only (a stop token, when hit, is included last).
    public var tokens: [Int32]
    /// log p of each new token under the temperature-scaled distribution it was drawn from (see `SampledToken`).
    public var logProbs: [Float]
    /// "stop" when a stop token ended it, "length" when `maxNewTokens` did.
    public var finishReason: String
}

/// Generates continuations of several prompts at once.
public struct TextGenerator {
    public let model: any CausalLanguageModel
    public init(model: any CausalLanguageModel) { self.model = model }

    /// Continues every prompt by up to `maxNewTokens` tokens. Row r samples with seed `seed + r`, so a row's
    /// text does not depend on which other prompts share the batch. `onToken(row, token)` is called as tokens
    /// are produced (for streaming and progress). Generation stops at `max_position_embeddings` positions
    /// (the KV cache is never sized past it).
    public func generate(prompts: [[Int32]], maxNewTokens requested: Int, sampling: SamplingParameters = .greedy,
                         seed: UInt64 = 0, stopTokens: Set<Int32>? = nil,
                         onToken: ((Int, Int32) -> Void)? = nil) -> [GeneratedSequence] {
        precondition(!prompts.isEmpty && prompts.allSatisfy { !$0.isEmpty }, "generation needs non-empty prompts")
        let stops = stopTokens ?? Set(model.configuration.eosTokenIdsInVocabulary.map(Int32.init))
        let B = prompts.count, L = prompts.map(\.count).max()!
        let pads = prompts.map { L - $0.count }
        let maxNewTokens = min(requested, max(0, model.configuration.maxPositionEmbeddings - L))
        var samplers = (0..<B).map { TokenSampler(parameters: sampling, seed: seed &+ UInt64($0)) }
        var results = (0..<B).map { _ in GeneratedSequence(tokens: [], logProbs: [], finishReason: "length") }
        var done = [Bool](repeating: false, count: B)
        guard maxNewTokens > 0 else { return results }
        let fill = Int32(model.configuration.padTokenId ?? 0)
        return Autograd.noGrad {
            let cache = model.makeCache(batch: B, capacity: L + maxNewTokens)
            // Prefill: pad rows see only themselves; real tokens see their own prefix from the first real token.
            var ids = [Int32](), positions = [Int32](), lower = [Int32](), upper = [Int32]()
            for (b, p) in prompts.enumerated() {
                ids += [Int32](repeating: fill, count: pads[b]) + p
                for i in 0..<L {
                    positions.append(Int32(max(0, i - pads[b])))
                    lower.append(Int32(i < pads[b] ? i : pads[b]))
                    upper.append(Int32(i + 1))
                }
            }
            var hidden = model.hiddenStates(ids: ids, batch: B, length: L, positions: positions, blockPositions: nil,
                                            mask: AttentionMask(batch: B, queries: L, keys: L, lower: lower, upper: upper),
                                            cache: cache)
            var lastRow = L - 1
            // The many short parallel regions of a decode step start without waking a sleeping thread each time.
            // Not during the prefill: its products run on OpenBLAS's threads, which spinning helpers would
            // crowd off the cores.
            return Parallel.withSpinningWorkers {
                for step in 0..<maxNewTokens {
                    let logits = lastLogits(hidden, row: lastRow, length: step == 0 ? L : 1)
                    var next = [Int32](repeating: fill, count: B)
                    let vocab = model.configuration.vocabSize
                    for b in 0..<B where !done[b] {
                        let t = samplers[b].sample(logits.pointer + b * vocab, vocab: vocab)
                        results[b].tokens.append(t.id)
                        results[b].logProbs.append(t.logProb)
                        onToken?(b, t.id)
                        next[b] = t.id
                        if stops.contains(t.id) { done[b] = true; results[b].finishReason = "stop" }
                    }
                    if done.allSatisfy({ $0 }) || step == maxNewTokens - 1 { break }
                    let S = cache.length + 1
                    let stepPositions = (0..<B).map { Int32(prompts[$0].count + step) }
                    let mask = AttentionMask(batch: B, queries: 1, keys: S, lower: pads.map(Int32.init),
                                             upper: [Int32](repeating: Int32(S), count: B))
                    hidden = model.hiddenStates(ids: next, batch: B, length: 1, positions: stepPositions, blockPositions: nil, mask: mask, cache: cache)
                    lastRow = 0
                }
                return results
            }
        }
    }

    /// Logits `[B, V]` of position `row` of each batch entry of `hidden` (`[B, length, H]`).
    private func lastLogits(_ hidden: Tensor, row: Int, length: Int) -> Tensor {
        let B = hidden.shape[0], H = model.configuration.hiddenSize
        let last = length == 1 ? hidden.reshaped([B, H]) : Tensor(uninitialized: [B, H])
        if length != 1 {
            for b in 0..<B { (last.pointer + b * H).update(from: hidden.pointer + (b * length + row) * H, count: H) }
        }
        return model.logits(last)
    }
}
