// bf16 and f16 conversions: exact widening, round-to-nearest-even narrowing, special values.
import XCTest
import GLMCore

final class DTypeConversionTests: XCTestCase {
    func narrowBF16(_ x: Float) -> UInt16 { DTypeConversion.bf16Bits(x) }

    func testBF16RoundsToNearestEven() {
        XCTAssertEqual(narrowBF16(1.0), 0x3F80)
        XCTAssertEqual(narrowBF16(-2.0), 0xC000)
        // 1 + 2^-8 is exactly half-way between bf16 1.0 and 1.0078125: ties go to the even mantissa (1.0).
        XCTAssertEqual(narrowBF16(1 + 0x1p-8), 0x3F80)
        // 1.0078125 + 2^-8 is half-way between 0x3F81 and 0x3F82: goes to even 0x3F82.
        XCTAssertEqual(narrowBF16(1.0078125 + 0x1p-8), 0x3F82)
        XCTAssertEqual(narrowBF16(1 + 0x1p-7 * 0.75), 0x3F81)
        XCTAssertEqual(narrowBF16(.infinity), 0x7F80)
        XCTAssertTrue(Float(bitPattern: UInt32(narrowBF16(.nan)) << 16).isNaN)
    }

    func testRoundTripsAreExactOnRepresentableValues() {
        let values: [Float] = [0, -0.0, 1, -1.5, 3.140625, 65504, 6.1035156e-05, -1025]
        var bits = [UInt16](repeating: 0, count: values.count)
        var back = [Float](repeating: 0, count: values.count)
        DTypeConversion.floatToF16(values, &bits, values.count)
        DTypeConversion.f16ToFloat(bits, &back, values.count)
        XCTAssertEqual(back, values)
        let bfValues: [Float] = [0, 1, -1.5, 3.140625, 1e30, -2.5e-20]
        let bfExact = bfValues.map { Float(bitPattern: UInt32(narrowBF16($0)) << 16) }
        var bfBits = [UInt16](repeating: 0, count: bfExact.count)
        var bfBack = [Float](repeating: 0, count: bfExact.count)
        DTypeConversion.floatToBF16(bfExact, &bfBits, bfExact.count)
        DTypeConversion.bf16ToFloat(bfBits, &bfBack, bfExact.count)
        XCTAssertEqual(bfBack, bfExact)
        XCTAssertEqual(bfExact[0...3], [0, 1, -1.5, 3.140625])
    }

    func testF16OverflowAndSubnormals() {
        var bits = [UInt16](repeating: 0, count: 2)
        DTypeConversion.floatToF16([70000, 5.9604645e-08], &bits, 2)
        XCTAssertEqual(bits[0], 0x7C00)
        XCTAssertEqual(bits[1], 0x0001)
    }

    func testFastExpAccuracy() {
        var worst: Float = 0
        var x: Float = -80
        while x < 80 {
            let rel = abs(FastExp.exp(x) - Foundation.exp(x)) / Foundation.exp(x)
            worst = max(worst, rel)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 4e-7)
    }
}
