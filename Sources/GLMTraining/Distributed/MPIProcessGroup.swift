// The processes of an `mpirun` job, through Open MPI loaded at run time (CMPIShim): rank, size, in-place
// allreduce, broadcast, abort. One per process (MPI is initialised once); nothing here runs unless a command
// asks for it, so machines without Open MPI build and run everything else.
import Foundation
import CMPIShim
import GLMCore

public final class MPIProcessGroup {
    public let rank: Int
    public let size: Int
    /// The library loaded (e.g. libmpi.so.40) and its version line.
    public let library: String
    public let version: String

    nonisolated(unsafe) private static var current: MPIProcessGroup?

    /// Whether this process was started by `mpirun`/`mpiexec` (Open MPI or PMIx put these in the environment).
    public static func launchedByMPI(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"].contains { environment[$0] != nil }
    }

    /// Loads libmpi without initialising it (for `doctor`): the library and its version, or why it cannot load.
    /// `GLMTRAIN_MPI_LIBRARY` names a library file to load instead of libmpi.so.40 / libmpi.so.
    public static func probe() -> Result<(library: String, version: String), GLMError> {
        var error = [CChar](repeating: 0, count: 512)
        let path = ProcessInfo.processInfo.environment["GLMTRAIN_MPI_LIBRARY"]
        guard glm_mpi_load(path, &error, error.count) == 0 else { return .failure(GLMError(String(cString: error))) }
        var text = [CChar](repeating: 0, count: 512)
        let version = glm_mpi_library_version(&text, text.count) == 0 ? String(cString: text) : "unknown version"
        // "Open MPI v4.1.4, package: Debian OpenMPI, ident: ..." → "Open MPI v4.1.4"
        let line = version.split(whereSeparator: { $0.isNewline || $0 == "," }).first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? version
        return .success((String(cString: glm_mpi_loaded_path()), line))
    }

    /// The process group of this job, initialising MPI on first use.
    public static func world() throws -> MPIProcessGroup {
        if let current { return current }
        let (library, version) = try probe().get()
        var provided: Int32 = 0
        try check(glm_mpi_init(&provided), "MPI_Init_thread")
        var rank: Int32 = 0, size: Int32 = 0
        try check(glm_mpi_rank(&rank), "MPI_Comm_rank")
        try check(glm_mpi_size(&size), "MPI_Comm_size")
        let group = MPIProcessGroup(rank: Int(rank), size: Int(size), library: library, version: version)
        current = group
        return group
    }

    /// The group if MPI was initialised in this process.
    public static var active: MPIProcessGroup? { current }

    private init(rank: Int, size: Int, library: String, version: String) {
        self.rank = rank; self.size = size; self.library = library; self.version = version
    }

    static func check(_ code: Int32, _ what: String) throws {
        guard code != 0 else { return }
        var text = [CChar](repeating: 0, count: 300)
        glm_mpi_error_string(code, &text, text.count)
        throw GLMError("\(what) failed: \(String(cString: text))")
    }

    /// Sums `count` floats at `buffer` over all processes, in place.
    public func sumInPlace(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try MPIProcessGroup.check(glm_mpi_allreduce_float_sum(buffer, count), "MPI_Allreduce")
    }

    /// Element-wise sum or maximum of `values` over all processes (each passes as many).
    public func reduce(_ values: [Double], _ op: ReduceOperation) throws -> [Double] {
        var v = values
        try v.withUnsafeMutableBufferPointer { b in
            try MPIProcessGroup.check(glm_mpi_allreduce_double(b.baseAddress, b.count, op == .max ? 1 : 0), "MPI_Allreduce")
        }
        return v
    }

    /// Rank 0's `data` on every process.
    public func broadcast(_ data: Data) throws -> Data {
        var length = [Double(data.count)]
        try length.withUnsafeMutableBytes { b in try MPIProcessGroup.check(glm_mpi_bcast_bytes(b.baseAddress, b.count, 0), "MPI_Bcast") }
        var bytes = rank == 0 ? [UInt8](data) : [UInt8](repeating: 0, count: Int(length[0]))
        try bytes.withUnsafeMutableBytes { b in
            try MPIProcessGroup.check(glm_mpi_bcast_bytes(b.baseAddress, b.count, 0), "MPI_Bcast")
        }
        return Data(bytes)
    }

    public func barrier() throws { try MPIProcessGroup.check(glm_mpi_barrier(), "MPI_Barrier") }

    /// MPI_Finalize (after the last collective); the process then exits normally.
    public static func finalizeIfActive() {
        guard current != nil else { return }
        _ = glm_mpi_finalize()
        current = nil
    }

    /// Ends every process of the job (a failure on one rank must not leave the others waiting in a collective).
    public static func abortIfActive(code: Int32) {
        guard current != nil else { return }
        _ = glm_mpi_abort(code)
    }
}
