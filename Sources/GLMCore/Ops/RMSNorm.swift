// RMSNorm, fused: one pass forward (saving 1/rms per row) and one pass backward.

extension Tensor {
    /// y = w ⊙ x / sqrt(mean(x²) + eps) over the last dimension (`weight` is `[H]`).
    public static func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float) -> Tensor {
        let h = x.shape.last!
        precondition(weight.shape == [h], "RMSNorm weight \(weight.shape) does not match hidden size \(h)")
        let rows = x.count / max(h, 1)
        let out = Tensor(uninitialized: x.shape)
        let rstd = Tensor(uninitialized: [rows])
        let xp = x.pointer, wp = weight.pointer, op = out.pointer, rp = rstd.pointer
        Parallel.forEachChunk(rows, costPerItem: h) { range in
            for r in range {
                let xr = xp + r * h, yr = op + r * h
                let ms = Kernels.dot(xr, xr, h) / Float(h)
                let s = 1 / (ms + eps).squareRoot()
                rp[r] = s
                for j in 0..<h { yr[j] = wp[j] * (xr[j] * s) }
            }
        }
        return out.recorded(from: [x, weight]) { g in
            let gp = g.pointer, rp = rstd.pointer  // rstd is kept alive by this closure
            let dx = x.requiresGrad ? Tensor(uninitialized: x.shape) : nil
            let dxp = dx?.pointer
            let workers = min(Parallel.workerCount, max(rows, 1))
            // Per-worker partial sums of dw, added together at the end.
            let dwParts = weight.requiresGrad ? Tensor(zeros: [workers, h]) : nil
            let dwp = dwParts?.pointer
            let chunk = (rows + workers - 1) / workers
            Parallel.forEachChunk(workers, costPerItem: chunk * h * 8) { wr in
                for w in wr {
                    let lo = w * chunk, hi = min(rows, lo + chunk)
                    if lo >= hi { continue }
                    for r in lo..<hi {
                        let xr = xp + r * h, gr = gp + r * h, s = rp[r]
                        if let dwp {
                            let acc = dwp + w * h
                            for j in 0..<h { acc[j] += gr[j] * xr[j] * s }
                        }
                        if let dxp {
                            // dx = s·(w⊙g) − s³·x·mean(x ⊙ w⊙g)
                            var dotv: Float = 0
                            for j in 0..<h { dotv += gr[j] * wp[j] * xr[j] }
                            let c = dotv * s * s * s / Float(h)
                            let dr = dxp + r * h
                            for j in 0..<h { dr[j] = s * gr[j] * wp[j] - c * xr[j] }
                        }
                    }
                }
            }
            if let dx { x.accumulateGrad(dx, fresh: true) }
            if let dwParts {
                let dw = Tensor(zeros: [h])
                for w in 0..<workers { Kernels.addInPlace(dw.pointer, dwParts.pointer + w * h, h) }
                weight.accumulateGrad(dw, fresh: true)
            }
        }
    }
}
