// `glm-train doctor`: the CPU, the BLAS kernels and threads, the HDF5 library in use, and whether Open MPI loads.
import ArgumentParser
import Foundation
import GLMCore
import GLMIO
import GLMTraining

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print CPU features, the OpenBLAS core type and threads, the HDF5 version and the MPI library.")

    func run() throws {
        let cpu = CPUInfo.current()
        print("cpu:               \(cpu.modelName)")
        print("logical cores:     \(cpu.logicalCores)")
        print("memory limit:      \(MemoryBudget.available >> 20) MiB this process may use (least of RAM, ulimit -v/-d, cgroup)")
        print("simd features:     \(cpu.simdFeatures.joined(separator: " "))")
        print("openblas core:     \(BLAS.coreName)")
        print("OPENBLAS_CORETYPE: \(BLASCoreSelection.explanation)")
        print("openblas threads:  \(BLAS.threadCount) (our kernels: \(Parallel.workerCount) workers; OpenBLAS runs single-threaded inside them)")
        print("openblas config:   \(BLAS.config)")
        let timeout = getenv("OPENBLAS_THREAD_TIMEOUT").map { String(cString: $0) }
        print("openblas idle:     threads yield for 2^\(BLASCoreSelection.effectiveThreadTimeout(timeout)) TSC cycles, then sleep (OPENBLAS_THREAD_TIMEOUT\(timeout.map { "=\($0)" } ?? " not set"))")
        print("hdf5:              \(HDF5Library.version)")
        print("bf16 compute:      \(!MixedPrecision.bf16Available ? "no (needs AVX512_BF16); training.precision: bf16 runs f32" : !MixedPrecision.allowed ? "available, but off: the environment sets GLMTRAIN_BF16=0 (training.precision: bf16 runs f32)" : "yes, oneDNN \(MixedPrecision.kernelName) (training.precision: bf16)")")
        switch MPIProcessGroup.probe() {
        case .success(let mpi): print("mpi:               available: \(mpi.library) (\(mpi.version)); used under mpirun -np N")
        case .failure(let e): print("mpi:               not available (\(e.message)); training runs in one process")
        }
        if MPIProcessGroup.launchedByMPI() { print("mpi launch:        this process was started by mpirun (\(MPIThreads.describe()))") }
        if cpu.hasAVX512F && !BLAS.coreName.lowercased().contains("skylakex") && !BLAS.coreName.lowercased().contains("cooperlake")
            && !BLAS.coreName.lowercased().contains("sapphire") {
            print("note: this CPU has AVX-512F but OpenBLAS uses \(BLAS.coreName) kernels; set OPENBLAS_CORETYPE=SkylakeX for about 2x sgemm")
        }
    }
}
