// How much memory this process may use: the least of the machine's memory, the process's address-space and data
// limits (`ulimit -v`, `ulimit -d`) and its cgroup's limit (a container's memory.max). Bounds that protect against
// allocations the process cannot survive (reading a file whole, a KV cache, a model from scratch, a batch's
// activations) are fractions of it, so that they hold under a ulimit or in a container as on the bare machine.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum MemoryBudget {
    /// Bytes this process may use (computed once).
    public static let available: Int = {
        var limit = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        for resource in [RLIMIT_AS, RLIMIT_DATA] {
            var r = rlimit()
            #if canImport(Glibc)
            let ok = getrlimit(__rlimit_resource_t(resource.rawValue), &r) == 0
            #else
            let ok = getrlimit(resource, &r) == 0
            #endif
            if ok, r.rlim_cur != rlim_t.max { limit = min(limit, Int(clamping: r.rlim_cur)) }
        }
        if let c = cgroupLimit() { limit = min(limit, c) }
        return max(limit, 1 << 26)
    }()

    /// The memory limit of this process's cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`), when set.
    static func cgroupLimit() -> Int? {
        var paths = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        // The cgroup of this process (v2: one line "0::/path").
        if let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            let path = line.dropFirst(3)
            if path != "/" { paths.insert("/sys/fs/cgroup\(path)/memory.max", at: 0) }
        }
        for p in paths {
            guard let text = try? String(contentsOfFile: p, encoding: .utf8) else { continue }
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if value == "max" { continue }
            if let n = Int(value), n > 0, n < (1 << 62) { return n }
        }
        return nil
    }
}
