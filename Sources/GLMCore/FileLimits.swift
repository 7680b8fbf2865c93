// The one bounds-and-overflow layer for numbers that come from files (headers, configs, recipes, adapters,
// command lines): checked products and conversions, and the limits GLMTrain accepts. Every parser goes through
// these instead of plain `*`, `reduce(1, *)` or `Int(double)`, so a hostile value is a one-line error, never a
// trap or an unbounded allocation.

/// The sizes GLMTrain accepts from files; the README's error promise lists them.
public enum FileLimits {
    /// Elements in one tensor (2^36 ≈ 6.9·10^10: 256 GiB of f32, far beyond any GLM matrix).
    public static let maxTensorElements = 1 << 36
    /// Dimensions of one tensor.
    public static let maxTensorRank = 8
    /// Bytes of a safetensors JSON header: 32 MB (the reference implementation allows 100 MB, but parsing takes
    /// ~65× the header in memory: an 89 MB header of 1.5M empty tensors needed 5.9 GB; real headers are a few MB).
    public static let maxHeaderBytes = 32_000_000
    /// A model dimension (hidden size, heads, head_dim, intermediate size, vocabulary): 2^24.
    public static let maxModelDimension = 1 << 24
    /// Transformer layers in one model.
    public static let maxLayers = 4096
    /// Parameters of one model (2^40).
    public static let maxParameters = 1 << 40
    /// Token positions (max_position_embeddings, seq_len, prompt plus generated tokens): 2^24.
    public static let maxPositions = 1 << 24
    /// Nesting depth of a JSON or YAML document.
    public static let maxNestingDepth = 64
    /// Bytes of a configuration file read whole (config.json, generation_config.json, adapter_config.json, a
    /// shard index, tokenizer.json, a recipe): 64 MiB, far beyond any real one (GLM-4's tokenizer.json is 7 MB; the
    /// largest in common use are ~35 MB), and a bound on the memory the parse takes (~45× the file for tokenizer.json).
    public static let maxConfigBytes = 1 << 26
    /// Tokens in one training micro-batch (batch_size · seq_len).
    public static let maxBatchTokens = 1 << 24
}

/// Checked arithmetic on values from files: overflow and out-of-range values are `GLMError`s naming `what`.
public enum Checked {
    /// `a · b`, or an error naming `what` when it overflows or exceeds `limit`.
    public static func multiply(_ a: Int, _ b: Int, _ what: @autoclosure () -> String, limit: Int = .max) throws -> Int {
        let (p, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow, p <= limit else { throw GLMError("\(what()): \(a) × \(b) is too large (limit \(limit))") }
        return p
    }

    /// `a + b`, or an error naming `what` when it overflows or exceeds `limit`.
    public static func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String, limit: Int = .max) throws -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        guard !overflow, s <= limit else { throw GLMError("\(what()): \(a) + \(b) is too large (limit \(limit))") }
        return s
    }

    /// The element count of `shape`: every dimension ≥ 0, at most `FileLimits.maxTensorRank` of them, and the
    /// product within `FileLimits.maxTensorElements`.
    public static func elementCount(_ shape: [Int], _ what: @autoclosure () -> String) throws -> Int {
        guard shape.count <= FileLimits.maxTensorRank else {
            throw GLMError("\(what()): shape \(shape) has \(shape.count) dimensions; at most \(FileLimits.maxTensorRank) are supported")
        }
        var n = 1
        for d in shape {
            guard d >= 0 else { throw GLMError("\(what()): shape \(shape) has a negative dimension") }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p <= FileLimits.maxTensorElements else {
                throw GLMError("\(what()): shape \(shape) has more than \(FileLimits.maxTensorElements) elements")
            }
            n = p
        }
        return n
    }

    /// `value` as an Int when it is an integer within `range`; else an error naming `what`.
    public static func integer(_ value: Double, _ what: @autoclosure () -> String,
                               in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard value.isFinite, value == value.rounded(), value >= -9.0e15, value <= 9.0e15 else {
            throw GLMError("\(what()): \(value) is not an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        let i = Int(value)
        guard range.contains(i) else { throw GLMError("\(what()): \(i) is outside \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    /// `value` when it lies in `range`; else an error naming `what`.
    public static func bounded(_ value: Int, _ what: @autoclosure () -> String, in range: ClosedRange<Int>) throws -> Int {
        guard range.contains(value) else { throw GLMError("\(what()): \(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        return value
    }
}

/// Nesting depth of JSON and YAML text, measured before a recursive parser sees it (a 10,000-deep document
/// would overflow the parser's stack).
public enum NestingDepth {
    /// Throws when `[`/`{` nest deeper than `limit` outside JSON strings.
    public static func checkJSON(_ bytes: some Sequence<UInt8>, source: @autoclosure () -> String,
                                 limit: Int = FileLimits.maxNestingDepth) throws {
        var depth = 0, inString = false, escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > limit { throw GLMError("\(source()): nested deeper than \(limit) levels") }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
    }

    /// Throws when YAML text nests deeper than `limit`: flow collections (`[`, `{`) outside quotes and comments,
    /// plus block levels (distinct indentation columns of the enclosing lines, `- ` items counting as a level).
    public static func checkYAML(_ text: String, source: @autoclosure () -> String, limit: Int = FileLimits.maxNestingDepth) throws {
        // Lines end at any YAML line break (\n, \r, \r\n, NEL, LS, PS). Quoted scalars may span lines, so the quote
        // state carries over; a quote opens a scalar only where a scalar can start (YAML's rule, so `it's` is no
        // quote), and `#` starts a comment only at a line's start or after white space.
        var indents: [Int] = [], flow = 0
        var quote: UInt8? = nil, escaped = false
        let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        for (n, line) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }).enumerated() {
            let bytes = Array(line.utf8)
            var i = 0, dashes = 0, deepest = flow
            if quote == nil {
                while i < bytes.count, bytes[i] == space { i += 1 }
                if i == bytes.count || bytes[i] == UInt8(ascii: "#") { continue }
                while let last = indents.last, last >= i { indents.removeLast() }
                indents.append(i)
                // `- - - x` and `- key:` open one level per dash on the line.
                while i + 1 < bytes.count, bytes[i] == UInt8(ascii: "-"), bytes[i + 1] == space || bytes[i + 1] == tab {
                    dashes += 1; i += 2
                    while i < bytes.count, bytes[i] == space || bytes[i] == tab { i += 1 }
                }
            }
            var previous: UInt8? = nil  // the last byte outside quotes on this line (nil: the line's start)
            scan: while i < bytes.count {
                let b = bytes[i]
                i += 1
                if let q = quote {
                    if escaped { escaped = false } else if q == UInt8(ascii: "\"") && b == UInt8(ascii: "\\") { escaped = true }
                    else if b == q { quote = nil; previous = b }
                    continue
                }
                let scalarStart = previous.map { p in [space, tab, UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ","),
                                                       UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "?")].contains(p) } ?? true
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "'") where scalarStart: quote = b
                case UInt8(ascii: "#") where previous == nil || previous == space || previous == tab: break scan
                case UInt8(ascii: "["), UInt8(ascii: "{"): flow += 1; deepest = max(deepest, flow)
                case UInt8(ascii: "]"), UInt8(ascii: "}"): flow = max(0, flow - 1)
                default: break
                }
                previous = b
            }
            if quote == nil { escaped = false }
            if indents.count + dashes + deepest > limit {
                throw GLMError("\(source()):\(n + 1): nested deeper than \(limit) levels")
            }
        }
    }
}
