/* cmd_generate.c - owns the command lines of the commands that generate text:
 * dpo sample (completions of prompts), dpo eval (reward against exact KL from
 * a reference) and dpo pairs (preference pairs from scored samples). The
 * generation itself is sample.c's, the measures eval.c's, the reward reward.c's.
 * It must never write anywhere but standard output, standard error and the
 * --out file (written whole and atomically: a failed run leaves no partial
 * file), and never write over one of its inputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "data.h"
#include "model.h"
#include "eval.h"
#include "reward.h"
#include "sample.h"
#include "tokenizer.h"
#include "util.h"

/* ======================================================================== */
/* what the three commands share: options, models, prompts, output          */
/* ======================================================================== */

typedef struct {
    const char *model_dir, *ref_dir, *tok_dir, *prompt, *prompts_file, *out;
    sample_config c;
    int threads, max_prompt_len;
} gen_opts;

static void gen_defaults(gen_opts *g) {
    memset(g, 0, sizeof *g);
    g->c.filter.temperature = 1.0;
    g->c.filter.top_k = 0;
    g->c.filter.top_p = 1.0;
    g->c.seed = 0;
    g->c.n = 1;
    g->c.max_new = SAMPLE_DEFAULT_MAX_NEW;
    g->c.batch = SAMPLE_DEFAULT_BATCH;
    g->max_prompt_len = DATA_DEFAULT_MAX_PROMPT_LEN;
}

/* The sampling options, the same rows in every command's table. */
#define GEN_SAMPLING_OPTIONS(g)                                                                                       \
    {"--n", OPT_INT, &(g).c.n, 1, 1 << 20, 0, "samples per prompt (default {default})", 0},                           \
    {"--max-new", OPT_INT, &(g).c.max_new, 1, 1 << 20, 0,                                                             \
     "new tokens at most, the end-of-text included (default {default})", 0},                                          \
    {"--temperature", OPT_DOUBLE, &(g).c.filter.temperature, 0, 0, 0,                                                 \
     "divide the logits by T; 0 is greedy (default {default})", 0},                                                   \
    {"--top-k", OPT_INT, &(g).c.filter.top_k, 0, MODEL_MAX_VOCAB, 0,                                                  \
     "keep the K most likely tokens; 0: all (default {default})", 0},                                                 \
    {"--top-p", OPT_DOUBLE, &(g).c.filter.top_p, 0, 0, 0,                                                             \
     "keep the fewest most likely tokens whose mass reaches P; 1: all (default {default})", 0},                       \
    {"--seed", OPT_U64, &(g).c.seed, 0, 0, 0, "random seed (default {default})", 0},                                  \
    {"--batch", OPT_INT, &(g).c.batch, 1, 4096, 0,                                                                    \
     "sequences generated together (default {default}); the samples do not depend on it", 0},                         \
    {"--max-prompt-len", OPT_INT, &(g).max_prompt_len, 1, 1 << 20, 0,                                                 \
     "prompt tokens kept, the last ones (default {default}, at most the context - 1)", 0},                             \
    {"--threads", OPT_INT, &(g).threads, 1, 1024, 0, "OpenMP threads (default: all); the samples do not depend on it", 0}

/* Everything a generating command holds. */
typedef struct {
    const char *cmd;
    tok_tokenizer *t;
    model pol, ref;
    int has_ref, eos;
    data_texts texts;      /* the prompts (--prompts), or one row made from --prompt */
    int **ids, *n_ids;     /* (n_prompts) each prompt's tokens */
    long n_prompts;
    int n_cut;             /* prompts cut to --max-prompt-len */
    FILE *fp;              /* standard output or the --out temporary */
    util_atomic_file out;
    int atomic;
    double t0, last_report;
    int tty;
    reward *rw;            /* dpo sample --reward, or NULL */
} gen_session;

static void gen_free(gen_session *s) {
    long p;
    for (p = 0; s->ids && p < s->n_prompts; p++) free(s->ids[p]);
    free(s->ids);
    free(s->n_ids);
    data_texts_free(&s->texts);
    model_free(&s->pol);
    model_free(&s->ref);
    tok_free(s->t);
    reward_free(s->rw);
    if (s->atomic) util_atomic_abort(&s->out);
}

/* --out may not be one of the inputs, nor lie in a model or tokenizer directory. */
static int check_out_file(const char *cmd, const char *out, const gen_opts *g) {
    const char *inputs[1], *dirs[3];
    inputs[0] = g->prompts_file;
    dirs[0] = g->model_dir;
    dirs[1] = g->ref_dir;
    dirs[2] = g->tok_dir;
    return cli_check_out_file(cmd, "--out", out, inputs, 1, dirs, 3);
}

/* Load the tokenizer, the model (and the reference), and encode the prompts.
 * Everything is checked before any generation. Returns 0, or the exit status
 * after printing the problem. */
static int gen_load(gen_session *s, const gen_opts *g, int need_prompts) {
    dpo_err e;
    long p;
    int max_prompt = g->max_prompt_len, ctx;
    if (need_prompts && !g->prompt == !g->prompts_file) {
        fprintf(stderr, "dpo %s: give exactly one of --prompt TEXT and --prompts FILE\n", s->cmd);
        return 2;
    }
    if (g->out && check_out_file(s->cmd, g->out, g) != 0) return 2;
    util_set_threads(g->threads);
    if (tok_load(&s->t, g->tok_dir ? g->tok_dir : g->model_dir, &e) != 0 || model_load(&s->pol, g->model_dir, &e) != 0)
        return cli_fail(s->cmd, &e);
    model_set_no_grad(&s->pol, 1);
    if (g->ref_dir) {
        if (model_load(&s->ref, g->ref_dir, &e) != 0) return cli_fail(s->cmd, &e);
        model_set_no_grad(&s->ref, 1);
        s->has_ref = 1;
        if (s->ref.cfg.vocab_size != s->pol.cfg.vocab_size) {
            dpo_errf(&e, "%s has a vocabulary of %d tokens and %s of %d: they must be the same", g->model_dir,
                     s->pol.cfg.vocab_size, g->ref_dir, s->ref.cfg.vocab_size);
            return cli_fail(s->cmd, &e);
        }
    }
    if (tok_vocab_size(s->t) > s->pol.cfg.vocab_size) {
        dpo_errf(&e, "the tokenizer has %d tokens but the model only %d", tok_vocab_size(s->t), s->pol.cfg.vocab_size);
        return cli_fail(s->cmd, &e);
    }
    s->eos = tok_eot_id(s->t) >= 0 ? tok_eot_id(s->t) : s->pol.cfg.eos_token_id;
    if (!need_prompts) return 0;
    if (g->prompts_file) {
        if (data_load_texts(&s->texts, g->prompts_file, 0, &e) != 0) return cli_fail(s->cmd, &e);
    } else {
        s->texts.rows = calloc(1, sizeof *s->texts.rows);
        if (!s->texts.rows || !(s->texts.rows[0].prompt = malloc(strlen(g->prompt) + 1))) {
            dpo_err_oom(&e, "the prompt", sizeof *s->texts.rows + strlen(g->prompt) + 1, 1);
            return cli_fail(s->cmd, &e);
        }
        s->texts.n_rows = 1;
        memcpy(s->texts.rows[0].prompt, g->prompt, strlen(g->prompt) + 1);
        s->texts.rows[0].prompt_len = strlen(g->prompt);
    }
    ctx = s->pol.cfg.n_ctx;
    if (s->has_ref && s->ref.cfg.n_ctx < ctx) ctx = s->ref.cfg.n_ctx;
    if (max_prompt > ctx - 1) max_prompt = ctx - 1;
    if (max_prompt < 1) {
        dpo_errf(&e, "the model's context (%d) leaves no room for a prompt and a new token", ctx);
        return cli_fail(s->cmd, &e);
    }
    s->n_prompts = s->texts.n_rows;
    s->ids = calloc((size_t)s->n_prompts, sizeof *s->ids);
    s->n_ids = calloc((size_t)s->n_prompts, sizeof *s->n_ids);
    if (!s->ids || !s->n_ids) {
        dpo_err_oom(&e, "the prompts' token lists", (size_t)s->n_prompts, sizeof *s->ids + sizeof *s->n_ids);
        return cli_fail(s->cmd, &e);
    }
    for (p = 0; p < s->n_prompts; p++) {
        const data_text_row *r = &s->texts.rows[p];
        int rc = data_encode_prompt(s->t, r->prompt, r->prompt_len, s->eos, max_prompt, &s->ids[p], &s->n_ids[p], &e);
        if (rc < 0) {
            if (g->prompts_file) dpo_err_prefix(&e, "%s: line %ld", g->prompts_file, r->line);
            return cli_fail(s->cmd, &e);
        }
        s->n_cut += rc;
    }
    if (s->n_cut > 0)
        fprintf(stderr, "dpo %s: %d of %ld prompts were longer than %d tokens and keep their last %d\n", s->cmd,
                s->n_cut, s->n_prompts, max_prompt, max_prompt);
    return 0;
}

/* The output: the --out file (a temporary until gen_out_commit), or standard output. */
static int gen_out_open(gen_session *s, const char *out) {
    dpo_err e;
    s->fp = stdout;
    if (!out) return 0;
    if (util_atomic_open(&s->out, out, &e) != 0) return cli_fail(s->cmd, &e);
    s->atomic = 1;
    s->fp = s->out.fp;
    return 0;
}

static int gen_out_commit(gen_session *s) {
    dpo_err e;
    if (!s->atomic) return 0;
    s->atomic = 0;
    if (util_atomic_commit(&s->out, &e) != 0) return cli_fail(s->cmd, &e);
    return 0;
}

/* Progress on standard error, at most once a second (and at the end); tokens < 0: rows, not samples. */
static void gen_progress(void *ctx, long done, long total, long tokens) {
    gen_session *s = ctx;
    double now = util_seconds(), dt = now - s->t0;
    if (done != total && now - s->last_report < 1.0) return;
    s->last_report = now;
    if (tokens < 0) /* rows of given completions */
        fprintf(stderr, "%s%s: %ld/%ld rows, %.1f s%s", s->tty ? "\r" : "", s->cmd, done, total, dt,
                !s->tty || done == total ? "\n" : "");
    else
        fprintf(stderr, "%s%s: %ld/%ld samples, %ld tokens, %.0f tokens/s%s", s->tty ? "\r" : "", s->cmd, done, total,
                tokens, dt > 0 ? (double)tokens / dt : 0.0, !s->tty || done == total ? "\n" : "");
}

static void gen_start(gen_session *s) {
    s->t0 = util_seconds();
    s->last_report = s->t0;
    s->tty = isatty(2);
}

/* ======================================================================== */
/* dpo sample                                                                */
/* ======================================================================== */

static int emit_sample(void *ctx, const sample_result *r, dpo_err *e) {
    gen_session *s = ctx;
    const data_text_row *row = &s->texts.rows[r->prompt];
    char *text;
    size_t len;
    double rw = 0.0;
    int i;
    if (tok_decode(s->t, r->ids, (size_t)r->n_ids, &text, &len, e) != 0) return -1;
    if (s->rw && reward_score(s->rw, row->prompt, row->prompt_len, text, len, &rw, e) != 0) {
        free(text);
        return -1;
    }
    fputc('{', s->fp);
    cli_put_str(s->fp, "prompt", row->prompt, row->prompt_len);
    fputs(", ", s->fp);
    cli_put_str(s->fp, "completion", text, len);
    free(text);
    fprintf(s->fp, ", \"finish\": \"%s\"", r->finish == SAMPLE_EOS ? "eos" : "length");
    if (s->rw) {
        fputs(", ", s->fp);
        cli_put_num(s->fp, "reward", rw);
    }
    fputs(", \"ids\": [", s->fp);
    for (i = 0; i < r->n_ids; i++) fprintf(s->fp, "%s%d", i ? ", " : "", r->ids[i]);
    fputs("]}\n", s->fp);
    if (ferror(s->fp)) return dpo_errf(e, "write failed");
    return 0;
}

int cmd_sample(int argc, char **argv) {
    gen_opts g;
    gen_session s;
    dpo_err e;
    const char *reward_spec = NULL;
    int rc;
    gen_defaults(&g);
    {
        opt_spec opts[] = {
            {"--model", OPT_STR, &g.model_dir, 0, 0, 1, "model directory (with its tokenizer files)", 0},
            {"--prompt", OPT_TEXT, &g.prompt, 0, 0, 0, "one prompt (an empty one starts from end-of-text)", 0},
            {"--prompts", OPT_STR, &g.prompts_file, 0, 0, 0, "JSONL rows {\"prompt\": ...}, as in preference data", 0},
            {"--out", OPT_STR, &g.out, 0, 0, 0, "write the samples to FILE (default: standard output)", 0},
            {"--tokenizer", OPT_STR, &g.tok_dir, 0, 0, 0, "tokenizer directory (default: --model's)", 0},
            {"--reward", OPT_NAME, &reward_spec, 0, 0, 0, "add each sample's reward: sentiment (VADER) or model:DIR (a reward model from dpo rm-train)", 0},
            GEN_SAMPLING_OPTIONS(g),
        };
        rc = cli_parse("sample",
                       "usage: dpo sample --model DIR (--prompt TEXT | --prompts FILE) [--n K] [--max-new N]\n"
                       "                  [--temperature T] [--top-k K] [--top-p P] [--seed S] [--reward SPEC] [--out FILE]\n\n"
                       "Generate --n completions of every prompt with a key-value cache, --batch sequences\n"
                       "at a time. Each token is drawn from the model's next-token distribution after, in\n"
                       "this order, the temperature, top-k and top-p; a completion stops at end-of-text,\n"
                       "after --max-new tokens, or when the sequence fills the model's context. The same\n"
                       "seed gives the same samples for any --batch and --threads: sample k of prompt p\n"
                       "draws from its own random stream, a function of (seed, p, k).\n\n"
                       "Output: one JSON object per sample, prompt by prompt, {\"prompt\", \"completion\",\n"
                       "\"finish\": \"eos\" | \"length\", with --reward \"reward\", \"ids\": the completion's token ids without the\n"
                       "end-of-text}. Bytes that are not valid UTF-8 (a character cut between tokens)\n"
                       "appear as U+FFFD in \"completion\"; \"ids\" are exact. Progress and tokens/s go to\n"
                       "standard error.",
                       argc, argv, opts, CLI_NOPTS(opts));
    }
    if (rc != 0) return rc > 0 ? 0 : 2;
    memset(&s, 0, sizeof s);
    s.cmd = "sample";
    if (reward_spec && reward_open(&s.rw, reward_spec, &e) != 0) return cli_fail(s.cmd, &e);
    if ((rc = gen_load(&s, &g, 1)) != 0 || (rc = gen_out_open(&s, g.out)) != 0) {
        gen_free(&s);
        return rc;
    }
    g.c.eos = s.eos;
    gen_start(&s);
    if (sample_run(&s.pol, NULL, (const int *const *)s.ids, s.n_ids, s.n_prompts, &g.c, emit_sample, gen_progress, &s,
                   &e) != 0)
        rc = cli_fail(s.cmd, &e);
    else
        rc = gen_out_commit(&s);
    gen_free(&s);
    return rc;
}

/* ======================================================================== */
/* dpo eval                                                                  */
/* ======================================================================== */

typedef struct {
    gen_session *s;
    reward *rw;
    eval_summary sum;
    FILE *rows; /* per-sample rows (--out), or NULL */
} eval_run;

/* one per-sample row: {"prompt", "completion", "reward", "kl", "kl_sampled", "tokens"} */
static int put_eval_row(FILE *fp, const data_text_row *row, const char *text, size_t len, double rw, double kl,
                        double kls, int tokens, dpo_err *e) {
    fputc('{', fp);
    cli_put_str(fp, "prompt", row->prompt, row->prompt_len);
    fputs(", ", fp);
    cli_put_str(fp, "completion", text, len);
    fputs(", ", fp);
    cli_put_num(fp, "reward", rw);
    fputs(", ", fp);
    cli_put_num(fp, "kl", kl);
    fputs(", ", fp);
    cli_put_num(fp, "kl_sampled", kls);
    fprintf(fp, ", \"tokens\": %d}\n", tokens);
    return ferror(fp) ? dpo_errf(e, "write failed") : 0;
}

static int emit_eval(void *ctx, const sample_result *r, dpo_err *e) {
    eval_run *ev = ctx;
    gen_session *s = ev->s;
    char *text;
    size_t len;
    double rw;
    int rc;
    if (tok_decode(s->t, r->ids, (size_t)r->n_ids, &text, &len, e) != 0) return -1;
    rc = reward_score(ev->rw, s->texts.rows[r->prompt].prompt, s->texts.rows[r->prompt].prompt_len, text, len, &rw, e);
    if (rc == 0)
        rc = eval_summary_add(&ev->sum, rw, r->kl, r->kl_sampled, text, len, r->ids, r->n_ids,
                              r->finish == SAMPLE_LENGTH, e);
    if (rc == 0 && ev->rows)
        rc = put_eval_row(ev->rows, &s->texts.rows[r->prompt], text, len, rw, r->kl, r->kl_sampled, r->n_ids, e);
    free(text);
    return rc;
}

static void eval_progress_rows(void *ctx, int done, int total) {
    eval_run *ev = ctx;
    gen_progress(ev->s, done, total, -1);
}

static void eval_progress_samples(void *ctx, long done, long total, long tokens) {
    eval_run *ev = ctx;
    gen_progress(ev->s, done, total, tokens);
}

/* --completions: the KL along each given completion, its reward, in file order */
static int eval_given(eval_run *ev, const char *path, dpo_err *e) {
    gen_session *s = ev->s;
    data_set d;
    double *kl = NULL, *kls = NULL;
    int max_len = s->pol.cfg.n_ctx < s->ref.cfg.n_ctx ? s->pol.cfg.n_ctx : s->ref.cfg.n_ctx;
    int max_prompt = DATA_DEFAULT_MAX_PROMPT_LEN, r, rc = -1;
    memset(&d, 0, sizeof d);
    data_fit_lengths(&max_len, &max_prompt, max_len);
    if (data_load_texts(&s->texts, path, DATA_TEXT_COMPLETION, e) != 0 ||
        data_load_sft(&d, path, s->t, s->eos, max_len, max_prompt, e) != 0)
        goto done;
    if (d.n_rows != s->texts.n_rows) {
        dpo_errf(e, "%s: rows must be {\"prompt\", \"completion\"}", path);
        goto done;
    }
    kl = malloc((size_t)d.n_rows * sizeof *kl);
    kls = malloc((size_t)d.n_rows * sizeof *kls);
    if (!kl || !kls) {
        dpo_err_oom(e, "the completions' KL values", (size_t)d.n_rows, sizeof *kl + sizeof *kls);
        goto done;
    }
    if (eval_kl_along(&s->pol, &s->ref, &d, kl, kls, eval_progress_rows, ev, e) != 0) goto done;
    for (r = 0; r < d.n_rows; r++) {
        const data_text_row *row = &s->texts.rows[r];
        const int *ids = d.pool + d.rows[r].off + d.rows[r].n_prompt;
        int n = d.rows[r].n_chosen, ended = ids[n - 1] == s->eos;
        double rw;
        if (reward_score(ev->rw, row->prompt, row->prompt_len, row->completion, row->completion_len, &rw, e) != 0 ||
            eval_summary_add(&ev->sum, rw, kl[r], kls[r], row->completion, row->completion_len, ids, n - ended, !ended,
                             e) != 0 ||
            (ev->rows &&
             put_eval_row(ev->rows, row, row->completion, row->completion_len, rw, kl[r], kls[r], n - ended, e) != 0))
            goto done;
    }
    rc = 0;
done:
    free(kl);
    free(kls);
    data_free(&d);
    return rc;
}

static void put_eval_summary(const eval_summary *sum, const gen_opts *g, int given, const char *reward_spec) {
    eval_result o;
    eval_summary_result(sum, &o);
    printf("{\"n\": %ld, ", o.n);
    cli_put_num(stdout, "reward", o.reward);
    fputs(", ", stdout);
    cli_put_num(stdout, "reward_se", o.reward_se);
    fputs(", ", stdout);
    cli_put_num(stdout, "kl", o.kl);
    fputs(", ", stdout);
    cli_put_num(stdout, "kl_se", o.kl_se);
    fputs(", ", stdout);
    cli_put_num(stdout, "kl_sampled", o.kl_sampled);
    fputs(", ", stdout);
    cli_put_num(stdout, "exclaim", o.exclaim);
    fputs(", ", stdout);
    cli_put_num(stdout, "but", o.but);
    fputs(", ", stdout);
    cli_put_num(stdout, "length", o.length);
    fputs(", ", stdout);
    cli_put_num(stdout, "truncated", o.truncated);
    fputs(", ", stdout);
    cli_put_num(stdout, "distinct2", o.distinct2);
    fputs(", ", stdout);
    cli_put_str(stdout, "reward_name", reward_spec, strlen(reward_spec));
    if (given) {
        printf(", \"completions\": \"given\"}\n");
    } else {
        printf(", \"temperature\": %.9g, \"top_k\": %d, \"top_p\": %.9g, \"max_new\": %d, \"samples_per_prompt\": %d, "
               "\"seed\": %llu}\n",
               g->c.filter.temperature, g->c.filter.top_k, g->c.filter.top_p, g->c.max_new, g->c.n,
               (unsigned long long)g->c.seed);
    }
}

int cmd_eval(int argc, char **argv) {
    gen_opts g;
    gen_session s;
    eval_run ev;
    const char *completions = NULL, *reward_spec = "sentiment";
    dpo_err e;
    int rc;
    gen_defaults(&g);
    {
        opt_spec opts[] = {
            {"--model", OPT_STR, &g.model_dir, 0, 0, 1, "the policy: model directory (with its tokenizer files)", 0},
            {"--ref", OPT_STR, &g.ref_dir, 0, 0, 1, "the reference model the KL is measured from", 0},
            {"--prompt", OPT_TEXT, &g.prompt, 0, 0, 0, "one prompt to sample from", 0},
            {"--prompts", OPT_STR, &g.prompts_file, 0, 0, 0, "JSONL rows {\"prompt\": ...} to sample from", 0},
            {"--completions", OPT_STR, &completions, 0, 0, 0,
             "JSONL rows {\"prompt\", \"completion\"}: score these instead of sampling", 0},
            {"--reward", OPT_NAME, &reward_spec, 0, 0, 0, "the reward: sentiment (VADER, in [0, 1]) or model:DIR (a reward model from dpo rm-train, its score of prompt ++ completion) (default {default})", 0},
            {"--out", OPT_STR, &g.out, 0, 0, 0, "also write one JSON row per sample to FILE", 0},
            {"--tokenizer", OPT_STR, &g.tok_dir, 0, 0, 0, "tokenizer directory (default: --model's)", 0},
            GEN_SAMPLING_OPTIONS(g),
        };
        rc = cli_parse("eval",
                       "usage: dpo eval --model DIR --ref DIR (--prompts FILE | --prompt TEXT) [sampling options]\n"
                       "                [--reward sentiment|model:DIR] [--out FILE]\n"
                       "       dpo eval --model DIR --ref DIR --completions FILE [--reward sentiment|model:DIR] [--out FILE]\n\n"
                       "Sample from the policy (as dpo sample does) and measure each sample's reward and its\n"
                       "KL divergence from the reference, computed exactly over the vocabulary at every\n"
                       "generated position (the end-of-text included when the sample ended with it):\n"
                       "  kl         = sum_t sum_v q(v | x, y<t) (log q(v | x, y<t) - log ref(v | x, y<t))\n"
                       "  kl_sampled = sum_t log q(y_t | x, y<t) - log ref(y_t | x, y<t)   (its estimate)\n"
                       "q is the distribution the tokens were actually drawn from: the policy's after\n"
                       "--temperature, --top-k and --top-p; ref is the reference's own distribution at\n"
                       "temperature 1. With --completions, the given rows are scored instead (prompt and\n"
                       "completion encoded separately, then end-of-text, as in training) and q is the\n"
                       "policy's distribution at temperature 1, so any two models can be compared on the\n"
                       "same text.\n\n"
                       "Prints one JSON object: n, reward and kl (means) with reward_se and kl_se (standard\n"
                       "errors), kl_sampled, and what a reward can be gamed with: exclaim ('!' per sample),\n"
                       "but (the word \"but\" per sample: VADER weighs the clause after it more),\n"
                       "length (completion tokens, end-of-text excluded), truncated (rate of samples cut by\n"
                       "--max-new or the context) and distinct2 (distinct token bigrams / bigrams). --out\n"
                       "FILE adds one row per sample: {prompt, completion, reward, kl, kl_sampled, tokens}.",
                       argc, argv, opts, CLI_NOPTS(opts));
    }
    if (rc != 0) return rc > 0 ? 0 : 2;
    if (completions && (g.prompt || g.prompts_file)) {
        fprintf(stderr, "dpo eval: give --completions FILE or prompts to sample from, not both\n");
        return 2;
    }
    if (completions) g.prompts_file = completions; /* an input --out may not replace */
    memset(&s, 0, sizeof s);
    memset(&ev, 0, sizeof ev);
    s.cmd = "eval";
    ev.s = &s;
    eval_summary_init(&ev.sum);
    if ((rc = gen_load(&s, &g, !completions)) != 0) goto out;
    if (reward_open(&ev.rw, reward_spec, &e) != 0) {
        rc = cli_fail(s.cmd, &e);
        goto out;
    }
    if ((rc = gen_out_open(&s, g.out)) != 0) goto out;
    ev.rows = g.out ? s.fp : NULL;
    g.c.eos = s.eos;
    gen_start(&s);
    if (completions ? eval_given(&ev, completions, &e) != 0
                    : sample_run(&s.pol, &s.ref, (const int *const *)s.ids, s.n_ids, s.n_prompts, &g.c, emit_eval,
                                 eval_progress_samples, &ev, &e) != 0) {
        rc = cli_fail(s.cmd, &e);
        goto out;
    }
    if ((rc = gen_out_commit(&s)) != 0) goto out;
    put_eval_summary(&ev.sum, &g, completions != NULL, reward_spec);
out:
    reward_free(ev.rw);
    eval_summary_free(&ev.sum);
    gen_free(&s);
    return rc;
}

/* ======================================================================== */
/* dpo pairs                                                                 */
/* ======================================================================== */

typedef struct {
    gen_session *s;
    reward *rw;
    int k;                 /* samples per prompt */
    char **text;           /* (k) this prompt's completions */
    size_t *len;           /* (k) */
    double *score;         /* (k) */
    int *chosen, *rejected; /* (k (k - 1) / 2) */
    long n_pairs, n_empty; /* pairs written; prompts that gave none */
} pairs_run;

/* Write the pairs of one prompt's k scored completions. */
static int put_pairs(pairs_run *pr, FILE *fp, const char *prompt, size_t prompt_len, char *const *text,
                     const size_t *len, const double *score, int k, dpo_err *e) {
    int n = eval_pairs(pr->chosen, pr->rejected, score, k), i;
    for (i = 0; i < n; i++) {
        fputc('{', fp);
        cli_put_str(fp, "prompt", prompt, prompt_len);
        fputs(", ", fp);
        cli_put_str(fp, "chosen", text[pr->chosen[i]], len[pr->chosen[i]]);
        fputs(", ", fp);
        cli_put_str(fp, "rejected", text[pr->rejected[i]], len[pr->rejected[i]]);
        fputs("}\n", fp);
    }
    pr->n_pairs += n;
    pr->n_empty += n == 0;
    return ferror(fp) ? dpo_errf(e, "write failed") : 0;
}

static int emit_pairs(void *ctx, const sample_result *r, dpo_err *e) {
    pairs_run *pr = ctx;
    gen_session *s = pr->s;
    const data_text_row *row = &s->texts.rows[r->prompt];
    int i = (int)r->index, rc = 0;
    if (tok_decode(s->t, r->ids, (size_t)r->n_ids, &pr->text[i], &pr->len[i], e) != 0) return -1;
    if (reward_score(pr->rw, row->prompt, row->prompt_len, pr->text[i], pr->len[i], &pr->score[i], e) != 0) return -1;
    if (i < pr->k - 1) return 0;
    rc = put_pairs(pr, s->fp, row->prompt, row->prompt_len, pr->text, pr->len, pr->score, pr->k, e);
    for (i = 0; i < pr->k; i++) {
        free(pr->text[i]);
        pr->text[i] = NULL;
    }
    return rc;
}

static void pairs_progress(void *ctx, long done, long total, long tokens) {
    pairs_run *pr = ctx;
    gen_progress(pr->s, done, total, tokens);
}

/* A --scored file's rows grouped by prompt: sorted by (prompt bytes, line),
 * then the groups ordered by their first line. */
#define PAIRS_MAX_GROUP 4096 /* completions of one prompt: up to 8 M pairs */

typedef struct {
    const char *prompt;
    size_t len;
    long line;
    int row;
} scored_key;

static int by_prompt_then_line(const void *a, const void *b) {
    const scored_key *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->prompt, y->prompt, n);
    if (c != 0) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

typedef struct {
    int start, count; /* into the sorted keys */
    long first_line;
} scored_group;

static int by_first_line(const void *a, const void *b) {
    const scored_group *x = a, *y = b;
    return x->first_line < y->first_line ? -1 : x->first_line > y->first_line;
}

/* --scored: pairs from rows {"prompt", "completion", "reward"}, every group of
 * rows with the same prompt taken as that prompt's samples */
static int pairs_scored(pairs_run *pr, const data_texts *tx, const char *path, FILE *fp, dpo_err *e) {
    int n = tx->n_rows, n_groups = 0, i, j, rc = -1;
    scored_key *key = malloc((size_t)n * sizeof *key);
    scored_group *grp = malloc((size_t)n * sizeof *grp);
    char **text = malloc(PAIRS_MAX_GROUP * sizeof *text);
    size_t *len = malloc(PAIRS_MAX_GROUP * sizeof *len);
    double *score = malloc(PAIRS_MAX_GROUP * sizeof *score);
    int most = 1; /* the largest group: room for its pairs */
    if (!key || !grp || !text || !len || !score) {
        dpo_err_oom(e, "the prompt groups",
                    (size_t)n * (sizeof *key + sizeof *grp) +
                        PAIRS_MAX_GROUP * (sizeof *text + sizeof *len + sizeof *score),
                    1);
        goto done;
    }
    for (i = 0; i < n; i++) {
        const data_text_row *r = &tx->rows[i];
        if (!isfinite(r->reward)) {
            dpo_errf(e, "%s: line %ld: \"reward\" is not a finite number", path, r->line);
            goto done;
        }
        key[i].prompt = r->prompt;
        key[i].len = r->prompt_len;
        key[i].line = r->line;
        key[i].row = i;
    }
    qsort(key, (size_t)n, sizeof *key, by_prompt_then_line);
    for (i = 0; i < n; i = j) {
        for (j = i + 1; j < n && key[j].len == key[i].len && memcmp(key[j].prompt, key[i].prompt, key[i].len) == 0;
             j++) {}
        if (j - i > PAIRS_MAX_GROUP) {
            dpo_errf(e, "%s: the prompt of line %ld has %d completions; at most %d per prompt", path, key[i].line,
                     j - i, PAIRS_MAX_GROUP);
            goto done;
        }
        if (j - i > most) most = j - i;
        grp[n_groups].start = i;
        grp[n_groups].count = j - i;
        grp[n_groups++].first_line = key[i].line;
    }
    qsort(grp, (size_t)n_groups, sizeof *grp, by_first_line);
    pr->chosen = malloc(((size_t)most * (size_t)(most - 1) / 2 + 1) * sizeof(int));
    pr->rejected = malloc(((size_t)most * (size_t)(most - 1) / 2 + 1) * sizeof(int));
    if (!pr->chosen || !pr->rejected) {
        char what[96];
        snprintf(what, sizeof what, "the pairs of %d completions of one prompt", most);
        dpo_err_oom(e, what, 2 * ((size_t)most * (size_t)(most - 1) / 2 + 1), sizeof(int));
        goto done;
    }
    for (i = 0; i < n_groups; i++) {
        const data_text_row *first = &tx->rows[key[grp[i].start].row];
        for (j = 0; j < grp[i].count; j++) {
            const data_text_row *r = &tx->rows[key[grp[i].start + j].row];
            text[j] = r->completion;
            len[j] = r->completion_len;
            score[j] = r->reward;
        }
        if (put_pairs(pr, fp, first->prompt, first->prompt_len, text, len, score, grp[i].count, e) != 0) goto done;
    }
    rc = 0;
done:
    free(key);
    free(grp);
    free(text);
    free(len);
    free(score);
    return rc;
}

int cmd_pairs(int argc, char **argv) {
    gen_opts g;
    gen_session s;
    pairs_run pr;
    const char *scored = NULL, *reward_spec = "sentiment";
    dpo_err e;
    int rc, k;
    gen_defaults(&g);
    g.c.n = 4;
    {
        opt_spec opts[] = {
            {"--model", OPT_STR, &g.model_dir, 0, 0, 0, "model directory to sample from (with its tokenizer files)", 0},
            {"--prompts", OPT_STR, &g.prompts_file, 0, 0, 0, "JSONL rows {\"prompt\": ...} to sample from", 0},
            {"--prompt", OPT_TEXT, &g.prompt, 0, 0, 0, "one prompt to sample from", 0},
            {"--scored", OPT_STR, &scored, 0, 0, 0,
             "JSONL rows {\"prompt\", \"completion\", \"reward\"} from any scorer, instead of sampling", 0},
            {"--reward", OPT_NAME, &reward_spec, 0, 0, 0, "the reward of samples: sentiment (VADER) or model:DIR (a reward model from dpo rm-train) (default {default})", 0},
            {"--out", OPT_STR, &g.out, 0, 0, 1, "the pairs, JSONL {\"prompt\", \"chosen\", \"rejected\"}", 0},
            {"--tokenizer", OPT_STR, &g.tok_dir, 0, 0, 0, "tokenizer directory (default: --model's)", 0},
            GEN_SAMPLING_OPTIONS(g),
        };
        rc = cli_parse("pairs",
                       "usage: dpo pairs --model DIR --prompts FILE [--n K] --reward sentiment|model:DIR --out FILE\n"
                       "                 [sampling options]\n"
                       "       dpo pairs --scored FILE --out FILE\n\n"
                       "Preference pairs from samples, ready for dpo train: each prompt's --n samples (drawn\n"
                       "as dpo sample draws them) are scored with the reward, and every two of them with\n"
                       "different rewards make one pair {prompt, chosen: the higher, rejected: the lower}\n"
                       "(K samples give up to K (K - 1) / 2 pairs; ties give none). With --scored, the rows\n"
                       "that share a prompt are that prompt's samples, with the rewards given (a person's or\n"
                       "another model's). Pairs come out prompt by prompt, in input order; a summary goes to\n"
                       "standard error.",
                       argc, argv, opts, CLI_NOPTS(opts));
    }
    if (rc != 0) return rc > 0 ? 0 : 2;
    if (!scored == !g.model_dir) {
        fprintf(stderr, "dpo pairs: give --model DIR with prompts to sample from, or --scored FILE\n");
        return 2;
    }
    if (scored && (g.prompt || g.prompts_file)) {
        fprintf(stderr, "dpo pairs: --scored FILE takes no prompts\n");
        return 2;
    }
    memset(&s, 0, sizeof s);
    memset(&pr, 0, sizeof pr);
    s.cmd = "pairs";
    pr.s = &s;
    if (scored) {
        g.prompts_file = scored;
        if ((rc = check_out_file(s.cmd, g.out, &g)) != 0) return rc;
        if (data_load_texts(&s.texts, scored, DATA_TEXT_COMPLETION | DATA_TEXT_REWARD, &e) != 0) {
            rc = cli_fail(s.cmd, &e);
            goto out;
        }
        if ((rc = gen_out_open(&s, g.out)) != 0) goto out;
        if (pairs_scored(&pr, &s.texts, scored, s.fp, &e) != 0) {
            rc = cli_fail(s.cmd, &e);
            goto out;
        }
    } else {
        if ((rc = gen_load(&s, &g, 1)) != 0) goto out;
        if (reward_open(&pr.rw, reward_spec, &e) != 0) {
            rc = cli_fail(s.cmd, &e);
            goto out;
        }
        if (g.c.n > PAIRS_MAX_GROUP) {
            fprintf(stderr, "dpo pairs: --n must be at most %d\n", PAIRS_MAX_GROUP);
            rc = 2;
            goto out;
        }
        k = pr.k = g.c.n;
        pr.text = calloc((size_t)k, sizeof *pr.text);
        pr.len = calloc((size_t)k, sizeof *pr.len);
        pr.score = calloc((size_t)k, sizeof *pr.score);
        pr.chosen = malloc(((size_t)k * (size_t)(k - 1) / 2 + 1) * sizeof(int));
        pr.rejected = malloc(((size_t)k * (size_t)(k - 1) / 2 + 1) * sizeof(int));
        if (!pr.text || !pr.len || !pr.score || !pr.chosen || !pr.rejected) {
            dpo_err_oom(&e, "the pairs of one prompt",
                        (size_t)k * (sizeof *pr.text + sizeof *pr.len + sizeof *pr.score) +
                            2 * ((size_t)k * (size_t)(k - 1) / 2 + 1) * sizeof(int),
                        1);
            rc = cli_fail(s.cmd, &e);
            goto out;
        }
        if ((rc = gen_out_open(&s, g.out)) != 0) goto out;
        g.c.eos = s.eos;
        gen_start(&s);
        if (sample_run(&s.pol, NULL, (const int *const *)s.ids, s.n_ids, s.n_prompts, &g.c, emit_pairs,
                       pairs_progress, &pr, &e) != 0) {
            rc = cli_fail(s.cmd, &e);
            goto out;
        }
    }
    if ((rc = gen_out_commit(&s)) != 0) goto out;
    fprintf(stderr, "dpo pairs: %ld pairs written to %s; %ld prompts gave none (all rewards equal)\n", pr.n_pairs,
            g.out, pr.n_empty);
out:
    if (pr.text)
        for (k = 0; k < pr.k; k++) free(pr.text[k]);
    free(pr.text);
    free(pr.len);
    free(pr.score);
    free(pr.chosen);
    free(pr.rejected);
    reward_free(pr.rw);
    gen_free(&s);
    return rc;
}
