// The causal LM objective over token ids: one document per row (truncated, padded), or several documents
// packed per row with segment ids, per-document positions and no loss across documents.
import GLMCore

/// One packed row of exactly `seqLen` tokens: documents (or chunks of long ones) back to back, then padding.
public struct PackedRow: Sendable, Equatable {
    public var ids: [Int32]
    /// `targets[t]` = the document's next token after position t, `ignoreLabel` after a document's last token
    /// and on padding.
    public var targets: [Int32]
    /// Restart at 0 at every segment (each document or chunk, and the padding).
    public var positions: [Int32]
    /// 0, 1, … per segment in the row; the padding is one more segment. Feeds ``AttentionMask/packed(batch:queries:segmentIds:prefixEnds:)``.
    public var segmentIds: [Int32]
    /// Tokens that are not padding.
    public var tokenCount: Int
}

/// Next-token prediction rows over token ids (the caller decides whether documents end with EOS).
///
/// - Unpacked (``batch(documents:padToSeqLen:)``): one document per row, cut to its first `seqLen` tokens;
///   `targets[t] = ids[t+1]` and the row's last token predicts nothing (as transformers' shifted labels), then
///   padding with `pad` and `ignoreLabel`. Pretokenized lines of equal length L ≤ seqLen therefore become a
///   `[B, L]` batch used as it is, whose loss is the mean over all B·(L−1) next-token predictions (DESIGN.md).
/// - Packed (``packRow(documents:from:)``): documents are laid into rows of `seqLen` in order; a document longer
///   than `seqLen` is cut into chunks of `seqLen` (the last chunk may share a row); a document or chunk that does
///   not fit in what is left of a row starts the next row. Each document or chunk is a segment: attention stays
///   inside it, positions restart at 0, and its last token predicts the document's next token (so a chunk's
///   last token predicts the first token of the next chunk, and a document's last token predicts nothing). The
///   loss of a packed row therefore equals the token-weighted losses of its documents run one by one.
///
/// A pack cursor is `(document, offset)`, so a trainer can checkpoint where packing stopped.
public struct CausalLMObjective: Sendable, Equatable {
    /// Where packing continues: token `offset` of document `document`.
    public struct Cursor: Sendable, Equatable, Hashable {
        public var document: Int
        public var offset: Int
        public init(document: Int = 0, offset: Int = 0) { self.document = document; self.offset = offset }
    }

    public let seqLen: Int
    public let pad: Int32

    public init(seqLen: Int, pad: Int32) throws {
        guard seqLen >= 2 else { throw GLMError("causal LM: seq_len \(seqLen) must be at least 2") }
        self.seqLen = seqLen; self.pad = pad
    }

    // MARK: One document per row

    /// The document cut to `seqLen` tokens, with its shifted targets (last one `ignoreLabel`); not padded.
    /// With `lossMask`, token t+1 is a target only where `lossMask[t+1]` (SFT: assistant tokens).
    public func row(document: [Int32], lossMask: [Bool]? = nil) -> (ids: [Int32], targets: [Int32]) {
        let ids = Array(document.prefix(seqLen))
        var targets = [Int32](repeating: ignoreLabel, count: ids.count)
        for t in 0..<max(0, ids.count - 1) where lossMask?[t + 1] ?? true { targets[t] = ids[t + 1] }
        return (ids, targets)
    }

    /// One row per document, padded to the longest row (or to `seqLen` with `padToSeqLen`); causal mask and
    /// positions 0..<T (left to the model's defaults).
    public func batch(documents: [[Int32]], lossMasks: [[Bool]?]? = nil, padToSeqLen: Bool = false) -> TrainingBatch {
        precondition(!documents.isEmpty, "causal LM: a batch needs at least one document")
        let rows = documents.indices.map { row(document: documents[$0], lossMask: lossMasks?[$0]) }
        let T = padToSeqLen ? seqLen : max(1, rows.map(\.ids.count).max()!)
        var ids: [Int32] = [], targets: [Int32] = []
        ids.reserveCapacity(rows.count * T); targets.reserveCapacity(rows.count * T)
        for r in rows {
            ids += r.ids; ids += repeatElement(pad, count: T - r.ids.count)
            targets += r.targets; targets += repeatElement(ignoreLabel, count: T - r.targets.count)
        }
        return TrainingBatch(batch: rows.count, length: T, ids: ids, targets: targets)
    }

    /// DESIGN.md's unshuffled order: batch k takes lines k·B … k·B+B−1, wrapping around the end of an epoch.
    public static func sequentialLineIndices(batch k: Int, batchSize: Int, lineCount: Int) -> [Int] {
        precondition(k >= 0 && batchSize > 0 && lineCount > 0, "sequential line indices")
        return (0..<batchSize).map { (k * batchSize + $0) % lineCount }
    }

    // MARK: Packing

    /// The next packed row starting at `cursor`, and the cursor after it; nil when no tokens are left.
    /// Empty documents are skipped. With `lossMasks`, token j+1 of a document is a target only where its mask is
    /// true (SFT: assistant tokens).
    public func packRow(documents: [[Int32]], lossMasks: [[Bool]?]? = nil, from cursor: Cursor) -> (row: PackedRow, next: Cursor)? {
        var c = cursor
        var ids: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], segments: [Int32] = []
        ids.reserveCapacity(seqLen); targets.reserveCapacity(seqLen)
        positions.reserveCapacity(seqLen); segments.reserveCapacity(seqLen)
        var segment: Int32 = 0
        while c.document < documents.count {
            let doc = documents[c.document]
            precondition(c.offset >= 0 && (c.offset < doc.count || doc.isEmpty), "causal LM: cursor \(c) outside its document")
            if doc.isEmpty { c = Cursor(document: c.document + 1); continue }
            let piece = min(doc.count - c.offset, seqLen)
            if piece > seqLen - ids.count { break }
            for j in c.offset..<(c.offset + piece) {
                ids.append(doc[j])
                let counted = j + 1 < doc.count && (lossMasks?[c.document]?[j + 1] ?? true)
                targets.append(counted ? doc[j + 1] : ignoreLabel)
                positions.append(Int32(j - c.offset))
                segments.append(segment)
            }
            segment += 1
            c.offset += piece
            if c.offset == doc.count { c = Cursor(document: c.document + 1) }
        }
        guard !ids.isEmpty else { return nil }
        let used = ids.count
        for j in 0..<(seqLen - used) {
            ids.append(pad); targets.append(ignoreLabel); positions.append(Int32(j)); segments.append(segment)
        }
        return (PackedRow(ids: ids, targets: targets, positions: positions, segmentIds: segments, tokenCount: used), c)
    }

    /// All packed rows of `documents`, in order.
    public func pack(documents: [[Int32]]) -> [PackedRow] {
        var rows: [PackedRow] = [], c = Cursor()
        while let (r, next) = packRow(documents: documents, from: c) { rows.append(r); c = next }
        return rows
    }

    /// Packed rows as a `[rows, seqLen]` batch with per-segment positions and the packed mask.
    public func batch(packedRows rows: [PackedRow]) -> TrainingBatch {
        precondition(!rows.isEmpty, "causal LM: a batch needs at least one row")
        for r in rows { precondition(r.ids.count == seqLen, "causal LM: packed row of \(r.ids.count) tokens, seq_len \(seqLen)") }
        let segments = rows.flatMap(\.segmentIds)
        return TrainingBatch(batch: rows.count, length: seqLen, ids: rows.flatMap(\.ids), targets: rows.flatMap(\.targets),
                             positions: rows.flatMap(\.positions),
                             mask: .packed(batch: rows.count, queries: seqLen, segmentIds: segments))
    }
}
