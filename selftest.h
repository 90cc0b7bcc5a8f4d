/* selftest.h - dpo selftest: what a facility runs after building the reviewed
 * sources on its own machine, with no Python and no network. See selftest.c. */
#ifndef DPO_SELFTEST_H
#define DPO_SELFTEST_H

#include <stdint.h>

#include "model.h"
#include "util.h"

/* One check: pass when err <= tol. */
typedef struct {
    const char *group;  /* "gradient", "kernel", "threads", "tokenizer", "sentiment" */
    char name[128];     /* what was checked */
    const char *measure; /* what err is: "rel. error", "mismatches", "max |error|", ... */
    double err, tol;
    int pass;
} selftest_result;

/* Called once per check, as it completes (the command prints it). */
typedef void (*selftest_report_fn)(void *ctx, const selftest_result *r);

typedef struct {
    const char *root;   /* the source tree: data/gpt2, tests/gpt2_tokenizer_vectors.jsonl, tests/vader_vectors.tsv */
    int threads;        /* the thread count compared with 1 (at least 2) */
    uint64_t seed;      /* the random models, inputs and shapes */
} selftest_opts;

/* Run every check, reporting each to fn. *n_checks and *n_failed count them.
 * Returns 0 when the checks could run (whatever they found), -1 when one could
 * not (a vector file missing or malformed, out of memory), with e set. */
int selftest_run(const selftest_opts *o, selftest_report_fn fn, void *ctx, int *n_checks, int *n_failed,
                 dpo_err *e);

/* Parameters where every part of the computation matters (not GPT-2's small
 * initialisation, under which some gradients are nearly zero): LayerNorm gains
 * 1 +- 0.2, everything else normal(0, 0.4), drawn from r tensor by tensor.
 * The self-test's models and the Check suites' random models. */
void selftest_random_params(model *m, util_rng *r);

#endif
