// Writing JSONValue as the files GLMTrain writes are laid out: config.json as transformers writes it (sorted keys,
// two-space indent, floats keep their ".0"), adapter_config.json as Python's `json.dumps(obj, indent=2,
// sort_keys=True)` (peft), and tool schemas as `json.dumps(x, ensure_ascii=False, indent=...)` in file order
// (transformers' `tojson` filter in chat templates).
import Foundation
import GLMCore

extension JSONValue {
    /// How `rendered` writes floats and non-ASCII text.
    public enum Style: Sendable {
        /// transformers' config.json: Swift's shortest float digits with ".0", UTF-8 text as is.
        case transformers
        /// Python's json.dumps: float repr (exponent below 1e-4 and from 1e16), ASCII with \uXXXX escapes.
        case python
    }

    /// JSON text: keys sorted at every level, two-space indent, a float always written with a fraction or exponent.
    public func rendered(indent: Int = 0, style: Style = .transformers) -> String {
        let pad = String(repeating: " ", count: indent + 2), end = String(repeating: " ", count: indent)
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .integer(let digits): return digits
        case .double(let d):
            if style == .python {
                if d.isNaN { return "NaN" }
                if d.isInfinite { return d > 0 ? "Infinity" : "-Infinity" }
                return JSONValue.pythonRepr(d)
            }
            guard d.isFinite else { return "null" }
            let s = "\(d)"
            return s.contains(".") || s.contains("e") ? s : s + ".0"
        case .string(let s): return JSONValue.quoted(s, ascii: style == .python)
        case .array(let a):
            if a.isEmpty { return "[]" }
            return "[\n" + a.map { pad + $0.rendered(indent: indent + 2, style: style) }.joined(separator: ",\n") + "\n" + end + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            let items = o.sorted { $0.key < $1.key }.map {
                pad + JSONValue.quoted($0.key, ascii: style == .python) + ": " + $0.value.rendered(indent: indent + 2, style: style)
            }
            return "{\n" + items.joined(separator: ",\n") + "\n" + end + "}"
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
        case .double(let d): out += JSONValue.pythonRepr(d)
        case .string(let s): out += JSONValue.quoted(s)
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
                out += JSONValue.quoted(m.key)
                out += ": "
                m.value.write(to: &out, indent: indent, level: level + 1)
            }
            if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
            out += "}"
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
