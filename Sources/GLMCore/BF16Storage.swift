// Tensors over bf16 storage: frozen weights kept at 2 bytes per element and widened to f32 only inside the
// matrix kernels (BF16MatMul.swift). Trainable tensors are always f32.
import Foundation

extension Tensor {
    /// The bf16 bits when this tensor's storage holds bf16 (nil for f32 storage).
    @inlinable public var bf16Bits: UnsafeMutablePointer<UInt16>? { storage.bf16Bits }
    /// The element type of the storage.
    public var dtype: StorageDType { storage.dtype }
    /// Bytes held by the storage for the values.
    public var storageBytes: Int { storage.byteCount }

    /// A frozen tensor over a copy of `count(shape)` bf16 values.
    public convenience init(bf16Bits bits: UnsafePointer<UInt16>, shape: [Int]) {
        let n = Tensor.elementCount(shape)
        self.init(shape: shape, storage: TensorStorage(bf16Count: n))
        storage.bf16Bits!.update(from: bits, count: n)
    }

    /// A frozen bf16 copy of this tensor, rounded to nearest even (as PyTorch's `.to(torch.bfloat16)`).
    public func roundedToBF16() -> Tensor {
        if bf16Bits != nil { return copy() }
        let out = Tensor(shape: shape, storage: TensorStorage(bf16Count: count))
        DTypeConversion.floatToBF16(pointer, out.bf16Bits!, count)
        return out
    }

    /// Whether bf16 storage holds this tensor exactly (already bf16, or every f32 value has zero low 16 bits).
    public var isExactInBF16: Bool {
        if bf16Bits != nil { return true }
        let bits = UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt32.self)
        for i in 0..<count where bits[i] & 0xFFFF != 0 { return false }
        return true
    }

    /// An f32 copy (for bf16 storage: the exact widening), leaving this tensor's storage as it is.
    public func widened() -> Tensor {
        guard let bits = bf16Bits else { return copy() }
        let out = Tensor(uninitialized: shape)
        BF16Kernels.widen(bits, out.pointer, count)
        return out
    }

    /// Calls `body` with the values as f32 without changing the storage (bf16 is widened into a temporary).
    public func withFloatValues<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        guard let bits = bf16Bits else { return try body(pointer) }
        let tmp = TensorStorage(count: count, zeroed: false)
        BF16Kernels.widen(bits, tmp.pointer, count)
        return try withExtendedLifetime(tmp) { try body(tmp.pointer) }
    }

    /// Whether both tensors have the same shape and the same values bit for bit (bf16 compared as its exact f32).
    public func bitwiseEqual(_ other: Tensor) -> Bool {
        guard shape == other.shape else { return false }
        if let a = bf16Bits, let b = other.bf16Bits { return memcmp(a, b, count * 2) == 0 }
        return withFloatValues { a in other.withFloatValues { b in memcmp(a, b, count * 4) == 0 } }
    }
}
