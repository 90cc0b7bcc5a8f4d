/* tests/test_train.c - Check suite for train.c: reading preference pairs
 * (data_load_pairs: tokenization of each part, the empty prompt, ignored keys, blank
 * lines, the truncation rule of train.h, every malformed file) and the training
 * loop (train_run), each against a computation done here independently:
 *
 *   - ln 2 and zero rewards at the first step when the reference is the policy;
 *   - one plain-SGD step against p - lr * g, with g the gradient of the mean DPO
 *     loss that this file builds itself: each sequence tokenized here, forwarded
 *     alone (not packed), the DPO weight -beta sigmoid(-beta h) / B applied here,
 *     and backward per sequence; g itself is spot-checked against central finite
 *     differences of the mean loss computed through model_forward;
 *   - micro-batches of 1, 2, 3 and 4 pairs against one batch of 4;
 *   - the logps/chosen and logps/rejected metrics against sums over response tokens only;
 *   - 1 and 2 threads bit for bit;
 *   - dpo, ipo and hinge learning a small preference set;
 *   - a non-finite loss stopping the run with nothing written;
 *   - held-out evaluation against the next training step's metrics, and
 *     training runs with and without it saving the same bytes;
 *   - SFT data (data_load_sft), one SFT SGD step against p - lr * g with g the
 *     gradient of the completion-token mean NLL built here, for several
 *     micro-batch sizes, and SFT learning a few rows.
 *
 * Models are tiny (2 layers, 2 heads, width 16, context 32) with GPT-2's own
 * tokenizer (data/gpt2, vocabulary 50257), so the tests run from the project root
 * as `make test` runs them. Tests that change the thread count restore it. */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "objective.h"
#include "optim.h"
#include "tokenizer.h"
#include "train.h"
#include "util.h"

#define TOK_DIR "data/gpt2"
#define EOS 50256
#define MAXTOK 64

static const model_config tiny_cfg = {2, 2, 16, 32, 50257, 1e-5, EOS, 0};

/* ======================================================================== */
/* helpers                                                                   */
/* ======================================================================== */

static tok_tokenizer *g_tok; /* loaded once per test case (unchecked fixture) */
static int g_threads_before;

/* The suite runs on one thread, except where it compares 1 with 2 threads
 * (test_threads_bit_identical, which shows the thread count changes no bit).
 * Reason: these models are so small that every OpenMP region is a few
 * microseconds of work, and when other processes keep the 2 cores busy, each
 * region's barrier waits for a descheduled thread. Measured with two busy
 * processes beside it: over 5 minutes with 2 threads (4 s on an idle machine),
 * about 20 s with 1 thread, most of it the one test that runs on 2. */
static void suite_setup(void) {
    dpo_err e;
    g_threads_before = util_threads();
    util_set_threads(1);
    ck_assert_msg(tok_load(&g_tok, TOK_DIR, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(tok_eot_id(g_tok), EOS);
}

static void suite_teardown(void) {
    tok_free(g_tok);
    g_tok = NULL;
    util_set_threads(g_threads_before);
}

static void path_in(char *out, size_t cap, const char *name) {
    ck_assert((size_t)snprintf(out, cap, "%s/%s", tmp_root, name) < cap);
}


static void write_text(const char *path, const char *text) { testutil_write_bytes(path, text, strlen(text)); }

static int path_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ids of s (fresh array, *n tokens) */
static int *enc(const char *s, size_t *n) {
    int *ids = NULL;
    size_t cap = 0;
    dpo_err e;
    *n = 0;
    ck_assert_msg(tok_encode(g_tok, s, strlen(s), &ids, n, &cap, &e) == 0, "%s", e.msg);
    return ids;
}

/* A tiny GPT-2 with GPT-2's initialisation and its tokenizer in dir. wte is then
 * multiplied by wte_scale: at scale 1 every logit is near 0 and every token has
 * log-prob near -ln 50257, which would make two models' log-probs (and so h)
 * nearly equal; a larger scale spreads the log-probs over several nats. */
static void make_model_dir(const char *dir, uint64_t seed, float wte_scale) {
    model m;
    dpo_err e;
    size_t i, n = (size_t)tiny_cfg.vocab_size * (size_t)tiny_cfg.n_embd;
    ck_assert_msg(model_create(&m, &tiny_cfg, &e) == 0, "%s", e.msg);
    model_init_random(&m, seed);
    for (i = 0; i < n; i++) m.params.t[P_WTE][i] *= wte_scale;
    ck_assert_msg(model_save(&m, dir, &e) == 0, "%s", e.msg);
    ck_assert_msg(tok_copy_files(TOK_DIR, dir, &e) == 0, "%s", e.msg);
    model_free(&m);
}

static void load_model(model *m, const char *dir) {
    dpo_err e;
    ck_assert_msg(model_load(m, dir, &e) == 0, "%s: %s", dir, e.msg);
}

/* float spacing at |x| (the distance to the next float away from zero) */
static double ulpf(float x) {
    float a = fabsf(x);
    return (double)nextafterf(a, INFINITY) - (double)a;
}

/* ------------------------------------------------------------------------ */
/* what train_run reports */

#define MAXSTEPS 64

typedef struct {
    int n_start, n_rows, n_eval_rows, n_steps, n_evals;
    int ref_done[2], ref_calls[2]; /* reference log-probs: [0] training rows, [1] held-out rows */
    long total;
    train_metrics m[MAXSTEPS], ev[MAXSTEPS];
} capture;

static void cap_start(void *ctx, const data_set *d, const data_set *eval, long total) {
    capture *c = ctx;
    c->n_start++;
    c->n_rows = d->n_rows;
    c->n_eval_rows = eval ? eval->n_rows : -1;
    c->total = total;
}

/* an evaluation follows the step it is numbered with */
static int cap_eval(void *ctx, const train_metrics *m, long total, dpo_err *e) {
    capture *c = ctx;
    ck_assert_int_eq(total, c->total);
    ck_assert_int_lt(c->n_evals, MAXSTEPS);
    ck_assert_int_eq(m->step, c->n_steps);
    ck_assert(m->grad_norm == 0.0 && m->learning_rate == 0.0);
    c->ev[c->n_evals++] = *m;
    (void)e;
    return 0;
}

/* progress of the reference's log-probs: rows done grow to the rows in all */
static void cap_ref(void *ctx, const char *which, int done, int total) {
    capture *c = ctx;
    int k = strcmp(which, "held-out") == 0;
    ck_assert_msg(k || strcmp(which, "training") == 0, "which = %s", which);
    ck_assert_int_eq(total, k ? c->n_eval_rows : c->n_rows);
    ck_assert_int_gt(done, c->ref_done[k]);
    ck_assert_int_le(done, total);
    c->ref_done[k] = done;
    c->ref_calls[k]++;
}

static int cap_step(void *ctx, const train_metrics *m, long total, dpo_err *e) {
    capture *c = ctx;
    ck_assert_int_eq(total, c->total);
    ck_assert_int_lt(c->n_steps, MAXSTEPS);
    ck_assert_int_eq(m->step, c->n_steps + 1);
    c->m[c->n_steps++] = *m;
    (void)e;
    return 0;
}

static void base_config(train_config *c, const char *model_dir, const char *data, const char *out,
                        optim_kind ok, double lr, int batch, int micro, long steps) {
    memset(c, 0, sizeof *c);
    c->model_dir = model_dir;
    c->data_path = data;
    c->out_dir = out;
    c->loss.kind = OBJ_LOSS_DPO;
    c->loss.beta = 0.1;
    optim_config_defaults(&c->opt, ok);
    c->opt.lr = lr;
    c->opt.warmup = 0;
    c->opt.grad_clip = 0.0;
    c->batch = batch;
    c->micro_batch = micro;
    c->max_len = 32;
    c->max_prompt_len = 16;
    c->steps = steps;
    c->epochs = 1;
    c->seed = 7;
}

static void run_ok(const train_config *c, capture *cap) {
    train_callbacks cb;
    dpo_err e;
    memset(cap, 0, sizeof *cap);
    memset(&cb, 0, sizeof cb);
    cb.start = cap_start;
    cb.step = cap_step;
    cb.eval = cap_eval;
    cb.ref_progress = cap_ref;
    cb.ctx = cap;
    ck_assert_msg(train_run(c, &cb, &e) == 0, "train_run: %s", e.msg);
    ck_assert_int_eq(cap->n_start, 1);
    ck_assert_int_eq(cap->n_steps, (int)cap->total);
}

/* ------------------------------------------------------------------------ */
/* the pairs, as this file tokenizes them */

typedef struct {
    const char *prompt, *chosen, *rejected;
} text_pair;

/* Four pairs, one with an empty prompt, responses of different lengths. */
static const text_pair pairs4[] = {
    {"The movie was", " wonderful and moving.", " dull."},
    {"I think the food", " tasted great", " was cold and bland"},
    {"", "Yes.", "No, never."},
    {"Weather today:", " sunny", " rain all day long"},
};
#define NP4 4

/* One sequence prompt ++ response ++ [eos], fed without its last token: token j
 * predicts token j + 1, which counts only when it belongs to the response. */
typedef struct {
    int tok[MAXTOK], tgt[MAXTOK];
    int len, n_prompt, n_resp; /* len = n_prompt + n_resp - 1 */
} seq_t;

static void make_seq(seq_t *s, const char *prompt, const char *resp) {
    int full[MAXTOK + 1];
    size_t np, nr, i;
    int *p = enc(prompt, &np), *r = enc(resp, &nr), n = 0, j;
    if (np == 0) full[n++] = EOS; /* the empty prompt becomes [eos] */
    for (i = 0; i < np; i++) full[n++] = p[i];
    s->n_prompt = n;
    for (i = 0; i < nr; i++) full[n++] = r[i];
    full[n++] = EOS;
    ck_assert_int_le(n, MAXTOK);
    s->n_resp = n - s->n_prompt;
    s->len = n - 1;
    for (j = 0; j < s->len; j++) {
        s->tok[j] = full[j];
        s->tgt[j] = j + 1 >= s->n_prompt ? full[j + 1] : -1;
    }
    free(p);
    free(r);
}

typedef struct {
    seq_t c, r;
} pair_seqs;

static void make_pairs(pair_seqs *ps, const text_pair *tp, int n) {
    int i;
    for (i = 0; i < n; i++) {
        make_seq(&ps[i].c, tp[i].prompt, tp[i].chosen);
        make_seq(&ps[i].r, tp[i].prompt, tp[i].rejected);
    }
}

static void write_pairs(const char *path, const text_pair *tp, int n) {
    char buf[8192];
    size_t off = 0;
    int i;
    for (i = 0; i < n; i++) {
        int k = snprintf(buf + off, sizeof buf - off, "{\"prompt\": \"%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n",
                         tp[i].prompt, tp[i].chosen, tp[i].rejected);
        ck_assert(k > 0 && (size_t)k < sizeof buf - off);
        off += (size_t)k;
    }
    testutil_write_bytes(path, buf, off);
}

/* The fixture of the tests that compare against this file's own gradient: a
 * policy and a different reference (both with wte scaled by 10, so that h is
 * far from 0) and the four pairs, in tmp_root as "policy", "ref", "pairs.jsonl". */
static void policy_ref_pairs(char pdir[256], char rdir[256], char data[256]) {
    path_in(pdir, 256, "policy");
    path_in(rdir, 256, "ref");
    path_in(data, 256, "pairs.jsonl");
    make_model_dir(pdir, 11, 10.0f);
    make_model_dir(rdir, 22, 10.0f);
    write_pairs(data, pairs4, NP4);
}

/* log p(response ++ eos | prompt) under m: one forward of this sequence alone,
 * summed in double over the positions that have a target. */
static double seq_logp(model *m, const seq_t *s) {
    float logp[MAXTOK];
    double sum = 0.0;
    dpo_err e;
    int j, n = 0;
    ck_assert_msg(model_forward(m, logp, s->tok, s->tgt, &s->len, 1, &e) == 0, "%s", e.msg);
    for (j = 0; j < s->len; j++) {
        if (s->tgt[j] < 0) continue;
        sum += logp[j];
        n++;
    }
    ck_assert_int_eq(n, s->n_resp);
    return sum;
}

/* -log sigmoid(z), stably */
static double neg_log_sigmoid(double z) { return z >= 0 ? log1p(exp(-z)) : -z + log1p(exp(z)); }

static double sigmoid(double z) { return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)); }

/* h of every pair, and the mean DPO loss over the n pairs */
static double mean_dpo_loss(model *pol, model *ref, const pair_seqs *ps, int n, double beta, double *h) {
    double sum = 0.0;
    int i;
    for (i = 0; i < n; i++) {
        double pc = seq_logp(pol, &ps[i].c), pr = seq_logp(pol, &ps[i].r);
        double rc = seq_logp(ref, &ps[i].c), rr = seq_logp(ref, &ps[i].r);
        double hi = (pc - rc) - (pr - rr);
        if (h) h[i] = hi;
        sum += neg_log_sigmoid(beta * hi);
    }
    return sum / n;
}

/* forward s alone and backward with dlogp = w on every response position */
static void seq_backward(model *m, const seq_t *s, double w) {
    float logp[MAXTOK], dlogp[MAXTOK];
    dpo_err e;
    int j;
    ck_assert_msg(model_forward(m, logp, s->tok, s->tgt, &s->len, 1, &e) == 0, "%s", e.msg);
    for (j = 0; j < s->len; j++) dlogp[j] = s->tgt[j] >= 0 ? (float)w : 0.0f;
    ck_assert_msg(model_backward(m, dlogp, &e) == 0, "%s", e.msg);
}

/* The gradient of the mean DPO loss into pol's (zeroed) gradients:
 *   L = (1/B) sum_i -log sigmoid(beta h_i),  h_i = (pc_i - rc_i) - (pr_i - rr_i),
 *   dL/dpc_i = -beta sigmoid(-beta h_i) / B,  dL/dpr_i = +beta sigmoid(-beta h_i) / B,
 * and every response token's log-prob has derivative 1 in its sequence's sum. */
static void expected_grad(model *pol, model *ref, const pair_seqs *ps, int n, double beta, double *h) {
    int i;
    mean_dpo_loss(pol, ref, ps, n, beta, h);
    model_zero_grad(pol);
    for (i = 0; i < n; i++) {
        double w = beta * sigmoid(-beta * h[i]) / n;
        seq_backward(pol, &ps[i].c, -w);
        seq_backward(pol, &ps[i].r, +w);
    }
}

/* ======================================================================== */
/* 1. preference data                                                        */
/* ======================================================================== */

/* The row's prompt, chosen and rejected ids in the pool. */
static void check_row(const data_set *d, int i, const int *want_p, int np, const int *want_c, int nc,
                      const int *want_r, int nr, long line) {
    const data_row *r;
    const int *pool;
    int j;
    ck_assert_int_lt(i, d->n_rows);
    r = &d->rows[i];
    ck_assert_msg(r->n_prompt == np && r->n_chosen == nc && r->n_rejected == nr,
                  "row %d: sizes %d/%d/%d, want %d/%d/%d", i, r->n_prompt, r->n_chosen, r->n_rejected, np, nc, nr);
    ck_assert_int_eq(r->line, line);
    ck_assert(r->off + (size_t)(np + nc + nr) <= d->n_pool);
    pool = d->pool + r->off;
    for (j = 0; j < np; j++) ck_assert_msg(pool[j] == want_p[j], "row %d prompt[%d] = %d, want %d", i, j, pool[j], want_p[j]);
    for (j = 0; j < nc; j++)
        ck_assert_msg(pool[np + j] == want_c[j], "row %d chosen[%d] = %d, want %d", i, j, pool[np + j], want_c[j]);
    for (j = 0; j < nr; j++)
        ck_assert_msg(pool[np + nc + j] == want_r[j], "row %d rejected[%d] = %d, want %d", i, j, pool[np + nc + j],
                      want_r[j]);
}

/* A row read without truncation: enc(prompt) (or [eos]), enc(chosen) ++ [eos],
 * enc(rejected) ++ [eos], each part encoded on its own here. */
static void check_plain_row(const data_set *d, int i, const char *p, const char *c, const char *r, long line) {
    size_t np, nc, nr;
    int *ip = enc(p, &np), *ic = enc(c, &nc), *ir = enc(r, &nr);
    int eos = EOS;
    int *gc = realloc(ic, (nc + 1) * sizeof *ic), *gr;
    ck_assert(gc != NULL);
    ic = gc;
    gr = realloc(ir, (nr + 1) * sizeof *ir);
    ck_assert(gr != NULL);
    ir = gr;
    ic[nc++] = EOS;
    ir[nr++] = EOS;
    if (np == 0)
        check_row(d, i, &eos, 1, ic, (int)nc, ir, (int)nr, line);
    else
        check_row(d, i, ip, (int)np, ic, (int)nc, ir, (int)nr, line);
    free(ip);
    free(ic);
    free(ir);
}

START_TEST(test_data_tokenization) {
    char path[256];
    data_set d;
    dpo_err e;
    size_t n1, n2, n12;
    int *a, *b, *ab;
    /* line 1: other keys (before and after, of every type) are ignored;
     * line 2 blank, line 3 spaces and a tab; line 4: prompt " the" + response "re",
     * whose joint encoding " there" is one token; line 5: empty prompt, CRLF ending;
     * line 6: escapes and non-ASCII; line 8: last line without a newline. */
    const char *text =
        "{\"id\": 17, \"prompt\": \"Hello world\", \"meta\": {\"x\": [1, null]}, \"chosen\": \" good answer\", "
        "\"rejected\": \" bad one\", \"score\": 0.5}\n"
        "\n"
        "  \t \n"
        "{\"prompt\": \" the\", \"chosen\": \"re\", \"rejected\": \"se\"}\n"
        "{\"prompt\": \"\", \"chosen\": \"Yes\", \"rejected\": \"No\"}\r\n"
        "{\"rejected\": \"caf\\u00e9 \\\"x\\\"\", \"chosen\": \"na\xc3\xafve\\n\", \"prompt\": \"Tab\\there\"}\n"
        "\n"
        "{\"prompt\": \"Last\", \"chosen\": \" line\", \"rejected\": \" row\"}";
    path_in(path, sizeof path, "data.jsonl");
    write_text(path, text);
    ck_assert_msg(data_load_pairs(&d, path, g_tok, EOS, 32, 16, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(d.n_rows, 5);
    ck_assert_int_eq(d.n_truncated, 0);
    check_plain_row(&d, 0, "Hello world", " good answer", " bad one", 1);
    check_plain_row(&d, 1, " the", "re", "se", 4);
    check_plain_row(&d, 2, "", "Yes", "No", 5);
    check_plain_row(&d, 3, "Tab\there", "na\xc3\xafve\n", "caf\xc3\xa9 \"x\"", 6);
    check_plain_row(&d, 4, "Last", " line", " row", 8);
    /* the separate encoding matters for line 4: enc(" the" "re") is not enc(" the") ++ enc("re") */
    a = enc(" the", &n1);
    b = enc("re", &n2);
    ab = enc(" there", &n12);
    ck_assert(n1 == 1 && n2 == 1 && n12 == 1 && ab[0] != a[0]);
    ck_assert_int_eq(d.pool[d.rows[1].off], a[0]);
    ck_assert_int_eq(d.pool[d.rows[1].off + 1], b[0]);
    free(a);
    free(b);
    free(ab);
    /* the empty prompt is exactly [eos] */
    ck_assert_int_eq(d.rows[2].n_prompt, 1);
    ck_assert_int_eq(d.pool[d.rows[2].off], EOS);
    data_free(&d);
    ck_assert_ptr_null(d.rows);
    ck_assert_ptr_null(d.pool);
    ck_assert_int_eq(d.n_rows, 0);
}
END_TEST

/* Truncation with max_len 10 and max_prompt_len 4 on words that are one GPT-2
 * token each (checked below), so every count is known:
 *   response' = response ++ [eos]; if P + max(|c'|, |r'|) > max_len, keep the last
 *   max_prompt_len prompt tokens (when longer), then cut each response' to
 *   max_len - P keeping its start. */
static const char *const words[10] = {" one", " two", " three", " four", " five",
                                      " six", " seven", " eight", " nine", " ten"};

static void words_text(char *buf, size_t cap, int from, int to) {
    size_t off = 0;
    int i;
    buf[0] = '\0';
    for (i = from; i < to; i++) {
        int k = snprintf(buf + off, cap - off, "%s", words[i]);
        ck_assert(k > 0 && (size_t)k < cap - off);
        off += (size_t)k;
    }
}

/* ids of words, -1 standing for eos */
static void word_ids(int *out, const int *idx, int n, const int *wid) {
    int i;
    for (i = 0; i < n; i++) out[i] = idx[i] < 0 ? EOS : wid[idx[i]];
}

START_TEST(test_data_truncation) {
    char path[256], buf[8192], p[256], c[256], r[256];
    int wid[10], i;
    size_t off = 0;
    data_set d;
    dpo_err e;
    /* prompt words [p0, p1), chosen [c0, c1), rejected [r0, r1); then what must be kept */
    static const struct {
        int p0, p1, c0, c1, r0, r1;
        int np, kp[10], nc, kc[11], nr, kr[11];
    } rows[] = {
        /* 4 + (5 + eos) = 10 = max_len: kept whole */
        {0, 4, 0, 5, 8, 10, 4, {0, 1, 2, 3}, 6, {0, 1, 2, 3, 4, -1}, 3, {8, 9, -1}},
        /* prompt of 6 > max_prompt_len, but 6 + (2 + eos) = 9 fits: kept whole */
        {0, 6, 6, 8, 9, 10, 6, {0, 1, 2, 3, 4, 5}, 3, {6, 7, -1}, 2, {9, -1}},
        /* 6 + (5 + eos) = 12 > 10: the last 4 prompt tokens; 4 + 6 = 10 then fits, eos kept */
        {0, 6, 0, 5, 9, 10, 4, {2, 3, 4, 5}, 6, {0, 1, 2, 3, 4, -1}, 2, {9, -1}},
        /* prompt of 3 (<= 4) kept; chosen 9 + eos and rejected 8 + eos cut to 7 from the end */
        {7, 10, 0, 9, 1, 9, 3, {7, 8, 9}, 7, {0, 1, 2, 3, 4, 5, 6}, 7, {1, 2, 3, 4, 5, 6, 7}},
        /* prompt of 8 -> its last 4; chosen 8 + eos cut to 6; rejected 1 + eos kept */
        {0, 8, 2, 10, 0, 1, 4, {4, 5, 6, 7}, 6, {2, 3, 4, 5, 6, 7}, 2, {0, -1}},
        /* the rejected response is the longer one: 2 + (9 + eos) = 12 > 10; prompt kept
           (2 <= 4), rejected cut to 8, chosen (1 + eos) kept */
        {5, 7, 3, 4, 0, 9, 2, {5, 6}, 2, {3, -1}, 8, {0, 1, 2, 3, 4, 5, 6, 7}},
    };
    const int n_rows = (int)(sizeof rows / sizeof rows[0]);
    for (i = 0; i < 10; i++) {
        size_t n;
        int *ids = enc(words[i], &n);
        ck_assert_msg(n == 1, "\"%s\" is %zu tokens", words[i], n);
        wid[i] = ids[0];
        free(ids);
    }
    for (i = 0; i < n_rows; i++) {
        int k;
        words_text(p, sizeof p, rows[i].p0, rows[i].p1);
        words_text(c, sizeof c, rows[i].c0, rows[i].c1);
        words_text(r, sizeof r, rows[i].r0, rows[i].r1);
        k = snprintf(buf + off, sizeof buf - off, "{\"prompt\": \"%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n", p,
                     c, r);
        ck_assert(k > 0 && (size_t)k < sizeof buf - off);
        off += (size_t)k;
    }
    path_in(path, sizeof path, "trunc.jsonl");
    testutil_write_bytes(path, buf, off);
    ck_assert_msg(data_load_pairs(&d, path, g_tok, EOS, 10, 4, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(d.n_rows, n_rows);
    ck_assert_int_eq(d.n_truncated, 4);
    for (i = 0; i < n_rows; i++) {
        int kp[10], kc[11], kr[11];
        word_ids(kp, rows[i].kp, rows[i].np, wid);
        word_ids(kc, rows[i].kc, rows[i].nc, wid);
        word_ids(kr, rows[i].kr, rows[i].nr, wid);
        check_row(&d, i, kp, rows[i].np, kc, rows[i].nc, kr, rows[i].nr, i + 1);
    }
    data_free(&d);
    /* max_len must exceed max_prompt_len >= 1 */
    ck_assert_int_eq(data_load_pairs(&d, path, g_tok, EOS, 4, 4, &e), -1);
    ck_assert_msg(strstr(e.msg, "max_len"), "%s", e.msg);
    ck_assert_int_eq(d.n_rows, 0);
    ck_assert_int_eq(data_load_pairs(&d, path, g_tok, EOS, 10, 0, &e), -1);
    ck_assert_int_eq(d.n_rows, 0);
}
END_TEST

/* A file whose line `line` is bad: the error names the file and "line <line>",
 * and the dataset is left empty. */
static void load_fails(const char *name, const char *content, size_t len, long line, const char *also) {
    char path[256], want[320];
    data_set d;
    dpo_err e;
    path_in(path, sizeof path, name);
    testutil_write_bytes(path, content, len);
    memset(&e, 0, sizeof e);
    ck_assert_msg(data_load_pairs(&d, path, g_tok, EOS, 32, 16, &e) == -1, "%s was accepted", name);
    ck_assert_msg(strstr(e.msg, path) != NULL, "%s: message does not name the file: %s", name, e.msg);
    if (line > 0) {
        snprintf(want, sizeof want, "%s: line %ld", path, line);
        ck_assert_msg(strstr(e.msg, want) != NULL, "%s: message lacks \"%s\": %s", name, want, e.msg);
    }
    if (also) ck_assert_msg(strstr(e.msg, also) != NULL, "%s: message lacks \"%s\": %s", name, also, e.msg);
    ck_assert_int_eq(d.n_rows, 0);
    ck_assert_ptr_null(d.rows);
    ck_assert_ptr_null(d.pool);
    ck_assert_uint_eq(d.n_pool, 0);
}

#define GOOD "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n"
#define LOAD_FAILS(name, text, line, also) load_fails(name, text, sizeof(text) - 1, line, also)

START_TEST(test_data_malformed) {
    char path[256];
    data_set d;
    dpo_err e;
    /* every bad row sits on line 3 after a good row and a blank line */
    LOAD_FAILS("badjson", GOOD "\n{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": }\n" GOOD, 3, NULL);
    LOAD_FAILS("truncated", GOOD "\n{\"prompt\": \"a\", \"chosen\": \"b\", \"rejec", 3, NULL);
    LOAD_FAILS("trailing", GOOD "\n{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"} x\n", 3, NULL);
    LOAD_FAILS("twoobjs", GOOD "\n" GOOD GOOD "{\"prompt\": \"a\"}{\"chosen\": \"b\"}\n", 5, NULL);
    LOAD_FAILS("missing", GOOD "\n{\"prompt\": \"a\", \"chosen\": \"b\"}\n", 3, "rejected");
    LOAD_FAILS("missing_prompt", GOOD "\n{\"chosen\": \"b\", \"rejected\": \"c\"}\n", 3, "prompt");
    LOAD_FAILS("nonstring", GOOD "\n{\"prompt\": \"a\", \"chosen\": 1, \"rejected\": \"c\"}\n", 3, "chosen");
    LOAD_FAILS("nullfield", GOOD "\n{\"prompt\": null, \"chosen\": \"b\", \"rejected\": \"c\"}\n", 3, "prompt");
    LOAD_FAILS("arrayfield", GOOD "\n{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": [\"c\"]}\n", 3, "rejected");
    LOAD_FAILS("badutf8", GOOD "\n{\"prompt\": \"a\xff\", \"chosen\": \"b\", \"rejected\": \"c\"}\n", 3, NULL);
    LOAD_FAILS("overlong", GOOD "\n{\"prompt\": \"a\", \"chosen\": \"\xc0\xaf\", \"rejected\": \"c\"}\n", 3, NULL);
    LOAD_FAILS("surrogate", GOOD "\n{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"\xed\xa0\x80\"}\n", 3, NULL);
    LOAD_FAILS("notobject", GOOD "\n[\"a\", \"b\", \"c\"]\n", 3, "object");
    LOAD_FAILS("string", GOOD "\n\"prompt\"\n", 3, "object");
    LOAD_FAILS("dupkey", GOOD "\n{\"prompt\": \"a\", \"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n", 3,
               NULL);
    LOAD_FAILS("first", "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\",}\n" GOOD, 1, NULL);
    /* no rows at all: the message names the file */
    LOAD_FAILS("empty", "", 0, NULL);
    LOAD_FAILS("blank", "\n  \n\t\r\n", 0, NULL);
    /* a file that is not there */
    path_in(path, sizeof path, "absent.jsonl");
    ck_assert_int_eq(data_load_pairs(&d, path, g_tok, EOS, 32, 16, &e), -1);
    ck_assert_msg(strstr(e.msg, path) != NULL, "%s", e.msg);
    ck_assert_int_eq(d.n_rows, 0);
}
END_TEST

/* ======================================================================== */
/* 2. the first step against the policy itself                              */
/* ======================================================================== */

START_TEST(test_first_step_ln2) {
    char mdir[256], data[256], out[256];
    train_config c;
    capture cap;
    int k;
    path_in(mdir, sizeof mdir, "policy");
    path_in(data, sizeof data, "pairs.jsonl");
    path_in(out, sizeof out, "out");
    make_model_dir(mdir, 1, 10.0f);
    write_pairs(data, pairs4, NP4);
    base_config(&c, mdir, data, out, OPTIM_SGD, 0.5, NP4, 2, 2);
    run_ok(&c, &cap);
    ck_assert_int_eq(cap.n_rows, NP4);
    ck_assert_int_eq(cap.total, 2);
    /* the reference is the policy: h = 0 for every pair, -log sigmoid(0) = ln 2 */
    ck_assert_msg(fabs(cap.m[0].loss - log(2.0)) <= 1e-7, "loss %.17g", cap.m[0].loss);
    ck_assert(cap.m[0].reward_chosen == 0.0);
    ck_assert(cap.m[0].reward_rejected == 0.0);
    ck_assert(cap.m[0].margin == 0.0);
    ck_assert(cap.m[0].accuracy == 0.0);
    ck_assert(cap.m[0].learning_rate == 0.5);
    ck_assert(cap.m[0].grad_norm > 0.0);
    ck_assert(cap.m[0].epoch == 1.0);
    /* after one update the policy has moved away from the reference: the DPO loss
       decreased and the chosen responses gained on the rejected ones */
    ck_assert_msg(cap.m[1].loss < log(2.0) - 1e-3, "loss after one step %.17g", cap.m[1].loss);
    ck_assert_msg(cap.m[1].margin > 0.0, "margin %.17g", cap.m[1].margin);
    ck_assert(cap.m[1].epoch == 2.0);
    for (k = 0; k < 2; k++) ck_assert(isfinite(cap.m[k].logp_chosen) && cap.m[k].logp_chosen < 0.0);
}
END_TEST

/* ======================================================================== */
/* 3. one SGD step against p - lr * grad(mean DPO loss) computed here        */
/* ======================================================================== */

#define BETA3 0.5
#define LR3 0.25

/* Tolerance of p1 = p0 - lr g, entry by entry, with G_f the largest |g| in the
 * entry's tensor family:
 *     |(p1 - p0) + lr g|  <=  SGD_ULPS ulp(max(|p0|, |p1|))  +  lr SGD_GREL G_f.
 * The first term is the rounding of p0 - lr g to float (half an ulp). The second is
 * the gradient's own rounding: train.c sums it over one packed batch, this file over
 * single sequences, and for entries whose exact gradient is 0 (the attention key
 * biases) or tiny what is left is that rounding noise alone, relative to the
 * family's gradients, not to the entry. Measured (gcc -O3 -march=native): the
 * largest error is 0.5 ulp where the gradient term is negligible, and
 * (error - 1 ulp) <= 2.2e-7 lr G_f elsewhere; the largest error is 0.28 of the
 * bound (clang: 0.30). Allowed: 2 ulps + 2^-20 (9.5e-7) lr G_f. In every family
 * the largest update is more than 100 times the tolerance at its entry (asserted;
 * measured: at least 1.6e3, for the LayerNorm weights near 1), so a gradient wrong
 * by 1% breaks the bound in every family. */
#define SGD_ULPS 2.0
#define SGD_GREL 9.5367431640625e-07 /* 2^-20 */

/* got = pol - lr * (pol's gradients), entry by entry, within the tolerance
 * above; and in every family the largest update is far above the tolerance at
 * its entry, so that the comparison can fail. */
static void check_sgd_update(const model *pol, const model *got, double lr, const char *what) {
    double worst = 0.0, sens = HUGE_VAL;
    int f;
    ck_assert_uint_eq(got->num_params, pol->num_params);
    for (f = 0; f < MODEL_NUM_FAMILIES; f++) {
        size_t off = (size_t)(pol->params.t[f] - pol->params_mem), i, big = off;
        size_t end = f + 1 < MODEL_NUM_FAMILIES ? (size_t)(pol->params.t[f + 1] - pol->params_mem) : pol->num_params;
        double G = 0.0;
        if (end == off) continue; /* a family this model does not have (P_SCORE of a language model) */
        for (i = off; i < end; i++)
            if (fabs(pol->grads_mem[i]) > G) G = fabs(pol->grads_mem[i]);
        ck_assert_msg(G > 0.0, "%s: family %d has no gradient", what, f);
        for (i = off; i < end; i++) {
            float p0 = pol->params_mem[i], p1 = got->params_mem[i];
            double want = -lr * (double)pol->grads_mem[i], d = (double)p1 - (double)p0;
            double u = ulpf(fabsf(p0) > fabsf(p1) ? p0 : p1), err = fabs(d - want);
            double tol = SGD_ULPS * u + lr * SGD_GREL * G;
            ck_assert_msg(err <= tol, "%s: family %d entry %zu: p0 %.9g p1 %.9g, -lr g %.9g: error %.3g > %.3g", what,
                          f, i - off, p0, p1, want, err, tol);
            if (err / tol > worst) worst = err / tol;
            if (fabs(pol->grads_mem[i]) == G) big = i;
        }
        {
            float p0 = pol->params_mem[big], p1 = got->params_mem[big];
            double tol = SGD_ULPS * ulpf(fabsf(p0) > fabsf(p1) ? p0 : p1) + lr * SGD_GREL * G;
            if (lr * G / tol < sens) sens = lr * G / tol;
        }
    }
    ck_assert_msg(sens > 100.0, "%s: a family's largest update is only %.3g times the tolerance", what, sens);
    if (getenv("DPO_TEST_VERBOSE"))
        fprintf(stderr, "%s sgd step: max error / tolerance %.3g, min over families of largest update / tolerance "
                        "%.3g\n", what, worst, sens);
}

START_TEST(test_sgd_step_matches_gradient) {
    char pdir[256], rdir[256], data[256], out[256], path[300];
    train_config c;
    capture cap;
    model pol, ref, got;
    pair_seqs ps[NP4];
    double h[NP4], hmax = 0.0, loss_here, lc = 0, lr_ = 0, rwc = 0, rwr = 0, mag = 0;
    int k, n_right = 0;
    dpo_err e;
    policy_ref_pairs(pdir, rdir, data);
    path_in(out, sizeof out, "out");
    make_pairs(ps, pairs4, NP4);
    base_config(&c, pdir, data, out, OPTIM_SGD, LR3, NP4, NP4, 1);
    c.ref_dir = rdir;
    c.loss.beta = BETA3;
    run_ok(&c, &cap);

    /* the gradient, here */
    load_model(&pol, pdir);
    load_model(&ref, rdir);
    ck_assert_msg(model_alloc_grads(&pol, &e) == 0, "%s", e.msg);
    loss_here = mean_dpo_loss(&pol, &ref, ps, NP4, BETA3, h);
    expected_grad(&pol, &ref, ps, NP4, BETA3, h);
    for (k = 0; k < NP4; k++) {
        double pc = seq_logp(&pol, &ps[k].c), pr = seq_logp(&pol, &ps[k].r);
        double rc = seq_logp(&ref, &ps[k].c), rr = seq_logp(&ref, &ps[k].r);
        lc += pc / NP4;
        lr_ += pr / NP4;
        mag += (fabs(pc) + fabs(pr) + fabs(rc) + fabs(rr)) / NP4;
        n_right += pc - rc > pr - rr;
        rwc += BETA3 * (pc - rc) / NP4;
        rwr += BETA3 * (pr - rr) / NP4;
        if (fabs(BETA3 * h[k]) > hmax) hmax = fabs(BETA3 * h[k]);
    }
    /* the pairs are far enough from h = 0 for the sigmoid weight to matter */
    ck_assert_msg(hmax > 0.5, "max |beta h| = %g", hmax);

    /* Step 1's metrics are those of the initial policy. train.c forwards a packed
       batch, this file one sequence at a time: the float log-probs may round
       differently, by about 1e-7 of each (measured: identical). Allowed: 1e-6 of
       the summed magnitudes, scaled by beta for the rewards and the loss (whose
       derivative in h is at most beta). */
    ck_assert_msg(fabs(cap.m[0].logp_chosen - lc) <= 1e-6 * fabs(lc), "logps/chosen %.17g, here %.17g",
                  cap.m[0].logp_chosen, lc);
    ck_assert_msg(fabs(cap.m[0].logp_rejected - lr_) <= 1e-6 * fabs(lr_), "logps/rejected %.17g, here %.17g",
                  cap.m[0].logp_rejected, lr_);
    ck_assert_msg(fabs(cap.m[0].reward_chosen - rwc) <= BETA3 * 1e-6 * mag, "rewards/chosen %.17g, here %.17g",
                  cap.m[0].reward_chosen, rwc);
    ck_assert_msg(fabs(cap.m[0].reward_rejected - rwr) <= BETA3 * 1e-6 * mag, "rewards/rejected %.17g, here %.17g",
                  cap.m[0].reward_rejected, rwr);
    ck_assert_msg(fabs(cap.m[0].margin - (rwc - rwr)) <= BETA3 * 1e-6 * mag, "rewards/margins %.17g, here %.17g",
                  cap.m[0].margin, rwc - rwr);
    ck_assert_msg(fabs(cap.m[0].loss - loss_here) <= BETA3 * 1e-6 * mag, "loss %.17g, here %.17g", cap.m[0].loss,
                  loss_here);
    ck_assert(cap.m[0].accuracy == (double)n_right / NP4);

    /* the saved model is p0 - lr g, entry by entry */
    load_model(&got, out);
    check_sgd_update(&pol, &got, LR3, "dpo");
    if (getenv("DPO_TEST_VERBOSE")) fprintf(stderr, "dpo sgd step: max |beta h| %.3g\n", hmax);
    /* the tokenizer went with the model */
    ck_assert((size_t)snprintf(path, sizeof path, "%s/vocab.json", out) < sizeof path && path_exists(path));
    ck_assert((size_t)snprintf(path, sizeof path, "%s/merges.txt", out) < sizeof path && path_exists(path));
    model_free(&got);
    model_free(&pol);
    model_free(&ref);
}
END_TEST

/* Central differences of the mean loss, through model_forward, at the entry of
 * largest gradient in each of eight tensor families: checks this file's own
 * gradient (the sign, the sigmoid weight, the 1/B and the response-only sums).
 * D(s) = (L(p+s) - L(p-s)) / 2s with s = 2^-6 (dividing by the float steps
 * actually taken) has two errors: truncation, s^2 L'''/6, and the float rounding
 * of the log-prob sums (about 1e-6 nats each) divided by 2s, which is largest
 * relative to the smallest of these gradients (0.02). Measured over steps 2^-5 to
 * 2^-9 with gcc and clang: 2^-6 is the best compromise, at most 3.2e-4 relative
 * on these entries (|g| from 0.02 to 0.6). Allowed: 2e-3 relative; a wrong factor
 * in the weight or a prompt token in the sums is off by far more. */
#define FD_STEP 0.015625
#define FD_REL 2e-3

START_TEST(test_gradient_finite_differences) {
    char pdir[256], rdir[256];
    model pol, ref;
    pair_seqs ps[NP4];
    double h[NP4], worst = 0.0;
    static const int fams[] = {P_WTE, P_WPE, P_QKVW, P_ATTPROJW, P_ATTPROJB, P_FCW, P_FCPROJB, P_LNFW};
    int f;
    dpo_err e;
    path_in(pdir, sizeof pdir, "policy");
    path_in(rdir, sizeof rdir, "ref");
    make_model_dir(pdir, 11, 10.0f);
    make_model_dir(rdir, 22, 10.0f);
    make_pairs(ps, pairs4, NP4);
    load_model(&pol, pdir);
    load_model(&ref, rdir);
    ck_assert_msg(model_alloc_grads(&pol, &e) == 0, "%s", e.msg);
    expected_grad(&pol, &ref, ps, NP4, BETA3, h);
    for (f = 0; f < (int)(sizeof fams / sizeof fams[0]); f++) {
        size_t off = (size_t)(pol.params.t[fams[f]] - pol.params_mem), end, i, best = off;
        float save, up, dn;
        double lp, lm, fd, g;
        end = fams[f] + 1 < MODEL_NUM_FAMILIES ? (size_t)(pol.params.t[fams[f] + 1] - pol.params_mem) : pol.num_params;
        for (i = off; i < end; i++)
            if (fabsf(pol.grads_mem[i]) > fabsf(pol.grads_mem[best])) best = i;
        g = pol.grads_mem[best];
        ck_assert_msg(fabs(g) > 1e-2, "family %d: largest gradient %g", fams[f], g);
        save = pol.params_mem[best];
        up = save + (float)FD_STEP;
        dn = save - (float)FD_STEP;
        pol.params_mem[best] = up;
        lp = mean_dpo_loss(&pol, &ref, ps, NP4, BETA3, NULL);
        pol.params_mem[best] = dn;
        lm = mean_dpo_loss(&pol, &ref, ps, NP4, BETA3, NULL);
        pol.params_mem[best] = save;
        fd = (lp - lm) / ((double)up - (double)dn); /* the float steps actually taken */
        ck_assert_msg(fabs(fd - g) <= FD_REL * fabs(g), "family %d, entry %zu: gradient %.9g, differences %.9g",
                      fams[f], best - off, g, fd);
        if (fabs(fd - g) / fabs(g) > worst) worst = fabs(fd - g) / fabs(g);
    }
    if (getenv("DPO_TEST_VERBOSE")) fprintf(stderr, "finite differences: worst relative error %.3g\n", worst);
    model_free(&pol);
    model_free(&ref);
}
END_TEST

/* ======================================================================== */
/* 4. micro-batches                                                          */
/* ======================================================================== */

/* Measured: micro-batches of 1, 2 and 3 differ from one batch of 4 after two SGD
 * steps by at most 3.0e-8 = 2.9e-8 of max |param| (1.04) with gcc, 1.2e-7 (one
 * ulp of the parameters near 1) with clang (float summation order of the
 * gradient accumulation), while the two steps moved parameters by up to 0.14. Allowed: 1e-6 of max |param|; a wrong scale of one
 * micro-batch (n/mb instead of n/B, a dropped or doubled partial micro-batch)
 * changes the model by a fraction of the update, 1e4 times more. */
#define MICRO_REL 1e-6

START_TEST(test_micro_batches) {
    char pdir[256], rdir[256], data[256], out[4][256];
    static const int mbs[4] = {4, 1, 2, 3};
    train_config c;
    capture cap;
    model base, got[4];
    double pmax = 0.0, upd = 0.0, worst = 0.0;
    size_t i;
    int k;
    policy_ref_pairs(pdir, rdir, data);
    for (k = 0; k < 4; k++) {
        char name[32];
        snprintf(name, sizeof name, "out%d", mbs[k]);
        path_in(out[k], sizeof out[k], name);
        base_config(&c, pdir, data, out[k], OPTIM_SGD, LR3, NP4, mbs[k], 2);
        c.ref_dir = rdir;
        c.loss.beta = BETA3;
        run_ok(&c, &cap);
        load_model(&got[k], out[k]);
    }
    load_model(&base, pdir);
    for (i = 0; i < base.num_params; i++) {
        double a = fabs(got[0].params_mem[i]), u = fabs((double)got[0].params_mem[i] - base.params_mem[i]);
        if (a > pmax) pmax = a;
        if (u > upd) upd = u;
    }
    for (k = 1; k < 4; k++) {
        double dk = 0.0;
        for (i = 0; i < base.num_params; i++) {
            double d = fabs((double)got[k].params_mem[i] - got[0].params_mem[i]);
            if (d > dk) dk = d;
        }
        ck_assert_msg(dk <= MICRO_REL * pmax, "micro-batch %d: max |diff| %.3g > %.3g (max |param| %.3g)", mbs[k], dk,
                      MICRO_REL * pmax, pmax);
        if (dk > worst) worst = dk;
    }
    /* the runs did move the model, by far more than the bound */
    ck_assert_msg(upd > 1e3 * MICRO_REL * pmax, "max update %.3g", upd);
    if (getenv("DPO_TEST_VERBOSE"))
        fprintf(stderr, "micro-batches: max |diff| %.3g = %.3g of max |param| %.3g; max update %.3g\n", worst,
                worst / pmax, pmax, upd);
    for (k = 0; k < 4; k++) model_free(&got[k]);
    model_free(&base);
}
END_TEST

/* ======================================================================== */
/* 5. only response tokens count                                             */
/* ======================================================================== */

START_TEST(test_logps_response_only) {
    char pdir[256], data[256], out[256];
    train_config c;
    capture cap;
    model pol;
    pair_seqs ps[NP4];
    double want_c = 0.0, want_r = 0.0, all_c = 0.0;
    int k, j;
    path_in(pdir, sizeof pdir, "policy");
    path_in(data, sizeof data, "pairs.jsonl");
    path_in(out, sizeof out, "out");
    make_model_dir(pdir, 5, 10.0f);
    write_pairs(data, pairs4, NP4);
    make_pairs(ps, pairs4, NP4);
    base_config(&c, pdir, data, out, OPTIM_SGD, 1e-3, NP4, 3, 1);
    run_ok(&c, &cap);
    load_model(&pol, pdir);
    for (k = 0; k < NP4; k++) {
        seq_t whole = ps[k].c;
        want_c += seq_logp(&pol, &ps[k].c) / NP4;
        want_r += seq_logp(&pol, &ps[k].r) / NP4;
        /* the same sequence with the prompt's own next tokens as targets too */
        for (j = 0; j < whole.len; j++) whole.tgt[j] = whole.tok[j + 1 < whole.len ? j + 1 : j];
        whole.tgt[whole.len - 1] = ps[k].c.tgt[whole.len - 1];
        whole.n_resp = whole.len;
        all_c += seq_logp(&pol, &whole) / NP4;
    }
    /* float log-probs of about -10 each, summed over at most 8 tokens: the packed and
       the single-sequence forward agree to far better than 1e-6 relative */
    ck_assert_msg(fabs(cap.m[0].logp_chosen - want_c) <= 1e-6 * fabs(want_c), "logps/chosen %.17g, here %.17g",
                  cap.m[0].logp_chosen, want_c);
    ck_assert_msg(fabs(cap.m[0].logp_rejected - want_r) <= 1e-6 * fabs(want_r), "logps/rejected %.17g, here %.17g",
                  cap.m[0].logp_rejected, want_r);
    /* counting the prompt tokens too would be a different number, by whole nats */
    ck_assert_msg(fabs(all_c - want_c) > 1.0, "with the prompt %.17g, without %.17g", all_c, want_c);
    model_free(&pol);
}
END_TEST

/* ======================================================================== */
/* 6. threads                                                                */
/* ======================================================================== */

START_TEST(test_threads_bit_identical) {
    char pdir[256], data[256], out1[256], out2[256];
    train_config c;
    capture cap1, cap2;
    model a, b;
    int saved = util_threads(), k;
    path_in(pdir, sizeof pdir, "policy");
    path_in(data, sizeof data, "pairs.jsonl");
    path_in(out1, sizeof out1, "out1");
    path_in(out2, sizeof out2, "out2");
    make_model_dir(pdir, 3, 10.0f);
    write_pairs(data, pairs4, NP4);
    base_config(&c, pdir, data, out1, OPTIM_ADAMW, 1e-2, NP4, 2, 2);
    util_set_threads(1);
    run_ok(&c, &cap1);
    c.out_dir = out2;
    util_set_threads(2);
    run_ok(&c, &cap2);
    util_set_threads(saved);
    load_model(&a, out1);
    load_model(&b, out2);
    ck_assert_uint_eq(a.num_params, b.num_params);
    ck_assert(memcmp(a.params_mem, b.params_mem, a.num_params * sizeof(float)) == 0);
    for (k = 0; k < 2; k++) {
        ck_assert(cap1.m[k].loss == cap2.m[k].loss);
        ck_assert(cap1.m[k].grad_norm == cap2.m[k].grad_norm);
        ck_assert(cap1.m[k].logp_chosen == cap2.m[k].logp_chosen);
    }
    /* and the two steps did change the model */
    model_free(&b);
    load_model(&b, pdir);
    ck_assert(memcmp(a.params_mem, b.params_mem, a.num_params * sizeof(float)) != 0);
    model_free(&a);
    model_free(&b);
}
END_TEST

/* ======================================================================== */
/* 7. learning a small preference set                                        */
/* ======================================================================== */

/* Eight prompts, each with a positive and a negative one-word continuation (each
 * word one GPT-2 token, so every response is 2 tokens with its eos: short
 * sequences keep the 3 x 40 steps fast, also under the sanitizers). */
static const text_pair pairs8[] = {
    {"The movie was", " great", " bad"},
    {"My day was", " happy", " sad"},
    {"The food tasted", " delicious", " awful"},
    {"I feel", " good", " terrible"},
    {"The service was", " excellent", " horrible"},
    {"This book is", " wonderful", " dreadful"},
    {"The weather is", " lovely", " miserable"},
    {"Our trip was", " amazing", " boring"},
};
#define NP8 8
#define E2E_STEPS 30

/* dpo, ipo and hinge (beta 0.1) with AdamW, lr 1e-3, no warm-up, clip 0, batch 8
 * (all pairs), 30 steps, reference = the initial policy. Measured: step 1 has
 * margin 0 and accuracy 0 (h = 0); from step 2 on every pair is ordered right
 * (accuracy 1) and the margin grows by about 0.011 a step, to 0.313 (dpo),
 * 0.304 (ipo), 0.314 (hinge) at step 30; losses 0.693 -> 0.549 (dpo),
 * 25 -> 3.86 (ipo), 1 -> 0.686 (hinge). Asserted: final accuracy exactly 1, final
 * margin above the first step's and above 10 times step 2's (the model keeps
 * learning rather than stopping after the first update), final loss below the
 * first. */

START_TEST(test_end_to_end_losses) {
    static const obj_loss_kind kinds[3] = {OBJ_LOSS_DPO, OBJ_LOSS_IPO, OBJ_LOSS_HINGE};
    char pdir[256], data[256], out[256];
    train_config c;
    capture cap;
    int k;
    path_in(pdir, sizeof pdir, "policy");
    path_in(data, sizeof data, "pairs8.jsonl");
    make_model_dir(pdir, 9, 1.0f);
    write_pairs(data, pairs8, NP8);
    for (k = 0; k < 3; k++) {
        const train_metrics *first, *last;
        path_in(out, sizeof out, obj_loss_kind_name(kinds[k]));
        base_config(&c, pdir, data, out, OPTIM_ADAMW, 1e-3, NP8, NP8, E2E_STEPS);
        c.loss.kind = kinds[k];
        run_ok(&c, &cap);
        first = &cap.m[0];
        last = &cap.m[E2E_STEPS - 1];
        if (getenv("DPO_TEST_VERBOSE"))
            fprintf(stderr, "%s: step 1 loss %.6g margin %.6g acc %.3g; step %d loss %.6g margin %.6g acc %.3g\n",
                    obj_loss_kind_name(kinds[k]), first->loss, first->margin, first->accuracy, E2E_STEPS, last->loss,
                    last->margin, last->accuracy);
        ck_assert_msg(last->accuracy == 1.0, "%s: accuracy %g", obj_loss_kind_name(kinds[k]), last->accuracy);
        ck_assert_msg(last->margin > first->margin, "%s: margin %g, first %g", obj_loss_kind_name(kinds[k]),
                      last->margin, first->margin);
        ck_assert_msg(last->margin > 10.0 * cap.m[1].margin, "%s: margin %g, at step 2 %g",
                      obj_loss_kind_name(kinds[k]), last->margin, cap.m[1].margin);
        ck_assert_msg(last->loss < first->loss, "%s: loss %g, first %g", obj_loss_kind_name(kinds[k]), last->loss,
                      first->loss);
        ck_assert(path_exists(out));
    }
}
END_TEST

/* ======================================================================== */
/* 8. a non-finite loss stops training and writes nothing                    */
/* ======================================================================== */

START_TEST(test_nonfinite_stops) {
    char pdir[256], data[256], out[256];
    train_config c;
    capture cap;
    train_callbacks cb;
    model m;
    dpo_err e;
    size_t i;
    path_in(pdir, sizeof pdir, "nan-policy");
    path_in(data, sizeof data, "pairs.jsonl");
    path_in(out, sizeof out, "out");
    write_pairs(data, pairs4, NP4);
    /* a policy whose parameters are all 1e30 (finite: non-finite weights are refused at
       load): the products overflow, and the first loss is not finite */
    ck_assert_msg(model_create(&m, &tiny_cfg, &e) == 0, "%s", e.msg);
    for (i = 0; i < m.num_params; i++) m.params_mem[i] = 1e30f;
    ck_assert_msg(model_save(&m, pdir, &e) == 0, "%s", e.msg);
    ck_assert_msg(tok_copy_files(TOK_DIR, pdir, &e) == 0, "%s", e.msg);
    model_free(&m);
    base_config(&c, pdir, data, out, OPTIM_SGD, 0.1, NP4, 2, 3);
    memset(&cap, 0, sizeof cap);
    memset(&cb, 0, sizeof cb);
    cb.start = cap_start;
    cb.step = cap_step;
    cb.ctx = &cap;
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(train_run(&c, &cb, &e), -1);
    ck_assert_msg(strstr(e.msg, "step 1") && strstr(e.msg, "not finite"), "%s", e.msg);
    ck_assert_int_eq(cap.n_steps, 0);
    ck_assert_msg(!path_exists(out), "%s exists", out);

    /* a finite policy whose first update is huge: step 1 is fine, step 2 is not */
    path_in(pdir, sizeof pdir, "policy");
    make_model_dir(pdir, 4, 10.0f);
    base_config(&c, pdir, data, out, OPTIM_SGD, 1e30, NP4, 2, 3);
    memset(&cap, 0, sizeof cap);
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(train_run(&c, &cb, &e), -1);
    ck_assert_msg(strstr(e.msg, "step 2") && strstr(e.msg, "not finite"), "%s", e.msg);
    ck_assert_int_eq(cap.n_steps, 1);
    ck_assert_msg(!path_exists(out), "%s exists", out);
}
END_TEST

/* ======================================================================== */
/* 9. evaluation on held-out data                                            */
/* ======================================================================== */

/* the two files hold the same bytes (saved models, bit for bit) */
static int same_file(const char *a, const char *b) {
    size_t la, lb;
    unsigned char *x = testutil_read_bytes(a, &la), *y = testutil_read_bytes(b, &lb);
    int same;
    ck_assert_msg(x && y, "cannot read %s or %s", a, b);
    same = la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

#define EVAL_REL 1e-12

/* |a - b| <= EVAL_REL (|a| + |b|) + tiny: the same sums, added in another order */
static void close_rel(double a, double b, const char *what, long step) {
    ck_assert_msg(fabs(a - b) <= EVAL_REL * (fabs(a) + fabs(b)) + 1e-300, "%s after step %ld: eval %.17g, training %.17g",
                  what, step, a, b);
}

/* With a batch of every row and the held-out file equal to the training file,
 * the evaluation after step k sees the model that step k + 1 trains on, and the
 * same rows (in another order): its metrics are step k + 1's, up to the order of
 * the double sums. */
static void check_eval_is_next_step(const capture *cap, int sft) {
    int k;
    for (k = 0; k + 1 < cap->n_steps; k++) {
        const train_metrics *ev = &cap->ev[k], *m = &cap->m[k + 1];
        ck_assert_int_eq(ev->step, k + 1);
        ck_assert(ev->epoch == cap->m[k].epoch);
        ck_assert(ev->tokens_per_second > 0.0);
        close_rel(ev->loss, m->loss, "loss", ev->step);
        close_rel(ev->logp_chosen, m->logp_chosen, "logps/chosen", ev->step);
        if (sft) continue;
        close_rel(ev->logp_rejected, m->logp_rejected, "logps/rejected", ev->step);
        close_rel(ev->reward_chosen, m->reward_chosen, "rewards/chosen", ev->step);
        close_rel(ev->reward_rejected, m->reward_rejected, "rewards/rejected", ev->step);
        close_rel(ev->margin, m->margin, "rewards/margins", ev->step);
        ck_assert(ev->accuracy == m->accuracy);
    }
}

/* DPO against a reference that differs from the policy (so every metric is
 * non-trivial), AdamW, batch = the 4 pairs, micro-batches of 3 (uneven), 4 steps:
 *   - evaluations after steps 1, 2, 3, 4 with --eval-every 1; the first three
 *     equal the metrics of the next training step;
 *   - --eval-every 3 evaluates after step 3 and after the last, bit for bit as
 *     the run that evaluates every step;
 *   - --precompute-ref gives the same evaluations bit for bit;
 *   - the models of all these runs and of a run without evaluation are the same
 *     bytes: evaluating changes nothing in training. */
START_TEST(test_eval) {
    char pdir[256], rdir[256], data[256], out[4][256], path[4][300];
    train_config c;
    capture cap, cap3, capp;
    int k;
    policy_ref_pairs(pdir, rdir, data);
    for (k = 0; k < 4; k++) {
        char name[16];
        snprintf(name, sizeof name, "out%d", k);
        path_in(out[k], sizeof out[k], name);
        ck_assert((size_t)snprintf(path[k], sizeof path[k], "%s/model.safetensors", out[k]) < sizeof path[k]);
    }
    base_config(&c, pdir, data, out[0], OPTIM_ADAMW, 1e-2, NP4, 3, 4);
    c.ref_dir = rdir;
    c.loss.beta = BETA3;
    run_ok(&c, &cap); /* no evaluation */
    ck_assert_int_eq(cap.n_evals, 0);
    ck_assert_int_eq(cap.n_eval_rows, -1);
    c.eval_path = data;
    c.eval_every = 1;
    c.out_dir = out[1];
    run_ok(&c, &cap);
    ck_assert_int_eq(cap.n_eval_rows, NP4);
    ck_assert_int_eq(cap.n_evals, 4);
    check_eval_is_next_step(&cap, 0);
    /* the run moved the metrics, so that the comparisons above compare something */
    ck_assert_msg(fabs(cap.ev[3].margin - cap.m[0].margin) > 0.1, "margin %g -> %g", cap.m[0].margin, cap.ev[3].margin);
    c.eval_every = 3;
    c.out_dir = out[2];
    run_ok(&c, &cap3);
    ck_assert_int_eq(cap3.n_evals, 2);
    ck_assert_int_eq(cap3.ev[0].step, 3);
    ck_assert_int_eq(cap3.ev[1].step, 4);
    ck_assert(cap3.ev[0].loss == cap.ev[2].loss && cap3.ev[0].margin == cap.ev[2].margin);
    ck_assert(cap3.ev[1].loss == cap.ev[3].loss && cap3.ev[1].margin == cap.ev[3].margin);
    c.eval_every = 0; /* after the last step only */
    c.precompute_ref = 1;
    c.out_dir = out[3];
    run_ok(&c, &capp);
    ck_assert_int_eq(capp.n_evals, 1);
    /* the reference went through both files once, 3 rows (the micro-batch) at a time */
    ck_assert(capp.ref_done[0] == NP4 && capp.ref_calls[0] == 2);
    ck_assert(capp.ref_done[1] == NP4 && capp.ref_calls[1] == 2);
    ck_assert(cap3.ref_done[0] == 0 && cap3.ref_calls[0] == 0); /* no --precompute-ref */
    ck_assert(cap3.ref_done[1] == NP4 && cap3.ref_calls[1] == 2);
    ck_assert(capp.ev[0].loss == cap.ev[3].loss && capp.ev[0].reward_chosen == cap.ev[3].reward_chosen &&
              capp.ev[0].reward_rejected == cap.ev[3].reward_rejected);
    for (k = 1; k < 4; k++) ck_assert_msg(same_file(path[0], path[k]), "%s differs from %s", path[k], path[0]);
}
END_TEST

/* ======================================================================== */
/* 10. supervised fine-tuning data                                           */
/* ======================================================================== */

/* An SFT row read without truncation: enc(prompt) (or [eos]), enc(completion) ++ [eos]. */
static void check_sft_row(const data_set *d, int i, const char *p, const char *c, long line) {
    size_t np, nc;
    int *ip = enc(p, &np), *ic = enc(c, &nc), eos = EOS;
    int *gc = realloc(ic, (nc + 1) * sizeof *ic);
    ck_assert(gc != NULL);
    ic = gc;
    ic[nc++] = EOS;
    check_row(d, i, np ? ip : &eos, np ? (int)np : 1, ic, (int)nc, NULL, 0, line);
    free(ip);
    free(ic);
}

START_TEST(test_sft_data) {
    char path[256];
    data_set d;
    dpo_err e;
    int wid[10], i;
    /* line 1: prompt + completion (other keys ignored); line 3: text; line 4: text
     * equal to line 1's prompt + completion; line 5: empty completion */
    path_in(path, sizeof path, "sft.jsonl");
    write_text(path, "{\"prompt\": \"I think the food\", \"id\": 3, \"completion\": \" tasted great\"}\n\n"
                     "{\"text\": \"Hello world\"}\n"
                     "{\"text\": \"I think the food tasted great\", \"prompt\": \"ignored\"}\n"
                     "{\"prompt\": \"Weather today:\", \"completion\": \"\"}\n");
    ck_assert_msg(data_load_sft(&d, path, g_tok, EOS, 32, 16, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(d.sft, 1);
    ck_assert_int_eq(d.n_rows, 4);
    check_sft_row(&d, 0, "I think the food", " tasted great", 1);
    check_sft_row(&d, 1, "", "Hello world", 3);
    check_sft_row(&d, 2, "", "I think the food tasted great", 4);
    check_sft_row(&d, 3, "Weather today:", "", 5);
    ck_assert_int_eq(d.n_truncated, 0);
    data_free(&d);
    /* preference data is not SFT data, and the other way round */
    ck_assert_int_eq(data_load_pairs(&d, path, g_tok, EOS, 32, 16, &e), -1);
    ck_assert_msg(strstr(e.msg, "line 1") && strstr(e.msg, "chosen"), "%s", e.msg);

    /* truncation, the rule of data_load_pairs with the completion as the only
     * response: max_len 6, max_prompt_len 2, one-token words */
    for (i = 0; i < 10; i++) {
        size_t n;
        int *ids = enc(words[i], &n);
        ck_assert(n == 1);
        wid[i] = ids[0];
        free(ids);
    }
    write_text(path, "{\"prompt\": \" one two three\", \"completion\": \" four five\"}\n"   /* 3 + 3 = 6: whole */
                     "{\"prompt\": \" one two three\", \"completion\": \" four five six\"}\n" /* 7: prompt -> 2 */
                     "{\"prompt\": \" one\", \"completion\": \" two three four five six\"}\n"); /* 1 + 6: cut to 5 */
    ck_assert_msg(data_load_sft(&d, path, g_tok, EOS, 6, 2, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(d.n_truncated, 2);
    {
        int p0[3] = {wid[0], wid[1], wid[2]}, c0[3] = {wid[3], wid[4], EOS};
        int p1[2] = {wid[1], wid[2]}, c1[4] = {wid[3], wid[4], wid[5], EOS};
        int p2[1] = {wid[0]}, c2[5] = {wid[1], wid[2], wid[3], wid[4], wid[5]};
        check_row(&d, 0, p0, 3, c0, 3, NULL, 0, 1);
        check_row(&d, 1, p1, 2, c1, 4, NULL, 0, 2);
        check_row(&d, 2, p2, 1, c2, 5, NULL, 0, 3);
    }
    data_free(&d);
}
END_TEST

/* an SFT file whose line `line` is bad: the file and line named, nothing returned */
static void sft_load_fails(const char *content, long line, const char *also) {
    char path[256], want[320];
    data_set d;
    dpo_err e;
    path_in(path, sizeof path, "bad-sft.jsonl");
    write_text(path, content);
    memset(&e, 0, sizeof e);
    ck_assert_msg(data_load_sft(&d, path, g_tok, EOS, 32, 16, &e) == -1, "accepted: %s", content);
    snprintf(want, sizeof want, "%s: line %ld", path, line);
    ck_assert_msg(strstr(e.msg, want) != NULL, "message lacks \"%s\": %s", want, e.msg);
    if (also) ck_assert_msg(strstr(e.msg, also) != NULL, "message lacks \"%s\": %s", also, e.msg);
    ck_assert_int_eq(d.n_rows, 0);
    ck_assert_ptr_null(d.pool);
}

#define SGOOD "{\"text\": \"a\"}\n"

START_TEST(test_sft_data_malformed) {
    sft_load_fails(SGOOD "{\"text\": \"a\", \"completion\": \"b\"}\n", 2, "both");
    sft_load_fails(SGOOD SGOOD "{\"prompt\": \"a\"}\n", 3, "completion");
    sft_load_fails(SGOOD "{\"completion\": \"a\"}\n", 2, "prompt");
    sft_load_fails(SGOOD "{\"text\": 5}\n", 2, "text");
    sft_load_fails(SGOOD "{\"prompt\": \"a\", \"completion\": null}\n", 2, "completion");
    sft_load_fails(SGOOD "{\"chosen\": \"a\", \"rejected\": \"b\"}\n", 2, NULL);
    sft_load_fails(SGOOD "{\"text\": \"a\xff\"}\n", 2, NULL);
    sft_load_fails(SGOOD "[\"a\"]\n", 2, "object");
    sft_load_fails(SGOOD "{\"text\": \"a\"\n", 2, NULL);
}
END_TEST

/* ======================================================================== */
/* 11. supervised fine-tuning: one SGD step, micro-batches, learning         */
/* ======================================================================== */

typedef struct {
    const char *prompt, *completion; /* prompt NULL: a {"text"} row */
} text_sft;

static const text_sft sft4[] = {
    {"The movie was", " wonderful and moving."},
    {NULL, "Yes, of course."},
    {"I think the food", " tasted great"},
    {"Weather today:", " rain all day long"},
};
#define NS4 4

static void write_sft(const char *path, const text_sft *rows, int n) {
    char buf[4096];
    size_t off = 0;
    int i, k;
    for (i = 0; i < n; i++) {
        if (rows[i].prompt)
            k = snprintf(buf + off, sizeof buf - off, "{\"prompt\": \"%s\", \"completion\": \"%s\"}\n", rows[i].prompt,
                         rows[i].completion);
        else
            k = snprintf(buf + off, sizeof buf - off, "{\"text\": \"%s\"}\n", rows[i].completion);
        ck_assert(k > 0 && (size_t)k < sizeof buf - off);
        off += (size_t)k;
    }
    testutil_write_bytes(path, buf, off);
}

/* The SFT loss of a batch: L = -(1/T) sum over rows of the summed completion
 * log-probs, T = the completion tokens of the batch (each with its eos), and its
 * gradient into m's (zeroed) gradients: dL/dlogp = -1/T at every completion
 * token, nothing at prompt tokens. Sequences forwarded one at a time. */
static double sft_loss_grad(model *m, const seq_t *s, int n) {
    double sum = 0.0, T = 0.0;
    int i;
    for (i = 0; i < n; i++) T += s[i].n_resp;
    for (i = 0; i < n; i++) sum += seq_logp(m, &s[i]);
    model_zero_grad(m);
    for (i = 0; i < n; i++) seq_backward(m, &s[i], -1.0 / T);
    return -sum / T;
}

/* One plain-SGD step on the 4 rows (lr 0.25, no clip, no warm-up) moves the
 * weights to p0 - lr g, g the gradient computed here (so prompt tokens carry no
 * loss, and the token mean spans the whole batch), for micro-batches of 4, 3
 * and 1; the step's loss and logps/chosen are this file's. Then --eval-data on the
 * training file over 3 steps: each evaluation is the next step's loss. */
START_TEST(test_sft_step) {
    static const int mbs[3] = {4, 3, 1};
    char pdir[256], data[256], out[256], name[32];
    train_config c;
    capture cap;
    model pol, got;
    seq_t s[NS4];
    double loss_here, lc = 0.0;
    dpo_err e;
    int k;
    path_in(pdir, sizeof pdir, "policy");
    path_in(data, sizeof data, "sft.jsonl");
    make_model_dir(pdir, 5, 10.0f);
    write_sft(data, sft4, NS4);
    for (k = 0; k < NS4; k++) make_seq(&s[k], sft4[k].prompt ? sft4[k].prompt : "", sft4[k].completion);
    load_model(&pol, pdir);
    ck_assert_msg(model_alloc_grads(&pol, &e) == 0, "%s", e.msg);
    loss_here = sft_loss_grad(&pol, s, NS4);
    for (k = 0; k < NS4; k++) lc += seq_logp(&pol, &s[k]) / NS4;
    for (k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "out%d", mbs[k]);
        path_in(out, sizeof out, name);
        base_config(&c, pdir, data, out, OPTIM_SGD, LR3, NS4, mbs[k], 1);
        c.mode = TRAIN_SFT;
        run_ok(&c, &cap);
        ck_assert_int_eq(cap.n_rows, NS4);
        /* packed versus alone: the float log-probs may round differently (measured: identical) */
        ck_assert_msg(fabs(cap.m[0].loss - loss_here) <= 1e-6 * loss_here, "micro %d: loss %.17g, here %.17g",
                      mbs[k], cap.m[0].loss, loss_here);
        ck_assert_msg(fabs(cap.m[0].logp_chosen - lc) <= 1e-6 * fabs(lc), "micro %d: logps %.17g, here %.17g",
                      mbs[k], cap.m[0].logp_chosen, lc);
        ck_assert(cap.m[0].reward_chosen == 0.0 && cap.m[0].margin == 0.0 && cap.m[0].logp_rejected == 0.0);
        load_model(&got, out);
        snprintf(name, sizeof name, "sft, micro-batch %d", mbs[k]);
        check_sgd_update(&pol, &got, LR3, name);
        model_free(&got);
    }
    /* evaluation on the training rows */
    path_in(out, sizeof out, "eval");
    base_config(&c, pdir, data, out, OPTIM_ADAMW, 1e-2, NS4, 3, 3);
    c.mode = TRAIN_SFT;
    c.eval_path = data;
    c.eval_every = 1;
    run_ok(&c, &cap);
    ck_assert_int_eq(cap.n_evals, 3);
    check_eval_is_next_step(&cap, 1);
    ck_assert_msg(cap.ev[2].loss < cap.m[0].loss - 0.1, "eval loss %g, first %g", cap.ev[2].loss, cap.m[0].loss);
    model_free(&pol);
}
END_TEST

/* SFT learns: AdamW lr 1e-2, 30 steps on the 4 rows (all of them each step), the
 * completion NLL falls well below half of its start (measured: see the verbose
 * line); a checkpoint of an SFT run does not resume as DPO. */
START_TEST(test_sft_learns) {
    char pdir[256], data[256], out[256];
    train_config c;
    capture cap;
    train_callbacks cb;
    dpo_err e;
    path_in(pdir, sizeof pdir, "policy");
    path_in(data, sizeof data, "sft.jsonl");
    path_in(out, sizeof out, "out");
    make_model_dir(pdir, 5, 1.0f);
    write_sft(data, sft4, NS4);
    base_config(&c, pdir, data, out, OPTIM_ADAMW, 1e-2, NS4, NS4, E2E_STEPS);
    c.mode = TRAIN_SFT;
    run_ok(&c, &cap);
    if (getenv("DPO_TEST_VERBOSE"))
        fprintf(stderr, "sft: step 1 loss %.6g, step %d loss %.6g\n", cap.m[0].loss, E2E_STEPS,
                cap.m[E2E_STEPS - 1].loss);
    /* a random model: every token near -ln 50257 */
    ck_assert_msg(fabs(cap.m[0].loss - log(50257.0)) < 0.5, "first loss %g", cap.m[0].loss);
    ck_assert_msg(cap.m[E2E_STEPS - 1].loss < 0.5 * cap.m[0].loss, "loss %g -> %g", cap.m[0].loss,
                  cap.m[E2E_STEPS - 1].loss);
    /* resuming an SFT checkpoint as DPO is refused */
    base_config(&c, pdir, data, out, OPTIM_ADAMW, 1e-2, NS4, NS4, E2E_STEPS + 1);
    c.resume_dir = out;
    memset(&cb, 0, sizeof cb);
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(train_run(&c, &cb, &e), -1);
    ck_assert_msg(strstr(e.msg, "dpo sft run"), "%s", e.msg);
}
END_TEST


/* ======================================================================== */
/* 11. checkpoints: every state a killed save can leave resumes bit-identical */
/* ======================================================================== */

static const char *const ckpt_names[] = {"trainer_state.json", "config.json", "model.safetensors",
                                         "vocab.json", "merges.txt", "optimizer.safetensors"};

/* copy the checkpoint src into dst (created); with partial, without its
 * trainer_state.json and with a killed writer's temporary beside the weights */
static void copy_ckpt(const char *src, const char *dst, int partial) {
    char a[512], b[512];
    size_t i, n;
    unsigned char *buf;
    ck_assert_int_eq(mkdir(dst, 0777), 0);
    for (i = partial ? 1 : 0; i < sizeof ckpt_names / sizeof ckpt_names[0]; i++) {
        snprintf(a, sizeof a, "%s/%s", src, ckpt_names[i]);
        snprintf(b, sizeof b, "%s/%s", dst, ckpt_names[i]);
        buf = testutil_read_bytes(a, &n);
        testutil_write_bytes(b, buf, n);
        free(buf);
    }
    if (partial) {
        snprintf(b, sizeof b, "%s/model.safetensors.tmp.00000000deadbeef", dst);
        testutil_write_bytes(b, "half", 4);
    }
}

static void note_capture(void *ctx, const char *msg) { snprintf((char *)ctx, 512, "%s", msg); }

/* The save protocol is: write OUT.tmp (trainer_state.json last), OUT.old removed,
 * OUT -> OUT.old, OUT.tmp -> OUT, OUT.old removed (trainer_state.json first). A
 * process killed anywhere in it leaves one of the states below, built here from
 * the checkpoints of 2- and 3-step runs (k2, k3; "~": incomplete). Each is
 * resumed to step 4 and must end with the uninterrupted run's exact bytes,
 * with nothing left in OUT.tmp or OUT.old. */
START_TEST(test_resume_every_crash_state) {
    static const struct {
        int out, tmp, old; /* 0 missing, 2 / 3 the checkpoint of that step, -2 / -3 incomplete */
        const char *note;  /* what the run must say, or NULL */
    } states[] = {
        {2, -3, 0, NULL},                /* killed while writing OUT.tmp */
        {2, 3, 0, "step 3"},             /* OUT.tmp complete, not yet swapped */
        {2, 3, -2, "step 3"},            /* ... while removing an older OUT.old */
        {0, 3, 2, "step 3"},             /* after OUT -> OUT.old */
        {3, 0, 2, NULL},                 /* after OUT.tmp -> OUT */
        {3, 0, -2, NULL},                /* while removing OUT.old */
        {0, 3, 0, "step 3"},             /* the first save, not yet renamed */
        {0, -3, 0, "starting from step 0"}, /* killed during the first save */
        {0, 0, 0, "starting from step 0"},  /* killed before it */
        {-2, 0, 3, "step 3"},            /* recovery promoting OUT.old, killed while removing OUT */
        {0, 0, 3, "step 3"},
    };
    char pdir[256], data[256], full[256], k2[256], k3[256], out[256], tmp[300], old[300], a[512], b[512];
    char note[512];
    train_config c;
    train_callbacks cb;
    dpo_err e;
    size_t i;
    path_in(pdir, sizeof pdir, "policy");
    path_in(data, sizeof data, "pairs.jsonl");
    path_in(full, sizeof full, "full");
    path_in(k2, sizeof k2, "k2");
    path_in(k3, sizeof k3, "k3");
    path_in(out, sizeof out, "run");
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    snprintf(old, sizeof old, "%s.old", out);
    make_model_dir(pdir, 3, 10.0f);
    write_pairs(data, pairs4, NP4);
    memset(&cb, 0, sizeof cb);
    base_config(&c, pdir, data, full, OPTIM_ADAMW, 1e-2, 2, 1, 4);
    ck_assert_msg(train_run(&c, &cb, &e) == 0, "%s", e.msg);
    c.steps = 2;
    c.out_dir = k2;
    ck_assert_msg(train_run(&c, &cb, &e) == 0, "%s", e.msg);
    c.steps = 3;
    c.out_dir = k3;
    ck_assert_msg(train_run(&c, &cb, &e) == 0, "%s", e.msg);
    cb.note = note_capture;
    cb.ctx = note;
    for (i = 0; i < sizeof states / sizeof states[0]; i++) {
        const int where[3] = {states[i].out, states[i].tmp, states[i].old};
        const char *dirs[3] = {out, tmp, old};
        int k;
        for (k = 0; k < 3; k++) {
            testutil_remove_tree(dirs[k]);
            if (where[k]) copy_ckpt(abs(where[k]) == 2 ? k2 : k3, dirs[k], where[k] < 0);
        }
        base_config(&c, pdir, data, out, OPTIM_ADAMW, 1e-2, 2, 1, 4);
        c.resume_dir = out;
        note[0] = '\0';
        ck_assert_msg(train_run(&c, &cb, &e) == 0, "state %zu: %s", i, e.msg);
        if (states[i].note) ck_assert_msg(strstr(note, states[i].note), "state %zu: note '%s'", i, note);
        else ck_assert_msg(note[0] == '\0', "state %zu: note '%s'", i, note);
        for (k = 2; k < 6; k++) {
            snprintf(a, sizeof a, "%s/%s", full, ckpt_names[k]);
            snprintf(b, sizeof b, "%s/%s", out, ckpt_names[k]);
            ck_assert_msg(same_file(a, b), "state %zu: %s differs from the uninterrupted run's", i, ckpt_names[k]);
        }
        ck_assert_msg(!path_exists(tmp) && !path_exists(old), "state %zu: OUT.tmp or OUT.old left behind", i);
    }
    /* a directory of dpo's names without a valid trainer_state.json, with nothing complete beside it, is
       not a checkpoint: refused and left as it is (a model directory) */
    testutil_remove_tree(out);
    copy_ckpt(k2, out, 1);
    base_config(&c, pdir, data, out, OPTIM_ADAMW, 1e-2, 2, 1, 4);
    c.resume_dir = out;
    ck_assert_int_eq(train_run(&c, &cb, &e), -1);
    ck_assert_msg(strstr(e.msg, "not a checkpoint"), "%s", e.msg);
    snprintf(a, sizeof a, "%s/model.safetensors", out);
    ck_assert(path_exists(a));
    /* a checkpoint past this run's steps */
    testutil_remove_tree(out);
    copy_ckpt(k3, out, 0);
    base_config(&c, pdir, data, out, OPTIM_ADAMW, 1e-2, 2, 1, 2);
    c.resume_dir = out;
    ck_assert_int_eq(train_run(&c, &cb, &e), -1);
    ck_assert_msg(strstr(e.msg, "past this run's 2 steps"), "%s", e.msg);
}
END_TEST

/* --out is checked before any work; nothing of a refused directory changes */
START_TEST(test_out_refused) {
    char pdir[256], data[256], u[256], notes[512], a[512];
    train_config c;
    dpo_err e;
    size_t n;
    unsigned char *buf;
    path_in(pdir, sizeof pdir, "policy");
    path_in(data, sizeof data, "pairs.jsonl");
    path_in(u, sizeof u, "u");
    make_model_dir(pdir, 3, 1.0f);
    write_pairs(data, pairs4, NP4);
    ck_assert_int_eq(mkdir(u, 0777), 0);
    snprintf(notes, sizeof notes, "%s/notes.txt", u);
    write_text(notes, "keep");
    snprintf(a, sizeof a, "%s/config.json", u);
    write_text(a, "{}");
    base_config(&c, pdir, data, u, OPTIM_SGD, 0.1, 2, 1, 1);
    ck_assert_int_eq(train_check_out(&c, &e), -1);
    ck_assert_msg(strstr(e.msg, "notes.txt"), "%s", e.msg);
    ck_assert_int_eq(train_run(&c, NULL, &e), -1);
    buf = testutil_read_bytes(notes, &n);
    ck_assert(n == 4 && memcmp(buf, "keep", 4) == 0);
    free(buf);
    ck_assert(path_exists(a));
    snprintf(a, sizeof a, "%s.old", u);
    ck_assert(!path_exists(a));
    /* the model, reference and tokenizer directories */
    c.out_dir = pdir;
    ck_assert_int_eq(train_check_out(&c, &e), -1);
    ck_assert_msg(strstr(e.msg, "--model"), "%s", e.msg);
    c.model_dir = TOK_DIR;
    c.ref_dir = pdir;
    ck_assert_int_eq(train_check_out(&c, &e), -1);
    ck_assert_msg(strstr(e.msg, "--ref"), "%s", e.msg);
    c.ref_dir = NULL;
    c.tokenizer_dir = pdir;
    ck_assert_int_eq(train_check_out(&c, &e), -1);
    ck_assert_msg(strstr(e.msg, "--tokenizer"), "%s", e.msg);
    /* the model as OUT.old: the first save would remove it */
    path_in(u, sizeof u, "run");
    path_in(a, sizeof a, "run.old");
    ck_assert_int_eq(rename(pdir, a), 0);
    base_config(&c, a, data, u, OPTIM_SGD, 0.1, 2, 1, 1);
    ck_assert_int_eq(train_check_out(&c, &e), -1);
    ck_assert_msg(strstr(e.msg, "run.old: is the --model directory"), "%s", e.msg);
}
END_TEST

/* a callback that fails (the metrics log could not be written) stops the run
 * with its message, and nothing is saved after the last checkpoint */
static int step_fails(void *ctx, const train_metrics *m, long total, dpo_err *e) {
    (void)ctx;
    (void)total;
    return m->step == 2 ? dpo_errf(e, "log.jsonl: cannot write the metrics log: No space left on device") : 0;
}

START_TEST(test_callback_stops) {
    char pdir[256], data[256], out[256];
    train_config c;
    train_callbacks cb;
    dpo_err e;
    path_in(pdir, sizeof pdir, "policy");
    path_in(data, sizeof data, "pairs.jsonl");
    path_in(out, sizeof out, "out");
    make_model_dir(pdir, 3, 1.0f);
    write_pairs(data, pairs4, NP4);
    memset(&cb, 0, sizeof cb);
    cb.step = step_fails;
    base_config(&c, pdir, data, out, OPTIM_SGD, 0.1, 2, 1, 3);
    ck_assert_int_eq(train_run(&c, &cb, &e), -1);
    ck_assert_msg(strstr(e.msg, "log.jsonl: cannot write"), "%s", e.msg);
    ck_assert(!path_exists(out));
}
END_TEST

/* the truncation rule on counts whose sum overflows an int (2^30 + 2^30): the
 * row is cut, not taken as short (before, the sum wrapped negative) */
START_TEST(test_truncate_huge_counts) {
    int np = 1 << 30, nc = 1 << 30, nr = 3;
    size_t skip;
    ck_assert_int_eq(data_truncate_lengths(&np, &skip, &nc, &nr, 512, 256), 1);
    ck_assert_int_eq(np, 256);
    ck_assert_uint_eq(skip, (size_t)(1 << 30) - 256);
    ck_assert_int_eq(nc, 256);
    ck_assert_int_eq(nr, 3);
    np = 10, nc = 5, nr = 0;
    ck_assert_int_eq(data_truncate_lengths(&np, &skip, &nc, &nr, 512, 256), 0);
    ck_assert(np == 10 && nc == 5 && nr == 0 && skip == 0);
}
END_TEST

/* ======================================================================== */
/* train_step: train_run's step on a batch in memory (dpo bench), profiled    */
/* ======================================================================== */

/* One pair (so that train_run's shuffled order is the pair itself): train_step
 * with the pair in memory, the models loaded here and profiling on ends with
 * the very bits train_run saves after its first step, and the same metrics; the
 * profile adds up to no more than the step, and the reference has no backward. */
START_TEST(test_train_step_is_train_run_step) {
    char pdir[256], rdir[256], data[256], out[256];
    train_config c;
    capture cap;
    model pol, ref, got;
    model_prof pp, rp;
    optim_state opt;
    data_set d;
    train_metrics m;
    dpo_err e;
    double total = 0.0;
    int rows[1] = {0}, bad[1] = {1}, k;
    policy_ref_pairs(pdir, rdir, data);
    write_pairs(data, pairs4, 1);
    path_in(out, sizeof out, "out");
    base_config(&c, pdir, data, out, OPTIM_RMSPROP, 1e-3, 1, 1, 1);
    c.ref_dir = rdir;
    run_ok(&c, &cap);

    load_model(&pol, pdir);
    load_model(&ref, rdir);
    model_set_no_grad(&ref, 1);
    ck_assert_msg(data_load_pairs(&d, data, g_tok, EOS, c.max_len, c.max_prompt_len, &e) == 0, "%s", e.msg);
    ck_assert_msg(optim_init(&opt, &c.opt, pol.num_params, &e) == 0, "%s", e.msg);
    /* refused: no reference for an objective that needs one, a row outside the data */
    ck_assert_int_eq(train_step(&c, &pol, NULL, &opt, &d, rows, &m, &e), -1);
    ck_assert_msg(strstr(e.msg, "needs the reference"), "%s", e.msg);
    ck_assert_int_eq(train_step(&c, &pol, &ref, &opt, &d, bad, &m, &e), -1);
    ck_assert_msg(strstr(e.msg, "row 1 is outside the data's 1 rows"), "%s", e.msg);
    ck_assert_int_eq(opt.step, 0);

    memset(&pp, 0, sizeof pp);
    memset(&rp, 0, sizeof rp);
    pol.prof = &pp;
    ref.prof = &rp;
    ck_assert_msg(train_step(&c, &pol, &ref, &opt, &d, rows, &m, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(opt.step, 1);
    ck_assert_int_eq(m.step, 1);
    ck_assert(m.loss == cap.m[0].loss && m.grad_norm == cap.m[0].grad_norm && m.margin == cap.m[0].margin);
    load_model(&got, out);
    ck_assert_uint_eq(got.num_params, pol.num_params);
    ck_assert_msg(memcmp(got.params_mem, pol.params_mem, pol.num_params * sizeof(float)) == 0,
                  "train_step (profiled) and train_run's step differ");

    for (k = 0; k < MODEL_PROF_N; k++) {
        ck_assert(pp.fwd[k] >= 0.0 && pp.bwd[k] >= 0.0 && rp.fwd[k] >= 0.0);
        ck_assert(rp.bwd[k] == 0.0);
        total += pp.fwd[k] + pp.bwd[k] + rp.fwd[k];
    }
    ck_assert(pp.fwd[MODEL_PROF_QKV] > 0.0 && pp.bwd[MODEL_PROF_QKV] > 0.0 && rp.fwd[MODEL_PROF_HEAD] > 0.0);
    ck_assert_msg(total > 0.0 && total + m.optim_seconds <= m.seconds, "profile %g + optimizer %g s, step %g s",
                  total, m.optim_seconds, m.seconds);
    ck_assert(m.optim_seconds > 0.0);
    model_free(&got);
    model_free(&pol);
    model_free(&ref);
    optim_free(&opt);
    data_free(&d);
}
END_TEST

/* ======================================================================== */

static Suite *make_suite(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_data_tokenization);
    tcase_add_test(tc, test_data_truncation);
    tcase_add_test(tc, test_data_malformed);
    tcase_add_test(tc, test_first_step_ln2);
    tcase_add_test(tc, test_sgd_step_matches_gradient);
    tcase_add_test(tc, test_gradient_finite_differences);
    tcase_add_test(tc, test_micro_batches);
    tcase_add_test(tc, test_logps_response_only);
    tcase_add_test(tc, test_threads_bit_identical);
    tcase_add_test(tc, test_end_to_end_losses);
    tcase_add_test(tc, test_nonfinite_stops);
    tcase_add_test(tc, test_eval);
    tcase_add_test(tc, test_sft_data);
    tcase_add_test(tc, test_sft_data_malformed);
    tcase_add_test(tc, test_sft_step);
    tcase_add_test(tc, test_sft_learns);
    tcase_add_test(tc, test_resume_every_crash_state);
    tcase_add_test(tc, test_out_refused);
    tcase_add_test(tc, test_callback_stops);
    tcase_add_test(tc, test_truncate_huge_counts);
    tcase_add_test(tc, test_train_step_is_train_run_step);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(make_suite()); }
