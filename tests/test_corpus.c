/* tests/test_corpus.c - Check suite for corpus.c (the synthetic movie reviews
 * of `dpo corpus`).
 *
 * Ground truth is VADER itself (vader.c, whose agreement with upstream
 * vaderSentiment is tested in test_vader.c): every word the grammar uses as
 * neutral must be invisible to it, every opinion sentence must score with the
 * sign the generator meant, and the mean reward of reviews must rise with the
 * hidden rating and average 0.5 +- 0.05. The rest is the generator's contract:
 * the same seed gives the same bytes, every review has min..max words, about
 * a third of the sentences are neutral, the vocabulary stays small, and the
 * files are what the README says. A few thousand reviews keep it fast. */
#include "testutil.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "corpus.h"
#include "reward.h"
#include "vader.h"

#define N_REVIEWS 3000

/* Review 0 of seed 1 (25..70 words), as every machine must write it. */
#define GOLDEN_REVIEW_0                                                                                        \
    "Stefan meets a lawyer named Laura on the plane to Oslo. Stefan gives a sincere performance. Stefan spends a " \
    "year in Istanbul. The plot of this film is incredibly excellent. The story begins in Lisbon after the "       \
    "harvest. Leila asks Stefan to bring a carpet from Rome. This film is fresh."
#define GOLDEN_RATING_0 7

static const corpus_params defaults = {1, 25, 70};

/* Reviews 0..n-1 of p, each followed by a newline (as in the files). */
static corpus_buf reviews(const corpus_params *p, int n) {
    corpus_buf b = {NULL, 0, 0};
    dpo_err e;
    int i;
    for (i = 0; i < n; i++) {
        corpus_buf one = {NULL, 0, 0};
        ck_assert_msg(corpus_review(p, (uint64_t)i, &one, NULL, &e) == 0, "%s", e.msg);
        b.p = realloc(b.p, b.len + one.len + 2);
        ck_assert_ptr_nonnull(b.p);
        memcpy(b.p + b.len, one.p, one.len);
        b.len += one.len;
        b.p[b.len++] = '\n';
        b.p[b.len] = '\0';
        b.cap = b.len + 1;
        corpus_buf_free(&one);
    }
    return b;
}

/* 1 when needle occurs in s[0..n) */
static int contains(const char *s, size_t n, const char *needle) {
    size_t m = strlen(needle), i;
    for (i = 0; i + m <= n; i++)
        if (memcmp(s + i, needle, m) == 0) return 1;
    return 0;
}

static int words_in(const char *s, size_t n) {
    int w = 0, in = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        int sp = s[i] == ' ' || s[i] == '\t' || s[i] == '\n';
        if (!sp && !in) w++;
        in = !sp;
    }
    return w;
}

/* ======================================================================== */
/* the word check                                                            */
/* ======================================================================== */

START_TEST(test_builtin_tables_pass) {
    vader_lexicon *lx = testutil_vader_shipped();
    dpo_err e;
    ck_assert_msg(corpus_check(lx, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(corpus_n_opinion_words(1), 50);
    ck_assert_uint_eq(corpus_n_opinion_words(-1), 50);
    vader_free(lx);
}
END_TEST

/* A check that must fail with a message holding want. */
static void expect_reject(const vader_lexicon *lx, const corpus_opinion_word *op, size_t nop,
                          const corpus_modifier *mods, size_t nmods, const char *phrase, const char *want) {
    const char *ph[1];
    dpo_err e;
    ph[0] = phrase;
    e.msg[0] = '\0';
    ck_assert_msg(corpus_check_words(lx, op, nop, mods, nmods, ph, phrase ? 1 : 0, &e) != 0, "accepted: %s",
                  phrase ? phrase : op[0].word);
    ck_assert_msg(strstr(e.msg, want) != NULL, "message '%s' lacks '%s'", e.msg, want);
}

START_TEST(test_check_rejects_planted_entries) {
    vader_lexicon *lx = testutil_vader_shipped();
    static const corpus_opinion_word good[] = {{"brilliant", 1}, {"dull", -1}};
    static const corpus_opinion_word wrong_sign[] = {{"brilliant", 1}, {"awful", 1}};
    static const corpus_opinion_word weak[] = {{"fine", 1}};            /* 0.8 */
    static const corpus_opinion_word missing[] = {{"zorblax", -1}};
    static const corpus_opinion_word spread[] = {{"humor", 1}, {"evil", -1}}; /* 1.1 and -3.4 */
    static const corpus_modifier negs[] = {{"very", CORPUS_NEGATION}};
    static const corpus_modifier boost[] = {{"not", CORPUS_BOOSTER}};
    static const corpus_modifier but[] = {{"and", CORPUS_CONTRAST}};
    static const corpus_modifier ok_mods[] = {
        {"not", CORPUS_NEGATION}, {"wasn't", CORPUS_NEGATION}, {"very", CORPUS_BOOSTER}, {"but", CORPUS_CONTRAST}};
    const char *fine_phrases[] = {"The {A} wasn't very {X}, but the {C} was {X}.", "Anna travels to Lisbon."};
    dpo_err e;

    ck_assert_msg(corpus_check_words(lx, good, 2, ok_mods, 4, fine_phrases, 2, &e) == 0, "%s", e.msg);
    expect_reject(lx, wrong_sign, 2, NULL, 0, NULL, "\"awful\" has VADER valence -2, but the table says positive");
    expect_reject(lx, weak, 1, NULL, 0, NULL, "\"fine\" has VADER valence 0.8");
    expect_reject(lx, missing, 1, NULL, 0, NULL, "\"zorblax\" is not in the VADER lexicon");
    expect_reject(lx, spread, 2, NULL, 0, NULL, "below 3 times the smallest");
    /* neutral words with valence, capitalised or not (VADER lower-cases) */
    expect_reject(lx, NULL, 0, NULL, 0, "{N} writes a comedy.", "neutral word \"comedy\"");
    expect_reject(lx, NULL, 0, NULL, 0, "The War ends in {P}.", "neutral word \"war\"");
    expect_reject(lx, NULL, 0, NULL, 0, "{N} plays.", "\"plays\"");
    expect_reject(lx, NULL, 0, NULL, 0, "{N}'s friend", "\"friend\"");
    /* words without valence that change the words around them */
    expect_reject(lx, NULL, 0, NULL, 0, "{N} is very {X}.", "neutral word \"very\"");
    expect_reject(lx, NULL, 0, NULL, 0, "{N} never {X}.", "\"never\"");
    expect_reject(lx, NULL, 0, NULL, 0, "{N} didn't go.", "\"didn't\"");
    expect_reject(lx, NULL, 0, NULL, 0, "{N}, but", "\"but\"");
    expect_reject(lx, NULL, 0, NULL, 0, "at least {N}", "\"least\"");
    expect_reject(lx, NULL, 0, NULL, 0, "slightly", "\"slightly\""); /* a dampener */
    /* modifiers that do not do what they are declared to do */
    expect_reject(lx, NULL, 0, negs, 1, "very", "negation \"very\"");
    expect_reject(lx, NULL, 0, boost, 1, "not", "booster \"not\"");
    expect_reject(lx, NULL, 0, but, 1, "and", "contrast word \"and\"");
    vader_free(lx);
}
END_TEST

/* ======================================================================== */
/* determinism and lengths                                                   */
/* ======================================================================== */

START_TEST(test_same_seed_same_bytes) {
    corpus_params p = defaults, q = defaults;
    corpus_buf a, b, c;
    p.seed = q.seed = 7;
    a = reviews(&p, 500);
    b = reviews(&q, 500);
    ck_assert_uint_eq(a.len, b.len);
    ck_assert(memcmp(a.p, b.p, a.len) == 0);
    q.seed = 8;
    c = reviews(&q, 500);
    ck_assert(c.len != a.len || memcmp(a.p, c.p, a.len) != 0);
    corpus_buf_free(&a);
    corpus_buf_free(&b);
    corpus_buf_free(&c);
}
END_TEST

/* A fixed review: the bytes must not change between machines or builds. */
START_TEST(test_golden_review) {
    corpus_params p = defaults;
    corpus_buf b = {NULL, 0, 0};
    corpus_review_info info;
    dpo_err e;
    info.sentences = NULL;
    info.cap = 0;
    ck_assert_msg(corpus_review(&p, 0, &b, &info, &e) == 0, "%s", e.msg);
    ck_assert_str_eq(b.p, GOLDEN_REVIEW_0);
    ck_assert_int_eq(info.rating, GOLDEN_RATING_0);
    corpus_buf_free(&b);
}
END_TEST

static void check_lengths(int min_words, int max_words) {
    corpus_params p = defaults;
    corpus_sentence sent[64];
    int i, smax = corpus_max_sentence_words(), shortest = 1 << 30, longest = 0;
    dpo_err e;
    p.min_words = min_words;
    p.max_words = max_words;
    for (i = 0; i < N_REVIEWS; i++) {
        corpus_buf b = {NULL, 0, 0};
        corpus_review_info info;
        int w, k, sum = 0;
        info.sentences = sent;
        info.cap = 64;
        ck_assert_msg(corpus_review(&p, (uint64_t)i, &b, &info, &e) == 0, "%s", e.msg);
        w = words_in(b.p, b.len);
        ck_assert_int_eq(w, info.words);
        ck_assert_msg(w >= min_words && w <= max_words, "review %d: %d words, want %d..%d: %s", i, w, min_words,
                      max_words, b.p);
        ck_assert(info.n_sentences <= 64);
        for (k = 0; k < info.n_sentences; k++) {
            ck_assert_int_le(sent[k].words, smax);
            ck_assert_int_eq(words_in(b.p + sent[k].start, sent[k].len), sent[k].words);
            sum += sent[k].words;
        }
        ck_assert_int_eq(sum, w);
        ck_assert(strchr(b.p, '\n') == NULL && strchr(b.p, '{') == NULL);
        if (w < shortest) shortest = w;
        if (w > longest) longest = w;
        corpus_buf_free(&b);
    }
    /* the whole range is used, not a narrow band of it */
    ck_assert_int_le(shortest, min_words + 3);
    ck_assert_int_ge(longest, max_words - 8);
}

START_TEST(test_word_counts_within_bounds) {
    corpus_params p = defaults;
    dpo_err e;
    int smax = corpus_max_sentence_words();
    check_lengths(25, 70);
    check_lengths(5, 5 + smax - 1);
    check_lengths(100, 160);
    p.min_words = 30;
    p.max_words = 30 + smax - 2;
    ck_assert_int_ne(corpus_params_check(&p, &e), 0);
    ck_assert(strstr(e.msg, "must exceed --min-words") != NULL);
    p.min_words = 0;
    p.max_words = 70;
    ck_assert_int_ne(corpus_params_check(&p, &e), 0);
}
END_TEST

/* ======================================================================== */
/* what VADER reads                                                          */
/* ======================================================================== */

/* Every opinion sentence, scored alone, has the sign the generator meant;
 * every neutral sentence scores exactly 0. About a third are neutral. */
START_TEST(test_sentence_signs_and_neutral_share) {
    vader_lexicon *lx = testutil_vader_shipped();
    corpus_params p = defaults;
    corpus_sentence sent[64];
    long neutral = 0, total = 0, negated = 0, contrast = 0, exclaim = 0, lean[2] = {0, 0};
    int i, k;
    dpo_err e;
    for (i = 0; i < N_REVIEWS; i++) {
        corpus_buf b = {NULL, 0, 0};
        corpus_review_info info;
        info.sentences = sent;
        info.cap = 64;
        ck_assert_msg(corpus_review(&p, (uint64_t)i, &b, &info, &e) == 0, "%s", e.msg);
        ck_assert(info.n_sentences - info.n_neutral >= 1); /* every review carries its rating */
        for (k = 0; k < info.n_sentences; k++) {
            vader_scores s;
            const char *t = b.p + sent[k].start;
            ck_assert_msg(vader_score(lx, t, sent[k].len, &s, &e) == 0, "%s", e.msg);
            if (sent[k].polarity == 0) {
                ck_assert_msg(s.compound == 0.0 && s.pos == 0.0 && s.neg == 0.0, "neutral sentence scores %g: %.*s",
                              s.compound, (int)sent[k].len, t);
                neutral++;
            } else {
                ck_assert_msg(sent[k].polarity > 0 ? s.compound > 0 : s.compound < 0,
                              "sentence meant %+d scores %g: %.*s", sent[k].polarity, s.compound, (int)sent[k].len, t);
            }
            total++;
            /* a phrasing that leans to one sign is only used with that sign */
            if (contains(t, sent[k].len, " turned out ") || contains(t, sent[k].len, "Overall, ") ||
                contains(t, sent[k].len, " performance")) {
                ck_assert_msg(sent[k].polarity > 0, "positive phrasing in a %+d sentence: %.*s", sent[k].polarity,
                              (int)sent[k].len, t);
                lean[0]++;
            }
            if (contains(t, sent[k].len, " came across as ") || contains(t, sent[k].len, "In the end, ") ||
                contains(t, sent[k].len, " movie.") || contains(t, sent[k].len, " movie!")) {
                ck_assert_msg(sent[k].polarity < 0, "negative phrasing in a %+d sentence: %.*s", sent[k].polarity,
                              (int)sent[k].len, t);
                lean[1]++;
            }
            if (memchr(t, '!', sent[k].len)) exclaim++;
            if (contains(t, sent[k].len, ", but ")) contrast++;
            if (contains(t, sent[k].len, "n't ") || contains(t, sent[k].len, " not ") ||
                contains(t, sent[k].len, " never "))
                negated++;
        }
        corpus_buf_free(&b);
    }
    /* stated: neutral 1/3 of draws (a little less: a review's last sentence is
     * an opinion when none was), so 0.28..0.36 */
    ck_assert_msg(neutral >= 0.28 * total && neutral <= 0.36 * total, "neutral share %g", (double)neutral / total);
    ck_assert_msg(negated > 0.05 * (total - neutral) && contrast > 0.1 * (total - neutral),
                  "negated %ld, contrast %ld of %ld opinion sentences", negated, contrast, total - neutral);
    ck_assert_msg(exclaim > 0 && exclaim < 0.05 * (total - neutral), "%ld sentences with '!'", exclaim);
    /* stated: half of the plain sentences (13/20 of the opinion ones) use their sign's own phrasings;
     * the three checked above are 3 of 5 on each side, so about 0.65 * 0.5 * 0.6 / 2 of
     * the opinion sentences each (0.0975): both sides used, alike */
    ck_assert_msg(lean[0] > 0.07 * (total - neutral) && lean[1] > 0.07 * (total - neutral) &&
                      lean[0] < 0.13 * (total - neutral) && lean[1] < 0.13 * (total - neutral),
                  "leaning phrasings: %ld positive, %ld negative of %ld opinion sentences", lean[0], lean[1],
                  total - neutral);
    vader_free(lx);
}
END_TEST

/* The reward rises with the rating, bucket by bucket, and averages 0.5. */
START_TEST(test_reward_follows_rating) {
    reward *r = NULL;
    corpus_params p = defaults;
    double sum[5] = {0}, all = 0;
    long n[5] = {0};
    int i, k;
    dpo_err e;
    ck_assert_msg(reward_open(&r, "sentiment", &e) == 0, "%s", e.msg);
    for (i = 0; i < N_REVIEWS; i++) {
        corpus_buf b = {NULL, 0, 0};
        corpus_review_info info;
        double x;
        info.sentences = NULL;
        info.cap = 0;
        ck_assert_msg(corpus_review(&p, (uint64_t)i, &b, &info, &e) == 0, "%s", e.msg);
        ck_assert(info.rating >= 1 && info.rating <= 10);
        ck_assert_msg(reward_score(r, "", 0, b.p, b.len, &x, &e) == 0, "%s", e.msg);
        sum[(info.rating - 1) / 2] += x;
        n[(info.rating - 1) / 2]++;
        all += x;
        corpus_buf_free(&b);
    }
    for (k = 0; k < 5; k++) {
        ck_assert_msg(n[k] > N_REVIEWS / 10, "bucket %d: %ld reviews", k, n[k]);
        sum[k] /= (double)n[k];
    }
    for (k = 1; k < 5; k++)
        ck_assert_msg(sum[k] > sum[k - 1] + 0.1, "ratings %d-%d: %g, not above %d-%d: %g", 2 * k + 1, 2 * k + 2,
                      sum[k], 2 * k - 1, 2 * k, sum[k - 1]);
    all /= N_REVIEWS;
    ck_assert_msg(fabs(all - 0.5) <= 0.05, "mean reward %g", all);
    reward_free(r);
}
END_TEST

/* ======================================================================== */
/* vocabulary and files                                                      */
/* ======================================================================== */

START_TEST(test_distinct_words) {
    corpus_params p = defaults;
    corpus_buf b = reviews(&p, N_REVIEWS);
    size_t n;
    dpo_err e;
    const char *t = "The plot, the PLOT. wasn't Wasn't! a";
    ck_assert_int_eq(corpus_distinct_words(t, strlen(t), &n, &e), 0);
    ck_assert_uint_eq(n, 4); /* the, plot, wasn't, a */
    ck_assert_int_eq(corpus_distinct_words("", 0, &n, &e), 0);
    ck_assert_uint_eq(n, 0);
    /* stated: 580..680 distinct words (620 in the default 30,000 reviews), so
     * that a BPE vocabulary of about 2,000 makes every word one token */
    ck_assert_int_eq(corpus_distinct_words(b.p, b.len, &n, &e), 0);
    ck_assert_msg(n >= 580 && n <= 680, "%zu distinct words", n);
    corpus_buf_free(&b);
}
END_TEST

static char *read_text(const char *dir, const char *name, size_t *n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return (char *)testutil_read_bytes(path, n);
}

START_TEST(test_write_files) {
    corpus_params p = defaults;
    corpus_stats st;
    char d1[128], d2[128];
    char *train, *held, *tsv, *held2, *train2, *line;
    size_t ntrain, nheld, ntsv, nheld2, ntrain2;
    corpus_buf b;
    long lines = 0;
    dpo_err e;
    snprintf(d1, sizeof d1, "%s/a", tmp_root);
    snprintf(d2, sizeof d2, "%s/b/c", tmp_root);
    ck_assert_msg(corpus_write(d1, &p, 300, 100, &st, &e) == 0, "%s", e.msg);
    ck_assert_msg(corpus_write(d2, &p, 500, 100, NULL, &e) == 0, "%s", e.msg);
    train = read_text(d1, "train.txt", &ntrain);
    held = read_text(d1, "heldout.txt", &nheld);
    tsv = read_text(d1, "ratings.tsv", &ntsv);
    held2 = read_text(d2, "heldout.txt", &nheld2);
    train2 = read_text(d2, "train.txt", &ntrain2);
    /* heldout = reviews 0..99, train = 100..299, one per line */
    b = reviews(&p, 300);
    ck_assert_uint_eq(nheld + ntrain, b.len);
    ck_assert(memcmp(held, b.p, nheld) == 0 && memcmp(train, b.p + nheld, ntrain) == 0);
    ck_assert_uint_eq(st.words, (size_t)words_in(b.p, b.len));
    ck_assert(st.neutral_sentences > 0 && st.opinion_sentences > st.neutral_sentences);
    /* the held-out reviews do not depend on --reviews; train extends */
    ck_assert(nheld2 == nheld && memcmp(held, held2, nheld) == 0);
    ck_assert(ntrain2 > ntrain && memcmp(train, train2, ntrain) == 0);
    /* ratings.tsv: header, 200 train rows, then 100 held-out rows */
    {
        char *grown = realloc(tsv, ntsv + 1);
        ck_assert(grown != NULL);
        tsv = grown;
    }
    tsv[ntsv] = '\0';
    ck_assert(strncmp(tsv, "line\tsplit\trating\n1\ttrain\t", 25) == 0);
    ck_assert(strstr(tsv, "\n200\ttrain\t") != NULL && strstr(tsv, "\n201\ttrain\t") == NULL);
    ck_assert(strstr(tsv, "\n1\theldout\t") != NULL && strstr(tsv, "\n100\theldout\t") != NULL);
    for (line = tsv; (line = strchr(line, '\n')) != NULL; line++) lines++;
    ck_assert_int_eq(lines, 301);
    ck_assert_int_ne(corpus_write(d1, &p, 100, 100, NULL, &e), 0);
    ck_assert(strstr(e.msg, "fewer than") != NULL);
    free(train);
    free(held);
    free(tsv);
    free(held2);
    free(train2);
    corpus_buf_free(&b);
}
END_TEST

static Suite *corpus_suite(void) {
    Suite *s = suite_create("corpus");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_builtin_tables_pass);
    tcase_add_test(tc, test_check_rejects_planted_entries);
    tcase_add_test(tc, test_same_seed_same_bytes);
    tcase_add_test(tc, test_golden_review);
    tcase_add_test(tc, test_word_counts_within_bounds);
    tcase_add_test(tc, test_sentence_signs_and_neutral_share);
    tcase_add_test(tc, test_reward_follows_rating);
    tcase_add_test(tc, test_distinct_words);
    tcase_add_test(tc, test_write_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(corpus_suite()); }
