// `glm-train inspect PATH`: the configuration and the tensors (name, shape, dtype) of a model directory,
// an adapter directory, a single safetensors file, an HDF5 training checkpoint or a GGUF file.
import ArgumentParser
import Foundation
import GLMCore
import GLMIO

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show config, tensor names, shapes and dtypes of a model, adapter, safetensors file, HDF5 checkpoint or GGUF file.")

    @Argument(help: "A model or adapter directory, a .safetensors file, an .h5 training checkpoint or a .gguf file.")
    var path: String

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw GLMError("\(path): no such file or directory")
        }
        var configText: String?
        var files: [String] = []
        if isDir.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            for candidate in ["config.json", "adapter_config.json"] where names.contains(candidate) {
                let file = "\(path)/\(candidate)"
                guard let text = String(validating: try FileInput.read(file, limit: FileLimits.maxConfigBytes), as: UTF8.self) else {
                    throw GLMError("\(file): not UTF-8 text; expected JSON")
                }
                configText = text
                break
            }
            files = names.filter { $0.hasSuffix(".safetensors") }.map { "\(path)/\($0)" }
            guard !files.isEmpty || configText != nil else {
                throw GLMError("\(path): no config.json, adapter_config.json or .safetensors files found")
            }
        } else if path.hasSuffix(".h5") {
            try inspectCheckpoint()
            return
        } else if path.hasSuffix(".gguf") {
            try inspectGGUF()
            return
        } else {
            guard path.hasSuffix(".safetensors") else {
                throw GLMError("\(path): expected a directory, a .safetensors file, an .h5 checkpoint or a .gguf file")
            }
            files = [path]
        }
        var rows: [(String, [Int], StorageDType)] = []
        for file in files {
            let st = try SafetensorsFile(path: file)
            for name in st.names { let e = st.entries[name]!; rows.append((name, e.shape, e.dtype)) }
        }
        rows.sort { $0.0 < $1.0 }
        let parameters = rows.reduce(0) { $0 + $1.1.reduce(1, *) }
        let bytes = rows.reduce(0) { $0 + $1.1.reduce(1, *) * $1.2.byteCount }
        if json {
            var obj: [String: Any] = ["path": path, "parameters": parameters, "bytes": bytes,
                                      "tensors": rows.map { ["name": $0.0, "shape": $0.1, "dtype": $0.2.rawValue] }]
            if let configText, let cfg = try? JSONSerialization.jsonObject(with: Data(configText.utf8)) { obj["config"] = cfg }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if let configText { print(configText.trimmingCharacters(in: .whitespacesAndNewlines)) }
        let width = min(90, (rows.map { $0.0.count }.max() ?? 10) + 2)
        for (raw, shape, dtype) in rows {
            let name = Inspect.shown(raw)
            print(name.padding(toLength: max(width, name.count + 1), withPad: " ", startingAt: 0)
                  + "\(shape)".padding(toLength: 18, withPad: " ", startingAt: 0) + dtype.rawValue)
        }
        print("\(rows.count) tensors, \(parameters) parameters, \(bytes) bytes in \(files.count) file(s)")
    }

    /// A training checkpoint: step, cursor, RNG, metadata keys, and every tensor with its shape (verified on read).
    private func inspectCheckpoint() throws {
        let c = try TrainingCheckpoint.read(from: path)
        let rows = (c.tensors.map { ("weights", $0.key, $0.value.shape) } + c.optimizerState.map { ("optimizer", $0.key, $0.value.shape) })
            .sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        if json {
            let obj: [String: Any] = ["path": path, "step": c.step, "scalars": c.scalars, "data_cursor": c.dataCursor,
                                      "rng_state": c.rngState.map { String($0) }, "metadata_keys": c.metadata.keys.sorted(),
                                      "tensors": rows.map { ["group": $0.0, "name": $0.1, "shape": $0.2, "dtype": "F32"] }]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("training checkpoint \(path) (checksums verified)")
        print("step: \(c.step)   data cursor: \(c.dataCursor)   scalars: \(c.scalars)")
        print("metadata: \(c.metadata.keys.sorted().joined(separator: ", "))")
        for (group, name, shape) in rows { print("\(group.padding(toLength: 10, withPad: " ", startingAt: 0))\(Inspect.shown(name))  \(shape)") }
        print("\(rows.count) tensors, \(rows.reduce(0) { $0 + $1.2.reduce(1, *) }) values")
    }
}

extension Inspect {
    /// A GGUF file (a model converted by llama.cpp, or a LoRA adapter): header, every metadata key with its type
    /// and value (long strings and arrays abbreviated), the adapter summary for LoRA adapters, then every tensor
    /// with its row-major shape, ggml `ne` order and ggml type.
    func inspectGGUF() throws {
        if let head = FileHandle(forReadingAtPath: path).map({ h in defer { try? h.close() }; return h.readData(ofLength: 4) }),
           head != Data("GGUF".utf8) {
            let found = head.isEmpty ? "an empty file" : head.map { String(format: "%02x", $0) }.joined(separator: " ")
            throw GLMError("\(path): not a GGUF file (expected the magic bytes \"GGUF\" at offset 0, found \(found))")
        }
        let file = try GGUFFile(path: path)
        let parameters = file.tensors.reduce(0) { $0 + $1.dimensions.reduce(1, *) }
        let adapter = GGUFSummary.adapter(file)
        if json {
            var obj: [String: Any] = [
                "path": path, "format": "gguf", "version": Int(file.version), "alignment": file.alignment, "parameters": parameters,
                "metadata": file.metadata.map { ["key": $0.key, "type": GGUFSummary.typeName($0.value), "value": GGUFSummary.json($0.value)] },
                "tensors": file.tensors.map { ["name": $0.name, "shape": $0.shape, "ne": $0.dimensions, "type": GGUFSummary.ggmlTypeName($0.typeID)] },
            ]
            if let adapter { obj["adapter"] = adapter.json }
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("GGUF v\(file.version) \(path): \(file.metadata.count) metadata keys, \(file.tensors.count) tensors, alignment \(file.alignment)")
        let keyWidth = min(48, (file.metadata.map { $0.key.count }.max() ?? 10) + 2)
        for (rawKey, value) in file.metadata {
            let key = Inspect.shown(rawKey)
            print("  " + key.padding(toLength: max(keyWidth, key.count + 1), withPad: " ", startingAt: 0)
                  + GGUFSummary.typeName(value).padding(toLength: 16, withPad: " ", startingAt: 0) + "= " + GGUFSummary.text(value))
        }
        if let adapter { print(adapter.text) }
        let width = min(70, (file.tensors.map { $0.name.count }.max() ?? 10) + 2)
        for t in file.tensors {
            let name = Inspect.shown(t.name)
            print(name.padding(toLength: max(width, name.count + 1), withPad: " ", startingAt: 0)
                  + "\(t.shape)".padding(toLength: 18, withPad: " ", startingAt: 0)
                  + "ne={\(t.dimensions.map(String.init).joined(separator: ", "))}".padding(toLength: 20, withPad: " ", startingAt: 0)
                  + GGUFSummary.ggmlTypeName(t.typeID))
        }
        print("\(file.tensors.count) tensors, \(parameters) parameters")
    }
}

/// How `inspect` shows GGUF metadata: llama.cpp's type names (`u32`, `str`, `arr[str,151552]`), strings escaped
/// and cut at 120 characters, arrays cut after 8 items.
enum GGUFSummary {
    static let maxString = 120, maxItems = 8

    /// ggml's type names by id (ggml.h `enum ggml_type`).
    static func ggmlTypeName(_ id: UInt32) -> String {
        let names: [UInt32: String] = [
            0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K", 11: "Q3_K",
            12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS", 19: "IQ1_S",
            20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32", 27: "I64", 28: "F64",
            29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0", 39: "MXFP4",
        ]
        return names[id] ?? "type \(id)"
    }

    static func scalarTypeName(_ t: GGUFValueType) -> String {
        switch t {
        case .uint8: return "u8"
        case .int8: return "i8"
        case .uint16: return "u16"
        case .int16: return "i16"
        case .uint32: return "u32"
        case .int32: return "i32"
        case .float32: return "f32"
        case .bool: return "bool"
        case .string: return "str"
        case .array: return "arr"
        case .uint64: return "u64"
        case .int64: return "i64"
        case .float64: return "f64"
        }
    }

    static func typeName(_ v: GGUFValue) -> String {
        if case .array(let t, let items) = v { return "arr[\(scalarTypeName(t)),\(items.count)]" }
        return scalarTypeName(v.type)
    }

    /// A string in double quotes with `\n`, `\t`, `"` and `\\` escaped, cut at `maxString` characters.
    static func quoted(_ s: String) -> String {
        var out = ""
        for ch in s.prefix(maxString) {
            switch ch {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default: out.append(ch)
            }
        }
        return "\"\(out)\"" + (s.count > maxString ? "… (\(s.count) characters)" : "")
    }

    static func text(_ v: GGUFValue) -> String {
        switch v {
        case .string(let s): return quoted(s)
        case .array(_, let items):
            let shown = items.prefix(maxItems).map(text).joined(separator: ", ")
            return "[\(shown)\(items.count > maxItems ? ", …" : "")]"
        default: return v.description
        }
    }

    /// The value as JSON: numbers, strings and booleans as they are; arrays longer than `maxItems` as
    /// `{"count": n, "first": [...]}`.
    static func json(_ v: GGUFValue) -> Any {
        switch v {
        case .string(let s): return s
        case .bool(let b): return b
        // JSON has no NaN or infinity: those are written as the strings "nan", "inf", "-inf".
        case .float32(let f): return f.isFinite ? Double(f) : "\(f)"
        case .float64(let d): return d.isFinite ? d : "\(d)"
        case .array(_, let items):
            let shown = items.prefix(maxItems).map(json)
            return items.count > maxItems ? ["count": items.count, "first": shown] as [String: Any] : shown
        default: return v.intValue ?? v.description
        }
    }

    struct Adapter {
        var text: String
        var json: [String: Any]
    }

    /// For a LoRA adapter (`general.type` = adapter): its type, alpha, rank, and the modules and layers adapted.
    static func adapter(_ file: GGUFFile) -> Adapter? {
        guard file.value("general.type")?.stringValue == "adapter" else { return nil }
        let kind = file.value("adapter.type")?.stringValue ?? "?"
        var alpha: Double?
        switch file.value("adapter.lora.alpha") {
        case .float32(let a)?: alpha = Double(a)
        case .float64(let a)?: alpha = a
        default: alpha = nil
        }
        var ranks = Set<Int>(), modules = Set<String>(), layers = Set<Int>(), pairs = 0
        for t in file.tensors where t.name.hasSuffix(".lora_a") || t.name.hasSuffix(".lora_b") {
            let isA = t.name.hasSuffix(".lora_a")
            if isA { pairs += 1 }
            // lora_a is [r, in] row-major (ne = {in, r}); lora_b is [out, r].
            if let r = isA ? t.shape.first : t.shape.last { ranks.insert(r) }
            let parts = t.name.split(separator: ".")
            if parts.count >= 3, parts[0] == "blk", let l = Int(parts[1]) { layers.insert(l); modules.insert(String(parts[2])) }
        }
        let rankText = ranks.isEmpty ? "?" : ranks.sorted().map(String.init).joined(separator: "/")
        let layerText = layers.isEmpty ? "none" : layers.count == (layers.max()! - layers.min()! + 1)
            ? "\(layers.min()!)–\(layers.max()!)" : layers.sorted().map(String.init).joined(separator: ",")
        let text = "adapter: \(kind), alpha \(alpha.map { "\($0)" } ?? "missing"), rank \(rankText), \(pairs) A/B pairs on "
            + "\(modules.sorted().joined(separator: ", ")) in layers \(layerText)"
        var json: [String: Any] = ["type": kind, "pairs": pairs, "ranks": ranks.sorted(), "modules": modules.sorted(), "layers": layers.sorted()]
        if let alpha { json["alpha"] = alpha }
        return Adapter(text: text, json: json)
    }
}

extension Inspect {
    /// A name from a file as one table cell: control characters (a NUL, a newline) escaped as \u{..}.
    static func shown(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return s }
        return s.unicodeScalars.map { $0.properties.generalCategory == .control ? "\\u{\(String($0.value, radix: 16))}" : String($0) }.joined()
    }
}
