/* eval.h - what is measured about samples (eval.c): the summary of dpo eval
 * (reward and KL with their standard errors, and what a reward can be gamed
 * with), the exact KL along given completions, and preference pairs from
 * scored samples (dpo pairs). */
#ifndef DPO_EVAL_H
#define DPO_EVAL_H

#include <stddef.h>
#include <stdint.h>
#include "data.h"
#include "model.h"
#include "util.h"

/* Running sums over samples; distinct token bigrams in a hash set. */
typedef struct {
    long n;
    double reward, reward2;      /* sums of r and r^2 */
    double kl, kl2, kl_sampled;  /* sums of KL, KL^2 and the sampled estimate */
    long exclaim;                /* '!' characters in all completions */
    long but;                    /* the word "but" (any case) in all completions */
    long tokens;                 /* completion tokens (end-of-text excluded) */
    long truncated;              /* samples cut by length */
    long bigrams;                /* token bigrams within completions */
    uint64_t *set;               /* (set_cap) distinct bigrams + 1; 0 = empty */
    size_t set_cap, set_n;
} eval_summary;

/* The summary's numbers: means, and standard errors sd / sqrt(n) (NaN for
 * n < 2); distinct2 NaN when there is no bigram. */
typedef struct {
    long n;
    double reward, reward_se, kl, kl_se, kl_sampled;
    double exclaim, but, length, truncated, distinct2;
} eval_result;

void eval_summary_init(eval_summary *s);
void eval_summary_free(eval_summary *s);
/* Add one sample: its reward, KL terms, completion text and token ids, and
 * whether it was cut by length. */
int eval_summary_add(eval_summary *s, double reward, double kl, double kl_sampled, const char *text, size_t len,
                     const int *ids, int n_ids, int truncated, dpo_err *e);
void eval_summary_result(const eval_summary *s, eval_result *out);

/* Exact and sampled KL from ref along given completions: for each SFT row of
 * d (prompt ++ completion ++ end-of-text), at every position that predicts a
 * completion token or the end-of-text, under both models' own distributions
 * (temperature 1):
 *   kl[r]         = sum_t sum_v pi(v | .) (log pi(v | .) - log ref(v | .))
 *   kl_sampled[r] = sum_t log pi(y_t | .) - log ref(y_t | .)
 * Each row goes through a key-value cache in one call; the result does not
 * depend on the thread count. progress may be NULL. */
int eval_kl_along(const model *policy, const model *ref, const data_set *d, double *kl, double *kl_sampled,
                  data_progress_fn progress, void *ctx, dpo_err *e);

/* Preference pairs from k scored samples of one prompt: every pair i < j with
 * different rewards, the higher one chosen. Writes (chosen, rejected) sample
 * indices to pairs (room for k (k - 1) / 2 pairs), in order of i then j;
 * returns the number of pairs. */
int eval_pairs(int *chosen, int *rejected, const double *reward, int k);

#endif
