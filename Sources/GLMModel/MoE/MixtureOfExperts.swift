// What a Mixture-of-Experts model shows the training layer: its routing in every forward pass (for load
// statistics, loss-free balancing and auxiliary balance losses) and its routers' correction biases.
import GLMCore

/// One MoE layer's routing in a forward pass.
public struct RoutingEvent {
    /// The decoder layer.
    public let layer: Int
    public let routing: ExpertRouting
    /// The router's sigmoid scores `[batch·length, experts]` (on the tape when recording: differentiable in the router).
    public let scores: Tensor
    public let batch: Int, length: Int
}

/// A causal LM with routed experts.
public protocol MixtureOfExpertsModel: CausalLanguageModel {
    /// Called in every forward pass for each MoE layer, after the selection.
    var routingObserver: ((RoutingEvent) -> Void)? { get set }
    /// Routing replay (slime's `--use-routing-replay`): when set, called in every forward pass for each MoE layer
    /// with the live selection; the routing it returns is used instead. Only the selection is replayed: the weights
    /// are still the current router's scores of the chosen experts, so gradients reach the router.
    var routingReplay: ((_ layer: Int, _ selected: ExpertRouting) -> ExpertRouting)? { get set }
    /// The decoder layers that route.
    var moeLayers: [Int] { get }
    var routedExperts: Int { get }
    var expertsPerToken: Int { get }
    /// The per-expert bias added to the scores for selection only (`e_score_correction_bias`, f32 `[experts]`), which
    /// loss-free balancing updates in place; nil when the layer has none.
    func correctionBias(layer: Int) -> Tensor?
}
