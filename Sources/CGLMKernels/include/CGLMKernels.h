// C kernels for decode-sized matrix products, compiled per function for AVX-512 / AVX2 (no global -m flags: the
// package targets baseline x86-64) and chosen at run time by the CPU's features.
#ifndef CGLMKERNELS_H
#define CGLMKERNELS_H

#include <stdint.h>
#include <string.h>

/// f32 → bf16 bits as vcvtneps2bf16 gives them, so that the kernels' scalar tails agree with their vector bodies:
/// round to nearest even, a NaN stays a quiet NaN, and a denormal becomes a signed zero (the instruction flushes
/// denormal inputs; vdpbf16ps would treat a bf16 denormal as zero anyway).
static inline uint32_t glmk_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40;
    if ((u & 0x7f800000u) == 0) return (u >> 16) & 0x8000u;
    u += 0x7fffu + ((u >> 16) & 1u);
    return u >> 16;
}

#ifdef __cplusplus
extern "C" {
#endif

/// The best instruction set these kernels can use on this CPU: 2 = AVX-512 (F, BW, VL) with FMA, 1 = AVX2 with FMA,
/// 0 = none (the kernels must not be called).
int glmk_isa_level(void);

/// The kernel for one activation row (m = 1) where AVX-512 is available: 256 (four 256-bit accumulators; AMD CPUs,
/// where 512-bit streaming loads measured slower) or 512 (Intel). `GLMTRAIN_ROW_KERNEL=256|512` chooses it.
int glmk_row_kernel(void);

/// Sets that choice (256 or 512; anything else: back to the CPU's default) — for tests of both kernels.
void glmk_set_row_kernel(int width);

/// Weight rows per block of the AVX-512 kernels from two activation rows on: 1 or 3 (`GLMTRAIN_BLOCK_ROWS=1|3`).
int glmk_block_rows(void);

/// Sets that choice (1 or 3; anything else: back to the default) — for tests of both.
void glmk_set_block_rows(int rows);

/// C[r, j] = alpha · Σ_i A[r, i] · W[j, i] + beta · C[r, j] for r < m, j < n, with W bf16 `[n, k]` (widened exactly
/// to f32) and A, C f32; row-major with leading dimensions in elements. beta == 0 does not read C. Each weight row
/// is read once for all rows of A (meant for m ≤ 8; more rows are done 8 at a time). `isa` from glmk_isa_level().
void glmk_gemm_nt_bf16(int isa, long m, long n, long k, float alpha, const float *a, long lda,
                       const uint16_t *w, long ldw, float beta, float *c, long ldc);

/// The same with an f32 weight `[n, k]`.
void glmk_gemm_nt_f32(int isa, long m, long n, long k, float alpha, const float *a, long lda,
                      const float *w, long ldw, float beta, float *c, long ldc);

/// Products with one small dimension r (a LoRA rank), f32, row-major, leading dimensions in elements; AVX-512 where
/// `isa` (glmk_isa_level()) is 2, else plain loops (callers take OpenBLAS there; tests run them). LowRank.c.
/// C[i, j] = alpha · Σ_p X[i, p] · Wt[p, j] for i < m, j < r (X `[m, k]`, Wt `[k, r]`; C not read).
void glmk_lowrank_nt(int isa, long m, long r, long k, float alpha, const float *x, long ldx, const float *wt, long ldwt,
                     float *c, long ldc);
/// C[j, q] = alpha · Σ_i P[i, j] · Q[i, q] for j < r, q < n (P `[m, r]`, Q `[m, n]`; C not read).
void glmk_lowrank_tn(int isa, long r, long n, long m, float alpha, const float *p, long ldp, const float *q, long ldq,
                     float *c, long ldc);
/// C[i, q] = beta · C[i, q] + alpha · Σ_j D[i, j] · W[j, q] for i < m, q < n (D `[m, r]`, W `[r, n]`; beta 0: C not read).
void glmk_lowrank_nn(int isa, long m, long n, long r, float alpha, const float *d, long ldd, const float *w, long ldw,
                     float beta, float *c, long ldc);

#if defined(__x86_64__)
/// The end of an AVX-512 tn product that summed into C unscaled: zeros when m ≤ 0, else C · alpha (LowRank.c).
void glmk_lowrank_tn_finish(long r, long n, long m, float alpha, float *c, long ldc);
#endif

/// The same three products with bf16 operands (rounded to nearest even) and f32 sums, on AVX512_BF16 (LowRankBF16.c).
/// Each returns 0, or −1 where the CPU has no AVX512_BF16 (C untouched; the caller takes the f32 kernels). The small operand comes packed by `glmk_pack_bf16_pairs` as pairs along the summed dimension.
int glmk_has_avx512_bf16(void);
/// dst[kk · N + n] = bf16(src[2kk, n]) | bf16(src[2kk + 1, n]) << 16 for kk < (K + 1) / 2 (an odd K's last high half
/// is 0), where src[k, n] = src[k · sk + n · sn].
void glmk_pack_bf16_pairs(long K, long N, const float *src, long sk, long sn, uint32_t *dst);
/// C[i, j] = alpha · Σ_p X[i, p] · W[p, j] (X `[m, k]` f32; `wp` = W `[k, r]` packed: [(k + 1) / 2, r]).
/// `scratch`: 8 · ((k + 1) / 2) words (X's rows rounded, 8 at a time).
int glmk_lowrank_nt_bf16(long m, long r, long k, float alpha, const float *x, long ldx, const uint32_t *wp,
                         float *c, long ldc, uint32_t *scratch);
/// The same on rows of X already rounded to bf16: `xp` holds each row's k2 pairs, rows `ldxp` dwords apart.
int glmk_lowrank_nt_bf16_pairs(long m, long r, long k2, float alpha, const uint32_t *xp, long ldxp, const uint32_t *wp,
                               float *c, long ldc);
/// C[i, q] = beta · C[i, q] + alpha · Σ_j D[i, j] · W[j, q] (D `[m, r]` f32; `wp` = W `[r, n]` packed: [(r + 1) / 2, n]).
/// `scratch`: 8 · ((r + 1) / 2) words. beta 0: C not read.
int glmk_lowrank_nn_bf16(long m, long n, long r, float alpha, const float *d, long ldd, const uint32_t *wp,
                         float beta, float *c, long ldc, uint32_t *scratch);
/// C[j, q] = alpha · Σ_i P[i, j] · Q[i, q] (`pp` = P `[m, r]` packed: [(m + 1) / 2, r]; Q `[m, n]` f32).
int glmk_lowrank_tn_bf16(long r, long n, long m, float alpha, const uint32_t *pp, const float *q, long ldq,
                         float *c, long ldc);

/// SwiGLU over n elements on AVX-512, bit for bit as the Swift code (SwiGLU.c): out = silu(gate) · up; the
/// backward writes d(gate) and d(up) (either may be NULL). Return 0, doing nothing, without AVX-512.
int glmk_swiglu_forward(long n, const float *gate, const float *up, float *out);
int glmk_swiglu_backward(long n, const float *gate, const float *up, const float *dy, float *dgate, float *dup);

/// One chunk of a parallel region: `chunk` in 0 ..< chunks.
typedef void (*glmk_chunk_fn)(void *ctx, long chunk);

/// Runs fn(ctx, 0 ..< chunks) on the calling thread and `workers - 1` pool threads (made on first use; the count of
/// the first call stays). 0 when done; -1 (nothing run) when the pool is busy with another region, when called from
/// inside a region, or with fewer than 2 workers: the caller then runs the work some other way.
int glmk_pool_run(int workers, long chunks, glmk_chunk_fn fn, void *ctx);

/// How long pool threads spin for the next region before they sleep (0: sleep at once).
void glmk_pool_set_spin(long nanoseconds);

#ifdef __cplusplus
}
#endif

/// Small products on bf16 pairs for the attention tiles (PackedBF16GEMM.c; AVX512_BF16, else −1 and nothing done).
/// Rows of `src` as bf16 pairs: dst[i · ldd + w] = (src[i, 2w − shift], src[i, 2w + 1 − shift]) (nearest even, low
/// half first), w < (n + shift + 1) / 2, with src[i, −1] and src[i, n] taken as 0 (`shift` 0 or 1: pairs that start
/// one element early, for a key range beginning at an odd key).
int glmk_bf16_round_pairs(long rows, long n, const float *src, long lds, int shift, uint32_t *dst, long ldd);
/// C[i, q] = beta · C[i, q] + alpha · Σ_kk A[i, kk] · B[kk, q] over bf16 pairs, f32 sums: A's pair (i, kk) at
/// a[i · sam + kk · sak], B's at b[kk · ldb + q]; i < m, q < n, kk < k2. beta 0: C not read.
int glmk_bf16_gemm_packed(long m, long n, long k2, float alpha, const uint32_t *a, long sam, long sak, const uint32_t *b,
                          long ldb, float beta, float *c, long ldc);

/// Σ p[i]² in double (SumSquares.c; AVX-512 where present, the order of the sums fixed per CPU kind).
double glmk_sum_squares(const float *p, long n);

#endif
