// Small products on bf16 pairs with f32 sums (AVX512_BF16's vdpbf16ps), for the attention tiles under
// `training.precision: bf16`: both operands arrive as dwords holding two bf16 values adjacent along the summed
// dimension, A with any strides (rows of a tile, or a tile transposed), B as packed rows. Blocks of 8 rows × 32
// columns keep 16 accumulators; each pair of A is the instruction's own broadcast operand (LowRankBF16.c says why).
#include "CGLMKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define GLMK_PB_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
#define GLMK_PB_INLINE GLMK_PB_TARGET __attribute__((always_inline)) static inline
#define PB_DP_BCST(acc, w, ptr) \
    __asm__("vdpbf16ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const uint32_t *)(ptr)))

/// A row as bf16 pairs (nearest even), pair w = (src[2w − shift], src[2w + 1 − shift]) with src[−1] and src[n] as 0.
GLMK_PB_INLINE void pb_round_row(long n, const float *src, int shift, uint32_t *dst) {
    const long words = (n + shift + 1) / 2;
    const float *p = src - shift;  // pair w reads p[2w], p[2w + 1]
    long w = shift;                // with a shift, pair 0 is (0, src[0]): done below
    for (; 2 * w + 32 <= n + shift; w += 16) {
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 2 * w + 16), _mm512_loadu_ps(p + 2 * w));
        _mm512_storeu_si512((void *)(dst + w), (__m512i)v);
    }
    for (; w < words; w++) {
        const long lo = 2 * w - shift, hi = lo + 1;
        dst[w] = glmk_bf16_round(lo < n ? src[lo] : 0) | (hi < n ? glmk_bf16_round(src[hi]) << 16 : 0u);
    }
    if (shift) dst[0] = n > 0 ? glmk_bf16_round(src[0]) << 16 : 0u;
}

GLMK_PB_TARGET static void pb_round_rows(long rows, long n, const float *src, long lds, int shift, uint32_t *dst, long ldd) {
    for (long i = 0; i < rows; i++) pb_round_row(n, src + i * lds, shift, dst + i * ldd);
}

GLMK_PB_INLINE void pb_block(const int RB, long k2, float alpha, const uint32_t *a, long sam, long sak, const uint32_t *b,
                             long ldb, float beta, __mmask16 m0, __mmask16 m1, float *c, long ldc) {
    __m512 acc[8][2];
    for (int r = 0; r < RB; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    for (long kk = 0; kk < k2; kk++) {
        const uint32_t *bk = b + kk * ldb;
        const __m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi32(m0, bk), w1 = (__m512bh)_mm512_maskz_loadu_epi32(m1, bk + 16);
        const uint32_t *ak = a + kk * sak;
        for (int r = 0; r < RB; r++) {
            PB_DP_BCST(acc[r][0], w0, ak + r * sam);
            PB_DP_BCST(acc[r][1], w1, ak + r * sam);
        }
    }
    const __m512 al = _mm512_set1_ps(alpha), be = _mm512_set1_ps(beta);
    for (int r = 0; r < RB; r++) {
        float *cr = c + r * ldc;
        __m512 y0 = _mm512_mul_ps(al, acc[r][0]), y1 = _mm512_mul_ps(al, acc[r][1]);
        if (beta != 0) {
            y0 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m0, cr), y0);
            y1 = _mm512_fmadd_ps(be, _mm512_maskz_loadu_ps(m1, cr + 16), y1);
        }
        _mm512_mask_storeu_ps(cr, m0, y0);
        _mm512_mask_storeu_ps(cr + 16, m1, y1);
    }
}

#define PB_CASE(RB) case RB: pb_block(RB, k2, alpha, a + i * sam, sam, sak, b + q0, ldb, beta, m0, m1, c + i * ldc + q0, ldc); break;

GLMK_PB_TARGET static void pb_gemm(long m, long n, long k2, float alpha, const uint32_t *a, long sam, long sak,
                                   const uint32_t *b, long ldb, float beta, float *c, long ldc) {
    for (long i = 0; i < m; i += 8) {
        for (long q0 = 0; q0 < n; q0 += 32) {
            const long left = n - q0;
            const __mmask16 m0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            const __mmask16 m1 = left >= 32 ? (__mmask16)0xFFFF : left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            switch ((int)(m - i < 8 ? m - i : 8)) {
                PB_CASE(1) PB_CASE(2) PB_CASE(3) PB_CASE(4) PB_CASE(5) PB_CASE(6) PB_CASE(7) PB_CASE(8)
                default: break;
            }
        }
    }
}
#endif

int glmk_bf16_round_pairs(long rows, long n, const float *src, long lds, int shift, uint32_t *dst, long ldd) {
#if defined(__x86_64__)
    if (!glmk_has_avx512_bf16()) return -1;
    pb_round_rows(rows, n, src, lds, shift ? 1 : 0, dst, ldd);
    return 0;
#else
    return -1;
#endif
}

int glmk_bf16_gemm_packed(long m, long n, long k2, float alpha, const uint32_t *a, long sam, long sak, const uint32_t *b,
                          long ldb, float beta, float *c, long ldc) {
#if defined(__x86_64__)
    if (!glmk_has_avx512_bf16()) return -1;
    if (m <= 0 || n <= 0) return 0;
    pb_gemm(m, n, k2, alpha, a, sam, sak, b, ldb, beta, c, ldc);
    return 0;
#else
    return -1;
#endif
}
