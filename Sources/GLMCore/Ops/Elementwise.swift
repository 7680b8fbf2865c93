// Broadcasting binary ops (+ − × ÷), scalar ops and pointwise functions, each with its backward.
import Foundation

extension Tensor {
    /// Applies `f` elementwise with NumPy broadcasting; fast paths for equal shapes and row broadcasts.
    static func broadcastBinary(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        guard let outShape = Broadcast.shape(a.shape, b.shape) else {
            preconditionFailure("shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let out = Tensor(uninitialized: outShape)
        let ap = a.pointer, bp = b.pointer, op = out.pointer
        if a.shape == b.shape {
            for i in 0..<out.count { op[i] = f(ap[i], bp[i]) }
        } else if a.shape == outShape && Broadcast.isSuffix(b.shape, of: outShape) {
            let n = b.count, rows = out.count / max(n, 1)
            for r in 0..<rows { let base = r * n; for j in 0..<n { op[base + j] = f(ap[base + j], bp[j]) } }
        } else if b.shape == outShape && Broadcast.isSuffix(a.shape, of: outShape) {
            let n = a.count, rows = out.count / max(n, 1)
            for r in 0..<rows { let base = r * n; for j in 0..<n { op[base + j] = f(ap[j], bp[base + j]) } }
        } else {
            let sa = Broadcast.strides(of: a.shape, in: outShape), sb = Broadcast.strides(of: b.shape, in: outShape)
            Broadcast.forEach(outShape, sa, sb) { o, ia, ib in op[o] = f(ap[ia], bp[ib]) }
        }
        return out
    }

    /// a + b (broadcasting).
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, +)
        return out.recorded(from: [a, b]) { g in
            if a.requiresGrad { let r = Broadcast.reduce(g, to: a.shape); a.accumulateGrad(r, fresh: r !== g) }
            if b.requiresGrad { let r = Broadcast.reduce(g, to: b.shape); b.accumulateGrad(r, fresh: r !== g) }
        }
    }

    /// a − b (broadcasting).
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, -)
        return out.recorded(from: [a, b]) { g in
            if a.requiresGrad { let r = Broadcast.reduce(g, to: a.shape); a.accumulateGrad(r, fresh: r !== g) }
            if b.requiresGrad { b.accumulateGrad(Broadcast.reduce(g.scaled(-1, recording: false), to: b.shape), fresh: true) }
        }
    }

    /// a ⊙ b (broadcasting).
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, *)
        return out.recorded(from: [a, b]) { g in
            if a.requiresGrad { a.accumulateGrad(Broadcast.reduce(broadcastBinary(g, b, *), to: a.shape), fresh: true) }
            if b.requiresGrad { b.accumulateGrad(Broadcast.reduce(broadcastBinary(g, a, *), to: b.shape), fresh: true) }
        }
    }

    /// a ÷ b (broadcasting).
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let out = broadcastBinary(a, b, /)
        return out.recorded(from: [a, b]) { [unowned out] g in
            if a.requiresGrad { a.accumulateGrad(Broadcast.reduce(broadcastBinary(g, b, /), to: a.shape), fresh: true) }
            if b.requiresGrad {
                // d(a/b)/db = −a/b² = −out/b
                let t = broadcastBinary(broadcastBinary(g, out, *), b, /)
                b.accumulateGrad(Broadcast.reduce(t.scaled(-1, recording: false), to: b.shape), fresh: true)
            }
        }
    }

    /// Elementwise map with a derivative expressed from input x and output y.
    func pointwise(_ f: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let xp = pointer, op = out.pointer
        for i in 0..<count { op[i] = f(xp[i]) }
        return out.recorded(from: [self]) { [self, unowned out] g in
            let dx = Tensor(uninitialized: self.shape)
            let xp = self.pointer, yp = out.pointer, gp = g.pointer, dp = dx.pointer
            for i in 0..<self.count { dp[i] = gp[i] * derivative(xp[i], yp[i]) }
            self.accumulateGrad(dx, fresh: true)
        }
    }

    /// self × s.
    public func scaled(_ s: Float, recording: Bool = true) -> Tensor {
        let out = Tensor(uninitialized: shape)
        Kernels.scale(pointer, s, out.pointer, count)
        guard recording else { return out }
        return out.recorded(from: [self]) { [self] g in self.accumulateGrad(g.scaled(s, recording: false), fresh: true) }
    }

    /// self + s.
    public func adding(_ s: Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let xp = pointer, op = out.pointer
        for i in 0..<count { op[i] = xp[i] + s }
        return out.recorded(from: [self]) { [self] g in self.accumulateGrad(g) }
    }

    public static prefix func - (a: Tensor) -> Tensor { a.scaled(-1) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.scaled(s) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.scaled(s) }
    public static func + (a: Tensor, s: Float) -> Tensor { a.adding(s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.adding(-s) }

    public func exp() -> Tensor { pointwise({ Foundation.exp($0) }, derivative: { _, y in y }) }
    public func log() -> Tensor { pointwise({ Foundation.log($0) }, derivative: { x, _ in 1 / x }) }
    public func sqrt() -> Tensor { pointwise({ Foundation.sqrt($0) }, derivative: { _, y in 0.5 / y }) }
    public func square() -> Tensor { pointwise({ $0 * $0 }, derivative: { x, _ in 2 * x }) }
    public func tanh() -> Tensor { pointwise({ Foundation.tanh($0) }, derivative: { _, y in 1 - y * y }) }
    public func sigmoid() -> Tensor {
        pointwise({ 1 / (1 + Foundation.exp(-$0)) }, derivative: { _, y in y * (1 - y) })
    }
    /// log σ(x), computed stably (used by DPO-style losses).
    public func logSigmoid() -> Tensor {
        pointwise({ x in x >= 0 ? -Foundation.log1p(Foundation.exp(-x)) : x - Foundation.log1p(Foundation.exp(x)) },
                  derivative: { x, _ in 1 / (1 + Foundation.exp(x)) })
    }
    /// x·σ(x).
    public func silu() -> Tensor {
        pointwise({ $0 / (1 + Foundation.exp(-$0)) }, derivative: { x, _ in
            let s = 1 / (1 + Foundation.exp(-x))
            return s * (1 + x * (1 - s))
        })
    }
}
