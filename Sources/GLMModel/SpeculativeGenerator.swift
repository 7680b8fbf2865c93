// Self-speculative greedy decoding with a model's MTP layer: the MTP layer drafts one token, the main model checks
// it together with the token before it in one forward pass of 2 positions over the KV cache, and a wrong draft's
// cache row is dropped. The output is the main model's greedy continuation, token for token: a draft only decides
// how many of the main model's own greedy tokens one pass yields (1 on rejection, 2 on acceptance).
import GLMCore

/// How the drafts fared.
public struct SpeculativeStats: Sendable, Equatable {
    /// Drafts the main model checked.
    public var drafted = 0
    /// Drafts equal to the main model's greedy token.
    public var accepted = 0
    /// Main-model forward passes after the prompt's.
    public var mainPasses = 0
    public var acceptanceRate: Double { drafted == 0 ? 0 : Double(accepted) / Double(drafted) }
    public init() {}
}

/// Greedy generation of one prompt, drafting with the MTP layer.
public struct SpeculativeGenerator {
    public let model: any MultiTokenPredictionModel
    /// How the MTP layer treats position 0 (only the prompt's first row; it changes drafts, never the output).
    public var firstPosition: MTPFirstPosition = .keep

    public init(model: any MultiTokenPredictionModel) {
        precondition(model.hasMTPLayer, "speculative decoding needs a model with an MTP layer")
        self.model = model
    }

    /// Continues `prompt` by up to `maxNewTokens` greedy tokens (what `TextGenerator` with `.greedy` gives, and the
    /// same log-probs), stopping after a stop token (default: the model's eos ids) or at max_position_embeddings.
    public func generate(prompt: [Int32], maxNewTokens requested: Int, stopTokens: Set<Int32>? = nil,
                         onToken: ((Int32) -> Void)? = nil) -> (GeneratedSequence, SpeculativeStats) {
        precondition(!prompt.isEmpty, "generation needs a non-empty prompt")
        let c = model.configuration, vocab = c.vocabSize, H = c.hiddenSize
        let stops = stopTokens ?? Set(c.eosTokenIdsInVocabulary.map(Int32.init))
        let n = prompt.count
        let maxNew = min(requested, max(0, c.maxPositionEmbeddings - n))
        var result = GeneratedSequence(tokens: [], logProbs: [], finishReason: "length")
        var stats = SpeculativeStats()
        guard maxNew > 0 else { return (result, stats) }
        var sampler = TokenSampler(parameters: .greedy, seed: 0)
        /// Emits the greedy token of row `r` of `logits` `[rows, V]`; false when generation is over.
        func emit(_ logits: Tensor, row r: Int = 0) -> (token: Int32, goOn: Bool) {
            let t = withExtendedLifetime(logits) { sampler.sample(logits.pointer + r * vocab, vocab: vocab) }
            result.tokens.append(t.id)
            result.logProbs.append(t.logProb)
            onToken?(t.id)
            if stops.contains(t.id) { result.finishReason = "stop"; return (t.id, false) }
            return (t.id, result.tokens.count < maxNew)
        }
        func draft(_ mtpHidden: Tensor, rows: Int) -> Int32 {
            let last = rows == 1 ? mtpHidden.reshaped([1, H]) : mtpHidden.reshaped([rows, H]).slice(axis: 0, start: rows - 1, length: 1)
            var greedy = TokenSampler(parameters: .greedy, seed: 0)
            let logits = model.mtpLogits(last)
            return withExtendedLifetime(logits) { greedy.sample(logits.pointer, vocab: vocab).id }
        }
        func row(_ hidden: Tensor, _ r: Int, of rows: Int) -> Tensor {
            rows == 1 ? hidden.reshaped([1, H]) : hidden.reshaped([rows, H]).slice(axis: 0, start: r, length: 1)
        }
        Autograd.noGrad {
            let capacity = n + maxNew + 1
            let cache = model.makeCache(batch: 1, capacity: capacity), mtpCache = model.makeMTPCache(batch: 1, capacity: capacity)
            let hidden = model.hiddenStates(ids: prompt, batch: 1, length: n, positions: nil, blockPositions: nil, mask: nil, cache: cache)
            var (pending, goOn) = emit(model.logits(row(hidden, n - 1, of: n)))
            guard goOn else { return }
            // The MTP layer over the prompt: row t reads h_t and token t+1 (the last row: the token just emitted).
            var guess = draft(model.mtpHiddenStates(hidden: hidden, nextIds: Array(prompt.dropFirst()) + [pending], batch: 1, length: n,
                                                    positions: nil, mask: nil, cache: mtpCache, firstPosition: firstPosition), rows: n)
            while true {
                let p = Int32(cache.length)  // the position of `pending`, not yet in the cache
                if maxNew - result.tokens.count == 1 {  // one token left: a plain step
                    let h = model.hiddenStates(ids: [pending], batch: 1, length: 1, positions: [p], blockPositions: nil, mask: nil, cache: cache)
                    stats.mainPasses += 1
                    _ = emit(model.logits(h.reshaped([1, H])))
                    return
                }
                let h = model.hiddenStates(ids: [pending, guess], batch: 1, length: 2, positions: [p, p + 1], blockPositions: nil,
                                           mask: nil, cache: cache)
                stats.mainPasses += 1
                stats.drafted += 1
                let logits = model.logits(h.reshaped([2, H]))
                let first = emit(logits)
                guard first.goOn else { return }
                if first.token == guess {
                    stats.accepted += 1
                    let second = emit(logits, row: 1)
                    guard second.goOn else { return }
                    guess = draft(model.mtpHiddenStates(hidden: h, nextIds: [first.token, second.token], batch: 1, length: 2,
                                                        positions: [p, p + 1], mask: nil, cache: mtpCache, firstPosition: firstPosition), rows: 2)
                    pending = second.token
                } else {
                    cache.truncate(to: Int(p) + 1)  // the rejected draft's keys and values
                    guess = draft(model.mtpHiddenStates(hidden: row(h, 0, of: 2), nextIds: [first.token], batch: 1, length: 1,
                                                        positions: [p], mask: nil, cache: mtpCache, firstPosition: firstPosition), rows: 1)
                    pending = first.token
                }
            }
        }
        return (result, stats)
    }
}
