/* ppo.h - the arithmetic of PPO for language models (ppo.c): the per-token
 * rewards of the KL-regularised objective, generalised advantage estimation,
 * whitening, the clipped surrogate and value losses with their gradients, and
 * the adaptive KL coefficient. The derivation is at the top of ppo.c; the
 * training loop that uses these is ppo_train.c. */
#ifndef DPO_PPO_H
#define DPO_PPO_H

#include <stddef.h>

/* The defaults of dpo ppo (the values of TRL's PPO trainer and of the paper's
 * RLHF baseline where they name one). */
#define PPO_DEFAULT_GAMMA 1.0
#define PPO_DEFAULT_LAM 0.95
#define PPO_DEFAULT_CLIP 0.2
#define PPO_DEFAULT_CLIP_VALUE 0.2
#define PPO_DEFAULT_KL_HORIZON 10000.0

/* One sequence's per-token rewards (n generated tokens):
 *   r_t = -kl_coef (logp_t - ref_logp_t)     for every t,
 *   r_{n-1} += score                          (the reward model's, at the end)
 * logp and ref_logp are the rollout policy's and the reference's log-probs of
 * the generated tokens. Returns the sequence's sum of logp_t - ref_logp_t (its
 * sampled KL). */
double ppo_token_rewards(double *rewards /* (n) */, const float *logp /* (n) */, const float *ref_logp /* (n) */,
                         int n, double score, double kl_coef);

/* Generalised advantage estimation over one sequence of n tokens, from its
 * rewards and the value model's values V_t (of the state before token t),
 * with V_n = 0 after the last token:
 *   delta_t = r_t + gamma V_{t+1} - V_t,   A_t = delta_t + gamma lam A_{t+1},
 *   returns_t = A_t + V_t                  (the value model's regression target) */
void ppo_gae(double *adv /* (n) */, double *returns /* (n) */, const double *rewards /* (n) */,
             const float *values /* (n) */, int n, double gamma, double lam);

/* Whiten x (n) in place: (x - mean) / sqrt(var + 1e-8), var the unbiased
 * variance (0 for n = 1). Sums in double, in order. */
void ppo_whiten(double *x, size_t n);

/* The clipped surrogate of n tokens, as a loss to minimise, and its gradient:
 *   rho_t = exp(logp_t - old_t),
 *   L_t = max(-A_t rho_t, -A_t clip(rho_t, 1 - eps, 1 + eps)),
 *   returns sum_t L_t * scale;  dlogp[t] = scale * dL_t / dlogp_t, which is
 *   -A_t rho_t where the unclipped term is the max (also when both are equal),
 *   and 0 where the clipped one is larger (rho outside the interval on the side
 *   that would have gained).
 * scale is 1 / (tokens of the mini-batch), so that summing over micro-batches
 * gives the mini-batch's token mean. *clipped counts the tokens where the
 * clipped term was larger; *sq_logratio adds sum_t (logp_t - old_t)^2 (for
 * TRL's approxkl, half its mean). Either may be NULL. */
double ppo_policy_loss(float *dlogp /* (n) */, const float *logp /* (n) */, const float *old /* (n) */,
                       const double *adv /* (n) */, int n, double eps, double scale, long *clipped,
                       double *sq_logratio);

/* The clipped value loss of n tokens, and its gradient:
 *   v'_t = old_t + clip(v_t - old_t, -eps, eps),
 *   L_t = 0.5 max((v_t - R_t)^2, (v'_t - R_t)^2),
 *   returns sum_t L_t * scale;  dv[t] = scale (v_t - R_t) where the unclipped
 *   term is the max (also when equal), 0 where the clipped one is larger.
 * *clipped (may be NULL) counts the tokens where the clipped term was larger. */
double ppo_value_loss(float *dv /* (n) */, const float *v /* (n) */, const float *old /* (n) */,
                      const double *returns /* (n) */, int n, double eps, double scale, long *clipped);

/* The adaptive KL coefficient of Ziegler et al. (2019), as TRL's
 * AdaptiveKLController: with e = clip(kl / target - 1, -0.2, 0.2),
 *   coef <- coef (1 + e n_steps / horizon),
 * n_steps the sequences of the batch just used. */
double ppo_kl_update(double coef, double kl, double target, double n_steps, double horizon);

#endif
