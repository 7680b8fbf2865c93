// f32 products with one small dimension r (a LoRA rank): the six products of an adapted linear layer's forward and
// backward are each a stream over a [rows, d] activation with r multiply-adds per element. OpenBLAS packs such
// skinny operands as if they were large (46 GFLOP/s for x·Aᵀ at rows 2048, k 512, r 16 on the 2-core EPYC); these
// kernels read the big operand once, keep r·(a few) accumulators in AVX-512 registers and the small operand in L1/L2.
// Compiled per function for AVX-512 (no global -m flags); a plain C loop below `isa` 2 (glmk_isa_level()).
#include "CGLMKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define GLMK_LR_X86 1
#define GLMK_LR_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))
#define GLMK_LR_INLINE GLMK_LR_AVX512 __attribute__((always_inline)) static inline
#endif

static int glmk_lr_avx512(int isa) { return isa >= 2 && glmk_isa_level() >= 2; }

#ifdef GLMK_LR_X86
// The end of a tn product that summed into C unscaled: zeros for an empty sum (no rows), else C · alpha.
GLMK_LR_AVX512 void glmk_lowrank_tn_finish(long r, long n, long m, float alpha, float *c, long ldc) {
    if (m <= 0) {
        for (long j = 0; j < r; j++)
            for (long col = 0; col < n; col++) c[j * ldc + col] = 0;
        return;
    }
    if (alpha == 1) return;
    const __m512 al = _mm512_set1_ps(alpha);
    for (long j = 0; j < r; j++)
        for (long q0 = 0; q0 < n; q0 += 16) {
            const long left = n - q0;
            const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            float *cj = c + j * ldc + q0;
            _mm512_mask_storeu_ps(cj, mask, _mm512_mul_ps(al, _mm512_maskz_loadu_ps(mask, cj)));
        }
}
#endif

// ---------------------------------------------------------------------------------------------------------------
// nt: C[i, j] = alpha · Σ_p X[i, p] · Wt[p, j], i < m, j < r, with W given transposed (Wt `[k, r]`). Blocks of
// RB (≤ 8) rows × 16 values of j keep RB accumulators; each step over p loads one 16-wide row of Wt and broadcasts
// one element of each X row: no horizontal sums (a 4 × 4 block of dot products with reductions ran at 57–76 GFLOP/s
// on one Zen 4 core, this form at 108–116).
#ifdef GLMK_LR_X86
GLMK_LR_INLINE void lr_nt_rows(const int RB, long k, float alpha, const float *x, long ldx, const float *wt, long ldwt,
                               __mmask16 mask, float *c, long ldc) {
    __m512 acc[8];
    for (int a = 0; a < RB; a++) acc[a] = _mm512_setzero_ps();
    for (long p = 0; p < k; p++) {
        const __m512 wv = _mm512_maskz_loadu_ps(mask, wt + p * ldwt);
        for (int a = 0; a < RB; a++) acc[a] = _mm512_fmadd_ps(_mm512_set1_ps(x[a * ldx + p]), wv, acc[a]);
    }
    const __m512 al = _mm512_set1_ps(alpha);
    for (int a = 0; a < RB; a++) _mm512_mask_storeu_ps(c + a * ldc, mask, _mm512_mul_ps(al, acc[a]));
}

#define LR_NT_CASE(RB) case RB: lr_nt_rows(RB, k, alpha, x + i * ldx, ldx, wt + j0, ldwt, mask, c + i * ldc + j0, ldc); break;

GLMK_LR_AVX512 static void lr_nt_avx512(long m, long r, long k, float alpha, const float *x, long ldx,
                                        const float *wt, long ldwt, float *c, long ldc) {
    for (long j0 = 0; j0 < r; j0 += 16) {
        const long left = r - j0;
        const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        for (long i = 0; i < m; i += 8) {
            switch ((int)(m - i < 8 ? m - i : 8)) {
                LR_NT_CASE(1) LR_NT_CASE(2) LR_NT_CASE(3) LR_NT_CASE(4)
                LR_NT_CASE(5) LR_NT_CASE(6) LR_NT_CASE(7) LR_NT_CASE(8)
                default: break;
            }
        }
    }
}
#endif

void glmk_lowrank_nt(int isa, long m, long r, long k, float alpha, const float *x, long ldx, const float *wt, long ldwt,
                     float *c, long ldc) {
#ifdef GLMK_LR_X86
    if (glmk_lr_avx512(isa)) { lr_nt_avx512(m, r, k, alpha, x, ldx, wt, ldwt, c, ldc); return; }
#endif
    for (long i = 0; i < m; i++)
        for (long j = 0; j < r; j++) {
            float s = 0;
            for (long p = 0; p < k; p++) s += x[i * ldx + p] * wt[p * ldwt + j];
            c[i * ldc + j] = alpha * s;
        }
}

// ---------------------------------------------------------------------------------------------------------------
// tn: C[j, q] = alpha · Σ_i P[i, j] · Q[i, q], j < r, q < n. Q is read once, row-block by row-block: for blocks of
// 128 rows, each 16-column chunk keeps JB (≤ 16) accumulators (C's partial sums) over the block's rows, and each row
// is prefetched four chunks ahead. On one Zen 4 core at rows 2048, n 3072 (Q 25 MB, from memory): a 32-column strip
// walked down all rows ran at 18 GFLOP/s, row blocks without the prefetch at 26–33, with it at 71–80.
#ifdef GLMK_LR_X86
GLMK_LR_INLINE void lr_tn_block(const int JB, long rows, int first, const float *p, long ldp, const float *q,
                                long ldq, __mmask16 mask, float *c, long ldc) {
    __m512 acc[16];
    for (int b = 0; b < JB; b++) acc[b] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, c + b * ldc);
    for (long i = 0; i < rows; i++) {
        const float *pi = p + i * ldp;
        _mm_prefetch((const char *)(q + i * ldq + 64), _MM_HINT_T0);  // this row, four chunks on
        __m512 qv = _mm512_maskz_loadu_ps(mask, q + i * ldq);
        for (int b = 0; b < JB; b++) acc[b] = _mm512_fmadd_ps(_mm512_set1_ps(pi[b]), qv, acc[b]);
    }
    for (int b = 0; b < JB; b++) _mm512_mask_storeu_ps(c + b * ldc, mask, acc[b]);
}

#ifndef LR_TN_ROWS
#define LR_TN_ROWS 128
#endif
#define LR_TN_CASE(JB) case JB: lr_tn_block(JB, rows, i0 == 0, p + i0 * ldp + j, ldp, q + i0 * ldq + q0, ldq, mask, \
                                            c + j * ldc + q0, ldc); break;

GLMK_LR_AVX512 static void lr_tn_avx512(long r, long n, long m, float alpha, const float *p, long ldp,
                                        const float *q, long ldq, float *c, long ldc) {
    for (long i0 = 0; i0 < m; i0 += LR_TN_ROWS) {
        const long rows = m - i0 < LR_TN_ROWS ? m - i0 : LR_TN_ROWS;
        for (long q0 = 0; q0 < n; q0 += 16) {
            const long left = n - q0;
            const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            for (long j = 0; j < r; j += 16) {
                switch ((int)(r - j < 16 ? r - j : 16)) {
                    LR_TN_CASE(1) LR_TN_CASE(2) LR_TN_CASE(3) LR_TN_CASE(4) LR_TN_CASE(5) LR_TN_CASE(6)
                    LR_TN_CASE(7) LR_TN_CASE(8) LR_TN_CASE(9) LR_TN_CASE(10) LR_TN_CASE(11) LR_TN_CASE(12)
                    LR_TN_CASE(13) LR_TN_CASE(14) LR_TN_CASE(15) LR_TN_CASE(16)
                    default: break;
                }
            }
        }
    }
    glmk_lowrank_tn_finish(r, n, m, alpha, c, ldc);
}
#endif

void glmk_lowrank_tn(int isa, long r, long n, long m, float alpha, const float *p, long ldp, const float *q, long ldq,
                     float *c, long ldc) {
#ifdef GLMK_LR_X86
    if (glmk_lr_avx512(isa)) { lr_tn_avx512(r, n, m, alpha, p, ldp, q, ldq, c, ldc); return; }
#endif
    for (long j = 0; j < r; j++)
        for (long col = 0; col < n; col++) {
            float s = 0;
            for (long i = 0; i < m; i++) s += p[i * ldp + j] * q[i * ldq + col];
            c[j * ldc + col] = alpha * s;
        }
}

// ---------------------------------------------------------------------------------------------------------------
// nn: C[i, q] = beta · C[i, q] + alpha · Σ_j D[i, j] · W[j, q], i < m, q < n (beta 0: C not read). Blocks of RB (≤ 8)
// rows × 32 columns keep 2·RB accumulators over the r rows of W.
#ifdef GLMK_LR_X86
GLMK_LR_INLINE void lr_nn_block(const int RB, long r, float alpha, const float *d, long ldd, const float *w, long ldw,
                                float beta, __mmask16 m0, __mmask16 m1, float *c, long ldc) {
    __m512 acc[8][2];
    for (int a = 0; a < RB; a++) { acc[a][0] = _mm512_setzero_ps(); acc[a][1] = _mm512_setzero_ps(); }
    for (long j = 0; j < r; j++) {
        const float *wj = w + j * ldw;
        __m512 w0 = _mm512_maskz_loadu_ps(m0, wj), w1 = _mm512_maskz_loadu_ps(m1, wj + 16);
        for (int a = 0; a < RB; a++) {
            __m512 dv = _mm512_set1_ps(d[a * ldd + j]);
            acc[a][0] = _mm512_fmadd_ps(dv, w0, acc[a][0]);
            acc[a][1] = _mm512_fmadd_ps(dv, w1, acc[a][1]);
        }
    }
    __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
    for (int a = 0; a < RB; a++) {
        float *ca = c + a * ldc;
        __m512 y0 = _mm512_mul_ps(al, acc[a][0]), y1 = _mm512_mul_ps(al, acc[a][1]);
        if (beta != 0) {
            y0 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m0, ca), y0);
            y1 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m1, ca + 16), y1);
        }
        _mm512_mask_storeu_ps(ca, m0, y0);
        _mm512_mask_storeu_ps(ca + 16, m1, y1);
    }
}

#define LR_NN_CASE(RB) case RB: lr_nn_block(RB, r, alpha, di, ldd, w + q0, ldw, beta, m0, m1, c + i * ldc + q0, ldc); break;

GLMK_LR_AVX512 static void lr_nn_avx512(long m, long n, long r, float alpha, const float *d, long ldd,
                                        const float *w, long ldw, float beta, float *c, long ldc) {
    for (long i = 0; i < m; i += 8) {
        const float *di = d + i * ldd;
        for (long q0 = 0; q0 < n; q0 += 32) {
            const long left = n - q0;
            const __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            const __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            switch ((int)(m - i < 8 ? m - i : 8)) {
                LR_NN_CASE(1) LR_NN_CASE(2) LR_NN_CASE(3) LR_NN_CASE(4)
                LR_NN_CASE(5) LR_NN_CASE(6) LR_NN_CASE(7) LR_NN_CASE(8)
                default: break;
            }
        }
    }
}
#endif

void glmk_lowrank_nn(int isa, long m, long n, long r, float alpha, const float *d, long ldd, const float *w, long ldw,
                     float beta, float *c, long ldc) {
#ifdef GLMK_LR_X86
    if (glmk_lr_avx512(isa)) { lr_nn_avx512(m, n, r, alpha, d, ldd, w, ldw, beta, c, ldc); return; }
#endif
    for (long i = 0; i < m; i++)
        for (long col = 0; col < n; col++) {
            float s = 0;
            for (long j = 0; j < r; j++) s += d[i * ldd + j] * w[j * ldw + col];
            c[i * ldc + col] = beta == 0 ? alpha * s : alpha * s + beta * c[i * ldc + col];
        }
}
