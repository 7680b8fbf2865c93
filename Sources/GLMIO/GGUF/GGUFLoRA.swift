// LoRA adapters as llama.cpp's GGUF adapter files: what convert_lora_to_gguf.py (llama.cpp, with gguf-py 0.19)
// writes for a PEFT adapter directory, without Python.
//
// Metadata, in the converter's order: general.architecture ("glm4" for Glm4ForCausalLM, "chatglm" for
// GlmForCausalLM), general.type "adapter", adapter.type "lora", general.name (+ version, finetune, basename,
// size_label when gguf-py's naming heuristics find them in the adapter directory's name), general.base_model.*
// and general.tags from the PEFT model card, adapter.lora.alpha, general.quantization_version 2.
// Tensors: `blk.N.<attn_q|attn_k|attn_v|attn_output|ffn_up|ffn_down>.weight.lora_a` `[r, in]` and `.lora_b`
// `[out, r]` (ggml ne order reversed), ordered by the PEFT module name as safetensors sorts it, A before B; a MoE's
// routed experts as stacked `blk.N.ffn_{down,gate,up}_exps.weight.lora_a` `[experts, r, in]` / `.lora_b`
// `[experts, out, r]` (GGUFStackedLoRA.swift).
//
// One deliberate difference: the converter writes lora_alpha as it is, so an rsLoRA adapter (scale α/√r) is
// mis-scaled by llama.cpp (scale α/r). GLMTrain writes the effective alpha α·√r instead, which llama.cpp's
// α/r turns into the adapter's true scale.
import Foundation
import GLMCore
import GLMModel

public enum GGUFLoRA {
    /// The GGUF tensor name of one LoRA matrix: "blk.3.attn_q.weight.lora_a"; nil when llama.cpp takes no LoRA on
    /// the module.
    public static func tensorName(_ linear: AdaptableLinear, isB: Bool) -> String? {
        linear.gguf.map { "\($0).weight.lora_\(isB ? "b" : "a")" }
    }

    /// The file gguf-py writes for `adapter` on a base model of `model`. `name` is what the converter takes
    /// the model name from: the adapter directory's name.
    public static func writer(adapter: PEFTAdapter, model: any CausalLMConfig, name: String, type: GGMLType = .f32) throws -> GGUFWriter {
        try adapter.validate(against: model)
        try adapter.checkFinite(source: name)
        var w = GGUFWriter()
        w.add("general.architecture", .string(model.ggufArchitecture))
        w.add("general.type", .string("adapter"))
        w.add("adapter.type", .string("lora"))
        // Tensors in the converter's order: PEFT names sorted as strings (safetensors' order), A then B; a layer's
        // stacked tensors (routed experts) where its last stacked module comes, by name (down, gate, up).
        let modules = adapter.modules(in: model).sorted { $0.module < $1.module }
        var stacks: [String: [AdaptableLinear]] = [:], lastStacked: [Int: String] = [:]
        for m in modules where m.gguf == nil {
            if adapter.config.hasModulePatterns {
                throw GLMError("\(name): \(m.module): rank_pattern/alpha_pattern on routed experts cannot be written for llama.cpp (its stacked expert tensors take one rank and alpha)")
            }
            guard let slot = m.ggufStack else {
                throw GLMError("\(name): \(m.module): llama.cpp has no LoRA tensor for this module (\(model.ggufArchitecture))")
            }
            stacks[slot.tensor, default: []].append(m)
            lastStacked[m.layer] = m.module
        }
        var totalParameters = 0
        for m in modules {
            if m.gguf != nil {
                let (a, b) = adapter.matrices(module: m.module)!
                w.add(tensor: a, name: tensorName(m, isB: false)!, type: type)
                w.add(tensor: patternScaled(b, module: m.module, rank: a.shape[0], adapter.config), name: tensorName(m, isB: true)!, type: type)
                totalParameters += b.shape[0] * a.shape[1]
            } else if lastStacked[m.layer] == m.module {
                for tensor in stacks.keys.filter({ stacks[$0]![0].layer == m.layer }).sorted() {
                    let (a, b) = GGUFStackedLoRA.stack(stacks[tensor]!, adapter: adapter)
                    w.add(tensor: a, name: "\(tensor).weight.lora_a", type: type)
                    w.add(tensor: b, name: "\(tensor).weight.lora_b", type: type)
                    totalParameters += b.shape[0] * b.shape[1] * a.shape[2]
                }
            }
        }
        // gguf-py's heuristics: a LoRA's parameter count is negated ("likely not exact").
        // gguf-py's add_string writes nothing for an empty string
        func add(_ key: String, _ value: String?) { if let value, !value.isEmpty { w.add(key, .string(value)) } }
        let naming = GGUFNaming.components(of: name, totalParameters: -totalParameters)
        add("general.name", GGUFNaming.title(naming.fullName ?? name))
        add("general.version", naming.version)
        add("general.organization", naming.organization.map(GGUFNaming.title))
        add("general.finetune", naming.finetune)
        add("general.basename", naming.basename)
        add("general.size_label", naming.sizeLabel)
        if let base = adapter.config.baseModelNameOrPath {
            w.add("general.base_model.count", .uint32(1))
            for (k, v) in GGUFNaming.baseModelEntry(base, totalParameters: -totalParameters) { add("general.base_model.0.\(k)", v) }
        }
        var tags: [GGUFValue] = []
        if let base = adapter.config.baseModelNameOrPath { tags.append(.string("base_model:adapter:\(base)")) }
        tags += [.string("lora"), .string("transformers"), .string("text-generation")]
        w.add("general.tags", .array(.string, tags))
        w.add("adapter.lora.alpha", .float32(Float(adapter.config.effectiveAlpha)))
        w.add("general.quantization_version", .uint32(2))
        return w
    }

    /// lora_B as llama.cpp needs it: llama.cpp scales every module by adapter.lora.alpha / (its tensors' rank), so a
    /// module whose rank_pattern/alpha_pattern scale differs gets the ratio folded into B (others unchanged).
    static func patternScaled(_ b: Tensor, module: String, rank: Int, _ c: AdapterConfig) -> Tensor {
        guard c.hasModulePatterns else { return b }
        let factor = c.scale(forModule: module) / (c.effectiveAlpha / Double(rank))
        return factor == 1 ? b : Autograd.noGrad { b.scaled(Float(factor)) }
    }

    /// Writes the GGUF adapter file to `path` (atomically).
    public static func write(adapter: PEFTAdapter, model: any CausalLMConfig, to path: String, name: String, type: GGMLType = .f32) throws {
        try writer(adapter: adapter, model: model, name: name, type: type).write(to: path)
    }

    /// Reads a GGUF LoRA adapter back as a PEFT adapter (ranks from the tensors, alpha as written, so the
    /// scale α/r is llama.cpp's). Errors name the file and the tensor.
    public static func read(path: String, model: any CausalLMConfig) throws -> PEFTAdapter {
        let file = try GGUFFile(path: path)
        guard file.value("general.type")?.stringValue == "adapter", file.value("adapter.type")?.stringValue == "lora" else {
            throw GLMError("\(path): not a LoRA adapter (general.type/adapter.type are not adapter/lora)")
        }
        let arch = model.ggufArchitecture
        guard file.value("general.architecture")?.stringValue == arch else {
            throw GLMError("\(path): general.architecture is \(file.value("general.architecture")?.description ?? "missing"); the base model needs '\(arch)'")
        }
        var byName: [String: (module: String, isB: Bool)] = [:]
        var stacks: [String: [Int: AdaptableLinear]] = [:]
        for m in model.adaptableLinears {
            for isB in [false, true] { if let n = tensorName(m, isB: isB) { byName[n] = (m.module, isB) } }
            if let slot = m.ggufStack { stacks["\(slot.tensor).weight", default: [:]][slot.index] = m }
        }
        var tensors: [String: Tensor] = [:]
        var stacked: [String: (a: Tensor?, b: Tensor?)] = [:]
        for info in file.tensors {
            let t: Tensor, isB: Bool
            if let (module, b) = byName[info.name] {
                t = try file.tensor(info.name); isB = b
                guard t.rank == 2 else { throw GLMError("\(path): tensor '\(info.name)': shape \(t.shape); expected a matrix") }
                tensors[LoRATensorName.name(module: module, isB: isB)] = t
            } else if let base = info.name.hasSuffix(".lora_a") || info.name.hasSuffix(".lora_b") ? String(info.name.dropLast(7)) : nil,
                      stacks[base] != nil {
                t = try file.tensor(info.name); isB = info.name.hasSuffix("b")
                guard t.rank == 3 else { throw GLMError("\(path): tensor '\(info.name)': shape \(t.shape); expected a stack [experts, \(isB ? "out, r" : "r, in")]") }
                if isB { stacked[base, default: (nil, nil)].b = t } else { stacked[base, default: (nil, nil)].a = t }
            } else {
                throw GLMError("\(path): tensor '\(info.name)' is not a LoRA matrix of a linear module of the base model")
            }
            let r = isB ? t.shape.last! : t.shape[t.rank - 2]
            guard r >= 1, r <= AdapterConfig.maxRank else { throw GLMError("\(path): tensor '\(info.name)': LoRA rank \(r) is outside 1...\(AdapterConfig.maxRank)") }
        }
        for (base, pair) in stacked.sorted(by: { $0.key < $1.key }) {
            guard let a = pair.a, let b = pair.b else { throw GLMError("\(path): tensor '\(base).lora_\(pair.a == nil ? "a" : "b")' is missing beside its partner") }
            tensors.merge(try GGUFStackedLoRA.unstack(a: a, b: b, name: base, slots: stacks[base]!, source: path)) { $1 }
        }
        // Ranks may differ between modules: llama.cpp scales each by alpha / its own rank, which is peft's
        // rank_pattern with one alpha. r is the most common rank; the others are listed by full module name.
        var ranks: [String: Int] = [:]
        for (name, t) in tensors { if let (module, isB) = LoRATensorName.parse(name), !isB { ranks[module] = t.shape[0] } }
        let counts = Dictionary(ranks.values.map { ($0, 1) }, uniquingKeysWith: +)
        guard let r = counts.max(by: { ($0.value, -$0.key) < ($1.value, -$1.key) })?.key else { throw GLMError("\(path): no LoRA tensors") }
        let written = file.value("adapter.lora.alpha").flatMap { v -> Float? in if case .float32(let a) = v { return a }; return nil }
        let alpha = Double(written ?? Float(r))
        try AdapterConfig.checkAlpha(alpha, "\(path): adapter.lora.alpha")
        let names = Set(tensors.keys.compactMap { LoRATensorName.parse($0)?.module })
        var config = AdapterConfig(r: r, loraAlpha: alpha, targetModules: .list(names.sorted()))
        for (module, rank) in ranks.sorted(by: { $0.key < $1.key }) where rank != r {
            let key = NSRegularExpression.escapedPattern(for: module)
            config.rankPattern[key] = .int(rank); config.rankPatternOrder.append(key)
            // without adapter.lora.alpha llama.cpp scales every module by 1: alpha = the module's rank
            if written == nil { config.alphaPattern[key] = .int(rank); config.alphaPatternOrder.append(key) }
        }
        let adapter = PEFTAdapter(config: config, tensors: tensors)
        try adapter.validate(against: model, source: path)
        return adapter
    }
}

/// gguf-py's model-naming heuristics (gguf/metadata.py: `get_model_id_components`, `id_to_title`, the base
/// model entries of the model card), so that names come out as the converter writes them.
enum GGUFNaming {
    struct Components {
        var fullName, organization, basename, finetune, version, sizeLabel: String?
    }

    /// `Metadata.id_to_title`: words (split at '-' and spaces) in all-lowercase, not a version or number, are
    /// title-cased.
    static func title(_ s: String) -> String {
        let words = s.replacingOccurrences(of: "-", with: " ").split(whereSeparator: { $0.isWhitespace }).map(String.init)
        return words.map { w in
            let isLower = w.contains { $0.isCased } && !w.contains { $0.isUppercase || ($0.isCased && !$0.isLowercase) }
            return isLower && !fullMatch(#"(v\d+(?:\.\d+)*|\d.*)"#, w, caseInsensitive: false) ? pythonTitle(w) : w
        }.joined(separator: " ")
    }

    /// Python's str.title(): a cased letter after an uncased character is upper-cased, others lower-cased.
    static func pythonTitle(_ s: String) -> String {
        var out = "", previousCased = false
        for c in s {
            out += previousCased ? c.lowercased() : c.uppercased()
            previousCased = c.isCased
        }
        return out
    }

    /// `Metadata.get_model_id_components(model_id, total_params)`.
    static func components(of id: String, totalParameters total: Int) -> Components {
        if id.contains(" ") { return Components(fullName: id) }
        var org: String?, full: String
        if let slash = id.firstIndex(of: "/") { org = String(id[..<slash]); full = String(id[id.index(after: slash)...]) }
        else { full = id }
        if let o = org, o.first == "." { org = nil }
        var parts = full.split(separator: "-", omittingEmptySubsequences: true).map(String.init)
        var types = [Set<String>](repeating: [], count: parts.count)
        for i in parts.indices {
            var part = parts[i]
            if fullMatch(#"(v|iter)?\d+([.]\d+)*"#, part) {
                types[i].insert("version")
            } else if fullMatch(#"i?q\d(_\w)*|b?fp?(16|32)"#, part) {
                types[i].insert("type")
                parts[i] = part.uppercased()
            } else if i > 0 && fullMatch(#"(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)"#, part) {
                part = part.replacingOccurrences(of: "_", with: ".")
                var chars = Array(part)
                if chars.last!.isDecimalDigit, chars.count >= 2 {  // bloom-7b1 → 7.1B
                    chars = Array(chars[..<(chars.count - 2)]) + [".", chars[chars.count - 1], chars[chars.count - 2]]
                }
                if chars.count > 1 && chars[chars.count - 2].isDecimalDigit && "kmbt".contains(chars.last!) {
                    chars[chars.count - 1] = Character(chars.last!.uppercased())
                }
                part = String(chars)
                if total != 0, let number = Double(String(part.dropLast())) {
                    let index = Array(" KMBT").firstIndex(of: part.last!) ?? -1
                    let label = number * Foundation.pow(1000, Double(index))
                    if (total < 0 && label < Double(abs(total) / 8)) || (total > 0 && abs(label - Double(total)) > Double(7 * total / 8)) {
                        types[i].insert("finetune")
                        part = String(part.dropLast()) + part.last!.lowercased()
                    }
                }
                if types[i].isEmpty { types[i].insert("size_label") }
                parts[i] = part
            } else if i > 0 && fullMatch("chat|instruct|vision|lora", part) {
                types[i].insert(total < 0 && part.lowercased() == "lora" ? "type" : "finetune")
            }
        }
        if zip(parts, types).contains(where: { $1.contains("size_label") && $0.contains { $0.isDecimalDigit } }) {
            for i in parts.indices where types[i].contains("size_label") && parts[i].allSatisfy({ $0.isLetter }) {
                types[i].remove("size_label")
            }
        }
        var atStart = true
        for i in parts.indices {
            if atStart && ((types[i].isEmpty && parts[i].first!.isLetter) || types[i].contains("version")) {
                types[i].insert("basename")
            } else {
                atStart = false
                if types[i].isEmpty { types[i].insert("finetune") }
            }
        }
        for i in parts.indices.reversed() {
            if types[i].contains("basename") && types[i].count > 1 { types[i].remove("basename") } else { break }
        }
        func joined(_ kind: String, unique: Bool = false, excluding: String? = nil) -> String? {
            var chosen: [String] = []
            for (p, t) in zip(parts, types) where t.contains(kind) && !(excluding.map { t.contains($0) } ?? false) {
                if !unique || !chosen.contains(p) { chosen.append(p) }
            }
            return chosen.isEmpty ? nil : chosen.joined(separator: "-")
        }
        var c = Components(fullName: full, organization: org)
        c.basename = joined("basename")
        c.sizeLabel = joined("size_label", unique: true)
        c.finetune = joined("finetune")
        c.version = joined("version", excluding: "basename")
        if c.sizeLabel == nil && c.finetune == nil && c.version == nil { c.basename = nil }
        return c
    }

    /// The `general.base_model.0.*` entries gguf-py derives from a model card's `base_model`, in write order.
    static func baseModelEntry(_ id: String, totalParameters: Int) -> [(String, String)] {
        var name: String?, organization: String?, version: String?, repoURL: String?
        if id.hasPrefix("http://") || id.hasPrefix("https://") || id.hasPrefix("ssh://") {
            repoURL = id
            if id.contains("huggingface.co"), let r = id.range(of: #"^https?://huggingface.co/([^/]+/[^/]+)$"#, options: .regularExpression) {
                let path = String(id[r].split(separator: "/", maxSplits: 3, omittingEmptySubsequences: true).dropFirst(2).joined(separator: "/"))
                let c = components(of: path, totalParameters: totalParameters)
                name = c.fullName.map(title); organization = c.organization.map(title); version = c.version
            }
        } else {
            let c = components(of: id, totalParameters: totalParameters)
            name = c.fullName.map(title); organization = c.organization.map(title); version = c.version
            if let o = c.organization, let f = c.fullName { repoURL = "https://huggingface.co/\(o)/\(f)" }
        }
        var out: [(String, String)] = []
        if let name { out.append(("name", name)) }
        if let version { out.append(("version", version)) }
        if let organization { out.append(("organization", organization)) }
        if let repoURL { out.append(("repo_url", repoURL)) }
        return out
    }

    static func fullMatch(_ pattern: String, _ s: String, caseInsensitive: Bool = true) -> Bool {
        guard let re = try? NSRegularExpression(pattern: "^(?:" + pattern + ")$", options: caseInsensitive ? [.caseInsensitive] : []) else { return false }
        return re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }
}

private extension Character {
    var isDecimalDigit: Bool { unicodeScalars.count == 1 && unicodeScalars.first!.properties.numericType == .decimal }
}
