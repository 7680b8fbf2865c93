// A small JSON tree for config files: typed accessors that throw one-line GLMErrors naming the key, and a
// writer that lays files out as transformers does (sorted keys, two-space indent, floats keep their ".0").
import Foundation
import GLMCore

/// A parsed JSON value. Integers and floats are kept apart so that writing preserves `64` vs `64.0`.
enum ConfigJSON: Codable, Equatable {
    case null, bool(Bool), int(Int), double(Double), string(String)
    case array([ConfigJSON]), object([String: ConfigJSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([ConfigJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: ConfigJSON].self)) }
    }

    func encode(to encoder: Encoder) throws {
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
    static func parse(_ data: Data, source: String) throws -> ConfigJSON {
        do { return try JSONDecoder().decode(ConfigJSON.self, from: data) }
        catch { throw GLMError("\(source): not valid JSON") }
    }

    var isNull: Bool { self == .null }

    /// JSON text: keys sorted, two-space indent, a float always written with a fraction or exponent.
    func rendered(indent: Int = 0) -> String {
        let pad = String(repeating: " ", count: indent + 2), end = String(repeating: " ", count: indent)
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            guard d.isFinite else { return "null" }
            let s = "\(d)"
            return s.contains(".") || s.contains("e") ? s : s + ".0"
        case .string(let s): return ConfigJSON.quoted(s)
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { pad + $0.rendered(indent: indent + 2) }.joined(separator: ",\n") + "\n" + end + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            let items = o.keys.sorted().map { pad + ConfigJSON.quoted($0) + ": " + o[$0]!.rendered(indent: indent + 2) }
            return "{\n" + items.joined(separator: ",\n") + "\n" + end + "}"
        }
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
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
