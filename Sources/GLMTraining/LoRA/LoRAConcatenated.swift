// An adapted layer's base product and adapter term as one bf16 product (bf16 products active, frozen base, no
// dropout): y = x·Wᵀ + (s·x·Aᵀ)·Bᵀ = [x | s·down] · [W | B]ᵀ, and in the backward dx = g·W + gDown·A =
// [g | gDown] · [W ; A]. The operands are rounded (or, for a bf16 weight, copied) into one scratch each with the r
// extra columns or rows beside them — the f32 weight was rounded for every product anyway — and the output is
// written once by oneDNN, where the separate rank-r product read the whole [rows, out] (or [rows, in]) output back
// and wrote it again. The values are those of the two products summed in f32 up to summation order, except that
// the scale is applied before s·down is rounded to bf16 (the separate path scales the product of the rounded
// down): the same when s is a power of two, one bf16 rounding apart otherwise.
import GLMCore

enum LoRAConcatenated {
    /// Whether the layer's products can be joined: bf16 products and the bf16 low-rank kernels active, many rows
    /// (few-row products keep their decode kernels), a frozen weight (f32, or bf16 bits).
    static func applies(_ products: LoRAProducts, weight: Tensor) -> Bool {
        products.bf16 && products.rows > BF16Kernels.fewRows && !weight.requiresGrad && weight.shape.count == 2
    }

    /// W's rows into `dst` (leading dimension `ldd`): rounded from f32, or copied bf16 bits.
    static func placeWeight(_ weight: Tensor, into dst: UnsafeMutablePointer<UInt16>, ldd: Int) {
        let (out, inDim) = (weight.shape[0], weight.shape[1])
        if let bits = weight.bf16Bits {
            BF16Operands.copy(rows: out, cols: inDim, bits, ld: inDim, into: dst, ldd: ldd)
        } else {
            BF16Operands.round(rows: out, cols: inDim, weight.pointer, ld: inDim, into: dst, ldd: ldd)
        }
        withExtendedLifetime(weight) {}
    }

    /// down = x·Aᵀ into `down` `[rows, r]` and y = x·Wᵀ + (s·down)·Bᵀ into `y` `[rows, out]` (no bias); x·Aᵀ is made
    /// from x's rounded copy when its rows are whole bf16 pairs. False when oneDNN failed (y untouched).
    static func forward(_ p: LoRAProducts, x: UnsafePointer<Float>, a: UnsafePointer<Float>, scale s: Float,
                        weight: Tensor, b: UnsafePointer<Float>, down: UnsafeMutablePointer<Float>,
                        into y: UnsafeMutablePointer<Float>) -> Bool {
        let (rows, inDim, outDim, r) = (p.rows, p.inDim, p.outDim, p.rank)
        let k = inDim + r
        return BF16Operands.withScratch(rows * k) { xc in
            BF16Operands.withScratch(outDim * k) { wc in
                StepProfile.time(.matrixProducts) { BF16Operands.round(rows: rows, cols: inDim, x, ld: inDim, into: xc, ldd: k) }
                StepProfile.time(.adapterProducts) {
                    if inDim % 2 == 0 && k % 2 == 0 {
                        LowRankMatMul.ntBF16(m: rows, r: r, k: inDim, xBits: xc, ldx: k, w: a, wsk: 1, wsj: inDim, c: down, ldc: r)
                    } else {
                        p.down(x: x, a: a, into: down)
                    }
                }
                return StepProfile.time(.matrixProducts) {
                    let scaled = Tensor(uninitialized: [rows, r])
                    let sp = scaled.pointer
                    for i in 0..<(rows * r) { sp[i] = s * down[i] }
                    BF16Operands.round(rows: rows, cols: r, sp, ld: r, into: xc + inDim, ldd: k)
                    placeWeight(weight, into: wc, ldd: k)
                    BF16Operands.round(rows: outDim, cols: r, b, ld: r, into: wc + inDim, ldd: k)
                    return BF16Operands.product(transB: true, m: rows, n: outDim, k: k, a: xc, lda: k, b: wc, ldb: k,
                                                c: y, ldc: outDim)
                }
            }
        }
    }

    /// gDown = s·g·B `[rows, r]` (from g's rounded copy when its rows are whole bf16 pairs) and dx = g·W + gDown·A
    /// into `dx` `[rows, in]`; nil when oneDNN failed (dx untouched).
    static func inputGradient(_ p: LoRAProducts, g: UnsafePointer<Float>, b: UnsafePointer<Float>, scale s: Float,
                              weight: Tensor, a: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) -> Tensor? {
        let (rows, inDim, outDim, r) = (p.rows, p.inDim, p.outDim, p.rank)
        let k = outDim + r
        return BF16Operands.withScratch(rows * k) { gc in
            BF16Operands.withScratch(k * inDim) { wc -> Tensor? in
                StepProfile.time(.matrixProducts) { BF16Operands.round(rows: rows, cols: outDim, g, ld: outDim, into: gc, ldd: k) }
                let gDown = StepProfile.time(.adapterProducts) { () -> Tensor in
                    guard outDim % 2 == 0 && k % 2 == 0 else { return p.gradDown(g: g, b: b, scale: s) }
                    let t = Tensor(uninitialized: [rows, r])
                    LowRankMatMul.ntBF16(m: rows, r: r, k: outDim, alpha: s, xBits: gc, ldx: k, w: b, wsk: r, wsj: 1,
                                         c: t.pointer, ldc: r)
                    return t
                }
                let ok = StepProfile.time(.matrixProducts) { () -> Bool in
                    BF16Operands.round(rows: rows, cols: r, gDown.pointer, ld: r, into: gc + outDim, ldd: k)
                    placeWeight(weight, into: wc, ldd: inDim)
                    BF16Operands.round(rows: r, cols: inDim, a, ld: inDim, into: wc + outDim * inDim, ldd: inDim)
                    return BF16Operands.product(m: rows, n: inDim, k: k, a: gc, lda: k, b: wc, ldb: inDim, c: dx, ldc: inDim)
                }
                return ok ? gDown : nil
            }
        }
    }
}
