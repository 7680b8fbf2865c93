// This process's place in a data-parallel job: its rank among `size` processes (its share of every global
// batch) and the synchronizer its gradients meet the others' through. Made from the environment `mpirun` sets;
// a process started without mpirun (or alone) trains as before, without loading MPI.
import Foundation
import GLMCore

public struct DataParallelPlacement {
    public let rank: Int
    public let size: Int
    public let synchronizer: GradientSynchronizer
    public var isPrimary: Bool { rank == 0 }

    public init(rank: Int, size: Int, synchronizer: GradientSynchronizer) {
        self.rank = rank; self.size = size; self.synchronizer = synchronizer
    }

    /// The placement of a run of `recipe`: `fromEnvironment`, and with `training.data_parallel: mpi` an error when
    /// mpirun did not start this process.
    public static func forRecipe(_ recipe: Recipe, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DataParallelPlacement? {
        if recipe.training.dataParallel == "mpi" && !MPIProcessGroup.launchedByMPI(environment) {
            throw GLMError("\(recipe.file): training.data_parallel: mpi, but this process was not started by mpirun; run mpirun -np N glm-train run \(recipe.file) (or set data_parallel: auto)")
        }
        let placement = try fromEnvironment(environment)
        if let mpi = placement?.synchronizer as? MPIGradientSynchronizer {
            mpi.bucketFloats = max(1, Int(recipe.training.allreduceBucketMB * 262_144))
            mpi.overlapsBackward = recipe.training.allreduceOverlap
        }
        return placement
    }

    /// The placement of a process started by `mpirun -np N` with N > 1 (MPI is initialised here); nil for a
    /// process started alone. Fails with the reason when mpirun started it but Open MPI cannot be loaded.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DataParallelPlacement? {
        guard MPIProcessGroup.launchedByMPI(environment) else { return nil }
        let group: MPIProcessGroup
        do { group = try MPIProcessGroup.world() } catch let e as GLMError {
            throw GLMError("this process was started by mpirun, but MPI is not usable: \(e.message)")
        }
        guard group.size > 1 else { return nil }
        return DataParallelPlacement(rank: group.rank, size: group.size, synchronizer: MPIGradientSynchronizer(group: group))
    }
}
