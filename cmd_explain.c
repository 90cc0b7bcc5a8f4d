/* cmd_explain.c - owns `dpo explain`'s command line: its options, loading the
 * tokenizer, the two models and the row it names (through data.c), printing the
 * per-token table that explain.c computes (coloured on a terminal, plain
 * otherwise) and writing the --svg picture explain.c draws.
 * It must never compute a log-probability or a reward itself (explain.c does),
 * never print anything to standard output before every step that can fail has
 * succeeded, never write over an input file, and never touch the network. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data.h"
#include "explain.h"
#include "model.h"
#include "objective.h"
#include "tokenizer.h"
#include "util.h"

typedef struct {
    const char *model_dir, *ref_dir, *tok_dir, *data, *prompt, *response, *svg;
    int row; /* 1-based; 0 until given */
    int max_len, max_prompt_len, threads;
    double beta;
} explain_opts;

/* ======================================================================== */
/* options                                                                   */
/* ======================================================================== */

/* Returns 0 to go on, or the exit status: 0 after --help, 2 after a usage error. */
static int cmd_explain_parse(int argc, char **argv, explain_opts *o, int *stop) {
    int rc;
    opt_spec opts[] = {
        {"--model", OPT_STR, &o->model_dir, 0, 0, 1, "the policy: model directory (with its tokenizer files)", 0},
        {"--ref", OPT_STR, &o->ref_dir, 0, 0, 1, "the reference model directory (the model the policy was trained from)", 0},
        {"--data", OPT_STR, &o->data, 0, 0, 0, "JSONL rows: preference pairs {\"prompt\", \"chosen\", \"rejected\"}, or {\"prompt\", \"completion\"} / {\"text\"}", 0},
        {"--row", OPT_INT, &o->row, 1, 1 << 30, 0, "which row of --data, counting from 1 (blank lines skipped; default 1)", 0},
        {"--prompt", OPT_TEXT, &o->prompt, 0, 0, 0, "a prompt, with --response (instead of --data)", 0},
        {"--response", OPT_TEXT, &o->response, 0, 0, 0, "the response to explain, with --prompt", 0},
        {"--beta", OPT_DOUBLE, &o->beta, 0, 0, 0, "beta of the implicit reward, > 0 (default {default})", 0},
        {"--svg", OPT_STR, &o->svg, 0, 0, 0, "also draw the result as an SVG picture into this file (replaced atomically)", 0},
        {"--tokenizer", OPT_STR, &o->tok_dir, 0, 0, 0, "tokenizer directory (default: --model's)", 0},
        {"--max-len", OPT_INT, &o->max_len, 2, 1 << 20, 0, "as for dpo train (default {default})", 0},
        {"--max-prompt-len", OPT_INT, &o->max_prompt_len, 1, 1 << 20, 0, "as for dpo train (default {default})", 0},
        {"--threads", OPT_INT, &o->threads, 1, 1024, 0, "OpenMP threads (default: all)", 0},
    };
    *stop = 1;
    rc = cli_parse("explain", "usage: dpo explain --model DIR --ref DIR (--prompt TEXT --response TEXT | --data FILE [--row N])\n"
                   "                   [--beta B] [--svg FILE] [--tokenizer DIR] [--max-len N] [--max-prompt-len N]\n\n"
                   "Show where the implicit reward of a response lives. DPO's implicit reward is\n"
                   "  r(x, y) = beta * (log pi(y|x) - log pi_ref(y|x))\n"
                   "          = sum over the response tokens y_t of beta * (log pi(y_t|x,y_<t) - log pi_ref(y_t|x,y_<t)),\n"
                   "the end-of-text token that ends the response included, as dpo train and dpo logp\n"
                   "count it (prompt and response encoded separately, the same truncation). For each\n"
                   "token: its text, log pi, log pi_ref and its share beta * (log pi - log pi_ref),\n"
                   "coloured on a terminal (green: the policy likes the token more than the reference,\n"
                   "red: less; NO_COLOR turns colour off), a plain table otherwise; then the sums. For\n"
                   "a preference pair, both responses, the margin beta*h = r(chosen) - r(rejected) and\n"
                   "the pair's weight sigmoid(-beta*h) in the DPO gradient (see objective.c).",
                   argc, argv, opts, CLI_NOPTS(opts));
    if (rc != 0) return rc > 0 ? 0 : 2;
    *stop = 0;
    if (o->data && (o->prompt || o->response)) {
        fprintf(stderr, "dpo explain: give --data FILE or --prompt TEXT --response TEXT, not both\n");
        return 2;
    }
    if (!o->data && !(o->prompt && o->response)) {
        fprintf(stderr, "dpo explain: give --data FILE [--row N], or --prompt TEXT and --response TEXT\n");
        return 2;
    }
    if (o->row && !o->data) {
        fprintf(stderr, "dpo explain: --row needs --data FILE\n");
        return 2;
    }
    if (!(o->beta > 0.0)) {
        fprintf(stderr, "dpo explain: --beta must be > 0, got %g\n", o->beta);
        return 2;
    }
    if (!o->row) o->row = 1;
    return 0;
}

/* --svg must not be --data, nor lie in (or be) the model, reference or tokenizer
 * directory. Returns 0, or 2 after printing which input it is. */
static int cmd_explain_check_svg(const explain_opts *o) {
    const char *inputs[1], *dirs[3];
    inputs[0] = o->data;
    dirs[0] = o->model_dir;
    dirs[1] = o->ref_dir;
    dirs[2] = o->tok_dir;
    return cli_check_out_file("explain", "--svg", o->svg, inputs, 1, dirs, 3);
}

/* ======================================================================== */
/* printing                                                                  */
/* ======================================================================== */

/* characters of valid UTF-8 text (bytes that do not continue a sequence) */
static size_t cmd_explain_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80) n++;
    return n;
}

/* the width of a token's cell: <|endoftext|>, or its text in quotes with \" for a quote */
static size_t cmd_explain_cell_width(const explain_token *k) {
    size_t n;
    const char *s;
    if (k->eos) return cmd_explain_chars(k->text);
    n = 2 + cmd_explain_chars(k->text);
    for (s = k->text; *s; s++)
        if (*s == '"') n++;
    return n;
}

/* ANSI 256-colour backgrounds, five steps of |share| / scale each way, with a
 * foreground that stays readable on them */
static const int pos_bg[5] = {194, 157, 120, 77, 34}, pos_fg[5] = {16, 16, 16, 16, 231};
static const int neg_bg[5] = {224, 217, 210, 167, 124}, neg_fg[5] = {16, 16, 16, 231, 231};

static void cmd_explain_colour_on(double v, double scale) {
    double t = explain_intensity(v, scale);
    int level = (int)ceil(5.0 * fabs(t)) - 1;
    if (t == 0.0 || level < 0) return;
    if (level > 4) level = 4;
    if (t > 0) printf("\033[38;5;%d;48;5;%dm", pos_fg[level], pos_bg[level]);
    else printf("\033[38;5;%d;48;5;%dm", neg_fg[level], neg_bg[level]);
}

static void cmd_explain_colour_off(double v, double scale) {
    if (explain_intensity(v, scale) != 0.0) printf("\033[0m");
}

/* a token's cell, padded to width; coloured by its share when colour is on */
static void cmd_explain_print_cell(const explain_token *k, size_t width, double scale, int colour) {
    size_t w = cmd_explain_cell_width(k);
    const char *s;
    if (colour) cmd_explain_colour_on(k->reward, scale);
    if (k->eos) fputs(k->text, stdout);
    else {
        putchar('"');
        for (s = k->text; *s; s++) {
            if (*s == '"') putchar('\\');
            putchar(*s);
        }
        putchar('"');
    }
    if (colour) cmd_explain_colour_off(k->reward, scale);
    for (; w < width; w++) putchar(' ');
}

/* the response as running text, each token on its colour (terminal only) */
static void cmd_explain_print_flow(const explain_response *x, double scale) {
    int j;
    printf("  ");
    for (j = 0; j < x->n; j++) {
        cmd_explain_colour_on(x->tok[j].reward, scale);
        fputs(x->tok[j].text, stdout);
        cmd_explain_colour_off(x->tok[j].reward, scale);
        if (x->tok[j].newline && j + 1 < x->n) printf("\n  ");
    }
    printf("\n\n");
}

static void cmd_explain_print_response(const explain_result *r, const explain_response *x, int colour) {
    size_t width = 5, w;
    int j;
    for (j = 0; j < x->n; j++) {
        w = cmd_explain_cell_width(&x->tok[j]);
        if (w > width) width = w;
    }
    if (width > 30) width = 30; /* a longer token pushes its row's numbers right */
    printf("%s (%d token%s%s)\n", x->name, x->n, x->n == 1 ? "" : "s",
           x->cut ? "; cut by truncation: no end-of-text token" : "");
    if (colour) cmd_explain_print_flow(x, r->scale);
    printf("  %5s  %-*s  %10s  %10s  %10s\n", "#", (int)width, "token", "log pi", "log pi_ref", "share");
    for (j = 0; j < x->n; j++) {
        const explain_token *k = &x->tok[j];
        printf("  %5d  ", j + 1);
        cmd_explain_print_cell(k, width, r->scale, colour);
        printf("  %10.4f  %10.4f  ", k->logp, k->ref_logp);
        if (colour) cmd_explain_colour_on(k->reward, r->scale);
        printf("%+10.4f", k->reward);
        if (colour) cmd_explain_colour_off(k->reward, r->scale);
        printf("\n");
    }
    printf("  %5s  %-*s  %10.4f  %10.4f  %+10.4f\n", "", (int)width, "sum", x->logp, x->ref_logp, x->reward);
    printf("  reward(%s) = beta * (log pi(y|x) - log pi_ref(y|x)) = %g * (%.6f - (%.6f)) = %+.6f\n\n", x->name, r->beta,
           x->logp, x->ref_logp, x->reward);
}

/* what was explained: the models, the row, the prompt */
static void cmd_explain_print_head(const explain_opts *o, const explain_result *r, const data_set *d) {
    char a[8192], b[8192];
    int j;
    util_escape_text(a, sizeof a, o->model_dir);
    util_escape_text(b, sizeof b, o->ref_dir);
    printf("policy %s, reference %s, beta %g\n", a, b, r->beta);
    if (o->data) {
        util_escape_text(a, sizeof a, o->data);
        printf("%s: row %d of %d (line %ld), %s\n", a, o->row, d->n_rows, d->rows[o->row - 1].line,
               d->sft ? "a prompt and its completion" : "a preference pair");
    } else {
        printf("--prompt and --response: one response\n");
    }
    if (r->n_prompt == 1 && r->prompt[0].eos) {
        printf("prompt: empty, so the sequences start with <|endoftext|> (as in training)\n");
    } else {
        printf("prompt (%d token%s): \"", r->n_prompt, r->n_prompt == 1 ? "" : "s");
        for (j = 0; j < r->n_prompt; j++) {
            const char *s;
            for (s = r->prompt[j].text; *s; s++) {
                if (*s == '"') putchar('\\');
                putchar(*s);
            }
        }
        printf("\"\n");
    }
    if (r->truncated)
        printf("note: the row is longer than --max-len %d (or the models' context): as dpo train and dpo logp do,\n"
               "      the prompt keeps its last tokens (at most --max-prompt-len %d) and a response is cut to fit\n",
               o->max_len, o->max_prompt_len);
    printf("\nshare = beta * (log pi(y_t|x,y_<t) - log pi_ref(y_t|x,y_<t)): each token's part of the implicit reward\n\n");
}

static void cmd_explain_print(const explain_opts *o, const explain_result *r, const data_set *d, int colour) {
    int k;
    cmd_explain_print_head(o, r, d);
    for (k = 0; k < r->n_resp; k++) cmd_explain_print_response(r, &r->resp[k], colour);
    if (r->n_resp == 2) {
        printf("margin  beta*h = reward(chosen) - reward(rejected) = %+.6f - (%+.6f) = %+.6f\n", r->resp[0].reward,
               r->resp[1].reward, r->margin);
        printf("weight  sigmoid(-beta*h) = %.6f: the pair's weight in the DPO gradient, the probability the implicit\n"
               "        reward gives to the wrong order (near 0: already learnt, hardly pushed; near 1: pushed hardest)\n",
               r->weight);
    }
}

/* colour only on a terminal, and not when NO_COLOR is set (https://no-color.org) or TERM is dumb */
static int cmd_explain_colour(void) {
    const char *no = getenv("NO_COLOR"), *term = getenv("TERM");
    return isatty(1) && !(no && no[0]) && !(term && strcmp(term, "dumb") == 0);
}

/* ======================================================================== */
/* dpo explain                                                               */
/* ======================================================================== */

/* printf into a fresh buffer of the size it needs, *bytes; NULL when out of memory */
#if defined(__GNUC__)
static char *cmd_explain_strf(size_t *bytes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
static char *cmd_explain_strf(size_t *bytes, const char *fmt, ...) {
    va_list ap;
    char *s;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    *bytes = n < 0 ? 0 : (size_t)n + 1;
    if (n < 0 || !(s = malloc((size_t)n + 1))) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* The SVG picture, drawn in memory and written atomically; its caption names
 * what was explained. */
static int cmd_explain_write_svg(const explain_opts *o, const explain_result *r, dpo_err *e) {
    char *svg = NULL, *caption;
    size_t len, bytes;
    int rc;
    if (o->data)
        caption = cmd_explain_strf(&bytes, "policy %s, reference %s; %s row %d", o->model_dir, o->ref_dir, o->data,
                                   o->row);
    else
        caption = cmd_explain_strf(&bytes, "policy %s, reference %s; --prompt and --response", o->model_dir,
                                   o->ref_dir);
    if (!caption) return dpo_err_oom(e, "the picture's caption", bytes, 1);
    rc = explain_svg(r, caption, &svg, &len, e);
    free(caption);
    if (rc == 0) rc = util_atomic_write_file(o->svg, svg, len, e);
    free(svg);
    return rc;
}

int cmd_explain(int argc, char **argv) {
    explain_opts o;
    model pol, ref;
    tok_tokenizer *t = NULL;
    data_set d;
    explain_result r;
    dpo_err e;
    int rc, stop, eos;

    memset(&o, 0, sizeof o);
    o.beta = OBJ_DEFAULT_BETA;
    o.max_len = DATA_DEFAULT_MAX_LEN;
    o.max_prompt_len = DATA_DEFAULT_MAX_PROMPT_LEN;
    rc = cmd_explain_parse(argc, argv, &o, &stop);
    if (rc != 0 || stop) return rc;
    if (o.svg && cmd_explain_check_svg(&o) != 0) return 2;
    util_set_threads(o.threads);
    memset(&pol, 0, sizeof pol);
    memset(&ref, 0, sizeof ref);
    memset(&d, 0, sizeof d);
    memset(&r, 0, sizeof r);
    rc = 1;
    if (tok_load(&t, o.tok_dir ? o.tok_dir : o.model_dir, &e) != 0 || model_load(&pol, o.model_dir, &e) != 0 ||
        model_load(&ref, o.ref_dir, &e) != 0 || explain_check_models(&pol, &ref, t, &e) != 0)
        goto done;
    model_set_no_grad(&pol, 1);
    model_set_no_grad(&ref, 1);
    data_fit_lengths(&o.max_len, &o.max_prompt_len, pol.cfg.n_ctx);
    eos = tok_eot_id(t) >= 0 ? tok_eot_id(t) : pol.cfg.eos_token_id;
    if (o.data ? data_load_any(&d, o.data, t, eos, o.max_len, o.max_prompt_len, &e)
               : data_from_texts(&d, o.prompt, strlen(o.prompt), o.response, strlen(o.response), t, eos, o.max_len,
                                 o.max_prompt_len, &e))
        goto done;
    if (o.row > d.n_rows) {
        char name[4096];
        util_escape_text(name, sizeof name, o.data);
        fprintf(stderr, "dpo explain: --row %d is past the end of %s, which has %d row%s (--row counts from 1)\n", o.row,
                name, d.n_rows, d.n_rows == 1 ? "" : "s");
        rc = 2;
        goto done;
    }
    if (explain_row(&r, &pol, &ref, t, eos, &d, o.row - 1, o.beta, &e) != 0) goto done;
    if (!o.data) r.resp[0].name = "response";
    if (o.svg && cmd_explain_write_svg(&o, &r, &e) != 0) goto done;
    cmd_explain_print(&o, &r, &d, cmd_explain_colour());
    rc = 0;
done:
    if (rc == 1) cli_fail("explain", &e);
    explain_free(&r);
    data_free(&d);
    model_free(&pol);
    model_free(&ref);
    tok_free(t);
    return rc;
}
