// Open-addressing hash tables for the BPE hot path: byte strings → value without allocating a key per lookup,
// and token pairs → merge, with cheap hashes instead of SipHash (encoding speed roughly doubles).

/// A map from byte strings to UInt64 values; keys are copied into one arena. Insert-only, then cleared as a whole.
struct ByteStringTable {
    private var arena: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private var hashes: [UInt64] = []
    private var values: [UInt64] = []
    private var slots: [Int32]          // entry index, -1 = empty
    private var mask: Int

    init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    var count: Int { values.count }

    @inline(__always) static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a, then a final mix so the low bits are usable
        for b in key { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        h ^= h >> 29
        h = h &* 0xbf58_476d_1ce4_e5b9
        return h ^ (h >> 32)
    }

    func get(_ key: UnsafeBufferPointer<UInt8>) -> UInt64? {
        let h = ByteStringTable.hash(key)
        var i = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { slots in
            arena.withUnsafeBufferPointer { arena in
                while true {
                    let e = Int(slots[i])
                    if e < 0 { return nil }
                    if hashes[e] == h && Int(keyLength[e]) == key.count {
                        let start = Int(keyStart[e])
                        var equal = true
                        for k in 0..<key.count where arena[start + k] != key[k] { equal = false; break }
                        if equal { return values[e] }
                    }
                    i = (i + 1) & mask
                }
            }
        }
    }

    /// Inserts or replaces.
    mutating func set(_ key: UnsafeBufferPointer<UInt8>, _ value: UInt64) {
        let h = ByteStringTable.hash(key)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let e = Int(slots[i])
            if e < 0 { break }
            if hashes[e] == h && Int(keyLength[e]) == key.count
                && arena[Int(keyStart[e])..<(Int(keyStart[e]) + key.count)].elementsEqual(key) {
                values[e] = value
                return
            }
            i = (i + 1) & mask
        }
        slots[i] = Int32(values.count)
        keyStart.append(Int32(arena.count))
        keyLength.append(Int32(key.count))
        arena.append(contentsOf: key)
        hashes.append(h)
        values.append(value)
        if values.count * 2 > slots.count { grow() }
    }

    mutating func set(_ key: [UInt8], _ value: UInt64) { key.withUnsafeBufferPointer { set($0, value) } }

    mutating func removeAll() {
        arena.removeAll(keepingCapacity: true); keyStart.removeAll(keepingCapacity: true)
        keyLength.removeAll(keepingCapacity: true); hashes.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        for i in slots.indices { slots[i] = -1 }
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        for e in 0..<values.count {
            var i = Int(truncatingIfNeeded: hashes[e]) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(e)
        }
    }
}

/// A read-only map from UInt64 keys (a token pair) to UInt64 values (a merge), open addressing.
struct PairTable {
    private let keys: [UInt64]
    private let values: [UInt64]
    private let occupied: [Bool]
    private let mask: Int

    init(_ dictionary: [UInt64: UInt64]) {
        var size = 16
        while size < dictionary.count * 2 { size <<= 1 }
        var keys = [UInt64](repeating: 0, count: size), values = [UInt64](repeating: 0, count: size)
        var occupied = [Bool](repeating: false, count: size)
        let mask = size - 1
        for (k, v) in dictionary {
            var i = PairTable.slot(k, mask)
            while occupied[i] { i = (i + 1) & mask }
            keys[i] = k; values[i] = v; occupied[i] = true
        }
        self.keys = keys; self.values = values; self.occupied = occupied; self.mask = mask
    }

    @inline(__always) private static func slot(_ k: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 29) & mask
    }

    @inline(__always) func get(_ k: UInt64) -> UInt64? {
        var i = PairTable.slot(k, mask)
        while occupied[i] {
            if keys[i] == k { return values[i] }
            i = (i + 1) & mask
        }
        return nil
    }
}
