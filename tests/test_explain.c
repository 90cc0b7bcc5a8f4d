/* tests/test_explain.c - Check suite for explain.c (dpo explain): the per-token
 * table of a row against computations done here independently, and the SVG
 * picture against a small XML well-formedness checker (tests/testutil.h).
 *
 *   - the tokens' shares sum to the implicit reward computed from data_logps
 *     (the path dpo logp prints), the response sums equal data_logps bit for bit,
 *     the margin and the weight sigmoid(-margin) follow; policy = reference gives
 *     zero shares and weight 1/2 exactly;
 *   - every response token is where it belongs: the ids are enc(response) ++ [eos],
 *     each log-prob equals that of a forward pass over the sequence built here by
 *     hand, the prompt is enc(prompt) (or [eos] when empty);
 *   - SFT rows ({"prompt","completion"}, {"text"}) and texts given directly
 *     (data_from_texts), truncation (the cut response has no end-of-text), and
 *     every error: a row outside the data, bad beta, models that differ;
 *   - explain_visible on control bytes, backslashes, invalid UTF-8, bidi overrides;
 *   - the SVG: tags balanced, every attribute quoted, every & an entity, no raw
 *     < or > in text, valid UTF-8 without control characters, for texts holding
 *     < & " ' > and invalid UTF-8, and for hand-made tokens that were never made
 *     visible.
 *
 * Models are tiny (2 layers, 2 heads, width 16, context 32) with GPT-2's own
 * tokenizer (data/gpt2), so the suite runs from the project root as make test
 * runs it. Policy and reference are model_init_random with two seeds, their wte
 * scaled by 10 so that their log-probs differ by whole nats. One thread (see
 * test_train.c: tiny models and busy cores make OpenMP barriers slow). */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "data.h"
#include "explain.h"
#include "model.h"
#include "objective.h"
#include "tokenizer.h"
#include "unicode.h"
#include "util.h"

#define TOK_DIR "data/gpt2"
#define EOS 50256
#define MAXTOK 64
#define BETA 0.1

static const model_config tiny_cfg = {2, 2, 16, 32, 50257, 1e-5, EOS, 0};

static tok_tokenizer *g_tok;
static model g_pol, g_ref;
static int g_threads_before;

/* a tiny GPT-2, wte scaled by 10 (so that log-probs spread over several nats) */
static void make_model(model *m, const model_config *c, uint64_t seed) {
    dpo_err e;
    size_t i, n = (size_t)c->vocab_size * (size_t)c->n_embd;
    ck_assert_msg(model_create(m, c, &e) == 0, "%s", e.msg);
    model_init_random(m, seed);
    for (i = 0; i < n; i++) m->params.t[P_WTE][i] *= 10.0f;
    model_set_no_grad(m, 1);
}

static void suite_setup(void) {
    dpo_err e;
    g_threads_before = util_threads();
    util_set_threads(1);
    ck_assert_msg(tok_load(&g_tok, TOK_DIR, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(tok_eot_id(g_tok), EOS);
    make_model(&g_pol, &tiny_cfg, 11);
    make_model(&g_ref, &tiny_cfg, 22);
}

static void suite_teardown(void) {
    tok_free(g_tok);
    model_free(&g_pol);
    model_free(&g_ref);
    util_set_threads(g_threads_before);
}

static void path_in(char *out, size_t cap, const char *name) {
    ck_assert((size_t)snprintf(out, cap, "%s/%s", tmp_root, name) < cap);
}

static void write_text(const char *path, const char *text) { testutil_write_bytes(path, text, strlen(text)); }

/* ids of s[0..n) (fresh array, *count tokens) */
static int *enc_n(const char *s, size_t n, size_t *count) {
    int *ids = NULL;
    size_t cap = 0;
    dpo_err e;
    *count = 0;
    ck_assert_msg(tok_encode(g_tok, s, n, &ids, count, &cap, &e) == 0, "%s", e.msg);
    return ids;
}

typedef struct {
    const char *prompt, *chosen, *rejected; /* JSON-escaped as written into the file */
    const char *raw_prompt, *raw_chosen, *raw_rejected; /* the strings the JSON decodes to */
} pair_text;

/* four pairs: an empty prompt, characters JSON and XML treat specially, a newline */
static const pair_text pairs4[] = {
    {"The movie was", " wonderful and moving.", " dull.", "The movie was", " wonderful and moving.", " dull."},
    {"I think <the> food", " tasted \\\"great\\\" & fresh", " was cold\\nand bland", "I think <the> food",
     " tasted \"great\" & fresh", " was cold\nand bland"},
    {"", "Yes.", "No, never.", "", "Yes.", "No, never."},
    {"Weather today:", " sunny", " rain all day long", "Weather today:", " sunny", " rain all day long"},
};
#define NP4 4

static void write_pairs(const char *path) {
    char buf[4096];
    size_t off = 0;
    int i;
    for (i = 0; i < NP4; i++) {
        int k = snprintf(buf + off, sizeof buf - off, "{\"prompt\": \"%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n",
                         pairs4[i].prompt, pairs4[i].chosen, pairs4[i].rejected);
        ck_assert(k > 0 && (size_t)k < sizeof buf - off);
        off += (size_t)k;
    }
    testutil_write_bytes(path, buf, off);
}

static void load_pairs(data_set *d, const char *path, int max_len, int max_prompt_len) {
    dpo_err e;
    data_fit_lengths(&max_len, &max_prompt_len, tiny_cfg.n_ctx);
    ck_assert_msg(data_load_pairs(d, path, g_tok, EOS, max_len, max_prompt_len, &e) == 0, "%s", e.msg);
}

/* The bound on the difference between two ways of summing the same float
 * log-probs in double: sum_t beta (a_t - b_t) (explain's shares, added here) and
 * beta (sum_t a_t - sum_t b_t) (data_logps' sums). Each of the n additions, the
 * subtractions and the products rounds once, by at most half an ulp of its
 * result, so the two differ by at most about (n + 3)/2 * DBL_EPSILON * beta *
 * sum_t (|a_t| + |b_t|); we allow (n + 2) * DBL_EPSILON times it (a wrong
 * token, about a nat here, would miss by 1e-2, ten orders of magnitude more). */
static double sum_tolerance(const explain_response *x, double beta) {
    double mag = 0.0;
    int j;
    for (j = 0; j < x->n; j++) mag += fabs(x->tok[j].logp) + fabs(x->tok[j].ref_logp);
    return (double)(x->n + 2) * DBL_EPSILON * beta * mag;
}

/* the shares of a response, summed here in token order */
static double sum_shares(const explain_response *x) {
    double s = 0.0;
    int j;
    for (j = 0; j < x->n; j++) s += x->tok[j].reward;
    return s;
}

/* ======================================================================== */
/* the numbers                                                               */
/* ======================================================================== */

START_TEST(test_sums_match_data_logps) {
    char path[256];
    data_set d;
    double lp[2 * NP4], rlp[2 * NP4];
    dpo_err e;
    int i, k;
    path_in(path, sizeof path, "pairs.jsonl");
    write_pairs(path);
    load_pairs(&d, path, DATA_DEFAULT_MAX_LEN, DATA_DEFAULT_MAX_PROMPT_LEN);
    ck_assert_int_eq(d.n_rows, NP4);
    /* dpo logp's path: every row packed 3 at a time */
    ck_assert_msg(data_logps(&g_pol, &d, 3, lp, NULL, NULL, &e) == 0, "%s", e.msg);
    ck_assert_msg(data_logps(&g_ref, &d, 3, rlp, NULL, NULL, &e) == 0, "%s", e.msg);
    for (i = 0; i < NP4; i++) {
        explain_result r;
        double want[2], tol[2], want_margin, want_weight;
        ck_assert_msg(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, i, BETA, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(r.n_resp, 2);
        ck_assert_str_eq(r.resp[0].name, "chosen");
        ck_assert_str_eq(r.resp[1].name, "rejected");
        ck_assert_int_eq(r.truncated, 0);
        for (k = 0; k < 2; k++) {
            const explain_response *x = &r.resp[k];
            /* a sequence's log-probs are the same alone or packed, so the sums are equal bit for bit */
            ck_assert_msg(x->logp == lp[2 * i + k] && x->ref_logp == rlp[2 * i + k],
                          "row %d response %d: %.17g %.17g vs data_logps %.17g %.17g", i, k, x->logp, x->ref_logp,
                          lp[2 * i + k], rlp[2 * i + k]);
            want[k] = BETA * (lp[2 * i + k] - rlp[2 * i + k]);
            tol[k] = sum_tolerance(x, BETA);
            ck_assert_msg(fabs(sum_shares(x) - want[k]) <= tol[k], "row %d response %d: shares sum to %.17g, want %.17g (tol %g)",
                          i, k, sum_shares(x), want[k], tol[k]);
            ck_assert_msg(fabs(x->reward - want[k]) <= tol[k], "row %d: reward %.17g vs %.17g", i, x->reward, want[k]);
            ck_assert(fabs(x->reward) > 1e-3); /* the two models really differ */
        }
        /* margin beta h = r_c - r_r; weight sigmoid(-beta h) = 1 / (1 + e^(beta h)) */
        want_margin = want[0] - want[1];
        want_weight = 1.0 / (1.0 + exp(want_margin));
        ck_assert_msg(fabs(r.margin - want_margin) <= tol[0] + tol[1], "margin %.17g vs %.17g", r.margin, want_margin);
        /* |d sigmoid| <= |d margin| / 4, plus a few roundings of the two formulas */
        ck_assert_msg(fabs(r.weight - want_weight) <= (tol[0] + tol[1]) / 4 + 4 * DBL_EPSILON,
                      "weight %.17g vs %.17g", r.weight, want_weight);
        explain_free(&r);
        ck_assert_ptr_null(r.tok_pool);
    }
    data_free(&d);
}
END_TEST

START_TEST(test_policy_is_reference) {
    char path[256];
    data_set d;
    explain_result r;
    dpo_err e;
    int k, j;
    path_in(path, sizeof path, "pairs.jsonl");
    write_pairs(path);
    load_pairs(&d, path, DATA_DEFAULT_MAX_LEN, DATA_DEFAULT_MAX_PROMPT_LEN);
    ck_assert_msg(explain_row(&r, &g_pol, &g_pol, g_tok, EOS, &d, 1, BETA, &e) == 0, "%s", e.msg);
    for (k = 0; k < 2; k++) {
        for (j = 0; j < r.resp[k].n; j++) ck_assert(r.resp[k].tok[j].reward == 0.0);
        ck_assert(r.resp[k].reward == 0.0);
    }
    ck_assert(r.margin == 0.0 && r.weight == 0.5 && r.scale == 0.0);
    explain_free(&r);
    data_free(&d);
}
END_TEST

/* log p of each target of prompt ++ response ++ [eos], forwarded alone: the
 * sequence built here by hand, token j predicting token j + 1 */
static void forward_alone(model *m, const int *full, int n, int n_prompt, float *logp) {
    int tok[MAXTOK], tgt[MAXTOK], j, len = n - 1;
    dpo_err e;
    for (j = 0; j < len; j++) {
        tok[j] = full[j];
        tgt[j] = j + 1 >= n_prompt ? full[j + 1] : -1;
    }
    ck_assert_msg(model_forward(m, logp, tok, tgt, &len, 1, &e) == 0, "%s", e.msg);
}

START_TEST(test_tokens_in_place) {
    char path[256];
    data_set d;
    dpo_err e;
    int i, k, j;
    path_in(path, sizeof path, "pairs.jsonl");
    write_pairs(path);
    load_pairs(&d, path, DATA_DEFAULT_MAX_LEN, DATA_DEFAULT_MAX_PROMPT_LEN);
    for (i = 0; i < NP4; i++) {
        explain_result r;
        size_t np, nr;
        int *p = enc_n(pairs4[i].raw_prompt, strlen(pairs4[i].raw_prompt), &np);
        int full[MAXTOK], n_prompt;
        ck_assert_msg(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, i, BETA, &e) == 0, "%s", e.msg);
        /* the prompt: enc(prompt), or [eos] when it is empty */
        n_prompt = np ? (int)np : 1;
        ck_assert_int_eq(r.n_prompt, n_prompt);
        for (j = 0; j < n_prompt; j++) {
            full[j] = np ? p[j] : EOS;
            ck_assert_int_eq(r.prompt[j].id, full[j]);
        }
        ck_assert_int_eq(r.prompt[0].eos, np == 0);
        for (k = 0; k < 2; k++) {
            const char *txt = k ? pairs4[i].raw_rejected : pairs4[i].raw_chosen;
            int *ids = enc_n(txt, strlen(txt), &nr), n;
            const explain_response *x = &r.resp[k];
            float logp[MAXTOK], ref_logp[MAXTOK];
            /* the response's tokens and the end-of-text that ends it */
            ck_assert_int_eq(x->n, (int)nr + 1);
            for (j = 0; j < (int)nr; j++) {
                ck_assert_int_eq(x->tok[j].id, ids[j]);
                ck_assert_int_eq(x->tok[j].eos, 0);
            }
            ck_assert_int_eq(x->tok[nr].id, EOS);
            ck_assert_int_eq(x->tok[nr].eos, 1);
            ck_assert_str_eq(x->tok[nr].text, "<|endoftext|>");
            ck_assert_int_eq(x->cut, 0);
            /* each log-prob is the one that predicts that very token */
            n = n_prompt;
            for (j = 0; j < (int)nr; j++) full[n++] = ids[j];
            full[n++] = EOS;
            ck_assert_int_le(n, MAXTOK);
            forward_alone(&g_pol, full, n, n_prompt, logp);
            forward_alone(&g_ref, full, n, n_prompt, ref_logp);
            for (j = 0; j < x->n; j++) {
                ck_assert_msg(x->tok[j].logp == (double)logp[n_prompt - 1 + j] &&
                                  x->tok[j].ref_logp == (double)ref_logp[n_prompt - 1 + j],
                              "row %d response %d token %d: %g %g vs alone %g %g", i, k, j, x->tok[j].logp,
                              x->tok[j].ref_logp, logp[n_prompt - 1 + j], ref_logp[n_prompt - 1 + j]);
                ck_assert(x->tok[j].reward == BETA * (x->tok[j].logp - x->tok[j].ref_logp));
            }
            free(ids);
        }
        /* the newline of row 2's rejected response: its token says so, visibly */
        if (i == 1) {
            int nl = 0;
            for (j = 0; j < r.resp[1].n; j++) nl += r.resp[1].tok[j].newline;
            ck_assert_int_eq(nl, 1);
        }
        free(p);
        explain_free(&r);
    }
    data_free(&d);
}
END_TEST

START_TEST(test_sft_rows_and_texts) {
    char path[256];
    data_set d, one;
    double lp[2], rlp[2];
    explain_result r, r1;
    dpo_err e;
    int j;
    path_in(path, sizeof path, "sft.jsonl");
    write_text(path, "{\"prompt\": \"The movie was\", \"completion\": \" great & <fun>\"}\n\n{\"text\": \"A fine day.\"}\n");
    ck_assert_msg(data_load_any(&d, path, g_tok, EOS, 32, 16, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(d.sft, 1);
    ck_assert_int_eq(d.n_rows, 2);
    ck_assert_int_eq(d.rows[1].line, 3);
    ck_assert_msg(data_logps(&g_pol, &d, 2, lp, NULL, NULL, &e) == 0, "%s", e.msg);
    ck_assert_msg(data_logps(&g_ref, &d, 2, rlp, NULL, NULL, &e) == 0, "%s", e.msg);
    for (j = 0; j < 2; j++) {
        ck_assert_msg(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, j, BETA, &e) == 0, "%s", e.msg);
        ck_assert_int_eq(r.n_resp, 1);
        ck_assert_str_eq(r.resp[0].name, "completion");
        ck_assert(r.resp[0].logp == lp[j] && r.resp[0].ref_logp == rlp[j]);
        ck_assert(fabs(sum_shares(&r.resp[0]) - BETA * (lp[j] - rlp[j])) <= sum_tolerance(&r.resp[0], BETA));
        ck_assert(r.margin == 0.0 && r.weight == 0.0);
        if (j == 1) ck_assert(r.n_prompt == 1 && r.prompt[0].eos); /* {"text"}: the empty prompt [eos] */
        if (j == 0) {
            /* the same row from texts given directly: the same tokens and numbers */
            ck_assert_msg(data_from_texts(&one, "The movie was", 13, " great & <fun>", 14, g_tok, EOS, 32, 16, &e) == 0,
                          "%s", e.msg);
            ck_assert(one.n_rows == 1 && one.sft == 1);
            ck_assert_msg(explain_row(&r1, &g_pol, &g_ref, g_tok, EOS, &one, 0, BETA, &e) == 0, "%s", e.msg);
            ck_assert_int_eq(r1.n_prompt, r.n_prompt);
            ck_assert_int_eq(r1.resp[0].n, r.resp[0].n);
            ck_assert(r1.resp[0].reward == r.resp[0].reward);
            ck_assert_int_eq(r1.resp[0].tok[1].id, r.resp[0].tok[1].id);
            explain_free(&r1);
            data_free(&one);
        }
        explain_free(&r);
    }
    data_free(&d);
    /* a pairs file is read as pairs; a file that mixes the kinds names the line */
    path_in(path, sizeof path, "pairs.jsonl");
    write_pairs(path);
    ck_assert_msg(data_load_any(&d, path, g_tok, EOS, 32, 16, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(d.sft, 0);
    data_free(&d);
    path_in(path, sizeof path, "mixed.jsonl");
    write_text(path, "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"a\", \"completion\": \"b\"}\n");
    ck_assert_int_eq(data_load_any(&d, path, g_tok, EOS, 32, 16, &e), -1);
    ck_assert_msg(strstr(e.msg, "line 2: missing key \"chosen\"") != NULL, "%s", e.msg);
    ck_assert_ptr_null(d.rows);
}
END_TEST

START_TEST(test_truncation) {
    data_set d;
    double lp, rlp;
    explain_result r;
    dpo_err e;
    const char *prompt = "one two three four five six seven eight nine ten";
    const char *resp = " eleven twelve thirteen fourteen fifteen sixteen";
    /* max_len 10, max_prompt_len 5: the prompt keeps its last 5 of 10 tokens, the response 5 of 7 */
    ck_assert_msg(data_from_texts(&d, prompt, strlen(prompt), resp, strlen(resp), g_tok, EOS, 10, 5, &e) == 0, "%s",
                  e.msg);
    ck_assert_int_eq(d.n_truncated, 1);
    ck_assert_msg(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, 0, BETA, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(r.truncated, 1);
    ck_assert_int_eq(r.n_prompt, 5);
    ck_assert_int_eq(r.resp[0].n, 5);
    ck_assert_int_eq(r.resp[0].cut, 1);
    ck_assert_int_eq(r.resp[0].tok[4].eos, 0);
    ck_assert_msg(data_logps(&g_pol, &d, 1, &lp, NULL, NULL, &e) == 0, "%s", e.msg);
    ck_assert_msg(data_logps(&g_ref, &d, 1, &rlp, NULL, NULL, &e) == 0, "%s", e.msg);
    ck_assert(r.resp[0].logp == lp && r.resp[0].ref_logp == rlp);
    ck_assert(fabs(sum_shares(&r.resp[0]) - BETA * (lp - rlp)) <= sum_tolerance(&r.resp[0], BETA));
    explain_free(&r);
    data_free(&d);
}
END_TEST

START_TEST(test_errors) {
    char path[256];
    data_set d;
    explain_result r;
    model other;
    model_config c;
    dpo_err e;
    path_in(path, sizeof path, "pairs.jsonl");
    write_pairs(path);
    load_pairs(&d, path, DATA_DEFAULT_MAX_LEN, DATA_DEFAULT_MAX_PROMPT_LEN);
    ck_assert_int_eq(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, NP4, BETA, &e), -1);
    ck_assert_msg(strstr(e.msg, "row 5 is not in the data, which has 4 rows") != NULL, "%s", e.msg);
    ck_assert_ptr_null(r.tok_pool);
    ck_assert_int_eq(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, -1, BETA, &e), -1);
    ck_assert_int_eq(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, 0, 0.0, &e), -1);
    ck_assert_msg(strstr(e.msg, "beta must be") != NULL, "%s", e.msg);
    ck_assert_int_eq(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, 0, NAN, &e), -1);
    ck_assert_int_eq(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, 0, INFINITY, &e), -1);
    data_free(&d);
    ck_assert_msg(explain_check_models(&g_pol, &g_ref, g_tok, &e) == 0, "%s", e.msg);
    /* a reference of another shape, another vocabulary; a tokenizer larger than the model */
    c = tiny_cfg;
    c.n_layer = 1;
    ck_assert_msg(model_create(&other, &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(explain_check_models(&g_pol, &other, g_tok, &e), -1);
    ck_assert_msg(strstr(e.msg, "the reference's n_layer (1) differs from the policy's (2)") != NULL, "%s", e.msg);
    model_free(&other);
    c = tiny_cfg;
    c.vocab_size = 50304;
    ck_assert_msg(model_create(&other, &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(explain_check_models(&g_pol, &other, g_tok, &e), -1);
    ck_assert_msg(strstr(e.msg, "vocab_size (50304) differs") != NULL, "%s", e.msg);
    ck_assert_msg(explain_check_models(&other, &other, g_tok, &e) == 0, "%s", e.msg); /* a padded vocabulary is fine */
    model_free(&other);
    c = tiny_cfg;
    c.vocab_size = 1000;
    c.eos_token_id = 999;
    ck_assert_msg(model_create(&other, &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(explain_check_models(&other, &other, g_tok, &e), -1);
    ck_assert_msg(strstr(e.msg, "the tokenizer has 50257 tokens, more than the model's vocab_size 1000") != NULL, "%s",
                  e.msg);
    model_free(&other);
}
END_TEST

START_TEST(test_weight_and_intensity) {
    static const double margins[] = {-800.0, -30.0, -1.5, 0.0, 0.25, 3.9, 30.0, 800.0};
    size_t i;
    for (i = 0; i < sizeof margins / sizeof margins[0]; i++) {
        double m = margins[i], w = obj_dpo_weight(m), want = 1.0 / (1.0 + exp(m));
        ck_assert_msg(isfinite(w) && w >= 0.0 && w <= 1.0, "weight(%g) = %g", m, w);
        ck_assert_msg(fabs(w - want) <= 4 * DBL_EPSILON * want, "weight(%g) = %.17g, want %.17g", m, w, want);
    }
    ck_assert(explain_intensity(0.5, 2.0) == 0.25);
    ck_assert(explain_intensity(-3.0, 2.0) == -1.0);
    ck_assert(explain_intensity(3.0, 2.0) == 1.0);
    ck_assert(explain_intensity(1.0, 0.0) == 0.0);
    ck_assert(explain_intensity(NAN, 1.0) == 0.0);
}
END_TEST

START_TEST(test_visible) {
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"plain", 5, "plain"},
        {" a\nb\tc\rd", 8, " a\\nb\\tc\\rd"},
        {"back\\slash", 10, "back\\\\slash"},
        {"nul\0x", 5, "nul\\x00x"},
        {"\x1b[2J\x7f", 5, "\\x1b[2J\\x7f"},
        {"\xc3\xa9t\xc3\xa9", 5, "\xc3\xa9t\xc3\xa9"},         /* é is text */
        {"\xc3", 1, "\\xc3"},                                      /* half a character: the byte */
        {"\xff\xfe(", 3, "\\xff\\xfe("},                           /* never UTF-8 */
        {"\xe2\x80\xae" "abc", 6, "\\u202eabc"},                 /* a bidirectional override */
        {"\xc2\x9b" "1m", 4, "\\u009b1m"},                       /* a C1 control (CSI) */
        {"\xef\xbf\xbf", 3, "\\uffff"},                          /* not allowed in XML */
        {"<&\"'>", 5, "<&\"'>"},                                 /* the SVG writer escapes these */
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[EXPLAIN_VISIBLE_CAP(16)];
        size_t n = explain_visible(out, (const unsigned char *)cases[i].in, cases[i].len);
        ck_assert_msg(strcmp(out, cases[i].want) == 0, "case %zu: '%s', want '%s'", i, out, cases[i].want);
        ck_assert_uint_eq(n, strlen(cases[i].want));
    }
    /* the worst case fills EXPLAIN_VISIBLE_CAP exactly: 4 bytes out per byte in */
    {
        char out[EXPLAIN_VISIBLE_CAP(3)];
        ck_assert_uint_eq(explain_visible(out, (const unsigned char *)"\x01\x02\x03", 3), 12);
        ck_assert_str_eq(out, "\\x01\\x02\\x03");
    }
}
END_TEST

/* ======================================================================== */
/* the SVG                                                                   */
/* ======================================================================== */

static size_t count_of(const char *s, const char *what) {
    size_t n = 0;
    const char *p = s;
    while ((p = strstr(p, what)) != NULL) n++, p++;
    return n;
}

START_TEST(test_svg_well_formed) {
    static const char prompt[] = "a < b & \"c\" 'd' > e";
    static const char resp[] = " x<y&z\"\xff\xc3(\n\tend\x01 \xe2\x80\xae!";
    static const char caption[] = "policy <dir> & \"ref\" 'x' \xff\xfe bad \x1b[2J";
    data_set d;
    explain_result r;
    char *svg;
    size_t len;
    dpo_err e;
    int j, boxes;
    ck_assert_msg(data_from_texts(&d, prompt, sizeof prompt - 1, resp, sizeof resp - 1, g_tok, EOS, 32, 16, &e) == 0,
                  "%s", e.msg);
    ck_assert_msg(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, 0, BETA, &e) == 0, "%s", e.msg);
    ck_assert_msg(explain_svg(&r, caption, &svg, &len, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(strlen(svg), len);
    testutil_check_xml(svg, len);
    ck_assert(len > 7 && strcmp(svg + len - 7, "</svg>\n") == 0);
    /* one box per token, the specials escaped, the invalid bytes of the caption as U+FFFD */
    boxes = (int)count_of(svg, "<g><title>");
    ck_assert_int_eq(boxes, r.n_prompt + r.resp[0].n);
    ck_assert(strstr(svg, "&lt;") && strstr(svg, "&amp;") && strstr(svg, "&quot;") && strstr(svg, "&apos;") &&
              strstr(svg, "&gt;"));
    ck_assert(strstr(svg, "policy &lt;dir&gt; &amp; &quot;ref&quot; &apos;x&apos; \xef\xbf\xbd\xef\xbf\xbd bad") != NULL);
    ck_assert(strstr(svg, "\\xff") != NULL); /* the response's invalid byte, made visible by its token */
    /* U+202E is split between two tokens (" \xe2\x80", "\xae"): each shows its bytes */
    ck_assert(strstr(svg, " \\xe2\\x80") != NULL && strstr(svg, "\\xae") != NULL);
    ck_assert(strstr(svg, "\\n") != NULL && strstr(svg, "\\t") != NULL && strstr(svg, "\\x01") != NULL);
    ck_assert(strstr(svg, "<|endoftext|>") == NULL && strstr(svg, "&lt;|endoftext|&gt;") != NULL);
    free(svg);
    /* tokens never made visible (raw bytes in their text): still valid, the writer replaces them */
    for (j = 0; j < r.resp[0].n; j++) r.resp[0].tok[j].text = j % 2 ? "raw\xff\x01<&>\"'\xef\xbf\xbe" : "\xc3";
    ck_assert_msg(explain_svg(&r, NULL, &svg, &len, &e) == 0, "%s", e.msg);
    testutil_check_xml(svg, len);
    ck_assert(strstr(svg, "raw\xef\xbf\xbd\xef\xbf\xbd&lt;&amp;&gt;&quot;&apos;\xef\xbf\xbd") != NULL);
    free(svg);
    explain_free(&r);
    data_free(&d);
}
END_TEST

START_TEST(test_svg_pair_and_long_token) {
    char path[256];
    data_set d;
    explain_result r;
    char *svg, *big;
    size_t len;
    dpo_err e;
    path_in(path, sizeof path, "pairs.jsonl");
    write_pairs(path);
    load_pairs(&d, path, DATA_DEFAULT_MAX_LEN, DATA_DEFAULT_MAX_PROMPT_LEN);
    ck_assert_msg(explain_row(&r, &g_pol, &g_ref, g_tok, EOS, &d, 1, BETA, &e) == 0, "%s", e.msg);
    ck_assert_msg(explain_svg(&r, "pairs", &svg, &len, &e) == 0, "%s", e.msg);
    ck_assert_int_gt(testutil_check_xml(svg, len), 10);
    ck_assert(strstr(svg, "margin") && strstr(svg, "weight") && strstr(svg, "chosen (") && strstr(svg, "rejected ("));
    ck_assert_int_eq((int)count_of(svg, "<g><title>"), r.n_prompt + r.resp[0].n + r.resp[1].n);
    free(svg);
    /* a token far wider than the picture, and a caption that needs several lines */
    big = malloc(5001);
    ck_assert_ptr_nonnull(big);
    memset(big, 'w', 5000);
    big[5000] = '\0';
    r.resp[0].tok[0].text = big;
    ck_assert_msg(explain_svg(&r, big, &svg, &len, &e) == 0, "%s", e.msg);
    testutil_check_xml(svg, len);
    ck_assert(strstr(svg, "textLength=\"914.0\"") != NULL); /* squeezed into one line */
    free(svg);
    free(big);
    explain_free(&r);
    data_free(&d);
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("explain");
    TCase *tc = tcase_create("explain");
    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_sums_match_data_logps);
    tcase_add_test(tc, test_policy_is_reference);
    tcase_add_test(tc, test_tokens_in_place);
    tcase_add_test(tc, test_sft_rows_and_texts);
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_weight_and_intensity);
    tcase_add_test(tc, test_visible);
    tcase_add_test(tc, test_svg_well_formed);
    tcase_add_test(tc, test_svg_pair_and_long_token);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(make_suite()); }
