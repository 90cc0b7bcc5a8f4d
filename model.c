/* model.c - owns GPT-2's math: the configuration and its limits, the parameter
 * and activation layout, initialisation, and the forward and backward passes
 * over packed batches of sequences. Reading and writing Hugging Face model
 * directories is model_io.c's job.
 * It must never do file I/O, print or exit (errors go back in a dpo_err), and
 * never let an OpenMP loop write memory that another iteration writes (results
 * are bit-identical for any thread count). Every backward adds into its
 * gradients; the derivative of each layer sits under its forward, with the
 * forward line it undoes quoted.
 *
 * Names: C, H, D = C/H, L, V as in the config; a packed batch has n_tok tokens
 * in n_seq sequences (T tokens in one sequence), n_sel of which have a target.
 * Shapes in comments use these names; mm_* (matmul.h) name their own
 * dimensions M, N, K.
 *
 * The model is GPT-2 exactly as Hugging Face's GPT2LMHeadModel computes it in
 * eval mode (no dropout). For a sequence of tokens x_0..x_{T-1}:
 *
 *   h_t = wte[x_t] + wpe[t]
 *   for each block l:
 *     a = LN_1(h);  q, k, v = split(a Wqkv + bqkv)         per head of size D = C/H:
 *     y_t = sum_{s<=t} softmax_s(q_t . k_s / sqrt(D)) v_s  (causal)
 *     h = h + (y Wo + bo)
 *     h = h + (gelu(LN_2(h) Wfc + bfc) Wproj + bproj)
 *   logits_t = LN_f(h_t) wte^T                              (head tied to wte)
 *   log p(target_t | x_0..x_t) = logits_t[target_t] - log sum_v exp(logits_t[v])
 *
 * LN(x) = (x - mean(x)) / sqrt(var(x) + eps) * w + b, var the biased variance;
 * gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ("gelu_new").
 */
#include "model.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h> /* snprintf of the tensor names */
#include <stdlib.h>
#include <string.h>

#include "matmul.h"

/* ======================================================================== */
/* configuration and parameter layout                                        */
/* ======================================================================== */

int model_config_validate(const model_config *c, dpo_err *e) {
    size_t n;
    if (c->n_layer < 1 || c->n_layer > MODEL_MAX_LAYERS)
        return dpo_errf(e, "n_layer = %d is out of range [1, %d]", c->n_layer, MODEL_MAX_LAYERS);
    if (c->n_head < 1 || c->n_head > MODEL_MAX_HEADS)
        return dpo_errf(e, "n_head = %d is out of range [1, %d]", c->n_head, MODEL_MAX_HEADS);
    if (c->n_embd < 1 || c->n_embd > MODEL_MAX_EMBD)
        return dpo_errf(e, "n_embd = %d is out of range [1, %d]", c->n_embd, MODEL_MAX_EMBD);
    if (c->n_embd % c->n_head != 0)
        return dpo_errf(e, "n_embd = %d is not a multiple of n_head = %d", c->n_embd, c->n_head);
    if (c->n_ctx < 1 || c->n_ctx > MODEL_MAX_CTX)
        return dpo_errf(e, "n_positions = %d is out of range [1, %d]", c->n_ctx, MODEL_MAX_CTX);
    if (c->vocab_size < 1 || c->vocab_size > MODEL_MAX_VOCAB)
        return dpo_errf(e, "vocab_size = %d is out of range [1, %d]", c->vocab_size, MODEL_MAX_VOCAB);
    if (!(c->ln_eps > 0.0 && c->ln_eps < 1.0))
        return dpo_errf(e, "layer_norm_epsilon = %g is out of range (0, 1)", c->ln_eps);
    if (c->score_head != 0 && c->score_head != 1)
        return dpo_errf(e, "score_head = %d is neither 0 (a language model) nor 1 (a scalar head)", c->score_head);
    if (c->eos_token_id < 0 || c->eos_token_id >= c->vocab_size)
        return dpo_errf(e, "eos_token_id = %d is not a token id below vocab_size = %d",
                        c->eos_token_id, c->vocab_size);
    /* all sizes are bounded above, so this cannot overflow 64 bits: checked anyway */
    {
        size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer, per;
        per = 12 * C * C + 13 * C;
        n = (size_t)c->vocab_size * C + (size_t)c->n_ctx * C + L * per + (2 + (size_t)c->score_head) * C;
        if (n / C < (size_t)c->vocab_size || n > MODEL_MAX_PARAMS)
            return dpo_errf(e, "the config asks for %zu parameters, above the limit of %zu", n,
                            MODEL_MAX_PARAMS);
    }
    return 0;
}

/* floats in each family */
static void family_sizes(const model_config *c, size_t sz[MODEL_NUM_FAMILIES]) {
    size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer;
    sz[P_WTE] = (size_t)c->vocab_size * C;
    sz[P_WPE] = (size_t)c->n_ctx * C;
    sz[P_LN1W] = L * C;
    sz[P_LN1B] = L * C;
    sz[P_QKVW] = L * C * 3 * C;
    sz[P_QKVB] = L * 3 * C;
    sz[P_ATTPROJW] = L * C * C;
    sz[P_ATTPROJB] = L * C;
    sz[P_LN2W] = L * C;
    sz[P_LN2B] = L * C;
    sz[P_FCW] = L * C * 4 * C;
    sz[P_FCB] = L * 4 * C;
    sz[P_FCPROJW] = L * 4 * C * C;
    sz[P_FCPROJB] = L * C;
    sz[P_LNFW] = C;
    sz[P_LNFB] = C;
    sz[P_SCORE] = c->score_head ? C : 0;
}

static size_t carve(model_tensors *t, float *mem, const model_config *c) {
    size_t sz[MODEL_NUM_FAMILIES], off = 0;
    int i;
    family_sizes(c, sz);
    for (i = 0; i < MODEL_NUM_FAMILIES; i++) {
        if (t) t->t[i] = mem ? mem + off : NULL;
        off += sz[i];
    }
    return off;
}

/* HF suffix and shape of each per-layer family, in HF's order within a block */
static const struct {
    int family;
    const char *suffix;
    int rows, cols; /* in units of C; cols 0 means a vector of rows*C */
} block_tensors[12] = {
    {P_LN1W, "ln_1.weight", 1, 0},          {P_LN1B, "ln_1.bias", 1, 0},
    {P_QKVW, "attn.c_attn.weight", 1, 3},   {P_QKVB, "attn.c_attn.bias", 3, 0},
    {P_ATTPROJW, "attn.c_proj.weight", 1, 1}, {P_ATTPROJB, "attn.c_proj.bias", 1, 0},
    {P_LN2W, "ln_2.weight", 1, 0},          {P_LN2B, "ln_2.bias", 1, 0},
    {P_FCW, "mlp.c_fc.weight", 1, 4},       {P_FCB, "mlp.c_fc.bias", 4, 0},
    {P_FCPROJW, "mlp.c_proj.weight", 4, 1}, {P_FCPROJB, "mlp.c_proj.bias", 1, 0},
};

int model_num_tensors(const model_config *c) { return 4 + 12 * c->n_layer + (c->score_head ? 1 : 0); }

void model_tensor(const model_config *c, int i, model_tensor_info *out) {
    size_t sz[MODEL_NUM_FAMILIES], base[MODEL_NUM_FAMILIES], off = 0, C = (size_t)c->n_embd;
    int f, last = 2 + 12 * c->n_layer; /* ln_f.weight; ln_f.bias follows, then score.weight */
    family_sizes(c, sz);
    for (f = 0; f < MODEL_NUM_FAMILIES; f++) {
        base[f] = off;
        off += sz[f];
    }
    memset(out, 0, sizeof *out);
    out->layer = -1;
    if (i == 0 || i == 1) {
        out->family = i == 0 ? P_WTE : P_WPE;
        snprintf(out->name, sizeof out->name, "%s", i == 0 ? "wte.weight" : "wpe.weight");
        out->ndim = 2;
        out->shape[0] = i == 0 ? (size_t)c->vocab_size : (size_t)c->n_ctx;
        out->shape[1] = C;
    } else if (i == last + 2) {
        out->family = P_SCORE;
        snprintf(out->name, sizeof out->name, "%s", "score.weight");
        out->ndim = 2;
        out->shape[0] = 1;
        out->shape[1] = C;
    } else if (i >= last) {
        out->family = i == last ? P_LNFW : P_LNFB;
        snprintf(out->name, sizeof out->name, "%s", i == last ? "ln_f.weight" : "ln_f.bias");
        out->ndim = 1;
        out->shape[0] = C;
    } else {
        int l = (i - 2) / 12, j = (i - 2) % 12;
        out->family = block_tensors[j].family;
        out->layer = l;
        snprintf(out->name, sizeof out->name, "h.%d.%s", l, block_tensors[j].suffix);
        if (block_tensors[j].cols) {
            out->ndim = 2;
            out->shape[0] = (size_t)block_tensors[j].rows * C;
            out->shape[1] = (size_t)block_tensors[j].cols * C;
        } else {
            out->ndim = 1;
            out->shape[0] = (size_t)block_tensors[j].rows * C;
        }
    }
    out->numel = out->shape[0] * (out->ndim == 2 ? out->shape[1] : 1);
    out->offset = base[out->family] + (out->layer < 0 ? 0 : (size_t)out->layer * out->numel);
}

/* ======================================================================== */
/* creation, initialisation, gradients                                      */
/* ======================================================================== */

int model_create(model *m, const model_config *c, dpo_err *e) {
    memset(m, 0, sizeof *m);
    if (model_config_validate(c, e) != 0) return -1;
    m->cfg = *c;
    m->num_params = carve(NULL, NULL, c);
    m->params_mem = calloc(m->num_params, sizeof(float));
    if (!m->params_mem)
        return dpo_errf(e, "out of memory for %zu parameters (%zu MiB)", m->num_params,
                        m->num_params * sizeof(float) >> 20);
    carve(&m->params, m->params_mem, c);
    return 0;
}

void model_free(model *m) {
    free(m->params_mem);
    free(m->grads_mem);
    free(m->acts_mem);
    free(m->dacts_mem);
    free(m->ibuf);
    memset(m, 0, sizeof *m);
}

void model_init_random(model *m, uint64_t seed) { model_init_random_std(m, seed, 0.02); }

void model_init_random_std(model *m, uint64_t seed, double weight_std) {
    const model_config *c = &m->cfg;
    int n = model_num_tensors(c), i;
    double proj_std = weight_std / sqrt(2.0 * c->n_layer);
    util_rng rng;
    util_rng_seed(&rng, seed);
    for (i = 0; i < n; i++) {
        model_tensor_info ti;
        float *p;
        size_t k;
        model_tensor(c, i, &ti);
        p = m->params_mem + ti.offset;
        if (ti.ndim == 2) {
            double std = (ti.family == P_ATTPROJW || ti.family == P_FCPROJW) ? proj_std : weight_std;
            for (k = 0; k < ti.numel; k++) p[k] = (float)(std * util_rng_normal(&rng));
        } else {
            int is_gain = ti.family == P_LN1W || ti.family == P_LN2W || ti.family == P_LNFW;
            for (k = 0; k < ti.numel; k++) p[k] = is_gain ? 1.0f : 0.0f;
        }
    }
}

int model_add_score_head(model *m, uint64_t seed, double std, dpo_err *e) {
    model n;
    model_config c = m->cfg;
    util_rng rng;
    float *w;
    int i;
    if (c.score_head) return dpo_errf(e, "the model has a score head already");
    c.score_head = 1;
    if (model_create(&n, &c, e) != 0) return -1;
    /* P_SCORE is the last family: every other one keeps its offset */
    memcpy(n.params_mem, m->params_mem, m->num_params * sizeof(float));
    w = n.params.t[P_SCORE];
    util_rng_seed(&rng, seed);
    for (i = 0; i < c.n_embd; i++) w[i] = (float)(std * util_rng_normal(&rng));
    n.prof = m->prof;
    n.no_grad = m->no_grad;
    n.inv_temp = m->inv_temp;
    n.head_rows_max = m->head_rows_max;
    n.head_cols_max = m->head_cols_max;
    model_free(m);
    *m = n;
    return 0;
}

int model_alloc_grads(model *m, dpo_err *e) {
    if (m->grads_mem) return 0;
    m->grads_mem = calloc(m->num_params, sizeof(float));
    if (!m->grads_mem) return dpo_errf(e, "out of memory for gradients (%zu MiB)",
                                      m->num_params * sizeof(float) >> 20);
    carve(&m->grads, m->grads_mem, &m->cfg);
    return 0;
}

void model_zero_grad(model *m) {
    if (m->grads_mem) memset(m->grads_mem, 0, m->num_params * sizeof(float));
}

/* ======================================================================== */
/* layers: each forward followed by its backward                             */
/* ======================================================================== */

/* ------------------------------------------------------------------------ */
/* embeddings: out[n] = wte[tokens[n]] + wpe[pos[n]] */

static void encoder_forward(float *out /* (n_tok, C) */, const int *tokens /* (n_tok) */,
                            const int *pos /* (n_tok) */, const float *wte /* (V, C) */,
                            const float *wpe /* (n_ctx, C) */, int n_tok, int C) {
    int n;
    DPO_OMP_FOR_IF((double)n_tok * C)
    for (n = 0; n < n_tok; n++) {
        const float *te = wte + (size_t)tokens[n] * C, *pe = wpe + (size_t)pos[n] * C;
        float *o = out + (size_t)n * C;
        int c; /* declared inside the parallel loop: private to each thread */
        for (c = 0; c < C; c++) o[c] = te[c] + pe[c];
    }
}

/* In the forward pass this was  out[n] = wte[tokens[n]] + wpe[pos[n]],  so now
 *   dwte[tokens[n]] += dout[n],   dwpe[pos[n]] += dout[n].
 * Tokens repeat, so the loop over n stays serial (in order); it is O(n_tok C),
 * negligible. */
static void encoder_backward(float *dwte /* (V, C) */, float *dwpe /* (n_ctx, C) */,
                             const float *dout /* (n_tok, C) */, const int *tokens, const int *pos,
                             int n_tok, int C) {
    int n, c;
    for (n = 0; n < n_tok; n++) {
        const float *d = dout + (size_t)n * C;
        float *te = dwte + (size_t)tokens[n] * C, *pe = dwpe + (size_t)pos[n] * C;
        for (c = 0; c < C; c++) {
            te[c] += d[c];
            pe[c] += d[c];
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Sums of many terms here are kept as 8 partial sums (term j in part[j mod 8]):
 * one chain of dependent additions costs 4 cycles per term, 8 chains vectorize.
 * add8 adds the 8 in the one fixed order, the same on every CPU and thread count. */
static double add8(const double part[8]) {
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

/* sum_c x_c (y NULL) or sum_c (x_c - mu)(y_c - mu) in double, as 8 partial sums
 * (add8). LayerNorm's mean and variance. */
static double sum8(const float *x, const float *y, double mu, int C) {
    double part[8] = {0};
    int c = 0, l;
    if (y)
        for (; c + 8 <= C; c += 8)
            for (l = 0; l < 8; l++) part[l] += ((double)x[c + l] - mu) * ((double)y[c + l] - mu);
    else
        for (; c + 8 <= C; c += 8)
            for (l = 0; l < 8; l++) part[l] += (double)x[c + l];
    for (l = 0; c < C; c++, l++) part[l] += y ? ((double)x[c] - mu) * ((double)y[c] - mu) : (double)x[c];
    return add8(part);
}

/* LayerNorm over the last dimension:
 *   mu = (1/C) sum_c x_c,  var = (1/C) sum_c (x_c - mu)^2,  r = 1/sqrt(var + eps)
 *   out_c = (x_c - mu) r w_c + b_c
 * mean and variance are accumulated in double. With add non-NULL, x is first
 * the residual add  sum = inp + add  (written to sum, which may be inp): the
 * residual stream's row is made and normalized in one pass, while it is in the
 * cache, instead of a pass that writes it and another that reads it back. */

static void layernorm_forward(float *out /* (n_tok, C) */, float *mean /* (n_tok) */,
                              float *rstd /* (n_tok) */, float *sum /* (n_tok, C) or NULL */,
                              const float *inp /* (n_tok, C) */, const float *add /* (n_tok, C) or NULL */,
                              const float *w /* (C) */, const float *b /* (C) */, int n_tok, int C,
                              double eps) {
    int n;
    DPO_OMP_FOR_IF((double)n_tok * C)
    for (n = 0; n < n_tok; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        int c; /* declared inside the parallel loop: private to each thread */
        if (add) { /* the residual add first: the row is then normalized from the cache */
            float *sr = sum + (size_t)n * C;
            const float *ar = add + (size_t)n * C;
            for (c = 0; c < C; c++) sr[c] = x[c] + ar[c];
            x = sr;
        }
        double mu, var;
        float fm, fr;
        mu = sum8(x, NULL, 0.0, C) / C;
        var = sum8(x, x, mu, C) / C;
        fm = (float)mu;
        fr = (float)(1.0 / sqrt(var + eps));
        for (c = 0; c < C; c++) o[c] = (x[c] - fm) * fr * w[c] + b[c];
        mean[n] = fm;
        rstd[n] = fr;
    }
}

/* In the forward pass this was  o[c] = (x[c] - mu) * r * w[c] + b[c],  that is
 *   out_c = xhat_c w_c + b_c,   xhat_c = (x_c - mu) r,
 * so now, per row, with g_c = dout_c w_c = dL/dxhat_c:
 *   dw_c += sum_n dout_nc xhat_nc,   db_c += sum_n dout_nc,
 * and x_i moves xhat_c three ways: directly (when c == i), through mu and through r:
 *   dxhat_c/dx_i = r [c == i] - r (1/C) + (x_c - mu) dr/dx_i
 *   d mu/dx_i = 1/C,   dr/dx_i = -(1/2) r^3 dvar/dx_i = -r^3 (x_i - mu) / C = -r^2 xhat_i / C
 * (dvar/dx_i = (2/C)(x_i - mu): var's own mean term sums to zero). Summing g_c times these:
 *   dx_i += r (g_i - mean_c(g) - xhat_i mean_c(g xhat))
 * the first mean term is mu's derivative, the second (xhat_i mean(g xhat)) is r's. */
#define LN_COLS 64 /* columns of the parameter gradients per task */

static void layernorm_backward(float *dinp /* (n_tok, C) */, float *dw /* (C) */,
                               float *db /* (C) */, const float *dout /* (n_tok, C) */,
                               const float *inp /* (n_tok, C) */, const float *mean /* (n_tok) */,
                               const float *rstd /* (n_tok) */, const float *w /* (C) */, int n_tok,
                               int C) {
    int n, c0;
    DPO_OMP_FOR_IF((double)n_tok * C)
    for (n = 0; n < n_tok; n++) {
        const float *x = inp + (size_t)n * C, *d = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        int c; /* declared inside the parallel loop: private to each thread */
        float mu = mean[n], r = rstd[n], mg, mgx;
        double sg[8] = {0}, sgx[8] = {0}; /* 8 partial sums (c mod 8), as sum8 */
        int l;
        for (c = 0; c + 8 <= C; c += 8)
            for (l = 0; l < 8; l++) {
                float g = d[c + l] * w[c + l];
                sg[l] += g;
                sgx[l] += g * ((x[c + l] - mu) * r);
            }
        for (l = 0; c < C; c++, l++) {
            float g = d[c] * w[c];
            sg[l] += g;
            sgx[l] += g * ((x[c] - mu) * r);
        }
        mg = (float)(add8(sg) / C);
        mgx = (float)(add8(sgx) / C);
        for (c = 0; c < C; c++) {
            float xhat = (x[c] - mu) * r;
            dx[c] += r * (d[c] * w[c] - mg - xhat * mgx);
        }
    }
    /* parameter gradients: each c sums over n in order; the threads take blocks
     * of LN_COLS columns, and within one the columns are summed side by side
     * (vectorized across c, each column's own sum still in the order of n) */
    DPO_OMP_FOR_IF((double)n_tok * C)
    for (c0 = 0; c0 < C; c0 += LN_COLS) {
        float sw[LN_COLS] = {0}, sb[LN_COLS] = {0};
        int nc = C - c0 < LN_COLS ? C - c0 : LN_COLS, c, n2;
        for (n2 = 0; n2 < n_tok; n2++) {
            const float *dv = dout + (size_t)n2 * C + c0, *x = inp + (size_t)n2 * C + c0;
            float mu = mean[n2], r = rstd[n2];
            for (c = 0; c < nc; c++) {
                sw[c] += dv[c] * ((x[c] - mu) * r);
                sb[c] += dv[c];
            }
        }
        for (c = 0; c < nc; c++) {
            dw[c0 + c] += sw[c];
            db[c0 + c] += sb[c];
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Conv1D / linear: out (n_tok, OC) = inp (n_tok, IC) @ w (IC, OC) + b (OC) */

static void matmul_forward(float *out, const float *inp, const float *w, const float *b,
                           int n_tok, int IC, int OC) {
    mm_ab(out, inp, w, b, n_tok, OC, IC);
}

/* In the forward pass this was  out = inp w + b,  so now
 *   dinp = dout w^T,   dw += inp^T dout,   db += sum_n dout_n
 * (dinp is written, not added to: no pass to zero it first; a product started
 * from 0 is the same bits as one added into zeros) */
static void matmul_backward(float *dinp /* (n_tok, IC) */, float *dw /* (IC, OC) */,
                            float *db /* (OC) */, const float *dout /* (n_tok, OC) */,
                            const float *inp /* (n_tok, IC) */, const float *w /* (IC, OC) */,
                            int n_tok, int IC, int OC) {
    int n, o;
    mm_a_bt(dinp, dout, w, n_tok, IC, OC);
    mm_add_at_b(dw, inp, dout, IC, OC, n_tok);
    for (n = 0; n < n_tok; n++) {
        const float *d = dout + (size_t)n * OC;
        for (o = 0; o < OC; o++) db[o] += d[o];
    }
}

/* ------------------------------------------------------------------------ */
/* causal self-attention, per sequence s and head h (D = C/H, scale = 1/sqrt(D)):
 *   S_ij = scale q_i . k_j,   P_ij = exp(S_ij) / sum_{j'<=i} exp(S_ij')   for j <= i
 *   y_i  = sum_{j<=i} P_ij v_j
 * qkv rows hold [q (C) | k (C) | v (C)]; head h is columns h*D..h*D+D-1 of each.
 *
 * The products go through the matrix kernels (mm_matmul_sub, on the task's own
 * thread), a block of QB query rows at a time: rows i0..i1-1 see keys 0..i1-1,
 * so a block's scores are a QB x i1 rectangle, of which the part right of the
 * diagonal (j > i) is computed and then ignored, or set to zero. QB is a whole
 * number of the kernel's row tiles, near 64: the scores of one block of one
 * (sequence, head) task are the only scores that exist at any time.
 *
 * The T x T matrix P is never kept. Row i of P is fixed by q_i, the keys
 * k_0..k_i and two numbers that the forward saves per token and head: the row's
 * largest score mx_i and the float inv_i = 1 / sum_j exp(S_ij - mx_i) that scaled
 * it. Every row of P, forward and backward alike, is made by the same steps,
 * each result rounded to a float:
 *   the kernel   row_j = fma(q_D-1, k_j,D-1, ... fma(q_0, k_j0, 0))   (d in order)
 *   att_probs    row_j = row_j * scale,  row_j = exp_fast(row_j - mx),  row_j = row_j * inv
 * so the backward, given the saved mx_i and inv_i, rebuilds the very bits of the
 * forward's row. The saved state is 2 floats per token and head and layer,
 * (L, H, n_tok) twice, instead of the (L, H sum_s T_s^2) probabilities.
 * Head-major, a task's mx and inv are T consecutive floats that no other task
 * writes next to (token-major, the heads of one token share a cache line, and
 * threads working on different heads of a sequence would contend for it). For
 * the same reason the (s, h) tasks go to the threads in contiguous blocks
 * (schedule static): a thread works through whole sequences, and two threads
 * seldom write the same rows of out or dqkv.
 *
 * y_i is summed by the kernel as fma(P_ij, v_j, .) over j = 0 .. i1-1 in
 * order: past j = i, P_ij is 0 and fma(0, v, y) = y for a finite v. The
 * key-value cache (attend_one) sums over j = 0 .. i only, with the same steps,
 * and so gives the same bits. Two exceptions: an output that is exactly -0
 * would become +0, which changes no later value but its sign; and an infinite v_j
 * makes the earlier rows of its block NaN here, not in the cache, but then row j
 * itself is not finite (P_jj > 0) and neither is the pass. */

/* e^x in plain float arithmetic, for GELU and the softmaxes: libm's expf is a
 * call per element that no compiler vectorizes, and it made GELU a fifth of a
 * small model's training step; this is written so that the loops around it
 * vectorize (only +, -, *, a conversion to int, a bit cast and selects), and it
 * gives the same bits on every CPU and compiler (no fused multiply-add:
 * -ffp-contract=off).
 *   x = n ln2 + r,  n = round(x / ln2),  |r| <= ln2 / 2:   e^x = 2^n e^r
 * ln2 is split into a high part with few bits (n * LN2_HI is exact for |n| <=
 * 127) and the rest, so r keeps its low bits. e^r is its Taylor series to r^7
 * (the first term left out, r^8 / 8!, is below 8e-9 of e^r for |r| <= 0.347),
 * by Horner's rule; 2^n is built from its exponent bits. x is clamped to [-87,
 * 88] first, where 2^n is a normal float: e^x is then at least 1.6e-38 and at
 * most 1.7e38 instead of 0 and infinity, which changes GELU and its derivative
 * by less than 1e-36, and a softmax (whose arguments are <= 0) by less than
 * 1e-33 per term; a NaN stays NaN. Relative error at most 1.5e-7 against e^x in double
 * (tests/test_model.c, test_exp_fast: 1.0e-7 measured on 2 million points). */
#define LN2_HI 0.693145751953125f   /* 0x1.62e4p-1: 16 significant bits */
#define LN2_LO 1.4286068202862268e-06f /* ln 2 - LN2_HI */
static inline float exp_fast(float x) {
    float c, n, r, p, scale;
    int32_t ni;
    uint32_t bits;
    c = x > -87.0f ? x : -87.0f; /* NaN too: it is converted to int below */
    c = c < 88.0f ? c : 88.0f;
    n = (c * 1.4426950408889634f + 12582912.0f) - 12582912.0f; /* round to nearest: 1.5 * 2^23 */
    r = (c - n * LN2_HI) - n * LN2_LO;
    p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    ni = (int32_t)n;
    bits = (uint32_t)(ni + 127) << 23;
    memcpy(&scale, &bits, sizeof scale);
    return x == x ? p * scale : x;
}

/* A block of query rows is QB rows: the kernel's row tile times the whole number
 * that comes nearest 64 from above (70 for AVX-512's 14, 66 for AVX2's 6, 64 for
 * NEON's 8 and the scalar 4). */
static int att_block_rows(void) {
    int mr, nr, kc, nc;
    mm_blocking(&mr, &nr, &kc, &nc);
    return mr * ((64 + mr - 1) / mr);
}

/* Row i's probabilities from its raw scores row_j = q_i . k_j for its m = i+1
 * keys, as the forward makes them; n - m further entries (keys past the
 * diagonal, in the block's rectangle) are set to 0. *mx_out and *inv_out
 * receive the largest scaled score and the float 1/sum that scaled the row:
 * att_probs rebuilds the row from them. The sum is in double. */
static void att_softmax(float *row, int m, int n, float scale, float *mx_out, float *inv_out) {
    float mx = -INFINITY, inv, pm[16];
    double part[8] = {0}, sum;
    int j, l;
    for (j = 0; j < m; j++) row[j] *= scale;
    /* the largest in 16 lanes (a maximum is the same in any order), so that it vectorizes */
    for (l = 0; l < 16; l++) pm[l] = -INFINITY;
    for (j = 0; j + 16 <= m; j += 16)
        for (l = 0; l < 16; l++) pm[l] = row[j + l] > pm[l] ? row[j + l] : pm[l];
    for (; j < m; j++)
        if (row[j] > mx) mx = row[j];
    for (l = 0; l < 16; l++)
        if (pm[l] > mx) mx = pm[l];
    for (j = 0; j < m; j++) row[j] = exp_fast(row[j] - mx);
    /* the sum as 8 partial sums (j mod 8) added in a fixed order, as softmax_norm's */
    for (j = 0; j + 8 <= m; j += 8)
        for (l = 0; l < 8; l++) part[l] += row[j + l];
    for (l = 0; j < m; j++, l++) part[l] += row[j];
    sum = add8(part);
    inv = (float)(1.0 / sum);
    for (j = 0; j < m; j++) row[j] *= inv;
    for (; j < n; j++) row[j] = 0.0f;
    *mx_out = mx;
    *inv_out = inv;
}

/* The same row from its raw scores and the saved mx and inv: the same steps on
 * the same inputs give the same floats. */
static void att_probs(float *row, int m, int n, float scale, float mx, float inv) {
    int j;
    for (j = 0; j < m; j++) row[j] = exp_fast(row[j] * scale - mx) * inv;
    for (; j < n; j++) row[j] = 0.0f;
}

/* One query's attention in one head over the n keys and values it may see (key
 * j at k + j stride, value j at v + j stride): the key-value cache's path. Each
 * score and each output element is summed by the kernel's steps (fmaf, in
 * order), so it is the training forward's, bit for bit. */
static void attend_one(float *restrict y /* (D) */, float *row /* (n) probabilities out */, const float *q,
                       const float *k, const float *v, size_t stride, int n, int D, float scale) {
    float mx, inv;
    int j, d;
    for (j = 0; j + 4 <= n; j += 4) { /* four independent chains */
        const float *k0 = k + (size_t)j * stride, *k1 = k0 + stride, *k2 = k1 + stride, *k3 = k2 + stride;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        for (d = 0; d < D; d++) {
            s0 = fmaf(q[d], k0[d], s0);
            s1 = fmaf(q[d], k1[d], s1);
            s2 = fmaf(q[d], k2[d], s2);
            s3 = fmaf(q[d], k3[d], s3);
        }
        row[j] = s0;
        row[j + 1] = s1;
        row[j + 2] = s2;
        row[j + 3] = s3;
    }
    for (; j < n; j++) {
        const float *kj = k + (size_t)j * stride;
        float s = 0.0f;
        for (d = 0; d < D; d++) s = fmaf(q[d], kj[d], s);
        row[j] = s;
    }
    att_softmax(row, n, n, scale, &mx, &inv);
    for (d = 0; d < D; d++) y[d] = 0.0f;
    for (j = 0; j < n; j++) {
        const float *vj = v + (size_t)j * stride;
        float p = row[j];
        for (d = 0; d < D; d++) y[d] = fmaf(p, vj[d], y[d]);
    }
}

/* Where task (s, h)'s scratch starts in a buffer of per H n_tok floats:
 * per (H seq_start[s] + h T_s), followed by per T_s floats of its own. The
 * tasks' slices tile the buffer, so no two share one, whichever threads run them. */
static size_t att_rows_at(const int *seq_start, int s, int h, int H, size_t per) {
    size_t T = (size_t)(seq_start[s + 1] - seq_start[s]);
    return per * ((size_t)H * (size_t)seq_start[s] + (size_t)h * T);
}

/* rows: the scratch, QB H n_tok floats (att_block_rows) */
static void attention_forward(float *out /* (n_tok, C) */, float *att_mx /* (H, n_tok) */,
                              float *att_inv /* (H, n_tok) */, float *rows, const float *qkv /* (n_tok, 3C) */,
                              const int *seq_start /* (n_seq+1) */, int n_seq, int C, int H) {
    int D = C / H, task, ntask = n_seq * H, qb = att_block_rows();
    float scale = (float)(1.0 / sqrt((double)D));
    size_t C3 = (size_t)3 * C, n_tok = (size_t)seq_start[n_seq];
    DPO_OMP_FOR_IF((double)n_tok * C * 16)
    for (task = 0; task < ntask; task++) {
        int s = task / H, h = task % H, base = seq_start[s], T = seq_start[s + 1] - base, i0, r;
        float *P = rows + att_rows_at(seq_start, s, h, H, (size_t)qb); /* (nq, n) */
        const float *q = qkv + (size_t)base * C3 + (size_t)h * D, *k = q + C, *v = k + C;
        float *y = out + (size_t)base * C + (size_t)h * D;
        for (i0 = 0; i0 < T; i0 += qb) {
            int nq = T - i0 < qb ? T - i0 : qb, n = i0 + nq; /* query rows i0..n-1, keys 0..n-1 */
            size_t sh = (size_t)h * n_tok + (size_t)base + (size_t)i0;
            mm_matmul_sub(P, (size_t)n, q + (size_t)i0 * C3, C3, k, C3, nq, n, D, 0, 1, 0); /* Q K^T */
            for (r = 0; r < nq; r++)
                att_softmax(P + (size_t)r * n, i0 + r + 1, n, scale, &att_mx[sh + r], &att_inv[sh + r]);
            mm_matmul_sub(y + (size_t)i0 * C, (size_t)C, P, (size_t)n, v, C3, nq, D, n, 0, 0, 0); /* P V */
        }
    }
}

/* The forward pass, undone from its last line back, with dy_i the output gradient:
 * 1. it was  y_i = sum_{j<=i} P_ij v_j,  so now
 *      dv_j += sum_i P_ij dy_i,   dP_ij = dy_i . v_j
 * 2. it was  P_ij = softmax_j(S_ij),
 *    whose Jacobian is dP_ij/dS_ik = P_ij ([j == k] - P_ik), so now (softmax backward)
 *      dS_ij = P_ij (dP_ij - sum_j' P_ij' dP_ij')
 *    (the max mx is subtracted from every S_ij of the row: softmax does not change, and
 *    it has no gradient; j > i were never in the softmax and get none)
 * 3. it was  S_ij = scale q_i . k_j,  so now
 *      dq_i += scale sum_j dS_ij k_j,   dk_j += scale sum_i dS_ij q_i
 *    (below, ds is scale dS_ij: the scale is applied once per (i, j)).
 * A block of QB query rows at a time, as in the forward: P's rows are rebuilt
 * from the saved mx_i and inv_i (att_probs), dP = dY V^T by the kernel and
 * turned into ds in place, then three products: dQ += ds K, dK += ds^T Q,
 * dV += P^T dY. Past the diagonal P and ds are 0, so those entries add nothing.
 * The scratch of a task is 2 QB T floats, its own; each (s, h) task writes only
 * its own rows and head columns of dqkv, so no two tasks write the same float. */
static void attention_backward(float *dqkv /* (n_tok, 3C) */, float *rows /* (2 QB H n_tok) scratch */,
                               const float *dout /* (n_tok, C) */, const float *qkv /* (n_tok, 3C) */,
                               const float *att_mx /* (H, n_tok) */, const float *att_inv /* (H, n_tok) */,
                               const int *seq_start /* (n_seq+1) */, int n_seq, int C, int H) {
    int D = C / H, task, ntask = n_seq * H, qb = att_block_rows();
    float scale = (float)(1.0 / sqrt((double)D));
    size_t C3 = (size_t)3 * C, n_tok = (size_t)seq_start[n_seq];
    DPO_OMP_FOR_IF((double)n_tok * C * 16)
    for (task = 0; task < ntask; task++) {
        int s = task / H, h = task % H, base = seq_start[s], T = seq_start[s + 1] - base, i0, r, j;
        float *P = rows + att_rows_at(seq_start, s, h, H, 2 * (size_t)qb), *ds = P + (size_t)qb * T;
        const float *q = qkv + (size_t)base * C3 + (size_t)h * D, *k = q + C, *v = k + C;
        const float *dy = dout + (size_t)base * C + (size_t)h * D;
        float *dq = dqkv + (size_t)base * C3 + (size_t)h * D, *dk = dq + C, *dv = dk + C;
        for (i0 = 0; i0 < T; i0 += qb) {
            int nq = T - i0 < qb ? T - i0 : qb, n = i0 + nq;
            size_t sh = (size_t)h * n_tok + (size_t)base + (size_t)i0;
            mm_matmul_sub(P, (size_t)n, q + (size_t)i0 * C3, C3, k, C3, nq, n, D, 0, 1, 0); /* Q K^T */
            mm_matmul_sub(ds, (size_t)n, dy + (size_t)i0 * C, (size_t)C, v, C3, nq, n, D, 0, 1, 0); /* dY V^T */
            for (r = 0; r < nq; r++) {
                float *pr = P + (size_t)r * n, *dr = ds + (size_t)r * n;
                int m = i0 + r + 1;
                double pdp[8] = {0}; /* sum_j P_ij dP_ij, as 8 partial sums (j mod 8) */
                float fpdp;
                int l;
                att_probs(pr, m, n, scale, att_mx[sh + r], att_inv[sh + r]);
                for (j = 0; j + 8 <= m; j += 8)
                    for (l = 0; l < 8; l++) pdp[l] += (double)pr[j + l] * dr[j + l];
                for (l = 0; j < m; j++, l++) pdp[l] += (double)pr[j] * dr[j];
                fpdp = (float)add8(pdp);
                for (j = 0; j < m; j++) dr[j] = pr[j] * (dr[j] - fpdp) * scale;
                for (; j < n; j++) dr[j] = 0.0f;
            }
            mm_matmul_sub(dq + (size_t)i0 * C3, C3, ds, (size_t)n, k, C3, nq, D, n, 0, 0, 1);     /* dQ += ds K */
            mm_matmul_sub(dk, C3, ds, (size_t)n, q + (size_t)i0 * C3, C3, n, D, nq, 1, 0, 1);     /* dK += ds^T Q */
            mm_matmul_sub(dv, C3, P, (size_t)n, dy + (size_t)i0 * C, (size_t)C, n, D, nq, 1, 0, 1); /* dV += P^T dY */
        }
    }
}

/* ------------------------------------------------------------------------ */
/* GELU, tanh approximation ("gelu_new"):
 *   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 * computed through the identity 0.5 (1 + tanh u) = sigmoid(2u) = 1 / (1 + exp(-2u)),
 * which needs one exponential (cheaper than tanh) and has no cancellation:
 *   gelu(x) = x s,  s = 1 / (1 + exp(-2u)) */

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */


static void gelu_forward(float *out, const float *inp, size_t n) {
    long i, ni = (long)n;
    DPO_OMP_FOR_IF(ni)
    for (i = 0; i < ni; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        out[i] = x / (1.0f + exp_fast(-2.0f * u));
    }
}

/* In the forward pass this was  out[i] = x / (1.0f + exp_fast(-2.0f * u)),  that is
 *   gelu(x) = x s,   s = sigmoid(2u) = 0.5 (1 + tanh u),   u = sqrt(2/pi) (x + 0.044715 x^3),
 * so now, with sigmoid'(z) = sigmoid(z) (1 - sigmoid(z)):
 *   gelu'(x) = s + x ds/dx = s + x s (1 - s) 2 u',   u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
 * (the same as the tanh form's 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) u', since
 * 1 - tanh^2 u = 4 s (1 - s)).
 * dinp = gelu'(x) dout, written in place over dout when dinp == dout. */
static void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    long i, ni = (long)n;
    DPO_OMP_FOR_IF(ni)
    for (i = 0; i < ni; i++) {
        float x = inp[i];
        float u = GELU_K * (x + 0.044715f * x * x * x);
        float s = 1.0f / (1.0f + exp_fast(-2.0f * u));
        float du = GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] = (s + x * s * (1.0f - s) * 2.0f * du) * dout[i];
    }
}

static void residual_forward(float *out, const float *a, const float *b, size_t n) {
    long i, ni = (long)n;
    DPO_OMP_FOR_IF(ni)
    for (i = 0; i < ni; i++) out[i] = a[i] + b[i];
}

/* ------------------------------------------------------------------------ */
/* log-softmax of the tied head's logits at the target, for n rows of logits z
 * (one chunk of the selected tokens, see head_forward):
 *   logp = z_t - mx - log s,   mx = max_v z_v,   s = sum_v exp(z_v - mx)   (s in double)
 * mx cancels between z_t and log s (it changes nothing but keeps every
 * exp(z_v - mx) in (0, 1], so large logits cannot overflow). The backward
 * needs the softmax p_v = exp(z_v - mx) / s of every v; instead of V floats
 * per row only mx and inv = 1/s are kept, and p is recomputed from the logits
 * (recomputed too) as expf(z_v - mx) * inv: the same float operations on the
 * same floats as when p was stored, so the same bits. */

/* mx and s of one row (V): the one place they are computed, for the head and
 * for model_log_softmax_norm */
static void softmax_norm(const float *z /* (V) */, int V, float *mx_out, double *sum_out) {
    float mx = -INFINITY;
    double sum = 0.0;
    int v;
    double part[8] = {0};
    float e[8];
    int l;
    for (v = 0; v < V; v++)
        if (z[v] > mx) mx = z[v];
    /* sum = sum_v exp(z_v - mx) in double, as 8 partial sums (add8) */
    for (v = 0; v + 8 <= V; v += 8) {
        for (l = 0; l < 8; l++) e[l] = exp_fast(z[v + l] - mx);
        for (l = 0; l < 8; l++) part[l] += e[l];
    }
    for (l = 0; v < V; v++, l++) part[l] += exp_fast(z[v] - mx);
    sum = add8(part);
    *mx_out = mx;
    *sum_out = sum;
}

static void logsoftmax_forward(float *logp /* (n_tok) */, float *mx /* (n) */, float *inv /* (n) */,
                               const float *logits /* (n, V) */, const int *sel /* (n) */,
                               const int *targets /* (n_tok) */, int n, int V) {
    int r;
    DPO_OMP_FOR_IF((double)n * V)
    for (r = 0; r < n; r++) {
        const float *z = logits + (size_t)r * V;
        double sum;
        softmax_norm(z, V, &mx[r], &sum);
        logp[sel[r]] = (float)((double)z[targets[sel[r]]] - (double)mx[r] - log(sum));
        inv[r] = (float)(1.0 / sum);
    }
}

/* In the forward pass this was  logp = zt - mx - log(sum),  sum = sum_v exp(z_v - mx),
 * that is logp = z_t - log sum_v exp(z_v) (mx cancels: it has no gradient), so
 *   d logp / d z_v = [v == t] - exp(z_v) / sum_v' exp(z_v') = [v == t] - p_v
 * and now, with g = dlogp of the row and p_v = exp_fast(z_v - mx) * inv recomputed,
 *   dz_v = g ([v == t] - p_v):   -g p_v everywhere, then + g at the target; in place.
 * Each p_v needs only z_v and the row's mx and inv, so this runs on any slice of
 * columns v0 .. v0+nv-1 of the rows (the head's backward takes the vocabulary a
 * slice at a time). */
static void logsoftmax_backward(float *dlogits /* (n, nv): logits v0.. in, their gradient out */,
                                const float *dlogp /* (n_tok) */, const float *mx /* (n) */,
                                const float *inv /* (n) */, const int *sel /* (n) */,
                                const int *targets /* (n_tok) */, int n, int v0, int nv) {
    int r;
    DPO_OMP_FOR_IF((double)n * nv)
    for (r = 0; r < n; r++) {
        float *z = dlogits + (size_t)r * nv, g = dlogp[sel[r]], m = mx[r], s = inv[r];
        int v, t = targets[sel[r]] - v0;
        for (v = 0; v < nv; v++) {
            float p = exp_fast(z[v] - m) * s;
            z[v] = -g * p;
        }
        if (t >= 0 && t < nv) z[t] += g;
    }
}

/* ======================================================================== */
/* the batch and the activation arenas                                       */
/* ======================================================================== */

/* Grow *mem to hold the sum of counts (floats, overflow-checked) and point each
 * entry into it. One allocation per family of buffers. */
static int carve_arena(float **mem, size_t *cap, float **ptrs[], const size_t *counts, int n,
                       const char *what, dpo_err *e) {
    size_t total = 0, off = 0, bytes;
    int i;
    for (i = 0; i < n; i++)
        if (util_add_size(total, counts[i], &total) != 0)
            return dpo_errf(e, "%s: size overflows", what);
    if (util_mul_size(total, sizeof(float), &bytes) != 0) return dpo_errf(e, "%s: size overflows", what);
    if (total > *cap) {
        float *nm;
        free(*mem);
        *mem = NULL;
        *cap = 0;
        nm = malloc(bytes ? bytes : 1);
        if (!nm) return dpo_errf(e, "out of memory for %s (%zu MiB)", what, bytes >> 20);
        *mem = nm;
        *cap = total;
    }
    for (i = 0; i < n; i++) {
        *ptrs[i] = *mem + off;
        off += counts[i];
    }
    return 0;
}

/* Validate a batch before anything is sized from it: sequence lengths within
 * the context, at most 2^30 tokens, and token and target ids in the vocabulary.
 * Sets *n_tok_out to the number of tokens. */
static int check_batch(const model_config *c, const int *tokens, const int *targets,
                       const int *seq_len, int n_seq, size_t *n_tok_out, dpo_err *e) {
    size_t n_tok = 0, i;
    int s;
    if (n_seq < 1) return dpo_errf(e, "batch has no sequences");
    for (s = 0; s < n_seq; s++) {
        if (seq_len[s] < 1 || seq_len[s] > c->n_ctx)
            return dpo_errf(e, "sequence %d has length %d, outside [1, %d] (the model's context)", s,
                            seq_len[s], c->n_ctx);
        n_tok += (size_t)seq_len[s];
        if (n_tok > (size_t)1 << 30) return dpo_errf(e, "batch of more than 2^30 tokens");
    }
    for (i = 0; i < n_tok; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return dpo_errf(e, "token %zu has id %d, outside the vocabulary [0, %d)", i, tokens[i],
                            c->vocab_size);
        if (targets && (targets[i] < -1 || targets[i] >= c->vocab_size))
            return dpo_errf(e, "target %zu has id %d, outside the vocabulary [0, %d) (or -1)", i,
                            targets[i], c->vocab_size);
    }
    *n_tok_out = n_tok;
    return 0;
}

/* Validate the batch and copy it into the model, with positions, the selected
 * rows and where each sequence starts. targets NULL: none (every one -1). */
static int set_batch(model *m, const int *tokens, const int *targets, const int *seq_len, int n_seq,
                     dpo_err *e) {
    const model_config *c = &m->cfg;
    size_t n_tok = 0, need, i;
    int s, t, n_sel = 0;
    if (check_batch(c, tokens, targets, seq_len, n_seq, &n_tok, e) != 0) return -1;
    need = 4 * n_tok + (size_t)n_seq + 1;
    if (need > m->ibuf_cap) {
        free(m->ibuf);
        m->ibuf = malloc(need * sizeof(int));
        m->ibuf_cap = m->ibuf ? need : 0;
        if (!m->ibuf) return dpo_err_oom(e, "the batch's index arrays", need, sizeof(int));
    }
    m->tokens = m->ibuf;
    m->targets = m->tokens + n_tok;
    m->pos = m->targets + n_tok;
    m->sel = m->pos + n_tok;
    m->seq_start = m->sel + n_tok;
    memcpy(m->tokens, tokens, n_tok * sizeof(int));
    if (targets)
        memcpy(m->targets, targets, n_tok * sizeof(int));
    else
        for (i = 0; i < n_tok; i++) m->targets[i] = -1;
    m->seq_start[0] = 0;
    for (s = 0; s < n_seq; s++) {
        m->seq_start[s + 1] = m->seq_start[s] + seq_len[s];
        for (t = 0; t < seq_len[s]; t++) m->pos[m->seq_start[s] + t] = t;
    }
    for (i = 0; i < n_tok; i++)
        if (m->targets[i] >= 0) m->sel[n_sel++] = (int)i;
    m->n_tok = (int)n_tok;
    m->n_seq = n_seq;
    m->n_sel = n_sel;
    return 0;
}

/* The head's scratch (head_forward, head_backward) is HEAD_CHUNK_BYTES of
 * logits, the forward's R rows of V or the backward's W columns of n_sel rows:
 * 16 MiB, a tenth of GPT-2's wte (147 MiB) where the whole logits of 1024 tokens
 * took 196 MiB. Its cost is in the forward: each chunk of rows makes one pass
 * over all of wte (V, C), shared by the chunk's R rows, so the fewer the rows,
 * the more that pass weighs beside the chunk's R V C multiply-adds. Measured
 * (one thread, 1024 rows, GPT-2's head, the portable kernel): 83-row chunks
 * (16 MiB) made the logits' product alone 35-60% slower than one product,
 * 166 rows (32 MiB) 10%, 256 rows (48 MiB) 6%; yet whole forward passes of
 * GPT-2 124M over those 1024 tokens were as fast as with the unchunked head,
 * within the noise of a shared machine (the log-softmax now runs over a chunk
 * that stays in cache instead of 196 MiB). The backward's slices of the
 * vocabulary cost no extra pass (each slice reads its own rows of wte and
 * dwte); dhead (n_sel, C) is read and written once per slice, so a slice has
 * at least HEAD_MIN_COLS columns (or all V), a bound that only batches of more
 * than HEAD_CHUNK_BYTES / (4 HEAD_MIN_COLS) = 16384 tokens reach. */
#define HEAD_CHUNK_BYTES ((size_t)16 << 20)
#define HEAD_MIN_COLS 256

/* R and W for the batch just set (0 if n_sel is 0): HEAD_CHUNK_BYTES' worth, at
 * least 1 row and HEAD_MIN_COLS columns, at most n_sel rows and V columns; or at
 * most m->head_rows_max rows and m->head_cols_max columns when set (tests) */
static void head_chunks(model *m) {
    size_t n_sel = (size_t)m->n_sel, V = (size_t)m->cfg.vocab_size, floats = HEAD_CHUNK_BYTES / sizeof(float);
    size_t rows = floats / V, cols = n_sel ? floats / n_sel : V;
    if (cols < HEAD_MIN_COLS) cols = HEAD_MIN_COLS;
    if (m->head_rows_max > 0) rows = (size_t)m->head_rows_max;
    if (m->head_cols_max > 0) cols = (size_t)m->head_cols_max;
    if (rows < 1) rows = 1;
    if (rows > n_sel) rows = n_sel;
    if (cols > V) cols = V;
    m->head_rows = (int)rows;
    m->head_cols = n_sel ? (int)cols : 0;
}

/* L layers of activations, or one that every layer reuses in forward-only mode */
static int alloc_acts(model *m, dpo_err *e) {
    size_t n_tok = (size_t)m->n_tok, n_sel = (size_t)m->n_sel, C = (size_t)m->cfg.n_embd,
           L = m->no_grad ? 1 : (size_t)m->cfg.n_layer, V = (size_t)m->cfg.vocab_size,
           H = (size_t)m->cfg.n_head;
    model_acts *a = &m->acts;
    float **ptrs[] = {&a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->atty,
                      &a->att_mx, &a->att_inv, &a->residual2, &a->ln2, &a->ln2_mean, &a->ln2_rstd,
                      &a->fch, &a->fch_gelu, &a->residual3, &a->lnf, &a->lnf_mean, &a->lnf_rstd,
                      &a->head_in, &a->head_mx, &a->head_inv, &a->logits, &a->tmp, &a->att_rows};
    size_t counts[24];
    /* all products are of validated, bounded sizes (H <= C); the head's are checked.
     * Nothing here grows with the square of a sequence's length, nor with n_sel x V. */
    counts[0] = n_tok * C;
    counts[1] = L * n_tok * C;
    counts[2] = L * n_tok;
    counts[3] = L * n_tok;
    counts[4] = L * n_tok * 3 * C;
    counts[5] = L * n_tok * C;
    counts[6] = L * n_tok * H;
    counts[7] = L * n_tok * H;
    counts[8] = L * n_tok * C;
    counts[9] = L * n_tok * C;
    counts[10] = L * n_tok;
    counts[11] = L * n_tok;
    counts[12] = L * n_tok * 4 * C;
    counts[13] = L * n_tok * 4 * C;
    counts[14] = L * n_tok * C;
    counts[15] = n_tok * C;
    counts[16] = n_tok;
    counts[17] = n_tok;
    counts[18] = n_sel * C;
    counts[19] = n_sel;
    counts[20] = n_sel;
    head_chunks(m); /* the head's scratch: R rows of V (forward) or n_sel rows of W (backward) */
    if (util_mul_size((size_t)m->head_rows, V, &counts[21]) != 0 ||
        util_mul_size((size_t)m->head_cols, n_sel, &counts[22]) != 0)
        return dpo_errf(e, "activation size overflows");
    if (counts[22] > counts[21]) counts[21] = counts[22];
    counts[22] = n_tok * C;
    counts[23] = (size_t)att_block_rows() * H * n_tok; /* a block of query rows per (sequence, head) */
    return carve_arena(&m->acts_mem, &m->acts_cap, ptrs, counts, 24, "activations", e);
}

static int alloc_dacts(model *m, dpo_err *e) {
    size_t n_tok = (size_t)m->n_tok, n_sel = (size_t)m->n_sel, C = (size_t)m->cfg.n_embd,
           H = (size_t)m->cfg.n_head;
    model_dacts *d = &m->dacts;
    float **ptrs[] = {&d->dres, &d->dln, &d->datty, &d->dqkv, &d->dfch, &d->dhead, &d->att_rows};
    size_t counts[7];
    counts[0] = n_tok * C;
    counts[1] = n_tok * C;
    counts[2] = n_tok * C;
    counts[3] = n_tok * 3 * C;
    counts[4] = n_tok * 4 * C;
    counts[5] = n_sel * C;
    counts[6] = 2 * (size_t)att_block_rows() * H * n_tok;
    return carve_arena(&m->dacts_mem, &m->dacts_cap, ptrs, counts, 7, "activation gradients", e);
}

/* ======================================================================== */
/* forward and backward of the whole model                                   */
/* ======================================================================== */

/* Profiling hooks (dpo bench; see model_prof): prof_start reads the clock;
 * prof_fwd and prof_bwd add the seconds since the last reading to a category
 * and read it again. With m->prof NULL they do nothing and read no clock. */
static double prof_start(const model *m) { return m->prof ? util_seconds() : 0.0; }

static void prof_lap(double *acc, double *t) {
    double now = util_seconds();
    *acc += now - *t;
    *t = now;
}

static void prof_fwd(const model *m, double *t, int cat) {
    if (m->prof) prof_lap(&m->prof->fwd[cat], t);
}

static void prof_bwd(const model *m, double *t, int cat) {
    if (m->prof) prof_lap(&m->prof->bwd[cat], t);
}

/* One block's parameters, or their gradients: layer l's slice of each
 * per-layer family of a model_tensors (m->params or m->grads). */
typedef struct {
    float *ln1w, *ln1b;         /* (C), (C) */
    float *qkvw, *qkvb;         /* (C, 3C), (3C) */
    float *attprojw, *attprojb; /* (C, C), (C) */
    float *ln2w, *ln2b;         /* (C), (C) */
    float *fcw, *fcb;           /* (C, 4C), (4C) */
    float *fcprojw, *fcprojb;   /* (4C, C), (C) */
} block_weights;

static block_weights block_weights_at(const model_tensors *t, int l, int C) {
    /* where layer l starts in an (L, C) family and in an (L, C, C) one */
    size_t at_c = (size_t)l * C, at_cc = at_c * C;
    block_weights w;
    w.ln1w = t->t[P_LN1W] + at_c;
    w.ln1b = t->t[P_LN1B] + at_c;
    w.qkvw = t->t[P_QKVW] + 3 * at_cc;
    w.qkvb = t->t[P_QKVB] + 3 * at_c;
    w.attprojw = t->t[P_ATTPROJW] + at_cc;
    w.attprojb = t->t[P_ATTPROJB] + at_c;
    w.ln2w = t->t[P_LN2W] + at_c;
    w.ln2b = t->t[P_LN2B] + at_c;
    w.fcw = t->t[P_FCW] + 4 * at_cc;
    w.fcb = t->t[P_FCB] + 4 * at_c;
    w.fcprojw = t->t[P_FCPROJW] + 4 * at_cc;
    w.fcprojb = t->t[P_FCPROJB] + at_c;
    return w;
}

/* One block's saved activations: its slot of each (L, ...) family of
 * model_acts, and its input. */
typedef struct {
    const float *inp;                 /* (n_tok, C) encoded, or the previous block's residual3 */
    float *ln1, *ln1_mean, *ln1_rstd; /* (n_tok, C), (n_tok), (n_tok) */
    float *qkv;                       /* (n_tok, 3C) */
    float *atty;                      /* (n_tok, C) */
    float *att_mx, *att_inv;          /* (H, n_tok), (H, n_tok) each attention row's max and 1/sum */
    float *residual2;                 /* (n_tok, C) after the attention residual */
    float *ln2, *ln2_mean, *ln2_rstd; /* (n_tok, C), (n_tok), (n_tok) */
    float *fch, *fch_gelu;            /* (n_tok, 4C), (n_tok, 4C) */
    float *residual3;                 /* (n_tok, C) after the MLP residual: the block's output */
} block_acts;

/* Block l's activations live in slot l; forward-only, every block reuses slot 0
 * (each buffer is read only before it is overwritten: the block's input, slot
 * 0's residual3 from block 1 on, is last read by the attention residual). */
static block_acts block_acts_at(const model *m, int l) {
    const model_acts *a = &m->acts;
    size_t n_tok = (size_t)m->n_tok, tok_floats = n_tok * (size_t)m->cfg.n_embd; /* (n_tok, C) */
    size_t slot = m->no_grad ? 0 : (size_t)l;
    block_acts b;
    b.inp = l == 0 ? a->encoded : a->residual3 + (m->no_grad ? 0 : (size_t)(l - 1)) * tok_floats;
    b.ln1 = a->ln1 + slot * tok_floats;
    b.ln1_mean = a->ln1_mean + slot * n_tok;
    b.ln1_rstd = a->ln1_rstd + slot * n_tok;
    b.qkv = a->qkv + 3 * slot * tok_floats;
    b.atty = a->atty + slot * tok_floats;
    b.att_mx = a->att_mx + slot * n_tok * (size_t)m->cfg.n_head;
    b.att_inv = a->att_inv + slot * n_tok * (size_t)m->cfg.n_head;
    b.residual2 = a->residual2 + slot * tok_floats;
    b.ln2 = a->ln2 + slot * tok_floats;
    b.ln2_mean = a->ln2_mean + slot * n_tok;
    b.ln2_rstd = a->ln2_rstd + slot * n_tok;
    b.fch = a->fch + 4 * slot * tok_floats;
    b.fch_gelu = a->fch_gelu + 4 * slot * tok_floats;
    b.residual3 = a->residual3 + slot * tok_floats;
    return b;
}

/* Transformer block l:
 *   residual2 = inp + attproj(attention(qkv(LN1(inp))))
 *   residual3 = residual2 + fcproj(gelu(fc(LN2(residual2)))) */
static void block_forward(model *m, int l) {
    const model_config *c = &m->cfg;
    int n_tok = m->n_tok, C = c->n_embd;
    size_t tok_floats = (size_t)n_tok * C;
    block_weights w = block_weights_at(&m->params, l, C);
    block_acts b = block_acts_at(m, l);
    float *proj = m->acts.tmp; /* (n_tok, C) a projection before its residual add */
    double t = prof_start(m);

    if (l == 0) /* later blocks' LN1 ran with the previous block's last residual add */
        layernorm_forward(b.ln1, b.ln1_mean, b.ln1_rstd, NULL, b.inp, NULL, w.ln1w, w.ln1b, n_tok, C,
                          c->ln_eps);
    prof_fwd(m, &t, MODEL_PROF_LAYERNORM);
    matmul_forward(b.qkv, b.ln1, w.qkvw, w.qkvb, n_tok, C, 3 * C);
    prof_fwd(m, &t, MODEL_PROF_QKV);
    attention_forward(b.atty, b.att_mx, b.att_inv, m->acts.att_rows, b.qkv, m->seq_start, m->n_seq, C,
                      c->n_head);
    prof_fwd(m, &t, MODEL_PROF_ATTENTION);
    matmul_forward(proj, b.atty, w.attprojw, w.attprojb, n_tok, C, C);
    prof_fwd(m, &t, MODEL_PROF_ATTPROJ);
    /* residual2 = inp + proj, and LN2 of it */
    layernorm_forward(b.ln2, b.ln2_mean, b.ln2_rstd, b.residual2, b.inp, proj, w.ln2w, w.ln2b, n_tok, C,
                      c->ln_eps);
    prof_fwd(m, &t, MODEL_PROF_LAYERNORM);
    matmul_forward(b.fch, b.ln2, w.fcw, w.fcb, n_tok, C, 4 * C);
    prof_fwd(m, &t, MODEL_PROF_FC);
    gelu_forward(b.fch_gelu, b.fch, 4 * tok_floats);
    prof_fwd(m, &t, MODEL_PROF_GELU);
    matmul_forward(proj, b.fch_gelu, w.fcprojw, w.fcprojb, n_tok, 4 * C, C);
    prof_fwd(m, &t, MODEL_PROF_FCPROJ);
    /* residual3 = residual2 + proj, and the LayerNorm that reads it next: block
     * l+1's LN1, or after the last block LN_f */
    if (l + 1 < c->n_layer) {
        block_weights nw = block_weights_at(&m->params, l + 1, C);
        block_acts nb = block_acts_at(m, l + 1);
        layernorm_forward(nb.ln1, nb.ln1_mean, nb.ln1_rstd, b.residual3, b.residual2, proj, nw.ln1w, nw.ln1b,
                          n_tok, C, c->ln_eps);
    } else {
        layernorm_forward(m->acts.lnf, m->acts.lnf_mean, m->acts.lnf_rstd, b.residual3, b.residual2, proj,
                          m->params.t[P_LNFW], m->params.t[P_LNFB], n_tok, C, c->ln_eps);
    }
    prof_fwd(m, &t, MODEL_PROF_LAYERNORM);
}

/* Block l backward, from dres = dL/dresidual3 (n_tok, C); leaves dL/dinp in dres.
 * A residual add passes its gradient unchanged to both of its inputs, so dres
 * stays as it is and each branch's input gradient is added into it. */
static void block_backward(model *m, int l) {
    const model_config *c = &m->cfg;
    int n_tok = m->n_tok, C = c->n_embd;
    size_t tok_floats = (size_t)n_tok * C;
    block_weights w = block_weights_at(&m->params, l, C), dw = block_weights_at(&m->grads, l, C);
    block_acts b = block_acts_at(m, l);
    model_dacts *d = &m->dacts;
    double t = prof_start(m);

    /* residual3 = residual2 + fcproj(gelu(fc(LN2(residual2)))) */
    matmul_backward(d->dfch, dw.fcprojw, dw.fcprojb, d->dres, b.fch_gelu, w.fcprojw, n_tok, 4 * C,
                    C);
    prof_bwd(m, &t, MODEL_PROF_FCPROJ);
    gelu_backward(d->dfch, b.fch, d->dfch, 4 * tok_floats);
    prof_bwd(m, &t, MODEL_PROF_GELU);
    matmul_backward(d->dln, dw.fcw, dw.fcb, d->dfch, b.ln2, w.fcw, n_tok, C, 4 * C);
    prof_bwd(m, &t, MODEL_PROF_FC);
    layernorm_backward(d->dres, dw.ln2w, dw.ln2b, d->dln, b.residual2, b.ln2_mean, b.ln2_rstd,
                       w.ln2w, n_tok, C);
    prof_bwd(m, &t, MODEL_PROF_LAYERNORM);

    /* residual2 = inp + attproj(attention(qkv(LN1(inp)))) */
    matmul_backward(d->datty, dw.attprojw, dw.attprojb, d->dres, b.atty, w.attprojw, n_tok, C, C);
    prof_bwd(m, &t, MODEL_PROF_ATTPROJ);
    memset(d->dqkv, 0, 3 * tok_floats * sizeof(float));
    prof_bwd(m, &t, MODEL_PROF_OTHER);
    attention_backward(d->dqkv, d->att_rows, d->datty, b.qkv, b.att_mx, b.att_inv, m->seq_start,
                       m->n_seq, C, c->n_head);
    prof_bwd(m, &t, MODEL_PROF_ATTENTION);
    matmul_backward(d->dln, dw.qkvw, dw.qkvb, d->dqkv, b.ln1, w.qkvw, n_tok, C, 3 * C);
    prof_bwd(m, &t, MODEL_PROF_QKV);
    layernorm_backward(d->dres, dw.ln1w, dw.ln1b, d->dln, b.inp, b.ln1_mean, b.ln1_rstd, w.ln1w,
                       n_tok, C);
    prof_bwd(m, &t, MODEL_PROF_LAYERNORM);
}

/* The tied head, only for the n_sel rows that have a target:
 *   head_in (n_sel, C) = the selected rows of lnf
 *   logits (n_sel, V) = head_in wte^T,   logp (n_tok) = log-softmax at the target, 0 elsewhere
 * The (n_sel, V) logits are never stored whole: for GPT-2 (V = 50257) a row is
 * 196 KiB, 200 MiB for a batch of 1024 tokens with targets, more than the rest
 * of a small batch's activations. The forward computes them R = head_rows rows
 * at a time into one scratch, acts.logits, and keeps of each row only the
 * log-softmax's mx and inv; the backward computes them again, W = head_cols
 * columns (vocabulary entries) of every row at a time (head_chunks, with the
 * arenas, sizes both). Chunking changes no bit: mm_* sum each output in the
 * same order (k = 0, 1, ...) whatever the shape, the number of rows or the
 * position (matmul.h), so a logit is the same float however the product is cut. */
/* logits (n) *= m->inv_temp, unless the temperature is 1 */
static void head_temperature(const model *m, float *z, size_t n) {
    float s = m->inv_temp;
    size_t i;
    if (s == 0.0f || s == 1.0f) return;
    DPO_OMP_FOR_IF((double)n)
    for (i = 0; i < n; i++) z[i] *= s;
}

static void head_forward(model *m, float *logp /* (n_tok) */) {
    model_acts *a = &m->acts;
    const float *wte = m->params.t[P_WTE];
    int C = m->cfg.n_embd, V = m->cfg.vocab_size, R = m->head_rows, r, r0;
    for (r = 0; r < m->n_sel; r++)
        memcpy(a->head_in + (size_t)r * C, a->lnf + (size_t)m->sel[r] * C, (size_t)C * sizeof(float));
    for (r = 0; r < m->n_tok; r++) logp[r] = 0.0f;
    for (r0 = 0; r0 < m->n_sel; r0 += R) { /* rows r0 .. r0+nr-1 */
        int nr = m->n_sel - r0 < R ? m->n_sel - r0 : R;
        mm_a_bt(a->logits, a->head_in + (size_t)r0 * C, wte, nr, V, C);
        head_temperature(m, a->logits, (size_t)nr * V);
        logsoftmax_forward(logp, a->head_mx + r0, a->head_inv + r0, a->logits, m->sel + r0, m->targets,
                           nr, V);
    }
}

/* In the forward pass this was  logits = head_in wte^T,  so now
 *   dlogits = dlogp (onehot - p)          (logsoftmax_backward)
 *   dwte += dlogits^T head_in,   dhead = dlogits wte,
 * and dlnf (in dln) is dhead on the selected rows (head_in copied them), 0 elsewhere.
 * A slice of the vocabulary, v0 .. v0+nw-1, at a time: its logits (n_sel, nw)
 * computed again as in the forward, their gradient, then
 *   dwte[v0:v0+nw] += dlogits[:, v0:v0+nw]^T head_in   (those rows of dwte only, all of
 *                                                      n_sel summed in order 0..n_sel-1)
 *   dhead += dlogits[:, v0:v0+nw] wte[v0:v0+nw]         (the sum over v continued from
 *                                                      v0: 0 .. V-1 in order over the slices)
 * so every element of dwte and dhead is summed in the order of one product over
 * all rows and columns: the same bits. Slicing the vocabulary rather than the
 * rows reads wte and writes dwte once in all, not once per chunk of rows. */
static void head_backward(model *m, const float *dlogp /* (n_tok) */) {
    model_acts *a = &m->acts;
    model_dacts *d = &m->dacts;
    const float *wte = m->params.t[P_WTE];
    float *dwte = m->grads.t[P_WTE];
    int C = m->cfg.n_embd, V = m->cfg.vocab_size, W = m->head_cols, n_sel = m->n_sel, r, v0;
    for (v0 = 0; n_sel > 0 && v0 < V; v0 += W) { /* columns v0 .. v0+nw-1 */
        int nw = V - v0 < W ? V - v0 : W;
        const float *w = wte + (size_t)v0 * C; /* (nw, C) */
        mm_a_bt(a->logits, a->head_in, w, n_sel, nw, C);
        head_temperature(m, a->logits, (size_t)n_sel * nw); /* z / T, as in the forward */
        logsoftmax_backward(a->logits, dlogp, a->head_mx, a->head_inv, m->sel, m->targets, n_sel, v0, nw);
        head_temperature(m, a->logits, (size_t)n_sel * nw); /* d/dz = (d/d(z / T)) / T */
        mm_add_at_b(dwte + (size_t)v0 * C, a->logits, a->head_in, nw, C, n_sel);
        /* dhead (n_sel, C) = (v0 > 0 ? dhead : 0) + dlogits (n_sel, nw) @ w (nw, C) */
        mm_matmul(d->dhead, a->logits, w, NULL, n_sel, C, nw, 0, 0, v0 > 0);
    }
    memset(d->dln, 0, (size_t)m->n_tok * C * sizeof(float));
    for (r = 0; r < n_sel; r++)
        memcpy(d->dln + (size_t)m->sel[r] * C, d->dhead + (size_t)r * C, (size_t)C * sizeof(float));
}

/* ------------------------------------------------------------------------ */
/* the score head of a reward or value model: one number per position
 *   score[t] = sum_c h[t, c] w[c]           (h = ln_f's output (n_tok, C), w = score.weight (C))
 * summed in double in the order c = 0, 1, ..., C-1 and rounded once to float.
 * Backward, from dscore[t] = d loss / d score[t]:
 *   dh[t, c] = dscore[t] w[c]               (written: no other head feeds h)
 *   dw[c]   += sum_t dscore[t] h[t, c]      (in double, t = 0, 1, ... in order) */
static void score_forward(float *score /* (n_tok) */, const float *h /* (n_tok, C) */, const float *w /* (C) */,
                          int n_tok, int C) {
    DPO_OMP_FOR_IF((double)n_tok * C)
    for (int t = 0; t < n_tok; t++) {
        const float *x = h + (size_t)t * C;
        double acc = 0.0;
        int c;
        for (c = 0; c < C; c++) acc += (double)x[c] * w[c];
        score[t] = (float)acc;
    }
}

static void score_backward(float *dh /* (n_tok, C) */, float *dw /* (C) */, const float *dscore /* (n_tok) */,
                           const float *h /* (n_tok, C) */, const float *w /* (C) */, int n_tok, int C) {
    DPO_OMP_FOR_IF((double)n_tok * C)
    for (int t = 0; t < n_tok; t++) {
        float *d = dh + (size_t)t * C;
        int c;
        for (c = 0; c < C; c++) d[c] = dscore[t] * w[c];
    }
    DPO_OMP_FOR_IF((double)n_tok * C)
    for (int c = 0; c < C; c++) {
        double acc = 0.0;
        int t;
        for (t = 0; t < n_tok; t++) acc += (double)dscore[t] * h[(size_t)t * C + c];
        dw[c] += (float)acc;
    }
}

/* Everything but a head: the batch, the embeddings and the blocks, the last of
 * which ends with LN_f (acts.lnf). */
static int forward_trunk(model *m, const int *tokens, const int *targets, const int *seq_len, int n_seq,
                         dpo_err *e) {
    const model_config *c = &m->cfg;
    const model_tensors *p = &m->params;
    model_acts *a = &m->acts;
    int l;
    double t = prof_start(m);
    m->backward_ready = 0;
    if (set_batch(m, tokens, targets, seq_len, n_seq, e) != 0 || alloc_acts(m, e) != 0) return -1;
    encoder_forward(a->encoded, m->tokens, m->pos, p->t[P_WTE], p->t[P_WPE], m->n_tok, c->n_embd);
    prof_fwd(m, &t, MODEL_PROF_OTHER);
    for (l = 0; l < c->n_layer; l++) block_forward(m, l); /* the last one ends with LN_f */
    return 0;
}

int model_forward(model *m, float *logp, const int *tokens, const int *targets,
                  const int *seq_len, int n_seq, dpo_err *e) {
    double t;
    if (forward_trunk(m, tokens, targets, seq_len, n_seq, e) != 0) return -1;
    t = prof_start(m);
    head_forward(m, logp);
    prof_fwd(m, &t, MODEL_PROF_HEAD);
    m->backward_ready = !m->no_grad;
    return 0;
}

int model_forward_score(model *m, float *score, const int *tokens, const int *seq_len, int n_seq, dpo_err *e) {
    double t;
    if (!m->cfg.score_head) return dpo_errf(e, "model_forward_score: the model has no score head");
    if (forward_trunk(m, tokens, NULL, seq_len, n_seq, e) != 0) return -1;
    t = prof_start(m);
    score_forward(score, m->acts.lnf, m->params.t[P_SCORE], m->n_tok, m->cfg.n_embd);
    prof_fwd(m, &t, MODEL_PROF_HEAD);
    m->backward_ready = !m->no_grad;
    return 0;
}

void model_set_temperature(model *m, double T) { m->inv_temp = (float)(1.0 / T); }

void model_set_no_grad(model *m, int on) {
    m->no_grad = on != 0;
    m->backward_ready = 0;
}

/* the checks every backward makes before it consumes the forward */
static int backward_start(model *m, dpo_err *e) {
    if (m->no_grad) return dpo_errf(e, "model_backward: the model is forward-only (model_set_no_grad)");
    if (!m->backward_ready) return dpo_errf(e, "model_backward needs a fresh model_forward");
    if (!m->grads_mem) return dpo_errf(e, "model_backward: gradients are not allocated");
    if (alloc_dacts(m, e) != 0) return -1;
    m->backward_ready = 0;
    return 0;
}

/* From dln = dL/d(ln_f's output) (n_tok, C), set by a head's backward: LN_f,
 * the blocks and the embeddings. */
static void backward_trunk(model *m) {
    const model_config *c = &m->cfg;
    const model_tensors *p = &m->params, *g = &m->grads;
    model_acts *a = &m->acts;
    model_dacts *d = &m->dacts;
    int l;
    double t = prof_start(m);
    memset(d->dres, 0, (size_t)m->n_tok * c->n_embd * sizeof(float));
    prof_bwd(m, &t, MODEL_PROF_OTHER);
    layernorm_backward(d->dres, g->t[P_LNFW], g->t[P_LNFB], d->dln,
                       block_acts_at(m, c->n_layer - 1).residual3, a->lnf_mean, a->lnf_rstd,
                       p->t[P_LNFW], m->n_tok, c->n_embd);
    prof_bwd(m, &t, MODEL_PROF_LAYERNORM);
    for (l = c->n_layer - 1; l >= 0; l--) block_backward(m, l);
    t = prof_start(m);
    encoder_backward(g->t[P_WTE], g->t[P_WPE], d->dres, m->tokens, m->pos, m->n_tok, c->n_embd);
    prof_bwd(m, &t, MODEL_PROF_OTHER);
}

int model_backward(model *m, const float *dlogp, dpo_err *e) {
    double t;
    if (backward_start(m, e) != 0) return -1;
    t = prof_start(m);
    head_backward(m, dlogp);
    prof_bwd(m, &t, MODEL_PROF_HEAD);
    backward_trunk(m);
    return 0;
}

int model_backward_score(model *m, const float *dscore, dpo_err *e) {
    double t;
    if (!m->cfg.score_head) return dpo_errf(e, "model_backward_score: the model has no score head");
    if (backward_start(m, e) != 0) return -1;
    t = prof_start(m);
    score_backward(m->dacts.dln, m->grads.t[P_SCORE], dscore, m->acts.lnf, m->params.t[P_SCORE], m->n_tok,
                   m->cfg.n_embd);
    prof_bwd(m, &t, MODEL_PROF_HEAD);
    backward_trunk(m);
    return 0;
}

/* ======================================================================== */
/* generation: the key-value cache                                           */
/* ======================================================================== */

/* Generation feeds one new token per sequence per step. A token's keys and
 * values in every layer depend only on it and the tokens before it, so they are
 * kept (model_kv) and each step computes one position per sequence: the same
 * layers as the training forward, row by row, and attention over the cached
 * positions through the same attend_one. */

int model_kv_create(model_kv *kv, const model_config *c, int n_slots, int max_len, dpo_err *e) {
    size_t n, bytes;
    memset(kv, 0, sizeof *kv);
    if (n_slots < 1 || max_len < 1 || max_len > c->n_ctx)
        return dpo_errf(e, "key-value cache: %d sequences of %d tokens (the context is %d)", n_slots, max_len,
                        c->n_ctx);
    kv->n_layer = c->n_layer;
    kv->n_embd = c->n_embd;
    kv->n_slots = n_slots;
    kv->max_len = max_len;
    if (util_mul_size((size_t)c->n_layer * (size_t)n_slots, (size_t)max_len * (size_t)c->n_embd, &n) != 0 ||
        util_mul_size(n, sizeof(float), &bytes) != 0)
        return dpo_errf(e, "key-value cache: size overflows");
    kv->len = calloc((size_t)n_slots, sizeof(int));
    kv->k = malloc(bytes);
    kv->v = malloc(bytes);
    if (!kv->len || !kv->k || !kv->v) {
        model_kv_free(kv);
        return dpo_errf(e, "out of memory for the key-value cache (2 x %zu MiB)", bytes >> 20);
    }
    return 0;
}

void model_kv_free(model_kv *kv) {
    free(kv->len);
    free(kv->k);
    free(kv->v);
    free(kv->mem);
    free(kv->ibuf);
    memset(kv, 0, sizeof *kv);
}

void model_kv_clear(model_kv *kv, int slot) {
    if (slot >= 0 && slot < kv->n_slots) kv->len[slot] = 0;
}

void model_log_softmax_norm(const float *logits, int V, float *mx_out, double *ls_out) {
    double sum;
    softmax_norm(logits, V, mx_out, &sum);
    *ls_out = log(sum);
}

void model_log_softmax(double *logp, const float *logits, int V) {
    float mx;
    double ls;
    int v;
    model_log_softmax_norm(logits, V, &mx, &ls);
    for (v = 0; v < V; v++) logp[v] = (double)logits[v] - (double)mx - ls;
}

/* Check a call and give each token its position: pos[i] = the slot's length
 * plus the earlier tokens of this call in the same slot. Changes nothing. */
static int kv_positions(const model *m, const model_kv *kv, int *pos, const int *tokens, const int *slots, int n,
                        dpo_err *e) {
    int i, j;
    if (kv->n_layer != m->cfg.n_layer || kv->n_embd != m->cfg.n_embd)
        return dpo_errf(e, "key-value cache made for another model shape");
    if (n < 1) return dpo_errf(e, "key-value cache: no tokens");
    for (i = 0; i < n; i++) {
        if (slots[i] < 0 || slots[i] >= kv->n_slots)
            return dpo_errf(e, "key-value cache: slot %d outside [0, %d)", slots[i], kv->n_slots);
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return dpo_errf(e, "token %d has id %d, outside the vocabulary [0, %d)", i, tokens[i],
                            m->cfg.vocab_size);
        pos[i] = kv->len[slots[i]];
        for (j = 0; j < i; j++) pos[i] += slots[j] == slots[i];
        if (pos[i] >= kv->max_len)
            return dpo_errf(e, "sequence %d is full: %d tokens (the cache holds %d)", slots[i], pos[i] + 1,
                            kv->max_len);
    }
    return 0;
}

/* One block over the call's n rows: x (n, C) is the residual stream, updated in
 * place. Layer l's keys and values of every row go to the cache first, so that
 * a row can attend to rows of its own sequence fed in the same call. */
typedef struct {
    float *x, *ln, *mean, *rstd; /* (n, C), (n, C), (n), (n) */
    float *qkv, *atty, *proj;    /* (n, 3C), (n, C), (n, C) */
    float *fch, *fch_gelu;       /* (n, 4C), (n, 4C) */
    float *scores;               /* (n, H, max_len) attention probabilities */
    float *head_in;              /* (n_want, C) */
} kv_scratch;

static void kv_block(const model *m, model_kv *kv, const kv_scratch *s, const int *slots, const int *pos, int n,
                     int l) {
    const model_config *c = &m->cfg;
    int C = c->n_embd, H = c->n_head, D = C / H, i, task;
    size_t C3 = (size_t)3 * C, slot_floats = (size_t)kv->max_len * C;
    size_t layer_floats = (size_t)kv->n_slots * slot_floats;
    float scale = (float)(1.0 / sqrt((double)D));
    block_weights w = block_weights_at(&m->params, l, C);
    float *kl = kv->k + (size_t)l * layer_floats, *vl = kv->v + (size_t)l * layer_floats;

    layernorm_forward(s->ln, s->mean, s->rstd, NULL, s->x, NULL, w.ln1w, w.ln1b, n, C, c->ln_eps);
    matmul_forward(s->qkv, s->ln, w.qkvw, w.qkvb, n, C, 3 * C);
    for (i = 0; i < n; i++) {
        size_t at = (size_t)slots[i] * slot_floats + (size_t)pos[i] * C;
        memcpy(kl + at, s->qkv + (size_t)i * C3 + C, (size_t)C * sizeof(float));
        memcpy(vl + at, s->qkv + (size_t)i * C3 + 2 * (size_t)C, (size_t)C * sizeof(float));
    }
    DPO_OMP_FOR_IF((double)n * C * 16)
    for (task = 0; task < n * H; task++) {
        int r = task / H, h = task % H;
        size_t base = (size_t)slots[r] * slot_floats + (size_t)h * D;
        attend_one(s->atty + (size_t)r * C + (size_t)h * D, s->scores + (size_t)task * kv->max_len,
                   s->qkv + (size_t)r * C3 + (size_t)h * D, kl + base, vl + base, (size_t)C, pos[r] + 1, D,
                   scale);
    }
    matmul_forward(s->proj, s->atty, w.attprojw, w.attprojb, n, C, C);
    layernorm_forward(s->ln, s->mean, s->rstd, s->x, s->x, s->proj, w.ln2w, w.ln2b, n, C, c->ln_eps);
    matmul_forward(s->fch, s->ln, w.fcw, w.fcb, n, C, 4 * C);
    gelu_forward(s->fch_gelu, s->fch, (size_t)n * 4 * C);
    matmul_forward(s->proj, s->fch_gelu, w.fcprojw, w.fcprojb, n, 4 * C, C);
    residual_forward(s->x, s->x, s->proj, (size_t)n * C);
}

int model_kv_forward(const model *m, model_kv *kv, float *logits, const int *tokens, const int *slots,
                     const int *want, int n, dpo_err *e) {
    const model_config *c = &m->cfg;
    const model_tensors *p = &m->params;
    size_t nn = (size_t)n, C = (size_t)c->n_embd, counts[11];
    kv_scratch s;
    /* cppcheck-suppress uninitvar ; only the members' addresses are taken here, to be set below */
    float **ptrs[] = {&s.x, &s.ln, &s.mean, &s.rstd, &s.qkv, &s.atty, &s.proj, &s.fch, &s.fch_gelu,
                      &s.scores, &s.head_in};
    int i, l, n_want = 0;

    if (n < 1 || n > 1 << 20) return dpo_errf(e, "key-value cache: %d tokens in one call", n);
    if (nn > kv->ibuf_cap) {
        free(kv->ibuf);
        kv->ibuf = malloc(nn * sizeof(int));
        kv->ibuf_cap = kv->ibuf ? nn : 0;
        if (!kv->ibuf) return dpo_err_oom(e, "the key-value cache's positions", nn, sizeof(int));
    }
    if (kv_positions(m, kv, kv->ibuf, tokens, slots, n, e) != 0) return -1;
    for (i = 0; i < n; i++) n_want += !want || want[i];
    counts[0] = nn * C;
    counts[1] = nn * C;
    counts[2] = nn;
    counts[3] = nn;
    counts[4] = nn * 3 * C;
    counts[5] = nn * C;
    counts[6] = nn * C;
    counts[7] = nn * 4 * C;
    counts[8] = nn * 4 * C;
    counts[9] = nn * (size_t)c->n_head * (size_t)kv->max_len;
    counts[10] = (size_t)n_want * C;
    if (carve_arena(&kv->mem, &kv->cap, ptrs, counts, 11, "the key-value cache's scratch", e) != 0) return -1;

    encoder_forward(s.x, tokens, kv->ibuf, p->t[P_WTE], p->t[P_WPE], n, c->n_embd);
    for (l = 0; l < c->n_layer; l++) kv_block(m, kv, &s, slots, kv->ibuf, n, l);
    for (i = 0; i < n; i++) kv->len[slots[i]]++;
    if (n_want == 0) return 0;

    /* the head on the wanted rows: LN_f, then logits = lnf wte^T */
    for (i = 0, l = 0; i < n; i++)
        if (!want || want[i]) memcpy(s.ln + (size_t)l++ * C, s.x + (size_t)i * C, C * sizeof(float));
    layernorm_forward(s.head_in, s.mean, s.rstd, NULL, s.ln, NULL, p->t[P_LNFW], p->t[P_LNFB], n_want, c->n_embd,
                      c->ln_eps);
    mm_a_bt(logits, s.head_in, p->t[P_WTE], n_want, c->vocab_size, c->n_embd);
    return 0;
}
