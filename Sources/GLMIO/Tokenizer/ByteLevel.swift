// GPT-2's byte-level alphabet (each byte ↔ one printable character, as tokenizer.json vocabularies spell tokens)
// and lossy UTF-8 decoding that replaces invalid sequences with U+FFFD the way Rust and Python do.

/// The byte ↔ character table of the Hugging Face ByteLevel pre-tokenizer and decoder (`bytes_to_unicode`).
enum ByteLevel {
    /// `characters[b]` spells byte `b`: printable Latin-1 bytes map to themselves, the other 68 to U+0100 onwards.
    static let characters: [Unicode.Scalar] = {
        var printable = [Bool](repeating: false, count: 256)
        for b in 33...126 { printable[b] = true }
        for b in 161...172 { printable[b] = true }
        for b in 174...255 { printable[b] = true }
        var out = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if printable[b] { out[b] = Unicode.Scalar(UInt8(b)) } else { out[b] = Unicode.Scalar(next)!; next += 1 }
        }
        return out
    }()

    /// The byte a character spells, or nil for characters outside the alphabet.
    static let bytes: [UInt32: UInt8] = {
        var out: [UInt32: UInt8] = [:]
        for (b, c) in characters.enumerated() { out[c.value] = UInt8(b) }
        return out
    }()

    /// The byte-level spelling of `bytes` (how a vocabulary entry is written in tokenizer.json).
    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(characters[Int(b)]) }
        return String(s)
    }

    /// The bytes a byte-level spelling stands for, or nil when a character is outside the alphabet.
    static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for c in token.unicodeScalars {
            guard let b = bytes[c.value] else { return nil }
            out.append(b)
        }
        return out
    }
}

/// Decodes UTF-8, replacing each maximal invalid subsequence with one U+FFFD ("substitution of maximal subparts",
/// as Rust's `String::from_utf8_lossy` and Python's `bytes.decode(errors="replace")` do).
func decodeUTF8Lossy(_ bytes: [UInt8]) -> String {
    var scalars = String.UnicodeScalarView()
    scalars.reserveCapacity(bytes.count)
    let n = bytes.count
    var i = 0
    while i < n {
        let b0 = bytes[i]
        if b0 < 0x80 { scalars.append(Unicode.Scalar(b0)); i += 1; continue }
        // Expected length and the allowed range of the second byte (Unicode Table 3-7).
        var length = 0
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; hi = 0x9F
        case 0xF0: length = 4; lo = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; hi = 0x8F
        default: length = 0
        }
        if length == 0 { scalars.append("\u{FFFD}"); i += 1; continue }
        var value = UInt32(b0) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
        var j = 1
        var valid = true
        while j < length {
            guard i + j < n else { valid = false; break }
            let b = bytes[i + j]
            let (l, h) = j == 1 ? (lo, hi) : (UInt8(0x80), UInt8(0xBF))
            guard b >= l && b <= h else { valid = false; break }
            value = value << 6 | UInt32(b & 0x3F)
            j += 1
        }
        if valid {
            scalars.append(Unicode.Scalar(value)!)
            i += length
        } else {
            scalars.append("\u{FFFD}")   // the valid prefix of a truncated sequence counts as one subpart
            i += j
        }
    }
    return String(scalars)
}
