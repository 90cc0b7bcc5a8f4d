/* tests/test_ppo.c - Check suite for ppo.c, the arithmetic of PPO, against
 * hand-worked examples and independent computations:
 *
 *   - generalised advantage estimation on a worked example (below), and for
 *     random sequences its two limits: lam = 1 gives the return minus the
 *     value, lam = 0 the one-step error;
 *   - the per-token rewards of the KL-regularised objective;
 *   - whitening: mean 0 and unbiased variance 1;
 *   - the clipped surrogate and the clipped value loss against their formulas,
 *     and their gradients against central finite differences on both sides of
 *     each clip, with the clipped tokens' gradients exactly 0;
 *   - the adaptive KL coefficient at, above, below and far from its target. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

#include "model.h"
#include "ppo.h"
#include "ppo_train.h"
#include "tokenizer.h"
#include "util.h"

#define TOK_DIR "data/sentiment/sft" /* the experiment's tokenizer: 2000 tokens, <|endoftext|> = 1999 */

/* The worked example, gamma 1 and lam 0.95, three tokens:
 *   rewards  0.1   -0.2   1.0
 *   values   0.5    0.25  0.375      (exact in float)
 * t = 2: delta = 1.0 + 0 - 0.375              = 0.625   A = 0.625               R = 1.0
 * t = 1: delta = -0.2 + 0.375 - 0.25          = -0.075  A = -0.075 + 0.95 0.625 = 0.51875   R = 0.76875
 * t = 0: delta = 0.1 + 0.25 - 0.5             = -0.15   A = -0.15 + 0.95 0.51875 = 0.3428125  R = 0.8428125 */
START_TEST(test_gae_worked_example) {
    const double r[3] = {0.1, -0.2, 1.0}, wa[3] = {0.3428125, 0.51875, 0.625}, wr[3] = {0.8428125, 0.76875, 1.0};
    const float v[3] = {0.5f, 0.25f, 0.375f};
    double a[3], ret[3];
    int t;
    ppo_gae(a, ret, r, v, 3, 1.0, 0.95);
    for (t = 0; t < 3; t++) {
        ck_assert_msg(fabs(a[t] - wa[t]) < 1e-12, "A_%d = %.17g, want %.17g", t, a[t], wa[t]);
        ck_assert_msg(fabs(ret[t] - wr[t]) < 1e-12, "R_%d = %.17g, want %.17g", t, ret[t], wr[t]);
    }
    /* one token: A = r - V */
    ppo_gae(a, ret, r + 2, v, 1, 1.0, 0.95);
    ck_assert(a[0] == 1.0 - 0.5 && ret[0] == 1.0);
}
END_TEST

/* lam = 1: A_t = sum_{k >= t} gamma^(k-t) r_k - V_t; lam = 0: A_t = r_t + gamma V_{t+1} - V_t;
 * for random lengths, rewards, values and gamma. */
START_TEST(test_gae_limits) {
    util_rng g;
    int trial;
    util_rng_seed(&g, 3);
    for (trial = 0; trial < 200; trial++) {
        int n = 1 + (int)(util_rng_u64(&g) % 40), t, k;
        double r[40], a[40], ret[40], gamma = trial % 2 ? 1.0 : util_rng_uniform(&g);
        float v[40];
        for (t = 0; t < n; t++) {
            r[t] = util_rng_normal(&g);
            v[t] = (float)util_rng_normal(&g);
        }
        ppo_gae(a, ret, r, v, n, gamma, 1.0);
        for (t = 0; t < n; t++) {
            double G = 0.0, p = 1.0;
            for (k = t; k < n; k++, p *= gamma) G += p * r[k];
            ck_assert_msg(fabs(a[t] - (G - v[t])) < 1e-10, "lam 1, n %d, t %d: %.17g vs %.17g", n, t, a[t], G - v[t]);
            ck_assert(fabs(ret[t] - G) < 1e-10);
        }
        ppo_gae(a, ret, r, v, n, gamma, 0.0);
        for (t = 0; t < n; t++) {
            double want = r[t] + gamma * (t + 1 < n ? (double)v[t + 1] : 0.0) - v[t];
            ck_assert_msg(fabs(a[t] - want) < 1e-12, "lam 0, n %d, t %d", n, t);
        }
    }
}
END_TEST

START_TEST(test_token_rewards) {
    const float lp[4] = {-1.0f, -2.5f, -0.25f, -3.0f}, ref[4] = {-1.5f, -2.0f, -0.25f, -1.0f};
    double r[4], kl = ppo_token_rewards(r, lp, ref, 4, 0.75, 0.1);
    /* kl_t = 0.5, -0.5, 0, -2: sum -2; r_t = -0.1 kl_t, plus the score on the last */
    ck_assert(fabs(kl - -2.0) < 1e-15);
    ck_assert(fabs(r[0] - -0.05) < 1e-15 && fabs(r[1] - 0.05) < 1e-15 && r[2] == 0.0);
    ck_assert(fabs(r[3] - (0.2 + 0.75)) < 1e-15);
}
END_TEST

START_TEST(test_whiten) {
    util_rng g;
    double x[257], m = 0.0, v = 0.0, one = 5.0;
    int i;
    util_rng_seed(&g, 4);
    for (i = 0; i < 257; i++) x[i] = 3.0 + 2.0 * util_rng_normal(&g);
    ppo_whiten(x, 257);
    for (i = 0; i < 257; i++) m += x[i];
    m /= 257;
    for (i = 0; i < 257; i++) v += (x[i] - m) * (x[i] - m);
    v /= 256;
    ck_assert_msg(fabs(m) < 1e-14 && fabs(v - 1.0) < 1e-8, "mean %g var %.12g", m, v);
    ppo_whiten(&one, 1);
    ck_assert(one == 0.0);
}
END_TEST

/* the per-token loss of the clipped surrogate, written out again */
static double surrogate(double lp, double old, double a, double eps) {
    double rho = exp(lp - old), rc = fmin(fmax(rho, 1.0 - eps), 1.0 + eps);
    return fmax(-a * rho, -a * rc);
}

/* Random tokens with log-ratios in [-0.6, 0.6] (rho from 0.55 to 1.8, so
 * inside the clip and outside it on both sides) and advantages of both signs:
 * the loss against the formula, each token's gradient against central
 * differences of the formula (tokens within 1e-4 of a kink skipped), the
 * clipped count against the tokens where the clipped term is larger, and the
 * clipped tokens' gradients exactly 0. */
START_TEST(test_policy_loss) {
    enum { N = 400 };
    util_rng g;
    float lp[N], old[N], d[N];
    double adv[N], eps = 0.2, scale = 1.0 / N, want = 0.0, sq = 0.0, wsq = 0.0, loss;
    long clipped = 0, wclipped = 0, sides[4] = {0};
    int t, checked = 0;
    util_rng_seed(&g, 5);
    for (t = 0; t < N; t++) {
        old[t] = (float)(-4.0 * util_rng_uniform(&g));
        lp[t] = old[t] + (float)(1.2 * util_rng_uniform(&g) - 0.6);
        adv[t] = util_rng_normal(&g);
    }
    loss = ppo_policy_loss(d, lp, old, adv, N, eps, scale, &clipped, &sq);
    for (t = 0; t < N; t++) {
        double l = lp[t], o = old[t], rho = exp(l - o), h = 1e-6;
        double fd = (surrogate(l + h, o, adv[t], eps) - surrogate(l - h, o, adv[t], eps)) / (2 * h);
        int is_clipped = -adv[t] * fmin(fmax(rho, 1 - eps), 1 + eps) > -adv[t] * rho;
        want += surrogate(l, o, adv[t], eps);
        wsq += (l - o) * (l - o);
        wclipped += is_clipped;
        sides[(rho > 1.0) * 2 + (adv[t] > 0)] += is_clipped;
        if (is_clipped) ck_assert_msg(d[t] == 0.0f, "token %d is clipped but has gradient %g", t, d[t]);
        if (fabs(rho - (1 + eps)) < 1e-4 || fabs(rho - (1 - eps)) < 1e-4) continue;
        ck_assert_msg(fabs(d[t] / scale - fd) < 1e-6 * fmax(1.0, fabs(fd)), "token %d: %.9g vs fd %.9g (rho %g, A %g)",
                      t, d[t] / scale, fd, rho, adv[t]);
        checked++;
    }
    ck_assert_msg(fabs(loss - want * scale) < 1e-12, "loss %.17g vs %.17g", loss, want * scale);
    ck_assert_int_eq(clipped, wclipped);
    ck_assert(fabs(sq - wsq) < 1e-9);
    /* clipping happened on both sides: good actions pushed up (rho > 1 + eps, A > 0)
       and bad actions pushed down (rho < 1 - eps, A < 0); never on the other two */
    ck_assert(sides[3] > 10 && sides[0] > 10 && sides[1] == 0 && sides[2] == 0);
    ck_assert(checked > N * 9 / 10);
}
END_TEST

static double vloss(double v, double old, double r, double eps) {
    double vc = old + fmin(fmax(v - old, -eps), eps);
    return 0.5 * fmax((v - r) * (v - r), (vc - r) * (vc - r));
}

START_TEST(test_value_loss) {
    enum { N = 400 };
    util_rng g;
    float v[N], old[N], d[N];
    double ret[N], eps = 0.2, scale = 0.5, want = 0.0, loss;
    long clipped = 0, wclipped = 0;
    int t;
    util_rng_seed(&g, 6);
    for (t = 0; t < N; t++) {
        old[t] = (float)util_rng_normal(&g);
        v[t] = old[t] + (float)(util_rng_uniform(&g) - 0.5);
        ret[t] = old[t] + util_rng_normal(&g) * 0.5;
    }
    loss = ppo_value_loss(d, v, old, ret, N, eps, scale, &clipped);
    for (t = 0; t < N; t++) {
        double h = 1e-6, x = v[t], o = old[t];
        double fd = (vloss(x + h, o, ret[t], eps) - vloss(x - h, o, ret[t], eps)) / (2 * h);
        double vc = o + fmin(fmax(x - o, -eps), eps);
        int is_clipped = (vc - ret[t]) * (vc - ret[t]) > (x - ret[t]) * (x - ret[t]);
        want += vloss(x, o, ret[t], eps);
        wclipped += is_clipped;
        if (is_clipped) ck_assert(d[t] == 0.0f);
        if (fabs(fabs(x - o) - eps) < 1e-4) continue;
        ck_assert_msg(fabs(d[t] / scale - fd) < 1e-6 * fmax(1.0, fabs(fd)), "token %d: %.9g vs %.9g", t, d[t] / scale, fd);
    }
    ck_assert(fabs(loss - want * scale) < 1e-12);
    ck_assert_int_eq(clipped, wclipped);
    ck_assert(wclipped > 20 && wclipped < N - 20);
}
END_TEST

START_TEST(test_kl_controller) {
    double c = 0.2;
    ck_assert(ppo_kl_update(c, 6.0, 6.0, 64, 10000) == c);
    ck_assert(fabs(ppo_kl_update(c, 6.6, 6.0, 64, 10000) - c * (1 + 0.1 * 64 / 10000.0)) < 1e-15);
    ck_assert(fabs(ppo_kl_update(c, 60.0, 6.0, 64, 10000) - c * (1 + 0.2 * 64 / 10000.0)) < 1e-15);
    ck_assert(fabs(ppo_kl_update(c, 0.0, 6.0, 64, 10000) - c * (1 - 0.2 * 64 / 10000.0)) < 1e-15);
    ck_assert(fabs(ppo_kl_update(c, 3.0, 6.0, 100, 100) - c * 0.8) < 1e-15);
}
END_TEST

/* ======================================================================== */
/* the loop: a bandit, resuming, threads                                      */
/* ======================================================================== */

typedef struct {
    ppo_metrics m[200];
    int n;
    long calls;
} cap;

static int cap_step(void *ctx, const ppo_metrics *m, long total, dpo_err *e) {
    cap *c = ctx;
    (void)total;
    (void)e;
    ck_assert_int_lt(c->n, 200);
    c->m[c->n++] = *m;
    return 0;
}

/* the bandit's reward: 1 for a first token below 200 (a tenth of the vocabulary), else 0 */
static int bandit_score(void *ctx, long prompt, const int *ids, int n_ids, int ended, double *out, dpo_err *e) {
    cap *c = ctx;
    (void)prompt;
    (void)ended;
    (void)e;
    c->calls++;
    *out = n_ids >= 1 && ids[0] < 200 ? 1.0 : 0.0;
    return 0;
}

/* a tiny random language model with the experiment's tokenizer, and one prompt */
static void make_policy(const char *dir, const char *prompts) {
    model_config cfg = {1, 2, 16, 8, 2000, 1e-5, 1999, 0};
    model m;
    dpo_err e;
    ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
    model_init_random(&m, 17);
    ck_assert_msg(model_save(&m, dir, &e) == 0, "%s", e.msg);
    ck_assert_msg(tok_copy_files(TOK_DIR, dir, &e) == 0, "%s", e.msg);
    model_free(&m);
    {
        static const char rows[] = "{\"prompt\": \"The movie was\"}\n{\"prompt\": \"I\"}\n";
        testutil_write_bytes(prompts, rows, sizeof rows - 1);
    }
}

static void bandit_config(ppo_config *c, const char *pol, const char *prompts, const char *out) {
    ppo_config_defaults(c);
    c->model_dir = pol;
    c->prompts_path = prompts;
    c->out_dir = out;
    c->max_new = 1;
    c->max_prompt_len = 4;
    c->batch = 64;
    c->mini_batch = 16;
    c->micro_batch = 16;
    c->ppo_epochs = 2;
    c->opt.lr = 3e-3;
    c->value_opt.lr = 3e-3;
    c->seed = 3;
}

static void run(const ppo_config *c, cap *k) {
    ppo_callbacks cb;
    dpo_err e;
    memset(&cb, 0, sizeof cb);
    cb.step = cap_step;
    cb.score = bandit_score;
    cb.ctx = k;
    ck_assert_msg(ppo_run(c, &cb, &e) == 0, "ppo_run: %s", e.msg);
}

/* A one-token bandit over 2000 tokens, 200 of which pay 1: at the start a
 * tenth of the rollouts earn it. With the coefficient adapted towards a KL of
 * 1 nat (the controller's horizon short, so that it acts within the run),
 * PPO must raise the reward well above that tenth while the sampled KL of the
 * last steps stays near its target: the KL-regularised optimum at 1 nat puts
 * about 0.7 of the mass on the paying tokens (q ln(q / 0.1) + (1 - q)
 * ln((1 - q) / 0.9) = 1 at q = 0.7). */
START_TEST(test_bandit) {
    char pol[256], prompts[256], out[256];
    ppo_config c;
    static cap k;
    double r0 = 0.0, r1 = 0.0, kl1 = 0.0;
    int i;
    snprintf(pol, sizeof pol, "%s/pol", tmp_root);
    snprintf(prompts, sizeof prompts, "%s/prompts.jsonl", tmp_root);
    snprintf(out, sizeof out, "%s/out", tmp_root);
    make_policy(pol, prompts);
    bandit_config(&c, pol, prompts, out);
    c.steps = 150;
    c.kl_coef = 0.2;
    c.target_kl = 1.0;
    c.kl_horizon = 320;
    memset(&k, 0, sizeof k);
    run(&c, &k);
    ck_assert_int_eq(k.n, 150);
    ck_assert_int_eq(k.calls, 150 * 64);
    for (i = 0; i < 5; i++) r0 += k.m[i].scores / 5;
    for (i = 120; i < 150; i++) {
        r1 += k.m[i].scores / 30;
        kl1 += k.m[i].kl / 30;
    }
    printf("  bandit: reward %.3f (steps 1-5) -> %.3f (121-150), KL of the last 30 steps %.3f (target 1), C %.4f -> %.4f\n",
           r0, r1, kl1, k.m[0].kl_coef, k.m[149].kl_coef);
    for (i = 0; i < 150; i += 10)
        printf("    step %2d: reward %.3f  kl %.3f  C %.4f  clipfrac %.3f  value loss %.4f\n", i + 1, k.m[i].scores,
               k.m[i].kl, k.m[i].kl_coef, k.m[i].clipfrac, k.m[i].loss_value);
    ck_assert_msg(r0 < 0.25, "the bandit pays %.3f at the start", r0);
    ck_assert_msg(r1 > 0.5 && r1 < 0.85, "reward %.3f, not near the KL-regularised optimum's 0.7", r1);
    ck_assert_msg(kl1 > 0.7 && kl1 < 1.4, "KL %.3f is not near its target 1", kl1);
    /* the coefficient that makes 1 nat optimal: 0.1 e^(1/C) / 0.9 = 0.7 / 0.3, C = 0.33 */
    ck_assert_msg(k.m[149].kl_coef > 0.25 && k.m[149].kl_coef < 0.45, "C ended at %.4f", k.m[149].kl_coef);
}
END_TEST

static int same_bytes(const char *a_dir, const char *b_dir, const char *name) {
    char pa[512], pb[512];
    unsigned char *x, *y;
    size_t nx, ny;
    int same;
    snprintf(pa, sizeof pa, "%s/%s", a_dir, name);
    snprintf(pb, sizeof pb, "%s/%s", b_dir, name);
    x = testutil_read_bytes(pa, &nx);
    y = testutil_read_bytes(pb, &ny);
    same = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

/* Six steps in one run on one thread, and three steps then a resumed run to
 * six on two threads, save the same bytes: both models, both optimizers and
 * the state (the adaptive coefficient included). A different seed does not. */
START_TEST(test_resume_and_threads) {
    static const char *const files[] = {"model.safetensors", "optimizer.safetensors", "value.safetensors",
                                        "value_optimizer.safetensors", "ppo_state.json", "value_config.json"};
    char pol[256], prompts[256], a[256], b[256], d[256];
    ppo_config c;
    static cap k;
    int saved = util_threads();
    size_t i;
    snprintf(pol, sizeof pol, "%s/pol", tmp_root);
    snprintf(prompts, sizeof prompts, "%s/prompts.jsonl", tmp_root);
    snprintf(a, sizeof a, "%s/a", tmp_root);
    snprintf(b, sizeof b, "%s/b", tmp_root);
    snprintf(d, sizeof d, "%s/d", tmp_root);
    make_policy(pol, prompts);
    bandit_config(&c, pol, prompts, a);
    c.max_new = 3;
    c.batch = 12;
    c.mini_batch = 5; /* mini-batches of 5, 5 and 2 */
    c.micro_batch = 2;
    c.target_kl = 0.5;
    c.kl_horizon = 100;
    c.steps = 6;
    util_set_threads(1);
    memset(&k, 0, sizeof k);
    run(&c, &k);
    util_set_threads(2);
    c.out_dir = b;
    c.steps = 3;
    run(&c, &k);
    c.steps = 6;
    c.resume_dir = b;
    memset(&k, 0, sizeof k);
    run(&c, &k);
    ck_assert_int_eq(k.n, 3);
    ck_assert_int_eq(k.m[0].step, 4);
    for (i = 0; i < sizeof files / sizeof files[0]; i++)
        ck_assert_msg(same_bytes(a, b, files[i]), "%s differs after resuming", files[i]);
    c.resume_dir = NULL;
    c.out_dir = d;
    c.seed = 4;
    run(&c, &k);
    ck_assert(!same_bytes(a, d, "model.safetensors"));
    util_set_threads(saved);
}
END_TEST

static Suite *ppo_suite(void) {
    Suite *s = suite_create("ppo");
    TCase *t = tcase_create("math");
    tcase_add_test(t, test_gae_worked_example);
    tcase_add_test(t, test_gae_limits);
    tcase_add_test(t, test_token_rewards);
    tcase_add_test(t, test_whiten);
    tcase_add_test(t, test_policy_loss);
    tcase_add_test(t, test_value_loss);
    tcase_add_test(t, test_kl_controller);
    suite_add_tcase(s, t);
    t = tcase_create("training");
    tcase_add_checked_fixture(t, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_bandit);
    tcase_add_test(t, test_resume_and_threads);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return testutil_run(ppo_suite()); }
