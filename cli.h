/* cli.h - what every subcommand's command line shares (cli.c): the option
 * tables and their parser, error printing, JSON output helpers and input
 * reading; and the subcommands that live in files of their own (cmd_*.c). */
#ifndef DPO_CLI_H
#define DPO_CLI_H

#include <stddef.h>
#include <stdio.h>
#include "tokenizer.h"
#include "util.h"

/* OPT_STR: a path; OPT_NAME: a word chosen from a list (checked by the command);
 * OPT_LIST: one or more values (repeat the option, or list the values after it);
 * OPT_POS: the one optional positional argument (its name is shown in help);
 * OPT_DOUBLE: a finite, non-negative number (ranges are checked by the module's validator);
 * OPT_TEXT: any text, the empty one too (a prompt). */
typedef enum { OPT_INT, OPT_U64, OPT_DOUBLE, OPT_STR, OPT_NAME, OPT_FLAG, OPT_LIST, OPT_POS, OPT_TEXT } opt_kind;

typedef struct {
    const char **v; /* points into argv */
    int n;
} str_list;

/* One row of a subcommand's option table. A help text may hold "{default}",
 * replaced by the value the variable holds before parsing. */
typedef struct {
    const char *name;  /* "--layers" */
    opt_kind kind;
    void *out;         /* int*, uint64_t*, const char**, int*, str_list* (its v sized argc) */
    long long min, max; /* OPT_INT bounds */
    int required;
    const char *help;
    int seen;
} opt_spec;

#define CLI_NOPTS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Parse argv[0..argc) against opts. Returns 0 to go on, 1 if --help was printed
 * (the command then exits 0), -1 on a usage error (printed; exit 2). */
int cli_parse(const char *cmd, const char *synopsis, int argc, char **argv, opt_spec *opts, int n);

/* Print "dpo CMD: error: MSG" to standard error; returns 1 (the exit status). */
int cli_fail(const char *cmd, const dpo_err *e);

/* An output directory of init or tokenizer-train, checked before any work (see cli.c).
 * Returns 0, or 2 after printing the problem. */
int cli_check_out_dir(const char *cmd, const char *out, const char *const *names, size_t n, const char *in);

/* An output file (--out of sample/eval/pairs/plot, --svg of explain), checked before
 * any work: not an input file, not in a model or tokenizer directory (see cli.c).
 * Returns 0, or 2 after printing the problem. */
int cli_check_out_file(const char *cmd, const char *opt, const char *out, const char *const *inputs, int n_inputs,
                       const char *const *dirs, int n_dirs);

/* JSON output: "key": number (null when not finite), and "key": "string" where
 * bytes that are not valid UTF-8 become U+FFFD, so every line written is valid
 * JSON whatever a model generated. */
void cli_put_num(FILE *fp, const char *key, double x);
void cli_put_str(FILE *fp, const char *key, const char *s, size_t len);

/* Read FILE whole, or standard input when path is NULL or "-" (at most 4 GiB). */
int cli_read_input(const char *path, char **out, size_t *len, dpo_err *e);

/* Load the tokenizer of --tokenizer, else of --model. Returns 0, 1 (load failed)
 * or 2 (neither given), after printing the problem. */
int cli_open_tokenizer(const char *cmd, const char *tok_dir, const char *model_dir, tok_tokenizer **t);

/* Subcommands in files of their own. */
/* SIGINT and SIGTERM during training: the first sets a flag the training loop
 * asks after every step (cli_stop_requested, a train or ppo callback), so the
 * run stops at the step's end with a checkpoint; a second one ends the process
 * at once. cli_interrupt_exit prints where the checkpoint is and how to
 * resume, and returns the exit status 128 + the signal. */
void cli_catch_interrupts(void);
int cli_stop_requested(void *ctx);
int cli_interrupt_exit(const char *cmd, const char *out_dir, long step);

int cmd_sample(int argc, char **argv); /* cmd_generate.c */
int cmd_eval(int argc, char **argv);   /* cmd_generate.c */
int cmd_pairs(int argc, char **argv);  /* cmd_generate.c */
int cmd_sentiment(int argc, char **argv); /* cmd_sentiment.c */
int cmd_explain(int argc, char **argv); /* cmd_explain.c: the implicit reward, token by token */
int cmd_corpus(int argc, char **argv);  /* cmd_corpus.c: the synthetic movie-review corpus */
int cmd_plot(int argc, char **argv);    /* cmd_plot.c: a TSV table drawn as an SVG chart */
int cmd_bench(int argc, char **argv);   /* cmd_bench.c: passes, matrix products and DPO steps, timed */
int cmd_ppo(int argc, char **argv);     /* cmd_ppo.c: PPO, the RLHF baseline (ppo_train.c) */
int cmd_selftest(int argc, char **argv); /* cmd_selftest.c: this build checked on this CPU (selftest.c) */

#endif
