// bf16 and f16 storage formats ↔ the f32 compute type (for loading and saving checkpoints).

/// Storage data types of tensors in files.
public enum StorageDType: String, Sendable, CaseIterable {
    case float32 = "F32", float16 = "F16", bfloat16 = "BF16"
    public var byteCount: Int { self == .float32 ? 4 : 2 }
}

/// Bulk conversions between the 16-bit storage formats and Float.
public enum DTypeConversion {
    /// bf16 → f32 is exact: the bf16 bits are the top half of the f32 bits.
    @inlinable public static func bf16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { dst[i] = Float(bitPattern: UInt32(src[i]) << 16) }
    }

    /// f32 → bf16 with round-to-nearest-even (as PyTorch does); NaN stays NaN.
    @inlinable public static func floatToBF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ n: Int) {
        for i in 0..<n { dst[i] = bf16Bits(src[i]) }
    }

    @inlinable public static func bf16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x40 }
        let rounding = UInt32(0x7FFF) + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    @inlinable public static func f16ToFloat(_ src: UnsafePointer<UInt16>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { dst[i] = Float(Float16(bitPattern: src[i])) }
    }

    /// f32 → f16 with round-to-nearest-even (Swift's conversion), overflow to ±inf.
    @inlinable public static func floatToF16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ n: Int) {
        for i in 0..<n { dst[i] = Float16(src[i]).bitPattern }
    }
}
