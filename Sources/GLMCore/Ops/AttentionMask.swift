// Attention masks as one contiguous key interval per query row: causal, prefix-bidirectional, packed.

/// Which keys each query may attend to. Every mask GLM needs gives each query row one contiguous
/// interval of keys `[lower, upper)`, so a mask is stored as two small arrays (B·T each) instead of a
/// `[T, S]` matrix, and attention skips the keys outside the interval entirely.
public struct AttentionMask: Sendable, Equatable {
    public let batch: Int
    public let queries: Int
    public let keys: Int
    /// First visible key of query (b, i), at index b·queries + i.
    public var lower: [Int32]
    /// One past the last visible key of query (b, i).
    public var upper: [Int32]

    public init(batch: Int, queries: Int, keys: Int, lower: [Int32], upper: [Int32]) {
        precondition(lower.count == batch * queries && upper.count == batch * queries, "mask interval counts")
        for i in 0..<lower.count {
            precondition(lower[i] >= 0 && lower[i] < upper[i] && Int(upper[i]) <= keys,
                         "mask row \(i): empty or out-of-range key interval \(lower[i])..<\(upper[i]) of \(keys)")
        }
        self.batch = batch; self.queries = queries; self.keys = keys
        self.lower = lower; self.upper = upper
    }

    /// Causal: query i (the last `queries` of `keys` positions, as with a KV cache) sees keys 0...its position.
    public static func causal(batch: Int, queries: Int, keys: Int? = nil) -> AttentionMask {
        let s = keys ?? queries
        precondition(s >= queries, "causal mask with fewer keys than queries")
        let upperRow = (0..<queries).map { Int32(s - queries + $0 + 1) }
        return AttentionMask(batch: batch, queries: queries, keys: s,
                             lower: [Int32](repeating: 0, count: batch * queries),
                             upper: Array([[Int32]](repeating: upperRow, count: batch).joined()))
    }

    /// GLM's Part A / Part B mask: tokens before `prefixLengths[b]` see each other (and not Part B);
    /// later tokens are causal and see all of Part A: M[i, j] = (j < prefix) || (j ≤ i).
    public static func prefix(lengths: [Int], queries: Int) -> AttentionMask {
        var lower = [Int32](), upper = [Int32]()
        for p in lengths {
            precondition(p >= 0 && p <= queries, "prefix length \(p) outside 0...\(queries)")
            for i in 0..<queries { lower.append(0); upper.append(Int32(max(i + 1, p))) }
        }
        return AttentionMask(batch: lengths.count, queries: queries, keys: queries, lower: lower, upper: upper)
    }

    /// Packed sequences: `segmentIds[b·T + i]` labels the document of each token; consecutive equal ids
    /// form a segment and no token attends across segments. Within a segment attention is causal,
    /// except that tokens before `prefixEnds[b·T + i]` (an absolute index, optional) see each other.
    public static func packed(batch: Int, queries: Int, segmentIds: [Int32], prefixEnds: [Int32]? = nil) -> AttentionMask {
        precondition(segmentIds.count == batch * queries, "segment ids count")
        var lower = [Int32](repeating: 0, count: batch * queries), upper = lower
        for b in 0..<batch {
            var start = 0
            while start < queries {
                var end = start + 1
                while end < queries && segmentIds[b * queries + end] == segmentIds[b * queries + start] { end += 1 }
                for i in start..<end {
                    let r = b * queries + i
                    let pe = Int(prefixEnds?[r] ?? 0)
                    lower[r] = Int32(start)
                    upper[r] = Int32(min(end, max(i + 1, pe)))
                }
                start = end
            }
        }
        return AttentionMask(batch: batch, queries: queries, keys: queries, lower: lower, upper: upper)
    }

    /// Whether query (b, i) may see key j.
    public func allows(batch b: Int, query i: Int, key j: Int) -> Bool {
        let r = b * queries + i
        return j >= Int(lower[r]) && j < Int(upper[r])
    }
}
