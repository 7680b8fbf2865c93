// The random draws of the objectives, written out here (not the standard library's `random(in:using:)` or
// `shuffle(using:)`) so that a checkpointed generator state gives the same rows on every Swift version.
import GLMCore

/// Draws from a `SeededGenerator` with fixed algorithms: what the objectives use so rows are reproducible from
/// (document tokens, generator state).
public enum ObjectiveRandom {
    /// Uniform in [0, 1) with 53 random bits (Python's `random()`).
    public static func uniform(_ rng: inout SeededGenerator) -> Double { Double(rng.next() >> 11) * 0x1p-53 }

    /// Uniform in 0..<n, unbiased (Lemire's multiply-and-reject).
    public static func int(below n: Int, _ rng: inout SeededGenerator) -> Int {
        precondition(n > 0, "ObjectiveRandom.int(below: \(n))")
        let bound = UInt64(n)
        var m = rng.next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = rng.next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Uniform in `range` (both ends included, like Python's `randint`).
    public static func int(in range: ClosedRange<Int>, _ rng: inout SeededGenerator) -> Int {
        range.lowerBound + int(below: range.upperBound - range.lowerBound + 1, &rng)
    }

    /// Fisher–Yates from the end, as Python's `random.shuffle`.
    public static func shuffle<T>(_ a: inout [T], _ rng: inout SeededGenerator) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, int(below: i + 1, &rng)) }
    }

    /// Index i with probability `weights[i] / Σ weights`, given the running sums of the weights (bisect-right on
    /// `uniform · total`, as Python's `random.choices`).
    public static func choose(cumulativeWeights cw: [Double], _ rng: inout SeededGenerator) -> Int {
        precondition(!cw.isEmpty && cw.last! > 0, "ObjectiveRandom.choose: no weight")
        let u = uniform(&rng) * cw.last!
        var lo = 0, hi = cw.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cw[mid] > u { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
