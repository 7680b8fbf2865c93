// bf16 matrix products with f32 accumulation on oneDNN (Debian's libdnnl, AVX512_BF16 kernels), and the f32 → bf16
// conversions that feed them. Used by GLMCore when a run asks for `training.precision: bf16`; where the CPU lacks
// AVX512_BF16 (or oneDNN would not give a bf16 kernel) `glmb_available` says 0 and nothing else may be called.
#ifndef CBF16GEMM_H
#define CBF16GEMM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU has AVX512_BF16 and oneDNN gives a bf16 matmul kernel for it; 0 otherwise.
int glmb_available(void);

/// The oneDNN kernel name chosen for bf16 matmul here (e.g. "brg:avx512_core_bf16"), or "" when unavailable.
const char *glmb_kernel_name(void);

/// Threads oneDNN uses (its OpenMP pool); n ≥ 1.
void glmb_set_threads(int n);

/// C[i, j] = Σ_p A[i, p] · B[p, j] (+ C[i, j] when accumulate ≠ 0) for i < m, j < n, p < k; A and B bf16 with
/// element strides (A[i, p] at a[i·sam + p·sak], B[p, j] at b[p·sbk + j·sbn]); C f32 row-major with leading
/// dimension ldc. Products are exact in f32 and summed in f32. Returns 0 on success, non-zero if oneDNN failed.
int glmb_gemm(long m, long n, long k, const uint16_t *a, long sam, long sak, const uint16_t *b, long sbk, long sbn,
              int accumulate, float *c, long ldc);

/// dst[r·cols + c] = bf16(src[r·lds + c]) for r < rows, c < cols: round to nearest even (NaN stays NaN).
void glmb_to_bf16(long rows, long cols, const float *src, long lds, uint16_t *dst);

#ifdef __cplusplus
}
#endif

#endif
