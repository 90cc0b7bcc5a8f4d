/* vader.h - VADER sentiment scores (Hutto & Gilbert, ICWSM 2014) with the rules
 * of upstream vaderSentiment 3.3.1, reimplemented in C. See vader.c.
 *
 * Not shipped: upstream's emoji lexicon. Upstream replaces each emoji by its
 * English description ("beaming face with smiling eyes") before scoring; here
 * an emoji is an ordinary character that no lexicon word matches. */
#ifndef DPO_VADER_H
#define DPO_VADER_H

#include <stddef.h>
#include "util.h"

/* A parsed lexicon: token -> mean valence. Read-only after vader_load, so one
 * lexicon may serve any number of threads calling vader_score at once. */
typedef struct vader_lexicon vader_lexicon;

/* The four numbers upstream's polarity_scores returns, rounded as it rounds
 * them (neg, neu, pos to 3 decimals, compound to 4). neg + neu + pos is 1 up
 * to that rounding, or all four are 0 for a text without words. */
typedef struct {
    double neg;      /* [0, 1] share of negative intensity */
    double neu;      /* [0, 1] share of neutral words */
    double pos;      /* [0, 1] share of positive intensity */
    double compound; /* [-1, 1] normalised sum of the valences */
} vader_scores;

/* Limits of a lexicon file. A line holds "token TAB valence", optionally
 * followed by TAB and further columns that are not read (upstream's files
 * carry the standard deviation and the raw ratings there). */
#define VADER_MAX_LINE 4096            /* bytes in one line, without its newline */
#define VADER_MAX_LEXICON_BYTES ((size_t)16 << 20)
#define VADER_MAX_VALENCE 1000.0       /* |valence|; VADER's own scale is -4..4 */

/* Parse a lexicon from text[0..len) (name: the file, for messages). Rules:
 * lines end in LF (a CR before it is allowed); the token is the bytes before
 * the first TAB: non-empty, valid UTF-8, no control bytes, no space at either
 * end; the valence is a decimal number [+-]DIGITS[.DIGITS] of at most 15
 * digits, |valence| <= VADER_MAX_VALENCE. A token listed twice keeps its last
 * value, as upstream's dictionary does. Any other line, an empty line, or a
 * file without entries is an error "NAME: line N: what". */
int vader_load(vader_lexicon **out, const char *text, size_t len, const char *name, dpo_err *e);
void vader_free(vader_lexicon *lx);

/* Number of distinct tokens; the valence of one token (exact bytes, as listed:
 * upstream looks up the lower-cased word, so entries with capitals such as
 * ":D" are never matched by vader_score). 1 and *valence set, or 0 if absent. */
size_t vader_size(const vader_lexicon *lx);
int vader_lookup(const vader_lexicon *lx, const char *token, size_t len, double *valence);

/* Score text[0..len), arbitrary bytes (NUL included). Text is read as UTF-8;
 * each byte that does not begin a valid UTF-8 sequence counts as one
 * character that is neither a letter nor white space nor punctuation (as
 * Python's "surrogateescape" decoding would present it to upstream), so
 * invalid input is scored, never rejected. Only allocation can fail: -1 with
 * "out of memory" in e. */
int vader_score(const vader_lexicon *lx, const char *text, size_t len, vader_scores *out, dpo_err *e);

/* The shipped lexicon (data/vader/vader_lexicon.txt), compiled into the binary
 * by tools/embed.c at build time: len bytes, followed by one NUL. */
extern const unsigned char vader_embedded_lexicon[];
extern const size_t vader_embedded_lexicon_len;

#endif
