/* sample.c - owns generation: turning logits into the distribution that is
 * sampled from (temperature, top-k, top-p), the draw, each sample's random
 * stream, and batched generation over a key-value cache (model_kv_forward),
 * with a reference model alongside when the KL from it is wanted.
 * It must never do file I/O or print (results go to the caller's callbacks,
 * errors back in a dpo_err), and a sample's tokens must depend only on the
 * model, its prompt, the filter and (seed, prompt index, sample index): never
 * on the batch size, the thread count or the other sequences in a batch. */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================== */
/* the sampled distribution                                                  */
/* ======================================================================== */

int sample_filter_validate(const sample_filter *f, dpo_err *e) {
    if (!(f->temperature == 0.0 || (f->temperature >= 1e-6 && f->temperature <= 1e6)))
        return dpo_errf(e, "temperature must be 0 (greedy) or in [1e-6, 1e6], got %g", f->temperature);
    if (f->top_k < 0) return dpo_errf(e, "top-k must be >= 0 (0: off), got %d", f->top_k);
    if (!(f->top_p > 0.0 && f->top_p <= 1.0)) return dpo_errf(e, "top-p must be in (0, 1] (1: off), got %g", f->top_p);
    return 0;
}

/* Ranking: token a comes before b when it is more likely, or as likely with a
 * lower id. A binary max-heap of token ids under that order lets the filters
 * take the most likely tokens one at a time: O(V) to build, O(log V) a token,
 * so top-k and top-p cost little more than the softmax when few tokens are kept. */
static int ranks_before(const double *logq, int a, int b) {
    /* cppcheck-suppress arrayIndexThenCheck ; a < b breaks ties between token ids, it is no bounds check */
    return logq[a] > logq[b] || (logq[a] == logq[b] && a < b);
}

static void heap_sift_down(int *h, int n, int i, const double *logq) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, top = i, t;
        if (l < n && ranks_before(logq, h[l], h[top])) top = l;
        if (r < n && ranks_before(logq, h[r], h[top])) top = r;
        if (top == i) return;
        t = h[i];
        h[i] = h[top];
        h[top] = t;
        i = top;
    }
}

/* Heapsort's step: the heap is work[0..n); its root, the most likely token
 * left, moves to work[n - 1] and the heap shrinks to work[0..n-1). After i
 * pops, the i most likely tokens are work[V-1], work[V-2], ..., work[V-i]. */
static void heap_pop(int *work, int n, const double *logq) {
    int t = work[0];
    work[0] = work[n - 1];
    work[n - 1] = t;
    heap_sift_down(work, n - 1, 0, logq);
}

int sample_distribution(double *logq, const float *logits, int V, const sample_filter *f, int *work) {
    double mx = -INFINITY, sum = 0.0, ls;
    int v, i, kept = V;
    for (v = 0; v < V; v++)
        if (!isfinite(logits[v])) return 0;
    if (f->temperature == 0.0 || f->top_k == 1) { /* greedy: all mass on the argmax (lowest id on ties) */
        int best = 0;
        for (v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        for (v = 0; v < V; v++) logq[v] = -INFINITY;
        logq[best] = 0.0;
        return 1;
    }
    /* temperature: q = softmax(z / T), as log-probabilities, the sum in double.
     * At T = 1 this is model_log_softmax itself, so that the model's own
     * distribution is the same bits here as in the KL's reference term. */
    if (f->temperature == 1.0) {
        model_log_softmax(logq, logits, V);
    } else {
        for (v = 0; v < V; v++) {
            logq[v] = (double)logits[v] / f->temperature;
            if (logq[v] > mx) mx = logq[v];
        }
        for (v = 0; v < V; v++) sum += exp(logq[v] - mx);
        ls = log(sum);
        for (v = 0; v < V; v++) logq[v] = logq[v] - mx - ls;
    }
    if ((f->top_k <= 0 || f->top_k >= V) && f->top_p >= 1.0) return V;

    /* rank: pop the most likely tokens, the i-th (from 0) into work[V - 1 - i] */
    for (v = 0; v < V; v++) work[v] = v;
    for (i = V / 2 - 1; i >= 0; i--) heap_sift_down(work, V, i, logq);
    if (f->top_k > 0 && f->top_k < V) { /* top-k: the k most likely */
        for (i = 0; i < f->top_k; i++) heap_pop(work, V - i, logq);
        kept = f->top_k;
    }
    if (f->top_p < 1.0) { /* top-p: the fewest most likely whose (renormalised) mass reaches p */
        double mass = 0.0, cum = 0.0;
        int popped = kept < V ? kept : 0;
        if (kept < V)
            for (i = 0; i < kept; i++) mass += exp(logq[work[V - 1 - i]]);
        else
            for (v = 0; v < V; v++) mass += exp(logq[v]);
        for (i = 0; i < kept; i++) {
            if (i == popped) heap_pop(work, V - popped++, logq);
            cum += exp(logq[work[V - 1 - i]]);
            if (cum >= f->top_p * mass) break;
        }
        kept = i < kept ? i + 1 : kept;
    }
    /* keep the kept most likely and renormalise them; the rest get probability 0:
     *   q'_v = q_v / sum_{kept} q_u   (log q'_v = log q_v - log sum_{kept} q_u)
     * Token v is kept exactly when it ranks before the last kept one, or is it. */
    {
        double mass = 0.0, lm, thr;
        int last = work[V - kept];
        for (i = 0; i < kept; i++) mass += exp(logq[work[V - 1 - i]]);
        /* cppcheck-suppress invalidFunctionArg ; kept >= 1 and the top token's q >= 1/V, so mass > 0 */
        lm = log(mass);
        thr = logq[last];
        for (v = 0; v < V; v++)
            /* cppcheck-suppress arrayIndexThenCheck ; v <= last breaks ties between token ids, it is no bounds check */
            logq[v] = logq[v] > thr || (logq[v] == thr && v <= last) ? logq[v] - lm : -INFINITY;
    }
    return kept;
}

int sample_draw(const double *logq, int V, double u) {
    double acc = 0.0;
    int v, last = 0;
    for (v = 0; v < V; v++) {
        if (logq[v] == -INFINITY) continue;
        acc += exp(logq[v]);
        last = v;
        if (acc > u) return v;
    }
    return last;
}

double sample_kl(const double *logq, const double *logr, int V) {
    double kl = 0.0;
    int v;
    for (v = 0; v < V; v++)
        if (logq[v] != -INFINITY) kl += exp(logq[v]) * (logq[v] - logr[v]);
    return kl;
}

void sample_stream(util_rng *r, uint64_t seed, long prompt, long index) {
    uint64_t h = util_mix64(seed ^ 0x5851f42d4c957f2dULL);
    h = util_mix64(h + (uint64_t)prompt);
    h = util_mix64(h + 0x9e3779b97f4a7c15ULL * (uint64_t)(index + 1));
    util_rng_seed(r, h);
}

/* ======================================================================== */
/* batched generation                                                        */
/* ======================================================================== */

/* One sequence being generated: a slot of the key-value caches. */
typedef struct {
    long job;            /* prompt * n + index; -1 when the slot is free */
    int fed_prompt;      /* 0 until the prompt has gone through the model */
    int next;            /* the last token drawn, to be fed next */
    util_rng rng;        /* this sample's stream */
    sample_result r;     /* accumulates; r.ids points at ids */
    int *ids;            /* (max_new) */
    double *logq, *logr; /* (V), (V) this step's distributions */
    int *work;           /* (V) */
    int bad;             /* its logits were not finite */
} slot_state;

/* A finished sample waiting for its turn to be emitted (results go out in
 * job order); ring slot job % window. */
typedef struct {
    int ready;
    sample_result r;
    int *ids;            /* (max_new) */
} finished;

typedef struct {
    const model *policy, *ref;
    const int *const *prompts;
    const int *prompt_len;
    const sample_config *c;
    int V, ctx, n_slots, window;
    long n_jobs, next_start, next_emit, tokens;
    model_kv kv, kv_ref;
    slot_state *slots;
    finished *ring;
    int *tokens_in, *slot_of, *want; /* (n_slots * max_len) one call's tokens */
    int *order;                      /* (n_slots) the running slots, in slot order */
    float *logits, *logits_ref;      /* (n_slots, V) */
    void *mem;
} run_state;

static void run_free(run_state *s) {
    model_kv_free(&s->kv);
    model_kv_free(&s->kv_ref);
    free(s->mem);
}

/* Check the inputs and allocate everything once: caches of n_slots sequences
 * of prompt + max_new tokens (at most the context), per-slot scratch, the ring. */
static int run_init(run_state *s, dpo_err *e) {
    const sample_config *c = s->c;
    const model_config *pc = &s->policy->cfg;
    size_t V, per_slot, per_fin, total, max_tok, off;
    long p;
    int max_prompt = 0, max_len, i;
    char *mem;
    if (c->eos < 0 || c->eos >= pc->vocab_size) return dpo_errf(e, "end-of-text id %d outside the vocabulary", c->eos);
    s->V = pc->vocab_size;
    s->ctx = pc->n_ctx;
    if (s->ref) {
        if (s->ref->cfg.vocab_size != s->V)
            return dpo_errf(e, "the reference's vocabulary (%d) differs from the model's (%d)", s->ref->cfg.vocab_size,
                            s->V);
        if (s->ref->cfg.n_ctx < s->ctx) s->ctx = s->ref->cfg.n_ctx;
    }
    for (p = 0; p < s->n_jobs / c->n; p++) {
        int t;
        if (s->prompt_len[p] < 1 || s->prompt_len[p] >= s->ctx)
            return dpo_errf(e, "prompt %ld has %d tokens; it needs 1 to %d (the context leaves room for one new token)",
                            p + 1, s->prompt_len[p], s->ctx - 1);
        for (t = 0; t < s->prompt_len[p]; t++)
            if (s->prompts[p][t] < 0 || s->prompts[p][t] >= s->V)
                return dpo_errf(e, "prompt %ld: token id %d outside the vocabulary", p + 1, s->prompts[p][t]);
        if (s->prompt_len[p] > max_prompt) max_prompt = s->prompt_len[p];
    }
    max_len = max_prompt + c->max_new < s->ctx ? max_prompt + c->max_new : s->ctx;
    s->n_slots = (long)c->batch < s->n_jobs ? c->batch : (int)(s->n_jobs > 0 ? s->n_jobs : 1);
    s->window = 4 * s->n_slots;
    if (model_kv_create(&s->kv, pc, s->n_slots, max_len, e) != 0) return -1;
    if (s->ref && model_kv_create(&s->kv_ref, &s->ref->cfg, s->n_slots, max_len, e) != 0) return -1;

    /* one allocation: slots with their scratch, the ring, one call's arrays, logits */
    V = (size_t)s->V;
    max_tok = (size_t)s->n_slots * (size_t)max_len;
    per_slot = sizeof(slot_state) + (size_t)c->max_new * sizeof(int) + 2 * V * sizeof(double) + V * sizeof(int);
    per_fin = sizeof(finished) + (size_t)c->max_new * sizeof(int);
    total = (size_t)s->n_slots * per_slot + (size_t)s->window * per_fin + (3 * max_tok + (size_t)s->n_slots) * sizeof(int) +
            2 * (size_t)s->n_slots * V * sizeof(float) + 64;
    mem = calloc(1, total);
    if (!mem) return dpo_errf(e, "out of memory for generation (%zu MiB)", total >> 20);
    s->mem = mem;
    /* carve: doubles first (8-byte aligned from calloc), then floats, then the rest */
    off = 0;
    s->slots = (slot_state *)(void *)mem;
    off += (size_t)s->n_slots * sizeof(slot_state);
    s->ring = (finished *)(void *)(mem + off);
    off += (size_t)s->window * sizeof(finished);
    off = (off + 7) & ~(size_t)7;
    for (i = 0; i < s->n_slots; i++) {
        s->slots[i].logq = (double *)(void *)(mem + off);
        off += V * sizeof(double);
        s->slots[i].logr = (double *)(void *)(mem + off);
        off += V * sizeof(double);
    }
    s->logits = (float *)(void *)(mem + off);
    off += (size_t)s->n_slots * V * sizeof(float);
    s->logits_ref = (float *)(void *)(mem + off);
    off += (size_t)s->n_slots * V * sizeof(float);
    for (i = 0; i < s->n_slots; i++) {
        s->slots[i].job = -1;
        s->slots[i].work = (int *)(void *)(mem + off);
        off += V * sizeof(int);
        s->slots[i].ids = (int *)(void *)(mem + off);
        off += (size_t)c->max_new * sizeof(int);
    }
    for (i = 0; i < s->window; i++) {
        s->ring[i].ids = (int *)(void *)(mem + off);
        off += (size_t)c->max_new * sizeof(int);
    }
    s->tokens_in = (int *)(void *)(mem + off);
    s->slot_of = s->tokens_in + max_tok;
    s->want = s->slot_of + max_tok;
    s->order = s->want + max_tok;
    return 0;
}

/* Give free slots the next samples, as long as the ring can hold their results. */
static void run_fill(run_state *s) {
    int i;
    for (i = 0; i < s->n_slots; i++) {
        slot_state *st = &s->slots[i];
        long job = s->next_start;
        if (st->job >= 0) continue;
        if (job >= s->n_jobs || job - s->next_emit >= s->window) return;
        s->next_start++;
        st->job = job;
        st->fed_prompt = 0;
        st->next = 0;
        st->bad = 0;
        memset(&st->r, 0, sizeof st->r);
        st->r.prompt = job / s->c->n;
        st->r.index = job % s->c->n;
        st->r.ids = st->ids;
        sample_stream(&st->rng, s->c->seed, st->r.prompt, st->r.index);
        model_kv_clear(&s->kv, i);
        if (s->ref) model_kv_clear(&s->kv_ref, i);
    }
}

/* One call's tokens: a new slot's whole prompt (logits wanted after its last
 * token), or the token each running slot drew last. Returns the token count. */
static int run_gather(run_state *s, int *rows) {
    int i, n = 0, t;
    *rows = 0;
    for (i = 0; i < s->n_slots; i++) {
        slot_state *st = &s->slots[i];
        if (st->job < 0) continue;
        if (!st->fed_prompt) {
            const int *pr = s->prompts[st->r.prompt];
            int len = s->prompt_len[st->r.prompt];
            for (t = 0; t < len; t++, n++) {
                s->tokens_in[n] = pr[t];
                s->slot_of[n] = i;
                s->want[n] = t == len - 1;
            }
            st->fed_prompt = 1;
        } else {
            s->tokens_in[n] = st->next;
            s->slot_of[n] = i;
            s->want[n++] = 1;
        }
        (*rows)++;
    }
    return n;
}

/* After a call: each running slot's distribution from its logits row, its
 * draw, its KL terms, and whether it has finished. Slots are independent
 * (each writes only its own state), so they run in parallel. Returns 0, or -1
 * when a row of logits was not finite. */
static int run_step_rows(run_state *s, int rows) {
    const sample_config *c = s->c;
    int V = s->V, k, i, r = 0, *ord = s->order;
    for (i = 0; i < s->n_slots; i++)
        if (s->slots[i].job >= 0) ord[r++] = i;
    DPO_OMP_FOR_IF((double)rows * V * 8)
    for (k = 0; k < rows; k++) {
        slot_state *st = &s->slots[ord[k]];
        double u = util_rng_uniform(&st->rng);
        int y, len = s->prompt_len[st->r.prompt];
        if (sample_distribution(st->logq, s->logits + (size_t)k * V, V, &c->filter, st->work) == 0) {
            st->bad = 1;
            continue;
        }
        y = sample_draw(st->logq, V, u);
        st->r.logq += st->logq[y];
        st->r.n_positions++;
        if (s->ref) {
            model_log_softmax(st->logr, s->logits_ref + (size_t)k * V, V);
            st->r.kl += sample_kl(st->logq, st->logr, V);
            st->r.kl_sampled += st->logq[y] - st->logr[y];
        }
        if (y == c->eos) {
            st->r.finish = SAMPLE_EOS;
            st->next = -1;
            continue;
        }
        st->ids[st->r.n_ids++] = y;
        st->next = y;
        if (st->r.n_ids == c->max_new || len + st->r.n_ids == s->ctx) {
            st->r.finish = SAMPLE_LENGTH;
            st->next = -1;
        }
    }
    for (k = 0; k < rows; k++)
        if (s->slots[ord[k]].bad) return -1;
    return 0;
}

/* Move finished slots' results to the ring and emit, in job order, all that
 * are ready. */
static int run_collect(run_state *s, void *ctx, sample_emit_fn emit, dpo_err *e) {
    int i;
    for (i = 0; i < s->n_slots; i++) {
        slot_state *st = &s->slots[i];
        finished *f;
        if (st->job < 0 || st->next >= 0) continue;
        f = &s->ring[st->job % s->window];
        f->r = st->r;
        memcpy(f->ids, st->ids, (size_t)st->r.n_ids * sizeof(int));
        f->r.ids = f->ids;
        f->ready = 1;
        st->job = -1;
    }
    for (;;) {
        finished *f;
        if (s->next_emit >= s->n_jobs) return 0;
        f = &s->ring[s->next_emit % s->window];
        if (!f->ready) return 0;
        f->ready = 0;
        s->next_emit++;
        if (emit && emit(ctx, &f->r, e) != 0) return -1;
    }
}

int sample_run(const model *policy, const model *ref, const int *const *prompts, const int *prompt_len,
               long n_prompts, const sample_config *c, sample_emit_fn emit, sample_progress_fn progress, void *ctx,
               dpo_err *e) {
    run_state s;
    int rc = 0;
    memset(&s, 0, sizeof s);
    s.policy = policy;
    s.ref = ref;
    s.prompts = prompts;
    s.prompt_len = prompt_len;
    s.c = c;
    if (sample_filter_validate(&c->filter, e) != 0) return -1;
    if (c->n < 1 || c->max_new < 1 || c->batch < 1)
        return dpo_errf(e, "samples per prompt, new tokens and batch must be >= 1");
    if (n_prompts < 0) return dpo_errf(e, "a negative number of prompts (%ld)", n_prompts);
    if (n_prompts > (1L << 40) / c->n) return dpo_errf(e, "too many samples");
    s.n_jobs = n_prompts * c->n;
    if (s.n_jobs == 0) return 0;
    if (run_init(&s, e) != 0) {
        run_free(&s);
        return -1;
    }
    while (rc == 0 && s.next_emit < s.n_jobs) {
        int rows, n;
        run_fill(&s);
        n = run_gather(&s, &rows);
        if (model_kv_forward(policy, &s.kv, s.logits, s.tokens_in, s.slot_of, s.want, n, e) != 0 ||
            (ref && model_kv_forward(ref, &s.kv_ref, s.logits_ref, s.tokens_in, s.slot_of, s.want, n, e) != 0)) {
            rc = -1;
            break;
        }
        if (run_step_rows(&s, rows) != 0) {
            rc = dpo_errf(e, "the model produced logits that are not finite numbers");
            break;
        }
        s.tokens += rows;
        rc = run_collect(&s, ctx, emit, e);
        if (progress) progress(ctx, s.next_emit, s.n_jobs, s.tokens);
    }
    run_free(&s);
    return rc;
}
