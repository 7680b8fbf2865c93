// Chooses OpenBLAS's AVX-512 kernels on CPUs that have them. OpenBLAS reads OPENBLAS_CORETYPE when the
// library loads, before any of our code runs, so the process re-executes itself once with it set.
import Foundation
import GLMCore

enum BLASCoreSelection {
    static let autoMarker = "GLMTRAIN_CORETYPE_AUTO"

    /// Re-executes the current binary with OPENBLAS_CORETYPE set when the user has not set it and the
    /// CPU has AVX-512F. Does nothing (and the run continues) if exec fails.
    static func reexecIfUseful() {
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv(autoMarker) == nil,
              let core = CPUInfo.current().preferredOpenBLASCoreType else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        setenv(autoMarker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")  // exec failed: carry on with the default kernels
    }

    /// How the core type was chosen, for `doctor`.
    static var explanation: String {
        guard let value = getenv("OPENBLAS_CORETYPE").map({ String(cString: $0) }) else {
            return "not set (OpenBLAS detected the core itself)"
        }
        if getenv(autoMarker) != nil { return "\(value) (set by glm-train: the CPU has AVX-512F)" }
        return "\(value) (set by the user)"
    }
}
