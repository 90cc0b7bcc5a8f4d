/* eval.c - owns what is measured about samples: the summary dpo eval prints
 * (mean reward and KL with standard errors, and the signs of a gamed reward:
 * exclamation marks, "but" clauses, length, truncation, distinct bigrams), the exact KL from a
 * reference along given completions, and preference pairs from scored samples.
 * It must never do file I/O or print; errors go back in a dpo_err. */
#include "eval.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================== */
/* the summary                                                               */
/* ======================================================================== */

void eval_summary_init(eval_summary *s) { memset(s, 0, sizeof *s); }

void eval_summary_free(eval_summary *s) {
    free(s->set);
    memset(s, 0, sizeof *s);
}

/* Insert key (> 0) into the open-addressing set, growing it at half full. */
static int set_insert(eval_summary *s, uint64_t key) {
    size_t i;
    if (2 * (s->set_n + 1) > s->set_cap) {
        size_t nc = s->set_cap ? 2 * s->set_cap : 1024, j;
        uint64_t *ns = calloc(nc, sizeof *ns);
        if (!ns) return -1;
        for (j = 0; j < s->set_cap; j++) {
            if (!s->set[j]) continue;
            for (i = (size_t)util_mix64(s->set[j]) & (nc - 1); ns[i]; i = (i + 1) & (nc - 1)) {}
            ns[i] = s->set[j];
        }
        free(s->set);
        s->set = ns;
        s->set_cap = nc;
    }
    for (i = (size_t)util_mix64(key) & (s->set_cap - 1); s->set[i]; i = (i + 1) & (s->set_cap - 1))
        if (s->set[i] == key) return 0;
    s->set[i] = key;
    s->set_n++;
    return 0;
}

/* occurrences of the word "but", in any case, not inside another word */
static long count_but(const char *t, size_t len) {
    long n = 0;
    size_t i;
    for (i = 0; i + 3 <= len; i++) {
        int before = i == 0 || !isalnum((unsigned char)t[i - 1]);
        int after = i + 3 == len || !isalnum((unsigned char)t[i + 3]);
        if (before && after && tolower((unsigned char)t[i]) == 'b' && tolower((unsigned char)t[i + 1]) == 'u' &&
            tolower((unsigned char)t[i + 2]) == 't')
            n++;
    }
    return n;
}

int eval_summary_add(eval_summary *s, double reward, double kl, double kl_sampled, const char *text, size_t len,
                     const int *ids, int n_ids, int truncated, dpo_err *e) {
    size_t i;
    int t;
    s->n++;
    s->reward += reward;
    s->reward2 += reward * reward;
    s->kl += kl;
    s->kl2 += kl * kl;
    s->kl_sampled += kl_sampled;
    for (i = 0; i < len; i++) s->exclaim += text[i] == '!';
    s->but += count_but(text, len);
    s->tokens += n_ids;
    s->truncated += truncated != 0;
    for (t = 0; t + 1 < n_ids; t++) { /* a bigram (a, b) of ids < 2^31 as one nonzero 64-bit key */
        uint64_t key = ((uint64_t)(uint32_t)ids[t] << 32 | (uint32_t)ids[t + 1]) + 1;
        s->bigrams++;
        if (set_insert(s, key) != 0) /* it failed to double the set (1024 slots at first) */
            return dpo_err_oom(e, "the bigram set", s->set_cap ? 2 * s->set_cap : 1024, sizeof *s->set);
    }
    return 0;
}

/* standard error of a mean from the sums of x and x^2: sqrt(var / n), var with n - 1 */
static double std_err(double sum, double sum2, long n) {
    double mean, var;
    if (n < 2) return NAN;
    mean = sum / (double)n;
    var = (sum2 - (double)n * mean * mean) / (double)(n - 1);
    return sqrt(var > 0.0 ? var / (double)n : 0.0);
}

void eval_summary_result(const eval_summary *s, eval_result *o) {
    double n = s->n > 0 ? (double)s->n : NAN;
    o->n = s->n;
    o->reward = s->reward / n;
    o->reward_se = std_err(s->reward, s->reward2, s->n);
    o->kl = s->kl / n;
    o->kl_se = std_err(s->kl, s->kl2, s->n);
    o->kl_sampled = s->kl_sampled / n;
    o->exclaim = (double)s->exclaim / n;
    o->but = (double)s->but / n;
    o->length = (double)s->tokens / n;
    o->truncated = (double)s->truncated / n;
    o->distinct2 = s->bigrams > 0 ? (double)s->set_n / (double)s->bigrams : NAN;
}

/* ======================================================================== */
/* exact KL along given completions                                          */
/* ======================================================================== */

/* One position's terms from the two models' logits z (policy) and w (reference):
 *   kl = sum_v p_v (log p_v - log r_v),   sampled = log p_y - log r_y
 * with log p_v = z_v - mx - ls exactly as model_log_softmax computes it, so two
 * identical models give 0 exactly. */
static void kl_position(const float *z, const float *w, int V, int y, double *kl, double *sampled) {
    float mz, mw;
    double lz, lw, sum = 0.0;
    int v;
    model_log_softmax_norm(z, V, &mz, &lz);
    model_log_softmax_norm(w, V, &mw, &lw);
    for (v = 0; v < V; v++) {
        double lp = (double)z[v] - (double)mz - lz, lr = (double)w[v] - (double)mw - lw;
        sum += exp(lp) * (lp - lr);
    }
    *kl = sum;
    *sampled = ((double)z[y] - (double)mz - lz) - ((double)w[y] - (double)mw - lw);
}

int eval_kl_along(const model *policy, const model *ref, const data_set *d, double *kl, double *kl_sampled,
                  data_progress_fn progress, void *ctx, dpo_err *e) {
    int V = policy->cfg.vocab_size, max_len = 1, max_want = 1, r, rc = 0;
    model_kv kv, kv_ref;
    float *lz = NULL, *lw = NULL;
    double *pk = NULL, *ps = NULL;
    int *tok = NULL, *slot = NULL, *want = NULL, *target = NULL;
    if (!d->sft) return dpo_errf(e, "eval_kl_along needs prompt/completion rows");
    if (ref->cfg.vocab_size != V) return dpo_errf(e, "the reference's vocabulary differs from the model's");
    for (r = 0; r < d->n_rows; r++) {
        int n = d->rows[r].n_prompt + d->rows[r].n_chosen - 1; /* tokens fed: all but the last */
        if (n > max_len) max_len = n;
        if (d->rows[r].n_chosen > max_want) max_want = d->rows[r].n_chosen;
    }
    memset(&kv, 0, sizeof kv);
    memset(&kv_ref, 0, sizeof kv_ref);
    if (model_kv_create(&kv, &policy->cfg, 1, max_len, e) != 0 ||
        model_kv_create(&kv_ref, &ref->cfg, 1, max_len, e) != 0) {
        rc = -1;
        goto done;
    }
    lz = malloc((size_t)max_want * (size_t)V * sizeof *lz);
    lw = malloc((size_t)max_want * (size_t)V * sizeof *lw);
    pk = malloc((size_t)max_want * sizeof *pk);
    ps = malloc((size_t)max_want * sizeof *ps);
    tok = malloc((size_t)max_len * sizeof *tok);
    slot = calloc((size_t)max_len, sizeof *slot);
    want = malloc((size_t)max_len * sizeof *want);
    target = malloc((size_t)max_want * sizeof *target);
    if (!lz || !lw || !pk || !ps || !tok || !slot || !want || !target) {
        rc = dpo_errf(e, "out of memory for the KL's logits (%zu MiB)", ((size_t)max_want * (size_t)V * 8) >> 20);
        goto done;
    }
    /* one row per call, in one slot: its prompt and completion, logits wanted
     * from the prompt's last token on (each predicts the next token) */
    for (r = 0; r < d->n_rows && rc == 0; r++) {
        const data_row *row = &d->rows[r];
        const int *ids = d->pool + row->off;
        int n = row->n_prompt + row->n_chosen - 1, nw = row->n_chosen, t, i;
        for (t = 0; t < n; t++) {
            tok[t] = ids[t];
            want[t] = t >= row->n_prompt - 1;
        }
        for (i = 0; i < nw; i++) target[i] = ids[row->n_prompt + i];
        model_kv_clear(&kv, 0);
        model_kv_clear(&kv_ref, 0);
        if (model_kv_forward(policy, &kv, lz, tok, slot, want, n, e) != 0 ||
            model_kv_forward(ref, &kv_ref, lw, tok, slot, want, n, e) != 0) {
            rc = -1;
            break;
        }
        DPO_OMP_FOR_IF((double)nw * V * 8)
        for (i = 0; i < nw; i++)
            kl_position(lz + (size_t)i * V, lw + (size_t)i * V, V, target[i], &pk[i], &ps[i]);
        kl[r] = 0.0;
        kl_sampled[r] = 0.0;
        for (i = 0; i < nw; i++) { /* summed in position order: the same for any thread count */
            kl[r] += pk[i];
            kl_sampled[r] += ps[i];
        }
        if (progress) progress(ctx, r + 1, d->n_rows);
    }
done:
    model_kv_free(&kv);
    model_kv_free(&kv_ref);
    free(lz);
    free(lw);
    free(pk);
    free(ps);
    free(tok);
    free(slot);
    free(want);
    free(target);
    return rc;
}

/* ======================================================================== */
/* preference pairs from scored samples                                      */
/* ======================================================================== */

int eval_pairs(int *chosen, int *rejected, const double *reward, int k) {
    int i, j, n = 0;
    for (i = 0; i < k; i++)
        for (j = i + 1; j < k; j++) {
            if (reward[i] == reward[j]) continue;
            chosen[n] = reward[i] > reward[j] ? i : j;
            rejected[n++] = reward[i] > reward[j] ? j : i;
        }
    return n;
}
