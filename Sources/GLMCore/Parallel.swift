// Work splitting across the machine's cores, without fighting OpenBLAS's own threads.
import Foundation
import Dispatch
import COpenBLAS
import CGLMKernels

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
            let one: (Int) -> Void = { w in
                let lo = n * w / chunks, hi = n * (w + 1) / chunks
                if lo < hi { body(lo..<hi) }
            }
            let ran = withoutActuallyEscaping(one) { f -> Bool in
                var job = PoolJob(run: f)
                return withUnsafeMutablePointer(to: &job) { glmk_pool_run(Int32(workers), chunks, poolChunk, $0) == 0 }
            }
            if !ran { DispatchQueue.concurrentPerform(iterations: chunks, execute: one) }
        }
    }

    /// The spin of `withSpinningWorkers`: 500 µs, or `GLMTRAIN_DECODE_SPIN_US` (0 turns spinning off).
    public static let decodeSpinMicroseconds: Int = {
        if let v = ProcessInfo.processInfo.environment["GLMTRAIN_DECODE_SPIN_US"].flatMap(Int.init), v >= 0 { return min(v, 1_000_000) }
        return 500
    }()

    /// How long the pool's threads spin for the next parallel region before they sleep, in microseconds (0: at once).
    /// Decode sets it for its run of short regions (`withSpinningWorkers`).
    public static func setSpin(microseconds: Int) {
        spinMicroseconds = microseconds
        glmk_pool_set_spin(microseconds * 1000)
    }

    /// The spin last set by `setSpin` (0 at start).
    nonisolated(unsafe) public private(set) static var spinMicroseconds = 0

    /// `body` with the pool's threads spinning between regions for up to `microseconds`, then back to the spin
    /// that was set before (0, sleeping, outside any such call).
    public static func withSpinningWorkers<R>(microseconds: Int = decodeSpinMicroseconds, _ body: () throws -> R) rethrows -> R {
        let before = spinMicroseconds
        setSpin(microseconds: microseconds)
        defer { setSpin(microseconds: before) }
        return try body()
    }
}

private struct PoolJob { var run: (Int) -> Void }

private let poolChunk: @convention(c) (UnsafeMutableRawPointer?, Int) -> Void = { ctx, chunk in
    ctx!.assumingMemoryBound(to: PoolJob.self).pointee.run(chunk)
}
