// A small JSON value for adapter_config.json: integers and floats kept apart, written the way Python's
// `json.dumps(obj, indent=2, sort_keys=True)` writes them (what peft's save_pretrained produces).
import Foundation
import GLMCore

/// A parsed JSON value (numbers keep whether they were written as integers).
public enum AdapterJSON: Codable, Equatable, Sendable {
    case null, bool(Bool), int(Int), double(Double), string(String)
    case array([AdapterJSON]), object([String: AdapterJSON])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([AdapterJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: AdapterJSON].self)) }
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

    /// Parses one JSON value; `source` names the file in errors.
    public static func parse(_ data: Data, source: String) throws -> AdapterJSON {
        do { return try JSONDecoder().decode(AdapterJSON.self, from: data) }
        catch { throw GLMError("\(source): not valid JSON") }
    }

    /// A float written as Python writes it, an integral one as an int (`lora_alpha: 16`).
    static func number(_ d: Double) -> AdapterJSON {
        d.rounded() == d && abs(d) < 1e15 ? .int(Int(d)) : .double(d)
    }

    /// Python's `json.dumps(self, indent=2, sort_keys=True)` (ASCII output, `\uXXXX` escapes).
    public func rendered(indent: Int = 0) -> String {
        let pad = String(repeating: " ", count: indent + 2), end = String(repeating: " ", count: indent)
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            if d.isNaN { return "NaN" }
            if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
            return AdapterJSON.pythonRepr(d)
        case .string(let s): return AdapterJSON.quoted(s)
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { pad + $0.rendered(indent: indent + 2) }.joined(separator: ",\n") + "\n" + end + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            let items = o.keys.sorted().map { pad + AdapterJSON.quoted($0) + ": " + o[$0]!.rendered(indent: indent + 2) }
            return "{\n" + items.joined(separator: ",\n") + "\n" + end + "}"
        }
    }

    /// Python's float repr: shortest round-trip digits, exponent form below 1e-4 and from 1e16.
    static func pythonRepr(_ d: Double) -> String {
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        let a = abs(d)
        if a >= 1e-4 && a < 1e16 {
            var s = "\(d)"  // Swift prints the shortest round-trip digits, in plain form in this range
            if s.contains("e") { s = String(format: "%.17g", d) }
            return s.contains(".") ? s : s + ".0"
        }
        // Exponent form: digits from Swift's description, exponent written as Python does (e-05, e+16).
        let swift = "\(d)"
        guard let e = swift.firstIndex(where: { $0 == "e" || $0 == "E" }) else { return swift }
        var mantissa = String(swift[..<e]), exponent = Int(swift[swift.index(after: e)...]) ?? 0
        if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
        let sign = exponent < 0 ? "-" : "+"
        exponent = abs(exponent)
        return mantissa + "e" + sign + (exponent < 10 ? "0" : "") + String(exponent)
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
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || u.value > 0x7E {
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
