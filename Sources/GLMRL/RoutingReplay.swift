// Routing replay for RL on MoE models (slime's `--use-routing-replay` / R3, reference/glm4-moe.md §5): the rollout
// records, per token and MoE layer, the experts its scoring pass chose (in the rollout batch file); the trainer's
// recompute of the log-probs then uses exactly those experts, with the weights still the current router's scores
// of them (slime: `probs = scores.gather(1, top_indices)`), so gradients reach the router. At the rollout's
// weights the recomputed log-probs equal the rollout's bit for bit, even when a changed correction bias or router
// would pick other experts. Padding positions (nothing recorded) keep the live selection.
import Foundation
import GLMCore
import GLMModel
import GLMTraining

public enum RoutingReplay {
    /// What recorded routing must look like for a model: its MoE layers, experts and top-k.
    public struct Shape: Sendable, Equatable {
        public let layers: [Int]
        public let experts: Int
        public let topK: Int
        public init(layers: [Int], experts: Int, topK: Int) { self.layers = layers; self.experts = experts; self.topK = topK }
        public init?(_ model: any CausalLanguageModel) {
            guard let m = model as? any MixtureOfExpertsModel, !m.moeLayers.isEmpty else { return nil }
            self.init(layers: m.moeLayers, experts: m.routedExperts, topK: m.expertsPerToken)
        }
    }

    /// The model as a MoE model and its routing shape, or a one-line error for `rl.routing_replay` on a dense one.
    public static func required(_ model: any CausalLanguageModel) throws -> (any MixtureOfExpertsModel, Shape) {
        guard let moe = model as? any MixtureOfExpertsModel, let shape = Shape(model) else {
            throw GLMError("rl.routing_replay: true needs a model with routed experts (this \(model.configuration.modelTypeName) model has none)")
        }
        return (moe, shape)
    }

    /// Runs `body` recording every MoE layer's selection (per layer, in call order, the routing's `indices`); an
    /// observer already installed keeps seeing every event.
    public static func recording<T>(_ model: any MixtureOfExpertsModel, _ body: () throws -> T) rethrows -> (T, [Int: [Int32]]) {
        var recorded: [Int: [Int32]] = [:]
        let previous = model.routingObserver
        model.routingObserver = { event in
            recorded[event.layer, default: []] += event.routing.indices
            previous?(event)
        }
        defer { model.routingObserver = previous }
        return (try body(), recorded)
    }

    /// Stores what one scoring pass over `batch` (rows = `samples[slice]`, in order) recorded into the samples:
    /// each sample's own tokens (not the padding).
    public static func attach(_ recorded: [Int: [Int32]], to samples: inout [RolloutSample], slice: Range<Int>,
                              length T: Int, shape: Shape) {
        let K = shape.topK
        for (row, i) in slice.enumerated() {
            let n = samples[i].promptTokens.count + samples[i].responseTokens.count
            samples[i].routedExperts = shape.layers.map { l in
                let all = recorded[l] ?? []
                return Array(all[(row * T * K)..<((row * T + n) * K)])
            }
        }
    }

    /// Throws a one-line error naming `source` and the sample when a batch's recorded experts cannot be replayed on
    /// a model of `shape`: missing, the wrong number of layers or values, or an expert outside the model's.
    public static func validate(_ batch: RolloutBatch, shape: Shape, source: String) throws {
        for (i, s) in batch.samples.enumerated() {
            func fail(_ what: String) -> GLMError { GLMError("\(source): sample \(i): routed_experts: \(what)") }
            guard let r = s.routedExperts else {
                throw fail("missing; rl.routing_replay needs the experts the rollout chose (a rollout run without routing_replay wrote this batch)")
            }
            guard r.count == shape.layers.count else {
                throw fail("\(r.count) layers; the model routes in \(shape.layers.count) (layers \(shape.layers.map(String.init).joined(separator: ", ")))")
            }
            let n = s.promptTokens.count + s.responseTokens.count
            for (j, layer) in r.enumerated() {
                guard layer.count == n * shape.topK else {
                    throw fail("layer \(shape.layers[j]) has \(layer.count) values; expected \(n) tokens × top-\(shape.topK) = \(n * shape.topK)")
                }
                if let bad = layer.first(where: { $0 < 0 || Int($0) >= shape.experts }) {
                    throw fail("layer \(shape.layers[j]) names expert \(bad); the model has experts 0..<\(shape.experts)")
                }
                for t in 0..<n {
                    let chosen = layer[(t * shape.topK)..<((t + 1) * shape.topK)]
                    guard Set(chosen).count == shape.topK else {
                        throw fail("layer \(shape.layers[j]) token \(t) chooses expert \(chosen.map(String.init).joined(separator: ", ")): an expert twice")
                    }
                }
            }
        }
    }

    /// The micro-batch's recorded experts in the trainer's layout (`RolloutBatch.trainingBatch`): per MoE layer,
    /// `B·T·topK` values, −1 at padding.
    public static func batchIndices(_ samples: ArraySlice<RolloutSample>, length T: Int, shape: Shape) -> [[Int32]] {
        let K = shape.topK, B = samples.count
        return shape.layers.indices.map { j in
            var out = [Int32](repeating: -1, count: B * T * K)
            for (row, s) in samples.enumerated() {
                guard let r = s.routedExperts?[j] else { continue }
                for (p, e) in r.enumerated() { out[row * T * K + p] = e }
            }
            return out
        }
    }

    /// Runs `body` with every MoE layer's selection replaced by `recorded` (per layer of `shape`, as
    /// `batchIndices` gives; −1 keeps the live choice of that token). A pass over another number of tokens (not
    /// this batch) is left alone.
    public static func replaying<T>(_ model: any MixtureOfExpertsModel, _ recorded: [[Int32]], shape: Shape,
                                    _ body: () throws -> T) rethrows -> T {
        let byLayer = Dictionary(uniqueKeysWithValues: zip(shape.layers, recorded))
        let previous = model.routingReplay
        model.routingReplay = { layer, selected in
            guard let r = byLayer[layer], r.count == selected.indices.count else { return selected }
            let K = selected.topK
            var indices = selected.indices
            for t in 0..<selected.tokens where r[t * K] >= 0 {
                for k in 0..<K { indices[t * K + k] = r[t * K + k] }
            }
            return ExpertRouting(indices: indices, tokens: selected.tokens, experts: selected.experts, topK: K)
        }
        defer { model.routingReplay = previous }
        return try body()
    }
}
