/* train.h - the training loop of dpo train and dpo sft, evaluation, checkpoints. See train.c. */
#ifndef DPO_TRAIN_H
#define DPO_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include "data.h"
#include "model.h"
#include "objective.h"
#include "optim.h"
#include "tokenizer.h"
#include "util.h"

typedef enum {
    TRAIN_DPO, /* preference pairs, the loss of `loss` against a frozen reference */
    TRAIN_SFT, /* supervised rows: the mean NLL of the completion tokens, no reference */
    TRAIN_RM   /* preference pairs, a reward model (score head) fitted with the Bradley-Terry loss */
} train_mode;

typedef struct {
    train_mode mode;
    const char *model_dir;     /* policy to fine-tune */
    const char *ref_dir;       /* frozen reference (NULL: a copy of model_dir) */
    const char *data_path;     /* JSONL pairs (SFT: rows) */
    const char *eval_path;     /* held-out JSONL of the same kind, or NULL */
    int eval_every;            /* evaluate every N steps (and after the last); 0: after the last only */
    const char *out_dir;       /* where the fine-tuned model directory goes */
    const char *tokenizer_dir; /* tokenizer (NULL: model_dir's) */
    obj_loss_config loss;      /* TRAIN_DPO only */
    optim_config opt;
    int batch;                 /* pairs per optimizer step */
    int micro_batch;           /* pairs per forward/backward; gradients accumulate */
    int max_len, max_prompt_len;
    long steps;                /* optimizer steps; 0: from epochs */
    int epochs;
    uint64_t seed;             /* shuffling */
    int save_every;            /* checkpoint into out_dir every N steps (0: only at the end) */
    int precompute_ref;        /* reference log-probs of every row once, then free the reference (TRAIN_DPO) */
    const char *resume_dir;    /* continue the run saved in this checkpoint (NULL: a new run) */
} train_config;

/* The defaults of dpo train and dpo sft (their --help prints these values):
 * batch 64 rows, micro-batch 4, one epoch, lengths DATA_DEFAULT_*, the dpo loss
 * with beta OBJ_DEFAULT_BETA and alpha 1, and optim_config_defaults' RMSprop
 * (lr 1e-6, warm-up 150, constant schedule, clip 10); everything else 0/NULL. */
#define TRAIN_DEFAULT_BATCH 64
#define TRAIN_DEFAULT_MICRO_BATCH 4
void train_config_defaults(train_config *c, train_mode mode);

/* A reward model's head, when dpo rm-train starts from a language model:
 * normal(0, TRAIN_RM_HEAD_STD) (transformers' initializer_range), drawn from
 * the run's seed. */
#define TRAIN_RM_HEAD_STD 0.02

/* One step's metrics, with TRL's names in the log; an evaluation fills the same
 * fields over the whole held-out set (grad_norm and learning_rate 0).
 * TRAIN_DPO: loss is the mean over the pairs of the batch; the others are means
 * over its pairs. TRAIN_SFT: loss is the mean NLL over all completion tokens of
 * the batch, logp_chosen the mean summed completion log-prob, the rest 0.
 * TRAIN_RM: loss the mean Bradley-Terry loss, reward_chosen and
 * reward_rejected the mean scores r(x, y_w) and r(x, y_l), accuracy the share
 * of pairs with r(x, y_w) > r(x, y_l), margin the mean r(x, y_w) - r(x, y_l);
 * no log-probs. */
typedef struct {
    long step;                 /* 1-based; for an evaluation, the step it follows */
    double epoch;              /* rows seen / rows in the data */
    double loss;
    double reward_chosen, reward_rejected, accuracy, margin;
    double logp_chosen, logp_rejected;
    double grad_norm;          /* before clipping */
    double learning_rate;
    double tokens_per_second;  /* tokens forwarded (and backwarded, in training) per second */
    double seconds;            /* wall time of the step (or evaluation) */
    double optim_seconds;      /* of which in optim_step: the gradient norm, clipping and the update */
} train_metrics;

/* Any of the functions may be NULL. step and eval return 0 to go on, or -1
 * with a message in e (say, the metrics log could not be written) to stop the
 * run with that error; nothing after the last checkpoint is saved then. */
typedef struct {
    /* once before training with the data (eval: NULL without eval_path) */
    void (*start)(void *ctx, const data_set *train, const data_set *eval, long total_steps);
    int (*step)(void *ctx, const train_metrics *m, long total_steps, dpo_err *e); /* after every step */
    int (*eval)(void *ctx, const train_metrics *m, long total_steps, dpo_err *e); /* after every evaluation */
    /* a one-line notice about the run: what --resume found */
    void (*note)(void *ctx, const char *msg);
    /* while the reference's log-probs are computed once (--precompute-ref: which =
       "training"; held-out rows: "held-out"): rows done so far, of total */
    void (*ref_progress)(void *ctx, const char *which, int done, int total);
    /* asked after every step but the last: nonzero stops the run there, with a
       checkpoint of that step written (an interrupt: resume it with --resume) */
    int (*stop)(void *ctx);
    void *ctx;
} train_callbacks;

/* The output directory is checked before any work (train_run does it too):
 * out_dir (trailing slashes dropped; not "/", "." or "..") must be missing,
 * empty, or a complete checkpoint of dpo (resume_dir may name it even when it
 * is incomplete); out_dir, "<out_dir>.tmp" and "<out_dir>.old" must not be
 * symbolic links, must hold nothing but a checkpoint's files, and must not be
 * the model, reference or tokenizer directory. Errors name the path. */
int train_check_out(const train_config *c, dpo_err *e);

/* 1 when dir is out_dir, "<out_dir>.tmp" or "<out_dir>.old" (the directories a
 * save replaces), with that name copied into name (capacity cap); else 0. */
int train_out_sibling(const train_config *c, const char *dir, char *name, size_t cap);

/* Train and write out_dir (cb may be NULL): a model directory (config.json, model.safetensors,
 * vocab.json, merges.txt) plus optimizer.safetensors and trainer_state.json
 * (mode, step, rows seen, seed, batch sizes), at the end and every save_every steps.
 * A checkpoint is written into "<out_dir>.tmp" (trainer_state.json last) and
 * swapped in by renames ("<out_dir>" -> "<out_dir>.old", "<out_dir>.tmp" ->
 * "<out_dir>", remove the old), so that whatever moment the process dies at, one
 * of the three names holds a complete checkpoint of the newest step saved. With
 * resume_dir, the newest complete checkpoint among resume_dir and its ".tmp" and
 * ".old" is moved into place and the others removed; with none, the run starts
 * from step 0 (cb->note says which). Resuming with the same data, seed and batch
 * sizes ends bit-identical to an uninterrupted run.
 * With eval_path, the policy is evaluated on the held-out rows every eval_every
 * steps and after the last: the same metrics, forward passes only, the
 * reference's log-probs of those rows computed once at the start. Evaluations
 * change nothing in the training run. */
int train_run(const train_config *c, const train_callbacks *cb, dpo_err *e);
/* train_run returns 0 when it trained every step, -1 on an error (e says
 * which), and 1 when cb->stop asked it to stop: out_dir then holds a complete
 * checkpoint of the last step done, from which --resume continues
 * bit-identically. */

/* One optimizer step of train_run, on a batch held in memory (dpo bench times
 * it): the policy's gradients zeroed (allocated first if need be), rows[0..B)
 * of d (B = c->batch) in forward and backward passes of at most c->micro_batch
 * rows each, the reference forwarded on the same rows when the objective uses
 * it (ref may be NULL only when it does not; give it model_set_no_grad, as
 * train_run does), then optim_step on opt (its own config; c->opt is not read).
 * c->mode must match the data (pairs or SFT rows). m receives the step's
 * metrics as train_run reports them, with step = opt->step after the update
 * and epoch 0. On error the models and opt may have been used but the run is
 * not to be continued. */
int train_step(const train_config *c, model *policy, model *ref, optim_state *opt, const data_set *d,
               const int *rows, train_metrics *m, dpo_err *e);

#endif

