// Σ x² in double over a float array (the global gradient norm): 16 double accumulators on AVX-512, 4 in the plain
// loop, so the sum is not one long chain of dependent additions (a single double accumulator took ~4 cycles per
// element: 35 ms for the 32M gradients of the bench model's full step).
#include "CGLMKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static double ss_avx512(const float *p, long n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(p + i)), hi = _mm512_cvtps_pd(_mm256_loadu_ps(p + i + 8));
        a0 = _mm512_fmadd_pd(lo, lo, a0);
        a1 = _mm512_fmadd_pd(hi, hi, a1);
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    for (; i < n; i++) s += (double)p[i] * (double)p[i];
    return s;
}
#endif

double glmk_sum_squares(const float *p, long n) {
#if defined(__x86_64__)
    if (glmk_isa_level() >= 2) return ss_avx512(p, n);
#endif
    double a[4] = {0, 0, 0, 0};
    long i = 0;
    for (; i + 4 <= n; i += 4)
        for (int j = 0; j < 4; j++) a[j] += (double)p[i + j] * (double)p[i + j];
    double s = (a[0] + a[1]) + (a[2] + a[3]);
    for (; i < n; i++) s += (double)p[i] * (double)p[i];
    return s;
}
