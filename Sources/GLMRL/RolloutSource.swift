// The trainer's side of the exchange: rollout batch k feeds training step k + 1 (one batch per step, its samples in
// micro-batches of rl.micro_batch_size). The cursor (next batch, next micro-batch) is in every checkpoint, so a
// resumed trainer takes up exactly the batch the lost step had: none is lost or used twice. Waiting for a batch
// that is not written yet is timed (perf/trainer_wait_s); in sync mode `produce` makes it in this process.
import Foundation
import GLMCore
import GLMTraining

public final class RolloutSource: BatchSource {
    let directory: RLRunDirectory
    let microBatchSize: Int
    let pad: Int32
    /// Makes batch k in this process (sync mode); nil: wait for a rollout process to write it.
    var produce: ((Int) throws -> Void)?
    /// Called every 30 s of waiting with the batch waited for.
    var onWait: ((Int, Double) -> Void)?
    public private(set) var batchIndex = 0
    private var micro = 0
    private var current: RolloutBatch?
    private var slices: [ArraySlice<RolloutSample>] = []
    private var waited = 0.0
    public private(set) var truncatedCount = 0
    public let exampleCount: Int
    /// The step (version) the trainer is at, for the staleness statistics.
    var trainerVersion = 0

    let vocabularySize: Int, maxPositions: Int
    /// Routing replay: every batch must carry the experts its rollout chose, for a model of this shape; they go
    /// into each micro-batch (`TrainingBatch.routedExperts`).
    var replayShape: RoutingReplay.Shape?
    /// Samples every batch must hold (rl.prompts_per_batch × rl.n_samples_per_prompt): a step is that many samples'
    /// micro-batches, so a batch of another size would end a step inside the next batch. nil: not checked.
    var expectedSamples: Int?

    init(directory: RLRunDirectory, microBatchSize: Int, pad: Int32, promptCount: Int, vocabularySize: Int, maxPositions: Int) {
        self.directory = directory; self.microBatchSize = microBatchSize; self.pad = pad; exampleCount = promptCount
        self.vocabularySize = vocabularySize; self.maxPositions = maxPositions
    }

    /// Micro-batches per rollout batch of `samples` samples.
    static func microBatches(samples: Int, microBatchSize: Int) -> Int { (samples + microBatchSize - 1) / microBatchSize }

    public var cursor: [String: Int] { ["batch": batchIndex, "micro": micro, "truncated": truncatedCount] }

    public func restore(cursor: [String: Int]) throws {
        batchIndex = cursor["batch"] ?? 0; micro = cursor["micro"] ?? 0; truncatedCount = cursor["truncated"] ?? 0
        trainerVersion = batchIndex
        current = nil
        if micro > 0 { try load() }
    }

    private func load() throws {
        let started = Date()
        var lastNote = started
        while !directory.hasBatch(batchIndex) {
            if let produce { try produce(batchIndex); continue }
            Thread.sleep(forTimeInterval: 0.02)
            if Date().timeIntervalSince(lastNote) >= 30 { lastNote = Date(); onWait?(batchIndex, lastNote.timeIntervalSince(started)) }
        }
        waited = Date().timeIntervalSince(started)
        let b = try directory.readBatch(batchIndex)
        guard b.index == batchIndex, !b.samples.isEmpty else {
            throw GLMError("\(directory.batchPath(batchIndex)): holds batch \(b.index) with \(b.samples.count) samples; expected batch \(batchIndex)")
        }
        try b.validate(source: directory.batchPath(batchIndex), vocabularySize: vocabularySize, maxPositions: maxPositions,
                       trainerVersion: trainerVersion)
        if let replayShape { try RoutingReplay.validate(b, shape: replayShape, source: directory.batchPath(batchIndex)) }
        if let expectedSamples, b.samples.count != expectedSamples {
            throw GLMError("\(directory.batchPath(batchIndex)): \(b.samples.count) samples; the recipe's rl.prompts_per_batch × rl.n_samples_per_prompt is \(expectedSamples)")
        }
        current = b
        slices = b.microBatches(microBatchSize)
    }

    public func nextBatch() throws -> TrainingBatch {
        if current == nil || micro >= slices.count { micro = 0; try load() }
        let slice = slices[micro]
        if micro == 0 { truncatedCount += current!.samples.filter { $0.finishReason == "length" }.count }
        micro += 1
        var out = RolloutBatch.trainingBatch(slice, pad: pad)
        if let replayShape { out.routedExperts = RoutingReplay.batchIndices(slice, length: out.length, shape: replayShape) }
        if micro == slices.count { batchIndex += 1; micro = 0; stats = statistics(current!); current = nil }
        return out
    }

    /// The statistics of the batch the last step consumed: the rollout's, and trainer-side wait and staleness.
    public private(set) var stats: [String: Double] = [:]

    func statistics(_ b: RolloutBatch) -> [String: Double] {
        var s = b.stats
        s["perf/trainer_wait_s"] = waited
        let staleness = b.samples.map { Double(trainerVersion - $0.version) }
        s["perf/staleness_mean"] = staleness.reduce(0, +) / Double(max(staleness.count, 1))
        s["perf/staleness_max"] = staleness.max() ?? 0
        for k in 0...2 {
            let n = staleness.filter { k < 2 ? Int($0) == k : Int($0) >= 2 }.count
            s["perf/staleness_\(k < 2 ? "\(k)" : "2plus")"] = Double(n)
        }
        s["rollout/batch"] = Double(b.index)
        return s
    }
}
