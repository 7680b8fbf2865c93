// Σ x² in double (the global gradient norm): equal to a plain double sum up to summation order, for lengths that
// are not multiples of the vector width or the block size, and the same on every call (fixed block order).
import XCTest
import GLMCore
import TestSupport

final class SumOfSquaresTests: XCTestCase {
    func testMatchesAPlainDoubleSum() {
        var gen = SeededGenerator(seed: 5)
        for n in [0, 1, 7, 15, 16, 17, 1000, 65_536, 65_537, 3 * 65_536 + 5] {
            let x = (0..<n).map { _ in Float(gen.nextNormal()) * 3 }
            let plain = x.reduce(0.0) { $0 + Double($1) * Double($1) }
            let ours = x.withUnsafeBufferPointer { Kernels.sumOfSquares($0.baseAddress!, n) }
            XCTAssertEqual(ours, plain, accuracy: 1e-12 * max(1, plain), "n \(n)")
            XCTAssertEqual(ours, x.withUnsafeBufferPointer { Kernels.sumOfSquares($0.baseAddress!, n) }, "n \(n): not deterministic")
        }
    }
}
