// GLM's autoregressive blank infilling (arXiv 2103.10360; THUDM/GLM blocklm_utils.py ConstructBlockStrategy):
// span sampling, the Part A / Part B layout with 2D positions, the prefix mask, and batches of rows.
import Foundation
import GLMCore
import GLMModel

/// The three variants of blank infilling (GLM's `bert`, `sentence` and `gpt` modes).
public enum BlankInfillingMode: String, Sendable, Equatable, CaseIterable {
    /// Spans of Poisson(λ) lengths covering `maskRatio` of the text, each replaced by `[MASK]`.
    case token
    /// Whole sentences covering `sentenceRatio` of the text, each replaced by `[sMASK]`.
    case sentence
    /// One long span (50–100% of the text by default), replaced by `[gMASK]`; by default a suffix.
    case document
}

/// One row of blank infilling: Part A (the text with one mask token per span) followed by Part B (each span as
/// `<sop> span`, in shuffled order). Nothing is padded yet; ``BlankInfillingObjective/batch(rows:)`` pads.
public struct BlankInfillingRow: Sendable, Equatable {
    /// Part A ⧺ Part B.
    public var ids: [Int32]
    /// Already shifted: `ignoreLabel` over Part A; over Part B each span followed by `<eop>` (the document-level
    /// suffix variant ends without `<eop>`, as in GLM).
    public var targets: [Int32]
    /// Rotary position ids (see ``BlankInfillingObjective`` for the 2D and the 1D choice).
    public var positions: [Int32]
    /// Block position ids (0 in Part A, 1… in each span of Part B); nil with 1D positions.
    public var blockPositions: [Int32]?
    /// |Part A|: tokens before it attend to each other bidirectionally; later tokens are causal.
    public var prefixLength: Int
    public var mode: BlankInfillingMode
    /// The blanked spans in Part-B order, as index ranges of the text (after `cls` and truncation).
    public var spans: [Range<Int>]
    /// Length of the text the row was made from: `cls` (if any) plus the document tokens kept.
    public var textLength: Int

    public var count: Int { ids.count }
}

/// GLM's blank-infilling objective over token ids: pure functions of (document tokens, generator state), so a
/// data cursor plus the `SeededGenerator` state reproduces every row.
///
/// Layout (reference/glm.md §A.3, `make_block_data`): `ids = PartA ⧺ concat([sop] ⧺ span)`,
/// `targets = ignore(PartA) ⧺ concat(span ⧺ [eop])`, mask `M[i,j] = j < |PartA| ∨ j ≤ i` (``AttentionMask/prefix(lengths:queries:)``),
/// loss on Part B only.
///
/// **Positions: 2D or 1D.** With `twoDimensionalPositions` (for models with `config.rotary2D`) the rows carry
/// GLM's two position ids: dimension 1 numbers the corrupted text (each mask token takes its span's first
/// position, and every Part-B token of a span, `<sop>` included, takes its mask's position); dimension 2, the
/// block position, is 0 over Part A and 1, 2, …, ℓ+1 over `<sop> s₁ … s_ℓ`. The 2D rotary rotates the second
/// half of the rotary dims by the block position (as ChatGLM-6B).
/// Without it (ordinary HF `glm`/`glm4` models, 1D rotary) there is no second dimension to tell the tokens of a
/// span apart, so every token takes its true sequential index in the row (0, 1, …, count−1, the model's
/// default): Part A reads as ordinary text and Part B continues after it, and the row is a plain prefix-LM
/// sequence; `blockPositions` is nil. Which blank a Part-B span fills is then not given by the positions (with
/// `shuffleSpans` the model must infer it from the span's content; with `shuffleSpans: false` the i-th `<sop>`
/// fills the i-th mask).
public struct BlankInfillingObjective: Sendable, Equatable {
    /// Sampling parameters; the defaults are `ConstructBlockStrategy`'s (token level only, as GLM-Base/Large).
    public struct Options: Sendable, Equatable {
        /// Token level: spans are drawn until they cover `int(maskRatio · n)` tokens (`bert_ratio`).
        public var maskRatio = 0.15
        /// Mean of the span-length Poisson (`avg_block_length`); lengths 1..<`maxSpanLength`, renormalised.
        public var poissonLambda = 3.0
        /// `max_block_length`: span lengths are 1 ... maxSpanLength−1.
        public var maxSpanLength = 40
        /// Sentence level: sentences are taken until they cover `int(sentenceRatio · n)` tokens (`gap_sentence_ratio`).
        public var sentenceRatio = 0.15
        /// Mixture: probability of the sentence-level variant (`gap_sentence_prob`).
        public var sentenceProbability = 0.0
        /// Mixture: probability of the document-level variant (GLM's `1 − bert_prob − gap_sentence_prob`); the token
        /// level takes the rest.
        public var documentProbability = 0.0
        /// Document level: the span length is uniform in `int(documentMinRatio · n) ... n−2` (`gpt_min_ratio`;
        /// the paper's 50–100%, 0.25 in GLM-10B's scripts).
        public var documentMinRatio = 0.5
        /// Document level: probability that the span is a pure suffix, laid out as `prefix [gMASK] <sop> suffix[:-1]`
        /// with targets `suffix` and no `<eop>` (GLM's `gpt_infill_prob` branch, 0.5 in its code; 1 here, as
        /// GLM-130B/ChatGLM use [gMASK]). Otherwise the long span is placed at random and laid out like a token
        /// blank (with `<eop>`).
        public var documentSuffixProbability = 1.0
        /// Part-B order: shuffled (GLM's default) or in text order (`--no-shuffle-block`).
        public var shuffleSpans = true
        /// `--task-mask`: `[sMASK]`/`[gMASK]` for the sentence/document variants; false writes `[MASK]` for all.
        public var taskMasks = true

        public init() {}

        /// GLM-10B's mixture (`config/ds_block_10B.sh`): token 0.5, sentence 0.3, document 0.2, `gpt_min_ratio`
        /// 0.25, half the document spans suffixes. (Its `block_mask_prob` [dBLOCK] corruption is not implemented.)
        public static var glm10B: Options {
            var o = Options()
            o.sentenceProbability = 0.3; o.documentProbability = 0.2
            o.documentMinRatio = 0.25; o.documentSuffixProbability = 0.5
            return o
        }
    }

    public let tokens: BlankInfillingTokens
    /// Rows are at most this long (the text is truncated to fit Part A + Part B) and batches are padded to it.
    public let seqLen: Int
    public let options: Options
    /// 2D positions (position + block position) for `rotary_2d` models; 1D sequential positions otherwise.
    public let twoDimensionalPositions: Bool
    /// Running sums of the truncated Poisson weights of lengths 1 ..< maxSpanLength.
    let spanLengthCumulativeWeights: [Double]

    public init(tokens: BlankInfillingTokens, seqLen: Int, twoDimensionalPositions: Bool,
                options: Options = Options()) throws {
        guard seqLen >= 8 else { throw GLMError("blank infilling: seq_len \(seqLen) is too short (at least 8)") }
        func check(_ v: Double, _ name: String, _ range: ClosedRange<Double>) throws {
            guard range.contains(v) else { throw GLMError("blank infilling: \(name) \(v) outside \(range)") }
        }
        try check(options.maskRatio, "mask_ratio", 0...1)
        try check(options.sentenceRatio, "sentence_ratio", 0...1)
        try check(options.sentenceProbability, "sentence_prob", 0...1)
        try check(options.documentProbability, "document_prob", 0...1)
        try check(options.sentenceProbability + options.documentProbability, "sentence_prob + document_prob", 0...(1 + 1e-9))
        try check(options.documentMinRatio, "document_min_ratio", 0...1)
        try check(options.documentSuffixProbability, "document_suffix_prob", 0...1)
        guard options.poissonLambda > 0 else { throw GLMError("blank infilling: poisson_lambda must be positive") }
        guard options.maxSpanLength >= 2 else { throw GLMError("blank infilling: max span length must be at least 2") }
        self.tokens = tokens; self.seqLen = seqLen; self.options = options
        self.twoDimensionalPositions = twoDimensionalPositions
        // poisson.pmf(k, λ) = exp(k·ln λ − λ − ln k!) for k = 1 ..< maxSpanLength.
        var cw: [Double] = [], total = 0.0, logFactorial = 0.0
        for k in 1..<options.maxSpanLength {
            logFactorial += Foundation.log(Double(k))
            total += Foundation.exp(Double(k) * Foundation.log(options.poissonLambda) - options.poissonLambda - logFactorial)
            cw.append(total)
        }
        if !(total > 0 && total.isFinite) {
            // A large λ puts the mass beyond the longest span and every pmf underflows: the same truncated
            // distribution, its log-weights shifted by their maximum before exp.
            var logWeights: [Double] = [], lf = 0.0
            for k in 1..<options.maxSpanLength {
                lf += Foundation.log(Double(k))
                logWeights.append(Double(k) * Foundation.log(options.poissonLambda) - lf)
            }
            let top = logWeights.max()!
            total = 0
            cw = logWeights.map { total += Foundation.exp($0 - top); return total }
        }
        spanLengthCumulativeWeights = cw
    }

    /// For `model`'s configuration: 2D positions exactly when it takes block positions (`rotary_2d`).
    public init(tokens: BlankInfillingTokens, seqLen: Int, config: any CausalLMConfig, options: Options = Options()) throws {
        try self.init(tokens: tokens, seqLen: seqLen, twoDimensionalPositions: config.usesBlockPositions, options: options)
    }

    // MARK: Batches

    /// One batch from `documents` (one row each), all rows in one variant drawn from the mixture (GLM draws the
    /// mode once per batch), padded to `seqLen`.
    public func makeBatch(documents: [[Int32]], rng: inout SeededGenerator) -> TrainingBatch {
        let mode = sampleMode(&rng)
        return batch(rows: documents.map { makeRow(tokens: $0, mode: mode, rng: &rng) })
    }

    /// Pads `rows` to the longest of them, or to `seqLen` with `padToSeqLen` (ids with `pad`, targets with
    /// `ignoreLabel`, positions and block positions with 0), with the Part A / Part B mask. 1D rows leave positions
    /// to the model's default 0..<T. Padding sits after every real token, so it changes no real token's output.
    public func batch(rows: [BlankInfillingRow], padToSeqLen: Bool = false) -> TrainingBatch {
        precondition(!rows.isEmpty, "blank infilling: a batch needs at least one row")
        let T = padToSeqLen ? seqLen : rows.map(\.count).max()!
        var ids: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], blocks: [Int32] = []
        ids.reserveCapacity(rows.count * T); targets.reserveCapacity(rows.count * T)
        for r in rows {
            precondition(r.count <= T, "blank infilling: a row of \(r.count) tokens exceeds seq_len \(T)")
            let padding = T - r.count
            ids += r.ids; ids += repeatElement(tokens.pad, count: padding)
            targets += r.targets; targets += repeatElement(ignoreLabel, count: padding)
            if twoDimensionalPositions {
                positions += r.positions; positions += repeatElement(0, count: padding)
                blocks += r.blockPositions ?? [Int32](repeating: 0, count: r.count); blocks += repeatElement(0, count: padding)
            }
        }
        return TrainingBatch(batch: rows.count, length: T, ids: ids, targets: targets,
                             positions: twoDimensionalPositions ? positions : nil,
                             blockPositions: twoDimensionalPositions ? blocks : nil,
                             mask: .prefix(lengths: rows.map(\.prefixLength), queries: T))
    }

    /// The variant of the next batch or row, drawn from the mixture (one uniform draw).
    public func sampleMode(_ rng: inout SeededGenerator) -> BlankInfillingMode {
        let u = ObjectiveRandom.uniform(&rng)
        let tokenProbability = 1 - options.sentenceProbability - options.documentProbability
        if u < tokenProbability { return .token }
        if u < tokenProbability + options.sentenceProbability { return .sentence }
        return .document
    }

    // MARK: Rows

    /// One row from a document's tokens: `cls` (if any) is put in front, spans are sampled for `mode` (drawn
    /// from the mixture when nil), and the text is truncated so that Part A + Part B fit in `seqLen` (rows of
    /// `n` text tokens and `k` spans have `n + 2k` tokens; the document-level suffix row has `n + 1`).
    /// Documents are single documents: an `eos` inside is not treated specially (only a trailing one).
    public func makeRow(tokens document: [Int32], mode: BlankInfillingMode? = nil,
                        rng: inout SeededGenerator) -> BlankInfillingRow {
        let mode = mode ?? sampleMode(&rng)
        switch mode {
        case .token:
            let text = self.text(document, limit: seqLen)
            let lengths = sampleSpanLengths(covering: Int(options.maskRatio * Double(text.count)), rng: &rng)
            let spans = placeSpans(lengths: lengths, in: maskableRegion(text), rng: &rng)
            return blankRow(text, spans, mode, &rng)
        case .sentence:
            let text = self.text(document, limit: seqLen)
            var sentences = sentenceSpans(text)
            ObjectiveRandom.shuffle(&sentences, &rng)
            let target = Int(options.sentenceRatio * Double(text.count))
            var chosen: [Range<Int>] = [], covered = 0
            for s in sentences {
                chosen.append(s); covered += s.count
                if covered >= target { break }
            }
            return blankRow(text, chosen, mode, &rng)
        case .document:
            let suffix = ObjectiveRandom.uniform(&rng) < options.documentSuffixProbability
            let text = self.text(document, limit: seqLen - (suffix ? 1 : 2))
            let n = text.count
            guard n >= 3 else { return layout(text: text, spans: [], mode: mode) }   // nothing to generate
            let high = n - 2
            let low = max(1, min(Int(options.documentMinRatio * Double(n)), high))
            var length = ObjectiveRandom.int(in: low...high, &rng)
            if suffix { return suffixLayout(text: text, generationLength: length) }
            let region = maskableRegion(text)
            length = min(length, region.count)
            guard length >= 1 else { return layout(text: text, spans: [], mode: mode) }
            return layout(text: text, spans: placeSpans(lengths: [length], in: region, rng: &rng), mode: mode)
        }
    }

    /// Truncation to `seqLen`, then Part-B order, then the layout.
    private func blankRow(_ text: [Int32], _ spans: [Range<Int>], _ mode: BlankInfillingMode,
                          _ rng: inout SeededGenerator) -> BlankInfillingRow {
        var (text, spans) = (text, spans)
        if text.count + 2 * spans.count > seqLen {
            // Cut the text so that it and the 2 extra tokens per span fit; a span across the cut is cut with
            // it (a sentence cut by the truncation), spans past the cut are dropped.
            let n = max(0, seqLen - 2 * spans.count)
            text = Array(text[..<n])
            spans = spans.compactMap { $0.lowerBound < n ? $0.lowerBound..<min($0.upperBound, n) : nil }
        }
        if options.shuffleSpans { ObjectiveRandom.shuffle(&spans, &rng) } else { spans.sort { $0.lowerBound < $1.lowerBound } }
        return layout(text: text, spans: spans, mode: mode)
    }

    /// `cls` ⧺ document, at most `limit` tokens.
    private func text(_ document: [Int32], limit: Int) -> [Int32] {
        var t: [Int32] = tokens.cls.map { [$0] } ?? []
        t += document.prefix(max(0, limit - t.count))
        return t
    }

    /// The tokens spans may cover: all but a leading `cls` and a trailing `eos`.
    public func maskableRegion(_ text: [Int32]) -> Range<Int> {
        let low = (tokens.cls != nil && text.first == tokens.cls) ? 1 : 0
        var high = text.count
        if let eos = tokens.eos, high > low, text[high - 1] == eos { high -= 1 }
        return low..<max(low, high)
    }

    /// Span lengths drawn from the truncated Poisson until they sum to at least `target` (none when target ≤ 0).
    public func sampleSpanLengths(covering target: Int, rng: inout SeededGenerator) -> [Int] {
        var lengths: [Int] = [], total = 0
        while total < target {
            let l = ObjectiveRandom.choose(cumulativeWeights: spanLengthCumulativeWeights, &rng) + 1
            lengths.append(l); total += l
        }
        return lengths
    }

    /// GLM's `sample_spans`: keeps the leading lengths that fit in `region` with a gap of at least one token
    /// between spans, then places them uniformly at random in order (k sorted uniform draws in 0...m,
    /// m = |region| − Σℓ − k + 1). Returns the spans in text order.
    public func placeSpans(lengths: [Int], in region: Range<Int>, rng: inout SeededGenerator) -> [Range<Int>] {
        var taken: [Int] = [], sum = 0
        for l in lengths {
            guard l >= 1, sum + l + taken.count <= region.count else { break }
            taken.append(l); sum += l
        }
        guard !taken.isEmpty else { return [] }
        let m = region.count - sum - taken.count + 1
        let places = taken.map { _ in ObjectiveRandom.int(below: m + 1, &rng) }.sorted()
        var spans: [Range<Int>] = [], offset = region.lowerBound
        for (place, l) in zip(places, taken) {
            spans.append((offset + place)..<(offset + place + l))
            offset += l + 1
        }
        return spans
    }

    /// Sentences of `text` in order (`construct_blocks`, sentence mode): runs ending at a token in
    /// `sentenceEnds`, plus the run after the last one up to the end of the text. A leading `cls` belongs to
    /// none, and an `eos` belongs to none and discards the unterminated run before it, as in GLM's code.
    public func sentenceSpans(_ text: [Int32]) -> [Range<Int>] {
        var spans: [Range<Int>] = []
        var last = (tokens.cls != nil && text.first == tokens.cls) ? 1 : 0
        for i in 0..<text.count {
            if let eos = tokens.eos, text[i] == eos {
                last = i + 1
            } else if tokens.sentenceEnds.contains(text[i]) {
                if last < i + 1 { spans.append(last..<(i + 1)) }
                last = i + 1
            }
        }
        if last < text.count { spans.append(last..<text.count) }
        return spans
    }

    // MARK: Deterministic layouts

    /// The row for explicit `spans` of `text`, given in Part-B order (GLM's `make_block_data`): Part A is the text
    /// with each span replaced by the mode's mask token (`[MASK]`, `[sMASK]`, `[gMASK]`), Part B is
    /// `<sop> span` per span with targets `span <eop>`. Spans must be non-empty, inside the text and disjoint;
    /// `text` is used as given (put `cls` in it yourself) and must fit in `seqLen` with 2 tokens per span.
    public func layout(text: [Int32], spans: [Range<Int>], mode: BlankInfillingMode) -> BlankInfillingRow {
        let n = text.count
        let sorted = spans.sorted { $0.lowerBound < $1.lowerBound }
        for (i, s) in sorted.enumerated() {
            precondition(!s.isEmpty && s.lowerBound >= 0 && s.upperBound <= n, "blank infilling: span \(s) outside 0..<\(n)")
            precondition(i == 0 || sorted[i - 1].upperBound <= s.lowerBound, "blank infilling: spans \(sorted[i - 1]) and \(s) overlap")
        }
        precondition(n + 2 * spans.count <= seqLen, "blank infilling: \(n) tokens and \(spans.count) spans exceed seq_len \(seqLen)")
        // Positions over the original text where every span token after the first shares the first's position.
        var inner = [Bool](repeating: false, count: n)
        for s in spans where s.count > 1 { for i in (s.lowerBound + 1)..<s.upperBound { inner[i] = true } }
        var original = [Int32](repeating: 0, count: n)
        var p: Int32 = -1
        for i in 0..<n {
            if !inner[i] { p += 1 }
            original[i] = p
        }
        let maskID = maskToken(for: mode)
        var ids: [Int32] = [], positions: [Int32] = []
        ids.reserveCapacity(n + 2 * spans.count); positions.reserveCapacity(n + 2 * spans.count)
        var last = 0
        for s in sorted {
            ids += text[last..<s.lowerBound]; positions += original[last..<s.lowerBound]
            ids.append(maskID); positions.append(original[s.lowerBound])
            last = s.upperBound
        }
        ids += text[last...]; positions += original[last...]
        let sep = ids.count
        var targets = [Int32](repeating: ignoreLabel, count: sep)
        var blocks = [Int32](repeating: 0, count: sep)
        for s in spans {
            ids.append(tokens.startOfPiece); ids += text[s]
            targets += text[s]; targets.append(tokens.endOfPiece)
            positions += repeatElement(original[s.lowerBound], count: s.count + 1)
            blocks += (1...(s.count + 1)).map { Int32($0) }
        }
        return row(ids, targets, positions, blocks, prefixLength: sep, mode: mode, spans: spans, textLength: n)
    }

    /// GLM's document-level suffix row: `text[..<d] [gMASK] <sop> text[d..<n−1]` with targets `text[d...]` on the
    /// last L positions (d = n − L, no `<eop>`); positions `0 ..< d` then d for `[gMASK]` and all of Part B; block
    /// positions 0 through `[gMASK]`, then 1 … L; Part A is `text[..<d] [gMASK]`.
    public func suffixLayout(text: [Int32], generationLength L: Int) -> BlankInfillingRow {
        let n = text.count, d = n - L
        precondition(L >= 1 && d >= 0, "blank infilling: generation length \(L) for \(n) tokens")
        precondition(n + 1 <= seqLen, "blank infilling: \(n) tokens need \(n + 1) > seq_len \(seqLen)")
        let ids = Array(text[..<d]) + [maskToken(for: .document), tokens.startOfPiece] + Array(text[d..<(n - 1)])
        let targets = [Int32](repeating: ignoreLabel, count: d + 1) + Array(text[d...])
        let positions = (0..<d).map { Int32($0) } + [Int32](repeating: Int32(d), count: L + 1)
        let blocks = [Int32](repeating: 0, count: d + 1) + (1...L).map { Int32($0) }
        return row(ids, targets, positions, blocks, prefixLength: d + 1, mode: .document, spans: [d..<n], textLength: n)
    }

    private func maskToken(for mode: BlankInfillingMode) -> Int32 {
        guard options.taskMasks else { return tokens.mask }
        switch mode {
        case .token: return tokens.mask
        case .sentence: return tokens.sentenceMask
        case .document: return tokens.generationMask
        }
    }

    /// The 2D layout as is, or the 1D choice: sequential positions and no block positions.
    private func row(_ ids: [Int32], _ targets: [Int32], _ positions: [Int32], _ blocks: [Int32], prefixLength: Int,
                     mode: BlankInfillingMode, spans: [Range<Int>], textLength: Int) -> BlankInfillingRow {
        if twoDimensionalPositions {
            return BlankInfillingRow(ids: ids, targets: targets, positions: positions, blockPositions: blocks,
                                     prefixLength: prefixLength, mode: mode, spans: spans, textLength: textLength)
        }
        return BlankInfillingRow(ids: ids, targets: targets, positions: (0..<ids.count).map { Int32($0) },
                                 blockPositions: nil, prefixLength: prefixLength, mode: mode, spans: spans,
                                 textLength: textLength)
    }
}
