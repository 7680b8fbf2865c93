// Sum, mean and max reductions (over one axis or everything), with their backward.

extension Tensor {
    /// Splits the shape around `axis` into (outer, size, inner) element counts.
    func axisSplit(_ axis: Int) -> (outer: Int, size: Int, inner: Int) {
        let a = normalizedAxis(axis)
        return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *))
    }

    func reducedShape(_ axis: Int, keepDims: Bool) -> [Int] {
        var s = shape
        let a = normalizedAxis(axis)
        if keepDims { s[a] = 1 } else { s.remove(at: a) }
        return s
    }

    /// Sum of all elements (a scalar tensor), accumulated in Double.
    public func sum() -> Tensor {
        var acc = 0.0
        let p = pointer
        for i in 0..<count { acc += Double(p[i]) }
        let out = Tensor(scalar: Float(acc))
        return out.recorded(from: [self]) { [self] g in
            self.accumulateGrad(Tensor(repeating: g.item, shape: self.shape), fresh: true)
        }
    }

    /// Mean of all elements.
    public func mean() -> Tensor { sum().scaled(1 / Float(max(count, 1))) }

    /// Sum over `axis`.
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, size, inner) = axisSplit(axis)
        let out = Tensor(zeros: reducedShape(axis, keepDims: keepDims))
        let xp = pointer, op = out.pointer
        for o in 0..<outer {
            for s in 0..<size { Kernels.addInPlace(op + o * inner, xp + (o * size + s) * inner, inner) }
        }
        return out.recorded(from: [self]) { [self] g in
            let dx = Tensor(uninitialized: self.shape)
            let gp = g.pointer, dp = dx.pointer
            for o in 0..<outer {
                for s in 0..<size { (dp + (o * size + s) * inner).update(from: gp + o * inner, count: inner) }
            }
            self.accumulateGrad(dx, fresh: true)
        }
    }

    /// Mean over `axis`.
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor {
        sum(axis: axis, keepDims: keepDims).scaled(1 / Float(max(dim(axis), 1)))
    }

    /// Maximum over `axis`; the gradient goes to the first maximal element.
    public func amax(axis: Int, keepDims: Bool = false) -> Tensor {
        let (outer, size, inner) = axisSplit(axis)
        precondition(size > 0, "max over an empty axis")
        let out = Tensor(uninitialized: reducedShape(axis, keepDims: keepDims))
        var argmax = [Int32](repeating: 0, count: outer * inner)
        let xp = pointer, op = out.pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = xp[o * size * inner + i], arg = 0
                for s in 1..<size {
                    let v = xp[(o * size + s) * inner + i]
                    if v > best { best = v; arg = s }
                }
                op[o * inner + i] = best
                argmax[o * inner + i] = Int32(arg)
            }
        }
        return out.recorded(from: [self]) { [self] g in
            let dx = Tensor(zeros: self.shape)
            let gp = g.pointer, dp = dx.pointer
            for o in 0..<outer {
                for i in 0..<inner { dp[(o * size + Int(argmax[o * inner + i])) * inner + i] += gp[o * inner + i] }
            }
            self.accumulateGrad(dx, fresh: true)
        }
    }
}
