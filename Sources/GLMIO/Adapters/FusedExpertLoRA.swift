// LoRA on a MoE model's routed experts in peft's `target_parameters` layout (peft 0.21's ParamWrapper on the fused
// 3-D parameters `mlp.experts.gate_up_proj` [E, 2I, H] and `mlp.experts.down_proj` [E, H, I]), converted to and
// from GLMTrain's per-expert modules (`mlp.experts.{e}.{gate,up,down}_proj`, A [r, in], B [out, r]).
//
// peft (src/peft/tuners/lora/layer.py, ParamWrapper.get_delta_weight, is_transposed false): for a parameter
// [E, out, in] with rank ρ, lora_A is [E·ρ, in] read as (E, ρ, in) — expert-major, row e·ρ + k — and lora_B is
// [out, ρ·E] read as (out, ρ, E) — rank-major, column k·E + e; ΔW_e = scaling·B_e·A_e with scaling α/ρ (α/√ρ
// under rsLoRA), ρ and α the rank_pattern/alpha_pattern values for the parameter or r and lora_alpha. Each rank
// is per expert. gate_up has one A_e for gate and up (gate the first I rows of B_e). The wrappers nest in the
// experts module's parameter order: with both targets, gate_up is the inner one (`…experts.base_layer.lora_A`)
// and down the outer (`…experts.lora_A`); with one target it is `…experts.lora_A`.
//
// GLMTrain's separate gate and up adapters (rank r each) become one gate_up adapter of rank 2r: A_e = [A_gate;
// A_up], B_e = [[B_gate, 0], [0, B_up]], with rank_pattern/alpha_pattern {".*\.gate_up_proj": 2r / 2α} so the
// scale stays α/r — what peft's own transformers-v5 conversion of gate_proj/up_proj targets writes. Reading gives
// gate and up the shared A (rank ρ each; B_e's first and last halves), which is what peft trains from such a file
// even when B_e is block-diagonal (its zero blocks train too): `LoRA` keeps the two A's one trained tensor, and
// writing such a pair back gives the file's tensors bit for bit.
import Foundation
import GLMCore
import GLMModel

public enum FusedExpertLoRA {
    /// The pattern key peft's conversion writes for the fused gate_up rank and alpha.
    public static let gateUpPatternKey = ".*\\.gate_up_proj"

    /// A routed expert's module ("model.layers.1.mlp.experts.3.gate_proj"): its layer, expert, projection and
    /// the fused parameter holding it ("gate_up_proj" or "down_proj"), or nil.
    public static func expertModule(_ module: String) -> (layer: Int, expert: Int, proj: String, fused: String)? {
        let parts = module.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 7, parts[0] == "model", parts[1] == "layers", let l = Int(parts[2]), l >= 0,
              parts[3] == "mlp", parts[4] == "experts", let e = Int(parts[5]), e >= 0, String(e) == parts[5] else { return nil }
        switch parts[6] {
        case "gate_proj", "up_proj": return (l, e, parts[6], "gate_up_proj")
        case "down_proj": return (l, e, parts[6], "down_proj")
        default: return nil
        }
    }

    /// Whether a `target_modules` entry names a dense/shared MLP projection, which peft 0.21 on transformers 5
    /// reads as the routed experts of a glm4_moe model.
    static func namesMLP(_ target: String) -> Bool {
        ["gate_proj", "up_proj", "down_proj"].contains { target == $0 || target.hasSuffix("." + $0) }
    }

    /// The fused parameter a target_parameters entry names ("gate_up_proj" / "down_proj"), or nil.
    static func fusedName(_ p: String) -> String? {
        ["gate_up_proj", "down_proj"].first { p == $0 || p.hasSuffix(".experts." + $0) || p == "experts." + $0 }
    }

    /// Decode-time checks of target_parameters and the rank/alpha patterns (only the fused gate_up's, keeping
    /// the scale): one-line errors naming the file and key.
    static func checkConfig(_ c: AdapterConfig, source: String) throws {
        func fail(_ key: String, _ what: String) -> GLMError { GLMError("\(source): key '\(key)': \(what)") }
        for p in c.targetParameters where fusedName(p) == nil {
            throw fail("target_parameters", "'\(p)' is not a fused routed-expert parameter GLMTrain knows (expected mlp.experts.gate_up_proj or mlp.experts.down_proj)")
        }
        if !c.targetParameters.isEmpty {
            switch c.targetModules {
            case .list(let l):
                if let t = l.first(where: namesMLP) {
                    throw fail("target_modules", "'\(t)' beside target_parameters: peft 0.21 on transformers 5 reads gate_proj/up_proj/down_proj targets of a MoE model as the routed experts, so dense or shared-expert MLP LoRA cannot be given this way")
                }
            default:
                throw fail("target_modules", "expected a list of module names beside target_parameters (peft resolves a regex or all-linear to the routed experts too)")
            }
        }
        guard !c.rankPattern.isEmpty || !c.alphaPattern.isEmpty else { return }
        // Adapters of linear modules only: peft's per-module patterns (ModulePatterns.swift).
        guard !c.targetParameters.isEmpty else { try AdapterConfig.checkModulePatterns(c, source: source); return }
        let gateUp = "model.layers.1.mlp.experts.gate_up_proj"
        let others = ["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.0.self_attn.v_proj",
                      "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj", "model.layers.0.mlp.up_proj",
                      "model.layers.0.mlp.down_proj", "model.layers.1.mlp.shared_experts.gate_proj", "model.layers.1.mlp.experts.down_proj"]
        for (key, pattern) in [("rank_pattern", c.rankPattern), ("alpha_pattern", c.alphaPattern)] {
            for k in pattern.keys {
                let re = "(.*\\.)?(" + k + ")"
                guard AdapterTargets.fullMatch(re, gateUp), !others.contains(where: { AdapterTargets.fullMatch(re, $0) }) else {
                    throw fail(key, "'\(k)': per-module patterns are supported only for the fused routed-expert gate_up_proj")
                }
            }
            guard pattern.count <= 1 else { throw fail(key, "more than one pattern for gate_up_proj") }
        }
        guard Set(c.rankPattern.keys) == Set(c.alphaPattern.keys) else {
            throw fail("rank_pattern", "rank_pattern and alpha_pattern must name the same gate_up_proj pattern (else its scale differs from lora_alpha/r)")
        }
        let rank = c.rankPattern.values.first!, alpha = c.alphaPattern.values.first!
        guard case .integer(let digits) = rank, let rho = Int(digits), rho >= 1, rho <= AdapterConfig.maxRank else {
            throw fail("rank_pattern", "expected a positive integer rank up to \(AdapterConfig.maxRank)")
        }
        let a: Double
        switch alpha {
        case .integer(let d): a = Double(d) ?? .infinity
        case .double(let d): a = d
        default: throw fail("alpha_pattern", "expected a number")
        }
        try AdapterConfig.checkAlpha(a, "\(source): key 'alpha_pattern'")
        let s = c.useRslora ? a / Double(rho).squareRoot() : a / Double(rho)
        guard abs(s - c.scale) <= 1e-12 * abs(c.scale) else {
            let rule = c.useRslora ? "lora_alpha/√r (rsLoRA)" : "lora_alpha/r"
            throw fail("alpha_pattern", "gate_up_proj scale \(s) differs from \(rule) = \(c.scale); GLMTrain applies one scale to the fused experts and the other adapters")
        }
    }

    /// `tensors` with a routed expert's missing gate/up lora_A filled in from its twin's: a training checkpoint
    /// stores an A that gate and up share (read from peft's fused layout) once, under the first module's name.
    public static func completingSharedA(_ tensors: [String: Tensor]) -> [String: Tensor] {
        var out = tensors
        for name in tensors.keys {
            guard let (module, isB) = LoRATensorName.parse(name), isB, let e = expertModule(module), e.fused == "gate_up_proj" else { continue }
            let a = LoRATensorName.name(module: module, isB: false)
            guard tensors[a] == nil else { continue }
            let twin = module.dropLast(e.proj.count) + (e.proj == "gate_proj" ? "up_proj" : "gate_proj")
            if let shared = tensors[LoRATensorName.name(module: String(twin), isB: false)] { out[a] = shared }
        }
        return out
    }

    /// For export: a routed expert's gate and up that share A of rank 2r with block-diagonal B ([[B_g, 0], [0, B_u]],
    /// what GLMTrain's own separate rank-r adapters fuse to) become those rank-r adapters again — the same ΔW, at the
    /// rank the config states (vLLM's max_lora_rank, llama.cpp's stacked rank). Any other pair is left as it is.
    public static func splittingBlockDiagonal(_ adapter: PEFTAdapter) -> PEFTAdapter {
        let r = adapter.config.r
        var tensors = adapter.tensors
        for module in adapter.moduleNames {
            guard let e = expertModule(module), e.proj == "gate_proj" else { continue }
            let up = String(module.dropLast("gate_proj".count)) + "up_proj"
            guard let (ga, gb) = adapter.matrices(module: module), let (ua, ub) = adapter.matrices(module: up),
                  ga.shape[0] == 2 * r, ua.shape == ga.shape, gb.shape[1] == 2 * r, ub.shape[1] == 2 * r,
                  ga.bitwiseEqual(ua) else { continue }
            let (gv, uv) = (values(gb), values(ub))
            let rows = gb.shape[0], rowsU = ub.shape[0]
            var zeroOffDiagonal = true
            let width = 2 * r
            for o in 0..<rows {
                let base = o * width
                for k in r..<width where gv[base + k] != 0 { zeroOffDiagonal = false }
            }
            for o in 0..<rowsU {
                let base = o * width
                for k in 0..<r where uv[base + k] != 0 { zeroOffDiagonal = false }
            }
            guard zeroOffDiagonal else { continue }
            let av = values(ga), inF = ga.shape[1]
            tensors[LoRATensorName.name(module: module, isB: false)] = Tensor(Array(av[0..<(r * inF)]), shape: [r, inF])
            tensors[LoRATensorName.name(module: up, isB: false)] = Tensor(Array(av[(r * inF)...]), shape: [r, inF])
            var bg = [Float](), bu = [Float]()
            for o in 0..<rows { let base = o * width; bg += gv[base..<(base + r)] }
            for o in 0..<rowsU { let base = o * width; bu += uv[(base + r)..<(base + width)] }
            tensors[LoRATensorName.name(module: module, isB: true)] = Tensor(bg, shape: [rows, r])
            tensors[LoRATensorName.name(module: up, isB: true)] = Tensor(bu, shape: [rowsU, r])
        }
        return PEFTAdapter(config: adapter.config, tensors: tensors)
    }

    /// The gate_up rank ρ peft uses: the rank_pattern value, else r.
    static func gateUpRank(_ c: AdapterConfig) -> Int { c.rankPattern.values.first?.intValue ?? c.r }

    /// Allowed ranks of a per-expert gate/up module's matrices under `c` (r, and the fused gate_up rank).
    static func allowedRanks(_ c: AdapterConfig, module: String) -> Set<Int> {
        if c.hasModulePatterns { return [c.rank(forModule: module)] }
        guard let m = expertModule(module), m.fused == "gate_up_proj" else { return [c.r] }
        return [c.r, gateUpRank(c)]
    }

    static func values(_ t: Tensor) -> [Float] { Array(UnsafeBufferPointer(start: t.pointer, count: t.count)) }

    // MARK: reading (file → per-expert)

    /// Converts the fused tensors of a file read with target_parameters into per-expert modules. Tensors of other
    /// modules pass through. Errors name `source` and the tensor.
    static func unfuse(config c: AdapterConfig, tensors: [String: Tensor], source: String, keyPrefix: String) throws -> [String: Tensor] {
        guard !c.targetParameters.isEmpty else { return tensors }
        func fail(_ name: String, _ what: String) -> GLMError { GLMError("\(source): tensor '\(keyPrefix)\(name)': \(what)") }
        let fused = Set(c.targetParameters.compactMap(fusedName))
        // which wrapper holds which parameter: inner (base_layer) gate_up and outer down when both
        let outer = fused.contains("down_proj") ? "down_proj" : "gate_up_proj"
        var out: [String: Tensor] = [:]
        var layers: [Int: [String: (a: Tensor?, b: Tensor?)]] = [:]
        for (name, t) in tensors {
            guard let (module, isB) = LoRATensorName.parse(name), module.hasSuffix(".mlp.experts") || module.hasSuffix(".mlp.experts.base_layer") else {
                out[name] = t; continue
            }
            let inner = module.hasSuffix(".base_layer")
            let expertsModule = inner ? String(module.dropLast(".base_layer".count)) : module
            guard let layer = LoRATensorName.layer(ofModule: expertsModule), expertsModule == "model.layers.\(layer).mlp.experts" else {
                throw fail(name, "not a LoRA matrix of a decoder layer's mlp.experts")
            }
            let param: String
            if inner {
                guard fused.count == 2 else { throw fail(name, "a nested (base_layer) wrapper, but target_parameters names one parameter") }
                param = "gate_up_proj"
            } else { param = outer }
            var entry = layers[layer, default: [:]][param] ?? (nil, nil)
            if isB { entry.b = t } else { entry.a = t }
            layers[layer, default: [:]][param] = entry
        }
        for (layer, params) in layers {
            for (param, pair) in params {
                let base = "model.layers.\(layer).mlp.experts\(param == "gate_up_proj" && fused.count == 2 ? ".base_layer" : "")"
                guard let a = pair.a, let b = pair.b else {
                    throw fail(LoRATensorName.name(module: base, isB: pair.a != nil), "missing (lora_A and lora_B come in pairs)")
                }
                let aName = LoRATensorName.name(module: base, isB: false), bName = LoRATensorName.name(module: base, isB: true)
                guard a.rank == 2, b.rank == 2 else { throw fail(a.rank == 2 ? bName : aName, "expected a matrix") }
                let rho = param == "gate_up_proj" ? gateUpRank(c) : c.r
                let rows = a.shape[0], inF = a.shape[1], outF = b.shape[0]
                guard rows % rho == 0, rows > 0 else {
                    throw fail(aName, "shape \(a.shape): \(rows) rows are not experts × rank \(rho)")
                }
                let experts = rows / rho
                guard b.shape[1] == rows else { throw fail(bName, "shape \(b.shape); expected [\(outF), \(rows)] (rank \(rho) × \(experts) experts, as lora_A)") }
                if param == "gate_up_proj" { guard outF % 2 == 0 else { throw fail(bName, "\(outF) rows cannot split into gate and up") } }
                let av = values(a), bv = values(b)
                // per-expert A_e [rho, in] and B_e [out, rho]
                for e in 0..<experts {
                    var ae = [Float](repeating: 0, count: rho * inF), be = [Float](repeating: 0, count: outF * rho)
                    for k in 0..<rho { for i in 0..<inF { ae[k * inF + i] = av[(e * rho + k) * inF + i] } }
                    for o in 0..<outF { for k in 0..<rho { be[o * rho + k] = bv[o * rows + k * experts + e] } }
                    let prefix = "model.layers.\(layer).mlp.experts.\(e)."
                    if param == "down_proj" {
                        out[LoRATensorName.name(module: prefix + "down_proj", isB: false)] = Tensor(ae, shape: [rho, inF])
                        out[LoRATensorName.name(module: prefix + "down_proj", isB: true)] = Tensor(be, shape: [outF, rho])
                        continue
                    }
                    // gate and up share A_e (rank ρ each); B_e's first im rows are gate's, the rest up's
                    let im = outF / 2
                    for (pi, proj) in ["gate_proj", "up_proj"].enumerated() {
                        out[LoRATensorName.name(module: prefix + proj, isB: false)] = Tensor(ae, shape: [rho, inF])
                        out[LoRATensorName.name(module: prefix + proj, isB: true)] = Tensor(Array(be[(pi * im * rho)..<((pi + 1) * im * rho)]), shape: [im, rho])
                    }
                }
            }
        }
        return out
    }

    // MARK: writing (per-expert → file)

    /// The adapter in peft's layout when it has routed-expert modules (else unchanged): target_parameters, the
    /// fused tensors, rank/alpha patterns for a rank-2r gate_up. `experts` is the base model's routed-expert count
    /// when known (a layer must then adapt all of them). Dense and shared-expert MLP adapters are refused: peft
    /// 0.21 on transformers 5 cannot hold them beside the experts.
    public static func fuse(_ adapter: PEFTAdapter, experts known: Int?) throws -> PEFTAdapter {
        var c = adapter.config
        let modules = adapter.moduleNames
        let expertModules = modules.compactMap { m in expertModule(m).map { (m, $0) } }
        guard !expertModules.isEmpty else { return adapter }
        guard !c.hasModulePatterns else {
            throw GLMError("routed-expert LoRA with per-module rank_pattern/alpha_pattern cannot be written in peft's target_parameters layout (one rank and alpha per fused parameter)")
        }
        if let mlp = modules.first(where: { expertModule($0) == nil && namesMLP($0) }) {
            throw GLMError("\(mlp): LoRA on a dense or shared-expert MLP projection cannot be written in peft's layout beside routed-expert LoRA (peft 0.21 on transformers 5 reads gate_proj/up_proj/down_proj targets of glm4_moe as the routed experts); export --format merged, or train attention-only (lora.targets [q_proj, k_proj, v_proj, o_proj])")
        }
        var out: [String: Tensor] = [:]
        var leafTargets = Set<String>()
        for m in modules where expertModule(m) == nil {
            let (a, b) = adapter.matrices(module: m)!
            out[LoRATensorName.name(module: m, isB: false)] = a
            out[LoRATensorName.name(module: m, isB: true)] = b
            leafTargets.insert(String(m.split(separator: ".").last!))
        }
        var byLayer: [Int: [Int: [String: (a: Tensor, b: Tensor)]]] = [:]
        for (m, info) in expertModules { byLayer[info.layer, default: [:]][info.expert, default: [:]][info.proj] = adapter.matrices(module: m)! }
        let projsPresent = Set(expertModules.map(\.1.proj))
        let hasGateUp = projsPresent.contains("gate_proj") || projsPresent.contains("up_proj")
        let hasDown = projsPresent.contains("down_proj")
        let nested = hasGateUp && hasDown
        var gateUpRanks = Set<Int>()
        for layer in byLayer.keys.sorted() {
            let experts = byLayer[layer]!
            let count = known ?? (experts.keys.max()! + 1)
            for e in 0..<count {
                guard let projs = experts[e], projs.keys.count == projsPresent.count else {
                    throw GLMError("model.layers.\(layer).mlp.experts.\(e): no LoRA on \(projsPresent.subtracting(experts[e]?.keys.map { $0 } ?? []).sorted().joined(separator: ", ")) although other experts have it; peft's fused parameters adapt every expert alike")
                }
            }
            if let bad = experts.keys.first(where: { $0 >= count }) {
                throw GLMError("model.layers.\(layer).mlp.experts.\(bad): expert \(bad) does not exist (the model has \(count) routed experts)")
            }
            if hasDown {
                let (a, b) = try fuseDown(layer: layer, experts: (0..<count).map { experts[$0]!["down_proj"]! }, r: c.r)
                let base = "model.layers.\(layer).mlp.experts"
                out[LoRATensorName.name(module: base, isB: false)] = a
                out[LoRATensorName.name(module: base, isB: true)] = b
            }
            if hasGateUp {
                let (a, b, rho) = try fuseGateUp(layer: layer, experts: (0..<count).map { experts[$0]! })
                gateUpRanks.insert(rho)
                let base = "model.layers.\(layer).mlp.experts\(nested ? ".base_layer" : "")"
                out[LoRATensorName.name(module: base, isB: false)] = a
                out[LoRATensorName.name(module: base, isB: true)] = b
            }
        }
        guard gateUpRanks.count <= 1 else {
            throw GLMError("routed-expert gate/up LoRA: layers fuse to different ranks \(gateUpRanks.sorted()) (peft takes one rank_pattern for gate_up_proj)")
        }
        let names = (hasGateUp ? ["gate_up_proj"] : []) + (hasDown ? ["down_proj"] : [])
        // names as read (e.g. "mlp.experts.gate_up_proj") when they are the same parameters, else peft's conversion's
        c.targetParameters = c.targetParameters.compactMap(fusedName) == names ? c.targetParameters : names
        c.targetModules = .list(leafTargets.sorted())
        c.excludeModules = nil
        c.rankPattern = [:]; c.alphaPattern = [:]
        if let rho = gateUpRanks.first, rho != c.r {
            let ratio = Double(rho) / Double(c.r)
            c.rankPattern = [gateUpPatternKey: .int(rho)]
            c.alphaPattern = [gateUpPatternKey: AdapterJSON.number(c.useRslora ? c.loraAlpha * ratio.squareRoot() : c.loraAlpha * ratio)]
        }
        return PEFTAdapter(config: c, tensors: out)
    }

    /// Stacks per-expert (A_e [ρ, in], B_e [out, ρ]) into peft's lora_A [E·ρ, in] (expert-major) and lora_B
    /// [out, ρ·E] (rank-major).
    static func stack(_ pairs: [(a: [Float], b: [Float])], rank rho: Int, inF: Int, outF: Int) -> (Tensor, Tensor) {
        let n = pairs.count
        var a = [Float](repeating: 0, count: n * rho * inF), b = [Float](repeating: 0, count: outF * rho * n)
        for (e, p) in pairs.enumerated() {
            for k in 0..<rho { for i in 0..<inF { a[(e * rho + k) * inF + i] = p.a[k * inF + i] } }
            for o in 0..<outF { for k in 0..<rho { b[o * rho * n + k * n + e] = p.b[o * rho + k] } }
        }
        return (Tensor(a, shape: [n * rho, inF]), Tensor(b, shape: [outF, rho * n]))
    }

    static func fuseDown(layer: Int, experts: [(a: Tensor, b: Tensor)], r: Int) throws -> (Tensor, Tensor) {
        let (a0, b0) = experts[0]
        let rho = a0.shape[0], inF = a0.shape[1], outF = b0.shape[0]
        for (e, p) in experts.enumerated() where p.a.shape != [rho, inF] || p.b.shape != [outF, rho] {
            throw GLMError("model.layers.\(layer).mlp.experts.\(e).down_proj: lora_A \(p.a.shape) / lora_B \(p.b.shape) differ from expert 0's (peft stacks them)")
        }
        guard rho == r else { throw GLMError("model.layers.\(layer).mlp.experts.0.down_proj: rank \(rho) is not r = \(r)") }
        return stack(experts.map { (values($0.a), values($0.b)) }, rank: rho, inF: inF, outF: outF)
    }

    /// gate and up of each expert into one gate_up adapter: a shared A (gate's and up's A equal) keeps the rank,
    /// else A = [A_gate; A_up] with block-diagonal B (rank summed); a missing part gets zero rows of B.
    static func fuseGateUp(layer: Int, experts: [[String: (a: Tensor, b: Tensor)]]) throws -> (Tensor, Tensor, Int) {
        var pairs: [(a: [Float], b: [Float])] = []
        var shape: (rho: Int, inF: Int, outF: Int)? = nil
        for (e, projs) in experts.enumerated() {
            let g = projs["gate_proj"], u = projs["up_proj"]
            guard let any = g ?? u else { continue }
            let im = any.b.shape[0], inF = any.a.shape[1]
            let pa: [Float], pb: [Float], rho: Int
            if let g, let u {
                guard g.a.shape[1] == u.a.shape[1], g.b.shape[0] == u.b.shape[0] else {
                    throw GLMError("model.layers.\(layer).mlp.experts.\(e): gate_proj and up_proj LoRA shapes differ")
                }
                let ga = values(g.a), ua = values(u.a), gb = values(g.b), ub = values(u.b)
                if g.a.shape == u.a.shape && ga == ua {
                    rho = g.a.shape[0]; pa = ga; pb = gb + ub
                } else {
                    let rg = g.a.shape[0], ru = u.a.shape[0]
                    rho = rg + ru; pa = ga + ua
                    var b = [Float](repeating: 0, count: 2 * im * rho)
                    for o in 0..<im { for k in 0..<rg { b[o * rho + k] = gb[o * rg + k] } }
                    for o in 0..<im { for k in 0..<ru { b[(im + o) * rho + rg + k] = ub[o * ru + k] } }
                    pb = b
                }
            } else {
                rho = any.a.shape[0]; pa = values(any.a)
                let zeros = [Float](repeating: 0, count: im * rho)
                pb = g != nil ? values(any.b) + zeros : zeros + values(any.b)
            }
            if let s = shape, s != (rho, inF, 2 * im) {
                throw GLMError("model.layers.\(layer).mlp.experts.\(e): gate/up LoRA fuses to rank \(rho) over [\(2 * im), \(inF)], expert 0's to rank \(s.rho) over [\(s.outF), \(s.inF)] (peft stacks them)")
            }
            shape = (rho, inF, 2 * im)
            pairs.append((pa, pb))
        }
        let s = shape!
        let (a, b) = stack(pairs, rank: s.rho, inF: s.inF, outF: s.outF)
        return (a, b, s.rho)
    }
}
