// Work splitting across the machine's cores, without fighting OpenBLAS's own threads.
import Foundation
import Dispatch
import COpenBLAS

/// Runs independent chunks of a loop on the available cores.
public enum Parallel {
    /// Number of workers used by our own kernels: the number of online cores, or `GLMTRAIN_THREADS` when set (a
    /// process that shares the machine with others, such as the two sides of an RL run).
    public static let workerCount: Int = {
        if let v = ProcessInfo.processInfo.environment["GLMTRAIN_THREADS"].flatMap(Int.init), v >= 1 { return min(v, 1024) }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// Calls `body(range)` for disjoint ranges covering `0..<n`, in parallel when the work is large
    /// enough (`n * costPerItem` above about 32K scalar operations). Inside the body OpenBLAS runs
    /// single-threaded so the two thread pools never oversubscribe the cores.
    ///
    /// `chunksPerWorker` above 1 cuts the work into that many more pieces, taken by whichever thread is free: for
    /// short calls (decode-time matrix–vector products of some 50 µs) the calling thread starts at once and the
    /// woken worker joins for what is left, and a core busy with another process does not hold the others up.
    public static func forEachChunk(_ n: Int, costPerItem: Int = 1, chunksPerWorker: Int = 1, _ body: (Range<Int>) -> Void) {
        guard n > 0 else { return }
        let workers = min(workerCount, n)
        if workers == 1 || n * costPerItem < 32_768 {
            body(0..<n)
            return
        }
        let chunks = min(n, workers * max(1, chunksPerWorker))
        BLAS.withSingleThread {
            DispatchQueue.concurrentPerform(iterations: chunks) { w in
                let lo = n * w / chunks, hi = n * (w + 1) / chunks
                if lo < hi { body(lo..<hi) }
            }
        }
    }
}
