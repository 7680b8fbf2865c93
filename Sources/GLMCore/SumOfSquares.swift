// Σ x² in double over large arrays (the global gradient norm), in fixed blocks split over the cores: the blocks'
// partial sums are added in block order, so the result does not depend on how the blocks were scheduled.
import CGLMKernels

extension Kernels {
    /// Elements per block (each summed by glmk_sum_squares).
    static let sumBlock = 1 << 16

    /// Σ p[i]², i < n, in double.
    public static func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Double {
        guard n > sumBlock else { return glmk_sum_squares(p, n) }
        let blocks = (n + sumBlock - 1) / sumBlock
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            Parallel.forEachChunk(blocks, costPerItem: sumBlock) { range in
                for b in range {
                    let lo = b * sumBlock
                    o[b] = glmk_sum_squares(p + lo, Swift.min(sumBlock, n - lo))
                }
            }
        }
        return partial.reduce(0, +)
    }
}
