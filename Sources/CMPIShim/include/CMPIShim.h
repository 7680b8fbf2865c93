// Open MPI, loaded at run time: the package builds on machines without MPI, and a process uses MPI only when it
// was started by mpirun. `glm_mpi_load` dlopens libmpi (RTLD_GLOBAL, as Open MPI's plugins need) and resolves
// the few functions and predefined handles data parallelism uses; the wrappers below call through them.
// Open MPI's handles are addresses of global objects (MPI_COMM_WORLD is &ompi_mpi_comm_world, ...), which is
// what makes this possible without mpi.h; other MPI implementations (MPICH's integer handles) are refused.
#ifndef CMPISHIM_H
#define CMPISHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Loads `path` (NULL: libmpi.so.40, then libmpi.so) and resolves every symbol. Returns 0, or -1 with a
/// one-line reason in `error`. Loading twice is a no-op that returns the first result.
int glm_mpi_load(const char *path, char *error, size_t error_size);
/// The library loaded (its path as given to dlopen), or NULL.
const char *glm_mpi_loaded_path(void);
/// MPI_Get_library_version (callable before MPI_Init); 0 on success.
int glm_mpi_library_version(char *out, size_t out_size);

/// MPI_Init_thread with MPI_THREAD_SERIALIZED; `provided` receives the level granted.
int glm_mpi_init(int *provided);
int glm_mpi_initialized(int *flag);
int glm_mpi_finalized(int *flag);
int glm_mpi_rank(int *rank);
int glm_mpi_size(int *size);
int glm_mpi_barrier(void);
int glm_mpi_finalize(void);
int glm_mpi_abort(int code);

/// In-place MPI_Allreduce over MPI_COMM_WORLD of `count` floats (sum), in pieces of at most 2^30 elements.
int glm_mpi_allreduce_float_sum(float *buffer, long count);
/// In-place MPI_Allreduce of doubles; `op` 0 = sum, 1 = max.
int glm_mpi_allreduce_double(double *buffer, long count, int op);
/// MPI_Bcast of `count` bytes from `root`, in pieces of at most 2^30.
int glm_mpi_bcast_bytes(void *buffer, long count, int root);
/// The text of an MPI error code (MPI_Error_string).
void glm_mpi_error_string(int code, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif
