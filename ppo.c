/* ppo.c - owns the arithmetic of PPO (Schulman et al., 2017) as RLHF applies
 * it to a language model (Ziegler et al., 2019; Stiennon et al., 2020; TRL):
 * the per-token rewards, generalised advantage estimation, whitening, the
 * clipped policy and value losses with their gradients, and the adaptive KL
 * coefficient. It must never touch a model, a file or the network, never
 * print, and never compute anything whose result depends on the thread count
 * (everything here is sequential, in a fixed order). ppo_train.c runs the
 * loop: rollouts, forward and backward passes, optimizer steps, checkpoints.
 *
 * ==========================================================================
 * What PPO optimises, and what DPO removes (read beside objective.c)
 * ==========================================================================
 *
 * 1. The objective. RLHF and DPO start from the same KL-regularised problem: a
 *    reward r(x, y) of a response y to a prompt x, and a policy pi that should
 *    earn reward without drifting from the reference pi_ref:
 *
 *        max_pi  E_x E_{y ~ pi(.|x)} [ r(x, y) ]  -  beta KL( pi(.|x) || pi_ref(.|x) ).
 *
 *    DPO (objective.c, steps 2-5) solves this in closed form, pi* proportional
 *    to pi_ref exp(r / beta), and turns the preference likelihood of that
 *    solution into a classification loss: no sampling, no reward model, no
 *    value model. PPO instead optimises it directly, by sampling from pi.
 *
 * 2. As a sequential decision problem. A response is generated one token at a
 *    time: the state s_t = (x, y_<t), the action a_t = y_t, the policy
 *    pi(a_t | s_t). The sequence KL is a sum over tokens,
 *        KL(pi || pi_ref) = E_y sum_t [ log pi(y_t | s_t) - log pi_ref(y_t | s_t) ],
 *    so the objective is the expected return of an episode whose per-token
 *    reward is a KL penalty, with the reward model's score added at the end:
 *
 *        r_t = -beta (log pi(y_t | s_t) - log pi_ref(y_t | s_t))  +  [t = T] r(x, y)
 *
 *    [ppo_token_rewards]. beta is the KL coefficient C of dpo ppo. The
 *    log-probs in r_t are those of the policy that sampled the batch, held
 *    fixed during its update (as Ziegler et al. and TRL do).
 *
 * 3. The policy gradient. For a return G = sum_t r_t,
 *        grad_theta E[G] = E[ sum_t grad_theta log pi_theta(a_t | s_t) A_t ],
 *    where A_t may be any estimate of how much better a_t was than the policy's
 *    average at s_t: the return from t on minus a baseline V(s_t) gives the same
 *    expected gradient with less variance. V is a value model, trained alongside
 *    by regression on the returns.
 *
 * 4. Generalised advantage estimation (Schulman et al., 2016) [ppo_gae]. With
 *    the one-step error delta_t = r_t + gamma V(s_{t+1}) - V(s_t) (V = 0 after
 *    the last token),
 *        A_t = sum_{l >= 0} (gamma lam)^l delta_{t+l}
 *            = delta_t + gamma lam A_{t+1}.
 *    lam = 1 gives the return minus V(s_t): unbiased, but every later token's
 *    randomness in it; lam = 0 gives delta_t: little variance, but biased by
 *    V's errors. lam = 0.95 sits between. gamma = 1: the episode is short and
 *    the score at its end is what counts. The value model's target is
 *    A_t + V(s_t), the lam-return. Advantages are then whitened over the batch
 *    [ppo_whiten]: the same direction, on a scale that does not depend on the
 *    reward's units.
 *
 * 5. Why the ratio is clipped [ppo_policy_loss]. One batch of samples is
 *    reused for several epochs of mini-batch steps, so after the first step
 *    the samples are no longer the current policy's. The surrogate
 *        L(theta) = E[ rho_t A_t ],   rho_t = pi_theta(a_t | s_t) / pi_old(a_t | s_t),
 *    has the policy gradient as its gradient at theta = old, but it is only
 *    trustworthy near old: maximised freely it can push a token's probability
 *    far on a handful of samples, and the policy collapses. PPO maximises
 *        min( rho_t A_t,  clip(rho_t, 1 - eps, 1 + eps) A_t ):
 *    once rho_t has moved past 1 + eps for a good action (A_t > 0), or past
 *    1 - eps for a bad one (A_t < 0), the min picks the clipped, constant term
 *    and that token's gradient is 0: no further gain is credited for moving it
 *    further. Where the move made things worse the unclipped term stays, so the
 *    bound is pessimistic. As a loss to minimise, per token:
 *        L_t = max( -A_t rho_t, -A_t clip(rho_t, 1 - eps, 1 + eps) ),
 *        dL_t / d log pi_theta(a_t) = -A_t rho_t  (unclipped term active),  0  (clipped).
 *    The value model's loss is clipped the same way around its old values
 *    [ppo_value_loss].
 *
 * 6. What DPO removes. Steps 2-5 need samples from the policy during
 *    training, a reward model, a value model with its own loss and optimizer,
 *    a reference forward pass per sample, and settings (eps, lam, the
 *    coefficient's controller) that DPO has none of. DPO's loss is step 1
 *    solved once, on fixed data. */
#include "ppo.h"

#include <math.h>

double ppo_token_rewards(double *rewards, const float *logp, const float *ref_logp, int n, double score,
                         double kl_coef) {
    double kl = 0.0;
    int t;
    for (t = 0; t < n; t++) {
        double k = (double)logp[t] - (double)ref_logp[t];
        rewards[t] = -kl_coef * k;
        kl += k;
    }
    if (n > 0) rewards[n - 1] += score;
    return kl;
}

void ppo_gae(double *adv, double *returns, const double *rewards, const float *values, int n, double gamma,
             double lam) {
    double next_v = 0.0, next_a = 0.0;
    int t;
    for (t = n - 1; t >= 0; t--) {
        double delta = rewards[t] + gamma * next_v - (double)values[t];
        adv[t] = delta + gamma * lam * next_a;
        returns[t] = adv[t] + (double)values[t];
        next_v = (double)values[t];
        next_a = adv[t];
    }
}

void ppo_whiten(double *x, size_t n) {
    double mean = 0.0, var = 0.0, inv;
    size_t i;
    if (n == 0) return;
    for (i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var = n > 1 ? var / (double)(n - 1) : 0.0;
    inv = 1.0 / sqrt(var + 1e-8);
    for (i = 0; i < n; i++) x[i] = (x[i] - mean) * inv;
}

double ppo_policy_loss(float *dlogp, const float *logp, const float *old, const double *adv, int n, double eps,
                       double scale, long *clipped, double *sq_logratio) {
    double loss = 0.0;
    int t;
    for (t = 0; t < n; t++) {
        double lr = (double)logp[t] - (double)old[t], rho = exp(lr), a = adv[t];
        double rc = rho < 1.0 - eps ? 1.0 - eps : rho > 1.0 + eps ? 1.0 + eps : rho;
        double l1 = -a * rho, l2 = -a * rc;
        if (l2 > l1) { /* the clipped term is the max: constant in theta */
            loss += l2;
            dlogp[t] = 0.0f;
            if (clipped) (*clipped)++;
        } else {
            loss += l1;
            dlogp[t] = (float)(scale * -a * rho);
        }
        if (sq_logratio) *sq_logratio += lr * lr;
    }
    return loss * scale;
}

double ppo_value_loss(float *dv, const float *v, const float *old, const double *returns, int n, double eps,
                      double scale, long *clipped) {
    double loss = 0.0;
    int t;
    for (t = 0; t < n; t++) {
        double d = (double)v[t] - (double)old[t];
        double vc = (double)old[t] + (d < -eps ? -eps : d > eps ? eps : d);
        double e1 = (double)v[t] - returns[t], e2 = vc - returns[t];
        if (e2 * e2 > e1 * e1) {
            loss += 0.5 * e2 * e2;
            dv[t] = 0.0f;
            if (clipped) (*clipped)++;
        } else {
            loss += 0.5 * e1 * e1;
            dv[t] = (float)(scale * e1);
        }
    }
    return loss * scale;
}

double ppo_kl_update(double coef, double kl, double target, double n_steps, double horizon) {
    double err = kl / target - 1.0;
    if (err < -0.2) err = -0.2;
    if (err > 0.2) err = 0.2;
    return coef * (1.0 + err * n_steps / horizon);
}
