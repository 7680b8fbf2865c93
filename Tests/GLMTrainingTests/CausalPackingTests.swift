// Causal LM rows: packing (segments, positions, targets, mask, cursors, long documents), one document per row,
// DESIGN.md's equal-length rule, and a packed row's loss equal to its documents' losses run one by one.
import XCTest
import Foundation
import GLMCore
import GLMModel
import GLMTraining

final class CausalPackingTests: XCTestCase {
    let I = ignoreLabel
    let PAD: Int32 = 0

    func doc(_ start: Int32, _ count: Int) -> [Int32] { (0..<count).map { 1 + (start + Int32($0)) % 49 } }

    func testPackedRowLayout() throws {
        let obj = try CausalLMObjective(seqLen: 16, pad: PAD)
        let (a, b, c) = (doc(0, 5), doc(10, 7), doc(20, 3))
        let rows = obj.pack(documents: [a, b, c])
        XCTAssertEqual(rows.count, 1)
        let r = rows[0]
        XCTAssertEqual(r.ids, a + b + c + [PAD])
        XCTAssertEqual(r.tokenCount, 15)
        XCTAssertEqual(r.segmentIds, [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3])
        XCTAssertEqual(r.positions, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 0])
        // Within a document the next token; the last token of each document predicts nothing.
        XCTAssertEqual(r.targets, Array(a.dropFirst()) + [I] + Array(b.dropFirst()) + [I] + Array(c.dropFirst()) + [I, I])

        let batch = obj.batch(packedRows: rows)
        XCTAssertEqual(batch.positions, r.positions)
        XCTAssertNil(batch.blockPositions)
        XCTAssertEqual(batch.lossTokenCount, 4 + 6 + 2)
        let mask = try XCTUnwrap(batch.mask)
        for i in 0..<16 {
            for j in 0..<16 {
                let same = r.segmentIds[i] == r.segmentIds[j]
                XCTAssertEqual(mask.allows(batch: 0, query: i, key: j), same && j <= i, "M[\(i), \(j)]")
            }
        }
    }

    func testADocumentThatDoesNotFitStartsTheNextRow() throws {
        let obj = try CausalLMObjective(seqLen: 8, pad: PAD)
        let docs = [doc(0, 5), doc(5, 5), [], doc(9, 3)]
        let rows = obj.pack(documents: docs)
        XCTAssertEqual(rows.map(\.ids), [docs[0] + [PAD, PAD, PAD], docs[1] + docs[3]])
        XCTAssertEqual(rows.map(\.tokenCount), [5, 8])
        XCTAssertEqual(rows[0].segmentIds, [0, 0, 0, 0, 0, 1, 1, 1])
        XCTAssertEqual(rows[1].segmentIds, [0, 0, 0, 0, 0, 1, 1, 1])
        XCTAssertEqual(rows[1].positions, [0, 1, 2, 3, 4, 0, 1, 2])
    }

    func testLongDocumentsAreSplitIntoChunks() throws {
        let obj = try CausalLMObjective(seqLen: 8, pad: PAD)
        let long = doc(0, 20), short = doc(30, 3)
        var c = CausalLMObjective.Cursor()
        var rows: [PackedRow] = [], cursors: [CausalLMObjective.Cursor] = []
        while let (r, next) = obj.packRow(documents: [long, short], from: c) { rows.append(r); cursors.append(next); c = next }
        XCTAssertEqual(cursors, [.init(document: 0, offset: 8), .init(document: 0, offset: 16), .init(document: 2, offset: 0)])
        XCTAssertEqual(rows.map(\.ids), [Array(long[0..<8]), Array(long[8..<16]), Array(long[16...]) + short + [PAD]])
        // Positions restart in every chunk; a chunk's last token predicts the first of the next chunk.
        XCTAssertEqual(rows[1].positions, (0..<8).map { Int32($0) })
        XCTAssertEqual(rows[0].targets, Array(long[1...8]))
        XCTAssertEqual(rows[1].targets, Array(long[9...16]))
        XCTAssertEqual(rows[2].targets, Array(long[17...]) + [I] + Array(short.dropFirst()) + [I, I])
        XCTAssertEqual(rows[2].segmentIds, [0, 0, 0, 0, 1, 1, 1, 2])
        XCTAssertEqual(rows, obj.pack(documents: [long, short]))
        // Resuming from a saved cursor gives the same rows.
        XCTAssertEqual(obj.packRow(documents: [long, short], from: cursors[0])?.row, rows[1])
        XCTAssertNil(obj.packRow(documents: [long, short], from: cursors[2]))
    }

    func testOneDocumentPerRowTruncatesAndPads() throws {
        let obj = try CausalLMObjective(seqLen: 6, pad: PAD)
        let (a, b) = (doc(0, 9), doc(10, 3))
        XCTAssertEqual(obj.row(document: a).ids, Array(a[..<6]))
        XCTAssertEqual(obj.row(document: a).targets, Array(a[1..<6]) + [I])
        let batch = obj.batch(documents: [a, b])
        XCTAssertEqual(batch.length, 6)
        XCTAssertEqual(batch.ids, Array(a[..<6]) + b + [PAD, PAD, PAD])
        XCTAssertEqual(batch.targets, Array(a[1..<6]) + [I] + Array(b.dropFirst()) + [I, I, I, I])
        XCTAssertNil(batch.mask); XCTAssertNil(batch.positions)
        XCTAssertEqual(obj.batch(documents: [b]).length, 3)
        XCTAssertEqual(obj.batch(documents: [b], padToSeqLen: true).length, 6)
    }

    func testEqualLengthLinesAreUsedAsTheyAre() throws {
        // DESIGN.md: lines of length L, no shuffling, no packing: batch k is lines k·B … k·B+B−1 (wrapping), and
        // the loss counts all B·(L−1) next-token predictions.
        let lines = (0..<5).map { doc(Int32($0 * 6), 6) }
        let obj = try CausalLMObjective(seqLen: 16, pad: PAD)
        XCTAssertEqual(CausalLMObjective.sequentialLineIndices(batch: 0, batchSize: 2, lineCount: 5), [0, 1])
        XCTAssertEqual(CausalLMObjective.sequentialLineIndices(batch: 2, batchSize: 2, lineCount: 5), [4, 0])
        XCTAssertEqual(CausalLMObjective.sequentialLineIndices(batch: 3, batchSize: 2, lineCount: 5), [1, 2])
        let batch = obj.batch(documents: CausalLMObjective.sequentialLineIndices(batch: 2, batchSize: 2, lineCount: 5).map { lines[$0] })
        XCTAssertEqual(batch.batch, 2); XCTAssertEqual(batch.length, 6)
        XCTAssertEqual(batch.ids, lines[4] + lines[0])
        XCTAssertEqual(batch.lossTokenCount, 2 * 5)
    }

    func testPackedLossEqualsTheDocumentsRunSeparately() throws {
        for type in [GLMModelType.glm, .glm4] {
            var c = GLMConfig()
            c.modelType = type
            c.vocabSize = 50; c.hiddenSize = 24; c.intermediateSize = 20; c.numHiddenLayers = 2
            c.numAttentionHeads = 4; c.numKeyValueHeads = 2; c.headDim = 8; c.maxPositionEmbeddings = 64
            c.rmsNormEps = 1e-5; c.padTokenId = 0; c.eosTokenIds = [1]
            let model = try GLMForCausalLM(config: c, seed: 5)
            let docs = [doc(0, 5), doc(7, 7), doc(3, 3), doc(11, 9), doc(2, 1), doc(40, 6)]
            let obj = try CausalLMObjective(seqLen: 16, pad: PAD)
            let rows = obj.pack(documents: docs)
            XCTAssertEqual(rows.count, 2)
            let batch = obj.batch(packedRows: rows)
            let packed = Autograd.noGrad {
                model.loss(ids: batch.ids, targets: batch.targets, batch: batch.batch, length: batch.length,
                           positions: batch.positions, mask: batch.mask).item
            }
            var sum = 0.0, count = 0
            for d in docs where d.count >= 2 {
                let r = obj.row(document: d)
                let l = Autograd.noGrad { model.loss(ids: r.ids, targets: r.targets, batch: 1, length: d.count).item }
                sum += Double(l) * Double(d.count - 1); count += d.count - 1
            }
            XCTAssertEqual(count, batch.lossTokenCount)
            XCTAssertEqual(Double(packed), sum / Double(count), accuracy: 1e-5, "\(type)")
        }
    }
}
