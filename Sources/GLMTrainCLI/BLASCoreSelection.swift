// Chooses OpenBLAS's AVX-512 kernels on CPUs that have them, and makes oneDNN's OpenMP threads (bf16 products) sleep
// rather than spin between products (OMP_WAIT_POLICY=PASSIVE): spinning OpenMP threads took the cores from
// OpenBLAS's threads and the rest of the step — a bf16 LoRA step of the bench model ran at 324 tok/s with spinning
// and 1,558 with passive waiting. Both libraries read their variables when they load, before any of our code runs,
// so the process re-executes itself once with them set (values the user set are kept).
//
// OPENBLAS_THREAD_TIMEOUT=22: OpenBLAS's idle threads call sched_yield in a loop for 2^N TSC cycles after each
// multi-threaded sgemm before they sleep; with the default N = 28 (about 0.1 s) they kept taking time from our own
// worker pool's regions that follow (decode after the prefill, the elementwise and attention work between a step's
// products). With 2^22 (1-2 ms) they stay awake across the short gaps between the products of a step. AMD EPYC
// Zen 4, 2 cores, 6 interleaved rounds of `bench generate` / `bench train` with 28 and 22, paired-ratio medians:
// batch-1 bf16 decode 1.20x, LoRA f32 step 1.17x, the others within the host's noise (0.93-1.02x).
import Foundation
import GLMCore

enum BLASCoreSelection {
    static let autoMarker = "GLMTRAIN_CORETYPE_AUTO"

    /// Re-executes the current binary with OPENBLAS_CORETYPE set when the user has not set it and the
    /// CPU has AVX-512F. Does nothing (and the run continues) if exec fails.
    static func reexecIfUseful() {
        guard getenv(autoMarker) == nil else { return }
        let core = getenv("OPENBLAS_CORETYPE") == nil ? CPUInfo.current().preferredOpenBLASCoreType : nil
        let setWait = getenv("OMP_WAIT_POLICY") == nil
        let setTimeout = getenv("OPENBLAS_THREAD_TIMEOUT") == nil
        guard core != nil || setWait || setTimeout else { return }
        if let core { setenv("OPENBLAS_CORETYPE", core, 1) }
        if setWait { setenv("OMP_WAIT_POLICY", "PASSIVE", 1) }
        if setTimeout { setenv("OPENBLAS_THREAD_TIMEOUT", threadTimeout, 1) }
        setenv(autoMarker, core != nil ? "1" : "wait", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed: carry on with the defaults
        if core != nil { unsetenv("OPENBLAS_CORETYPE") }
        if setWait { unsetenv("OMP_WAIT_POLICY") }
        if setTimeout { unsetenv("OPENBLAS_THREAD_TIMEOUT") }
    }

    /// log2 of the TSC cycles OpenBLAS's idle threads yield before they sleep (OpenBLAS accepts 4-30; default 28).
    static let threadTimeout = "22"

    /// The exponent OpenBLAS 0.3.21 uses for a value of OPENBLAS_THREAD_TIMEOUT: its integer (atoi) clamped to 4-30
    /// when positive, else the default 28.
    static func effectiveThreadTimeout(_ value: String?) -> Int {
        let digits = value.map { v -> Substring in
            let t = v.drop { $0 == " " || $0 == "\t" }
            let sign = t.first == "-" || t.first == "+" ? 1 : 0
            return t.prefix(sign + t.dropFirst(sign).prefix { $0.isASCII && $0.isNumber }.count)
        }
        guard let d = digits, let n = Int(d.prefix(12)), n > 0 else { return 28 }
        return min(30, max(4, n))
    }

    /// How the core type was chosen, for `doctor`.
    static var explanation: String {
        guard let value = getenv("OPENBLAS_CORETYPE").map({ String(cString: $0) }) else {
            return "not set (OpenBLAS detected the core itself)"
        }
        if let m = getenv(autoMarker), String(cString: m) == "1" { return "\(value) (set by glm-train: the CPU has AVX-512F)" }
        return "\(value) (set by the user)"
    }
}
