// Broadcasting rules (NumPy's) and the reduction of a gradient back to a broadcast operand's shape.

enum Broadcast {
    /// The broadcast shape of `a` and `b`, or nil when they do not fit.
    static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return out
    }

    /// Element strides of `shape` seen through `outShape` (0 on broadcast dimensions).
    static func strides(of shape: [Int], in outShape: [Int]) -> [Int] {
        let r = outShape.count
        var strides = [Int](repeating: 0, count: r)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            let oi = i + r - shape.count
            strides[oi] = shape[i] == 1 ? 0 : s
            s *= shape[i]
        }
        return strides
    }

    /// True when `small` equals the trailing dimensions of `big` (a row-broadcast: bias, norm weight).
    static func isSuffix(_ small: [Int], of big: [Int]) -> Bool {
        small.count <= big.count && Array(big.suffix(small.count)) == small
    }

    /// Visits every element of `outShape`, passing the flat offsets into the two operands.
    static func forEach(_ outShape: [Int], _ sa: [Int], _ sb: [Int], _ body: (Int, Int, Int) -> Void) {
        let n = Tensor.elementCount(outShape)
        if n == 0 { return }
        let r = outShape.count
        var idx = [Int](repeating: 0, count: r)
        var oa = 0, ob = 0
        for o in 0..<n {
            body(o, oa, ob)
            var d = r - 1
            while d >= 0 {
                idx[d] += 1; oa += sa[d]; ob += sb[d]
                if idx[d] < outShape[d] { break }
                oa -= sa[d] * idx[d]; ob -= sb[d] * idx[d]; idx[d] = 0
                d -= 1
            }
        }
    }

    /// Sums `g` (of a broadcast output shape) down to `shape`.
    static func reduce(_ g: Tensor, to shape: [Int]) -> Tensor {
        if g.shape == shape { return g }
        let out = Tensor(zeros: shape)
        let n = out.count
        if isSuffix(shape, of: g.shape) {
            let rows = g.count / max(n, 1)
            let gp = g.pointer, op = out.pointer
            for r in 0..<rows { Kernels.addInPlace(op, gp + r * n, n) }
            return out
        }
        let so = strides(of: shape, in: g.shape)
        let gp = g.pointer, op = out.pointer
        forEach(g.shape, so, so) { o, oa, _ in op[oa] += gp[o] }
        return out
    }
}
