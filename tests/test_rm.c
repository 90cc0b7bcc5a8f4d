/* tests/test_rm.c - Check suite for reward models (dpo rm-train): the score
 * head of model.c, its Hugging Face directory (model_io.c), the Bradley-Terry
 * loss (objective.c) and the TRAIN_RM loop (train.c), each against a reference
 * computed independently:
 *
 *   - scores and every gradient against float64 golden values from the PyTorch
 *     reference (tests/golden/gen_golden.py: GPT2ForSequenceClassification's
 *     bias-free Linear on the final hidden states, tests/golden/tiny-rm);
 *   - every parameter's gradient through the score, trunk and head, against
 *     central finite differences, for several random shapes and batches;
 *   - the Bradley-Terry loss and its derivative against the formula and finite
 *     differences, without overflow at margins of +-800;
 *   - one train_run step with plain SGD against p - lr g, g built here from
 *     sequences scored alone;
 *   - held-out accuracy rising from chance on a toy task; a resumed run ending
 *     bit-identical to an uninterrupted one;
 *   - the directory format: the config transformers writes, "score.weight"
 *     outside "transformer.", and every inconsistent or hostile variant refused
 *     with a message naming the problem. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "objective.h"
#include "optim.h"
#include "reward.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "train.h"
#include "util.h"

#define GOLDEN_DIR "tests/golden"
#define TOK_DIR "data/gpt2"

/* ------------------------------------------------------------------------ */
/* helpers */

static void path_in(char *out, size_t cap, const char *name) {
    ck_assert((size_t)snprintf(out, cap, "%s/%s", tmp_root, name) < cap);
}

static void write_text(const char *path, const char *text) { testutil_write_bytes(path, text, strlen(text)); }

/* ======================================================================== */
/* 1. the score head against the PyTorch reference                            */
/* ======================================================================== */

START_TEST(test_rm_golden) {
    model m, lm;
    st_file f;
    dpo_err e;
    int tokens[64], seq_len[8], i, nt;
    size_t n_tok, n_seq, n;
    float score[64], w[64];
    double *want, err = 0.0, loss = 0.0, worst = 0.0;
    /* a language-model loader refuses it, naming what it is */
    ck_assert_int_eq(model_load(&lm, GOLDEN_DIR "/tiny-rm", &e), -1);
    ck_assert_msg(strstr(e.msg, "reward or value model") != NULL, "%s", e.msg);
    ck_assert_msg(model_load_any(&m, GOLDEN_DIR "/tiny-rm", &e) == 0, "%s", e.msg);
    ck_assert_int_eq(m.cfg.score_head, 1);
    ck_assert_int_eq(model_num_tensors(&m.cfg), 4 + 12 * 2 + 1);
    ck_assert_int_eq(model_alloc_grads(&m, &e), 0);
    ck_assert_int_eq(st_open(&f, GOLDEN_DIR "/golden_rm.safetensors", &e), 0);
    testutil_read_i32(&f, "tokens", tokens, 64, &n_tok);
    testutil_read_i32(&f, "seq_len", seq_len, 8, &n_seq);
    ck_assert_int_eq(st_read_f32(&f, st_find(&f, "weights"), w, &e), 0);
    ck_assert_int_eq(model_forward_score(&m, score, tokens, seq_len, (int)n_seq, &e), 0);
    want = testutil_read_f64(&f, "score", &n);
    ck_assert_int_eq((int)n, (int)n_tok);
    for (i = 0; i < (int)n_tok; i++) {
        double d = fabs(score[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (d > err) err = d;
        loss += (double)w[i] * score[i];
    }
    free(want);
    want = testutil_read_f64(&f, "loss", &n);
    printf("  rm golden: scores max |error| / max(1, |score|) %.2e (loss %.9f vs %.9f)\n", err, loss, want[0]);
    ck_assert_msg(err < 2e-6, "score error %.3e", err);
    ck_assert_msg(fabs(loss - want[0]) < 1e-5 * fabs(want[0]), "loss %.9f vs %.9f", loss, want[0]);
    free(want);
    model_zero_grad(&m);
    ck_assert_int_eq(model_backward_score(&m, w, &e), 0);
    nt = model_num_tensors(&m.cfg);
    for (i = 0; i < nt; i++) {
        model_tensor_info ti;
        char name[96];
        double er;
        model_tensor(&m.cfg, i, &ti);
        snprintf(name, sizeof name, "grad.%s", ti.name);
        want = testutil_read_f64(&f, name, &n);
        ck_assert_int_eq((int)n, (int)ti.numel);
        er = testutil_rel_err(m.grads_mem + ti.offset, want, n);
        if (er > worst) worst = er;
        ck_assert_msg(er < 1e-5, "%s: relative gradient error %.3e", ti.name, er);
        free(want);
    }
    printf("  rm golden: worst gradient tensor %.2e (score.weight included)\n", worst);
    /* the language-model passes are refused on the score only where they must be:
       a backward of the score needs a forward of the score's batch */
    ck_assert_int_eq(model_backward_score(&m, w, &e), -1);
    st_close(&f);
    model_free(&m);
}
END_TEST

/* ======================================================================== */
/* 2. finite differences over random shapes                                   */
/* ======================================================================== */

typedef struct {
    model m;
    int tokens[24], seq_len[4], n_seq, n_tok;
    float w[24];
} fd_ctx;

static double fd_loss(fd_ctx *c) {
    float sc[24];
    double s = 0.0;
    dpo_err e;
    int i;
    ck_assert_int_eq(model_forward_score(&c->m, sc, c->tokens, c->seq_len, c->n_seq, &e), 0);
    for (i = 0; i < c->n_tok; i++) s += (double)c->w[i] * sc[i];
    return s;
}

/* For three random configs (layers, heads, width, vocabulary) and packed
 * batches, d(sum_t w_t score_t) / d(every parameter) against central finite
 * differences, each tensor norm-wise. w is nonzero at a random subset of the
 * positions (a reward model's is at the last tokens only; a value model's at
 * every generated one). */
START_TEST(test_rm_grad_finite_differences) {
    static const int shapes[3][4] = {{2, 2, 8, 11}, {1, 1, 4, 7}, {3, 2, 6, 13}}; /* L, H, C, V */
    int k;
    for (k = 0; k < 3; k++) {
        fd_ctx c;
        model_config cfg;
        dpo_err e;
        util_rng r;
        int i, nt, s;
        double worst = 0.0;
        memset(&cfg, 0, sizeof cfg);
        cfg.n_layer = shapes[k][0];
        cfg.n_head = shapes[k][1];
        cfg.n_embd = shapes[k][2];
        cfg.n_ctx = 10;
        cfg.vocab_size = shapes[k][3];
        cfg.ln_eps = 1e-5;
        cfg.eos_token_id = shapes[k][3] - 1;
        cfg.score_head = 1;
        util_rng_seed(&r, 100 + (uint64_t)k);
        ck_assert_int_eq(model_create(&c.m, &cfg, &e), 0);
        ck_assert_int_eq(model_alloc_grads(&c.m, &e), 0);
        testutil_randomize_params(&c.m, &r);
        c.n_seq = 1 + k % 3;
        c.n_tok = 0;
        for (s = 0; s < c.n_seq; s++) {
            c.seq_len[s] = 2 + (int)(util_rng_u64(&r) % 8);
            c.n_tok += c.seq_len[s];
        }
        for (i = 0; i < c.n_tok; i++) {
            c.tokens[i] = (int)(util_rng_u64(&r) % (uint64_t)cfg.vocab_size);
            c.w[i] = util_rng_u64(&r) % 3 == 0 ? 0.0f : (float)util_rng_normal(&r);
        }
        (void)fd_loss(&c);
        model_zero_grad(&c.m);
        ck_assert_int_eq(model_backward_score(&c.m, c.w, &e), 0);
        nt = model_num_tensors(&cfg);
        for (i = 0; i < nt; i++) {
            model_tensor_info ti;
            double *g, err;
            size_t j;
            model_tensor(&cfg, i, &ti);
            g = malloc(ti.numel * sizeof *g);
            ck_assert_ptr_nonnull(g);
            for (j = 0; j < ti.numel; j++) { /* 4-point central differences, error O(h^4) */
                float *x = c.m.params_mem + ti.offset + j, x0 = *x, h = 1e-2f;
                double f[4];
                int q;
                for (q = 0; q < 4; q++) {
                    *x = x0 + (float)(q < 2 ? 2 - q : 1 - q) * h; /* x0 + 2h, + h, - h, - 2h */
                    f[q] = fd_loss(&c);
                }
                *x = x0;
                g[j] = (-f[0] + 8.0 * f[1] - 8.0 * f[2] + f[3]) / (12.0 * (double)h);
            }
            err = testutil_rel_err(c.m.grads_mem + ti.offset, g, ti.numel);
            if (err > worst) worst = err;
            ck_assert_msg(err < 3e-3, "shape %d, %s: relative error %.3e vs finite differences", k, ti.name, err);
            free(g);
        }
        printf("  rm finite differences, L %d H %d C %d V %d, %d sequences: worst tensor %.2e\n", cfg.n_layer,
               cfg.n_head, cfg.n_embd, cfg.vocab_size, c.n_seq, worst);
        model_free(&c.m);
    }
}
END_TEST

/* ======================================================================== */
/* 3. adding a head; packing and threads                                     */
/* ======================================================================== */

START_TEST(test_add_score_head) {
    model m, keep;
    model_config cfg = {2, 2, 16, 12, 23, 1e-5, 22, 0};
    int tokens[9] = {1, 5, 7, 2, 9, 22, 3, 3, 0}, targets[9] = {5, 7, 2, -1, 22, 3, 3, 0, -1}, lens[2] = {4, 5};
    float lp1[9], lp2[9];
    dpo_err e;
    double s2 = 0.0;
    int i;
    ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
    model_init_random(&m, 3);
    ck_assert_int_eq(model_create(&keep, &cfg, &e), 0);
    memcpy(keep.params_mem, m.params_mem, m.num_params * sizeof(float));
    ck_assert_int_eq(model_forward(&m, lp1, tokens, targets, lens, 2, &e), 0);
    ck_assert_int_eq(model_add_score_head(&m, 77, 0.5, &e), 0);
    ck_assert_int_eq(m.cfg.score_head, 1);
    ck_assert_int_eq((int)m.num_params, (int)keep.num_params + 16);
    /* every other parameter kept, at the same offset; the language model unchanged */
    ck_assert_mem_eq(m.params_mem, keep.params_mem, keep.num_params * sizeof(float));
    ck_assert_int_eq(model_forward(&m, lp2, tokens, targets, lens, 2, &e), 0);
    ck_assert_mem_eq(lp1, lp2, sizeof lp1);
    for (i = 0; i < 16; i++) s2 += (double)m.params.t[P_SCORE][i] * m.params.t[P_SCORE][i];
    ck_assert_msg(sqrt(s2 / 16) > 0.25 && sqrt(s2 / 16) < 1.0, "head std %g for 0.5", sqrt(s2 / 16));
    /* deterministic in the seed */
    ck_assert_int_eq(model_add_score_head(&keep, 77, 0.5, &e), 0);
    ck_assert_mem_eq(keep.params.t[P_SCORE], m.params.t[P_SCORE], 16 * sizeof(float));
    ck_assert_int_eq(model_add_score_head(&m, 77, 0.5, &e), -1);
    ck_assert_msg(strstr(e.msg, "already") != NULL, "%s", e.msg);
    /* a language model has no score */
    {
        model lm;
        float sc[9];
        ck_assert_int_eq(model_create(&lm, &cfg, &e), 0);
        ck_assert_int_eq(model_forward_score(&lm, sc, tokens, lens, 2, &e), -1);
        ck_assert_msg(strstr(e.msg, "no score head") != NULL, "%s", e.msg);
        model_free(&lm);
    }
    model_free(&m);
    model_free(&keep);
}
END_TEST

/* A sequence's scores are the same bits alone or packed with others, in any
 * order, and with 1 or 2 threads; so are the gradients (1 vs 2 threads). */
START_TEST(test_rm_packed_and_threads) {
    model m;
    model_config cfg = {2, 4, 128, 128, 300, 1e-5, 299, 1};
    int tokens[270], lens[3] = {100, 90, 80}, i, s, start, saved = util_threads();
    float sc1[270], sc2[270], w[270], alone[100], *g1;
    dpo_err e;
    util_rng r;
    util_rng_seed(&r, 12);
    ck_assert((double)270 * 128 >= DPO_OMP_MIN_WORK);
    ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
    ck_assert_int_eq(model_alloc_grads(&m, &e), 0);
    testutil_randomize_params(&m, &r);
    for (i = 0; i < 270; i++) {
        tokens[i] = (int)(util_rng_u64(&r) % 300);
        w[i] = (float)util_rng_normal(&r);
    }
    g1 = malloc(m.num_params * sizeof(float));
    ck_assert_ptr_nonnull(g1);
    util_set_threads(1);
    ck_assert_int_eq(model_forward_score(&m, sc1, tokens, lens, 3, &e), 0);
    model_zero_grad(&m);
    ck_assert_int_eq(model_backward_score(&m, w, &e), 0);
    memcpy(g1, m.grads_mem, m.num_params * sizeof(float));
    util_set_threads(2);
    ck_assert_int_eq(model_forward_score(&m, sc2, tokens, lens, 3, &e), 0);
    model_zero_grad(&m);
    ck_assert_int_eq(model_backward_score(&m, w, &e), 0);
    ck_assert_mem_eq(sc1, sc2, sizeof sc1);
    ck_assert_mem_eq(g1, m.grads_mem, m.num_params * sizeof(float));
    for (s = 0, start = 0; s < 3; start += lens[s], s++) {
        ck_assert_int_eq(model_forward_score(&m, alone, tokens + start, &lens[s], 1, &e), 0);
        ck_assert_mem_eq(alone, sc1 + start, (size_t)lens[s] * sizeof(float));
    }
    util_set_threads(saved);
    free(g1);
    model_free(&m);
}
END_TEST

/* ======================================================================== */
/* 4. the Bradley-Terry loss                                                  */
/* ======================================================================== */

START_TEST(test_bt_loss) {
    static const double margins[] = {-800.0, -40.0, -3.0, -0.5, 0.0, 1e-9, 0.7, 5.0, 40.0, 800.0};
    size_t i;
    for (i = 0; i < sizeof margins / sizeof margins[0]; i++) {
        double m = margins[i], d, l = obj_bt_loss(m, &d);
        /* the formula, in long double where it does not overflow */
        long double want = fabsl((long double)m) < 700 ? log1pl(expl(-(long double)m)) : (m > 0 ? 0.0L : -(long double)m);
        long double dwant = fabsl((long double)m) < 700 ? -1.0L / (1.0L + expl((long double)m)) : (m > 0 ? 0.0L : -1.0L);
        ck_assert(isfinite(l) && isfinite(d));
        ck_assert_msg(fabs(l - (double)want) <= 1e-15 * fmax(1.0, fabs((double)want)) + (m > 700 ? 1e-300 : 0.0),
                      "margin %g: loss %.17g vs %.17Lg", m, l, want);
        ck_assert_msg(fabs(d - (double)dwant) <= 1e-15 + (m > 700 ? 1e-300 : 0.0), "margin %g: d %.17g vs %.17Lg", m,
                      d, dwant);
        if (fabs(m) < 50) { /* the derivative against central differences */
            double h = 1e-5, dp, lp = obj_bt_loss(m + h, &dp), lm = obj_bt_loss(m - h, &dp);
            ck_assert_msg(fabs((lp - lm) / (2 * h) - d) < 1e-8, "margin %g: fd %.12g vs %.12g", m, (lp - lm) / (2 * h),
                          d);
        }
    }
    /* at a margin of 0 the loss is ln 2 and the pair pulls with weight 1/2 */
    {
        double d, l = obj_bt_loss(0.0, &d);
        ck_assert(fabs(l - log(2.0)) < 1e-16 && d == -0.5);
    }
}
END_TEST

/* ======================================================================== */
/* 5. training                                                                */
/* ======================================================================== */

typedef struct {
    train_metrics m[64], ev[64];
    int n, n_ev;
} cap;

static int cap_step(void *ctx, const train_metrics *m, long total, dpo_err *e) {
    cap *c = ctx;
    (void)total;
    (void)e;
    ck_assert_int_lt(c->n, 64);
    c->m[c->n++] = *m;
    return 0;
}

static int cap_eval(void *ctx, const train_metrics *m, long total, dpo_err *e) {
    cap *c = ctx;
    (void)total;
    (void)e;
    ck_assert_int_lt(c->n_ev, 64);
    c->ev[c->n_ev++] = *m;
    return 0;
}

static void run_rm(const train_config *c, cap *k) {
    train_callbacks cb;
    dpo_err e;
    memset(k, 0, sizeof *k);
    memset(&cb, 0, sizeof cb);
    cb.step = cap_step;
    cb.eval = cap_eval;
    cb.ctx = k;
    ck_assert_msg(train_run(c, &cb, &e) == 0, "train_run: %s", e.msg);
}

/* A tiny GPT-2 language model with GPT-2's tokenizer, the start of a reward model. */
static void make_lm_dir(const char *dir, uint64_t seed) {
    model_config cfg = {2, 2, 16, 32, 50257, 1e-5, 50256, 0};
    model m;
    dpo_err e;
    ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
    model_init_random(&m, seed);
    ck_assert_msg(model_save(&m, dir, &e) == 0, "%s", e.msg);
    ck_assert_msg(tok_copy_files(TOK_DIR, dir, &e) == 0, "%s", e.msg);
    model_free(&m);
}

static const char *const good[8] = {" great", " lovely", " superb", " brilliant", " wonderful", " charming", " moving", " fine"};
static const char *const bad[8] = {" awful", " dull", " boring", " terrible", " bland", " weak", " messy", " poor"};
static const char *const prompts[4] = {"The movie was", "I found it", "Overall:", "The cast is"};

/* n pairs, the chosen response two words of `good`, the rejected two of `bad`,
 * the chosen first or second in the file at random, from the seed */
static void write_toy_pairs(const char *path, int n, uint64_t seed) {
    util_rng r;
    FILE *fp = fopen(path, "w");
    int i;
    ck_assert_ptr_nonnull(fp);
    util_rng_seed(&r, seed);
    for (i = 0; i < n; i++) {
        int p = (int)(util_rng_u64(&r) % 4), a = (int)(util_rng_u64(&r) % 8), b = (int)(util_rng_u64(&r) % 8);
        int c = (int)(util_rng_u64(&r) % 8), d = (int)(util_rng_u64(&r) % 8);
        fprintf(fp, "{\"prompt\": \"%s\", \"chosen\": \"%s and%s.\", \"rejected\": \"%s and%s.\"}\n", prompts[p], good[a],
                good[b], bad[c], bad[d]);
    }
    ck_assert(fclose(fp) == 0);
}

static void rm_config(train_config *c, const char *model_dir, const char *data, const char *out) {
    train_config_defaults(c, TRAIN_RM);
    c->model_dir = model_dir;
    c->data_path = data;
    c->out_dir = out;
    c->batch = 16;
    c->micro_batch = 16;
    c->max_len = 32;
    c->max_prompt_len = 16;
    c->seed = 5;
}

/* Held-out accuracy rises from chance: 40 held-out pairs of words in new
 * combinations (and orders) after training on 64 pairs. Chance is 0.5 with a
 * standard deviation of 0.08 over 40 pairs; the trained model must reach 0.9
 * and a mean held-out loss below 0.3 (ln 2 = 0.69 at chance). The metrics'
 * names and meanings are checked against each other: accuracy counts the
 * pairs with r_w > r_l, margin is the mean of r_w - r_l. */
START_TEST(test_rm_learns_toy_task) {
    char lm[256], data[256], ev[256], out[256];
    train_config c;
    cap k;
    path_in(lm, sizeof lm, "lm");
    path_in(data, sizeof data, "train.jsonl");
    path_in(ev, sizeof ev, "eval.jsonl");
    path_in(out, sizeof out, "rm");
    make_lm_dir(lm, 1);
    write_toy_pairs(data, 64, 11);
    write_toy_pairs(ev, 40, 12);
    rm_config(&c, lm, data, out);
    c.eval_path = ev;
    c.eval_every = 1;
    c.opt.lr = 3e-3;
    c.steps = 40;
    run_rm(&c, &k);
    ck_assert_int_eq(k.n, 40);
    ck_assert_int_eq(k.n_ev, 40);
    printf("  rm toy task: held-out accuracy %.3f -> %.3f, loss %.4f -> %.4f, margin %.3f -> %.3f\n", k.ev[0].accuracy,
           k.ev[39].accuracy, k.ev[0].loss, k.ev[39].loss, k.ev[0].margin, k.ev[39].margin);
    ck_assert_msg(k.ev[0].loss > 0.6, "after one step the held-out loss is %.4f, already far from ln 2", k.ev[0].loss);
    ck_assert_msg(k.ev[39].accuracy >= 0.9, "held-out accuracy %.3f", k.ev[39].accuracy);
    ck_assert_msg(k.ev[39].loss < 0.3, "held-out loss %.4f", k.ev[39].loss);
    ck_assert(fabs(k.ev[39].margin - (k.ev[39].reward_chosen - k.ev[39].reward_rejected)) < 1e-9);
    ck_assert(k.ev[39].logp_chosen == 0.0 && k.ev[39].logp_rejected == 0.0);
    /* the saved directory is a reward model, and scores like the last evaluation */
    {
        model m;
        dpo_err e;
        ck_assert_msg(model_load_any(&m, out, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(m.cfg.score_head, 1);
        model_free(&m);
    }
}
END_TEST

/* prompt ++ response ++ <|endoftext|> as this file encodes it: each part on its
 * own, an empty prompt as the end-of-text */
static int encode_seq(tok_tokenizer *t, const char *prompt, const char *resp, int *ids) {
    int *p = NULL, *q = NULL, n = 0;
    size_t np = 0, nq = 0, cap1 = 0, cap2 = 0, j;
    dpo_err e;
    ck_assert_int_eq(tok_encode(t, prompt, strlen(prompt), &p, &np, &cap1, &e), 0);
    ck_assert_int_eq(tok_encode(t, resp, strlen(resp), &q, &nq, &cap2, &e), 0);
    ck_assert(np + nq + 2 <= 64);
    if (np == 0) ids[n++] = 50256;
    for (j = 0; j < np; j++) ids[n++] = p[j];
    for (j = 0; j < nq; j++) ids[n++] = q[j];
    ids[n++] = 50256;
    free(p);
    free(q);
    return n;
}

/* One step of plain SGD (no clipping, no warm-up) against p - lr g, with g
 * built here: every sequence prompt ++ response ++ eos tokenized and scored
 * alone, the Bradley-Terry weight dL/dm / B of its pair applied at its last
 * token, backward per sequence. */
START_TEST(test_rm_sgd_step) {
    char lm[256], data[256], out[256];
    static const char *const rows[3][3] = {{"The movie was", " great and fine.", " awful."},
                                           {"", "Yes.", "No, never again."},
                                           {"I found it", " dull", " charming and moving"}};
    train_config c;
    cap k;
    model ref, got;
    tok_tokenizer *t;
    dpo_err e;
    double lr = 0.05, loss = 0.0;
    int i, s;
    size_t j;
    path_in(lm, sizeof lm, "lm");
    path_in(data, sizeof data, "pairs.jsonl");
    path_in(out, sizeof out, "rm");
    make_lm_dir(lm, 2);
    {
        FILE *fp = fopen(data, "w");
        ck_assert_ptr_nonnull(fp);
        for (i = 0; i < 3; i++)
            fprintf(fp, "{\"prompt\": \"%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n", rows[i][0], rows[i][1],
                    rows[i][2]);
        ck_assert(fclose(fp) == 0);
    }
    rm_config(&c, lm, data, out);
    c.batch = 3;
    c.micro_batch = 2; /* two micro-batches: the accumulation is part of what is checked */
    c.steps = 1;
    c.opt.kind = OPTIM_SGD;
    c.opt.lr = lr;
    c.opt.weight_decay = 0.0;
    c.opt.grad_clip = 0.0;
    run_rm(&c, &k);
    /* the reference gradient: the same head (the same seed), sequences alone */
    ck_assert_int_eq(model_load_any(&ref, lm, &e), 0);
    ck_assert_int_eq(model_add_score_head(&ref, c.seed ^ 0x5c0e5c0e5c0e5c0eULL, TRAIN_RM_HEAD_STD, &e), 0);
    ck_assert_int_eq(model_alloc_grads(&ref, &e), 0);
    ck_assert_int_eq(tok_load(&t, TOK_DIR, &e), 0);
    model_zero_grad(&ref);
    for (i = 0; i < 3; i++) {
        int ids[2][64], n[2];
        float sc[2][64], r[2];
        double dm;
        for (s = 0; s < 2; s++) {
            n[s] = encode_seq(t, rows[i][0], rows[i][1 + s], ids[s]);
            ck_assert_int_eq(model_forward_score(&ref, sc[s], ids[s], &n[s], 1, &e), 0);
            r[s] = sc[s][n[s] - 1];
        }
        loss += obj_bt_loss((double)r[0] - r[1], &dm) / 3.0;
        for (s = 0; s < 2; s++) {
            float w[64] = {0};
            ck_assert_int_eq(model_forward_score(&ref, sc[s], ids[s], &n[s], 1, &e), 0);
            w[n[s] - 1] = (float)((s ? -dm : dm) / 3.0);
            ck_assert_int_eq(model_backward_score(&ref, w, &e), 0);
        }
    }
    ck_assert_msg(fabs(k.m[0].loss - loss) < 1e-6, "loss %.9f vs %.9f", k.m[0].loss, loss);
    ck_assert_int_eq(model_load_any(&got, out, &e), 0);
    ck_assert_int_eq((int)got.num_params, (int)ref.num_params);
    {
        double worst = 0.0, gmax = 0.0;
        for (j = 0; j < ref.num_params; j++) {
            double want = (double)ref.params_mem[j] - lr * ref.grads_mem[j];
            double d = fabs((double)got.params_mem[j] - want);
            if (fabs(ref.grads_mem[j]) > gmax) gmax = fabs(ref.grads_mem[j]);
            if (d > worst) worst = d;
        }
        /* per element: float rounding of the update plus the gradient's summation order */
        printf("  rm sgd step: max |p_new - (p - lr g)| %.2e (lr max|g| = %.2e)\n", worst, lr * gmax);
        ck_assert_msg(worst < 1e-6 + 1e-5 * lr * gmax, "worst %.3e", worst);
        ck_assert(lr * gmax > 1e-4); /* the step moved something */
    }
    tok_free(t);
    model_free(&ref);
    model_free(&got);
}
END_TEST

/* --reward model:DIR scores a completion exactly as training scored a pair's
 * sequence: the same bits as model_forward_score on prompt ++ completion ++
 * <|endoftext|> encoded here, read at the last token; the prompt matters (it
 * does not for sentiment, which reads the completion alone). Bad specs and
 * directories are refused with messages naming them. */
START_TEST(test_reward_model_spec) {
    static const char *const cases[4][2] = {{"The movie was", " great and fine."},
                                            {"", "Yes."},
                                            {"I found it", " dull"},
                                            {"The movie was", " dull"}};
    char lm[256], rmdir[256], spec[300];
    model m;
    tok_tokenizer *t;
    reward *rw, *sent;
    dpo_err e;
    double got[4], s1, s2;
    int i;
    path_in(lm, sizeof lm, "lm");
    path_in(rmdir, sizeof rmdir, "rm");
    make_lm_dir(lm, 4);
    ck_assert_int_eq(model_load(&m, lm, &e), 0);
    ck_assert_int_eq(model_add_score_head(&m, 9, 0.5, &e), 0);
    ck_assert_msg(model_save(&m, rmdir, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(tok_copy_files(TOK_DIR, rmdir, &e), 0);
    ck_assert_int_eq(tok_load(&t, TOK_DIR, &e), 0);
    snprintf(spec, sizeof spec, "model:%s", rmdir);
    ck_assert_msg(reward_open(&rw, spec, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(reward_name(rw), spec);
    for (i = 0; i < 4; i++) {
        int ids[64], n = encode_seq(t, cases[i][0], cases[i][1], ids);
        float sc[64];
        ck_assert_int_eq(reward_score(rw, cases[i][0], strlen(cases[i][0]), cases[i][1], strlen(cases[i][1]), &got[i], &e), 0);
        ck_assert_int_eq(model_forward_score(&m, sc, ids, &n, 1, &e), 0);
        ck_assert_msg(got[i] == (double)sc[n - 1], "case %d: %.9g vs %.9g", i, got[i], (double)sc[n - 1]);
    }
    ck_assert(got[2] != got[3]); /* the same completion after another prompt */
    ck_assert_int_eq(reward_sentiment_details(rw, "x", 1, NULL, &e), -1);
    reward_free(rw);
    /* sentiment ignores the prompt */
    ck_assert_int_eq(reward_open(&sent, "sentiment", &e), 0);
    ck_assert_int_eq(reward_score(sent, "bad awful", 9, " great", 6, &s1, &e), 0);
    ck_assert_int_eq(reward_score(sent, "", 0, " great", 6, &s2, &e), 0);
    ck_assert(s1 == s2 && s1 > 0.5);
    reward_free(sent);
    /* refused */
    snprintf(spec, sizeof spec, "model:%s", lm);
    ck_assert_int_eq(reward_open(&rw, spec, &e), -1);
    ck_assert_msg(strstr(e.msg, "not a reward model") != NULL && strstr(e.msg, lm) != NULL, "%s", e.msg);
    ck_assert_int_eq(reward_open(&rw, "model:", &e), -1);
    ck_assert_msg(strstr(e.msg, "no directory") != NULL, "%s", e.msg);
    ck_assert_int_eq(reward_open(&rw, "model:/nonexistent/dir", &e), -1);
    ck_assert_msg(strstr(e.msg, "/nonexistent/dir") != NULL, "%s", e.msg);
    ck_assert_int_eq(reward_open(&rw, "vader", &e), -1);
    ck_assert_msg(strstr(e.msg, "model:DIR") != NULL, "%s", e.msg);
    tok_free(t);
    model_free(&m);
}
END_TEST

/* A run stopped at step 3 of 6 and resumed ends with the same bytes as one run
 * of 6 steps; a reward-model checkpoint is refused by dpo train. */
START_TEST(test_rm_resume) {
    char lm[256], data[256], a[256], b[256], pa[512], pb[512];
    train_config c;
    cap k;
    dpo_err e;
    unsigned char *x, *y;
    size_t nx, ny;
    path_in(lm, sizeof lm, "lm");
    path_in(data, sizeof data, "train.jsonl");
    path_in(a, sizeof a, "a");
    path_in(b, sizeof b, "b");
    make_lm_dir(lm, 3);
    write_toy_pairs(data, 24, 13);
    rm_config(&c, lm, data, a);
    c.batch = 8;
    c.micro_batch = 3;
    c.steps = 6;
    run_rm(&c, &k);
    c.out_dir = b;
    c.steps = 3;
    run_rm(&c, &k); /* its end-of-run checkpoint is at step 3 of a 3-step run */
    c.steps = 6;
    c.resume_dir = b;
    run_rm(&c, &k);
    ck_assert_int_eq(k.n, 3);
    snprintf(pa, sizeof pa, "%s/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/model.safetensors", b);
    x = testutil_read_bytes(pa, &nx);
    y = testutil_read_bytes(pb, &ny);
    ck_assert(nx == ny && memcmp(x, y, nx) == 0);
    free(x);
    free(y);
    snprintf(pa, sizeof pa, "%s/optimizer.safetensors", a);
    snprintf(pb, sizeof pb, "%s/optimizer.safetensors", b);
    x = testutil_read_bytes(pa, &nx);
    y = testutil_read_bytes(pb, &ny);
    ck_assert(nx == ny && memcmp(x, y, nx) == 0);
    free(x);
    free(y);
    /* dpo train will not resume it, and says which command does */
    train_config_defaults(&c, TRAIN_DPO);
    c.model_dir = lm;
    c.data_path = data;
    c.out_dir = b;
    c.resume_dir = b;
    c.batch = 8;
    c.micro_batch = 3;
    c.seed = 5;
    c.max_len = 32;
    c.max_prompt_len = 16;
    ck_assert_int_eq(train_run(&c, NULL, &e), -1);
    ck_assert_msg(strstr(e.msg, "rm-train") != NULL, "%s", e.msg);
}
END_TEST

/* ======================================================================== */
/* 6. the directory format                                                    */
/* ======================================================================== */

START_TEST(test_rm_save_format) {
    model m, back, lm;
    model_config cfg = {2, 2, 8, 12, 23, 1e-5, 22, 1};
    char path[512];
    unsigned char *text;
    size_t n;
    st_file f;
    dpo_err e;
    const st_tensor *t;
    ck_assert_int_eq(model_create(&m, &cfg, &e), 0);
    model_init_random(&m, 5);
    ck_assert_msg(model_save(&m, tmp_root, &e) == 0, "%s", e.msg);
    snprintf(path, sizeof path, "%s/config.json", tmp_root);
    text = testutil_read_bytes(path, &n);
    text[n] = 0; /* testutil_read_bytes leaves room for it */
    ck_assert_msg(strstr((char *)text, "\"architectures\": [\"GPT2ForSequenceClassification\"]") != NULL, "%s", text);
    ck_assert(strstr((char *)text, "\"num_labels\": 1") != NULL);
    ck_assert(strstr((char *)text, "\"id2label\": {\"0\": \"LABEL_0\"}") != NULL);
    free(text);
    snprintf(path, sizeof path, "%s/model.safetensors", tmp_root);
    ck_assert_int_eq(st_open(&f, path, &e), 0);
    t = st_find(&f, "score.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert(t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == 8 && t->dtype == ST_F32);
    ck_assert_ptr_null(st_find(&f, "transformer.score.weight"));
    ck_assert_ptr_nonnull(st_find(&f, "transformer.h.1.mlp.c_fc.weight"));
    st_close(&f);
    ck_assert_msg(model_load_any(&back, tmp_root, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(back.cfg.score_head, 1);
    ck_assert_int_eq((int)back.num_params, (int)m.num_params);
    ck_assert_mem_eq(back.params_mem, m.params_mem, m.num_params * sizeof(float));
    ck_assert_int_eq(model_load(&lm, tmp_root, &e), -1);
    model_free(&back);
    model_free(&m);
}
END_TEST

/* a copy of tests/golden/tiny-rm with config.json replaced, loaded: must fail naming `want` */
static void config_refused(const char *config, const char *weights_from, const char *want) {
    char dir[256], path[512], src[512];
    unsigned char *w;
    size_t n;
    model m;
    dpo_err e;
    path_in(dir, sizeof dir, "variant");
    testutil_remove_tree(dir);
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, config);
    snprintf(src, sizeof src, "%s/model.safetensors", weights_from);
    w = testutil_read_bytes(src, &n);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    testutil_write_bytes(path, w, n);
    free(w);
    ck_assert_int_eq(model_load_any(&m, dir, &e), -1);
    ck_assert_msg(strstr(e.msg, want) != NULL, "wanted \"%s\" in: %s", want, e.msg);
    ck_assert_msg(strstr(e.msg, dir) != NULL, "the message does not name the directory: %s", e.msg);
}

#define CFG_HEAD "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 4, \"n_embd\": 32, \"n_positions\": 24, \"vocab_size\": 61"

START_TEST(test_rm_hostile_configs) {
    config_refused(CFG_HEAD ", \"architectures\": [\"GPT2ForSequenceClassification\"], \"num_labels\": 2}",
                   GOLDEN_DIR "/tiny-rm", "num_labels is 2");
    config_refused(CFG_HEAD ", \"architectures\": [\"GPT2ForSequenceClassification\"], \"id2label\": {\"0\": \"A\", \"1\": \"B\"}}",
                   GOLDEN_DIR "/tiny-rm", "exactly one label");
    config_refused(CFG_HEAD ", \"architectures\": [\"GPT2ForSequenceClassification\"], \"num_labels\": 1.5}",
                   GOLDEN_DIR "/tiny-rm", "num_labels");
    config_refused(CFG_HEAD ", \"architectures\": [\"GPT2ForSequenceClassification\", \"GPT2LMHeadModel\"]}",
                   GOLDEN_DIR "/tiny-rm", "the only class");
    config_refused(CFG_HEAD ", \"architectures\": \"GPT2ForSequenceClassification\"}", GOLDEN_DIR "/tiny-rm",
                   "array of strings");
    config_refused(CFG_HEAD ", \"architectures\": [7]}", GOLDEN_DIR "/tiny-rm", "array of strings");
    /* the weights disagree with the config */
    config_refused(CFG_HEAD ", \"architectures\": [\"GPT2LMHeadModel\"]}", GOLDEN_DIR "/tiny-rm",
                   "\"score.weight\" is a reward model's head");
    config_refused(CFG_HEAD "}", GOLDEN_DIR "/tiny-rm", "\"score.weight\" is a reward model's head");
    config_refused(CFG_HEAD ", \"architectures\": [\"GPT2ForSequenceClassification\"]}", GOLDEN_DIR "/tiny",
                   "missing tensor \"score.weight\"");
    /* the head under the trunk's prefix, or of another shape */
    {
        model m;
        dpo_err e;
        char dir[256], path[512];
        model_config c;
        int bad;
        ck_assert_int_eq(model_load_any(&m, GOLDEN_DIR "/tiny-rm", &e), 0);
        c = m.cfg;
        for (bad = 0; bad < 2; bad++) {
            int nt = model_num_tensors(&c), i;
            st_out_tensor ts[64];
            char names[64][96];
            float two[64];
            model mm;
            ck_assert_int_le(nt, 64);
            for (i = 0; i < nt; i++) {
                model_tensor_info ti;
                model_tensor(&c, i, &ti);
                snprintf(names[i], sizeof names[i], "%s%s", ti.family == P_SCORE && bad == 1 ? "" : "transformer.",
                         ti.name);
                ts[i].name = names[i];
                ts[i].data = m.params_mem + ti.offset;
                ts[i].ndim = ti.ndim;
                ts[i].shape[0] = ti.shape[0];
                ts[i].shape[1] = ti.shape[1];
                if (ti.family == P_SCORE && bad == 1) { /* (2, C): two labels' worth */
                    memcpy(two, ts[i].data, 32 * sizeof(float));
                    memcpy(two + 32, ts[i].data, 32 * sizeof(float));
                    ts[i].data = two;
                    ts[i].shape[0] = 2;
                }
            }
            path_in(dir, sizeof dir, bad ? "shape" : "prefixed");
            ck_assert_int_eq(mkdir(dir, 0777), 0);
            snprintf(path, sizeof path, "%s/model.safetensors", dir);
            ck_assert_msg(st_write_f32(path, ts, (size_t)nt, &e) == 0, "%s", e.msg);
            snprintf(path, sizeof path, "%s/config.json", dir);
            write_text(path, CFG_HEAD ", \"architectures\": [\"GPT2ForSequenceClassification\"]}");
            ck_assert_int_eq(model_load_any(&mm, dir, &e), -1);
            ck_assert_msg(strstr(e.msg, bad ? "shape must be (1, 32)" : "\"transformer.score.weight\" is not part") !=
                              NULL,
                          "%s", e.msg);
        }
        model_free(&m);
    }
}
END_TEST

static Suite *rm_suite(void) {
    Suite *s = suite_create("rm");
    TCase *t = tcase_create("model");
    tcase_add_checked_fixture(t, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, test_rm_golden);
    tcase_add_test(t, test_rm_grad_finite_differences);
    tcase_add_test(t, test_add_score_head);
    tcase_add_test(t, test_rm_packed_and_threads);
    tcase_add_test(t, test_bt_loss);
    tcase_add_test(t, test_rm_save_format);
    tcase_add_test(t, test_rm_hostile_configs);
    suite_add_tcase(s, t);
    t = tcase_create("training");
    tcase_add_checked_fixture(t, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_set_timeout(t, 300);
    tcase_add_test(t, test_rm_sgd_step);
    tcase_add_test(t, test_rm_learns_toy_task);
    tcase_add_test(t, test_rm_resume);
    tcase_add_test(t, test_reward_model_spec);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return testutil_run(rm_suite()); }
