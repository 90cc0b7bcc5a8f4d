/* cli.c - the command line's shared parts: one option table per subcommand and
 * its parser, errors, JSON output and reading an input file or standard input.
 * Only the command layer (dpo.c, cmd_*.c and this file) prints or exits; this
 * file never opens a file for writing. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "unicode.h"

/* ======================================================================== */
/* option parsing: one table per subcommand                                  */
/* ======================================================================== */
static int parse_ll(const char *s, long long *out) {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

/* An option's help text; "{default}" in it is replaced by the value the option's
 * variable holds before parsing, so that the help shows the very default the
 * code uses. */
static void print_help(FILE *fp, const opt_spec *o) {
    const char *mark = strstr(o->help, "{default}");
    if (!mark) {
        fputs(o->help, fp);
        return;
    }
    fprintf(fp, "%.*s", (int)(mark - o->help), o->help);
    if (o->kind == OPT_INT) fprintf(fp, "%d", *(const int *)o->out);
    else if (o->kind == OPT_U64) fprintf(fp, "%llu", (unsigned long long)*(const uint64_t *)o->out);
    else if (o->kind == OPT_DOUBLE) fprintf(fp, "%g", *(const double *)o->out);
    else if (o->kind == OPT_STR || o->kind == OPT_NAME) fputs(*(const char *const *)o->out, fp);
    fputs(mark + 9, fp);
}

static void usage_options(FILE *fp, const opt_spec *opts, int n) {
    int i;
    for (i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s", opts[i].name,
                 opts[i].kind == OPT_FLAG || opts[i].kind == OPT_POS ? ""
                 : opts[i].kind == OPT_STR ? " PATH"
                 : opts[i].kind == OPT_TEXT ? " TEXT"
                 : opts[i].kind == OPT_NAME ? " NAME"
                 : opts[i].kind == OPT_LIST ? " PATH..."
                 : opts[i].kind == OPT_DOUBLE ? " X"
                                            : " N");
        fprintf(fp, "  %-18s ", left);
        print_help(fp, &opts[i]);
        fprintf(fp, "%s\n", opts[i].required ? " (required)" : "");
    }
    fprintf(fp, "  %-18s %s\n", "--help", "show this help");
}

/* Store the value text v of option o (STR, NAME, DOUBLE, INT or U64) after
 * checking it. Returns 0, or -1 after printing the problem. */
static int set_value(const char *cmd, opt_spec *o, const char *v) {
    long long x;
    if (o->kind == OPT_TEXT) {
        *(const char **)o->out = v;
    } else if (o->kind == OPT_STR || o->kind == OPT_NAME) {
        if (v[0] == '\0') {
            fprintf(stderr, "dpo %s: option %s needs a non-empty value\n", cmd, o->name);
            return -1;
        }
        *(const char **)o->out = v;
    } else if (o->kind == OPT_DOUBLE) {
        char *end;
        double d;
        errno = 0;
        d = strtod(v, &end);
        if (end == v || *end != '\0' || errno != 0 || !(d >= 0.0 && d <= 1e300)) {
            fprintf(stderr, "dpo %s: %s must be a finite non-negative number, got '%s'\n", cmd, o->name, v);
            return -1;
        }
        *(double *)o->out = d;
    } else if (o->kind == OPT_INT) {
        if (parse_ll(v, &x) != 0 || x < o->min || x > o->max) {
            fprintf(stderr, "dpo %s: %s must be an integer in [%lld, %lld], got '%s'\n", cmd, o->name, o->min, o->max, v);
            return -1;
        }
        *(int *)o->out = (int)x;
    } else {
        if (parse_ll(v, &x) != 0 || x < 0) {
            fprintf(stderr, "dpo %s: %s must be a non-negative integer, got '%s'\n", cmd, o->name, v);
            return -1;
        }
        *(uint64_t *)o->out = (uint64_t)x;
    }
    return 0;
}

/* the option named arg (not the positional one), or NULL */
static opt_spec *find_option(opt_spec *opts, int n, const char *arg) {
    int i;
    for (i = 0; i < n; i++)
        if (opts[i].kind != OPT_POS && strcmp(arg, opts[i].name) == 0) return &opts[i];
    return NULL;
}

/* One option at argv[*a] (an OPT_POS argument when it does not start with
 * "--"), consuming its values; *a is left at the last argument used. Returns
 * 0, or -1 after printing the problem. */
static int parse_one(const char *cmd, int argc, char **argv, int *a, opt_spec *opts, int n) {
    const char *arg = argv[*a];
    opt_spec *o = NULL;
    int i;
    if (strncmp(arg, "--", 2) != 0) { /* a positional argument */
        for (i = 0; i < n; i++)
            if (opts[i].kind == OPT_POS) o = &opts[i];
        if (!o || o->seen) {
            fprintf(stderr, "dpo %s: unexpected argument '%s' (see 'dpo %s --help')\n", cmd, arg, cmd);
            return -1;
        }
        o->seen = 1;
        *(const char **)o->out = arg;
        return 0;
    }
    if (!(o = find_option(opts, n, arg))) {
        fprintf(stderr, "dpo %s: unknown option '%s' (see 'dpo %s --help')\n", cmd, arg, cmd);
        return -1;
    }
    if (o->kind == OPT_LIST) { /* values up to the next option */
        str_list *l = o->out;
        int first = *a + 1;
        o->seen = 1;
        while (*a + 1 < argc && strncmp(argv[*a + 1], "--", 2) != 0) l->v[l->n++] = argv[++*a];
        if (*a + 1 == first) {
            fprintf(stderr, "dpo %s: option %s needs a value\n", cmd, o->name);
            return -1;
        }
        return 0;
    }
    if (o->seen) {
        fprintf(stderr, "dpo %s: option %s given twice\n", cmd, o->name);
        return -1;
    }
    o->seen = 1;
    if (o->kind == OPT_FLAG) {
        *(int *)o->out = 1;
        return 0;
    }
    if (*a + 1 >= argc) {
        fprintf(stderr, "dpo %s: option %s needs a value\n", cmd, o->name);
        return -1;
    }
    if (strncmp(argv[*a + 1], "--", 2) == 0) { /* "--out --data": a forgotten value, not a path named "--data" */
        fprintf(stderr, "dpo %s: option %s needs a value, but the next argument is the option '%s'\n", cmd, o->name,
                argv[*a + 1]);
        return -1;
    }
    return set_value(cmd, o, argv[++*a]);
}

/* Returns 0 to go on, 1 if --help was printed, -1 on a usage error (printed). */
int cli_parse(const char *cmd, const char *synopsis, int argc, char **argv, opt_spec *opts, int n) {
    int a, i;
    for (a = 0; a < argc; a++) {
        if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
            printf("%s\n\nOptions:\n", synopsis);
            usage_options(stdout, opts, n);
            return 1;
        }
        if (parse_one(cmd, argc, argv, &a, opts, n) != 0) return -1;
    }
    for (i = 0; i < n; i++) {
        if (opts[i].required && !opts[i].seen) {
            fprintf(stderr, "dpo %s: missing required option %s (see 'dpo %s --help')\n", cmd,
                    opts[i].name, cmd);
            return -1;
        }
    }
    return 0;
}

int cli_fail(const char *cmd, const dpo_err *e) {
    fprintf(stderr, "dpo %s: error: %s\n", cmd, e->msg);
    return 1;
}

/* An output directory of init or tokenizer-train, checked before any work: it is
 * new, empty, or holds only files this command writes (names[]; so that running
 * the same command again works), it is not a symbolic link, and it is not the
 * input directory `in` (may be NULL). Anything else is refused: the user's files
 * are never replaced. Returns 0, or 2 after printing the problem. */
int cli_check_out_dir(const char *cmd, const char *out, const char *const *names, size_t n, const char *in) {
    dpo_err e;
    long entries;
    if (in && util_same_file(out, in)) {
        fprintf(stderr, "dpo %s: %s: is the input directory; give a new or empty directory for --out\n", cmd, out);
        return 2;
    }
    if (util_dir_inspect(out, names, n, &entries, &e) < 0) {
        fprintf(stderr, "dpo %s: %s (--out must be a new or empty directory)\n", cmd, e.msg);
        return 2;
    }
    return 0;
}

/* An output file (option opt, path out), checked before any work: not one of
 * the input files inputs[0..n_inputs) (NULL entries skipped), and not in (nor)
 * one of the model or tokenizer directories dirs[0..n_dirs), whose files dpo
 * reads and whose checkpoints hold only dpo's own files. Returns 0, or 2 after
 * printing the problem. */
int cli_check_out_file(const char *cmd, const char *opt, const char *out, const char *const *inputs, int n_inputs,
                       const char *const *dirs, int n_dirs) {
    char parent[4096];
    int i;
    for (i = 0; i < n_inputs; i++)
        if (inputs[i] && util_same_file(out, inputs[i])) {
            fprintf(stderr, "dpo %s: %s %s is the input file %s; give another path\n", cmd, opt, out, inputs[i]);
            return 2;
        }
    if (util_parent_dir(parent, sizeof parent, out) != 0) {
        fprintf(stderr, "dpo %s: %s %s: path too long\n", cmd, opt, out);
        return 2;
    }
    for (i = 0; i < n_dirs; i++)
        if (dirs[i] && (util_same_file(parent, dirs[i]) || util_same_file(out, dirs[i]))) {
            fprintf(stderr, "dpo %s: %s %s lies in the model or tokenizer directory %s; give another path\n", cmd, opt,
                    out, dirs[i]);
            return 2;
        }
    return 0;
}

/* A number in JSON output: %.9g, or null when it is not finite (JSON has no
 * NaN or infinity, and a reader must never get "nan" where a number belongs). */
void cli_put_num(FILE *fp, const char *key, double x) {
    if (isfinite(x)) fprintf(fp, "\"%s\": %.9g", key, x);
    else fprintf(fp, "\"%s\": null", key);
}

void cli_put_str(FILE *fp, const char *key, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    fprintf(fp, "\"%s\": \"", key);
    while (i < len) {
        uint32_t cp;
        int n = uni_decode_utf8(p + i, len - i, &cp);
        unsigned char c = p[i];
        if (n == 0) { /* not valid UTF-8: one replacement character per byte */
            fputs("\xef\xbf\xbd", fp);
            i++;
        } else if (n > 1) {
            fwrite(p + i, 1, (size_t)n, fp);
            i += (size_t)n;
        } else {
            if (c == '"' || c == '\\') fprintf(fp, "\\%c", c);
            else if (c == '\n') fputs("\\n", fp);
            else if (c == '\t') fputs("\\t", fp);
            else if (c == '\r') fputs("\\r", fp);
            else if (c < 0x20 || c == 0x7f) fprintf(fp, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
            else fputc(c, fp);
            i++;
        }
    }
    fputc('"', fp);
}

#define MAX_INPUT_BYTES ((size_t)1 << 32)

/* Read FILE whole, or standard input when path is NULL or "-". */
int cli_read_input(const char *path, char **out, size_t *len, dpo_err *e) {
    size_t cap = 0, n = 0;
    char *buf = NULL;
    if (path && strcmp(path, "-") != 0) return util_read_file(path, MAX_INPUT_BYTES, out, len, e);
    for (;;) {
        size_t got;
        if (n + 1 >= cap) {
            char *q;
            cap = cap ? 2 * cap : 65536;
            if (cap > MAX_INPUT_BYTES) {
                free(buf);
                return dpo_errf(e, "standard input: more than %zu bytes", MAX_INPUT_BYTES);
            }
            q = realloc(buf, cap);
            if (!q) {
                free(buf);
                dpo_err_oom(e, "the input", cap, 1);
                return dpo_err_prefix(e, "standard input");
            }
            buf = q;
        }
        got = fread(buf + n, 1, cap - n - 1, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) {
        free(buf);
        return dpo_errf(e, "standard input: read error");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* the tokenizer directory: --tokenizer, else --model */
int cli_open_tokenizer(const char *cmd, const char *tok_dir, const char *model_dir, tok_tokenizer **t) {
    dpo_err e;
    const char *dir = tok_dir ? tok_dir : model_dir;
    if (!dir) {
        fprintf(stderr, "dpo %s: give --tokenizer DIR (or --model DIR holding the tokenizer files)\n", cmd);
        return 2;
    }
    if (tok_load(t, dir, &e) != 0) return cli_fail(cmd, &e);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* interrupts: SIGINT and SIGTERM stop a training run at its next step */

/* The one mutable global of the program: a signal handler can only talk to the
 * code it interrupted through a volatile sig_atomic_t. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
    if (interrupted) { /* the second one: stop now (a checkpoint on disk is complete whatever the moment) */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    interrupted = sig;
}

void cli_catch_interrupts(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* a read or write the signal lands in carries on */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_stop_requested(void *ctx) {
    (void)ctx;
    return interrupted != 0;
}

int cli_interrupt_exit(const char *cmd, const char *out_dir, long step) {
    int sig = (int)interrupted;
    fprintf(stderr, "dpo %s: %s after step %ld: a checkpoint of that step is in %s; to continue, run the same command "
                    "with --resume %s\n", cmd, sig == SIGTERM ? "terminated" : "interrupted", step, out_dir, out_dir);
    return 128 + sig;
}
