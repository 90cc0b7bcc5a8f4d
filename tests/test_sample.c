/* tests/test_sample.c - proves generation (sample.c) right, each part against
 * a reference written here independently, in double precision:
 *   1. the sampled distribution (temperature, then top-k, then top-p, as Hugging
 *      Face's logits warpers define them) keeps the same tokens as a brute-force
 *      sort of every token, with the same probabilities (1e-12 relative), on
 *      thousands of random logit vectors and the edge cases (k = 0, k >= V,
 *      p = 1, tiny p, T = 0, the extreme temperatures, ties);
 *   2. temperature 0 and top-k 1 are the argmax (lowest id on ties), on one row
 *      and over whole greedy generations (every token the argmax of a fresh
 *      pass over the sequence before it);
 *   3. draws follow the distribution: chi-square goodness of fit at p = 0.001
 *      over 40,000 draws of one next token (and 4,000 one-token generations
 *      through sample_run), with and without top-k/top-p; filtered tokens never
 *      appear; the inverse CDF at its exact boundaries;
 *   4. sample_run is deterministic: the same samples for batch sizes 1, 2, 7,
 *      64 and 1 or 2 threads; a sample depends only on (seed, prompt, index);
 *   5. the cached path's log q of every generated token sums to model_forward's
 *      log-probs over the final sequence (2^-23 relative: float rounding);
 *   6. the exact KL from a reference equals a brute-force sum over the
 *      vocabulary from full forward passes (their float rounding carried
 *      through, about 1e-6) and from the exact logits (1e-10), KL(pi || pi) is
 *      exactly 0, and the sampled-token estimate's mean converges to the exact
 *      KL's mean (within 4 standard errors);
 *   7. the edges: stops at max_new and at the context, bad prompts and
 *      filters refused, no prompts, an emit callback that stops the run. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "sample.h"
#include "testutil.h"
#include "util.h"

/* Check's ck_assert* record a mark point (a write to its message file) on
 * every call, even when the check passes; in loops over millions of values
 * that dominates the run time, so checks here fail through ck_abort_msg only. */
#define REQUIRE(cond, ...)                      \
    do {                                        \
        if (!(cond)) ck_abort_msg(__VA_ARGS__); \
    } while (0)
#define REQUIRE_TRUE(cond) REQUIRE(cond, "Assertion '%s' failed", #cond)

/* ======================================================================== */
/* helpers: models, passes over whole sequences                              */
/* ======================================================================== */

/* A model whose parameters are normal(0, std) (LayerNorm gains normal(1, std/2)):
 * std 0.4 gives logits of a few units, so next-token distributions are far from
 * uniform (GPT-2's own initialisation, std 0.02, gives nearly uniform ones). */
static void random_model(model *m, const model_config *cfg, uint64_t seed, double std) {
    dpo_err e;
    util_rng r;
    int n, i;
    REQUIRE(model_create(m, cfg, &e) == 0, "%s", e.msg);
    model_set_no_grad(m, 1);
    util_rng_seed(&r, seed);
    n = model_num_tensors(cfg);
    for (i = 0; i < n; i++) {
        model_tensor_info ti;
        size_t j;
        int gain;
        model_tensor(cfg, i, &ti);
        gain = ti.family == P_LN1W || ti.family == P_LN2W || ti.family == P_LNFW;
        for (j = 0; j < ti.numel; j++)
            m->params_mem[ti.offset + j] = (float)((gain ? 1.0 : 0.0) + (gain ? std / 2 : std) * util_rng_normal(&r));
    }
}

/* The logits (n, V) after each of the first n tokens of seq, in one call on a
 * fresh key-value cache (test_model proves every row bit-identical to a full
 * forward pass over the sequence). */
static float *prefill_logits(const model *m, const int *seq, int n) {
    int V = m->cfg.vocab_size;
    int *slots = calloc((size_t)n, sizeof(int));
    float *out = malloc((size_t)n * (size_t)V * sizeof(float));
    model_kv kv;
    dpo_err e;
    REQUIRE_TRUE(slots && out);
    REQUIRE(model_kv_create(&kv, &m->cfg, 1, n, &e) == 0, "%s", e.msg);
    REQUIRE(model_kv_forward(m, &kv, out, seq, slots, NULL, n, &e) == 0, "%s", e.msg);
    model_kv_free(&kv);
    free(slots);
    return out;
}

/* log p(v | seq[0..t]) for every position t < n and every token v, (n, V),
 * from model_forward alone: V copies of the sequence in one packed batch, copy v
 * with target v at every position. */
static float *forward_all_logp(model *m, const int *seq, int n) {
    int V = m->cfg.vocab_size, v, t;
    size_t N = (size_t)V * (size_t)n;
    int *tok = calloc(N, sizeof(int)), *tgt = calloc(N, sizeof(int)), *lens = calloc((size_t)V, sizeof(int));
    float *lp = malloc(N * sizeof(float)), *out = malloc(N * sizeof(float));
    dpo_err e;
    REQUIRE_TRUE(tok && tgt && lens && lp && out);
    for (v = 0; v < V; v++) {
        lens[v] = n;
        for (t = 0; t < n; t++) {
            tok[(size_t)v * n + t] = seq[t];
            tgt[(size_t)v * n + t] = v;
        }
    }
    REQUIRE(model_forward(m, lp, tok, tgt, lens, V, &e) == 0, "%s", e.msg);
    for (v = 0; v < V; v++)
        for (t = 0; t < n; t++) out[(size_t)t * V + v] = lp[(size_t)v * n + t];
    free(tok);
    free(tgt);
    free(lens);
    free(lp);
    return out;
}

static int argmax_lowest(const float *z, int V) {
    int v, best = 0;
    for (v = 1; v < V; v++)
        if (z[v] > z[best]) best = v;
    return best;
}

/* ======================================================================== */
/* the reference filter: sort every token, then Hugging Face's warpers       */
/* ======================================================================== */

typedef struct {
    float z;
    int id;
} ranked;

/* more likely first; equal logits: lower id first */
static int rank_cmp(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->z != y->z) return x->z > y->z ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The token of rank r (from 0) in the model's next-token ranking after seq (len):
 * the tests take their end-of-text from it so that a known share of samples
 * end with one. */
static int rank_token(const model *m, const int *seq, int len, int r) {
    int V = m->cfg.vocab_size, v, id;
    float *z = prefill_logits(m, seq, len);
    ranked *rk = malloc((size_t)V * sizeof *rk);
    REQUIRE_TRUE(rk != NULL && r < V);
    for (v = 0; v < V; v++) rk[v].z = z[(size_t)(len - 1) * V + v], rk[v].id = v;
    qsort(rk, (size_t)V, sizeof *rk, rank_cmp);
    id = rk[r].id;
    free(rk);
    free(z);
    return id;
}

/* The distribution sampled from, by brute force, in double:
 *   T = 0 or k = 1: all mass on the argmax (lowest id on ties);
 *   else p_v = softmax(z / T), computed as x_v = (z_v - z_max) / T (the
 *   subtraction of two floats is exact in double);
 *   top-k: the k first in the ranking (k = 0 or k >= V: all);
 *   top-p: renormalise the kept to r_i, keep the smallest prefix of the ranking
 *   with r_0 + ... + r_{m-1} >= p (TopPLogitsWarper: a token is removed when the
 *   mass of the tokens less likely than it, and it, is <= 1 - p);
 *   then q_v = p_v / sum_kept p_u, log q_v = x_v - log sum_kept exp(x_u).
 * q and logq (V) get 0 and -INFINITY for removed tokens. Returns the kept count;
 * *fragile = 1 when a top-p decision is within 1e-12 of p (rounding could
 * decide it either way). */
static int ref_filter(double *q, double *logq, const float *z, int V, const sample_filter *f, int *fragile) {
    ranked *rk = malloc((size_t)V * sizeof *rk);
    double *x = malloc((size_t)V * sizeof(double)), *p = malloc((size_t)V * sizeof(double));
    double sum = 0.0, kept_mass = 0.0, lk;
    int i, v, m;
    REQUIRE_TRUE(rk && x && p);
    *fragile = 0;
    for (v = 0; v < V; v++) {
        rk[v].z = z[v];
        rk[v].id = v;
        q[v] = 0.0;
        logq[v] = -INFINITY;
    }
    qsort(rk, (size_t)V, sizeof *rk, rank_cmp);
    if (f->temperature == 0.0 || f->top_k == 1) {
        q[rk[0].id] = 1.0;
        logq[rk[0].id] = 0.0;
        m = 1;
        goto done;
    }
    for (i = 0; i < V; i++) {
        x[i] = ((double)rk[i].z - (double)rk[0].z) / f->temperature;
        p[i] = exp(x[i]);
        sum += p[i];
    }
    for (i = 0; i < V; i++) p[i] /= sum;
    m = f->top_k > 0 && f->top_k < V ? f->top_k : V;
    if (f->top_p < 1.0) {
        double mass = 0.0, cum = 0.0;
        for (i = 0; i < m; i++) mass += p[i];
        for (i = 0; i < m; i++) {
            cum += p[i] / mass;
            if (fabs(cum - f->top_p) < 1e-12) *fragile = 1;
            if (cum >= f->top_p) break;
        }
        if (i < m) m = i + 1;
    }
    for (i = 0; i < m; i++) kept_mass += exp(x[i]);
    lk = log(kept_mass);
    for (i = 0; i < m; i++) {
        logq[rk[i].id] = x[i] - lk;
        q[rk[i].id] = exp(x[i] - lk);
    }
done:
    free(rk);
    free(x);
    free(p);
    return m;
}

/* ======================================================================== */
/* 1, 2. the distribution against the reference                              */
/* ======================================================================== */

/* Compare sample_distribution with ref_filter on one row; returns 1 when
 * compared, 0 when skipped as fragile. Probabilities must agree within
 *   1e-12 + 16 eps max|z| / T  (relative)
 * where the second term is the rounding of z / T in double, which any
 * implementation that divides before subtracting the maximum carries (it is
 * below 1e-12 unless T is tiny). One exception: at T = 1 with no filter the
 * distribution is model_log_softmax's, whose normaliser sums float exps so
 * that the model's probabilities are the same bits here as in model_forward:
 * its relative error is at most 2^-23 (expf) + 2^-24 E_q[z_max - z] (the
 * float subtraction in its argument), under 5e-7 for V <= 300 (E_q[z_max - z]
 * <= H(q) <= log V); there the
 * tolerance is 1e-6 relative, and the row must equal model_log_softmax bit
 * for bit. */
static int check_row(const float *z, int V, const sample_filter *f, const char *what) {
    double *logq = malloc((size_t)V * sizeof(double)), *q = malloc((size_t)V * sizeof(double));
    double *lr = malloc((size_t)V * sizeof(double)), zmax = 0.0, tol, qsum = 0.0;
    int *work = malloc((size_t)V * sizeof(int)), fragile, kept, got, v, n_kept = 0;
    int plain = f->temperature == 1.0 && (f->top_k <= 0 || f->top_k >= V) && f->top_p >= 1.0;
    REQUIRE_TRUE(logq && q && lr && work);
    kept = ref_filter(q, lr, z, V, f, &fragile);
    if (fragile) {
        free(logq), free(q), free(lr), free(work);
        return 0;
    }
    got = sample_distribution(logq, z, V, f, work);
    REQUIRE(got == kept, "%s: V %d T %g k %d p %.17g: %d tokens kept, reference %d", what, V, f->temperature, f->top_k,
            f->top_p, got, kept);
    for (v = 0; v < V; v++)
        if (fabs((double)z[v]) > zmax) zmax = fabs((double)z[v]);
    tol = plain ? 1e-6 : 1e-12 + (f->temperature > 0.0 ? 16 * DBL_EPSILON * zmax / f->temperature : 0.0);
    for (v = 0; v < V; v++) {
        double g = exp(logq[v]);
        REQUIRE((lr[v] == -INFINITY) == (logq[v] == -INFINITY),
                "%s: V %d T %g k %d p %.17g: token %d kept %d, reference %d", what, V, f->temperature, f->top_k,
                f->top_p, v, logq[v] != -INFINITY, lr[v] != -INFINITY);
        if (lr[v] == -INFINITY) continue;
        n_kept++;
        qsum += g;
        if (q[v] < 1e-280) { /* kept, but exp underflows (T tiny): no 12 digits to compare */
            REQUIRE_TRUE(g < 1e-270);
            continue;
        }
        REQUIRE(fabs(g - q[v]) <= tol * q[v],
                "%s: V %d T %g k %d p %.17g: q[%d] = %.17g, reference %.17g (rel %.2e > %.2e)", what, V, f->temperature,
                f->top_k, f->top_p, v, g, q[v], fabs(g - q[v]) / q[v], tol);
    }
    ck_assert_int_eq(n_kept, kept);
    REQUIRE(fabs(qsum - 1.0) <= (plain ? 1e-6 : 1e-12), "%s: probabilities sum to %.17g", what, qsum);
    if (plain) {
        model_log_softmax(lr, z, V);
        REQUIRE(memcmp(lr, logq, (size_t)V * sizeof(double)) == 0, "%s: T = 1 differs from model_log_softmax", what);
    }
    free(logq), free(q), free(lr), free(work);
    return 1;
}

/* Random logit vectors of five kinds (normal of random scale, a few repeated
 * values, small integers, one dominant logit, all equal) against every kind
 * of filter, including the edges. */
START_TEST(test_distribution_matches_reference) {
    enum { CASES = 6000 };
    float *z = malloc(300 * sizeof(float));
    int c, v, compared = 0, skipped = 0;
    util_rng r;
    ck_assert_ptr_nonnull(z);
    util_rng_seed(&r, 20240611);
    for (c = 0; c < CASES; c++) {
        int V = 1 + (int)(util_rng_u64(&r) % 300), kind = (int)(util_rng_u64(&r) % 5),
            npool = 1 + (int)(util_rng_u64(&r) % 5);
        double scale = exp(6.0 * util_rng_uniform(&r) - 3.0), pool[5];
        sample_filter f;
        for (v = 0; v < 5; v++) pool[v] = scale * util_rng_normal(&r);
        for (v = 0; v < V; v++) {
            switch (kind) {
            case 0: z[v] = (float)(scale * util_rng_normal(&r)); break;
            case 1: z[v] = (float)pool[util_rng_u64(&r) % (uint64_t)npool]; break;
            case 2: z[v] = (float)((int)(util_rng_u64(&r) % 7) - 3); break;
            case 3: z[v] = (float)(v == V / 2 ? 10.0 * scale : scale * util_rng_normal(&r)); break;
            default: z[v] = 1.5f; break;
            }
        }
        switch (util_rng_u64(&r) % 8) {
        case 0: f.temperature = 0.0; break;
        case 1: f.temperature = 1.0; break;
        case 2: f.temperature = 1e-6; break;
        case 3: f.temperature = 1e6; break;
        default: f.temperature = exp(log(0.05) + util_rng_uniform(&r) * (log(5.0) - log(0.05))); break;
        }
        switch (util_rng_u64(&r) % 6) {
        case 0: f.top_k = 0; break;
        case 1: f.top_k = 1; break;
        case 2: f.top_k = V; break;
        case 3: f.top_k = V + 1 + (int)(util_rng_u64(&r) % 10); break;
        default: f.top_k = 1 + (int)(util_rng_u64(&r) % (uint64_t)V); break;
        }
        switch (util_rng_u64(&r) % 6) {
        case 0: f.top_p = 1.0; break;
        case 1: f.top_p = 1e-9; break;
        case 2: f.top_p = 1.0 - 1e-9; break;
        default: f.top_p = 1e-3 + (1.0 - 2e-3) * util_rng_uniform(&r); break;
        }
        if (check_row(z, V, &f, "random"))
            compared++;
        else
            skipped++;
    }
    printf("  distribution: %d random rows equal the reference, %d skipped (a top-p decision within 1e-12 of p)\n",
           compared, skipped);
    ck_assert_int_lt(skipped, CASES / 100);
    free(z);
}
END_TEST

/* Hand-made edges whose answers are known: ties at the top-k and top-p
 * boundaries go to the lower id, an exact top-p boundary (0.5 of four equal
 * tokens keeps two), V = 1, -0 and +0 tie, T = 0 and k = 1 are the argmax. */
START_TEST(test_distribution_edges) {
    double logq[8];
    int work[8], v;
    float eq4[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    float tie[6] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f, 3.0f};
    float zeros[3] = {-0.0f, 0.0f, -1.0f};
    float one[1] = {-7.0f};
    float bad[3] = {0.0f, 1.0f, 2.0f};
    sample_filter f;

    /* four equal tokens: top-p 0.5 keeps exactly two (mass 0.5 >= 0.5), the two lowest ids */
    f.temperature = 1.0, f.top_k = 0, f.top_p = 0.5;
    ck_assert_int_eq(sample_distribution(logq, eq4, 4, &f, work), 2);
    REQUIRE_TRUE(logq[0] == log(0.5) && logq[1] == log(0.5) && logq[2] == -INFINITY && logq[3] == -INFINITY);
    f.top_p = 0.5000001;
    ck_assert_int_eq(sample_distribution(logq, eq4, 4, &f, work), 3);
    REQUIRE_TRUE(logq[2] != -INFINITY && logq[3] == -INFINITY);
    f.top_p = 0.25;
    ck_assert_int_eq(sample_distribution(logq, eq4, 4, &f, work), 1);
    REQUIRE_TRUE(logq[0] == 0.0);

    /* three-way tie for the top (ids 1, 3, 5): top-k 2 keeps ids 1 and 3 */
    f.temperature = 0.8, f.top_k = 2, f.top_p = 1.0;
    ck_assert_int_eq(sample_distribution(logq, tie, 6, &f, work), 2);
    for (v = 0; v < 6; v++) REQUIRE((logq[v] != -INFINITY) == (v == 1 || v == 3), "token %d", v);
    REQUIRE_TRUE(fabs(exp(logq[1]) - 0.5) < 1e-15 && logq[1] == logq[3]);
    /* greedy: temperature 0, and top-k 1 at any temperature, pick id 1 */
    f.temperature = 0.0, f.top_k = 0, f.top_p = 1.0;
    ck_assert_int_eq(sample_distribution(logq, tie, 6, &f, work), 1);
    for (v = 0; v < 6; v++) REQUIRE_TRUE(logq[v] == (v == 1 ? 0.0 : -INFINITY));
    f.temperature = 2.5, f.top_k = 1;
    ck_assert_int_eq(sample_distribution(logq, tie, 6, &f, work), 1);
    for (v = 0; v < 6; v++) REQUIRE_TRUE(logq[v] == (v == 1 ? 0.0 : -INFINITY));
    /* tiny top-p keeps the single most likely (the lowest id of the tie) */
    f.temperature = 1.0, f.top_k = 0, f.top_p = 1e-12;
    ck_assert_int_eq(sample_distribution(logq, tie, 6, &f, work), 1);
    REQUIRE_TRUE(logq[1] == 0.0 && logq[3] == -INFINITY && logq[5] == -INFINITY);

    /* -0 and +0 are equal logits: top-k 1 of them is id 0, greedy too */
    f.temperature = 1.0, f.top_k = 1, f.top_p = 1.0;
    ck_assert_int_eq(sample_distribution(logq, zeros, 3, &f, work), 1);
    REQUIRE_TRUE(logq[0] == 0.0 && logq[1] == -INFINITY);
    f.temperature = 0.5, f.top_k = 2;
    ck_assert_int_eq(sample_distribution(logq, zeros, 3, &f, work), 2);
    REQUIRE_TRUE(logq[0] == logq[1] && logq[2] == -INFINITY);

    /* V = 1: probability one whatever the filter */
    f.temperature = 0.3, f.top_k = 5, f.top_p = 0.1;
    ck_assert_int_eq(sample_distribution(logq, one, 1, &f, work), 1);
    REQUIRE_TRUE(logq[0] == 0.0);
    f.temperature = 1.0, f.top_k = 0, f.top_p = 1.0;
    ck_assert_int_eq(sample_distribution(logq, one, 1, &f, work), 1);
    REQUIRE_TRUE(logq[0] == 0.0);

    /* a logit that is not a finite number: 0 tokens */
    bad[1] = NAN;
    ck_assert_int_eq(sample_distribution(logq, bad, 3, &f, work), 0);
    bad[1] = INFINITY;
    ck_assert_int_eq(sample_distribution(logq, bad, 3, &f, work), 0);
    bad[1] = -INFINITY;
    f.temperature = 0.0;
    ck_assert_int_eq(sample_distribution(logq, bad, 3, &f, work), 0);
}
END_TEST

/* The inverse CDF at its exact boundaries (dyadic probabilities, so every
 * partial sum is exact): the first kept v with q_0 + ... + q_v > u, removed
 * tokens never, the last kept one when rounding leaves the sum below u. */
START_TEST(test_draw_boundaries) {
    double lq[5], eq[41];
    double below_one = nextafter(1.0, 0.0), acc = 0.0;
    int v, n;
    lq[0] = log(0.25), lq[1] = -INFINITY, lq[2] = log(0.25), lq[3] = -INFINITY, lq[4] = log(0.5);
    REQUIRE_TRUE(exp(lq[0]) == 0.25 && exp(lq[4]) == 0.5); /* the boundaries below are exact */
    ck_assert_int_eq(sample_draw(lq, 5, 0.0), 0);
    ck_assert_int_eq(sample_draw(lq, 5, nextafter(0.25, 0.0)), 0);
    ck_assert_int_eq(sample_draw(lq, 5, 0.25), 2); /* q_0 = 0.25 is not > 0.25 */
    ck_assert_int_eq(sample_draw(lq, 5, nextafter(0.5, 0.0)), 2);
    ck_assert_int_eq(sample_draw(lq, 5, 0.5), 4);
    ck_assert_int_eq(sample_draw(lq, 5, below_one), 4);
    /* n equal tokens of log(1/n) whose partial sums round to below 1 (n = 7 in
     * IEEE double): for u between that sum and 1, the last kept token, never
     * the removed one after it */
    for (n = 2; n < 40; n++) {
        for (v = 0, acc = 0.0; v < n; v++) acc += exp(log(1.0 / n));
        if (acc < below_one) break;
    }
    REQUIRE(n < 40, "no n below 40 whose sum rounds below 1 (%.17g)", acc);
    for (v = 0; v < n; v++) eq[v] = log(1.0 / n);
    eq[n] = -INFINITY;
    ck_assert_int_eq(sample_draw(eq, n + 1, below_one), n - 1);
    ck_assert_int_eq(sample_draw(eq, n + 1, acc), n - 1);
    /* the same when the kept mass is plainly short of 1 (0.75) */
    lq[0] = log(0.5), lq[1] = -INFINITY, lq[2] = log(0.25), lq[3] = -INFINITY, lq[4] = -INFINITY;
    ck_assert_int_eq(sample_draw(lq, 5, 0.9), 2);
    /* one kept token in the middle takes every u */
    lq[0] = -INFINITY, lq[1] = -INFINITY, lq[2] = 0.0, lq[3] = -INFINITY, lq[4] = -INFINITY;
    ck_assert_int_eq(sample_draw(lq, 5, 0.0), 2);
    ck_assert_int_eq(sample_draw(lq, 5, below_one), 2);
}
END_TEST

/* KL by hand: q = (1/2, 1/2, 0), r = (1/4, 1/4, 1/2) gives log 2; a token with
 * q = 0 counts nothing even where r = 0 too (no 0 * inf). */
START_TEST(test_kl_by_hand) {
    double lq[3], lr[3];
    lq[0] = log(0.5), lq[1] = log(0.5), lq[2] = -INFINITY;
    lr[0] = log(0.25), lr[1] = log(0.25), lr[2] = log(0.5);
    REQUIRE_TRUE(fabs(sample_kl(lq, lr, 3) - log(2.0)) <= 4 * DBL_EPSILON);
    lr[0] = log(0.5), lr[1] = log(0.5), lr[2] = -INFINITY;
    REQUIRE_TRUE(sample_kl(lq, lr, 3) == 0.0);
    lq[0] = log(0.75), lq[1] = log(0.25);
    REQUIRE_TRUE(fabs(sample_kl(lq, lr, 3) - (0.75 * log(1.5) + 0.25 * log(0.5))) <= 4 * DBL_EPSILON);
}
END_TEST

/* ======================================================================== */
/* generation: collecting sample_run's results                               */
/* ======================================================================== */

enum { MAXNEW = 40 };

typedef struct {
    long prompt, index;
    int ids[MAXNEW], n_ids, finish, n_positions;
    double logq, kl, kl_sampled;
} rec;

typedef struct {
    rec *recs;
    long n_recs, cap;
    int n_per;    /* samples per prompt: emits must come in (prompt, index) order */
    long stop_at; /* the emit call (from 1) that returns an error; 0: none */
    long emits, progress_calls, last_done, last_total;
} collector;

static int collect_emit(void *ctx, const sample_result *r, dpo_err *e) {
    collector *c = ctx;
    rec *d;
    c->emits++;
    if (c->stop_at > 0 && c->emits == c->stop_at) return dpo_errf(e, "stopped by the callback at %ld", c->emits);
    REQUIRE(c->n_recs < c->cap, "more results than samples");
    REQUIRE(r->prompt * c->n_per + r->index == c->n_recs, "emitted (%ld, %ld) as result %ld", r->prompt, r->index,
            c->n_recs);
    REQUIRE(r->n_ids <= MAXNEW, "%d tokens", r->n_ids);
    d = &c->recs[c->n_recs++];
    memset(d, 0, sizeof *d);
    d->prompt = r->prompt;
    d->index = r->index;
    memcpy(d->ids, r->ids, (size_t)r->n_ids * sizeof(int));
    d->n_ids = r->n_ids;
    d->finish = r->finish;
    d->n_positions = r->n_positions;
    d->logq = r->logq;
    d->kl = r->kl;
    d->kl_sampled = r->kl_sampled;
    return 0;
}

static void collect_progress(void *ctx, long done, long total, long tokens) {
    collector *c = ctx;
    REQUIRE(done >= c->last_done && tokens >= 0, "progress %ld after %ld", done, c->last_done);
    c->progress_calls++;
    c->last_done = done;
    c->last_total = total;
}

/* Run sample_run with `threads` threads; every sample must be emitted. */
static rec *run_all(const model *pol, const model *ref, const int *const *prompts, const int *lens, long np,
                    const sample_config *c, int threads) {
    collector col;
    dpo_err e;
    int saved = util_threads();
    memset(&col, 0, sizeof col);
    col.cap = np * c->n;
    col.n_per = c->n;
    col.recs = calloc((size_t)(col.cap > 0 ? col.cap : 1), sizeof(rec));
    ck_assert_ptr_nonnull(col.recs);
    util_set_threads(threads);
    REQUIRE(sample_run(pol, ref, prompts, lens, np, c, collect_emit, collect_progress, &col, &e) == 0, "%s", e.msg);
    util_set_threads(saved);
    ck_assert_int_eq(col.n_recs, col.cap);
    ck_assert_int_eq(col.last_done, col.cap);
    ck_assert_int_eq(col.last_total, col.cap);
    return col.recs;
}

/* the same sample: tokens, finish and every sum the same bits */
static int rec_same(const rec *a, const rec *b) {
    return a->n_ids == b->n_ids && a->finish == b->finish && a->n_positions == b->n_positions &&
           memcmp(a->ids, b->ids, sizeof a->ids) == 0 && memcmp(&a->logq, &b->logq, sizeof(double)) == 0 &&
           memcmp(&a->kl, &b->kl, sizeof(double)) == 0 && memcmp(&a->kl_sampled, &b->kl_sampled, sizeof(double)) == 0;
}

/* ... and the same (prompt, index) */
static int rec_equal(const rec *a, const rec *b) {
    return a->prompt == b->prompt && a->index == b->index && rec_same(a, b);
}

/* The final sequence of a sample: prompt ++ completion ++ [end-of-text if it
 * ended so]; its length is prompt_len + n_positions. Also checks the result's
 * own consistency: ids in the vocabulary and never the end-of-text, the
 * positions counted, the finish reason the one its length implies. */
static int *final_sequence(const rec *r, const int *prompt, int plen, const sample_config *c, int V, int ctx) {
    int *seq = malloc((size_t)(plen + r->n_positions) * sizeof(int)), t;
    ck_assert_ptr_nonnull(seq);
    REQUIRE_TRUE(r->n_positions == r->n_ids + (r->finish == SAMPLE_EOS));
    REQUIRE_TRUE(r->finish == SAMPLE_EOS || r->finish == SAMPLE_LENGTH);
    if (r->finish == SAMPLE_LENGTH)
        REQUIRE_TRUE(r->n_ids == c->max_new || plen + r->n_ids == ctx);
    else
        REQUIRE_TRUE(r->n_ids < c->max_new && plen + r->n_ids < ctx);
    memcpy(seq, prompt, (size_t)plen * sizeof(int));
    for (t = 0; t < r->n_ids; t++) {
        REQUIRE_TRUE(r->ids[t] >= 0 && r->ids[t] < V && r->ids[t] != c->eos);
        seq[plen + t] = r->ids[t];
    }
    if (r->finish == SAMPLE_EOS) seq[plen + r->n_ids] = c->eos;
    return seq;
}

/* a random prompt of len tokens */
static void random_prompt(int *p, int len, int V, util_rng *r) {
    int t;
    for (t = 0; t < len; t++) p[t] = (int)(util_rng_u64(r) % (uint64_t)V);
}

/* The test models: the policy (2 layers, width 32), the reference (another
 * shape: 1 layer, width 16), both with a context of 32 and 64 tokens. The
 * tests of thousands of samples use the small shape for both (they test the
 * sampling, not the model, and must stay quick under AddressSanitizer). */
static const model_config POL_CFG = {2, 4, 32, 32, 64, 1e-5, 63, 0};
static const model_config REF_CFG = {1, 2, 16, 32, 64, 1e-5, 63, 0};

/* ======================================================================== */
/* 2. greedy generation                                                      */
/* ======================================================================== */

/* Temperature 0 (and top-k 1 at T = 0.8, whatever the seed) generates the
 * argmax at every step (lowest id on ties): every generated token must be the
 * argmax of the logits of a fresh pass over the sequence before it (the rows
 * of one causal pass over the final sequence), cross-checked against
 * model_forward's log-probs of every token; no token before the last is the
 * end-of-text, and a sample that does not end with it has max_new tokens. */
START_TEST(test_greedy_generation) {
    static const int lens[3] = {1, 3, 8};
    int pr[3][8], p, i, t, V = POL_CFG.vocab_size, n_eos = 0;
    const int *prompts[3] = {pr[0], pr[1], pr[2]};
    model pol;
    sample_config c;
    rec *a, *b;
    util_rng r;
    util_rng_seed(&r, 5);
    random_model(&pol, &POL_CFG, 101, 0.4);
    for (p = 0; p < 3; p++) random_prompt(pr[p], lens[p], V, &r);
    memset(&c, 0, sizeof c);
    c.filter.temperature = 0.0, c.filter.top_k = 0, c.filter.top_p = 1.0;
    c.seed = 1, c.n = 3, c.max_new = 12, c.batch = 4, c.eos = 0;
    /* eos: the greedy token after prompt 1's fourth step, so that its samples end with it */
    {
        int seq[32], len = lens[1];
        memcpy(seq, pr[1], (size_t)len * sizeof(int));
        for (t = 0; t < 4; t++) {
            float *z = prefill_logits(&pol, seq, len);
            seq[len] = argmax_lowest(z + (size_t)(len - 1) * V, V);
            len++;
            free(z);
        }
        c.eos = seq[len - 1];
    }
    a = run_all(&pol, NULL, prompts, lens, 3, &c, 1);
    c.filter.temperature = 0.8, c.filter.top_k = 1, c.seed = 999;
    b = run_all(&pol, NULL, prompts, lens, 3, &c, 2);
    for (i = 0; i < 9; i++) {
        REQUIRE(rec_equal(&a[i], &b[i]), "sample %d: top-k 1 differs from temperature 0", i);
        REQUIRE(rec_same(&a[i], &a[i - i % 3]), "sample %d: greedy samples of one prompt differ", i);
        REQUIRE_TRUE(a[i].logq == 0.0); /* log 1 at every position */
    }
    for (p = 0; p < 3; p++) {
        const rec *s = &a[3 * p];
        int n = lens[p] + s->n_positions, *seq = final_sequence(s, pr[p], lens[p], &c, V, POL_CFG.n_ctx);
        float *z = prefill_logits(&pol, seq, n - 1), *lp = forward_all_logp(&pol, seq, n - 1);
        for (t = lens[p] - 1; t < n - 1; t++) {
            int y = argmax_lowest(z + (size_t)t * V, V), v;
            REQUIRE(seq[t + 1] == y, "prompt %d, generated token %d: %d, the argmax is %d", p, t + 1 - lens[p],
                    seq[t + 1], y);
            for (v = 0; v < V; v++) REQUIRE_TRUE(lp[(size_t)t * V + v] <= lp[(size_t)t * V + y]);
        }
        n_eos += s->finish == SAMPLE_EOS;
        free(seq), free(z), free(lp);
    }
    ck_assert_int_ge(n_eos, 1); /* prompt 1's samples end with the end-of-text */
    ck_assert_int_eq(a[3].finish, SAMPLE_EOS);
    ck_assert_int_le(a[3].n_positions, 4);
    free(a);
    free(b);
    model_free(&pol);
}
END_TEST

/* ======================================================================== */
/* 3. chi-square goodness of fit                                             */
/* ======================================================================== */

/* The chi-square distribution's 0.999 quantile: the table for df <= 10,
 * else Wilson and Hilferty's approximation (within 1% for df > 10, slightly
 * above the exact value: 31.42 for 31.26 at df 11):
 *   df (1 - 2/(9 df) + z sqrt(2/(9 df)))^3,  z = 3.090232 the normal's 0.999 quantile. */
static double chi2_crit_999(int df) {
    static const double table[11] = {0, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588};
    double h;
    REQUIRE(df >= 1, "chi-square with %d degrees of freedom", df);
    if (df <= 10) return table[df];
    h = 2.0 / (9.0 * df);
    return df * pow(1.0 - h + 3.090232 * sqrt(h), 3.0);
}

typedef struct {
    double e;
    long o;
} chi_bin;

static int chi_bin_cmp(const void *a, const void *b) {
    const chi_bin *x = a, *y = b;
    return (x->e > y->e) - (x->e < y->e);
}

/* Pearson's statistic sum (O - E)^2 / E of counts (V) over N draws against the
 * reference probabilities q (V), the bins of expected count below 5 pooled
 * (smallest first, until the pool reaches 5); *df = bins - 1. A token with
 * q = 0 (filtered out) must never have been drawn. */
static double chi_square(const long *count, const double *q, int V, long N, int *df) {
    chi_bin *b = malloc((size_t)V * sizeof *b);
    double stat = 0.0, pe = 0.0;
    long po = 0;
    int v, nb = 0, i = 0, bins = 0;
    ck_assert_ptr_nonnull(b);
    for (v = 0; v < V; v++) {
        if (q[v] == 0.0) {
            REQUIRE(count[v] == 0, "token %d was filtered out but drawn %ld times", v, count[v]);
            continue;
        }
        b[nb].e = q[v] * (double)N;
        b[nb++].o = count[v];
    }
    qsort(b, (size_t)nb, sizeof *b, chi_bin_cmp);
    for (; i < nb && (b[i].e < 5.0 || (pe > 0.0 && pe < 5.0)); i++) pe += b[i].e, po += b[i].o;
    if (pe > 0.0) stat += ((double)po - pe) * ((double)po - pe) / pe, bins++;
    for (; i < nb; i++, bins++) stat += ((double)b[i].o - b[i].e) * ((double)b[i].o - b[i].e) / b[i].e;
    free(b);
    *df = bins - 1;
    return stat;
}

/* The four filters of the goodness-of-fit tests. */
static const sample_filter CHI_FILTERS[4] = {{1.0, 0, 1.0}, {0.7, 12, 1.0}, {1.3, 0, 0.8}, {0.8, 20, 0.9}};

/* 40,000 draws of one next token, each with the first uniform of its own
 * stream (sample_stream(seed, 0, i), as sample_run draws a sample's first
 * token), from sample_distribution + sample_draw, against ref_filter's
 * probabilities of the model's logits after a prompt. */
START_TEST(test_chi_square_draws) {
    enum { N = 40000 };
    int prompt[5] = {3, 17, 42, 8, 51}, V = POL_CFG.vocab_size, *work = malloc((size_t)V * sizeof(int)), fi, i, df,
        fragile;
    double *logq = malloc((size_t)V * sizeof(double)), *q = malloc((size_t)V * sizeof(double)),
           *lr = malloc((size_t)V * sizeof(double)), h = 0.0, stat, crit;
    long *count = malloc((size_t)V * sizeof(long));
    float *z;
    model pol;
    REQUIRE_TRUE(work && logq && q && lr && count);
    random_model(&pol, &POL_CFG, 7, 0.4);
    z = prefill_logits(&pol, prompt, 5);
    for (fi = 0; fi < 4; fi++) {
        const sample_filter *f = &CHI_FILTERS[fi];
        const float *zl = z + (size_t)4 * V;
        int kept = ref_filter(q, lr, zl, V, f, &fragile), v;
        REQUIRE_TRUE(!fragile);
        ck_assert_int_eq(sample_distribution(logq, zl, V, f, work), kept);
        memset(count, 0, (size_t)V * sizeof(long));
        for (i = 0; i < N; i++) {
            util_rng r;
            sample_stream(&r, 77, 0, i);
            count[sample_draw(logq, V, util_rng_uniform(&r))]++;
        }
        if (fi == 0)
            for (v = 0; v < V; v++) h -= q[v] > 0.0 ? q[v] * log(q[v]) : 0.0;
        stat = chi_square(count, q, V, N, &df);
        crit = chi2_crit_999(df);
        printf("  chi-square, %d draws, T %g top-k %d top-p %g (%d kept): %.2f, df %d, critical (p = 0.001) %.2f\n", N,
               f->temperature, f->top_k, f->top_p, kept, stat, df, crit);
        ck_assert_int_ge(df, 5);
        REQUIRE(stat < crit, "chi-square %.2f >= %.2f (df %d)", stat, crit, df);
    }
    printf("  (the model's entropy there: %.3f nats, uniform %.3f)\n", h, log((double)V));
    REQUIRE_TRUE(h < log((double)V) - 0.5); /* far from uniform, so that a wrong sampler shows */
    free(z);
    free(work), free(logq), free(q), free(lr), free(count);
    model_free(&pol);
}
END_TEST

/* 4,000 one-token generations (max_new 1) of one prompt through sample_run, the
 * end-of-text counted as its own token: the generation path's randomness. */
START_TEST(test_chi_square_generation) {
    enum { N = 4000 };
    static const int plen = 4;
    int prompt[4] = {9, 33, 2, 60}, V = POL_CFG.vocab_size, fi, i, df, fragile, kept;
    const int *prompts[1] = {prompt};
    double *q = malloc((size_t)V * sizeof(double)), *lr = malloc((size_t)V * sizeof(double)), stat, crit;
    long *count = malloc((size_t)V * sizeof(long));
    float *z;
    model pol;
    sample_config c;
    REQUIRE_TRUE(q && lr && count);
    random_model(&pol, &REF_CFG, 8, 0.4);
    z = prefill_logits(&pol, prompt, plen);
    for (fi = 0; fi < 4; fi += 2) {
        rec *r;
        memset(&c, 0, sizeof c);
        c.filter = CHI_FILTERS[fi];
        c.seed = 4242, c.n = N, c.max_new = 1, c.batch = 64, c.eos = argmax_lowest(z + (size_t)(plen - 1) * V, V);
        kept = ref_filter(q, lr, z + (size_t)(plen - 1) * V, V, &c.filter, &fragile);
        REQUIRE_TRUE(!fragile);
        r = run_all(&pol, NULL, prompts, &plen, 1, &c, 1);
        memset(count, 0, (size_t)V * sizeof(long));
        for (i = 0; i < N; i++) {
            REQUIRE_TRUE(r[i].n_positions == 1);
            REQUIRE_TRUE(r[i].n_ids == (r[i].finish == SAMPLE_EOS ? 0 : 1));
            count[r[i].finish == SAMPLE_EOS ? c.eos : r[i].ids[0]]++;
        }
        stat = chi_square(count, q, V, N, &df);
        crit = chi2_crit_999(df);
        printf("  chi-square, %d one-token generations, T %g top-k %d top-p %g (%d kept): %.2f, df %d, critical %.2f\n",
               N, c.filter.temperature, c.filter.top_k, c.filter.top_p, kept, stat, df, crit);
        ck_assert_int_ge(df, 5);
        REQUIRE(stat < crit, "chi-square %.2f >= %.2f (df %d)", stat, crit, df);
        free(r);
    }
    free(z);
    free(q), free(lr), free(count);
    model_free(&pol);
}
END_TEST

/* ======================================================================== */
/* 4. determinism                                                            */
/* ======================================================================== */

/* 3 prompts of 1, 5 and 11 tokens, 24 samples each (72 sequences, so that a
 * batch of 64 fills its rows and really runs on two threads), with a reference
 * so that the KL terms are compared too. Every result must be the same bits for
 * every batch size and thread count; another seed changes nearly all; a
 * sample's result does not change when prompts are appended, when another
 * prompt is replaced, or when the number of samples per prompt changes. */
START_TEST(test_run_deterministic) {
    static const int lens[5] = {1, 5, 11, 3, 7};
    static const int batches[4] = {1, 2, 7, 64};
    int pr[5][11], p, i, bi, th, V = POL_CFG.vocab_size, differ = 0, n_eos = 0, n_tok = 0;
    const int *prompts[5] = {pr[0], pr[1], pr[2], pr[3], pr[4]};
    model pol, ref;
    sample_config c;
    rec *base, *other;
    util_rng r;
    util_rng_seed(&r, 17);
    random_model(&pol, &POL_CFG, 201, 0.4);
    random_model(&ref, &REF_CFG, 202, 0.4);
    for (p = 0; p < 5; p++) random_prompt(pr[p], lens[p], V, &r);
    memset(&c, 0, sizeof c);
    c.filter.temperature = 0.9, c.filter.top_k = 40, c.filter.top_p = 0.95;
    c.seed = 1234, c.n = 24, c.max_new = 10, c.batch = 1;
    c.eos = rank_token(&pol, pr[0], lens[0], 5);
    base = run_all(&pol, &ref, prompts, lens, 3, &c, 1);
    for (i = 0; i < 72; i++) n_eos += base[i].finish == SAMPLE_EOS, n_tok += base[i].n_positions;
    printf("  determinism: 72 samples, %d end with end-of-text, %d tokens\n", n_eos, n_tok);
    REQUIRE_TRUE(n_eos > 0 && n_eos < 72); /* both ways of finishing are exercised */
    for (bi = 0; bi < 4; bi++)
        for (th = 1; th <= 2; th++) {
            if (bi == 0 && th == 1) continue;
            c.batch = batches[bi];
            other = run_all(&pol, &ref, prompts, lens, 3, &c, th);
            for (i = 0; i < 72; i++)
                REQUIRE(rec_equal(&base[i], &other[i]), "batch %d threads %d: sample %d of prompt %d differs",
                        batches[bi], th, i % 24, i / 24);
            free(other);
        }
    /* another seed */
    c.batch = 16, c.seed = 1235;
    other = run_all(&pol, &ref, prompts, lens, 3, &c, 2);
    for (i = 0; i < 72; i++) differ += !rec_equal(&base[i], &other[i]);
    printf("  another seed changes %d of 72 samples\n", differ);
    /* three quarters at least: the others are short samples that both seeds drew */
    ck_assert_int_ge(differ, 54);
    free(other);
    /* prompts appended: the first three prompts' samples are unchanged */
    c.seed = 1234;
    other = run_all(&pol, &ref, prompts, lens, 5, &c, 2);
    for (i = 0; i < 72; i++) REQUIRE(rec_equal(&base[i], &other[i]), "prompts appended: sample %d differs", i);
    free(other);
    /* prompt 1 replaced by another: prompts 0 and 2 unchanged, prompt 1 changed */
    {
        const int *swapped[3] = {pr[0], pr[4], pr[2]};
        int lens2[3] = {lens[0], lens[4], lens[2]};
        differ = 0;
        other = run_all(&pol, &ref, swapped, lens2, 3, &c, 1);
        for (i = 0; i < 72; i++) {
            if (i / 24 == 1) {
                differ += !rec_equal(&base[i], &other[i]);
                continue;
            }
            REQUIRE(rec_equal(&base[i], &other[i]), "prompt 1 replaced: sample %d of prompt %d differs", i % 24,
                    i / 24);
        }
        ck_assert_int_ge(differ, 20);
        free(other);
    }
    /* 10 samples per prompt instead of 24: samples 0..9 unchanged */
    c.n = 10;
    other = run_all(&pol, &ref, prompts, lens, 3, &c, 2);
    for (i = 0; i < 30; i++)
        REQUIRE(rec_equal(&base[(i / 10) * 24 + i % 10], &other[i]), "n 10: sample %d of prompt %d differs", i % 10,
                i / 10);
    free(other);
    free(base);
    model_free(&pol);
    model_free(&ref);
}
END_TEST

/* ======================================================================== */
/* 5. the cached path's log-probs against a full forward pass                */
/* ======================================================================== */

/* At T = 1 with no filter, r.logq = sum over the generated positions of
 * log q(y_t) must equal the sum of model_forward's log p(y_t | prefix) over the
 * final sequence. Per position the two are the same number (test_model proves
 * the cache's logits bit-identical to a full pass, and model_log_softmax's
 * double rounds to model_forward's float); r.logq sums the doubles, the
 * reference here the floats, each within half a float ulp (2^-24 relative) of
 * its double. So |r.logq - sum_t f_t| <= 2^-24 sum_t |f_t| plus the doubles'
 * own rounding (n 2^-53); the tolerance is 2^-23 sum_t |f_t| = 1.2e-7 relative
 * (all terms are <= 0, so sum |f_t| = |sum f_t|). A wrong token, a missing or
 * extra position, or a position that saw the wrong keys moves the sum by whole
 * log-probabilities, orders of magnitude more. Prompt 3 (25 tokens) is cut by
 * the context (25 + 7 = 32). */
START_TEST(test_logq_equals_forward) {
    static const int lens[4] = {1, 4, 9, 25};
    int pr[4][25], p, i, t, V = POL_CFG.vocab_size, n_eos = 0, n_ctx_cut = 0;
    const int *prompts[4] = {pr[0], pr[1], pr[2], pr[3]};
    double worst = 0.0;
    model pol;
    sample_config c;
    rec *res;
    util_rng r;
    util_rng_seed(&r, 23);
    random_model(&pol, &POL_CFG, 301, 0.4);
    for (p = 0; p < 4; p++) random_prompt(pr[p], lens[p], V, &r);
    memset(&c, 0, sizeof c);
    c.filter.temperature = 1.0, c.filter.top_k = 0, c.filter.top_p = 1.0;
    c.seed = 99, c.n = 10, c.max_new = 12, c.batch = 8, c.eos = 11;
    res = run_all(&pol, NULL, prompts, lens, 4, &c, 2);
    for (i = 0; i < 40; i++) {
        const rec *s = &res[i];
        int plen = lens[s->prompt], n = plen + s->n_positions, *seq, *tgt, len1;
        float *lp;
        double sum = 0.0, abs_sum = 0.0, err;
        seq = final_sequence(s, pr[s->prompt], plen, &c, V, POL_CFG.n_ctx);
        n_eos += s->finish == SAMPLE_EOS;
        n_ctx_cut += plen + s->n_ids == POL_CFG.n_ctx;
        /* model_forward over seq[0..n-1) with targets at the generated positions */
        len1 = n - 1;
        tgt = malloc((size_t)len1 * sizeof(int));
        lp = malloc((size_t)len1 * sizeof(float));
        REQUIRE_TRUE(tgt && lp);
        for (t = 0; t < len1; t++) tgt[t] = t >= plen - 1 ? seq[t + 1] : -1;
        {
            dpo_err e;
            REQUIRE(model_forward(&pol, lp, seq, tgt, &len1, 1, &e) == 0, "%s", e.msg);
        }
        for (t = plen - 1; t < len1; t++) {
            sum += lp[t];
            abs_sum += fabs((double)lp[t]);
        }
        err = fabs(s->logq - sum);
        REQUIRE(err <= ldexp(abs_sum, -23), "sample %d: logq %.17g, full forward %.17g (%d positions)", i, s->logq, sum,
                s->n_positions);
        if (abs_sum > 0.0 && err / abs_sum > worst) worst = err / abs_sum;
        free(seq), free(tgt), free(lp);
    }
    printf("  logq against full forward passes: largest relative difference %.2e (tolerance %.2e); %d ended with "
           "end-of-text, %d at the context\n",
           worst, ldexp(1.0, -23), n_eos, n_ctx_cut);
    REQUIRE_TRUE(n_eos > 0 && n_ctx_cut > 0);
    free(res);
    model_free(&pol);
}
END_TEST

/* ======================================================================== */
/* 6. exact KL                                                               */
/* ======================================================================== */

/* For each sample of sample_run (policy and a reference of another shape),
 * the KL and the log-probs are recomputed along its final sequence twice:
 *
 * (A) from model_forward alone, log p(v) and log r(v) for every v at every
 *     generated position (V copies of the sequence): q = the filter applied
 *     here, in double, to the policy's log-probs (softmax(log p / T) =
 *     softmax(z / T)), and
 *       KL = sum_t sum_v q_v (log q_v - log r_v).
 *     model_forward's floats are its doubles rounded (2^-24 relative), so the
 *     tolerance is that rounding carried through, per position:
 *       b_t = (2 u M_q / T + u M_r + 2^-21) (1 + sum_v q_v |log q_v - log r_v|)
 *     with u = 2^-24, M_q and M_r the largest |log p| and |log r| over the kept
 *     tokens (log q_v = log p_v / T - log sum_kept exp(log p_u / T) moves by at
 *     most 2 u M_q / T), 2^-21 for model_log_softmax's normaliser (a sum of
 *     float exps, each within an ulp), and the factor for q_v moving with
 *     log q_v; the test allows 2 sum_t b_t (about 1e-6 relative).
 * (B) from the exact float logits (one pass on a fresh cache): the policy's q
 *     from ref_filter (or, at T = 1 with no filter, model_log_softmax, which
 *     is the model's distribution by definition), log r = model_log_softmax of
 *     the reference's logits. The inputs are then the same bits sample.c saw
 *     and only the order of double operations differs: r.kl, r.logq and
 *     r.kl_sampled within 1e-10 (sum_t |term_t| + n_positions). Each term is a
 *     difference of quantities of order one (a logit over T, a log normaliser),
 *     so its rounding is absolute (about 1e-16 per position, even where the
 *     term is near 0, as log q(y) is when q(y) is close to 1), hence the 1 per
 *     position next to the relative part. */
static void check_kl_runs(const sample_filter *f, double *worst_a, double *worst_b) {
    static const int lens[2] = {2, 6};
    int pr[2][6], p, i, t, v, V = POL_CFG.vocab_size, fragile, n_eos = 0;
    const int *prompts[2] = {pr[0], pr[1]};
    int plain = f->temperature == 1.0 && f->top_k == 0 && f->top_p >= 1.0;
    double *q = malloc((size_t)V * sizeof(double)), *lq = malloc((size_t)V * sizeof(double)),
           *lr = malloc((size_t)V * sizeof(double));
    model pol, ref;
    sample_config c;
    rec *res;
    util_rng r;
    REQUIRE_TRUE(q && lq && lr);
    util_rng_seed(&r, 31);
    random_model(&pol, &POL_CFG, 401, 0.4);
    random_model(&ref, &REF_CFG, 402, 0.4);
    for (p = 0; p < 2; p++) random_prompt(pr[p], lens[p], V, &r);
    memset(&c, 0, sizeof c);
    c.filter = *f;
    c.seed = 2718, c.n = 8, c.max_new = 8, c.batch = 5, c.eos = rank_token(&pol, pr[1], lens[1], 1);
    res = run_all(&pol, &ref, prompts, lens, 2, &c, 1);
    for (i = 0; i < 16; i++) n_eos += res[i].finish == SAMPLE_EOS;
    REQUIRE(n_eos > 0 && n_eos < 16, "%d of 16 samples end with end-of-text", n_eos); /* both kinds of sample */
    for (i = 0; i < 16; i++) {
        const rec *s = &res[i];
        int plen = lens[s->prompt], n = plen + s->n_positions, *seq;
        float *zp, *zr, *fp, *fr;
        double kl_a = 0.0, tol_a = 0.0, kl_b = 0.0, abs_b = 0.0, lq_b = 0.0, abs_lq = 0.0, kls_b = 0.0, abs_kls = 0.0;
        seq = final_sequence(s, pr[s->prompt], plen, &c, V, POL_CFG.n_ctx);
        zp = prefill_logits(&pol, seq, n - 1);
        zr = prefill_logits(&ref, seq, n - 1);
        fp = forward_all_logp(&pol, seq, n - 1);
        fr = forward_all_logp(&ref, seq, n - 1);
        for (t = plen - 1; t < n - 1; t++) {
            const float *ft = fp + (size_t)t * V, *gt = fr + (size_t)t * V;
            double mq = 0.0, mr = 0.0, s_abs = 0.0, kl_t = 0.0;
            int y = seq[t + 1];
            /* (A) */
            ref_filter(q, lq, ft, V, f, &fragile);
            REQUIRE_TRUE(!fragile);
            REQUIRE(q[y] > 0.0, "sample %d drew token %d, which the filter removes", i, y);
            for (v = 0; v < V; v++) {
                if (q[v] == 0.0) continue;
                kl_t += q[v] * (lq[v] - (double)gt[v]);
                s_abs += q[v] * fabs(lq[v] - (double)gt[v]);
                if (fabs((double)ft[v]) > mq) mq = fabs((double)ft[v]);
                if (fabs((double)gt[v]) > mr) mr = fabs((double)gt[v]);
            }
            kl_a += kl_t;
            tol_a += 2.0 * (2.0 * ldexp(mq, -24) / f->temperature + ldexp(mr, -24) + ldexp(1.0, -21)) * (1.0 + s_abs);
            /* (B) */
            if (plain)
                model_log_softmax(lq, zp + (size_t)t * V, V);
            else
                ref_filter(q, lq, zp + (size_t)t * V, V, f, &fragile);
            model_log_softmax(lr, zr + (size_t)t * V, V);
            for (v = 0; v < V; v++) {
                if (lq[v] == -INFINITY) continue;
                kl_b += exp(lq[v]) * (lq[v] - lr[v]);
                abs_b += exp(lq[v]) * fabs(lq[v] - lr[v]);
            }
            lq_b += lq[y];
            abs_lq += fabs(lq[y]);
            kls_b += lq[y] - lr[y];
            abs_kls += fabs(lq[y] - lr[y]);
        }
        REQUIRE(fabs(s->kl - kl_a) <= tol_a, "sample %d: kl %.17g, from model_forward %.17g (tolerance %.2e)", i, s->kl,
                kl_a, tol_a);
        REQUIRE(fabs(s->kl - kl_b) <= 1e-10 * (abs_b + s->n_positions), "sample %d: kl %.17g, from the logits %.17g", i,
                s->kl, kl_b);
        REQUIRE(fabs(s->logq - lq_b) <= 1e-10 * (abs_lq + s->n_positions),
                "sample %d: logq %.17g, from the logits %.17g", i, s->logq, lq_b);
        REQUIRE(fabs(s->kl_sampled - kls_b) <= 1e-10 * (abs_kls + s->n_positions),
                "sample %d: kl_sampled %.17g, from the logits %.17g", i, s->kl_sampled, kls_b);
        REQUIRE_TRUE(s->kl > 0.0);
        if (fabs(s->kl - kl_a) / kl_a > worst_a[0]) worst_a[0] = fabs(s->kl - kl_a) / kl_a, worst_a[1] = tol_a / kl_a;
        if (fabs(s->kl - kl_b) / kl_b > *worst_b) *worst_b = fabs(s->kl - kl_b) / kl_b;
        free(seq), free(zp), free(zr), free(fp), free(fr);
    }
    free(res);
    free(q), free(lq), free(lr);
    model_free(&pol);
    model_free(&ref);
}

START_TEST(test_exact_kl) {
    static const sample_filter fs[3] = {{1.0, 0, 1.0}, {0.7, 10, 1.0}, {0.8, 0, 0.9}};
    int k;
    for (k = 0; k < 3; k++) {
        double worst_a[2] = {0.0, 0.0}, worst_b = 0.0;
        check_kl_runs(&fs[k], worst_a, &worst_b);
        printf(
            "  exact KL, T %g top-k %d top-p %g: largest relative difference %.2e from model_forward (tolerance there "
            "%.2e), %.2e from the logits (tolerance 1e-10)\n",
            fs[k].temperature, fs[k].top_k, fs[k].top_p, worst_a[0], worst_a[1], worst_b);
    }
}
END_TEST

/* KL(pi || pi) = 0 exactly: with the reference a copy of the policy (and the
 * policy itself), T = 1 and no filter, log q and log r are the same bits at
 * every position, so every term is exactly 0. With a temperature the sampled
 * distribution moves away from the reference and the KL is positive. */
START_TEST(test_kl_self_zero) {
    int pr[3] = {4, 40, 22}, plen = 3, i;
    const int *prompts[1] = {pr};
    model pol, copy;
    sample_config c;
    rec *a, *b;
    dpo_err e;
    random_model(&pol, &POL_CFG, 501, 0.4);
    REQUIRE(model_create(&copy, &POL_CFG, &e) == 0, "%s", e.msg);
    memcpy(copy.params_mem, pol.params_mem, pol.num_params * sizeof(float));
    memset(&c, 0, sizeof c);
    c.filter.temperature = 1.0, c.filter.top_k = 0, c.filter.top_p = 1.0;
    c.seed = 3, c.n = 32, c.max_new = 10, c.batch = 8, c.eos = rank_token(&pol, pr, plen, 2);
    a = run_all(&pol, &copy, prompts, &plen, 1, &c, 2);
    b = run_all(&pol, &pol, prompts, &plen, 1, &c, 1);
    for (i = 0; i < 32; i++) {
        REQUIRE(a[i].kl == 0.0 && a[i].kl_sampled == 0.0, "sample %d: kl %.17g, kl_sampled %.17g", i, a[i].kl,
                a[i].kl_sampled);
        REQUIRE_TRUE(b[i].kl == 0.0 && b[i].kl_sampled == 0.0);
        REQUIRE_TRUE(a[i].n_positions > 0 && a[i].logq < 0.0);
    }
    free(a);
    free(b);
    c.filter.temperature = 0.7;
    a = run_all(&pol, &copy, prompts, &plen, 1, &c, 1);
    for (i = 0; i < 32; i++) REQUIRE_TRUE(a[i].kl > 0.0);
    free(a);
    model_free(&pol);
    model_free(&copy);
}
END_TEST

/* The sampled-token estimate sum_t log q(y_t) - log r(y_t) has the exact KL
 * as its expectation (at each position, E[log q(y) - log r(y) | prefix] = KL_t).
 * Over 4,000 samples of up to 3 tokens, the per-sample difference
 * D = kl_sampled - kl has mean 0: |mean D| must be within 4 of its standard
 * errors sd(D) / sqrt(n) (which are computed from the samples). */
START_TEST(test_kl_estimator_converges) {
    enum { N = 4000 };
    static const sample_filter fs[2] = {{1.0, 0, 1.0}, {0.8, 20, 0.95}};
    int pr[2] = {30, 7}, plen = 2, k, i;
    const int *prompts[1] = {pr};
    model pol, ref;
    sample_config c;
    random_model(&pol, &REF_CFG, 601, 0.4);
    random_model(&ref, &REF_CFG, 602, 0.4);
    for (k = 0; k < 2; k++) {
        double mk = 0.0, ms = 0.0, md = 0.0, vd = 0.0, vs = 0.0, se_d, se_s;
        int n_eos = 0;
        rec *res;
        memset(&c, 0, sizeof c);
        c.filter = fs[k];
        c.seed = 8080 + (uint64_t)k, c.n = N, c.max_new = 3, c.batch = 64, c.eos = rank_token(&pol, pr, plen, 1);
        res = run_all(&pol, &ref, prompts, &plen, 1, &c, 2);
        for (i = 0; i < N; i++) n_eos += res[i].finish == SAMPLE_EOS;
        REQUIRE(n_eos > N / 10 && n_eos < N - N / 10, "%d of %d end with end-of-text", n_eos, N);
        for (i = 0; i < N; i++) {
            mk += res[i].kl;
            ms += res[i].kl_sampled;
            md += res[i].kl_sampled - res[i].kl;
        }
        mk /= N, ms /= N, md /= N;
        for (i = 0; i < N; i++) {
            double d = res[i].kl_sampled - res[i].kl - md, s = res[i].kl_sampled - ms;
            vd += d * d;
            vs += s * s;
        }
        se_d = sqrt(vd / (N - 1) / N);
        se_s = sqrt(vs / (N - 1) / N);
        printf("  KL estimate, T %g top-k %d top-p %g, %d samples: exact mean %.5f, sampled mean %.5f; difference "
               "%.5f = %.2f SE of the difference (SE %.5f; SE of the sampled mean %.5f); %d end with end-of-text\n",
               fs[k].temperature, fs[k].top_k, fs[k].top_p, N, mk, ms, md, md / se_d, se_d, se_s, n_eos);
        REQUIRE_TRUE(mk > 0.1); /* a real divergence to estimate */
        REQUIRE(fabs(md) < 4.0 * se_d, "sampled KL mean %.5f vs exact %.5f: %.2f standard errors", ms, mk, md / se_d);
        free(res);
    }
    model_free(&pol);
    model_free(&ref);
}
END_TEST

/* ======================================================================== */
/* 7. edges                                                                  */
/* ======================================================================== */

/* Stops: at max_new (greedy, the end-of-text an id greedy never picks), at the
 * context (a prompt of n_ctx - 1 tokens gives exactly one token; one of 3 in a
 * context of 8 gives 5), and at the reference's context when it is shorter. */
START_TEST(test_stops) {
    model_config small = {1, 2, 16, 8, 64, 1e-5, 63, 0}, smaller = {1, 2, 16, 6, 64, 1e-5, 63, 0};
    int pr[7] = {1, 2, 3, 4, 5, 6, 7}, plen, i, V = 64;
    const int *prompts[1] = {pr};
    model m, mr;
    sample_config c;
    rec *res;
    random_model(&m, &small, 701, 0.4);
    random_model(&mr, &smaller, 702, 0.4);
    memset(&c, 0, sizeof c);
    c.filter.temperature = 0.0, c.filter.top_k = 0, c.filter.top_p = 1.0;
    c.seed = 1, c.n = 2, c.max_new = 3, c.batch = 2, c.eos = 0;
    /* the greedy path of prompt [1, 2] for 3 tokens, then an eos it does not contain */
    plen = 2;
    {
        int seq[5] = {1, 2}, used[64] = {0}, t;
        for (t = 0; t < 3; t++) {
            float *z = prefill_logits(&m, seq, 2 + t);
            seq[2 + t] = argmax_lowest(z + (size_t)(1 + t) * V, V);
            used[seq[2 + t]] = 1;
            free(z);
        }
        for (c.eos = 0; used[c.eos]; c.eos++) continue;
    }
    res = run_all(&m, NULL, prompts, &plen, 1, &c, 1);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(res[i].finish, SAMPLE_LENGTH);
        ck_assert_int_eq(res[i].n_ids, 3);
        ck_assert_int_eq(res[i].n_positions, 3);
    }
    free(res);
    /* the context: 7 tokens of 8 leave one; 3 of 8 leave 5 */
    c.max_new = 20;
    plen = 7;
    c.filter.temperature = 1.0;
    c.n = 50;
    res = run_all(&m, NULL, prompts, &plen, 1, &c, 1);
    for (i = 0; i < 50; i++) {
        ck_assert_int_eq(res[i].n_positions, 1);
        ck_assert_int_eq(res[i].n_ids, res[i].finish == SAMPLE_LENGTH ? 1 : 0);
    }
    free(res);
    plen = 3;
    res = run_all(&m, NULL, prompts, &plen, 1, &c, 1);
    for (i = 0; i < 50; i++)
        if (res[i].finish == SAMPLE_LENGTH) ck_assert_int_eq(res[i].n_ids, 5);
    free(res);
    /* a reference with a context of 6: 3 + 3, and a prompt of 6 is refused */
    res = run_all(&m, &mr, prompts, &plen, 1, &c, 1);
    for (i = 0; i < 50; i++) {
        REQUIRE_TRUE(res[i].n_positions <= 3);
        if (res[i].finish == SAMPLE_LENGTH) ck_assert_int_eq(res[i].n_ids, 3);
    }
    free(res);
    {
        dpo_err e;
        plen = 6;
        ck_assert_int_ne(sample_run(&m, &mr, prompts, &plen, 1, &c, NULL, NULL, NULL, &e), 0);
        REQUIRE(strstr(e.msg, "prompt 1 has 6 tokens") != NULL, "%s", e.msg);
    }
    model_free(&m);
    model_free(&mr);
}
END_TEST

static int count_emit(void *ctx, const sample_result *r, dpo_err *e) {
    (void)r, (void)e;
    ++*(long *)ctx;
    return 0;
}

/* Refused: prompts of 0 or >= n_ctx tokens, ids outside the vocabulary, bad
 * counts, an end-of-text id outside the vocabulary, a reference of another
 * vocabulary, every bad filter value (and the edges that are allowed pass);
 * nothing is emitted. No prompts: success, nothing emitted. An emit callback's
 * error stops the run at once with its message. */
START_TEST(test_refusals) {
    model_config other = {1, 2, 16, 32, 65, 1e-5, 64, 0};
    int pr[40], plen = 4, i, lens2[2] = {3, 4};
    const int *prompts[2] = {pr, pr};
    long emitted = 0;
    model m, mo;
    sample_config c, good;
    dpo_err e;
    collector col;
    sample_filter bad[9] = {{-1.0, 0, 1.0}, {1e-7, 0, 1.0}, {2e6, 0, 1.0}, {NAN, 0, 1.0}, {INFINITY, 0, 1.0},
                            {1.0, -1, 1.0}, {1.0, 0, 0.0},  {1.0, 0, 1.5}, {1.0, 0, NAN}};
    sample_filter ok[5] = {{0.0, 0, 1.0}, {1e-6, 0, 1.0}, {1e6, 0, 1.0}, {1.0, 100000, 1e-300}, {1.0, 0, 1.0}};
    for (i = 0; i < 40; i++) pr[i] = i;
    random_model(&m, &POL_CFG, 801, 0.4);
    random_model(&mo, &other, 802, 0.4);
    memset(&good, 0, sizeof good);
    good.filter.temperature = 1.0, good.filter.top_k = 0, good.filter.top_p = 1.0;
    good.seed = 1, good.n = 2, good.max_new = 4, good.batch = 2, good.eos = 63;
    for (i = 0; i < 9; i++) {
        REQUIRE(sample_filter_validate(&bad[i], &e) != 0, "filter %d accepted", i);
        c = good;
        c.filter = bad[i];
        ck_assert_int_ne(sample_run(&m, NULL, prompts, &plen, 1, &c, count_emit, NULL, &emitted, &e), 0);
    }
    for (i = 0; i < 5; i++) REQUIRE(sample_filter_validate(&ok[i], &e) == 0, "filter %d: %s", i, e.msg);
    /* prompts */
    plen = 0;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, &plen, 1, &good, count_emit, NULL, &emitted, &e), 0);
    plen = 32;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, &plen, 1, &good, count_emit, NULL, &emitted, &e), 0);
    REQUIRE(strstr(e.msg, "prompt 1 has 32 tokens") != NULL, "%s", e.msg);
    plen = 31; /* the longest allowed */
    REQUIRE(sample_run(&m, NULL, prompts, &plen, 1, &good, count_emit, NULL, &emitted, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(emitted, 2);
    emitted = 0;
    pr[2] = 64;
    lens2[1] = 3;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, lens2, 2, &good, count_emit, NULL, &emitted, &e), 0);
    pr[2] = -1;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, lens2, 2, &good, count_emit, NULL, &emitted, &e), 0);
    pr[2] = 2;
    lens2[1] = 0; /* the second prompt empty */
    ck_assert_int_ne(sample_run(&m, NULL, prompts, lens2, 2, &good, count_emit, NULL, &emitted, &e), 0);
    REQUIRE(strstr(e.msg, "prompt 2") != NULL, "%s", e.msg);
    /* counts and ids */
    plen = 4;
    c = good, c.n = 0;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, &plen, 1, &c, count_emit, NULL, &emitted, &e), 0);
    c = good, c.max_new = 0;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, &plen, 1, &c, count_emit, NULL, &emitted, &e), 0);
    c = good, c.batch = 0;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, &plen, 1, &c, count_emit, NULL, &emitted, &e), 0);
    c = good, c.eos = 64;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, &plen, 1, &c, count_emit, NULL, &emitted, &e), 0);
    c = good, c.eos = -1;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, &plen, 1, &c, count_emit, NULL, &emitted, &e), 0);
    ck_assert_int_ne(sample_run(&m, &mo, prompts, &plen, 1, &good, count_emit, NULL, &emitted, &e), 0);
    REQUIRE(strstr(e.msg, "vocabulary") != NULL, "%s", e.msg);
    ck_assert_int_ne(sample_run(&m, NULL, prompts, &plen, -1, &good, count_emit, NULL, &emitted, &e), 0);
    ck_assert_int_eq(emitted, 0);
    /* no prompts: nothing to do, nothing emitted */
    ck_assert_int_eq(sample_run(&m, NULL, prompts, &plen, 0, &good, count_emit, NULL, &emitted, &e), 0);
    ck_assert_int_eq(emitted, 0);
    /* the callback's error stops the run on its 3rd call */
    memset(&col, 0, sizeof col);
    col.cap = 20, col.n_per = 10, col.stop_at = 3;
    col.recs = calloc(20, sizeof(rec));
    ck_assert_ptr_nonnull(col.recs);
    c = good, c.n = 10, c.batch = 3;
    lens2[1] = 4;
    ck_assert_int_ne(sample_run(&m, NULL, prompts, lens2, 2, &c, collect_emit, NULL, &col, &e), 0);
    ck_assert_int_eq(col.emits, 3);
    ck_assert_int_eq(col.n_recs, 2);
    ck_assert_str_eq(e.msg, "stopped by the callback at 3");
    free(col.recs);
    model_free(&m);
    model_free(&mo);
}
END_TEST

/* ======================================================================== */

static Suite *sample_suite(void) {
    Suite *s = suite_create("sample");
    TCase *t = tcase_create("distribution");
    tcase_add_test(t, test_distribution_matches_reference);
    tcase_add_test(t, test_distribution_edges);
    tcase_add_test(t, test_draw_boundaries);
    tcase_add_test(t, test_kl_by_hand);
    suite_add_tcase(s, t);
    t = tcase_create("generation");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_greedy_generation);
    tcase_add_test(t, test_chi_square_draws);
    tcase_add_test(t, test_chi_square_generation);
    tcase_add_test(t, test_run_deterministic);
    tcase_add_test(t, test_logq_equals_forward);
    tcase_add_test(t, test_exact_kl);
    tcase_add_test(t, test_kl_self_zero);
    tcase_add_test(t, test_kl_estimator_converges);
    tcase_add_test(t, test_stops);
    tcase_add_test(t, test_refusals);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return testutil_run(sample_suite()); }
