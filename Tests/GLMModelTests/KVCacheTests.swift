// Incremental decoding with a KV cache gives the same hidden states as one full forward pass.
import XCTest
import GLMCore
import GLMIO
import GLMModel
import TestSupport

final class KVCacheTests: XCTestCase {
    /// Hidden states of the last `n` positions of each row of `full` ([B, T, H]) → [B, n, H] for comparison.
    func tail(_ full: Tensor, from start: Int, count n: Int) -> Tensor { full.slice(axis: 1, start: start, length: n) }

    func testIncrementalForwardEqualsFullForward() throws {
        for name in ["glm", "glm4", "glm4-tied-full-rotary"] {
            let (_, model) = try ModelDirectory.load(ModelFixtures.path(name))
            let f = try ModelFixtures.expected(name)
            let ids = try f.ids("batch.ids")  // 2 × 7
            let (B, T) = (2, ids.count / 2)
            func columns(_ r: Range<Int>) -> [Int32] { (0..<B).flatMap { b in r.map { ids[b * T + $0] } } }
            try Autograd.noGrad {
                let full = model.hiddenStates(ids: ids, batch: B, length: T)
                // Prompt of 3, then 1, 1, then a chunk of 2; capacity 2 forces the buffers to grow.
                let cache = KVCache(config: model.config, batch: B, capacity: 2)
                var start = 0
                for n in [3, 1, 1, 2] {
                    let h = model.hiddenStates(ids: columns(start..<(start + n)), batch: B, length: n, cache: cache)
                    XCTAssertEqual(cache.length, start + n)
                    let e = Fixtures.relativeError(h, tail(full, from: start, count: n))
                    XCTAssertLessThan(e, 1e-5, "\(name) positions \(start)..<\(start + n)")
                    start += n
                }
                XCTAssertGreaterThanOrEqual(cache.capacity, T)
                // Truncating and re-running the last token gives the same result again.
                cache.truncate(to: T - 1)
                let again = model.hiddenStates(ids: columns((T - 1)..<T), batch: B, length: 1, cache: cache)
                XCTAssertLessThan(Fixtures.relativeError(again, tail(full, from: T - 1, count: 1)), 1e-5)
                // The cached logits match transformers' too.
                XCTAssertLessThan(Fixtures.relativeError(model.logits(again), try f.tensor("batch.logits").slice(axis: 1, start: T - 1, length: 1)), 1e-4)
            }
        }
    }

    func testCacheWithCustomPositionsAndRotary2D() throws {
        var config = ModelFixtures.tinyConfig(.glm)
        config.rotary2D = true
        let model = try ModelFixtures.tinyModel(config)
        let ids: [Int32] = [3, 9, 4, 4, 17, 2]
        let pos: [Int32] = [0, 1, 2, 2, 2, 2], block: [Int32] = [0, 0, 0, 1, 2, 3]
        Autograd.noGrad {
            let full = model.hiddenStates(ids: ids, batch: 1, length: 6, positions: pos, blockPositions: block)
            let zeroBlocks = model.hiddenStates(ids: ids, batch: 1, length: 6, positions: pos)
            XCTAssertGreaterThan(Fixtures.relativeError(zeroBlocks, full), 1e-3, "block positions must matter")
            let cache = KVCache(config: config, batch: 1, capacity: 8)
            let a = model.hiddenStates(ids: Array(ids[0..<4]), batch: 1, length: 4, positions: Array(pos[0..<4]),
                                       blockPositions: Array(block[0..<4]), cache: cache)
            let b = model.hiddenStates(ids: Array(ids[4...]), batch: 1, length: 2, positions: Array(pos[4...]),
                                       blockPositions: Array(block[4...]), cache: cache)
            XCTAssertLessThan(Fixtures.relativeError(Tensor.concat([a, b], axis: 1), full), 1e-5)
        }
    }
}
