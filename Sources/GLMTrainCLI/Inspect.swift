// `glm-train inspect PATH`: the configuration and the tensors (name, shape, dtype) of a model directory,
// an adapter directory or a single safetensors file.
import ArgumentParser
import Foundation
import GLMCore
import GLMIO

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show config, tensor names, shapes and dtypes of a model, adapter, safetensors file or HDF5 checkpoint.")

    @Argument(help: "A model or adapter directory, a .safetensors file, or an .h5 training checkpoint.")
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
                configText = try String(contentsOfFile: "\(path)/\(candidate)", encoding: .utf8)
                break
            }
            files = names.filter { $0.hasSuffix(".safetensors") }.map { "\(path)/\($0)" }
            guard !files.isEmpty || configText != nil else {
                throw GLMError("\(path): no config.json, adapter_config.json or .safetensors files found")
            }
        } else if path.hasSuffix(".h5") {
            try inspectCheckpoint()
            return
        } else {
            guard path.hasSuffix(".safetensors") else {
                throw GLMError("\(path): expected a directory, a .safetensors file or an .h5 checkpoint")
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
        for (name, shape, dtype) in rows {
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
        for (group, name, shape) in rows { print("\(group.padding(toLength: 10, withPad: " ", startingAt: 0))\(name)  \(shape)") }
        print("\(rows.count) tensors, \(rows.reduce(0) { $0 + $1.2.reduce(1, *) }) values")
    }
}
