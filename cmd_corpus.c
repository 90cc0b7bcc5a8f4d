/* cmd_corpus.c - owns the command line of `dpo corpus`: checks its options and
 * the output directory, runs the check of the grammar's words against the
 * VADER lexicon compiled into dpo, and writes the synthetic review corpus
 * (corpus.c) into the directory.
 *
 * It must never write before the word check and the directory check have
 * passed, never write anything but the three corpus files into --out, and
 * never decide what a review says: that is corpus.c's. */
#include <stdint.h>
#include <stdio.h>

#include "cli.h"
#include "corpus.h"
#include "util.h"
#include "vader.h"

int cmd_corpus(int argc, char **argv) {
    const char *out = NULL;
    int reviews = 30000, heldout = 3000, min_words = 25, max_words = 70, rc;
    uint64_t seed = 1;
    vader_lexicon *lx = NULL;
    corpus_params p;
    corpus_stats st;
    double t0;
    dpo_err e;
    static const char *const writes[] = {"train.txt", "heldout.txt", "ratings.tsv"};
    opt_spec opts[] = {
        {"--out", OPT_STR, &out, 0, 0, 1, "directory to write train.txt, heldout.txt and ratings.tsv into", 0},
        {"--reviews", OPT_INT, &reviews, 2, 100000000, 0, "reviews in all (default {default})", 0},
        {"--held-out", OPT_INT, &heldout, 1, 100000000, 0, "of them, held out in heldout.txt (default {default})", 0},
        {"--seed", OPT_U64, &seed, 0, 0, 0, "random seed (default {default})", 0},
        {"--min-words", OPT_INT, &min_words, 1, CORPUS_MAX_REVIEW_WORDS, 0, "fewest words in a review (default {default})",
         0},
        {"--max-words", OPT_INT, &max_words, 1, CORPUS_MAX_REVIEW_WORDS, 0, "most words in a review (default {default})",
         0},
    };
    rc = cli_parse("corpus",
                   "usage: dpo corpus --out DIR [--reviews N] [--held-out M] [--seed S] [--min-words A] [--max-words B]\n\n"
                   "Write a synthetic corpus of movie reviews, one per line: DIR/train.txt (N - M\n"
                   "reviews), DIR/heldout.txt (M reviews) and DIR/ratings.tsv (line, split and the\n"
                   "hidden rating 1-10 of every review). A stand-in for IMDb, which cannot be\n"
                   "downloaded here: a small grammar of plot sentences (names, places, things, none\n"
                   "of them carrying VADER valence) and opinion sentences (50 positive and 50\n"
                   "negative VADER words, negations, boosters, \"X, but Y\"), positive with a\n"
                   "probability set by the rating, so that VADER reads each review's sentiment.\n"
                   "Every word is checked against VADER's lexicon before anything is written. The\n"
                   "same seed gives the same bytes on every machine; the held-out reviews do not\n"
                   "depend on N. Any plain-text corpus (one text per line) can replace it.",
                   argc, argv, opts, CLI_NOPTS(opts));
    if (rc != 0) return rc > 0 ? 0 : 2;
    p.seed = seed;
    p.min_words = min_words;
    p.max_words = max_words;
    if (heldout >= reviews) {
        fprintf(stderr, "dpo corpus: --held-out (%d) must be fewer than --reviews (%d)\n", heldout, reviews);
        return 2;
    }
    if (corpus_params_check(&p, &e) != 0) {
        fprintf(stderr, "dpo corpus: %s\n", e.msg);
        return 2;
    }
    if (cli_check_out_dir("corpus", out, writes, 3, NULL) != 0) return 2;
    if (vader_load(&lx, (const char *)vader_embedded_lexicon, vader_embedded_lexicon_len, "the built-in VADER lexicon",
                   &e) != 0)
        return cli_fail("corpus", &e);
    rc = corpus_check(lx, &e);
    vader_free(lx);
    if (rc != 0) {
        dpo_err_prefix(&e, "the grammar's word tables");
        return cli_fail("corpus", &e);
    }
    t0 = util_seconds();
    if (corpus_write(out, &p, reviews, heldout, &st, &e) != 0) return cli_fail("corpus", &e);
    printf("wrote %s/train.txt (%d reviews), %s/heldout.txt (%d) and %s/ratings.tsv: %zu words, %zu distinct, "
           "%.1f%% of sentences neutral (%.2f s)\n",
           out, reviews - heldout, out, heldout, out, st.words, st.distinct_words,
           100.0 * (double)st.neutral_sentences / (double)(st.neutral_sentences + st.opinion_sentences),
           util_seconds() - t0);
    return 0;
}
