/* sample.h - generation from a model with a key-value cache (sample.c): the
 * distribution a sampler draws from (temperature, top-k, top-p), the draw, each
 * sample's own random stream, and batched generation, optionally scored
 * against a reference model (exact KL at every generated position). */
#ifndef DPO_SAMPLE_H
#define DPO_SAMPLE_H

#include <stdint.h>
#include "model.h"
#include "util.h"

#define SAMPLE_DEFAULT_MAX_NEW 64
#define SAMPLE_DEFAULT_BATCH 16

/* How one row of logits becomes the distribution that is sampled from, in this
 * order: temperature (0: greedy), then top-k, then top-p (nucleus). */
typedef struct {
    double temperature; /* divide the logits by it; 0: all mass on the argmax */
    int top_k;          /* keep the k most likely tokens; 0: all */
    double top_p;       /* keep the fewest most likely tokens whose mass reaches top_p; 1: all */
} sample_filter;

/* Check a filter: temperature 0 or in [1e-6, 1e6], top_k >= 0, top_p in (0, 1]. */
int sample_filter_validate(const sample_filter *f, dpo_err *e);

/* The distribution actually sampled from, as log-probabilities in double:
 * logq (V) gets log q_v, -INFINITY for every token the filter removed. Ties in
 * a ranking go to the lower id. work: (V) ints of scratch. Returns the number
 * of tokens kept (>= 1), or 0 when a logit is not finite. */
int sample_distribution(double *logq, const float *logits, int V, const sample_filter *f, int *work);

/* Inverse-CDF draw: the first token v, in id order, with q_0 + ... + q_v > u,
 * for u uniform in [0, 1) (the last kept token if rounding leaves the sum
 * below u). */
int sample_draw(const double *logq, int V, double u);

/* Exact KL divergence of one position, in nats:
 *   KL(q || r) = sum_{v: q_v > 0} q_v (log q_v - log r_v)
 * with logq from sample_distribution and logr the reference's log-softmax. */
double sample_kl(const double *logq, const double *logr, int V);

/* The random stream of sample `index` of prompt `prompt`: a function of
 * (seed, prompt, index) only, so a sample's text does not depend on the batch
 * size, the thread count or the other prompts. */
void sample_stream(util_rng *r, uint64_t seed, long prompt, long index);

typedef struct {
    sample_filter filter;
    uint64_t seed;
    int n;              /* samples per prompt */
    int max_new;        /* new tokens at most (the end-of-text counts as one) */
    int batch;          /* sequences generated together */
    int eos;            /* the end-of-text id: generation stops after it */
} sample_config;

enum { SAMPLE_EOS = 0, SAMPLE_LENGTH = 1 };

/* One finished sample. Its generated positions are the ones that produced one
 * of its tokens: the completion's, and the end-of-text's when it ended so. */
typedef struct {
    long prompt, index;   /* which prompt, which of its samples */
    const int *ids;       /* (n_ids) the completion's token ids, end-of-text excluded */
    int n_ids;
    int finish;           /* SAMPLE_EOS, or SAMPLE_LENGTH: cut at max_new or at the context */
    int n_positions;      /* generated positions: n_ids, + 1 when it ended with end-of-text */
    double logq;          /* sum over them of log q(y_t), q the sampled distribution */
    double kl;            /* with a reference: sum over them of KL(q || ref), exact; else 0 */
    double kl_sampled;    /* with a reference: sum of log q(y_t) - log ref(y_t); else 0 */
} sample_result;

/* Called once per sample, in order of (prompt, index); nonzero stops the run. */
typedef int (*sample_emit_fn)(void *ctx, const sample_result *r, dpo_err *e);
/* Called after every step with the samples finished, in all, and the tokens generated so far. */
typedef void (*sample_progress_fn)(void *ctx, long done, long total, long tokens);

/* Generate c->n samples for each of n_prompts prompts (prompt p: ids prompts[p],
 * prompt_len[p] >= 1 tokens, fewer than the model's context), c->batch
 * sequences at a time with a key-value cache; a finished sequence's slot takes
 * the next sample at once. With ref non-NULL (same vocabulary), the reference
 * follows every sequence token by token and each result carries its exact and
 * sampled KL from it. Deterministic for a seed: any batch size and thread
 * count give the same samples. */
int sample_run(const model *policy, const model *ref, const int *const *prompts, const int *prompt_len,
               long n_prompts, const sample_config *c, sample_emit_fn emit, sample_progress_fn progress, void *ctx,
               dpo_err *e);

#endif
