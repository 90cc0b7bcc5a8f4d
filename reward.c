/* reward.c - owns the choice of reward scorer and its lifetime: it opens the
 * scorer a spec names ("sentiment": VADER with the embedded lexicon, or a
 * lexicon file; "model:DIR": a reward model and its tokenizer) and maps the
 * scorer's output to a reward.
 *
 * It must never print or keep mutable global state. A sentiment reward never
 * changes after it is opened (scoring only reads it, so threads may share
 * one); a model reward's forward pass uses the model's own buffers (one call at
 * a time). The rules of sentiment live in vader.c, the lexicon bytes are
 * compiled in by tools/embed.c (see the Makefile); the reward model's math is
 * model.c's, its encoding data.c's, so that a completion is scored exactly as
 * dpo rm-train trained on it. */
#include "reward.h"

#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "model.h"
#include "tokenizer.h"

typedef enum { REWARD_SENTIMENT, REWARD_MODEL } reward_kind;

struct reward {
    reward_kind kind;
    char *name;             /* the spec it was opened with */
    vader_lexicon *lexicon; /* REWARD_SENTIMENT */
    model rm;               /* REWARD_MODEL: forward-only, with a score head */
    tok_tokenizer *tok;     /* REWARD_MODEL: the model directory's tokenizer */
    int eos;                /* REWARD_MODEL: the end-of-text id */
    data_batch batch;       /* REWARD_MODEL: one sequence at a time */
};

static int set_name(reward *r, const char *spec, dpo_err *e) {
    size_t n = strlen(spec);
    r->name = malloc(n + 1);
    if (!r->name) return dpo_err_oom(e, "the reward's name", n + 1, 1);
    memcpy(r->name, spec, n + 1);
    return 0;
}

/* "model:DIR": the reward model and its tokenizer, checked against each other */
static int open_model(reward **out, const char *spec, dpo_err *e) {
    const char *dir = spec + 6;
    reward *r = calloc(1, sizeof *r);
    if (!r) return dpo_err_oom(e, "the reward", 1, sizeof *r);
    r->kind = REWARD_MODEL;
    if (!*dir) {
        dpo_errf(e, "reward 'model:' names no directory (model:DIR)");
    } else if (set_name(r, spec, e) == 0 && model_load_any(&r->rm, dir, e) == 0 && tok_load(&r->tok, dir, e) == 0) {
        if (!r->rm.cfg.score_head) {
            dpo_errf(e, "%s: is a language model, not a reward model (no score head); train one with dpo rm-train", dir);
        } else if (tok_vocab_size(r->tok) > r->rm.cfg.vocab_size) {
            dpo_errf(e, "%s: the tokenizer has %d tokens, more than the model's vocab_size %d", dir,
                     tok_vocab_size(r->tok), r->rm.cfg.vocab_size);
        } else {
            r->eos = tok_eot_id(r->tok) >= 0 ? tok_eot_id(r->tok) : r->rm.cfg.eos_token_id;
            model_set_no_grad(&r->rm, 1);
            *out = r;
            return 0;
        }
    }
    reward_free(r);
    return -1;
}

static int open_sentiment(reward **out, const char *text, size_t len, const char *name, dpo_err *e) {
    reward *r = calloc(1, sizeof *r);
    if (!r) return dpo_err_oom(e, "the reward", 1, sizeof *r);
    r->kind = REWARD_SENTIMENT;
    if (set_name(r, "sentiment", e) != 0 || vader_load(&r->lexicon, text, len, name, e) != 0) {
        reward_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int reward_open(reward **out, const char *spec, dpo_err *e) {
    *out = NULL;
    if (strcmp(spec, "sentiment") == 0)
        return open_sentiment(out, (const char *)vader_embedded_lexicon, vader_embedded_lexicon_len,
                              "embedded data/vader/vader_lexicon.txt", e);
    if (strncmp(spec, "model:", 6) == 0) return open_model(out, spec, e);
    return dpo_errf(e, "unknown reward '%s' (known: sentiment, model:DIR)", spec);
}

int reward_open_sentiment_file(reward **out, const char *path, dpo_err *e) {
    char *text;
    size_t len;
    int rc;
    *out = NULL;
    if (util_read_file(path, VADER_MAX_LEXICON_BYTES, &text, &len, e) != 0) return -1;
    rc = open_sentiment(out, text, len, path, e);
    free(text);
    return rc;
}

void reward_free(reward *r) {
    if (!r) return;
    vader_free(r->lexicon);
    model_free(&r->rm);
    tok_free(r->tok);
    data_batch_free(&r->batch);
    free(r->name);
    free(r);
}

const char *reward_name(const reward *r) { return r->name; }

double reward_from_compound(double compound) { return (compound + 1.0) / 2.0; }

int reward_sentiment_details(const reward *r, const char *text, size_t len, vader_scores *out, dpo_err *e) {
    if (r->kind != REWARD_SENTIMENT) return dpo_errf(e, "reward '%s' has no sentiment scores", reward_name(r));
    return vader_score(r->lexicon, text, len, out, e);
}

/* the reward model's score of prompt ++ completion ++ <|endoftext|>, encoded and
 * cut as dpo rm-train's rows are (data_from_texts), read at the last token */
static int score_model(reward *r, const char *prompt, size_t prompt_len, const char *text, size_t len, double *out,
                       dpo_err *e) {
    data_set d;
    int max_len = r->rm.cfg.n_ctx, max_prompt = DATA_DEFAULT_MAX_PROMPT_LEN, row = 0, rc = -1;
    size_t n;
    memset(&d, 0, sizeof d);
    data_fit_lengths(&max_len, &max_prompt, r->rm.cfg.n_ctx);
    if (data_from_texts(&d, prompt, prompt_len, text, len, r->tok, r->eos, max_len, max_prompt, e) != 0) return -1;
    n = data_batch_build_whole(&r->batch, &d, &row, 1);
    if (n == 0)
        dpo_err_oom(e, "the reward model's batch", data_batch_bytes(&d, &row, 1, 1), 1);
    else if (model_forward_score(&r->rm, r->batch.logp, r->batch.tokens, r->batch.seq_len, 1, e) == 0) {
        *out = r->batch.logp[n - 1];
        rc = 0;
    }
    data_free(&d);
    return rc;
}

int reward_score(reward *r, const char *prompt, size_t prompt_len, const char *text, size_t len, double *out,
                 dpo_err *e) {
    vader_scores s;
    switch (r->kind) {
    case REWARD_SENTIMENT:
        if (vader_score(r->lexicon, text, len, &s, e) != 0) return -1;
        *out = reward_from_compound(s.compound);
        return 0;
    case REWARD_MODEL:
        return score_model(r, prompt, prompt_len, text, len, out, e);
    }
    return dpo_errf(e, "reward of an unknown kind");
}
