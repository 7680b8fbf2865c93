// JSON values for chat templates (tool definitions): parsed with object keys in file order and written exactly as
// Python's `json.dumps(x, ensure_ascii=False, indent=...)` writes them, since chat templates print tool schemas
// with transformers' `tojson` filter (json.dumps, keys not sorted).
import Foundation
import GLMCore
import GLMModel

/// A JSON value whose objects keep their keys in order.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// An integer literal, as its digits (Python's ints have no size limit).
    case integer(String)
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// Members in order; a key appears once (a repeated key keeps its first position and its last value, as
    /// Python's `json.loads` does).
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.integer(x), .integer(y)): return x == y
        case let (.double(x), .double(y)): return x == y || (x.isNaN && y.isNaN)
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The member `key` of an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members.first { $0.key == key }?.value }
        return nil
    }

    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }

    /// Python truthiness (what a Jinja `{% if x %}` sees): false for null, false, 0, "", [] and {}.
    public var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .integer(let digits): return digits.contains { $0 != "0" && $0 != "-" }
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        }
    }

    /// Parses JSON text. Errors say what was expected and where (line and column).
    public static func parse(_ text: String) throws -> JSONValue {
        var p = JSONParser(bytes: Array(text.utf8))
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.at == p.bytes.count else { throw p.error("expected the end of the JSON text") }
        return v
    }

    /// The value converted from what `JSONSerialization` returns (objects' keys sorted: their order is lost there).
    public init(foundation value: Any) throws {
        switch value {
        case is NSNull: self = .null
        case let s as String: self = .string(s)
        case let b as Bool where Swift.type(of: value) == Bool.self: self = .bool(b)
        case let i as Int where Swift.type(of: value) == Int.self: self = .integer(String(i))
        case let d as Double where Swift.type(of: value) == Double.self: self = .double(d)
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c", "B": self = .bool(n.boolValue)
            case "d", "f": self = .double(n.doubleValue)
            case "Q": self = .integer(String(n.uint64Value))
            default: self = .integer(String(n.int64Value))
            }
        case let a as [Any]: self = .array(try a.map(JSONValue.init(foundation:)))
        case let d as [String: Any]: self = .object(try d.keys.sorted().map { (key: $0, value: try JSONValue(foundation: d[$0]!)) })
        default: throw GLMError("cannot use a value of type \(type(of: value)) in a chat template")
        }
    }

    /// `json.dumps(self, ensure_ascii=False, indent=indent)`: with an indent, items one per line and `", "` →
    /// `","`, `": "` between key and value; without, `", "` and `": "` on one line.
    public func pythonJSON(indent: Int? = nil) -> String {
        var out = ""
        write(to: &out, indent: indent, level: 0)
        return out
    }

    private func write(to out: inout String, indent: Int?, level: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .integer(let digits): out += digits
        case .double(let d): out += ConfigJSON.pythonRepr(d)
        case .string(let s): out += ConfigJSON.quoted(s)
        case .array(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += indent == nil ? ", " : "," }
                if let indent { out += "\n" + String(repeating: " ", count: indent * (level + 1)) }
                item.write(to: &out, indent: indent, level: level + 1)
            }
            if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
            out += "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            for (i, m) in members.enumerated() {
                if i > 0 { out += indent == nil ? ", " : "," }
                if let indent { out += "\n" + String(repeating: " ", count: indent * (level + 1)) }
                out += ConfigJSON.quoted(m.key)
                out += ": "
                m.value.write(to: &out, indent: indent, level: level + 1)
            }
            if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
            out += "}"
        }
    }
}

extension JSONValue: Codable {
    /// Decoding through `Decoder` cannot see the order of an object's keys; they are sorted. Parse the text with
    /// `JSONValue.parse` to keep them in file order.
    public init(from decoder: Decoder) throws {
        if let c = try? decoder.container(keyedBy: AnyKey.self) {
            self = .object(try c.allKeys.map(\.stringValue).sorted().map { (key: $0, value: try c.decode(JSONValue.self, forKey: AnyKey($0))) })
            return
        }
        if var c = try? decoder.unkeyedContainer() {
            var items: [JSONValue] = []
            while !c.isAtEnd { items.append(try c.decode(JSONValue.self)) }
            self = .array(items)
            return
        }
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .integer(String(i)) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .null: var c = encoder.singleValueContainer(); try c.encodeNil()
        case .bool(let b): var c = encoder.singleValueContainer(); try c.encode(b)
        case .integer(let digits):
            var c = encoder.singleValueContainer()
            if let i = Int(digits) { try c.encode(i) } else { try c.encode(Double(digits) ?? 0) }
        case .double(let d): var c = encoder.singleValueContainer(); try c.encode(d)
        case .string(let s): var c = encoder.singleValueContainer(); try c.encode(s)
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let members):
            var c = encoder.container(keyedBy: AnyKey.self)
            for m in members { try c.encode(m.value, forKey: AnyKey(m.key)) }
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { return nil }
    }
}

/// A small JSON parser over UTF-8 bytes that keeps object keys in order (RFC 8259; what Python's json.loads accepts
/// apart from NaN/Infinity literals).
struct JSONParser {
    let bytes: [UInt8]
    var at = 0

    func error(_ what: String) -> GLMError {
        var line = 1, column = 1
        for b in bytes[..<min(at, bytes.count)] { if b == 0x0A { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 } }
        return GLMError("invalid JSON at line \(line), column \(column): \(what)")
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
        guard depth < 512 else { throw error("nested too deeply") }
        guard at < bytes.count else { throw error("expected a value, found the end of the text") }
        switch bytes[at] {
        case UInt8(ascii: "{"):
            at += 1
            var members: [(key: String, value: JSONValue)] = []
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
                if let i = members.firstIndex(where: { $0.key == key }) { members[i].value = v } else { members.append((key: key, value: v)) }
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
        return .double(Double(text) ?? (text.hasPrefix("-") ? -.infinity : .infinity))
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
