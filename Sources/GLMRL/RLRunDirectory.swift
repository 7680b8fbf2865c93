// The files two RL processes share, and nothing else: policy versions published by the trainer
// (RUN/weights/v000003/, whole directories published atomically, then the pointer RUN/weights/LATEST), rollout
// batches written atomically by rollout processes (RUN/rollouts/batch-000003.json), claims that keep two rollout
// processes from taking the same batch or prompt (RUN/rollouts/claims/, each made whole and hard-linked into place), and the trainer's
// end marker (RUN/rollouts/DONE). Everything works on a shared (network) file system; a claim of a process that no
// longer runs on this host is taken over, one from another host after `staleClaimSeconds`.
import Foundation
import GLMCore
import GLMIO
import GLMModel

public struct RLRunDirectory: Sendable {
    public let root: String
    public init(_ root: String) { self.root = root }

    public var weights: String { root + "/weights" }
    public var rollouts: String { root + "/rollouts" }
    public var claims: String { root + "/rollouts/claims" }
    public var doneMarker: String { root + "/rollouts/DONE" }
    public static let staleClaimSeconds = 600.0

    public static func versionName(_ v: Int) -> String { String(format: "v%06d", v) }
    public func versionPath(_ v: Int) -> String { weights + "/" + RLRunDirectory.versionName(v) }
    public func batchPath(_ k: Int) -> String { rollouts + String(format: "/batch-%06d.json", k) }

    // MARK: versions

    /// Publishes version `v`: for LoRA runs the PEFT adapter (adapter_config.json + adapter_model.safetensors),
    /// otherwise the trained tensors (model.safetensors); then LATEST names it (only if it is newer).
    public func publish(version v: Int, adapter: PEFTAdapter?, tensors: [String: Tensor]) throws {
        let newer = (try latestVersion()).map { v >= $0 } ?? true
        try AtomicDirectory.publish(versionPath(v), pointer: newer ? "LATEST" : nil) { dir in
            if let adapter {
                try SafetensorsWriter.write(Dictionary(uniqueKeysWithValues: adapter.tensors.map { (PEFTAdapter.keyPrefix + $0.key, $0.value) }),
                                            to: "\(dir)/\(PEFTAdapter.weightsFile)")
                try AtomicFile.write(Data(adapter.config.jsonText.utf8), to: "\(dir)/\(PEFTAdapter.configFile)")
            } else {
                try SafetensorsWriter.write(tensors, to: "\(dir)/model.safetensors")
            }
        }
    }

    /// The newest published version, or nil before the first.
    public func latestVersion() throws -> Int? {
        guard let dir = try AtomicDirectory.resolve(pointer: weights + "/LATEST") else { return nil }
        let name = (dir as NSString).lastPathComponent
        guard name.hasPrefix("v"), let v = Int(name.dropFirst()) else { throw GLMError("\(weights)/LATEST: names '\(name)', not a version") }
        return v
    }

    public func hasVersion(_ v: Int) -> Bool { FileManager.default.fileExists(atPath: versionPath(v)) }

    /// Makes version `v` available to rollouts: `publish()` when its directory is missing; when the directory is
    /// there but LATEST is missing or older (a trainer killed between publishing the directory and writing the
    /// pointer), LATEST is set to it, since a directory under its final name is complete. Without this a resumed
    /// trainer waited for a batch that the rollouts could not make: they waited for LATEST.
    public func ensurePublished(version v: Int, publish: () throws -> Void) throws {
        guard hasVersion(v) else { try publish(); return }
        if let latest = try latestVersion(), latest >= v { return }
        try AtomicDirectory.write(pointer: weights + "/LATEST", naming: RLRunDirectory.versionName(v))
    }

    /// Removes published versions older than `keepFrom` (a rollout never loads them again: it takes LATEST, and
    /// batches need versions within the staleness bound).
    public func pruneVersions(before keepFrom: Int) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: weights) else { return }
        for name in names where name.hasPrefix("v") {
            if let v = Int(name.dropFirst()), v < keepFrom { try? FileManager.default.removeItem(atPath: weights + "/" + name) }
        }
    }

    // MARK: batches

    public func write(_ batch: RolloutBatch) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.makeDirectory(rollouts)
        try AtomicFile.write(try encoder.encode(batch), to: batchPath(batch.index))
    }

    public func hasBatch(_ k: Int) -> Bool { FileManager.default.fileExists(atPath: batchPath(k)) }

    public func readBatch(_ k: Int) throws -> RolloutBatch {
        let path = batchPath(k)
        let data = try FileInput.read(path)
        do { return try JSONDecoder().decode(RolloutBatch.self, from: data) }
        catch let e as DecodingError { throw GLMError("\(path): not a rollout batch (\(RLRunDirectory.describe(e)))") }
        catch { throw GLMError("\(path): not a rollout batch (\(error.localizedDescription))") }
    }

    /// A decoding error as "KEY PATH: what was wrong" (Foundation's own text names no key).
    static func describe(_ e: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String {
            let p = c.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return p.hasPrefix(".") ? String(p.dropFirst()) : (p.isEmpty ? "the top level" : p)
        }
        switch e {
        case .typeMismatch(let type, let c): return "\(path(c.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let c): return "\(path(c.codingPath)): expected \(typeName(type)), found null"
        case .keyNotFound(let key, let c): return "\(path(c.codingPath + [key])): missing"
        case .dataCorrupted(let c):
            // Foundation reports a number that does not fit its type (2^31 as a token id) with no key path.
            let why = (c.underlyingError.map { "\($0)" } ?? c.debugDescription).prefix(200)
            return c.codingPath.isEmpty ? "not valid JSON or a number out of range: \(why)" : "\(path(c.codingPath)): \(why)"
        @unknown default: return "\(e)"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int32.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Array<Any>.Type: return "a list"
        default:
            let name = "\(type)"
            return name.hasPrefix("Array") ? "a list" : name.hasPrefix("Dictionary") ? "an object" : name
        }
    }

    public var isDone: Bool { FileManager.default.fileExists(atPath: doneMarker) }
    public func markDone() throws { try AtomicFile.makeDirectory(rollouts); try AtomicFile.write(Data("done\n".utf8), to: doneMarker) }

    // MARK: claims

    /// Who holds a claim: host, pid and, for a prompt position, the batch it is for.
    /// A claim's holder: host, pid, the batch, and (written since claims carry it) the holder's start time in clock
    /// ticks after boot, which tells a reused pid from the holder.
    struct Claim { var host: String; var pid: Int32; var batch: Int; var modified: Date; var start: UInt64? = nil }

    static var host: String { ProcessInfo.processInfo.hostName }

    func claimPath(batch k: Int) -> String { claims + String(format: "/batch-%06d", k) }
    func claimPath(position p: Int) -> String { claims + String(format: "/pos-%08d", p) }

    /// Creates the claim file exclusively, with its content; false when someone else holds it. The content is
    /// written to a private temporary file first and then hard-linked to the claim's name (link fails if the name
    /// exists, atomically, also over NFS), so a claim is never seen empty: a process killed between creating the
    /// name and writing its holder would otherwise leave a claim nobody can read, take over or inherit (a resumed
    /// sync run then skipped that prompt position, and async workers would never take that batch).
    func create(_ path: String, batch: Int) throws -> Bool {
        try AtomicFile.makeDirectory(claims)
        let temporary = claims + "/.tmp-\(getpid())-\(UUID().uuidString)"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        if fd < 0 { throw GLMError("\(temporary): cannot create the claim (\(String(cString: strerror(errno))))") }
        let text = "\(RLRunDirectory.host) \(getpid()) \(batch)\(ProcessStart.ticks(getpid()).map { " \($0)" } ?? "")\n"
        let written = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        fsync(fd); close(fd)
        defer { unlink(temporary) }
        guard written == text.utf8.count else {
            throw GLMError("\(temporary): cannot write the claim (\(String(cString: strerror(errno))))")
        }
        if link(temporary, path) != 0 {
            if errno == EEXIST { return false }
            throw GLMError("\(path): cannot create the claim (\(String(cString: strerror(errno))))")
        }
        return true
    }

    /// A claim name held by something other than a regular file (a directory, a device) can be neither read nor
    /// replaced: an error naming it, instead of a batch nobody ever makes.
    func checkClaimIsAFile(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw GLMError("\(path): not a regular file; a claim is a file a rollout process writes (remove it)")
        }
    }

    /// Who holds batch `k`'s claim, for the trainer's waiting message ("pid 123 on host since 12:00:00"), if anyone.
    public func claimHolder(batch k: Int) -> String? {
        guard let c = readClaim(claimPath(batch: k)) else { return nil }
        let f = DateFormatter(); f.dateFormat = "HH:mm:ss"
        return "pid \(c.pid) on \(c.host) since \(f.string(from: c.modified))"
    }

    /// A claim file that exists but does not hold "host pid batch": `create` never leaves one (the content is
    /// complete before the name appears), so it is damage, and nobody holds the batch (else rollouts wait forever).
    func unreadableClaim(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) && readClaim(path) == nil }

    func readClaim(_ path: String) -> Claim? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard f.count >= 3, let pid = Int32(f[1]), let batch = Int(f[2]) else { return nil }
        let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? Date()
        return Claim(host: String(f[0]), pid: pid, batch: batch, modified: modified, start: f.count >= 4 ? UInt64(f[3]) : nil)
    }

    /// Whether the holder of a claim is gone: a process of this host that no longer runs (or this very process
    /// from an earlier life, same pid reused is not a concern: it is this process), or a claim of another host left
    /// alone for `staleClaimSeconds`.
    func isAbandoned(_ c: Claim) -> Bool {
        if c.host == RLRunDirectory.host {
            if c.pid == getpid() { return true }
            if kill(c.pid, 0) != 0 && errno == ESRCH { return true }
            // The pid runs, but perhaps as another process (pids are reused): the holder's start time is in the
            // claim, or (older claims) a process that started after the claim was written cannot be its holder.
            if let start = c.start { return ProcessStart.ticks(c.pid).map { $0 != start } ?? false }
            return ProcessStart.date(c.pid).map { $0 > c.modified.addingTimeInterval(1) } ?? false
        }
        return Date().timeIntervalSince(c.modified) > RLRunDirectory.staleClaimSeconds
    }

    /// Claims batch `k` for this process: true when it is now ours (fresh, or taken over from a dead holder).
    public func claimBatch(_ k: Int) throws -> Bool {
        let path = claimPath(batch: k)
        try checkClaimIsAFile(path)
        if try create(path, batch: k) { return true }
        guard unreadableClaim(path) || readClaim(path).map(isAbandoned) == true else { return false }
        unlink(path)
        return try create(path, batch: k)
    }

    /// The lowest batch in `from ..< k` that is not written and whose claim is missing or held by a process that is
    /// gone (see `isAbandoned`), if any.
    public func abandonedBatch(below k: Int, from: Int = 0) -> Int? {
        (from..<max(from, k)).first { j in
            guard !hasBatch(j) else { return false }
            if (try? checkClaimIsAFile(claimPath(batch: j))) == nil { return true }  // claimBatch reports it
            guard let c = readClaim(claimPath(batch: j)) else { return true }  // missing, or unreadable (see unreadableClaim)
            return c.pid != getpid() && isAbandoned(c)
        }
    }

    /// Gives back this process's claim of batch `k` (not yet written), so that it or another process claims it again.
    public func releaseBatch(_ k: Int) {
        if let c = readClaim(claimPath(batch: k)), c.host == RLRunDirectory.host, c.pid == getpid() { unlink(claimPath(batch: k)) }
    }

    /// The prompt positions batch `k` already holds from an earlier (dead) holder, lowest first; they are taken over.
    public func inheritedPositions(batch k: Int) throws -> [Int] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: claims) else { return [] }
        var out: [Int] = []
        for name in names where name.hasPrefix("pos-") {
            guard let p = Int(name.dropFirst(4)), let c = readClaim(claims + "/" + name), c.batch == k else { continue }
            out.append(p)
        }
        return out.sorted()
    }

    /// Claims the lowest free prompt position at or above `from` for batch `k`.
    public func claimNextPosition(from: Int, batch k: Int) throws -> Int {
        var p = from
        while true {
            if try create(claimPath(position: p), batch: k) { return p }
            p += 1
        }
    }

    /// The first position no claim holds yet (where a worker starts looking).
    public func firstUnclaimedPosition() -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: claims) else { return 0 }
        let taken = names.compactMap { $0.hasPrefix("pos-") ? Int($0.dropFirst(4)) : nil }
        return (taken.max() ?? -1) + 1
    }
}
