// SwiGLU's elementwise forward and backward on AVX-512: the same operations, in the same order and without fused
// multiply-adds, as the Swift SIMD8 code (SwiGLU.swift with FastExp.exp), so the results are identical bit for bit
// (a NaN result's sign bit aside, which the Swift code itself gives differently in debug and release builds);
// the package's baseline x86-64 target runs that Swift code on two SSE halves, four times slower per element.
#include "CGLMKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define GLMK_SW_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

// FastExp.exp: Cephes' expf (range reduction by ln 2, degree-6 polynomial, 2^n by exponent bits), lane for lane.
GLMK_SW_AVX512 __attribute__((always_inline)) static inline __m512 sw_exp(__m512 x0) {
    const __m512 lo = _mm512_set1_ps(-87.3f), hi = _mm512_set1_ps(88.3f);
    __m512 x1 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x0, lo, _CMP_LT_OQ), x0, lo);
    x1 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x1, hi, _CMP_GT_OQ), x1, hi);
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(x1, _mm512_set1_ps(1.44269504f)), magic);
    const __m512 n = _mm512_sub_ps(t, magic);
    __m512 x = _mm512_sub_ps(x1, _mm512_mul_ps(n, _mm512_set1_ps(0.693359375f)));
    x = _mm512_sub_ps(x, _mm512_mul_ps(n, _mm512_set1_ps(-2.1219444e-4f)));
    const __m512 z = _mm512_mul_ps(x, x);
    __m512 y = _mm512_set1_ps(1.98756915e-4f);
    y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(1.39819995e-3f));
    y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(8.3334519e-3f));
    y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(4.1665796e-2f));
    y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(1.66666655e-1f));
    y = _mm512_add_ps(_mm512_mul_ps(y, x), _mm512_set1_ps(5.0000001e-1f));
    y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(y, z), x), _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_castps_si512(t);
    __m512i scale = _mm512_slli_epi32(_mm512_add_epi32(_mm512_sub_epi32(bits, _mm512_set1_epi32(0x4B400000)),
                                                       _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(scale));
}

GLMK_SW_AVX512 __attribute__((always_inline)) static inline __m512 sw_neg(__m512 v) {
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)));
}

GLMK_SW_AVX512 static void sw_forward(long n, const float *g, const float *u, float *y) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512 gv = _mm512_maskz_loadu_ps(m, g + j), uv = _mm512_maskz_loadu_ps(m, u + j);
        __m512 e = sw_exp(sw_neg(gv));
        _mm512_mask_storeu_ps(y + j, m, _mm512_mul_ps(_mm512_div_ps(gv, _mm512_add_ps(one, e)), uv));
    }
}

GLMK_SW_AVX512 static void sw_backward(long n, const float *g, const float *u, const float *dy, float *dg, float *du) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (long j = 0; j < n; j += 16) {
        const __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, g + j), uv = _mm512_maskz_loadu_ps(m, u + j);
        __m512 d = _mm512_maskz_loadu_ps(m, dy + j);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, sw_exp(sw_neg(x))));
        if (du) _mm512_mask_storeu_ps(du + j, m, _mm512_mul_ps(_mm512_mul_ps(d, x), s));
        if (dg) {
            __m512 f = _mm512_add_ps(one, _mm512_mul_ps(x, _mm512_sub_ps(one, s)));
            _mm512_mask_storeu_ps(dg + j, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(d, uv), s), f));
        }
    }
}
#endif

int glmk_swiglu_forward(long n, const float *gate, const float *up, float *out) {
#if defined(__x86_64__)
    if (glmk_isa_level() >= 2) { sw_forward(n, gate, up, out); return 1; }
#endif
    (void)n; (void)gate; (void)up; (void)out;
    return 0;
}

int glmk_swiglu_backward(long n, const float *gate, const float *up, const float *dy, float *dgate, float *dup) {
#if defined(__x86_64__)
    if (glmk_isa_level() >= 2) { sw_backward(n, gate, up, dy, dgate, dup); return 1; }
#endif
    (void)n; (void)gate; (void)up; (void)dy; (void)dgate; (void)dup;
    return 0;
}
