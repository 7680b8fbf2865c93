// Typed reads from a JSON object of a config file (config.json, adapter_config.json, ...): a present key of the
// wrong type is a one-line error naming the file and the key.
import GLMCore

/// Typed reads from a JSON object; a present key of the wrong type is an error naming the key.
public struct ConfigReader {
    /// The object's members (a repeated key keeps its last value).
    public let object: [String: JSONValue]
    /// The file, for errors.
    public let source: String
    /// Prefix for nested objects, e.g. "rope_parameters.".
    public var path = ""

    public init(object: [String: JSONValue], source: String, path: String = "") {
        self.object = object
        self.source = source
        self.path = path
    }

    /// A parsed value, which must be an object.
    public init(parsing value: JSONValue, source: String) throws {
        guard let o = value.dictionary else { throw GLMError("\(source): expected a JSON object") }
        self.init(object: o, source: source)
    }

    /// Whether the key is present and not null.
    public func has(_ key: String) -> Bool { object[key].map { !$0.isNull } ?? false }

    /// Whether the key is present (null included).
    public func contains(_ key: String) -> Bool { object[key] != nil }

    /// Refuses an explicit null for any of `keys`: fields transformers 5 types without None (its strict config
    /// classes reject null for most of them, others then fail in the model), so null is never silently "the default".
    public func checkNotNull(_ keys: [String]) throws {
        if let key = keys.first(where: { object[$0]?.isNull == true }) {
            throw GLMError("\(source): key '\(path)\(key)' is null; expected a value (leave the key out for its default)")
        }
    }

    public func fail(_ key: String, _ expected: String) -> GLMError {
        let shown = object[key].map { String($0.rendered().replacingOccurrences(of: "\n", with: " ").prefix(80)) } ?? "nothing"
        return GLMError("\(source): key '\(path)\(key)' must be \(expected), got \(shown)")
    }

    public func int(_ key: String) throws -> Int? {
        switch object[key] {
        case nil, .null?: return nil
        case .integer(let digits)?:
            guard let i = Int(digits) else { throw fail(key, "an integer that fits 64 bits") }
            return i
        case .double(let d)? where d == d.rounded() && abs(d) < 1e15: return Int(d)
        default: throw fail(key, "an integer")
        }
    }

    public func double(_ key: String) throws -> Double? {
        switch object[key] {
        case nil, .null?: return nil
        case .integer(let digits)?: return Double(digits) ?? .infinity
        case .double(let d)?: return d
        default: throw fail(key, "a number")
        }
    }

    public func bool(_ key: String) throws -> Bool? {
        switch object[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw fail(key, "true or false")
        }
    }

    public func string(_ key: String) throws -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw fail(key, "a string")
        }
    }

    /// An integer or a list of integers (eos_token_id).
    public func ints(_ key: String) throws -> [Int]? {
        switch object[key] {
        case nil, .null?: return nil
        case .array(let a)?:
            return try a.map { v -> Int in
                if let i = v.intValue { return i }
                throw fail(key, "an integer or a list of integers")
            }
        default:
            guard let i = try? int(key) else { throw fail(key, "an integer or a list of integers") }
            return [i]
        }
    }

    /// A nested object, or nil when absent or null.
    public func object(_ key: String) throws -> ConfigReader? {
        switch object[key] {
        case nil, .null?: return nil
        case .object?: return ConfigReader(object: object[key]!.dictionary!, source: source, path: path + key + ".")
        default: throw fail(key, "an object")
        }
    }
}
