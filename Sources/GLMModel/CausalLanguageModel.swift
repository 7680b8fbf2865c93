// The model seam: what a causal LM declares about itself so that LoRA, export and optimizer routing can be driven
// by the model instead of fixed lists — its parameters by Hugging Face name, its adaptable linear layers and
// its GGUF architecture. A new architecture (e.g. glm4_moe) conforms beside GLMForCausalLM.
import GLMCore

/// What kind of linear layer an adaptable module is.
public enum LinearKind: String, Sendable {
    case attention, mlp, expert, router
}

/// One linear layer LoRA may adapt: its module path (`model.layers.3.self_attn.q_proj`), the target name recipes and
/// PEFT's `target_modules` use (`q_proj`), its layer, and the weight's shape (`[out, in]`; `[experts, out, in]` for
/// stacked experts). `gguf` is llama.cpp's tensor base name (`blk.3.attn_q`; nil when llama.cpp takes no LoRA on it);
/// `parts` splits a fused weight by output rows for engines that keep the parts apart (vLLM serves GLM's
/// `gate_up_proj` as `gate_proj` and `up_proj`), empty when it is served as it is. `ggufStack` is set instead of
/// `gguf` where llama.cpp stacks several modules into one tensor (a MoE's routed experts).
public struct AdaptableLinear: Equatable, Sendable {
    public let module: String
    public let target: String
    public let layer: Int
    public let shape: [Int]
    public let kind: LinearKind
    public let gguf: String?
    public let parts: [LinearPart]
    public let ggufStack: GGUFStackSlot?

    public init(module: String, target: String, layer: Int, shape: [Int], kind: LinearKind, gguf: String? = nil,
                parts: [LinearPart] = [], ggufStack: GGUFStackSlot? = nil) {
        self.module = module; self.target = target; self.layer = layer; self.shape = shape; self.kind = kind
        self.gguf = gguf; self.parts = parts; self.ggufStack = ggufStack
    }

    /// The module path of a part: this module's path with its target name replaced (`…mlp.gate_proj`).
    public func module(of part: LinearPart) -> String { String(module.dropLast(target.count)) + part.target }
}

/// Where a module's weight sits in a llama.cpp tensor that stacks `count` modules along its outermost dimension:
/// routed expert e's `gate_proj` of layer N is index e of `blk.N.ffn_gate_exps` (`[experts, out, in]`).
public struct GGUFStackSlot: Equatable, Sendable {
    public let tensor: String
    public let index: Int
    public let count: Int
    public init(tensor: String, index: Int, count: Int) { self.tensor = tensor; self.index = index; self.count = count }
}

/// One part of a fused linear: its target name and how many output rows (of the fused weight, in order) it has.
public struct LinearPart: Equatable, Sendable {
    public let target: String
    public let rows: Int
    public init(target: String, rows: Int) { self.target = target; self.rows = rows }
}

/// What an architecture's configuration tells the layers above without building the model: sizes the CLI and
/// the data pipeline check against, special tokens, and the declared linears (adapter validation and export).
public protocol CausalLMConfig: Sendable {
    /// config.json's `model_type`.
    var modelTypeName: String { get }
    var vocabSize: Int { get }
    var hiddenSize: Int { get }
    var numHiddenLayers: Int { get }
    var maxPositionEmbeddings: Int { get }
    var padTokenId: Int? { get }
    var bosTokenId: Int? { get }
    var eosTokenIds: [Int] { get }
    /// Whether the model takes GLM's second (block) position ids (2D rotary, for blank infilling).
    var usesBlockPositions: Bool { get }
    /// The linear layers LoRA may adapt, layer-major.
    var adaptableLinears: [AdaptableLinear] { get }
    /// The `general.architecture` llama.cpp uses for this model.
    var ggufArchitecture: String { get }
    /// The storage dtype config.json records (`bfloat16`, ...), if any.
    var dtype: String? { get }
    /// Bytes a KV cache holds per position of one sequence (every layer's keys and values, f32); Int.max when
    /// that does not fit an Int.
    var cacheBytesPerPosition: Int { get }
    /// Parameters of the model this config describes (validated configs keep it ≤ `FileLimits.maxParameters`).
    var parameterCount: Int { get }
}

extension CausalLMConfig {
    /// The distinct target names of `adaptableLinears`, in declaration order.
    public var adaptableTargets: [String] {
        var seen = Set<String>()
        return adaptableLinears.map(\.target).filter { seen.insert($0).inserted }
    }

    /// `eosTokenIds` that name a token of the vocabulary. config.json may hold others (transformers writes its class
    /// defaults, 151329/151336/151338, for a small model that never set its own): they can never be generated, so
    /// they stop nothing, and nothing may use them as a token.
    public var eosTokenIdsInVocabulary: [Int] { eosTokenIds.filter { $0 >= 0 && $0 < vocabSize } }
}

/// The adapted form of one linear layer: y = f(x, weight, bias) in place of x·Wᵀ + b.
public typealias LinearOverride = (_ x: Tensor, _ weight: Tensor, _ bias: Tensor?) -> Tensor

/// A causal language model: its configuration, its parameters by Hugging Face name, and the forward pass the
/// objectives, scoring and generation use. Losses, log-probabilities and scores are built on `hiddenStates` and
/// `lmHead` once, for every architecture (GLMScoring.swift).
public protocol CausalLanguageModel: AnyObject {
    var configuration: any CausalLMConfig { get }
    /// Every parameter by its Hugging Face name.
    var parameters: [String: Tensor] { get }
    /// Adapted linear layers by module name (`AdaptableLinear.module`); LoRA installs its fused op here.
    var adaptedLinears: [String: LinearOverride] { get set }
    /// The output projection `[V, H]`.
    var lmHead: Tensor { get }
    /// Activation recompute (`training.gradient_checkpointing`): decoder layers keep only their inputs in a recorded
    /// forward and run again in the backward. A model without it keeps `false` when set (the default here).
    var recomputesActivations: Bool { get set }
    /// Final hidden states `[B, T, H]` of `ids` (`B·T`, row-major): positions default to `past ..< past+T`, block
    /// positions (only for `usesBlockPositions` models) to 0, the mask to causal; a cache (only under
    /// `Autograd.noGrad`) gets this call's keys and values appended.
    func hiddenStates(ids: [Int32], batch: Int, length: Int, positions: [Int32]?, blockPositions: [Int32]?,
                      mask: AttentionMask?, cache: KVCache?) -> Tensor
    /// An empty KV cache for `batch` sequences.
    func makeCache(batch: Int, capacity: Int) -> KVCache
    /// Replaces one parameter (same name and shape).
    func replaceParameter(_ name: String, with tensor: Tensor) throws
    /// Rounds every frozen matrix parameter to bf16 storage; returns how many were converted.
    @discardableResult func storeFrozenMatricesInBF16() -> Int
}

extension CausalLanguageModel {
    public var recomputesActivations: Bool {
        get { false }
        set {}  // not supported by this model: stays false, and the trainer says so
    }

    public var modelTypeName: String { configuration.modelTypeName }
    public var adaptableLinears: [AdaptableLinear] { configuration.adaptableLinears }
    public var ggufArchitecture: String { configuration.ggufArchitecture }
    public var adaptableTargets: [String] { configuration.adaptableTargets }

    public func hiddenStates(ids: [Int32], batch: Int, length: Int, positions: [Int32]? = nil,
                             blockPositions: [Int32]? = nil, mask: AttentionMask? = nil) -> Tensor {
        hiddenStates(ids: ids, batch: batch, length: length, positions: positions, blockPositions: blockPositions,
                     mask: mask, cache: nil)
    }

    /// Logits `[..., V]` of hidden states `[..., H]`.
    public func logits(_ hidden: Tensor) -> Tensor { Tensor.linear(hidden, weight: lmHead) }

    /// Bytes held by the parameters' storages (tied weights once): 2 per element for bf16, 4 for f32.
    public var parameterBytes: Int { parameters.values.reduce(0) { $0 + $1.storageBytes } }
    /// Total number of parameter elements (tied weights counted once).
    public var parameterCount: Int { parameters.values.reduce(0) { $0 + $1.count } }

    /// Throws a GLMError naming the first token id outside the vocabulary (user input check before a forward pass).
    public func checkTokenIds(_ ids: [Int32], source: String = "input") throws {
        let vocab = configuration.vocabSize
        if let bad = ids.firstIndex(where: { $0 < 0 || Int($0) >= vocab }) {
            throw GLMError("\(source): token id \(ids[bad]) at index \(bad) is outside the vocabulary of \(vocab)")
        }
    }
}

extension GLMModelType {
    /// llama.cpp's architecture name: `chatglm` for glm (ChatGLM/GLM-4-9B layout), `glm4` for glm4.
    public var ggufArchitecture: String { self == .glm4 ? "glm4" : "chatglm" }
}

extension GLMConfig: CausalLMConfig {
    public var modelTypeName: String { modelType.rawValue }
    public var usesBlockPositions: Bool { rotary2D }
    public var adaptableLinears: [AdaptableLinear] { GLMWeights.adaptableLinears(self) }
    public var ggufArchitecture: String { modelType.ggufArchitecture }
    public var parameterCount: Int { GLMWeights.expectedShapes(self).reduce(0) { $0 &+ $1.shape.reduce(1, &*) } }
    public var cacheBytesPerPosition: Int {
        let (a, o1) = numHiddenLayers.multipliedReportingOverflow(by: keyValueWidth)
        let (b, o2) = a.multipliedReportingOverflow(by: 2 * 4)
        return o1 || o2 ? Int.max : b
    }
}

extension GLMForCausalLM: CausalLanguageModel {
    public var configuration: any CausalLMConfig { config }
    public func makeCache(batch: Int, capacity: Int) -> KVCache {
        KVCache(layers: config.numHiddenLayers, width: config.keyValueWidth, batch: batch, capacity: capacity)
    }
}

extension GLMWeights {
    /// The adaptable linear modules of one GLM / GLM-4 layer: sub-module path, target name, weight shape `[out, in]`,
    /// kind, llama.cpp's tensor name and the parts vLLM serves a fused weight as — q/k/v/o projections and the
    /// fused gate_up and down MLP projections (llama.cpp's fused `ffn_up` is gate_up_proj).
    public static func layerLinears(_ c: GLMConfig)
        -> [(path: String, target: String, shape: [Int], kind: LinearKind, gguf: String, parts: [LinearPart])] {
        let (h, q, kv, i) = (c.hiddenSize, c.queryWidth, c.keyValueWidth, c.intermediateSize)
        return [("self_attn.", "q_proj", [q, h], .attention, "attn_q", []),
                ("self_attn.", "k_proj", [kv, h], .attention, "attn_k", []),
                ("self_attn.", "v_proj", [kv, h], .attention, "attn_v", []),
                ("self_attn.", "o_proj", [h, q], .attention, "attn_output", []),
                ("mlp.", "gate_up_proj", [2 * i, h], .mlp, "ffn_up",
                 [LinearPart(target: "gate_proj", rows: i), LinearPart(target: "up_proj", rows: i)]),
                ("mlp.", "down_proj", [h, i], .mlp, "ffn_down", [])]
    }

    /// The adaptable linears of every layer (`layerLinears`, layer-major).
    public static func adaptableLinears(_ c: GLMConfig) -> [AdaptableLinear] {
        let modules = layerLinears(c)
        return (0..<c.numHiddenLayers).flatMap { l in
            modules.map {
                AdaptableLinear(module: layerPrefix(l) + $0.path + $0.target, target: $0.target, layer: l, shape: $0.shape,
                                kind: $0.kind, gguf: "blk.\(l).\($0.gguf)", parts: $0.parts)
            }
        }
    }
}
