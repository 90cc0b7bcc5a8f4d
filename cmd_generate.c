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
    if (s->atomic) util_atomic_abort(&s->out);
}

/* --out may not be one of the inputs, nor lie in a model or tokenizer directory. */
static int check_out_file(const char *cmd, const char *out, const gen_opts *g) {
    const char *inputs[2], *dirs[3];
    char parent[4096];
    int i;
    inputs[0] = g->prompts_file;
    inputs[1] = NULL;
    dirs[0] = g->model_dir;
    dirs[1] = g->ref_dir;
    dirs[2] = g->tok_dir;
    for (i = 0; i < 2; i++)
        if (inputs[i] && util_same_file(out, inputs[i])) {
            fprintf(stderr, "dpo %s: --out %s is the input file %s; give another path\n", cmd, out, inputs[i]);
            return 2;
        }
    if (util_parent_dir(parent, sizeof parent, out) != 0) {
        fprintf(stderr, "dpo %s: --out %s: path too long\n", cmd, out);
        return 2;
    }
    for (i = 0; i < 3; i++)
        if (dirs[i] && (util_same_file(parent, dirs[i]) || util_same_file(out, dirs[i]))) {
            fprintf(stderr, "dpo %s: --out %s lies in the model or tokenizer directory %s; give another path\n", cmd,
                    out, dirs[i]);
            return 2;
        }
    return 0;
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
            dpo_errf(&e, "out of memory");
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
        dpo_errf(&e, "out of memory");
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

/* Progress on standard error, at most once a second (and at the end). */
static void gen_progress(void *ctx, long done, long total, long tokens) {
    gen_session *s = ctx;
    double now = util_seconds(), dt = now - s->t0;
    if (done != total && now - s->last_report < 1.0) return;
    s->last_report = now;
    fprintf(stderr, "%s%s: %ld/%ld samples, %ld tokens, %.0f tokens/s%s", s->tty ? "\r" : "", s->cmd, done, total,
            tokens, dt > 0 ? (double)tokens / dt : 0.0, !s->tty || done == total ? "\n" : "");
}

static void gen_start(gen_session *s) {
    s->t0 = util_seconds();
    s->last_report = s->t0;
    s->tty = isatty(2);
}

/* "key": the text of the tokens ids[0..n) (invalid UTF-8 shown as U+FFFD) */
static int put_decoded(gen_session *s, const char *key, const int *ids, int n, dpo_err *e) {
    char *text;
    size_t len;
    if (tok_decode(s->t, ids, (size_t)n, &text, &len, e) != 0) return -1;
    cli_put_str(s->fp, key, text, len);
    free(text);
    return 0;
}

/* ======================================================================== */
/* dpo sample                                                                */
/* ======================================================================== */

static int emit_sample(void *ctx, const sample_result *r, dpo_err *e) {
    gen_session *s = ctx;
    const data_text_row *row = &s->texts.rows[r->prompt];
    int i;
    fputc('{', s->fp);
    cli_put_str(s->fp, "prompt", row->prompt, row->prompt_len);
    fputs(", ", s->fp);
    if (put_decoded(s, "completion", r->ids, r->n_ids, e) != 0) return -1;
    fprintf(s->fp, ", \"finish\": \"%s\", \"ids\": [", r->finish == SAMPLE_EOS ? "eos" : "length");
    for (i = 0; i < r->n_ids; i++) fprintf(s->fp, "%s%d", i ? ", " : "", r->ids[i]);
    fputs("]}\n", s->fp);
    if (ferror(s->fp)) return dpo_errf(e, "write failed");
    return 0;
}

int cmd_sample(int argc, char **argv) {
    gen_opts g;
    gen_session s;
    dpo_err e;
    int rc;
    gen_defaults(&g);
    {
        opt_spec opts[] = {
            {"--model", OPT_STR, &g.model_dir, 0, 0, 1, "model directory (with its tokenizer files)", 0},
            {"--prompt", OPT_TEXT, &g.prompt, 0, 0, 0, "one prompt (an empty one starts from end-of-text)", 0},
            {"--prompts", OPT_STR, &g.prompts_file, 0, 0, 0, "JSONL rows {\"prompt\": ...}, as in preference data", 0},
            {"--out", OPT_STR, &g.out, 0, 0, 0, "write the samples to FILE (default: standard output)", 0},
            {"--tokenizer", OPT_STR, &g.tok_dir, 0, 0, 0, "tokenizer directory (default: --model's)", 0},
            GEN_SAMPLING_OPTIONS(g),
        };
        rc = cli_parse("sample",
                       "usage: dpo sample --model DIR (--prompt TEXT | --prompts FILE) [--n K] [--max-new N]\n"
                       "                  [--temperature T] [--top-k K] [--top-p P] [--seed S] [--out FILE]\n\n"
                       "Generate --n completions of every prompt with a key-value cache, --batch sequences\n"
                       "at a time. Each token is drawn from the model's next-token distribution after, in\n"
                       "this order, the temperature, top-k and top-p; a completion stops at end-of-text,\n"
                       "after --max-new tokens, or when the sequence fills the model's context. The same\n"
                       "seed gives the same samples for any --batch and --threads: sample k of prompt p\n"
                       "draws from its own random stream, a function of (seed, p, k).\n\n"
                       "Output: one JSON object per sample, prompt by prompt, {\"prompt\", \"completion\",\n"
                       "\"finish\": \"eos\" | \"length\", \"ids\": the completion's token ids without the\n"
                       "end-of-text}. Bytes that are not valid UTF-8 (a character cut between tokens)\n"
                       "appear as U+FFFD in \"completion\"; \"ids\" are exact. Progress and tokens/s go to\n"
                       "standard error.",
                       argc, argv, opts, CLI_NOPTS(opts));
    }
    if (rc != 0) return rc > 0 ? 0 : 2;
    memset(&s, 0, sizeof s);
    s.cmd = "sample";
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
