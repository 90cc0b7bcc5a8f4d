/* data.h - datasets (JSONL preference pairs and SFT rows, tokenized and
 * truncated) and packed batches of their sequences. See data.c. */
#ifndef DPO_DATA_H
#define DPO_DATA_H

#include <stddef.h>
#include <stdint.h>
#include "model.h"
#include "tokenizer.h"
#include "util.h"

/* The default lengths of dpo train, sft and logp (tokens): the longest prompt +
 * response, and the prompt tokens kept when a row is too long. */
#define DATA_DEFAULT_MAX_LEN 512
#define DATA_DEFAULT_MAX_PROMPT_LEN 256

/* Fit the requested lengths to a model context of n_ctx tokens: max_len at most
 * n_ctx, max_prompt_len at most max_len - 1 (a response needs a token). */
void data_fit_lengths(int *max_len, int *max_prompt_len, int n_ctx);

/* One row after tokenization and truncation. A preference pair has two
 * sequences, prompt ++ chosen and prompt ++ rejected; a supervised (SFT) row has
 * one, prompt ++ completion, with the completion stored as "chosen". Each
 * response ends with the end-of-text id unless truncation cut it off. */
typedef struct {
    size_t off;       /* into the pool: prompt, then chosen, then rejected tokens */
    int n_prompt;     /* >= 1 */
    int n_chosen;     /* >= 1, including the end-of-text id when it fits */
    int n_rejected;   /* >= 1 for a pair; 0 in SFT data */
    long line;        /* line of the JSONL file it came from */
    int truncated;    /* 1 when the truncation rule cut the row (prompt, responses or both) */
} data_row;

typedef struct {
    data_row *rows;
    int n_rows;
    int *pool;        /* (n_pool) token ids of every row */
    size_t n_pool;
    int n_truncated;  /* rows that had to be cut to fit max_len */
    int sft;          /* 1: SFT rows (one sequence each), 0: preference pairs */
} data_set;

/* Read JSONL rows {"prompt": str, "chosen": str, "rejected": str} (other keys
 * ignored, blank lines skipped). prompt and each response are encoded
 * separately, so no BPE merge crosses the boundary; an empty prompt becomes
 * [eos]. Truncation: when prompt plus the longer response (with its eos) exceeds
 * max_len, keep the last max_prompt_len prompt tokens, then cut each response
 * (with its eos) to fit. A malformed row is an error naming the file and line,
 * and nothing is returned. */
int data_load_pairs(data_set *d, const char *path, const tok_tokenizer *t, int eos, int max_len,
                    int max_prompt_len, dpo_err *e);

/* The same for supervised fine-tuning: rows {"prompt": str, "completion": str},
 * or {"text": str}, which is read as an empty prompt (so [eos]) and the text as
 * the completion; a row with both "text" and "completion" is an error. The
 * completion gets the end-of-text id, prompt and completion are encoded
 * separately, and truncation is the rule above with the completion as the only
 * response. d->sft is 1 and every n_rejected is 0. */
int data_load_sft(data_set *d, const char *path, const tok_tokenizer *t, int eos, int max_len,
                  int max_prompt_len, dpo_err *e);

/* data_load_pairs or data_load_sft, whichever the file holds: SFT rows when its
 * first row has a "completion" or "text" key and neither "chosen" nor
 * "rejected", preference pairs otherwise; every row must then be of that kind. */
int data_load_any(data_set *d, const char *path, const tok_tokenizer *t, int eos, int max_len, int max_prompt_len,
                  dpo_err *e);

/* One SFT row made of two texts given directly, exactly as data_load_sft makes
 * the row {"prompt": prompt, "completion": completion}: the same encoding,
 * end-of-text and truncation (its line is 0). */
int data_from_texts(data_set *d, const char *prompt, size_t prompt_len, const char *completion, size_t completion_len,
                    const tok_tokenizer *t, int eos, int max_len, int max_prompt_len, dpo_err *e);
void data_free(data_set *d);
/* The order in which epoch k of a run visits n rows: a permutation drawn from
 * seed + k (Fisher-Yates with util_rng); row number p of the run is
 * perm_{p / n}[p % n]. dpo train's pairs and dpo ppo's prompts. */
void data_epoch_order(int *perm, int n, uint64_t seed, long epoch);

/* Summed response log-probabilities of every sequence under model m. Pairs:
 * logp[2 r] = log p(chosen | prompt), logp[2 r + 1] = log p(rejected | prompt);
 * SFT data: logp[r] = log p(completion | prompt). micro_batch rows per forward
 * pass (results do not depend on it: a sequence's log-probs are the same alone
 * or packed). progress (may be NULL) is called after every forward pass with the
 * rows done so far and the rows in all. */
typedef void (*data_progress_fn)(void *ctx, int done, int total);
int data_logps(model *m, const data_set *d, int micro_batch, double *logp, data_progress_fn progress,
               void *ctx, dpo_err *e);

/* The truncation rule of data_load_pairs on token counts (exposed for tests):
 * with responses n_c and n_r (each with its eos; n_r = 0 for SFT rows), when
 * n_prompt + max(n_c, n_r) > max_len, keep the last max_prompt_len prompt tokens
 * (*prompt_skip = the first ones dropped) and cut each response to max_len minus
 * the prompt. Counts may be up to 2^30 each: sums are computed without overflow.
 * Returns 1 when the row was cut, else 0. */
int data_truncate_lengths(int *n_prompt, size_t *prompt_skip, int *n_c, int *n_r, int max_len, int max_prompt_len);

/* ------------------------------------------------------------------------ */
/* rows of text for generation and scoring (dpo sample, eval, pairs) */

/* One JSONL row's texts, kept as read (the output repeats them). */
typedef struct {
    char *prompt;          /* (prompt_len + 1) NUL-terminated; may hold NUL bytes */
    size_t prompt_len;
    char *completion;      /* NULL unless DATA_TEXT_COMPLETION */
    size_t completion_len;
    double reward;         /* 0 unless DATA_TEXT_REWARD */
    long line;
} data_text_row;

typedef struct {
    data_text_row *rows;
    int n_rows;
} data_texts;

enum { DATA_TEXT_COMPLETION = 1, DATA_TEXT_REWARD = 2 };

/* Read JSONL rows {"prompt": str} (other keys ignored, blank lines skipped),
 * with "completion" (a string) and "reward" (a number) also required when the
 * fields ask for them. A malformed row is an error naming the file and line, and
 * nothing is returned. */
int data_load_texts(data_texts *d, const char *path, int fields, dpo_err *e);
void data_texts_free(data_texts *d);

/* Encode a prompt for generation into a new array *ids (n tokens): an empty
 * prompt is [eos], and a prompt of more than max_tokens keeps its last
 * max_tokens (as training truncates a prompt). Returns 0, 1 when it was cut,
 * or -1 on error. */
int data_encode_prompt(const tok_tokenizer *t, const char *text, size_t len, int eos, int max_tokens, int **ids,
                       int *n, dpo_err *e);

/* ------------------------------------------------------------------------ */
/* packed batches */

/* Rows packed into one token stream for model_forward. per = 2 sequences per
 * pair (chosen then rejected), or 1 per SFT row (the completion); sequence k of
 * row i is number per * i + k. A sequence prompt ++ response is fed without its
 * last token (it predicts nothing); the target at position j is the token at
 * j + 1 when that token belongs to the response, else -1, so exactly |response|
 * positions carry a log-prob. Buffers grow as needed and are reused. */
typedef struct {
    int *tokens, *targets;   /* (N) */
    int *seq_len;            /* (per n) */
    int *resp_start;         /* (per n) index in the stream of each sequence's first target */
    int *resp_len;           /* (per n) */
    float *logp, *dlogp;     /* (N) */
    float *dtok;             /* (N) unlikelihood's per-token gradients */
    size_t cap_tok;
    int cap_seq;
} data_batch;

/* sequences per row: 2 for pairs, 1 for SFT rows */
int data_seqs_per_row(const data_set *d);
/* Fill b for rows[0..n) of d; returns the number of tokens N (0 on out of memory). */
size_t data_batch_build(data_batch *b, const data_set *d, const int *rows, int n);
/* The same rows for a reward or value model (model_forward_score): every
 * sequence fed whole, prompt ++ response (with its end-of-text when it has
 * one), targets all -1; resp_start[seq] is the stream index of the response's
 * first token, so the sequence's last token is at resp_start + resp_len - 1. */
size_t data_batch_build_whole(data_batch *b, const data_set *d, const int *rows, int n);
/* The bytes the two above allocate for rows[0..n) (whole: 0 data_batch_build, 1
 * data_batch_build_whole), for the message when they return 0. */
size_t data_batch_bytes(const data_set *d, const int *rows, int n, int whole);
/* log p(response | prompt) of sequence seq of the batch: its targets' log-probs summed in double */
double data_seq_logp(const data_batch *b, int seq);
void data_batch_free(data_batch *b);

#endif
