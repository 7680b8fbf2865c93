// Repairs the metadata checksums of an HDF5 file after a mutation, so that fuzzing reaches libhdf5's parsers
// instead of stopping at its checksum checks: the version 2/3 superblock and version 2 object headers ("OHDR"
// chunk 0), whose Jenkins lookup3 checksums (H5_checksum_lookup3) cover their bytes.
enum HDF5Checksums {
    /// Bob Jenkins' lookup3 `hashlittle`, byte by byte, as HDF5 computes it.
    static func lookup3(_ k: UnsafeBufferPointer<UInt8>, _ initval: UInt32 = 0) -> UInt32 {
        @inline(__always) func rot(_ x: UInt32, _ r: UInt32) -> UInt32 { (x << r) | (x >> (32 - r)) }
        var a: UInt32 = 0xDEAD_BEEF &+ UInt32(truncatingIfNeeded: k.count) &+ initval
        var b = a, c = a
        var i = 0, length = k.count
        func u(_ j: Int) -> UInt32 { UInt32(k[i + j]) }
        while length > 12 {
            a &+= u(0) &+ (u(1) << 8) &+ (u(2) << 16) &+ (u(3) << 24)
            b &+= u(4) &+ (u(5) << 8) &+ (u(6) << 16) &+ (u(7) << 24)
            c &+= u(8) &+ (u(9) << 8) &+ (u(10) << 16) &+ (u(11) << 24)
            a &-= c; a ^= rot(c, 4); c &+= b
            b &-= a; b ^= rot(a, 6); a &+= c
            c &-= b; c ^= rot(b, 8); b &+= a
            a &-= c; a ^= rot(c, 16); c &+= b
            b &-= a; b ^= rot(a, 19); a &+= c
            c &-= b; c ^= rot(b, 4); b &+= a
            length -= 12; i += 12
        }
        if length == 0 { return c }
        if length >= 12 { c &+= u(11) << 24 }
        if length >= 11 { c &+= u(10) << 16 }
        if length >= 10 { c &+= u(9) << 8 }
        if length >= 9 { c &+= u(8) }
        if length >= 8 { b &+= u(7) << 24 }
        if length >= 7 { b &+= u(6) << 16 }
        if length >= 6 { b &+= u(5) << 8 }
        if length >= 5 { b &+= u(4) }
        if length >= 4 { a &+= u(3) << 24 }
        if length >= 3 { a &+= u(2) << 16 }
        if length >= 2 { a &+= u(1) << 8 }
        a &+= u(0)
        c ^= b; c &-= rot(b, 14)
        a ^= c; a &-= rot(c, 11)
        b ^= a; b &-= rot(a, 25)
        c ^= b; c &-= rot(b, 16)
        a ^= c; a &-= rot(c, 4)
        b ^= a; b &-= rot(a, 14)
        c ^= b; c &-= rot(b, 24)
        return c
    }

    static func store(_ v: UInt32, _ p: UnsafeMutableBufferPointer<UInt8>, at i: Int) {
        for j in 0..<4 { p[i + j] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(j))) }
    }

    static func load(_ p: UnsafeMutableBufferPointer<UInt8>, at i: Int, bytes: Int) -> Int {
        var v = 0
        for j in 0..<bytes { v |= Int(p[i + j]) << (8 * j) }
        return v
    }

    /// Recomputes the checksums found in `p`; returns how many were rewritten.
    @discardableResult
    static func repair(_ p: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var fixed = 0
        let n = p.count
        // Superblock v2/v3 at 0: signature, version, offset and length sizes, flags, four addresses, checksum.
        if n >= 12, p[0] == 0x89, p[1] == 0x48, p[2] == 0x44, p[3] == 0x46, p[8] == 2 || p[8] == 3 {
            let o = Int(p[9])
            let end = 12 + 4 * o
            if (o == 4 || o == 8), end + 4 <= n {
                store(lookup3(UnsafeBufferPointer(rebasing: p[0..<end])), p, at: end); fixed += 1
            }
        }
        // Object headers v2: "OHDR", version 2, flags, [times], [attribute phase change], chunk 0 size, messages.
        var i = 0
        while i + 8 <= n {
            if p[i] == 0x4F, p[i + 1] == 0x48, p[i + 2] == 0x44, p[i + 3] == 0x52, p[i + 4] == 2 {
                let flags = Int(p[i + 5])
                var at = i + 6
                if flags & 0x20 != 0 { at += 16 }
                if flags & 0x10 != 0 { at += 4 }
                let sizeBytes = 1 << (flags & 0x03)
                if at + sizeBytes <= n {
                    let chunk = load(p, at: at, bytes: sizeBytes)
                    let end = at + sizeBytes + chunk
                    if chunk >= 0, end >= at, end + 4 <= n {
                        store(lookup3(UnsafeBufferPointer(rebasing: p[i..<end])), p, at: end); fixed += 1
                    }
                }
            }
            i += 1
        }
        return fixed
    }
}
