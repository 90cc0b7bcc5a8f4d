/* tests/test_eval.c - Check suite for eval.c, against values computed here
 * independently:
 *   - the summary: means, standard errors (sd with n - 1, over sqrt n), the '!'
 *     and "but" counts (whole words, any case), length, truncation rate and
 *     distinct-2 on hand-made samples; NaN where a value is undefined (n < 2, no
 *     bigram); the bigram set through several growths;
 *   - eval_pairs: every two samples with different rewards, the higher chosen,
 *     in order, none for ties;
 *   - eval_kl_along: the exact KL and the sampled estimate along given
 *     completions against a brute force in double from full forward passes
 *     (model_forward with every vocabulary id as the target), the end-of-text
 *     position included; a model against itself gives 0 exactly. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>

#include "data.h"
#include "eval.h"
#include "model.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* the summary */

START_TEST(test_summary_numbers) {
    eval_summary s;
    eval_result o;
    dpo_err e;
    static const int ids1[] = {5, 6, 5, 6, 7}, ids2[] = {5, 6}, ids3[] = {9};
    const double r[3] = {0.2, 0.5, 0.9}, kl[3] = {1.0, 3.0, 8.0};
    double mean_r = (0.2 + 0.5 + 0.9) / 3, var_r = 0.0, mean_kl = 4.0, var_kl = 0.0;
    int i;
    eval_summary_init(&s);
    ck_assert_int_eq(eval_summary_add(&s, r[0], kl[0], 0.5, "Great! But, but... butter!", 26, ids1, 5, 0, &e), 0);
    ck_assert_int_eq(eval_summary_add(&s, r[1], kl[1], 2.5, "rebut BUT", 9, ids2, 2, 1, &e), 0);
    ck_assert_int_eq(eval_summary_add(&s, r[2], kl[2], 9.0, "", 0, ids3, 1, 1, &e), 0);
    eval_summary_result(&s, &o);
    for (i = 0; i < 3; i++) {
        var_r += (r[i] - mean_r) * (r[i] - mean_r) / 2;
        var_kl += (kl[i] - mean_kl) * (kl[i] - mean_kl) / 2;
    }
    ck_assert_int_eq(o.n, 3);
    ck_assert_double_eq_tol(o.reward, mean_r, 1e-15);
    ck_assert_double_eq_tol(o.reward_se, sqrt(var_r / 3), 1e-12);
    ck_assert_double_eq_tol(o.kl, mean_kl, 1e-15);
    ck_assert_double_eq_tol(o.kl_se, sqrt(var_kl / 3), 1e-12);
    ck_assert_double_eq_tol(o.kl_sampled, 12.0 / 3, 1e-15);
    ck_assert_double_eq_tol(o.exclaim, 2.0 / 3, 1e-15);  /* "Great!" and "butter!" */
    ck_assert_double_eq_tol(o.but, 3.0 / 3, 1e-15);      /* "But", "but", "BUT"; not butter or rebut */
    ck_assert_double_eq_tol(o.length, 8.0 / 3, 1e-15);
    ck_assert_double_eq_tol(o.truncated, 2.0 / 3, 1e-15);
    /* bigrams: (5,6) (6,5) (5,6) (6,7) and (5,6): 5 of which 3 distinct */
    ck_assert_double_eq_tol(o.distinct2, 3.0 / 5, 1e-15);
    eval_summary_free(&s);

    /* one sample: no standard error; no bigram: no distinct-2 */
    eval_summary_init(&s);
    ck_assert_int_eq(eval_summary_add(&s, 0.7, 0.0, 0.0, "x", 1, ids3, 1, 0, &e), 0);
    eval_summary_result(&s, &o);
    ck_assert(isnan(o.reward_se) && isnan(o.kl_se) && isnan(o.distinct2));
    ck_assert(o.reward == 0.7);
    eval_summary_free(&s);
}
END_TEST

/* distinct-2 over many bigrams: the set grows through several doublings and
 * counts exactly the distinct pairs (checked against a brute-force count). */
START_TEST(test_summary_distinct_many) {
    enum { N = 3000 };
    static int ids[N], seen[64][64];
    eval_summary s;
    eval_result o;
    dpo_err e;
    util_rng r;
    int i, distinct = 0;
    util_rng_seed(&r, 5);
    for (i = 0; i < N; i++) ids[i] = (int)(util_rng_u64(&r) % 64);
    memset(seen, 0, sizeof seen);
    for (i = 0; i + 1 < N; i++)
        if (!seen[ids[i]][ids[i + 1]]++) distinct++;
    eval_summary_init(&s);
    ck_assert_int_eq(eval_summary_add(&s, 0.5, 0.0, 0.0, "", 0, ids, N, 0, &e), 0);
    eval_summary_result(&s, &o);
    ck_assert_double_eq_tol(o.distinct2, (double)distinct / (N - 1), 1e-15);
    eval_summary_free(&s);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* pairs */

START_TEST(test_pairs) {
    const double rw[5] = {1.0, 0.0, 1.0, 0.5, 0.5};
    int c[10], rj[10], n;
    /* (0,1) (0,3) (0,4) (1,2) (1,3) (1,4) (2,3) (2,4); (0,2) and (3,4) tie */
    static const int want_c[8] = {0, 0, 0, 2, 3, 4, 2, 2}, want_r[8] = {1, 3, 4, 1, 1, 1, 3, 4};
    int i;
    n = eval_pairs(c, rj, rw, 5);
    ck_assert_int_eq(n, 8);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(c[i], want_c[i]);
        ck_assert_int_eq(rj[i], want_r[i]);
    }
    ck_assert_int_eq(eval_pairs(c, rj, rw, 1), 0);
    {
        const double same[3] = {0.3, 0.3, 0.3};
        ck_assert_int_eq(eval_pairs(c, rj, same, 3), 0);
    }
}
END_TEST

/* ------------------------------------------------------------------------ */
/* exact KL along given completions */

static void random_model(model *m, const model_config *c, uint64_t seed) {
    dpo_err e;
    util_rng r;
    size_t i;
    ck_assert_int_eq(model_create(m, c, &e), 0);
    util_rng_seed(&r, seed);
    for (i = 0; i < m->num_params; i++) m->params_mem[i] = (float)(0.4 * util_rng_normal(&r));
    model_set_no_grad(m, 1);
}

/* log p(v | seq[0..t]) for every v and every t < n, in double, by full forward
 * passes with every id as the target: lp[t * V + v] */
static void brute_logp(model *m, const int *seq, int n, double *lp) {
    int V = m->cfg.vocab_size, v, t;
    int *tg = malloc((size_t)n * sizeof *tg);
    float *out = malloc((size_t)n * sizeof *out);
    dpo_err e;
    ck_assert(tg && out);
    for (v = 0; v < V; v++) {
        for (t = 0; t < n; t++) tg[t] = v;
        ck_assert_int_eq(model_forward(m, out, seq, tg, &n, 1, &e), 0);
        for (t = 0; t < n; t++) lp[(size_t)t * V + v] = out[t];
    }
    free(tg);
    free(out);
}

START_TEST(test_kl_along_brute_force) {
    model_config cfg = {2, 2, 16, 40, 37, 1e-5, 36, 0};
    model pol, ref;
    data_set d;
    dpo_err e;
    util_rng r;
    int row, saved = util_threads();
    double kl[4], kls[4];
    random_model(&pol, &cfg, 1);
    random_model(&ref, &cfg, 2);
    util_rng_seed(&r, 9);
    /* four rows by hand: prompt ++ completion ++ [eos] in the pool, as data_load_sft makes them */
    memset(&d, 0, sizeof d);
    d.sft = 1;
    d.n_rows = 4;
    d.rows = calloc(4, sizeof *d.rows);
    d.pool = malloc(4 * 30 * sizeof *d.pool);
    ck_assert(d.rows && d.pool);
    for (row = 0; row < 4; row++) {
        int np = 1 + row * 3, nc = 2 + row * 4, t;
        d.rows[row].off = d.n_pool;
        d.rows[row].n_prompt = np;
        d.rows[row].n_chosen = nc;
        for (t = 0; t < np + nc; t++)
            d.pool[d.n_pool + (size_t)t] = t == np + nc - 1 ? 36 : (int)(util_rng_u64(&r) % 36);
        d.n_pool += (size_t)(np + nc);
    }
    util_set_threads(1 + _i % 2);
    ck_assert_int_eq(eval_kl_along(&pol, &ref, &d, kl, kls, NULL, NULL, &e), 0);
    for (row = 0; row < 4; row++) {
        const data_row *w = &d.rows[row];
        const int *seq = d.pool + w->off;
        int n = w->n_prompt + w->n_chosen - 1, t, v, V = cfg.vocab_size;
        double *lp = malloc((size_t)n * V * sizeof *lp), *lr = malloc((size_t)n * V * sizeof *lr);
        double want = 0.0, want_s = 0.0, mag = 0.0;
        ck_assert(lp && lr);
        brute_logp(&pol, seq, n, lp);
        brute_logp(&ref, seq, n, lr);
        for (t = w->n_prompt - 1; t < n; t++) { /* positions that predict a completion token or the eos */
            for (v = 0; v < V; v++) {
                double term = exp(lp[(size_t)t * V + v]) * (lp[(size_t)t * V + v] - lr[(size_t)t * V + v]);
                want += term;
                mag += fabs(term);
            }
            want_s += lp[(size_t)t * V + seq[t + 1]] - lr[(size_t)t * V + seq[t + 1]];
        }
        /* the brute force rounds each log-prob to float (model_forward's output):
         * 2^-24 relative per log-prob, through p and the difference */
        ck_assert_msg(fabs(kl[row] - want) <= 1e-6 * (mag + 1.0), "row %d: kl %.12g, brute force %.12g", row, kl[row],
                      want);
        ck_assert_msg(fabs(kls[row] - want_s) <= 1e-6 * (fabs(want_s) + 1.0), "row %d: kl_sampled %.12g, brute force %.12g",
                      row, kls[row], want_s);
        ck_assert(kl[row] > 0.0);
        free(lp);
        free(lr);
    }
    /* a model against itself: 0 exactly */
    ck_assert_int_eq(eval_kl_along(&pol, &pol, &d, kl, kls, NULL, NULL, &e), 0);
    for (row = 0; row < 4; row++) ck_assert(kl[row] == 0.0 && kls[row] == 0.0);
    /* pairs data is refused */
    d.sft = 0;
    ck_assert_int_ne(eval_kl_along(&pol, &ref, &d, kl, kls, NULL, NULL, &e), 0);
    d.sft = 1;
    util_set_threads(saved);
    data_free(&d);
    model_free(&pol);
    model_free(&ref);
}
END_TEST

static Suite *eval_suite(void) {
    Suite *s = suite_create("eval");
    TCase *t = tcase_create("eval");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_summary_numbers);
    tcase_add_test(t, test_summary_distinct_many);
    tcase_add_test(t, test_pairs);
    tcase_add_loop_test(t, test_kl_along_brute_force, 0, 2);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return testutil_run(eval_suite()); }
