/* reward.h - rewards of generated text: one interface (a prompt and its
 * completion in, a number out) behind which a scorer sits: VADER sentiment
 * ("sentiment", a reward in [0, 1] read off the completion alone) or a reward
 * model trained by dpo rm-train ("model:DIR", its score of prompt ++
 * completion ++ <|endoftext|>, any real number). See reward.c. */
#ifndef DPO_REWARD_H
#define DPO_REWARD_H

#include <stddef.h>
#include "util.h"
#include "vader.h"

typedef struct reward reward;

/* Open the reward named by spec:
 *   "sentiment"  VADER with the lexicon compiled into dpo (data/vader/)
 *   "model:DIR"  the reward model in DIR (GPT2ForSequenceClassification, with
 *                its tokenizer files), as dpo rm-train writes it
 * Anything else is an error naming the known rewards. */
int reward_open(reward **out, const char *spec, dpo_err *e);
/* VADER with the lexicon read from a file instead (dpo sentiment --lexicon). */
int reward_open_sentiment_file(reward **out, const char *path, dpo_err *e);

void reward_free(reward *r);

/* The reward's name as opened ("sentiment", "model:DIR"). */
const char *reward_name(const reward *r);
/* The reward of a completion (arbitrary bytes) of a prompt. sentiment reads the
 * completion alone: (compound + 1) / 2 in [0, 1], compound being VADER's rounded
 * compound score; any number of threads may score with one sentiment reward at
 * once. model:DIR encodes prompt and completion as dpo rm-train encodes a pair's
 * sequence (separately; an empty prompt is <|endoftext|>; the completion ends
 * with <|endoftext|>; cut to the model's context as training cuts a row) and
 * returns the model's score at the last token. A model reward computes in the
 * model's own buffers: one call at a time. */
int reward_score(reward *r, const char *prompt, size_t prompt_len, const char *text, size_t len, double *out,
                 dpo_err *e);
/* VADER's four scores of text[0..len); an error for a reward that is not
 * sentiment. Thread-safe like reward_score. */
int reward_sentiment_details(const reward *r, const char *text, size_t len, vader_scores *out, dpo_err *e);

/* (compound + 1) / 2: VADER's compound in [-1, 1] as a reward in [0, 1]. */
double reward_from_compound(double compound);

#endif
