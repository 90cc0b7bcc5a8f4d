/* ppo_train.h - the loop of dpo ppo (ppo_train.c): rollouts sampled from the
 * policy, scored by a reward, turned into advantages (ppo.c), and several
 * epochs of clipped policy and value updates; checkpoints and --resume. */
#ifndef DPO_PPO_TRAIN_H
#define DPO_PPO_TRAIN_H

#include <stdint.h>
#include "optim.h"
#include "util.h"

typedef struct {
    const char *model_dir;     /* the policy to train, a language model (with its tokenizer) */
    const char *ref_dir;       /* the frozen reference (NULL: a copy of model_dir) */
    const char *value_dir;     /* where the value model starts (NULL: see ppo_run) */
    const char *prompts_path;  /* JSONL rows {"prompt": str} */
    const char *reward_spec;   /* "sentiment" or "model:DIR" (reward.h) */
    const char *out_dir;
    const char *tokenizer_dir; /* NULL: model_dir's */
    double kl_coef;            /* C: the per-token KL penalty's coefficient (the initial one with target_kl) */
    double target_kl;          /* > 0: adapt C towards this KL per sequence (nats); 0: C fixed */
    double kl_horizon;         /* the adaptive controller's horizon, in sequences */
    int batch;                 /* rollouts (prompts) per PPO step */
    int mini_batch;            /* rollouts per optimizer step */
    int micro_batch;           /* rollouts per forward/backward pass; gradients accumulate */
    int ppo_epochs;            /* passes over each batch of rollouts */
    int max_new;               /* generated tokens at most, the end-of-text included */
    int max_prompt_len;        /* prompt tokens kept (the last ones); 0: the context minus max_new */
    double temperature;        /* rollouts are sampled from softmax(z / T), and trained as such */
    double gamma, lam;         /* GAE */
    double clip, clip_value;   /* eps of the policy's ratio and of the value's change */
    optim_config opt;          /* the policy's optimizer */
    optim_config value_opt;    /* the value model's */
    long steps;                /* PPO steps (batches of rollouts) */
    uint64_t seed;             /* prompt order and sampling */
    int save_every;            /* checkpoint every N steps (0: at the end only) */
    const char *resume_dir;    /* continue the run checkpointed there */
} ppo_config;

/* dpo ppo's defaults: C 0.05 fixed, horizon 10000, batch 64, mini-batch 16,
 * micro-batch 16, 4 epochs, 32 new tokens, prompts of what the context leaves, T 1,
 * gamma 1, lam 0.95, eps 0.2 and 0.2, AdamW at lr 1e-5 for both models (no
 * warm-up, clipping at 1), 100 steps, seed 0. */
void ppo_config_defaults(ppo_config *c);

/* One PPO step's metrics, named as TRL's PPO trainer logs them. Means are over
 * the batch's rollouts (per sequence) unless said otherwise. */
typedef struct {
    long step;                  /* 1-based */
    double epoch;               /* prompts drawn / prompts in the file */
    double kl;                  /* objective/kl: sum over a rollout's tokens of log pi - log pi_ref */
    double kl_coef;             /* objective/kl_coef: C used in this step's rewards */
    double scores;              /* objective/scores: the reward of the completions */
    double non_score_reward;    /* objective/non_score_reward: -C kl */
    double rlhf_reward;         /* objective/rlhf_reward: scores - C kl */
    double loss_policy;         /* ppo/loss/policy: the clipped surrogate, token mean, over the epochs' mini-batches */
    double loss_value;          /* ppo/loss/value: the clipped value loss, likewise */
    double clipfrac;            /* ppo/policy/clipfrac: share of tokens whose ratio was clipped */
    double approxkl;            /* ppo/policy/approxkl: half the mean squared log-ratio */
    double value_clipfrac;      /* ppo/val/clipfrac */
    double value_mean;          /* ppo/val/mean: the value model's values of the rollouts' tokens */
    double returns_mean;        /* ppo/returns/mean */
    double length;              /* tokens generated per rollout, the end-of-text included */
    double grad_norm, value_grad_norm; /* of the last mini-batch, before clipping */
    double seconds;             /* wall time of the step */
    double rollout_seconds;     /* of which sampling and scoring */
} ppo_metrics;

typedef struct {
    /* after every step; nonzero stops the run with e set */
    int (*step)(void *ctx, const ppo_metrics *m, long total, dpo_err *e);
    void (*note)(void *ctx, const char *msg); /* what --resume found; what the value model starts from */
    /* When set, the reward of a rollout instead of c->reward_spec's (which is
     * then not opened): its prompt (index into the prompts file), its
     * generated ids (the end-of-text excluded) and whether it ended with the
     * end-of-text. A toy task's reward; tests. */
    int (*score)(void *ctx, long prompt, const int *ids, int n_ids, int ended, double *out, dpo_err *e);
    /* asked after every step but the last: nonzero stops the run there, with a checkpoint */
    int (*stop)(void *ctx);
    void *ctx;
} ppo_callbacks;

/* The output directory, before any work: as dpo train's (ckpt_check_out). */
int ppo_check_out(const ppo_config *c, dpo_err *e);

/* Train and write out_dir (cb may be NULL): the policy as a model directory
 * (config.json, model.safetensors, vocab.json, merges.txt), its optimizer
 * state, the value model (value_config.json, value.safetensors: a
 * GPT2ForSequenceClassification), its optimizer state, and ppo_state.json;
 * at the end and every save_every steps, replaced atomically (ckpt.h).
 * The value model starts from value_dir; without it, from the reward model
 * when the reward is model:DIR (as TRL does), else from the policy's trunk
 * with a new score head (normal(0, 0.02), from the seed). Resuming with the
 * same settings ends bit-identical to an uninterrupted run, for any thread
 * count. */
int ppo_run(const ppo_config *c, const ppo_callbacks *cb, dpo_err *e);
/* ppo_run returns 0 after the last step, -1 on an error, and 1 when cb->stop
 * asked it to stop: out_dir then holds a checkpoint of the last step done. */

#endif
