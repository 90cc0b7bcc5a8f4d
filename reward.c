/* reward.c - owns the choice of reward scorer and its lifetime: it opens the
 * scorer a spec names ("sentiment": VADER with the embedded lexicon, or a
 * lexicon file) and maps the scorer's output to a reward in [0, 1].
 *
 * It must never print, keep mutable global state, or change a reward after it
 * is opened: scoring only reads it, so threads may share one. The rules of
 * sentiment live in vader.c; the lexicon bytes are compiled in by
 * tools/embed.c (see the Makefile). */
#include "reward.h"

#include <stdlib.h>
#include <string.h>

typedef enum { REWARD_SENTIMENT } reward_kind;

struct reward {
    reward_kind kind;
    vader_lexicon *lexicon; /* REWARD_SENTIMENT */
};

static int open_sentiment(reward **out, const char *text, size_t len, const char *name, dpo_err *e) {
    reward *r = calloc(1, sizeof *r);
    if (!r) return dpo_errf(e, "out of memory");
    r->kind = REWARD_SENTIMENT;
    if (vader_load(&r->lexicon, text, len, name, e) != 0) {
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int reward_open(reward **out, const char *spec, dpo_err *e) {
    *out = NULL;
    if (strcmp(spec, "sentiment") == 0)
        return open_sentiment(out, (const char *)vader_embedded_lexicon, vader_embedded_lexicon_len,
                              "embedded data/vader/vader_lexicon.txt", e);
    return dpo_errf(e, "unknown reward '%s' (known: sentiment)", spec);
}

int reward_open_sentiment_file(reward **out, const char *path, dpo_err *e) {
    char *text;
    size_t len;
    int rc;
    *out = NULL;
    if (util_read_file(path, VADER_MAX_LEXICON_BYTES, &text, &len, e) != 0) return -1;
    rc = open_sentiment(out, text, len, path, e);
    free(text);
    return rc;
}

void reward_free(reward *r) {
    if (!r) return;
    vader_free(r->lexicon);
    free(r);
}

const char *reward_name(const reward *r) {
    (void)r; /* one kind so far */
    return "sentiment";
}

double reward_from_compound(double compound) { return (compound + 1.0) / 2.0; }

int reward_sentiment_details(const reward *r, const char *text, size_t len, vader_scores *out, dpo_err *e) {
    if (r->kind != REWARD_SENTIMENT) return dpo_errf(e, "reward '%s' has no sentiment scores", reward_name(r));
    return vader_score(r->lexicon, text, len, out, e);
}

int reward_score(const reward *r, const char *text, size_t len, double *out, dpo_err *e) {
    vader_scores s;
    switch (r->kind) {
    case REWARD_SENTIMENT:
        if (vader_score(r->lexicon, text, len, &s, e) != 0) return -1;
        *out = reward_from_compound(s.compound);
        return 0;
    }
    return dpo_errf(e, "reward of an unknown kind");
}
