/* explain.h - where the implicit reward of a response lives: each response
 * token's share beta (log pi(y_t | x, y_<t) - log pi_ref(y_t | x, y_<t)) of the
 * implicit reward, the sums, and for a preference pair the reward margin and the
 * weight the pair gets in the DPO gradient; and the same drawn as an SVG
 * picture. See explain.c. */
#ifndef DPO_EXPLAIN_H
#define DPO_EXPLAIN_H

#include <stddef.h>
#include "data.h"
#include "model.h"
#include "tokenizer.h"
#include "util.h"

typedef struct {
    int id;           /* token id */
    const char *text; /* the token made visible (explain_visible), or "<|endoftext|>" for the
                         end-of-text id: valid UTF-8, NUL-terminated; points into the result */
    int eos;          /* 1: the end-of-text token */
    int newline;      /* 1: the token's bytes hold a line break */
    double logp;      /* log pi(y_t | x, y_<t), as the policy's forward pass computed it (a float) */
    double ref_logp;  /* log pi_ref(y_t | x, y_<t), the same under the reference */
    double reward;    /* beta (logp - ref_logp): this token's share of the implicit reward */
} explain_token;

typedef struct {
    const char *name;       /* "chosen", "rejected", "completion" or "response" */
    explain_token *tok;     /* (n) the response's tokens, its end-of-text last (unless cut) */
    int n;
    int cut;                /* 1: truncation cut the response, so its end-of-text is missing */
    double logp, ref_logp;  /* log pi(y|x), log pi_ref(y|x): the tokens' float log-probs summed in
                               double in token order, by data_seq_logp as dpo logp sums them */
    double reward;          /* obj_implicit_reward(beta, logp, ref_logp), what dpo logp prints */
} explain_response;

typedef struct {
    double beta;
    explain_token *prompt;  /* (n_prompt) the prompt's tokens as the models saw them (no values) */
    int n_prompt;
    int truncated;          /* 1: the row was cut to fit the maximum length */
    int n_resp;             /* 2 for a preference pair (chosen, rejected), 1 for one response */
    explain_response resp[2];
    double margin;          /* pairs: beta h = reward(chosen) - reward(rejected) */
    double weight;          /* pairs: sigmoid(-beta h), the pair's weight in the DPO gradient */
    double scale;           /* the largest |reward| of a response token (0 if none): the colour scale */
    char *text_pool;        /* the visible texts, one allocation */
    explain_token *tok_pool;/* every explain_token, one allocation */
} explain_result;

/* The two models and the tokenizer fit together: the reference has the policy's
 * configuration (layers, heads, width, context, vocabulary) and the tokenizer
 * has no more tokens than the model's vocabulary. 0, or -1 naming what differs. */
int explain_check_models(const model *pol, const model *ref, const tok_tokenizer *t, dpo_err *e);

/* Row `row` (0-based) of d, which data.c loaded, tokenized and truncated: one
 * forward pass of the policy and one of the reference over the row's packed
 * sequences (data_batch_build), then for every response token its log-probs and
 * its share of the implicit reward. eos is the end-of-text id the data was
 * loaded with. beta must be finite and > 0. Fills *r (free with explain_free),
 * or returns -1 with r empty. */
int explain_row(explain_result *r, model *pol, model *ref, const tok_tokenizer *t, int eos, const data_set *d,
                int row, double beta, dpo_err *e);
void explain_free(explain_result *r);

/* A token's bytes s[0..len) (any bytes, NUL included) as visible text in out:
 * valid UTF-8 is copied, except that newline, tab and carriage return become
 * \n, \t, \r, a backslash \\, other control bytes and bytes that are not valid
 * UTF-8 \xNN, and C1 controls, bidirectional overrides and U+FFFE/U+FFFF
 * \uNNNN. The result is valid UTF-8 with no control character; out needs
 * EXPLAIN_VISIBLE_CAP(len) bytes. Returns its length (without the NUL). */
#define EXPLAIN_VISIBLE_CAP(len) (4 * (len) + 1)
size_t explain_visible(char *out, const unsigned char *s, size_t len);

/* A value's place on the colour scale: v / scale clamped to [-1, 1]; 0 when
 * scale is not > 0 or v is not finite. */
double explain_intensity(double v, double scale);

/* The result drawn as an SVG 1.1 document in a fresh buffer (*out, *len; the
 * caller frees *out): the prompt, each response's tokens as boxes coloured by
 * their share (green positive, red negative, stronger with |share|, flowing in
 * lines), the sums, the margin and weight of a pair, and a legend of the colour
 * scale. caption (may be NULL) is one line of free text (what was explained).
 * Every text is XML-escaped and made valid UTF-8 (U+FFFD for an invalid byte);
 * the document starts with "<svg". */
int explain_svg(const explain_result *r, const char *caption, char **out, size_t *len, dpo_err *e);

#endif
