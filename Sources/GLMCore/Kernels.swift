// Elementary loops over raw Float pointers, shared by the ops (vectorised by the compiler in release builds).

/// Small memory-bound kernels on raw pointers. Hot loops take their pointers once, outside the loop.
public enum Kernels {
    @inlinable public static func add(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                      _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { out[i] = a[i] + b[i] }
    }
    @inlinable public static func addInPlace(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
        for i in 0..<n { a[i] += b[i] }
    }
    @inlinable public static func scale(_ a: UnsafePointer<Float>, _ s: Float,
                                        _ out: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { out[i] = a[i] * s }
    }
    /// Dot product with SIMD accumulators.
    @inlinable public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
                 * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }
    /// Maximum with SIMD lanes (−inf for n = 0).
    @inlinable public static func max(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>(repeating: -.infinity)
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            acc = acc.replacing(with: v, where: v .> acc)
            i += 8
        }
        var m = acc.max()
        while i < n { if a[i] > m { m = a[i] }; i += 1 }
        return m
    }
}
