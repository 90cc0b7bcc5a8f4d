/* tests/test_util.c - the shared helpers of util.c that guard the user's files
 * and terminal: escaping of error messages (names from files must not reach a
 * terminal as escape sequences), output-directory paths ("run/" is "run"; "/",
 * "." and ".." refused), directories dpo owns (only its own files removed,
 * never through a symbolic link, the marker first), and atomic files (created
 * with O_EXCL, a link at the destination replaced rather than followed, every
 * write checked). */
#include <fcntl.h>
#include <stdint.h>

#include "testutil.h"
#include "util.h"

static void path_in(char *out, size_t cap, const char *name) {
    ck_assert((size_t)snprintf(out, cap, "%s/%s", tmp_root, name) < cap);
}

static void write_text(const char *path, const char *s) { testutil_write_bytes(path, s, strlen(s)); }

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ------------------------------------------------------------------------ */
/* escaping */

START_TEST(test_escape_messages) {
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"plain text: 42", "plain text: 42"},
        /* a tensor named "\u001b]0;x\u0007\u001b[2J": title change and screen clear */
        {"tensor \x1b]0;x\x07\x1b[2J: bad", "tensor \\x1b]0;x\\x07\\x1b[2J: bad"},
        {"tab\there\nnewline\rCR\x7f", "tab\\x09here\\x0anewline\\x0dCR\\x7f"},
        /* UTF-8 letters are kept */
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        /* C1 control CSI (U+009B) encoded in UTF-8; a right-to-left override (U+202E) */
        {"a\xc2\x9b" "2Jb \xe2\x80\xae" "cba", "a\\u009b2Jb \\u202ecba"},
        /* bytes that are not UTF-8: a lone continuation, a raw 0x9b, a truncated sequence, an overlong */
        {"x\x80y\x9bz\xe2\x82", "x\\x80y\\x9bz\\xe2\\x82"},
        {"\xc0\xaf", "\\xc0\\xaf"},
        /* a surrogate encoded in UTF-8 */
        {"\xed\xa0\x80", "\\xed\\xa0\\x80"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256], twice[256];
        util_escape_text(out, sizeof out, cases[i].in);
        ck_assert_msg(strcmp(out, cases[i].want) == 0, "case %zu: got '%s', want '%s'", i, out, cases[i].want);
        util_escape_text(twice, sizeof twice, out);
        ck_assert_msg(strcmp(out, twice) == 0, "case %zu: escaping twice changed '%s'", i, out);
    }
}
END_TEST

/* dpo_errf and dpo_err_prefix escape what they format; a message truncated to
 * the buffer stays NUL-terminated and printable */
START_TEST(test_errf_escapes) {
    dpo_err e;
    char big[4000];
    size_t i;
    ck_assert_int_eq(dpo_errf(&e, "%s: tensor %s", "m.safetensors", "\x1b[31mred\x1b[0m"), -1);
    ck_assert_str_eq(e.msg, "m.safetensors: tensor \\x1b[31mred\\x1b[0m");
    ck_assert_int_eq(dpo_err_prefix(&e, "dir \x07%s", "x"), -1);
    ck_assert_str_eq(e.msg, "dir \\x07x: m.safetensors: tensor \\x1b[31mred\\x1b[0m");
    memset(big, 0x1b, sizeof big - 1);
    big[sizeof big - 1] = '\0';
    dpo_errf(&e, "%s", big);
    ck_assert(strlen(e.msg) < sizeof e.msg);
    for (i = 0; e.msg[i]; i++) ck_assert_msg((unsigned char)e.msg[i] >= 0x20 && e.msg[i] != 0x7f, "byte %zu", i);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* output directory paths */

START_TEST(test_out_dir_path) {
    static const struct {
        const char *in, *want; /* want NULL: refused */
    } cases[] = {
        {"run", "run"},   {"run/", "run"},     {"run//", "run"}, {"a/b/run/", "a/b/run"},
        {"/abs/run", "/abs/run"}, {".", NULL}, {"./", NULL},    {"/", NULL},
        {"//", NULL},     {"..", NULL},        {"a/..", NULL},   {"a/./", NULL},
        {"", NULL},       {".run", ".run"},    {"run.", "run."},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        dpo_err e;
        int rc = util_out_dir_path(out, sizeof out, cases[i].in, &e);
        if (cases[i].want) {
            ck_assert_msg(rc == 0, "'%s': %s", cases[i].in, e.msg);
            ck_assert_str_eq(out, cases[i].want);
        } else {
            ck_assert_msg(rc == -1, "'%s' accepted as '%s'", cases[i].in, out);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* directories dpo owns */

static const char *const owned[] = {"state.json", "model.bin", "vocab.json"};

START_TEST(test_dir_inspect) {
    char dir[256], p[512], link[256];
    long n;
    dpo_err e;
    path_in(dir, sizeof dir, "ck");
    ck_assert_int_eq(util_dir_inspect(dir, owned, 3, &n, &e), 0); /* missing */
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    ck_assert_int_eq(util_dir_inspect(dir, owned, 3, &n, &e), 1);
    ck_assert_int_eq(n, 0);
    snprintf(p, sizeof p, "%s/model.bin", dir);
    write_text(p, "w");
    snprintf(p, sizeof p, "%s/model.bin.tmp.00ff00ff00ff00ff", dir); /* a killed writer's temporary */
    write_text(p, "w");
    ck_assert_int_eq(util_dir_inspect(dir, owned, 3, &n, &e), 1);
    ck_assert_int_eq(n, 2);
    /* foreign: a name of its own, a name that only starts like ours, a directory, a link */
    snprintf(p, sizeof p, "%s/model.binx", dir);
    write_text(p, "x");
    ck_assert_int_eq(util_dir_inspect(dir, owned, 3, &n, &e), -1);
    ck_assert_msg(strstr(e.msg, "'model.binx'") && strstr(e.msg, "did not write"), "%s", e.msg);
    ck_assert_int_eq(unlink(p), 0);
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    ck_assert_int_eq(mkdir(p, 0777), 0);
    ck_assert_int_eq(util_dir_inspect(dir, owned, 3, &n, &e), -1);
    ck_assert_int_eq(rmdir(p), 0);
    ck_assert_int_eq(symlink("/etc/hostname", p), 0);
    ck_assert_int_eq(util_dir_inspect(dir, owned, 3, &n, &e), -1);
    ck_assert_int_eq(unlink(p), 0);
    /* the directory itself a link, or a file */
    path_in(link, sizeof link, "ck-link");
    ck_assert_int_eq(symlink(dir, link), 0);
    ck_assert_int_eq(util_dir_inspect(link, owned, 3, &n, &e), -1);
    ck_assert_msg(strstr(e.msg, "symbolic link"), "%s", e.msg);
    snprintf(p, sizeof p, "%s/model.bin", dir);
    ck_assert_int_eq(util_dir_inspect(p, owned, 3, &n, &e), -1);
}
END_TEST

/* The review's case: OUT.old a link to a victim directory holding a model. The
 * victim's files survive; so do the files of a directory holding anything
 * foreign (nothing at all is removed there). */
START_TEST(test_remove_owned_never_follows) {
    char victim[256], link[256], dir[256], p[512], q[512];
    dpo_err e;
    path_in(victim, sizeof victim, "victim");
    path_in(link, sizeof link, "run.old");
    ck_assert_int_eq(mkdir(victim, 0777), 0);
    snprintf(p, sizeof p, "%s/model.bin", victim);
    write_text(p, "precious");
    ck_assert_int_eq(symlink(victim, link), 0);
    ck_assert_int_eq(util_dir_remove_owned(link, owned, 3, &e), -1);
    ck_assert_msg(strstr(e.msg, "symbolic link"), "%s", e.msg);
    ck_assert(exists(p) && exists(link));

    /* a file inside a directory we own that is a link to a victim file: the link goes, the victim stays */
    path_in(dir, sizeof dir, "run.tmp");
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    snprintf(q, sizeof q, "%s/vocab.json", dir);
    ck_assert_int_eq(symlink(p, q), 0);
    ck_assert_int_eq(util_dir_remove_owned(dir, owned, 3, &e), -1); /* a link is not a file dpo wrote */
    ck_assert(exists(p) && exists(q));
    ck_assert_int_eq(unlink(q), 0);

    /* foreign file: nothing removed, not even our own files */
    snprintf(q, sizeof q, "%s/state.json", dir);
    write_text(q, "{}");
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    write_text(p, "keep");
    ck_assert_int_eq(util_dir_remove_owned(dir, owned, 3, &e), -1);
    ck_assert_msg(strstr(e.msg, "notes.txt"), "%s", e.msg);
    ck_assert(exists(p) && exists(q));
    ck_assert_int_eq(unlink(p), 0);

    /* ours only (with a killed writer's temporary): all removed, then the directory */
    snprintf(p, sizeof p, "%s/model.bin.tmp.0123456789abcdef", dir);
    write_text(p, "partial");
    ck_assert_msg(util_dir_remove_owned(dir, owned, 3, &e) == 0, "%s", e.msg);
    ck_assert(!exists(dir));
    ck_assert_int_eq(util_dir_remove_owned(dir, owned, 3, &e), 0); /* missing: nothing to do */
}
END_TEST

/* ------------------------------------------------------------------------ */
/* atomic files */

START_TEST(test_atomic_replaces_link_not_target) {
    char victim[256], path[256];
    unsigned char *got;
    size_t n;
    dpo_err e;
    struct stat st;
    path_in(victim, sizeof victim, "victim.txt");
    path_in(path, sizeof path, "config.json");
    write_text(victim, "precious");
    ck_assert_int_eq(symlink(victim, path), 0);
    ck_assert_msg(util_atomic_write_file(path, "new", 3, &e) == 0, "%s", e.msg);
    got = testutil_read_bytes(victim, &n);
    ck_assert(n == 8 && memcmp(got, "precious", 8) == 0);
    free(got);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    got = testutil_read_bytes(path, &n);
    ck_assert(n == 3 && memcmp(got, "new", 3) == 0);
    free(got);
}
END_TEST

/* the temporary names differ from call to call and are created exclusively: a
 * planted file of the same name would never be opened (O_EXCL) */
START_TEST(test_atomic_temporaries) {
    char path[256], seen[8][4096];
    util_atomic_file f;
    dpo_err e;
    int i, j, fd;
    path_in(path, sizeof path, "out.bin");
    for (i = 0; i < 8; i++) {
        ck_assert_msg(util_atomic_open(&f, path, &e) == 0, "%s", e.msg);
        ck_assert(strncmp(f.tmp_path, path, strlen(path)) == 0 && strstr(f.tmp_path, ".tmp.") != NULL);
        memcpy(seen[i], f.tmp_path, sizeof seen[i]);
        for (j = 0; j < i; j++) ck_assert_str_ne(seen[i], seen[j]);
        /* the file exists now: opening it exclusively again fails */
        fd = open(f.tmp_path, O_WRONLY | O_CREAT | O_EXCL, 0666);
        ck_assert_int_eq(fd, -1);
        ck_assert_int_eq(errno, EEXIST);
        util_atomic_abort(&f);
        ck_assert(!exists(seen[i]));
    }
    ck_assert(!exists(path));
}
END_TEST

/* a full disk: the commit fails, names the file, and leaves neither the
 * destination nor a temporary behind */
START_TEST(test_atomic_full_disk) {
    util_atomic_file f;
    dpo_err e;
    static char buf[1 << 16];
    if (access("/dev/full", W_OK) != 0) return; /* not on this system */
    /* /dev/full cannot hold a temporary beside it; write through a FILE* opened on it instead */
    f.fp = fopen("/dev/full", "wb");
    ck_assert_ptr_nonnull(f.fp);
    snprintf(f.path, sizeof f.path, "%s/never", tmp_root);
    snprintf(f.tmp_path, sizeof f.tmp_path, "%s/never.tmp.x", tmp_root);
    memset(buf, 'x', sizeof buf);
    (void)util_atomic_write(&f, buf, sizeof buf, &e);
    ck_assert_int_eq(util_atomic_commit(&f, &e), -1);
    ck_assert_msg(strstr(e.msg, "never") && strstr(e.msg, "write failed"), "%s", e.msg);
    ck_assert(!exists(f.path));
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("util");
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_escape_messages);
    tcase_add_test(tc, test_errf_escapes);
    tcase_add_test(tc, test_out_dir_path);
    tcase_add_test(tc, test_dir_inspect);
    tcase_add_test(tc, test_remove_owned_never_follows);
    tcase_add_test(tc, test_atomic_replaces_link_not_target);
    tcase_add_test(tc, test_atomic_temporaries);
    tcase_add_test(tc, test_atomic_full_disk);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(make_suite()); }
