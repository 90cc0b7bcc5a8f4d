/* data.c - owns the datasets: reading JSONL preference pairs and SFT rows
 * (untrusted bytes: every row is validated, a malformed one is an error naming
 * the file, line and column, and nothing of the file is kept), tokenizing them,
 * the truncation rule, packing rows into one token stream for the model, and
 * the summed response log-probabilities of every row (data_logps).
 * It must never print, never keep a half-read file, and never touch the
 * network; errors go back in a dpo_err. */
#include "data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define MAX_DATA_BYTES ((size_t)1 << 34) /* 16 GiB */

/* ======================================================================== */
/* preference data                                                           */
/* ======================================================================== */

void data_free(data_set *d) {
    free(d->rows);
    free(d->pool);
    memset(d, 0, sizeof *d);
}

static int pool_append(data_set *d, size_t *cap, const int *ids, size_t n, dpo_err *e) {
    if (d->n_pool + n > *cap) {
        size_t nc = *cap ? *cap : 65536;
        int *q;
        while (nc < d->n_pool + n) nc *= 2;
        q = realloc(d->pool, nc * sizeof *q);
        if (!q) return dpo_err_oom(e, "the rows' token pool", nc, sizeof *q);
        d->pool = q;
        *cap = nc;
    }
    memcpy(d->pool + d->n_pool, ids, n * sizeof *ids);
    d->n_pool += n;
    return 0;
}

/* Truncation, as the help text states:
 *   response' = response ++ [eos]
 *   if P + max(|chosen'|, |rejected'|) > max_len: keep the last max_prompt_len prompt tokens
 *   then cut each response' to max_len - P (keeping its start).
 * The sum is taken in long long: each count may be 2^30, and two of them overflow an int. */
int data_truncate_lengths(int *n_prompt, size_t *prompt_skip, int *n_c, int *n_r, int max_len, int max_prompt_len) {
    int longer = *n_c > *n_r ? *n_c : *n_r;
    *prompt_skip = 0;
    if ((long long)*n_prompt + longer <= max_len) return 0;
    if (*n_prompt > max_prompt_len) {
        *prompt_skip = (size_t)(*n_prompt - max_prompt_len);
        *n_prompt = max_prompt_len;
    }
    if (*n_c > max_len - *n_prompt) *n_c = max_len - *n_prompt;
    if (*n_r > max_len - *n_prompt) *n_r = max_len - *n_prompt;
    return 1;
}

void data_fit_lengths(int *max_len, int *max_prompt_len, int n_ctx) {
    if (*max_len > n_ctx) *max_len = n_ctx;
    if (*max_prompt_len >= *max_len) *max_prompt_len = *max_len - 1;
}

/* The texts of one row into text[], len[]: pairs {prompt, chosen, rejected}; SFT
 * {prompt, completion}, or {text} as an empty prompt and the text. Returns the
 * number of texts, or -1 with the problem in e. */
static int row_texts(const json_value *row, int sft, const char **text, size_t *len, dpo_err *e) {
    static const char *const pair_keys[3] = {"prompt", "chosen", "rejected"};
    static const char *const sft_keys[2] = {"prompt", "completion"};
    const char *const *keys = sft ? sft_keys : pair_keys;
    int n = sft ? 2 : 3, k, rc;
    if (row->type != JSON_OBJECT) return dpo_errf(e, "not a JSON object");
    if (sft) {
        rc = json_get_string(row, "text", &text[1], &len[1], e);
        if (rc < 0) return -1;
        if (rc == 0) {
            if (json_get(row, "completion"))
                return dpo_errf(e, "both \"text\" and \"completion\": a row is {\"text\"} or {\"prompt\", \"completion\"}");
            text[0] = "";
            len[0] = 0;
            return 2;
        }
    }
    for (k = 0; k < n; k++) {
        rc = json_get_string(row, keys[k], &text[k], &len[k], e);
        if (rc > 0)
            return sft ? dpo_errf(e, "missing key \"%s\" (a row is {\"text\"} or {\"prompt\", \"completion\"})", keys[k])
                       : dpo_errf(e, "missing key \"%s\"", keys[k]);
        if (rc < 0) return -1;
    }
    return n;
}

/* The token ids of one row's texts, reused from row to row: ids[k] holds text
 * k (prompt, chosen, rejected / prompt, completion) with its end-of-text. */
typedef struct {
    int *ids[3];
    size_t n[3], cap[3];
} row_ids;

static int ids_push(row_ids *r, int k, int id) {
    if (r->n[k] == r->cap[k]) {
        size_t nc = r->cap[k] ? 2 * r->cap[k] : 16;
        int *np = realloc(r->ids[k], nc * sizeof *np);
        if (!np) return -1;
        r->ids[k] = np;
        r->cap[k] = nc;
    }
    r->ids[k][r->n[k]++] = id;
    return 0;
}

/* Encode a row's texts str[0..n_texts) into r: each text separately (no BPE
 * merge crosses a boundary); responses end with eos, and an empty prompt
 * becomes [eos] (the model needs a first token). Errors do not name the file:
 * the caller adds it. */
static int encode_texts(row_ids *r, const char *const *str, const size_t *slen, int n_texts, int sft,
                        const tok_tokenizer *t, int eos, dpo_err *e) {
    static const char *const names[2][3] = {{"prompt", "chosen", "rejected"}, {"prompt", "completion", ""}};
    int k;
    for (k = 0; k < n_texts; k++) {
        r->n[k] = 0;
        if (tok_encode(t, str[k], slen[k], &r->ids[k], &r->n[k], &r->cap[k], e) != 0) return -1;
        if ((k > 0 || r->n[k] == 0) && ids_push(r, k, eos) != 0)
            return dpo_err_oom(e, "a row's token ids", r->cap[k] ? 2 * r->cap[k] : 16, sizeof *r->ids[k]);
        if (r->n[k] > (size_t)1 << 30) return dpo_errf(e, "\"%s\" is longer than 2^30 tokens", names[sft][k]);
    }
    return 0;
}

/* encode_texts of a parsed row's texts */
static int encode_row(row_ids *r, const json_value *row, int sft, const tok_tokenizer *t, int eos, dpo_err *e) {
    const char *str[3];
    size_t slen[3];
    int n_texts = row_texts(row, sft, str, slen, e);
    if (n_texts < 0) return -1;
    return encode_texts(r, str, slen, n_texts, sft, t, eos, e);
}

/* Truncate the encoded row (data_truncate_lengths) and append it to d. */
static int append_row(data_set *d, const row_ids *r, long line, int max_len, int max_prompt_len, size_t *cap_pool,
                      size_t *cap_rows, dpo_err *e) {
    data_row row;
    size_t skip;
    row.n_prompt = (int)r->n[0];
    row.n_chosen = (int)r->n[1];
    row.n_rejected = d->sft ? 0 : (int)r->n[2];
    row.line = line;
    row.truncated = data_truncate_lengths(&row.n_prompt, &skip, &row.n_chosen, &row.n_rejected, max_len,
                                          max_prompt_len);
    d->n_truncated += row.truncated;
    row.off = d->n_pool;
    if (pool_append(d, cap_pool, r->ids[0] + skip, (size_t)row.n_prompt, e) != 0 ||
        pool_append(d, cap_pool, r->ids[1], (size_t)row.n_chosen, e) != 0 ||
        (row.n_rejected > 0 && pool_append(d, cap_pool, r->ids[2], (size_t)row.n_rejected, e) != 0))
        return -1;
    if ((size_t)d->n_rows == *cap_rows) {
        size_t nc = *cap_rows ? 2 * *cap_rows : 1024;
        data_row *nr = realloc(d->rows, nc * sizeof *nr);
        if (!nr) return dpo_err_oom(e, "the rows", nc, sizeof *nr);
        d->rows = nr;
        *cap_rows = nc;
    }
    d->rows[d->n_rows++] = row;
    return 0;
}

/* Every row of a JSONL file, in order: blank lines skipped, each other line
 * parsed as one JSON value and handed to fn (which must not keep it). An error
 * of fn's is prefixed with the file and line. */
typedef int (*row_fn)(void *ctx, const json_value *row, long line, dpo_err *e);

static int for_each_row(const char *path, row_fn fn, void *ctx, dpo_err *e) {
    char *text, *p, *end;
    size_t len;
    long line = 0;
    int rc = 0;
    if (util_read_file(path, MAX_DATA_BYTES, &text, &len, e) != 0) return -1;
    end = text + len;
    for (p = text; p < end && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *q;
        json_value *row;
        line++;
        for (q = p; q < le && (*q == ' ' || *q == '\t' || *q == '\r'); q++) {}
        if (q < le) { /* not a blank line */
            if (json_parse_line(p, (size_t)(le - p), path, line, &row, e) != 0) {
                rc = -1;
                break;
            }
            rc = fn(ctx, row, line, e);
            json_free(row);
            if (rc != 0) dpo_err_prefix(e, "%s: line %ld", path, line);
        }
        p = nl ? nl + 1 : end;
    }
    free(text);
    return rc;
}

typedef struct {
    data_set *d;
    row_ids r;
    const tok_tokenizer *t;
    int eos, max_len, max_prompt_len;
    size_t cap_pool, cap_rows;
} load_ctx;

/* the lengths every loader needs: a prompt token and a response token at least */
static int check_lengths(int max_len, int max_prompt_len, dpo_err *e) {
    if (max_prompt_len < 1 || max_len < max_prompt_len + 1)
        return dpo_errf(e, "max_len (%d) must exceed max_prompt_len (%d) >= 1", max_len, max_prompt_len);
    return 0;
}

/* The kind of data_load_any's file, from its first row: SFT (1) when it has
 * "completion" or "text" and neither "chosen" nor "rejected", else pairs (0). */
static int row_is_sft(const json_value *row) {
    if (json_get(row, "chosen") || json_get(row, "rejected")) return 0;
    return json_get(row, "completion") || json_get(row, "text") ? 1 : 0;
}

/* one row into c->d; d->sft < 0 (data_load_any): the first row decides the kind */
static int load_one(void *ctx, const json_value *row, long line, dpo_err *e) {
    load_ctx *c = ctx;
    if (c->d->sft < 0) c->d->sft = row_is_sft(row);
    if (encode_row(&c->r, row, c->d->sft, c->t, c->eos, e) != 0) return -1;
    if (c->d->n_rows == (1 << 30)) return dpo_errf(e, "more than 2^30 rows");
    return append_row(c->d, &c->r, line, c->max_len, c->max_prompt_len, &c->cap_pool, &c->cap_rows, e);
}

static int load_rows(data_set *d, const char *path, const tok_tokenizer *t, int eos, int max_len,
                     int max_prompt_len, int sft, dpo_err *e) {
    load_ctx c;
    int k, rc;
    memset(d, 0, sizeof *d);
    memset(&c, 0, sizeof c);
    d->sft = sft;
    if (check_lengths(max_len, max_prompt_len, e) != 0) return -1;
    c.d = d;
    c.t = t;
    c.eos = eos;
    c.max_len = max_len;
    c.max_prompt_len = max_prompt_len;
    rc = for_each_row(path, load_one, &c, e);
    if (rc == 0 && d->n_rows == 0) rc = dpo_errf(e, "%s: no %s in the file", path, sft ? "rows" : "preference pairs");
    for (k = 0; k < 3; k++) free(c.r.ids[k]);
    if (rc != 0) data_free(d);
    return rc;
}

int data_load_pairs(data_set *d, const char *path, const tok_tokenizer *t, int eos, int max_len,
                  int max_prompt_len, dpo_err *e) {
    return load_rows(d, path, t, eos, max_len, max_prompt_len, 0, e);
}

int data_load_sft(data_set *d, const char *path, const tok_tokenizer *t, int eos, int max_len,
                  int max_prompt_len, dpo_err *e) {
    return load_rows(d, path, t, eos, max_len, max_prompt_len, 1, e);
}

int data_load_any(data_set *d, const char *path, const tok_tokenizer *t, int eos, int max_len, int max_prompt_len,
                  dpo_err *e) {
    return load_rows(d, path, t, eos, max_len, max_prompt_len, -1, e);
}

int data_from_texts(data_set *d, const char *prompt, size_t prompt_len, const char *completion, size_t completion_len,
                    const tok_tokenizer *t, int eos, int max_len, int max_prompt_len, dpo_err *e) {
    const char *str[2];
    size_t slen[2], cap_pool = 0, cap_rows = 0;
    row_ids r;
    int k, rc;
    memset(d, 0, sizeof *d);
    memset(&r, 0, sizeof r);
    d->sft = 1;
    if (check_lengths(max_len, max_prompt_len, e) != 0) return -1;
    str[0] = prompt;
    slen[0] = prompt_len;
    str[1] = completion;
    slen[1] = completion_len;
    rc = encode_texts(&r, str, slen, 2, 1, t, eos, e);
    if (rc == 0) rc = append_row(d, &r, 0, max_len, max_prompt_len, &cap_pool, &cap_rows, e);
    for (k = 0; k < 3; k++) free(r.ids[k]);
    if (rc != 0) data_free(d);
    return rc;
}

/* ======================================================================== */
/* rows of text for generation and scoring                                   */
/* ======================================================================== */

void data_texts_free(data_texts *d) {
    int i;
    for (i = 0; i < d->n_rows; i++) {
        free(d->rows[i].prompt);
        free(d->rows[i].completion);
    }
    free(d->rows);
    memset(d, 0, sizeof *d);
}

/* a NUL-terminated copy of s[0..len) (strings may hold NUL bytes: len is kept) */
static char *copy_text(const char *s, size_t len) {
    char *c = malloc(len + 1);
    if (c) {
        memcpy(c, s, len);
        c[len] = '\0';
    }
    return c;
}

typedef struct {
    data_texts *d;
    int fields;
    size_t cap;
} texts_ctx;

static int text_one(void *ctx, const json_value *row, long line, dpo_err *e) {
    texts_ctx *c = ctx;
    data_text_row r;
    const char *s;
    size_t len;
    int rc;
    memset(&r, 0, sizeof r);
    r.line = line;
    if (row->type != JSON_OBJECT) return dpo_errf(e, "not a JSON object");
    if ((rc = json_get_string(row, "prompt", &s, &len, e)) != 0)
        return rc > 0 ? dpo_errf(e, "missing key \"prompt\"") : -1;
    if (!(r.prompt = copy_text(s, len))) return dpo_err_oom(e, "the prompt", len + 1, 1);
    r.prompt_len = len;
    if (c->fields & DATA_TEXT_COMPLETION) {
        if ((rc = json_get_string(row, "completion", &s, &len, e)) != 0) {
            free(r.prompt);
            return rc > 0 ? dpo_errf(e, "missing key \"completion\"") : -1;
        }
        r.completion = copy_text(s, len);
        r.completion_len = len;
    }
    if ((c->fields & DATA_TEXT_REWARD) && (rc = json_get_number(row, "reward", &r.reward, e)) != 0) {
        free(r.prompt);
        free(r.completion);
        return rc > 0 ? dpo_errf(e, "missing key \"reward\"") : -1;
    }
    if ((c->fields & DATA_TEXT_COMPLETION) && !r.completion) {
        free(r.prompt);
        return dpo_err_oom(e, "the completion", r.completion_len + 1, 1);
    }
    if ((size_t)c->d->n_rows == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 256;
        data_text_row *nr = c->d->n_rows >= (1 << 30) ? NULL : realloc(c->d->rows, nc * sizeof *nr);
        if (!nr) {
            free(r.prompt);
            free(r.completion);
            if (c->d->n_rows >= (1 << 30)) return dpo_errf(e, "more than 2^30 rows");
            return dpo_err_oom(e, "the rows", nc, sizeof *nr);
        }
        c->d->rows = nr;
        c->cap = nc;
    }
    c->d->rows[c->d->n_rows++] = r;
    return 0;
}

int data_load_texts(data_texts *d, const char *path, int fields, dpo_err *e) {
    texts_ctx c;
    int rc;
    memset(d, 0, sizeof *d);
    c.d = d;
    c.fields = fields;
    c.cap = 0;
    rc = for_each_row(path, text_one, &c, e);
    if (rc == 0 && d->n_rows == 0) rc = dpo_errf(e, "%s: no rows in the file", path);
    if (rc != 0) data_texts_free(d);
    return rc;
}

int data_encode_prompt(const tok_tokenizer *t, const char *text, size_t len, int eos, int max_tokens, int **ids,
                       int *n, dpo_err *e) {
    size_t cnt = 0, cap = 0;
    int *v = NULL;
    if (max_tokens < 1) return dpo_errf(e, "a prompt must be allowed at least one token");
    if (tok_encode(t, text, len, &v, &cnt, &cap, e) != 0) {
        free(v);
        return -1;
    }
    if (cnt == 0) { /* an empty prompt is [eos], as in training */
        free(v);
        if (!(v = malloc(sizeof *v))) return dpo_err_oom(e, "the prompt's tokens", 1, sizeof *v);
        v[0] = eos;
        cnt = 1;
    }
    *ids = v;
    if (cnt > (size_t)max_tokens) { /* keep the last max_tokens, as training truncates a prompt */
        memmove(v, v + (cnt - (size_t)max_tokens), (size_t)max_tokens * sizeof *v);
        *n = max_tokens;
        return 1;
    }
    *n = (int)cnt;
    return 0;
}

/* ======================================================================== */
/* packed batches of pairs                                                   */
/* ======================================================================== */


void data_batch_free(data_batch *b) {
    free(b->tokens);
    free(b->targets);
    free(b->seq_len);
    free(b->resp_start);
    free(b->resp_len);
    free(b->logp);
    free(b->dlogp);
    free(b->dtok);
    memset(b, 0, sizeof *b);
}

static int batch_reserve(data_batch *b, size_t n_tok, int n_seq) {
    if (n_tok > b->cap_tok) {
        free(b->tokens);
        free(b->targets);
        free(b->logp);
        free(b->dlogp);
        free(b->dtok);
        b->tokens = malloc(n_tok * sizeof(int));
        b->targets = malloc(n_tok * sizeof(int));
        b->logp = malloc(n_tok * sizeof(float));
        b->dlogp = malloc(n_tok * sizeof(float));
        b->dtok = malloc(n_tok * sizeof(float));
        b->cap_tok = n_tok;
        if (!b->tokens || !b->targets || !b->logp || !b->dlogp || !b->dtok) {
            b->cap_tok = 0; /* so that the next call allocates again */
            return -1;
        }
    }
    if (n_seq > b->cap_seq) {
        free(b->seq_len);
        free(b->resp_start);
        free(b->resp_len);
        b->seq_len = malloc((size_t)n_seq * sizeof(int));
        b->resp_start = malloc((size_t)n_seq * sizeof(int));
        b->resp_len = malloc((size_t)n_seq * sizeof(int));
        b->cap_seq = n_seq;
        if (!b->seq_len || !b->resp_start || !b->resp_len) {
            b->cap_seq = 0;
            return -1;
        }
    }
    return 0;
}

int data_seqs_per_row(const data_set *d) { return d->sft ? 1 : 2; }

/* the tokens N of the batch of rows[0..n): whole = 0: each sequence without its
 * last token; whole = 1: every token */
static size_t batch_tokens(const data_set *d, const int *rows, int n, int whole) {
    size_t N = 0;
    int per = data_seqs_per_row(d), i, cut = whole ? 0 : 1;
    for (i = 0; i < n; i++) {
        const data_row *r = &d->rows[rows[i]];
        N += (size_t)(r->n_prompt + r->n_chosen - cut);
        if (per == 2) N += (size_t)(r->n_prompt + r->n_rejected - cut);
    }
    return N;
}

/* fills b for rows[0..n) and returns the number of tokens N (0 on out of memory) */
/* whole = 0: each sequence without its last token, targets the next tokens of
 * the response; whole = 1: every token, no targets (data_batch_build_whole) */
static size_t batch_build(data_batch *b, const data_set *d, const int *rows, int n, int whole) {
    size_t N = batch_tokens(d, rows, n, whole), pos = 0;
    int per = data_seqs_per_row(d), i, k, j, cut = whole ? 0 : 1;
    if (batch_reserve(b, N, per * n) != 0) return 0;
    for (i = 0; i < n; i++) {
        const data_row *r = &d->rows[rows[i]];
        const int *prompt = d->pool + r->off;
        for (k = 0; k < per; k++) {
            const int *resp = prompt + r->n_prompt + (k ? r->n_chosen : 0);
            int R = k ? r->n_rejected : r->n_chosen, P = r->n_prompt, L = P + R - cut, seq = per * i + k;
            for (j = 0; j < L; j++) {
                /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): N sums every L, so tokens is NULL only when no L > 0 */
                b->tokens[pos + (size_t)j] = j < P ? prompt[j] : resp[j - P];
                b->targets[pos + (size_t)j] = !whole && j + 1 >= P ? resp[j + 1 - P] : -1;
            }
            b->seq_len[seq] = L;
            b->resp_start[seq] = (int)pos + P - cut;
            b->resp_len[seq] = R;
            pos += (size_t)L;
        }
    }
    return N;
}

size_t data_batch_build(data_batch *b, const data_set *d, const int *rows, int n) {
    return batch_build(b, d, rows, n, 0);
}

size_t data_batch_build_whole(data_batch *b, const data_set *d, const int *rows, int n) {
    return batch_build(b, d, rows, n, 1);
}

/* batch_reserve's arrays: five of N tokens, three of per * n sequences */
size_t data_batch_bytes(const data_set *d, const int *rows, int n, int whole) {
    return batch_tokens(d, rows, n, whole) * (2 * sizeof(int) + 3 * sizeof(float)) +
           (size_t)data_seqs_per_row(d) * (size_t)n * 3 * sizeof(int);
}

/* log p(response | prompt) of each sequence: the sum of its targets' log-probs, in double */
double data_seq_logp(const data_batch *b, int seq) {
    double sum = 0.0;
    int j;
    for (j = 0; j < b->resp_len[seq]; j++) sum += b->logp[b->resp_start[seq] + j];
    return sum;
}

int data_logps(model *m, const data_set *d, int micro_batch, double *logp, data_progress_fn progress,
                   void *ctx, dpo_err *e) {
    data_batch b;
    int *rows = malloc((size_t)(micro_batch > 0 ? micro_batch : 1) * sizeof *rows), r0, i, rc = 0;
    int per = data_seqs_per_row(d);
    memset(&b, 0, sizeof b);
    if (!rows) return dpo_err_oom(e, "the micro-batch's row indices", (size_t)(micro_batch > 0 ? micro_batch : 1),
                                  sizeof *rows);
    if (micro_batch < 1) {
        free(rows);
        return dpo_errf(e, "a micro-batch of %d rows (at least 1 is needed)", micro_batch);
    }
    for (r0 = 0; r0 < d->n_rows && rc == 0; r0 += micro_batch) {
        int n = d->n_rows - r0 < micro_batch ? d->n_rows - r0 : micro_batch;
        for (i = 0; i < n; i++) rows[i] = r0 + i;
        if (data_batch_build(&b, d, rows, n) == 0) {
            rc = dpo_err_oom(e, "a batch's arrays", data_batch_bytes(d, rows, n, 0), 1);
        } else if (model_forward(m, b.logp, b.tokens, b.targets, b.seq_len, per * n, e) != 0) {
            rc = -1;
        } else {
            for (i = 0; i < per * n; i++) logp[(size_t)per * (size_t)r0 + (size_t)i] = data_seq_logp(&b, i);
            if (progress) progress(ctx, r0 + n, d->n_rows);
        }
    }
    data_batch_free(&b);
    free(rows);
    return rc;
}


void data_epoch_order(int *perm, int n, uint64_t seed, long epoch) {
    util_rng r;
    int i;
    util_rng_seed(&r, seed + (uint64_t)epoch * 0x9e3779b97f4a7c15ULL);
    for (i = 0; i < n; i++) perm[i] = i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)(util_rng_u64(&r) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
