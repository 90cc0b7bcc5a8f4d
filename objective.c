/* objective.c - owns the DPO objective family: the loss of a batch of preference
 * pairs under Direct Preference Optimization and its variants (conservative DPO,
 * IPO, hinge, Preferred-FT, unlikelihood, plus an optional supervised term), and
 * the derivatives of that loss with respect to the policy's log-probs, which is
 * all the model's backward pass needs from it.
 * It must never print or exit, never touch a model, a file or any memory other
 * than the in[] it reads and the out[] it fills, never let one OpenMP iteration
 * write what another writes (each writes only its own out[i]), and never evaluate
 * a formula that overflows or cancels for large inputs.
 *
 * ==========================================================================
 * Where the DPO loss comes from (Rafailov et al., 2023)
 * ==========================================================================
 *
 * Notation. x is a prompt, y a response, pi(y|x) the probability that the policy
 * (the model being trained, parameters theta) assigns to y, and pi_ref the same
 * for the frozen reference model (usually the supervised model training starts
 * from). A response is a sequence of tokens, so
 *
 *     log pi(y|x) = sum_t log pi(y_t | x, y_<t),
 *
 * the "summed log-probs" (policy_chosen, ref_rejected, ...) in obj_pair_in. The
 * data are triples (x, y_w, y_l): a person preferred y_w (chosen, "w" for win)
 * to y_l (rejected, "l" for lose).
 *
 * 1. A model of the preferences. Assume an unknown reward r(x, y) scores
 *    responses and people choose y_w over y_l with the Bradley-Terry probability
 *
 *        p(y_w > y_l | x) = e^r(x,y_w) / (e^r(x,y_w) + e^r(x,y_l))
 *                         = sigmoid(r(x,y_w) - r(x,y_l)),    sigmoid(z) = 1 / (1 + e^-z)
 *
 *    (divide top and bottom by e^r(x,y_w)). Only differences of rewards for the
 *    same prompt matter: adding any f(x) to r changes no probability. Classical
 *    RLHF fits r by maximum likelihood, minimising -log sigmoid(r(x,y_w) - r(x,y_l))
 *    over the data, and then trains the policy on the fitted r with reinforcement
 *    learning.
 *
 * 2. What RLHF asks of the policy. Collect a high reward, but stay close to the
 *    reference (the fitted reward is only trustworthy near the data, and the
 *    reference keeps the text fluent). For each prompt:
 *
 *        maximise over pi:   E_{y ~ pi(.|x)}[ r(x,y) ]  -  beta KL( pi(.|x) || pi_ref(.|x) ),
 *
 *    with KL(p || q) = E_p[log p/q] and beta > 0 setting how far the policy may move.
 *
 * 3. The maximiser has a closed form. For a fixed x define
 *
 *        Z(x)      = sum_y pi_ref(y|x) exp(r(x,y) / beta),
 *        pi*(y|x)  = pi_ref(y|x) exp(r(x,y) / beta) / Z(x),
 *
 *    a probability distribution (Z normalises it). Taking the log of the second
 *    line, r = beta log(pi* / pi_ref) + beta log Z. Substitute that into the
 *    objective:
 *
 *        E_pi[r] - beta E_pi[log pi/pi_ref]
 *            = E_pi[ beta log pi* / pi_ref + beta log Z - beta log pi/pi_ref ]
 *            = beta log Z(x) - beta E_pi[ log pi/pi* ]
 *            = beta log Z(x) - beta KL( pi || pi* ).
 *
 *    Z(x) does not depend on pi, and a KL divergence is >= 0 with equality only
 *    when the two distributions agree, so the unique maximiser is pi = pi*.
 *    (Equivalently: the derivative of the Lagrangian with respect to each pi(y|x),
 *    r - beta log(pi/pi_ref) - beta - lambda, vanishes exactly at pi*.)
 *
 * 4. Read backwards, a policy defines a reward. Solve the optimum for r:
 *
 *        r(x,y) = beta log( pi*(y|x) / pi_ref(y|x) ) + beta log Z(x).
 *
 *    Z(x) is a sum over every possible response and cannot be computed, but it
 *    depends on x alone, so it cancels from the only quantity Bradley-Terry uses,
 *    the difference of two rewards for the same prompt:
 *
 *        r(x,y_w) - r(x,y_l) = beta log pi*(y_w|x)/pi_ref(y_w|x) - beta log pi*(y_l|x)/pi_ref(y_l|x).
 *
 *    So any policy pi is the optimal policy of its own "implicit reward"
 *
 *        rhat(x,y) = beta ( log pi(y|x) - log pi_ref(y|x) )          [pair_loss: reward_chosen,
 *                                                                     reward_rejected]
 *    (up to beta log Z(x), which never matters).
 *
 * 5. The DPO loss. Rather than fitting a reward and then solving for its policy,
 *    fit the policy directly: maximum likelihood of the observed preferences under
 *    Bradley-Terry with the implicit reward. Write
 *
 *        h = (logp_pol(y_w) - logp_ref(y_w)) - (logp_pol(y_l) - logp_ref(y_l)),   [pair_loss]
 *
 *    so that beta h = rhat(x,y_w) - rhat(x,y_l) is the reward margin. One pair's loss is
 *
 *        L_dpo = -log sigmoid(beta h)                                             [loss_dpo]
 *
 *    and a batch's loss is the mean over its pairs.                          [obj_loss_batch]
 *
 * 6. Its gradient. Since d/dz log sigmoid(z) = 1 - sigmoid(z) = sigmoid(-z),
 *    dL/dh = -beta sigmoid(-beta h). The policy enters h as +logp_pol(y_w) and
 *    -logp_pol(y_l); the reference is frozen. Hence
 *
 *        grad_theta L_dpo = -beta sigmoid(-beta h) ( grad_theta logp_pol(y_w) - grad_theta logp_pol(y_l) ),
 *
 *        dL/d logp_pol(y_w) = -beta sigmoid(-beta h),
 *        dL/d logp_pol(y_l) = +beta sigmoid(-beta h).                             [loss_dpo]
 *
 *    The direction is the obvious one: make the chosen response more likely and the
 *    rejected one less likely. The weight is what makes the method work:
 *    sigmoid(-beta h) = sigmoid(rhat(x,y_l) - rhat(x,y_w)) is the probability the
 *    implicit reward model gives to the WRONG ordering of the pair. A pair it
 *    already orders correctly by a wide margin gets a weight near 0 and hardly moves
 *    the model; a pair it orders wrongly gets a weight near 1. Without the weight
 *    (push y_w up and y_l down equally hard, always) nothing stops log pi(y_l) from
 *    being driven towards -infinity, and the paper reports that this degenerates the
 *    model. Because h is measured relative to the reference, a pair the reference
 *    already ranked correctly needs less push; beta sets how fast the weight
 *    saturates.
 *
 *    logp_pol(y_w) is a sum over the response's tokens, so each token's log-prob
 *    has derivative 1 in it and every token of the sum receives the same gradient:
 *    d_chosen (or d_rejected) in obj_pair_out.
 *
 * 7. The path of the gradient, from the loss to the logits. A training step's
 *    loss is the mean over its B pairs, L = (1/B) sum_i L_i, computed in
 *    micro-batches of n pairs. That 1/B is applied once, here: pair_loss divides
 *    each pair's derivatives by denom, which train.c's forward_part passes as B
 *    (obj_loss_batch(..., n, B)), so that
 *
 *        d_chosen = (1/B) dL_i/d logp_pol(y_w),  d_rejected = (1/B) dL_i/d logp_pol(y_l)
 *
 *    (and the micro-batches' backward passes add up to the whole batch's gradient).
 *    forward_part then gives every token t of the chosen response the derivative
 *    dL/d log p(y_t | x, y_<t) = d_chosen (the sum's derivative in each of its
 *    terms is 1), the same for the rejected one, and 0 to prompt tokens: the
 *    array dlogp that model_backward starts from. model.c's logsoftmax_backward
 *    turns it into the logits' gradient, dL/dlogit_v = dlogp (1[v = y_t] - p_v),
 *    and the head, the blocks and the embeddings follow from there (model.c).
 *
 * ==========================================================================
 * The variants
 * ==========================================================================
 *
 * Conservative DPO (Mitchell, 2023), eps = label_smoothing [loss_dpo]. If each label
 * may have been flipped with probability eps, the expected negative log-likelihood is
 *
 *     L = -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h),
 *     dL/dh = -beta [ (1 - eps) sigmoid(-beta h) - eps sigmoid(beta h) ].
 *
 * The derivative vanishes where sigmoid(beta h) = 1 - eps, at beta h = log((1-eps)/eps):
 * the loss stops pushing once the margin is large enough instead of forever. eps = 0
 * is plain DPO; eps must stay below 1/2 (at 1/2 the loss is symmetric in h and
 * prefers neither response).
 *
 * IPO (Azar et al., 2023) [loss_ipo]. Regress h onto a finite target instead of
 * pushing a sigmoid towards 1, which for preferences without noise only happens at
 * h = infinity, where the KL term has been forgotten:
 *
 *     L = (h - 1/(2 beta))^2,     dL/dh = 2 (h - 1/(2 beta)).
 *
 * h is made of summed log-probs, as in the DPO authors' reference code. The IPO paper
 * itself averages the log-probs over tokens, which makes the target independent of
 * response length; with sums, a long response reaches the target with a smaller
 * per-token change.
 *
 * Hinge (the calibration loss of SLiC, Zhao et al., 2023) [loss_hinge]:
 *
 *     L = max(0, 1 - beta h),     dL/dh = -beta if beta h < 1, else 0
 *
 * (at the kink beta h = 1 the subgradient 0 is used). A pair whose margin beta h has
 * reached 1 contributes nothing.
 *
 * Preferred-FT, "sft" [loss_sft]: maximum likelihood on the chosen response, the
 * DPO paper's simplest baseline:
 *
 *     L = -logp_pol(y_w),     dL/d logp_pol(y_w) = -1.
 *
 * The rejected response and the reference do not enter (the reported rewards still
 * use them).
 *
 * Unlikelihood (Welleck et al., 2019) [loss_sft + unlikelihood_token]: likelihood
 * on the chosen response plus, on every token of the rejected one, a push away from
 * that token. With lp_t the policy's log-prob of rejected token t and p_t = e^lp_t:
 *
 *     L = -logp_pol(y_w) - alpha sum_t log(1 - p_t),
 *     dL/d lp_t = alpha p_t / (1 - p_t) = alpha / (e^-lp_t - 1) = alpha / expm1(-lp_t).
 *
 * These per-token derivatives (over the number of pairs) are d_tok_rejected, and
 * d_rejected is 0: the loss uses the rejected tokens one by one, not their sum.
 * As p_t -> 1 (lp_t -> 0) the term -log(1 - p_t) grows without bound. A float
 * log-prob near 0 cannot resolve that region anyway: it comes out of
 * logit - logsumexp, whose rounding error is about 1e-7 to 1e-6 for logits of size
 * 1 to 10, so it cannot tell p = 1 - 1e-7 from p = 1. We therefore clamp 1 - p_t
 * below at UL_MIN_ONE_MINUS_P = 1e-6: when lp_t > log(1 - 1e-6) the term is the
 * constant -alpha log(1e-6) (about 13.8 alpha) and its derivative is 0, which is the
 * exact derivative of the clamped loss (what torch.clamp gives too). The price: a
 * token the policy is already that certain of gets no unlikelihood gradient until
 * its probability falls below 1 - 1e-6 for another reason.
 *
 * Supervised term, w = sft_weight, added to any of the losses above [pair_loss]:
 *
 *     L += w ( -logp_pol(y_w) / n_w ),     dL/d logp_pol(y_w) += -w / n_w,
 *
 * the mean-token negative log-likelihood of the chosen response (n_w tokens). It
 * keeps the chosen response's likelihood from sinking while the margin grows (Pang
 * et al., 2024 train with DPO plus a term of this kind).
 *
 * ==========================================================================
 * Numerics
 * ==========================================================================
 *
 * log sigmoid(z) = -log(1 + e^-z) = -log1p(exp(-z))       for z >= 0,    [log_sigmoid]
 *                = z - log(1 + e^z) = z - log1p(exp(z))    for z < 0:
 * exp only ever sees an argument <= 0, so it cannot overflow, and log1p keeps the
 * digits of a tiny e^-z (log sigmoid(40) = -4.2e-18, where log(1 + e^-40) rounds
 * to 0). Likewise sigmoid(z) = 1 / (1 + e^-z) for z >= 0 and e^z / (1 + e^z) for
 * z < 0 [sigmoid]. log(1 - e^lp) is computed as log(-expm1(lp)): 1 - e^lp would
 * lose every digit for lp near 0 [unlikelihood_token]. Everything is in double;
 * the per-token gradients are rounded to float at the very end.
 *
 * Under clang, floating-point contraction (fusing a*b + c into one FMA) is switched
 * off below, as GCC already does in ISO C mode, so that both compilers round every
 * operation of this file the same way.
 */
#include "objective.h"

#include <math.h>
#include <string.h>

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* Unlikelihood: 1 - p is never taken below this (see the top of the file). */
#define UL_MIN_ONE_MINUS_P 1e-6

/* ========================================================================== */
/* names and configuration                                                     */
/* ========================================================================== */

static const char *const kind_names[] = {"dpo", "ipo", "hinge", "sft", "unlikelihood"};
#define NUM_KINDS ((int)(sizeof kind_names / sizeof kind_names[0]))

int obj_loss_kind_parse(const char *name, obj_loss_kind *out) {
    int k;
    if (!name) return -1;
    for (k = 0; k < NUM_KINDS; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (obj_loss_kind)k;
            return 0;
        }
    }
    return -1;
}

const char *obj_loss_kind_name(obj_loss_kind k) {
    int i = (int)k;
    return (i >= 0 && i < NUM_KINDS) ? kind_names[i] : "unknown";
}

/* Every comparison is written so that NaN fails it. */
int obj_loss_config_validate(const obj_loss_config *c, dpo_err *e) {
    int k;
    if (!c) return dpo_errf(e, "loss config: missing");
    k = (int)c->kind;
    if (k < 0 || k >= NUM_KINDS) return dpo_errf(e, "loss config: unknown loss kind %d", k);
    if (!(c->beta > 0.0 && isfinite(c->beta)))
        return dpo_errf(e, "loss config: beta must be a finite number > 0 (got %g)", c->beta);
    if (!(c->label_smoothing >= 0.0 && c->label_smoothing < 0.5))
        return dpo_errf(e, "loss config: label smoothing must be in [0, 0.5) (got %g)",
                        c->label_smoothing);
    if (c->kind != OBJ_LOSS_DPO && c->label_smoothing != 0.0)
        return dpo_errf(e, "loss config: label smoothing applies to the dpo loss only, not to %s",
                        obj_loss_kind_name(c->kind));
    if (!(c->alpha >= 0.0 && isfinite(c->alpha)))
        return dpo_errf(e, "loss config: alpha must be a finite number >= 0 (got %g)", c->alpha);
    if (!(c->sft_weight >= 0.0 && isfinite(c->sft_weight)))
        return dpo_errf(e, "loss config: sft weight must be a finite number >= 0 (got %g)",
                        c->sft_weight);
    return 0;
}

/* ========================================================================== */
/* stable scalar functions                                                     */
/* ========================================================================== */

/* log sigmoid(z) = -log1p(exp(-z)) for z >= 0, z - log1p(exp(z)) for z < 0. */
static double log_sigmoid(double z) {
    return z >= 0.0 ? -log1p(exp(-z)) : z - log1p(exp(z));
}

/* sigmoid(z) = 1 / (1 + exp(-z)) for z >= 0, exp(z) / (1 + exp(z)) for z < 0. */
static double sigmoid(double z) {
    double t;
    if (z >= 0.0) return 1.0 / (1.0 + exp(-z));
    t = exp(z);
    return t / (1.0 + t);
}

/* ========================================================================== */
/* the losses of one pair, as functions of h (or of the log-probs)             */
/* ========================================================================== */
/* Each returns the loss and stores its derivative with respect to h in *dh. */

/* L = -(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h), eps the label smoothing
 * dL/dh = -beta [ (1 - eps) sigmoid(-beta h) - eps sigmoid(beta h) ]
 * (eps = 0: L = -log sigmoid(beta h), dL/dh = -beta sigmoid(-beta h)) */
static double loss_dpo(double h, double beta, double eps, double *dh) {
    double z = beta * h;
    double loss = -(1.0 - eps) * log_sigmoid(z);
    double g = (1.0 - eps) * sigmoid(-z);
    if (eps != 0.0) {
        loss -= eps * log_sigmoid(-z);
        g -= eps * sigmoid(z);
    }
    *dh = -beta * g;
    return loss;
}

/* L = (h - 1/(2 beta))^2,  dL/dh = 2 (h - 1/(2 beta)) */
static double loss_ipo(double h, double beta, double *dh) {
    double d = h - 1.0 / (2.0 * beta);
    *dh = 2.0 * d;
    return d * d;
}

/* L = max(0, 1 - beta h),  dL/dh = -beta if beta h < 1, else 0 */
static double loss_hinge(double h, double beta, double *dh) {
    double m = 1.0 - beta * h;
    if (m <= 0.0) {
        *dh = 0.0;
        return 0.0;
    }
    *dh = -beta; /* also when m is NaN, which is returned as the loss */
    return m;
}

/* L = -logp_pol(y_w),  dL/d logp_pol(y_w) = -1 (stored in *dc) */
static double loss_sft(double policy_chosen, double *dc) {
    *dc = -1.0;
    return -policy_chosen;
}

/* One rejected token of the unlikelihood loss, lp = log p:
 *   L_t = -alpha log(max(1 - p, UL_MIN_ONE_MINUS_P))
 *       = -alpha log(-expm1(lp))        for lp <= log(1 - UL_MIN_ONE_MINUS_P),
 *         -alpha log(UL_MIN_ONE_MINUS_P) above it;
 *   dL_t/dlp = alpha / expm1(-lp) below the clamp, 0 above it.
 * lp = -inf (p = 0) gives 0 and 0; a NaN lp gives NaN (it is not clamped away). */
static double unlikelihood_token(double lp, double alpha, double lp_max, double *dlp) {
    if (lp > lp_max) {
        *dlp = 0.0;
        return -alpha * log(UL_MIN_ONE_MINUS_P);
    }
    *dlp = alpha / expm1(-lp);
    return -alpha * log(-expm1(lp));
}

/* ========================================================================== */
/* one pair, and the batch                                                     */
/* ========================================================================== */

static void pair_nan(obj_pair_out *o, int n_rejected) {
    int t;
    o->loss = o->d_chosen = o->d_rejected = NAN;
    o->reward_chosen = o->reward_rejected = NAN;
    if (o->d_tok_rejected)
        for (t = 0; t < n_rejected; t++) o->d_tok_rejected[t] = NAN;
}

/* One pair: h = (pc - rc) - (pr - rr); the loss of c->kind; the supervised term;
 * the rewards beta (pc - rc), beta (pr - rr); derivatives of the pair's loss
 * divided by denom, the one normalisation of the whole gradient path (see the
 * top of the file). dh/dpc = 1, dh/dpr = -1. */
static void pair_loss(const obj_loss_config *c, const obj_pair_in *p, obj_pair_out *o, double denom) {
    double ratio_chosen = p->policy_chosen - p->ref_chosen;       /* log pi(y_w)/pi_ref(y_w) */
    double ratio_rejected = p->policy_rejected - p->ref_rejected; /* log pi(y_l)/pi_ref(y_l) */
    double h = ratio_chosen - ratio_rejected;
    double loss = 0.0, dh = 0.0, dc = 0.0, dr = 0.0;
    int t;

    if (p->n_chosen < 1 || p->n_rejected < 1 ||
        (c->kind == OBJ_LOSS_UNLIKELIHOOD && !p->tok_rejected)) {
        pair_nan(o, p->n_rejected);
        return;
    }

    switch (c->kind) {
    case OBJ_LOSS_DPO:
        loss = loss_dpo(h, c->beta, c->label_smoothing, &dh);
        dc = dh;
        dr = -dh;
        break;
    case OBJ_LOSS_IPO:
        loss = loss_ipo(h, c->beta, &dh);
        dc = dh;
        dr = -dh;
        break;
    case OBJ_LOSS_HINGE:
        loss = loss_hinge(h, c->beta, &dh);
        dc = dh;
        dr = -dh;
        break;
    case OBJ_LOSS_SFT:
        loss = loss_sft(p->policy_chosen, &dc);
        break;
    case OBJ_LOSS_UNLIKELIHOOD: {
        /* L = -logp_pol(y_w) + sum_t L_t; the per-token terms summed in token order */
        double lp_max = log1p(-UL_MIN_ONE_MINUS_P);
        double ul = 0.0;
        loss = loss_sft(p->policy_chosen, &dc);
        for (t = 0; t < p->n_rejected; t++) {
            double dlp;
            ul += unlikelihood_token((double)p->tok_rejected[t], c->alpha, lp_max, &dlp);
            if (o->d_tok_rejected) o->d_tok_rejected[t] = (float)(dlp / denom);
        }
        loss += ul;
        break;
    }
    }
    if (c->kind != OBJ_LOSS_UNLIKELIHOOD && o->d_tok_rejected)
        for (t = 0; t < p->n_rejected; t++) o->d_tok_rejected[t] = 0.0f;

    /* supervised term: L += w (-logp_pol(y_w) / n_w), dL/dpc += -w / n_w */
    if (c->sft_weight != 0.0) {
        double nw = (double)p->n_chosen;
        double nll = -p->policy_chosen / nw;
        double term = c->sft_weight * nll;
        loss += term;
        dc += -c->sft_weight / nw;
    }

    o->loss = loss;
    o->d_chosen = dc / denom;
    o->d_rejected = dr / denom;
    o->reward_chosen = obj_implicit_reward(c->beta, p->policy_chosen, p->ref_chosen);
    o->reward_rejected = obj_implicit_reward(c->beta, p->policy_rejected, p->ref_rejected);
}

/* sum_i L_i / denom. The pairs are independent, so each OpenMP iteration
 * computes one pair and writes only out[i]; the sum then runs over i = 0..n-1 in
 * order on one thread, so the result does not depend on the thread count. */
double obj_loss_batch(const obj_loss_config *c, const obj_pair_in *in, obj_pair_out *out, int n, double denom) {
    double sum = 0.0;
    int i;
    if (n < 1 || !(denom > 0.0) || obj_loss_config_validate(c, NULL) != 0) {
        for (i = 0; i < n; i++) pair_nan(&out[i], in[i].n_rejected);
        return NAN;
    }
    DPO_OMP_FOR_IF((double)n * 256)
    for (i = 0; i < n; i++) pair_loss(c, &in[i], &out[i], denom);
    for (i = 0; i < n; i++) sum += out[i].loss;
    return sum / denom;
}

/* rhat = beta (log pi(y|x) - log pi_ref(y|x)), step 4 of the derivation */
double obj_implicit_reward(double beta, double policy_logp, double ref_logp) {
    return beta * (policy_logp - ref_logp);
}

/* sigmoid(-beta h), from the reward margin beta h = rhat(x,y_w) - rhat(x,y_l): the
 * weight of the pair in the DPO gradient (step 6 at the top of this file). */
double obj_dpo_weight(double margin) {
    return sigmoid(-margin);
}

/* The reward model's loss (dpo rm-train): step 1's Bradley-Terry model fitted
 * by maximum likelihood to a learned reward r_phi, as RLHF does before PPO.
 * With the margin m = r_phi(x, y_w) - r_phi(x, y_l) of a pair,
 *   L = -log sigmoid(m),   dL/dm = -sigmoid(-m)
 * so dL/dr_phi(x, y_w) = -sigmoid(-m) and dL/dr_phi(x, y_l) = +sigmoid(-m): DPO's
 * loss with beta = 1 and the implicit reward replaced by the learned one. */
double obj_bt_loss(double margin, double *dmargin) {
    return loss_dpo(margin, 1.0, 0.0, dmargin);
}
