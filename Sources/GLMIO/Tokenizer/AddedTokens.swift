// Added (special) tokens such as <|user|> and [gMASK]: found in the raw text before pre-tokenization,
// leftmost match first and the longest token at that position, as tokenizers' AddedVocabulary does.

/// A token added on top of the BPE vocabulary (tokenizer.json `added_tokens`, tokenizer_config.json
/// `added_tokens_decoder`).
public struct GLMAddedToken: Sendable, Equatable {
    public var id: Int32
    public var content: String
    /// Special tokens are dropped by `decode(_:skipSpecialTokens: true)`.
    public var special: Bool
    /// Matched only where it is not inside a word.
    public var singleWord: Bool
    /// Absorbs the white space before / after it.
    public var lstrip: Bool
    public var rstrip: Bool
    /// Matched after normalization (there is no normalizer for GLM-4, so only the matching order differs).
    public var normalized: Bool

    public init(id: Int32, content: String, special: Bool = true, singleWord: Bool = false, lstrip: Bool = false,
                rstrip: Bool = false, normalized: Bool = false) {
        self.id = id; self.content = content; self.special = special; self.singleWord = singleWord
        self.lstrip = lstrip; self.rstrip = rstrip; self.normalized = normalized
    }
}

/// Finds added tokens in UTF-8 text.
struct AddedTokenMatcher {
    private struct Entry { var bytes: [UInt8]; var token: GLMAddedToken }
    /// Candidates by first byte, longest first.
    private var byFirstByte: [[Entry]] = Array(repeating: [], count: 256)
    let isEmpty: Bool

    init(_ tokens: [GLMAddedToken]) {
        for t in tokens where !t.content.isEmpty {
            let bytes = Array(t.content.utf8)
            byFirstByte[Int(bytes[0])].append(Entry(bytes: bytes, token: t))
        }
        for b in 0..<256 { byFirstByte[b].sort { $0.bytes.count > $1.bytes.count } }
        isEmpty = tokens.allSatisfy { $0.content.isEmpty }
    }

    /// One piece of a split: a text range, or an added token covering `range`.
    struct Piece { var range: Range<Int>; var id: Int32? }

    /// Splits `text[range]` into text pieces and added tokens (non-overlapping, leftmost-longest matches).
    func split(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [Piece]) {
        if isEmpty { if !range.isEmpty { out.append(Piece(range: range, id: nil)) }; return }
        var startOffset = range.lowerBound
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let candidates = byFirstByte[Int(text[i])]
            var found: Entry?
            for e in candidates where e.bytes.count <= end - i {
                var ok = true
                for k in 1..<e.bytes.count where text[i + k] != e.bytes[k] { ok = false; break }
                if ok { found = e; break }
            }
            guard let e = found else { i += 1; continue }
            var start = i, stop = i + e.bytes.count
            if e.token.singleWord {
                let startOK = start == range.lowerBound || !AddedTokenMatcher.isWordScalar(lastScalar(text, before: start))
                let stopOK = stop == end || !AddedTokenMatcher.isWordScalar(firstScalar(text, at: stop))
                if !(startOK && stopOK) { i = stop; continue }   // the rejected match still consumes its span
            }
            if e.token.lstrip {
                var s = start
                while s > range.lowerBound, let u = lastScalar(text, before: s), u.properties.isWhitespace {
                    s -= u.utf8.count
                }
                start = max(s, startOffset)
            }
            if e.token.rstrip {
                while stop < end, let u = firstScalar(text, at: stop), u.properties.isWhitespace { stop += u.utf8.count }
            }
            if startOffset < start { out.append(Piece(range: startOffset..<start, id: nil)) }
            out.append(Piece(range: start..<stop, id: e.token.id))
            startOffset = stop
            i = stop
        }
        if startOffset < end { out.append(Piece(range: startOffset..<end, id: nil)) }
    }

    /// Rust regex `\w`: alphabetic, marks, decimal digits, connector punctuation, join controls.
    static func isWordScalar(_ u: Unicode.Scalar?) -> Bool {
        guard let u else { return false }
        let p = u.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    private func firstScalar(_ text: UnsafeBufferPointer<UInt8>, at i: Int) -> Unicode.Scalar? {
        guard i < text.count else { return nil }
        var it = UnsafeBufferPointer(rebasing: text[i...]).makeIterator()
        var decoder = UTF8()
        if case .scalarValue(let u) = decoder.decode(&it) { return u }
        return nil
    }

    private func lastScalar(_ text: UnsafeBufferPointer<UInt8>, before i: Int) -> Unicode.Scalar? {
        guard i > 0 else { return nil }
        var s = i - 1
        while s > 0 && text[s] & 0xC0 == 0x80 { s -= 1 }
        return firstScalar(text, at: s)
    }
}
