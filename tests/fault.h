/* tests/fault.h - fault injection for `make test-faults` only: the build in
 * build/faults compiles every source with `-include tests/fault.h -DDPO_FAULTS`,
 * which routes dpo's own allocations and file writes through tests/fault.c.
 * There, the environment variable DPO_FAULT selects one class and a count:
 *
 *   DPO_FAULT=alloc:N   the Nth malloc/calloc/realloc fails (returns NULL), as
 *                       when memory runs short for a moment; later ones succeed,
 *                       so that the code after the failure runs too;
 *   DPO_FAULT=io:N      the Nth write-side call and every later one fail with
 *                       ENOSPC, as when the disk is full: fopen for writing,
 *                       open with O_CREAT, mkdir, fwrite (a short write: half
 *                       the bytes, then the error), fputs, fputc, fprintf,
 *                       vfprintf, fflush, fsync, fclose (which still closes)
 *                       and rename. Writes to stdout and stderr never fail and
 *                       are not counted;
 *   DPO_FAULT=count     nothing fails.
 *
 * With DPO_FAULT set, the process prints "dpo-fault: alloc=A io=W" on stderr at
 * exit: how many calls of each class it made, so that tests/faults.sh can run
 * the command once for every N from 1 to that count.
 * The shipped binary is built without this file: it has no such seam. */
#ifndef DPO_TESTS_FAULT_H
#define DPO_TESTS_FAULT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

void *fault_malloc(size_t n);
void *fault_calloc(size_t n, size_t size);
void *fault_realloc(void *p, size_t n);
FILE *fault_fopen(const char *path, const char *mode);
int fault_open(const char *path, int flags, ...);
int fault_mkdir(const char *path, mode_t mode);
size_t fault_fwrite(const void *p, size_t size, size_t n, FILE *fp);
int fault_fputs(const char *s, FILE *fp);
int fault_fputc(int c, FILE *fp);
int fault_fprintf(FILE *fp, const char *fmt, ...);
int fault_vfprintf(FILE *fp, const char *fmt, va_list ap);
int fault_fflush(FILE *fp);
int fault_fsync(int fd);
int fault_fclose(FILE *fp);
int fault_rename(const char *from, const char *to);

#ifndef DPO_FAULT_IMPL
#define malloc(n) fault_malloc(n)
#define calloc(n, s) fault_calloc(n, s)
#define realloc(p, n) fault_realloc(p, n)
#define fopen(p, m) fault_fopen(p, m)
#define open(...) fault_open(__VA_ARGS__)
#define mkdir(p, m) fault_mkdir(p, m)
#define fwrite(p, s, n, f) fault_fwrite(p, s, n, f)
#define fputs(s, f) fault_fputs(s, f)
#undef fputc
#define fputc(c, f) fault_fputc(c, f)
#undef putc
#define putc(c, f) fault_fputc(c, f)
#define fprintf(...) fault_fprintf(__VA_ARGS__)
#define vfprintf(f, fmt, ap) fault_vfprintf(f, fmt, ap)
#define fflush(f) fault_fflush(f)
#define fsync(fd) fault_fsync(fd)
#define fclose(f) fault_fclose(f)
#define rename(a, b) fault_rename(a, b)
#endif

#endif
