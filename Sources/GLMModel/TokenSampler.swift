// Picks the next token from a row of logits: greedy at temperature 0, otherwise temperature, top-k and
// top-p (nucleus) filtering and a seeded draw, so the same seed gives the same text.
import Foundation
import GLMCore

/// How to pick tokens; the defaults are plain sampling at temperature 1.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 means greedy decoding.
    public var temperature: Float
    /// Keep the smallest set of most likely tokens whose probability reaches `topP` (1 keeps all).
    public var topP: Float
    /// Keep the `topK` most likely tokens (0 keeps all).
    public var topK: Int

    public init(temperature: Float = 1, topP: Float = 1, topK: Int = 0) {
        self.temperature = temperature; self.topP = topP; self.topK = topK
    }

    public static let greedy = SamplingParameters(temperature: 0)

    /// Checks the values a user passed; the message names the option.
    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw GLMError("--temperature must be ≥ 0, got \(temperature)") }
        guard topP > 0, topP <= 1 else { throw GLMError("--top-p must be in (0, 1], got \(topP)") }
        guard topK >= 0 else { throw GLMError("--top-k must be ≥ 0, got \(topK)") }
    }
}

/// A token and its log-probability under the temperature-scaled (unfiltered) distribution.
public struct SampledToken: Sendable, Equatable {
    public var id: Int32
    public var logProb: Float
}

/// Seeded token sampler.
public struct TokenSampler: Sendable {
    public var generator: SeededGenerator
    public var parameters: SamplingParameters

    public init(parameters: SamplingParameters, seed: UInt64) {
        self.parameters = parameters
        generator = SeededGenerator(seed: seed)
    }

    /// Picks a token from `logits[0..<vocab]`.
    public mutating func sample(_ logits: UnsafePointer<Float>, vocab: Int) -> SampledToken {
        precondition(vocab > 0, "empty logits row")
        let p = parameters
        // A temperature so small that 1/T overflows samples the maximum, as T → 0 does.
        if p.temperature == 0 || !(1 / p.temperature).isFinite {
            // The first maximum, and its log-softmax from the vectorised exp (no per-token allocation).
            var best = 0, top = logits[0]
            for j in 1..<vocab where logits[j] > top { best = j; top = logits[j] }
            let lse = top + Foundation.log(FastExp.sumExpShifted(logits, vocab, shift: top))
            return SampledToken(id: Int32(best), logProb: top - lse)
        }
        // (logit − max)/T: with a tiny T, logit/T alone overflows to ±inf and inf − inf gives NaN
        let invT = 1 / p.temperature
        var m = -Float.infinity
        for j in 0..<vocab { m = max(m, logits[j]) }
        var probs = [Float](repeating: 0, count: vocab)
        var z: Double = 0
        for j in 0..<vocab { let e = Foundation.exp((logits[j] - m) * invT); probs[j] = e; z += Double(e) }
        // Candidates sorted by probability (stable on index for ties), then truncated by top-k and top-p.
        var order = Array(0..<vocab)
        let needSort = (p.topK > 0 && p.topK < vocab) || p.topP < 1
        if needSort { order.sort { probs[$0] != probs[$1] ? probs[$0] > probs[$1] : $0 < $1 } }
        var keep = vocab
        if p.topK > 0 { keep = min(keep, p.topK) }
        if p.topP < 1 {
            var cumulative: Double = 0
            for (rank, j) in order.prefix(keep).enumerated() {
                cumulative += Double(probs[j]) / z
                if cumulative >= Double(p.topP) { keep = rank + 1; break }
            }
        }
        var kept: Double = 0
        for j in order.prefix(keep) { kept += Double(probs[j]) }
        let u = Double(generator.nextUniform()) * kept
        var acc: Double = 0
        var chosen = order[keep - 1]
        for j in order.prefix(keep) {
            acc += Double(probs[j])
            if u < acc { chosen = j; break }
        }
        return SampledToken(id: Int32(chosen), logProb: Float(Foundation.log(Double(probs[chosen]) / z)))
    }
}
