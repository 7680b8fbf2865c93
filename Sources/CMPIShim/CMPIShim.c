// See CMPIShim.h. Only Open MPI's ABI (handles are pointers to predefined objects); types are opaque here.
#define _GNU_SOURCE
#include "CMPIShim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef void *Handle;  // MPI_Comm, MPI_Datatype, MPI_Op: pointers in Open MPI

static struct {
    int attempted, ok;
    char error[512];
    char path[512];
    void *lib;
    int (*init_thread)(int *, char ***, int, int *);
    int (*initialized)(int *);
    int (*finalized)(int *);
    int (*comm_rank)(Handle, int *);
    int (*comm_size)(Handle, int *);
    int (*allreduce)(const void *, void *, int, Handle, Handle, Handle);
    int (*bcast)(void *, int, Handle, int, Handle);
    int (*barrier)(Handle);
    int (*finalize)(void);
    int (*abort_)(Handle, int);
    int (*get_library_version)(char *, int *);
    int (*error_string)(int, char *, int *);
    Handle comm_world, type_float, type_double, type_byte, op_sum, op_max;
} M;

#define MPI_IN_PLACE_OMPI ((void *)1)
#define MPI_THREAD_SERIALIZED_OMPI 2
#define MPI_MAX_LIBRARY_VERSION_STRING_OMPI 256
#define MPI_MAX_ERROR_STRING_OMPI 256
#define PIECE (1L << 30)

static int resolve(const char *name, void **out) {
    *out = dlsym(M.lib, name);
    if (*out == NULL) {
        snprintf(M.error, sizeof M.error, "%s has no symbol %s (glm-train supports Open MPI only)", M.path, name);
        return -1;
    }
    return 0;
}

int glm_mpi_load(const char *path, char *error, size_t error_size) {
    if (!M.attempted) {
        M.attempted = 1;
        const char *candidates[] = {path, path ? NULL : "libmpi.so.40", path ? NULL : "libmpi.so"};
        char reasons[512] = "";
        for (int i = 0; i < 3 && M.lib == NULL; i++) {
            if (candidates[i] == NULL) continue;
            M.lib = dlopen(candidates[i], RTLD_NOW | RTLD_GLOBAL);
            if (M.lib) snprintf(M.path, sizeof M.path, "%s", candidates[i]);
            else if (reasons[0] == 0) {
                const char *e = dlerror();
                snprintf(reasons, sizeof reasons, "%s", e ? e : candidates[i]);
            }
        }
        if (M.lib == NULL) {
            snprintf(M.error, sizeof M.error, "cannot load Open MPI's libmpi (%s); install libopenmpi-dev openmpi-bin", reasons);
        } else {
            struct { const char *name; void **slot; } table[] = {
                {"MPI_Init_thread", (void **)&M.init_thread}, {"MPI_Initialized", (void **)&M.initialized},
                {"MPI_Finalized", (void **)&M.finalized}, {"MPI_Comm_rank", (void **)&M.comm_rank},
                {"MPI_Comm_size", (void **)&M.comm_size}, {"MPI_Allreduce", (void **)&M.allreduce},
                {"MPI_Bcast", (void **)&M.bcast}, {"MPI_Barrier", (void **)&M.barrier},
                {"MPI_Finalize", (void **)&M.finalize}, {"MPI_Abort", (void **)&M.abort_},
                {"MPI_Get_library_version", (void **)&M.get_library_version},
                {"MPI_Error_string", (void **)&M.error_string},
                {"ompi_mpi_comm_world", &M.comm_world}, {"ompi_mpi_float", &M.type_float},
                {"ompi_mpi_double", &M.type_double}, {"ompi_mpi_byte", &M.type_byte},
                {"ompi_mpi_op_sum", &M.op_sum}, {"ompi_mpi_op_max", &M.op_max},
            };
            M.ok = 1;
            for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
                if (resolve(table[i].name, table[i].slot) != 0) { M.ok = 0; break; }
            }
            if (!M.ok) { dlclose(M.lib); M.lib = NULL; M.path[0] = 0; }
        }
    }
    if (!M.ok && error && error_size) snprintf(error, error_size, "%s", M.error);
    return M.ok ? 0 : -1;
}

const char *glm_mpi_loaded_path(void) { return M.ok ? M.path : NULL; }

int glm_mpi_library_version(char *out, size_t out_size) {
    if (!M.ok) return -1;
    char text[MPI_MAX_LIBRARY_VERSION_STRING_OMPI + 1];
    int length = 0;
    int rc = M.get_library_version(text, &length);
    if (rc != 0) return rc;
    text[length < (int)sizeof text ? length : (int)sizeof text - 1] = 0;
    snprintf(out, out_size, "%s", text);
    return 0;
}

int glm_mpi_init(int *provided) { return M.ok ? M.init_thread(NULL, NULL, MPI_THREAD_SERIALIZED_OMPI, provided) : -1; }
int glm_mpi_initialized(int *flag) { return M.ok ? M.initialized(flag) : -1; }
int glm_mpi_finalized(int *flag) { return M.ok ? M.finalized(flag) : -1; }
int glm_mpi_rank(int *rank) { return M.ok ? M.comm_rank(M.comm_world, rank) : -1; }
int glm_mpi_size(int *size) { return M.ok ? M.comm_size(M.comm_world, size) : -1; }
int glm_mpi_barrier(void) { return M.ok ? M.barrier(M.comm_world) : -1; }
int glm_mpi_finalize(void) { return M.ok ? M.finalize() : -1; }
int glm_mpi_abort(int code) { return M.ok ? M.abort_(M.comm_world, code) : -1; }

int glm_mpi_allreduce_float_sum(float *buffer, long count) {
    if (!M.ok) return -1;
    for (long done = 0; done < count; done += PIECE) {
        long n = count - done < PIECE ? count - done : PIECE;
        int rc = M.allreduce(MPI_IN_PLACE_OMPI, buffer + done, (int)n, M.type_float, M.op_sum, M.comm_world);
        if (rc != 0) return rc;
    }
    return 0;
}

int glm_mpi_allreduce_double(double *buffer, long count, int op) {
    if (!M.ok) return -1;
    Handle o = op == 1 ? M.op_max : M.op_sum;
    for (long done = 0; done < count; done += PIECE) {
        long n = count - done < PIECE ? count - done : PIECE;
        int rc = M.allreduce(MPI_IN_PLACE_OMPI, buffer + done, (int)n, M.type_double, o, M.comm_world);
        if (rc != 0) return rc;
    }
    return 0;
}

int glm_mpi_bcast_bytes(void *buffer, long count, int root) {
    if (!M.ok) return -1;
    for (long done = 0; done < count; done += PIECE) {
        long n = count - done < PIECE ? count - done : PIECE;
        int rc = M.bcast((char *)buffer + done, (int)n, M.type_byte, root, M.comm_world);
        if (rc != 0) return rc;
    }
    return 0;
}

void glm_mpi_error_string(int code, char *out, size_t out_size) {
    if (out_size == 0) return;
    if (!M.ok || code < 0) { snprintf(out, out_size, "MPI is not loaded"); return; }
    char text[MPI_MAX_ERROR_STRING_OMPI + 1];
    int length = 0;
    if (M.error_string(code, text, &length) != 0) { snprintf(out, out_size, "MPI error %d", code); return; }
    text[length < (int)sizeof text ? length : (int)sizeof text - 1] = 0;
    snprintf(out, out_size, "%s", text);
}
