/* cmd_bench.c - owns `dpo bench`: how fast this build is on this CPU. It names
 * the matrix kernel, the CPU and the threads, then times what was asked for:
 * forward and backward passes (--passes), every matrix product of the model's
 * passes on its own (--products), and whole DPO optimizer steps with the time
 * split by layer kind (--dpo); last, the peak memory of the process.
 * The model is a directory (--model) or a shape with GPT-2's initialisation;
 * tokens are random. It reads only the model directory, /proc/cpuinfo and
 * /proc/self/status, writes nothing but standard output, and never touches the
 * network. The passes, the DPO step and the profile are model.c's and
 * train.c's own code (model_forward, model_backward, train_step, model_prof);
 * the products are the same mm_* calls, with the same shapes, that model.c makes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_products.h"
#include "cli.h"
#include "data.h"
#include "matmul.h"
#include "model.h"
#include "optim.h"
#include "train.h"
#include "util.h"

/* ======================================================================== */
/* the machine: CPU, instruction sets, peak memory                           */
/* ======================================================================== */

/* The value of the first "key : value" line of a /proc file whose key is one of
 * keys[0..n) (exactly, before the colon's padding), copied into out (cap bytes,
 * truncated); 0, or -1 when the file cannot be read or has no such line. */
static int proc_field(const char *path, const char *const *keys, int n, char *out, size_t cap) {
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t lcap = 0;
    int found = -1, k;
    if (!fp) return -1;
    while (found != 0 && getline(&line, &lcap, fp) > 0) {
        char *colon = strchr(line, ':'), *end, *v;
        if (!colon) continue;
        for (end = colon; end > line && (end[-1] == ' ' || end[-1] == '\t'); end--) continue;
        for (k = 0; k < n && found != 0; k++) {
            size_t kl = strlen(keys[k]);
            if ((size_t)(end - line) != kl || strncmp(line, keys[k], kl) != 0) continue;
            for (v = colon + 1; *v == ' ' || *v == '\t'; v++) continue;
            v[strcspn(v, "\n")] = '\0';
            snprintf(out, cap, "%s", v);
            found = 0;
        }
    }
    free(line);
    fclose(fp);
    return found;
}

/* "avx2 fma avx512f" ...: which of the instruction sets that matter to the
 * kernels the CPU lists (x86 "flags", Arm "Features"); "unknown" when
 * /proc/cpuinfo cannot be read. */
static void cpu_isa(char *out, size_t cap) {
    static const char *const keys[] = {"flags", "Features"};
    static const char *const wanted[] = {"avx2", "fma", "avx512f", "avx512_bf16", "asimd", "neon", "sve"};
    char *flags = malloc(16384);
    size_t used = 0, i;
    out[0] = '\0';
    if (!flags || proc_field("/proc/cpuinfo", keys, 2, flags, 16384) != 0) {
        snprintf(out, cap, "unknown");
        free(flags);
        return;
    }
    for (i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        const char *p = flags;
        size_t wl = strlen(wanted[i]);
        while ((p = strstr(p, wanted[i])) != NULL) { /* a whole word of the list */
            if ((p == flags || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\0')) break;
            p += wl;
        }
        if (p && used + wl + 2 < cap) used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? " " : "", wanted[i]);
    }
    if (!used) snprintf(out, cap, "none of avx2 fma avx512f asimd neon");
    free(flags);
}

/* the first lines of every report: kernel, CPU, instruction sets, threads */
static void print_machine(void) {
    static const char *const model_keys[] = {"model name"};
    char name[256], isa[256];
    int mr, nr, kc, nc;
    if (proc_field("/proc/cpuinfo", model_keys, 1, name, sizeof name) != 0 || !name[0])
        snprintf(name, sizeof name, "unknown");
    cpu_isa(isa, sizeof isa);
    mm_blocking(&mr, &nr, &kc, &nc);
    printf("kernel: %s (tile %d x %d, block %d x %d)\n", mm_kernel_name(), mr, nr, kc, nc);
    printf("cpu: %s\n", name);
    printf("isa: %s\n", isa);
    printf("threads: %d\n", util_threads());
}

/* the peak resident memory of this process (VmHWM), or "unknown" */
static void print_peak_memory(void) {
    static const char *const keys[] = {"VmHWM"};
    char v[128];
    long kb;
    /* NOLINTNEXTLINE(cert-err34-c): the kernel's own number; if it does not parse, the line is left out */
    if (proc_field("/proc/self/status", keys, 1, v, sizeof v) == 0 && sscanf(v, "%ld", &kb) == 1)
        printf("peak memory: %.3f GiB (VmHWM %ld kB)\n", (double)kb / 1048576.0, kb);
    else
        printf("peak memory: unknown (no VmHWM in /proc/self/status)\n");
}

/* ======================================================================== */
/* small helpers                                                             */
/* ======================================================================== */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the median of v[0..n) (sorts v) */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double min_of(const double *v, int n) {
    /* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): n = --reps >= 1 values, all set by time_product */
    double m = v[0];
    int i;
    for (i = 1; i < n; i++)
        if (v[i] < m) m = v[i];
    return m;
}

/* n floats, uniform in [-0.5, 0.5) from rng, or NULL when out of memory */
static float *random_floats(size_t n, util_rng *rng) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    size_t i;
    if (!p) return NULL;
    for (i = 0; i < n; i++) p[i] = (float)(util_rng_uniform(rng) - 0.5);
    return p;
}

/* ======================================================================== */
/* --passes: forward and backward passes over a packed batch                 */
/* ======================================================================== */

/* steps + 1 forward and backward passes over the packed batch; the first is a
 * warm-up, the others' seconds are summed into *tf (forward) and *tb (backward) */
static int time_passes(model *m, const int *tokens, const int *targets, const int *lens, int seqs, float *logp,
                       const float *dlogp, int steps, double *tf, double *tb, dpo_err *e) {
    int i;
    for (i = 0; i <= steps; i++) {
        double t0 = util_seconds(), t1, t2;
        if (model_forward(m, logp, tokens, targets, lens, seqs, e) != 0) return -1;
        t1 = util_seconds();
        model_zero_grad(m);
        if (model_backward(m, dlogp, e) != 0) return -1;
        t2 = util_seconds();
        if (i > 0) {
            *tf += t1 - t0;
            *tb += t2 - t1;
        }
    }
    return 0;
}

static int bench_passes(model *m, int seqs, int len, int steps, uint64_t seed, dpo_err *e) {
    int n = seqs * len, i, rc = -1;
    int *tokens = malloc((size_t)n * sizeof *tokens), *targets = malloc((size_t)n * sizeof *targets);
    int *lens = malloc((size_t)seqs * sizeof *lens);
    float *logp = malloc((size_t)n * sizeof *logp), *dlogp = malloc((size_t)n * sizeof *dlogp);
    double tf = 0.0, tb = 0.0, loss = 0.0;
    util_rng rng;
    if (!tokens || !targets || !lens || !logp || !dlogp) {
        dpo_err_oom(e, "the batch's arrays",
                    (size_t)n * (sizeof *tokens + sizeof *targets + sizeof *logp + sizeof *dlogp) +
                        (size_t)seqs * sizeof *lens,
                    1);
        goto done;
    }
    if (model_alloc_grads(m, e) != 0) goto done;
    util_rng_seed(&rng, seed);
    for (i = 0; i < n; i++) {
        tokens[i] = (int)(util_rng_u64(&rng) % (uint64_t)m->cfg.vocab_size);
        targets[i] = (int)(util_rng_u64(&rng) % (uint64_t)m->cfg.vocab_size);
        dlogp[i] = -1.0f / (float)n; /* mean negative log-likelihood */
    }
    for (i = 0; i < seqs; i++) lens[i] = len;
    if (time_passes(m, tokens, targets, lens, seqs, logp, dlogp, steps, &tf, &tb, e) != 0) goto done;
    /* NOLINTNEXTLINE(clang-analyzer-core.uninitialized.Assign): --steps >= 1, so time_passes ran the forward pass */
    for (i = 0; i < n; i++) loss -= logp[i];
    printf("\npasses: batch %d x %d tokens, %d timed passes after 1 warm-up (mean)\n", seqs, len, steps);
    printf("mean NLL %.4f\n", loss / n);
    printf("forward  %.3f s/pass  %.0f tokens/s\n", tf / steps, (double)n * steps / tf);
    printf("backward %.3f s/pass  %.0f tokens/s\n", tb / steps, (double)n * steps / tb);
    printf("fwd+bwd  %.3f s/pass  %.0f tokens/s\n", (tf + tb) / steps, (double)n * steps / (tf + tb));
    rc = 0;
done:
    free(tokens);
    free(targets);
    free(lens);
    free(logp);
    free(dlogp);
    return rc;
}

/* ======================================================================== */
/* --products: every matrix product of a pass, on its own                    */
/* ======================================================================== */

/* the products and their list: bench_products.h (shared with bench/openblas_gemm.c) */
static const char *const call_names[] = {"mm_ab", "mm_ab", "mm_a_bt", "mm_add_at_b"};

/* reps + 1 calls of product p on random operands (the first a warm-up); the
 * seconds of the timed ones in t[0..reps) */
static int time_product(const product *p, int reps, util_rng *rng, double *t, dpo_err *e) {
    size_t M = (size_t)p->M, N = (size_t)p->N, K = (size_t)p->K;
    float *a = random_floats(M * K, rng), *b = random_floats(K * N, rng), *out = random_floats(M * N, rng);
    float *bias = random_floats(N, rng);
    int r;
    if (!a || !b || !out || !bias) {
        char what[160];
        free(a);
        free(b);
        free(out);
        free(bias);
        snprintf(what, sizeof what, "the operands of the product %.64s (%d x %d x %d)", p->name, p->M, p->N, p->K);
        return dpo_err_oom(e, what, M * K + K * N + M * N + N, sizeof(float));
    }
    for (r = 0; r <= reps; r++) {
        double t0 = util_seconds();
        switch (p->call) { /* a (M, K), or stored (K, M) for mm_add_at_b; b (K, N), or stored (N, K) for *_bt */
        case CALL_AB: mm_ab(out, a, b, NULL, p->M, p->N, p->K); break;
        case CALL_AB_BIAS: mm_ab(out, a, b, bias, p->M, p->N, p->K); break;
        case CALL_A_BT: mm_a_bt(out, a, b, p->M, p->N, p->K); break;
        case CALL_ADD_AT_B: mm_add_at_b(out, a, b, p->M, p->N, p->K); break;
        }
        if (r > 0) t[r - 1] = util_seconds() - t0;
    }
    free(a);
    free(b);
    free(out);
    free(bias);
    return 0;
}

static int bench_products(const model_config *c, int n_tok, int reps, uint64_t seed, dpo_err *e) {
    product p[BENCH_NUM_PRODUCTS];
    double *t = malloc((size_t)reps * sizeof *t), flops_pass = 0.0, secs_pass = 0.0, peak, peak_secs = 0.0;
    int n = list_products(p, n_tok, c->n_embd, c->vocab_size, c->n_layer), i, peak_threads;
    util_rng rng;
    if (!t) return dpo_err_oom(e, "the timings", (size_t)reps, sizeof *t);
    util_rng_seed(&rng, seed);
    peak = mm_fma_peak(0.5, &peak_threads);
    printf("\nFMA peak: %.1f GFLOP/s on %d threads (%s vectors of fused multiply-adds in registers, no memory "
           "access: the most a product can reach)\n", peak, peak_threads, mm_kernel_name());
    printf("products: n_tok %d, C %d, V %d, %d layers; each the best and median of %d timed calls after 1 "
           "warm-up; GFLOP/s = 2 M N K / best time, peak%% = GFLOP/s / the FMA peak measured again just before "
           "the product (0.2 s; the machine's speed may drift)\n", n_tok, c->n_embd, c->vocab_size, c->n_layer,
           reps);
    printf("%-13s %-12s %7s %7s %7s %10s %10s %6s %9s\n", "name", "call", "M", "N", "K", "best_ms", "median_ms",
           "peak%", "GFLOP/s");
    for (i = 0; i < n; i++) {
        double flops = 2.0 * p[i].M * (double)p[i].N * p[i].K, best, med, pk = mm_fma_peak(0.2, &peak_threads);
        if (time_product(&p[i], reps, &rng, t, e) != 0) {
            free(t);
            return -1;
        }
        best = min_of(t, reps);
        med = median(t, reps);
        printf("%-13s %-12s %7d %7d %7d %10.3f %10.3f %6.1f %9.1f\n", p[i].name, call_names[p[i].call], p[i].M,
               p[i].N, p[i].K, best * 1e3, med * 1e3, 100.0 * flops / best / 1e9 / pk, flops / best / 1e9);
        flops_pass += flops * p[i].per_pass;
        secs_pass += best * p[i].per_pass;
        peak_secs += flops * p[i].per_pass / (pk * 1e9); /* the pass at each product's peak */
    }
    printf("one pass's products at %.1f%% of the FMA peak\n", 100.0 * peak_secs / secs_pass);
    printf("all products of one forward + backward pass (%d layers + head): %.1f GFLOP in %.3f s (best times): "
           "%.1f GFLOP/s\n", c->n_layer, flops_pass / 1e9, secs_pass, flops_pass / secs_pass / 1e9);
    free(t);
    return 0;
}

/* ======================================================================== */
/* --dpo: whole DPO optimizer steps, timed and profiled                      */
/* ======================================================================== */

typedef struct {
    int pairs, len, prompt_len; /* P pairs of T tokens; the prompt's share (0: drawn per pair) */
    int micro_batch, steps;
    uint64_t seed;
} dpo_opts;

/* P random pairs: each a prompt of K tokens (opts->prompt_len, or drawn in
 * 1..T-1) and two responses of T - K, so that each sequence prompt ++ response
 * has T tokens, as bench/torch_dpo_step.py builds them. */
static int random_pairs(data_set *d, const dpo_opts *o, int V, util_rng *rng, dpo_err *e) {
    size_t total = 0, j;
    int i;
    memset(d, 0, sizeof *d);
    d->rows = calloc((size_t)o->pairs, sizeof *d->rows);
    if (!d->rows) return dpo_err_oom(e, "the pairs", (size_t)o->pairs, sizeof *d->rows);
    for (i = 0; i < o->pairs; i++) {
        data_row *r = &d->rows[i];
        r->n_prompt = o->prompt_len ? o->prompt_len : 1 + (int)(util_rng_u64(rng) % (uint64_t)(o->len - 1));
        r->n_chosen = r->n_rejected = o->len - r->n_prompt;
        r->line = i + 1;
        r->off = total;
        total += (size_t)r->n_prompt + 2 * (size_t)r->n_chosen;
    }
    /* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI): --pairs >= 1 and --len >= 2, so total >= 2 */
    d->pool = malloc(total * sizeof *d->pool);
    if (!d->pool) {
        free(d->rows);
        d->rows = NULL;
        return dpo_err_oom(e, "the pairs' token pool", total, sizeof *d->pool);
    }
    for (j = 0; j < total; j++) d->pool[j] = (int)(util_rng_u64(rng) % (uint64_t)V);
    d->n_rows = o->pairs;
    d->n_pool = total;
    return 0;
}

static const char *const prof_names[MODEL_PROF_N] = {
    [MODEL_PROF_QKV] = "matmul qkv",         [MODEL_PROF_ATTPROJ] = "matmul attproj",
    [MODEL_PROF_FC] = "matmul fc",           [MODEL_PROF_FCPROJ] = "matmul fcproj",
    [MODEL_PROF_ATTENTION] = "attention",    [MODEL_PROF_LAYERNORM] = "layernorm",
    [MODEL_PROF_GELU] = "gelu",              [MODEL_PROF_HEAD] = "head + log-softmax",
    [MODEL_PROF_OTHER] = "residual/other"};

/* multiply-adds x 2 of one forward pass of category k over n_tok tokens, n_sel
 * of them with a target (0 for the categories that are not matrix products) */
static double prof_flops(int k, const model_config *c, double n_tok, double n_sel) {
    double C = c->n_embd, L = c->n_layer;
    switch (k) {
    case MODEL_PROF_QKV: return 2.0 * L * n_tok * C * 3.0 * C;
    case MODEL_PROF_ATTPROJ: return 2.0 * L * n_tok * C * C;
    case MODEL_PROF_FC:
    case MODEL_PROF_FCPROJ: return 2.0 * L * n_tok * C * 4.0 * C;
    case MODEL_PROF_HEAD: return 2.0 * n_sel * C * c->vocab_size;
    default: return 0.0;
    }
}

static void print_breakdown(const model_prof *ref, const model_prof *pol, double optim, double step, int steps,
                            const model_config *c, double n_tok, double n_sel) {
    double sum = 0.0;
    int k;
    printf("\nbreakdown: mean seconds per step over the %d timed steps (the reference forward, the policy "
           "forward and backward); GFLOP/s of the matrix products (a backward pass makes two per forward one)\n",
           steps);
    printf("%-20s %9s %9s %9s %9s %7s %9s\n", "part", "ref_fwd", "pol_fwd", "pol_bwd", "total", "share", "GFLOP/s");
    for (k = 0; k < MODEL_PROF_N; k++) {
        double rf = ref->fwd[k] / steps, pf = pol->fwd[k] / steps, pb = pol->bwd[k] / steps, tot = rf + pf + pb;
        double fl = prof_flops(k, c, n_tok, n_sel) * 4.0; /* ref fwd + pol fwd + 2 x pol fwd in the backward */
        sum += tot;
        printf("%-20s %9.4f %9.4f %9.4f %9.4f %6.1f%%", prof_names[k], rf, pf, pb, tot, 100.0 * tot / step);
        if (fl > 0.0 && tot > 0.0) printf(" %9.1f\n", fl / tot / 1e9);
        else printf(" %9s\n", "-");
    }
    printf("%-20s %9s %9s %9s %9.4f %6.1f%%\n", "optimizer", "", "", "", optim, 100.0 * optim / step);
    printf("%-20s %9s %9s %9s %9.4f %6.1f%%\n", "rest", "", "", "", step - sum - optim,
           100.0 * (step - sum - optim) / step);
    printf("%-20s %9s %9s %9s %9.4f %6.1f%%\n", "step (mean)", "", "", "", step, 100.0);
    printf("(rest: zeroing the gradients, packing the batch, the objective, and the passes outside their layers)\n");
}

static int bench_dpo(model *pol, const dpo_opts *o, dpo_err *e) {
    train_config tc;
    model ref;
    optim_state opt;
    data_set d;
    train_metrics m;
    model_prof pref, ppol;
    util_rng rng;
    int *rows = NULL, i, rc = -1;
    char split[64];
    double *t = malloc((size_t)o->steps * sizeof *t), optim = 0.0, mean = 0.0, n_tok = 0.0, n_sel = 0.0;
    memset(&ref, 0, sizeof ref);
    memset(&opt, 0, sizeof opt);
    memset(&d, 0, sizeof d);
    memset(&pref, 0, sizeof pref);
    memset(&ppol, 0, sizeof ppol);
    if (!t) return dpo_err_oom(e, "the step times", (size_t)o->steps, sizeof *t);
    /* dpo train's defaults: the dpo loss with beta 0.1, RMSprop with PyTorch's
       defaults at lr 1e-6, clipping at 10; no warm-up (every step updates) */
    train_config_defaults(&tc, TRAIN_DPO);
    tc.opt.warmup = 0;
    tc.batch = o->pairs;
    tc.micro_batch = o->micro_batch < o->pairs ? o->micro_batch : o->pairs;
    util_rng_seed(&rng, o->seed);
    if (random_pairs(&d, o, pol->cfg.vocab_size, &rng, e) != 0) goto done;
    /* the frozen reference: a copy of the policy, forward-only, as dpo train loads it */
    if (model_create(&ref, &pol->cfg, e) != 0) goto done;
    memcpy(ref.params_mem, pol->params_mem, pol->num_params * sizeof(float));
    model_set_no_grad(&ref, 1);
    if (optim_init(&opt, &tc.opt, pol->num_params, e) != 0) goto done;
    rows = malloc((size_t)o->pairs * sizeof *rows);
    if (!rows) {
        dpo_err_oom(e, "the batch's row indices", (size_t)o->pairs, sizeof *rows);
        goto done;
    }
    for (i = 0; i < o->pairs; i++) {
        rows[i] = i;
        n_tok += 2.0 * (o->len - 1);
        n_sel += 2.0 * d.rows[i].n_chosen;
    }
    if (o->prompt_len) snprintf(split, sizeof split, "%d", o->prompt_len);
    else snprintf(split, sizeof split, "drawn per pair in 1..%d", o->len - 1);
    printf("\ndpo: %d pairs x %d tokens (prompt %s, the rest response), micro-batch %d, reference in memory "
           "(forward-only), dpo loss beta %g, %s lr %g, clip %g; %d timed steps after 1 warm-up\n",
           o->pairs, o->len, split, tc.micro_batch, tc.loss.beta, optim_kind_name(tc.opt.kind), tc.opt.lr,
           tc.opt.grad_clip, o->steps);
    printf("per step: %.0f tokens forwarded by the reference and by the policy (each sequence without its "
           "last token), %.0f of them through the head\n", n_tok, n_sel);
    for (i = 0; i <= o->steps; i++) {
        double t0;
        if (i == 1) { /* the warm-up is done: profile the timed steps */
            pol->prof = &ppol;
            ref.prof = &pref;
        }
        t0 = util_seconds();
        if (train_step(&tc, pol, &ref, &opt, &d, rows, &m, e) != 0) goto done;
        if (i > 0) {
            t[i - 1] = util_seconds() - t0;
            mean += t[i - 1];
            optim += m.optim_seconds;
        }
    }
    mean /= o->steps;
    /* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): --steps >= 1, so train_step set m */
    printf("loss %.6f, grad norm %.4g\n", m.loss, m.grad_norm);
    printf("steps (s):");
    for (i = 0; i < o->steps; i++) printf(" %.3f", t[i]);
    printf("\n");
    print_breakdown(&pref, &ppol, optim / o->steps, mean, o->steps, &pol->cfg, n_tok, n_sel);
    printf("dpo step %.3f s (median of %d; mean %.3f, best %.3f)\n", median(t, o->steps), o->steps, mean,
           min_of(t, o->steps));
    rc = 0;
done:
    pol->prof = NULL;
    free(t);
    free(rows);
    data_free(&d);
    optim_free(&opt);
    model_free(&ref);
    return rc;
}

/* ======================================================================== */
/* the command                                                               */
/* ======================================================================== */

/* was option `name` on the command line? */
static int given(const opt_spec *opts, int n, const char *name) {
    int i;
    for (i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0) return opts[i].seen;
    return 0;
}

typedef struct {
    const char *name, *what;
    int n_layer, n_head, n_embd, n_ctx, vocab_size;
} bench_shape;

static const bench_shape shapes[] = {
    {"124m", "GPT-2 124M", 12, 12, 768, 1024, 50257},
    {"small", "the sentiment experiment's model", 4, 4, 128, 96, 2000},
};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

int cmd_bench(int argc, char **argv) {
    const char *dir = NULL, *shape = NULL;
    int seqs = 4, len = 256, steps = 3, reps = 5, threads = 0, rc, i;
    int passes = 0, products = 0, dpo = 0;
    dpo_opts d;
    model_config c;
    model m;
    dpo_err e;
    uint64_t seed = 1;
    char src[512];
    opt_spec opts[] = {
        {"--model", OPT_STR, &dir, 0, 0, 0, "a model directory (config.json + model.safetensors)", 0},
        {"--shape", OPT_NAME, &shape, 0, 0, 0,
         "a model shape with random weights instead: 124m (GPT-2 124M: 12 layers, 12 heads, width 768, context "
         "1024, vocabulary 50257) or small (the sentiment experiment's: 4 layers, 4 heads, width 128, context 96, "
         "vocabulary 2000)", 0},
        {"--layers", OPT_INT, &c.n_layer, 1, MODEL_MAX_LAYERS, 0, "or a shape of your own: transformer blocks", 0},
        {"--heads", OPT_INT, &c.n_head, 1, MODEL_MAX_HEADS, 0, "attention heads", 0},
        {"--dim", OPT_INT, &c.n_embd, 1, MODEL_MAX_EMBD, 0, "embedding width, a multiple of --heads", 0},
        {"--vocab", OPT_INT, &c.vocab_size, 1, MODEL_MAX_VOCAB, 0, "vocabulary size", 0},
        {"--ctx", OPT_INT, &c.n_ctx, 1, MODEL_MAX_CTX, 0, "context length (default 1024)", 0},
        {"--seed", OPT_U64, &seed, 0, 0, 0, "random weights, tokens and operands (default {default})", 0},
        {"--threads", OPT_INT, &threads, 1, 1024, 0, "OpenMP threads (default: all)", 0},
        {"--passes", OPT_FLAG, &passes, 0, 0, 0,
         "time forward and backward passes over --seqs random sequences of --len tokens, a target at every "
         "position (the mode when none is given): the mean of --steps passes after 1 warm-up", 0},
        {"--products", OPT_FLAG, &products, 0, 0, 0,
         "GFLOP/s of each matrix product of a pass at n_tok = --seqs x --len tokens: the forward, input "
         "gradient and weight gradient of the linear layers qkv (C->3C), attproj (C->C), fc (C->4C), fcproj "
         "(4C->C) and of the tied head (n_tok x V), each the mm_* call model.c makes with its shapes; the best "
         "and the median of --reps calls after 1 warm-up (GFLOP/s from the best), and each as a share of the "
         "FMA peak (vector fused multiply-adds in registers on every thread, measured first for 0.5 s and again "
         "for 0.2 s before each product)", 0},
        {"--dpo", OPT_FLAG, &dpo, 0, 0, 0,
         "seconds per DPO optimizer step as dpo train takes it: --pairs pairs of --len random tokens, the "
         "reference a forward-only copy of the policy in memory, the dpo loss (beta 0.1), RMSprop (lr 1e-6, "
         "clipping at 10) over every parameter; the median of --steps steps after 1 warm-up, and the time per "
         "layer kind, the head, the optimizer and the rest", 0},
        {"--seqs", OPT_INT, &seqs, 1, 4096, 0, "sequences per batch of --passes and --products (default {default})", 0},
        {"--len", OPT_INT, &len, 1, MODEL_MAX_CTX, 0, "tokens per sequence (default {default}; at most the context)", 0},
        {"--steps", OPT_INT, &steps, 1, 1000000, 0, "timed passes of --passes, steps of --dpo (default {default})", 0},
        {"--reps", OPT_INT, &reps, 1, 1000000, 0, "timed calls per product of --products (default {default})", 0},
        {"--pairs", OPT_INT, &d.pairs, 1, 4096, 0, "preference pairs per step of --dpo (default {default})", 0},
        {"--prompt-len", OPT_INT, &d.prompt_len, 0, MODEL_MAX_CTX, 0,
         "prompt tokens of each --dpo sequence, below --len (default --len / 2, as bench/torch_dpo_step.py; "
         "0: drawn per pair, uniform in 1..len-1)", 0},
        {"--micro-batch", OPT_INT, &d.micro_batch, 1, 4096, 0,
         "pairs per forward and backward pass of --dpo (default: all --pairs in one)", 0},
    };
    memset(&c, 0, sizeof c);
    memset(&m, 0, sizeof m);
    d.pairs = 2;
    d.prompt_len = -1;
    d.micro_batch = 0;
    rc = cli_parse("bench",
                   "usage: dpo bench (--model DIR | --shape NAME | --layers L --heads H --dim C --vocab V [--ctx N])\n"
                   "                 [--passes] [--products] [--dpo] [--seqs S] [--len T] [--steps K] [--reps R]\n"
                   "                 [--pairs P] [--prompt-len K] [--micro-batch M] [--seed S] [--threads N]\n\n"
                   "How fast this build is on this CPU. Prints the matrix kernel, the CPU's model name and\n"
                   "instruction sets (from /proc/cpuinfo) and the thread count first, then what the modes\n"
                   "measure (--passes when no mode is given; any combination runs in the order listed),\n"
                   "and last the peak memory of the process (VmHWM). The model is a directory, or a shape\n"
                   "with GPT-2's random initialisation (nothing is written); tokens are random. Times\n"
                   "come from a monotonic clock; measure on an otherwise idle machine, and compare builds\n"
                   "or libraries by ratios measured in the same run (make bench, bench/all.sh).",
                   argc, argv, opts, CLI_NOPTS(opts));
    if (rc != 0) return rc > 0 ? 0 : 2;
    {
        int own = c.n_layer || c.n_head || c.n_embd || c.vocab_size || c.n_ctx;
        int all_own = c.n_layer && c.n_head && c.n_embd && c.vocab_size;
        if ((dir != NULL) + (shape != NULL) + (own != 0) != 1) {
            fprintf(stderr, "dpo bench: give one of --model DIR, --shape NAME, or --layers, --heads, --dim and "
                            "--vocab\n");
            return 2;
        }
        if (own && !all_own) {
            fprintf(stderr, "dpo bench: a shape of your own needs all of --layers, --heads, --dim and --vocab\n");
            return 2;
        }
    }
    if (!passes && !products && !dpo) passes = 1;
    if (d.prompt_len < 0) d.prompt_len = len / 2;
    if (d.micro_batch == 0) d.micro_batch = d.pairs;
    d.len = len;
    d.steps = steps;
    d.seed = seed;
    if (dpo && len < 2) {
        fprintf(stderr, "dpo bench: --dpo needs --len of at least 2 (a prompt token and a response token)\n");
        return 2;
    }
    if (dpo && d.prompt_len >= len) {
        fprintf(stderr, "dpo bench: --prompt-len %d must be below --len %d (a response needs a token)\n", d.prompt_len,
                len);
        return 2;
    }
    if (!dpo && (given(opts, CLI_NOPTS(opts), "--pairs") || given(opts, CLI_NOPTS(opts), "--prompt-len") ||
                 given(opts, CLI_NOPTS(opts), "--micro-batch"))) {
        fprintf(stderr, "dpo bench: --pairs, --prompt-len and --micro-batch are options of --dpo\n");
        return 2;
    }
    if (!products && given(opts, CLI_NOPTS(opts), "--reps")) {
        fprintf(stderr, "dpo bench: --reps is an option of --products\n");
        return 2;
    }

    /* the model's config: from the directory, the named shape, or the options */
    if (dir) {
        if (model_load_config(dir, &c, &e) != 0) return cli_fail("bench", &e);
        snprintf(src, sizeof src, "%s", dir);
    } else {
        if (shape) {
            for (i = 0; i < N_SHAPES && strcmp(shape, shapes[i].name) != 0; i++) continue;
            if (i == N_SHAPES) {
                fprintf(stderr, "dpo bench: unknown --shape '%s' (known: 124m, small)\n", shape);
                return 2;
            }
            c.n_layer = shapes[i].n_layer;
            c.n_head = shapes[i].n_head;
            c.n_embd = shapes[i].n_embd;
            c.n_ctx = shapes[i].n_ctx;
            c.vocab_size = shapes[i].vocab_size;
            snprintf(src, sizeof src, "--shape %s (%s), random weights (seed %llu)", shapes[i].name, shapes[i].what,
                     (unsigned long long)seed);
        } else {
            if (c.n_ctx == 0) c.n_ctx = 1024;
            snprintf(src, sizeof src, "random weights (seed %llu)", (unsigned long long)seed);
        }
        c.ln_eps = 1e-5;
        c.eos_token_id = c.vocab_size - 1;
        if (model_config_validate(&c, &e) != 0) return cli_fail("bench", &e);
    }
    if ((passes || dpo) && len > c.n_ctx) {
        fprintf(stderr, "dpo bench: --len %d exceeds the model's context of %d\n", len, c.n_ctx);
        return 2;
    }

    util_set_threads(threads);
    print_machine();
    printf("model: %s: %d layers, %d heads, width %d, context %d, vocabulary %d\n", src, c.n_layer, c.n_head,
           c.n_embd, c.n_ctx, c.vocab_size);
    fflush(stdout);
    rc = 0;
    if (passes || dpo) { /* the products need only the shape */
        if (dir ? model_load(&m, dir, &e) != 0 : model_create(&m, &c, &e) != 0) return cli_fail("bench", &e);
        if (!dir) model_init_random(&m, seed);
        printf("parameters: %zu\n", m.num_params);
    }
    if (passes && bench_passes(&m, seqs, len, steps, seed, &e) != 0) rc = cli_fail("bench", &e);
    fflush(stdout);
    if (rc == 0 && products && bench_products(&c, seqs * len, reps, seed, &e) != 0) rc = cli_fail("bench", &e);
    fflush(stdout);
    if (rc == 0 && dpo && bench_dpo(&m, &d, &e) != 0) rc = cli_fail("bench", &e);
    model_free(&m);
    if (rc == 0) print_peak_memory();
    return rc;
}
