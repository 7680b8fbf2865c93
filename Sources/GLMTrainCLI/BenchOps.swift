// `glm-train bench ops`: matmul GFLOP/s, attention and RMSNorm forward+backward, on the bench model's
// shapes, next to PyTorch's times from Scripts/bench_ops.py run in the same invocation.
import ArgumentParser
import Foundation
import GLMCore

struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ops",
        abstract: "Matmul, attention and RMSNorm speed on the bench model's shapes, next to PyTorch.")

    @OptionGroup var comparison: ComparisonOptions
    @Option(help: "Timed repetitions per figure (the median is reported).")
    var repeats = 10
    @Option(help: "Time only this op: matmul, attention or rmsnorm (for profiling; implies --no-compare).")
    var only: String?
    @Option(help: "Matrix products: f32, or bf16 (bf16 operands, f32 accumulation, as training.precision: bf16; PyTorch's linears run under its bf16 autocast).")
    var precision = "f32"

    func validate() throws {
        try BenchModel.validatePrecision(precision)
        try checkBenchCount("--repeats", repeats, 1...10_000)
    }

    // Bench model: vocab 8192, hidden 512, 8 heads / 2 KV heads of 64, intermediate 1536, batch 8 × 256.
    static let batch = 8, seq = 256, hidden = 512, heads = 8, kvHeads = 2, headDim = 64, inter = 1536, vocab = 8192
    static var tokens: Int { batch * seq }
    /// (name, rows, in, out) of each linear layer's product.
    static let linears: [(String, Int, Int)] = [
        ("q_proj", hidden, heads * headDim), ("k_proj", hidden, kvHeads * headDim),
        ("o_proj", heads * headDim, hidden), ("gate_up_proj", hidden, 2 * inter),
        ("down_proj", inter, hidden), ("lm_head", hidden, vocab),
    ]

    func run() throws {
        BenchModel.requestPrecision(precision)
        var gen = SeededGenerator(seed: 1)
        if let only {
            guard ["matmul", "attention", "rmsnorm"].contains(only) else {
                throw GLMError("--only: expected matmul, attention or rmsnorm, got '\(only)'")
            }
            let t = try timeOne(only, generator: &gen)
            print(String(format: "%@: %.3f ms (median of %d)", only, t * 1e3, repeats))
            return
        }
        let products = MixedPrecision.isActive ? "bf16 products (oneDNN \(MixedPrecision.kernelName)), " : ""
        print("glm-train bench ops — \(products)OpenBLAS \(BLAS.coreName) kernels, \(BLAS.threadCount) threads; median of \(repeats)")
        // Peak: a large square sgemm straight through OpenBLAS.
        let n = 2048
        let a = Tensor.randomNormal([n, n], generator: &gen), b = Tensor.randomNormal([n, n], generator: &gen)
        let c = Tensor(zeros: [n, n])
        let tPeak = Stopwatch.median(repeats: max(3, repeats / 2)) {
            BLAS.gemm(m: n, n: n, k: n, a: a.pointer, lda: n, b: b.pointer, ldb: n, c: c.pointer, ldc: n)
        }
        let peak = 2 * Double(n * n * n) / tPeak / 1e9
        print(String(format: "sgemm 2048³ (peak reference): %.1f GFLOP/s", peak))

        var ours: [String: Double] = [:]
        for (name, inF, outF) in Self.linears {
            let x = Tensor.randomNormal([Self.tokens, inF], generator: &gen)
            let w = Tensor.randomNormal([outF, inF], generator: &gen)
            ours["matmul/\(name)"] = Stopwatch.median(repeats: repeats) { _ = Tensor.matmul(x, w, transposeB: true) }
        }
        let (q, k, v, dOut, shape, mask) = attentionInputs(&gen)
        ours["attention"] = Stopwatch.median(repeats: repeats) {
            let o = Tensor.attention(q: q, k: k, v: v, shape: shape, mask: mask)
            o.backward(seed: dOut)
            q.zeroGrad(); k.zeroGrad(); v.zeroGrad()
        }
        ours["rmsnorm"] = try timeOne("rmsnorm", generator: &gen)

        var torch = try comparison.run(script: "Scripts/bench_ops.py",
                                       arguments: ["--repeats", "\(repeats)"] + (MixedPrecision.requested == .bf16 ? ["--bf16"] : []))
        if let tp = torch.removeValue(forKey: "peak_gflops") { print(String(format: "torch.mm 2048³: %.1f GFLOP/s", tp)) }

        print("")
        print(pad("op", 22) + pad("glm-train", 14) + pad("GFLOP/s", 10) + pad("% of peak", 11) + pad("PyTorch", 12) + "speed-up")
        for (name, inF, outF) in Self.linears {
            let key = "matmul/\(name)"
            let flops = 2 * Double(Self.tokens * inF * outF)
            row(key, ours[key]!, torch[key], gflops: flops / ours[key]! / 1e9, peak: peak)
        }
        row("attention fwd+bwd", ours["attention"]!, torch["attention"], gflops: nil, peak: peak)
        row("rmsnorm fwd+bwd", ours["rmsnorm"]!, torch["rmsnorm"], gflops: nil, peak: peak)
        print("\nshapes: tokens \(Self.tokens) (batch 8 × 256), hidden 512, attention 8 q / 2 kv heads × 64, causal")
    }

    private func timeOne(_ op: String, generator gen: inout SeededGenerator) throws -> Double {
        switch op {
        case "matmul":
            let x = Tensor.randomNormal([Self.tokens, Self.hidden], generator: &gen)
            let w = Tensor.randomNormal([2 * Self.inter, Self.hidden], generator: &gen)
            return Stopwatch.median(repeats: repeats) { _ = Tensor.matmul(x, w, transposeB: true) }
        case "attention":
            let (q, k, v, dOut, shape, mask) = attentionInputs(&gen)
            return Stopwatch.median(repeats: repeats) {
                Tensor.attention(q: q, k: k, v: v, shape: shape, mask: mask).backward(seed: dOut)
                q.zeroGrad(); k.zeroGrad(); v.zeroGrad()
            }
        default:
            let x = Tensor.randomNormal([Self.batch, Self.seq, Self.hidden], generator: &gen, requiresGrad: true)
            let w = Tensor.randomNormal([Self.hidden], generator: &gen, requiresGrad: true)
            let dy = Tensor.randomNormal(x.shape, generator: &gen)
            return Stopwatch.median(repeats: repeats) {
                Tensor.rmsNorm(x, weight: w, eps: 1e-5).backward(seed: dy)
                x.zeroGrad(); w.zeroGrad()
            }
        }
    }

    private func attentionInputs(_ gen: inout SeededGenerator) -> (Tensor, Tensor, Tensor, Tensor, AttentionShape, AttentionMask) {
        let q = Tensor.randomNormal([Self.batch, Self.seq, Self.heads * Self.headDim], generator: &gen, requiresGrad: true)
        let k = Tensor.randomNormal([Self.batch, Self.seq, Self.kvHeads * Self.headDim], generator: &gen, requiresGrad: true)
        let v = Tensor.randomNormal([Self.batch, Self.seq, Self.kvHeads * Self.headDim], generator: &gen, requiresGrad: true)
        let dOut = Tensor.randomNormal(q.shape, generator: &gen)
        let shape = AttentionShape(batch: Self.batch, queries: Self.seq, keys: Self.seq, heads: Self.heads,
                                   kvHeads: Self.kvHeads, headDim: Self.headDim)
        return (q, k, v, dOut, shape, .causal(batch: Self.batch, queries: Self.seq))
    }

    private func row(_ name: String, _ t: Double, _ ref: Double?, gflops: Double?, peak: Double) {
        var line = pad(name, 22) + pad(String(format: "%.3f ms", t * 1e3), 14)
        line += pad(gflops.map { String(format: "%.1f", $0) } ?? "", 10)
        line += pad(gflops.map { String(format: "%.0f%%", 100 * $0 / peak) } ?? "", 11)
        if let ref {
            line += pad(String(format: "%.3f ms", ref * 1e3), 12) + String(format: "%.2fx", ref / t)
        }
        print(line)
    }

    private func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }
}
