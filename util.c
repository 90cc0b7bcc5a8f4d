/* util.c - owns the small shared helpers: error messages, overflow-checked size
 * arithmetic, bounded whole-file reads, atomic file replacement and a clock.
 * It must never print, exit, or touch the network; errors go back in a dpo_err. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif
#include <math.h>

/* ------------------------------------------------------------------------ */
/* errors */

int dpo_errf(dpo_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int dpo_err_prefix(dpo_err *e, const char *fmt, ...) {
    if (e) {
        char head[512], old[sizeof e->msg];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(head, sizeof head, fmt, ap);
        va_end(ap);
        size_t hn = strlen(head), on;
        memcpy(old, e->msg, sizeof old);
        old[sizeof old - 1] = '\0';
        on = strlen(old);
        /* "head: old", truncated to fit (snprintf would warn about the truncation) */
        if (hn > sizeof e->msg - 3) hn = sizeof e->msg - 3;
        memcpy(e->msg, head, hn);
        e->msg[hn] = ':';
        e->msg[hn + 1] = ' ';
        if (on > sizeof e->msg - hn - 3) on = sizeof e->msg - hn - 3;
        memcpy(e->msg + hn + 2, old, on);
        e->msg[hn + 2 + on] = '\0';
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* checked size arithmetic */

int util_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > (size_t)-1 / a) return -1;
    *out = a * b;
    return 0;
}

int util_add_size(size_t a, size_t b, size_t *out) {
    if (b > (size_t)-1 - a) return -1;
    *out = a + b;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* whole-file reads */

int util_read_file(const char *path, size_t max_bytes, char **out, size_t *out_len, dpo_err *e) {
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, len = 0;
    *out = NULL;
    *out_len = 0;
    if (!fp) return dpo_errf(e, "%s: cannot open: %s", path, strerror(errno));
    for (;;) {
        size_t got;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb;
            if (ncap > max_bytes + 1) ncap = max_bytes + 1;
            if (ncap <= cap) {
                fclose(fp);
                free(buf);
                return dpo_errf(e, "%s: file is larger than the limit of %zu bytes", path, max_bytes);
            }
            nb = realloc(buf, ncap + 1);
            if (!nb) {
                fclose(fp);
                free(buf);
                return dpo_errf(e, "%s: out of memory reading file", path);
            }
            buf = nb;
            cap = ncap;
        }
        got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        fclose(fp);
        free(buf);
        return dpo_errf(e, "%s: read error", path);
    }
    fclose(fp);
    if (len > max_bytes) {
        free(buf);
        return dpo_errf(e, "%s: file is larger than the limit of %zu bytes", path, max_bytes);
    }
    if (!buf) {
        buf = malloc(1);
        if (!buf) return dpo_errf(e, "%s: out of memory", path);
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* atomic replacement: write "<path>.tmp.<pid>", fsync, rename, fsync the directory */

int util_atomic_open(util_atomic_file *f, const char *path, dpo_err *e) {
    int n;
    f->fp = NULL;
    f->tmp_path[0] = '\0';
    n = snprintf(f->path, sizeof f->path, "%s", path);
    if (n < 0 || (size_t)n >= sizeof f->path) return dpo_errf(e, "%s: path too long", path);
    n = snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof f->tmp_path) return dpo_errf(e, "%s: path too long", path);
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        dpo_errf(e, "%s: cannot create: %s", f->tmp_path, strerror(errno));
        f->tmp_path[0] = '\0';
        return -1;
    }
    return 0;
}

int util_atomic_write(util_atomic_file *f, const void *data, size_t n, dpo_err *e) {
    if (!f->fp) return dpo_errf(e, "%s: not open", f->path);
    if (n && fwrite(data, 1, n, (FILE *)f->fp) != n)
        return dpo_errf(e, "%s: write failed: %s", f->tmp_path, strerror(errno));
    return 0;
}

static void fsync_parent_dir(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd;
    if (!slash) {
        dir[0] = '.';
        dir[1] = '\0';
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1; /* "/file" */
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd); /* best effort: some file systems refuse fsync on directories */
        close(fd);
    }
}

int util_atomic_commit(util_atomic_file *f, dpo_err *e) {
    FILE *fp = (FILE *)f->fp;
    int bad = 0;
    if (!fp) return dpo_errf(e, "%s: not open", f->path);
    if (fflush(fp) != 0) bad = 1;
    if (!bad && fsync(fileno(fp)) != 0) bad = 1;
    if (fclose(fp) != 0) bad = 1;
    f->fp = NULL;
    if (bad) {
        int err = errno;
        remove(f->tmp_path);
        return dpo_errf(e, "%s: write failed: %s", f->tmp_path, strerror(err));
    }
    if (rename(f->tmp_path, f->path) != 0) {
        int err = errno;
        remove(f->tmp_path);
        return dpo_errf(e, "%s: cannot rename into place: %s", f->path, strerror(err));
    }
    fsync_parent_dir(f->path);
    return 0;
}

void util_atomic_abort(util_atomic_file *f) {
    if (f->fp) fclose((FILE *)f->fp);
    f->fp = NULL;
    if (f->tmp_path[0]) remove(f->tmp_path);
    f->tmp_path[0] = '\0';
}

/* ------------------------------------------------------------------------ */
/* paths and directories */

/* one directory; an existing directory is fine */
static int mkdir_one(const char *path, dpo_err *e) {
    struct stat st;
    if (mkdir(path, 0777) == 0) return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    return dpo_errf(e, "%s: cannot create directory: %s", path,
                    errno == EEXIST ? "exists and is not a directory" : strerror(errno));
}

/* like mkdir -p: each missing parent, then the directory */
int util_mkdir(const char *path, dpo_err *e) {
    char buf[4096];
    size_t n = strlen(path), i;
    if (n == 0 || n >= sizeof buf) return dpo_errf(e, "%s: invalid directory path", path);
    memcpy(buf, path, n + 1);
    for (i = 1; i < n; i++) {
        if (buf[i] != '/') continue;
        buf[i] = '\0';
        if (mkdir_one(buf, e) != 0) return -1;
        buf[i] = '/';
    }
    return mkdir_one(buf, e);
}

int util_path_join(char *out, size_t cap, const char *dir, const char *name, dpo_err *e) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) return dpo_errf(e, "%s/%s: path too long", dir, name);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* clock */

double util_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* threads */

int util_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void util_set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/* ------------------------------------------------------------------------ */
/* random numbers: splitmix64 expands the seed, xoshiro256** generates */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void util_rng_seed(util_rng *r, uint64_t seed) {
    int i;
    for (i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t util_rng_u64(util_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double util_rng_uniform(util_rng *r) {
    return (double)(util_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Box-Muller: z = sqrt(-2 ln u1) cos(2 pi u2), with u1 in (0, 1] */
double util_rng_normal(util_rng *r) {
    double u1 = 1.0 - util_rng_uniform(r);
    double u2 = util_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
