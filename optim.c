/* optim.c - owns the optimizers (SGD, RMSprop and AdamW with PyTorch's update
 * rules), the learning-rate schedule (Hugging Face's warm-up, constant and
 * cosine), global gradient-norm clipping, the optimizer state (one allocation
 * per moment) and its checkpoint file. It must never print or exit (errors go
 * back in a dpo_err), never trust a size, a counter or a value read from a
 * checkpoint before checking it, and never let an OpenMP loop write memory that
 * another iteration writes or sum in an order that depends on the thread count:
 * every result is bit-identical for any number of threads.
 *
 * Arithmetic follows PyTorch on float32 tensors: the per-step scalar
 * coefficients (learning rate, bias corrections, decay factors) are computed in
 * double and rounded to float once per step; every per-element operation is a
 * float operation, in the order PyTorch's kernels perform it (for example
 * addcdiv computes p + (value * m) / d, addcmul v + (value * g) * g).
 */
#include "optim.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

/* M_PI is not part of C99. */
#define OPTIM_PI 3.14159265358979323846

/* ======================================================================== */
/* configuration                                                             */
/* ======================================================================== */

static const char *const kind_names[] = {"sgd", "rmsprop", "adamw"};
static const char *const schedule_names[] = {"constant", "cosine"};

const char *optim_kind_name(optim_kind k) {
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "unknown";
}

const char *optim_schedule_name(optim_schedule s) {
    return (unsigned)s < sizeof schedule_names / sizeof schedule_names[0] ? schedule_names[s]
                                                                          : "unknown";
}

int optim_kind_from_name(const char *name, optim_kind *out, dpo_err *e) {
    int k;
    for (k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (optim_kind)k;
            return 0;
        }
    }
    return dpo_errf(e, "unknown optimizer \"%.64s\" (known: sgd, rmsprop, adamw)", name);
}

int optim_schedule_from_name(const char *name, optim_schedule *out, dpo_err *e) {
    int k;
    for (k = 0; k < (int)(sizeof schedule_names / sizeof schedule_names[0]); k++) {
        if (strcmp(name, schedule_names[k]) == 0) {
            *out = (optim_schedule)k;
            return 0;
        }
    }
    return dpo_errf(e, "unknown learning-rate schedule \"%.64s\" (known: constant, cosine)", name);
}

void optim_config_defaults(optim_config *c, optim_kind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->lr = 1e-6;
    c->warmup = 150;
    c->schedule = OPTIM_CONSTANT;
    c->total_steps = 0;
    c->weight_decay = 0.0;
    c->grad_clip = 10.0;
    c->alpha = 0.99;  /* torch.optim.RMSprop */
    c->beta1 = 0.9;   /* torch.optim.AdamW */
    c->beta2 = 0.999;
    c->eps = 1e-8;    /* both */
}

/* x in [0, 1); false for NaN */
static int in_unit(double x) { return x >= 0.0 && x < 1.0; }

int optim_config_validate(const optim_config *c, dpo_err *e) {
    if (c->kind != OPTIM_SGD && c->kind != OPTIM_RMSPROP && c->kind != OPTIM_ADAMW)
        return dpo_errf(e, "unknown optimizer kind %d", (int)c->kind);
    if (c->schedule != OPTIM_CONSTANT && c->schedule != OPTIM_COSINE)
        return dpo_errf(e, "unknown learning-rate schedule %d", (int)c->schedule);
    if (!(isfinite(c->lr) && c->lr > 0.0))
        return dpo_errf(e, "lr = %g must be a finite number > 0", c->lr);
    if (c->warmup < 0) return dpo_errf(e, "warmup = %d must be >= 0", c->warmup);
    if (!(isfinite(c->weight_decay) && c->weight_decay >= 0.0))
        return dpo_errf(e, "weight_decay = %g must be a finite number >= 0", c->weight_decay);
    if (c->kind == OPTIM_SGD && c->weight_decay != 0.0)
        return dpo_errf(e, "weight_decay = %g: sgd is plain: no weight decay", c->weight_decay);
    if (!(isfinite(c->grad_clip) && c->grad_clip >= 0.0))
        return dpo_errf(e, "grad_clip = %g must be a finite number >= 0 (0 turns clipping off)",
                        c->grad_clip);
    if (c->kind == OPTIM_RMSPROP && !in_unit(c->alpha))
        return dpo_errf(e, "alpha = %g must be in [0, 1)", c->alpha);
    if (c->kind == OPTIM_ADAMW && !in_unit(c->beta1))
        return dpo_errf(e, "beta1 = %g must be in [0, 1)", c->beta1);
    if (c->kind == OPTIM_ADAMW && !in_unit(c->beta2))
        return dpo_errf(e, "beta2 = %g must be in [0, 1)", c->beta2);
    if (c->kind != OPTIM_SGD && !(isfinite(c->eps) && c->eps > 0.0))
        return dpo_errf(e, "eps = %g must be a finite number > 0", c->eps);
    if (c->schedule == OPTIM_COSINE) {
        if (c->total_steps < 1)
            return dpo_errf(e, "total_steps = %ld must be >= 1 for the cosine schedule", c->total_steps);
        if ((long)c->warmup > c->total_steps)
            return dpo_errf(e, "warmup = %d must not exceed total_steps = %ld for the cosine schedule",
                            c->warmup, c->total_steps);
        if (!(c->min_lr >= 0.0 && c->min_lr <= c->lr))
            return dpo_errf(e, "min_lr = %g must be in [0, lr = %g]", c->min_lr, c->lr);
    }
    return 0;
}

/* ======================================================================== */
/* state                                                                     */
/* ======================================================================== */

int optim_init(optim_state *s, const optim_config *c, size_t n, dpo_err *e) {
    size_t bytes;
    memset(s, 0, sizeof *s);
    if (optim_config_validate(c, e) != 0) return -1;
    if (n == 0) return dpo_errf(e, "optimizer over 0 parameters");
    if (util_mul_size(n, sizeof(float), &bytes) != 0)
        return dpo_errf(e, "optimizer state for %zu parameters overflows", n);
    if (c->kind == OPTIM_ADAMW) {
        s->m = calloc(n, sizeof(float));
        if (!s->m) return dpo_errf(e, "out of memory for the first moment (%zu MiB)", bytes >> 20);
    }
    if (c->kind == OPTIM_RMSPROP || c->kind == OPTIM_ADAMW) {
        s->v = calloc(n, sizeof(float));
        if (!s->v) {
            free(s->m);
            s->m = NULL;
            return dpo_errf(e, "out of memory for the second moment (%zu MiB)", bytes >> 20);
        }
    }
    s->cfg = *c;
    s->n = n;
    s->step = 0;
    return 0;
}

void optim_free(optim_state *s) {
    free(s->m);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ======================================================================== */
/* learning-rate schedule                                                    */
/* ======================================================================== */

/* Hugging Face's LambdaLR factors, times the peak lr (t = step, w = warmup,
 * T = total_steps):
 *   t < w:     lr * (t / w)
 *   constant:  lr
 *   cosine:    m + (lr - m) * 0.5 * (1 + cos(pi * (t - w) / max(1, T - w)))  for t < T, else m
 * (m = min_lr; with m = 0 exactly Hugging Face's cosine schedule) */
double optim_lr(const optim_config *c, long step) {
    double progress;
    long span;
    if (step < 0) return 0.0;
    if (step < (long)c->warmup) return c->lr * ((double)step / (double)c->warmup);
    if (c->schedule == OPTIM_CONSTANT) return c->lr;
    if (step >= c->total_steps) return c->min_lr;
    span = c->total_steps - (long)c->warmup;
    if (span < 1) span = 1;
    progress = (double)(step - (long)c->warmup) / (double)span;
    return c->min_lr + (c->lr - c->min_lr) * (0.5 * (1.0 + cos(OPTIM_PI * progress)));
}

/* ======================================================================== */
/* gradient norm and clipping                                                */
/* ======================================================================== */

/* The chunking is fixed by these constants alone (never by the thread count):
 * chunk c covers elements [c * NORM_CHUNK, min(n, (c + 1) * NORM_CHUNK)), and is
 * summed in NORM_LANES interleaved lanes (element i into lane i % NORM_LANES)
 * that are added in a fixed tree at the end. Chunks are processed in groups of
 * NORM_GROUP, one parallel region per group (2^24 elements: 8 regions for
 * GPT-2 small), their partial sums on the stack (8 KiB); the partial sums are
 * then added in chunk order. */
#define NORM_CHUNK 16384
#define NORM_LANES 8
#define NORM_GROUP 1024

/* sum_i x_i^2 over one chunk, in double. Each (double)x * x is exact (a float
 * has a 24-bit significand, its square fits in double's 53 bits). */
static double norm_chunk_sumsq(const float *x, size_t n) {
    double acc[NORM_LANES] = {0};
    size_t i = 0;
    int j;
    for (; i + NORM_LANES <= n; i += NORM_LANES)
        for (j = 0; j < NORM_LANES; j++) acc[j] += (double)x[i + j] * (double)x[i + j];
    for (j = 0; i < n; i++, j++) acc[j] += (double)x[i] * (double)x[i];
    /* a fixed tree over the NORM_LANES = 8 lanes */
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* ||g||_2 = sqrt(sum_i g_i^2) */
double optim_grad_norm(const float *g, size_t n) {
    size_t nchunks = n / NORM_CHUNK + (n % NORM_CHUNK != 0), base;
    double total = 0.0;
    for (base = 0; base < nchunks; base += NORM_GROUP) {
        double part[NORM_GROUP];
        long cnt = (long)(nchunks - base < NORM_GROUP ? nchunks - base : NORM_GROUP), k;
        DPO_OMP_FOR_IF((double)cnt * NORM_CHUNK)
        for (k = 0; k < cnt; k++) {
            size_t begin = (base + (size_t)k) * NORM_CHUNK;
            size_t len = n - begin < NORM_CHUNK ? n - begin : NORM_CHUNK;
            part[k] = norm_chunk_sumsq(g + begin, len);
        }
        for (k = 0; k < cnt; k++) total += part[k];
    }
    return sqrt(total);
}

/* torch.nn.utils.clip_grad_norm_: when ||g|| > clip,
 *   g <- g * clip / (||g|| + 1e-6)
 * (the factor computed in double, rounded to float once). */
static void optim_clip(float *g, size_t n, double norm, double clip) {
    const float scale = (float)(clip / (norm + 1e-6));
    size_t i;
    DPO_OMP_FOR_IF(n)
    for (i = 0; i < n; i++) g[i] *= scale;
}

/* ======================================================================== */
/* updates                                                                   */
/* ======================================================================== */

/* SGD (torch.optim.SGD, momentum 0, no weight decay):
 *   p <- p - lr g */
static void optim_sgd(float *p, const float *g, size_t n, double lr) {
    const float lrf = (float)lr;
    size_t i;
    DPO_OMP_FOR_IF(n)
    for (i = 0; i < n; i++) p[i] = p[i] - lrf * g[i];
}

/* RMSprop (torch.optim.RMSprop, centered=False, momentum=0):
 *   g' = g + wd p                          (L2 penalty folded into the gradient)
 *   v <- alpha v + (1 - alpha) g'^2
 *   p <- p - lr g' / (sqrt(v) + eps)
 * The gradient buffer itself is not changed. */
static void optim_rmsprop(float *p, float *v, const float *g, size_t n, const optim_config *c,
                          double lr) {
    const float lrf = (float)lr, wd = (float)c->weight_decay, alpha = (float)c->alpha,
                one_minus_alpha = (float)(1.0 - c->alpha), eps = (float)c->eps;
    size_t i;
    DPO_OMP_FOR_IF(n)
    for (i = 0; i < n; i++) {
        float gi = g[i] + wd * p[i];
        float vi = v[i] * alpha + one_minus_alpha * gi * gi;
        v[i] = vi;
        p[i] = p[i] - lrf * gi / (sqrtf(vi) + eps);
    }
}

/* AdamW (torch.optim.AdamW, amsgrad=False), for update number t = step + 1:
 *   p <- p (1 - lr wd)                     (decoupled weight decay)
 *   m <- b1 m + (1 - b1) g
 *   v <- b2 v + (1 - b2) g^2
 *   p <- p - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
static void optim_adamw(float *p, float *m, float *v, const float *g, size_t n,
                        const optim_config *c, double lr, long t) {
    const double bc1 = 1.0 - pow(c->beta1, (double)t), bc2 = 1.0 - pow(c->beta2, (double)t);
    const float decay = (float)(1.0 - lr * c->weight_decay), b1 = (float)c->beta1,
                one_minus_b1 = (float)(1.0 - c->beta1), b2 = (float)c->beta2,
                one_minus_b2 = (float)(1.0 - c->beta2), step_size = (float)(lr / bc1),
                bc2_sqrt = (float)sqrt(bc2), eps = (float)c->eps;
    size_t i;
    DPO_OMP_FOR_IF(n)
    for (i = 0; i < n; i++) {
        float gi = g[i], pi = p[i] * decay;
        float mi = m[i] * b1 + one_minus_b1 * gi;
        float vi = v[i] * b2 + one_minus_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

double optim_step(optim_state *s, float *params, float *grads) {
    const double norm = optim_grad_norm(grads, s->n);
    const double lr = optim_lr(&s->cfg, s->step);
    if (!isfinite(norm)) return norm;
    if (s->cfg.grad_clip > 0.0 && norm > s->cfg.grad_clip) optim_clip(grads, s->n, norm, s->cfg.grad_clip);
    switch (s->cfg.kind) {
    case OPTIM_SGD: optim_sgd(params, grads, s->n, lr); break;
    case OPTIM_RMSPROP: optim_rmsprop(params, s->v, grads, s->n, &s->cfg, lr); break;
    case OPTIM_ADAMW: optim_adamw(params, s->m, s->v, grads, s->n, &s->cfg, lr, s->step + 1); break;
    }
    s->step++;
    return norm;
}

/* ======================================================================== */
/* checkpoint                                                                */
/* ======================================================================== */

/* The kinds' codes in the file: part of the format, independent of the enum. */
static const optim_kind all_kinds[] = {OPTIM_SGD, OPTIM_RMSPROP, OPTIM_ADAMW};

static int kind_code(optim_kind k) {
    switch (k) {
    case OPTIM_SGD: return 1;
    case OPTIM_RMSPROP: return 2;
    case OPTIM_ADAMW: return 3;
    }
    return 0;
}

#define HALF_BITS 24
#define HALF ((double)(1L << HALF_BITS)) /* 2^24: every integer below it is exact in float */

/* x = h[0] + 2^24 h[1] with both halves in [0, 2^24); x must be below 2^48 */
static int split_counter(uint64_t x, float h[2]) {
    if (x >> (2 * HALF_BITS)) return -1;
    h[0] = (float)(x & ((1u << HALF_BITS) - 1));
    h[1] = (float)(x >> HALF_BITS);
    return 0;
}

static int join_counter(const float h[2], uint64_t *x) {
    int k;
    for (k = 0; k < 2; k++)
        if (!(h[k] >= 0.0f && (double)h[k] < HALF && h[k] == floorf(h[k]))) return -1;
    *x = (uint64_t)h[0] + ((uint64_t)h[1] << HALF_BITS);
    return 0;
}

/* a one-dimensional F32 tensor of len elements */
static void out_vector(st_out_tensor *t, const char *name, const float *data, size_t len) {
    memset(t, 0, sizeof *t);
    t->name = name;
    t->data = data;
    t->ndim = 1;
    t->shape[0] = len;
}

int optim_save(const optim_state *s, const char *path, dpo_err *e) {
    st_out_tensor ts[5];
    float kind_f[1], n_f[2], step_f[2];
    size_t nt = 0;
    if (s->n == 0) return dpo_errf(e, "%s: the optimizer state to save is not initialised", path);
    if (s->step < 0 || split_counter((uint64_t)s->step, step_f) != 0)
        return dpo_errf(e, "%s: step %ld cannot be stored (must be in [0, 2^48))", path, s->step);
    if (split_counter((uint64_t)s->n, n_f) != 0)
        return dpo_errf(e, "%s: %zu parameters cannot be stored (must be below 2^48)", path, s->n);
    kind_f[0] = (float)kind_code(s->cfg.kind);
    out_vector(&ts[nt++], "kind", kind_f, 1);
    out_vector(&ts[nt++], "n", n_f, 2);
    out_vector(&ts[nt++], "step", step_f, 2);
    if (s->m) out_vector(&ts[nt++], "m", s->m, s->n);
    if (s->v) out_vector(&ts[nt++], "v", s->v, s->n);
    return st_write_f32(path, ts, nt, e);
}

/* the tensor `name`: present, F32, one dimension of `len` elements */
static const st_tensor *find_vector(const st_file *f, const char *name, size_t len, dpo_err *e) {
    const st_tensor *t = st_find(f, name);
    if (!t) {
        dpo_errf(e, "%s: no tensor \"%s\"", f->path, name);
        return NULL;
    }
    if (t->dtype != ST_F32) {
        dpo_errf(e, "%s: tensor \"%s\" has dtype %s, expected F32", f->path, name,
                 st_dtype_name(t->dtype));
        return NULL;
    }
    if (t->ndim != 1 || t->shape[0] != len) {
        dpo_errf(e, "%s: tensor \"%s\" must have shape [%zu] (it has %d dimensions and %zu elements)",
                 f->path, name, len, t->ndim, t->numel);
        return NULL;
    }
    return t;
}

/* every m_i finite; every v_i finite and >= 0; -1 and a message otherwise */
static int check_moments(const optim_state *s, const char *path, dpo_err *e) {
    size_t i;
    if (s->m)
        for (i = 0; i < s->n; i++)
            if (!isfinite(s->m[i]))
                return dpo_errf(e, "%s: tensor \"m\"[%zu] = %g is not finite", path, i, (double)s->m[i]);
    if (s->v)
        for (i = 0; i < s->n; i++)
            if (!(isfinite(s->v[i]) && s->v[i] >= 0.0f))
                return dpo_errf(e, "%s: tensor \"v\"[%zu] = %g is not a finite number >= 0", path, i,
                                (double)s->v[i]);
    return 0;
}

static void err_append(dpo_err *e, const char *text) {
    if (e) {
        size_t len = strlen(e->msg);
        snprintf(e->msg + len, sizeof e->msg - len, "%s", text);
    }
}

/* The small tensors of a state file: "kind" must be s's optimizer, "n" its
 * parameter count; "step" is returned. */
static int load_header(const optim_state *s, const st_file *f, const char *path, uint64_t *step_file,
                       dpo_err *e) {
    const st_tensor *tk, *tn, *tstep;
    float kind_f, n_f[2], step_f[2];
    uint64_t n_file;
    int found, k;
    if (!st_find(f, "kind")) return dpo_errf(e, "%s: not an optimizer state file (no tensor \"kind\")", path);
    if (!(tk = find_vector(f, "kind", 1, e)) || st_read_f32(f, tk, &kind_f, e) != 0) return -1;
    for (found = -1, k = 0; k < (int)(sizeof all_kinds / sizeof all_kinds[0]); k++)
        if (kind_f == (float)kind_code(all_kinds[k])) found = k;
    if (found < 0)
        return dpo_errf(e, "%s: tensor \"kind\" = %g is not a known optimizer (1 sgd, 2 rmsprop, 3 adamw)", path,
                        (double)kind_f);
    if (all_kinds[found] != s->cfg.kind)
        return dpo_errf(e, "%s: holds the state of %s, but the optimizer is %s", path,
                        optim_kind_name(all_kinds[found]), optim_kind_name(s->cfg.kind));
    if (!(tn = find_vector(f, "n", 2, e)) || st_read_f32(f, tn, n_f, e) != 0) return -1;
    if (join_counter(n_f, &n_file) != 0) return dpo_errf(e, "%s: tensor \"n\" is not two integers in [0, 2^24)", path);
    if (n_file != (uint64_t)s->n)
        return dpo_errf(e, "%s: holds the state of %llu parameters, but the model has %zu", path,
                        (unsigned long long)n_file, s->n);
    if (!(tstep = find_vector(f, "step", 2, e)) || st_read_f32(f, tstep, step_f, e) != 0) return -1;
    if (join_counter(step_f, step_file) != 0)
        return dpo_errf(e, "%s: tensor \"step\" is not two integers in [0, 2^24)", path);
    if (*step_file > (uint64_t)LONG_MAX) /* only where long has 32 bits */
        return dpo_errf(e, "%s: step %llu does not fit in a long", path, (unsigned long long)*step_file);
    return 0;
}

/* The moment tensors s's optimizer keeps ("m", "v"), and nothing else in the file. */
static int find_moments(const optim_state *s, const st_file *f, const char *path, const st_tensor **tm,
                        const st_tensor **tv, dpo_err *e) {
    size_t want = 3, i;
    *tm = *tv = NULL;
    if (s->m) {
        if (!(*tm = find_vector(f, "m", s->n, e))) return -1;
        want++;
    }
    if (s->v) {
        if (!(*tv = find_vector(f, "v", s->n, e))) return -1;
        want++;
    }
    if (f->n_tensors == want) return 0;
    for (i = 0; i < f->n_tensors; i++) {
        const char *nm = f->tensors[i].name;
        if (strcmp(nm, "kind") != 0 && strcmp(nm, "n") != 0 && strcmp(nm, "step") != 0 &&
            !(*tm && strcmp(nm, "m") == 0) && !(*tv && strcmp(nm, "v") == 0))
            break;
    }
    return dpo_errf(e, "%s: unexpected tensor \"%.200s\" in the state of %s", path,
                    i < f->n_tensors ? f->tensors[i].name : "?", optim_kind_name(s->cfg.kind));
}

int optim_load(optim_state *s, const char *path, dpo_err *e) {
    st_file f;
    const st_tensor *tm, *tv;
    uint64_t step_file = 0;
    int rc = -1;
    if (s->n == 0 || !s->m != (s->cfg.kind != OPTIM_ADAMW) || !s->v != (s->cfg.kind == OPTIM_SGD))
        return dpo_errf(e, "%s: the optimizer state to load into is not initialised", path);
    if (st_open(&f, path, e) != 0) return -1;
    /* the small tensors first: what the file is, then whether it fits s; then the moments, straight into s */
    if (load_header(s, &f, path, &step_file, e) == 0 && find_moments(s, &f, path, &tm, &tv, e) == 0) {
        if ((tm && st_read_f32(&f, tm, s->m, e) != 0) || (tv && st_read_f32(&f, tv, s->v, e) != 0) ||
            check_moments(s, path, e) != 0) {
            if (s->m) memset(s->m, 0, s->n * sizeof(float));
            if (s->v) memset(s->v, 0, s->n * sizeof(float));
            s->step = 0;
            err_append(e, " (the optimizer state was reset to its initial values)");
        } else {
            s->step = (long)step_file;
            rc = 0;
        }
    }
    st_close(&f);
    return rc;
}
