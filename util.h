/* util.h - small shared helpers: error messages, checked size arithmetic,
 * bounded file reading and atomic file replacement. See util.c. */
#ifndef DPO_UTIL_H
#define DPO_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Library code never prints: it fills one of these and returns -1. */
typedef struct {
    char msg[1024];
    int resource; /* 1: memory or a read failed, not the input (dpo_err_resource); 0 otherwise */
} dpo_err;

/* printf-style: set e->msg (truncated safely). e may be NULL. Always returns -1
 * so that callers can write `return dpo_errf(e, "...")`. */
int dpo_errf(dpo_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Mark e's message as a failure of the machine (memory exhausted, a read that
 * failed), not a fault of the input: whoever judges the input by the error (a
 * checkpoint's recovery: is this one complete?) must stop instead. dpo_errf
 * clears the mark; dpo_err_prefix keeps it. Returns -1. */
int dpo_err_resource(dpo_err *e);

/* "out of memory for WHAT (N bytes)", marked as dpo_err_resource: for an
 * allocation of count x size bytes that failed (the product is printed exactly,
 * or as "count x size" when it overflows). Returns -1. */
int dpo_err_oom(dpo_err *e, const char *what, size_t count, size_t size);

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

/* Atomic replacement of one file: util_atomic_open creates a fresh temporary
 * "<path>.tmp.<16 hex digits>" in the same directory with O_CREAT|O_EXCL|O_NOFOLLOW
 * (a name that exists, a planted symbolic link included, is never opened: another
 * name is drawn); util_atomic_commit checks every write, fflush, fsync and fclose,
 * renames the temporary over path (rename replaces a link at path, never what it
 * points to) and fsyncs the directory; util_atomic_abort closes and removes the
 * temporary. A crash at any point leaves either the old file or the new one (and
 * perhaps a temporary, which util_dir_remove_owned recognises). A path that
 * exists and is neither a regular file nor a symbolic link (a directory, a
 * device such as /dev/null, a FIFO) is refused: renaming over it would replace it. */
typedef struct {
    void *fp;           /* FILE*, kept opaque so that stdio stays out of this header */
    char tmp_path[4096];
    char path[4096];
} util_atomic_file;

int util_atomic_open(util_atomic_file *f, const char *path, dpo_err *e);
int util_atomic_write(util_atomic_file *f, const void *data, size_t n, dpo_err *e);
int util_atomic_commit(util_atomic_file *f, dpo_err *e);
void util_atomic_abort(util_atomic_file *f);
/* all three at once: path gets exactly data[0..n) */
int util_atomic_write_file(const char *path, const void *data, size_t n, dpo_err *e);

/* fsync a directory, or the directory holding path, so that renames and
 * removals in it are on disk. 0, or -1 with errno. */
int util_fsync_dir(const char *dir);
int util_fsync_parent(const char *path);

/* The directory part of path into dir: "." for a bare name, "/" for "/name".
 * 0, or -1 when it does not fit in cap. */
int util_parent_dir(char *dir, size_t cap, const char *path);

/* Create a directory and any missing parents (like mkdir -p). */
int util_mkdir(const char *path, dpo_err *e);

/* Join dir and name into out (bounded); error if it does not fit. */
int util_path_join(char *out, size_t cap, const char *dir, const char *name, dpo_err *e);

/* An output directory as given by the user, made fit for "OUT.tmp" and
 * "OUT.old" beside it: trailing slashes dropped ("run/" -> "run"); "/", "." and
 * ".." (or a path ending in them) refused, since their siblings would be inside
 * them or outside the user's reach. */
int util_out_dir_path(char *out, size_t cap, const char *in, dpo_err *e);

/* 1 when both paths exist and are the same file or directory (same device and
 * inode, after following links), else 0. */
int util_same_file(const char *a, const char *b);

/* Directories that dpo owns (checkpoints, their ".tmp" and ".old" siblings) hold
 * only files named in names[] (or those names + ".tmp.*", temporaries left by a
 * killed process), as regular files. util_dir_inspect: 0 when dir is missing;
 * 1 when it is a real directory (not a symbolic link) holding only such files,
 * with *n_entries of them (0: empty); -1 otherwise, naming the foreign entry.
 * util_dir_remove_owned removes such a directory: it refuses (-1, nothing
 * removed) one that holds anything else or is a symbolic link; it unlinks
 * names[0] first (a checkpoint's marker of completeness, so that a half-removed
 * directory is never taken for a complete one), then the rest, relative to the
 * opened directory and never through a link, then the directory. Missing: 0. */
int util_dir_inspect(const char *dir, const char *const *names, size_t n, long *n_entries, dpo_err *e);
int util_dir_remove_owned(const char *dir, const char *const *names, size_t n, dpo_err *e);

/* Copy in to out (capacity cap, always NUL-terminated, truncated to fit) with
 * control bytes, bytes outside valid UTF-8, C1 controls and bidirectional
 * overrides escaped (\xNN, \uNNNN), so that names read from files are safe to
 * show on a terminal. dpo_errf and dpo_err_prefix apply it to every message. */
void util_escape_text(char *out, size_t cap, const char *in);

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
/* splitmix64's finaliser: a bijection of 64-bit words that mixes every bit (hashing, seeding) */
uint64_t util_mix64(uint64_t x);
uint64_t util_rng_u64(util_rng *r);
double util_rng_uniform(util_rng *r);   /* [0, 1), 53 random bits */
double util_rng_normal(util_rng *r);    /* standard normal (Box-Muller, one value per call) */

#endif
