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

#include "ppo.h"
#include "util.h"

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
    return s;
}

int main(void) { return testutil_run(ppo_suite()); }
