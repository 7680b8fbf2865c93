// Strict reading of a YAML mapping: every key must be known, every value of the expected type. Errors name the
// file, the line and the dotted key, and suggest the nearest known key for a typo.
import Foundation
import GLMCore
import GLMIO
import Yams

/// Reads one YAML mapping of a recipe. Call the typed accessors for every key the section knows, then `finish()`,
/// which rejects the keys nobody asked for.
public final class RecipeReader {
    public let file: String
    public let path: String
    let node: Node?
    private var pairs: [(key: String, value: Node)] = []
    private var known: [String] = []

    public init(file: String, path: String, node: Node?) throws {
        self.file = file; self.path = path; self.node = node
        guard let node else { return }
        guard case .mapping(let mapping) = node else {
            throw RecipeReader.error(file: file, node: node, key: path, "expected a mapping of keys, got \(RecipeReader.describe(node))")
        }
        for (k, v) in mapping {
            guard case .scalar(let s) = k else {
                throw RecipeReader.error(file: file, node: k, key: path, "keys must be plain strings")
            }
            if let earlier = pairs.first(where: { $0.key == s.string }) {
                let first = earlier.value.mark.map { " (first at line \($0.line))" } ?? ""
                throw RecipeReader.error(file: file, node: k, key: path.isEmpty ? s.string : path + "." + s.string,
                                         "duplicate key\(first); a mapping may name each key once")
            }
            pairs.append((s.string, v))
        }
    }

    /// Parses `text` (the contents of `file`) as a YAML document whose top level is a mapping.
    public static func document(_ text: String, file: String) throws -> Node {
        try NestingDepth.checkYAML(text, source: file)
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw GLMError("\(file): not valid YAML: \(String(describing: error).split(separator: "\n").joined(separator: " "))")
        }
        guard let node else { throw GLMError("\(file): the recipe is empty") }
        guard case .mapping = node else { throw GLMError("\(file): expected a mapping of keys at the top level") }
        // Aliases share nodes, so a small file can stand for an exponentially large tree ("billion laughs").
        var budget = maxNodes
        guard countNodes(node, budget: &budget) else {
            throw GLMError("\(file): the recipe expands to more than \(maxNodes) YAML nodes (aliases nested too deep?)")
        }
        return node
    }

    /// The most YAML nodes a recipe may expand to (counting each alias's copy).
    static let maxNodes = 100_000

    private static func countNodes(_ node: Node, budget: inout Int) -> Bool {
        budget -= 1
        if budget < 0 { return false }
        switch node {
        case .scalar: return true
        case .sequence(let seq): return seq.allSatisfy { countNodes($0, budget: &budget) }
        case .mapping(let map): return map.allSatisfy { countNodes($0.key, budget: &budget) && countNodes($0.value, budget: &budget) }
        }
    }

    /// Whether `name` is present with an explicit null (`key:`, `key: null`, `key: ~`).
    func isNull(_ name: String) -> Bool {
        guard let n = pairs.first(where: { $0.key == name })?.value, case .scalar(let s) = n else { return false }
        return s.style == .plain && ["~", "null", "Null", "NULL", ""].contains(s.string)
    }

    /// A key that has a default must not be given as null (which would silently mean the default).
    func rejectNull(_ name: String, default value: String) throws {
        if isNull(name) {
            throw fail(name, raw(name), "is null; give a value, or leave the key out for the default (\(value))")
        }
    }

    func key(_ name: String) -> String { path.isEmpty ? name : path + "." + name }

    func raw(_ name: String) -> Node? {
        known.append(name)
        return pairs.first { $0.key == name }?.value
    }

    /// Whether the mapping has `name` (marks it known).
    public func has(_ name: String) -> Bool { raw(name) != nil }

    public func fail(_ name: String, _ node: Node?, _ message: String) -> GLMError {
        RecipeReader.error(file: file, node: node ?? self.node, key: key(name), message)
    }

    static func error(file: String, node: Node?, key: String, _ message: String) -> GLMError {
        let line = node?.mark.map { ":\($0.line)" } ?? ""
        return GLMError("\(file)\(line): \(key): \(message)")
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    private func scalar(_ name: String, _ what: String) throws -> (String, Node)? {
        guard let n = raw(name) else { return nil }
        guard case .scalar(let s) = n else { throw fail(name, n, "expected \(what), got \(RecipeReader.describe(n))") }
        if s.style == .plain && ["~", "null", "Null", "NULL", ""].contains(s.string) { return nil }
        return (s.string, n)
    }

    public func string(_ name: String) throws -> String? { try scalar(name, "a string")?.0 }

    public func string(_ name: String, default value: String) throws -> String {
        try rejectNull(name, default: value)
        return try string(name) ?? value
    }

    public func int(_ name: String) throws -> Int? {
        guard let (s, n) = try scalar(name, "an integer") else { return nil }
        guard let v = Int(s.replacingOccurrences(of: "_", with: "")) else {
            throw fail(name, n, "expected an integer, got '\(s)'")
        }
        return v
    }

    public func int(_ name: String, default value: Int, min: Int? = nil, max: Int? = nil) throws -> Int {
        try rejectNull(name, default: "\(value)")
        let v = try int(name) ?? value
        if let max, v > max { throw fail(name, raw(name), "must be at most \(max), got \(v)") }
        if let min, v < min { throw fail(name, raw(name), "must be at least \(min), got \(v)") }
        return v
    }

    public func double(_ name: String) throws -> Double? {
        guard let (s, n) = try scalar(name, "a number") else { return nil }
        guard let v = Double(s.replacingOccurrences(of: "_", with: "")), v.isFinite else {
            throw fail(name, n, "expected a number, got '\(s)'")
        }
        return v
    }

    public func double(_ name: String, default value: Double, min: Double? = nil, max: Double? = nil) throws -> Double {
        try rejectNull(name, default: "\(value)")
        let v = try double(name) ?? value
        if let min, v < min { throw fail(name, raw(name), "must be at least \(min), got \(v)") }
        if let max, v > max { throw fail(name, raw(name), "must be at most \(max), got \(v)") }
        return v
    }

    public func bool(_ name: String) throws -> Bool? {
        guard let (s, n) = try scalar(name, "true or false") else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw fail(name, n, "expected true or false, got '\(s)'")
        }
    }

    public func bool(_ name: String, default value: Bool) throws -> Bool {
        try rejectNull(name, default: "\(value)")
        return try bool(name) ?? value
    }

    /// A string that must be one of `choices`.
    public func choice(_ name: String, _ choices: [String], default value: String? = nil) throws -> String? {
        if let value { try rejectNull(name, default: value) }
        guard let v = try string(name) else { return value }
        guard choices.contains(v) else {
            throw fail(name, raw(name), "expected one of \(choices.joined(separator: ", ")), got '\(v)'\(RecipeReader.suggestion(v, choices))")
        }
        return v
    }

    public func list(_ name: String) throws -> [Node]? {
        guard let n = raw(name) else { return nil }
        if case .scalar(let s) = n, s.style == .plain, ["~", "null", ""].contains(s.string) { return nil }
        guard case .sequence(let seq) = n else { throw fail(name, n, "expected a list, got \(RecipeReader.describe(n))") }
        return Array(seq)
    }

    public func strings(_ name: String) throws -> [String]? {
        guard let items = try list(name) else { return nil }
        return try items.map { item in
            guard case .scalar(let s) = item else { throw fail(name, item, "expected a list of strings") }
            return s.string
        }
    }

    public func doubles(_ name: String) throws -> [Double]? {
        guard let items = try list(name) else { return nil }
        return try items.map { item in
            guard case .scalar(let s) = item, let v = Double(s.string) else { throw fail(name, item, "expected a list of numbers") }
            return v
        }
    }

    /// A nested mapping (nil when absent).
    public func section(_ name: String) throws -> RecipeReader? {
        guard let n = raw(name) else { return nil }
        if case .scalar(let s) = n, s.style == .plain, ["~", "null", ""].contains(s.string) { return nil }
        return try RecipeReader(file: file, path: key(name), node: n)
    }

    /// A reader over one element of a list of mappings.
    public func element(_ name: String, index: Int, _ node: Node) throws -> RecipeReader {
        try RecipeReader(file: file, path: "\(key(name))[\(index)]", node: node)
    }

    /// The raw node of `name`, for sections read by another component.
    public func node(_ name: String) -> Node? { raw(name) }

    /// Rejects every key that no accessor asked for, suggesting the nearest known one.
    public func finish() throws {
        for (k, v) in pairs where !known.contains(k) {
            let near = known.min { RecipeReader.distance($0, k) < RecipeReader.distance($1, k) }
            let hint = near.flatMap { RecipeReader.distance($0, k) <= Swift.max(2, k.count / 3) ? " (did you mean '\($0)'?)" : nil } ?? ""
            throw fail(k, v, "unknown key\(hint); known keys here: \(Set(known).sorted().joined(separator: ", "))")
        }
    }

    /// " (did you mean 'X'?)" for the choice nearest to `value` when it is near enough; "" otherwise.
    static func suggestion(_ value: String, _ choices: [String]) -> String { NearestName.suggestion(value, choices) }

    static func distance(_ a: String, _ b: String) -> Int { NearestName.distance(a, b) }
}
