// The low-rank products of LowRank.c with bf16 operands and f32 sums (`training.precision: bf16`): AVX512_BF16's
// vdpbf16ps does two multiply-adds per f32 lane, so each product runs on half the instructions of its f32 form.
// Operands are rounded to bf16 (nearest even) as PyTorch's autocast rounds a LoRA layer's inputs and weights;
// the big operand (an activation, f32 in memory) is rounded inside the kernels, so no bf16 copy of it is made.
// vdpbf16ps multiplies pairs along the summed dimension: the small operand is packed once per call into pairs
// (`glmk_pack_bf16_pairs`), the big one is paired as it is read (along a row for nt, across two rows for tn).
// Compiled per function for AVX512_BF16; callers check `glmk_has_avx512_bf16()` first (no fallback here).
#include "CGLMKernels.h"


#if defined(__x86_64__)
#include <immintrin.h>
#define GLMK_BF_X86 1
#define GLMK_BF_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
#define GLMK_BF_INLINE GLMK_BF_TARGET __attribute__((always_inline)) static inline
#endif

int glmk_has_avx512_bf16(void) {
#ifdef GLMK_BF_X86
    static int has = -1;
    if (has >= 0) return has;
    __builtin_cpu_init();
    has = glmk_isa_level() >= 2 && __builtin_cpu_supports("avx512bf16");
    return has;
#else
    return 0;
#endif
}

#ifdef GLMK_BF_X86
/// The packing of contiguous rows (sn 1), 16 columns at a time: two rows rounded into one register, interleaved.
GLMK_BF_TARGET static void bf_pack_rows(long K, long N, const float *src, long sk, uint32_t *dst) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const long pairs = (K + 1) / 2;
    for (long kk = 0; kk < pairs; kk++) {
        const float *lo = src + 2 * kk * sk, *hi = lo + sk;
        const int hasHi = 2 * kk + 1 < K;
        for (long n = 0; n < N; n += 16) {
            const long left = N - n;
            const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            const __m512 l = _mm512_maskz_loadu_ps(mask, lo + n);
            const __m512 h = hasHi ? _mm512_maskz_loadu_ps(mask, hi + n) : _mm512_setzero_ps();
            const __m512i v = _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(h, l));
            _mm512_mask_storeu_epi32(dst + kk * N + n, mask, v);
        }
    }
}
#endif

void glmk_pack_bf16_pairs(long K, long N, const float *src, long sk, long sn, uint32_t *dst) {
#ifdef GLMK_BF_X86
    if (sn == 1 && N >= 16 && glmk_has_avx512_bf16()) { bf_pack_rows(K, N, src, sk, dst); return; }
#endif
    const long pairs = (K + 1) / 2;
    for (long kk = 0; kk < pairs; kk++) {
        const float *lo = src + 2 * kk * sk, *hi = lo + sk;
        const int hasHi = 2 * kk + 1 < K;
        for (long n = 0; n < N; n++)
            dst[kk * N + n] = glmk_bf16_round(lo[n * sn]) | (hasHi ? glmk_bf16_round(hi[n * sn]) << 16 : 0u);
    }
}

#ifdef GLMK_BF_X86
// acc += pairs of `w` · the pair at `ptr` broadcast to every lane. As inline assembly so that the broadcast is the
// instruction's own memory operand ({1to16}): compilers emit a separate vbroadcastss, which halved the kernels'
// rate on Zen 4 (0.5 vdpbf16ps per cycle instead of ~1).
#define BF_DP_BCST(acc, w, ptr) \
    __asm__("vdpbf16ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const uint32_t *)(ptr)))

/// Rounds `k` values of `x` to bf16 into `dst` (pairs of bf16 per dword; an odd tail is paired with zero).
GLMK_BF_INLINE void bf_round_row(long k, const float *x, uint32_t *dst) {
    long p = 0;
    for (; p + 32 <= k; p += 32) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + p + 16), _mm512_loadu_ps(x + p));
        _mm512_storeu_si512((void *)(dst + p / 2), (__m512i)v);
    }
    if (p < k) {
        const long left = k - p;
        const __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        const __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m1, x + p + 16), _mm512_maskz_loadu_ps(m0, x + p));
        const long words = (left + 1) / 2;
        _mm512_mask_storeu_epi32((void *)(dst + p / 2), (__mmask16)((1u << words) - 1), (__m512i)v);
    }
}

// nt: C[i, j] = alpha · Σ_p X[i, p] · W[p, j] with W packed as pairs along p (`wp` [(k+1)/2, r]). Blocks of RB (≤ 8)
// rows, rounded into `xb` first; each pair step loads one 16-wide packed row of W and broadcasts one pair of each X row.
GLMK_BF_INLINE void bf_nt_rows(const int RB, long k2, float alpha, const uint32_t *xb, long ldxb, const uint32_t *wp,
                               long r, __mmask16 mask, float *c, long ldc) {
    // Two accumulators per row (even and odd pair steps): vdpbf16ps's latency needs more than 8 chains in flight.
    __m512 acc[8], acc2[8];
    for (int a = 0; a < RB; a++) { acc[a] = _mm512_setzero_ps(); acc2[a] = _mm512_setzero_ps(); }
    long p = 0;
    for (; p + 2 <= k2; p += 2) {
        const __m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi32(mask, wp + p * r);
        const __m512bh w1 = (__m512bh)_mm512_maskz_loadu_epi32(mask, wp + (p + 1) * r);
        for (int a = 0; a < RB; a++) {
            BF_DP_BCST(acc[a], w0, xb + a * ldxb + p);
            BF_DP_BCST(acc2[a], w1, xb + a * ldxb + p + 1);
        }
    }
    if (p < k2) {
        const __m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi32(mask, wp + p * r);
        for (int a = 0; a < RB; a++) BF_DP_BCST(acc[a], w0, xb + a * ldxb + p);
    }
    const __m512 al = _mm512_set1_ps(alpha);
    for (int a = 0; a < RB; a++) _mm512_mask_storeu_ps(c + a * ldc, mask, _mm512_mul_ps(al, _mm512_add_ps(acc[a], acc2[a])));
}

#define BF_NT_CASE(RB) case RB: bf_nt_rows(RB, k2, alpha, xr, ldxr, wp + j0, r, mask, c + i * ldc + j0, ldc); break;

#endif

#ifdef GLMK_BF_X86
/// nt on rows already rounded to bf16 pairs (`xp`, `ldxp` dwords apart).
GLMK_BF_TARGET static void bf_nt_pairs(long m, long r, long k2, float alpha, const uint32_t *xp, long ldxp,
                                       const uint32_t *wp, float *c, long ldc) {
    for (long i = 0; i < m; i += 8) {
        const int rows = (int)(m - i < 8 ? m - i : 8);
        const uint32_t *xr = xp + i * ldxp;
        const long ldxr = ldxp;
        for (long j0 = 0; j0 < r; j0 += 16) {
            const long left = r - j0;
            const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            switch (rows) {
                BF_NT_CASE(1) BF_NT_CASE(2) BF_NT_CASE(3) BF_NT_CASE(4)
                BF_NT_CASE(5) BF_NT_CASE(6) BF_NT_CASE(7) BF_NT_CASE(8)
                default: break;
            }
        }
    }
}
#endif

#ifdef GLMK_BF_X86
/// nt on f32 rows: each block of 8 rows rounded into `xb`, then `bf_nt_pairs` on it.
GLMK_BF_TARGET static void bf_nt(long m, long r, long k, float alpha, const float *x, long ldx, const uint32_t *wp,
                                 float *c, long ldc, uint32_t *xb) {
    const long k2 = (k + 1) / 2;
    for (long i = 0; i < m; i += 8) {
        const int rows = (int)(m - i < 8 ? m - i : 8);
        for (int a = 0; a < rows; a++) bf_round_row(k, x + (i + a) * ldx, xb + a * k2);
        bf_nt_pairs(rows, r, k2, alpha, xb, k2, wp, c + i * ldc, ldc);
    }
}
#endif

int glmk_lowrank_nt_bf16_pairs(long m, long r, long k2, float alpha, const uint32_t *xp, long ldxp, const uint32_t *wp,
                               float *c, long ldc) {
#ifdef GLMK_BF_X86
    if (!glmk_has_avx512_bf16()) return -1;
    if (m <= 0 || r <= 0) return 0;
    bf_nt_pairs(m, r, k2, alpha, xp, ldxp, wp, c, ldc);
    return 0;
#else
    return -1;
#endif
}

int glmk_lowrank_nt_bf16(long m, long r, long k, float alpha, const float *x, long ldx, const uint32_t *wp,
                         float *c, long ldc, uint32_t *scratch) {
#ifdef GLMK_BF_X86
    if (!glmk_has_avx512_bf16()) return -1;
    if (m <= 0 || r <= 0) return 0;
    bf_nt(m, r, k, alpha, x, ldx, wp, c, ldc, scratch);
    return 0;
#else
    return -1;
#endif
}

#ifdef GLMK_BF_X86
// nn: C[i, q] = beta · C[i, q] + alpha · Σ_j D[i, j] · W[j, q], W packed as pairs along j (`wp` [(r+1)/2, n]).
// Blocks of RB (≤ 8) rows × 32 columns keep 2·RB accumulators; D's rows (r values each) are rounded into `db`.
GLMK_BF_INLINE void bf_nn_block(const int RB, long r2, float alpha, const uint32_t *db, long lddb, const uint32_t *wp,
                                long n, float beta, __mmask16 m0, __mmask16 m1, float *c, long ldc) {
    __m512 acc[8][2];
    for (int a = 0; a < RB; a++) { acc[a][0] = _mm512_setzero_ps(); acc[a][1] = _mm512_setzero_ps(); }
    for (long j = 0; j < r2; j++) {
        const uint32_t *wj = wp + j * n;
        const __m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi32(m0, wj), w1 = (__m512bh)_mm512_maskz_loadu_epi32(m1, wj + 16);
        for (int a = 0; a < RB; a++) {
            BF_DP_BCST(acc[a][0], w0, db + a * lddb + j);
            BF_DP_BCST(acc[a][1], w1, db + a * lddb + j);
        }
    }
    const __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
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

#define BF_NN_CASE(RB) case RB: bf_nn_block(RB, r2, alpha, db, r2, wp + q0, n, beta, m0, m1, c + i * ldc + q0, ldc); break;


GLMK_BF_TARGET static void bf_nn(long m, long n, long r, float alpha, const float *d, long ldd, const uint32_t *wp,
                                 float beta, float *c, long ldc, uint32_t *db) {
    const long r2 = (r + 1) / 2;
    for (long i = 0; i < m; i += 8) {
        const int rows = (int)(m - i < 8 ? m - i : 8);
        for (int a = 0; a < rows; a++) glmk_pack_bf16_pairs(r, 1, d + (i + a) * ldd, 1, 1, db + a * r2);
        for (long q0 = 0; q0 < n; q0 += 32) {
            const long left = n - q0;
            const __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            const __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            switch (rows) {
                BF_NN_CASE(1) BF_NN_CASE(2) BF_NN_CASE(3) BF_NN_CASE(4)
                BF_NN_CASE(5) BF_NN_CASE(6) BF_NN_CASE(7) BF_NN_CASE(8)
                default: break;
            }
        }
    }
}
#endif

int glmk_lowrank_nn_bf16(long m, long n, long r, float alpha, const float *d, long ldd, const uint32_t *wp,
                         float beta, float *c, long ldc, uint32_t *db) {
#ifdef GLMK_BF_X86
    if (!glmk_has_avx512_bf16()) return -1;
    if (m <= 0 || n <= 0) return 0;
    bf_nn(m, n, r, alpha, d, ldd, wp, beta, c, ldc, db);
    return 0;
#else
    return -1;
#endif
}

#ifdef GLMK_BF_X86
// tn: C[j, q] = alpha · Σ_i P[i, j] · Q[i, q], P packed as pairs along i (`pp` [(m+1)/2, r]); Q's rows are paired
// as they are read: two rows' 16-column chunks are rounded into one register and interleaved (row 2i in the low
// half of each lane, 2i + 1 in the high). Blocks of 64 row pairs, prefetched as LowRank.c's tn.
GLMK_BF_INLINE void bf_tn_block(const int JB, long pairs, long rowsLeft, int first, const uint32_t *pp, long r,
                                const float *q, long ldq, __mmask16 mask, float *c, long ldc) {
    const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    __m512 acc[16];
    for (int b = 0; b < JB; b++) acc[b] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask, c + b * ldc);
    for (long i = 0; i < pairs; i++) {
        const float *q0 = q + 2 * i * ldq;
        _mm_prefetch((const char *)(q0 + 2 * ldq + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(q0 + 3 * ldq + 64), _MM_HINT_T0);
        const __m512 lo = _mm512_maskz_loadu_ps(mask, q0);
        const __m512 hi = 2 * i + 1 < rowsLeft ? _mm512_maskz_loadu_ps(mask, q0 + ldq) : _mm512_setzero_ps();
        const __m512bh qv = (__m512bh)_mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        const uint32_t *pi = pp + i * r;
        for (int b = 0; b < JB; b++) BF_DP_BCST(acc[b], qv, pi + b);
    }
    for (int b = 0; b < JB; b++) _mm512_mask_storeu_ps(c + b * ldc, mask, acc[b]);
}

#define BF_TN_ROWS 128
#define BF_TN_CASE(JB) case JB: bf_tn_block(JB, pairs, rows, i0 == 0, pp + (i0 / 2) * r + j, r, q + i0 * ldq + q0, ldq, \
                                            mask, c + j * ldc + q0, ldc); break;

GLMK_BF_TARGET static void bf_tn(long r, long n, long m, float alpha, const uint32_t *pp, const float *q, long ldq,
                                 float *c, long ldc) {
    for (long i0 = 0; i0 < m; i0 += BF_TN_ROWS) {
        const long rows = m - i0 < BF_TN_ROWS ? m - i0 : BF_TN_ROWS, pairs = (rows + 1) / 2;
        for (long q0 = 0; q0 < n; q0 += 16) {
            const long left = n - q0;
            const __mmask16 mask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            for (long j = 0; j < r; j += 16) {
                switch ((int)(r - j < 16 ? r - j : 16)) {
                    BF_TN_CASE(1) BF_TN_CASE(2) BF_TN_CASE(3) BF_TN_CASE(4) BF_TN_CASE(5) BF_TN_CASE(6)
                    BF_TN_CASE(7) BF_TN_CASE(8) BF_TN_CASE(9) BF_TN_CASE(10) BF_TN_CASE(11) BF_TN_CASE(12)
                    BF_TN_CASE(13) BF_TN_CASE(14) BF_TN_CASE(15) BF_TN_CASE(16)
                    default: break;
                }
            }
        }
    }
    glmk_lowrank_tn_finish(r, n, m, alpha, c, ldc);
}
#endif

int glmk_lowrank_tn_bf16(long r, long n, long m, float alpha, const uint32_t *pp, const float *q, long ldq,
                         float *c, long ldc) {
#ifdef GLMK_BF_X86
    if (!glmk_has_avx512_bf16()) return -1;
    if (r <= 0 || n <= 0) return 0;
    bf_tn(r, n, m, alpha, pp, q, ldq, c, ldc);
    return 0;
#else
    return -1;
#endif
}
