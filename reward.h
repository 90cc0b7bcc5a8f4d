/* reward.h - rewards of generated text: one interface (text in, a number in
 * [0, 1] out) behind which a scorer sits. Today the one scorer is VADER
 * sentiment ("sentiment"); another (a reward model, "model:DIR") can sit
 * beside it later without its callers changing. See reward.c. */
#ifndef DPO_REWARD_H
#define DPO_REWARD_H

#include <stddef.h>
#include "util.h"
#include "vader.h"

typedef struct reward reward;

/* Open the reward named by spec:
 *   "sentiment"  VADER with the lexicon compiled into dpo (data/vader/)
 * Anything else is an error naming the known rewards. */
int reward_open(reward **out, const char *spec, dpo_err *e);

/* VADER with the lexicon read from a file instead (dpo sentiment --lexicon). */
int reward_open_sentiment_file(reward **out, const char *path, dpo_err *e);

void reward_free(reward *r);

/* The reward's name as opened ("sentiment"). */
const char *reward_name(const reward *r);

/* The reward of text[0..len) (arbitrary bytes), in [0, 1]. For sentiment:
 * (compound + 1) / 2, compound being VADER's rounded compound score. Only
 * reads r: any number of threads may score with one reward at once. */
int reward_score(const reward *r, const char *text, size_t len, double *out, dpo_err *e);

/* VADER's four scores of text[0..len); an error for a reward that is not
 * sentiment. Thread-safe like reward_score. */
int reward_sentiment_details(const reward *r, const char *text, size_t len, vader_scores *out, dpo_err *e);

/* (compound + 1) / 2: VADER's compound in [-1, 1] as a reward in [0, 1]. */
double reward_from_compound(double compound);

#endif
