// "Did you mean" for a mistyped name: the nearest of the known names by edit distance.

public enum NearestName {
    /// " (did you mean 'X'?)" for the choice nearest to `value` when it is near enough; "" otherwise.
    public static func suggestion(_ value: String, _ choices: [String]) -> String {
        guard let near = choices.min(by: { distance($0, value) < distance($1, value) }),
              distance(near, value) <= Swift.max(2, value.count / 3) else { return "" }
        return " (did you mean '\(near)'?)"
    }

    /// Levenshtein distance between two strings (by Character).
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var prev = row[0]; row[0] = i
            for j in 1...max(b.count, 1) where !b.isEmpty {
                let cur = row[j]
                row[j] = Swift.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1))
                prev = cur
            }
        }
        return row[b.count]
    }
}
