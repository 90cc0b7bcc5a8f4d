/* tests/test_optim.c - Check suite for optim.c: configuration defaults and
 * validation, the learning-rate schedule (warm-up, constant, cosine) at chosen
 * steps, the global gradient norm (against a float64 reference, and bit for bit
 * with 1 and 2 threads), clipping (above, below and at the limit, and off),
 * the three update rules (against literal values for a 3-element vector over 3
 * steps, and step by step against a float64 implementation of the equations
 * written here), non-finite gradients, thread-count independence of whole
 * steps, and the checkpoint file (round trip, and every file that must be
 * refused).
 *
 * Expectations are computed independently of optim.c: the float64 reference
 * below re-implements the equations from their definitions (PyTorch's
 * optimizer docs and Hugging Face's schedules), and compares each float result
 * with a bound on float rounding that scales with the magnitude of the terms
 * summed (never a tolerance that grows with the answer alone).
 *
 * The literal values (lit_* below) were derived in float64 by this python3
 * computation, for p0 = (0.5, -1.25, 2.0) and the gradients G of steps 1..3:
 *
 *   import math
 *   P0 = [0.5, -1.25, 2.0]
 *   G = [[0.1, -0.2, 0.3], [-0.05, 0.4, 0.25], [0.2, 0.1, -0.35]]
 *   def sgd(lr=0.1):
 *       p = P0[:]
 *       for g in G: p = [pi - lr * gi for pi, gi in zip(p, g)]; print(p)
 *   def rmsprop(lr=0.01, wd=0.1, a=0.99, eps=1e-8):
 *       p = P0[:]; v = [0.0] * 3
 *       for g in G:
 *           gp = [gi + wd * pi for gi, pi in zip(g, p)]
 *           v = [a * vi + (1 - a) * x * x for vi, x in zip(v, gp)]
 *           p = [pi - lr * x / (math.sqrt(vi) + eps) for pi, x, vi in zip(p, gp, v)]; print(p)
 *       print(v)
 *   def adamw(lr=0.01, wd=0.1, b1=0.9, b2=0.999, eps=1e-8):
 *       p = P0[:]; m = [0.0] * 3; v = [0.0] * 3
 *       for t, g in enumerate(G, 1):
 *           p = [pi * (1 - lr * wd) for pi in p]
 *           m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
 *           v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
 *           p = [pi - (lr / (1 - b1 ** t)) * mi / (math.sqrt(vi) / math.sqrt(1 - b2 ** t) + eps)
 *                for pi, mi, vi in zip(p, m, v)]; print(p)
 *       print(m, v)
 *
 * Cross-check: the same three runs with Debian's python3-torch 1.13
 * (torch.optim.SGD(lr=0.1), torch.optim.RMSprop(lr=0.01, alpha=0.99, eps=1e-8,
 * weight_decay=0.1), torch.optim.AdamW(lr=0.01, betas=(0.9, 0.999), eps=1e-8,
 * weight_decay=0.1), float32 parameters, p.grad set to each row of G before
 * opt.step()) agree with every literal below (p after each step, exp_avg,
 * exp_avg_sq / square_avg after step 3) to within 1.3e-7 relative: about one
 * float32 rounding, as expected of a float32 computation.
 *
 * Threads: tests that change the thread count restore it before their checks. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim.h"
#include "safetensors.h"
#include "util.h"

#define PI_D 3.14159265358979323846

/* ======================================================================== */
/* helpers                                                                   */
/* ======================================================================== */

static void path_in(char *out, size_t cap, const char *name) {
    int n = snprintf(out, cap, "%s/%s", tmp_root, name);
    ck_assert(n > 0 && (size_t)n < cap);
}

static float *alloc_floats(size_t n) {
    float *p = malloc(n * sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

static float *dup_floats(const float *x, size_t n) {
    float *p = alloc_floats(n);
    memcpy(p, x, n * sizeof(float));
    return p;
}

/* uniform in [lo, hi) */
static void fill_uniform(float *x, size_t n, util_rng *r, double lo, double hi) {
    size_t i;
    for (i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * util_rng_uniform(r));
}

static int same_bits(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

static void init_ok(optim_state *s, const optim_config *c, size_t n) {
    dpo_err e;
    memset(&e, 0, sizeof e);
    ck_assert_msg(optim_init(s, c, n, &e) == 0, "optim_init: %s", e.msg);
}

/* a config for a test: kind's defaults, no warm-up, constant lr, no clipping */
static optim_config plain_config(optim_kind kind, double lr, double wd) {
    optim_config c;
    optim_config_defaults(&c, kind);
    c.lr = lr;
    c.warmup = 0;
    c.grad_clip = 0.0;
    c.weight_decay = wd;
    return c;
}

/* ======================================================================== */
/* configuration                                                             */
/* ======================================================================== */

START_TEST(test_defaults) {
    const optim_kind kinds[] = {OPTIM_SGD, OPTIM_RMSPROP, OPTIM_ADAMW};
    int k;
    for (k = 0; k < 3; k++) {
        optim_config c;
        dpo_err e;
        memset(&e, 0, sizeof e);
        optim_config_defaults(&c, kinds[k]);
        ck_assert_int_eq(c.kind, kinds[k]);
        ck_assert(c.lr == 1e-6);
        ck_assert_int_eq(c.warmup, 150);
        ck_assert_int_eq(c.schedule, OPTIM_CONSTANT);
        ck_assert(c.weight_decay == 0.0);
        ck_assert(c.grad_clip == 10.0);
        ck_assert(c.alpha == 0.99);
        ck_assert(c.beta1 == 0.9 && c.beta2 == 0.999);
        ck_assert(c.eps == 1e-8);
        ck_assert_msg(optim_config_validate(&c, &e) == 0, "%s: %s", optim_kind_name(kinds[k]), e.msg);
    }
}
END_TEST

START_TEST(test_names) {
    optim_kind k;
    optim_schedule s;
    dpo_err e;
    memset(&e, 0, sizeof e);
    ck_assert_str_eq(optim_kind_name(OPTIM_SGD), "sgd");
    ck_assert_str_eq(optim_kind_name(OPTIM_RMSPROP), "rmsprop");
    ck_assert_str_eq(optim_kind_name(OPTIM_ADAMW), "adamw");
    ck_assert_str_eq(optim_schedule_name(OPTIM_CONSTANT), "constant");
    ck_assert_str_eq(optim_schedule_name(OPTIM_COSINE), "cosine");
    ck_assert_int_eq(optim_kind_from_name("rmsprop", &k, &e), 0);
    ck_assert_int_eq(k, OPTIM_RMSPROP);
    ck_assert_int_eq(optim_kind_from_name("adamw", &k, &e), 0);
    ck_assert_int_eq(k, OPTIM_ADAMW);
    ck_assert_int_eq(optim_schedule_from_name("cosine", &s, &e), 0);
    ck_assert_int_eq(s, OPTIM_COSINE);
    ck_assert_int_eq(optim_kind_from_name("adam", &k, &e), -1);
    ck_assert_msg(strstr(e.msg, "unknown optimizer \"adam\"") && strstr(e.msg, "rmsprop"), "%s", e.msg);
    ck_assert_int_eq(optim_schedule_from_name("linear", &s, &e), -1);
    ck_assert_msg(strstr(e.msg, "\"linear\"") && strstr(e.msg, "cosine"), "%s", e.msg);
}
END_TEST

/* each case: a kind's valid config with one field changed, and a phrase the
 * error message must contain */
typedef struct {
    optim_kind kind;
    const char *field;
    double value;
    const char *phrase;
} bad_case;

static void set_field(optim_config *c, const char *field, double value) {
    if (strcmp(field, "lr") == 0) c->lr = value;
    else if (strcmp(field, "warmup") == 0) c->warmup = (int)value;
    else if (strcmp(field, "weight_decay") == 0) c->weight_decay = value;
    else if (strcmp(field, "grad_clip") == 0) c->grad_clip = value;
    else if (strcmp(field, "alpha") == 0) c->alpha = value;
    else if (strcmp(field, "beta1") == 0) c->beta1 = value;
    else if (strcmp(field, "beta2") == 0) c->beta2 = value;
    else if (strcmp(field, "eps") == 0) c->eps = value;
    else if (strcmp(field, "total_steps") == 0) c->total_steps = (long)value;
    else if (strcmp(field, "kind") == 0) c->kind = (optim_kind)(int)value;
    else if (strcmp(field, "schedule") == 0) c->schedule = (optim_schedule)(int)value;
    else ck_abort_msg("unknown field %s", field);
}

START_TEST(test_validate_rejects) {
    const bad_case cases[] = {
        {OPTIM_SGD, "weight_decay", 0.01, "sgd is plain: no weight decay"},
        {OPTIM_SGD, "lr", 0.0, "lr = 0 must be a finite number > 0"},
        {OPTIM_ADAMW, "lr", -1e-3, "lr = -0.001 must be"},
        {OPTIM_RMSPROP, "lr", NAN, "lr = nan must be"},
        {OPTIM_RMSPROP, "lr", INFINITY, "lr = inf must be"},
        {OPTIM_ADAMW, "warmup", -1, "warmup = -1 must be >= 0"},
        {OPTIM_ADAMW, "weight_decay", -0.1, "weight_decay = -0.1 must be a finite number >= 0"},
        {OPTIM_RMSPROP, "weight_decay", NAN, "weight_decay = nan"},
        {OPTIM_SGD, "grad_clip", -1.0, "grad_clip = -1 must be a finite number >= 0"},
        {OPTIM_ADAMW, "grad_clip", NAN, "grad_clip = nan"},
        {OPTIM_RMSPROP, "alpha", 1.0, "alpha = 1 must be in [0, 1)"},
        {OPTIM_RMSPROP, "alpha", -0.1, "alpha = -0.1 must be in [0, 1)"},
        {OPTIM_ADAMW, "beta1", 1.0, "beta1 = 1 must be in [0, 1)"},
        {OPTIM_ADAMW, "beta2", -0.5, "beta2 = -0.5 must be in [0, 1)"},
        {OPTIM_ADAMW, "beta2", NAN, "beta2 = nan"},
        {OPTIM_RMSPROP, "eps", 0.0, "eps = 0 must be a finite number > 0"},
        {OPTIM_ADAMW, "eps", INFINITY, "eps = inf"},
        {OPTIM_ADAMW, "kind", 7, "unknown optimizer kind 7"},
        {OPTIM_SGD, "schedule", 9, "unknown learning-rate schedule 9"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        optim_config c;
        optim_state s;
        dpo_err e;
        memset(&e, 0, sizeof e);
        optim_config_defaults(&c, cases[i].kind);
        ck_assert_int_eq(optim_config_validate(&c, &e), 0);
        set_field(&c, cases[i].field, cases[i].value);
        ck_assert_msg(optim_config_validate(&c, &e) == -1, "case %zu (%s) accepted", i, cases[i].field);
        ck_assert_msg(strstr(e.msg, cases[i].phrase) != NULL, "case %zu: message \"%s\" lacks \"%s\"", i,
                      e.msg, cases[i].phrase);
        /* optim_init refuses it too and leaves nothing allocated */
        memset(&e, 0, sizeof e);
        ck_assert_int_eq(optim_init(&s, &c, 10, &e), -1);
        ck_assert_msg(strstr(e.msg, cases[i].phrase) != NULL, "init %zu: %s", i, e.msg);
        ck_assert(s.m == NULL && s.v == NULL && s.n == 0);
        optim_free(&s);
    }
}
END_TEST

START_TEST(test_validate_cosine_and_unused_fields) {
    optim_config c;
    optim_state s;
    dpo_err e;
    memset(&e, 0, sizeof e);
    optim_config_defaults(&c, OPTIM_ADAMW);
    c.schedule = OPTIM_COSINE;
    c.total_steps = 0;
    ck_assert_int_eq(optim_config_validate(&c, &e), -1);
    ck_assert_msg(strstr(e.msg, "total_steps = 0 must be >= 1 for the cosine schedule"), "%s", e.msg);
    c.total_steps = 149; /* warm-up of 150 would never finish */
    ck_assert_int_eq(optim_config_validate(&c, &e), -1);
    ck_assert_msg(strstr(e.msg, "warmup = 150 must not exceed total_steps = 149"), "%s", e.msg);
    c.total_steps = 150;
    ck_assert_msg(optim_config_validate(&c, &e) == 0, "%s", e.msg);
    /* the constant schedule ignores total_steps */
    c.schedule = OPTIM_CONSTANT;
    c.total_steps = -5;
    ck_assert_msg(optim_config_validate(&c, &e) == 0, "%s", e.msg);
    /* fields a kind does not use are not checked */
    optim_config_defaults(&c, OPTIM_SGD);
    c.alpha = 3.0;
    c.beta1 = -1.0;
    c.beta2 = NAN;
    c.eps = 0.0;
    ck_assert_msg(optim_config_validate(&c, &e) == 0, "%s", e.msg);
    optim_config_defaults(&c, OPTIM_RMSPROP);
    c.beta1 = 2.0;
    ck_assert_msg(optim_config_validate(&c, &e) == 0, "%s", e.msg);
    optim_config_defaults(&c, OPTIM_ADAMW);
    c.alpha = 2.0;
    ck_assert_msg(optim_config_validate(&c, &e) == 0, "%s", e.msg);
    /* zero parameters */
    ck_assert_int_eq(optim_init(&s, &c, 0, &e), -1);
    ck_assert_msg(strstr(e.msg, "0 parameters"), "%s", e.msg);
    ck_assert(s.m == NULL && s.v == NULL);
}
END_TEST

START_TEST(test_init_moments) {
    const optim_kind kinds[] = {OPTIM_SGD, OPTIM_RMSPROP, OPTIM_ADAMW};
    int k;
    size_t i, n = 1000;
    for (k = 0; k < 3; k++) {
        optim_config c;
        optim_state s;
        optim_config_defaults(&c, kinds[k]);
        init_ok(&s, &c, n);
        ck_assert(s.n == n && s.step == 0 && s.cfg.kind == kinds[k]);
        ck_assert((s.m != NULL) == (kinds[k] == OPTIM_ADAMW));
        ck_assert((s.v != NULL) == (kinds[k] != OPTIM_SGD));
        for (i = 0; i < n; i++) {
            if (s.m) ck_assert(s.m[i] == 0.0f);
            if (s.v) ck_assert(s.v[i] == 0.0f);
        }
        optim_free(&s);
        ck_assert(s.m == NULL && s.v == NULL && s.n == 0);
        optim_free(&s); /* twice is harmless */
    }
}
END_TEST

/* ======================================================================== */
/* learning-rate schedule                                                    */
/* ======================================================================== */

/* |x - want| <= 4 DBL_EPSILON |want| (or x == want == 0) */
static void near_d(double x, double want, const char *what, long step) {
    ck_assert_msg(fabs(x - want) <= 4 * DBL_EPSILON * fabs(want), "%s at step %ld: %.17g, want %.17g",
                  what, step, x, want);
}

START_TEST(test_lr_warmup_constant) {
    optim_config c;
    optim_config_defaults(&c, OPTIM_RMSPROP); /* lr 1e-6, warm-up 150 */
    ck_assert(optim_lr(&c, 0) == 0.0);        /* update 0 of a warm-up has lr 0 */
    near_d(optim_lr(&c, 1), 1e-6 / 150, "warmup", 1);
    near_d(optim_lr(&c, 75), 0.5e-6, "warmup", 75);
    near_d(optim_lr(&c, 149), 1e-6 * 149 / 150, "warmup", 149);
    ck_assert(optim_lr(&c, 150) == 1e-6);
    ck_assert(optim_lr(&c, 151) == 1e-6);
    ck_assert(optim_lr(&c, 1000000000L) == 1e-6);
    ck_assert(optim_lr(&c, -1) == 0.0);
    c.warmup = 0;
    ck_assert(optim_lr(&c, 0) == 1e-6);
}
END_TEST

/* The cosine schedule with a floor: lr at the end of the warm-up, the mean of
 * lr and min_lr halfway, min_lr from total_steps on; min_lr outside [0, lr] is
 * refused. (min_lr 0 is test_lr_cosine: Hugging Face's values.) */
START_TEST(test_lr_cosine_floor) {
    optim_config c;
    dpo_err e;
    optim_config_defaults(&c, OPTIM_ADAMW);
    c.lr = 1e-3;
    c.min_lr = 1e-4;
    c.warmup = 10;
    c.schedule = OPTIM_COSINE;
    c.total_steps = 110;
    ck_assert_int_eq(optim_config_validate(&c, &e), 0);
    ck_assert(optim_lr(&c, 0) == 0.0);
    ck_assert(optim_lr(&c, 10) == 1e-3);
    near_d(optim_lr(&c, 60), 0.55e-3, "cosine floor", 60);              /* (1e-3 + 1e-4) / 2 */
    near_d(optim_lr(&c, 35), 1e-4 + 0.9e-3 * 0.85355339059327373, "cosine floor", 35);
    ck_assert(optim_lr(&c, 109) > 1e-4 && optim_lr(&c, 109) < 1e-4 + 3e-7);
    ck_assert(optim_lr(&c, 110) == 1e-4);
    ck_assert(optim_lr(&c, 100000) == 1e-4);
    c.min_lr = 2e-3;
    ck_assert_int_ne(optim_config_validate(&c, &e), 0);
    ck_assert_msg(strstr(e.msg, "min_lr = 0.002 must be in [0, lr = 0.001]"), "%s", e.msg);
    c.min_lr = -1e-9;
    ck_assert_int_ne(optim_config_validate(&c, &e), 0);
}
END_TEST

START_TEST(test_lr_cosine) {
    optim_config c;
    optim_config_defaults(&c, OPTIM_ADAMW);
    c.lr = 1e-3;
    c.warmup = 10;
    c.schedule = OPTIM_COSINE;
    c.total_steps = 110; /* 100 steps of decay */
    ck_assert(optim_lr(&c, 0) == 0.0);
    near_d(optim_lr(&c, 5), 0.5e-3, "warmup", 5);
    ck_assert(optim_lr(&c, 10) == 1e-3);                       /* cos(0) = 1 */
    near_d(optim_lr(&c, 35), 0.85355339059327373e-3, "cosine", 35); /* (1 + cos(pi/4)) / 2 */
    near_d(optim_lr(&c, 60), 0.5e-3, "cosine", 60);            /* halfway: cos(pi/2) = 0 */
    near_d(optim_lr(&c, 85), 0.14644660940672624e-3, "cosine", 85); /* (1 + cos(3pi/4)) / 2 */
    near_d(optim_lr(&c, 109), 1e-3 * 0.5 * (1 + cos(PI_D * 99 / 100)), "cosine", 109);
    ck_assert(optim_lr(&c, 109) > 0.0 && optim_lr(&c, 109) < 3e-7); /* 1e-3 * 2.467e-4 */
    ck_assert(optim_lr(&c, 110) == 0.0);
    ck_assert(optim_lr(&c, 111) == 0.0);
    ck_assert(optim_lr(&c, 100000) == 0.0);
    /* no warm-up */
    c.warmup = 0;
    c.total_steps = 4;
    ck_assert(optim_lr(&c, 0) == 1e-3);
    near_d(optim_lr(&c, 2), 0.5e-3, "cosine", 2);
    ck_assert(optim_lr(&c, 4) == 0.0);
    /* warm-up ending exactly at total_steps: the decay has no room */
    c.warmup = 5;
    c.total_steps = 5;
    near_d(optim_lr(&c, 4), 0.8e-3, "warmup", 4);
    ck_assert(optim_lr(&c, 5) == 0.0);
}
END_TEST

/* The schedule, re-implemented here from Hugging Face's definition. */
static double ref_lr(const optim_config *c, long t) {
    if (t < c->warmup) return c->lr * (double)t / (double)c->warmup;
    if (c->schedule == OPTIM_CONSTANT) return c->lr;
    if (t >= c->total_steps) return 0.0;
    {
        long span = c->total_steps - c->warmup > 1 ? c->total_steps - c->warmup : 1;
        return c->lr * 0.5 * (1.0 + cos(PI_D * (double)(t - c->warmup) / (double)span));
    }
}

/* ======================================================================== */
/* gradient norm                                                             */
/* ======================================================================== */

static double ref_sumsq(const float *g, size_t n) {
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return s;
}

START_TEST(test_grad_norm_small) {
    float g[4] = {3.0f, 4.0f, 0.0f, 0.0f};
    float big = 3e38f;
    float huge[4];
    ck_assert(optim_grad_norm(g, 0) == 0.0);
    ck_assert(optim_grad_norm(g, 2) == 5.0);
    ck_assert(optim_grad_norm(g, 4) == 5.0);
    g[0] = -3.0f;
    ck_assert(optim_grad_norm(g, 2) == 5.0);
    /* no overflow: the sum of squares is in double (4 x^2 is exact, its root 2 |x|) */
    huge[0] = huge[1] = huge[2] = big;
    huge[3] = -big;
    ck_assert(optim_grad_norm(huge, 4) == 2.0 * (double)big);
    g[1] = NAN;
    ck_assert(isnan(optim_grad_norm(g, 4)));
    g[1] = -INFINITY;
    ck_assert(isinf(optim_grad_norm(g, 4)));
}
END_TEST

/* n = 10^6 + 3: many chunks and a ragged last one */
START_TEST(test_grad_norm_large_and_threads) {
    const size_t n = 1000003;
    float *g = alloc_floats(n);
    util_rng r;
    size_t i, lens[] = {1, 7, 8, 9, 16383, 16384, 16385};
    int saved = util_threads(), k;
    double want, got1, got2, one_thread[7], two_threads[7];
    util_rng_seed(&r, 11);
    /* magnitudes spread over 8 decades */
    for (i = 0; i < n; i++)
        g[i] = (float)((util_rng_uniform(&r) - 0.5) * pow(10.0, 8.0 * util_rng_uniform(&r) - 6.0));
    want = ref_sumsq(g, n);
    util_set_threads(1);
    got1 = optim_grad_norm(g, n);
    for (k = 0; k < 7; k++) one_thread[k] = optim_grad_norm(g, lens[k]);
    util_set_threads(2);
    got2 = optim_grad_norm(g, n);
    for (k = 0; k < 7; k++) two_threads[k] = optim_grad_norm(g, lens[k]);
    util_set_threads(saved);
    /* both sums add n non-negative exact squares in double: each is within
     * (n - 1) DBL_EPSILON / 2 of the exact sum */
    ck_assert_msg(fabs(got1 * got1 - want) <= (double)n * DBL_EPSILON * want, "%.17g vs sqrt(%.17g)", got1,
                  want);
    ck_assert_msg(same_bits(&got1, &got2, sizeof got1), "1 thread %.17g, 2 threads %.17g", got1, got2);
    ck_assert(same_bits(one_thread, two_threads, 7 * sizeof(double)));
    for (k = 0; k < 7; k++) {
        double w = ref_sumsq(g, lens[k]);
        ck_assert_msg(fabs(one_thread[k] * one_thread[k] - w) <= (double)(lens[k] + 2) * DBL_EPSILON * w,
                      "n = %zu: %.17g vs sqrt(%.17g)", lens[k], one_thread[k], w);
    }
    free(g);
    {
        /* more than one group of chunks: optim.c sums 2^24 elements per group
         * (a fast pattern fills them: this is 64 MiB) */
        const size_t big = ((size_t)1 << 24) + 5;
        float *h = alloc_floats(big);
        double a, b;
        for (i = 0; i < big; i++) h[i] = (float)((double)((i * 2654435761u) % 1000003u) * 1e-6 - 0.5);
        util_set_threads(1);
        a = optim_grad_norm(h, big);
        util_set_threads(2);
        b = optim_grad_norm(h, big);
        util_set_threads(saved);
        want = ref_sumsq(h, big);
        ck_assert(same_bits(&a, &b, sizeof a));
        ck_assert_msg(fabs(a * a - want) <= (double)big * DBL_EPSILON * want, "%.17g", a);
        free(h);
    }
}
END_TEST

/* ======================================================================== */
/* literal values: 3 elements, 3 steps (see the top of this file)            */
/* ======================================================================== */

static const float lit_p0[3] = {0.5f, -1.25f, 2.0f};
static const float lit_g[3][3] = {{0.1f, -0.2f, 0.3f}, {-0.05f, 0.4f, 0.25f}, {0.2f, 0.1f, -0.35f}};

static const double lit_sgd_p[3][3] = {
    {0.48999999999999999, -1.23, 1.97},
    {0.495, -1.27, 1.9450000000000001},
    {0.47499999999999998, -1.28, 1.98},
};
static const double lit_rmsprop_p[3][3] = {
    {0.40000006666662224, -1.1500000307692213, 1.900000019999996},
    {0.40668532046508316, -1.2161194768176413, 1.8337502944751369},
    {0.32163475381186801, -1.2110866736176924, 1.8581997499189249},
};
static const double lit_rmsprop_v[3] = {0.00080072592185421424, 0.0018440288704629233,
                                        0.0046445288255401711};
static const double lit_adamw_p[3][3] = {
    {0.48950000099999991, -1.2387500005000001, 1.9880000003333334},
    {0.48634713093933907, -1.2411722856541039, 1.9761002719460945},
    {0.47927966830319879, -1.2440876252102298, 1.972686097467488},
};
static const double lit_adamw_m[3] = {0.023599999999999996, 0.029799999999999993, 0.011800000000000005};
static const double lit_adamw_v[3] = {5.2477510000000055e-05, 0.00020976004000000022,
                                      0.00027475759000000018};

/* float32 results of a few operations on short sums: within 8 float ulps */
static void near_lit(float x, double want, const char *what, int step, int i) {
    ck_assert_msg(fabs((double)x - want) <= 8 * FLT_EPSILON * fabs(want), "%s step %d [%d]: %.9g, want %.17g",
                  what, step, i, (double)x, want);
}

static void run_literal(optim_kind kind, double lr, double wd, const double want_p[3][3],
                        const double *want_m, const double *want_v) {
    optim_config c = plain_config(kind, lr, wd);
    optim_state s;
    float p[3], g[3];
    int t, i;
    init_ok(&s, &c, 3);
    memcpy(p, lit_p0, sizeof p);
    for (t = 0; t < 3; t++) {
        double norm;
        memcpy(g, lit_g[t], sizeof g);
        norm = optim_step(&s, p, g);
        ck_assert(norm == sqrt(ref_sumsq(lit_g[t], 3)));
        ck_assert(same_bits(g, lit_g[t], sizeof g)); /* clipping is off: grads untouched */
        ck_assert_int_eq(s.step, t + 1);
        for (i = 0; i < 3; i++) near_lit(p[i], want_p[t][i], optim_kind_name(kind), t + 1, i);
    }
    for (i = 0; i < 3; i++) {
        if (want_m) near_lit(s.m[i], want_m[i], "m", 3, i);
        if (want_v) near_lit(s.v[i], want_v[i], "v", 3, i);
    }
    optim_free(&s);
}

START_TEST(test_literal_sgd) { run_literal(OPTIM_SGD, 0.1, 0.0, lit_sgd_p, NULL, NULL); }
END_TEST

START_TEST(test_literal_rmsprop) {
    run_literal(OPTIM_RMSPROP, 0.01, 0.1, lit_rmsprop_p, NULL, lit_rmsprop_v);
}
END_TEST

START_TEST(test_literal_adamw) {
    run_literal(OPTIM_ADAMW, 0.01, 0.1, lit_adamw_p, lit_adamw_m, lit_adamw_v);
}
END_TEST

/* ======================================================================== */
/* step by step against a float64 implementation                            */
/* ======================================================================== */

/* One update of the float64 reference from the float state before it (p, m, v)
 * and the gradient as optim_step used it (after clipping), compared with the
 * float state after it (p1, m1, v1). The bounds: each float operation rounds by
 * at most u = FLT_EPSILON / 2 relative, and each coefficient is rounded to
 * float once; a chain of k operations over terms of total magnitude S is then
 * within about k u S of the exact value. S is built from absolute values, so
 * cancellation cannot hide behind it. */
static void check_update(const optim_config *c, long t, size_t n, const float *p, const float *m,
                         const float *v, const float *g, const float *p1, const float *m1, const float *v1) {
    const double lr = ref_lr(c, t), wd = c->weight_decay, eps = c->eps, E = FLT_EPSILON;
    size_t i;
    for (i = 0; i < n; i++) {
        const double pi = p[i], gi = g[i];
        double want_p, bound_p;
        if (c->kind == OPTIM_SGD) {
            /* p <- p - lr g */
            want_p = pi - lr * gi;
            bound_p = 2 * E * (fabs(pi) + lr * fabs(gi));
        } else if (c->kind == OPTIM_RMSPROP) {
            /* g' = g + wd p;  v <- alpha v + (1 - alpha) g'^2;  p <- p - lr g' / (sqrt(v) + eps) */
            const double gp = gi + wd * pi, G = fabs(gi) + wd * fabs(pi);
            const double want_v = c->alpha * v[i] + (1 - c->alpha) * gp * gp;
            const double V = c->alpha * v[i] + (1 - c->alpha) * G * G;
            want_p = pi - lr * gp / (sqrt(want_v) + eps);
            bound_p = 8 * E * (fabs(pi) + lr * G / (sqrt(want_v) + eps) * (V / want_v));
            ck_assert_msg(fabs(v1[i] - want_v) <= 4 * E * V, "rmsprop v[%zu] step %ld: %.9g want %.17g", i,
                          t, (double)v1[i], want_v);
        } else {
            /* p <- p (1 - lr wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
             * p <- p - (lr / (1 - b1^t')) m / (sqrt(v) / sqrt(1 - b2^t') + eps),  t' = t + 1 */
            const double b1 = c->beta1, b2 = c->beta2, tt = (double)(t + 1);
            const double pd = pi * (1 - lr * wd);
            const double want_m = b1 * m[i] + (1 - b1) * gi, M = b1 * fabs(m[i]) + (1 - b1) * fabs(gi);
            const double want_v = b2 * v[i] + (1 - b2) * gi * gi;
            const double denom = sqrt(want_v) / sqrt(1 - pow(b2, tt)) + eps;
            const double step_size = lr / (1 - pow(b1, tt));
            want_p = pd - step_size * want_m / denom;
            bound_p = 8 * E * (fabs(pd) + step_size * M / denom);
            ck_assert_msg(fabs(m1[i] - want_m) <= 4 * E * M, "adamw m[%zu] step %ld: %.9g want %.17g", i, t,
                          (double)m1[i], want_m);
            ck_assert_msg(fabs(v1[i] - want_v) <= 4 * E * want_v, "adamw v[%zu] step %ld: %.9g want %.17g",
                          i, t, (double)v1[i], want_v);
        }
        ck_assert_msg(fabs(p1[i] - want_p) <= bound_p, "%s p[%zu] step %ld: %.9g want %.17g (bound %.3g)",
                      optim_kind_name(c->kind), i, t, (double)p1[i], want_p, bound_p);
    }
}

/* 6 steps of a warm-up (2) + cosine (to 6) schedule on 1000 parameters, with
 * gradients alternately above the clipping limit (norm ~18) and below it (~1.8) */
static void run_reference(optim_kind kind, double lr, double wd) {
    const size_t n = 1000;
    optim_config c = plain_config(kind, lr, wd);
    optim_state s;
    util_rng r;
    float *p = alloc_floats(n), *g = alloc_floats(n);
    long t;
    size_t i;
    c.warmup = 2;
    c.schedule = OPTIM_COSINE;
    c.total_steps = 6;
    c.grad_clip = 10.0;
    init_ok(&s, &c, n);
    util_rng_seed(&r, 5 + (uint64_t)kind);
    fill_uniform(p, n, &r, -1.0, 1.0);
    for (t = 0; t < 6; t++) {
        float *p0 = dup_floats(p, n), *g0, *m0 = s.m ? dup_floats(s.m, n) : NULL,
              *v0 = s.v ? dup_floats(s.v, n) : NULL;
        double norm, want_norm, scale = 1.0;
        fill_uniform(g, n, &r, t % 2 ? -0.1 : -1.0, t % 2 ? 0.1 : 1.0);
        g0 = dup_floats(g, n);
        want_norm = sqrt(ref_sumsq(g, n));
        norm = optim_step(&s, p, g);
        ck_assert_int_eq(s.step, t + 1);
        ck_assert_msg(fabs(norm - want_norm) <= (double)n * DBL_EPSILON * want_norm, "norm %.17g vs %.17g",
                      norm, want_norm);
        /* clipping: g <- g * clip / (norm + 1e-6) when norm > clip */
        if (want_norm > c.grad_clip) {
            ck_assert(t % 2 == 0);
            scale = c.grad_clip / (want_norm + 1e-6);
        } else {
            ck_assert(t % 2 == 1);
        }
        for (i = 0; i < n; i++)
            ck_assert_msg(fabs(g[i] - g0[i] * scale) <= 2 * FLT_EPSILON * fabs(g0[i] * scale),
                          "clipped g[%zu] = %.9g, want %.17g", i, (double)g[i], g0[i] * scale);
        if (t % 2 == 1) ck_assert(same_bits(g, g0, n * sizeof(float)));
        check_update(&c, t, n, p0, m0, v0, g, p, s.m, s.v);
        free(p0);
        free(g0);
        free(m0);
        free(v0);
    }
    optim_free(&s);
    free(p);
    free(g);
}

START_TEST(test_reference_sgd) { run_reference(OPTIM_SGD, 0.05, 0.0); }
END_TEST

START_TEST(test_reference_rmsprop) { run_reference(OPTIM_RMSPROP, 1e-3, 0.01); }
END_TEST

START_TEST(test_reference_adamw) { run_reference(OPTIM_ADAMW, 1e-2, 0.1); }
END_TEST

/* ======================================================================== */
/* clipping and non-finite gradients                                         */
/* ======================================================================== */

START_TEST(test_clipping) {
    optim_config c = plain_config(OPTIM_SGD, 1.0, 0.0); /* p <- p - g shows the grads used */
    optim_state s;
    float p[2], g[2];
    const double scale = 1.0 / (5.0 + 1e-6);
    double norm;
    init_ok(&s, &c, 2);

    /* above: norm 5 > clip 1, g <- g / (5 + 1e-6) */
    s.cfg.grad_clip = 1.0;
    p[0] = p[1] = 0.0f;
    g[0] = 3.0f;
    g[1] = -4.0f;
    norm = optim_step(&s, p, g);
    ck_assert(norm == 5.0); /* the norm before clipping */
    ck_assert_msg(fabs(g[0] - 3.0 * scale) <= FLT_EPSILON * 3.0 * scale, "%.9g", (double)g[0]);
    ck_assert_msg(fabs(g[1] + 4.0 * scale) <= FLT_EPSILON * 4.0 * scale, "%.9g", (double)g[1]);
    ck_assert(p[0] == -g[0] && p[1] == -g[1]);
    ck_assert_msg(fabs(optim_grad_norm(g, 2) - 5.0 * scale) <= 2 * FLT_EPSILON, "%.17g", optim_grad_norm(g, 2));

    /* below (norm 5 < clip 10) and exactly at the limit (5 = 5): untouched */
    s.cfg.grad_clip = 10.0;
    p[0] = p[1] = 0.0f;
    g[0] = 3.0f;
    g[1] = -4.0f;
    ck_assert(optim_step(&s, p, g) == 5.0);
    ck_assert(g[0] == 3.0f && g[1] == -4.0f && p[0] == -3.0f && p[1] == 4.0f);
    s.cfg.grad_clip = 5.0;
    ck_assert(optim_step(&s, p, g) == 5.0);
    ck_assert(g[0] == 3.0f && g[1] == -4.0f);

    /* off: clip 0 leaves even a huge gradient alone */
    s.cfg.grad_clip = 0.0;
    p[0] = p[1] = 0.0f;
    g[0] = 3e20f;
    g[1] = -4e20f;
    norm = optim_step(&s, p, g);
    ck_assert_msg(fabs(norm - 5e20) <= 1e-6 * 5e20, "%g", norm);
    ck_assert(g[0] == 3e20f && g[1] == -4e20f && p[0] == -3e20f && p[1] == 4e20f);
    ck_assert_int_eq(s.step, 4);
    optim_free(&s);
}
END_TEST

START_TEST(test_nonfinite_touches_nothing) {
    const optim_kind kinds[] = {OPTIM_SGD, OPTIM_RMSPROP, OPTIM_ADAMW};
    const float bad[] = {NAN, INFINITY, -INFINITY};
    int k, b;
    for (k = 0; k < 3; k++) {
        for (b = 0; b < 3; b++) {
            optim_config c = plain_config(kinds[k], 0.1, 0.0);
            optim_state s;
            float p[5] = {1, 2, 3, 4, 5}, g[5] = {0.5f, -0.5f, 0.25f, 1, 2}, p0[5], g0[5], m0[5], v0[5];
            double norm;
            init_ok(&s, &c, 5);
            optim_step(&s, p, g); /* one good step so the moments are not zero */
            g[3] = bad[b];
            memcpy(p0, p, sizeof p);
            memcpy(g0, g, sizeof g);
            if (s.m) memcpy(m0, s.m, sizeof m0);
            if (s.v) memcpy(v0, s.v, sizeof v0);
            norm = optim_step(&s, p, g);
            ck_assert_msg(!isfinite(norm), "%s: norm %g", optim_kind_name(kinds[k]), norm);
            ck_assert(b == 0 ? isnan(norm) : isinf(norm));
            ck_assert_int_eq(s.step, 1);
            ck_assert(same_bits(p, p0, sizeof p) && same_bits(g, g0, sizeof g));
            if (s.m) ck_assert(same_bits(s.m, m0, sizeof m0));
            if (s.v) ck_assert(same_bits(s.v, v0, sizeof v0));
            optim_free(&s);
        }
    }
}
END_TEST

/* AdamW's first update in a warm-up (150 updates) has lr 0: the parameters
 * stay, the moments move; the second has lr / 150 */
START_TEST(test_warmup_first_update) {
    optim_config c;
    optim_state s;
    float p[2] = {1.5f, -2.0f}, g[2] = {0.5f, 0.25f};
    optim_config_defaults(&c, OPTIM_ADAMW);
    c.lr = 0.15;
    c.weight_decay = 0.01;
    init_ok(&s, &c, 2);
    optim_step(&s, p, g);
    ck_assert(p[0] == 1.5f && p[1] == -2.0f);
    ck_assert(s.m[0] != 0.0f && s.v[1] != 0.0f && s.step == 1);
    optim_step(&s, p, g); /* lr 0.15 / 150 now */
    ck_assert(p[0] < 1.5f && p[1] < -2.0f);
    optim_free(&s);
}
END_TEST

/* ======================================================================== */
/* thread-count independence                                                 */
/* ======================================================================== */

START_TEST(test_step_threads) {
    const size_t n = 1000003;
    const optim_kind kinds[] = {OPTIM_SGD, OPTIM_RMSPROP, OPTIM_ADAMW};
    float *p0 = alloc_floats(n), *g0[2], *p[2], *g[2];
    optim_state s[2];
    util_rng r;
    int saved = util_threads(), k, th, t;
    util_rng_seed(&r, 77);
    fill_uniform(p0, n, &r, -1.0, 1.0);
    for (t = 0; t < 2; t++) {
        g0[t] = alloc_floats(n);
        fill_uniform(g0[t], n, &r, -0.1, 0.1); /* norm ~ 58: clipped at 10 */
    }
    for (k = 0; k < 3; k++) {
        optim_config c = plain_config(kinds[k], 1e-3, kinds[k] == OPTIM_SGD ? 0.0 : 0.01);
        double norms[2][2];
        c.grad_clip = 10.0;
        c.warmup = 1;
        for (th = 0; th < 2; th++) {
            init_ok(&s[th], &c, n);
            p[th] = dup_floats(p0, n);
            util_set_threads(th + 1);
            for (t = 0; t < 3; t++) {
                g[th] = dup_floats(g0[t % 2], n);
                norms[th][t % 2] = optim_step(&s[th], p[th], g[th]);
                if (t < 2) free(g[th]);
            }
            util_set_threads(saved);
        }
        ck_assert_msg(same_bits(norms[0], norms[1], sizeof norms[0]), "%s: norms differ",
                      optim_kind_name(kinds[k]));
        ck_assert_msg(same_bits(p[0], p[1], n * sizeof(float)), "%s: params differ", optim_kind_name(kinds[k]));
        ck_assert_msg(same_bits(g[0], g[1], n * sizeof(float)), "%s: clipped grads differ",
                      optim_kind_name(kinds[k]));
        if (s[0].m) ck_assert(same_bits(s[0].m, s[1].m, n * sizeof(float)));
        if (s[0].v) ck_assert(same_bits(s[0].v, s[1].v, n * sizeof(float)));
        ck_assert(!same_bits(p[0], p0, n * sizeof(float))); /* the steps did something */
        for (th = 0; th < 2; th++) {
            optim_free(&s[th]);
            free(p[th]);
            free(g[th]);
        }
    }
    free(p0);
    free(g0[0]);
    free(g0[1]);
}
END_TEST

/* ======================================================================== */
/* checkpoint                                                                */
/* ======================================================================== */

/* a state of kind with a few updates behind it */
static void make_trained(optim_state *s, optim_kind kind, size_t n, uint64_t seed) {
    optim_config c = plain_config(kind, 1e-2, kind == OPTIM_SGD ? 0.0 : 0.01);
    float *p = alloc_floats(n), *g = alloc_floats(n);
    util_rng r;
    int t;
    util_rng_seed(&r, seed);
    fill_uniform(p, n, &r, -1.0, 1.0);
    init_ok(s, &c, n);
    for (t = 0; t < 3; t++) {
        fill_uniform(g, n, &r, -1.0, 1.0);
        optim_step(s, p, g);
    }
    free(p);
    free(g);
}

static void save_ok(const optim_state *s, const char *path) {
    dpo_err e;
    memset(&e, 0, sizeof e);
    ck_assert_msg(optim_save(s, path, &e) == 0, "optim_save: %s", e.msg);
}

/* number of entries in the test's temporary directory */
static int count_entries(void) {
    DIR *d = opendir(tmp_root);
    struct dirent *ent;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((ent = readdir(d)) != NULL)
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

START_TEST(test_save_load_roundtrip) {
    const optim_kind kinds[] = {OPTIM_SGD, OPTIM_RMSPROP, OPTIM_ADAMW};
    const size_t n = 70001; /* several write chunks */
    char path[256];
    int k;
    path_in(path, sizeof path, "optim.safetensors");
    for (k = 0; k < 3; k++) {
        optim_state a, b;
        dpo_err e;
        float *pa = alloc_floats(n), *pb, *ga = alloc_floats(n), *gb;
        util_rng r;
        memset(&e, 0, sizeof e);
        make_trained(&a, kinds[k], n, 100 + (uint64_t)k);
        save_ok(&a, path);
        ck_assert_int_eq(count_entries(), 1); /* no temporary left behind */
        init_ok(&b, &a.cfg, n);
        ck_assert_msg(optim_load(&b, path, &e) == 0, "%s: optim_load: %s", optim_kind_name(kinds[k]), e.msg);
        ck_assert_int_eq(b.step, 3);
        if (a.m) ck_assert(same_bits(a.m, b.m, n * sizeof(float)));
        if (a.v) ck_assert(same_bits(a.v, b.v, n * sizeof(float)));
        /* the next update is the same from the saved and the loaded state */
        util_rng_seed(&r, 9);
        fill_uniform(pa, n, &r, -1.0, 1.0);
        fill_uniform(ga, n, &r, -1.0, 1.0);
        pb = dup_floats(pa, n);
        gb = dup_floats(ga, n);
        optim_step(&a, pa, ga);
        optim_step(&b, pb, gb);
        ck_assert(same_bits(pa, pb, n * sizeof(float)));
        optim_free(&a);
        optim_free(&b);
        free(pa);
        free(pb);
        free(ga);
        free(gb);
    }
}
END_TEST

/* steps beyond 2^24 (where a float stops holding every integer) are exact */
START_TEST(test_save_load_large_step) {
    const long steps[] = {0, 16777215L, 16777216L, 16777217L, (1L << 40) + 12345, (1L << 48) - 1};
    char path[256];
    size_t i;
    path_in(path, sizeof path, "optim.safetensors");
    for (i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        optim_state a, b;
        dpo_err e;
        memset(&e, 0, sizeof e);
        make_trained(&a, OPTIM_RMSPROP, 5, 1);
        a.step = steps[i];
        save_ok(&a, path);
        init_ok(&b, &a.cfg, 5);
        ck_assert_msg(optim_load(&b, path, &e) == 0, "%s", e.msg);
        ck_assert_msg(b.step == steps[i], "step %ld came back as %ld", steps[i], b.step);
        optim_free(&b);
        optim_free(&a);
    }
    {
        optim_state a;
        dpo_err e;
        memset(&e, 0, sizeof e);
        make_trained(&a, OPTIM_SGD, 5, 1);
        a.step = 1L << 48;
        ck_assert_int_eq(optim_save(&a, path, &e), -1);
        ck_assert_msg(strstr(e.msg, "step 281474976710656 cannot be stored"), "%s", e.msg);
        optim_free(&a);
    }
}
END_TEST

/* optim_load must fail with a message containing phrase, leaving s as it was */
static void load_refused(optim_state *s, const char *path, const char *phrase, int line) {
    dpo_err e;
    float *m0 = s->m ? dup_floats(s->m, s->n) : NULL, *v0 = s->v ? dup_floats(s->v, s->n) : NULL;
    long step0 = s->step;
    memset(&e, 0, sizeof e);
    ck_assert_msg(optim_load(s, path, &e) == -1, "line %d: loaded", line);
    ck_assert_msg(strstr(e.msg, phrase) != NULL, "line %d: message \"%s\" lacks \"%s\"", line, e.msg, phrase);
    ck_assert_msg(strstr(e.msg, path) != NULL, "line %d: message \"%s\" does not name the file", line, e.msg);
    ck_assert_int_eq(s->step, step0);
    if (m0) ck_assert(same_bits(s->m, m0, s->n * sizeof(float)));
    if (v0) ck_assert(same_bits(s->v, v0, s->n * sizeof(float)));
    free(m0);
    free(v0);
}

START_TEST(test_load_wrong_kind_or_n) {
    const optim_kind kinds[] = {OPTIM_SGD, OPTIM_RMSPROP, OPTIM_ADAMW};
    char path[256], phrase[128];
    int i, j;
    path_in(path, sizeof path, "optim.safetensors");
    for (i = 0; i < 3; i++) {
        optim_state a;
        make_trained(&a, kinds[i], 100, 3);
        save_ok(&a, path);
        for (j = 0; j < 3; j++) {
            optim_state b;
            if (j == i) continue;
            make_trained(&b, kinds[j], 100, 4);
            snprintf(phrase, sizeof phrase, "holds the state of %s, but the optimizer is %s",
                     optim_kind_name(kinds[i]), optim_kind_name(kinds[j]));
            load_refused(&b, path, phrase, __LINE__);
            optim_free(&b);
        }
        {
            optim_state b;
            make_trained(&b, kinds[i], 101, 4);
            load_refused(&b, path, "holds the state of 100 parameters, but the model has 101", __LINE__);
            optim_free(&b);
            make_trained(&b, kinds[i], 99, 4);
            load_refused(&b, path, "holds the state of 100 parameters, but the model has 99", __LINE__);
            optim_free(&b);
        }
        optim_free(&a);
    }
}
END_TEST

/* a hand-made state file: kind, n and step as given, then the named moments */
typedef struct {
    const char *name;
    const float *data;
    size_t len;
} vec;

static void write_vectors(const char *path, const vec *vs, size_t count) {
    st_out_tensor ts[8];
    dpo_err e;
    size_t i;
    memset(&e, 0, sizeof e);
    memset(ts, 0, sizeof ts);
    ck_assert(count <= 8);
    for (i = 0; i < count; i++) {
        ts[i].name = vs[i].name;
        ts[i].data = vs[i].data;
        ts[i].ndim = 1;
        ts[i].shape[0] = vs[i].len;
    }
    ck_assert_msg(st_write_f32(path, ts, count, &e) == 0, "%s", e.msg);
}

START_TEST(test_load_hostile) {
    const float k_adamw[1] = {3}, k_bad[1] = {7}, k_half[1] = {2.5f}, n4[2] = {4, 0}, n_frac[2] = {4.5f, 0},
                n_big[2] = {4, 16777216.0f}, step7[2] = {7, 0}, step_neg[2] = {-1, 0},
                step_frac[2] = {7, 0.5f}, step_nan[2] = {NAN, 0}, step3[3] = {7, 0, 0};
    const float m4[4] = {0.1f, -0.2f, 0.3f, 0.0f}, v4[4] = {1e-3f, 2e-3f, 0.0f, 4e-3f},
                m_nan[4] = {0.1f, NAN, 0.3f, 0.0f}, v_neg[4] = {1e-3f, 2e-3f, -1e-9f, 4e-3f},
                v_inf[4] = {1e-3f, INFINITY, 0.0f, 4e-3f}, v5[5] = {0};
    char path[256], missing[256];
    optim_state s;
    dpo_err e;
    memset(&e, 0, sizeof e);
    path_in(path, sizeof path, "state.safetensors");
    path_in(missing, sizeof missing, "nope.safetensors");
    make_trained(&s, OPTIM_ADAMW, 4, 8);

    /* the good file loads; every variant below is refused */
    {
        const vec vs[] = {{"kind", k_adamw, 1}, {"n", n4, 2}, {"step", step7, 2}, {"m", m4, 4}, {"v", v4, 4}};
        optim_state t;
        write_vectors(path, vs, 5);
        make_trained(&t, OPTIM_ADAMW, 4, 8);
        ck_assert_msg(optim_load(&t, path, &e) == 0, "%s", e.msg);
        ck_assert(t.step == 7 && same_bits(t.m, m4, sizeof m4) && same_bits(t.v, v4, sizeof v4));
        optim_free(&t);
    }
    load_refused(&s, missing, "cannot open", __LINE__);
    {
        const vec vs[] = {{"transformer.wte.weight", m4, 4}};
        write_vectors(path, vs, 1);
        load_refused(&s, path, "not an optimizer state file (no tensor \"kind\")", __LINE__);
    }
    {
        const vec vs[] = {{"kind", k_bad, 1}, {"n", n4, 2}, {"step", step7, 2}, {"m", m4, 4}, {"v", v4, 4}};
        write_vectors(path, vs, 5);
        load_refused(&s, path, "tensor \"kind\" = 7 is not a known optimizer", __LINE__);
    }
    {
        const vec vs[] = {{"kind", k_half, 1}, {"n", n4, 2}, {"step", step7, 2}, {"m", m4, 4}, {"v", v4, 4}};
        write_vectors(path, vs, 5);
        load_refused(&s, path, "tensor \"kind\" = 2.5 is not a known optimizer", __LINE__);
    }
    {
        const vec vs[] = {{"kind", n4, 2}, {"n", n4, 2}, {"step", step7, 2}, {"m", m4, 4}, {"v", v4, 4}};
        write_vectors(path, vs, 5);
        load_refused(&s, path, "tensor \"kind\" must have shape [1]", __LINE__);
    }
    {
        const vec vs[] = {{"kind", k_adamw, 1}, {"step", step7, 2}, {"m", m4, 4}, {"v", v4, 4}};
        write_vectors(path, vs, 4);
        load_refused(&s, path, "no tensor \"n\"", __LINE__);
    }
    {
        const vec vs[] = {{"kind", k_adamw, 1}, {"n", n_frac, 2}, {"step", step7, 2}, {"m", m4, 4}, {"v", v4, 4}};
        write_vectors(path, vs, 5);
        load_refused(&s, path, "tensor \"n\" is not two integers in [0, 2^24)", __LINE__);
    }
    {
        const vec vs[] = {{"kind", k_adamw, 1}, {"n", n_big, 2}, {"step", step7, 2}, {"m", m4, 4}, {"v", v4, 4}};
        write_vectors(path, vs, 5);
        load_refused(&s, path, "tensor \"n\" is not two integers", __LINE__);
    }
    {
        const float *bad_steps[] = {step_neg, step_frac, step_nan};
        int i;
        for (i = 0; i < 3; i++) {
            const vec vs[] = {{"kind", k_adamw, 1}, {"n", n4, 2}, {"step", bad_steps[i], 2}, {"m", m4, 4},
                              {"v", v4, 4}};
            write_vectors(path, vs, 5);
            load_refused(&s, path, "tensor \"step\" is not two integers in [0, 2^24)", __LINE__);
        }
    }
    {
        const vec vs[] = {{"kind", k_adamw, 1}, {"n", n4, 2}, {"step", step3, 3}, {"m", m4, 4}, {"v", v4, 4}};
        write_vectors(path, vs, 5);
        load_refused(&s, path, "tensor \"step\" must have shape [2]", __LINE__);
    }
    {
        const vec vs[] = {{"kind", k_adamw, 1}, {"n", n4, 2}, {"step", step7, 2}, {"v", v4, 4}};
        write_vectors(path, vs, 4);
        load_refused(&s, path, "no tensor \"m\"", __LINE__);
    }
    {
        const vec vs[] = {{"kind", k_adamw, 1}, {"n", n4, 2}, {"step", step7, 2}, {"m", m4, 4}, {"v", v5, 5}};
        write_vectors(path, vs, 5);
        load_refused(&s, path, "tensor \"v\" must have shape [4]", __LINE__);
    }
    {
        const vec vs[] = {{"kind", k_adamw, 1}, {"n", n4, 2}, {"step", step7, 2},
                          {"m", m4, 4},         {"v", v4, 4}, {"extra", m4, 4}};
        write_vectors(path, vs, 6);
        load_refused(&s, path, "unexpected tensor \"extra\" in the state of adamw", __LINE__);
    }

    /* bad values inside the moments: found only after reading them into s,
     * which is then reset to its initial state */
    {
        const float *ms[] = {m_nan, m4, m4}, *vs_[] = {v4, v_neg, v_inf};
        const char *phrases[] = {"tensor \"m\"[1] = nan is not finite", "tensor \"v\"[2] = -1e-09 is not",
                                 "tensor \"v\"[1] = inf is not"};
        int i;
        size_t j;
        for (i = 0; i < 3; i++) {
            const vec vs[] = {{"kind", k_adamw, 1}, {"n", n4, 2}, {"step", step7, 2}, {"m", ms[i], 4},
                              {"v", vs_[i], 4}};
            write_vectors(path, vs, 5);
            memset(&e, 0, sizeof e);
            ck_assert_int_eq(optim_load(&s, path, &e), -1);
            ck_assert_msg(strstr(e.msg, phrases[i]) && strstr(e.msg, "reset to its initial values"), "%s",
                          e.msg);
            ck_assert_int_eq(s.step, 0);
            for (j = 0; j < 4; j++) ck_assert(s.m[j] == 0.0f && s.v[j] == 0.0f);
        }
    }
    optim_free(&s);
}
END_TEST

/* a tensor of another dtype (written byte by byte: st_write_f32 only writes F32) */
START_TEST(test_load_wrong_dtype) {
    static const char hdr[] = "{\"kind\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}";
    unsigned char buf[256];
    size_t hlen = sizeof hdr - 1, padded = (hlen + 7) / 8 * 8, k;
    char path[256];
    optim_state s;
    FILE *fp;
    path_in(path, sizeof path, "f16.safetensors");
    memset(buf, ' ', sizeof buf);
    for (k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)padded >> (8 * k));
    memcpy(buf + 8, hdr, hlen);
    buf[8 + padded] = 0x00; /* F16 3.0 = 0x4200 */
    buf[8 + padded + 1] = 0x42;
    fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert(fwrite(buf, 1, 8 + padded + 2, fp) == 8 + padded + 2);
    ck_assert(fclose(fp) == 0);
    make_trained(&s, OPTIM_ADAMW, 4, 8);
    load_refused(&s, path, "tensor \"kind\" has dtype F16, expected F32", __LINE__);
    optim_free(&s);
}
END_TEST

/* a zeroed (never initialised, or freed) state is neither saved nor loaded into */
START_TEST(test_save_load_uninitialised) {
    optim_state s;
    dpo_err e;
    char path[256];
    memset(&s, 0, sizeof s);
    memset(&e, 0, sizeof e);
    path_in(path, sizeof path, "x.safetensors");
    ck_assert_int_eq(optim_save(&s, path, &e), -1);
    ck_assert_msg(strstr(e.msg, "state to save is not initialised"), "%s", e.msg);
    ck_assert_int_eq(count_entries(), 0);
    make_trained(&s, OPTIM_RMSPROP, 4, 1);
    save_ok(&s, path);
    optim_free(&s);
    ck_assert_int_eq(optim_load(&s, path, &e), -1);
    ck_assert_msg(strstr(e.msg, "state to load into is not initialised"), "%s", e.msg);
}
END_TEST

/* ======================================================================== */

static Suite *make_suite(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_validate_rejects);
    tcase_add_test(tc, test_validate_cosine_and_unused_fields);
    tcase_add_test(tc, test_init_moments);
    tcase_add_test(tc, test_lr_warmup_constant);
    tcase_add_test(tc, test_lr_cosine);
    tcase_add_test(tc, test_lr_cosine_floor);
    tcase_add_test(tc, test_grad_norm_small);
    tcase_add_test(tc, test_grad_norm_large_and_threads);
    tcase_add_test(tc, test_literal_sgd);
    tcase_add_test(tc, test_literal_rmsprop);
    tcase_add_test(tc, test_literal_adamw);
    tcase_add_test(tc, test_reference_sgd);
    tcase_add_test(tc, test_reference_rmsprop);
    tcase_add_test(tc, test_reference_adamw);
    tcase_add_test(tc, test_clipping);
    tcase_add_test(tc, test_nonfinite_touches_nothing);
    tcase_add_test(tc, test_warmup_first_update);
    tcase_add_test(tc, test_step_threads);
    tcase_add_test(tc, test_save_load_roundtrip);
    tcase_add_test(tc, test_save_load_large_step);
    tcase_add_test(tc, test_load_wrong_kind_or_n);
    tcase_add_test(tc, test_load_hostile);
    tcase_add_test(tc, test_load_wrong_dtype);
    tcase_add_test(tc, test_save_load_uninitialised);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(make_suite()); }
