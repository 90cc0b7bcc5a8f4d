/* selftest.c - owns `dpo selftest`: the checks a facility runs on its own CPU
 * after building the reviewed sources, each against a reference that does not
 * come from the code it checks:
 *
 *   gradient   the analytic gradient of every tensor of a tiny random model
 *              (language-model head and score head) against central finite
 *              differences of its forward pass;
 *   kernel     this build's matrix kernel against the scalar reference
 *              mm_matmul_ref, bit for bit, on the edges of its tiles and blocks
 *              and random shapes, in the four layouts;
 *   threads    a forward and backward pass on 1 thread against T threads, bit
 *              for bit (work is split so that results never depend on it);
 *   tokenizer  GPT-2 encoding against ids computed by js-tiktoken
 *              (tests/gpt2_tokenizer_vectors.jsonl), and decode(encode(text))
 *              giving text back;
 *   sentiment  VADER against scores computed by upstream vaderSentiment 3.3.1
 *              (tests/vader_vectors.tsv).
 *
 * It never prints: each result goes to the caller's function as it completes. */
#include "selftest.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "matmul.h"
#include "model.h"
#include "tokenizer.h"
#include "vader.h"

typedef struct {
    selftest_report_fn fn;
    void *ctx;
    int n_checks, n_failed;
} reporter;

static void report(reporter *rp, const char *group, const char *measure, double err, double tol, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

static void report(reporter *rp, const char *group, const char *measure, double err, double tol, const char *fmt, ...) {
    selftest_result r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.name, sizeof r.name, fmt, ap);
    va_end(ap);
    r.group = group;
    r.measure = measure;
    r.err = err;
    r.tol = tol;
    r.pass = err <= tol; /* a NaN error fails */
    rp->n_checks++;
    rp->n_failed += !r.pass;
    rp->fn(rp->ctx, &r);
}

/* ------------------------------------------------------------------------ */
/* gradients */

void selftest_random_params(model *m, util_rng *r) {
    int n = model_num_tensors(&m->cfg), i;
    size_t k;
    for (i = 0; i < n; i++) {
        model_tensor_info ti;
        int gain;
        model_tensor(&m->cfg, i, &ti);
        gain = ti.family == P_LN1W || ti.family == P_LN2W || ti.family == P_LNFW;
        for (k = 0; k < ti.numel; k++)
            m->params_mem[ti.offset + k] = (float)((gain ? 1.0 : 0.0) + (gain ? 0.2 : 0.4) * util_rng_normal(r));
    }
}

#define GT 8 /* tokens in the gradient check's batch */

typedef struct {
    model m;
    int tokens[GT], targets[GT], seq_len[2];
    float w[GT], out[GT];
} grad_case;

/* The scalar differentiated: loss = sum_t w_t out_t, out the log-probs of the
 * targets (language model) or the scores (score head). */
static int grad_loss(grad_case *c, double *loss, dpo_err *e) {
    int t, rc = c->m.cfg.score_head ? model_forward_score(&c->m, c->out, c->tokens, c->seq_len, 2, e)
                                     : model_forward(&c->m, c->out, c->tokens, c->targets, c->seq_len, 2, e);
    *loss = 0.0;
    for (t = 0; t < GT; t++) *loss += (double)c->w[t] * c->out[t];
    return rc;
}

/* Every tensor: ||g - g_fd|| / ||g_fd||, with
 *   g_fd_i = (loss(p + h e_i) - loss(p - h e_i)) / (p_i^+ - p_i^-)
 * (divided by the step float could represent). h = 1e-2 balances truncation
 * (O(h^2)) against float rounding in the loss (O(eps / h)); on this model the
 * error stays near 1e-4, and the tolerance is 3e-3. */
static int check_gradients(reporter *rp, uint64_t seed, int score_head, dpo_err *e) {
    model_config cfg;
    grad_case c;
    util_rng r;
    int i, nt, rc = -1;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_layer = 2, cfg.n_head = 2, cfg.n_embd = 8, cfg.n_ctx = 8, cfg.vocab_size = 11, cfg.ln_eps = 1e-5;
    cfg.eos_token_id = 10, cfg.score_head = score_head;
    util_rng_seed(&r, seed);
    if (model_create(&c.m, &cfg, e) != 0) return -1;
    if (model_alloc_grads(&c.m, e) != 0) goto out;
    selftest_random_params(&c.m, &r);
    c.seq_len[0] = 5;
    c.seq_len[1] = 3;
    for (i = 0; i < GT; i++) {
        c.tokens[i] = (int)(util_rng_u64(&r) % 11);
        c.targets[i] = i == 2 || i == 6 ? -1 : (int)(util_rng_u64(&r) % 11);
        c.w[i] = c.targets[i] < 0 && !score_head ? 0.0f : (float)util_rng_normal(&r);
    }
    {
        double loss;
        if (grad_loss(&c, &loss, e) != 0) goto out;
        model_zero_grad(&c.m);
        if ((score_head ? model_backward_score(&c.m, c.w, e) : model_backward(&c.m, c.w, e)) != 0) goto out;
    }
    nt = model_num_tensors(&cfg);
    for (i = 0; i < nt; i++) {
        model_tensor_info ti;
        double num = 0.0, den = 0.0;
        size_t k;
        model_tensor(&cfg, i, &ti);
        for (k = 0; k < ti.numel; k++) {
            float *p = c.m.params_mem + ti.offset + k, p0 = *p, pp = p0 + 1e-2f, pm = p0 - 1e-2f;
            double lp, lm, fd, g = c.m.grads_mem[ti.offset + k];
            *p = pp;
            if (grad_loss(&c, &lp, e) != 0) goto out;
            *p = pm;
            if (grad_loss(&c, &lm, e) != 0) goto out;
            *p = p0;
            fd = (lp - lm) / ((double)pp - (double)pm);
            num += (g - fd) * (g - fd);
            den += fd * fd;
        }
        report(rp, "gradient", "rel. error", den > 0.0 ? sqrt(num / den) : sqrt(num), 3e-3, "%s (%s, %zu values)",
               ti.name, score_head ? "score head" : "language model", ti.numel);
    }
    rc = 0;
out:
    model_free(&c.m);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* the matrix kernel */

static int pick(util_rng *r, const int *v, int n) { return v[util_rng_u64(r) % (uint64_t)n]; }

/* Shapes on the edges of the kernel's register tile (MR x NR) and cache blocks
 * (KC, NC), and random ones, in the four layouts, with a zero, bias or
 * accumulated initial value, on 1 and on T threads: every element must equal
 * mm_matmul_ref's exactly (init, then s = fmaf(a_k, b_k, s) in k order). */
static int check_kernel(reporter *rp, uint64_t seed, int threads, dpo_err *e) {
    int mr, nr, kc, nc, i, products = 0;
    long bad = 0;
    util_rng r;
    mm_blocking(&mr, &nr, &kc, &nc);
    util_rng_seed(&r, seed);
    {
        const int ms[] = {1, mr - 1 > 0 ? mr - 1 : 1, mr, mr + 1, 2 * mr + 3, 37, 100};
        const int ns[] = {1, nr - 1 > 0 ? nr - 1 : 1, nr, nr + 1, 3 * nr + 5, nc, nc + 1, 129};
        const int ks[] = {1, 2, kc - 1 > 0 ? kc - 1 : 1, kc, kc + 1, 2 * kc + 7, 64};
        for (i = 0; i < 240; i++) {
            int M = pick(&r, ms, 7), N = pick(&r, ns, 8), K = pick(&r, ks, 7), a_t = i & 1, b_t = i >> 1 & 1;
            int mode = (i >> 2) % 3, th = (i >> 2) / 3 % 2 ? threads : 1;
            size_t na = (size_t)M * K, nb = (size_t)K * N, no = (size_t)M * N, x;
            float *a, *b, *bias, *got, *ref;
            if ((double)M * N * K > 4e6) continue; /* keep the reference's time small */
            a = malloc(na * sizeof *a), b = malloc(nb * sizeof *b), bias = malloc((size_t)N * sizeof *bias);
            got = malloc(no * sizeof *got), ref = malloc(no * sizeof *ref);
            if (!a || !b || !bias || !got || !ref) {
                free(a), free(b), free(bias), free(got), free(ref);
                return dpo_errf(e, "out of memory for a %d x %d x %d product", M, N, K);
            }
            for (x = 0; x < na; x++) a[x] = (float)(2.0 * util_rng_uniform(&r) - 1.0);
            for (x = 0; x < nb; x++) b[x] = (float)(2.0 * util_rng_uniform(&r) - 1.0);
            for (x = 0; x < (size_t)N; x++) bias[x] = (float)(2.0 * util_rng_uniform(&r) - 1.0);
            for (x = 0; x < no; x++) got[x] = ref[x] = (float)(4.0 * util_rng_uniform(&r) - 2.0);
            util_set_threads(th);
            mm_matmul(got, a, b, mode == 1 ? bias : NULL, M, N, K, a_t, b_t, mode == 2);
            mm_matmul_ref(ref, a, b, mode == 1 ? bias : NULL, M, N, K, a_t, b_t, mode == 2);
            /* NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): the same bits is the point, not equal values */
            for (x = 0; x < no; x++) bad += memcmp(&got[x], &ref[x], sizeof(float)) != 0;
            products++;
            free(a), free(b), free(bias), free(got), free(ref);
        }
    }
    util_set_threads(threads);
    report(rp, "kernel", "elements differing", (double)bad, 0.0,
           "%s kernel vs scalar reference: %d products, 4 layouts, tile %dx%d, blocks KC %d NC %d, 1 and %d threads",
           mm_kernel_name(), products, mr, nr, kc, nc, threads);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* bit-identity across thread counts */

#define TT 270

static int check_threads(reporter *rp, uint64_t seed, int threads, dpo_err *e) {
    model m;
    model_config cfg;
    int tokens[TT], targets[TT], lens[3] = {100, 90, 80}, i, rc = -1;
    float lp1[TT], lp2[TT], w[TT], *g1 = NULL;
    long bad = 0;
    size_t k;
    util_rng r;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_layer = 2, cfg.n_head = 4, cfg.n_embd = 128, cfg.n_ctx = 128, cfg.vocab_size = 300, cfg.ln_eps = 1e-5;
    cfg.eos_token_id = 299;
    util_rng_seed(&r, seed);
    if (model_create(&m, &cfg, e) != 0) return -1;
    if (model_alloc_grads(&m, e) != 0) goto out;
    selftest_random_params(&m, &r);
    for (i = 0; i < TT; i++) {
        tokens[i] = (int)(util_rng_u64(&r) % 300);
        targets[i] = i % 7 == 3 ? -1 : (int)(util_rng_u64(&r) % 300);
        w[i] = (float)util_rng_normal(&r);
    }
    if (!(g1 = malloc(m.num_params * sizeof *g1))) {
        dpo_errf(e, "out of memory for %zu gradients", m.num_params);
        goto out;
    }
    util_set_threads(1);
    if (model_forward(&m, lp1, tokens, targets, lens, 3, e) != 0) goto out;
    model_zero_grad(&m);
    if (model_backward(&m, w, e) != 0) goto out;
    memcpy(g1, m.grads_mem, m.num_params * sizeof *g1);
    util_set_threads(threads);
    if (model_forward(&m, lp2, tokens, targets, lens, 3, e) != 0) goto out;
    model_zero_grad(&m);
    if (model_backward(&m, w, e) != 0) goto out;
    /* NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): the same bits is the point, not equal values */
    for (i = 0; i < TT; i++) bad += memcmp(&lp1[i], &lp2[i], sizeof(float)) != 0;
    /* NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): the same bits is the point, not equal values */
    for (k = 0; k < m.num_params; k++) bad += memcmp(&g1[k], &m.grads_mem[k], sizeof(float)) != 0;
    report(rp, "threads", "values differing", (double)bad, 0.0,
           "forward + backward, %d tokens and %zu gradients: 1 thread vs %d", TT, m.num_params, threads);
    rc = 0;
out:
    util_set_threads(threads);
    free(g1);
    model_free(&m);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* the tokenizer against js-tiktoken's ids */

static int check_tokenizer(reporter *rp, const char *root, dpo_err *e) {
    char dir[4096], path[4096], *buf = NULL, *p, *end;
    tok_tokenizer *t = NULL;
    size_t len;
    long line = 0, rows = 0, wrong_ids = 0, wrong_trip = 0;
    int rc = -1;
    if (util_path_join(dir, sizeof dir, root, "data/gpt2", e) != 0 ||
        util_path_join(path, sizeof path, root, "tests/gpt2_tokenizer_vectors.jsonl", e) != 0)
        return -1;
    if (tok_load(&t, dir, e) != 0) return -1;
    if (util_read_file(path, 16u << 20, &buf, &len, e) != 0) goto out;
    for (p = buf, end = buf + len; p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *dec = NULL;
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p), n_ids = 0, cap = 0, dlen = 0, i;
        json_value *row = NULL;
        const json_value *ids;
        const char *text;
        size_t tlen;
        int *got = NULL, same;
        if (json_parse_line(p, n, path, line + 1, &row, e) != 0) goto out;
        p += n + (nl != NULL);
        ids = json_get(row, "ids");
        if (json_get_string(row, "text", &text, &tlen, e) != 0 || !ids || ids->type != JSON_ARRAY) {
            json_free(row);
            dpo_errf(e, "%s: line %ld: not a {\"text\", \"ids\"} row", path, line + 1);
            goto out;
        }
        if (tok_encode(t, text, tlen, &got, &n_ids, &cap, e) != 0 || tok_decode(t, got, n_ids, &dec, &dlen, e) != 0) {
            dpo_err_prefix(e, "%s: line %ld", path, line + 1);
            free(got);
            json_free(row);
            goto out;
        }
        same = n_ids == ids->count;
        for (i = 0; same && i < n_ids; i++) same = ids->items[i].type == JSON_NUMBER && ids->items[i].number == got[i];
        wrong_ids += !same;
        wrong_trip += dlen != tlen || memcmp(dec, text, tlen) != 0;
        rows++;
        free(got);
        free(dec);
        json_free(row);
    }
    report(rp, "tokenizer", "texts differing", (double)wrong_ids, 0.0,
           "GPT-2 encoding of %ld texts vs js-tiktoken's ids (tests/gpt2_tokenizer_vectors.jsonl)", rows);
    report(rp, "tokenizer", "texts differing", (double)wrong_trip, 0.0, "decode(encode(text)) == text, %ld texts", rows);
    rc = 0;
out:
    free(buf);
    tok_free(t);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* VADER against upstream's scores */

/* Split a line at TABs (in place) into at most max fields; the count. */
static int split_tabs(char *s, char **f, int max) {
    int n = 0;
    f[n++] = s;
    for (; *s; s++)
        if (*s == '\t') {
            *s = '\0';
            if (n == max) return max + 1;
            f[n++] = s + 1;
        }
    return n;
}

static int check_sentiment(reporter *rp, const char *root, dpo_err *e) {
    static const char *const cols[4] = {"up331_neg", "up331_neu", "up331_pos", "up331_compound"};
    char path[4096], *buf = NULL, *p, *end;
    vader_lexicon *lx = NULL;
    size_t len;
    long line = 0;
    double worst = 0.0;
    int rc = -1, k;
    if (util_path_join(path, sizeof path, root, "tests/vader_vectors.tsv", e) != 0) return -1;
    if (vader_load(&lx, (const char *)vader_embedded_lexicon, vader_embedded_lexicon_len, "the built-in lexicon", e) != 0)
        return -1;
    if (util_read_file(path, 16u << 20, &buf, &len, e) != 0) goto out;
    for (p = buf, end = buf + len; p < end; line++) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *f[10];
        int nf;
        if (nl) *nl = '\0';
        nf = split_tabs(p, f, 10);
        p = nl ? nl + 1 : end;
        if (nf != 10) {
            dpo_errf(e, "%s: line %ld: %d columns, expected 10", path, line + 1, nf);
            goto out;
        }
        if (line == 0) {
            for (k = 0; k < 4; k++)
                if (strcmp(f[k + 1], cols[k]) != 0) {
                    dpo_errf(e, "%s: line 1: column %d is not %s", path, k + 2, cols[k]);
                    goto out;
                }
        } else {
            vader_scores s;
            double got[4];
            if (vader_score(lx, f[0], strlen(f[0]), &s, e) != 0) goto out;
            got[0] = s.neg, got[1] = s.neu, got[2] = s.pos, got[3] = s.compound;
            for (k = 0; k < 4; k++) {
                char *q;
                double want = strtod(f[k + 1], &q);
                if (q == f[k + 1] || *q != '\0') {
                    dpo_errf(e, "%s: line %ld: column %d is not a number", path, line + 1, k + 2);
                    goto out;
                }
                if (!(fabs(got[k] - want) <= worst)) worst = fabs(got[k] - want); /* a NaN stays */
            }
        }
    }
    report(rp, "sentiment", "max |error|", worst, 1e-4,
           "VADER neg, neu, pos, compound of %ld texts vs vaderSentiment 3.3.1 (tests/vader_vectors.tsv)", line - 1);
    rc = 0;
out:
    free(buf);
    vader_free(lx);
    return rc;
}

int selftest_run(const selftest_opts *o, selftest_report_fn fn, void *ctx, int *n_checks, int *n_failed,
                 dpo_err *e) {
    reporter rp;
    int threads = o->threads > 1 ? o->threads : 2, rc;
    rp.fn = fn;
    rp.ctx = ctx;
    rp.n_checks = rp.n_failed = 0;
    rc = check_gradients(&rp, o->seed + 1, 0, e);
    if (rc == 0) rc = check_gradients(&rp, o->seed + 2, 1, e);
    if (rc == 0) rc = check_kernel(&rp, o->seed + 3, threads, e);
    if (rc == 0) rc = check_threads(&rp, o->seed + 4, threads, e);
    if (rc == 0) rc = check_tokenizer(&rp, o->root, e);
    if (rc == 0) rc = check_sentiment(&rp, o->root, e);
    *n_checks = rp.n_checks;
    *n_failed = rp.n_failed;
    return rc;
}
