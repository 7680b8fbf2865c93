// Parsing JSON text into JSONValue: RFC 8259, objects in file order, errors with line and column.
import Foundation
import GLMCore

extension JSONValue {
    /// Parses JSON text. Errors say what was expected and where (line and column).
    public static func parse(_ text: String) throws -> JSONValue {
        var p = JSONParser(bytes: Array(text.utf8))
        return try p.document()
    }

    /// Parses a JSON file's bytes; `source` names the file in errors. Nesting deeper than
    /// `FileLimits.maxNestingDepth` and invalid UTF-8 are errors, as for every file GLMTrain reads.
    public static func parse(_ data: Data, source: String) throws -> JSONValue {
        try NestingDepth.checkJSON(data, source: source)
        guard String(validating: data, as: UTF8.self) != nil else { throw GLMError("\(source): not valid JSON (invalid UTF-8)") }
        var p = JSONParser(bytes: Array(data))
        p.maxDepth = FileLimits.maxNestingDepth + 1
        do { return try p.document() }
        catch let e as GLMError { throw GLMError("\(source): not valid JSON: \(e.message)") }
    }
}

/// A small JSON parser over UTF-8 bytes that keeps object keys in order (RFC 8259; what Python's json.loads accepts
/// apart from NaN/Infinity literals).
struct JSONParser {
    let bytes: [UInt8]
    var at = 0
    /// Limit on nested arrays and objects.
    var maxDepth = 512
    /// The first key the outermost object names twice (the later value is kept, as Python's json.loads keeps it).
    var firstTopLevelDuplicate: String?

    func error(_ what: String) -> GLMError {
        var line = 1, column = 1
        for b in bytes[..<min(at, bytes.count)] { if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 } }
        return GLMError("invalid JSON at line \(line), column \(column): \(what)")
    }

    /// One value and nothing after it but white space.
    mutating func document() throws -> JSONValue {
        skipSpace()
        let v = try value(depth: 0)
        skipSpace()
        guard at == bytes.count else { throw error("expected the end of the JSON text") }
        return v
    }

    mutating func skipSpace() {
        while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
    }

    mutating func literal(_ word: String, _ v: JSONValue) throws -> JSONValue {
        let w = Array(word.utf8)
        guard at + w.count <= bytes.count, Array(bytes[at..<at + w.count]) == w else { throw error("expected a JSON value") }
        at += w.count
        return v
    }

    mutating func value(depth: Int) throws -> JSONValue {
        guard depth < maxDepth else { throw error("nested too deeply") }
        guard at < bytes.count else { throw error("expected a value, found the end of the text") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            at += 1
            var members: [(key: String, value: JSONValue)] = []
            var index: [String: Int] = [:]   // key → position, so a hostile object with many keys stays linear
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
            while true {
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try string()
                skipSpace()
                guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw error("expected ':' after an object key") }
                at += 1
                skipSpace()
                let v = try value(depth: depth + 1)
                if let i = index[key] {
                    members[i].value = v
                    if depth == 0, firstTopLevelDuplicate == nil { firstTopLevelDuplicate = key }
                } else { index[key] = members.count; members.append((key: key, value: v)) }
                skipSpace()
                guard at < bytes.count else { throw error("expected ',' or '}'") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "}") { at += 1; return .object(members) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            at += 1
            var items: [JSONValue] = []
            skipSpace()
            if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value(depth: depth + 1))
                skipSpace()
                guard at < bytes.count else { throw error("expected ',' or ']'") }
                if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                if bytes[at] == UInt8(ascii: "]") { at += 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default: return try number()
        }
    }

    mutating func number() throws -> JSONValue {
        let start = at
        func digits() -> Int { let s = at; while at < bytes.count, bytes[at] >= 0x30, bytes[at] <= 0x39 { at += 1 }; return at - s }
        if at < bytes.count, bytes[at] == UInt8(ascii: "-") { at += 1 }
        let intStart = at
        guard digits() > 0 else { at = start; throw error("expected a JSON value") }
        guard bytes[intStart] != UInt8(ascii: "0") || at - intStart == 1 else { throw error("a number cannot start with 0") }
        var isInteger = true
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
            at += 1; isInteger = false
            guard digits() > 0 else { throw error("expected digits after '.'") }
        }
        if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            at += 1; isInteger = false
            if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw error("expected digits in the exponent") }
        }
        let text = String(decoding: bytes[start..<at], as: UTF8.self)
        if isInteger { return .integer(text.allSatisfy { $0 == "-" || $0 == "0" } ? "0" : text) }
        // A number beyond a double's range is an error, not infinity: no file GLMTrain reads has a use for one, and
        // infinity could not be written back as JSON.
        guard let value = Double(text), value.isFinite else { at = start; throw error("number \(text.prefix(40)) is out of a double's range") }
        return .double(value)
    }

    mutating func string() throws -> String {
        at += 1  // opening quote
        var scalars = String.UnicodeScalarView()
        var run = at
        func flush(_ end: Int) { scalars.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars) }
        while true {
            guard at < bytes.count else { throw error("unterminated string") }
            let b = bytes[at]
            if b == UInt8(ascii: "\"") { flush(at); at += 1; return String(scalars) }
            if b < 0x20 { throw error("control character in a string (must be escaped)") }
            if b != UInt8(ascii: "\\") { at += 1; continue }
            flush(at)
            at += 1
            guard at < bytes.count else { throw error("unterminated string") }
            let e = bytes[at]
            at += 1
            switch e {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code), at + 6 <= bytes.count, bytes[at] == UInt8(ascii: "\\"), bytes[at + 1] == UInt8(ascii: "u") {
                    let save = at
                    at += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) { code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00) } else { at = save }
                }
                // A lone surrogate cannot be a Swift string; Python keeps it, we substitute U+FFFD.
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            default: throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
            run = at
        }
    }

    mutating func hex4() throws -> UInt32 {
        guard at + 4 <= bytes.count, bytes[at..<at + 4].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }),
              let v = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16) else {
            throw error("expected 4 hex digits after \\u")
        }
        at += 4
        return v
    }
}
