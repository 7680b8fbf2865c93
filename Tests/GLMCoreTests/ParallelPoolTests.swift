// The worker pool behind Parallel.forEachChunk: every index of every region is run exactly once, with the helpers
// sleeping or spinning between regions, from several threads at once (all but one fall back to GCD) and from inside
// a region (which runs it on the calling thread).
import XCTest
import Foundation
import GLMCore

final class ParallelPoolTests: XCTestCase {
    override func tearDown() { Parallel.setSpin(microseconds: 0) }

    /// Adds 1 to counts[i] for every i of `n`, through forEachChunk, and checks each count went up by exactly 1.
    func region(_ n: Int, _ counts: UnsafeMutablePointer<Int32>, chunksPerWorker: Int = 4) {
        Parallel.forEachChunk(n, costPerItem: 1 << 16, chunksPerWorker: chunksPerWorker) { range in
            for i in range { counts[i] += 1 }
        }
    }

    func testEveryIndexRunsOnceInManyRegionsSleepingAndSpinning() {
        let n = 257
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: n)
        for spin in [0, 200] {
            Parallel.setSpin(microseconds: spin)
            for r in 0..<2_000 {
                region(1 + r % n, counts)
            }
        }
        var want = [Int32](repeating: 0, count: n)
        for _ in 0..<2 { for r in 0..<2_000 { for i in 0..<(1 + r % n) { want[i] += 1 } } }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: counts, count: n)), want)
    }

    func testConcurrentCallersAndNestedRegionsEachRunEveryIndexOnce() {
        let callers = 4, n = 100, rounds = 300
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: callers * n * n)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: callers * n * n)
        Parallel.setSpin(microseconds: 100)
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            for r in 0..<rounds {
                let outer = 1 + (r * 7 + c) % 8
                Parallel.forEachChunk(outer, costPerItem: 1 << 16) { range in
                    for o in range {
                        self.region(n, counts + (c * n + o) * n, chunksPerWorker: 2)  // nested: on this thread
                    }
                }
            }
        }
        for c in 0..<callers {
            for o in 0..<n {
                let expected = Int32((0..<rounds).filter { o < 1 + ($0 * 7 + c) % 8 }.count)
                for i in 0..<n where counts[(c * n + o) * n + i] != expected {
                    XCTFail("caller \(c) outer \(o) index \(i): ran \(counts[(c * n + o) * n + i]) times, expected \(expected)")
                    return
                }
            }
        }
    }

    func testNestedSpinningRestoresTheOuterSpin() {
        Parallel.setSpin(microseconds: 0)
        Parallel.withSpinningWorkers(microseconds: 300) {
            XCTAssertEqual(Parallel.spinMicroseconds, 300)
            Parallel.withSpinningWorkers(microseconds: 40) { XCTAssertEqual(Parallel.spinMicroseconds, 40) }
            XCTAssertEqual(Parallel.spinMicroseconds, 300, "the inner call must give back the outer spin, not 0")
        }
        XCTAssertEqual(Parallel.spinMicroseconds, 0)
    }
}
