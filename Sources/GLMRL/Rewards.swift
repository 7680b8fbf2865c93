// Rewards of rollout samples: built in (exact match after normalisation, numeric answer match, a format check,
// weighted sums of them) or an external command in any language. A command gets one JSON line per sample on
// stdin ({"prompt", "response", "answer", "index"}) and prints one line per sample: a number, or a JSON object
// of named scores whose "reward" (else the sum) is the reward. It has a per-call timeout; a command that fails,
// hangs or prints the wrong number of lines scores the call's samples 0 with a warning, never stopping the run.
import Foundation
import GLMCore
import GLMIO
import GLMTraining
import Yams

/// One sample to score.
public struct RewardInput: Sendable {
    public var prompt: String
    public var response: String
    public var answer: String?
    public init(prompt: String, response: String, answer: String?) {
        self.prompt = prompt; self.response = response; self.answer = answer
    }
}

public indirect enum RewardSpec: Sendable {
    case exactMatch(AnswerNormalizer)
    /// The first number of the response equals the answer's (to 1e-9 relative).
    case numeric
    /// 1 when the whole response matches the regular expression, else 0.
    case format(String)
    case command([String], timeout: Double)
    case weighted([(weight: Double, spec: RewardSpec)])

    /// Whether the reward compares the response with the prompt's `answer` (exact_match, numeric, or a sum with one).
    public var checksAnswer: Bool {
        switch self {
        case .exactMatch, .numeric: return true
        case .format, .command: return false
        case .weighted(let terms): return terms.contains { $0.spec.checksAnswer }
        }
    }

    /// Reads a reward: `numeric`, `exact_match`, `{type: exact_match, normalize: lower}`, `{type: format, pattern: ...}`,
    /// `{type: command, command: [...], timeout: 30}`, or `{type: sum, terms: [{weight: 0.9, reward: ...}, ...]}`.
    static func read(_ parent: RecipeReader, _ key: String, _ node: Node) throws -> RewardSpec {
        if case .scalar(let s) = node {
            switch s.string {
            case "numeric": return .numeric
            case "exact_match": return .exactMatch(.strip)
            default: throw parent.fail(key, node, "unknown reward '\(s.string)' (numeric, exact_match, or a mapping with type: exact_match|numeric|format|command|sum)")
            }
        }
        let r = try RecipeReader(file: parent.file, path: parent.path.isEmpty ? key : parent.path + "." + key, node: node)
        let type = try r.choice("type", ["exact_match", "numeric", "format", "command", "sum"])
        let spec: RewardSpec
        switch type {
        case "exact_match"?:
            spec = .exactMatch(AnswerNormalizer(rawValue: try r.choice("normalize", ["exact", "strip", "lower", "number"], default: "strip")!)!)
        case "numeric"?: spec = .numeric
        case "format"?:
            guard let p = try r.string("pattern") else { throw r.fail("pattern", nil, "missing (a regular expression the whole response must match)") }
            guard (try? NSRegularExpression(pattern: p)) != nil else { throw r.fail("pattern", r.node("pattern"), "not a valid regular expression") }
            spec = .format(p)
        case "command"?:
            guard let c = try r.strings("command"), !c.isEmpty else { throw r.fail("command", nil, "missing (the program and its arguments, a list)") }
            spec = .command(c, timeout: try r.double("timeout", default: 30, min: 0.01, max: 86_400))
        case "sum"?:
            guard let terms = try r.list("terms"), !terms.isEmpty else { throw r.fail("terms", nil, "missing (a list of {weight, reward})") }
            spec = .weighted(try terms.enumerated().map { i, n in
                let t = try r.element("terms", index: i, n)
                let w = try t.double("weight", default: 1, min: -1e6, max: 1e6)
                guard let rn = t.node("reward") else { throw t.fail("reward", nil, "missing") }
                let inner = try RewardSpec.read(t, "reward", rn)
                try t.finish()
                return (w, inner)
            })
        default: throw r.fail("type", nil, "missing (exact_match, numeric, format, command or sum)")
        }
        try r.finish()
        return spec
    }

    /// Rewards of `inputs` (one per input) and warnings for commands that failed.
    public func score(_ inputs: [RewardInput], warnings: inout [String]) -> [Double] {
        switch self {
        case .exactMatch(let n):
            return inputs.map { i in i.answer.map { n.apply(i.response) == n.apply($0) ? 1 : 0 } ?? 0 }
        case .numeric:
            return inputs.map { i in
                guard let a = i.answer.flatMap(RewardSpec.firstNumber), let b = RewardSpec.firstNumber(i.response) else { return 0 }
                return abs(a - b) <= 1e-9 * max(1, abs(a)) ? 1 : 0
            }
        case .format(let pattern):
            let re = try! NSRegularExpression(pattern: "^(?:" + pattern + ")$", options: [.dotMatchesLineSeparators])
            return inputs.map { i in
                switch BoundedRegex.firstMatch(re, in: i.response) {
                case .match: return 1
                case .noMatch: return 0
                case .timedOut:
                    warnings.append("format reward: the pattern took more than \(BoundedRegex.budget) s on a reply; scored 0 (simplify the pattern)")
                    return 0
                }
            }
        case .command(let command, let timeout):
            return RewardCommand(command: command, timeout: timeout).score(inputs, warnings: &warnings)
        case .weighted(let terms):
            var total = [Double](repeating: 0, count: inputs.count)
            for (w, spec) in terms {
                for (i, v) in spec.score(inputs, warnings: &warnings).enumerated() { total[i] += w * v }
            }
            return total
        }
    }

    /// The first number in `text` (sign, decimals, thousands separators dropped), or nil.
    static func firstNumber(_ text: String) -> Double? {
        guard let r = text.range(of: #"-?\d[\d,]*(\.\d+)?"#, options: .regularExpression) else { return nil }
        return Double(text[r].replacingOccurrences(of: ",", with: ""))
    }
}

/// An external reward program run once per call over a list of samples.
struct RewardCommand {
    let command: [String]
    let timeout: Double
    /// The largest reward magnitude taken (a group's mean and standard deviation of values near the double range
    /// overflow, and advantages become f32).
    static let maxMagnitude = 1e15

    func score(_ inputs: [RewardInput], warnings: inout [String]) -> [Double] {
        let zeros = [Double](repeating: 0, count: inputs.count)
        guard !inputs.isEmpty else { return [] }
        let name = command.joined(separator: " ")
        var lines = ""
        for (k, i) in inputs.enumerated() {
            var o: [String: Any] = ["prompt": i.prompt, "response": i.response, "index": k]
            if let a = i.answer { o["answer"] = a }
            lines += ((try? JSONLines.encode(o)) ?? "{}") + "\n"
        }
        let data: Data
        switch ExternalProgram.run(command, input: Data(lines.utf8), timeout: timeout) {
        case .cannotRun(let why):
            warnings.append("reward command \(name): cannot run it (\(why)); its samples score 0")
            return zeros
        case .timedOut:
            warnings.append("reward command \(name): no answer within \(timeout) s; killed, its \(inputs.count) samples score 0")
            return zeros
        case .overflowed:
            warnings.append("reward command \(name): printed more than \(FileInput.maxProgramOutputBytes) bytes; killed, its \(inputs.count) samples score 0")
            return zeros
        case .finished(let output, let reason, let status, _):
            guard reason == .exit, status == 0 else {
                warnings.append("reward command \(name): exited with \(reason == .exit ? "status" : "signal") \(status); its \(inputs.count) samples score 0")
                return zeros
            }
            data = output
        }
        let out = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        guard out.count == inputs.count else {
            warnings.append("reward command \(name): printed \(out.count) lines for \(inputs.count) samples; they score 0")
            return zeros
        }
        var scores: [Double] = []
        for (k, line) in out.enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            if let v = Double(text), v.isFinite, abs(v) <= RewardCommand.maxMagnitude { scores.append(v); continue }
            if let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] {
                let numbers = obj.compactMapValues { ($0 as? NSNumber)?.doubleValue }
                if let v = numbers["reward"] ?? (numbers.isEmpty ? nil : numbers.values.reduce(0, +)), v.isFinite,
                   abs(v) <= RewardCommand.maxMagnitude {
                    scores.append(v); continue
                }
            }
            warnings.append("reward command \(name): line \(k + 1) is not a number of magnitude at most 1e15 or a JSON object of such scores ('\(text.prefix(60))'); it scores 0")
            scores.append(0)
        }
        return scores
    }
}
