/* dpo.c - owns the command line: parsing and checking options, the subcommands,
 * and printing results and errors. This is the only layer that prints or exits.
 * It must never call the network or a shell; it reads and writes only the files
 * the user names.
 *
 * Subcommands (see `dpo --help`):
 *   train  DPO (and its variants and baselines) on preference pairs: train.c
 *   sft    supervised fine-tuning, the same loop: train.c
 *   rm-train  a reward model (scalar head, Bradley-Terry loss), the same loop: train.c
 *   ppo    PPO, RLHF's reinforcement-learning step: cmd_ppo.c, ppo_train.c, ppo.c
 *   logp   log-probabilities and implicit rewards of pairs
 *   init   write a freshly initialised GPT-2 model directory
 *   info   load and validate a model directory, print its config and tensors
 *   encode, decode, tokenizer-train: the tokenizer (tokenizer.c)
 * Newer subcommands live in files of their own; what all of them share (the
 * option tables and their parser, JSON output) is in cli.c:
 *   sample, eval, pairs  generation, reward against exact KL, pairs: cmd_generate.c
 *   sentiment            VADER scores: cmd_sentiment.c
 *   explain              the implicit reward token by token: cmd_explain.c
 *   corpus               the synthetic movie reviews: cmd_corpus.c
 *   plot                 a TSV table as an SVG chart: cmd_plot.c
 *   bench                how fast this build is on this CPU: cmd_bench.c
 *   selftest             this build checked on this CPU: cmd_selftest.c, selftest.c
 *
 * The DPO objective, with its derivation, is in objective.c; the training loop
 * in train.c. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "model.h"
#include "json.h"
#include "matmul.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "train.h"
#include "util.h"

#define DPO_VERSION "0.1.0"

/* ======================================================================== */
/* dpo init                                                                  */
/* ======================================================================== */

static int cmd_init(int argc, char **argv) {
    const char *out = NULL, *tok_dir = NULL;
    model_config c;
    uint64_t seed = 1337;
    double init_std = 0.02;
    model m;
    tok_tokenizer *t = NULL;
    dpo_err e;
    int rc;
    opt_spec opts[] = {
        {"--out", OPT_STR, &out, 0, 0, 1, "directory to write (created if missing)", 0},
        {"--layers", OPT_INT, &c.n_layer, 1, MODEL_MAX_LAYERS, 1, "transformer blocks (n_layer)", 0},
        {"--heads", OPT_INT, &c.n_head, 1, MODEL_MAX_HEADS, 1, "attention heads (n_head)", 0},
        {"--dim", OPT_INT, &c.n_embd, 1, MODEL_MAX_EMBD, 1, "embedding width (n_embd), a multiple of --heads", 0},
        {"--ctx", OPT_INT, &c.n_ctx, 1, MODEL_MAX_CTX, 1, "maximum sequence length (n_positions)", 0},
        {"--vocab", OPT_INT, &c.vocab_size, 1, MODEL_MAX_VOCAB, 0, "vocabulary size (default: the --tokenizer's)", 0},
        {"--tokenizer", OPT_STR, &tok_dir, 0, 0, 0, "copy this tokenizer (vocab.json + merges.txt) into the model directory", 0},
        {"--seed", OPT_U64, &seed, 0, 0, 0, "random seed (default 1337)", 0},
        {"--init-std", OPT_DOUBLE, &init_std, 0, 0, 0,
         "standard deviation of the weights (default 0.02, GPT-2's; in (0, 1]); a larger one "
         "shortens the plateau a small model spends before it learns long-range dependencies", 0},
    };
    memset(&c, 0, sizeof c);
    rc = cli_parse("init", "usage: dpo init --out DIR --layers L --heads H --dim C --ctx N\n"
                       "                (--vocab V | --tokenizer DIR) [--seed S] [--init-std X]\n\n"
                       "Write a GPT-2 model directory (config.json + model.safetensors, and the\n"
                       "tokenizer files with --tokenizer) with GPT-2's initialisation: weights\n"
                       "normal(0, 0.02) (0.02: --init-std), residual projections scaled by 1/sqrt(2L),\n"
                       "LayerNorm weight 1 and bias 0, biases 0. GPT-2 124M is --layers 12 --heads 12 --dim 768\n"
                       "--ctx 1024 --tokenizer data/gpt2 (vocabulary 50257).",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]));
    if (rc != 0) return rc > 0 ? 0 : 2;
    if (!(init_std > 0.0 && init_std <= 1.0)) {
        fprintf(stderr, "dpo init: --init-std %g must be in (0, 1]\n", init_std);
        return 2;
    }
    {
        static const char *const writes[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt"};
        if (cli_check_out_dir("init", out, writes, 4, tok_dir) != 0) return 2;
    }
    c.eos_token_id = -1;
    if (tok_dir) {
        int n_tok;
        if (tok_load(&t, tok_dir, &e) != 0) return cli_fail("init", &e);
        n_tok = tok_vocab_size(t);
        c.eos_token_id = tok_eot_id(t);
        if (c.vocab_size == 0) c.vocab_size = n_tok;
        if (n_tok != c.vocab_size) {
            fprintf(stderr, "dpo init: --vocab %d differs from the tokenizer's %d tokens\n", c.vocab_size, n_tok);
            tok_free(t);
            return 2;
        }
    } else if (c.vocab_size == 0) {
        fprintf(stderr, "dpo init: give --vocab V or --tokenizer DIR\n");
        return 2;
    }
    c.ln_eps = 1e-5;
    if (c.eos_token_id < 0) c.eos_token_id = c.vocab_size - 1;
    if (model_create(&m, &c, &e) != 0) {
        tok_free(t);
        return cli_fail("init", &e);
    }
    model_init_random_std(&m, seed, init_std);
    /* the tokenizer's validated bytes, as read above (not the files again) */
    if (model_save(&m, out, &e) != 0 || (t && tok_write_files(t, out, &e) != 0)) {
        model_free(&m);
        tok_free(t);
        return cli_fail("init", &e);
    }
    tok_free(t);
    printf("wrote %s: GPT-2 with %d layers, %d heads, dim %d, ctx %d, vocab %d: %zu parameters%s\n",
           out, c.n_layer, c.n_head, c.n_embd, c.n_ctx, c.vocab_size, m.num_params,
           tok_dir ? " (with its tokenizer)" : "");
    model_free(&m);
    return 0;
}

/* ======================================================================== */
/* dpo info                                                                  */
/* ======================================================================== */

static int cmd_info(int argc, char **argv) {
    const char *dir = NULL;
    char path[4096];
    model m;
    st_file f;
    dpo_err e;
    size_t k;
    int rc, d;
    opt_spec opts[] = {
        {"--model", OPT_STR, &dir, 0, 0, 1, "Hugging Face GPT-2 directory (config.json + model.safetensors)", 0},
    };
    rc = cli_parse("info", "usage: dpo info --model DIR\n\n"
                       "Load and fully validate a model directory; print its config, parameter\n"
                       "count, and each tensor's name, shape and dtype as stored in the file.",
                       argc, argv, opts, 1);
    if (rc != 0) return rc > 0 ? 0 : 2;
    /* the listing comes from the descriptor st_open keeps; model_load validates the
       file at the same path, and the two must be the same file, unchanged */
    if (model_load_config(dir, &m.cfg, &e) != 0 || util_path_join(path, sizeof path, dir, "model.safetensors", &e) != 0 ||
        st_open(&f, path, &e) != 0)
        return cli_fail("info", &e);
    if (model_load_any(&m, dir, &e) != 0) {
        st_close(&f);
        return cli_fail("info", &e);
    }
    if (!st_same_file(&f, path)) {
        fprintf(stderr, "dpo info: error: %s: the file changed while it was being read\n", path);
        st_close(&f);
        model_free(&m);
        return 1;
    }
    printf("model: %s\n", dir);
    printf("config: n_layer %d, n_head %d, n_embd %d, n_positions %d, vocab_size %d, "
           "layer_norm_epsilon %g, eos_token_id %d\n",
           m.cfg.n_layer, m.cfg.n_head, m.cfg.n_embd, m.cfg.n_ctx, m.cfg.vocab_size, m.cfg.ln_eps,
           m.cfg.eos_token_id);
    printf("kind: %s\n", m.cfg.score_head ? "reward or value model (GPT2ForSequenceClassification: score.weight "
                                            "reads one number at each position)"
                                          : "language model (GPT2LMHeadModel)");
    printf("parameters: %zu (%.1f MiB as F32; lm_head tied to wte)\n", m.num_params,
           (double)m.num_params * 4.0 / 1048576.0);
    {
        tok_tokenizer *t;
        dpo_err te;
        if (tok_load(&t, dir, &te) == 0) {
            printf("tokenizer: %d tokens, <|endoftext|> = %d%s\n", tok_vocab_size(t), tok_eot_id(t),
                   tok_vocab_size(t) > m.cfg.vocab_size ? " (WARNING: more tokens than the model's vocab_size)" : "");
            tok_free(t);
        } else {
            printf("tokenizer: none usable here (%s)\n", te.msg);
        }
    }
    printf("tensors in %s: %zu\n", path, f.n_tensors);
    for (k = 0; k < f.n_tensors; k++) {
        const st_tensor *t = &f.tensors[k];
        char name[1024];
        util_escape_text(name, sizeof name, t->name); /* a name from the file: no escape sequences to the terminal */
        printf("  %-40s %-5s (", name, st_dtype_name(t->dtype));
        for (d = 0; d < t->ndim; d++) printf("%s%zu", d ? ", " : "", t->shape[d]);
        printf(")\n");
    }
    st_close(&f);
    model_free(&m);
    return 0;
}

/* ======================================================================== */
/* dpo train                                                                 */
/* ======================================================================== */

typedef struct {
    FILE *log;              /* metrics JSONL, or NULL */
    const char *log_path;
    double t0;
    int quiet;
    train_mode mode;
    int tty;                /* stderr is a terminal: redraw one line; else a line every 5% of the run */
    int ref_done, ref_tenth; /* progress of the reference's log-probs: rows done, tenths printed */
    double step_seconds;    /* sum of the wall times of the steps of this process (for the ETA) */
    long n_steps;
    long last_step;         /* the last step done */
} train_ui;

static void train_ui_start(void *ctx, const data_set *d, const data_set *eval, long total) {
    train_ui *ui = ctx;
    const char *what = ui->mode == TRAIN_SFT ? "rows" : "preference pairs";
    if (ui->quiet) return;
    fprintf(stderr, "%d %s (%d truncated to fit), %ld optimizer steps\n", d->n_rows, what, d->n_truncated, total);
    if (eval) fprintf(stderr, "held-out: %d %s (%d truncated to fit)\n", eval->n_rows, what, eval->n_truncated);
}


/* One JSONL metrics line with TRL's names; an evaluation's names get TRL's
 * "eval_" prefix. SFT runs have no rewards or rejected responses; a reward
 * model's run has TRL's reward trainer's names (loss, accuracy, margin) and its
 * mean rewards, no log-probs. Every write is checked: a full disk stops the
 * run with an error naming the log. */
static int write_metrics(FILE *fp, const char *path, const train_metrics *m, train_mode mode, int eval, dpo_err *e) {
    static const char *const dpo_names[] = {"loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                                            "rewards/margins", "logps/chosen", "logps/rejected"};
    static const char *const rm_names[] = {"loss", "accuracy", "margin", "rewards/chosen", "rewards/rejected"};
    const double dpo_vals[] = {m->loss, m->reward_chosen, m->reward_rejected, m->accuracy, m->margin, m->logp_chosen,
                               m->logp_rejected};
    const double rm_vals[] = {m->loss, m->accuracy, m->margin, m->reward_chosen, m->reward_rejected};
    const char *const *names = mode == TRAIN_RM ? rm_names : dpo_names;
    const double *vals = mode == TRAIN_RM ? rm_vals : dpo_vals;
    int n = mode == TRAIN_SFT ? 1 : mode == TRAIN_RM ? 5 : 7;
    char key[64];
    int i;
    fprintf(fp, "{\"step\": %ld, ", m->step);
    cli_put_num(fp, "epoch", m->epoch);
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%s%s", eval ? "eval_" : "", names[i]);
        fprintf(fp, ", ");
        cli_put_num(fp, key, vals[i]);
    }
    if (!eval) {
        fprintf(fp, ", ");
        cli_put_num(fp, "grad_norm", m->grad_norm);
        fprintf(fp, ", ");
        cli_put_num(fp, "learning_rate", m->learning_rate);
    }
    fprintf(fp, ", ");
    cli_put_num(fp, eval ? "eval_tokens_per_second" : "tokens_per_second", m->tokens_per_second);
    fprintf(fp, "}\n");
    if (fflush(fp) != 0 || ferror(fp)) return dpo_errf(e, "%s: cannot write the metrics log: %s", path, strerror(errno));
    return 0;
}

/* a metrics line in the log, and a one-line progress display with an ETA */
static int train_ui_step(void *ctx, const train_metrics *m, long total, dpo_err *e) {
    train_ui *ui = ctx;
    double eta;
    long every = total >= 20 ? total / 20 : 1;
    ui->step_seconds += m->seconds;
    ui->n_steps++;
    ui->last_step = m->step;
    eta = ui->step_seconds / (double)ui->n_steps * (double)(total - m->step); /* evaluations not counted */
    if (ui->log && write_metrics(ui->log, ui->log_path, m, ui->mode, 0, e) != 0) return -1;
    if (ui->quiet || (!ui->tty && m->step % every != 0 && m->step != 1 && m->step != total)) return 0;
    if (ui->mode == TRAIN_SFT)
        fprintf(stderr, "%sstep %ld/%ld  loss %.4f  lr %.3g  %.0f tok/s  ETA %.0f s", ui->tty ? "\r" : "", m->step,
                total, m->loss, m->learning_rate, m->tokens_per_second, eta);
    else
        fprintf(stderr, "%sstep %ld/%ld  loss %.4f  acc %.2f  margin %.4f  lr %.3g  %.0f tok/s  ETA %.0f s",
                ui->tty ? "\r" : "", m->step, total, m->loss, m->accuracy, m->margin, m->learning_rate,
                m->tokens_per_second, eta);
    fprintf(stderr, "%s", !ui->tty || m->step == total ? "\n" : "   ");
    return 0;
}

static int train_ui_eval(void *ctx, const train_metrics *m, long total, dpo_err *e) {
    train_ui *ui = ctx;
    if (ui->log && write_metrics(ui->log, ui->log_path, m, ui->mode, 1, e) != 0) return -1;
    if (ui->quiet) return 0;
    if (ui->tty && m->step != total) fprintf(stderr, "\n");
    if (ui->mode == TRAIN_SFT)
        fprintf(stderr, "eval after step %ld: loss %.4f\n", m->step, m->loss);
    else
        fprintf(stderr, "eval after step %ld: loss %.4f  acc %.2f  margin %.4f  rewards %.4f / %.4f\n", m->step,
                m->loss, m->accuracy, m->margin, m->reward_chosen, m->reward_rejected);
    return 0;
}

/* what --resume found: always shown (even with --quiet), it decides what the run does */
static void train_ui_note(void *ctx, const char *msg) {
    char safe[8192];
    (void)ctx;
    util_escape_text(safe, sizeof safe, msg);
    fprintf(stderr, "%s\n", safe);
}

/* the reference's log-probs computed once: a redrawn line on a terminal, else a
 * line at every 10% */
static void train_ui_ref(void *ctx, const char *which, int done, int total) {
    train_ui *ui = ctx;
    int tenth = (int)((long long)done * 10 / total);
    if (done <= ui->ref_done) ui->ref_tenth = 0; /* a new pass */
    ui->ref_done = done;
    if (ui->quiet || (!ui->tty && tenth <= ui->ref_tenth && done != total)) return;
    ui->ref_tenth = tenth;
    fprintf(stderr, "%sreference log-probs of the %s pairs: %d/%d (%.0f s)%s", ui->tty ? "\r" : "", which, done,
            total, util_seconds() - ui->t0, !ui->tty || done == total ? "\n" : "");
}

/* options that only preference training has */
static const char *const train_only_options[] = {"--ref", "--loss", "--beta", "--label-smoothing", "--alpha",
                                               "--sft-weight", "--precompute-ref"};

static int train_only(const char *name) {
    size_t i;
    for (i = 0; i < sizeof train_only_options / sizeof train_only_options[0]; i++)
        if (strcmp(name, train_only_options[i]) == 0) return 1;
    return 0;
}

/* The metrics log is appended to: it must not be a data file (the rows would
 * get metrics lines), nor sit inside the output directory or its siblings,
 * which dpo replaces whole at every save. Returns 0, or 2 after printing. */
static int check_log_path(const char *cmd, const char *log_path, const train_config *c) {
    char dir[4096], sib[4096];
    if ((c->data_path && util_same_file(log_path, c->data_path)) || (c->eval_path && util_same_file(log_path, c->eval_path))) {
        fprintf(stderr, "dpo %s: --log %s is a data file; give a file of its own\n", cmd, log_path);
        return 2;
    }
    if (util_parent_dir(dir, sizeof dir, log_path) == 0 && train_out_sibling(c, dir, sib, sizeof sib)) {
        fprintf(stderr, "dpo %s: --log %s is inside %s, which dpo replaces at every save; put the log beside it\n", cmd,
                log_path, sib);
        return 2;
    }
    return 0;
}

/* what dpo train's and dpo sft's options set besides train_config */
typedef struct {
    const char *loss, *optimizer, *schedule, *log_path;
    int threads, steps, quiet;
} train_cli;

static const char *const train_cmd_names[] = {"train", "sft", "rm-train"}; /* by train_mode */

/* dpo train, dpo sft and dpo rm-train: one option table, the DPO-only options
 * left out of the other two; defaults are c's and o's values on entry. Returns
 * parse_options' 0, 1 (help printed) or -1 (usage error printed). */
static int train_parse(int argc, char **argv, train_mode mode, train_config *c, train_cli *o) {
    static const char *const help[] = {
        "usage: dpo train --model DIR --data FILE --out DIR [options]\n\n"
        "Fine-tune a GPT-2 model on preference pairs with Direct Preference\n"
        "Optimization (or one of its variants and baselines) against a frozen\n"
        "reference model. Each pair becomes prompt ++ response ++ <|endoftext|> for\n"
        "both responses; only response tokens count. Prints progress to standard\n"
        "error; --log writes TRL-named metrics (loss, rewards/chosen, rewards/rejected,\n"
        "rewards/accuracies, rewards/margins, logps/chosen, logps/rejected, grad_norm,\n"
        "learning_rate, step, epoch, tokens_per_second) as JSONL; with --eval-data,\n"
        "the same on the held-out pairs, named eval_loss, eval_rewards/chosen, ...",
        "usage: dpo sft --model DIR --data FILE --out DIR [options]\n\n"
        "Supervised fine-tuning: maximise the likelihood of each row's completion\n"
        "given its prompt. A row {\"prompt\", \"completion\"} becomes prompt ++ completion\n"
        "++ <|endoftext|>; a row {\"text\"} is an empty prompt (<|endoftext|>) and the\n"
        "text as the completion. Only completion tokens count: the loss is their mean\n"
        "negative log-likelihood over the whole batch (every token weighs the same).\n"
        "Optimizer, schedule, checkpoint and resume options are dpo train's. Prints\n"
        "progress to standard error; --log writes loss, grad_norm, learning_rate, step,\n"
        "epoch, tokens_per_second (and eval_loss with --eval-data) as JSONL.",
        "usage: dpo rm-train --model DIR --data FILE --out DIR [options]\n\n"
        "Train a reward model on preference pairs, as RLHF does before PPO: GPT-2\n"
        "with a scalar head, score.weight (1, n_embd), that reads the final hidden\n"
        "state at the last token (the <|endoftext|>) of prompt ++ response ++\n"
        "<|endoftext|>. The loss is Bradley-Terry's, -log sigmoid(r(x, y_w) - r(x, y_l)),\n"
        "the mean over the pairs of a batch. --model is a language model (the head\n"
        "is added, normal(0, 0.02) from --seed) or a reward model to train further.\n"
        "Saved as a Hugging Face GPT2ForSequenceClassification directory (num_labels 1)\n"
        "that transformers loads; use it as --reward model:DIR in dpo eval, pairs and\n"
        "sample. Optimizer, schedule, checkpoint and resume options are dpo train's,\n"
        "with defaults for a new head (AdamW, lr 1e-5, no warm-up, clip 1). --log\n"
        "writes loss, accuracy, margin, rewards/chosen, rewards/rejected (the mean\n"
        "rewards), grad_norm, learning_rate, step, epoch and tokens_per_second as JSONL;\n"
        "with --eval-data, the same on the held-out pairs, named eval_loss, eval_accuracy, ..."};
    int i, n_opts = 0, sft = mode == TRAIN_SFT;
    opt_spec all[] = {
        {"--model", OPT_STR, &c->model_dir, 0, 0, 1, "model directory to fine-tune (Hugging Face GPT-2, with tokenizer files)", 0},
        {"--data", OPT_STR, &c->data_path, 0, 0, 1, sft ? "JSONL rows {\"prompt\", \"completion\"} or {\"text\"}" : "JSONL preference pairs {\"prompt\", \"chosen\", \"rejected\"}", 0},
        {"--out", OPT_STR, &c->out_dir, 0, 0, 1, "directory for the fine-tuned model and its checkpoints: new, empty, or a dpo checkpoint (replaced atomically)", 0},
        {"--ref", OPT_STR, &c->ref_dir, 0, 0, 0, "frozen reference model (default: a copy of --model)", 0},
        {"--tokenizer", OPT_STR, &c->tokenizer_dir, 0, 0, 0, "tokenizer directory (default: --model's)", 0},
        {"--loss", OPT_NAME, &o->loss, 0, 0, 0, "dpo, ipo (on summed log-probs, as the DPO authors' code), hinge, sft, unlikelihood (default {default})", 0},
        {"--beta", OPT_DOUBLE, &c->loss.beta, 0, 0, 0, "KL strength beta (default {default})", 0},
        {"--label-smoothing", OPT_DOUBLE, &c->loss.label_smoothing, 0, 0, 0, "conservative DPO: assumed label noise in [0, 0.5) (default {default})", 0},
        {"--alpha", OPT_DOUBLE, &c->loss.alpha, 0, 0, 0, "unlikelihood weight (default {default})", 0},
        {"--sft-weight", OPT_DOUBLE, &c->loss.sft_weight, 0, 0, 0, "add this times the chosen response's mean-token NLL (default {default})", 0},
        {"--eval-data", OPT_STR, &c->eval_path, 0, 0, 0, sft ? "held-out JSONL rows: the loss on them, forward passes only" : "held-out JSONL pairs: the same metrics on them, forward passes only", 0},
        {"--eval-every", OPT_INT, &c->eval_every, 1, 1 << 30, 0, "evaluate every N steps (default: after the last step only)", 0},
        {"--batch", OPT_INT, &c->batch, 1, 1 << 20, 0, sft ? "rows per optimizer step (default {default})" : "pairs per optimizer step (default {default})", 0},
        {"--micro-batch", OPT_INT, &c->micro_batch, 1, 1 << 20, 0, sft ? "rows per forward/backward, gradients accumulated (default {default})" : "pairs per forward/backward, gradients accumulated (default {default})", 0},
        {"--steps", OPT_INT, &o->steps, 1, 1 << 30, 0, "optimizer steps (default: --epochs over the data)", 0},
        {"--epochs", OPT_INT, &c->epochs, 1, 1 << 20, 0, "passes over the data when --steps is not given (default {default})", 0},
        {"--max-len", OPT_INT, &c->max_len, 2, 1 << 20, 0, "longest prompt + response, in tokens (default {default}; at most the model's context)", 0},
        {"--max-prompt-len", OPT_INT, &c->max_prompt_len, 1, 1 << 20, 0, "prompt tokens kept (the last ones) when a row is too long (default {default})", 0},
        {"--optimizer", OPT_NAME, &o->optimizer, 0, 0, 0, "rmsprop (the paper's; PyTorch defaults), adamw, sgd (plain) (default {default})", 0},
        {"--lr", OPT_DOUBLE, &c->opt.lr, 0, 0, 0, "peak learning rate (default {default})", 0},
        {"--warmup", OPT_INT, &c->opt.warmup, 0, 1 << 30, 0, "steps of linear warm-up from 0 (default {default})", 0},
        {"--schedule", OPT_NAME, &o->schedule, 0, 0, 0, "constant or cosine, after the warm-up (default {default})", 0},
        {"--min-lr", OPT_DOUBLE, &c->opt.min_lr, 0, 0, 0, "the cosine schedule decays to this (default {default})", 0},
        {"--weight-decay", OPT_DOUBLE, &c->opt.weight_decay, 0, 0, 0, "weight decay (default {default}; not with sgd)", 0},
        {"--grad-clip", OPT_DOUBLE, &c->opt.grad_clip, 0, 0, 0, "clip the global gradient norm to this (default {default}; 0 turns it off)", 0},
        {"--seed", OPT_U64, &c->seed, 0, 0, 0, "seed of the data order (default {default})", 0},
        {"--precompute-ref", OPT_FLAG, &c->precompute_ref, 0, 0, 0, "reference log-probs of every pair once, before training, then free the reference (same results, less memory and compute)", 0},
        {"--save-every", OPT_INT, &c->save_every, 1, 1 << 30, 0, "also checkpoint into --out every N steps (model, optimizer state, data position)", 0},
        {"--resume", OPT_STR, &c->resume_dir, 0, 0, 0, "continue the run checkpointed in this directory (same data, seed and batch sizes)", 0},
        {"--threads", OPT_INT, &o->threads, 1, 1024, 0, "OpenMP threads (default: all)", 0},
        {"--log", OPT_STR, &o->log_path, 0, 0, 0, "append one JSON object of metrics per step (and per evaluation) to this file", 0},
        {"--quiet", OPT_FLAG, &o->quiet, 0, 0, 0, "no progress display", 0},
    };
    opt_spec opts[sizeof all / sizeof all[0]];
    for (i = 0; i < (int)(sizeof all / sizeof all[0]); i++)
        if (mode == TRAIN_DPO || !train_only(all[i].name)) opts[n_opts++] = all[i];
    return cli_parse(train_cmd_names[mode], help[mode], argc, argv, opts, n_opts);
}

/* The names given on the command line, made into c's kinds, and the checks that
 * span several options. Returns 0, or 2 (a usage error) or 1 after printing. */
static int train_resolve(const char *cmd, train_mode mode, train_config *c, const train_cli *o) {
    dpo_err e;
    if (c->eval_every > 0 && !c->eval_path) {
        fprintf(stderr, "dpo %s: --eval-every needs --eval-data FILE\n", cmd);
        return 2;
    }
    c->steps = o->steps;
    if (obj_loss_kind_parse(o->loss, &c->loss.kind) != 0) {
        fprintf(stderr, "dpo train: unknown --loss '%s' (dpo, ipo, hinge, sft, unlikelihood)\n", o->loss);
        return 2;
    }
    if (optim_kind_from_name(o->optimizer, &c->opt.kind, NULL) != 0) {
        fprintf(stderr, "dpo %s: unknown --optimizer '%s' (rmsprop, adamw, sgd)\n", cmd, o->optimizer);
        return 2;
    }
    if (optim_schedule_from_name(o->schedule, &c->opt.schedule, NULL) != 0) {
        fprintf(stderr, "dpo %s: unknown --schedule '%s' (constant, cosine)\n", cmd, o->schedule);
        return 2;
    }
    c->opt.total_steps = 0; /* cosine: the run's length, set by train_run */
    if (mode == TRAIN_DPO && obj_loss_config_validate(&c->loss, &e) != 0) return cli_fail(cmd, &e);
    if (train_check_out(c, &e) != 0) {
        fprintf(stderr, "dpo %s: %s\n", cmd, e.msg);
        return 2;
    }
    if (o->log_path && check_log_path(cmd, o->log_path, c) != 0) return 2;
    return 0;
}

static int cmd_train(int argc, char **argv, train_mode mode) {
    const char *cmd = train_cmd_names[mode];
    train_config c;
    train_cli o;
    train_ui ui;
    train_callbacks cb;
    dpo_err e;
    int rc;
    train_config_defaults(&c, mode);
    memset(&o, 0, sizeof o);
    o.loss = obj_loss_kind_name(c.loss.kind);
    o.optimizer = optim_kind_name(c.opt.kind);
    o.schedule = optim_schedule_name(c.opt.schedule);
    rc = train_parse(argc, argv, mode, &c, &o);
    if (rc != 0) return rc > 0 ? 0 : 2;
    if ((rc = train_resolve(cmd, mode, &c, &o)) != 0) return rc;
    util_set_threads(o.threads);
    memset(&ui, 0, sizeof ui);
    ui.quiet = o.quiet;
    ui.mode = mode;
    ui.tty = isatty(2);
    ui.t0 = util_seconds();
    ui.log_path = o.log_path;
    if (o.log_path && !(ui.log = fopen(o.log_path, "a"))) {
        fprintf(stderr, "dpo %s: error: %s: cannot open for appending: %s\n", cmd, o.log_path, strerror(errno));
        return 1;
    }
    memset(&cb, 0, sizeof cb);
    cb.start = train_ui_start;
    cb.step = train_ui_step;
    cb.eval = train_ui_eval;
    cb.ref_progress = train_ui_ref;
    cb.note = train_ui_note;
    cb.stop = cli_stop_requested;
    cb.ctx = &ui;
    cli_catch_interrupts();
    rc = train_run(&c, &cb, &e);
    if (ui.log && fclose(ui.log) != 0 && rc == 0)
        rc = dpo_errf(&e, "%s: cannot write the metrics log: %s", o.log_path, strerror(errno));
    if (rc != 0) {
        if (!o.quiet && ui.tty) fprintf(stderr, "\n");
        return rc == 1 ? cli_interrupt_exit(cmd, c.out_dir, ui.last_step) : cli_fail(cmd, &e);
    }
    printf("wrote %s (%.1f s)\n", c.out_dir, util_seconds() - ui.t0);
    return 0;
}

/* ======================================================================== */
/* dpo logp                                                                  */
/* ======================================================================== */

/* One JSON object per pair: the policy's summed response log-probs, the token
 * counts, and with --ref the reference's and the implicit rewards
 * beta (log pi(y|x) - log pi_ref(y|x)) (objective.c derives them). */
/* one pair's line: the policy's log-probs, and with ref_lp the reference's and the rewards */
static void print_logp_row(const data_row *r, const double *lp, const double *ref_lp, double beta) {
    printf("{\"line\": %ld, ", r->line);
    cli_put_num(stdout, "logp_chosen", lp[0]);
    printf(", ");
    cli_put_num(stdout, "logp_rejected", lp[1]);
    printf(", \"n_chosen\": %d, \"n_rejected\": %d", r->n_chosen, r->n_rejected);
    if (ref_lp) {
        printf(", ");
        cli_put_num(stdout, "ref_logp_chosen", ref_lp[0]);
        printf(", ");
        cli_put_num(stdout, "ref_logp_rejected", ref_lp[1]);
        printf(", ");
        cli_put_num(stdout, "reward_chosen", obj_implicit_reward(beta, lp[0], ref_lp[0]));
        printf(", ");
        cli_put_num(stdout, "reward_rejected", obj_implicit_reward(beta, lp[1], ref_lp[1]));
    }
    printf("}\n");
}

static int cmd_logp(int argc, char **argv) {
    const char *model_dir = NULL, *ref_dir = NULL, *data = NULL, *tok_dir = NULL;
    double beta = OBJ_DEFAULT_BETA;
    int max_len = DATA_DEFAULT_MAX_LEN, max_prompt_len = DATA_DEFAULT_MAX_PROMPT_LEN;
    int micro = TRAIN_DEFAULT_MICRO_BATCH, threads = 0, rc, i;
    model pol, ref;
    tok_tokenizer *t = NULL;
    data_set d;
    double *lp = NULL, *ref_lp = NULL;
    dpo_err e;
    opt_spec opts[] = {
        {"--model", OPT_STR, &model_dir, 0, 0, 1, "model directory (with its tokenizer files)", 0},
        {"--data", OPT_STR, &data, 0, 0, 1, "JSONL preference pairs {\"prompt\", \"chosen\", \"rejected\"}", 0},
        {"--ref", OPT_STR, &ref_dir, 0, 0, 0, "reference model: also print its log-probs and the implicit rewards", 0},
        {"--tokenizer", OPT_STR, &tok_dir, 0, 0, 0, "tokenizer directory (default: --model's)", 0},
        {"--beta", OPT_DOUBLE, &beta, 0, 0, 0, "beta of the implicit rewards (default {default})", 0},
        {"--max-len", OPT_INT, &max_len, 2, 1 << 20, 0, "as for dpo train (default {default})", 0},
        {"--max-prompt-len", OPT_INT, &max_prompt_len, 1, 1 << 20, 0, "as for dpo train (default {default})", 0},
        {"--micro-batch", OPT_INT, &micro, 1, 1 << 20, 0, "pairs per forward pass (default {default})", 0},
        {"--threads", OPT_INT, &threads, 1, 1024, 0, "OpenMP threads (default: all)", 0},
    };
    rc = cli_parse("logp", "usage: dpo logp --model DIR --data FILE [--ref DIR] [--beta B]\n\n"
                       "Print, for each pair, one JSON object: logp_chosen and logp_rejected (summed\n"
                       "log-probabilities of the response tokens and the end-of-text token, as dpo train\n"
                       "counts them), n_chosen and n_rejected (those tokens), and with --ref the\n"
                       "reference's log-probs and the implicit rewards beta * (logp - ref_logp).",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]));
    if (rc != 0) return rc > 0 ? 0 : 2;
    util_set_threads(threads);
    memset(&pol, 0, sizeof pol);
    memset(&ref, 0, sizeof ref);
    memset(&d, 0, sizeof d);
    rc = 1;
    if (tok_load(&t, tok_dir ? tok_dir : model_dir, &e) != 0 || model_load(&pol, model_dir, &e) != 0 ||
        (ref_dir && model_load(&ref, ref_dir, &e) != 0))
        goto done;
    model_set_no_grad(&pol, 1);
    model_set_no_grad(&ref, 1);
    data_fit_lengths(&max_len, &max_prompt_len, ref_dir && ref.cfg.n_ctx < pol.cfg.n_ctx ? ref.cfg.n_ctx : pol.cfg.n_ctx);
    if (data_load_pairs(&d, data, t, tok_eot_id(t) >= 0 ? tok_eot_id(t) : pol.cfg.eos_token_id, max_len,
                        max_prompt_len, &e) != 0)
        goto done;
    lp = malloc(2 * (size_t)d.n_rows * sizeof *lp);
    ref_lp = malloc(2 * (size_t)d.n_rows * sizeof *ref_lp);
    if (!lp || !ref_lp) {
        dpo_err_oom(&e, "the log-probs", 2 * (size_t)d.n_rows, sizeof *lp + sizeof *ref_lp);
        goto done;
    }
    if (data_logps(&pol, &d, micro, lp, NULL, NULL, &e) != 0 ||
        (ref_dir && data_logps(&ref, &d, micro, ref_lp, NULL, NULL, &e) != 0))
        goto done;
    for (i = 0; i < d.n_rows; i++)
        print_logp_row(&d.rows[i], lp + 2 * (size_t)i, ref_dir ? ref_lp + 2 * (size_t)i : NULL, beta);
    rc = 0;
done:
    if (rc != 0) cli_fail("logp", &e);
    free(lp);
    free(ref_lp);
    data_free(&d);
    model_free(&pol);
    model_free(&ref);
    tok_free(t);
    return rc;
}

/* ======================================================================== */
/* tokenizer commands: encode, decode, tokenizer-train                      */
/* ======================================================================== */


static void print_ids(const int *ids, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
}

/* double the capacity of *ends (256 at first); the new capacity, or 0 when out of memory */
static size_t grow_rows(size_t **ends, size_t cap) {
    size_t nc = cap ? 2 * cap : 256;
    size_t *q = realloc(*ends, nc * sizeof *q);
    if (!q) return 0;
    *ends = q;
    return nc;
}

/* dpo encode --jsonl: every row {"text": ...} is read and encoded before
 * anything is printed, so a bad row leaves no partial output; then one JSON
 * array of ids per row. ends[r] = the end of row r's ids in *ids. Returns 0, or
 * 1 after printing the problem. */
static int encode_jsonl(const tok_tokenizer *t, const char *name, char *text, size_t len, int **ids, size_t *n,
                        size_t *cap, double *t_enc) {
    char *p = text, *end = text + len;
    size_t *ends = NULL, n_rows = 0, cap_rows = 0, r, i;
    long line = 0;
    dpo_err e;
    int rc = 0;
    while (p < end && rc == 0) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        json_value *row = NULL;
        const char *s;
        size_t slen;
        double t0;
        line++;
        if (json_parse_line(p, (size_t)(le - p), name, line, &row, &e) != 0) {
            rc = cli_fail("encode", &e);
            break;
        }
        if (row->type != JSON_OBJECT || json_get_string(row, "text", &s, &slen, &e) != 0) {
            if (row->type != JSON_OBJECT) dpo_errf(&e, "not a JSON object");
            else if (!json_get(row, "text")) dpo_errf(&e, "missing key \"text\"");
            dpo_err_prefix(&e, "%s: line %ld", name, line);
            rc = cli_fail("encode", &e);
        } else if (n_rows == cap_rows && !(cap_rows = grow_rows(&ends, cap_rows))) {
            dpo_err_oom(&e, "the row boundaries", n_rows ? 2 * n_rows : 256, sizeof *ends); /* cap_rows was n_rows */
            rc = cli_fail("encode", &e);
        } else {
            t0 = util_seconds();
            if (tok_encode(t, s, slen, ids, n, cap, &e) != 0) rc = cli_fail("encode", &e);
            *t_enc += util_seconds() - t0;
            ends[n_rows++] = *n;
        }
        json_free(row);
        p = nl ? nl + 1 : end;
    }
    for (r = 0; rc == 0 && r < n_rows; r++) {
        size_t start = r ? ends[r - 1] : 0;
        printf("[");
        for (i = start; i < ends[r]; i++) printf("%s%d", i > start ? ", " : "", (*ids)[i]);
        printf("]\n");
    }
    free(ends);
    return rc;
}

static int cmd_encode(int argc, char **argv) {
    const char *tok_dir = NULL, *model_dir = NULL, *file = NULL;
    int jsonl = 0, stats = 0, rc;
    tok_tokenizer *t;
    char *text;
    size_t len, n = 0, cap = 0, total = 0;
    int *ids = NULL;
    double t0, t_enc = 0.0;
    dpo_err e;
    opt_spec opts[] = {
        {"--tokenizer", OPT_STR, &tok_dir, 0, 0, 0, "directory with vocab.json + merges.txt (or encoder.json + vocab.bpe)", 0},
        {"--model", OPT_STR, &model_dir, 0, 0, 0, "model directory holding the tokenizer files", 0},
        {"--jsonl", OPT_FLAG, &jsonl, 0, 0, 0, "input lines are JSON objects with a \"text\" string; print one JSON array per line", 0},
        {"--stats", OPT_FLAG, &stats, 0, 0, 0, "print bytes, tokens and encoding speed (MB/s) to standard error", 0},
        {"[FILE]", OPT_POS, &file, 0, 0, 0, "input file (default: standard input)", 0},
    };
    rc = cli_parse("encode", "usage: dpo encode --tokenizer DIR [--jsonl] [FILE]\n\n"
                       "Encode text with GPT-2's byte-level BPE. The whole input is one text and the\n"
                       "ids are printed on one line, separated by spaces. The literal text\n"
                       "<|endoftext|> is ordinary text (several tokens); its id is never produced.\n"
                       "Invalid UTF-8 is encoded byte by byte and decodes back to the same bytes.",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]));
    if (rc != 0) return rc > 0 ? 0 : 2;
    if ((rc = cli_open_tokenizer("encode", tok_dir, model_dir, &t)) != 0) return rc;
    if (cli_read_input(file, &text, &len, &e) != 0) {
        tok_free(t);
        return cli_fail("encode", &e);
    }
    if (!jsonl) {
        t0 = util_seconds();
        rc = tok_encode(t, text, len, &ids, &n, &cap, &e);
        t_enc = util_seconds() - t0;
        total = n;
        if (rc != 0) rc = cli_fail("encode", &e);
        else {
            print_ids(ids, n);
            printf("\n");
        }
    } else {
        rc = encode_jsonl(t, file ? file : "standard input", text, len, &ids, &n, &cap, &t_enc);
        total = n;
    }
    if (stats && rc == 0)
        fprintf(stderr, "encoded %zu bytes into %zu tokens in %.3f s: %.1f MB/s\n", len, total, t_enc,
                t_enc > 0 ? (double)len / t_enc / 1e6 : 0.0);
    free(ids);
    free(text);
    tok_free(t);
    return rc;
}

static int cmd_decode(int argc, char **argv) {
    const char *tok_dir = NULL, *model_dir = NULL, *file = NULL;
    tok_tokenizer *t;
    char *text, *p, *out;
    size_t len, n = 0, cap = 0, olen;
    int *ids = NULL, rc;
    dpo_err e;
    opt_spec opts[] = {
        {"--tokenizer", OPT_STR, &tok_dir, 0, 0, 0, "directory with vocab.json + merges.txt (or encoder.json + vocab.bpe)", 0},
        {"--model", OPT_STR, &model_dir, 0, 0, 0, "model directory holding the tokenizer files", 0},
        {"[FILE]", OPT_POS, &file, 0, 0, 0, "input file of whitespace-separated ids (default: standard input)", 0},
    };
    rc = cli_parse("decode", "usage: dpo decode --tokenizer DIR [FILE]\n\n"
                       "Read token ids separated by whitespace and write the bytes they stand for.",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]));
    if (rc != 0) return rc > 0 ? 0 : 2;
    if ((rc = cli_open_tokenizer("decode", tok_dir, model_dir, &t)) != 0) return rc;
    if (cli_read_input(file, &text, &len, &e) != 0) {
        tok_free(t);
        return cli_fail("decode", &e);
    }
    p = text;
    rc = 0;
    while (rc == 0) {
        char *end;
        long v;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (*p == '\0') break;
        errno = 0;
        v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < INT_MIN || v > INT_MAX ||
            !(*end == '\0' || *end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) {
            fprintf(stderr, "dpo decode: error: %s: byte %ld: not a token id\n",
                    file ? file : "standard input", (long)(p - text));
            rc = 1;
            break;
        }
        if (n == cap) {
            int *q;
            cap = cap ? 2 * cap : 1024;
            q = realloc(ids, cap * sizeof *q);
            if (!q) {
                dpo_err_oom(&e, "the token ids", cap, sizeof *q);
                rc = cli_fail("decode", &e);
                break;
            }
            ids = q;
        }
        ids[n++] = (int)v;
        p = end;
    }
    if (rc == 0 && (size_t)(p - text) != len) {
        fprintf(stderr, "dpo decode: error: %s: NUL byte in the input\n", file ? file : "standard input");
        rc = 1;
    }
    if (rc == 0) {
        if (tok_decode(t, ids, n, &out, &olen, &e) != 0) rc = cli_fail("decode", &e);
        else {
            if (fwrite(out, 1, olen, stdout) != olen) {
                fprintf(stderr, "dpo decode: error: standard output: write failed: %s\n", strerror(errno));
                rc = 1;
            }
            free(out);
        }
    }
    free(ids);
    free(text);
    tok_free(t);
    return rc;
}

static void train_progress(void *ctx, int done, int total) {
    double t0 = *(double *)ctx;
    fprintf(stderr, "\rmerges %d / %d  (%.1f s)", done, total, util_seconds() - t0);
    if (done >= total) fprintf(stderr, "\n");
}

static int cmd_tokenizer_train(int argc, char **argv) {
    const char *out = NULL;
    int vocab = 0, rc;
    str_list data;
    double t0;
    dpo_err e;
    opt_spec opts[] = {
        {"--data", OPT_LIST, &data, 0, 0, 1, "text files to learn from (one or more)", 0},
        {"--vocab-size", OPT_INT, &vocab, 257, 4194304, 1, "entries in the vocabulary: 256 bytes + merges + <|endoftext|>", 0},
        {"--out", OPT_STR, &out, 0, 0, 1, "directory to write vocab.json + merges.txt into", 0},
    };
    data.n = 0;
    data.v = malloc((size_t)(argc > 0 ? argc : 1) * sizeof *data.v);
    if (!data.v) return 1;
    rc = cli_parse("tokenizer-train", "usage: dpo tokenizer-train --data FILE... --vocab-size N --out DIR\n\n"
                       "Learn a byte-level BPE vocabulary with GPT-2's pre-tokenizer: the 256 byte\n"
                       "tokens first, then the most frequent pair merged at each step (ties: the\n"
                       "smallest pair of ids), then <|endoftext|> last. Deterministic. Writes\n"
                       "vocab.json + merges.txt that Hugging Face's GPT2TokenizerFast can load.",
                       argc, argv, opts, (int)(sizeof opts / sizeof opts[0]));
    if (rc != 0) {
        free(data.v);
        return rc > 0 ? 0 : 2;
    }
    {
        static const char *const writes[] = {"vocab.json", "merges.txt"};
        if (cli_check_out_dir("tokenizer-train", out, writes, 2, NULL) != 0) {
            free(data.v);
            return 2;
        }
    }
    t0 = util_seconds();
    rc = tok_train(data.v, data.n, vocab, out, train_progress, &t0, &e);
    free(data.v);
    if (rc != 0) return cli_fail("tokenizer-train", &e);
    printf("wrote %s/vocab.json and %s/merges.txt: %d tokens (%.1f s)\n", out, out, vocab,
           util_seconds() - t0);
    return 0;
}

/* ======================================================================== */
/* main                                                                      */
/* ======================================================================== */

static void usage(FILE *fp) {
    fprintf(fp,
            "dpo %s - Direct Preference Optimization for GPT-2 models, in C, on CPUs, offline.\n\n"
            "usage: dpo COMMAND [OPTIONS]\n\n"
            "commands:\n"
            "  train   fine-tune a model on preference pairs with DPO\n"
            "  sft     supervised fine-tuning on prompt/completion or text rows\n"
            "  rm-train  train a reward model (Bradley-Terry) on preference pairs\n"
            "  ppo     PPO against a reward (sentiment or a reward model): the RLHF baseline\n"
            "  logp    log-probabilities and implicit rewards of preference pairs\n"
            "  sample  generate completions of prompts (key-value cache, temperature, top-k, top-p)\n"
            "  eval    reward of samples against their exact KL divergence from a reference\n"
            "  pairs   preference pairs from scored samples\n"
            "  sentiment  VADER sentiment scores and rewards of lines of text\n"
            "  explain where a response's implicit reward lives, token by token\n"
            "  corpus  write a synthetic movie-review corpus whose sentiment VADER can read\n"
            "  plot    draw columns of a TSV table as an SVG chart (series, error bars, legend)\n"
            "  init    write a freshly initialised GPT-2 model directory\n"
            "  info    load and validate a model directory; print config and tensors\n"
            "  bench   how fast this build is on this CPU: passes, matrix products, DPO steps\n"
            "  selftest  check this build on this CPU: gradients, kernels, threads, tokenizer, VADER\n"
            "  encode  text -> GPT-2 token ids\n"
            "  decode  token ids -> text\n"
            "  tokenizer-train  learn a byte-level BPE vocabulary from text files\n\n"
            "Run 'dpo COMMAND --help' for a command's options. Models are Hugging Face\n"
            "GPT-2 directories (config.json + model.safetensors). dpo never uses the network.\n",
            DPO_VERSION);
}

static int run_command(int argc, char **argv) {
    if (strcmp(argv[1], "train") == 0) return cmd_train(argc - 2, argv + 2, TRAIN_DPO);
    if (strcmp(argv[1], "sft") == 0) return cmd_train(argc - 2, argv + 2, TRAIN_SFT);
    if (strcmp(argv[1], "rm-train") == 0) return cmd_train(argc - 2, argv + 2, TRAIN_RM);
    if (strcmp(argv[1], "ppo") == 0) return cmd_ppo(argc - 2, argv + 2);
    if (strcmp(argv[1], "logp") == 0) return cmd_logp(argc - 2, argv + 2);
    if (strcmp(argv[1], "sample") == 0) return cmd_sample(argc - 2, argv + 2);
    if (strcmp(argv[1], "eval") == 0) return cmd_eval(argc - 2, argv + 2);
    if (strcmp(argv[1], "pairs") == 0) return cmd_pairs(argc - 2, argv + 2);
    if (strcmp(argv[1], "sentiment") == 0) return cmd_sentiment(argc - 2, argv + 2);
    if (strcmp(argv[1], "explain") == 0) return cmd_explain(argc - 2, argv + 2);
    if (strcmp(argv[1], "corpus") == 0) return cmd_corpus(argc - 2, argv + 2);
    if (strcmp(argv[1], "plot") == 0) return cmd_plot(argc - 2, argv + 2);
    if (strcmp(argv[1], "selftest") == 0) return cmd_selftest(argc - 2, argv + 2);
    if (strcmp(argv[1], "init") == 0) return cmd_init(argc - 2, argv + 2);
    if (strcmp(argv[1], "info") == 0) return cmd_info(argc - 2, argv + 2);
    if (strcmp(argv[1], "bench") == 0) return cmd_bench(argc - 2, argv + 2);
    if (strcmp(argv[1], "encode") == 0) return cmd_encode(argc - 2, argv + 2);
    if (strcmp(argv[1], "decode") == 0) return cmd_decode(argc - 2, argv + 2);
    if (strcmp(argv[1], "tokenizer-train") == 0) return cmd_tokenizer_train(argc - 2, argv + 2);
    fprintf(stderr, "dpo: unknown command '%s' (see 'dpo --help')\n", argv[1]);
    return 2;
}

/* Standard output is checked once at the end, where stdio reports what failed
 * on the way (a full disk, a closed pipe): `dpo encode > /dev/full` must not
 * exit 0. */
static int finish_stdout(const char *cmd, int rc) {
    int bad = fflush(stdout) != 0 || ferror(stdout);
    int err = errno;
    if (fclose(stdout) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    if (bad) {
        fprintf(stderr, "dpo %s: error: standard output: write failed: %s\n", cmd, strerror(err));
        return rc != 0 ? rc : 1;
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        int mr, nr, kc, nc;
        mm_blocking(&mr, &nr, &kc, &nc);
        printf("dpo %s\nmatrix kernel: %s (tile %d x %d, block %d x %d), OpenMP threads: %d\n",
               DPO_VERSION, mm_kernel_name(), mr, nr, kc, nc, util_threads());
        return finish_stdout("--version", 0);
    }
    return finish_stdout(argv[1], run_command(argc, argv));
}
