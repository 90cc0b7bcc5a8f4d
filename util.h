/* util.h - small shared helpers: error messages, checked size arithmetic,
 * bounded file reading and atomic file replacement. See util.c. */
#ifndef DPO_UTIL_H
#define DPO_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Library code never prints: it fills one of these and returns -1. */
typedef struct {
    char msg[1024];
} dpo_err;

/* printf-style: set e->msg (truncated safely). e may be NULL. Always returns -1
 * so that callers can write `return dpo_errf(e, "...")`. */
int dpo_errf(dpo_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Prefix an existing message: "prefix: old message". Returns -1. */
int dpo_err_prefix(dpo_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Overflow-checked size arithmetic: return 0 and store the result, or -1 on overflow. */
int util_mul_size(size_t a, size_t b, size_t *out);
int util_add_size(size_t a, size_t b, size_t *out);

/* Read a whole file of at most max_bytes into a fresh NUL-terminated buffer
 * (*out_len excludes the NUL). Errors name the path. Caller frees *out. */
int util_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, dpo_err *e);

/* Atomic replacement of one file: util_atomic_open creates "<path>.tmp.<pid>"
 * in the same directory; util_atomic_commit flushes, fsyncs, closes and renames
 * it over path (then fsyncs the directory); util_atomic_abort closes and removes
 * the temporary. A crash at any point leaves either the old file or the new one. */
typedef struct {
    void *fp;           /* FILE*, kept opaque so that stdio stays out of this header */
    char tmp_path[4096];
    char path[4096];
} util_atomic_file;

int util_atomic_open(util_atomic_file *f, const char *path, dpo_err *e);
int util_atomic_write(util_atomic_file *f, const void *data, size_t n, dpo_err *e);
int util_atomic_commit(util_atomic_file *f, dpo_err *e);
void util_atomic_abort(util_atomic_file *f);

/* Create a directory and any missing parents (like mkdir -p). */
int util_mkdir(const char *path, dpo_err *e);

/* Join dir and name into out (bounded); error if it does not fit. */
int util_path_join(char *out, size_t cap, const char *dir, const char *name, dpo_err *e);

/* Seconds from a monotonic clock, for throughput reports. */
double util_seconds(void);

/* OpenMP pragmas that vanish cleanly (no -Wunknown-pragmas) in builds without it.
 * Only for loops whose iterations write disjoint memory. Each takes an estimate
 * of the loop's work (element operations): below DPO_OMP_MIN_WORK it runs on the
 * calling thread alone, because starting threads and waiting at the barrier
 * costs more than the work (and costs a great deal when another process shares
 * the cores). Which thread runs an iteration never changes its result.
 * DPO_OMP_FOR_IF is a parallel loop; DPO_OMP_PARALLEL_IF opens a region whose
 * DPO_OMP_LOOP loops are shared out among its threads (each ends with a barrier). */
#define DPO_PRAGMA(x) _Pragma(#x)
#define DPO_OMP_MIN_WORK 32768.0
#ifdef _OPENMP
#define DPO_OMP_FOR_IF(work) DPO_PRAGMA(omp parallel for schedule(static) if ((double)(work) >= DPO_OMP_MIN_WORK))
#define DPO_OMP_PARALLEL_IF(work) DPO_PRAGMA(omp parallel if ((double)(work) >= DPO_OMP_MIN_WORK))
#define DPO_OMP_LOOP DPO_PRAGMA(omp for schedule(static))
#else
#define DPO_OMP_FOR_IF(work)
#define DPO_OMP_PARALLEL_IF(work)
#define DPO_OMP_LOOP
#endif

/* Number of threads parallel loops will use; set it (0 or less: leave as is). */
int util_threads(void);
void util_set_threads(int n);

/* A small deterministic random number generator (xoshiro256** seeded through
 * splitmix64): the same seed gives the same stream on every machine. */
typedef struct {
    uint64_t s[4];
} util_rng;

void util_rng_seed(util_rng *r, uint64_t seed);
uint64_t util_rng_u64(util_rng *r);
double util_rng_uniform(util_rng *r);   /* [0, 1), 53 random bits */
double util_rng_normal(util_rng *r);    /* standard normal (Box-Muller, one value per call) */

#endif
