// Chooses OpenBLAS's AVX-512 kernels on CPUs that have them, and makes oneDNN's OpenMP threads (bf16 products) sleep
// rather than spin between products (OMP_WAIT_POLICY=PASSIVE): spinning OpenMP threads took the cores from
// OpenBLAS's threads and the rest of the step — a bf16 LoRA step of the bench model ran at 324 tok/s with spinning
// and 1,558 with passive waiting. Both libraries read their variables when they load, before any of our code runs,
// so the process re-executes itself once with them set (values the user set are kept).
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
        guard core != nil || setWait else { return }
        if let core { setenv("OPENBLAS_CORETYPE", core, 1) }
        if setWait { setenv("OMP_WAIT_POLICY", "PASSIVE", 1) }
        setenv(autoMarker, core != nil ? "1" : "wait", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed: carry on with the defaults
        if core != nil { unsetenv("OPENBLAS_CORETYPE") }
        if setWait { unsetenv("OMP_WAIT_POLICY") }
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
