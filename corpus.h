/* corpus.h - a deterministic generator of synthetic movie reviews (an IMDb
 * stand-in that can be made offline), whose sentiment VADER can read: each
 * review has a hidden rating 1-10 that sets how often its opinion sentences
 * are positive. See corpus.c for the grammar and its rules. */
#ifndef DPO_CORPUS_H
#define DPO_CORPUS_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"
#include "vader.h"

#define CORPUS_MIN_RATING 1
#define CORPUS_MAX_RATING 10
#define CORPUS_MAX_REVIEW_WORDS 10000 /* --max-words at most */

/* ---- the word tables and their check ---------------------------------- */

/* An opinion word and the sign of its VADER valence (+1 or -1). */
typedef struct {
    const char *word;
    int sign;
} corpus_opinion_word;

/* What a non-opinion word is declared to do to VADER's score. */
typedef enum {
    CORPUS_NEUTRAL = 0, /* nothing: no valence, no effect on the words around it */
    CORPUS_NEGATION,    /* flips the next lexicon word ("not", "wasn't") */
    CORPUS_BOOSTER,     /* raises the next lexicon word's magnitude ("very") */
    CORPUS_CONTRAST     /* "but": the words after it outweigh those before */
} corpus_role;

typedef struct {
    const char *word;
    corpus_role role;
} corpus_modifier;

/* Check word tables against a VADER lexicon:
 *  - every opinion word is in the lexicon with |valence| >= 1 and the sign the
 *    table says, and the largest |valence| is below 3 times the smallest (so
 *    that "X, but Y" always reads as Y: VADER weighs X by 0.5, Y by 1.5);
 *  - every modifier does what its role says (negation: "W good" scores
 *    negative; booster: "W good" above "good" and "W bad" below "bad";
 *    contrast: "bad W good" positive and "good W bad" negative);
 *  - every other word of phrases[0..n_phrases) is neutral: not in the lexicon
 *    (looked up lower-cased, as VADER does) and VADER's compound of "W good"
 *    and of "good W" equals that of "good" (so it is no negation, booster,
 *    dampener, "but", "no" or "least" either).
 * Phrases are templates or table entries: words split at spaces, slots such
 * as "{X}" skipped, ASCII punctuation stripped from both ends. Returns 0, or
 * -1 with an error naming the word (and the phrase it came from). */
int corpus_check_words(const vader_lexicon *lx, const corpus_opinion_word *opinion, size_t n_opinion,
                       const corpus_modifier *modifiers, size_t n_modifiers, const char *const *phrases,
                       size_t n_phrases, dpo_err *e);

/* The same check over the generator's own tables and templates (neutral
 * templates and tables may hold neutral words only; opinion templates may
 * also hold the declared modifiers). dpo corpus runs it before generating. */
int corpus_check(const vader_lexicon *lx, dpo_err *e);

/* Sizes of the built-in tables (for reports and tests). */
size_t corpus_n_opinion_words(int sign);
/* The longest sentence the grammar can make, in words. */
int corpus_max_sentence_words(void);

/* ---- generation ------------------------------------------------------- */

typedef struct {
    uint64_t seed;
    int min_words, max_words; /* words per review (whitespace-separated tokens) */
} corpus_params;

/* Check params: 1 <= min_words, max_words <= CORPUS_MAX_REVIEW_WORDS, and
 * max_words - min_words >= corpus_max_sentence_words() - 1 (so whole
 * sentences always fit). 0, or -1 with the reason. */
int corpus_params_check(const corpus_params *p, dpo_err *e);

/* A growing text buffer (p[0..len), NUL-terminated when len > 0). */
typedef struct {
    char *p;
    size_t len, cap;
} corpus_buf;

void corpus_buf_free(corpus_buf *b);

/* One sentence of a review, as generated: where it is in the output buffer,
 * its words, and its intended VADER sign (+1, -1; 0 for a neutral plot
 * sentence). */
typedef struct {
    size_t start, len;
    int words;
    int polarity;
} corpus_sentence;

/* What a review is made of. The caller supplies sentences[0..cap) (or NULL,
 * 0); n_sentences counts all of them, stored or not. */
typedef struct {
    int rating;              /* 1..10 */
    int words;               /* whitespace-separated tokens */
    int n_sentences;
    int n_neutral;           /* of them, neutral plot sentences */
    corpus_sentence *sentences;
    int cap;
} corpus_review_info;

/* Append review number index (0, 1, ...) of the corpus of params p to out
 * (no newline). The review depends on (seed, index, min_words, max_words)
 * only, the same bytes on every machine. info may be NULL. Only allocation
 * can fail. */
int corpus_review(const corpus_params *p, uint64_t index, corpus_buf *out, corpus_review_info *info, dpo_err *e);

/* Distinct words of text[0..len): whitespace-separated tokens with ASCII
 * punctuation stripped from both ends, lower-cased (VADER's view of a word). */
int corpus_distinct_words(const char *text, size_t len, size_t *out, dpo_err *e);

/* ---- the corpus files --------------------------------------------------- */

typedef struct {
    size_t words;          /* in all reviews */
    size_t distinct_words; /* over both files */
    size_t neutral_sentences, opinion_sentences;
} corpus_stats;

/* Write DIR/heldout.txt (reviews 0..n_heldout-1), DIR/train.txt (reviews
 * n_heldout..n_reviews-1), one per line, and DIR/ratings.tsv (a header, then
 * "line TAB split TAB rating" for every review: the line within its file,
 * from 1), each file atomically; DIR is created if missing (the command
 * checks it first). So the held-out reviews do not change with n_reviews. */
int corpus_write(const char *dir, const corpus_params *p, long n_reviews, long n_heldout, corpus_stats *st,
                 dpo_err *e);

#endif
