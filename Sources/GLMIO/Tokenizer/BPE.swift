// The byte-level BPE model: a vocabulary of byte strings and ranked merges of token pairs, applied to one
// pre-tokenized chunk at a time (lowest rank first, leftmost on ties), with a cache of chunk encodings.
import Foundation

/// Byte-level BPE over token ids. `merges[(left, right)]` gives the rank of merging the pair and the merged id;
/// with merges from tokenizer.json the rank is the merge's line, with a tiktoken rank file it is the rank of the
/// concatenation, which makes the two formats' algorithms (huggingface/tokenizers `word.rs`, tiktoken
/// `byte_pair_merge`) the same loop.
final class BPEModel: @unchecked Sendable {
    /// Token bytes → id.
    private let vocab: ByteStringTable
    /// The id of each single byte, or -1 when the vocabulary lacks it (such bytes are dropped, as tokenizers does).
    let byteIDs: [Int32]
    /// (left << 32 | right) → (rank << 32 | merged id).
    private let merges: PairTable
    /// A chunk that is itself a vocabulary entry maps to it without merging (`ignore_merges`; always so in tiktoken).
    let ignoreMerges: Bool

    /// Chunk bytes → (offset << 32 | count) into `cacheIDs`, for chunks up to `cacheMaxBytes`.
    private var cache = ByteStringTable(capacity: 1 << 16)
    private var cacheIDs: [Int32] = []
    private let cacheLock = NSLock()
    private static let cacheLimit = 1 << 18, cacheMaxBytes = 64

    init(vocab: [[UInt8]: Int32], merges: [UInt64: UInt64], ignoreMerges: Bool) {
        var table = ByteStringTable(capacity: vocab.count)
        for (bytes, id) in vocab { table.set(bytes, UInt64(UInt32(bitPattern: id))) }
        self.vocab = table
        self.merges = PairTable(merges)
        self.ignoreMerges = ignoreMerges
        var byteIDs = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { if let id = vocab[[UInt8(b)]] { byteIDs[b] = id } }
        self.byteIDs = byteIDs
    }

    @inline(__always) static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    /// Appends the ids of one chunk (`bytes`, non-empty) to `out`.
    func encode(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        if bytes.count == 1 {
            let id = byteIDs[Int(bytes[0])]
            if id >= 0 { out.append(id) }
            return
        }
        if ignoreMerges, let id = vocab.get(bytes) { out.append(Int32(truncatingIfNeeded: id)); return }
        let cacheable = bytes.count <= BPEModel.cacheMaxBytes
        if cacheable {
            cacheLock.lock()
            if let hit = cache.get(bytes) {
                let start = Int(hit >> 32), count = Int(hit & 0xFFFF_FFFF)
                out.append(contentsOf: cacheIDs[start..<(start + count)])
                cacheLock.unlock()
                return
            }
            cacheLock.unlock()
        }
        let ids = merge(bytes)
        out.append(contentsOf: ids)
        guard cacheable else { return }
        cacheLock.lock()
        if cache.count >= BPEModel.cacheLimit { cache.removeAll(); cacheIDs.removeAll(keepingCapacity: true) }
        cache.set(bytes, UInt64(cacheIDs.count) << 32 | UInt64(ids.count))
        cacheIDs.append(contentsOf: ids)
        cacheLock.unlock()
    }

    /// Runs the merges on one chunk.
    func merge(_ bytes: UnsafeBufferPointer<UInt8>) -> [Int32] {
        var parts: [Int32] = []
        parts.reserveCapacity(bytes.count)
        for b in bytes { let id = byteIDs[Int(b)]; if id >= 0 { parts.append(id) } }
        if parts.count < 2 { return parts }
        return parts.count <= 64 ? mergeSmall(parts) : mergeHeap(parts)
    }

    /// Rank and merged id of the pair, or nil.
    @inline(__always) private func lookup(_ a: Int32, _ b: Int32) -> (rank: UInt32, id: Int32)? {
        guard let m = merges.get(BPEModel.key(a, b)) else { return nil }
        return (UInt32(truncatingIfNeeded: m >> 32), Int32(bitPattern: UInt32(truncatingIfNeeded: m)))
    }

    /// The quadratic loop, fast for short chunks: keep each adjacent pair's rank, merge the lowest (leftmost on
    /// ties), then refresh only the two pairs next to the merge.
    private func mergeSmall(_ start: [Int32]) -> [Int32] {
        var parts = start
        let none = UInt32.max
        var ranks = [UInt32](repeating: none, count: parts.count - 1)
        var newIDs = [Int32](repeating: 0, count: parts.count - 1)
        for i in 0..<(parts.count - 1) {
            if let m = lookup(parts[i], parts[i + 1]) { ranks[i] = m.rank; newIDs[i] = m.id }
        }
        while true {
            var best = none, at = -1
            for i in 0..<ranks.count where ranks[i] < best { best = ranks[i]; at = i }
            if at < 0 { break }
            parts[at] = newIDs[at]
            parts.remove(at: at + 1)
            ranks.remove(at: at)
            newIDs.remove(at: at)
            if at > 0 {
                if let m = lookup(parts[at - 1], parts[at]) { ranks[at - 1] = m.rank; newIDs[at - 1] = m.id }
                else { ranks[at - 1] = none }
            }
            if at < ranks.count {
                if let m = lookup(parts[at], parts[at + 1]) { ranks[at] = m.rank; newIDs[at] = m.id }
                else { ranks[at] = none }
            }
        }
        return parts
    }

    /// The linked-list and min-heap version (huggingface/tokenizers `Word::merge_all`) for long chunks.
    private func mergeHeap(_ start: [Int32]) -> [Int32] {
        let n = start.count
        var ids = start
        var prev = (0..<n).map { $0 - 1 }
        var next = (0..<n).map { $0 + 1 }   // n = none
        var alive = [Bool](repeating: true, count: n)
        var heap = MergeHeap()
        for i in 0..<(n - 1) {
            if let m = lookup(ids[i], ids[i + 1]) { heap.push(rank: m.rank, pos: i, id: m.id) }
        }
        while let top = heap.pop() {
            let pos = top.pos
            guard alive[pos], next[pos] < n else { continue }
            let right = next[pos]
            guard let m = lookup(ids[pos], ids[right]), m.id == top.id else { continue }   // stale entry
            ids[pos] = top.id
            alive[right] = false
            next[pos] = next[right]
            if next[right] < n { prev[next[right]] = pos }
            if prev[pos] >= 0, let p = lookup(ids[prev[pos]], ids[pos]) { heap.push(rank: p.rank, pos: prev[pos], id: p.id) }
            if next[pos] < n, let p = lookup(ids[pos], ids[next[pos]]) { heap.push(rank: p.rank, pos: pos, id: p.id) }
        }
        var out: [Int32] = []
        var i = 0
        while i < n { out.append(ids[i]); i = next[i] }
        return out
    }
}

/// A binary min-heap of candidate merges ordered by (rank, position).
struct MergeHeap {
    private var items: [(key: UInt64, id: Int32)] = []

    mutating func push(rank: UInt32, pos: Int, id: Int32) {
        items.append((UInt64(rank) << 32 | UInt64(pos), id))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].key <= items[i].key { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> (pos: Int, id: Int32)? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && items[l].key < items[m].key { m = l }
                if r < n && items[r].key < items[m].key { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return (Int(first.key & 0xFFFF_FFFF), first.id)
    }
}
