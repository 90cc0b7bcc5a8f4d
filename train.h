/* train.h - training data (pairs, SFT rows), the training loop, evaluation. See train.c. */
#ifndef DPO_TRAIN_H
#define DPO_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "objective.h"
#include "optim.h"
#include "tokenizer.h"
#include "util.h"

/* One row after tokenization and truncation. A preference pair has two
 * sequences, prompt ++ chosen and prompt ++ rejected; a supervised (SFT) row has
 * one, prompt ++ completion, with the completion stored as "chosen". Each
 * response ends with the end-of-text id unless truncation cut it off. */
typedef struct {
    size_t off;       /* into the pool: prompt, then chosen, then rejected tokens */
    int n_prompt;     /* >= 1 */
    int n_chosen;     /* >= 1, including the end-of-text id when it fits */
    int n_rejected;   /* >= 1 for a pair; 0 in SFT data */
    long line;        /* line of the JSONL file it came from */
} dpo_row;

typedef struct {
    dpo_row *rows;
    int n_rows;
    int *pool;        /* (n_pool) token ids of every row */
    size_t n_pool;
    int n_truncated;  /* rows that had to be cut to fit max_len */
    int sft;          /* 1: SFT rows (one sequence each), 0: preference pairs */
} dpo_dataset;

/* Read JSONL rows {"prompt": str, "chosen": str, "rejected": str} (other keys
 * ignored, blank lines skipped). prompt and each response are encoded
 * separately, so no BPE merge crosses the boundary; an empty prompt becomes
 * [eos]. Truncation: when prompt plus the longer response (with its eos) exceeds
 * max_len, keep the last max_prompt_len prompt tokens, then cut each response
 * (with its eos) to fit. A malformed row is an error naming the file and line,
 * and nothing is returned. */
int dpo_data_load(dpo_dataset *d, const char *path, const tok_tokenizer *t, int eos, int max_len,
                  int max_prompt_len, dpo_err *e);

/* The same for supervised fine-tuning: rows {"prompt": str, "completion": str},
 * or {"text": str}, which is read as an empty prompt (so [eos]) and the text as
 * the completion; a row with both "text" and "completion" is an error. The
 * completion gets the end-of-text id, prompt and completion are encoded
 * separately, and truncation is the rule above with the completion as the only
 * response. d->sft is 1 and every n_rejected is 0. */
int sft_data_load(dpo_dataset *d, const char *path, const tok_tokenizer *t, int eos, int max_len,
                  int max_prompt_len, dpo_err *e);
void dpo_data_free(dpo_dataset *d);

/* Summed response log-probabilities of every sequence under model m. Pairs:
 * logp[2 r] = log p(chosen | prompt), logp[2 r + 1] = log p(rejected | prompt);
 * SFT data: logp[r] = log p(completion | prompt). micro_batch rows per forward
 * pass (results do not depend on it: a sequence's log-probs are the same alone
 * or packed). progress (may be NULL) is called after every forward pass with the
 * rows done so far and the rows in all. */
typedef void (*dpo_progress_fn)(void *ctx, int done, int total);
int dpo_data_logps(model *m, const dpo_dataset *d, int micro_batch, double *logp, dpo_progress_fn progress,
                   void *ctx, dpo_err *e);

/* The truncation rule of dpo_data_load on token counts (exposed for tests):
 * with responses n_c and n_r (each with its eos; n_r = 0 for SFT rows), when
 * n_prompt + max(n_c, n_r) > max_len, keep the last max_prompt_len prompt tokens
 * (*prompt_skip = the first ones dropped) and cut each response to max_len minus
 * the prompt. Counts may be up to 2^30 each: sums are computed without overflow.
 * Returns 1 when the row was cut, else 0. */
int dpo_truncate_lengths(int *n_prompt, size_t *prompt_skip, int *n_c, int *n_r, int max_len, int max_prompt_len);

/* ------------------------------------------------------------------------ */
/* the training loop */

typedef enum {
    TRAIN_DPO, /* preference pairs, the loss of `loss` against a frozen reference */
    TRAIN_SFT  /* supervised rows: the mean NLL of the completion tokens, no reference */
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
    dpo_loss_config loss;      /* TRAIN_DPO only */
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

/* One step's metrics, with TRL's names in the log; an evaluation fills the same
 * fields over the whole held-out set (grad_norm and learning_rate 0).
 * TRAIN_DPO: loss is the mean over the pairs of the batch; the others are means
 * over its pairs. TRAIN_SFT: loss is the mean NLL over all completion tokens of
 * the batch, logp_chosen the mean summed completion log-prob, the rest 0. */
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
} train_metrics;

/* Any of the functions may be NULL. step and eval return 0 to go on, or -1
 * with a message in e (say, the metrics log could not be written) to stop the
 * run with that error; nothing after the last checkpoint is saved then. */
typedef struct {
    /* once before training with the data (eval: NULL without eval_path) */
    void (*start)(void *ctx, const dpo_dataset *train, const dpo_dataset *eval, long total_steps);
    int (*step)(void *ctx, const train_metrics *m, long total_steps, dpo_err *e); /* after every step */
    int (*eval)(void *ctx, const train_metrics *m, long total_steps, dpo_err *e); /* after every evaluation */
    /* a one-line notice about the run: what --resume found */
    void (*note)(void *ctx, const char *msg);
    /* while the reference's log-probs are computed once (--precompute-ref: which =
       "training"; held-out rows: "held-out"): rows done so far, of total */
    void (*ref_progress)(void *ctx, const char *which, int done, int total);
    void *ctx;
} train_callbacks;

/* The output directory is checked before any work (train_run does it too):
 * out_dir (trailing slashes dropped; not "/", "." or "..") must be missing,
 * empty, or a complete checkpoint of dpo (resume_dir may name it even when it
 * is incomplete); out_dir, "<out_dir>.tmp" and "<out_dir>.old" must not be
 * symbolic links, must hold nothing but a checkpoint's files, and must not be
 * the model, reference or tokenizer directory. Errors name the path. */
int train_check_out(const train_config *c, dpo_err *e);

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

#endif

