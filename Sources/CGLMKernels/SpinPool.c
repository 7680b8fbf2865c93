// A worker pool for short parallel regions (decode: ~50 per token, each tens of microseconds): helpers spin for a
// bounded time after each region, so the next one starts without a kernel wake-up (a GCD hand-off to a sleeping
// worker cost tens of microseconds on the 2-core VMs), then sleep on a futex. One region at a time; a caller that
// finds the pool busy (another thread, or a region inside a region) gets -1 and runs the work itself.
//
// Claims: one 64-bit ticket holds the region's generation (24 bits), its chunk count (20 bits) and the next chunk
// (20 bits); a helper takes chunk i by a compare-and-swap from i to i + 1 within the same generation, so it can never
// run a chunk of a region that has ended or take one twice. The caller waits until every chunk is done.
#include "CGLMKernels.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define GLMP_PAUSE() _mm_pause()
#else
#define GLMP_PAUSE() ((void)0)
#endif

#define GLMP_MAXHELPERS 63
#define GLMP_CHUNK_BITS 20
#define GLMP_MASK ((1ull << GLMP_CHUNK_BITS) - 1)

static _Atomic uint64_t glmp_ticket;        // gen << 40 | chunks << 20 | next
static _Atomic long glmp_done;
static _Atomic int glmp_busy;               // a region is running
static _Atomic int glmp_sleepers;
static _Atomic uint32_t glmp_wake;          // futex word
static _Atomic long glmp_spin_ns = 0;
static glmk_chunk_fn glmp_fn;
static void *glmp_ctx;
static int glmp_helpers;
static pthread_once_t glmp_once = PTHREAD_ONCE_INIT;
static int glmp_requested = 1;
static _Thread_local int glmp_inside;

static long glmp_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

// Runs chunks of the current region while there are any; returns when none is left to take.
static void glmp_work(void) {
    for (;;) {
        uint64_t t = atomic_load_explicit(&glmp_ticket, memory_order_acquire);
        uint64_t next = t & GLMP_MASK, chunks = (t >> GLMP_CHUNK_BITS) & GLMP_MASK;
        if (next >= chunks) return;
        if (!atomic_compare_exchange_weak_explicit(&glmp_ticket, &t, t + 1, memory_order_acq_rel, memory_order_acquire)) continue;
        glmp_fn(glmp_ctx, (long)next);
        atomic_fetch_add_explicit(&glmp_done, 1, memory_order_release);
    }
}

static int glmp_has_work(void) {
    uint64_t t = atomic_load_explicit(&glmp_ticket, memory_order_acquire);
    return (t & GLMP_MASK) < ((t >> GLMP_CHUNK_BITS) & GLMP_MASK);
}

static void *glmp_helper(void *arg) {
    (void)arg;
    glmp_inside = 1;
    for (;;) {
        glmp_work();
        long limit = atomic_load_explicit(&glmp_spin_ns, memory_order_relaxed);
        long start = limit > 0 ? glmp_now_ns() : 0;
        int found = 0;
        for (long i = 0; limit > 0; i++) {
            if (glmp_has_work()) { found = 1; break; }
            GLMP_PAUSE();
            if ((i & 255) == 255 && glmp_now_ns() - start > limit) break;
        }
        if (found) continue;
        uint32_t seen = atomic_load(&glmp_wake);
        atomic_fetch_add(&glmp_sleepers, 1);
        uint64_t t = atomic_load(&glmp_ticket);  // seq_cst: pairs with the caller's store, then its sleepers load
        if ((t & GLMP_MASK) >= ((t >> GLMP_CHUNK_BITS) & GLMP_MASK)) syscall(SYS_futex, &glmp_wake, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
        atomic_fetch_sub(&glmp_sleepers, 1);
    }
    return NULL;
}

static void glmp_start(void) {
    int n = glmp_requested - 1;
    if (n > GLMP_MAXHELPERS) n = GLMP_MAXHELPERS;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, glmp_helper, NULL) == 0) glmp_helpers++;
        pthread_attr_destroy(&attr);
    }
}

int glmk_pool_run(int workers, long chunks, glmk_chunk_fn fn, void *ctx) {
    if (chunks <= 0) return 0;
    if (glmp_inside || chunks > (long)GLMP_MASK || workers < 2) return -1;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&glmp_busy, &expected, 1)) return -1;
    glmp_requested = workers;
    pthread_once(&glmp_once, glmp_start);
    if (glmp_helpers == 0) { atomic_store(&glmp_busy, 0); return -1; }
    glmp_inside = 1;
    glmp_fn = fn;
    glmp_ctx = ctx;
    atomic_store_explicit(&glmp_done, 0, memory_order_relaxed);
    uint64_t gen = (atomic_load(&glmp_ticket) >> (2 * GLMP_CHUNK_BITS)) + 1;
    atomic_store_explicit(&glmp_ticket, (gen << (2 * GLMP_CHUNK_BITS)) | ((uint64_t)chunks << GLMP_CHUNK_BITS), memory_order_seq_cst);
    if (atomic_load(&glmp_sleepers) > 0) {
        atomic_fetch_add(&glmp_wake, 1);
        syscall(SYS_futex, &glmp_wake, FUTEX_WAKE_PRIVATE, GLMP_MAXHELPERS, NULL, NULL, 0);
    }
    glmp_work();
    while (atomic_load_explicit(&glmp_done, memory_order_acquire) < chunks) GLMP_PAUSE();
    glmp_inside = 0;
    atomic_store(&glmp_busy, 0);
    return 0;
}

void glmk_pool_set_spin(long nanoseconds) { atomic_store(&glmp_spin_ns, nanoseconds < 0 ? 0 : nanoseconds); }
