/* cmd_selftest.c - the command line of `dpo selftest` (selftest.c): run every
 * check, print each with its measured error and tolerance, exit 1 if any fails. */
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "matmul.h"
#include "selftest.h"

static void print_result(void *ctx, const selftest_result *r) {
    (void)ctx;
    printf("%-4s %-9s %-18s %9.2e <= %-8.1e %s\n", r->pass ? "ok" : "FAIL", r->group, r->measure, r->err, r->tol,
           r->name);
    fflush(stdout);
}

int cmd_selftest(int argc, char **argv) {
    const char *root = ".";
    int threads = 0, rc, n_checks = 0, n_failed = 0;
    uint64_t seed = 1;
    double t0;
    selftest_opts o;
    dpo_err e;
    opt_spec opts[] = {
        {"--root", OPT_STR, &root, 0, 0, 0,
         "the dpo source tree, for data/gpt2 and the vectors in tests/ (default: the current directory)", 0},
        {"--threads", OPT_INT, &threads, 0, 4096, 0,
         "threads compared with 1 (default: all; at least 2 are compared)", 0},
        {"--seed", OPT_U64, &seed, 0, 0, 0, "random models, inputs and shapes (default {default})", 0},
    };
    rc = cli_parse("selftest", "usage: dpo selftest [--root DIR] [--threads N] [--seed S]\n\n"
                   "Check this build on this CPU, with nothing but the source tree: run it after\n"
                   "building the reviewed sources. Each line is one check, its measured error and\n"
                   "the tolerance it must not exceed:\n"
                   "  gradient   every tensor's analytic gradient (language-model head and score\n"
                   "             head of a tiny random model) against central finite differences\n"
                   "  kernel     the matrix kernel against the scalar reference, bit for bit\n"
                   "  threads    a forward and backward pass on 1 thread and on N, bit for bit\n"
                   "  tokenizer  GPT-2 encoding against js-tiktoken's ids, and the round trip\n"
                   "  sentiment  VADER against upstream vaderSentiment 3.3.1's scores\n"
                   "Exit status 0 when every check passes, 1 when one fails or cannot run.",
                   argc, argv, opts, CLI_NOPTS(opts));
    if (rc != 0) return rc > 0 ? 0 : 2;
    if (threads > 0) util_set_threads(threads);
    o.root = root;
    o.threads = util_threads();
    o.seed = seed;
    printf("dpo selftest: %s kernel, %d threads, vectors from %s\n", mm_kernel_name(), o.threads > 1 ? o.threads : 2,
           root);
    t0 = util_seconds();
    if (selftest_run(&o, print_result, NULL, &n_checks, &n_failed, &e) != 0) return cli_fail("selftest", &e);
    printf("dpo selftest: %d checks, %d failed (%.1f s)\n", n_checks, n_failed, util_seconds() - t0);
    return n_failed ? 1 : 0;
}
