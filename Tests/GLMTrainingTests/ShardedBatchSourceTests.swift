// Data parallelism's split of a global batch (no MPI needed): the shards of every process put back together are
// the batch — rows with their targets, positions, masks and per-token values; pairs keep chosen and rejected
// together — the cursor stays the global one, and a batch smaller than the number of processes is an error.
import XCTest
import GLMCore
import GLMTraining

final class ShardedBatchSourceTests: XCTestCase {
    func batch(rows B: Int, length T: Int, pairs: Int? = nil) -> TrainingBatch {
        let n = B * T
        let lower = (0..<n).map { Int32($0 % T / 2) }, upper = (0..<n).map { Int32($0 % T + 1) }
        return TrainingBatch(batch: B, length: T, ids: (0..<n).map { Int32($0) }, targets: (0..<n).map { $0 % 3 == 0 ? ignoreLabel : Int32($0 + 1) },
                             positions: (0..<n).map { Int32($0 % T) }, mask: AttentionMask(batch: B, queries: T, keys: T, lower: lower, upper: upper),
                             tokenWeights: (0..<n).map { Float($0) }, referenceLogProbs: (0..<n).map { -Float($0) },
                             pairs: pairs, versions: (0..<B).map { $0 * 10 })
    }

    func testShardsOfRowsPutBackTogetherAreTheBatch() throws {
        let b = batch(rows: 5, length: 4)
        for N in 1...5 {
            let shards = try (0..<N).map { try ShardedBatchSource.shard(b, rank: $0, of: N) }
            XCTAssertEqual(shards.map(\.batch).reduce(0, +), 5)
            XCTAssertLessThanOrEqual(shards.map(\.batch).max()! - shards.map(\.batch).min()!, 1, "as even as possible")
            XCTAssertEqual(shards.flatMap(\.ids), b.ids)
            XCTAssertEqual(shards.flatMap(\.targets), b.targets)
            XCTAssertEqual(shards.flatMap { $0.positions! }, b.positions!)
            XCTAssertEqual(shards.flatMap { $0.tokenWeights! }, b.tokenWeights!)
            XCTAssertEqual(shards.flatMap { $0.mask!.lower }, b.mask!.lower)
            XCTAssertEqual(shards.flatMap { $0.mask!.upper }, b.mask!.upper)
            XCTAssertEqual(shards.flatMap { $0.versions! }, b.versions!)
            XCTAssertEqual(shards.map(\.lossTokenCount).reduce(0, +), b.lossTokenCount)
        }
        // Positions given once for all rows stay shared.
        var shared = b
        shared.positions = [0, 1, 2, 3]
        XCTAssertEqual(try ShardedBatchSource.shard(shared, rank: 1, of: 2).positions, [0, 1, 2, 3])
    }

    func testPairsStayTogether() throws {
        let b = batch(rows: 6, length: 2, pairs: 3)  // rows 0-2 chosen, 3-5 rejected
        let first = try ShardedBatchSource.shard(b, rank: 0, of: 2), second = try ShardedBatchSource.shard(b, rank: 1, of: 2)
        XCTAssertEqual(first.pairs, 1); XCTAssertEqual(second.pairs, 2)
        XCTAssertEqual(first.versions, [0, 30])            // chosen 0 and its rejected row 3
        XCTAssertEqual(second.versions, [10, 20, 40, 50])  // chosen 1, 2 then rejected 4, 5
        XCTAssertEqual(second.ids, [2, 3, 4, 5, 8, 9, 10, 11])
        XCTAssertEqual(second.referenceLogProbs, [-2, -3, -4, -5, -8, -9, -10, -11])
        XCTAssertThrowsError(try ShardedBatchSource.shard(b, rank: 0, of: 4)) {
            XCTAssertTrue(($0 as? GLMError)?.message.contains("3 pairs cannot be shared by 4") ?? false, "\($0)")
        }
    }

    func testTheCursorIsTheGlobalOne() throws {
        let inner = FixedBatchSource([batch(rows: 4, length: 3), batch(rows: 2, length: 3)])
        let s = ShardedBatchSource(inner, rank: 1, of: 2)
        XCTAssertEqual(try s.nextBatch().ids, Array(6..<12))
        XCTAssertEqual(s.cursor, ["next": 1])
        try s.restore(cursor: ["next": 3])
        XCTAssertEqual(inner.cursor, ["next": 3])
        XCTAssertEqual(try s.nextBatch().ids, [3, 4, 5], "batch 3 of the global order, second half")
    }
}
