// Cross-entropy fused with log-softmax; ignores masked labels; never holds more than one chunk of
// [tokens, vocab] logits beyond what the caller passed in.
import Foundation

/// The label value that `crossEntropy` skips (PyTorch's default `ignore_index`).
public let ignoreLabel: Int32 = -100

enum SoftmaxRows {
    /// log Σ exp over a row.
    @inline(__always)
    static func logSumExp(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let m = Kernels.max(x, n)
        return m + Foundation.log(FastExp.sumExpShifted(x, n, shift: m))
    }

    /// Overwrites a row of logits with softmax − onehot(target) (times 1) and returns the row's cross-entropy
    /// lse − x[target]: one exp per logit (e^(x − max) kept and divided by its sum), where `logSumExp` then
    /// `gradient` take two.
    @inline(__always)
    static func lossAndGradient(_ x: UnsafeMutablePointer<Float>, _ n: Int, target: Int) -> Float {
        let m = Kernels.max(x, n), picked = x[target]
        let sum = FastExp.expShiftedInPlace(x, n, shift: m)
        let lse = m + Foundation.log(sum)
        Kernels.scale(x, 1 / sum, x, n)
        x[target] -= 1
        return lse - picked
    }

    /// Overwrites a row of logits with softmax − onehot(target), times `scale`.
    @inline(__always)
    static func gradient(_ x: UnsafeMutablePointer<Float>, _ n: Int, lse: Float, target: Int, scale: Float) {
        _ = FastExp.expShiftedInPlace(x, n, shift: lse)
        if scale != 1 { for j in 0..<n { x[j] *= scale } }
        x[target] -= scale
    }
}

extension Tensor {
    static func checkTargets(_ targets: [Int32], rows: Int, vocab: Int) {
        precondition(targets.count == rows, "\(targets.count) targets for \(rows) rows of logits")
        for t in targets {
            precondition(t == ignoreLabel || (t >= 0 && Int(t) < vocab), "target \(t) outside vocabulary of \(vocab)")
        }
    }

    /// Mean cross-entropy of `logits` (`[..., V]`) against `targets` (one per row); rows whose target is
    /// `ignoreLabel` count neither in the sum nor in the mean. A batch with no counted rows gives 0.
    public static func crossEntropy(logits: Tensor, targets: [Int32]) -> Tensor {
        let vocab = logits.shape.last!, rows = logits.count / vocab
        checkTargets(targets, rows: rows, vocab: vocab)
        var lse = [Float](repeating: 0, count: rows)
        let lp = logits.pointer
        lse.withUnsafeMutableBufferPointer { lb in
            let l = lb.baseAddress!
            Parallel.forEachChunk(rows, costPerItem: vocab * 4) { range in
                for r in range where targets[r] != ignoreLabel { l[r] = SoftmaxRows.logSumExp(lp + r * vocab, vocab) }
            }
        }
        var total = 0.0, counted = 0
        for r in 0..<rows where targets[r] != ignoreLabel {
            total += Double(lse[r] - lp[r * vocab + Int(targets[r])])
            counted += 1
        }
        let out = Tensor(scalar: counted == 0 ? 0 : Float(total / Double(counted)))
        return out.recorded(from: [logits]) { g in
            let dx = Tensor(uninitialized: logits.shape)
            let dp = dx.pointer, scale = g.item / Float(max(counted, 1))
            Parallel.forEachChunk(rows, costPerItem: vocab * 4) { range in
                for r in range {
                    let row = dp + r * vocab
                    if targets[r] == ignoreLabel { row.update(repeating: 0, count: vocab); continue }
                    row.update(from: lp + r * vocab, count: vocab)
                    SoftmaxRows.gradient(row, vocab, lse: lse[r], target: Int(targets[r]), scale: scale)
                }
            }
            logits.accumulateGrad(dx, fresh: true)
        }
    }

    /// The output projection fused with the cross-entropy: `mean CE(hidden · weightᵀ, targets)` where
    /// `hidden` is `[..., H]` and `weight` is `[V, H]`. The logits are made `chunkRows` rows at a time and
    /// never all at once; when recording, the gradients are computed in the same pass (the loss is a
    /// scalar, so backward only scales them), which avoids recomputing the logits.
    public static func linearCrossEntropy(hidden: Tensor, weight: Tensor, targets: [Int32], chunkRows: Int = 512) -> Tensor {
        let h = hidden.shape.last!, vocab = weight.shape[0]
        precondition(weight.shape == [vocab, h], "output weight \(weight.shape) does not match hidden size \(h)")
        let rows = hidden.count / h
        checkTargets(targets, rows: rows, vocab: vocab)
        let counted = targets.reduce(0) { $0 + ($1 == ignoreLabel ? 0 : 1) }
        let recording = needsTape([hidden, weight])
        let dHidden = recording && hidden.requiresGrad ? Tensor(zeros: hidden.shape) : nil
        let dWeight = recording && weight.requiresGrad ? Tensor(zeros: weight.shape) : nil
        let chunk = max(1, min(chunkRows, rows))
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: chunk * vocab)
        defer { logits.deallocate() }
        var total = 0.0
        // A frozen bf16 weight is read through the bf16 kernels (widened panel by panel); it gets no gradient.
        // Under bf16 products an f32 weight is rounded once for all chunks' logits and input gradients (each product
        // rounded it again; it does not change during the call, trainable or not).
        let roundedOnce = MixedPrecision.isActive && weight.bf16Bits == nil && rows > chunk ? weight.roundedToBF16() : nil
        let wbits = roundedOnce?.bf16Bits ?? (weight.requiresGrad ? nil : weight.bf16Bits)
        let hp = hidden.pointer, wp = weight.bf16Bits == nil ? weight.pointer : nil
        var r0 = 0
        while r0 < rows {
            let n = min(chunk, rows - r0)
            if let wbits {  // rounded from f32: bf16 at any row count, as MixedPrecision.gemm on the f32 weight
                BF16Kernels.product(transB: true, m: n, n: vocab, k: h, a: hp + r0 * h, lda: h, b: wbits, ldb: h, c: logits, ldc: vocab,
                                    fewRowKernels: roundedOnce == nil)
            } else {
                MixedPrecision.gemm(transB: true, m: n, n: vocab, k: h, a: hp + r0 * h, lda: h, b: wp!, ldb: h, c: logits, ldc: vocab)
            }
            var partial = [Double](repeating: 0, count: n)
            partial.withUnsafeMutableBufferPointer { pb in
                let pp = pb.baseAddress!
                Parallel.forEachChunk(n, costPerItem: vocab * 6) { range in
                    for i in range {
                        let t = targets[r0 + i]
                        let row = logits + i * vocab
                        if t == ignoreLabel {
                            if recording { row.update(repeating: 0, count: vocab) }
                            continue
                        }
                        if recording {
                            pp[i] = Double(SoftmaxRows.lossAndGradient(row, vocab, target: Int(t)))
                        } else {
                            pp[i] = Double(SoftmaxRows.logSumExp(row, vocab) - row[Int(t)])
                        }
                    }
                }
            }
            total += partial.reduce(0, +)
            if let dHidden {
                if let wbits {
                    BF16Kernels.product(transB: false, m: n, n: h, k: vocab, a: logits, lda: vocab, b: wbits, ldb: h,
                                        c: dHidden.pointer + r0 * h, ldc: h, fewRowKernels: roundedOnce == nil)
                } else {
                    MixedPrecision.gemm(m: n, n: h, k: vocab, a: logits, lda: vocab, b: wp!, ldb: h, c: dHidden.pointer + r0 * h, ldc: h)
                }
            }
            if let dWeight {
                MixedPrecision.gemm(transA: true, m: vocab, n: h, k: n, a: logits, lda: vocab, b: hp + r0 * h, ldb: h,
                          beta: 1, c: dWeight.pointer, ldc: h)
            }
            r0 += n
        }
        withExtendedLifetime(roundedOnce) {}
        let out = Tensor(scalar: counted == 0 ? 0 : Float(total / Double(counted)))
        return out.recorded(from: [hidden, weight]) { g in
            let scale = g.item / Float(max(counted, 1))
            if let dHidden { hidden.accumulateGrad(dHidden.scaled(scale, recording: false), fresh: true) }
            if let dWeight { weight.accumulateGrad(dWeight.scaled(scale, recording: false), fresh: true) }
        }
    }
}
