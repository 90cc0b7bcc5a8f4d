/* cmd_sentiment.c - owns the command line of `dpo sentiment`: VADER's scores
 * (vader.c, through reward.c) of each line of a text file or each JSONL row,
 * printed as one JSON object per scored line.
 *
 * It must never print a score before the whole input has been read and
 * scored (a malformed row leaves no partial output), never write anywhere but
 * standard output and standard error, and never touch the rules of the
 * scores: those are vader.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "reward.h"
#include "util.h"

/* The scores of all lines, in input order. */
typedef struct {
    vader_scores *s; /* (n,) */
    size_t n, cap;
} score_list;

static int append_scores(score_list *l, const reward *r, const char *text, size_t len, dpo_err *e) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 256;
        vader_scores *q = nc > ((size_t)-1) / sizeof *q ? NULL : realloc(l->s, nc * sizeof *q);
        if (!q) return dpo_err_oom(e, "the scores", nc, sizeof *q);
        l->s = q;
        l->cap = nc;
    }
    if (reward_sentiment_details(r, text, len, &l->s[l->n], e) != 0) return -1;
    l->n++;
    return 0;
}

/* The text of one JSONL row: its "completion" string, else its "text" string. */
static int row_text(const json_value *row, const char **s, size_t *len, dpo_err *e) {
    const int has_c = json_get(row, "completion") != NULL, has_t = json_get(row, "text") != NULL;
    if (row->type != JSON_OBJECT) return dpo_errf(e, "not a JSON object");
    if (has_c && has_t) return dpo_errf(e, "both \"completion\" and \"text\" (give the one to score)");
    if (!has_c && !has_t) return dpo_errf(e, "missing key \"completion\" or \"text\"");
    return json_get_string(row, has_c ? "completion" : "text", s, len, e) == 0 ? 0 : -1;
}

/* Score every line of text[0..len) (name: the input, for messages). A line
 * ends at LF; the end of the input ends the last line, when it is not empty.
 * Plain lines: each is one text (a blank one is the empty text). JSONL lines:
 * blank ones (spaces, TABs, CR only) are skipped, the others are rows. */
static int score_lines(score_list *l, const reward *r, int jsonl, const char *name, const char *text, size_t len,
                       dpo_err *e) {
    const char *p = text, *end = text + len;
    long line = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *q;
        line++;
        if (!jsonl) {
            if (append_scores(l, r, p, (size_t)(le - p), e) != 0) return -1;
        } else {
            for (q = p; q < le && (*q == ' ' || *q == '\t' || *q == '\r'); q++) {}
            if (q < le) {
                json_value *row = NULL;
                const char *s;
                size_t slen;
                int rc;
                if (json_parse_line(p, (size_t)(le - p), name, line, &row, e) != 0) return -1;
                rc = row_text(row, &s, &slen, e);
                if (rc != 0) dpo_err_prefix(e, "%s: line %ld", name, line);
                else rc = append_scores(l, r, s, slen, e);
                json_free(row);
                if (rc != 0) return -1;
            }
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int cmd_sentiment(int argc, char **argv) {
    const char *file = NULL, *lexicon = NULL, *name;
    int jsonl = 0, rc;
    reward *r = NULL;
    char *text = NULL;
    size_t len, i;
    score_list l = {NULL, 0, 0};
    dpo_err e;
    opt_spec opts[] = {
        {"--jsonl", OPT_FLAG, &jsonl, 0, 0, 0,
         "input lines are JSON objects: score each row's \"completion\" string, or its \"text\"", 0},
        {"--lexicon", OPT_STR, &lexicon, 0, 0, 0,
         "a VADER lexicon file (token TAB valence per line) instead of the built-in one", 0},
        {"[FILE]", OPT_POS, &file, 0, 0, 0, "input file (default: standard input)", 0},
    };
    rc = cli_parse("sentiment", "usage: dpo sentiment [--jsonl] [--lexicon FILE] [FILE]\n\n"
                   "Score text with VADER (Hutto & Gilbert 2014, the rules of vaderSentiment 3.3.1,\n"
                   "lexicon built into dpo) and print one JSON object per scored line:\n"
                   "  neg, neu, pos  shares of negative, neutral and positive (3 decimals)\n"
                   "  compound       the normalised sum of the word valences, in [-1, 1] (4 decimals)\n"
                   "  reward         (compound + 1) / 2, in [0, 1]: the reward of dpo eval and pairs\n"
                   "Plain input: every line is one text, and a blank line is the empty text (all\n"
                   "four 0, reward 0.5), so output line N belongs to input line N. With --jsonl,\n"
                   "blank lines are skipped and every other line must be a JSON object with a\n"
                   "\"completion\" or a \"text\" string (not both). Everything is read and scored\n"
                   "before anything is printed: a malformed row is an error naming the file and\n"
                   "line, and nothing is printed. Invalid UTF-8 is scored, never rejected (each bad\n"
                   "byte is a character of its own). Emojis are not translated into words, as\n"
                   "upstream's emoji lexicon is not shipped.",
                   argc, argv, opts, CLI_NOPTS(opts));
    if (rc != 0) return rc > 0 ? 0 : 2;
    rc = lexicon ? reward_open_sentiment_file(&r, lexicon, &e) : reward_open(&r, "sentiment", &e);
    if (rc != 0) return cli_fail("sentiment", &e);
    if (cli_read_input(file, &text, &len, &e) != 0) {
        reward_free(r);
        return cli_fail("sentiment", &e);
    }
    name = file && strcmp(file, "-") != 0 ? file : "standard input";
    if (score_lines(&l, r, jsonl, name, text, len, &e) != 0) {
        rc = cli_fail("sentiment", &e);
    } else {
        static const char *const keys[5] = {"neg", "neu", "pos", "compound", "reward"};
        for (i = 0; i < l.n; i++) {
            const vader_scores *s = &l.s[i];
            const double v[5] = {s->neg, s->neu, s->pos, s->compound, reward_from_compound(s->compound)};
            int k;
            for (k = 0; k < 5; k++) {
                fputs(k ? ", " : "{", stdout);
                cli_put_num(stdout, keys[k], v[k]);
            }
            fputs("}\n", stdout);
        }
    }
    free(l.s);
    free(text);
    reward_free(r);
    return rc;
}
