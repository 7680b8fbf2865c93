// The multi-token-prediction seam (GLM-4.5 / DeepSeek-V3 MTP, reference/glm4-moe.md §4): a model with an MTP layer
// that, from the main model's final hidden state h_t and the embedding of token t+1, predicts token t+2. Training
// adds its loss (GLMTraining's MTPLossObjective); generation drafts with it (SpeculativeGenerator).
import GLMCore

/// One main forward pass as the model saw it: its final (post-norm) hidden states `[B, T, H]` and its inputs.
public struct MainForward {
    public let hidden: Tensor
    public let ids: [Int32]
    public let batch: Int, length: Int
    /// Positions, `B·T`.
    public let positions: [Int32]
    public let mask: AttentionMask
}

/// How the MTP layer treats the embedding at position 0. transformers' `MtpLayer` (and Megatron's training) uses it
/// as it is; vLLM's `glm4_moe_mtp.py`/`deepseek_mtp.py` zero it (`inputs_embeds[positions == 0] = 0`).
public enum MTPFirstPosition: String, Sendable {
    case keep
    case zeroEmbedding = "zero_embedding"
}

/// A causal LM with a (depth-1) multi-token-prediction layer.
public protocol MultiTokenPredictionModel: CausalLanguageModel {
    /// Whether the checkpoint had an MTP layer (its tensors loaded).
    var hasMTPLayer: Bool { get }
    /// Called at the end of every main forward pass (nil: nothing is called).
    var forwardObserver: ((MainForward) -> Void)? { get set }
    /// The MTP layer's normed output `[B, T, H]`: row t reads the main model's final hidden state `hidden[t]` and the
    /// token `nextIds[t]` (token t+1); its logits (`mtpLogits`) predict token t+2. `positions` (`B·T`) and `mask` are
    /// the main pass's (default: `past ..< past+T`, causal); `cache` (1 layer, `makeMTPCache`) as in `hiddenStates`.
    func mtpHiddenStates(hidden: Tensor, nextIds: [Int32], batch: Int, length: Int, positions: [Int32]?,
                         mask: AttentionMask?, cache: KVCache?, firstPosition: MTPFirstPosition) -> Tensor
    /// The MTP layer's output projection `[V, H]`: its own `shared_head.head.weight` when the checkpoint has one,
    /// else the main model's `lm_head`.
    var mtpHead: Tensor { get }
    /// An empty KV cache for the MTP layer.
    func makeMTPCache(batch: Int, capacity: Int) -> KVCache
    /// Gives a model without an MTP layer a freshly initialised one (the architecture's initialisation, seeded); an
    /// error when the configuration declares none or the model has one.
    func initializeMTPLayer(seed: UInt64) throws
    /// Makes the MTP layer's tensors parameters (so they train and are checkpointed); before, they are kept frozen.
    func trainMTPLayer() throws
}

extension MultiTokenPredictionModel {
    /// Logits `[..., V]` of MTP hidden states.
    public func mtpLogits(_ hidden: Tensor) -> Tensor { Tensor.linear(hidden, weight: mtpHead) }
}
