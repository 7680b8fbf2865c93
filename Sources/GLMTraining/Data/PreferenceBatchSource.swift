// Pair batches of preference data: `pairs` chosen rows then their rejected rows in one micro-batch (one forward
// pass for both), each cut at seq_len and padded to the batch's longest row, with the reference policy's
// per-token log-probabilities attached when they were computed beforehand (full fine-tuning).
import Foundation
import GLMCore
import GLMIO
import GLMModel

/// The reference policy's log-probabilities of every preference pair's response targets, per example and side, in
/// the order the targets appear in the (cut) rows.
public struct PreferenceReference: Equatable, Sendable {
    public var chosen: [[Float]]
    public var rejected: [[Float]]

    public init(chosen: [[Float]], rejected: [[Float]]) { self.chosen = chosen; self.rejected = rejected }

    /// Runs `model` (as it is now: call before training) over `examples` in batches of `pairs` pairs without
    /// gradients and keeps each response target's log-probability.
    public static func compute(model: any CausalLanguageModel, examples: [PreferenceExample], pairs: Int, seqLen: Int,
                               padID: Int32) throws -> PreferenceReference {
        let source = try PreferenceBatchSource(examples: examples, pairs: pairs, seqLen: seqLen, shuffle: false, seed: 0, padID: padID)
        var chosen = [[Float]](repeating: [], count: examples.count), rejected = chosen
        try Autograd.noGrad {
            for start in stride(from: 0, to: examples.count, by: pairs) {
                let indices = Array(start..<min(start + pairs, examples.count))
                let b = try source.batch(indices)
                let lp = SequenceLogProbs(model: model, batch: b).perToken.scalars
                for row in 0..<b.batch {
                    let values = (0..<b.length).compactMap { t in b.targets[row * b.length + t] == ignoreLabel ? nil : lp[row * b.length + t] }
                    if row < indices.count { chosen[indices[row]] = values } else { rejected[indices[row - indices.count]] = values }
                }
            }
        }
        return PreferenceReference(chosen: chosen, rejected: rejected)
    }

    static let format = "glmtrain-preference-reference-1"

    /// Writes the log-probabilities as safetensors (`chosen`, `rejected`: every example's values concatenated;
    /// `chosen_lengths`, `rejected_lengths`), atomically; `identity` (data file, seq_len, ...) goes into the metadata
    /// so that a later run can tell whether the file is for its data.
    public func save(to path: String, identity: [String: String]) throws {
        func flat(_ v: [[Float]]) -> Tensor { let f = v.flatMap { $0 }; return Tensor(f, shape: [f.count]) }
        func lengths(_ v: [[Float]]) -> Tensor { Tensor(v.map { Float($0.count) }, shape: [v.count]) }
        try SafetensorsWriter.write(["chosen": flat(chosen), "rejected": flat(rejected), "chosen_lengths": lengths(chosen),
                                     "rejected_lengths": lengths(rejected)], to: path,
                                    metadata: identity.merging(["format": PreferenceReference.format]) { a, _ in a })
    }

    /// The stored log-probabilities when `path` holds them for `identity` and for examples with these response
    /// target counts; nil (with the reason) otherwise.
    public static func load(path: String, identity: [String: String], chosenCounts: [Int], rejectedCounts: [Int]) -> (PreferenceReference?, String?) {
        guard FileManager.default.fileExists(atPath: path) else { return (nil, nil) }
        do {
            let f = try SafetensorsFile(path: path)
            guard f.metadata["format"] == format else { return (nil, "\(path) is not a reference log-probability file") }
            for (k, v) in identity where f.metadata[k] != v {
                return (nil, "\(path) was computed with \(k) \(f.metadata[k] ?? "(none)"), this run has \(v)")
            }
            func split(_ name: String, _ counts: [Int]) throws -> [[Float]]? {
                let values = try f.tensor(name).scalars
                let lengths = try f.tensor(name + "_lengths").scalars.map { Int($0) }
                guard lengths == counts, values.count == counts.reduce(0, +) else { return nil }
                var out: [[Float]] = [], at = 0
                for n in counts { out.append(Array(values[at..<(at + n)])); at += n }
                return out
            }
            guard let c = try split("chosen", chosenCounts), let r = try split("rejected", rejectedCounts) else {
                return (nil, "\(path) holds other examples than this run's data")
            }
            return (PreferenceReference(chosen: c, rejected: r), nil)
        } catch let e as GLMError {
            return (nil, e.message)
        } catch {
            return (nil, "\(path): \(error)")
        }
    }
}

/// Micro-batches of `pairs` preference pairs: rows 0..<pairs the chosen sequences, rows pairs..<2·pairs the
/// rejected ones in the same order (`TrainingBatch.pairs`). A row is cut at `seqLen` (counted in
/// `truncatedCount`); the loss targets are the response tokens within it.
public final class PreferenceBatchSource: BatchSource {
    public let examples: [PreferenceExample]
    var order: ExampleOrder
    public let pairs: Int
    let rows: CausalLMObjective
    /// Reference log-probabilities put into each batch (`TrainingBatch.referenceLogProbs`) when set.
    public var reference: PreferenceReference?
    public private(set) var truncatedCount = 0

    public init(examples: [PreferenceExample], pairs: Int, seqLen: Int, shuffle: Bool, seed: UInt64, padID: Int32,
                reference: PreferenceReference? = nil) throws {
        guard !examples.isEmpty else { throw GLMError("preference data: no pairs") }
        self.examples = examples; self.pairs = pairs; self.reference = reference
        rows = try CausalLMObjective(seqLen: seqLen, pad: padID)
        order = ExampleOrder(count: examples.count, shuffle: shuffle, seed: seed)
    }

    public var exampleCount: Int { examples.count }
    public var cursor: [String: Int] { order.cursor.merging(["truncated": truncatedCount]) { a, _ in a } }

    public func restore(cursor: [String: Int]) throws {
        try order.restore(cursor)
        truncatedCount = cursor["truncated"] ?? 0
    }

    public func nextBatch() throws -> TrainingBatch {
        let indices = (0..<pairs).map { _ in order.next().index }
        let b = try batch(indices)
        truncatedCount += (0..<b.batch).reduce(0) { n, row in
            let e = row < indices.count ? examples[indices[row]].chosen : examples[indices[row - indices.count]].rejected
            return n + (e.ids.count > rows.seqLen ? 1 : 0)
        }
        return b
    }

    /// The pair batch of these examples (chosen rows first).
    public func batch(_ indices: [Int]) throws -> TrainingBatch {
        let sequences = indices.map { examples[$0].chosen } + indices.map { examples[$0].rejected }
        var b = rows.batch(documents: sequences.map(\.ids), lossMasks: sequences.map(\.lossMask))
        b.pairs = indices.count
        if let reference {
            var values = [Float](repeating: 0, count: b.batch * b.length)
            for row in 0..<b.batch {
                let stored = row < indices.count ? reference.chosen[indices[row]] : reference.rejected[indices[row - indices.count]]
                var k = 0
                for t in 0..<b.length where b.targets[row * b.length + t] != ignoreLabel {
                    guard k < stored.count else { throw GLMError("\(sequences[row].source): the stored reference log-probabilities do not fit this row") }
                    values[row * b.length + t] = stored[k]; k += 1
                }
                guard k == stored.count else { throw GLMError("\(sequences[row].source): the stored reference log-probabilities do not fit this row") }
            }
            b.referenceLogProbs = values
        }
        return b
    }
}
