/* optim.h - optimizers (SGD, RMSprop, AdamW with PyTorch's semantics), the
 * learning-rate schedule (Hugging Face's linear warm-up, then constant or
 * cosine), global gradient-norm clipping, and the optimizer state with its
 * checkpoint file. See optim.c. */
#ifndef DPO_OPTIM_H
#define DPO_OPTIM_H

#include <stddef.h>
#include "util.h"

typedef enum { OPTIM_SGD, OPTIM_RMSPROP, OPTIM_ADAMW } optim_kind;
typedef enum { OPTIM_CONSTANT, OPTIM_COSINE } optim_schedule;

typedef struct {
    optim_kind kind;
    double lr;              /* peak learning rate */
    int warmup;             /* optimizer steps of linear warm-up from 0 */
    optim_schedule schedule;
    long total_steps;       /* for the cosine schedule: the step at which lr reaches min_lr */
    double min_lr;          /* for the cosine schedule: the floor it decays to (default 0) */
    double weight_decay;    /* rmsprop: L2 added to the gradient (PyTorch); adamw: decoupled; sgd: must be 0 */
    double grad_clip;       /* maximum global L2 norm of the gradient; 0 turns clipping off */
    double alpha;           /* rmsprop smoothing (PyTorch default 0.99) */
    double beta1, beta2;    /* adamw (0.9, 0.999) */
    double eps;             /* rmsprop and adamw (1e-8) */
} optim_config;

/* PyTorch's defaults for that optimizer (alpha 0.99, betas 0.9/0.999, eps 1e-8;
 * every field is filled whatever the kind), with the DPO paper's training
 * settings: lr 1e-6, warmup 150, constant schedule, clip 10, weight decay 0
 * (total_steps 0: set it before choosing the cosine schedule). */
void optim_config_defaults(optim_config *c, optim_kind kind);

/* 0 if the config is usable, else -1 and a message naming the field and its
 * value: kind and schedule known; lr finite and > 0; warmup >= 0; weight_decay
 * finite and >= 0 (exactly 0 for sgd: "sgd is plain: no weight decay");
 * grad_clip finite and >= 0; for rmsprop alpha in [0, 1); for adamw beta1 and
 * beta2 in [0, 1); for rmsprop and adamw eps finite and > 0; for the cosine
 * schedule total_steps >= 1, warmup <= total_steps and min_lr in [0, lr].
 * Fields the kind does not use are not checked. */
int optim_config_validate(const optim_config *c, dpo_err *e);

/* Names used on the command line and in messages: "sgd", "rmsprop", "adamw";
 * "constant", "cosine". The _from_name functions return 0, or -1 for an
 * unknown name (with a message listing the known ones). */
const char *optim_kind_name(optim_kind k);
int optim_kind_from_name(const char *name, optim_kind *out, dpo_err *e);
const char *optim_schedule_name(optim_schedule s);
int optim_schedule_from_name(const char *name, optim_schedule *out, dpo_err *e);

typedef struct {
    optim_config cfg;
    size_t n;               /* parameters */
    float *m;               /* (n) adamw first moment, else NULL */
    float *v;               /* (n) rmsprop square average / adamw second moment, else NULL */
    long step;              /* updates done so far */
} optim_state;

/* Validates c, then allocates the zeroed moments the kind needs (one
 * allocation per moment); step = 0. n must be >= 1. On error *s is left
 * zeroed (optim_free is safe). */
int optim_init(optim_state *s, const optim_config *c, size_t n, dpo_err *e);
void optim_free(optim_state *s);

/* Learning rate of update number `step` (0-based), Hugging Face's convention
 * (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup):
 *   step < warmup:  lr * step / warmup           (update 0 of a warm-up has lr 0)
 *   constant:       lr
 *   cosine:         min_lr + (lr - min_lr) * 0.5 * (1 + cos(pi * (step - warmup) / max(1, total_steps - warmup))),
 *                   min_lr once step >= total_steps (min_lr 0: Hugging Face's schedule).
 * A negative step has lr 0. */
double optim_lr(const optim_config *c, long step);

/* Global L2 norm sqrt(sum_i g_i^2) of g (n), accumulated in double over chunks
 * of fixed size (partial sums per chunk in parallel, then summed in chunk
 * order): bit-identical for any thread count. 0 for n = 0; inf or NaN when g
 * holds one. */
double optim_grad_norm(const float *g, size_t n);

/* One update of params (n) with grads (n):
 *   1. norm = optim_grad_norm(grads); if it is not finite, return it and touch
 *      nothing (not params, grads, moments nor step): the caller stops;
 *   2. if grad_clip > 0 and norm > grad_clip, scale the grads in place by
 *      grad_clip / (norm + 1e-6) (torch.nn.utils.clip_grad_norm_);
 *   3. apply the update of cfg.kind with lr = optim_lr(&cfg, step); step++.
 * Returns the pre-clip norm. Bit-identical for any thread count. */
double optim_step(optim_state *s, float *params, float *grads);

/* Checkpoint: the state as a safetensors file of F32 tensors, written
 * atomically (a crash leaves the old file or the new one):
 *   "kind"  [1]  1 = sgd, 2 = rmsprop, 3 = adamw
 *   "n"     [2]  the parameter count as two exact integers in float:
 *                n = n[0] + 2^24 n[1], each in [0, 2^24)
 *   "step"  [2]  the step, split the same way (so any step below 2^48 is exact)
 *   "m"     [n]  adamw's first moment (adamw only)
 *   "v"     [n]  rmsprop's square average / adamw's second moment (not sgd)
 * and no other tensor. A float holds every integer below 2^24 exactly, which is
 * why the counters are split in halves of 24 bits. */
int optim_save(const optim_state *s, const char *path, dpo_err *e);

/* s must already be initialised (optim_init) with the config and n the file
 * was saved with. The file's kind, n, tensor names, dtypes and shapes are all
 * checked before anything in s changes; a mismatch or a malformed file is an
 * error naming the file and the problem, with s untouched. If reading the
 * moments then fails, or they hold a non-finite value (or v a negative one),
 * s is reset to its freshly initialised state (zero moments, step 0) and the
 * error says so. */
int optim_load(optim_state *s, const char *path, dpo_err *e);

#endif
