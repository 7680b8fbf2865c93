// The one JSON value type of the IO layer: config.json, adapter_config.json, chat-template tool schemas. Objects keep
// their keys in file order (chat templates print tool schemas in that order); integers keep their digits (Python's
// ints have no size limit) and stay apart from floats, so that writing back preserves `64` vs `64.0`.
// Parsing: JSONParser.swift; writing as transformers / Python's json.dumps do: JSONWriting.swift.
import Foundation
import GLMCore

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

    /// An integer value (a float with no fraction is not one).
    public static func int(_ i: Int) -> JSONValue { .integer(String(i)) }

    /// An object built from a dictionary, keys sorted (the order `rendered` writes anyway).
    public static func keyed(_ members: [String: JSONValue]) -> JSONValue {
        .object(members.keys.sorted().map { (key: $0, value: members[$0]!) })
    }

    /// A float written as Python writes it, an integral one as an int (`lora_alpha: 16`).
    public static func number(_ d: Double) -> JSONValue {
        d.rounded() == d && abs(d) < 1e15 ? .int(Int(d)) : .double(d)
    }

    /// The integer, when this is an integer literal that fits `Int`.
    public var intValue: Int? { if case .integer(let digits) = self { return Int(digits) }; return nil }

    /// The object's members as a dictionary (nil for other values).
    public var dictionary: [String: JSONValue]? {
        guard case .object(let members) = self else { return nil }
        return Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    public var isNull: Bool { if case .null = self { return true }; return false }

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

