// peft matches adapter patterns with Python's `re`; GLMTrain compiles them with ICU (NSRegularExpression). Where the
// two dialects read the same text differently, the pattern is rewritten to Python's meaning: named groups
// `(?P<n>…)` / `(?P=n)` become ICU's `(?<n>…)` / `\k<n>`, and inside a character class `[` and `&&` are literal (ICU
// would read a nested set or an intersection: `[[:alpha:]]` is a POSIX class in ICU, the characters `[:alph` then
// `]` in Python). Python's `{,n}` (at most n) is ICU's `{0,n}`; the flags `a` (ASCII classes) and `u` (Unicode, the
// default) in a leading flag group are dropped: ICU has neither, and module names are ASCII, where they agree.
import Foundation

public enum PythonRegex {
    /// `pattern` with Python's meaning in ICU syntax.
    public static func icu(_ pattern: String) -> String {
        let c = Array(pattern)
        var out = "", i = 0, inClass = false, classStart = 0
        while i < c.count {
            let ch = c[i]
            if ch == "\\" && i + 1 < c.count { out.append(ch); out.append(c[i + 1]); i += 2; continue }
            if inClass {
                if ch == "]" && i > classStart { inClass = false; out.append(ch) }
                else if ch == "[" { out += "\\[" }
                else if ch == "&" && i + 1 < c.count && c[i + 1] == "&" { out += "\\&\\&"; i += 2; continue }
                else { out.append(ch) }
                i += 1; continue
            }
            if ch == "[" {
                inClass = true
                out.append(ch); i += 1
                if i < c.count && c[i] == "^" { out.append("^"); i += 1 }
                if i < c.count && c[i] == "]" { out += "\\]"; i += 1 }  // a leading ] is literal in Python
                classStart = i
                continue
            }
            if ch == "{" && i + 1 < c.count && c[i + 1] == ",",
               let close = c[(i + 1)...].firstIndex(of: "}"), c[(i + 2)..<close].allSatisfy({ $0.isASCII && $0.isNumber }) {
                out += "{0,"; i += 2; continue  // {,n} and {,} (at most n; any number)
            }
            // Python refuses L in a text pattern and a with u; such a group is left for ICU to refuse.
            if ch == "(" && i == 0 && c.count > 3 && c[1] == "?",
               let close = c[2...].firstIndex(of: ")"), close > 2, c[2..<close].allSatisfy({ "aimsux".contains($0) }),
               c[2..<close].contains(where: { $0 == "a" || $0 == "u" }), !(c[2..<close].contains("a") && c[2..<close].contains("u")) {
                let kept = String(c[2..<close].filter { $0 != "a" && $0 != "u" })
                if !kept.isEmpty { out += "(?" + kept + ")" }
                i = close + 1; continue
            }
            if ch == "(" && i + 3 < c.count && c[i + 1] == "?" && c[i + 2] == "P" {
                if c[i + 3] == "<" { out += "(?<"; i += 4; continue }
                if c[i + 3] == "=", let close = c[(i + 4)...].firstIndex(of: ")") {
                    out += "\\k<" + String(c[(i + 4)..<close]) + ">"; i = close + 1; continue
                }
            }
            out.append(ch); i += 1
        }
        return out
    }

    /// Whether `key` holds an inline global flag group such as `(?i)`, which Python refuses anywhere but at the
    /// start of the expression (peft embeds a pattern key in `(.*\.)?(key)$`).
    static func hasInlineGlobalFlags(_ key: String) -> Bool {
        key.range(of: #"(?<!\\)\(\?[aiLmsux]+\)"#, options: .regularExpression) != nil
    }
}
