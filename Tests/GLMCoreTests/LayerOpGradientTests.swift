// Gradient checks and values of embedding, RMSNorm, SwiGLU and rotary embedding.
import XCTest
import GLMCore
import TestSupport

final class LayerOpGradientTests: XCTestCase {
    func testEmbeddingScatterAddsRepeatedIds() {
        let table = GradientCheck.inputs([[6, 4]])
        let ids: [Int32] = [1, 5, 1, 0, 1, 3]
        XCTAssertEqual(GradientCheck.run(table) { Tensor.embedding($0[0], ids: ids, idsShape: [2, 3]) }, [])
        let out = Tensor.embedding(table[0], ids: ids, idsShape: [2, 3])
        XCTAssertEqual(out.shape, [2, 3, 4])
        XCTAssertEqual(Array(out.scalars[4..<8]), Array(table[0].scalars[20..<24]))
        out.sum().backward()
        XCTAssertEqual(table[0].grad!.scalars[4], 3, "row 1 is used three times")
        XCTAssertEqual(table[0].grad!.scalars[8], 0, "row 2 is never used")
    }

    func testRMSNorm() {
        for shape in [[3, 8], [2, 5, 13], [1, 1]] {
            let ins = GradientCheck.inputs([shape, [shape.last!]])
            XCTAssertEqual(GradientCheck.run(ins) { Tensor.rmsNorm($0[0], weight: $0[1], eps: 1e-5) }, [], "\(shape)")
        }
        let x = Tensor([3, 4], shape: [1, 2]), w = Tensor([1, 2], shape: [2])
        let y = Tensor.rmsNorm(x, weight: w, eps: 0).scalars
        let rms = (12.5 as Float).squareRoot()
        XCTAssertEqual(y[0], 3 / rms, accuracy: 1e-6)
        XCTAssertEqual(y[1], 8 / rms, accuracy: 1e-6)
    }

    func testRMSNormLargeEnoughToRunInParallel() {
        let ins = GradientCheck.inputs([[64, 600], [600]])
        XCTAssertEqual(GradientCheck.run(ins, samplesPerInput: 20) { Tensor.rmsNorm($0[0], weight: $0[1], eps: 1e-6) }, [])
    }

    func testSwiGLUOnGateFirstLayout() {
        for shape in [[3, 8], [2, 3, 14], [1, 2]] {
            let ins = GradientCheck.inputs([shape])
            XCTAssertEqual(GradientCheck.run(ins) { Tensor.swiglu($0[0]) }, [], "\(shape)")
        }
        let gu = Tensor([1, -2, 3, 4], shape: [1, 4])  // gate [1, -2], up [3, 4]
        let y = Tensor.swiglu(gu).scalars
        XCTAssertEqual(y[0], 1 / (1 + Foundation.exp(-1)) * 3, accuracy: 1e-6)
        XCTAssertEqual(y[1], -2 / (1 + Foundation.exp(2)) * 4, accuracy: 1e-6)
        // The fused op equals its composite silu(gate) ⊙ up, forward and backward.
        let a = GradientCheck.inputs([[4, 6]])[0], b = a.copy()
        b.setRequiresGrad(true)
        let fused = Tensor.swiglu(a)
        let composite = b.slice(axis: 1, start: 0, length: 3).silu() * b.slice(axis: 1, start: 3, length: 3)
        XCTAssertLessThan(Fixtures.relativeError(fused, composite), 1e-6)
        fused.sum().backward(); composite.sum().backward()
        XCTAssertLessThan(Fixtures.relativeError(a.grad!, b.grad!), 1e-6)
    }

    /// With AVX-512 the SwiGLU rows run on SwiGLU.c: the same values bit for bit as the Swift loops (C kernels off),
    /// forward and backward, for both layouts, with vector tails and inputs past exp's clamps, ±0 and NaN (NaN where
    /// the Swift loops give NaN; its sign bit differs between debug and release builds of the Swift code).
    func testSwiGLUKernelEqualsSwiftLoopsBitForBit() {
        let saved = BF16Kernels.useCKernels
        defer { BF16Kernels.useCKernels = saved }
        var gen = SeededGenerator(seed: 41)
        for width in [1, 15, 16, 17, 40] {
            let rows = 300  // big enough to split over the cores
            var values = (0..<(rows * 2 * width)).map { _ in Float(gen.nextUniform() * 40 - 20) }
            values[0] = 95; values[1 % values.count] = -120; values[2 % values.count] = -0.0
            values[3 % values.count] = .nan; values[4 % values.count] = 0
            var results: [[UInt32]] = []
            for useC in [false, true] {
                BF16Kernels.useCKernels = useC
                let fused = Tensor(values, shape: [rows, 2 * width], requiresGrad: true)
                let y = Tensor.swiglu(fused)
                (y * Tensor(values.prefix(rows * width).map { $0 / 7 }, shape: [rows, width])).sum().backward()
                let gate = Tensor(Array(values.prefix(rows * width)), shape: [rows, width], requiresGrad: true)
                let up = Tensor(Array(values.suffix(rows * width)), shape: [rows, width], requiresGrad: true)
                let y2 = Tensor.swiglu(gate: gate, up: up)
                (y2 * 0.5).sum().backward()
                // A NaN's sign bit is not part of the result (the compiler may produce either sign): NaN is compared as NaN.
                results.append((y.scalars + fused.grad!.scalars + y2.scalars + gate.grad!.scalars + up.grad!.scalars)
                    .map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern })
            }
            if let i = results[0].indices.first(where: { results[0][$0] != results[1][$0] }) {
                XCTFail("width \(width): element \(i) of the outputs and gradients: Swift \(Float(bitPattern: results[0][i])) (\(results[0][i])), C \(Float(bitPattern: results[1][i])) (\(results[1][i]))")
            }
        }
    }

    func testRotaryPartialInterleaved() {
        let config = RotaryConfig(headDim: 8, rotaryDim: 4, theta: 10000)
        let positions: [Int32] = [0, 1, 2, 7, 3, 0]
        let ins = GradientCheck.inputs([[2, 3, 3 * 8]])
        XCTAssertEqual(GradientCheck.run(ins) { Tensor.rotary($0[0], config: config, positions: positions) }, [])
        // Values: pair 0 turns by p, pair 1 by p·10000^(−1/2); dims 4..7 pass through.
        let x = Tensor((0..<8).map { Float($0 + 1) }, shape: [1, 1, 8])
        let y = Tensor.rotary(x, config: config, positions: [2]).scalars
        let a0: Float = 2, a1: Float = 2 / 100
        XCTAssertEqual(y[0], 1 * Foundation.cos(a0) - 2 * Foundation.sin(a0), accuracy: 1e-6)
        XCTAssertEqual(y[1], 2 * Foundation.cos(a0) + 1 * Foundation.sin(a0), accuracy: 1e-6)
        XCTAssertEqual(y[2], 3 * Foundation.cos(a1) - 4 * Foundation.sin(a1), accuracy: 1e-6)
        XCTAssertEqual(Array(y[4...]), [5, 6, 7, 8])
    }

    func testRotaryOddWidthTurnsOneMoreDimAsTransformers() {
        // d = 3 (int(head_dim · partial_rotary_factor) odd): frequencies θ^(−0/3), θ^(−2/3); dims 0..3 turn
        let config = RotaryConfig.partial(headDim: 8, dims: 3, theta: 10000)
        XCTAssertEqual(config.rotaryDim, 4)
        XCTAssertEqual(config.frequencyDim, 3)
        let ins = GradientCheck.inputs([[2, 3, 3 * 8]])
        XCTAssertEqual(GradientCheck.run(ins) { Tensor.rotary($0[0], config: config, positions: [0, 1, 2, 7, 3, 0]) }, [])
        XCTAssertEqual(GradientCheck.run(ins) { Tensor.rotaryHalfSplit($0[0], config: config, positions: [0, 1, 2, 7, 3, 0]) }, [])
        let x = Tensor((0..<8).map { Float($0 + 1) }, shape: [1, 1, 8])
        let y = Tensor.rotary(x, config: config, positions: [2]).scalars
        let a1: Float = 2 / Foundation.pow(10000, 2.0 / 3)
        XCTAssertEqual(y[0], 1 * Foundation.cos(2) - 2 * Foundation.sin(2), accuracy: 1e-6)
        XCTAssertEqual(y[2], 3 * Foundation.cos(a1) - 4 * Foundation.sin(a1), accuracy: 1e-6)
        XCTAssertEqual(y[3], 4 * Foundation.cos(a1) + 3 * Foundation.sin(a1), accuracy: 1e-6)
        XCTAssertEqual(Array(y[4...]), [5, 6, 7, 8])
        // even widths are unchanged: partial(dims: 4) is the plain config
        XCTAssertEqual(RotaryConfig.partial(headDim: 8, dims: 4, theta: 10000), RotaryConfig(headDim: 8, rotaryDim: 4, theta: 10000))
    }

    func testRotaryTwoDimensionalWithBlockPositions() {
        let config = RotaryConfig(headDim: 8, rotaryDim: 8, theta: 10000, twoDimensional: true)
        let ins = GradientCheck.inputs([[1, 4, 2 * 8]])
        XCTAssertEqual(GradientCheck.run(ins) {
            Tensor.rotary($0[0], config: config, positions: [0, 1, 1, 1], blockPositions: [0, 0, 1, 2])
        }, [])
        // Block position 0 leaves the second half of the rotated dims untouched.
        let x = Tensor((0..<8).map { Float($0) }, shape: [1, 1, 8])
        let y = Tensor.rotary(x, config: config, positions: [3], blockPositions: [0]).scalars
        XCTAssertEqual(Array(y[4...]), [4, 5, 6, 7])
        XCTAssertNotEqual(y[0], 0, accuracy: 1e-3)
    }
}
