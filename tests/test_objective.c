/* tests/test_objective.c - Check suite for objective.c: every loss of the DPO
 * family and its derivatives, checked
 *   (a) against values worked out by hand below (each literal has its arithmetic
 *       in a comment; the digits were computed with python3 and mpmath at 40
 *       significant digits, then rounded to 17-20),
 *   (b) against central finite differences of obj_loss_batch itself, in double,
 *       over every policy_chosen, policy_rejected and (unlikelihood) every
 *       tok_rejected entry, to 1e-7 relative;
 * and the properties the derivation promises: policy == reference gives ln 2 and
 * zero rewards; label smoothing 0 is plain DPO; IPO's minimum is at
 * h = 1/(2 beta); the hinge is flat beyond beta h = 1; sft ignores the reference;
 * sft_weight adds exactly its term; extreme inputs stay finite; 1 and 2 threads
 * agree bit for bit; invalid configurations and names are rejected.
 *
 * Finite differences: D(s) = (f(x+s) - f(x-s)) / (2s) has error s^2 f'''/6 + ...,
 * so the test uses Richardson's extrapolation (4 D(s/2) - D(s)) / 3, whose error
 * is O(s^4), with s = 2^-10. Every input is a multiple of 2^-8 of size below 64,
 * so x +- s and x +- s/2 are exact in double (and, for the per-token log-probs,
 * which are below 4 in size, in float). Losses and gradients are kept at sizes
 * where the rounding error of f (a few ulps of the mean loss, divided by s) stays
 * far below 1e-7 of the gradient being checked. The per-token gradients are floats,
 * so they carry one float rounding (6e-8 relative) of their own. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objective.h"
#include "util.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF /* as in objective.c: round every operation separately */
#endif

#define MAXP 8                 /* pairs in a finite-difference batch */
#define FD_STEP (1.0 / 1024.0) /* s = 2^-10 */
#define FD_REL 1e-7
#define HAND_REL 1e-12

/* ======================================================================== */
/* helpers                                                                   */
/* ======================================================================== */

/* |got - want| <= rel * max(|got|, |want|): relative, and exact when want is 0. */
static void close_n(double got, double want, double rel, const char *what, int line) {
    double err = fabs(got - want), scale = fmax(fabs(got), fabs(want));
    ck_assert_msg(err <= rel * scale, "line %d: %s = %.17g, want %.17g (error %.3g, allowed %.3g)",
                  line, what, got, want, err, rel * scale);
}
#define CLOSE(got, want, rel) close_n((got), (want), (rel), #got, __LINE__)

static obj_loss_config mkcfg(obj_loss_kind k, double beta, double ls, double alpha, double w) {
    obj_loss_config c;
    memset(&c, 0, sizeof c);
    c.kind = k;
    c.beta = beta;
    c.label_smoothing = ls;
    c.alpha = alpha;
    c.sft_weight = w;
    return c;
}

static obj_pair_in mkpair(double pc, double rc, double pr, double rr, int nc, int nr,
                          const float *tok) {
    obj_pair_in p;
    memset(&p, 0, sizeof p);
    p.policy_chosen = pc;
    p.ref_chosen = rc;
    p.policy_rejected = pr;
    p.ref_rejected = rr;
    p.n_chosen = nc;
    p.n_rejected = nr;
    p.tok_rejected = tok;
    return p;
}

/* One pair as a batch of one (no per-token output). */
static double run1(const obj_loss_config *c, const obj_pair_in *p, obj_pair_out *o) {
    memset(o, 0, sizeof *o);
    return obj_loss_batch(c, p, o, 1, 1.0);
}

static double eval_mean(const obj_loss_config *c, const obj_pair_in *in, int n) {
    obj_pair_out out[MAXP];
    memset(out, 0, sizeof out);
    return obj_loss_batch(c, in, out, n, (double)n);
}

/* Richardson-extrapolated central difference of the batch mean in the double *x. */
static double fd_double(const obj_loss_config *c, const obj_pair_in *in, int n, double *x) {
    double x0 = *x, d[2];
    int k;
    for (k = 0; k < 2; k++) {
        double s = k == 0 ? FD_STEP : FD_STEP / 2, xp = x0 + s, xm = x0 - s, fp, fm;
        *x = xp;
        fp = eval_mean(c, in, n);
        *x = xm;
        fm = eval_mean(c, in, n);
        d[k] = (fp - fm) / (xp - xm);
    }
    *x = x0;
    return (4.0 * d[1] - d[0]) / 3.0;
}

/* The same in the float *x (a per-token log-prob). */
static double fd_float(const obj_loss_config *c, const obj_pair_in *in, int n, float *x) {
    float x0 = *x;
    double d[2];
    int k;
    for (k = 0; k < 2; k++) {
        float s = (float)(k == 0 ? FD_STEP : FD_STEP / 2), xp = x0 + s, xm = x0 - s;
        double fp, fm;
        ck_assert_msg((double)xp - (double)x0 == (double)s && (double)x0 - (double)xm == (double)s,
                      "finite-difference step not exact at %g", (double)x0);
        *x = xp;
        fp = eval_mean(c, in, n);
        *x = xm;
        fm = eval_mean(c, in, n);
        d[k] = (fp - fm) / ((double)xp - (double)xm);
    }
    *x = x0;
    return (4.0 * d[1] - d[0]) / 3.0;
}

/* ======================================================================== */
/* names and configuration                                                   */
/* ======================================================================== */

START_TEST(test_kind_names) {
    static const char *const names[] = {"dpo", "ipo", "hinge", "sft", "unlikelihood"};
    static const obj_loss_kind kinds[] = {OBJ_LOSS_DPO, OBJ_LOSS_IPO, OBJ_LOSS_HINGE, OBJ_LOSS_SFT,
                                          OBJ_LOSS_UNLIKELIHOOD};
    static const char *const bad[] = {"", "DPO", "dpo ", " dpo", "dp", "dpoo", "cdpo", "kto",
                                      "unlikely", "sft\n", "hinge\t"};
    obj_loss_kind k;
    size_t i;
    for (i = 0; i < 5; i++) {
        k = (obj_loss_kind)-1;
        ck_assert_int_eq(obj_loss_kind_parse(names[i], &k), 0);
        ck_assert_int_eq((int)k, (int)kinds[i]);
        ck_assert_str_eq(obj_loss_kind_name(kinds[i]), names[i]);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        k = OBJ_LOSS_HINGE;
        ck_assert_msg(obj_loss_kind_parse(bad[i], &k) == -1, "accepted \"%s\"", bad[i]);
        ck_assert_int_eq((int)k, (int)OBJ_LOSS_HINGE); /* left alone */
    }
    ck_assert_int_eq(obj_loss_kind_parse(NULL, &k), -1);
    ck_assert_str_eq(obj_loss_kind_name((obj_loss_kind)5), "unknown");
    ck_assert_str_eq(obj_loss_kind_name((obj_loss_kind)-1), "unknown");
}
END_TEST

START_TEST(test_config_validate) {
    struct {
        obj_loss_config c;
        const char *want; /* substring of the message */
    } bad[] = {
        {{OBJ_LOSS_DPO, 0.0, 0, 0, 0}, "beta"},
        {{OBJ_LOSS_DPO, -0.1, 0, 0, 0}, "beta"},
        {{OBJ_LOSS_IPO, NAN, 0, 0, 0}, "beta"},
        {{OBJ_LOSS_HINGE, INFINITY, 0, 0, 0}, "beta"},
        {{OBJ_LOSS_SFT, 0.0, 0, 0, 0}, "beta"},
        {{OBJ_LOSS_DPO, 0.1, -0.01, 0, 0}, "label smoothing"},
        {{OBJ_LOSS_DPO, 0.1, 0.5, 0, 0}, "label smoothing"},
        {{OBJ_LOSS_DPO, 0.1, 0.7, 0, 0}, "label smoothing"},
        {{OBJ_LOSS_DPO, 0.1, NAN, 0, 0}, "label smoothing"},
        {{OBJ_LOSS_IPO, 0.1, 0.1, 0, 0}, "dpo loss only"},
        {{OBJ_LOSS_UNLIKELIHOOD, 0.1, 0.1, 1, 0}, "dpo loss only"},
        {{OBJ_LOSS_UNLIKELIHOOD, 0.1, 0, -1, 0}, "alpha"},
        {{OBJ_LOSS_UNLIKELIHOOD, 0.1, 0, NAN, 0}, "alpha"},
        {{OBJ_LOSS_UNLIKELIHOOD, 0.1, 0, INFINITY, 0}, "alpha"},
        {{OBJ_LOSS_DPO, 0.1, 0, 0, -0.5}, "sft weight"},
        {{OBJ_LOSS_DPO, 0.1, 0, 0, NAN}, "sft weight"},
        {{(obj_loss_kind)7, 0.1, 0, 0, 0}, "unknown loss kind"},
        {{(obj_loss_kind)-1, 0.1, 0, 0, 0}, "unknown loss kind"},
    };
    obj_loss_config good[] = {
        {OBJ_LOSS_DPO, 0.1, 0, 0, 0},  {OBJ_LOSS_DPO, 1e-9, 0.4999, 0, 2.0},
        {OBJ_LOSS_IPO, 0.5, 0, 3, 0},  {OBJ_LOSS_HINGE, 10, 0, 0, 0.1},
        {OBJ_LOSS_SFT, 0.1, 0, 0, 0},  {OBJ_LOSS_UNLIKELIHOOD, 0.1, 0, 0, 0},
        {OBJ_LOSS_UNLIKELIHOOD, 0.1, 0, 1.0, 1.0},
    };
    dpo_err e;
    size_t i;
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        e.msg[0] = '\0';
        ck_assert_msg(obj_loss_config_validate(&good[i], &e) == 0, "good config %zu: %s", i, e.msg);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e.msg[0] = '\0';
        ck_assert_msg(obj_loss_config_validate(&bad[i].c, &e) == -1, "bad config %zu accepted", i);
        ck_assert_msg(strstr(e.msg, bad[i].want) != NULL, "bad config %zu: message \"%s\" lacks \"%s\"",
                      i, e.msg, bad[i].want);
        ck_assert_int_eq(obj_loss_config_validate(&bad[i].c, NULL), -1); /* e may be NULL */
    }
    e.msg[0] = '\0';
    ck_assert_int_eq(obj_loss_config_validate(NULL, &e), -1);
    ck_assert(e.msg[0] != '\0');
}
END_TEST

/* An invalid config, n < 1, or a broken pair: NaN, never garbage or a crash. */
START_TEST(test_batch_preconditions) {
    obj_loss_config bad = mkcfg(OBJ_LOSS_DPO, 0.0, 0, 0, 0);
    obj_loss_config ul = mkcfg(OBJ_LOSS_UNLIKELIHOOD, 0.1, 0, 1, 0);
    obj_loss_config dpo = mkcfg(OBJ_LOSS_DPO, 0.1, 0, 0, 0);
    float tok[3] = {-1, -2, -3}, dtok[3];
    obj_pair_in in[2];
    obj_pair_out out[2];
    int t;
    in[0] = mkpair(-10, -12, -15, -15, 4, 3, tok);
    in[1] = mkpair(-5, -4, -6, -6, 2, 3, tok);

    memset(out, 0, sizeof out);
    out[0].d_tok_rejected = dtok;
    ck_assert(isnan(obj_loss_batch(&bad, in, out, 2, 2.0)));
    ck_assert(isnan(out[0].loss) && isnan(out[0].d_chosen) && isnan(out[0].d_rejected));
    ck_assert(isnan(out[0].reward_chosen) && isnan(out[0].reward_rejected) && isnan(out[1].loss));
    for (t = 0; t < 3; t++) ck_assert(isnan(dtok[t]));
    ck_assert_ptr_eq(out[0].d_tok_rejected, dtok); /* the caller's pointer is kept */

    ck_assert(isnan(obj_loss_batch(&dpo, in, out, 0, 0.0)));
    ck_assert(isnan(obj_loss_batch(&dpo, in, out, -3, -3.0)));

    /* n_chosen < 1 spoils that pair (and so the mean), not its neighbour */
    memset(out, 0, sizeof out);
    in[0].n_chosen = 0;
    ck_assert(isnan(obj_loss_batch(&dpo, in, out, 2, 2.0)));
    ck_assert(isnan(out[0].loss) && isnan(out[0].d_chosen));
    ck_assert(isfinite(out[1].loss) && isfinite(out[1].d_chosen));
    in[0].n_chosen = 4;
    in[0].n_rejected = 0;
    ck_assert(isnan(obj_loss_batch(&dpo, in, out, 2, 2.0)));
    ck_assert(isnan(out[0].loss));
    in[0].n_rejected = 3;

    /* unlikelihood needs the per-token log-probs */
    in[1].tok_rejected = NULL;
    ck_assert(isnan(obj_loss_batch(&ul, in, out, 2, 2.0)));
    ck_assert(isfinite(out[0].loss) && isnan(out[1].loss));
    /* ... the other losses do not */
    ck_assert(isfinite(obj_loss_batch(&dpo, in, out, 2, 2.0)));

    /* the other losses write zeros into d_tok_rejected when it is given */
    for (t = 0; t < 3; t++) dtok[t] = 123.0f;
    memset(out, 0, sizeof out);
    out[0].d_tok_rejected = dtok;
    ck_assert(isfinite(obj_loss_batch(&dpo, in, out, 2, 2.0)));
    for (t = 0; t < 3; t++) ck_assert(dtok[t] == 0.0f);
}
END_TEST

/* ======================================================================== */
/* values worked out by hand                                                 */
/* ======================================================================== */

/* DPO, beta = 0.1. pc = -10, rc = -12, pr = rr = -15:
 *   h = (-10 - -12) - (-15 - -15) = 2, beta h = 0.2
 *   loss = -log sigmoid(0.2) = log(1 + exp(-0.2)) = 0.59813886938159183968
 *   d_chosen = -beta sigmoid(-0.2) = -0.1 * 0.45016600268752209144 = -0.045016600268752209144
 *   d_rejected = +0.045016600268752209144
 *   rewards: 0.1 * 2 = 0.2 and 0.1 * 0 = 0.
 * With label smoothing 0 given explicitly this is the same loss. */
START_TEST(test_hand_dpo) {
    obj_pair_in p = mkpair(-10, -12, -15, -15, 4, 3, NULL);
    obj_pair_out o;
    obj_loss_config c = mkcfg(OBJ_LOSS_DPO, 0.1, 0.0, 0, 0);
    double m = run1(&c, &p, &o);
    CLOSE(m, 0.59813886938159183968, HAND_REL);
    CLOSE(o.loss, 0.59813886938159183968, HAND_REL);
    CLOSE(o.d_chosen, -0.045016600268752209144, HAND_REL);
    CLOSE(o.d_rejected, 0.045016600268752209144, HAND_REL);
    CLOSE(o.reward_chosen, 0.2, 1e-15);
    ck_assert(o.reward_rejected == 0.0);
    /* a confident pair keeps its digits: beta 1, h = 40 (pc = 40, the rest 0):
     * loss = log(1 + e^-40) = 4.2483542552915889863e-18 (1 + e^-40 itself rounds to 1),
     * d_chosen = -sigmoid(-40) = -1/(1 + e^40) = -4.2483542552915889773e-18 */
    c.beta = 1.0;
    p = mkpair(40, 0, 0, 0, 1, 1, NULL);
    run1(&c, &p, &o);
    CLOSE(o.loss, 4.2483542552915889863e-18, HAND_REL);
    CLOSE(o.d_chosen, -4.2483542552915889773e-18, HAND_REL);
}
END_TEST

/* Conservative DPO, beta = 0.5, e = 0.1. pc = -20, rc = -18, pr = -9, rr = -10:
 *   h = (-20 - -18) - (-9 - -10) = -2 - 1 = -3, beta h = -1.5
 *   loss = -(1-e) log sigmoid(-1.5) - e log sigmoid(1.5)
 *        = 0.9 log(1 + e^1.5) + 0.1 log(1 + e^-1.5)
 *        = 0.9 * 1.7014132779827524095 + 0.1 * 0.2014132779827524095 = 1.5514132779827524095
 *   dL/dh = -beta [(1-e) sigmoid(1.5) - e sigmoid(-1.5)]
 *         = -0.5 [0.9 * 0.81757447619364365961 - 0.1 * 0.18242552380635634039]
 *         = -0.3587872380968218298 = d_chosen = -d_rejected
 *   rewards: 0.5 * -2 = -1, 0.5 * 1 = 0.5.
 * And as e -> 0 the loss tends to plain DPO: e = 1e-12 differs from e = 0 by
 * about 1e-12 * (log(1 + e^-1.5) - log(1 + e^1.5)) = -1.5e-12 relative to 1.70. */
START_TEST(test_hand_cdpo) {
    obj_pair_in p = mkpair(-20, -18, -9, -10, 4, 3, NULL);
    obj_pair_out o, o0, oe;
    obj_loss_config c = mkcfg(OBJ_LOSS_DPO, 0.5, 0.1, 0, 0);
    obj_loss_config c0 = mkcfg(OBJ_LOSS_DPO, 0.5, 0.0, 0, 0);
    obj_loss_config ce = mkcfg(OBJ_LOSS_DPO, 0.5, 1e-12, 0, 0);
    run1(&c, &p, &o);
    CLOSE(o.loss, 1.5514132779827524095, HAND_REL);
    CLOSE(o.d_chosen, -0.3587872380968218298, HAND_REL);
    CLOSE(o.d_rejected, 0.3587872380968218298, HAND_REL);
    CLOSE(o.reward_chosen, -1.0, 1e-15);
    CLOSE(o.reward_rejected, 0.5, 1e-15);
    run1(&c0, &p, &o0);
    run1(&ce, &p, &oe);
    CLOSE(o0.loss, 1.7014132779827524095, HAND_REL);          /* log(1 + e^1.5) */
    CLOSE(o0.d_chosen, -0.5 * 0.81757447619364365961, HAND_REL); /* -beta sigmoid(1.5) */
    CLOSE(oe.loss, o0.loss, 1e-11);
    ck_assert(oe.loss != o0.loss);
}
END_TEST

/* The conservative loss stops pushing at beta h = log((1-e)/e): there
 * sigmoid(beta h) = 1 - e and dL/dh = -beta[(1-e) e - e (1-e)] = 0 (to rounding);
 * below it the gradient pushes h up (d_chosen < 0), above it down. */
START_TEST(test_cdpo_stationary_point) {
    static const double es[] = {0.05, 0.1, 0.25, 0.4};
    static const double betas[] = {0.1, 1.0, 3.0};
    size_t i, j;
    for (i = 0; i < 4; i++)
        for (j = 0; j < 3; j++) {
            obj_loss_config c = mkcfg(OBJ_LOSS_DPO, betas[j], es[i], 0, 0);
            double hstar = log((1 - es[i]) / es[i]) / betas[j];
            obj_pair_in p = mkpair(hstar, 0, 0, 0, 1, 1, NULL);
            obj_pair_out o;
            run1(&c, &p, &o);
            ck_assert_msg(fabs(o.d_chosen) <= 1e-15 * betas[j], "e %g beta %g: d %g", es[i], betas[j],
                          o.d_chosen);
            p.policy_chosen = hstar - 1.0 / betas[j];
            run1(&c, &p, &o);
            ck_assert(o.d_chosen < 0 && o.d_rejected > 0);
            p.policy_chosen = hstar + 1.0 / betas[j];
            run1(&c, &p, &o);
            ck_assert(o.d_chosen > 0 && o.d_rejected < 0);
        }
}
END_TEST

/* IPO, beta = 0.25 (target 1/(2 beta) = 2). pc = -7, rc = -6.5, pr = -4, rr = -5:
 *   h = -0.5 - 1 = -1.5;  loss = (-1.5 - 2)^2 = 12.25;  dL/dh = 2 (-3.5) = -7
 *   d_chosen = -7, d_rejected = +7; rewards 0.25 * -0.5 = -0.125, 0.25 * 1 = 0.25. */
START_TEST(test_hand_ipo) {
    obj_pair_in p = mkpair(-7, -6.5, -4, -5, 4, 3, NULL);
    obj_pair_out o;
    obj_loss_config c = mkcfg(OBJ_LOSS_IPO, 0.25, 0, 0, 0);
    run1(&c, &p, &o);
    ck_assert(o.loss == 12.25); /* every step is exact in binary */
    ck_assert(o.d_chosen == -7.0 && o.d_rejected == 7.0);
    ck_assert(o.reward_chosen == -0.125 && o.reward_rejected == 0.25);
}
END_TEST

/* IPO's minimum is at h = 1/(2 beta): loss 0 and gradient 0 there; at h +- 0.5 the
 * loss is 0.25 and dL/dh = +-1 (pc = h, all other sums 0, so h = pc exactly). */
START_TEST(test_ipo_minimum) {
    static const double betas[] = {0.1, 0.25, 0.3, 1.0, 4.0, 1e-3};
    size_t j;
    for (j = 0; j < sizeof betas / sizeof betas[0]; j++) {
        obj_loss_config c = mkcfg(OBJ_LOSS_IPO, betas[j], 0, 0, 0);
        double target = 1.0 / (2.0 * betas[j]);
        obj_pair_in p = mkpair(target, 0, 0, 0, 1, 1, NULL);
        obj_pair_out o;
        run1(&c, &p, &o);
        ck_assert_msg(o.loss == 0.0 && o.d_chosen == 0.0 && o.d_rejected == 0.0, "beta %g", betas[j]);
        p.policy_chosen = target + 0.5;
        run1(&c, &p, &o);
        CLOSE(o.loss, 0.25, 1e-12);
        CLOSE(o.d_chosen, 1.0, 1e-12);
        p.policy_chosen = target - 0.5;
        run1(&c, &p, &o);
        CLOSE(o.loss, 0.25, 1e-12);
        CLOSE(o.d_chosen, -1.0, 1e-12);
        CLOSE(o.d_rejected, 1.0, 1e-12);
    }
}
END_TEST

/* Hinge, beta = 0.1. pc = -10, rc = -12, pr = rr = -15: h = 2, beta h = 0.2:
 *   loss = 1 - 0.2 = 0.8;  d_chosen = -beta = -0.1, d_rejected = +0.1.
 * With beta h > 1 (h = 12, 20, 1e3 at beta 0.1; h = 2 at beta 1) the loss and both
 * derivatives are exactly 0; with beta h < 1 the derivatives are exactly -+beta. */
START_TEST(test_hand_hinge) {
    static const double hs[] = {10.5, 12, 20, 1e3};
    obj_pair_in p = mkpair(-10, -12, -15, -15, 4, 3, NULL);
    obj_pair_out o;
    obj_loss_config c = mkcfg(OBJ_LOSS_HINGE, 0.1, 0, 0, 0);
    obj_loss_config c1 = mkcfg(OBJ_LOSS_HINGE, 1.0, 0, 0, 0);
    size_t i;
    run1(&c, &p, &o);
    CLOSE(o.loss, 0.8, 1e-15);
    ck_assert(o.d_chosen == -0.1 && o.d_rejected == 0.1);
    run1(&c1, &p, &o);
    ck_assert(o.loss == 0.0 && o.d_chosen == 0.0 && o.d_rejected == 0.0);
    /* at the kink, beta h = 0.5 * 2 = 1 exactly: loss 0 and the subgradient 0 */
    c1.beta = 0.5;
    run1(&c1, &p, &o);
    ck_assert(o.loss == 0.0 && o.d_chosen == 0.0 && o.d_rejected == 0.0);
    for (i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        p = mkpair(hs[i], 0, -3, -3, 2, 2, NULL);
        run1(&c, &p, &o);
        ck_assert_msg(o.loss == 0.0 && o.d_chosen == 0.0 && o.d_rejected == 0.0, "h %g", hs[i]);
        p.policy_chosen = -hs[i] / 8; /* beta h < 1 */
        run1(&c, &p, &o);
        ck_assert(o.d_chosen == -0.1 && o.d_rejected == 0.1);
        CLOSE(o.loss, 1.0 + 0.1 * hs[i] / 8, 1e-15);
    }
}
END_TEST

/* Preferred-FT: pc = -10 -> loss 10, d_chosen = -1, d_rejected = 0. Changing the
 * reference (or the rejected sum) changes neither loss nor gradients, bit for bit;
 * the rewards still follow beta (policy - ref): 0.1 * (-10 - -12) = 0.2. */
START_TEST(test_hand_sft) {
    static const double refs[][2] = {{-12, -15}, {0, 0}, {-1e4, 50}, {3.25, -7.5}};
    obj_pair_in p = mkpair(-10, -12, -15, -15, 4, 3, NULL);
    obj_pair_out o, o0;
    obj_loss_config c = mkcfg(OBJ_LOSS_SFT, 0.1, 0, 0, 0);
    size_t i;
    run1(&c, &p, &o0);
    ck_assert(o0.loss == 10.0 && o0.d_chosen == -1.0 && o0.d_rejected == 0.0);
    CLOSE(o0.reward_chosen, 0.2, 1e-15);
    for (i = 0; i < 4; i++) {
        p.ref_chosen = refs[i][0];
        p.ref_rejected = refs[i][1];
        p.policy_rejected = -15 - (double)i;
        run1(&c, &p, &o);
        ck_assert(o.loss == o0.loss && o.d_chosen == o0.d_chosen && o.d_rejected == o0.d_rejected);
        CLOSE(o.reward_chosen, 0.1 * (-10 - refs[i][0]), 1e-15);
    }
}
END_TEST

/* Unlikelihood, alpha = 0.5, pc = -10, rejected tokens lp = -0.5, -2, -0.125:
 *   -log(1 - e^-0.5)   = 0.93275212956718857189
 *   -log(1 - e^-2)     = 0.14541345786885905697
 *   -log(1 - e^-0.125) = 2.1412905847632012003
 *   loss = 10 + 0.5 (0.93275... + 0.14541... + 2.14129...) = 11.609728086099624415
 *   d_tok = alpha / expm1(-lp) = 0.5/expm1(0.5) = 0.77074704126839914207,
 *           0.5/expm1(2) = 0.078258821374832825909, 0.5/expm1(0.125) = 3.7552069775009203356
 *   d_chosen = -1 (the likelihood part), d_rejected = 0.
 * d_tok is a float: one float rounding, 6e-8 relative. */
START_TEST(test_hand_unlikelihood) {
    float tok[3] = {-0.5f, -2.0f, -0.125f}, dtok[3];
    obj_pair_in p = mkpair(-10, -12, -15, -15, 4, 3, tok);
    obj_pair_out o;
    obj_loss_config c = mkcfg(OBJ_LOSS_UNLIKELIHOOD, 0.1, 0, 0.5, 0);
    memset(&o, 0, sizeof o);
    o.d_tok_rejected = dtok;
    obj_loss_batch(&c, &p, &o, 1, 1.0);
    CLOSE(o.loss, 11.609728086099624415, HAND_REL);
    ck_assert(o.d_chosen == -1.0 && o.d_rejected == 0.0);
    CLOSE(dtok[0], 0.77074704126839914207, 6e-8);
    CLOSE(dtok[1], 0.078258821374832825909, 6e-8);
    CLOSE(dtok[2], 3.7552069775009203356, 6e-8);
    CLOSE(o.reward_chosen, 0.2, 1e-15);
}
END_TEST

/* sft_weight w = 0.3 on the DPO case above (pc = -10, n_chosen = 4):
 *   loss = 0.59813886938159183968 + 0.3 * 10/4 = 0.59813886938159183968 + 0.75 = 1.3481388693815918397
 *   d_chosen = -0.045016600268752209144 - 0.3/4 = -0.12001660026875220914; d_rejected unchanged. */
START_TEST(test_hand_sft_weight) {
    obj_pair_in p = mkpair(-10, -12, -15, -15, 4, 3, NULL);
    obj_pair_out o;
    obj_loss_config c = mkcfg(OBJ_LOSS_DPO, 0.1, 0, 0, 0.3);
    run1(&c, &p, &o);
    CLOSE(o.loss, 1.3481388693815918397, HAND_REL);
    CLOSE(o.d_chosen, -0.12001660026875220914, HAND_REL);
    CLOSE(o.d_rejected, 0.045016600268752209144, HAND_REL);
}
END_TEST

/* A batch of two DPO pairs, beta = 0.1: pair 0 as above (h = 2), pair 1 pc = -5,
 * rc = -4, pr = rr = -6 (h = -1, beta h = -0.1):
 *   mean = (log(1 + e^-0.2) + log(1 + e^0.1)) / 2 = 0.67126776472758136726
 *   d_chosen[0] = -0.1 sigmoid(-0.2) / 2 = -0.022508300134376104572
 *   d_chosen[1] = -0.1 sigmoid(0.1) / 2  = -0.026248959373946999305
 * and each pair's own loss is not divided by 2. */
START_TEST(test_hand_batch) {
    obj_pair_in in[2];
    obj_pair_out out[2];
    obj_loss_config c = mkcfg(OBJ_LOSS_DPO, 0.1, 0, 0, 0);
    double m;
    in[0] = mkpair(-10, -12, -15, -15, 4, 3, NULL);
    in[1] = mkpair(-5, -4, -6, -6, 2, 5, NULL);
    memset(out, 0, sizeof out);
    m = obj_loss_batch(&c, in, out, 2, 2.0);
    CLOSE(m, 0.67126776472758136726, HAND_REL);
    CLOSE(out[0].loss, 0.59813886938159183968, HAND_REL);
    CLOSE(out[0].d_chosen, -0.022508300134376104572, HAND_REL);
    CLOSE(out[0].d_rejected, 0.022508300134376104572, HAND_REL);
    CLOSE(out[1].d_chosen, -0.026248959373946999305, HAND_REL);
    CLOSE(out[1].d_rejected, 0.026248959373946999305, HAND_REL);
    CLOSE(out[1].reward_chosen, -0.1, 1e-15);
    ck_assert(out[1].reward_rejected == 0.0);
}
END_TEST

/* ======================================================================== */
/* properties                                                                */
/* ======================================================================== */

/* Policy == reference: h = 0, loss = -log sigmoid(0) = log 2 exactly (to the ulp),
 * rewards exactly 0, d_chosen = -beta sigmoid(0) / n = -beta / 2 / n. */
START_TEST(test_policy_equals_reference) {
    static const double vals[][2] = {{-10, -15}, {0, 0}, {-123.456, -7.25}, {-1e4, -3}, {-0.001, -999}};
    static const double betas[] = {0.1, 0.5, 2.0};
    double ln2 = log(2.0), ulp = nextafter(ln2, 1.0) - ln2;
    obj_pair_in in[5];
    obj_pair_out out[5];
    size_t i, j;
    for (i = 0; i < 5; i++) in[i] = mkpair(vals[i][0], vals[i][0], vals[i][1], vals[i][1], 3, 4, NULL);
    for (j = 0; j < 3; j++) {
        obj_loss_config c = mkcfg(OBJ_LOSS_DPO, betas[j], 0, 0, 0);
        double m;
        memset(out, 0, sizeof out);
        m = obj_loss_batch(&c, in, out, 5, 5.0);
        ck_assert_msg(fabs(m - ln2) <= ulp, "mean %.17g", m);
        for (i = 0; i < 5; i++) {
            ck_assert_msg(fabs(out[i].loss - ln2) <= ulp, "pair %zu: %.17g", i, out[i].loss);
            ck_assert(out[i].reward_chosen == 0.0 && out[i].reward_rejected == 0.0);
            ck_assert(out[i].d_chosen == -betas[j] * 0.5 / 5.0);
            ck_assert(out[i].d_rejected == betas[j] * 0.5 / 5.0);
        }
    }
}
END_TEST

/* sft_weight w adds exactly w * (-policy_chosen / n_chosen) to every pair's loss
 * (the same two roundings objective.c does: nll = -pc / n_w, then loss + w * nll)
 * and -w / n_chosen / n to d_chosen; nothing else changes. For every loss kind. */
START_TEST(test_sft_weight_adds_exactly) {
    static const obj_loss_kind kinds[] = {OBJ_LOSS_DPO, OBJ_LOSS_IPO, OBJ_LOSS_HINGE, OBJ_LOSS_SFT,
                                          OBJ_LOSS_UNLIKELIHOOD};
    static const double ws[] = {0.3, 1.0, 2.5};
    float tok[4][3] = {{-0.5f, -1.0f, -2.0f}, {-0.25f, -3.0f, -1.5f}, {-4.0f, -0.75f, -0.125f},
                       {-1.0f, -1.0f, -1.0f}};
    float dt0[4][3], dtw[4][3];
    obj_pair_in in[4];
    obj_pair_out o0[4], ow[4];
    size_t k, j;
    int i, n = 4;
    in[0] = mkpair(-12.5, -13.25, -20.75, -19.5, 5, 3, tok[0]);
    in[1] = mkpair(-30.125, -28, -25.5, -27.375, 17, 3, tok[1]);
    in[2] = mkpair(-7.75, -8, -9, -9.5, 3, 3, tok[2]);
    in[3] = mkpair(-40, -45.5, -33, -31, 40, 3, tok[3]);
    for (k = 0; k < 5; k++)
        for (j = 0; j < 3; j++) {
            double ls = kinds[k] == OBJ_LOSS_DPO ? 0.2 : 0.0;
            obj_loss_config c0 = mkcfg(kinds[k], 0.3, ls, 0.7, 0.0);
            obj_loss_config cw = mkcfg(kinds[k], 0.3, ls, 0.7, ws[j]);
            for (i = 0; i < n; i++) {
                memset(&o0[i], 0, sizeof o0[i]);
                memset(&ow[i], 0, sizeof ow[i]);
                o0[i].d_tok_rejected = dt0[i];
                ow[i].d_tok_rejected = dtw[i];
            }
            obj_loss_batch(&c0, in, o0, n, (double)n);
            obj_loss_batch(&cw, in, ow, n, (double)n);
            for (i = 0; i < n; i++) {
                double nll = -in[i].policy_chosen / (double)in[i].n_chosen;
                double term = ws[j] * nll;
                double want = o0[i].loss + term;
                double dterm = -ws[j] / (double)in[i].n_chosen / (double)n;
                ck_assert_msg(ow[i].loss == want, "%s w %g pair %d: %.17g != %.17g",
                              obj_loss_kind_name(kinds[k]), ws[j], i, ow[i].loss, want);
                CLOSE(ow[i].d_chosen, o0[i].d_chosen + dterm, 1e-14);
                ck_assert(ow[i].d_rejected == o0[i].d_rejected);
                ck_assert(ow[i].reward_chosen == o0[i].reward_chosen);
                ck_assert(ow[i].reward_rejected == o0[i].reward_rejected);
                ck_assert(memcmp(dt0[i], dtw[i], sizeof dt0[i]) == 0);
            }
        }
}
END_TEST

/* ======================================================================== */
/* finite differences                                                        */
/* ======================================================================== */

/* Four pairs, inputs on a 2^-8 grid: h = 2, -4, -0.25, 7.5. No pair sits within
 * 0.25/beta of the hinge's kink for the betas used. Per-token log-probs in
 * [-3, -0.125] (below 4 in size, so +- 2^-10 is exact in float), plus one token at
 * lp = 0 (clamped: derivative 0, checked separately). */
static float fd_tok[4][6] = {
    {-0.5f, -1.25f, -0.125f, -2.0f, 0, 0},
    {-3.0f, -0.75f, -0.25f, -1.5f, -2.5f, -0.375f},
    {-1.0f, 0.0f, -0.625f, 0, 0, 0},
    {-0.1875f, -2.75f, 0, 0, 0, 0},
};
static const int fd_nrej[4] = {4, 6, 3, 2};
static const int fd_clamped[2] = {2, 1}; /* pair, token with lp = 0 */

static void fd_pairs(obj_pair_in *in) {
    in[0] = mkpair(-12.5, -13.25, -20.75, -19.5, 5, fd_nrej[0], fd_tok[0]);
    in[1] = mkpair(-30.125, -28, -25.5, -27.375, 17, fd_nrej[1], fd_tok[1]);
    in[2] = mkpair(-7.75, -8, -9, -9.5, 3, fd_nrej[2], fd_tok[2]);
    in[3] = mkpair(-40, -45.5, -33, -31, 40, fd_nrej[3], fd_tok[3]);
}

/* Every derivative obj_loss_batch reports, against the difference quotient. */
static void check_fd(const obj_loss_config *c) {
    obj_pair_in in[4];
    obj_pair_out out[4];
    float dtok[4][6];
    int i, t, n = 4;
    fd_pairs(in);
    memset(out, 0, sizeof out);
    for (i = 0; i < n; i++) out[i].d_tok_rejected = dtok[i];
    obj_loss_batch(c, in, out, n, (double)n);
    for (i = 0; i < n; i++) {
        double fc = fd_double(c, in, n, &in[i].policy_chosen);
        double fr = fd_double(c, in, n, &in[i].policy_rejected);
        ck_assert_msg(fabs(fc - out[i].d_chosen) <= FD_REL * fmax(fabs(fc), fabs(out[i].d_chosen)),
                      "%s beta %g e %g alpha %g w %g pair %d: d_chosen %.17g, finite difference %.17g",
                      obj_loss_kind_name(c->kind), c->beta, c->label_smoothing, c->alpha, c->sft_weight,
                      i, out[i].d_chosen, fc);
        ck_assert_msg(fabs(fr - out[i].d_rejected) <= FD_REL * fmax(fabs(fr), fabs(out[i].d_rejected)),
                      "%s beta %g e %g alpha %g w %g pair %d: d_rejected %.17g, finite difference %.17g",
                      obj_loss_kind_name(c->kind), c->beta, c->label_smoothing, c->alpha, c->sft_weight,
                      i, out[i].d_rejected, fr);
        for (t = 0; t < in[i].n_rejected; t++) {
            double ft;
            if (i == fd_clamped[0] && t == fd_clamped[1]) continue;
            ft = fd_float(c, in, n, &fd_tok[i][t]);
            ck_assert_msg(fabs(ft - dtok[i][t]) <= FD_REL * fmax(fabs(ft), fabs(dtok[i][t])),
                          "%s alpha %g pair %d token %d (lp %g): d_tok %.9g, finite difference %.17g",
                          obj_loss_kind_name(c->kind), c->alpha, i, t, (double)fd_tok[i][t],
                          (double)dtok[i][t], ft);
        }
    }
}

START_TEST(test_fd_dpo) {
    static const double betas[] = {0.1, 0.5, 1.0};
    static const double es[] = {0.0, 0.2, 0.3};
    static const double ws[] = {0.0, 0.7};
    size_t a, b, d;
    for (a = 0; a < 3; a++)
        for (b = 0; b < 3; b++)
            for (d = 0; d < 2; d++) {
                obj_loss_config c = mkcfg(OBJ_LOSS_DPO, betas[a], es[b], 0, ws[d]);
                check_fd(&c);
            }
}
END_TEST

START_TEST(test_fd_ipo_hinge_sft) {
    static const double betas[] = {0.1, 0.3, 1.0};
    static const double ws[] = {0.0, 0.5};
    size_t a, d;
    for (a = 0; a < 3; a++)
        for (d = 0; d < 2; d++) {
            obj_loss_config ci = mkcfg(OBJ_LOSS_IPO, betas[a], 0, 0, ws[d]);
            obj_loss_config cs = mkcfg(OBJ_LOSS_SFT, betas[a], 0, 0, ws[d]);
            obj_loss_config ch = mkcfg(OBJ_LOSS_HINGE, betas[a], 0, 0, ws[d]);
            check_fd(&ci);
            check_fd(&cs);
            check_fd(&ch); /* beta h = 0.2 -0.4 -0.025 0.75 / 0.6 -1.2 -0.075 2.25 / 2 -4 -0.25 7.5 */
        }
}
END_TEST

START_TEST(test_fd_unlikelihood) {
    static const double alphas[] = {0.5, 1.0, 2.0};
    static const double ws[] = {0.0, 0.5};
    size_t a, d;
    for (a = 0; a < 3; a++)
        for (d = 0; d < 2; d++) {
            obj_loss_config c = mkcfg(OBJ_LOSS_UNLIKELIHOOD, 0.1, 0, alphas[a], ws[d]);
            check_fd(&c);
        }
}
END_TEST

/* ======================================================================== */
/* extreme inputs                                                            */
/* ======================================================================== */

/* h = +-1e4 (beta h up to +-1e5): every loss, gradient and reward finite, and the
 * limits right: DPO's loss -> 0 / beta h, its gradient -> 0 / -beta; conservative
 * DPO -> e beta h / (1-e) beta |h|. */
START_TEST(test_extreme_margins) {
    static const obj_loss_kind kinds[] = {OBJ_LOSS_DPO, OBJ_LOSS_IPO, OBJ_LOSS_HINGE, OBJ_LOSS_SFT,
                                          OBJ_LOSS_UNLIKELIHOOD};
    static const double betas[] = {0.1, 1.0, 10.0};
    static const double hs[] = {1e4, -1e4};
    float tok[2] = {-1.0f, -0.5f}, dtok[2];
    size_t k, b, s;
    for (k = 0; k < 5; k++)
        for (b = 0; b < 3; b++)
            for (s = 0; s < 2; s++) {
                double ls = kinds[k] == OBJ_LOSS_DPO ? 0.25 : 0.0;
                obj_loss_config c = mkcfg(kinds[k], betas[b], ls, 1.0, 0.5);
                obj_loss_config plain = mkcfg(kinds[k], betas[b], 0.0, 1.0, 0.0);
                obj_pair_in p = mkpair(-1.0, -1.0 - hs[s], -2.0, -2.0, 3, 2, tok);
                obj_pair_out o;
                memset(&o, 0, sizeof o);
                o.d_tok_rejected = dtok;
                ck_assert(isfinite(obj_loss_batch(&c, &p, &o, 1, 1.0)));
                ck_assert_msg(isfinite(o.loss) && isfinite(o.d_chosen) && isfinite(o.d_rejected) &&
                                  isfinite(o.reward_chosen) && isfinite(o.reward_rejected) &&
                                  isfinite(dtok[0]) && isfinite(dtok[1]),
                              "%s beta %g h %g", obj_loss_kind_name(kinds[k]), betas[b], hs[s]);
                ck_assert(isfinite(obj_loss_batch(&plain, &p, &o, 1, 1.0)));
                if (kinds[k] == OBJ_LOSS_DPO) {
                    double bh = betas[b] * hs[s];
                    if (bh > 0) {
                        ck_assert(o.loss == 0.0 && o.d_chosen == 0.0);
                    } else {
                        CLOSE(o.loss, -bh, 1e-15);
                        CLOSE(o.d_chosen, -betas[b], 1e-15);
                    }
                    obj_loss_batch(&c, &p, &o, 1, 1.0); /* e = 0.25, plus w 0.5 * 1/3 */
                    CLOSE(o.loss, 0.25 * fabs(bh) * (bh > 0 ? 1 : 3) + 0.5 / 3, 1e-15);
                }
            }
}
END_TEST

/* Per-token log-probs at and around p = 1 (lp -> 0), at p = 0 (lp = -inf), and
 * invalid positive ones: everything finite; above the clamp (1 - p < 1e-6) the term
 * is exactly -alpha log(1e-6) = 13.815510557964274104 alpha with derivative 0, and
 * moving lp inside the clamp changes nothing; just below it the term is continuous
 * (within the float spacing of lp) and the derivative large but finite;
 * lp = -inf contributes 0 with derivative 0. */
START_TEST(test_extreme_unlikelihood) {
    float tok[] = {0.0f, -0.0f, -FLT_MIN, -1e-30f, -1e-7f, -9.5e-7f, 1e-3f, INFINITY,
                   -1.1e-6f, -1e4f, -INFINITY, -FLT_MAX};
    enum { NT = sizeof tok / sizeof tok[0] };
    float one[1], dtok[NT], d1[1];
    obj_loss_config c = mkcfg(OBJ_LOSS_UNLIKELIHOOD, 0.1, 0, 2.0, 0);
    obj_pair_in p = mkpair(-1.0, -1.0, -2.0, -2.0, 1, NT, tok);
    obj_pair_out o;
    double cap = 2.0 * 13.815510557964274104, lp_max = log1p(-1e-6);
    int t;
    memset(&o, 0, sizeof o);
    o.d_tok_rejected = dtok;
    ck_assert(isfinite(obj_loss_batch(&c, &p, &o, 1, 1.0)));
    ck_assert(isfinite(o.loss) && o.loss <= 1.0 + NT * cap);
    for (t = 0; t < NT; t++) {
        ck_assert_msg(isfinite(dtok[t]) && dtok[t] >= 0.0f, "token %d: %g", t, (double)dtok[t]);
        if ((double)tok[t] > lp_max)
            ck_assert_msg(dtok[t] == 0.0f, "clamped token %d: %g", t, (double)dtok[t]);
    }
    /* one token at a time: the clamped term and its constancy */
    p = mkpair(0.0, 0.0, 0.0, 0.0, 1, 1, one);
    memset(&o, 0, sizeof o);
    o.d_tok_rejected = d1;
    for (t = 0; t < 8; t++) {
        one[0] = tok[t];
        obj_loss_batch(&c, &p, &o, 1, 1.0);
        CLOSE(o.loss, cap, 1e-15);
        ck_assert(d1[0] == 0.0f);
    }
    /* just below the clamp: continuous, large finite derivative */
    one[0] = nextafterf((float)lp_max, -1.0f);
    while ((double)one[0] > lp_max) one[0] = nextafterf(one[0], -1.0f);
    obj_loss_batch(&c, &p, &o, 1, 1.0);
    CLOSE(o.loss, cap, 1e-7);
    ck_assert(isfinite(d1[0]) && d1[0] > 1.9e6f && d1[0] < 2.1e6f); /* alpha / 1e-6 */
    /* close to the clamp, log(-expm1(lp)) keeps every digit (log1p(-exp(lp)) would
     * lose about 5e-11 absolute here): lp = -2^-19 (1 - p = 1.9e-6), alpha = 2:
     *   loss = -2 log(1 - e^(-2^-19)) = 2 * 13.169797384313125703 = 26.339594768626251406
     *   d_tok = 2 / expm1(2^-19) = 2 * 524287.50000015894572 = 1048575.0000003178914 */
    one[0] = -0x1p-19f;
    obj_loss_batch(&c, &p, &o, 1, 1.0);
    CLOSE(o.loss, 26.339594768626251406, 1e-14);
    CLOSE(d1[0], 1048575.0000003178914, 6e-8);
    /* p = 0 and p tiny */
    one[0] = -INFINITY;
    obj_loss_batch(&c, &p, &o, 1, 1.0);
    ck_assert(o.loss == 0.0 && d1[0] == 0.0f);
    one[0] = -1e4f;
    obj_loss_batch(&c, &p, &o, 1, 1.0);
    ck_assert(o.loss == 0.0 && d1[0] == 0.0f);
    /* a NaN log-prob is not hidden by the clamp */
    one[0] = NAN;
    ck_assert(isnan(obj_loss_batch(&c, &p, &o, 1, 1.0)));
}
END_TEST

/* ======================================================================== */
/* threads                                                                   */
/* ======================================================================== */

/* 1000 random pairs, every loss kind: 1 and 2 threads give the same bits. */
START_TEST(test_threads_bit_identical) {
    enum { N = 1000, MAXT = 32 };
    static const obj_loss_kind kinds[] = {OBJ_LOSS_DPO, OBJ_LOSS_IPO, OBJ_LOSS_HINGE, OBJ_LOSS_SFT,
                                          OBJ_LOSS_UNLIKELIHOOD};
    obj_pair_in *in = malloc(N * sizeof *in);
    obj_pair_out *o1 = malloc(N * sizeof *o1), *o2 = malloc(N * sizeof *o2);
    float *tok = malloc((size_t)N * MAXT * sizeof *tok);
    float *dt1 = malloc((size_t)N * MAXT * sizeof *dt1), *dt2 = malloc((size_t)N * MAXT * sizeof *dt2);
    int saved = util_threads(), i;
    size_t k;
    util_rng r;
    ck_assert(in && o1 && o2 && tok && dt1 && dt2);
    util_rng_seed(&r, 20230529);
    for (i = 0; i < N * MAXT; i++) {
        double u = util_rng_uniform(&r);
        tok[i] = u < 0.05 ? 0.0f : (float)(-8.0 * u * u * u);
    }
    for (i = 0; i < N; i++) {
        double pc = -60.0 * util_rng_uniform(&r), pr = -60.0 * util_rng_uniform(&r);
        in[i] = mkpair(pc, pc + 3.0 * util_rng_normal(&r), pr, pr + 3.0 * util_rng_normal(&r),
                       1 + (int)(util_rng_u64(&r) % MAXT), 1 + (int)(util_rng_u64(&r) % MAXT),
                       tok + (size_t)i * MAXT);
    }
    for (k = 0; k < 5; k++) {
        obj_loss_config c = mkcfg(kinds[k], 0.3, kinds[k] == OBJ_LOSS_DPO ? 0.1 : 0.0, 0.8, 0.25);
        double m1, m2;
        memset(o1, 0, N * sizeof *o1);
        memset(o2, 0, N * sizeof *o2);
        memset(dt1, 0xA5, (size_t)N * MAXT * sizeof *dt1);
        memset(dt2, 0x5A, (size_t)N * MAXT * sizeof *dt2);
        for (i = 0; i < N; i++) {
            o1[i].d_tok_rejected = dt1 + (size_t)i * MAXT;
            o2[i].d_tok_rejected = dt2 + (size_t)i * MAXT;
        }
        util_set_threads(1);
        m1 = obj_loss_batch(&c, in, o1, N, (double)N);
        util_set_threads(2);
        m2 = obj_loss_batch(&c, in, o2, N, (double)N);
        util_set_threads(saved);
        ck_assert(isfinite(m1));
        ck_assert_msg(memcmp(&m1, &m2, sizeof m1) == 0, "%s: mean %.17g vs %.17g",
                      obj_loss_kind_name(kinds[k]), m1, m2);
        for (i = 0; i < N; i++) {
            ck_assert(memcmp(&o1[i].loss, &o2[i].loss, sizeof(double)) == 0);
            ck_assert(memcmp(&o1[i].d_chosen, &o2[i].d_chosen, sizeof(double)) == 0);
            ck_assert(memcmp(&o1[i].d_rejected, &o2[i].d_rejected, sizeof(double)) == 0);
            ck_assert(memcmp(&o1[i].reward_chosen, &o2[i].reward_chosen, sizeof(double)) == 0);
            ck_assert(memcmp(&o1[i].reward_rejected, &o2[i].reward_rejected, sizeof(double)) == 0);
            ck_assert(memcmp(o1[i].d_tok_rejected, o2[i].d_tok_rejected,
                             (size_t)in[i].n_rejected * sizeof(float)) == 0);
        }
    }
    free(in);
    free(o1);
    free(o2);
    free(tok);
    free(dt1);
    free(dt2);
}
END_TEST

/* ======================================================================== */

static Suite *make_suite(void) {
    Suite *s = suite_create("objective");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_kind_names);
    tcase_add_test(tc, test_config_validate);
    tcase_add_test(tc, test_batch_preconditions);
    tcase_add_test(tc, test_hand_dpo);
    tcase_add_test(tc, test_hand_cdpo);
    tcase_add_test(tc, test_cdpo_stationary_point);
    tcase_add_test(tc, test_hand_ipo);
    tcase_add_test(tc, test_ipo_minimum);
    tcase_add_test(tc, test_hand_hinge);
    tcase_add_test(tc, test_hand_sft);
    tcase_add_test(tc, test_hand_unlikelihood);
    tcase_add_test(tc, test_hand_sft_weight);
    tcase_add_test(tc, test_hand_batch);
    tcase_add_test(tc, test_policy_equals_reference);
    tcase_add_test(tc, test_sft_weight_adds_exactly);
    tcase_add_test(tc, test_fd_dpo);
    tcase_add_test(tc, test_fd_ipo_hinge_sft);
    tcase_add_test(tc, test_fd_unlikelihood);
    tcase_add_test(tc, test_extreme_margins);
    tcase_add_test(tc, test_extreme_unlikelihood);
    tcase_add_test(tc, test_threads_bit_identical);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(make_suite()); }
