// `--set key.sub=value`: replaces or adds one value of the recipe's YAML tree before it is decoded.
import GLMCore
import Yams

public enum RecipeOverride {
    /// Applies "a.b.c=value" (value parsed as YAML: `3`, `true`, `[q_proj, v_proj]`, `{rank: 8}`) to `node`.
    public static func apply(_ assignment: String, to node: Node, file: String) throws -> Node {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw GLMError("--set \(assignment): expected key=value (for example training.steps=10)")
        }
        let key = String(assignment[..<eq]), text = String(assignment[assignment.index(after: eq)...])
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else { throw GLMError("--set \(assignment): empty key component in '\(key)'") }
        let value: Node
        do { value = try Yams.compose(yaml: text) ?? Node("", .implicit, .plain) } catch {
            throw GLMError("--set \(key): the value '\(text)' is not valid YAML")
        }
        return try set(parts[...], withoutMarks(value), in: node, key: key)
    }

    /// The value without source positions: it comes from the command line, so an error about it must not point at
    /// line 1 of the recipe (the YAML parser numbers the `--set` text's own lines).
    static func withoutMarks(_ node: Node) -> Node {
        switch node {
        case .scalar(var s): s.mark = nil; return .scalar(s)
        case .sequence(var q):
            q = Node.Sequence(q.map(withoutMarks), q.tag, q.style, nil)
            return .sequence(q)
        case .mapping(let m):
            return .mapping(Node.Mapping(m.map { (withoutMarks($0.key), withoutMarks($0.value)) }, m.tag, m.style, nil))
        }
    }

    static func set(_ parts: ArraySlice<String>, _ value: Node, in node: Node, key: String) throws -> Node {
        guard case .mapping(var mapping) = node else {
            throw GLMError("--set \(key): '\(parts.first!)' is inside a value that is not a mapping")
        }
        let head = parts.first!
        if parts.count == 1 {
            mapping[head] = value
        } else {
            let child = mapping[head] ?? Node([(Node, Node)]())
            mapping[head] = try set(parts.dropFirst(), value, in: child, key: key)
        }
        return .mapping(mapping)
    }
}
