// How much memory this process may use: the least of the machine's memory, the process's address-space and data
// limits (`ulimit -v`, `ulimit -d`) and its cgroup's limit (a container's memory.max). Bounds that protect against
// allocations the process cannot survive (reading a file whole, a KV cache, a model from scratch, a batch's
// activations) are fractions of it, so that they hold under a ulimit or in a container as on the bare machine.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum MemoryBudget {
    /// The least `available` glm-train starts with: below it a tiny model's first products no longer fit (measured
    /// under `ulimit -v`: aborts at 185–400 MB). Below ~350 MB OpenBLAS hangs while it initialises, before this check
    /// can run: a limit of the library.
    public static let minimumToRun = 512 << 20

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
    /// The least limit over this process's cgroup and its ancestors (v2), or its v1 memory cgroup and the root.
    static func cgroupLimit() -> Int? {
        var paths = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        if let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard f.count == 3 else { continue }
                var path = String(f[2])
                if f[0] == "0" && f[1].isEmpty {  // v2: "0::/path", limited by every ancestor too
                    while path != "/" && !path.isEmpty {
                        paths.append("/sys/fs/cgroup\(path)/memory.max")
                        path = (path as NSString).deletingLastPathComponent
                    }
                } else if f[1].split(separator: ",").contains("memory"), path != "/" {  // v1
                    paths.append("/sys/fs/cgroup/memory\(path)/memory.limit_in_bytes")
                }
            }
        }
        var least: Int?
        for p in paths {
            guard let text = try? String(contentsOfFile: p, encoding: .utf8) else { continue }
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if let n = Int(value), n > 0, n < (1 << 62) { least = min(least ?? n, n) }  // "max" and v1's huge "no limit" skipped
        }
        return least
    }
}
