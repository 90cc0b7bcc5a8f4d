/* fuzz_vader.c - libFuzzer harness of VADER (vader.c) behind the sentiment
 * reward (reward.c): the scorer on arbitrary text, and the lexicon reader.
 *
 * Feeds: byte 0 picks the reader. Even: the rest is a text, scored with the
 * compiled-in lexicon (reward_open "sentiment", reward_score and
 * reward_sentiment_details). Odd: the rest is a lexicon file for vader_load;
 * one that loads scores that same text.
 * Asserts: neg, neu and pos are in [0, 1], compound in [-1, 1], the reward in
 * [0, 1], all finite; the reward is (compound + 1) / 2. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "fuzz_common.h"
#include "reward.h"

static reward *sentiment;

static void free_reward(void) { reward_free(sentiment); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    dpo_err e;
    (void)argc;
    (void)argv;
    if (reward_open(&sentiment, "sentiment", &e) != 0) {
        fprintf(stderr, "fuzz_vader: %s\n", e.msg);
        abort();
    }
    atexit(free_reward);
    return 0;
}

static int in01(double x) { return x >= 0.0 && x <= 1.0; }

static void check_scores(const vader_scores *s) {
    if (!in01(s->neg) || !in01(s->neu) || !in01(s->pos) || !(s->compound >= -1.0 && s->compound <= 1.0)) {
        fprintf(stderr, "scores out of range: %g %g %g %g\n", s->neg, s->neu, s->pos, s->compound);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data + 1;
    vader_scores s;
    vader_lexicon *lx;
    double r;
    dpo_err e;
    if (size < 1) return 0;
    if (data[0] & 1) {
        if (vader_load(&lx, text, size - 1, "fuzz lexicon", &e) != 0) return 0;
        if (vader_size(lx) < 1) abort();
        if (vader_score(lx, text, size - 1, &s, &e) != 0) abort();
        check_scores(&s);
        vader_free(lx);
        return 0;
    }
    if (reward_sentiment_details(sentiment, text, size - 1, &s, &e) != 0 ||
        reward_score(sentiment, "", 0, text, size - 1, &r, &e) != 0)
        abort();
    check_scores(&s);
    if (!in01(r) || r != reward_from_compound(s.compound)) abort();
    return 0;
}
