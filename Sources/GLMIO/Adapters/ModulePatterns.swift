// peft's per-module rank and alpha (`rank_pattern`, `alpha_pattern`) on adapters of linear modules: a module
// takes the value of the first pattern key k (in the file's order) for which `(.*\.)?(k)$` matches its full name
// from the start (peft's `get_pattern_key`), else r / lora_alpha; its scale is α_m/r_m, or α_m/√r_m under rsLoRA.
// Adapters of fused routed experts (`target_parameters`) keep FusedExpertLoRA's single gate_up pattern.
import Foundation
import GLMCore

extension AdapterConfig {
    /// Whether per-module patterns apply (module-targeted adapters with a non-empty rank or alpha pattern).
    public var hasModulePatterns: Bool { targetParameters.isEmpty && (!rankPattern.isEmpty || !alphaPattern.isEmpty) }

    /// The pattern keys in the order peft tries them: the file's order, else sorted (what peft's own
    /// `json.dumps(sort_keys=True)` leaves in a file).
    static func orderedKeys(_ pattern: [String: AdapterJSON], _ order: [String]) -> [String] {
        order.count == pattern.count && Set(order) == Set(pattern.keys) ? order : pattern.keys.sorted()
    }

    /// The value of the first key of `pattern` matching `module`, as peft's get_pattern_key picks it.
    static func patternValue(_ pattern: [String: AdapterJSON], order: [String], module: String) -> AdapterJSON? {
        guard !pattern.isEmpty else { return nil }
        return orderedKeys(pattern, order).first { AdapterTargets.fullMatch("(.*\\.)?(" + $0 + ")", module) }.map { pattern[$0]! }
    }

    /// The rank of `module`'s matrices ("model.layers.0.self_attn.q_proj").
    public func rank(forModule module: String) -> Int {
        guard hasModulePatterns, let v = Self.patternValue(rankPattern, order: rankPatternOrder, module: module)?.intValue else { return r }
        return v
    }

    /// The lora_alpha of `module`.
    public func alpha(forModule module: String) -> Double {
        guard hasModulePatterns, let v = Self.patternValue(alphaPattern, order: alphaPatternOrder, module: module) else { return loraAlpha }
        switch v {
        case .integer(let d): return Double(d) ?? loraAlpha
        case .double(let d): return d
        default: return loraAlpha
        }
    }

    /// The factor on B·A of `module`: α_m/r_m, or α_m/√r_m with rsLoRA.
    public func scale(forModule module: String) -> Double {
        guard hasModulePatterns else { return scale }
        let (rank, alpha) = (Double(self.rank(forModule: module)), self.alpha(forModule: module))
        return useRslora ? alpha / rank.squareRoot() : alpha / rank
    }

    /// This config with patterns that give `modules` the same ranks and alphas when tried in sorted key order, the
    /// order every writer leaves them in (adapter_config.json is written with sorted keys, as peft writes it): itself
    /// when the file's order already resolves the same, else one key per module that differs from r / lora_alpha,
    /// by its full name.
    public func withPatternsResolvingInSortedOrder(modules: [String]) -> AdapterConfig {
        guard hasModulePatterns else { return self }
        var sorted = self
        sorted.rankPatternOrder = []; sorted.alphaPatternOrder = []
        guard modules.contains(where: { sorted.rank(forModule: $0) != rank(forModule: $0) || sorted.alpha(forModule: $0) != alpha(forModule: $0) }) else {
            return self
        }
        var out = sorted
        out.rankPattern = [:]; out.alphaPattern = [:]
        for m in modules.sorted() {
            let key = NSRegularExpression.escapedPattern(for: m)
            if rank(forModule: m) != r { out.rankPattern[key] = .int(rank(forModule: m)) }
            if alpha(forModule: m) != loraAlpha { out.alphaPattern[key] = AdapterJSON.number(alpha(forModule: m)) }
        }
        return out
    }

    /// Decode-time checks of module patterns: every key a valid regular expression, ranks positive integers up
    /// to `maxRank`, alphas positive numbers up to `maxAlpha`.
    static func checkModulePatterns(_ c: AdapterConfig, source: String) throws {
        for (key, pattern) in [("rank_pattern", c.rankPattern), ("alpha_pattern", c.alphaPattern)] {
            for (k, v) in pattern.sorted(by: { $0.key < $1.key }) {
                guard (try? NSRegularExpression(pattern: PythonRegex.icu("(.*\\.)?(" + k + ")"))) != nil else {
                    throw GLMError("\(source): key '\(key)': '\(k)' is not a valid regular expression")
                }
                guard !PythonRegex.hasInlineGlobalFlags(k) else {
                    throw GLMError("\(source): key '\(key)': '\(k)' has an inline flag group such as (?i), which peft (Python's re) refuses inside its pattern; use a scoped group (?i:...)")
                }
                try AdapterTargets.checkRegexSpeed("(.*\\.)?(" + k + ")", "\(source): key '\(key)': '\(k)'")
                if key == "rank_pattern" {
                    guard let rank = v.intValue, rank >= 1, rank <= maxRank else {
                        throw GLMError("\(source): key 'rank_pattern': '\(k)': expected a positive integer rank up to \(maxRank)")
                    }
                } else {
                    let a: Double
                    switch v {
                    case .integer(let d): a = Double(d) ?? .infinity
                    case .double(let d): a = d
                    default: throw GLMError("\(source): key 'alpha_pattern': '\(k)': expected a number")
                    }
                    try checkAlpha(a, "\(source): key 'alpha_pattern': '\(k)'")
                }
            }
        }
    }
}
