/* tests/test_model.c - proves the GPT-2 core right:
 *   1. each layer's backward against central finite differences of its forward;
 *   2. the whole model on a tiny config: every parameter's analytic gradient
 *      against finite differences;
 *   3. log-probs and gradients against golden values from an independent
 *      float64 PyTorch implementation (tests/golden/, see its README);
 *   4. F32, F16 (hub-style names and buffers) and BF16 (+ tied lm_head) files
 *      load to the same parameters;
 *   5. packed batches: a sequence's log-probs are bit-identical alone or packed;
 *   6. save -> load is bit-exact; 1 and 2 threads give bit-identical results;
 *   7. the key-value cache of generation gives, at every position, the very
 *      bits of a full forward pass, however the tokens are split into calls;
 *   8. the head, computed a chunk of rows at a time (forward) and a slice of
 *      the vocabulary at a time (backward), gives the very bits of the head
 *      computed in one piece (kept here as the reference).
 * It includes model.c itself so that the file-local layer functions can be tested. */
#include "model.c"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "safetensors.h"
#include "testutil.h"

#define GOLDEN_DIR "tests/golden"

/* ------------------------------------------------------------------------ */
/* helpers */

/* Central finite differences of a scalar function of the float array x:
 *   g_i = (f(x + h e_i) - f(x - h e_i)) / (x_i^+ - x_i^-)
 * dividing by the step that was actually representable in float. */
typedef double (*loss_fn)(void *ctx);

static void finite_diff(double *g, float *x, size_t n, float h, loss_fn f, void *ctx) {
    size_t i;
    for (i = 0; i < n; i++) {
        float x0 = x[i], xp = x0 + h, xm = x0 - h;
        double fp, fm;
        x[i] = xp;
        fp = f(ctx);
        x[i] = xm;
        fm = f(ctx);
        x[i] = x0;
        g[i] = (fp - fm) / ((double)xp - (double)xm);
    }
}

/* loss = sum_i w_i out_i, the scalar every layer test differentiates */
static double weighted_sum(const float *out, const float *w, size_t n) {
    double s = 0.0;
    size_t i;
    for (i = 0; i < n; i++) s += (double)w[i] * out[i];
    return s;
}

/* compare an analytic gradient with finite differences, norm-wise */
static void check_grad(const char *what, const float *analytic, float *x, size_t n, float h,
                       loss_fn f, void *ctx, double tol) {
    double *g = malloc(n * sizeof *g), err;
    ck_assert_ptr_nonnull(g);
    finite_diff(g, x, n, h, f, ctx);
    err = testutil_rel_err(analytic, g, n);
    printf("  %-28s relative error vs finite differences %.2e\n", what, err);
    ck_assert_msg(err < tol, "%s: relative error %.3e >= %.1e", what, err, tol);
    free(g);
}

/* ======================================================================== */
/* 1. layers                                                                  */
/* ======================================================================== */

enum { LN_N = 3, LN_C = 21 }; /* two blocks of 8 partial sums and a tail */
typedef struct {
    float inp[LN_N * LN_C], w[LN_C], b[LN_C], dout[LN_N * LN_C];
} ln_ctx;

static double ln_loss(void *p) {
    ln_ctx *c = p;
    float out[LN_N * LN_C], mean[LN_N], rstd[LN_N];
    layernorm_forward(out, mean, rstd, NULL, c->inp, NULL, c->w, c->b, LN_N, LN_C, 1e-5);
    return weighted_sum(out, c->dout, LN_N * LN_C);
}

START_TEST(test_layernorm_grad) {
    ln_ctx c;
    float out[LN_N * LN_C], mean[LN_N], rstd[LN_N];
    float dinp[LN_N * LN_C] = {0}, dw[LN_C] = {0}, db[LN_C] = {0};
    util_rng r;
    util_rng_seed(&r, 1);
    testutil_fill_normal(c.inp, LN_N * LN_C, 1.0, 0.3, &r);
    testutil_fill_normal(c.w, LN_C, 0.5, 1.0, &r);
    testutil_fill_normal(c.b, LN_C, 0.5, 0.0, &r);
    testutil_fill_normal(c.dout, LN_N * LN_C, 1.0, 0.0, &r);
    layernorm_forward(out, mean, rstd, NULL, c.inp, NULL, c.w, c.b, LN_N, LN_C, 1e-5);
    layernorm_backward(dinp, dw, db, c.dout, c.inp, mean, rstd, c.w, LN_N, LN_C);
    check_grad("layernorm d inp", dinp, c.inp, LN_N * LN_C, 1e-2f, ln_loss, &c, 2e-4);
    check_grad("layernorm d weight", dw, c.w, LN_C, 1e-2f, ln_loss, &c, 2e-4);
    check_grad("layernorm d bias", db, c.b, LN_C, 1e-2f, ln_loss, &c, 2e-4);
}
END_TEST

enum { MM_N = 4, MM_IC = 5, MM_OC = 6 };
typedef struct {
    float inp[MM_N * MM_IC], w[MM_IC * MM_OC], b[MM_OC], dout[MM_N * MM_OC];
} mm_ctx;

static double mm_loss(void *p) {
    mm_ctx *c = p;
    float out[MM_N * MM_OC];
    matmul_forward(out, c->inp, c->w, c->b, MM_N, MM_IC, MM_OC);
    return weighted_sum(out, c->dout, MM_N * MM_OC);
}

START_TEST(test_matmul_grad) {
    mm_ctx c;
    float dinp[MM_N * MM_IC] = {0}, dw[MM_IC * MM_OC] = {0}, db[MM_OC] = {0};
    util_rng r;
    util_rng_seed(&r, 2);
    testutil_fill_normal(c.inp, MM_N * MM_IC, 1.0, 0.0, &r);
    testutil_fill_normal(c.w, MM_IC * MM_OC, 1.0, 0.0, &r);
    testutil_fill_normal(c.b, MM_OC, 1.0, 0.0, &r);
    testutil_fill_normal(c.dout, MM_N * MM_OC, 1.0, 0.0, &r);
    matmul_backward(dinp, dw, db, c.dout, c.inp, c.w, MM_N, MM_IC, MM_OC);
    check_grad("matmul d inp", dinp, c.inp, MM_N * MM_IC, 1e-2f, mm_loss, &c, 1e-4);
    check_grad("matmul d weight", dw, c.w, MM_IC * MM_OC, 1e-2f, mm_loss, &c, 1e-4);
    check_grad("matmul d bias", db, c.b, MM_OC, 1e-2f, mm_loss, &c, 1e-4);
}
END_TEST

/* two sequences of 3 and 4 tokens, C = 8, H = 2 */
enum { AT_N = 7, AT_C = 8, AT_H = 2, AT_S = 2, AT_QB = 72 /* >= att_block_rows() */ };
typedef struct {
    float qkv[AT_N * 3 * AT_C], dout[AT_N * AT_C];
    int seq_start[AT_S + 1];
} at_ctx;

static double at_loss(void *p) {
    at_ctx *c = p;
    float out[AT_N * AT_C], mx[AT_N * AT_H], inv[AT_N * AT_H], rows[AT_QB * AT_H * AT_N];
    attention_forward(out, mx, inv, rows, c->qkv, c->seq_start, AT_S, AT_C, AT_H);
    return weighted_sum(out, c->dout, AT_N * AT_C);
}

START_TEST(test_attention_grad) {
    at_ctx c;
    float out[AT_N * AT_C], mx[AT_N * AT_H], inv[AT_N * AT_H], rows[AT_QB * AT_H * AT_N];
    float brows[2 * AT_QB * AT_H * AT_N], dqkv[AT_N * 3 * AT_C] = {0};
    util_rng r;
    ck_assert_int_le(att_block_rows(), AT_QB);
    util_rng_seed(&r, 3);
    c.seq_start[0] = 0;
    c.seq_start[1] = 3;
    c.seq_start[2] = 7;
    testutil_fill_normal(c.qkv, AT_N * 3 * AT_C, 1.0, 0.0, &r);
    testutil_fill_normal(c.dout, AT_N * AT_C, 1.0, 0.0, &r);
    attention_forward(out, mx, inv, rows, c.qkv, c.seq_start, AT_S, AT_C, AT_H);
    attention_backward(dqkv, brows, c.dout, c.qkv, mx, inv, c.seq_start, AT_S, AT_C, AT_H);
    check_grad("attention d qkv", dqkv, c.qkv, AT_N * 3 * AT_C, 1e-2f, at_loss, &c, 2e-4);
    /* attention never crosses a sequence boundary: moving the first sequence's
     * keys and values leaves the second sequence's outputs unchanged */
    {
        float out2[AT_N * AT_C];
        int i;
        for (i = 0; i < 3 * 3 * AT_C; i++) c.qkv[i] += 0.5f;
        attention_forward(out2, mx, inv, rows, c.qkv, c.seq_start, AT_S, AT_C, AT_H);
        ck_assert_mem_eq(out + 3 * AT_C, out2 + 3 * AT_C, 4 * AT_C * sizeof(float));
        ck_assert(memcmp(out, out2, 3 * AT_C * sizeof(float)) != 0);
    }
}
END_TEST

/* An independent reference in double precision: the textbook attention with
 * every T x T probability stored, libm's exp, plain loops; the forward output y
 * and the gradient dqkv (added into what dqkv held), together with, for each
 * element, the sum of the absolute values of its terms (mag), which bounds how
 * far a float computation of it may stray. */
static void ref_attention(double *y, double *ymag, double *dqkv, double *dmag, const float *qkv, const float *dout,
                          const int *seq_start, int n_seq, int C, int H) {
    int D = C / H, s, h, i, j, d;
    size_t C3 = (size_t)3 * C;
    double scale = 1.0 / sqrt((double)D);
    for (s = 0; s < n_seq; s++)
        for (h = 0; h < H; h++) {
            int base = seq_start[s], T = seq_start[s + 1] - base;
            double *P = malloc((size_t)T * T * sizeof(double)), *dP = malloc((size_t)T * sizeof(double));
            ck_assert(P && dP);
#define Q(i, d) ((double)qkv[(size_t)(base + (i)) * C3 + (size_t)h * D + (d)])
#define K(j, d) ((double)qkv[(size_t)(base + (j)) * C3 + C + (size_t)h * D + (d)])
#define V(j, d) ((double)qkv[(size_t)(base + (j)) * C3 + 2 * (size_t)C + (size_t)h * D + (d)])
#define DY(i, d) ((double)dout[(size_t)(base + (i)) * C + (size_t)h * D + (d)])
#define AT(a, i, part, d) a[(size_t)(base + (i)) * C3 + (size_t)(part) * C + (size_t)h * D + (d)]
            for (i = 0; i < T; i++) {
                double mx = -INFINITY, sum = 0.0, pdp = 0.0;
                for (j = 0; j <= i; j++) {
                    double sc = 0.0;
                    for (d = 0; d < D; d++) sc += Q(i, d) * K(j, d);
                    P[(size_t)i * T + j] = sc * scale;
                    if (sc * scale > mx) mx = sc * scale;
                }
                for (j = 0; j <= i; j++) sum += P[(size_t)i * T + j] = exp(P[(size_t)i * T + j] - mx);
                for (j = 0; j <= i; j++) P[(size_t)i * T + j] /= sum;
                for (d = 0; d < D; d++) {
                    double acc = 0.0, mag = 0.0;
                    for (j = 0; j <= i; j++) {
                        acc += P[(size_t)i * T + j] * V(j, d);
                        mag += fabs(P[(size_t)i * T + j] * V(j, d));
                    }
                    y[(size_t)(base + i) * C + (size_t)h * D + d] = acc;
                    ymag[(size_t)(base + i) * C + (size_t)h * D + d] = mag;
                }
                for (j = 0; j <= i; j++) {
                    dP[j] = 0.0;
                    for (d = 0; d < D; d++) dP[j] += DY(i, d) * V(j, d);
                    pdp += P[(size_t)i * T + j] * dP[j];
                }
                for (j = 0; j <= i; j++) {
                    double p = P[(size_t)i * T + j], dS = p * (dP[j] - pdp) * scale;
                    /* each term's size: p |dP| + p |pdp|, times what it multiplies */
                    double dSmag = p * (fabs(dP[j]) + fabs(pdp) + 1e-30) * scale;
                    for (d = 0; d < D; d++) {
                        AT(dqkv, i, 0, d) += dS * K(j, d);
                        AT(dmag, i, 0, d) += dSmag * fabs(K(j, d));
                        AT(dqkv, j, 1, d) += dS * Q(i, d);
                        AT(dmag, j, 1, d) += dSmag * fabs(Q(i, d));
                        AT(dqkv, j, 2, d) += p * DY(i, d);
                        AT(dmag, j, 2, d) += fabs(p * DY(i, d));
                    }
                }
            }
#undef Q
#undef K
#undef V
#undef DY
#undef AT
            free(P);
            free(dP);
        }
}

/* The attention against that reference, on random packed batches: 1..4
 * sequences of 1..200 tokens (so one to three blocks of query rows, and blocks
 * cut anywhere), H in 1..4, D in 1..40 (whole tiles and edges of the kernel's),
 * scores from flat to peaked enough that some probabilities underflow to 0,
 * dqkv starting from random values (the backward adds into it), on 1 and 2
 * threads. Each element of y must be within 1e-5 of the size of its terms
 * (mag) plus 1e-6 of its value, and each of dqkv within 1e-5 of mag plus T u
 * (|start| + mag), T its sequence's length and u = 2^-24 the float rounding
 * error: the backward adds up to T terms into a start of size ~1, each addition
 * rounded at the size of the running sum (the standard bound of a recursive
 * sum). Also, per trial: the other thread count gives the same bits, and every
 * row that att_probs rebuilds from the saved (mx, inv) is att_softmax's row,
 * bit for bit (the backward's P is the forward's). */
START_TEST(test_attention_against_reference) {
    enum { MAXS = 4, MAXT = 200, MAXH = 4, MAXD = 40, MAXN = MAXS * MAXT, MAXC = MAXH * MAXD };
    int trial, saved = util_threads(), parallel = 0, qb = att_block_rows(), blocks3 = 0;
    size_t qkv_n = (size_t)MAXN * 3 * MAXC, y_n = (size_t)MAXN * MAXC;
    float *qkv = malloc(qkv_n * sizeof(float)), *dout = malloc(y_n * sizeof(float));
    float *out = malloc(y_n * sizeof(float)), *out2 = malloc(y_n * sizeof(float));
    float *dqkv = malloc(qkv_n * sizeof(float)), *dqkv2 = malloc(qkv_n * sizeof(float));
    float *dstart = malloc(qkv_n * sizeof(float));
    double *y = malloc(y_n * sizeof(double)), *ymag = malloc(y_n * sizeof(double));
    double *rd = malloc(qkv_n * sizeof(double)), *dmag = calloc(qkv_n, sizeof(double));
    float *mx = malloc((size_t)MAXN * MAXH * sizeof(float)), *inv = malloc((size_t)MAXN * MAXH * sizeof(float));
    float *rows = malloc((size_t)qb * MAXH * MAXN * sizeof(float));
    float *brows = malloc(2 * (size_t)qb * MAXH * MAXN * sizeof(float));
    double worst_y = 0.0, worst_d = 0.0; /* the largest error as a fraction of its bound */
    util_rng r;
    ck_assert(qkv && dout && out && out2 && dqkv && dqkv2 && dstart && y && ymag && rd && dmag && mx && inv &&
              rows && brows);
    util_rng_seed(&r, 77);
    for (trial = 0; trial < 60; trial++) {
        int threads = 1 + trial % 2, n_seq = 1 + (int)(util_rng_u64(&r) % MAXS);
        int H = 1 + (int)(util_rng_u64(&r) % MAXH), D = 1 + (int)(util_rng_u64(&r) % MAXD), C = H * D;
        int seq_start[MAXS + 1], s, n_tok;
        size_t x, nq3;
        double std = 0.3 + 3.0 * util_rng_uniform(&r) / sqrt(sqrt((double)D)); /* up to peaked rows */
        seq_start[0] = 0;
        for (s = 0; s < n_seq; s++) {
            int T = 1 + (int)(util_rng_u64(&r) % MAXT);
            blocks3 += T > 2 * qb;
            seq_start[s + 1] = seq_start[s] + T;
        }
        n_tok = seq_start[n_seq];
        nq3 = (size_t)n_tok * 3 * C;
        testutil_fill_normal(qkv, nq3, std, 0.0, &r);
        testutil_fill_normal(dout, (size_t)n_tok * C, 1.0, 0.0, &r);
        testutil_fill_normal(dstart, nq3, 1.0, 0.0, &r);
        for (x = 0; x < nq3; x++) rd[x] = dstart[x];
        memset(dmag, 0, nq3 * sizeof(double));
        ref_attention(y, ymag, rd, dmag, qkv, dout, seq_start, n_seq, C, H);

        util_set_threads(threads);
        parallel += threads == 2 && (double)n_tok * C * 16 >= DPO_OMP_MIN_WORK;
        memcpy(dqkv, dstart, nq3 * sizeof(float));
        attention_forward(out, mx, inv, rows, qkv, seq_start, n_seq, C, H);
        attention_backward(dqkv, brows, dout, qkv, mx, inv, seq_start, n_seq, C, H);
        for (x = 0; x < (size_t)n_tok * C; x++) {
            double err = fabs(out[x] - y[x]), bound = 1e-5 * ymag[x] + 1e-6 * fabs(y[x]);
            ck_assert_msg(err <= bound, "trial %d: y[%zu] = %.9g, reference %.17g (bound %.3g)", trial, x,
                          (double)out[x], y[x], bound);
            if (bound > 0 && err / bound > worst_y) worst_y = err / bound;
        }
        for (x = 0; x < nq3; x++) {
            double got = (double)dqkv[x] - dstart[x], want = rd[x] - dstart[x];
            int tok = (int)(x / (3 * (size_t)C)), T = 0;
            double err = fabs(dqkv[x] - rd[x]), bound;
            for (s = 0; s < n_seq; s++)
                if (tok >= seq_start[s] && tok < seq_start[s + 1]) T = seq_start[s + 1] - seq_start[s];
            bound = 1e-5 * dmag[x] + T * 0x1p-24 * (fabs(dstart[x]) + dmag[x]);
            ck_assert_msg(err <= bound,
                          "trial %d (%d sequences, H %d, D %d): dqkv[%zu] added %.9g, reference %.17g (bound %.3g)",
                          trial, n_seq, H, D, x, got, want, bound);
            if (bound > 0 && err / bound > worst_d) worst_d = err / bound;
        }

        /* the other thread count: the same bits */
        util_set_threads(3 - threads);
        memcpy(dqkv2, dstart, nq3 * sizeof(float));
        attention_forward(out2, mx, inv, rows, qkv, seq_start, n_seq, C, H);
        attention_backward(dqkv2, brows, dout, qkv, mx, inv, seq_start, n_seq, C, H);
        ck_assert_mem_eq(out, out2, (size_t)n_tok * C * sizeof(float));
        ck_assert_mem_eq(dqkv, dqkv2, nq3 * sizeof(float));

        /* rebuilt rows: att_softmax then att_probs on the same raw scores */
        for (s = 0; s < 8; s++) {
            float raw[MAXT], fwd[MAXT], back[MAXT], m1, i1;
            int m = 1 + (int)(util_rng_u64(&r) % MAXT), n = m + (int)(util_rng_u64(&r) % 5), j;
            float sc = (float)(1.0 / sqrt(1.0 + (double)(util_rng_u64(&r) % 64)));
            if (n > MAXT) n = MAXT;
            testutil_fill_normal(raw, (size_t)n, 1.0 + 20.0 * util_rng_uniform(&r), 0.0, &r);
            memcpy(fwd, raw, sizeof raw);
            memcpy(back, raw, sizeof raw);
            att_softmax(fwd, m, n, sc, &m1, &i1);
            att_probs(back, m, n, sc, m1, i1);
            ck_assert_msg(memcmp(fwd, back, (size_t)n * sizeof(float)) == 0,
                          "trial %d: att_probs does not rebuild att_softmax's row (m %d)", trial, m);
            for (j = m; j < n; j++) ck_assert(fwd[j] == 0.0f);
        }
    }
    printf("attention against the double reference: the worst error is %.3g of its bound (y), %.3g (dqkv)\n", worst_y,
           worst_d);
    ck_assert_int_gt(parallel, 10);
    ck_assert_int_gt(blocks3, 5);
    util_set_threads(saved);
    free(qkv);
    free(dout);
    free(out);
    free(out2);
    free(dqkv);
    free(dqkv2);
    free(dstart);
    free(y);
    free(ymag);
    free(rd);
    free(dmag);
    free(mx);
    free(inv);
    free(rows);
    free(brows);
}
END_TEST

/* LayerNorm's forward against a double-precision reference on random shapes
 * (C from 1 to 300: whole blocks of the 8 partial sums and tails; rows with a
 * mean far from 0, so the variance's cancellation matters), and the fused
 * residual form: layernorm_forward with add gives, bit for bit, the residual
 * add followed by the plain form, whether sum is a separate buffer or inp
 * itself (the key-value cache's in-place use). Each output must be within
 * 1e-6 of the size of its terms, |xhat w| + |b| + |mu r w| (the float mean's
 * rounding is ~6e-8 |mu|). */
START_TEST(test_layernorm_against_reference) {
    enum { MAXN = 20, MAXC = 300 };
    static float inp[MAXN * MAXC], add[MAXN * MAXC], sum[MAXN * MAXC], ref_sum[MAXN * MAXC], out[MAXN * MAXC],
        out2[MAXN * MAXC], w[MAXC], b[MAXC];
    float mean[MAXN], rstd[MAXN], mean2[MAXN], rstd2[MAXN];
    int trial, n, c;
    double worst = 0.0;
    util_rng r;
    util_rng_seed(&r, 31);
    for (trial = 0; trial < 60; trial++) {
        int N = 1 + (int)(util_rng_u64(&r) % MAXN), C = 1 + (int)(util_rng_u64(&r) % MAXC);
        double offset = 10.0 * util_rng_uniform(&r) - 5.0;
        testutil_fill_normal(inp, (size_t)N * C, 0.1 + 2.0 * util_rng_uniform(&r), offset, &r);
        testutil_fill_normal(add, (size_t)N * C, 1.0, 0.0, &r);
        testutil_fill_normal(w, (size_t)C, 0.5, 1.0, &r);
        testutil_fill_normal(b, (size_t)C, 0.5, 0.0, &r);
        layernorm_forward(out, mean, rstd, NULL, inp, NULL, w, b, N, C, 1e-5);
        for (n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;
            double mu = 0.0, var = 0.0, rs;
            for (c = 0; c < C; c++) mu += x[c];
            mu /= C;
            for (c = 0; c < C; c++) var += ((double)x[c] - mu) * ((double)x[c] - mu);
            rs = 1.0 / sqrt(var / C + 1e-5);
            ck_assert_msg(fabs(mean[n] - mu) <= 1e-6 * (fabs(mu) + 1.0 / rs), "trial %d row %d: mean %.9g, %.17g",
                          trial, n, (double)mean[n], mu);
            ck_assert_msg(fabs(rstd[n] - rs) <= 1e-6 * rs, "trial %d row %d: rstd %.9g, %.17g", trial, n,
                          (double)rstd[n], rs);
            for (c = 0; c < C; c++) {
                double xh = ((double)x[c] - mu) * rs, want = xh * w[c] + b[c];
                double bound = 1e-6 * (fabs(xh * w[c]) + fabs(b[c]) + fabs(mu * rs * w[c]));
                double err = fabs(out[(size_t)n * C + c] - want);
                ck_assert_msg(err <= bound, "trial %d (C %d) row %d col %d: %.9g, reference %.17g (bound %.3g)",
                              trial, C, n, c, (double)out[(size_t)n * C + c], want, bound);
                if (err / bound > worst) worst = err / bound;
            }
        }
        /* fused: sum = inp + add, then LayerNorm of sum, in one call */
        for (n = 0; n < N * C; n++) ref_sum[n] = inp[n] + add[n];
        layernorm_forward(out, mean, rstd, NULL, ref_sum, NULL, w, b, N, C, 1e-5);
        layernorm_forward(out2, mean2, rstd2, sum, inp, add, w, b, N, C, 1e-5);
        ck_assert_mem_eq(sum, ref_sum, (size_t)N * C * sizeof(float));
        ck_assert_mem_eq(out, out2, (size_t)N * C * sizeof(float));
        ck_assert_mem_eq(mean, mean2, (size_t)N * sizeof(float));
        ck_assert_mem_eq(rstd, rstd2, (size_t)N * sizeof(float));
        layernorm_forward(out2, mean2, rstd2, inp, inp, add, w, b, N, C, 1e-5); /* in place */
        ck_assert_mem_eq(inp, ref_sum, (size_t)N * C * sizeof(float));
        ck_assert_mem_eq(out, out2, (size_t)N * C * sizeof(float));
    }
    printf("layernorm against the double reference: the worst error is %.3g of its bound\n", worst);
}
END_TEST

enum { GE_N = 40 };
typedef struct {
    float x[GE_N], dout[GE_N];
} ge_ctx;

static double ge_loss(void *p) {
    ge_ctx *c = p;
    float out[GE_N];
    gelu_forward(out, c->x, GE_N);
    return weighted_sum(out, c->dout, GE_N);
}

START_TEST(test_gelu) {
    ge_ctx c;
    float out[GE_N], dx[GE_N];
    int i;
    util_rng r;
    util_rng_seed(&r, 4);
    testutil_fill_normal(c.x, GE_N, 2.0, 0.0, &r);
    testutil_fill_normal(c.dout, GE_N, 1.0, 0.0, &r);
    gelu_forward(out, c.x, GE_N);
    /* forward against the formula in double */
    for (i = 0; i < GE_N; i++) {
        double x = c.x[i], u = sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x);
        double want = 0.5 * x * (1.0 + tanh(u));
        ck_assert_msg(fabs(out[i] - want) <= 4e-7 * (1.0 + fabs(want)), "gelu(%g) = %g, want %g",
                      x, out[i], want);
    }
    gelu_backward(dx, c.x, c.dout, GE_N);
    check_grad("gelu d inp", dx, c.x, GE_N, 1e-2f, ge_loss, &c, 1e-4);
}
END_TEST

/* exp_fast, GELU's exponential, against exp in double on 2 million points
 * spread evenly over [-87, 88] (its whole unclamped range) plus the integers
 * and half-integers there: relative error at most 1.5e-7 (about 1.3 units in
 * the last place of a float). Beyond the clamp: e^-1000 gives e^-87 and e^1000
 * gives e^88, finite and positive; a NaN stays NaN. */
START_TEST(test_exp_fast) {
    const int n = 2000000;
    double worst = 0.0, worst_x = 0.0;
    int i;
    for (i = 0; i <= n + 2 * 175; i++) {
        double x = i <= n ? -87.0 + 175.0 * i / n : -87.0 + 0.5 * (i - n - 1);
        float xf = (float)x;
        double got = exp_fast(xf), want = exp((double)xf), rel = fabs(got - want) / want;
        if (rel > worst) worst = rel, worst_x = xf;
    }
    ck_assert_msg(worst <= 1.5e-7, "exp_fast: relative error %.3g at x = %.9g", worst, worst_x);
    ck_assert_msg(fabs(exp_fast(-1000.0f) / exp(-87.0) - 1.0) < 1e-6, "exp_fast(-1000) = %g",
                  (double)exp_fast(-1000.0f));
    ck_assert_msg(fabs(exp_fast(1000.0f) / exp(88.0) - 1.0) < 1e-6, "exp_fast(1000) = %g",
                  (double)exp_fast(1000.0f));
    ck_assert_msg(isnan(exp_fast(NAN)), "exp_fast(NaN) = %g", (double)exp_fast(NAN));
    printf("exp_fast: largest relative error %.3g (at x = %.6g) on [-87, 88]\n", worst, worst_x);
}
END_TEST

enum { LS_M = 3, LS_V = 9 };
typedef struct {
    float logits[LS_M * LS_V], dlogp[LS_M];
    int sel[LS_M], targets[LS_M];
} ls_ctx;

static double ls_loss(void *p) {
    ls_ctx *c = p;
    float logp[LS_M], mx[LS_M], inv[LS_M];
    logsoftmax_forward(logp, mx, inv, c->logits, c->sel, c->targets, LS_M, LS_V);
    return weighted_sum(logp, c->dlogp, LS_M);
}

START_TEST(test_logsoftmax) {
    ls_ctx c;
    float z[LS_M * LS_V], logp[LS_M], row_mx[LS_M], row_inv[LS_M];
    int i, v;
    util_rng r;
    util_rng_seed(&r, 5);
    testutil_fill_normal(c.logits, LS_M * LS_V, 3.0, 0.0, &r);
    testutil_fill_normal(c.dlogp, LS_M, 1.0, 0.0, &r);
    for (i = 0; i < LS_M; i++) {
        c.sel[i] = i;
        c.targets[i] = (i * 4 + 1) % LS_V;
    }
    c.logits[0] = 1000.0f; /* max-subtraction keeps huge logits finite */
    logsoftmax_forward(logp, row_mx, row_inv, c.logits, c.sel, c.targets, LS_M, LS_V);
    for (i = 0; i < LS_M; i++) {
        double mx = -1e300, s = 0.0, want;
        for (v = 0; v < LS_V; v++) mx = fmax(mx, c.logits[i * LS_V + v]);
        for (v = 0; v < LS_V; v++) s += exp(c.logits[i * LS_V + v] - mx);
        want = c.logits[i * LS_V + c.targets[i]] - mx - log(s);
        ck_assert_msg(fabs(logp[i] - want) <= 1e-6 * (1.0 + fabs(want)), "row %d: %g vs %g", i,
                      logp[i], want);
    }
    memcpy(z, c.logits, sizeof z);
    logsoftmax_backward(z, c.dlogp, row_mx, row_inv, c.sel, c.targets, LS_M, 0, LS_V);
    for (i = 0; i < LS_M * LS_V; i++) ck_assert(isfinite(z[i]));
    c.logits[0] = 2.0f; /* finite differences need moderate logits */
    logsoftmax_forward(logp, row_mx, row_inv, c.logits, c.sel, c.targets, LS_M, LS_V);
    memcpy(z, c.logits, sizeof z);
    logsoftmax_backward(z, c.dlogp, row_mx, row_inv, c.sel, c.targets, LS_M, 0, LS_V);
    check_grad("log-softmax d logits", z, c.logits, LS_M * LS_V, 1e-2f, ls_loss, &c, 2e-4);
}
END_TEST

START_TEST(test_encoder) {
    /* the embedding is linear: check the forward exactly and the backward's sums */
    float wte[4 * 3], wpe[3 * 3], out[5 * 3], dout[5 * 3], dwte[4 * 3] = {0}, dwpe[3 * 3] = {0};
    int tokens[5] = {2, 0, 2, 1, 2}, pos[5] = {0, 1, 2, 0, 1}, n, c;
    util_rng r;
    util_rng_seed(&r, 6);
    testutil_fill_normal(wte, 12, 1.0, 0.0, &r);
    testutil_fill_normal(wpe, 9, 1.0, 0.0, &r);
    testutil_fill_normal(dout, 15, 1.0, 0.0, &r);
    encoder_forward(out, tokens, pos, wte, wpe, 5, 3);
    for (n = 0; n < 5; n++)
        for (c = 0; c < 3; c++) ck_assert_float_eq(out[n * 3 + c], wte[tokens[n] * 3 + c] + wpe[pos[n] * 3 + c]);
    encoder_backward(dwte, dwpe, dout, tokens, pos, 5, 3);
    for (c = 0; c < 3; c++) {
        ck_assert_float_eq(dwte[2 * 3 + c], (dout[0 * 3 + c] + dout[2 * 3 + c]) + dout[4 * 3 + c]);
        ck_assert_float_eq(dwte[3 * 3 + c], 0.0f);
        ck_assert_float_eq(dwpe[1 * 3 + c], dout[1 * 3 + c] + dout[4 * 3 + c]);
    }
}
END_TEST

/* ======================================================================== */
/* 2. the whole model on a tiny config                                       */
/* ======================================================================== */

typedef struct {
    model m;
    int tokens[8], targets[8], seq_len[2], n_seq;
    float w[8];
} whole_ctx;

static double whole_loss(void *p) {
    whole_ctx *c = p;
    float logp[8];
    dpo_err e;
    ck_assert_int_eq(model_forward(&c->m, logp, c->tokens, c->targets, c->seq_len, c->n_seq, &e), 0);
    return weighted_sum(logp, c->w, 8);
}

/* At temperature 1 (the language model) and 0.7 (what PPO samples at): the
 * head then differentiates softmax(z / T). */
START_TEST(test_whole_model_grad) {
    whole_ctx c;
    model_config cfg = {2, 2, 8, 8, 11, 1e-5, 10, 0};
    float logp[8];
    dpo_err e;
    int i, nt;
    util_rng r;
    util_rng_seed(&r, 7 + (uint64_t)_i);
    ck_assert_int_eq(model_create(&c.m, &cfg, &e), 0);
    ck_assert_int_eq(model_alloc_grads(&c.m, &e), 0);
    testutil_randomize_params(&c.m, &r);
    c.n_seq = 2;
    c.seq_len[0] = 5;
    c.seq_len[1] = 3;
    for (i = 0; i < 8; i++) {
        c.tokens[i] = (int)(util_rng_u64(&r) % 11);
        c.targets[i] = (i == 2 || i == 6) ? -1 : (int)(util_rng_u64(&r) % 11);
        c.w[i] = c.targets[i] < 0 ? 0.0f : (float)util_rng_normal(&r);
    }
    if (_i == 1) model_set_temperature(&c.m, 0.7);
    printf("  whole model at temperature %s\n", _i ? "0.7" : "1");
    ck_assert_int_eq(model_forward(&c.m, logp, c.tokens, c.targets, c.seq_len, 2, &e), 0);
    model_zero_grad(&c.m);
    ck_assert_int_eq(model_backward(&c.m, c.w, &e), 0);
    /* a second backward without a forward is refused */
    ck_assert_int_eq(model_backward(&c.m, c.w, &e), -1);
    nt = model_num_tensors(&cfg);
    for (i = 0; i < nt; i++) {
        model_tensor_info ti;
        model_tensor(&cfg, i, &ti);
        check_grad(ti.name, c.m.grads_mem + ti.offset, c.m.params_mem + ti.offset, ti.numel, 1e-2f,
                   whole_loss, &c, 3e-3);
    }
    model_free(&c.m);
}
END_TEST

/* ======================================================================== */
/* 3. golden values from the independent PyTorch implementation              */
/* ======================================================================== */

typedef struct {
    int tokens[64], targets[64], seq_len[8], n_tok, n_seq;
    float weights[64];
    double logp[64];
} golden_batch;

static void load_golden_batch(st_file *f, golden_batch *b) {
    const st_tensor *t;
    dpo_err e;
    size_t n, i;
    double *lp;
    ck_assert_int_eq(st_open(f, GOLDEN_DIR "/golden.safetensors", &e), 0);
    t = st_find(f, "tokens");
    ck_assert_ptr_nonnull(t);
    b->n_tok = (int)t->numel;
    t = st_find(f, "seq_len");
    ck_assert_ptr_nonnull(t);
    b->n_seq = (int)t->numel;
    testutil_read_i32(f, "tokens", b->tokens, 64, NULL);
    testutil_read_i32(f, "targets", b->targets, 64, NULL);
    testutil_read_i32(f, "seq_len", b->seq_len, 8, NULL);
    t = st_find(f, "weights");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(st_read_f32(f, t, b->weights, &e), 0);
    lp = testutil_read_f64(f, "logp", &n);
    ck_assert_int_eq((int)n, b->n_tok);
    for (i = 0; i < n; i++) b->logp[i] = lp[i];
    free(lp);
}

START_TEST(test_golden) {
    model m;
    st_file f;
    golden_batch b;
    float logp[64];
    double lp_err = 0.0, worst = 0.0, loss = 0.0, *want;
    dpo_err e;
    size_t n;
    int i, nt;
    ck_assert_msg(model_load(&m, GOLDEN_DIR "/tiny", &e) == 0, "%s", e.msg);
    ck_assert_int_eq(model_alloc_grads(&m, &e), 0);
    load_golden_batch(&f, &b);
    ck_assert_int_eq(model_forward(&m, logp, b.tokens, b.targets, b.seq_len, b.n_seq, &e), 0);
    printf("  golden: relative error of each tensor vs the float64 PyTorch reference\n");
    for (i = 0; i < b.n_tok; i++) {
        double d = fabs(logp[i] - b.logp[i]) / fmax(1.0, fabs(b.logp[i]));
        if (b.targets[i] < 0) ck_assert_float_eq(logp[i], 0.0f);
        if (d > lp_err) lp_err = d;
        loss += (double)b.weights[i] * logp[i];
    }
    want = testutil_read_f64(&f, "loss", &n);
    printf("  %-28s max |error| / max(1, |logp|) %.2e   (loss %.9f vs %.9f)\n", "logp", lp_err, loss,
           want[0]);
    ck_assert_msg(lp_err < 2e-6, "logp error %.3e", lp_err);
    ck_assert_msg(fabs(loss - want[0]) < 1e-5 * fabs(want[0]), "loss %.9f vs %.9f", loss, want[0]);
    free(want);

    model_zero_grad(&m);
    ck_assert_int_eq(model_backward(&m, b.weights, &e), 0);
    nt = model_num_tensors(&m.cfg);
    for (i = 0; i < nt; i++) {
        model_tensor_info ti;
        char name[96];
        double err;
        model_tensor(&m.cfg, i, &ti);
        snprintf(name, sizeof name, "grad.%s", ti.name);
        want = testutil_read_f64(&f, name, &n);
        ck_assert_int_eq((int)n, (int)ti.numel);
        err = testutil_rel_err(m.grads_mem + ti.offset, want, n);
        printf("  %-28s %.2e\n", ti.name, err);
        if (err > worst) worst = err;
        ck_assert_msg(err < 1e-5, "%s: relative gradient error %.3e", ti.name, err);
        free(want);
    }
    printf("  worst gradient tensor: %.2e\n", worst);
    st_close(&f);
    model_free(&m);
}
END_TEST

/* ======================================================================== */
/* 4. dtypes and hub-style files                                              */
/* ======================================================================== */

START_TEST(test_dtypes_load_same_model) {
    model a, b, c;
    dpo_err e;
    ck_assert_msg(model_load(&a, GOLDEN_DIR "/tiny", &e) == 0, "%s", e.msg);
    ck_assert_msg(model_load(&b, GOLDEN_DIR "/tiny-hub-f16", &e) == 0, "%s", e.msg);
    ck_assert_msg(model_load(&c, GOLDEN_DIR "/tiny-bf16", &e) == 0, "%s", e.msg);
    ck_assert_int_eq((int)a.num_params, (int)b.num_params);
    ck_assert_mem_eq(a.params_mem, b.params_mem, a.num_params * sizeof(float));
    ck_assert_mem_eq(a.params_mem, c.params_mem, a.num_params * sizeof(float));
    ck_assert_int_eq(a.cfg.n_layer, 2);
    ck_assert_int_eq(a.cfg.n_head, 4);
    ck_assert_int_eq(a.cfg.n_embd, 32);
    ck_assert_int_eq(a.cfg.n_ctx, 24);
    ck_assert_int_eq(a.cfg.vocab_size, 61);
    ck_assert_int_eq(a.cfg.eos_token_id, 60);
    model_free(&a);
    model_free(&b);
    model_free(&c);
}
END_TEST

/* ======================================================================== */
/* 5. packing                                                                */
/* ======================================================================== */

START_TEST(test_packed_equals_alone) {
    model m;
    st_file f;
    golden_batch b;
    float packed[64], alone[64];
    dpo_err e;
    int s, start = 0;
    ck_assert_int_eq(model_load(&m, GOLDEN_DIR "/tiny", &e), 0);
    load_golden_batch(&f, &b);
    st_close(&f);
    ck_assert_int_eq(model_forward(&m, packed, b.tokens, b.targets, b.seq_len, b.n_seq, &e), 0);
    for (s = 0; s < b.n_seq; s++) {
        ck_assert_int_eq(model_forward(&m, alone, b.tokens + start, b.targets + start, &b.seq_len[s], 1, &e), 0);
        ck_assert_mem_eq(alone, packed + start, (size_t)b.seq_len[s] * sizeof(float));
        start += b.seq_len[s];
    }
    /* and in another order: the last sequence first */
    {
        int tok2[64], tgt2[64], len2[3] = {b.seq_len[2], b.seq_len[0], b.seq_len[1]};
        int n2 = b.seq_len[2], n01 = b.seq_len[0] + b.seq_len[1];
        memcpy(tok2, b.tokens + n01, (size_t)n2 * sizeof(int));
        memcpy(tgt2, b.targets + n01, (size_t)n2 * sizeof(int));
        memcpy(tok2 + n2, b.tokens, (size_t)n01 * sizeof(int));
        memcpy(tgt2 + n2, b.targets, (size_t)n01 * sizeof(int));
        ck_assert_int_eq(model_forward(&m, alone, tok2, tgt2, len2, 3, &e), 0);
        ck_assert_mem_eq(alone, packed + n01, (size_t)n2 * sizeof(float));
        ck_assert_mem_eq(alone + n2, packed, (size_t)n01 * sizeof(float));
    }
    model_free(&m);
}
END_TEST

/* Forward-only mode: the same log-probs bit for bit (golden 2-layer model,
 * packed batch of three), a smaller activation arena, backward refused; back
 * in training mode, forward + backward work again. */
START_TEST(test_no_grad_forward) {
    model m;
    st_file f;
    golden_batch b;
    float full[64], nog[64], dlogp[64];
    size_t cap_full;
    dpo_err e;
    int i, n = 0;
    ck_assert_int_eq(model_load(&m, GOLDEN_DIR "/tiny", &e), 0);
    ck_assert_int_eq(m.cfg.n_layer, 2);
    load_golden_batch(&f, &b);
    st_close(&f);
    for (i = 0; i < b.n_seq; i++) n += b.seq_len[i];
    ck_assert_int_eq(model_forward(&m, full, b.tokens, b.targets, b.seq_len, b.n_seq, &e), 0);
    cap_full = m.acts_cap;
    model_free(&m);
    ck_assert_int_eq(model_load(&m, GOLDEN_DIR "/tiny", &e), 0);
    model_set_no_grad(&m, 1);
    ck_assert_int_eq(model_forward(&m, nog, b.tokens, b.targets, b.seq_len, b.n_seq, &e), 0);
    ck_assert_mem_eq(nog, full, (size_t)n * sizeof(float));
    /* two layers' worth of the per-layer activations became one */
    ck_assert_msg(m.acts_cap < cap_full, "arena %zu floats, with gradients %zu", m.acts_cap, cap_full);
    ck_assert_int_eq(model_alloc_grads(&m, &e), 0);
    for (i = 0; i < n; i++) dlogp[i] = 1.0f;
    ck_assert_int_eq(model_backward(&m, dlogp, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "forward-only"));
    model_set_no_grad(&m, 0);
    ck_assert_int_eq(model_forward(&m, nog, b.tokens, b.targets, b.seq_len, b.n_seq, &e), 0);
    ck_assert_mem_eq(nog, full, (size_t)n * sizeof(float));
    ck_assert_int_eq(model_backward(&m, dlogp, &e), 0);
    model_free(&m);
}
END_TEST

/* The activation arenas hold no T x T term. For batches up to the whole context
 * (one sequence of T = 1024 tokens; two of 300 and 724), with n = n_tok tokens,
 * n_sel of them with a target, the forward's arena is exactly
 *   n (3C + 2 + QB H) + L n (16C + 4 + 2H) + n_sel (C + 2 + V)   floats
 * (forward-only: the same with L = 1; the head's chunk of logits holds all
 * n_sel x V here, V being 37; QB the attention's block of query rows, a
 * constant of the build) and the backward's scratch exactly
 *   n (10C + 2 QB H) + n_sel C,
 * both linear in the tokens. The stored-probability forward also kept
 * L H sum_s T_s^2 floats of P, which alone is more than the whole arena now. The
 * backward runs at full length, and its gradients are finite. */
START_TEST(test_acts_linear_in_tokens) {
    static const int lens[2][2] = {{1024, 0}, {300, 724}};
    model_config cfg = {3, 4, 16, 1024, 37, 1e-5, 36, 0};
    int b, no_grad, i;
    util_rng r;
    util_rng_seed(&r, 13);
    for (b = 0; b < 2; b++)
        for (no_grad = 0; no_grad <= 1; no_grad++) {
            int n_seq = lens[b][1] ? 2 : 1, *tok = malloc(1024 * sizeof(int)), *tgt = malloc(1024 * sizeof(int));
            float *logp = malloc(1024 * sizeof(float)), *dlogp = malloc(1024 * sizeof(float));
            size_t n = 1024, n_sel = 0, C = 16, H = 4, V = 37, L = no_grad ? 1 : 3, want, p2 = 0;
            size_t QB = (size_t)att_block_rows();
            model m;
            dpo_err e;
            ck_assert(tok && tgt && logp && dlogp);
            for (i = 0; i < 1024; i++) {
                tok[i] = (int)(util_rng_u64(&r) % V);
                tgt[i] = i % 5 == 4 ? -1 : (int)(util_rng_u64(&r) % V);
                n_sel += tgt[i] >= 0;
                dlogp[i] = 1.0f / 1024;
            }
            for (i = 0; i < n_seq; i++) p2 += (size_t)lens[b][i] * lens[b][i];
            ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
            ck_assert_int_eq(model_alloc_grads(&m, &e), 0);
            model_init_random(&m, 5);
            model_set_no_grad(&m, no_grad);
            ck_assert_int_eq(model_forward(&m, logp, tok, tgt, lens[b], n_seq, &e), 0);
            want = n * (3 * C + 2 + QB * H) + L * n * (16 * C + 4 + 2 * H) + n_sel * (C + 2 + V);
            ck_assert_msg(m.acts_cap == want, "batch %d no_grad %d: arena %zu floats, formula %zu", b, no_grad,
                          m.acts_cap, want);
            ck_assert_msg(m.acts_cap < L * H * p2, "arena %zu floats, P alone was %zu", m.acts_cap, L * H * p2);
            if (!no_grad) {
                model_zero_grad(&m);
                ck_assert_int_eq(model_backward(&m, dlogp, &e), 0);
                ck_assert_uint_eq(m.dacts_cap, n * (10 * C + 2 * QB * H) + n_sel * C);
                for (i = 0; i < (int)m.num_params; i++) ck_assert(isfinite(m.grads_mem[i]));
            }
            model_free(&m);
            free(tok);
            free(tgt);
            free(logp);
            free(dlogp);
        }
}
END_TEST

START_TEST(test_bad_batches) {
    model m;
    float logp[64];
    int tokens[30] = {0}, targets[30] = {0}, len;
    dpo_err e;
    ck_assert_int_eq(model_load(&m, GOLDEN_DIR "/tiny", &e), 0);
    len = 25; /* the context is 24 */
    ck_assert_int_eq(model_forward(&m, logp, tokens, targets, &len, 1, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "context"));
    len = 0;
    ck_assert_int_eq(model_forward(&m, logp, tokens, targets, &len, 1, &e), -1);
    len = 3;
    tokens[1] = 61;
    ck_assert_int_eq(model_forward(&m, logp, tokens, targets, &len, 1, &e), -1);
    ck_assert_ptr_nonnull(strstr(e.msg, "vocabulary"));
    tokens[1] = 0;
    targets[2] = -2;
    ck_assert_int_eq(model_forward(&m, logp, tokens, targets, &len, 1, &e), -1);
    ck_assert_int_eq(model_forward(&m, logp, tokens, targets, &len, 0, &e), -1);
    model_free(&m);
}
END_TEST

/* ======================================================================== */
/* 6. save/load round trip and thread-count independence                    */
/* ======================================================================== */

/* model_forward at temperature T against log softmax(z / T) in double, z the
 * key-value cache's logits of the same positions (model_kv_forward gives the
 * forward's logits bit for bit); T = 1 exactly the untempered bits. */
START_TEST(test_temperature_logp) {
    static const double temps[4] = {1.0, 0.7, 1.3, 0.25};
    model_config cfg = {2, 2, 16, 16, 37, 1e-5, 36, 0};
    model m;
    model_kv kv;
    int tokens[12], targets[12], slots[12] = {0}, len = 12, i, k;
    float lp1[12], lp[12], *z;
    dpo_err e;
    util_rng r;
    util_rng_seed(&r, 21);
    ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
    testutil_randomize_params(&m, &r);
    for (i = 0; i < 12; i++) tokens[i] = (int)(util_rng_u64(&r) % 37);
    for (i = 0; i < 12; i++) targets[i] = i + 1 < 12 ? tokens[i + 1] : -1;
    z = malloc(12 * 37 * sizeof *z);
    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(model_kv_create(&kv, &cfg, 1, 12, &e), 0);
    ck_assert_int_eq(model_kv_forward(&m, &kv, z, tokens, slots, NULL, 12, &e), 0);
    ck_assert_int_eq(model_forward(&m, lp1, tokens, targets, &len, 1, &e), 0);
    for (k = 0; k < 4; k++) {
        double worst = 0.0;
        model_set_temperature(&m, temps[k]);
        ck_assert_int_eq(model_forward(&m, lp, tokens, targets, &len, 1, &e), 0);
        if (k == 0) ck_assert_mem_eq(lp, lp1, sizeof lp);
        for (i = 0; i < 11; i++) {
            double mx = -INFINITY, s = 0.0, want;
            int v;
            for (v = 0; v < 37; v++) mx = fmax(mx, z[i * 37 + v] / temps[k]);
            for (v = 0; v < 37; v++) s += exp(z[i * 37 + v] / temps[k] - mx);
            want = z[i * 37 + targets[i]] / temps[k] - mx - log(s);
            worst = fmax(worst, fabs(lp[i] - want) / fmax(1.0, fabs(want)));
        }
        printf("  temperature %.2f: log-probs vs double reference, worst %.2e\n", temps[k], worst);
        ck_assert_msg(worst < 2e-6, "T %g: %.3e", temps[k], worst);
    }
    model_kv_free(&kv);
    free(z);
    model_free(&m);
}
END_TEST

START_TEST(test_save_load_roundtrip) {
    model a, b;
    model_config cfg = {3, 4, 16, 12, 37, 1e-5, 36, 0};
    const char *dir = tmp_root;
    dpo_err e;
    ck_assert_int_eq(model_create(&a, &cfg, &e), 0);
    model_init_random(&a, 99);
    ck_assert_msg(model_save(&a, dir, &e) == 0, "%s", e.msg);
    ck_assert_msg(model_load(&b, dir, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(b.cfg.n_layer, 3);
    ck_assert_int_eq(b.cfg.n_head, 4);
    ck_assert_int_eq(b.cfg.n_embd, 16);
    ck_assert_int_eq(b.cfg.n_ctx, 12);
    ck_assert_int_eq(b.cfg.vocab_size, 37);
    ck_assert_int_eq(b.cfg.eos_token_id, 36);
    ck_assert(b.cfg.ln_eps == 1e-5);
    ck_assert_int_eq((int)a.num_params, (int)b.num_params);
    ck_assert_mem_eq(a.params_mem, b.params_mem, a.num_params * sizeof(float));
    /* GPT-2 initialisation statistics: LN weights 1, biases 0, weights std 0.02 */
    ck_assert_float_eq(a.params.t[P_LN1W][5], 1.0f);
    ck_assert_float_eq(a.params.t[P_QKVB][7], 0.0f);
    {
        size_t i, n = (size_t)cfg.vocab_size * cfg.n_embd;
        double s2 = 0.0;
        for (i = 0; i < n; i++) s2 += (double)a.params.t[P_WTE][i] * a.params.t[P_WTE][i];
        ck_assert_msg(fabs(sqrt(s2 / n) - 0.02) < 0.002, "wte std %g", sqrt(s2 / n));
    }
    model_free(&a);
    model_free(&b);
}
END_TEST

/* Root mean square of n floats. */
static double rms(const float *x, size_t n) {
    double s2 = 0.0;
    size_t i;
    for (i = 0; i < n; i++) s2 += (double)x[i] * x[i];
    return sqrt(s2 / (double)n);
}

/* model_init_random_std: every weight matrix has the asked standard deviation,
 * the residual projections that over sqrt(2L); gains 1, biases 0; and 0.02
 * gives exactly model_init_random's bytes. 4 sigma of the sample std's error
 * (std / sqrt(2n)) as tolerance. */
START_TEST(test_init_std) {
    static const double stds[] = {0.005, 0.02, 0.1, 0.37};
    model_config cfg = {3, 4, 32, 16, 301, 1e-5, 300, 0};
    model a, b;
    dpo_err e;
    size_t k;
    ck_assert_int_eq(model_create(&a, &cfg, &e), 0);
    ck_assert_int_eq(model_create(&b, &cfg, &e), 0);
    model_init_random(&a, 7);
    model_init_random_std(&b, 7, 0.02);
    ck_assert_mem_eq(a.params_mem, b.params_mem, a.num_params * sizeof(float));
    for (k = 0; k < sizeof stds / sizeof stds[0]; k++) {
        double s = stds[k], proj = s / sqrt(2.0 * cfg.n_layer);
        size_t n_wte = (size_t)cfg.vocab_size * cfg.n_embd, n_fc = (size_t)cfg.n_embd * 4 * cfg.n_embd;
        double r_wte, r_fc, r_proj;
        model_init_random_std(&b, 11 + k, s);
        r_wte = rms(b.params.t[P_WTE], n_wte);
        r_fc = rms(b.params.t[P_FCW], n_fc);        /* layer 0's c_fc */
        r_proj = rms(b.params.t[P_FCPROJW], n_fc);  /* layer 0's mlp.c_proj */
        ck_assert_msg(fabs(r_wte - s) < 4 * s / sqrt(2.0 * n_wte), "std %g: wte rms %g", s, r_wte);
        ck_assert_msg(fabs(r_fc - s) < 4 * s / sqrt(2.0 * n_fc), "std %g: c_fc rms %g", s, r_fc);
        ck_assert_msg(fabs(r_proj - proj) < 4 * proj / sqrt(2.0 * n_fc), "std %g: c_proj rms %g", s, r_proj);
        ck_assert_float_eq(b.params.t[P_LN2W][3], 1.0f);
        ck_assert_float_eq(b.params.t[P_FCB][9], 0.0f);
    }
    model_free(&a);
    model_free(&b);
}
END_TEST

/* Large enough that every parallel loop clears DPO_OMP_MIN_WORK and really runs
 * on two threads (N * C = 270 * 128 = 34560 >= 32768). */
START_TEST(test_threads_bit_identical) {
    model m;
    model_config cfg = {2, 4, 128, 128, 300, 1e-5, 299, 0};
    int tokens[270], targets[270], lens[3] = {100, 90, 80}, i, saved = util_threads();
    float lp1[270], lp2[270], w[270], *g1;
    dpo_err e;
    util_rng r;
    ck_assert((double)270 * 128 >= DPO_OMP_MIN_WORK);
    util_rng_seed(&r, 11);
    ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
    ck_assert_int_eq(model_alloc_grads(&m, &e), 0);
    testutil_randomize_params(&m, &r);
    for (i = 0; i < 270; i++) {
        tokens[i] = (int)(util_rng_u64(&r) % 300);
        targets[i] = i % 7 == 3 ? -1 : (int)(util_rng_u64(&r) % 300);
        w[i] = (float)util_rng_normal(&r);
    }
    g1 = malloc(m.num_params * sizeof(float));
    ck_assert_ptr_nonnull(g1);

    util_set_threads(1);
    ck_assert_int_eq(model_forward(&m, lp1, tokens, targets, lens, 3, &e), 0);
    model_zero_grad(&m);
    ck_assert_int_eq(model_backward(&m, w, &e), 0);
    memcpy(g1, m.grads_mem, m.num_params * sizeof(float));

    util_set_threads(2);
    ck_assert_int_eq(model_forward(&m, lp2, tokens, targets, lens, 3, &e), 0);
    model_zero_grad(&m);
    ck_assert_int_eq(model_backward(&m, w, &e), 0);
    ck_assert_mem_eq(lp1, lp2, sizeof lp1);
    ck_assert_mem_eq(g1, m.grads_mem, m.num_params * sizeof(float));

    util_set_threads(saved);
    free(g1);
    model_free(&m);
}
END_TEST

/* 7. The key-value cache against full forward passes. For random models and
 * random sequences, the tokens are fed through model_kv_forward in random
 * interleavings (several sequences per call, 1..6 tokens of one sequence per
 * call, 1 or 2 threads), and every position's log-probability of its target
 * must equal model_forward's on the whole sequence bit for bit: both paths run
 * the same row-wise code (attend_one, the same layer functions, mm_* sums each
 * output in a fixed order whatever the number of rows), so the tolerance is
 * zero, and any difference means a position saw the wrong keys. */
START_TEST(test_kv_cache_equals_forward) {
    enum { S = 5, MAXT = 40 };
    int trial, saved = util_threads();
    util_rng r;
    util_rng_seed(&r, 2024);
    for (trial = 0; trial < 12; trial++) {
        model_config cfg = {1 + trial % 3, 4, 32 + 16 * (trial % 2), 48, 61 + trial, 1e-5, 60 + trial, 0};
        model m;
        model_kv kv;
        int tok[S][MAXT], tgt[S][MAXT], len[S], fed[S], s, t, i, compared = 0;
        float full[S][MAXT], *logits;
        double *lp;
        dpo_err e;
        util_set_threads(1 + trial % 2);
        ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
        testutil_randomize_params(&m, &r);
        for (s = 0; s < S; s++) {
            len[s] = 1 + (int)(util_rng_u64(&r) % MAXT);
            fed[s] = 0;
            for (t = 0; t < len[s]; t++) tok[s][t] = (int)(util_rng_u64(&r) % (uint64_t)cfg.vocab_size);
            for (t = 0; t < len[s]; t++)
                tgt[s][t] = t + 1 < len[s] ? tok[s][t + 1] : (int)(util_rng_u64(&r) % (uint64_t)cfg.vocab_size);
            ck_assert_int_eq(model_forward(&m, full[s], tok[s], tgt[s], &len[s], 1, &e), 0);
        }
        ck_assert_int_eq(model_kv_create(&kv, &cfg, S, MAXT, &e), 0);
        logits = malloc((size_t)S * 6 * (size_t)cfg.vocab_size * sizeof(float));
        lp = malloc((size_t)cfg.vocab_size * sizeof(double));
        ck_assert(logits && lp);
        for (;;) {
            int ctok[S * 6], cslot[S * 6], cpos[S * 6], n = 0;
            for (s = 0; s < S; s++) {
                int k = util_rng_u64(&r) % 3 == 0 ? 0 : 1 + (int)(util_rng_u64(&r) % 6);
                for (; k > 0 && fed[s] < len[s]; k--, n++) {
                    ctok[n] = tok[s][fed[s]];
                    cslot[n] = s;
                    cpos[n] = fed[s]++;
                }
            }
            if (n == 0) {
                for (s = 0; s < S && fed[s] == len[s]; s++) continue;
                if (s == S) break;
                continue;
            }
            ck_assert_int_eq(model_kv_forward(&m, &kv, logits, ctok, cslot, NULL, n, &e), 0);
            for (i = 0; i < n; i++) {
                float got;
                model_log_softmax(lp, logits + (size_t)i * cfg.vocab_size, cfg.vocab_size);
                got = (float)lp[tgt[cslot[i]][cpos[i]]];
                ck_assert_msg(memcmp(&got, &full[cslot[i]][cpos[i]], sizeof got) == 0,
                              "trial %d sequence %d position %d: cache %.9g, full forward %.9g", trial, cslot[i],
                              cpos[i], got, full[cslot[i]][cpos[i]]);
                compared++;
            }
        }
        for (s = 0; s < S; s++) ck_assert_int_eq(kv.len[s], len[s]);
        /* a full slot is refused and changes nothing */
        for (s = 0; s < S && len[s] < MAXT; s++) continue;
        if (s < S) {
            int one = 0;
            ck_assert_int_ne(model_kv_forward(&m, &kv, logits, &one, &s, NULL, 1, &e), 0);
            ck_assert_msg(strstr(e.msg, "full") != NULL, "%s", e.msg);
            ck_assert_int_eq(kv.len[s], MAXT);
        }
        model_kv_clear(&kv, 0);
        ck_assert_int_eq(kv.len[0], 0);
        ck_assert_int_gt(compared, 0);
        free(logits);
        free(lp);
        model_kv_free(&kv);
        model_free(&m);
    }
    util_set_threads(saved);
}
END_TEST

/* Bad calls are refused before anything changes: a slot or token id out of range. */
START_TEST(test_kv_cache_bad_calls) {
    model_config cfg = {1, 2, 8, 6, 11, 1e-5, 10, 0};
    model m;
    model_kv kv;
    float logits[11];
    int tok = 3, slot = 2, bad = 11;
    dpo_err e;
    ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
    ck_assert_int_ne(model_kv_create(&kv, &cfg, 2, 7, &e), 0); /* longer than the context */
    ck_assert_int_eq(model_kv_create(&kv, &cfg, 2, 6, &e), 0);
    ck_assert_int_ne(model_kv_forward(&m, &kv, logits, &tok, &slot, NULL, 1, &e), 0);
    slot = 1;
    ck_assert_int_ne(model_kv_forward(&m, &kv, logits, &bad, &slot, NULL, 1, &e), 0);
    ck_assert_int_eq(kv.len[1], 0);
    ck_assert_int_eq(model_kv_forward(&m, &kv, logits, &tok, &slot, NULL, 1, &e), 0);
    ck_assert_int_eq(kv.len[1], 1);
    model_kv_free(&kv);
    model_free(&m);
}
END_TEST

/* ======================================================================== */
/* 8. the head in chunks equals the head in one piece                        */
/* ======================================================================== */

/* The head as it was before it was chunked, kept here as the reference: all
 * (n_sel, V) logits at once into probs, the softmax stored over them, then
 * turned into dlogits in place, and one product over all the rows for each
 * gradient. Reads the forward's head_in, sel and targets from m; writes logp
 * (n_tok), adds into dwte (V, C), writes dhead (n_sel, C). */
static void ref_head(float *logp, float *dwte, float *dhead, const model *m, const float *dlogp) {
    int C = m->cfg.n_embd, V = m->cfg.vocab_size, n_sel = m->n_sel, r, v;
    const float *wte = m->params.t[P_WTE], *head_in = m->acts.head_in;
    float *probs = malloc((size_t)n_sel * V * sizeof(float) + 1);
    ck_assert_ptr_nonnull(probs);
    mm_a_bt(probs, head_in, wte, n_sel, V, C);
    for (r = 0; r < m->n_tok; r++) logp[r] = 0.0f;
    /* the old logsoftmax_forward */
    for (r = 0; r < n_sel; r++) {
        float *z = probs + (size_t)r * V, mx, zt, inv;
        double sum;
        zt = z[m->targets[m->sel[r]]];
        softmax_norm(z, V, &mx, &sum); /* the normaliser (its order of additions) is not what chunking changed */
        for (v = 0; v < V; v++) z[v] = exp_fast(z[v] - mx);
        logp[m->sel[r]] = (float)((double)zt - (double)mx - log(sum));
        inv = (float)(1.0 / sum);
        for (v = 0; v < V; v++) z[v] *= inv;
    }
    /* the old logsoftmax_backward */
    for (r = 0; r < n_sel; r++) {
        float *z = probs + (size_t)r * V, g = dlogp[m->sel[r]];
        for (v = 0; v < V; v++) z[v] = -g * z[v];
        z[m->targets[m->sel[r]]] += g;
    }
    mm_add_at_b(dwte, probs, head_in, V, C, n_sel);
    mm_ab(dhead, probs, wte, NULL, n_sel, C, V);
    free(probs);
}

/* A random model and a random packed batch with exactly n_sel tokens that
 * have a target, the rest -1. */
typedef struct {
    model m;
    int *tokens, *targets, seq_len[8], n_seq, n_tok;
    float *dlogp;
} head_case;

static void head_case_make(head_case *hc, const model_config *cfg, const int *lens, int n_seq, int n_sel,
                           util_rng *r) {
    int i, s, dropped;
    dpo_err e;
    ck_assert(n_seq <= 8);
    ck_assert_int_eq(model_create(&hc->m, cfg, &e), 0);
    ck_assert_int_eq(model_alloc_grads(&hc->m, &e), 0);
    testutil_randomize_params(&hc->m, r);
    hc->n_seq = n_seq;
    hc->n_tok = 0;
    for (s = 0; s < n_seq; s++) hc->n_tok += hc->seq_len[s] = lens[s];
    ck_assert(n_sel <= hc->n_tok);
    hc->tokens = malloc((size_t)hc->n_tok * sizeof(int));
    hc->targets = malloc((size_t)hc->n_tok * sizeof(int));
    hc->dlogp = malloc((size_t)hc->n_tok * sizeof(float));
    ck_assert(hc->tokens && hc->targets && hc->dlogp);
    for (i = 0; i < hc->n_tok; i++) {
        hc->tokens[i] = (int)(util_rng_u64(r) % (uint64_t)cfg->vocab_size);
        hc->targets[i] = (int)(util_rng_u64(r) % (uint64_t)cfg->vocab_size);
        hc->dlogp[i] = (float)util_rng_normal(r);
    }
    for (dropped = 0; dropped < hc->n_tok - n_sel;) {
        i = (int)(util_rng_u64(r) % (uint64_t)hc->n_tok);
        if (hc->targets[i] >= 0) {
            hc->targets[i] = -1;
            dropped++;
        }
    }
}

static void head_case_free(head_case *hc) {
    free(hc->tokens);
    free(hc->targets);
    free(hc->dlogp);
    model_free(&hc->m);
}

/* For random models and batches, the chunked head (model_forward's logp, and
 * head_backward's dwte and dhead) equals the reference above bit for bit
 * (tolerance 0). The forward's chunks of rows: n_sel a multiple of the chunk or
 * not, below the chunk, one row per chunk, all rows at once; the backward's
 * slices of the vocabulary likewise (V a multiple of the slice or not, one
 * column per slice, the target in another slice than most of the row's
 * columns); n_sel = 0 (no token has a target); 1 and 2 threads; a vocabulary
 * past the matmul's column block with a chunk of few rows (mm_*'s column-block
 * path for the chunk, the row-panel path for the reference); more rows than the
 * matmul's depth block (the dwte product crosses a block of k); chunks large
 * enough for the log-softmax to run on two threads. dwte starts from random
 * values (the backward adds into it). Then the whole model: forward and
 * backward in chunks give the very log-probs and gradients (every parameter)
 * of the head in one piece. */
START_TEST(test_head_chunks_equal_unchunked) {
    static const struct {
        int V, C, n_seq, lens[4], n_sel, rows, cols, threads;
    } cases[] = {
        {61, 16, 2, {14, 11}, 23, 4, 10, 1},           /* 23 = 5 x 4 + 3 rows, 61 = 6 x 10 + 1 columns */
        {61, 16, 2, {14, 11}, 23, 4, 10, 2},
        {60, 16, 3, {9, 9, 7}, 20, 5, 12, 2},          /* 20 = 4 x 5, 60 = 5 x 12 */
        {61, 16, 2, {5, 6}, 3, 8, 100, 1},             /* n_sel < rows, V < cols */
        {61, 16, 2, {5, 6}, 0, 5, 7, 2},               /* no token has a target */
        {61, 16, 1, {12}, 12, 0, 0, 1},                /* the defaults: all rows, all columns at once */
        {61, 16, 2, {14, 11}, 23, 1, 1, 2},            /* one row, one column at a time */
        {300, 16, 3, {30, 25, 20}, 70, 1, 37, 2},      /* V > NC */
        {300, 16, 4, {120, 120, 120, 110}, 463, 97, 64, 2},
        {300, 8, 4, {200, 200, 150, 100}, 600, 97, 299, 2}, /* n_sel > KC = 512 */
        {700, 16, 4, {200, 200, 150, 100}, 590, 64, 128, 2}, /* 64 x 700 and 590 x 128: 2 threads */
    };
    int k, saved = util_threads();
    util_rng r;
    util_rng_seed(&r, 8080);
    for (k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        model_config cfg = {1 + k % 2, 2, cases[k].C, 200, cases[k].V, 1e-5, cases[k].V - 1, 0};
        head_case hc;
        model *m = &hc.m;
        size_t nwte = (size_t)cases[k].V * cases[k].C, ngrad;
        int n_sel = cases[k].n_sel, C = cases[k].C, V = cases[k].V, want_rows, want_cols, i;
        float *logp, *logp_ref, *dwte_ref, *dhead_ref, *g1;
        dpo_err e;
        util_set_threads(cases[k].threads);
        head_case_make(&hc, &cfg, cases[k].lens, cases[k].n_seq, n_sel, &r);
        ngrad = m->num_params;
        logp = malloc((size_t)hc.n_tok * sizeof(float));
        logp_ref = malloc((size_t)hc.n_tok * sizeof(float));
        dwte_ref = malloc(nwte * sizeof(float));
        dhead_ref = malloc((size_t)n_sel * C * sizeof(float) + 1);
        g1 = malloc(ngrad * sizeof(float));
        ck_assert(logp && logp_ref && dwte_ref && dhead_ref && g1);

        /* the head alone, against the reference */
        m->head_rows_max = cases[k].rows;
        m->head_cols_max = cases[k].cols;
        ck_assert_int_eq(model_forward(m, logp, hc.tokens, hc.targets, hc.seq_len, hc.n_seq, &e), 0);
        ck_assert_int_eq(m->n_sel, n_sel);
        want_rows = cases[k].rows > 0 && cases[k].rows < n_sel ? cases[k].rows : n_sel;
        want_cols = n_sel == 0 ? 0 : cases[k].cols > 0 && cases[k].cols < V ? cases[k].cols : V;
        ck_assert_int_eq(m->head_rows, want_rows);
        ck_assert_int_eq(m->head_cols, want_cols);
        testutil_fill_normal(m->grads.t[P_WTE], nwte, 1.0, 0.0, &r);
        memcpy(dwte_ref, m->grads.t[P_WTE], nwte * sizeof(float));
        ref_head(logp_ref, dwte_ref, dhead_ref, m, hc.dlogp);
        ck_assert_int_eq(alloc_dacts(m, &e), 0);
        head_backward(m, hc.dlogp);
        for (i = 0; i < hc.n_tok; i++)
            ck_assert_msg(memcmp(&logp[i], &logp_ref[i], sizeof(float)) == 0,
                          "case %d token %d: logp %.9g, unchunked %.9g", k, i, logp[i], logp_ref[i]);
        ck_assert_msg(memcmp(m->grads.t[P_WTE], dwte_ref, nwte * sizeof(float)) == 0, "case %d: dwte differs", k);
        ck_assert_msg(n_sel == 0 || memcmp(m->dacts.dhead, dhead_ref, (size_t)n_sel * C * sizeof(float)) == 0,
                      "case %d: dhead differs", k);
        /* dlnf: dhead on the selected rows, 0 elsewhere */
        for (i = 0; i < n_sel; i++)
            ck_assert(memcmp(m->dacts.dln + (size_t)m->sel[i] * C, dhead_ref + (size_t)i * C,
                             (size_t)C * sizeof(float)) == 0);
        for (i = 0; i < hc.n_tok; i++) {
            int c;
            for (c = 0; c < C && hc.targets[i] < 0; c++) ck_assert_float_eq(m->dacts.dln[(size_t)i * C + c], 0.0f);
        }

        /* the whole model: in chunks, then in one piece */
        model_zero_grad(m);
        ck_assert_int_eq(model_forward(m, logp, hc.tokens, hc.targets, hc.seq_len, hc.n_seq, &e), 0);
        ck_assert_int_eq(model_backward(m, hc.dlogp, &e), 0);
        memcpy(g1, m->grads_mem, ngrad * sizeof(float));
        m->head_rows_max = 0;
        m->head_cols_max = 0;
        model_zero_grad(m);
        ck_assert_int_eq(model_forward(m, logp_ref, hc.tokens, hc.targets, hc.seq_len, hc.n_seq, &e), 0);
        ck_assert_int_eq(m->head_rows, n_sel);
        ck_assert_int_eq(m->head_cols, n_sel ? V : 0);
        ck_assert_int_eq(model_backward(m, hc.dlogp, &e), 0);
        ck_assert_mem_eq(logp, logp_ref, (size_t)hc.n_tok * sizeof(float));
        ck_assert_msg(memcmp(g1, m->grads_mem, ngrad * sizeof(float)) == 0, "case %d: gradients differ", k);
        printf("  case %d: V %d, n_sel %d, %d rows / %d columns at a time, %d thread(s): identical\n", k, V, n_sel,
               want_rows, want_cols, cases[k].threads);

        free(logp);
        free(logp_ref);
        free(dwte_ref);
        free(dhead_ref);
        free(g1);
        head_case_free(&hc);
    }
    util_set_threads(saved);
}
END_TEST

/* The sizes of the head's chunks: 16 MiB of logits, at least one row and
 * HEAD_MIN_COLS = 256 columns, at most n_sel rows and V columns, or the tests'
 * limits; and the arena holds one chunk (max(R V, n_sel W) floats), not n_sel
 * rows: with GPT-2's vocabulary and 100 selected tokens, a model limited to one
 * row and one column at a time has an arena smaller by 4194300 - 50257 floats,
 * to the float (same batch, fresh models). */
START_TEST(test_head_chunk_sizes) {
    static const struct {
        int V, n_sel, rows_max, cols_max, rows, cols;
    } cases[] = {
        {50257, 1024, 0, 0, 83, 4096},   /* GPT-2, 4 x 256 tokens: 16 MiB either way */
        {50257, 50, 0, 0, 50, 50257},    /* fewer rows than a chunk: all rows, all columns */
        {50257, 20000, 0, 0, 83, 256},   /* 209 columns would fit: the minimum of 256 */
        {4194304, 7, 0, 0, 1, 599186},   /* the largest vocabulary: one row (16 MiB) */
        {100, 0, 0, 0, 0, 0},            /* no token has a target */
        {100, 30, 0, 0, 30, 100},
        {100, 30, 7, 9, 7, 9},
        {100, 30, 31, 101, 30, 100},
    };
    int k;
    model_config cfg = {1, 2, 8, 128, 50257, 1e-5, 50256, 0};
    int lens[1] = {110};
    head_case a, b;
    float logp[110];
    dpo_err e;
    util_rng r;
    for (k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        model mm;
        memset(&mm, 0, sizeof mm);
        mm.cfg.vocab_size = cases[k].V;
        mm.n_sel = cases[k].n_sel;
        mm.head_rows_max = cases[k].rows_max;
        mm.head_cols_max = cases[k].cols_max;
        head_chunks(&mm);
        ck_assert_msg(mm.head_rows == cases[k].rows && mm.head_cols == cases[k].cols,
                      "V %d, n_sel %d: %d rows, %d columns; want %d, %d", cases[k].V, cases[k].n_sel, mm.head_rows,
                      mm.head_cols, cases[k].rows, cases[k].cols);
    }
    util_rng_seed(&r, 83);
    head_case_make(&a, &cfg, lens, 1, 100, &r);
    ck_assert_int_eq(model_forward(&a.m, logp, a.tokens, a.targets, a.seq_len, 1, &e), 0);
    ck_assert_int_eq(a.m.head_rows, 83);
    ck_assert_int_eq(a.m.head_cols, 41943);
    util_rng_seed(&r, 83);
    head_case_make(&b, &cfg, lens, 1, 100, &r);
    b.m.head_rows_max = 1;
    b.m.head_cols_max = 1;
    ck_assert_int_eq(model_forward(&b.m, logp, b.tokens, b.targets, b.seq_len, 1, &e), 0);
    ck_assert_uint_eq(a.m.acts_cap - b.m.acts_cap, (size_t)100 * 41943 - 50257);
    ck_assert_uint_le((size_t)100 * 41943 * sizeof(float), (size_t)16 << 20);
    head_case_free(&a);
    head_case_free(&b);
}
END_TEST

static Suite *model_suite(void) {
    Suite *s = suite_create("model");
    TCase *t = tcase_create("layers");
    tcase_add_test(t, test_layernorm_grad);
    tcase_add_test(t, test_layernorm_against_reference);
    tcase_add_test(t, test_matmul_grad);
    tcase_add_test(t, test_attention_grad);
    tcase_add_test(t, test_attention_against_reference);
    tcase_add_test(t, test_gelu);
    tcase_add_test(t, test_exp_fast);
    tcase_add_test(t, test_logsoftmax);
    tcase_add_test(t, test_encoder);
    suite_add_tcase(s, t);
    t = tcase_create("model");
    tcase_add_checked_fixture(t, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, test_whole_model_grad, 0, 2);
    tcase_add_test(t, test_temperature_logp);
    tcase_add_test(t, test_golden);
    tcase_add_test(t, test_dtypes_load_same_model);
    tcase_add_test(t, test_packed_equals_alone);
    tcase_add_test(t, test_no_grad_forward);
    tcase_add_test(t, test_acts_linear_in_tokens);
    tcase_add_test(t, test_bad_batches);
    tcase_add_test(t, test_save_load_roundtrip);
    tcase_add_test(t, test_init_std);
    tcase_add_test(t, test_threads_bit_identical);
    tcase_add_test(t, test_kv_cache_equals_forward);
    tcase_add_test(t, test_kv_cache_bad_calls);
    tcase_add_test(t, test_head_chunks_equal_unchunked);
    tcase_add_test(t, test_head_chunk_sizes);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return testutil_run(model_suite()); }
