// Contiguous Float32 buffers owned by tensors, recycled through a size-keyed pool so that the large
// activation and gradient buffers of one training step are reused by the next without page faults.
import Foundation

/// A contiguous, 64-byte aligned block of `Float` values. Several tensors may share one storage
/// (reshape views); nothing here is reference counted per element.
public final class TensorStorage {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// Allocates `count` floats, zero-filled when `zeroed` is true.
    public init(count: Int, zeroed: Bool = true) {
        precondition(count >= 0, "negative storage size")
        self.count = count
        pointer = StoragePool.shared.take(count)
        if zeroed { pointer.update(repeating: 0, count: count) }
    }

    deinit { StoragePool.shared.give(pointer, count) }

    @inlinable public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }
}

/// Keeps freed buffers of 64 KiB and more, up to a byte budget, and hands them out again. Buffers are allocated in
/// size classes (8 per power of two, so at most 12.5% is unused), so that batches whose length changes from step
/// to step (dynamic padding) reuse each other's buffers instead of filling the pool with one-off sizes.
/// Smaller buffers go straight to the system allocator.
public final class StoragePool: @unchecked Sendable {
    public static let shared = StoragePool()
    /// Largest number of bytes kept idle in the pool.
    public var budgetBytes = 4 << 30
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var idleBytes = 0
    private let lock = NSLock()
    private let minimumPooled = 16_384  // elements (64 KiB)

    /// The element count actually allocated for a request of `count`.
    @inline(__always) func sizeClass(_ count: Int) -> Int {
        guard count >= minimumPooled else { return count }
        let step = (1 << (Int.bitWidth - 1 - count.leadingZeroBitCount)) >> 3
        return (count + step - 1) / step * step
    }

    func take(_ request: Int) -> UnsafeMutablePointer<Float> {
        let count = sizeClass(request)
        if count >= minimumPooled {
            lock.lock()
            if let p = free[count]?.popLast() {
                idleBytes -= count * 4
                lock.unlock()
                return p
            }
            lock.unlock()
        }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func give(_ p: UnsafeMutablePointer<Float>, _ request: Int) {
        let count = sizeClass(request)
        if count >= minimumPooled {
            lock.lock()
            if idleBytes + count * 4 <= budgetBytes {
                free[count, default: []].append(p)
                idleBytes += count * 4
                lock.unlock()
                return
            }
            lock.unlock()
        }
        UnsafeMutableRawPointer(p).deallocate()
    }

    /// Returns every idle buffer to the system.
    public func drain() {
        lock.lock()
        for (_, list) in free { for p in list { UnsafeMutableRawPointer(p).deallocate() } }
        free = [:]
        idleBytes = 0
        lock.unlock()
    }

    /// Bytes currently idle in the pool.
    public var idle: Int { lock.lock(); defer { lock.unlock() }; return idleBytes }
}
