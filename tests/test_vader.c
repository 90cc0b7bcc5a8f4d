/* tests/test_vader.c - Check suite for vader.c (VADER sentiment) and reward.c.
 *
 * Ground truth is external: tests/vader_vectors.tsv holds 574 sentences scored
 * by upstream vaderSentiment 3.3.1 itself (columns up331_*, see
 * tests/VECTORS.md); every row must agree. The rules are also checked one by
 * one, on word valences computed here by hand from the lexicon values (good
 * 1.9, bad -2.5, doubt -1.5, shit -2.6, no -1.2) and upstream's constants.
 * This file includes vader.c itself, to reach its file-local rule functions.
 * Hostile lexicons must fail with "NAME: line N: what"; hostile text (invalid
 * UTF-8, NUL bytes, random bytes) must score without error (run under ASan:
 * make asan). */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reward.h"
#include "vader.c"

#define VECTORS_PATH "tests/vader_vectors.tsv"
#define N_VECTORS 574
#define LEXICON_PATH "data/vader/vader_lexicon.txt"

/* ======================================================================== */
/* helpers                                                                   */
/* ======================================================================== */

static vader_lexicon *load_str(const char *text) {
    vader_lexicon *lx = NULL;
    dpo_err e;
    ck_assert_msg(vader_load(&lx, text, strlen(text), "test.txt", &e) == 0, "%s", e.msg);
    return lx;
}

static vader_scores score_n(const vader_lexicon *lx, const char *text, size_t len) {
    vader_scores s;
    dpo_err e;
    ck_assert_msg(vader_score(lx, text, len, &s, &e) == 0, "%s", e.msg);
    return s;
}

static vader_scores score(const vader_lexicon *lx, const char *text) { return score_n(lx, text, strlen(text)); }

/* The word valences of text equal want[0..n) (within 1e-12: hand values are decimals). */
static void check_valences_at(const vader_lexicon *lx, const char *text, const double *want, size_t n, int line) {
    double *v;
    size_t got_n, i;
    ck_assert_int_eq(text_valences(lx, (const unsigned char *)text, strlen(text), &v, &got_n), 0);
    ck_assert_msg(got_n == n, "test line %d: '%s': %zu words, want %zu", line, text, got_n, n);
    for (i = 0; i < n; i++)
        ck_assert_msg(fabs(v[i] - want[i]) < 1e-12, "test line %d: '%s': word %zu valence %.17g, want %.17g", line,
                      text, i, v[i], want[i]);
    free(v);
}

#define CHECK_VALENCES(lx, text, ...)                                                                   \
    do {                                                                                                \
        static const double want_[] = {__VA_ARGS__};                                                    \
        check_valences_at(lx, text, want_, sizeof want_ / sizeof want_[0], __LINE__);                    \
    } while (0)

/* compound of a text whose valences sum to s with emphasis e: upstream's formula, by hand */
static double hand_compound(double s) { return s / sqrt(s * s + 15.0); }

/* ======================================================================== */
/* the test vectors: upstream 3.3.1's own scores                            */
/* ======================================================================== */

/* Split one TSV line (modified in place) into at most max fields. */
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (; *line; line++)
        if (*line == '\t') {
            *line = '\0';
            if (n == max) return -1;
            f[n++] = line + 1;
        }
    return n;
}

START_TEST(test_vectors) {
    static const char *const cols[] = {"up331_neg", "up331_neu", "up331_pos", "up331_compound"};
    vader_lexicon *lx = testutil_vader_shipped();
    size_t len, pos = 0, row = 0, agree[4] = {0, 0, 0, 0}, exact[4] = {0, 0, 0, 0}, failed = 0;
    char *buf = (char *)testutil_read_bytes(VECTORS_PATH, &len);
    int k;
    buf[len] = '\0';
    while (pos < len) {
        char *line = buf + pos, *nl = strchr(line, '\n'), *f[10];
        int nf;
        if (nl) *nl = '\0';
        pos = nl ? (size_t)(nl - buf) + 1 : len;
        nf = split_tabs(line, f, 10);
        ck_assert_msg(nf == 10, "%s: line %zu: %d columns, want 10", VECTORS_PATH, row + 1, nf);
        if (row == 0) { /* the header names the columns this test reads */
            ck_assert_str_eq(f[0], "text");
            for (k = 0; k < 4; k++) ck_assert_str_eq(f[k + 1], cols[k]);
        } else {
            vader_scores s = score(lx, f[0]);
            double got[4], want[4];
            int ok = 1;
            got[0] = s.neg, got[1] = s.neu, got[2] = s.pos, got[3] = s.compound;
            for (k = 0; k < 4; k++) {
                char *end;
                want[k] = strtod(f[k + 1], &end);
                ck_assert_msg(*end == '\0' && end != f[k + 1], "%s: row %zu: bad number '%s'", VECTORS_PATH, row, f[k + 1]);
                if (fabs(got[k] - want[k]) <= 1e-4) agree[k]++;
                else ok = 0;
                if (got[k] == want[k]) exact[k]++;
            }
            if (!ok) {
                failed++;
                fprintf(stderr, "vader vectors: row %zu: '%s'\n  want neg %g neu %g pos %g compound %g\n"
                                "  got  neg %g neu %g pos %g compound %g\n",
                        row, f[0], want[0], want[1], want[2], want[3], got[0], got[1], got[2], got[3]);
            }
        }
        row++;
    }
    printf("vader vectors: %zu rows; within 1e-4 of upstream 3.3.1: neg %zu, neu %zu, pos %zu, compound %zu; "
           "equal to the printed decimals: neg %zu, neu %zu, pos %zu, compound %zu\n",
           row - 1, agree[0], agree[1], agree[2], agree[3], exact[0], exact[1], exact[2], exact[3]);
    ck_assert_msg(row - 1 == N_VECTORS, "%s: %zu rows, want %d", VECTORS_PATH, row - 1, N_VECTORS);
    /* No row is known to differ: every row must agree, to the printed decimal. */
    ck_assert_msg(failed == 0, "%zu of %d rows differ from upstream (listed above)", failed, N_VECTORS);
    for (k = 0; k < 4; k++) ck_assert_msg(exact[k] == N_VECTORS, "%s: %zu of %d rows exact", cols[k], exact[k], N_VECTORS);
    free(buf);
    vader_free(lx);
}
END_TEST

/* ======================================================================== */
/* the rules, one by one (word valences computed by hand)                   */
/* ======================================================================== */

START_TEST(test_lexicon_words) {
    vader_lexicon *lx = testutil_vader_shipped();
    CHECK_VALENCES(lx, "good", 1.9);
    CHECK_VALENCES(lx, "This movie was good.", 0, 0, 0, 1.9);
    CHECK_VALENCES(lx, "GOOD", 1.9);               /* all words in caps: no emphasis */
    CHECK_VALENCES(lx, "ok", 1.2);                 /* listed twice (1.6, then 1.2): the last wins */
    CHECK_VALENCES(lx, ":D", 2.3);                 /* the lower-case entry ":d" matches */
    CHECK_VALENCES(lx, ":\xc3\x9e", 0);            /* ":Þ" is listed, but Þ lower-cases to þ */
    vader_free(lx);
    lx = load_str("Good\t3\n");                  /* entries with capitals never match: lookups are lower-case */
    CHECK_VALENCES(lx, "Good good GOOD", 0, 0, 0);
    vader_free(lx);
}
END_TEST

START_TEST(test_punctuation_stripping) {
    vader_lexicon *lx = testutil_vader_shipped();
    CHECK_VALENCES(lx, "(good)", 1.9);
    CHECK_VALENCES(lx, "'good'...", 1.9);
    CHECK_VALENCES(lx, ":)", 2.0);                 /* nothing left after stripping: kept whole */
    CHECK_VALENCES(lx, ":-)", 1.3);
    CHECK_VALENCES(lx, "ok!", 0);                  /* "ok" is only 2 characters: "ok!" is kept whole, not found */
    CHECK_VALENCES(lx, "bad-", -2.5);
    CHECK_VALENCES(lx, "\xe2\x80\x9cgood\xe2\x80\x9d", 0); /* curly quotes are not ASCII punctuation */
    vader_free(lx);
}
END_TEST

START_TEST(test_negation) {
    vader_lexicon *lx = testutil_vader_shipped();
    CHECK_VALENCES(lx, "not good", 0, 1.9 * -0.74);
    CHECK_VALENCES(lx, "isn't good", 0, 1.9 * -0.74);
    CHECK_VALENCES(lx, "aint good", 0, 1.9 * -0.74);
    CHECK_VALENCES(lx, "NOT good", 0, 1.9 * -0.74);           /* negation words match in any case */
    CHECK_VALENCES(lx, "not a good", 0, 0, 1.9 * -0.74);     /* two words back */
    CHECK_VALENCES(lx, "not a very good", 0, 0, 0, (1.9 + 0.293) * -0.74);        /* three back (no booster scaling: "a" is none) */
    CHECK_VALENCES(lx, "not one of good", 0, 0, 0, 1.9 * -0.74); /* three back */
    CHECK_VALENCES(lx, "not one of the good", 0, 0, 0, 0, 1.9);     /* four back: out of the window */
    CHECK_VALENCES(lx, "not very good", 0, 0, (1.9 + 0.293) * -0.74);
    /* "never so/this X" is emphasis, not negation */
    CHECK_VALENCES(lx, "never so good", 0, 0, (1.9 + 0.293) * 1.25);
    CHECK_VALENCES(lx, "never this good", 0, 0, 1.9 * 1.25);
    /* at three back, upstream's condition also fires on "so"/"this" right before the word */
    CHECK_VALENCES(lx, "it was so good", 0, 0, 0, (1.9 + 0.293) * 1.25);
    CHECK_VALENCES(lx, "was so good", 0, 0, 1.9 + 0.293);
    /* "without doubt": "without" negates "doubt" (-1.5), but not the word after */
    CHECK_VALENCES(lx, "without doubt good", 0, -1.5 * -0.74, 1.9);
    CHECK_VALENCES(lx, "without any doubt good", 0, 0, -1.5 * -0.74, 1.9);
    /* "no": before a lexicon word it is 0 and negates it; alone it is a word of its own */
    CHECK_VALENCES(lx, "no good", 0, 1.9 * -0.74);
    CHECK_VALENCES(lx, "no", -1.2);
    CHECK_VALENCES(lx, "no bad or good", 0, -2.5 * -0.74, 0, 1.9 * -0.74);
    vader_free(lx);
}
END_TEST

START_TEST(test_boosters_and_caps) {
    vader_lexicon *lx = testutil_vader_shipped();
    CHECK_VALENCES(lx, "very good", 0, 1.9 + 0.293);
    CHECK_VALENCES(lx, "very bad", 0, -2.5 - 0.293);                      /* away from zero */
    CHECK_VALENCES(lx, "very very good", 0, 0, 1.9 + 0.293 + 0.293 * 0.95);
    CHECK_VALENCES(lx, "very very very good", 0, 0, 0, 1.9 + 0.293 + 0.293 * 0.95 + 0.293 * 0.9);
    CHECK_VALENCES(lx, "barely good", 0, 1.9 - 0.293);
    CHECK_VALENCES(lx, "barely bad", 0, -2.5 + 0.293);
    /* ALL CAPS counts only when the text mixes case */
    CHECK_VALENCES(lx, "GOOD movie", 1.9 + 0.733, 0);
    CHECK_VALENCES(lx, "BAD movie", -2.5 - 0.733, 0);
    CHECK_VALENCES(lx, "GOOD MOVIE", 1.9, 0);
    CHECK_VALENCES(lx, "VERY good movie", 0, 1.9 + 0.293 + 0.733, 0);
    /* "kind of": "kind" (a lexicon word, 2.4) before "of" is 0; with three words
     * before, the pair "kind of" dampens */
    CHECK_VALENCES(lx, "kind of good", 0, 0, 1.9);
    CHECK_VALENCES(lx, "it is kind of good", 0, 0, 0, 0, 1.9 - 0.293);
    CHECK_VALENCES(lx, "a kind man", 0, 2.4, 0);
    vader_free(lx);
}
END_TEST

START_TEST(test_least_and_idioms) {
    vader_lexicon *lx = testutil_vader_shipped();
    CHECK_VALENCES(lx, "least good", 0, 1.9 * -0.74);
    CHECK_VALENCES(lx, "the least good", 0, 0, 1.9 * -0.74);
    CHECK_VALENCES(lx, "at least good", 0, 0, 1.9);
    CHECK_VALENCES(lx, "very least good", 0, 0, 1.9 + 0.293 * 0.95);
    /* special phrases replace the valence, when three words precede the lexicon word */
    CHECK_VALENCES(lx, "it is the shit", 0, 0, 0, 3.0);
    CHECK_VALENCES(lx, "the shit", 0, -2.6);                    /* too early in the text: no idiom check */
    CHECK_VALENCES(lx, "you are the bomb", 0, 0, 0, 3.0);
    CHECK_VALENCES(lx, "we were at the bus stop", 0, 0, 0, 0, 0, 0.0);
    CHECK_VALENCES(lx, "a kiss of death", 0, 1.8, 0, -1.5);             /* "kiss" too early; "death" ends the phrase */
    CHECK_VALENCES(lx, "it was a kiss of death", 0, 0, 0, -1.5, 0, -1.5); /* "kiss" starts it */
    vader_free(lx);
}
END_TEST

START_TEST(test_but) {
    vader_lexicon *lx = testutil_vader_shipped(), *ab;
    CHECK_VALENCES(lx, "good but bad", 1.9 * 0.5, 0, -2.5 * 1.5);
    CHECK_VALENCES(lx, "good but bad but good", 1.9 * 0.5, 0, -2.5 * 1.5, 0, 1.9 * 1.5);
    /* upstream scales the FIRST word holding the same value (list.index): here
     * word 1 (bb = 1) finds word 0 (aa = 2, halved to 1) and halves it again,
     * and the last bb finds word 1; the right answer would be {1, 0.5, 0, 1.5} */
    ab = load_str("aa\t2\nbb\t1\n");
    CHECK_VALENCES(ab, "aa bb but bb", 0.5, 0.5, 0, 1.0);
    vader_free(ab);
    vader_free(lx);
}
END_TEST

/* The "but" rule as upstream's loop does it: a plain scan for the first equal value. */
static void but_reference(double *s, size_t n, size_t bi) {
    size_t k, si;
    for (k = 0; k < n; k++) {
        double v = s[k];
        for (si = 0; s[si] != v; si++)
            ;
        if (si < bi) s[si] = v * 0.5;
        else if (si > bi) s[si] = v * 1.5;
    }
}

START_TEST(test_but_heaps_match_scan) {
    /* values from a small set whose halves and 1.5x land on each other, so that
     * the first-equal-value search hits earlier words often */
    static const double pick[] = {0.0, 1.0, 2.0, 4.0, 0.5, 1.5, 3.0, 0.75, -1.0, -2.0, -0.5, -1.5, 2.25, -0.0};
    util_rng rng;
    int round;
    util_rng_seed(&rng, 10);
    for (round = 0; round < 3000; round++) {
        size_t n = 1 + (size_t)(util_rng_u64(&rng) % 60), bi = (size_t)(util_rng_u64(&rng) % n), i;
        double a[64], b[64];
        for (i = 0; i < n; i++) a[i] = b[i] = pick[util_rng_u64(&rng) % (sizeof pick / sizeof pick[0])];
        but_reference(a, n, bi);
        ck_assert_int_eq(but_weighting(b, n, bi), 0);
        for (i = 0; i < n; i++)
            ck_assert_msg(a[i] == b[i], "round %d: n %zu bi %zu: position %zu: heap %g, scan %g", round, n, bi, i, b[i], a[i]);
    }
}
END_TEST

START_TEST(test_punctuation_emphasis) {
    vader_lexicon *lx = testutil_vader_shipped();
    vader_scores s;
    s = score(lx, "good");
    ck_assert(s.compound == 0.4404 && s.pos == 1.0 && s.neu == 0.0 && s.neg == 0.0);
    ck_assert(fabs(score(lx, "good!").compound - hand_compound(1.9 + 0.292)) <= 0.5e-4);
    ck_assert(fabs(score(lx, "good!!!!").compound - hand_compound(1.9 + 4 * 0.292)) <= 0.5e-4);
    ck_assert(score(lx, "good!!!!!!").compound == score(lx, "good!!!!").compound); /* at most 4 count */
    ck_assert(score(lx, "good?").compound == 0.4404);                              /* one "?" adds nothing */
    ck_assert(fabs(score(lx, "good??").compound - hand_compound(1.9 + 2 * 0.18)) <= 0.5e-4);
    ck_assert(fabs(score(lx, "good???").compound - hand_compound(1.9 + 3 * 0.18)) <= 0.5e-4);
    ck_assert(fabs(score(lx, "good?????").compound - hand_compound(1.9 + 0.96)) <= 0.5e-4);
    ck_assert(fabs(score(lx, "bad!").compound - hand_compound(-2.5 - 0.292)) <= 0.5e-4);
    ck_assert(fabs(score(lx, "bad! good?!").compound - hand_compound(-2.5 + 1.9 - 2 * 0.292)) <= 0.5e-4);
    ck_assert(score(lx, "movie!!!").compound == 0.0);                              /* nothing to emphasise */
    /* proportions: "This movie was good." = 3 neutral words and 1.9 + 1 */
    s = score(lx, "This movie was good.");
    ck_assert(s.neg == 0.0 && s.neu == 0.508 && s.pos == 0.492);
    ck_assert(fabs(s.neu - 3.0 / 5.9) <= 0.5e-3 && fabs(s.pos - 2.9 / 5.9) <= 0.5e-3);
    vader_free(lx);
}
END_TEST

START_TEST(test_normalize_and_round) {
    /* s / sqrt(s^2 + 15) */
    ck_assert(normalize(0.0) == 0.0);
    ck_assert(normalize(1.9) == 1.9 / sqrt(1.9 * 1.9 + 15.0));
    ck_assert(fabs(normalize(1.0) - 0.25) < 1e-15); /* 1 / sqrt(16) */
    ck_assert(fabs(normalize(-7.0) + 7.0 / 8.0) < 1e-15); /* -7 / sqrt(64) */
    ck_assert(normalize(1e6) <= 1.0 && normalize(-1e6) >= -1.0);
    /* Python's round(x, d): the decimal nearest the exact binary value, ties to
     * even (values checked with CPython 3) */
    {
        static const struct {
            double x;
            int d;
            double want;
        } r[] = {
            {0.0625, 3, 0.062},    {0.1875, 3, 0.188},   {0.03125, 4, 0.0312}, {0.09375, 4, 0.0938},
            {0.0005, 3, 0.001},    {0.00005, 4, 0.0001}, {0.44045, 4, 0.4405}, {0.1235, 3, 0.123},
            {0.8765, 3, 0.876},    {0.99995, 4, 1.0},    {0.9995, 3, 1.0},     {0.12345, 4, 0.1235},
            {0.5, 3, 0.5},         {1.0, 4, 1.0},        {0.00015, 4, 0.0001}, {0.2345, 3, 0.234},
            {1e-300, 4, 0.0},      {0.44043357076016854, 4, 0.4404},
        };
        size_t i;
        for (i = 0; i < sizeof r / sizeof r[0]; i++) {
            ck_assert_msg(py_round(r[i].x, r[i].d) == r[i].want, "round(%.17g, %d) = %.17g, want %.17g", r[i].x,
                          r[i].d, py_round(r[i].x, r[i].d), r[i].want);
            ck_assert(py_round(-r[i].x, r[i].d) == -r[i].want);
        }
    }
}
END_TEST

START_TEST(test_word_lists_sorted) {
    size_t i;
#define SORTED(list)                                                                                    \
    for (i = 1; i < NWORDS(list); i++)                                                                  \
        ck_assert_msg(strcmp(list[i - 1], list[i]) < 0, #list ": '%s' before '%s'", list[i - 1], list[i]);
    SORTED(negation_words)
    SORTED(booster_words)
    SORTED(dampener_words)
#undef SORTED
    ck_assert_int_eq(NWORDS(negation_words) + 22, 59); /* upstream's NEGATE: 59 words, 22 with "n't" */
    ck_assert_int_eq(NWORDS(booster_words), 60);
    ck_assert_int_eq(NWORDS(dampener_words) + NWORDS(dampener_pairs), 24);
}
END_TEST

/* ======================================================================== */
/* characters: white space, case, invalid UTF-8                             */
/* ======================================================================== */

START_TEST(test_characters) {
    vader_lexicon *lx = testutil_vader_shipped(), *cafe;
    /* Python's str.split() splits at Unicode white space and at 0x1C..0x1F */
    CHECK_VALENCES(lx, "good\xc2\x85" "bad", 1.9, -2.5);     /* NEL */
    CHECK_VALENCES(lx, "good\xc2\xa0" "bad", 1.9, -2.5);     /* NO-BREAK SPACE */
    CHECK_VALENCES(lx, "good\xe3\x80\x80" "bad", 1.9, -2.5); /* IDEOGRAPHIC SPACE */
    CHECK_VALENCES(lx, "good\x1c" "bad\x1f", 1.9, -2.5);
    CHECK_VALENCES(lx, "good\x85" "bad", 0);                 /* a lone 0x85 byte is no space */
    CHECK_VALENCES(lx, "good\xe2\x80\x94" "bad", 0);         /* nor is an em dash */
    CHECK_VALENCES(lx, "\t good \r\n", 1.9);
    /* Latin-1 letters have case as in Python; the CAPS word here is "CAFÉ" */
    cafe = load_str("caf\xc3\xa9\t2\n:\xc3\xbe\t1\n");
    CHECK_VALENCES(cafe, "CAF\xc3\x89 is", 2.0 + 0.733, 0);
    CHECK_VALENCES(cafe, "caf\xc3\xa9 IS", 2.0, 0);
    CHECK_VALENCES(cafe, ":\xc3\x9e", 1.0);                  /* ":Þ" lower-cases to ":þ" */
    CHECK_VALENCES(cafe, "\xc3\xa9TAT CAF\xc3\x89", 0, 2.0 + 0.733); /* "éTAT" has a lower-case letter: not CAPS */
    /* beyond U+00FF nothing has case here: Greek capitals are not CAPS, so
     * "BAD" is emphasised (upstream, where ΑΓ is upper case, would not) */
    CHECK_VALENCES(lx, "\xce\x91\xce\x93 BAD", 0, -2.5 - 0.733);
    vader_free(cafe);
    vader_free(lx);
}
END_TEST

START_TEST(test_hostile_text) {
    vader_lexicon *lx = testutil_vader_shipped();
    vader_scores s, t;
    util_rng rng;
    static const char pieces[][6] = {"good", "bad", "but", "not", "very", "no", " ", "!", "?", "\xff", "\xc3",
                                     "\xe2\x80", "\x00", "GOOD", "kind", "of", "least", ":)", "\xc2\x85", "'"};
    int round;
    s = score_n(lx, "", 0);
    ck_assert(s.neg == 0 && s.neu == 0 && s.pos == 0 && s.compound == 0);
    s = score(lx, " \t\r\n ");
    ck_assert(s.neg == 0 && s.neu == 0 && s.pos == 0 && s.compound == 0);
    s = score_n(lx, "good\0bad", 8); /* NUL is a character: one word, not in the lexicon */
    ck_assert(s.compound == 0 && s.neu == 1.0);
    /* each invalid byte is a character of its own: "\xff\xfe" is a word of two */
    s = score(lx, "\xff\xfe good \xc3");
    t = score(lx, "xy good z");
    ck_assert(s.neg == t.neg && s.neu == t.neu && s.pos == t.pos && s.compound == t.compound);
    s = score(lx, "good \xe2\x80"); /* cut-off sequence at the end */
    ck_assert(s.compound == 0.4404);
    /* random texts from pieces, and random bytes: scores stay in range */
    util_rng_seed(&rng, 7);
    for (round = 0; round < 4000; round++) {
        char buf[400];
        size_t len = 0, np = (size_t)(util_rng_u64(&rng) % 40), i;
        for (i = 0; i < np && len + 6 < sizeof buf; i++) {
            if (round % 2) {
                buf[len++] = (char)(util_rng_u64(&rng) & 255);
            } else {
                const char *p = pieces[util_rng_u64(&rng) % (sizeof pieces / sizeof pieces[0])];
                size_t pl = p[0] ? strlen(p) : 1;
                memcpy(buf + len, p, pl);
                len += pl;
                if (util_rng_u64(&rng) % 2) buf[len++] = ' ';
            }
        }
        s = score_n(lx, buf, len);
        ck_assert(s.compound >= -1.0 && s.compound <= 1.0);
        ck_assert(s.neg >= 0 && s.neg <= 1 && s.neu >= 0 && s.neu <= 1 && s.pos >= 0 && s.pos <= 1);
        ck_assert_msg((s.neg == 0 && s.neu == 0 && s.pos == 0) || fabs(s.neg + s.neu + s.pos - 1.0) <= 0.002,
                      "round %d: shares %g %g %g", round, s.neg, s.neu, s.pos);
    }
    vader_free(lx);
}
END_TEST

START_TEST(test_long_text_with_but) {
    /* a text of 200000 words with "but" in the middle: the rule stays O(n log n) */
    vader_lexicon *lx = testutil_vader_shipped();
    size_t n = 200000, i, len = 0;
    char *buf = malloc(n * 7);
    vader_scores s;
    ck_assert_ptr_nonnull(buf);
    for (i = 0; i < n; i++) {
        const char *w = i == n / 2 ? "but " : i % 3 == 0 ? "great " : i % 3 == 1 ? "good " : "movie ";
        memcpy(buf + len, w, strlen(w));
        len += strlen(w);
    }
    s = score_n(lx, buf, len);
    ck_assert(s.compound == 1.0 && s.neg == 0.0);
    free(buf);
    vader_free(lx);
}
END_TEST

/* ======================================================================== */
/* lexicon files                                                            */
/* ======================================================================== */

START_TEST(test_shipped_lexicon) {
    size_t n;
    unsigned char *file = testutil_read_bytes(LEXICON_PATH, &n);
    vader_lexicon *lx = testutil_vader_shipped();
    double v;
    /* the embedded copy is the file, byte for byte */
    ck_assert_uint_eq(n, vader_embedded_lexicon_len);
    ck_assert(memcmp(file, vader_embedded_lexicon, n) == 0);
    ck_assert(vader_embedded_lexicon[n] == 0);
    ck_assert_uint_eq(vader_size(lx), 7517 - 14); /* 7517 lines, 14 tokens listed twice */
    ck_assert(vader_lookup(lx, "good", 4, &v) == 1 && v == 1.9);
    ck_assert(vader_lookup(lx, "lol", 3, &v) == 1 && v == 1.8); /* lines 303 (2.9) and 4403 (1.8) */
    ck_assert(vader_lookup(lx, "can't stand", 11, &v) == 1 && v == -2.0);
    ck_assert(vader_lookup(lx, "goodx", 5, &v) == 0);
    free(file);
    vader_free(lx);
}
END_TEST

START_TEST(test_lexicon_format) {
    vader_lexicon *lx = load_str("a\t1.5\r\nb\t-2\tignored\t[1, 2]\nc\t+0.25\nb\t3"); /* CRLF; no final newline */
    double v;
    ck_assert_uint_eq(vader_size(lx), 3);
    ck_assert(vader_lookup(lx, "a", 1, &v) == 1 && v == 1.5);
    ck_assert(vader_lookup(lx, "b", 1, &v) == 1 && v == 3.0); /* the later line wins */
    ck_assert(vader_lookup(lx, "c", 1, &v) == 1 && v == 0.25);
    ck_assert(vader_lookup(lx, "d", 1, &v) == 0);
    vader_free(lx);
    lx = load_str("x y\t0.12345678901234\n"); /* 15 digits; a token with an inner space (never matched) */
    ck_assert(vader_lookup(lx, "x y", 3, &v) == 1 && v == 0.12345678901234);
    vader_free(lx);
}
END_TEST

static void expect_load_error(const char *text, size_t len, const char *want, int line) {
    vader_lexicon *lx = (vader_lexicon *)&lx; /* must come back NULL */
    dpo_err e;
    e.msg[0] = '\0';
    ck_assert_msg(vader_load(&lx, text, len, "lex.txt", &e) == -1, "test line %d: accepted", line);
    ck_assert_msg(lx == NULL, "test line %d: *out not NULL", line);
    ck_assert_msg(strstr(e.msg, want) != NULL, "test line %d: message '%s' lacks '%s'", line, e.msg, want);
}

#define EXPECT_LOAD_ERROR(text, want) expect_load_error(text, sizeof(text) - 1, want, __LINE__)

START_TEST(test_lexicon_hostile) {
    char *big;
    EXPECT_LOAD_ERROR("", "lex.txt: empty file");
    EXPECT_LOAD_ERROR("good 1.9\n", "lex.txt: line 1: no TAB after the token");
    EXPECT_LOAD_ERROR("a\t1\ngood\tabc\n", "lex.txt: line 2: valence 'abc' is not a decimal number");
    EXPECT_LOAD_ERROR("good\t\n", "line 1: valence '' is not a decimal number");
    EXPECT_LOAD_ERROR("good\t1.\n", "line 1: valence '1.' is not");
    EXPECT_LOAD_ERROR("good\t.5\n", "line 1: valence '.5' is not");
    EXPECT_LOAD_ERROR("good\t1.9.1\n", "line 1: valence '1.9.1' is not");
    EXPECT_LOAD_ERROR("good\t1e3\n", "line 1: valence '1e3' is not");
    EXPECT_LOAD_ERROR("good\tnan\n", "line 1: valence 'nan' is not");
    EXPECT_LOAD_ERROR("good\t 1\n", "line 1: valence ' 1' is not");
    EXPECT_LOAD_ERROR("good\t1234567890123456\n", "line 1: valence '1234567890123456' is not");
    EXPECT_LOAD_ERROR("good\t1001\n", "line 1: valence 1001 is outside [-1000, 1000]");
    EXPECT_LOAD_ERROR("\t1.0\n", "line 1: empty token before the TAB");
    EXPECT_LOAD_ERROR(" good\t1.0\n", "line 1: token starts or ends with a space");
    EXPECT_LOAD_ERROR("go\x01od\t1.0\n", "line 1: token holds a control character");
    EXPECT_LOAD_ERROR("go\0od\t1.0\n", "line 1: token holds a control character");
    EXPECT_LOAD_ERROR("\xff\t1.0\n", "line 1: token is not valid UTF-8");
    EXPECT_LOAD_ERROR("\xed\xa0\x80\t1.0\n", "line 1: token is not valid UTF-8"); /* a surrogate */
    EXPECT_LOAD_ERROR("a\t1\n\nb\t2\n", "lex.txt: line 2: empty line");
    EXPECT_LOAD_ERROR("a\t1\n\n", "lex.txt: line 2: empty line");
    EXPECT_LOAD_ERROR("\n", "lex.txt: line 1: empty line");
    /* a huge line, and a file over the limit */
    big = malloc(VADER_MAX_LEXICON_BYTES + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', VADER_MAX_LEXICON_BYTES + 1);
    memcpy(big + VADER_MAX_LINE + 1, "\t1\n", 3);
    expect_load_error(big, VADER_MAX_LINE + 4, "lex.txt: line 1: longer than 4096 bytes", __LINE__);
    expect_load_error(big, VADER_MAX_LEXICON_BYTES + 1, "more than the 16777216 a lexicon may have", __LINE__);
    memcpy(big + VADER_MAX_LINE - 2, "\t1\n", 3); /* exactly 4096 bytes before the newline: fine */
    {
        vader_lexicon *lx;
        dpo_err e;
        ck_assert_msg(vader_load(&lx, big, VADER_MAX_LINE + 1, "lex.txt", &e) == 0, "%s", e.msg);
        ck_assert_uint_eq(vader_size(lx), 1);
        vader_free(lx);
    }
    free(big);
}
END_TEST

/* ======================================================================== */
/* reward.c                                                                 */
/* ======================================================================== */

START_TEST(test_reward) {
    static const char *const texts[] = {"", "good", "This movie was not good.", "VADER is VERY SMART, handsome, and FUNNY!!!",
                                        "terrible horrible awful bad sad", "\xff\xfe", "It was okay, but the ending was bad."};
    reward *r = NULL;
    vader_lexicon *lx = testutil_vader_shipped();
    dpo_err e;
    size_t i;
    ck_assert_msg(reward_open(&r, "sentiment", &e) == 0, "%s", e.msg);
    ck_assert_str_eq(reward_name(r), "sentiment");
    for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        double x;
        vader_scores d, s = score(lx, texts[i]);
        ck_assert_int_eq(reward_score(r, "", 0, texts[i], strlen(texts[i]), &x, &e), 0);
        ck_assert(x >= 0.0 && x <= 1.0);
        ck_assert(x == (s.compound + 1.0) / 2.0);
        ck_assert_int_eq(reward_sentiment_details(r, texts[i], strlen(texts[i]), &d, &e), 0);
        ck_assert(memcmp(&d, &s, sizeof d) == 0);
    }
    ck_assert(reward_from_compound(-1.0) == 0.0 && reward_from_compound(1.0) == 1.0 && reward_from_compound(0.0) == 0.5);
    reward_free(r);
    r = (reward *)&r;
    ck_assert_int_eq(reward_open(&r, "model:/nowhere", &e), -1);
    ck_assert(r == NULL);
    ck_assert_msg(strstr(e.msg, "/nowhere/config.json") != NULL, "%s", e.msg);
    r = (reward *)&r;
    ck_assert_int_eq(reward_open(&r, "vader", &e), -1);
    ck_assert(r == NULL);
    ck_assert_msg(strstr(e.msg, "unknown reward 'vader' (known: sentiment, model:DIR)") != NULL, "%s", e.msg);
    vader_free(lx);
}
END_TEST

START_TEST(test_reward_lexicon_file) {
    char path[4096];
    reward *r = NULL;
    dpo_err e;
    double x;
    snprintf(path, sizeof path, "%s/lex.txt", tmp_root);
    testutil_write_bytes(path, "good\t-1\n", 8);
    ck_assert_msg(reward_open_sentiment_file(&r, path, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(reward_score(r, "", 0, "good", 4, &x, &e), 0);
    ck_assert(x == (py_round(normalize(-1.0), 4) + 1.0) / 2.0);
    reward_free(r);
    testutil_write_bytes(path, "good\t-1\nbad 2\n", 14);
    ck_assert_int_eq(reward_open_sentiment_file(&r, path, &e), -1);
    ck_assert_msg(strstr(e.msg, "lex.txt: line 2: no TAB after the token") != NULL, "%s", e.msg);
    snprintf(path, sizeof path, "%s/missing.txt", tmp_root);
    ck_assert_int_eq(reward_open_sentiment_file(&r, path, &e), -1);
    ck_assert_msg(strstr(e.msg, "missing.txt") != NULL, "%s", e.msg);
}
END_TEST

START_TEST(test_reward_threads) {
    /* one reward, scored from several threads at once, gives the serial results */
    enum { N = 512 };
    reward *r = NULL;
    dpo_err e;
    double serial[N], parallel[N];
    char texts[N][64];
    int i, bad = 0;
    ck_assert_msg(reward_open(&r, "sentiment", &e) == 0, "%s", e.msg);
    for (i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "%s %s but %s!%s", i % 2 ? "good" : "not bad", i % 3 ? "VERY" : "kind of",
                 i % 5 ? "sad" : "great", i % 7 ? "" : "??");
        ck_assert_int_eq(reward_score(r, "", 0, texts[i], strlen(texts[i]), &serial[i], &e), 0);
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 8) reduction(+ : bad)
#endif
    for (i = 0; i < N; i++) {
        dpo_err le;
        if (reward_score(r, "", 0, texts[i], strlen(texts[i]), &parallel[i], &le) != 0) bad++;
    }
    ck_assert_int_eq(bad, 0);
    for (i = 0; i < N; i++) ck_assert_msg(serial[i] == parallel[i], "text %d '%s'", i, texts[i]);
    reward_free(r);
}
END_TEST

int main(void) {
    Suite *s = suite_create("vader");
    TCase *vectors = tcase_create("vectors");
    TCase *rules = tcase_create("rules");
    TCase *text = tcase_create("text");
    TCase *lexicon = tcase_create("lexicon");
    TCase *rew = tcase_create("reward");

    tcase_set_timeout(vectors, 60);
    tcase_add_test(vectors, test_vectors);
    suite_add_tcase(s, vectors);

    tcase_add_test(rules, test_lexicon_words);
    tcase_add_test(rules, test_punctuation_stripping);
    tcase_add_test(rules, test_negation);
    tcase_add_test(rules, test_boosters_and_caps);
    tcase_add_test(rules, test_least_and_idioms);
    tcase_add_test(rules, test_but);
    tcase_add_test(rules, test_but_heaps_match_scan);
    tcase_add_test(rules, test_punctuation_emphasis);
    tcase_add_test(rules, test_normalize_and_round);
    tcase_add_test(rules, test_word_lists_sorted);
    suite_add_tcase(s, rules);

    tcase_set_timeout(text, 120);
    tcase_add_test(text, test_characters);
    tcase_add_test(text, test_hostile_text);
    tcase_add_test(text, test_long_text_with_but);
    suite_add_tcase(s, text);

    tcase_add_test(lexicon, test_shipped_lexicon);
    tcase_add_test(lexicon, test_lexicon_format);
    tcase_add_test(lexicon, test_lexicon_hostile);
    suite_add_tcase(s, lexicon);

    tcase_add_checked_fixture(rew, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(rew, test_reward);
    tcase_add_test(rew, test_reward_lexicon_file);
    tcase_add_test(rew, test_reward_threads);
    suite_add_tcase(s, rew);

    return testutil_run(s);
}
