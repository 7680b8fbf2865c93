// Regular expressions from users' files (adapter target_modules, rank_pattern keys, a reward's format pattern) run
// with a time budget: a pattern with nested repetition, such as `(.*.*)*X`, backtracks exponentially on a short
// module name and would hang the command. NSRegularExpression reports progress during a long match
// (`.reportProgress`); the match is stopped there once the budget is spent.
import Foundation

public enum BoundedRegex {
    /// The time one match may take (a real pattern on a module name or a reply takes microseconds).
    public static let budget: TimeInterval = 0.25

    public enum Outcome: Equatable { case match, noMatch, timedOut }

    /// Whether `re` finds a match in `s`, or `.timedOut` when finding out took longer than `budget`.
    public static func firstMatch(_ re: NSRegularExpression, in s: String, budget: TimeInterval = budget) -> Outcome {
        let start = Date()
        var outcome = Outcome.noMatch
        re.enumerateMatches(in: s, options: [.reportProgress], range: NSRange(s.startIndex..., in: s)) { result, _, stop in
            if result != nil { outcome = .match; stop.pointee = true }
            else if Date().timeIntervalSince(start) > budget { outcome = .timedOut; stop.pointee = true }
        }
        return outcome
    }
}
