// HDF5 training checkpoints (RUN/checkpoints/step-NNNNNNNN.h5): trainable weights, optimizer state, step, RNG,
// data cursor and metadata, each dataset xxh64-checksummed, written atomically; plus the directory that keeps them.
import Foundation
import GLMCore

/// Everything a run needs to resume exactly: the weights that train, the optimizer state, the step, schedule
/// scalars, the RNG state, the data cursor and free-form metadata.
///
/// File layout (HDF5, 1.8 object format):
/// ```
/// /tensors/<name>          float32, the tensor's shape ([] = scalar)
/// /optimizer_state/<name>  float32 ("exp_avg/<param>", "exp_avg_sq/<param>", "momentum/<param>", ...)
/// /step                    int64 scalar
/// /rng_state               uint64 [n]
/// /scalars/<name>          float64 scalar
/// /data_cursor/<name>      int64 scalar
/// /metadata/<name>         UTF-8 string (fixed length, exactly the value's bytes)
/// ```
/// Names are stored with `%`, `/`, NUL and a leading `.` percent-escaped. Every dataset carries an `xxh64`
/// attribute (16 hex digits over its raw bytes); the root carries `format`, `format_version`, `dataset_count`,
/// `manifest_xxh64` (over every dataset's path, type, shape and checksum) and, written last, `complete = "yes"`.
public struct TrainingCheckpoint {
    /// Trainable weights by parameter name.
    public var tensors: [String: Tensor]
    /// Optimizer state by key, e.g. "exp_avg/<param>", "exp_avg_sq/<param>", "momentum/<param>".
    public var optimizerState: [String: Tensor]
    /// The number of optimizer steps taken.
    public var step: Int
    /// Schedule position and other real-valued state (bit-exact, NaN and infinities included).
    public var scalars: [String: Double]
    /// The RNG state words (e.g. `SeededGenerator.stateWords`).
    public var rngState: [UInt64]
    /// Where the data loader is (epoch, index, ...).
    public var dataCursor: [String: Int]
    /// Free-form text: the resolved recipe YAML, model type, ...
    public var metadata: [String: String]

    /// The value of the root `format` attribute.
    public static let formatName = "glmtrain-training-checkpoint"
    /// The layout version this build writes and reads.
    public static let formatVersion = 1

    public init(tensors: [String: Tensor] = [:], optimizerState: [String: Tensor] = [:], step: Int = 0,
                scalars: [String: Double] = [:], rngState: [UInt64] = [], dataCursor: [String: Int] = [:],
                metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.optimizerState = optimizerState
        self.step = step
        self.scalars = scalars
        self.rngState = rngState
        self.dataCursor = dataCursor
        self.metadata = metadata
    }

    // MARK: writing

    /// Writes the checkpoint to `path` atomically: into `path.tmp-<pid>` first (checksums, then the completion
    /// marker last), flushed, closed and fsynced, then renamed over `path`, then the directory is fsynced.
    /// On failure the temporary file is removed and `path` is left as it was.
    public func write(to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        do {
            let file = try HDF5File.create(tmp)
            do {
                try writeContents(file, path: path)
                try file.close()
            } catch {
                try? file.close()
                throw error
            }
            try CheckpointFS.fsyncFile(tmp, reportAs: path)
            guard rename(tmp, path) == 0 else {
                throw GLMError("\(path): cannot rename the temporary file into place (\(String(cString: strerror(errno))))")
            }
        } catch let e as GLMError {
            unlink(tmp)
            // Name the checkpoint, not its temporary file (which is gone).
            throw GLMError(e.message.replacingOccurrences(of: tmp, with: path) + "; nothing was written at \((path as NSString).lastPathComponent)")
        } catch {
            unlink(tmp)
            throw error
        }
        try CheckpointFS.fsyncDirectory(of: path)
    }

    private func writeContents(_ file: HDF5File, path: String) throws {
        var manifest = ChecksumManifest()
        try file.setAttribute("format", Self.formatName)
        try file.setAttribute("format_version", String(Self.formatVersion))
        for group in ["/tensors", "/optimizer_state", "/scalars", "/data_cursor", "/metadata"] {
            try file.createGroup(group)
        }
        func record(_ name: String, _ type: String, _ shape: [Int], _ hash: UInt64) throws {
            try file.setAttribute("xxh64", Checksum.hex(hash), on: name)
            manifest.add(name, type, shape, hash)
        }
        for (group, entries) in [("/tensors", tensors), ("/optimizer_state", optimizerState)] {
            for (key, tensor) in entries.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                let name = try Self.datasetPath(group, key, path)
                try file.write(tensor, as: name)
                try record(name, "float32", tensor.shape, Checksum.xxh64(tensor))
            }
        }
        let stepValue = [Int64(step)]
        try file.writeInt64("/step", stepValue, shape: [])
        try record("/step", "int64", [], stepValue.withUnsafeBytes { Checksum.xxh64($0) })
        try file.writeUInt64("/rng_state", rngState)
        try record("/rng_state", "uint64", [rngState.count], rngState.withUnsafeBytes { Checksum.xxh64($0) })
        for (key, value) in scalars.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            let name = try Self.datasetPath("/scalars", key, path)
            let values = [value]
            try file.writeFloat64(name, values, shape: [])
            try record(name, "float64", [], values.withUnsafeBytes { Checksum.xxh64($0) })
        }
        for (key, value) in dataCursor.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            let name = try Self.datasetPath("/data_cursor", key, path)
            let values = [Int64(value)]
            try file.writeInt64(name, values, shape: [])
            try record(name, "int64", [], values.withUnsafeBytes { Checksum.xxh64($0) })
        }
        for (key, value) in metadata.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            let name = try Self.datasetPath("/metadata", key, path)
            try file.writeString(name, value)
            let bytes = Array(value.utf8)
            try record(name, "string", [], bytes.withUnsafeBytes { Checksum.xxh64($0) })
        }
        try file.setAttribute("dataset_count", String(manifest.count))
        try file.setAttribute("manifest_xxh64", Checksum.hex(manifest.hash))
        try file.flush()
        try file.setAttribute("complete", "yes")
        try file.flush()
    }

    // MARK: reading

    /// Reads and verifies a checkpoint: format, completion marker, every dataset's checksum and the manifest.
    /// A torn, truncated, corrupt or foreign file throws a one-line `GLMError` naming `path` and the problem.
    /// With `CheckpointIsolation` on, a child process reads the file first.
    public static func read(from path: String) throws -> TrainingCheckpoint {
        try CheckpointIsolation.check(path)
        let file = try HDF5File.open(path)
        defer { try? file.close() }
        let format = try file.attribute("format")
        guard format == formatName else {
            throw GLMError("\(path): not a GLMTrain training checkpoint (root attribute 'format' is \(format.map { "'\($0)'" } ?? "missing"); expected '\(formatName)')")
        }
        let version = try file.attribute("format_version")
        guard version == String(formatVersion) else {
            throw GLMError("\(path): checkpoint format_version is \(version.map { "'\($0)'" } ?? "missing"); this build reads version \(formatVersion)")
        }
        guard try file.attribute("complete") == "yes" else {
            throw GLMError("\(path): checkpoint has no completion marker (the write did not finish; torn file)")
        }
        guard let manifestText = try file.attribute("manifest_xxh64"), let expectedManifest = Checksum.parse(manifestText),
              let countText = try file.attribute("dataset_count"), let expectedCount = Int(countText) else {
            throw GLMError("\(path): checkpoint is missing its checksum manifest (root attributes 'manifest_xxh64', 'dataset_count')")
        }
        var manifest = ChecksumManifest()
        func verify(_ name: String, _ type: String, _ shape: [Int], _ hash: UInt64) throws {
            guard let storedText = try file.attribute("xxh64", of: name), let stored = Checksum.parse(storedText) else {
                throw GLMError("\(path): dataset '\(name)' has no xxh64 checksum attribute (corrupt file)")
            }
            guard stored == hash else {
                throw GLMError("\(path): dataset '\(name)' fails its checksum (stored xxh64 \(Checksum.hex(stored)), computed \(Checksum.hex(hash))); the file is corrupt")
            }
            manifest.add(name, type, shape, hash)
        }
        func members(_ group: String) throws -> [(key: String, name: String)] {
            guard file.exists(group) else { throw GLMError("\(path): checkpoint has no group '\(group)' (corrupt file)") }
            return try file.children(of: group)
                .sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                .map { (unescape($0), group + "/" + $0) }
        }

        var checkpoint = TrainingCheckpoint()
        for group in ["/tensors", "/optimizer_state"] {
            var entries: [String: Tensor] = [:]
            for (key, name) in try members(group) {
                let tensor = try file.readTensor(name)
                try verify(name, "float32", tensor.shape, Checksum.xxh64(tensor))
                tensor.name = key
                entries[key] = tensor
            }
            if group == "/tensors" { checkpoint.tensors = entries } else { checkpoint.optimizerState = entries }
        }
        guard file.exists("/step"), file.exists("/rng_state") else {
            throw GLMError("\(path): checkpoint has no '/step' or '/rng_state' dataset (corrupt file)")
        }
        let step = try file.readInt64("/step")
        guard step.shape == [] else { throw GLMError("\(path): dataset '/step' has shape \(step.shape); expected a scalar") }
        try verify("/step", "int64", [], step.values.withUnsafeBytes { Checksum.xxh64($0) })
        checkpoint.step = try toInt(step.values[0], "/step", path)
        let rng = try file.readUInt64("/rng_state")
        guard rng.shape.count == 1 else { throw GLMError("\(path): dataset '/rng_state' has shape \(rng.shape); expected one dimension") }
        try verify("/rng_state", "uint64", rng.shape, rng.values.withUnsafeBytes { Checksum.xxh64($0) })
        checkpoint.rngState = rng.values
        for (key, name) in try members("/scalars") {
            let value = try file.readFloat64(name)
            guard value.shape == [] else { throw GLMError("\(path): dataset '\(name)' has shape \(value.shape); expected a scalar") }
            try verify(name, "float64", [], value.values.withUnsafeBytes { Checksum.xxh64($0) })
            checkpoint.scalars[key] = value.values[0]
        }
        for (key, name) in try members("/data_cursor") {
            let value = try file.readInt64(name)
            guard value.shape == [] else { throw GLMError("\(path): dataset '\(name)' has shape \(value.shape); expected a scalar") }
            try verify(name, "int64", [], value.values.withUnsafeBytes { Checksum.xxh64($0) })
            checkpoint.dataCursor[key] = try toInt(value.values[0], name, path)
        }
        for (key, name) in try members("/metadata") {
            let value = try file.readString(name)
            try verify(name, "string", [], Array(value.utf8).withUnsafeBytes { Checksum.xxh64($0) })
            checkpoint.metadata[key] = value
        }
        guard manifest.count == expectedCount, manifest.hash == expectedManifest else {
            throw GLMError("\(path): checkpoint manifest does not match its datasets (\(manifest.count) found, \(expectedCount) recorded; a dataset is missing, extra or renamed); the file is corrupt")
        }
        try file.close()
        return checkpoint
    }

    private static func toInt(_ value: Int64, _ name: String, _ path: String) throws -> Int {
        guard let v = Int(exactly: value) else { throw GLMError("\(path): dataset '\(name)' value \(value) does not fit Int") }
        return v
    }

    // MARK: names

    /// The HDF5 path of `key` inside `group`, with `%`, `/`, NUL and a leading `.` percent-escaped.
    static func datasetPath(_ group: String, _ key: String, _ path: String) throws -> String {
        guard !key.isEmpty else { throw GLMError("\(path): cannot store an entry with an empty name in '\(group)'") }
        return group + "/" + escape(key)
    }

    static func escape(_ key: String) -> String {
        var out = ""
        for (i, ch) in key.unicodeScalars.enumerated() {
            switch ch {
            case "%": out += "%25"
            case "/": out += "%2F"
            case "\0": out += "%00"
            case "." where i == 0: out += "%2E"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    static func unescape(_ name: String) -> String {
        let bytes = Array(name.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count,
               let v = UInt8(String(decoding: bytes[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The running list of (dataset, type, shape, checksum) lines whose xxh64 is the file's manifest checksum.
struct ChecksumManifest {
    private var lines: [String] = []
    var count: Int { lines.count }
    mutating func add(_ name: String, _ type: String, _ shape: [Int], _ hash: UInt64) {
        lines.append("\(name)\t\(type)\t\(shape.map(String.init).joined(separator: ","))\t\(Checksum.hex(hash))\n")
    }
    var hash: UInt64 {
        let text = lines.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.joined()
        return Array(text.utf8).withUnsafeBytes { Checksum.xxh64($0) }
    }
}

/// XXH64 (the 64-bit xxHash), the checksum of checkpoint datasets.
public enum Checksum {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    @inline(__always) private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }
    @inline(__always) private static func merge(_ acc: UInt64, _ v: UInt64) -> UInt64 {
        (acc ^ round(0, v)) &* p1 &+ p4
    }

    /// XXH64 of `bytes` with `seed`.
    public static func xxh64(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let n = bytes.count
        guard let base = bytes.baseAddress, n > 0 else {
            return avalanche(seed &+ p5)
        }
        @inline(__always) func u64(_ at: Int) -> UInt64 { UInt64(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        @inline(__always) func u32(_ at: Int) -> UInt64 { UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        var i = 0
        var h: UInt64
        if n >= 32 {
            var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
            while i + 32 <= n {
                v1 = round(v1, u64(i)); v2 = round(v2, u64(i + 8))
                v3 = round(v3, u64(i + 16)); v4 = round(v4, u64(i + 24))
                i += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(h, v1); h = merge(h, v2); h = merge(h, v3); h = merge(h, v4)
        } else {
            h = seed &+ p5
        }
        h &+= UInt64(n)
        while i + 8 <= n {
            h ^= round(0, u64(i))
            h = rotl(h, 27) &* p1 &+ p4
            i += 8
        }
        if i + 4 <= n {
            h ^= u32(i) &* p1
            h = rotl(h, 23) &* p2 &+ p3
            i += 4
        }
        while i < n {
            h ^= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) &* p5
            h = rotl(h, 11) &* p1
            i += 1
        }
        return avalanche(h)
    }

    private static func avalanche(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33; h &*= p2
        h ^= h >> 29; h &*= p3
        h ^= h >> 32
        return h
    }

    /// XXH64 of a tensor's elements (their in-memory bytes).
    public static func xxh64(_ tensor: Tensor) -> UInt64 {
        xxh64(UnsafeRawBufferPointer(start: tensor.count > 0 ? tensor.pointer : nil, count: tensor.count * 4))
    }

    /// 16 lowercase hex digits.
    public static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func parse(_ text: String) -> UInt64? {
        text.utf8.count == 16 ? UInt64(text, radix: 16) : nil
    }
}

/// fsync helpers for the atomic write.
enum CheckpointFS {
    static func fsyncFile(_ file: String, reportAs path: String) throws {
        let fd = open(file, O_RDONLY)
        guard fd >= 0 else { throw GLMError("\(path): cannot reopen the temporary file to fsync it (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw GLMError("\(path): fsync failed (\(String(cString: strerror(errno))))") }
    }

    static func fsyncDirectory(of path: String) throws {
        var dir = (path as NSString).deletingLastPathComponent
        if dir.isEmpty { dir = "." }
        let fd = open(dir, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw GLMError("\(dir): cannot open the directory to fsync it (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        // Some file systems do not support fsync on directories (EINVAL); the rename is then as durable as it gets.
        if fsync(fd) != 0 && errno != EINVAL {
            throw GLMError("\(dir): directory fsync failed after writing \(path) (\(String(cString: strerror(errno))))")
        }
    }
}

// MARK: - the checkpoint directory

/// One checkpoint file in a `CheckpointDirectory`.
public struct CheckpointFile: Equatable, Sendable {
    /// The step in the file name.
    public var step: Int
    public var path: String
}

/// What `CheckpointDirectory.save` did.
public struct CheckpointSave {
    /// The checkpoint written.
    public var path: String
    /// Files removed: older checkpoints beyond `keep`, checkpoints with a higher step than the one saved
    /// (left by an abandoned continuation), and temporary files of writers that no longer run.
    public var removed: [String]
    /// Problems that did not stop the save (e.g. a file that could not be removed).
    public var warnings: [String]
}

/// The result of `CheckpointDirectory.newestValid()`.
public struct CheckpointScan {
    /// The newest checkpoint that reads and verifies, if any.
    public var checkpoint: TrainingCheckpoint?
    /// Its file.
    public var file: CheckpointFile?
    /// One line per checkpoint skipped (torn or corrupt) and per oddity noticed.
    public var warnings: [String]
}

/// RUN/checkpoints: files named `step-00000123.h5`; saving prunes to the newest `keep`; resuming takes the newest
/// checkpoint that verifies. Leftover `*.tmp-<pid>` files from interrupted writes are never read.
public struct CheckpointDirectory {
    /// The directory (created on the first save).
    public let path: String

    public init(_ path: String) { self.path = path }

    /// `step-00000123.h5` (at least 8 digits).
    public static func fileName(step: Int) -> String {
        let digits = String(step)
        return "step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".h5"
    }

    /// The path of the checkpoint file for `step`.
    public func path(forStep step: Int) -> String { (path as NSString).appendingPathComponent(Self.fileName(step: step)) }

    /// The step of a checkpoint file name, or nil for any other name (including temporary files).
    public static func step(ofFileName name: String) -> Int? {
        guard name.hasPrefix("step-"), name.hasSuffix(".h5") else { return nil }
        let digits = name.dropFirst(5).dropLast(3)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(digits)
    }

    private func names() throws -> [String]? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return nil }
        guard isDir.boolValue else { throw GLMError("\(path): not a directory (expected the checkpoint directory)") }
        do { return try FileManager.default.contentsOfDirectory(atPath: path) }
        catch { throw GLMError("\(path): cannot list the checkpoint directory (\(error.localizedDescription))") }
    }

    /// The checkpoint files present, lowest step first. A missing directory has none.
    public func checkpoints() throws -> [CheckpointFile] {
        (try names() ?? []).compactMap { name in
            Self.step(ofFileName: name).map { CheckpointFile(step: $0, path: (path as NSString).appendingPathComponent(name)) }
        }.sorted { $0.step < $1.step }
    }

    /// Writes `checkpoint` as `step-<step>.h5` (atomically), then removes the oldest checkpoints so that `keep`
    /// remain (the new one always stays), any checkpoint with a higher step than the new one, and temporary
    /// files of writers that are no longer running.
    @discardableResult
    public func save(_ checkpoint: TrainingCheckpoint, keep: Int) throws -> CheckpointSave {
        guard keep >= 1 else { throw GLMError("\(path): keep is \(keep); expected at least 1 checkpoint to keep") }
        guard checkpoint.step >= 0 else { throw GLMError("\(path): checkpoint step is \(checkpoint.step); expected 0 or more") }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        catch { throw GLMError("\(path): cannot create the checkpoint directory (\(error.localizedDescription))") }
        let target = self.path(forStep: checkpoint.step)
        try checkpoint.write(to: target)

        var result = CheckpointSave(path: target, removed: [], warnings: [])
        func remove(_ file: String) {
            if unlink(file) == 0 || errno == ENOENT { result.removed.append(file) }
            else { result.warnings.append("\(file): cannot remove (\(String(cString: strerror(errno))))") }
        }
        let others = try checkpoints().filter { $0.path != target }
        for file in others where file.step > checkpoint.step { remove(file.path) }
        let older = others.filter { $0.step < checkpoint.step }
        for file in older.dropLast(keep - 1) { remove(file.path) }
        for name in try names() ?? [] {
            guard let range = name.range(of: ".h5.tmp-"), Self.step(ofFileName: String(name[..<range.lowerBound]) + ".h5") != nil,
                  let pid = Int32(name[range.upperBound...]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            remove((path as NSString).appendingPathComponent(name))
        }
        return result
    }

    /// The newest checkpoint that reads and verifies. Torn or corrupt checkpoints are skipped with a warning each;
    /// temporary files are ignored. A missing directory gives no checkpoint and no warnings.
    public func newestValid() throws -> CheckpointScan {
        var scan = CheckpointScan(checkpoint: nil, file: nil, warnings: [])
        for file in try checkpoints().reversed() {
            do {
                let checkpoint = try TrainingCheckpoint.read(from: file.path)
                if checkpoint.step != file.step {
                    scan.warnings.append("\(file.path): the file name says step \(file.step) but the checkpoint holds step \(checkpoint.step); using the checkpoint's step")
                }
                scan.checkpoint = checkpoint
                scan.file = file
                return scan
            } catch let error as GLMError {
                scan.warnings.append("skipped \(error.message)")
            } catch {
                scan.warnings.append("skipped \(file.path): \(error)")
            }
        }
        return scan
    }
}
