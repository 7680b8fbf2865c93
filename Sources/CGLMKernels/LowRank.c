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

// ---------------------------------------------------------------------------------------------------------------
// nt: C[i, j] = alpha · Σ_p X[i, p] · W[j, p], i < m, j < r. Blocks of RB rows × JB weight rows (≤ 4 × 4) keep
// RB·JB accumulators over 16-wide chunks of k (masked tail), each reduced to one value at the end.
#ifdef GLMK_LR_X86
GLMK_LR_INLINE void lr_nt_block(const int RB, const int JB, long k, float alpha, const float *x, long ldx,
                                const float *w, long ldw, float *c, long ldc) {
    __m512 acc[4][4];
    for (int a = 0; a < RB; a++)
        for (int b = 0; b < JB; b++) acc[a][b] = _mm512_setzero_ps();
    long p = 0;
    for (; p + 16 <= k; p += 16) {
        __m512 xv[4], wv[4];
        for (int a = 0; a < RB; a++) xv[a] = _mm512_loadu_ps(x + a * ldx + p);
        for (int b = 0; b < JB; b++) wv[b] = _mm512_loadu_ps(w + b * ldw + p);
        for (int a = 0; a < RB; a++)
            for (int b = 0; b < JB; b++) acc[a][b] = _mm512_fmadd_ps(xv[a], wv[b], acc[a][b]);
    }
    if (p < k) {
        __mmask16 mask = (__mmask16)((1u << (k - p)) - 1);
        __m512 xv[4], wv[4];
        for (int a = 0; a < RB; a++) xv[a] = _mm512_maskz_loadu_ps(mask, x + a * ldx + p);
        for (int b = 0; b < JB; b++) wv[b] = _mm512_maskz_loadu_ps(mask, w + b * ldw + p);
        for (int a = 0; a < RB; a++)
            for (int b = 0; b < JB; b++) acc[a][b] = _mm512_fmadd_ps(xv[a], wv[b], acc[a][b]);
    }
    for (int a = 0; a < RB; a++)
        for (int b = 0; b < JB; b++) c[a * ldc + b] = alpha * _mm512_reduce_add_ps(acc[a][b]);
}

#define LR_NT_CASE(RB, JB) case (RB) * 8 + (JB): lr_nt_block(RB, JB, k, alpha, xi, ldx, wj, ldw, ci, ldc); break;
#define LR_NT_ROW(RB) LR_NT_CASE(RB, 1) LR_NT_CASE(RB, 2) LR_NT_CASE(RB, 3) LR_NT_CASE(RB, 4)

GLMK_LR_AVX512 static void lr_nt_avx512(long m, long r, long k, float alpha, const float *x, long ldx,
                                        const float *w, long ldw, float *c, long ldc) {
    for (long i = 0; i < m; i += 4) {
        const int rb = (int)(m - i < 4 ? m - i : 4);
        for (long j = 0; j < r; j += 4) {
            const int jb = (int)(r - j < 4 ? r - j : 4);
            const float *xi = x + i * ldx, *wj = w + j * ldw;
            float *ci = c + i * ldc + j;
            switch (rb * 8 + jb) { LR_NT_ROW(1) LR_NT_ROW(2) LR_NT_ROW(3) LR_NT_ROW(4) default: break; }
        }
    }
}
#endif

void glmk_lowrank_nt(int isa, long m, long r, long k, float alpha, const float *x, long ldx, const float *w, long ldw,
                     float *c, long ldc) {
#ifdef GLMK_LR_X86
    if (glmk_lr_avx512(isa)) { lr_nt_avx512(m, r, k, alpha, x, ldx, w, ldw, c, ldc); return; }
#endif
    for (long i = 0; i < m; i++)
        for (long j = 0; j < r; j++) {
            float s = 0;
            for (long p = 0; p < k; p++) s += x[i * ldx + p] * w[j * ldw + p];
            c[i * ldc + j] = alpha * s;
        }
}

// ---------------------------------------------------------------------------------------------------------------
// tn: C[j, q] = alpha · Σ_i P[i, j] · Q[i, q], j < r, q < n. Q is read once, row-block by row-block: for blocks of
// 64 rows, each 16-column chunk keeps JB (≤ 16) accumulators (C's partial sums) over the block's rows. Walking a
// 16- or 32-column strip down all rows instead ran at 18 GFLOP/s at n 3072: rows 12 KiB apart alias in the caches.
#ifdef GLMK_LR_X86
GLMK_LR_INLINE void lr_tn_block(const int JB, long rows, int first, const float *p, long ldp, const float *q,
                                long ldq, __mmask16 mask, float *c, long ldc) {
    __m512 acc[16];
    for (int b = 0; b < JB; b++) acc[b] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, c + b * ldc);
    for (long i = 0; i < rows; i++) {
        const float *pi = p + i * ldp;
        __m512 qv = _mm512_maskz_loadu_ps(mask, q + i * ldq);
        for (int b = 0; b < JB; b++) acc[b] = _mm512_fmadd_ps(_mm512_set1_ps(pi[b]), qv, acc[b]);
    }
    for (int b = 0; b < JB; b++) _mm512_mask_storeu_ps(c + b * ldc, mask, acc[b]);
}

#ifndef LR_TN_PANEL
#define LR_TN_PANEL 256
#endif
#ifndef LR_TN_ROWS
#define LR_TN_ROWS 64
#endif
#define LR_TN_CASE(JB) case JB: lr_tn_block(JB, rows, i0 == 0, p + i0 * ldp + j, ldp, q + i0 * ldq + q0, ldq, mask, \
                                            c + j * ldc + q0, ldc); break;

GLMK_LR_AVX512 static void lr_tn_avx512(long r, long n, long m, float alpha, const float *p, long ldp,
                                        const float *q, long ldq, float *c, long ldc) {
    for (long p0 = 0; p0 < n; p0 += LR_TN_PANEL)
    for (long i0 = 0; i0 < m; i0 += LR_TN_ROWS) {
        const long rows = m - i0 < LR_TN_ROWS ? m - i0 : LR_TN_ROWS;
        const long pend = n - p0 < LR_TN_PANEL ? n : p0 + LR_TN_PANEL;
        for (long q0 = p0; q0 < pend; q0 += 16) {
            const long left = pend - q0;
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
    if (m <= 0) {  // an empty sum: zeros
        for (long j = 0; j < r; j++)
            for (long col = 0; col < n; col++) c[j * ldc + col] = 0;
        return;
    }
    if (alpha != 1) {
        const __m512 al = _mm512_set1_ps(alpha);
        for (long j = 0; j < r; j++)
            for (long q0 = 0; q0 < n; q0 += 16) {
                const long left = n - q0;
                const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
                float *cj = c + j * ldc + q0;
                _mm512_mask_storeu_ps(cj, mask, _mm512_mul_ps(al, _mm512_maskz_loadu_ps(mask, cj)));
            }
    }
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
