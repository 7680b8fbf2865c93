// GLM-4's pre-tokenizer: the cl100k split regex, hand-written as a matcher over Unicode scalars so that it is fast
// and classifies characters exactly as the Hugging Face tokenizers library does.

/// Splits text into the chunks BPE runs on, with the regex (tiktoken's `pat_str`, tokenizer.json's Split pattern)
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// applied leftmost-first with backtracking, as Oniguruma (tokenizers) and fancy-regex (tiktoken) apply it.
/// `\p{L}`, `\p{N}` are the general categories L* and N*, `\s` the White_Space property, all as of Unicode 16.0
/// (the tables of tokenizers 0.2x); characters assigned later belong to none of them. The case-insensitive
/// contractions also match `ſ` (U+017F), which case-folds to `s`.
enum GLM4PreTokenizer {
    /// The split pattern as it appears in tokenizer.json and tiktoken's `pat_str`.
    static let pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static let letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 4

    /// Class bits (letter, number, space) of every scalar value, 0x110000 entries.
    static let classTable: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 0x110000)
        for v in UInt32(0)..<0x110000 {
            guard let u = Unicode.Scalar(v) else { continue }
            let p = u.properties
            if p.isWhitespace { table[Int(v)] = space; continue }
            if let age = p.age, age.major > 16 || (age.major == 16 && age.minor > 0) { continue }
            switch p.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
                table[Int(v)] = letter
            case .decimalNumber, .letterNumber, .otherNumber:
                table[Int(v)] = number
            default: break
            }
        }
        return table
    }()

    /// Reusable buffers for one segment's scalars.
    struct Scratch {
        var scalars: [UInt32] = []
        var classes: [UInt8] = []
        var offsets: [Int] = []
    }

    /// Calls `emit(start, end)` with the byte range of each chunk of the valid UTF-8 `text[range]`, in order.
    static func split(_ text: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, scratch: inout Scratch,
                      emit: (Int, Int) -> Void) {
        if range.isEmpty { return }
        // Decode the scalars, their classes and byte offsets.
        scratch.scalars.removeAll(keepingCapacity: true)
        scratch.classes.removeAll(keepingCapacity: true)
        scratch.offsets.removeAll(keepingCapacity: true)
        classTable.withUnsafeBufferPointer { table in
            var i = range.lowerBound
            let end = range.upperBound
            while i < end {
                let b0 = UInt32(text[i])
                var v: UInt32
                var len: Int
                if b0 < 0x80 { v = b0; len = 1 }
                else if b0 < 0xE0 { v = (b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F); len = 2 }
                else if b0 < 0xF0 {
                    v = (b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F); len = 3
                } else {
                    v = (b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12 | UInt32(text[i + 2] & 0x3F) << 6
                        | UInt32(text[i + 3] & 0x3F)
                    len = 4
                }
                scratch.scalars.append(v)
                scratch.classes.append(table[Int(v)])
                scratch.offsets.append(i)
                i += len
            }
            scratch.offsets.append(end)
        }
        scratch.scalars.withUnsafeBufferPointer { sc in
            scratch.classes.withUnsafeBufferPointer { cl in
                scratch.offsets.withUnsafeBufferPointer { off in
                    let n = sc.count
                    var i = 0
                    while i < n {
                        let j = matchEnd(sc, cl, i, n)
                        emit(off[i], off[j])
                        i = j
                    }
                }
            }
        }
    }

    @inline(__always) static func isNewline(_ v: UInt32) -> Bool { v == 0x0A || v == 0x0D }

    /// The ASCII letter a scalar case-folds to for the contractions (`ſ` folds to `s`), or 0.
    @inline(__always) static func fold(_ v: UInt32) -> UInt32 {
        if v >= 0x41 && v <= 0x5A { return v + 0x20 }
        if v >= 0x61 && v <= 0x7A { return v }
        if v == 0x17F { return 0x73 }
        return 0
    }

    /// The end (exclusive scalar index) of the match starting at `i`; there always is one of length ≥ 1.
    @inline(__always)
    static func matchEnd(_ sc: UnsafeBufferPointer<UInt32>, _ cl: UnsafeBufferPointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        let v = sc[i], c = cl[i]
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if v == 0x27 && i + 1 < n {
            let a = fold(sc[i + 1])
            if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 2 }          // s t m d
            if i + 2 < n {
                let b = fold(sc[i + 2])
                if (a == 0x72 || a == 0x76) && b == 0x65 { return i + 3 }                 // re ve
                if a == 0x6C && b == 0x6C { return i + 3 }                                  // ll
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if c & letter != 0 {
            var j = i + 1
            while j < n && cl[j] & letter != 0 { j += 1 }
            return j
        }
        if c & number == 0 && !isNewline(v) && i + 1 < n && cl[i + 1] & letter != 0 {
            var j = i + 2
            while j < n && cl[j] & letter != 0 { j += 1 }
            return j
        }
        // \p{N}{1,3}
        if c & number != 0 {
            var j = i + 1
            while j < n && j < i + 3 && cl[j] & number != 0 { j += 1 }
            return j
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        var j = -1
        if c == 0 { j = i + 1 }
        else if v == 0x20 && i + 1 < n && cl[i + 1] == 0 { j = i + 2 }
        if j >= 0 {
            while j < n && cl[j] == 0 { j += 1 }
            while j < n && isNewline(sc[j]) { j += 1 }
            return j
        }
        // Here the scalar is white space. \s*[\r\n]+ ends after the run's last \r or \n.
        var end = i + 1
        while end < n && cl[end] & space != 0 { end += 1 }
        var k = end - 1
        while k >= i && !isNewline(sc[k]) { k -= 1 }
        if k >= i { return k + 1 }
        // \s+(?!\S): the whole run at the end of the text, else all but its last character.
        if end == n { return end }
        if end - 1 > i { return end - 1 }
        // \s+
        return end
    }
}
