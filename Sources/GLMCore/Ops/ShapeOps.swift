// Reshape (a view), permute/transpose, slice and concat along an axis, each with its backward.

extension Tensor {
    /// Same elements, new shape (shares storage). One dimension may be −1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            s[i] = known == 0 ? 0 : count / known
        }
        precondition(Tensor.elementCount(s) == count, "cannot reshape \(shape) to \(newShape)")
        let out = Tensor(shape: s, storage: storage)
        return out.recorded(from: [self]) { [self] g in self.accumulateGrad(Tensor(shape: self.shape, storage: g.storage)) }
    }

    /// Reorders dimensions: output dimension i is input dimension `order[i]` (copies).
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "bad permutation \(order) for rank \(rank)")
        let outShape = order.map { shape[$0] }
        let out = Tensor(uninitialized: outShape)
        Tensor.permuteCopy(from: self, order: order, into: out)
        return out.recorded(from: [self]) { [self] g in
            var inverse = [Int](repeating: 0, count: order.count)
            for (i, o) in order.enumerated() { inverse[o] = i }
            let dx = Tensor(uninitialized: self.shape)
            Tensor.permuteCopy(from: g, order: inverse, into: dx)
            self.accumulateGrad(dx, fresh: true)
        }
    }

    static func permuteCopy(from x: Tensor, order: [Int], into out: Tensor) {
        var inStrides = [Int](repeating: 1, count: x.rank)
        for i in stride(from: x.rank - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * x.shape[i + 1] }
        let permutedStrides = order.map { inStrides[$0] }
        let xp = x.pointer, op = out.pointer
        Broadcast.forEach(out.shape, permutedStrides, permutedStrides) { o, i, _ in op[o] = xp[i] }
    }

    /// Swaps two dimensions (copies).
    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(normalizedAxis(a), normalizedAxis(b))
        return permuted(order)
    }

    /// Elements `start ..< start+length` along `axis` (copies).
    public func slice(axis: Int, start: Int, length: Int) -> Tensor {
        let (outer, size, inner) = axisSplit(axis)
        precondition(start >= 0 && length >= 0 && start + length <= size,
                     "slice \(start)..<\(start + length) out of range for axis of size \(size)")
        var outShape = shape
        outShape[normalizedAxis(axis)] = length
        let out = Tensor(uninitialized: outShape)
        let xp = pointer, op = out.pointer
        for o in 0..<outer {
            (op + o * length * inner).update(from: xp + (o * size + start) * inner, count: length * inner)
        }
        return out.recorded(from: [self]) { [self] g in
            let dx = Tensor(zeros: self.shape)
            let gp = g.pointer, dp = dx.pointer
            for o in 0..<outer {
                (dp + (o * size + start) * inner).update(from: gp + o * length * inner, count: length * inner)
            }
            self.accumulateGrad(dx, fresh: true)
        }
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concat(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concat of nothing")
        let a = parts[0].normalizedAxis(axis)
        for p in parts {
            precondition(p.rank == parts[0].rank && (0..<p.rank).allSatisfy { $0 == a || p.shape[$0] == parts[0].shape[$0] },
                         "concat: shape \(p.shape) does not fit \(parts[0].shape) along axis \(a)")
        }
        let sizes = parts.map { $0.shape[a] }
        var outShape = parts[0].shape
        outShape[a] = sizes.reduce(0, +)
        let outer = outShape[..<a].reduce(1, *), inner = outShape[(a + 1)...].reduce(1, *)
        let total = outShape[a]
        let out = Tensor(uninitialized: outShape)
        let op = out.pointer
        var offset = 0
        for (p, size) in zip(parts, sizes) {
            let pp = p.pointer
            for o in 0..<outer {
                (op + (o * total + offset) * inner).update(from: pp + o * size * inner, count: size * inner)
            }
            offset += size
        }
        return out.recorded(from: parts) { g in
            var offset = 0
            let gp = g.pointer
            for (p, size) in zip(parts, sizes) {
                if p.requiresGrad {
                    let dx = Tensor(uninitialized: p.shape)
                    let dp = dx.pointer
                    for o in 0..<outer {
                        (dp + o * size * inner).update(from: gp + (o * total + offset) * inner, count: size * inner)
                    }
                    p.accumulateGrad(dx, fresh: true)
                }
                offset += size
            }
        }
    }
}
