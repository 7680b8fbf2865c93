// GLM blank infilling: the worked example of reference/glm.md §A.3 exactly, the span sampler's statistics, the
// variants, 1D positions, truncation, and rows that run through a tiny model.
import XCTest
import Foundation
import GLMCore
import GLMModel
import GLMIO
import GLMTraining
import TestSupport

final class BlankInfillingTests: XCTestCase {
    // Token ids of the tests: text tokens are 1..<40.
    static let (MASK, sMASK, gMASK, SOP, EOP, PAD, CLS, EOS, DOT): (Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32, Int32)
        = (40, 41, 42, 43, 44, 45, 46, 47, 48)
    static let special = BlankInfillingTokens(mask: MASK, sentenceMask: sMASK, generationMask: gMASK, startOfPiece: SOP,
                                              endOfPiece: EOP, pad: PAD, cls: CLS, eos: EOS, sentenceEnds: [DOT])
    let I = ignoreLabel

    func objective(seqLen: Int = 64, twoD: Bool = true,
                   _ edit: (inout BlankInfillingObjective.Options) -> Void = { _ in }) throws -> BlankInfillingObjective {
        var o = BlankInfillingObjective.Options()
        edit(&o)
        return try BlankInfillingObjective(tokens: Self.special, seqLen: seqLen, twoDimensionalPositions: twoD, options: o)
    }

    func testAHugePoissonLambdaPutsTheMassOnTheLongestSpans() throws {
        // Every pmf underflows for λ ≥ ~1000 (this trapped); the truncated distribution is then computed from
        // shifted log-weights: at λ = 1e6 it is all on the longest length.
        var rng = SeededGenerator(seed: 7)
        for lambda in [1e3, 1e6, 1e9] {
            let o = try objective { $0.poissonLambda = lambda }
            let lengths = o.sampleSpanLengths(covering: 200, rng: &rng)
            XCTAssertFalse(lengths.isEmpty)
            XCTAssertTrue(lengths.allSatisfy { $0 >= 1 && $0 <= o.options.maxSpanLength - 1 }, "\(lambda)")
            if lambda >= 1e6 { XCTAssertTrue(lengths.allSatisfy { $0 == o.options.maxSpanLength - 1 }, "\(lengths)") }
        }
        // An ordinary λ keeps its weights as before: mean near 3 for λ = 3.
        let lengths = try objective().sampleSpanLengths(covering: 30_000, rng: &rng)
        XCTAssertEqual(Double(lengths.reduce(0, +)) / Double(lengths.count), 3.16, accuracy: 0.1)
    }

    /// x = [CLS] x1..x6 with xi = i.
    let x: [Int32] = [46, 1, 2, 3, 4, 5, 6]

    // MARK: reference/glm.md §A.3

    func testWorkedExampleTokenLevel() throws {
        let obj = try objective()
        // Spans {x3} and {x5, x6}; Part B order as the shuffle gave it: {x5, x6} first.
        let row = obj.layout(text: x, spans: [5..<7, 3..<4], mode: .token)
        let (M, S, E) = (Self.MASK, Self.SOP, Self.EOP)
        XCTAssertEqual(row.ids, [46, 1, 2, M, 4, M, S, 5, 6, S, 3])
        XCTAssertEqual(row.targets, [I, I, I, I, I, I, 5, 6, E, 3, E])
        XCTAssertEqual(row.positions, [0, 1, 2, 3, 4, 5, 5, 5, 5, 3, 3])
        XCTAssertEqual(row.blockPositions, [0, 0, 0, 0, 0, 0, 1, 2, 3, 1, 2])
        XCTAssertEqual(row.prefixLength, 6)
        XCTAssertEqual(row.spans, [5..<7, 3..<4])

        // Mask M[i,j] = j < sep ∨ j ≤ i, with sep = 6: row 7 (x5) attends to columns 0–7.
        let batch = obj.batch(rows: [row])
        let mask = try XCTUnwrap(batch.mask)
        for i in 0..<row.count {
            for j in 0..<row.count {
                XCTAssertEqual(mask.allows(batch: 0, query: i, key: j), j < 6 || j <= i, "M[\(i), \(j)]")
            }
        }
        XCTAssertEqual((0..<11).filter { mask.allows(batch: 0, query: 7, key: $0) }, Array(0...7))
        // Loss mask: exactly the five Part-B positions.
        XCTAssertEqual(batch.lossTokenCount, 5)
    }

    func testWorkedExampleGMASKSuffix() throws {
        // "[CLS] x1 x2 x3 [gMASK] sop x4 x5 x6": one suffix span laid out by make_block_data.
        let row = try objective().layout(text: x, spans: [4..<7], mode: .document)
        XCTAssertEqual(row.ids, [46, 1, 2, 3, Self.gMASK, Self.SOP, 4, 5, 6])
        XCTAssertEqual(row.positions, [0, 1, 2, 3, 4, 4, 4, 4, 4])
        XCTAssertEqual(row.blockPositions, [0, 0, 0, 0, 0, 1, 2, 3, 4])
        XCTAssertEqual(row.targets, [I, I, I, I, I, 4, 5, 6, Self.EOP])
        XCTAssertEqual(row.prefixLength, 5)
    }

    func testPureSuffixLayoutAsGLMsGPTMode() throws {
        // prefix [gMASK] sop suffix[:-1], targets suffix, no eop (construct_blocks, gpt mode, infill branch).
        let row = try objective().suffixLayout(text: x, generationLength: 3)
        XCTAssertEqual(row.ids, [46, 1, 2, 3, Self.gMASK, Self.SOP, 4, 5])
        XCTAssertEqual(row.targets, [I, I, I, I, I, 4, 5, 6])
        XCTAssertEqual(row.positions, [0, 1, 2, 3, 4, 4, 4, 4])
        XCTAssertEqual(row.blockPositions, [0, 0, 0, 0, 0, 1, 2, 3])
        XCTAssertEqual(row.prefixLength, 5)
        XCTAssertEqual(row.spans, [4..<7])
    }

    func testLayoutMatchesGLMsMakeBlockData() throws {
        // Expected values printed by THUDM/GLM's blocklm_utils.py `make_block_data` itself (shuffle_blocks off,
        // a stub tokenizer with these ids, targets shown as −100 where loss_mask is 0).
        let obj = try objective()
        let text: [Int32] = [46] + (1...14).map { Int32($0) }
        let token = obj.layout(text: text, spans: [2..<4, 4..<5, 8..<11, 13..<15], mode: .token)
        XCTAssertEqual(token.ids, [46, 1, 40, 40, 5, 6, 7, 40, 11, 12, 40, 43, 2, 3, 43, 4, 43, 8, 9, 10, 43, 13, 14])
        XCTAssertEqual(token.targets, [I, I, I, I, I, I, I, I, I, I, I, 2, 3, 44, 4, 44, 8, 9, 10, 44, 13, 14, 44])
        XCTAssertEqual(token.positions, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 2, 2, 2, 3, 3, 7, 7, 7, 7, 10, 10, 10])
        XCTAssertEqual(token.blockPositions, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 1, 2, 1, 2, 3, 4, 1, 2, 3])
        XCTAssertEqual(token.prefixLength, 11)
        let sentence = obj.layout(text: text, spans: [1..<6, 6..<9], mode: .sentence)
        XCTAssertEqual(sentence.ids, [46, 41, 41, 9, 10, 11, 12, 13, 14, 43, 1, 2, 3, 4, 5, 43, 6, 7, 8])
        XCTAssertEqual(sentence.targets, [I, I, I, I, I, I, I, I, I, 1, 2, 3, 4, 5, 44, 6, 7, 8, 44])
        XCTAssertEqual(sentence.positions, [0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2])
        XCTAssertEqual(sentence.blockPositions, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4])
        XCTAssertEqual(sentence.prefixLength, 9)
    }

    func testAdjacentSpansAndTaskMasksOff() throws {
        // Sentence spans may touch; without task masks every variant writes [MASK].
        let obj = try objective { $0.taskMasks = false }
        let row = obj.layout(text: x, spans: [3..<5, 1..<3], mode: .sentence)
        XCTAssertEqual(row.ids, [46, Self.MASK, Self.MASK, 5, 6, Self.SOP, 3, 4, Self.SOP, 1, 2])
        XCTAssertEqual(row.positions, [0, 1, 2, 3, 4, 2, 2, 2, 1, 1, 1])
        XCTAssertEqual(row.blockPositions, [0, 0, 0, 0, 0, 1, 2, 3, 1, 2, 3])
        XCTAssertEqual(try objective().layout(text: x, spans: [1..<3], mode: .sentence).ids[1], Self.sMASK)
    }

    // MARK: The span sampler

    func testTruncatedPoissonSpanLengths() throws {
        let obj = try objective()
        var rng = SeededGenerator(seed: 7)
        let lengths = obj.sampleSpanLengths(covering: 300_000, rng: &rng)
        let z = (1..<40).reduce(0.0) { $0 + pmf($1) }
        for k in 1...6 {
            let freq = Double(lengths.filter { $0 == k }.count) / Double(lengths.count)
            XCTAssertEqual(freq, pmf(k) / z, accuracy: 0.006, "P(ℓ = \(k))")
        }
        XCTAssertTrue(lengths.allSatisfy { (1...39).contains($0) })
        let mean = Double(lengths.reduce(0, +)) / Double(lengths.count)
        XCTAssertEqual(mean, 3 / (1 - exp(-3)), accuracy: 0.03)   // 3.157
    }

    func pmf(_ k: Int) -> Double { exp(Double(k) * log(3.0) - 3 - lgamma(Double(k + 1))) }

    func testTokenLevelCoverageSpanLengthsAndGaps() throws {
        let obj = try objective(seqLen: 256)
        var rng = SeededGenerator(seed: 1)
        var docGen = SeededGenerator(seed: 2)
        var covered = 0, total = 0, spanCount = 0, spanTokens = 0
        for _ in 0..<2000 {
            let doc = (0..<198).map { _ in Int32(1 + ObjectiveRandom.int(below: 39, &docGen)) } + [Self.EOS]
            let row = obj.makeRow(tokens: doc, mode: .token, rng: &rng)
            let text = [Self.CLS] + doc
            XCTAssertEqual(row.textLength, 200)
            checkConsistent(row, text: text, mask: Self.MASK)
            let sorted = row.spans.sorted { $0.lowerBound < $1.lowerBound }
            XCTAssertGreaterThanOrEqual(sorted.first!.lowerBound, 1, "the leading CLS is never masked")
            XCTAssertLessThanOrEqual(sorted.last!.upperBound, 199, "the trailing EOS is never masked")
            for (a, b) in zip(sorted, sorted.dropFirst()) { XCTAssertGreaterThan(b.lowerBound, a.upperBound, "gap") }
            let c = row.spans.reduce(0) { $0 + $1.count }
            XCTAssertGreaterThanOrEqual(c, 30)   // int(0.15 · 200)
            covered += c; total += row.textLength
            spanCount += row.spans.count; spanTokens += c
        }
        let coverage = Double(covered) / Double(total)
        XCTAssertGreaterThanOrEqual(coverage, 0.15)
        XCTAssertLessThan(coverage, 0.17)   // overshoot of the last span only
        XCTAssertEqual(Double(spanTokens) / Double(spanCount), 3.16, accuracy: 0.15)
    }

    func testPartBOrderIsShuffledOrSorted() throws {
        var rng = SeededGenerator(seed: 3)
        let doc = (0..<300).map { Int32(1 + $0 % 39) }
        let shuffled = try objective(seqLen: 512)
        let unsorted = (0..<50).filter { _ in
            let s = shuffled.makeRow(tokens: doc, mode: .token, rng: &rng).spans
            return s != s.sorted { $0.lowerBound < $1.lowerBound }
        }.count
        XCTAssertGreaterThan(unsorted, 40)
        let inOrder = try objective(seqLen: 512) { $0.shuffleSpans = false }
        for _ in 0..<20 {
            let s = inOrder.makeRow(tokens: doc, mode: .token, rng: &rng).spans
            XCTAssertEqual(s, s.sorted { $0.lowerBound < $1.lowerBound })
        }
    }

    func testDocumentVariantIsASuffix() throws {
        let obj = try objective(seqLen: 128)
        var rng = SeededGenerator(seed: 4)
        var lengths: [Int] = []
        for n in [3, 10, 50, 126] {
            for _ in 0..<50 {
                let doc = (0..<n).map { Int32(1 + $0 % 39) }
                let row = obj.makeRow(tokens: doc, mode: .document, rng: &rng)
                let text = [Self.CLS] + doc
                XCTAssertEqual(row.spans.count, 1)
                let s = row.spans[0]
                XCTAssertEqual(s.upperBound, text.count, "a suffix")
                XCTAssertTrue((Int(0.5 * Double(text.count))...(text.count - 2)).contains(s.count), "length \(s.count) of \(text.count)")
                let d = s.lowerBound
                XCTAssertEqual(row.ids, Array(text[..<d]) + [Self.gMASK, Self.SOP] + Array(text[d..<(text.count - 1)]))
                XCTAssertEqual(row.targets, [Int32](repeating: I, count: d + 1) + Array(text[d...]))
                XCTAssertEqual(row.prefixLength, d + 1)
                XCTAssertEqual(row.positions, (0..<d).map { Int32($0) } + [Int32](repeating: Int32(d), count: s.count + 1))
                XCTAssertLessThanOrEqual(row.count, 128)
                if n == 126 { lengths.append(s.count) }
            }
        }
        XCTAssertGreaterThan(Set(lengths).count, 10, "the length is drawn")
        // With documentSuffixProbability 0 the long span is placed like a token blank, with <eop>.
        let placed = try objective(seqLen: 128) { $0.documentSuffixProbability = 0 }
        let doc = (0..<100).map { Int32(1 + $0 % 39) } + [Self.EOS]
        let row = placed.makeRow(tokens: doc, mode: .document, rng: &rng)
        XCTAssertEqual(row.spans.count, 1)
        XCTAssertEqual(row.targets.last, Self.EOP)
        XCTAssertEqual(row.ids.filter { $0 == Self.gMASK }.count, 1)
        checkConsistent(row, text: [Self.CLS] + doc, mask: Self.gMASK)
    }

    func testSentenceVariantMasksWholeSentences() throws {
        let obj = try objective()
        let D = Self.DOT
        let doc: [Int32] = [1, 2, D, 3, 4, 5, D, 6, D, 7, 8, 9, 10, D, 11, 12, Self.EOS]
        let text = [Self.CLS] + doc
        let sentences = obj.sentenceSpans(text)
        // GLM's rule: the unterminated run before EOS (11 12) is no sentence; one at the very end is.
        XCTAssertEqual(sentences, [1..<4, 4..<8, 8..<10, 10..<15])
        XCTAssertEqual(obj.sentenceSpans(Array(text.dropLast())), [1..<4, 4..<8, 8..<10, 10..<15, 15..<17])
        var rng = SeededGenerator(seed: 5)
        for _ in 0..<30 {
            let row = obj.makeRow(tokens: doc, mode: .sentence, rng: &rng)
            XCTAssertFalse(row.spans.isEmpty)
            for s in row.spans { XCTAssertTrue(sentences.contains(s)) }
            XCTAssertGreaterThanOrEqual(row.spans.reduce(0) { $0 + $1.count }, 2)   // int(0.15 · 18)
            checkConsistent(row, text: text, mask: Self.sMASK)
        }
    }

    func testModeMixture() throws {
        let obj = try objective { $0 = .glm10B }
        var rng = SeededGenerator(seed: 6)
        var counts: [BlankInfillingMode: Int] = [:]
        for _ in 0..<20_000 { counts[obj.sampleMode(&rng), default: 0] += 1 }
        XCTAssertEqual(Double(counts[.token]!) / 20_000, 0.5, accuracy: 0.015)
        XCTAssertEqual(Double(counts[.sentence]!) / 20_000, 0.3, accuracy: 0.015)
        XCTAssertEqual(Double(counts[.document]!) / 20_000, 0.2, accuracy: 0.015)
        XCTAssertThrowsError(try objective { $0.sentenceProbability = 0.7; $0.documentProbability = 0.5 })
    }

    func testRowsAreDeterministicGivenTheGeneratorState() throws {
        let obj = try objective(seqLen: 128) { $0 = .glm10B }
        let docs = (0..<8).map { d in pattern(count: 40 + 11 * d, step: 7, shift: d) }
        var a = SeededGenerator(seed: 9)
        _ = obj.makeBatch(documents: docs, rng: &a)
        var b = a   // a checkpointed state
        let first = obj.makeBatch(documents: docs, rng: &a)
        let again = obj.makeBatch(documents: docs, rng: &b)
        XCTAssertEqual(first, again)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(obj.makeBatch(documents: docs, rng: &a), first)
    }

    // MARK: Truncation, padding, positions

    func testLongDocumentsAreTruncatedToFit() throws {
        let obj = try objective(seqLen: 64) { $0.sentenceProbability = 0.3; $0.documentProbability = 0.3 }
        var rng = SeededGenerator(seed: 10)
        let doc = (0..<500).map { Int32(1 + $0 % 39) } + [Self.EOS]
        for mode in BlankInfillingMode.allCases {
            for _ in 0..<40 {
                let row = obj.makeRow(tokens: doc, mode: mode, rng: &rng)
                XCTAssertLessThanOrEqual(row.count, 64, "\(mode)")
                XCTAssertGreaterThanOrEqual(row.count, 56, "\(mode): the text fills the row")
                XCTAssertFalse(row.spans.isEmpty)
                if mode != .document {
                    XCTAssertEqual(row.count, row.textLength + 2 * row.spans.count)
                    checkConsistent(row, text: Array(([Self.CLS] + doc)[..<row.textLength]), mask: mode == .token ? Self.MASK : Self.sMASK)
                }
            }
        }
        let batch = obj.makeBatch(documents: [doc, [1, 2, 3, 4, 5, 6, 7, 8]], rng: &rng)
        XCTAssertEqual(batch.length, 64)
        XCTAssertEqual(batch.batch, 2)
    }

    func testPaddingCarriesNoLossAndBatchesAreConsistent() throws {
        let obj = try objective(seqLen: 32)
        var rng = SeededGenerator(seed: 11)
        let docs: [[Int32]] = [(1...20).map { Int32($0) }, (1...9).map { Int32($0) } + [Self.EOS]]
        let rows = docs.map { obj.makeRow(tokens: $0, mode: .token, rng: &rng) }
        let batch = obj.batch(rows: rows, padToSeqLen: true)
        XCTAssertEqual(batch.ids.count, 64)
        let positions = try XCTUnwrap(batch.positions), blocks = try XCTUnwrap(batch.blockPositions)
        let mask = try XCTUnwrap(batch.mask)
        for (b, r) in rows.enumerated() {
            for t in 0..<32 {
                let k = b * 32 + t
                if t < r.count {
                    XCTAssertEqual(batch.ids[k], r.ids[t]); XCTAssertEqual(batch.targets[k], r.targets[t])
                    XCTAssertEqual(positions[k], r.positions[t]); XCTAssertEqual(blocks[k], r.blockPositions![t])
                    // No loss in Part A; loss everywhere in Part B.
                    XCTAssertEqual(batch.targets[k] == ignoreLabel, t < r.prefixLength)
                } else {
                    XCTAssertEqual(batch.ids[k], Self.PAD); XCTAssertEqual(batch.targets[k], ignoreLabel)
                }
                XCTAssertEqual(Int(mask.upper[k]), max(t + 1, r.prefixLength))
                XCTAssertEqual(mask.lower[k], 0)
            }
        }
    }

    func testOneDimensionalPositionsAreSequential() throws {
        let obj = try objective(twoD: false)
        let row = obj.layout(text: x, spans: [5..<7, 3..<4], mode: .token)
        XCTAssertEqual(row.ids, [46, 1, 2, Self.MASK, 4, Self.MASK, Self.SOP, 5, 6, Self.SOP, 3])
        XCTAssertEqual(row.targets, [I, I, I, I, I, I, 5, 6, Self.EOP, 3, Self.EOP])
        XCTAssertEqual(row.positions, (0..<11).map { Int32($0) })
        XCTAssertNil(row.blockPositions)
        let batch = obj.batch(rows: [row], padToSeqLen: true)
        XCTAssertNil(batch.positions)   // the model's default 0..<T
        XCTAssertNil(batch.blockPositions)
        XCTAssertEqual(batch.mask, .prefix(lengths: [6], queries: 64))
        var config = tinyConfig()
        XCTAssertFalse(try BlankInfillingObjective(tokens: Self.special, seqLen: 16, config: config).twoDimensionalPositions)
        config.rotary2D = true
        XCTAssertTrue(try BlankInfillingObjective(tokens: Self.special, seqLen: 16, config: config).twoDimensionalPositions)
    }

    func testTokensFromATokenizer() throws {
        let tok = try GLMTokenizer.load(tokenizerJSON: "\(Fixtures.repositoryRoot)/Tests/GLMIOTests/Fixtures/tokenizer/tokenizer.json")
        let t = try BlankInfillingTokens(tokenizer: tok)
        XCTAssertEqual([t.pad, t.mask, t.generationMask, t.sentenceMask, t.startOfPiece, t.endOfPiece], [2000, 2001, 2002, 2003, 2004, 2005])
        XCTAssertEqual(t.eos, 2000); XCTAssertNil(t.cls)
        XCTAssertTrue(t.sentenceEnds.isSuperset(of: [tok.tokenID(".")!, tok.tokenID(":")!, tok.tokenID("Ċ")!]))   // Ċ = "\n"
        XCTAssertFalse(t.sentenceEnds.contains(tok.tokenID("a")!))
        XCTAssertThrowsError(try BlankInfillingTokens(tokenizer: tok, cls: "[CLS]"))
        // Sentence spans of real text end at the punctuation.
        let obj = try BlankInfillingObjective(tokens: t, seqLen: 64, twoDimensionalPositions: true)
        let ids = tok.encode("One two. Three four five! Six") + [2000]
        let spans = obj.sentenceSpans(ids)
        XCTAssertEqual(spans.map { tok.decode(Array(ids[$0])) }, ["One two.", " Three four five!"])
    }

    // MARK: Through a model

    func testBatchesRunThroughTinyModelsWithLossOnPartBOnly() throws {
        for twoD in [true, false] {
            var config = tinyConfig(); config.rotary2D = twoD
            let model = try GLMForCausalLM(config: config, seed: 3)
            let obj = try BlankInfillingObjective(tokens: Self.special, seqLen: 40, config: config, options: .glm10B)
            var rng = SeededGenerator(seed: 12)
            let docs = (0..<3).map { d in pattern(count: 20 + 5 * d, step: 5, shift: d) + [Self.EOS] }
            let batch = obj.makeBatch(documents: docs, rng: &rng)
            let loss = Autograd.noGrad {
                model.loss(ids: batch.ids, targets: batch.targets, batch: batch.batch, length: batch.length,
                           positions: batch.positions, blockPositions: batch.blockPositions, mask: batch.mask).item
            }
            // The mean cross-entropy over exactly the positions that carry a target, from the logits.
            let logits = Autograd.noGrad {
                model.logits(model.hiddenStates(ids: batch.ids, batch: batch.batch, length: batch.length,
                                                positions: batch.positions, blockPositions: batch.blockPositions,
                                                mask: batch.mask)).scalars
            }
            let V = config.vocabSize
            var sum = 0.0, count = 0
            for (k, t) in batch.targets.enumerated() where t != ignoreLabel {
                let row = logits[(k * V)..<((k + 1) * V)].map(Double.init)
                let m: Double = row.max()!
                let z: Double = row.reduce(0.0) { $0 + exp($1 - m) }
                sum += log(z) + m - row[Int(t)]
                count += 1
            }
            XCTAssertEqual(count, batch.lossTokenCount)
            XCTAssertGreaterThan(count, 0)
            XCTAssertEqual(Double(loss), sum / Double(count), accuracy: 1e-4, "rotary2D \(twoD)")
        }
    }

    // MARK: Helpers

    /// Text tokens 1 + (i·step + shift) mod 39.
    func pattern(count: Int, step: Int, shift: Int) -> [Int32] {
        (0..<count).map { i -> Int32 in Int32(1 + (i * step + shift) % 39) }
    }

    func tinyConfig() -> GLMConfig {
        var c = GLMConfig()
        c.modelType = .glm4
        c.vocabSize = 50; c.hiddenSize = 24; c.intermediateSize = 20; c.numHiddenLayers = 2
        c.numAttentionHeads = 4; c.numKeyValueHeads = 2; c.headDim = 8; c.maxPositionEmbeddings = 64
        c.rmsNormEps = 1e-5; c.padTokenId = 45; c.eosTokenIds = [47]
        return c
    }

    /// Part A is the text with one mask per span, Part B is `<sop> span` per span (targets `span <eop>`), and the
    /// 2D positions follow §A.3.
    func checkConsistent(_ row: BlankInfillingRow, text: [Int32], mask: Int32, file: StaticString = #filePath, line: UInt = #line) {
        let sorted = row.spans.sorted { $0.lowerBound < $1.lowerBound }
        var partA: [Int32] = [], last = 0
        for s in sorted { partA += text[last..<s.lowerBound]; partA.append(mask); last = s.upperBound }
        partA += text[last...]
        XCTAssertEqual(row.prefixLength, partA.count, file: file, line: line)
        XCTAssertEqual(Array(row.ids[..<row.prefixLength]), partA, file: file, line: line)
        XCTAssertTrue(row.targets[..<row.prefixLength].allSatisfy { $0 == ignoreLabel }, "no loss in Part A", file: file, line: line)
        var ids: [Int32] = [], targets: [Int32] = [], blocks: [Int32] = []
        for s in row.spans {
            ids += [Self.SOP] + text[s]; targets += text[s] + [Self.EOP]; blocks += (1...(s.count + 1)).map { Int32($0) }
        }
        XCTAssertEqual(Array(row.ids[row.prefixLength...]), ids, file: file, line: line)
        XCTAssertEqual(Array(row.targets[row.prefixLength...]), targets, file: file, line: line)
        XCTAssertEqual(Array(row.blockPositions![row.prefixLength...]), blocks, file: file, line: line)
        // Part A is numbered 0..<|Part A|; each Part-B token has the position of its span's mask there.
        XCTAssertEqual(Array(row.positions[..<row.prefixLength]), (0..<row.prefixLength).map { Int32($0) }, file: file, line: line)
        var k = row.prefixLength
        for s in row.spans {
            let before = sorted.prefix { $0.lowerBound < s.lowerBound }
            let maskPosition = Int32(s.lowerBound - before.reduce(0) { $0 + $1.count - 1 })
            XCTAssertEqual(row.ids[Int(maskPosition)], mask, file: file, line: line)
            for t in k..<(k + s.count + 1) { XCTAssertEqual(row.positions[t], maskPosition, file: file, line: line) }
            k += s.count + 1
        }
    }
}
