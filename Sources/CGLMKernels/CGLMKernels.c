// x · Wᵀ for few rows of x (decode), W bf16 or f32 `[n, k]`. Blocks of NR weight rows × M activation rows keep
// NR·M vector accumulators (AVX-512: NR = 3 from two rows on, see GLMK_DEFAULT_BLOCK_ROWS; interleaved weight rows
// streamed from DRAM slower at m = 1 on the 2-core EPYC VM, 2.4 vs 4 ms per bench-model token, so m = 1 has its own
// kernels with four accumulators over k, `glmk_row_kernel`); every weight vector is widened once (bf16 → f32 is a zero-extension and a 16-bit shift,
// exact) and used for all M rows. The k tail is done with masked loads (AVX-512) or in scalar (AVX2). Each weight
// row is prefetched GLMK_PF bytes ahead.
#include "CGLMKernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GLMK_X86 1
#endif

int glmk_isa_level(void) {
#ifdef GLMK_X86
    static int level = -1;
    if (level >= 0) return level;
    __builtin_cpu_init();
    int l = 0;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) l = 1;
    if (l == 1 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl")) l = 2;
    level = l;
    return l;
#else
    return 0;
#endif
}

#define GLMK_MAXM 8
// Software prefetch distance in bytes along each weight row (rows are contiguous, so this reaches into the rows
// of the next blocks). Without it, the few-row kernels streamed ~5-8 GB/s per core from DRAM; with 8-16 KiB,
// 2 cores read the 58 MB bench weights at ~18-20 GB/s (m = 1 and m = 8; measured on the 2-core AMD EPYC VM).
#define GLMK_PF 16384
#define GLMK_MAXNR 4
// Three weight rows per block from two activation rows on: on the 2-core AMD EPYC Zen 4 VM, batch-8 greedy decode of
// the bench model in 5 interleaved rounds (`GLMTRAIN_BLOCK_ROWS=1|3 bench generate --no-compare --batch 8`): f32
// 1,148-1,206 vs 1,215-1,271 tok/s (paired median 1.04x), bf16 1,607-2,159 vs 1,839-2,902 (1.26x).
#ifndef GLMK_DEFAULT_BLOCK_ROWS
#define GLMK_DEFAULT_BLOCK_ROWS 3
#endif

static inline float glmk_widen1(uint16_t v) {
    union { uint32_t u; float f; } x;
    x.u = (uint32_t)v << 16;
    return x.f;
}

static inline void glmk_store(float *o, float v, float alpha, float beta) {
    *o = beta == 0.0f ? alpha * v : alpha * v + beta * *o;
}

#ifdef GLMK_X86
// ---------------------------------------------------------------- AVX-512
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))
#define T512_INLINE static inline __attribute__((always_inline, target("avx512f,avx512bw,avx512vl,avx2,fma")))

T512_INLINE __m512 ld512_bf16(const uint16_t *p) {
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
T512_INLINE __m512 ld512m_bf16(const uint16_t *p, __mmask16 mk) {
    __m256i h = _mm256_maskz_loadu_epi16(mk, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
T512_INLINE __m512 ld512_f32(const float *p) { return _mm512_loadu_ps(p); }
T512_INLINE __m512 ld512m_f32(const float *p, __mmask16 mk) { return _mm512_maskz_loadu_ps(mk, p); }

#define GLMK_BLOCK512(NAME, WT, LD, LDM)                                                                        \
T512_INLINE void NAME(const int M, const int NR, long k, float alpha, const float *a, long lda, const WT *w,      \
                      long ldw, float beta, float *c, long ldc) {                                              \
    __m512 acc[GLMK_MAXNR][GLMK_MAXM];                                                                         \
    for (int j = 0; j < NR; j++) for (int r = 0; r < M; r++) acc[j][r] = _mm512_setzero_ps();                  \
    long i = 0;                                                                                                \
    for (; i + 16 <= k; i += 16) {                                                                             \
        __m512 wv[GLMK_MAXNR];                                                                                 \
        for (int j = 0; j < NR; j++) wv[j] = LD(w + j * ldw + i);                                              \
        for (int j = 0; j < NR; j++) _mm_prefetch((const char *)(w + j * ldw + i) + GLMK_PF, _MM_HINT_T0);   \
        for (int r = 0; r < M; r++) {                                                                          \
            __m512 x = _mm512_loadu_ps(a + r * lda + i);                                                       \
            for (int j = 0; j < NR; j++) acc[j][r] = _mm512_fmadd_ps(wv[j], x, acc[j][r]);                     \
        }                                                                                                      \
    }                                                                                                          \
    if (i < k) {                                                                                               \
        __mmask16 mk = (__mmask16)((1u << (k - i)) - 1u);                                                      \
        __m512 wv[GLMK_MAXNR];                                                                                 \
        for (int j = 0; j < NR; j++) wv[j] = LDM(w + j * ldw + i, mk);                                         \
        for (int r = 0; r < M; r++) {                                                                          \
            __m512 x = _mm512_maskz_loadu_ps(mk, a + r * lda + i);                                             \
            for (int j = 0; j < NR; j++) acc[j][r] = _mm512_fmadd_ps(wv[j], x, acc[j][r]);                     \
        }                                                                                                      \
    }                                                                                                          \
    for (int j = 0; j < NR; j++)                                                                               \
        for (int r = 0; r < M; r++) glmk_store(c + r * ldc + j, _mm512_reduce_add_ps(acc[j][r]), alpha, beta); \
}

GLMK_BLOCK512(blk512_bf16, uint16_t, ld512_bf16, ld512m_bf16)
GLMK_BLOCK512(blk512_f32, float, ld512_f32, ld512m_f32)

// One activation row: weight rows one at a time (a single sequential stream, which the hardware prefetchers follow
// better than NR interleaved ones; software prefetch only slowed it down), four accumulators over k.
#define GLMK_ROW512(NAME, WT, LD, LDM)                                                                          \
T512_INLINE void NAME(long n, long k, float alpha, const float *a, const WT *w, long ldw, float beta, float *c) { \
    for (long j = 0; j < n; j++) {                                                                             \
        const WT *wr = w + j * ldw;                                                                            \
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                            \
        long i = 0;                                                                                            \
        for (; i + 64 <= k; i += 64) {                                                                         \
            s0 = _mm512_fmadd_ps(LD(wr + i), _mm512_loadu_ps(a + i), s0);                                      \
            s1 = _mm512_fmadd_ps(LD(wr + i + 16), _mm512_loadu_ps(a + i + 16), s1);                            \
            s2 = _mm512_fmadd_ps(LD(wr + i + 32), _mm512_loadu_ps(a + i + 32), s2);                            \
            s3 = _mm512_fmadd_ps(LD(wr + i + 48), _mm512_loadu_ps(a + i + 48), s3);                            \
        }                                                                                                      \
        for (; i + 16 <= k; i += 16) s0 = _mm512_fmadd_ps(LD(wr + i), _mm512_loadu_ps(a + i), s0);             \
        if (i < k) {                                                                                           \
            __mmask16 mk = (__mmask16)((1u << (k - i)) - 1u);                                                  \
            s1 = _mm512_fmadd_ps(LDM(wr + i, mk), _mm512_maskz_loadu_ps(mk, a + i), s1);                       \
        }                                                                                                      \
        glmk_store(c + j, _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3))),  \
                   alpha, beta);                                                                               \
    }                                                                                                          \
}

GLMK_ROW512(row512_bf16, uint16_t, ld512_bf16, ld512m_bf16)
GLMK_ROW512(row512_f32, float, ld512_f32, ld512m_f32)

// ---------------------------------------------------------------- AVX2
#define T256_INLINE static inline __attribute__((always_inline, target("avx2,fma")))

T256_INLINE __m256 ld256_bf16(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
T256_INLINE __m256 ld256_f32(const float *p) { return _mm256_loadu_ps(p); }
T256_INLINE float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float glmk_w1_bf16(const uint16_t *p) { return glmk_widen1(*p); }
static inline float glmk_w1_f32(const float *p) { return *p; }

#define GLMK_BLOCK256(NAME, WT, LD, W1)                                                                         \
T256_INLINE void NAME(const int M, const int NR, long k, float alpha, const float *a, long lda, const WT *w,      \
                      long ldw, float beta, float *c, long ldc) {                                              \
    __m256 acc[GLMK_MAXNR][GLMK_MAXM];                                                                         \
    for (int j = 0; j < NR; j++) for (int r = 0; r < M; r++) acc[j][r] = _mm256_setzero_ps();                  \
    long i = 0;                                                                                                \
    for (; i + 8 <= k; i += 8) {                                                                               \
        __m256 wv[GLMK_MAXNR];                                                                                 \
        for (int j = 0; j < NR; j++) wv[j] = LD(w + j * ldw + i);                                              \
        for (int j = 0; j < NR; j++) _mm_prefetch((const char *)(w + j * ldw + i) + GLMK_PF, _MM_HINT_T0);   \
        for (int r = 0; r < M; r++) {                                                                          \
            __m256 x = _mm256_loadu_ps(a + r * lda + i);                                                       \
            for (int j = 0; j < NR; j++) acc[j][r] = _mm256_fmadd_ps(wv[j], x, acc[j][r]);                     \
        }                                                                                                      \
    }                                                                                                          \
    for (int j = 0; j < NR; j++)                                                                               \
        for (int r = 0; r < M; r++) {                                                                          \
            float v = hsum256(acc[j][r]);                                                                      \
            for (long t = i; t < k; t++) v += W1(w + j * ldw + t) * a[r * lda + t];                            \
            glmk_store(c + r * ldc + j, v, alpha, beta);                                                       \
        }                                                                                                      \
}

GLMK_BLOCK256(blk256_bf16, uint16_t, ld256_bf16, glmk_w1_bf16)
GLMK_BLOCK256(blk256_f32, float, ld256_f32, glmk_w1_f32)

// One activation row on 256-bit vectors, weight rows one at a time, four accumulators over k: the m = 1 kernel on
// AMD CPUs even where they have AVX-512 (`glmk_row_kernel`). On the 2-core AMD EPYC Zen 4 VM, streaming the bench
// model's weights through `row512_*` with 512-bit loads was slower than through this one (2 threads, all of a
// token's products, interleaved runs: f32 113 MB 363-374 vs 443-463 tokens/s, bf16 57 MB 577-713 vs 633-1,028).
#define GLMK_ROW256(NAME, WT, LD, W1)                                                                           \
__attribute__((target("avx2,fma"))) static void NAME(long n, long k, float alpha, const float *a, const WT *w, long ldw, float beta, float *c) { \
    for (long j = 0; j < n; j++) {                                                                             \
        const WT *wr = w + j * ldw;                                                                            \
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                            \
        long i = 0;                                                                                            \
        for (; i + 32 <= k; i += 32) {                                                                         \
            s0 = _mm256_fmadd_ps(LD(wr + i), _mm256_loadu_ps(a + i), s0);                                      \
            s1 = _mm256_fmadd_ps(LD(wr + i + 8), _mm256_loadu_ps(a + i + 8), s1);                              \
            s2 = _mm256_fmadd_ps(LD(wr + i + 16), _mm256_loadu_ps(a + i + 16), s2);                            \
            s3 = _mm256_fmadd_ps(LD(wr + i + 24), _mm256_loadu_ps(a + i + 24), s3);                            \
        }                                                                                                      \
        for (; i + 8 <= k; i += 8) s0 = _mm256_fmadd_ps(LD(wr + i), _mm256_loadu_ps(a + i), s0);               \
        float v = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));                        \
        for (; i < k; i++) v += W1(wr + i) * a[i];                                                             \
        glmk_store(c + j, v, alpha, beta);                                                                     \
    }                                                                                                          \
}

GLMK_ROW256(row256_bf16, uint16_t, ld256_bf16, glmk_w1_bf16)
GLMK_ROW256(row256_f32, float, ld256_f32, glmk_w1_f32)

// Blocks of NR weight rows, then single rows for the remainder; M is a constant in each expansion.
#define GLMK_RUN(BLK, M, NR)                                                                                   \
    do {                                                                                                       \
        long j = 0;                                                                                            \
        for (; j + (NR) <= n; j += (NR)) BLK(M, NR, k, alpha, a, lda, w + j * ldw, ldw, beta, c + j, ldc);     \
        for (; j < n; j++) BLK(M, 1, k, alpha, a, lda, w + j * ldw, ldw, beta, c + j, ldc);                    \
    } while (0)

#define GLMK_DRIVER(NAME, TARGET, WT, BLK, ROW1, NR4, NR8)                                                    \
TARGET static void NAME(long m, long n, long k, float alpha, const float *a, long lda, const WT *w, long ldw,   \
                        float beta, float *c, long ldc) {                                                      \
    switch (m) {                                                                                               \
    case 1: ROW1; break;                                                                                        \
    case 2: GLMK_RUN(BLK, 2, NR4); break;                                                                      \
    case 3: GLMK_RUN(BLK, 3, NR4); break;                                                                      \
    case 4: GLMK_RUN(BLK, 4, NR4); break;                                                                      \
    case 5: GLMK_RUN(BLK, 5, NR8); break;                                                                      \
    case 6: GLMK_RUN(BLK, 6, NR8); break;                                                                      \
    case 7: GLMK_RUN(BLK, 7, NR8); break;                                                                      \
    default: GLMK_RUN(BLK, 8, NR8); break;                                                                     \
    }                                                                                                          \
}

// AVX-512: one weight row per block (interleaved rows were slower from DRAM here); AVX2: 2 or 1.
#define T256 __attribute__((target("avx2,fma")))
GLMK_DRIVER(drv512_bf16, T512, uint16_t, blk512_bf16, row512_bf16(n, k, alpha, a, w, ldw, beta, c), 1, 1)
GLMK_DRIVER(drv512_f32, T512, float, blk512_f32, row512_f32(n, k, alpha, a, w, ldw, beta, c), 1, 1)
// Three weight rows per block from two activation rows on (3·M accumulators, each activation vector used three
// times): `glmk_block_rows` chooses between these (the default) and the one-row blocks above.
GLMK_DRIVER(drv512_bf16_nr3, T512, uint16_t, blk512_bf16, row512_bf16(n, k, alpha, a, w, ldw, beta, c), 3, 3)
GLMK_DRIVER(drv512_f32_nr3, T512, float, blk512_f32, row512_f32(n, k, alpha, a, w, ldw, beta, c), 3, 3)
GLMK_DRIVER(drv256_bf16, T256, uint16_t, blk256_bf16, GLMK_RUN(blk256_bf16, 1, 4), 2, 1)
GLMK_DRIVER(drv256_f32, T256, float, blk256_f32, GLMK_RUN(blk256_f32, 1, 4), 2, 1)
// The f32 three-row blocks on 256-bit vectors where the one-row kernel is the 256-bit one (AMD, `glmk_row_kernel`),
// compiled with AVX-512VL so that the 3·M accumulators have 32 registers. AMD EPYC Zen 4 VM, batch-8 greedy decode
// of the bench model (f32 weights, 2 threads, 5 interleaved pairs): 1,151-1,198 tokens/s with drv512_f32_nr3,
// 1,206-1,342 with this one; for bf16 weights the two were not told apart (bimodal runs), so bf16 keeps 512 bits.
#define T256X __attribute__((target("avx512f,avx512vl,avx2,fma")))
GLMK_DRIVER(drv256x_f32_nr3, T256X, float, blk256_f32, row256_f32(n, k, alpha, a, w, ldw, beta, c), 3, 3)
#endif

static int glmk_block_choice = 0;

void glmk_set_block_rows(int rows) { glmk_block_choice = rows == 1 || rows == 3 ? rows : 0; }

int glmk_block_rows(void) {
    int choice = glmk_block_choice;
    if (choice) return choice;
    const char *env = getenv("GLMTRAIN_BLOCK_ROWS");
    choice = env && strcmp(env, "1") == 0 ? 1 : env && strcmp(env, "3") == 0 ? 3 : GLMK_DEFAULT_BLOCK_ROWS;
    glmk_block_choice = choice;
    return choice;
}

static int glmk_row_choice = 0;

void glmk_set_row_kernel(int width) { glmk_row_choice = width == 256 || width == 512 ? width : 0; }

int glmk_row_kernel(void) {
    int choice = glmk_row_choice;
    if (choice) return choice;
    const char *env = getenv("GLMTRAIN_ROW_KERNEL");
    if (env && strcmp(env, "256") == 0) choice = 256;
    else if (env && strcmp(env, "512") == 0) choice = 512;
#ifdef GLMK_X86
    else { __builtin_cpu_init(); choice = __builtin_cpu_is("amd") ? 256 : 512; }
#else
    else choice = 512;
#endif
    glmk_row_choice = choice;
    return choice;
}

void glmk_gemm_nt_bf16(int isa, long m, long n, long k, float alpha, const float *a, long lda,
                       const uint16_t *w, long ldw, float beta, float *c, long ldc) {
    for (long r0 = 0; r0 < m; r0 += GLMK_MAXM) {
        long rows = m - r0 < GLMK_MAXM ? m - r0 : GLMK_MAXM;
        const float *ar = a + r0 * lda;
        float *cr = c + r0 * ldc;
#ifdef GLMK_X86
        if (isa >= 2 && rows == 1 && glmk_row_kernel() == 256) { row256_bf16(n, k, alpha, ar, w, ldw, beta, cr); continue; }
        if (isa >= 2 && glmk_block_rows() == 3) { drv512_bf16_nr3(rows, n, k, alpha, ar, lda, w, ldw, beta, cr, ldc); continue; }
        if (isa >= 2) { drv512_bf16(rows, n, k, alpha, ar, lda, w, ldw, beta, cr, ldc); continue; }
        if (isa == 1) { drv256_bf16(rows, n, k, alpha, ar, lda, w, ldw, beta, cr, ldc); continue; }
#endif
        for (long r = 0; r < rows; r++)
            for (long j = 0; j < n; j++) {
                float v = 0;
                for (long i = 0; i < k; i++) v += ar[r * lda + i] * glmk_widen1(w[j * ldw + i]);
                glmk_store(cr + r * ldc + j, v, alpha, beta);
            }
    }
}

void glmk_gemm_nt_f32(int isa, long m, long n, long k, float alpha, const float *a, long lda,
                      const float *w, long ldw, float beta, float *c, long ldc) {
    for (long r0 = 0; r0 < m; r0 += GLMK_MAXM) {
        long rows = m - r0 < GLMK_MAXM ? m - r0 : GLMK_MAXM;
        const float *ar = a + r0 * lda;
        float *cr = c + r0 * ldc;
#ifdef GLMK_X86
        if (isa >= 2 && rows == 1 && glmk_row_kernel() == 256) { row256_f32(n, k, alpha, ar, w, ldw, beta, cr); continue; }
        if (isa >= 2 && glmk_block_rows() == 3 && glmk_row_kernel() == 256) { drv256x_f32_nr3(rows, n, k, alpha, ar, lda, w, ldw, beta, cr, ldc); continue; }
        if (isa >= 2 && glmk_block_rows() == 3) { drv512_f32_nr3(rows, n, k, alpha, ar, lda, w, ldw, beta, cr, ldc); continue; }
        if (isa >= 2) { drv512_f32(rows, n, k, alpha, ar, lda, w, ldw, beta, cr, ldc); continue; }
        if (isa == 1) { drv256_f32(rows, n, k, alpha, ar, lda, w, ldw, beta, cr, ldc); continue; }
#endif
        for (long r = 0; r < rows; r++)
            for (long j = 0; j < n; j++) {
                float v = 0;
                for (long i = 0; i < k; i++) v += ar[r * lda + i] * w[j * ldw + i];
                glmk_store(cr + r * ldc + j, v, alpha, beta);
            }
    }
}
