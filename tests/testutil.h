/* tests/testutil.h - helpers shared by the Check suites: a suite runner that
 * never forks (GCC's OpenMP runtime is not fork-safe) and returns a failing
 * exit status when any check fails, and a per-test temporary directory. */
#ifndef DPO_TESTUTIL_H
#define DPO_TESTUTIL_H

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

#endif
