// Processes that mpirun starts on one machine share its cores: unless the user chose (GLMTRAIN_THREADS,
// OPENBLAS_NUM_THREADS), each takes cores / local processes threads, before OpenBLAS is re-executed or used.
import Foundation
import GLMCore

enum MPIThreads {
    static var localProcesses: Int? {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init).flatMap { $0 > 1 ? $0 : nil }
    }

    static func shareCores() {
        guard let local = localProcesses else { return }
        let share = max(1, ProcessInfo.processInfo.activeProcessorCount / local)
        if getenv("GLMTRAIN_THREADS") == nil { setenv("GLMTRAIN_THREADS", "\(share)", 1) }
        if getenv("OPENBLAS_NUM_THREADS") == nil {
            setenv("OPENBLAS_NUM_THREADS", "\(share)", 1)
            BLAS.setThreadCount(share)
        }
    }

    static func describe() -> String {
        let env = ProcessInfo.processInfo.environment
        return "rank \(env["OMPI_COMM_WORLD_RANK"] ?? env["PMIX_RANK"] ?? "?") of \(env["OMPI_COMM_WORLD_SIZE"] ?? "?"), \(localProcesses ?? 1) on this machine, \(Parallel.workerCount) threads each"
    }
}
