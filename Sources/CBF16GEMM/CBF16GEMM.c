// oneDNN matmul on bf16 operands with f32 output (its brgemm AVX512_BF16 kernels); engine and stream made once;
// oneDNN's own primitive cache keeps the kernels of the shapes a run uses.
#include "CBF16GEMM.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <oneapi/dnnl/dnnl.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static pthread_once_t glmb_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t glmb_engine;
static dnnl_stream_t glmb_stream;
static int glmb_ok;
static char glmb_impl[64];

static int glmb_cpu_has_bf16(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

static void glmb_init(void) {
    if (!glmb_cpu_has_bf16()) return;
    if (dnnl_engine_create(&glmb_engine, dnnl_cpu, 0) != dnnl_success) return;
    if (dnnl_stream_create(&glmb_stream, glmb_engine, dnnl_stream_default_flags) != dnnl_success) return;
    // Ask for a 64×64×64 bf16 kernel: a reference (non-brgemm) one would be slower than f32 sgemm.
    dnnl_memory_desc_t ad, bd, cd;
    dnnl_dims_t dims = {64, 64}, strides = {64, 1};
    dnnl_memory_desc_init_by_strides(&ad, 2, dims, dnnl_bf16, strides);
    dnnl_memory_desc_init_by_strides(&bd, 2, dims, dnnl_bf16, strides);
    dnnl_memory_desc_init_by_strides(&cd, 2, dims, dnnl_f32, strides);
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    if (dnnl_matmul_desc_init(&md, &ad, &bd, NULL, &cd) != dnnl_success) return;
    if (dnnl_primitive_desc_create(&pd, &md, NULL, glmb_engine, NULL) != dnnl_success) return;
    const char *impl = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    strncpy(glmb_impl, impl, sizeof glmb_impl - 1);
    dnnl_primitive_desc_destroy(pd);
    glmb_ok = strstr(glmb_impl, "bf16") != NULL && strstr(glmb_impl, "ref") == NULL;
}

int glmb_available(void) {
    pthread_once(&glmb_once, glmb_init);
    return glmb_ok;
}

const char *glmb_kernel_name(void) {
    pthread_once(&glmb_once, glmb_init);
    return glmb_ok ? glmb_impl : "";
}

void glmb_set_threads(int n) {
    // oneDNN here runs on OpenMP; its pool size is OpenMP's (looked up at run time: no link-time libgomp need).
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (set && n >= 1) set(n);
}

int glmb_gemm(long m, long n, long k, const uint16_t *a, long sam, long sak, const uint16_t *b, long sbk, long sbn,
              int accumulate, float *c, long ldc) {
    if (!glmb_available()) return -1;
    dnnl_memory_desc_t ad, bd, cd;
    dnnl_dims_t adims = {m, k}, astr = {sam, sak}, bdims = {k, n}, bstr = {sbk, sbn}, cdims = {m, n}, cstr = {ldc, 1};
    if (dnnl_memory_desc_init_by_strides(&ad, 2, adims, dnnl_bf16, astr) != dnnl_success) return -2;
    if (dnnl_memory_desc_init_by_strides(&bd, 2, bdims, dnnl_bf16, bstr) != dnnl_success) return -2;
    if (dnnl_memory_desc_init_by_strides(&cd, 2, cdims, dnnl_f32, cstr) != dnnl_success) return -2;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    if (accumulate) {
        if (dnnl_primitive_attr_create(&attr) != dnnl_success) return -3;
        dnnl_post_ops_create(&ops);
        dnnl_post_ops_append_sum(ops, 1.0f);
        dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t am = NULL, bm = NULL, cm = NULL;
    int status = -4;
    if (dnnl_matmul_desc_init(&md, &ad, &bd, NULL, &cd) != dnnl_success) goto done;
    if (dnnl_primitive_desc_create(&pd, &md, attr, glmb_engine, NULL) != dnnl_success) goto done;
    if (dnnl_primitive_create(&prim, pd) != dnnl_success) goto done;
    if (dnnl_memory_create(&am, &ad, glmb_engine, (void *)a) != dnnl_success) goto done;
    if (dnnl_memory_create(&bm, &bd, glmb_engine, (void *)b) != dnnl_success) goto done;
    if (dnnl_memory_create(&cm, &cd, glmb_engine, c) != dnnl_success) goto done;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    if (dnnl_primitive_execute(prim, glmb_stream, 3, args) != dnnl_success) goto done;
    if (dnnl_stream_wait(glmb_stream) != dnnl_success) goto done;
    status = 0;
done:
    if (am) dnnl_memory_destroy(am);
    if (bm) dnnl_memory_destroy(bm);
    if (cm) dnnl_memory_destroy(cm);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return status;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void glmb_to_bf16_avx512(long rows, long cols, const float *src, long lds, uint16_t *dst) {
    for (long r = 0; r < rows; r++) {
        const float *s = src + r * lds;
        uint16_t *d = dst + r * cols;
        long c = 0;
        for (; c + 32 <= cols; c += 32) {
            __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + c + 16), _mm512_loadu_ps(s + c));
            _mm512_storeu_si512((void *)(d + c), (__m512i)v);
        }
        for (; c + 16 <= cols; c += 16) {
            __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(s + c));
            _mm256_storeu_si256((__m256i *)(d + c), (__m256i)v);
        }
        if (c < cols) {
            __mmask16 mask = (__mmask16)((1u << (cols - c)) - 1);
            __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, s + c));
            _mm256_mask_storeu_epi16((void *)(d + c), mask, (__m256i)v);
        }
    }
}
#endif

static uint16_t glmb_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN stays a (quiet) NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

void glmb_to_bf16(long rows, long cols, const float *src, long lds, uint16_t *dst) {
#if defined(__x86_64__)
    if (glmb_cpu_has_bf16()) { glmb_to_bf16_avx512(rows, cols, src, lds, dst); return; }
#endif
    for (long r = 0; r < rows; r++)
        for (long c = 0; c < cols; c++) dst[r * cols + c] = glmb_round(src[r * lds + c]);
}
