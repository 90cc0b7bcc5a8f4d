/* objective.h - the DPO objective family: the loss of a batch of preference
 * pairs and its derivatives with respect to the policy's summed log-probs.
 * The derivation of every loss is at the top of objective.c. */
#ifndef DPO_OBJECTIVE_H
#define DPO_OBJECTIVE_H

#include "util.h"

typedef enum {
    OBJ_LOSS_DPO,          /* -log sigmoid(beta h), conservative with label smoothing */
    OBJ_LOSS_IPO,          /* (h - 1/(2 beta))^2 */
    OBJ_LOSS_HINGE,        /* max(0, 1 - beta h) */
    OBJ_LOSS_SFT,          /* -logp_pol(y_w): "Preferred-FT" */
    OBJ_LOSS_UNLIKELIHOOD  /* -logp_pol(y_w) - alpha sum_t log(1 - p(y_l,t)) */
} obj_loss_kind;

/* beta's default in dpo train and dpo logp */
#define OBJ_DEFAULT_BETA 0.1

typedef struct {
    obj_loss_kind kind;
    double beta;            /* dpo, ipo, hinge (and the reported rewards); > 0 */
    double label_smoothing; /* dpo only: conservative DPO, in [0, 0.5); must be 0 for the others */
    double alpha;           /* unlikelihood weight; >= 0 */
    double sft_weight;      /* adds sft_weight * mean-token NLL of the chosen response, any loss; >= 0 */
} obj_loss_config;

/* "dpo", "ipo", "hinge", "sft", "unlikelihood" (exactly, lower case) -> *out.
 * Returns 0, or -1 (and leaves *out alone) for any other name or NULL. */
int obj_loss_kind_parse(const char *name, obj_loss_kind *out);

/* The name obj_loss_kind_parse accepts for k; "unknown" for a value outside the enum. */
const char *obj_loss_kind_name(obj_loss_kind k);

/* 0 when c is usable; otherwise -1 with a message naming the field: beta must be
 * finite and > 0; label_smoothing in [0, 0.5) for dpo and exactly 0 for the other
 * losses (which would silently ignore it); alpha and sft_weight finite and >= 0;
 * kind one of the enum values. */
int obj_loss_config_validate(const obj_loss_config *c, dpo_err *e);

/* One preference pair, as the model computed it. Log-probs are natural logs. */
typedef struct {
    double policy_chosen, policy_rejected;  /* summed log-probs over response tokens (+ eos) */
    double ref_chosen, ref_rejected;        /* the same sums under the frozen reference */
    int n_chosen, n_rejected;               /* tokens in each sum (>= 1) */
    const float *tok_rejected;              /* (n_rejected) per-token policy log-probs;
                                               needed by unlikelihood only */
} obj_pair_in;

typedef struct {
    double loss;                            /* this pair's loss */
    double d_chosen, d_rejected;            /* d (sum_i L_i / denom) / d policy_chosen and policy_rejected:
                                               the gradient every token of that sum receives */
    float *d_tok_rejected;                  /* (n_rejected) or NULL, set by the caller: unlikelihood's extra
                                               per-token gradient of the normalised loss (written, not added;
                                               zeros for the other losses) */
    double reward_chosen, reward_rejected;  /* beta (policy - ref), the implicit rewards */
} obj_pair_out;

/* The loss of n pairs, sum_i L_i / denom; fills out[i], whose derivatives are
 * of that same normalised loss (dL_i/d... / denom): pass denom = n for the mean
 * of these pairs, or denom = B for their share of a batch of B pairs (the one
 * place the gradient path is normalised; see the top of objective.c).
 * out[i].loss is pair i's own loss, not divided. Parallel over pairs (OpenMP),
 * each pair writing only its own out[i]; the sum is taken in pair order
 * afterwards: bit-identical for any thread count. There is no error channel: an
 * invalid config, n < 1 or denom <= 0 returns NaN (and fills every out[i], when
 * n >= 1, with NaN); a pair with n_chosen or n_rejected < 1, or an unlikelihood
 * pair without tok_rejected, gets NaN in its loss, gradients and rewards, so the
 * returned loss is NaN too. */
double obj_loss_batch(const obj_loss_config *c, const obj_pair_in *in, obj_pair_out *out, int n, double denom);

/* The implicit reward of a response, beta (log pi(y|x) - log pi_ref(y|x)): what
 * obj_pair_out reports and dpo logp prints. */
double obj_implicit_reward(double beta, double policy_logp, double ref_logp);

/* The weight sigmoid(-beta h) of a pair in the DPO gradient, given its reward
 * margin beta h = rhat(x,y_w) - rhat(x,y_l) (step 6 of objective.c): the
 * probability the implicit reward model gives to the wrong ordering. Computed
 * without overflow for any margin. */
double obj_dpo_weight(double margin);

/* The Bradley-Terry loss of a reward model on one pair, -log sigmoid(margin),
 * margin = r(x, y_w) - r(x, y_l); *dmargin = d loss / d margin = -sigmoid(-margin).
 * Computed without overflow for any margin. */
double obj_bt_loss(double margin, double *dmargin);
#endif
