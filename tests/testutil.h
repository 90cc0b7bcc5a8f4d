/* tests/testutil.h - helpers shared by the Check suites: a suite runner that
 * never forks (GCC's OpenMP runtime is not fork-safe) and returns a failing
 * exit status when any check fails, a per-test temporary directory, and a
 * strict well-formedness checker for the SVG documents dpo writes, and the
 * shipped VADER lexicon. */
#ifndef DPO_TESTUTIL_H
#define DPO_TESTUTIL_H

#include <check.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <math.h>
#include <stdint.h>

#include "model.h"
#include "safetensors.h"
#include "selftest.h"
#include "unicode.h"
#include "vader.h"

/* The VADER lexicon compiled into dpo; a failure to load it fails the check. */
static inline vader_lexicon *testutil_vader_shipped(void) {
    vader_lexicon *lx = NULL;
    dpo_err e;
    ck_assert_msg(vader_load(&lx, (const char *)vader_embedded_lexicon, vader_embedded_lexicon_len, "embedded", &e) == 0,
                  "%s", e.msg);
    return lx;
}

/* x[i] = mean + std * normal, from r */
static inline void testutil_fill_normal(float *x, size_t n, double std, double mean, util_rng *r) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = (float)(mean + std * util_rng_normal(r));
}

/* Parameters with every part of the computation mattering: see selftest.h */
static inline void testutil_randomize_params(model *m, util_rng *r) { selftest_random_params(m, r); }

/* ||a - b|| / ||b|| over n values (b the reference), in double */
static inline double testutil_rel_err(const float *a, const double *b, size_t n) {
    double num = 0.0, den = 0.0;
    size_t i;
    for (i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

/* A golden file's I32 tensor (at most max and 64 values) into out; *n (may be
 * NULL) receives its count. */
static inline void testutil_read_i32(const st_file *f, const char *name, int *out, size_t max, size_t *n) {
    const st_tensor *t = st_find(f, name);
    unsigned char buf[4 * 64];
    size_t i;
    dpo_err e;
    ck_assert_msg(t != NULL, "golden file lacks %s", name);
    ck_assert_int_eq(t->dtype, ST_I32);
    ck_assert(t->numel <= max && t->numel <= 64);
    ck_assert_int_eq(st_read_raw(f, t, buf, &e), 0);
    for (i = 0; i < t->numel; i++)
        out[i] = (int)(uint32_t)(buf[4 * i] | buf[4 * i + 1] << 8 | buf[4 * i + 2] << 16 |
                                 (uint32_t)buf[4 * i + 3] << 24);
    if (n) *n = t->numel;
}

/* A golden file's F64 tensor as a new array of doubles (little-endian bytes). */
static inline double *testutil_read_f64(const st_file *f, const char *name, size_t *n) {
    const st_tensor *t = st_find(f, name);
    unsigned char *buf;
    double *out;
    size_t i;
    int k;
    dpo_err e;
    ck_assert_msg(t != NULL, "golden file lacks %s", name);
    ck_assert_int_eq(t->dtype, ST_F64);
    buf = malloc(t->numel * 8 + 1);
    out = malloc(t->numel * sizeof *out + 1);
    ck_assert(buf && out);
    ck_assert_int_eq(st_read_raw(f, t, buf, &e), 0);
    for (i = 0; i < t->numel; i++) {
        uint64_t bits = 0;
        for (k = 7; k >= 0; k--) bits = bits << 8 | buf[8 * i + (size_t)k];
        memcpy(&out[i], &bits, 8);
    }
    free(buf);
    *n = t->numel;
    return out;
}

static inline int testutil_run(Suite *s) {
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Write n bytes to path (replacing it) / read a whole file; any failure fails the check. */
static inline void testutil_write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    ck_assert_msg(fp != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert(n == 0 || fwrite(data, 1, n, fp) == n);
    ck_assert(fclose(fp) == 0);
}

static inline unsigned char *testutil_read_bytes(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    unsigned char *buf;
    long sz;
    ck_assert_msg(fp != NULL, "fopen %s: %s", path, strerror(errno));
    ck_assert(fseek(fp, 0, SEEK_END) == 0);
    sz = ftell(fp);
    ck_assert(sz >= 0);
    ck_assert(fseek(fp, 0, SEEK_SET) == 0);
    buf = malloc((size_t)sz + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert((size_t)sz == fread(buf, 1, (size_t)sz, fp));
    fclose(fp);
    *n = (size_t)sz;
    return buf;
}

/* Remove a file or a directory tree (no links followed). */
static inline void testutil_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *ent;
        char p[4096];
        if (d) {
            while ((ent = readdir(d)) != NULL) {
                if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
                if ((size_t)snprintf(p, sizeof p, "%.2000s/%.1000s", path, ent->d_name) < sizeof p)
                    testutil_remove_tree(p);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        remove(path);
    }
}

/* The temporary directory of the running test: add the checked fixture
 * tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp) and it
 * is created before each test and removed (with everything in it) after it, even
 * when a check fails. */
static char tmp_root[32];

static inline void testutil_setup_tmp(void) {
    snprintf(tmp_root, sizeof tmp_root, "%s", "/tmp/dpo-test-XXXXXX");
    ck_assert_msg(mkdtemp(tmp_root) != NULL, "mkdtemp: %s", strerror(errno));
}

static inline void testutil_teardown_tmp(void) {
    struct stat st;
    testutil_remove_tree(tmp_root);
    ck_assert_msg(lstat(tmp_root, &st) != 0, "%s was not removed", tmp_root);
}

/* An XML entity at s[0..n) that the writer may use; its length, or 0. */
static inline size_t testutil_entity_len(const char *s, size_t n) {
    static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    size_t k;
    for (k = 0; k < 5; k++)
        if (n >= strlen(ents[k]) && memcmp(s, ents[k], strlen(ents[k])) == 0) return strlen(ents[k]);
    return 0;
}

/* Well-formed XML as dpo's SVG writers (explain.c, plot.c) produce it, checked
 * strictly: perhaps the declaration <?xml version="1.0" encoding="UTF-8"?> and a
 * newline, then valid UTF-8 with no control character but newline and no
 * U+FFFE/U+FFFF; one root element <svg ...> with balanced tags; attributes name="value"; every & one of the five
 * entities; no raw < or > outside markup or inside values; nothing after the
 * root but a newline. Returns the number of elements. */
static inline int testutil_check_xml(const char *s, size_t n) {
    char stack[32][32];
    int depth = 0, elements = 0, closed_root = 0;
    size_t i = 0;
    static const char decl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    if (n >= sizeof decl - 1 && memcmp(s, decl, sizeof decl - 1) == 0) i = sizeof decl - 1;
    ck_assert_msg(n > i + 5 && memcmp(s + i, "<svg ", 5) == 0, "does not start with <svg");
    while (i < n) {
        uint32_t cp;
        int k = uni_decode_utf8((const unsigned char *)s + i, n - i, &cp);
        ck_assert_msg(k > 0, "invalid UTF-8 at byte %zu", i);
        ck_assert_msg(cp >= 0x20 || cp == '\n', "control character %u at byte %zu", (unsigned)cp, i);
        ck_assert_msg(cp != 0xfffe && cp != 0xffff, "U+%04X at byte %zu", (unsigned)cp, i);
        ck_assert_msg(!closed_root || cp == '\n', "content after the root element at byte %zu", i);
        if (cp == '<') {
            size_t j = i + 1, name0;
            int closing = 0;
            char name[32];
            if (s[j] == '/') closing = 1, j++;
            name0 = j;
            while (j < n && (isalnum((unsigned char)s[j]) || s[j] == ':' || s[j] == '-')) j++;
            ck_assert_msg(j > name0 && j - name0 < sizeof name, "bad tag name at byte %zu", i);
            memcpy(name, s + name0, j - name0);
            name[j - name0] = '\0';
            for (;;) { /* attributes */
                size_t a0;
                while (j < n && s[j] == ' ') j++;
                ck_assert_msg(j < n, "unterminated tag at byte %zu", i);
                if (s[j] == '>' || (s[j] == '/' && j + 1 < n && s[j + 1] == '>')) break;
                ck_assert_msg(!closing, "attributes in a closing tag at byte %zu", i);
                a0 = j;
                while (j < n && (isalnum((unsigned char)s[j]) || s[j] == ':' || s[j] == '-')) j++;
                ck_assert_msg(j > a0 && j + 1 < n && s[j] == '=' && s[j + 1] == '"', "bad attribute at byte %zu", j);
                j += 2;
                while (j < n && s[j] != '"') {
                    ck_assert_msg(s[j] != '<' && s[j] != '>', "raw < or > in an attribute at byte %zu", j);
                    if (s[j] == '&') {
                        size_t el = testutil_entity_len(s + j, n - j);
                        ck_assert_msg(el > 0, "bare & in an attribute at byte %zu", j);
                        j += el;
                    } else {
                        j++;
                    }
                }
                ck_assert_msg(j < n, "unterminated attribute value");
                j++;
            }
            if (closing) {
                ck_assert_msg(depth > 0 && strcmp(stack[depth - 1], name) == 0, "</%s> closes %s at byte %zu", name,
                              depth > 0 ? stack[depth - 1] : "nothing", i);
                depth--;
                if (depth == 0) closed_root = 1;
            } else {
                elements++;
                ck_assert_msg(depth > 0 || elements == 1, "a second root element <%s>", name);
                if (s[j] == '>') {
                    ck_assert(depth < 32);
                    memcpy(stack[depth++], name, strlen(name) + 1);
                }
            }
            i = s[j] == '>' ? j + 1 : j + 2;
            continue;
        }
        ck_assert_msg(cp != '>', "raw > in text at byte %zu", i);
        if (cp == '&') {
            size_t el = testutil_entity_len(s + i, n - i);
            ck_assert_msg(el > 0, "bare & in text at byte %zu", i);
            i += el;
            continue;
        }
        i += (size_t)k;
    }
    ck_assert_msg(depth == 0 && closed_root, "unbalanced: %d elements still open", depth);
    return elements;
}

#endif
