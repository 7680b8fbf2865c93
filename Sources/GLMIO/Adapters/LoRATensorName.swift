// The PEFT tensor names of LoRA matrices ("model.layers.3.self_attn.q_proj.lora_A.weight", without PEFT's
// "base_model.model." prefix), for whatever linear modules a model declares (`AdaptableLinear`).
import GLMModel

public enum LoRATensorName {
    /// "<module>.lora_A.weight" (`isB`: lora_B).
    public static func name(module: String, isB: Bool) -> String { module + (isB ? ".lora_B.weight" : ".lora_A.weight") }

    /// The module and matrix of a tensor name of the form `name` returns, or nil.
    public static func parse(_ name: String) -> (module: String, isB: Bool)? {
        for (suffix, isB) in [(".lora_A.weight", false), (".lora_B.weight", true)] where name.hasSuffix(suffix) {
            let module = String(name.dropLast(suffix.count))
            guard !module.isEmpty else { return nil }
            return (module, isB)
        }
        return nil
    }

    /// The decoder-layer index in a module name (the N of "….layers.N.…", what PEFT's layers_to_transform
    /// selects by), or nil when it names none.
    public static func layer(ofModule module: String) -> Int? {
        let parts = module.split(separator: ".", omittingEmptySubsequences: false)
        guard let i = parts.firstIndex(of: "layers"), i + 1 < parts.count, let n = Int(parts[i + 1]), n >= 0,
              String(n) == parts[i + 1] else { return nil }
        return n
    }
}

/// The linears a model declares, by module name: what adapter files are checked against.
public struct DeclaredLinears: Sendable {
    public let all: [AdaptableLinear]
    public let numHiddenLayers: Int
    private let byModule: [String: Int]

    public init(_ config: any CausalLMConfig) {
        all = config.adaptableLinears
        numHiddenLayers = config.numHiddenLayers
        byModule = Dictionary(all.enumerated().map { ($1.module, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public subscript(module: String) -> AdaptableLinear? { byModule[module].map { all[$0] } }

    /// The declaration index of a module (the canonical order of adapters and their tensors).
    public func index(of module: String) -> Int? { byModule[module] }

    /// The distinct target names, in declaration order.
    public var targets: [String] {
        var seen = Set<String>()
        return all.map(\.target).filter { seen.insert($0).inserted }
    }

    /// One layer's module paths below its layer prefix ("self_attn.q_proj", ...), for messages.
    public var layerModulePaths: [String] {
        guard let first = all.first else { return [] }
        return all.filter { $0.layer == first.layer }.map { m in
            guard let r = m.module.range(of: "layers.\(m.layer).") else { return m.module }
            return String(m.module[r.upperBound...])
        }
    }
}
