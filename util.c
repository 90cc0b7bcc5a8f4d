/* util.c - owns the small shared helpers: error messages, overflow-checked size
 * arithmetic, bounded whole-file reads, atomic file replacement and a clock.
 * It must never print, exit, or touch the network; errors go back in a dpo_err. */
#include "util.h"

#include <dirent.h>
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

static uint64_t splitmix64_next(uint64_t *x);

/* ------------------------------------------------------------------------ */
/* errors */

/* Messages quote names taken from files (tensor names, vocabulary tokens,
 * model_type, paths): a hostile file must not be able to send escape sequences
 * to the terminal that shows the message. So every message is rewritten with
 * these escaped as \xNN: control bytes (C0 and DEL) and bytes that are not part
 * of valid UTF-8; and as \uNNNN: the C1 controls U+0080..U+009F and the
 * bidirectional overrides U+202A..U+202E, U+2066..U+2069 (which reorder what
 * the reader sees). Everything else, UTF-8 letters included, is kept. Escaping
 * twice changes nothing: the escapes themselves are printable ASCII. */
static size_t utf8_len_at(const unsigned char *s, size_t n, unsigned long *cp) {
    size_t len, k;
    unsigned long c;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) len = 2, c = s[0] & 0x1fu;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) len = 3, c = s[0] & 0x0fu;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) len = 4, c = s[0] & 0x07u;
    else return 0;
    if (len > n) return 0;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80) return 0;
        c = c << 6 | (s[k] & 0x3fu);
    }
    /* overlongs, surrogates, beyond U+10FFFF */
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

void util_escape_text(char *out, size_t cap, const char *in) {
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), i = 0, o = 0;
    if (cap == 0) return;
    while (i < n) {
        char esc[16];
        unsigned long cp = 0;
        size_t len = utf8_len_at(s + i, n - i, &cp), elen;
        if (len == 0) { /* not valid UTF-8 here: this byte alone */
            snprintf(esc, sizeof esc, "\\x%02x", s[i]);
            len = 1;
        } else if (cp < 0x20 || cp == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", (unsigned)cp);
        } else if ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)cp);
        } else {
            if (o + len >= cap) break;
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
            continue;
        }
        elen = strlen(esc);
        if (o + elen >= cap) break;
        memcpy(out + o, esc, elen);
        o += elen;
        i += len;
    }
    out[o] = '\0';
}

static void escape_msg(dpo_err *e) {
    char raw[sizeof e->msg];
    memcpy(raw, e->msg, sizeof raw);
    raw[sizeof raw - 1] = '\0';
    util_escape_text(e->msg, sizeof e->msg, raw);
}

int dpo_errf(dpo_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        escape_msg(e);
        e->resource = 0;
    }
    return -1;
}

int dpo_err_resource(dpo_err *e) {
    if (e) e->resource = 1;
    return -1;
}

int dpo_err_oom(dpo_err *e, const char *what, size_t count, size_t size) {
    size_t bytes;
    if (util_mul_size(count, size, &bytes) == 0) dpo_errf(e, "out of memory for %s (%zu bytes)", what, bytes);
    else dpo_errf(e, "out of memory for %s (%zu x %zu bytes)", what, count, size);
    return dpo_err_resource(e);
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
        escape_msg(e);
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
                dpo_errf(e, "%s: out of memory reading the file (%zu bytes)", path, ncap + 1);
                return dpo_err_resource(e);
            }
            buf = nb;
            cap = ncap;
        }
        got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    if (ferror(fp)) {
        int err = errno;
        fclose(fp);
        free(buf);
        dpo_errf(e, "%s: read error: %s", path, strerror(err));
        return dpo_err_resource(e);
    }
    fclose(fp);
    if (len > max_bytes) {
        free(buf);
        return dpo_errf(e, "%s: file is larger than the limit of %zu bytes", path, max_bytes);
    }
    if (!buf) {
        buf = malloc(1);
        if (!buf) {
            dpo_errf(e, "%s: out of memory", path);
            return dpo_err_resource(e);
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* atomic replacement: write a fresh "<path>.tmp.<random>", fsync, rename over
 * path, fsync the directory */

/* A name nobody can have prepared: 64 bits from the clock, the pid, a counter
 * and an address, mixed. It need not be secret: the file is created with
 * O_CREAT|O_EXCL|O_NOFOLLOW, so a name that exists (a file, or a symbolic link
 * planted to make the save truncate something else) is never opened, only
 * skipped for another name. */
static uint64_t tmp_name_bits(void) {
    static uint64_t counter;
    struct timespec ts;
    uint64_t x;
    clock_gettime(CLOCK_REALTIME, &ts);
    x = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32 ^
        (uint64_t)(uintptr_t)&ts ^ ++counter * 0x9e3779b97f4a7c15ULL;
    return splitmix64_next(&x);
}

int util_atomic_open(util_atomic_file *f, const char *path, dpo_err *e) {
    int n, fd = -1, tries;
    struct stat st;
    f->fp = NULL;
    f->tmp_path[0] = '\0';
    n = snprintf(f->path, sizeof f->path, "%s", path);
    if (n < 0 || (size_t)n >= sizeof f->path) return dpo_errf(e, "%s: path too long", path);
    /* the rename at the end would replace whatever is at path: a device such as
     * /dev/null, a FIFO or a socket is never replaced (a symbolic link is: the
     * link itself, not what it points to) */
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return dpo_errf(e, "%s: exists and is not a regular file; give a file's path", path);
    for (tries = 0; tries < 64 && fd < 0; tries++) {
        n = snprintf(f->tmp_path, sizeof f->tmp_path, "%s.tmp.%016llx", path, (unsigned long long)tmp_name_bits());
        if (n < 0 || (size_t)n >= sizeof f->tmp_path) {
            f->tmp_path[0] = '\0';
            return dpo_errf(e, "%s: path too long", path);
        }
        fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        dpo_errf(e, "%s: cannot create: %s", f->tmp_path, strerror(errno));
        f->tmp_path[0] = '\0';
        return -1;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        dpo_errf(e, "%s: cannot create: %s", f->tmp_path, strerror(errno));
        close(fd);
        unlink(f->tmp_path);
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

int util_parent_dir(char *dir, size_t cap, const char *path) {
    const char *slash = strrchr(path, '/');
    size_t n;
    if (!slash) {
        if (cap < 2) return -1;
        dir[0] = '.';
        dir[1] = '\0';
        return 0;
    }
    n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/name" */
    if (n >= cap) return -1;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

int util_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY), rc;
    if (fd < 0) return -1;
    rc = fsync(fd);
    close(fd);
    /* some file systems refuse fsync on a directory (EINVAL): nothing more can be done there */
    return rc == 0 || errno == EINVAL ? 0 : -1;
}

int util_fsync_parent(const char *path) {
    char dir[4096];
    if (util_parent_dir(dir, sizeof dir, path) != 0) return -1;
    return util_fsync_dir(dir);
}

int util_atomic_commit(util_atomic_file *f, dpo_err *e) {
    FILE *fp = (FILE *)f->fp;
    int err = 0;
    if (!fp) return dpo_errf(e, "%s: not open", f->path);
    /* every step checked: a full disk shows up at fflush, fsync or fclose */
    if (ferror(fp)) err = EIO;
    if (!err && fflush(fp) != 0) err = errno;
    if (!err && fsync(fileno(fp)) != 0) err = errno;
    if (fclose(fp) != 0 && !err) err = errno;
    f->fp = NULL;
    if (err) {
        unlink(f->tmp_path);
        f->tmp_path[0] = '\0';
        return dpo_errf(e, "%s: write failed: %s", f->path, strerror(err));
    }
    if (rename(f->tmp_path, f->path) != 0) {
        err = errno;
        unlink(f->tmp_path);
        f->tmp_path[0] = '\0';
        return dpo_errf(e, "%s: cannot rename into place: %s", f->path, strerror(err));
    }
    f->tmp_path[0] = '\0';
    if (util_fsync_parent(f->path) != 0)
        return dpo_errf(e, "%s: cannot sync its directory: %s", f->path, strerror(errno));
    return 0;
}

void util_atomic_abort(util_atomic_file *f) {
    if (f->fp) fclose((FILE *)f->fp);
    f->fp = NULL;
    if (f->tmp_path[0]) unlink(f->tmp_path);
    f->tmp_path[0] = '\0';
}

int util_atomic_write_file(const char *path, const void *data, size_t n, dpo_err *e) {
    util_atomic_file af;
    if (util_atomic_open(&af, path, e) != 0) return -1;
    if (util_atomic_write(&af, data, n, e) != 0) {
        util_atomic_abort(&af);
        return -1;
    }
    return util_atomic_commit(&af, e);
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

int util_out_dir_path(char *out, size_t cap, const char *in, dpo_err *e) {
    size_t n = strlen(in);
    const char *last;
    while (n > 1 && in[n - 1] == '/') n--; /* "run/" and "run//" are "run" */
    if (n == 0) return dpo_errf(e, "the output directory path is empty");
    if (n >= cap) return dpo_errf(e, "%s: path too long", in);
    memcpy(out, in, n);
    out[n] = '\0';
    last = strrchr(out, '/');
    last = last ? last + 1 : out;
    if (strcmp(out, "/") == 0 || strcmp(last, ".") == 0 || strcmp(last, "..") == 0)
        return dpo_errf(e, "%s: give the output directory by its own name (not '/', '.' or '..'): "
                           "dpo writes OUT.tmp and OUT.old beside it", in);
    return 0;
}

int util_same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* name is one of names[], or one of them followed by ".tmp." (a temporary file of
 * util_atomic_open that a killed process left behind) */
static int owned_name(const char *name, const char *const *names, size_t n) {
    size_t i, len;
    for (i = 0; i < n; i++) {
        len = strlen(names[i]);
        if (strncmp(name, names[i], len) == 0 && (name[len] == '\0' || strncmp(name + len, ".tmp.", 5) == 0))
            return 1;
    }
    return 0;
}

/* Open dir without following a symbolic link at its last component. 1: open
 * (*fd); 0: missing; -1: error in e. */
static int open_dir_nofollow(const char *dir, int *fd, dpo_err *e) {
    struct stat st;
    *fd = -1;
    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT) return 0;
        return dpo_errf(e, "%s: %s", dir, strerror(errno));
    }
    if (S_ISLNK(st.st_mode)) return dpo_errf(e, "%s: is a symbolic link; dpo never writes or removes through one", dir);
    if (!S_ISDIR(st.st_mode)) return dpo_errf(e, "%s: exists and is not a directory", dir);
    *fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (*fd < 0) return dpo_errf(e, "%s: cannot open: %s", dir, strerror(errno));
    return 1;
}

/* Walk the entries of the open directory fd: every one must be an owned name
 * and a regular file (not a link, not a directory). Returns the number of
 * entries, or -1 naming the first foreign one. */
static long scan_owned(int fd, const char *dir, const char *const *names, size_t n, dpo_err *e) {
    int dfd = dup(fd);
    DIR *d;
    struct dirent *de;
    long count = 0, rc = 0;
    if (dfd < 0 || !(d = fdopendir(dfd))) {
        if (dfd >= 0) close(dfd);
        return dpo_errf(e, "%s: cannot read: %s", dir, strerror(errno));
    }
    rewinddir(d); /* a dup shares the offset of earlier reads */
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (!owned_name(de->d_name, names, n) || fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode)) {
            rc = dpo_errf(e, "%s: holds '%s', which dpo did not write; dpo will not replace or remove this directory",
                          dir, de->d_name);
            break;
        }
        count++;
    }
    closedir(d);
    return rc < 0 ? -1 : count;
}

int util_dir_inspect(const char *dir, const char *const *names, size_t n, long *n_entries, dpo_err *e) {
    int fd, rc = open_dir_nofollow(dir, &fd, e);
    long count;
    *n_entries = 0;
    if (rc <= 0) return rc;
    count = scan_owned(fd, dir, names, n, e);
    close(fd);
    if (count < 0) return -1;
    *n_entries = count;
    return 1;
}

int util_dir_remove_owned(const char *dir, const char *const *names, size_t n, dpo_err *e) {
    int fd, rc = open_dir_nofollow(dir, &fd, e), pass;
    if (rc <= 0) return rc;
    if (scan_owned(fd, dir, names, n, e) < 0) {
        close(fd);
        return -1;
    }
    /* names[0] first (a checkpoint's marker of completeness), then the rest; each
       entry is unlinked relative to the directory opened above, and unlinkat
       removes a link itself, never what it points to */
    for (pass = 0; pass < 2; pass++) {
        int dfd = dup(fd);
        DIR *d;
        struct dirent *de;
        if (dfd < 0 || !(d = fdopendir(dfd))) {
            if (dfd >= 0) close(dfd);
            close(fd);
            return dpo_errf(e, "%s: cannot read: %s", dir, strerror(errno));
        }
        rewinddir(d); /* a dup shares the offset of earlier reads */
        while ((de = readdir(d)) != NULL) {
            int first = strcmp(de->d_name, names[0]) == 0;
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || first != (pass == 0)) continue;
            if (!owned_name(de->d_name, names, n)) continue;
            if (unlinkat(fd, de->d_name, 0) != 0 && errno != ENOENT) {
                dpo_errf(e, "%s/%s: cannot remove: %s", dir, de->d_name, strerror(errno));
                closedir(d);
                close(fd);
                return -1;
            }
        }
        closedir(d);
        if (pass == 0) (void)fsync(fd); /* the marker is gone before anything else is */
    }
    close(fd);
    if (rmdir(dir) != 0 && errno != ENOENT) return dpo_errf(e, "%s: cannot remove: %s", dir, strerror(errno));
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

uint64_t util_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t splitmix64_next(uint64_t *x) { return util_mix64(*x += 0x9e3779b97f4a7c15ULL); }

void util_rng_seed(util_rng *r, uint64_t seed) {
    int i;
    for (i = 0; i < 4; i++) r->s[i] = splitmix64_next(&seed);
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
