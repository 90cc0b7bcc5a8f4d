/* tests/fault.c - the failing side of tests/fault.h (see there): counts dpo's
 * allocations and file writes, and from the Nth call of the chosen class on
 * makes each fail as exhausted memory or a full disk would. Linked only into
 * the fault-injection build (build/faults). */
#define DPO_FAULT_IMPL
#include "fault.h"

#include <errno.h>
#include <string.h>

static int fault_class = -1; /* -1: not read yet; 0: none (count); 1: alloc; 2: io */
static unsigned long fault_at, n_alloc, n_io;

static void fault_report(void) {
    /* stderr is unbuffered: one write, whatever failed before */
    fprintf(stderr, "dpo-fault: alloc=%lu io=%lu\n", n_alloc, n_io);
}

static void fault_init(void) {
    const char *s = getenv("DPO_FAULT");
    fault_class = 0;
    if (!s) return;
    if (strncmp(s, "alloc:", 6) == 0) fault_class = 1, fault_at = strtoul(s + 6, NULL, 10);
    else if (strncmp(s, "io:", 3) == 0) fault_class = 2, fault_at = strtoul(s + 3, NULL, 10);
    atexit(fault_report);
}

/* 1 when this call (the next of its class) must fail: the Nth allocation alone
 * (memory that ran short for a moment: whatever the code does next, it must not
 * take the failure for something else), the Nth write and every later one (a
 * disk, once full, stays full) */
static int fault_now(int cls) {
    unsigned long *n = cls == 1 ? &n_alloc : &n_io;
    if (fault_class < 0) fault_init();
    ++*n;
    return fault_class == cls && fault_at > 0 && (cls == 1 ? *n == fault_at : *n >= fault_at);
}

static int std_stream(FILE *fp) { return fp == stdout || fp == stderr; }

void *fault_malloc(size_t n) { return fault_now(1) ? NULL : malloc(n); }
void *fault_calloc(size_t n, size_t size) { return fault_now(1) ? NULL : calloc(n, size); }
void *fault_realloc(void *p, size_t n) { return fault_now(1) ? NULL : realloc(p, n); }

FILE *fault_fopen(const char *path, const char *mode) {
    if (strpbrk(mode, "wa+") && fault_now(2)) {
        errno = ENOSPC;
        return NULL;
    }
    return fopen(path, mode);
}

int fault_open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
        if (fault_now(2)) {
            errno = ENOSPC;
            return -1;
        }
    }
    return open(path, flags, mode);
}

int fault_mkdir(const char *path, mode_t mode) {
    struct stat st;
    /* a full disk does not stop mkdir from finding that a directory exists (EEXIST) */
    if (stat(path, &st) != 0 && fault_now(2)) {
        errno = ENOSPC;
        return -1;
    }
    return mkdir(path, mode);
}

size_t fault_fwrite(const void *p, size_t size, size_t n, FILE *fp) {
    if (!std_stream(fp) && size > 0 && n > 0 && fault_now(2)) {
        size_t part = n / 2; /* a short write: some of it lands, then the disk is full */
        part = part ? fwrite(p, size, part, fp) : 0;
        errno = ENOSPC;
        return part;
    }
    return fwrite(p, size, n, fp);
}

int fault_fputs(const char *s, FILE *fp) {
    if (!std_stream(fp) && fault_now(2)) {
        errno = ENOSPC;
        return EOF;
    }
    return fputs(s, fp);
}

int fault_fputc(int c, FILE *fp) {
    if (!std_stream(fp) && fault_now(2)) {
        errno = ENOSPC;
        return EOF;
    }
    return fputc(c, fp);
}

int fault_vfprintf(FILE *fp, const char *fmt, va_list ap) {
    if (!std_stream(fp) && fault_now(2)) {
        errno = ENOSPC;
        return -1;
    }
    return vfprintf(fp, fmt, ap);
}

int fault_fprintf(FILE *fp, const char *fmt, ...) {
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = fault_vfprintf(fp, fmt, ap);
    va_end(ap);
    return rc;
}

int fault_fflush(FILE *fp) {
    if (fp && !std_stream(fp) && fault_now(2)) {
        errno = ENOSPC;
        return EOF;
    }
    return fflush(fp);
}

int fault_fsync(int fd) {
    if (fault_now(2)) {
        errno = ENOSPC;
        return -1;
    }
    return fsync(fd);
}

int fault_fclose(FILE *fp) {
    if (!std_stream(fp) && fault_now(2)) {
        fclose(fp); /* the stream is gone either way, as with a real failing fclose */
        errno = ENOSPC;
        return EOF;
    }
    return fclose(fp);
}

int fault_rename(const char *from, const char *to) {
    if (fault_now(2)) {
        errno = ENOSPC;
        return -1;
    }
    return rename(from, to);
}
