// What the CPU offers (from /proc/cpuinfo) and which OpenBLAS kernels suit it.
import Foundation

/// CPU model and SIMD features as the kernel reports them.
public struct CPUInfo: Sendable {
    public var modelName: String
    public var flags: Set<String>
    public var logicalCores: Int

    /// Reads `/proc/cpuinfo` (empty features where it is missing).
    public static func current() -> CPUInfo {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        var model = "unknown", flags = Set<String>()
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "model name" && model == "unknown" { model = parts[1] }
            if parts[0] == "flags" && flags.isEmpty { flags = Set(parts[1].split(separator: " ").map(String.init)) }
        }
        return CPUInfo(modelName: model, flags: flags, logicalCores: ProcessInfo.processInfo.activeProcessorCount)
    }

    public var hasAVX512F: Bool { flags.contains("avx512f") }

    /// The SIMD features that matter for the kernels, in a fixed order, for display.
    public var simdFeatures: [String] {
        ["sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16", "amx_bf16"]
            .filter { flags.contains($0) }
    }

    /// The OpenBLAS core type to request when the user has not chosen one: AVX-512 kernels where the
    /// CPU has AVX-512F (OpenBLAS 0.3.21 does not detect Zen 4/5 as AVX-512 capable by itself).
    public var preferredOpenBLASCoreType: String? { hasAVX512F ? "SkylakeX" : nil }
}
