/* model.h - GPT-2: configuration, parameter and activation layout, forward and
 * backward over packed batches (model.c), and Hugging Face model directories
 * (model_io.c). */
#ifndef DPO_MODEL_H
#define DPO_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

/* Bounds a config.json must respect before anything is allocated from it. */
#define MODEL_MAX_LAYERS 256
#define MODEL_MAX_HEADS 256
#define MODEL_MAX_EMBD 16384
#define MODEL_MAX_CTX 65536
#define MODEL_MAX_VOCAB 4194304
#define MODEL_MAX_PARAMS ((size_t)1 << 34) /* 16 G parameters: 64 GiB of floats */

typedef struct {
    int n_layer;      /* L: transformer blocks */
    int n_head;       /* H: attention heads; n_embd % n_head == 0 */
    int n_embd;       /* C: width of the residual stream */
    int n_ctx;        /* maximum sequence length (n_positions) */
    int vocab_size;   /* V */
    double ln_eps;    /* LayerNorm epsilon (layer_norm_epsilon) */
    int eos_token_id; /* end-of-text id written back to config.json */
    int score_head;   /* 0: a language model (GPT2LMHeadModel); 1: a reward or value model
                         (GPT2ForSequenceClassification, num_labels 1): score.weight (1, C)
                         reads a number off the final hidden state (model_forward_score) */
} model_config;

/* The 17 parameter tensor families, in this order in memory. Per-layer
 * families hold the L layers' tensors one after another; each layer's slice is
 * exactly the Hugging Face tensor (Conv1D weights are [in, out]). */
enum {
    P_WTE,      /* wte.weight            (V, C)        */
    P_WPE,      /* wpe.weight            (n_ctx, C)    */
    P_LN1W,     /* h.l.ln_1.weight       (L, C)        */
    P_LN1B,     /* h.l.ln_1.bias         (L, C)        */
    P_QKVW,     /* h.l.attn.c_attn.weight (L, C, 3C)   */
    P_QKVB,     /* h.l.attn.c_attn.bias  (L, 3C)       */
    P_ATTPROJW, /* h.l.attn.c_proj.weight (L, C, C)    */
    P_ATTPROJB, /* h.l.attn.c_proj.bias  (L, C)        */
    P_LN2W,     /* h.l.ln_2.weight       (L, C)        */
    P_LN2B,     /* h.l.ln_2.bias         (L, C)        */
    P_FCW,      /* h.l.mlp.c_fc.weight   (L, C, 4C)    */
    P_FCB,      /* h.l.mlp.c_fc.bias     (L, 4C)       */
    P_FCPROJW,  /* h.l.mlp.c_proj.weight (L, 4C, C)    */
    P_FCPROJB,  /* h.l.mlp.c_proj.bias   (L, C)        */
    P_LNFW,     /* ln_f.weight           (C)           */
    P_LNFB,     /* ln_f.bias             (C)           */
    P_SCORE,    /* score.weight          (1, C): only with cfg.score_head, else 0 floats */
    MODEL_NUM_FAMILIES
};

typedef struct {
    float *t[MODEL_NUM_FAMILIES]; /* pointers into one contiguous allocation */
} model_tensors;

/* One Hugging Face tensor: a family's slice for one layer (or the whole family). */
typedef struct {
    char name[64];       /* HF name without the "transformer." prefix, e.g. "h.3.mlp.c_fc.weight" */
    int family;          /* P_* */
    int layer;           /* -1 for wte, wpe, ln_f */
    int ndim;            /* 1 or 2 */
    size_t shape[2];
    size_t numel;
    size_t offset;       /* floats from the start of the parameter block */
} model_tensor_info;

/* Activations saved by the forward pass for the backward pass, for a packed
 * batch of n_tok tokens in n_seq sequences, n_sel of which have a target. No
 * attention probabilities are kept: per layer, token and head, the two numbers
 * from which the backward rebuilds that query's row of probabilities bit for bit
 * (model.c, attention). Every size is linear in n_tok (and n_sel): there is no
 * T x T term. One allocation. */
typedef struct {
    float *encoded;   /* (n_tok, C) token + position embeddings */
    float *ln1;       /* (L, n_tok, C) */
    float *ln1_mean;  /* (L, n_tok) */
    float *ln1_rstd;  /* (L, n_tok) */
    float *qkv;       /* (L, n_tok, 3C) */
    float *atty;      /* (L, n_tok, C) attention output, heads concatenated */
    float *att_mx;    /* (L, H, n_tok) largest attention score of each query row */
    float *att_inv;   /* (L, H, n_tok) 1 / sum_j exp(score_j - max) of each query row */
    float *residual2; /* (L, n_tok, C) after the attention residual */
    float *ln2;       /* (L, n_tok, C) */
    float *ln2_mean;  /* (L, n_tok) */
    float *ln2_rstd;  /* (L, n_tok) */
    float *fch;       /* (L, n_tok, 4C) MLP pre-activation */
    float *fch_gelu;  /* (L, n_tok, 4C) */
    float *residual3; /* (L, n_tok, C) after the MLP residual: the block output */
    float *lnf;       /* (n_tok, C) */
    float *lnf_mean;  /* (n_tok) */
    float *lnf_rstd;  /* (n_tok) */
    float *head_in;   /* (n_sel, C) rows of lnf whose token has a target */
    float *head_mx;   /* (n_sel) largest logit of each row of the head */
    float *head_inv;  /* (n_sel) 1 / sum_v exp(logit_v - max) of each row of the head */
    float *logits;    /* scratch of the head's logits: (R, V) R = head_rows rows of them in the
                         forward, (n_sel, W) W = head_cols columns recomputed and turned into
                         dlogits in the backward; max(R V, n_sel W) floats */
    float *tmp;       /* (n_tok, C) scratch for a projection before its residual add */
    float *att_rows;  /* (QB H n_tok) scratch: one block of QB query rows' scores per (sequence, head) */
} model_acts;

/* Gradient scratch for the backward pass (activation gradients), one allocation. */
typedef struct {
    float *dres;      /* (n_tok, C) gradient of the residual stream */
    float *dln;       /* (n_tok, C) gradient of a LayerNorm output */
    float *datty;     /* (n_tok, C) */
    float *dqkv;      /* (n_tok, 3C) */
    float *dfch;      /* (n_tok, 4C) */
    float *dhead;     /* (n_sel, C) */
    float *att_rows;  /* (2 QB H n_tok) scratch: a block of QB query rows of P and of dS per (sequence, head) */
} model_dacts;

/* Profiling (dpo bench --dpo): the seconds the forward and backward passes
 * spend in each kind of layer, added up over calls while a model's prof points
 * at one of these (NULL, the default: no clock is read). Whole layer calls are
 * timed on the calling thread with the monotonic clock (a layer's OpenMP
 * threads finish inside its call). */
enum {
    MODEL_PROF_QKV,       /* the qkv linear layer, C -> 3C: its matrix products and bias */
    MODEL_PROF_ATTPROJ,   /* the attention output projection, C -> C */
    MODEL_PROF_FC,        /* the MLP's first linear layer, C -> 4C */
    MODEL_PROF_FCPROJ,    /* the MLP's projection, 4C -> C */
    MODEL_PROF_ATTENTION, /* causal self-attention: scores, softmax, weighted values */
    MODEL_PROF_LAYERNORM, /* ln_1, ln_2 and ln_f */
    MODEL_PROF_GELU,
    MODEL_PROF_HEAD,      /* the tied head (logits = ln_f(h) wte^T) with its log-softmax */
    MODEL_PROF_OTHER,     /* embeddings, residual adds, zeroing gradient scratch, batch set-up */
    MODEL_PROF_N
};

typedef struct {
    double fwd[MODEL_PROF_N]; /* seconds in model_forward, per category */
    double bwd[MODEL_PROF_N]; /* seconds in model_backward */
} model_prof;

typedef struct {
    model_config cfg;
    size_t num_params;
    model_tensors params;  /* into params_mem */
    model_tensors grads;   /* into grads_mem, NULL until model_alloc_grads */
    float *params_mem;     /* (num_params,) */
    float *grads_mem;      /* (num_params,) */

    /* the batch of the last forward pass */
    int n_tok, n_seq, n_sel;  /* tokens, sequences, tokens with a target */
    int *ibuf;                /* tokens, targets, pos, sel, seq_start carved from one block */
    int *tokens, *targets;    /* (n_tok) */
    int *pos;                 /* (n_tok) position of each token within its sequence */
    int *sel;                 /* (n_sel) index of each token that has a target */
    int *seq_start;           /* (n_seq+1) first token of each sequence; seq_start[n_seq] = n_tok */
    size_t ibuf_cap;

    model_acts acts;
    float *acts_mem;
    size_t acts_cap;          /* floats */
    model_dacts dacts;
    float *dacts_mem;
    size_t dacts_cap;         /* floats */
    int head_rows, head_cols; /* R, W: the head's logits, R rows at a time in the forward and
                                 W columns (of all n_sel rows) at a time in the backward */
    int head_rows_max, head_cols_max; /* 0: R and W from a 16 MiB scratch (R = 83 for GPT-2);
                                         else at most this many (tests) */
    int backward_ready;       /* set by forward, cleared by backward */
    int no_grad;              /* forward-only: see model_set_no_grad */
    float inv_temp;           /* 1 / T of model_set_temperature; 0 (the default) means 1 */
    model_prof *prof;         /* NULL, or where the passes add their seconds (see model_prof) */
} model;

/* Check a config: positive, bounded sizes, n_embd % n_head == 0, parameter count bounded. */
int model_config_validate(const model_config *c, dpo_err *e);

/* Number of HF tensors (2 + 12 L + 2, + 1 with a score head) and the
 * description of tensor i, in the order Hugging Face writes them: wte, wpe,
 * h.0.*, ..., ln_f.*, then score.weight (the one name without "transformer."). */
int model_num_tensors(const model_config *c);
void model_tensor(const model_config *c, int i, model_tensor_info *out);

/* Allocate a model with zeroed parameters (no gradients yet). */
int model_create(model *m, const model_config *c, dpo_err *e);
void model_free(model *m);

/* GPT-2's initialisation: weights normal(0, 0.02), the residual projections
 * (attn.c_proj, mlp.c_proj) normal(0, 0.02 / sqrt(2 L)), biases 0, LayerNorm
 * weight 1 and bias 0. Deterministic in the seed. */
void model_init_random(model *m, uint64_t seed);
/* The same with weight_std in place of GPT-2's 0.02 (projections: weight_std / sqrt(2L)). */
void model_init_random_std(model *m, uint64_t seed, double weight_std);

/* Hugging Face directory: config.json + model.safetensors (model_io.c). model_load
 * validates everything before allocating and fills a fresh model;
 * a non-finite weight (NaN, +-inf, in any stored dtype) is refused, naming the
 * tensor and its first bad element.
 * model_save writes both files atomically (F32, "transformer." names, head tied). */
int model_load_config(const char *dir, model_config *c, dpo_err *e);
int model_load(model *m, const char *dir, dpo_err *e);
/* model_load refuses a directory with a score head (config.json's architectures
 * GPT2ForSequenceClassification): it loads language models only. model_load_any
 * loads either kind (cfg.score_head says which). */
int model_load_any(model *m, const char *dir, dpo_err *e);
/* The same with other file names in dir than config.json and model.safetensors
 * (a checkpoint that holds two models: dpo ppo's value model). */
int model_load_config_as(const char *dir, const char *config_name, model_config *c, dpo_err *e);
int model_load_as(model *m, const char *dir, const char *config_name, const char *weights_name, dpo_err *e);
int model_save_as(const model *m, const char *dir, const char *config_name, const char *weights_name, dpo_err *e);
int model_save(const model *m, const char *dir, dpo_err *e);

/* A language model made into a reward or value model: score.weight appended
 * (normal(0, std), deterministic in the seed, as transformers initialises a
 * new head with std = initializer_range 0.02), every other parameter kept.
 * Gradients and batch buffers are dropped (allocate them again). Nothing
 * changes on error. A model that has the head already is an error. */
int model_add_score_head(model *m, uint64_t seed, double std, dpo_err *e);

/* Gradients: allocate (zeroed) and zero. */
int model_alloc_grads(model *m, dpo_err *e);
void model_zero_grad(model *m);

/* Forward over a packed batch of n_seq sequences, tokens (n_tok) concatenated,
 * seq_len (n_seq) their lengths (each 1..n_ctx). Positions restart at 0 in
 * each sequence and attention never crosses a boundary. targets (n_tok): the id
 * whose log-probability is wanted at each position (usually the next token of
 * the sequence), or -1 for none. logp (n_tok) receives log p(target | prefix), 0
 * where the target is -1. */
int model_forward(model *m, float *logp, const int *tokens, const int *targets,
                  const int *seq_len, int n_seq, dpo_err *e);

/* The scalar head of a reward or value model (cfg.score_head = 1): the same
 * forward over a packed batch, no language-model head, and score (n_tok)
 * receives at every position t the number
 *     score[t] = sum_c h[t, c] w[c]        (h = ln_f's output, w = score.weight)
 * as transformers' GPT2ForSequenceClassification computes its logits. A reward
 * model's reward is the score at the last token of prompt ++ response ++
 * <|endoftext|>; a value model's values are the scores at every position. */
int model_forward_score(model *m, float *score, const int *tokens, const int *seq_len, int n_seq, dpo_err *e);

/* Backward from dscore (n_tok) = d loss / d score[t] (0 where a score is not
 * used): adds d loss / d parameter into the gradients, score.weight's too.
 * Needs a fresh model_forward_score. */
int model_backward_score(model *m, const float *dscore, dpo_err *e);

/* The language-model head at temperature T > 0: model_forward's log-probs
 * become those of softmax(z / T), z the logits (z / T rounded to float, then
 * the same log-softmax), and model_backward differentiates that: what PPO needs
 * when it samples at T. T = 1 (the default) leaves every bit as it was. */
void model_set_temperature(model *m, double T);

/* Forward-only mode (on = 1) for a model that is never trained, such as the
 * frozen reference: the forward pass keeps one layer's activations instead of
 * all of them (about L times less activation memory; the log-probs are bit for
 * bit the same) and model_backward is refused. */
void model_set_no_grad(model *m, int on);

/* Backward from dlogp (n_tok) = d loss / d logp per token (ignored where the
 * target was -1): adds d loss / d parameter into the gradients. Uses, and
 * consumes, the activations of the last forward: one backward per forward. */
int model_backward(model *m, const float *dlogp, dpo_err *e);

/* ------------------------------------------------------------------------ */
/* generation: the key-value cache                                           */

/* Keys and values of every layer at every position fed so far, for up to
 * n_slots sequences of at most max_len tokens each, so that each new token
 * costs one position instead of a forward pass over its whole sequence. */
typedef struct {
    int n_layer, n_embd;      /* L, C of the model it was made for */
    int n_slots, max_len;     /* sequences, positions per sequence (<= n_ctx) */
    int *len;                 /* (n_slots) positions filled in each slot */
    float *k, *v;             /* (L, n_slots, max_len, C) */
    float *mem;               /* scratch of one call, carved per call */
    size_t cap;               /* floats in mem */
    int *ibuf;                /* (n) positions of one call's tokens */
    size_t ibuf_cap;
} model_kv;

int model_kv_create(model_kv *kv, const model_config *c, int n_slots, int max_len, dpo_err *e);
void model_kv_free(model_kv *kv);
/* forget slot's sequence (its next token is position 0) */
void model_kv_clear(model_kv *kv, int slot);

/* Feed n tokens: token i extends sequence slots[i] at its next position (a slot
 * may take several tokens in one call: they are consecutive positions, in
 * order, and each attends to the ones before it). For every i with want[i] != 0
 * (want NULL: every i), in order, a row of logits (V) is written to logits
 * (n_want, V): the model's next-token logits after token i. Each row is bit for
 * bit what model_forward computes at that position of the whole sequence, for
 * any batch composition and thread count. Nothing changes on error (a slot full,
 * a bad id). */
int model_kv_forward(const model *m, model_kv *kv, float *logits, const int *tokens, const int *slots,
                     const int *want, int n, dpo_err *e);

/* Turn a row of logits (V) into log-probabilities in double:
 * logp_v = z_v - max - log sum exp(z - max), the sum in double, exactly as
 * model_forward's log-softmax computes log p(target): (float) logp_v is the
 * same bits as model_forward's logp at that position. */
void model_log_softmax(double *logp /* (V) */, const float *logits /* (V) */, int V);
/* Its two constants: logp_v = (double) z_v - (double) *mx - *ls. */
void model_log_softmax_norm(const float *logits /* (V) */, int V, float *mx, double *ls);

#endif
