// Batch sources over the objectives of Objectives/: packed causal rows and GLM blank infilling, each with a
// cursor that makes a resumed run see exactly the batches of an uninterrupted one.
import GLMCore

/// Causal LM with several examples packed per row (segment mask, positions restarting per example). Examples
/// longer than `seqLen` are cut into `seqLen` pieces (pretraining) or truncated and counted (`truncate`, SFT).
/// Each epoch packs the examples in that epoch's order.
public final class PackedCausalSource: BatchSource {
    let objective: CausalLMObjective
    let examples: [TokenizedExample]
    let batchSize: Int
    let shuffle: Bool, seed: UInt64
    let truncate: Bool
    var epoch = 0
    var position = CausalLMObjective.Cursor()
    var epochOrder: [Int] = []
    var documents: [[Int32]] = [], masks: [[Bool]?] = []
    public private(set) var truncatedCount = 0

    public init(examples: [TokenizedExample], batchSize: Int, seqLen: Int, shuffle: Bool, seed: UInt64, padID: Int32,
                truncate: Bool) throws {
        objective = try CausalLMObjective(seqLen: seqLen, pad: padID)
        self.examples = examples; self.batchSize = batchSize; self.shuffle = shuffle; self.seed = seed; self.truncate = truncate
        startEpoch(0)
    }

    public var exampleCount: Int { examples.count }

    func startEpoch(_ e: Int) {
        epoch = e
        epochOrder = ExampleOrder.permutation(count: examples.count, shuffle: shuffle, seed: seed, epoch: e)
        documents = []; masks = []
        var cut = 0
        for i in epochOrder {
            var x = examples[i]
            if truncate && x.ids.count > objective.seqLen {
                cut += 1
                x.ids = Array(x.ids.prefix(objective.seqLen)); x.lossMask = x.lossMask.map { Array($0.prefix(objective.seqLen)) }
            }
            documents.append(x.ids); masks.append(x.lossMask)
        }
        truncatedPerEpoch = cut
    }
    var truncatedPerEpoch = 0

    public var cursor: [String: Int] {
        ["epoch": epoch, "document": position.document, "offset": position.offset, "truncated": truncatedCount]
    }

    public func restore(cursor: [String: Int]) throws {
        guard let e = cursor["epoch"], let d = cursor["document"], let o = cursor["offset"], e >= 0, d >= 0, d < examples.count, o >= 0 else {
            throw GLMError("data cursor \(cursor) does not fit a packed dataset of \(examples.count) examples")
        }
        startEpoch(e)
        position = CausalLMObjective.Cursor(document: d, offset: o)
        truncatedCount = cursor["truncated"] ?? 0
    }

    public func nextBatch() throws -> TrainingBatch {
        var rows: [PackedRow] = []
        while rows.count < batchSize {
            if position.document == 0 && position.offset == 0 { truncatedCount += truncatedPerEpoch }
            if let (row, next) = objective.packRow(documents: documents, lossMasks: masks, from: position) {
                rows.append(row); position = next
            }
            if position.document >= documents.count {
                startEpoch(epoch + 1); position = CausalLMObjective.Cursor()
            }
        }
        return objective.batch(packedRows: rows)
    }
}

/// GLM blank infilling: each batch takes the next `batchSize` examples and lays them out with spans drawn from a
/// generator seeded by (seed, epoch, position), so the cursor alone fixes every later batch.
public final class BlankInfillingSource: BatchSource {
    let objective: BlankInfillingObjective
    let examples: [TokenizedExample]
    let batchSize: Int
    var order: ExampleOrder
    let seed: UInt64
    public var truncatedCount: Int { 0 }

    public init(examples: [TokenizedExample], objective: BlankInfillingObjective, batchSize: Int, shuffle: Bool, seed: UInt64) {
        self.examples = examples; self.objective = objective; self.batchSize = batchSize; self.seed = seed
        order = ExampleOrder(count: examples.count, shuffle: shuffle, seed: seed)
    }

    public var exampleCount: Int { examples.count }
    public var cursor: [String: Int] { order.cursor }
    public func restore(cursor: [String: Int]) throws { try order.restore(cursor) }

    public func nextBatch() throws -> TrainingBatch {
        var rng = SeededGenerator(seed: ExampleOrder.mix(seed, UInt64(order.epoch), UInt64(order.position), 0xB1A2))
        let docs = (0..<batchSize).map { _ in examples[order.next().index].ids }
        return objective.makeBatch(documents: docs, rng: &rng)
    }
}
