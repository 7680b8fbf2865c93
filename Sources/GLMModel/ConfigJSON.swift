// A small JSON tree for config files: typed accessors that throw one-line GLMErrors naming the key, and a
// writer that lays files out as transformers does (sorted keys, two-space indent, floats keep their ".0") or as
// Python's `json.dumps(obj, indent=2, sort_keys=True)` does (peft's adapter_config.json).
import Foundation
import GLMCore

/// A parsed JSON value. Integers and floats are kept apart so that writing preserves `64` vs `64.0`.
public enum ConfigJSON: Codable, Equatable, Sendable {
    /// How `rendered` writes floats and non-ASCII text.
    public enum Style: Sendable {
        /// transformers' config.json: Swift's shortest float digits with ".0", UTF-8 text as is.
        case transformers
        /// Python's json.dumps: float repr (exponent below 1e-4 and from 1e16), ASCII with \uXXXX escapes.
        case python
    }

    case null, bool(Bool), int(Int), double(Double), string(String)
    case array([ConfigJSON]), object([String: ConfigJSON])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ConfigJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ConfigJSON].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses `data` as one JSON value; `source` names the file in errors.
    public static func parse(_ data: Data, source: String) throws -> ConfigJSON {
        try NestingDepth.checkJSON(data, source: source)
        do { return try JSONDecoder().decode(ConfigJSON.self, from: data) }
        catch { throw GLMError("\(source): not valid JSON") }
    }

    var isNull: Bool { self == .null }

    /// A float written as Python writes it, an integral one as an int (`lora_alpha: 16`).
    public static func number(_ d: Double) -> ConfigJSON {
        d.rounded() == d && abs(d) < 1e15 ? .int(Int(d)) : .double(d)
    }

    /// JSON text: keys sorted, two-space indent, a float always written with a fraction or exponent.
    public func rendered(indent: Int = 0, style: Style = .transformers) -> String {
        let pad = String(repeating: " ", count: indent + 2), end = String(repeating: " ", count: indent)
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if style == .python {
                if d.isNaN { return "NaN" }
                if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
                return ConfigJSON.pythonRepr(d)
            }
            guard d.isFinite else { return "null" }
            let s = "\(d)"
            return s.contains(".") || s.contains("e") ? s : s + ".0"
        case .string(let s): return ConfigJSON.quoted(s, ascii: style == .python)
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { pad + $0.rendered(indent: indent + 2, style: style) }.joined(separator: ",\n") + "\n" + end + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            let items = o.keys.sorted().map { pad + ConfigJSON.quoted($0, ascii: style == .python) + ": " + o[$0]!.rendered(indent: indent + 2, style: style) }
            return "{\n" + items.joined(separator: ",\n") + "\n" + end + "}"
        }
    }

    /// Python's `repr(float)` as json.dumps writes it: the shortest digits that round-trip, fixed notation for
    /// exponents -5 < e < 16 ("0.0001", "1e-05", "1e+16", "1.5"), `Infinity`, `-Infinity`, `NaN`.
    public static func pythonRepr(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        // Swift's description also gives the shortest round-trip digits; take them apart.
        var text = "\(d.magnitude)"
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...])!
            text = String(text[..<e])
        }
        var digits = text.replacingOccurrences(of: ".", with: "")
        var pointAt = (text.firstIndex(of: ".").map { text.distance(from: text.startIndex, to: $0) } ?? text.count) + exponent
        while digits.count > 1 && digits.first == "0" { digits.removeFirst(); pointAt -= 1 }
        while digits.count > 1 && digits.last == "0" { digits.removeLast() }
        let sign = d.sign == .minus ? "-" : ""
        if digits == "0" { return sign + "0.0" }
        let e = pointAt - 1  // scientific exponent: value = d.ddd × 10^e
        if e < -4 || e >= 16 {
            let mantissa = digits.count > 1 ? "\(digits.first!).\(digits.dropFirst())" : digits
            return sign + mantissa + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + "\(abs(e))"
        }
        if pointAt <= 0 { return sign + "0." + String(repeating: "0", count: -pointAt) + digits }
        if pointAt >= digits.count { return sign + digits + String(repeating: "0", count: pointAt - digits.count) + ".0" }
        return sign + digits.prefix(pointAt) + "." + digits.dropFirst(pointAt)
    }

    /// A JSON string escaped as Python's json.dumps does (`\\b`, `\\f`, `\\n`, `\\r`, `\\t`, other controls as \\u00XX); with
    /// `ascii`, non-ASCII as \\uXXXX (UTF-16 pairs above U+FFFF), as Python's ensure_ascii.
    public static func quoted(_ s: String, ascii: Bool = false) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || (ascii && u.value > 0x7E) {
                    if u.value > 0xFFFF {  // UTF-16 surrogate pair, as Python's ensure_ascii does
                        let v = u.value - 0x10000
                        out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                    } else {
                        out += String(format: "\\u%04x", u.value)
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// Typed reads from a JSON object; a present key of the wrong type is an error naming the key.
struct ConfigReader {
    let object: [String: ConfigJSON]
    let source: String
    /// Prefix for nested objects, e.g. "rope_parameters.".
    var path = ""

    func has(_ key: String) -> Bool { object[key].map { !$0.isNull } ?? false }

    func fail(_ key: String, _ expected: String) -> GLMError {
        GLMError("\(source): key '\(path)\(key)' must be \(expected), got \(object[key]!.rendered().replacingOccurrences(of: "\n", with: " "))")
    }

    func int(_ key: String) throws -> Int? {
        switch object[key] {
        case nil, .null?: return nil
        case .int(let i)?: return i
        case .double(let d)? where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: throw fail(key, "an integer")
        }
    }

    func double(_ key: String) throws -> Double? {
        switch object[key] {
        case nil, .null?: return nil
        case .int(let i)?: return Double(i)
        case .double(let d)?: return d
        default: throw fail(key, "a number")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        switch object[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw fail(key, "true or false")
        }
    }

    func string(_ key: String) throws -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw fail(key, "a string")
        }
    }

    /// An integer or a list of integers (eos_token_id).
    func ints(_ key: String) throws -> [Int]? {
        switch object[key] {
        case nil, .null?: return nil
        case .array(let a)?:
            return try a.map { v -> Int in
                if case .int(let i) = v { return i }
                throw fail(key, "an integer or a list of integers")
            }
        default:
            guard let i = try? int(key) else { throw fail(key, "an integer or a list of integers") }
            return [i]
        }
    }

    /// A nested object, or nil when absent or null.
    func object(_ key: String) throws -> ConfigReader? {
        switch object[key] {
        case nil, .null?: return nil
        case .object(let o)?: return ConfigReader(object: o, source: source, path: path + key + ".")
        default: throw fail(key, "an object")
        }
    }
}
