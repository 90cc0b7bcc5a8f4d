/* fuzz_data.c - libFuzzer harness of the JSONL row readers (data.c), with
 * GPT-2's own tokenizer (data/gpt2).
 *
 * Feeds: byte 0 picks the reader: preference rows (data_load_pairs), SFT rows
 * (data_load_sft), either (data_load_any), prompt rows, completion rows and
 * scored rows (data_load_texts with no fields, DATA_TEXT_COMPLETION, and
 * DATA_TEXT_COMPLETION | DATA_TEXT_REWARD); bytes 1 and 2 give max_len and
 * max_prompt_len; the rest is the JSONL file. Rows read are packed into
 * batches (data_batch_build, data_batch_build_whole); prompts of text rows go
 * through data_encode_prompt.
 * Asserts: every row read keeps a prompt token and a response token, fits in
 * max_len, lies inside the pool, and holds only ids of the vocabulary; an
 * encoded prompt has 1..max_tokens ids. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "data.h"
#include "fuzz_common.h"

static const tok_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tok = fuzz_gpt2("fuzz_data");
    return 0;
}

static void check_set(const data_set *d, int max_len) {
    int i, V = tok_vocab_size(tok), *rows;
    size_t k;
    data_batch b = {0};
    for (i = 0; i < d->n_rows; i++) {
        const data_row *r = &d->rows[i];
        int resp = r->n_chosen > r->n_rejected ? r->n_chosen : r->n_rejected;
        if (r->n_prompt < 1 || r->n_chosen < 1 || (d->sft ? r->n_rejected != 0 : r->n_rejected < 1) ||
            r->n_prompt + resp > max_len ||
            r->off + (size_t)r->n_prompt + (size_t)r->n_chosen + (size_t)r->n_rejected > d->n_pool) {
            fprintf(stderr, "row %d: prompt %d, chosen %d, rejected %d, max_len %d\n", i, r->n_prompt, r->n_chosen,
                    r->n_rejected, max_len);
            abort();
        }
    }
    for (k = 0; k < d->n_pool; k++)
        if (d->pool[k] < 0 || d->pool[k] >= V) abort();
    if (!(rows = malloc((size_t)d->n_rows * sizeof *rows))) abort();
    for (i = 0; i < d->n_rows; i++) rows[i] = i;
    if (data_batch_build(&b, d, rows, d->n_rows) == 0 || data_batch_build_whole(&b, d, rows, d->n_rows) == 0) abort();
    data_batch_free(&b);
    free(rows);
}

static void check_texts(const data_texts *d, int max_tokens) {
    int i, n, *ids;
    dpo_err e;
    for (i = 0; i < d->n_rows; i++) {
        if (data_encode_prompt(tok, d->rows[i].prompt, d->rows[i].prompt_len, tok_eot_id(tok), max_tokens, &ids, &n,
                               &e) < 0)
            continue;
        if (n < 1 || n > max_tokens) abort();
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int fields[3] = {0, DATA_TEXT_COMPLETION, DATA_TEXT_COMPLETION | DATA_TEXT_REWARD};
    int mode, max_len, mpl, eos = tok_eot_id(tok), rc;
    data_set d;
    data_texts t;
    dpo_err e;
    if (size < 3) return 0;
    mode = data[0] % 6;
    max_len = 2 + data[1] % 63;
    mpl = data[2] % max_len; /* 0: refused */
    fuzz_put("rows.jsonl", data + 3, size - 3);
    if (mode < 3) {
        rc = mode == 0   ? data_load_pairs(&d, fuzz_path("rows.jsonl"), tok, eos, max_len, mpl, &e)
             : mode == 1 ? data_load_sft(&d, fuzz_path("rows.jsonl"), tok, eos, max_len, mpl, &e)
                         : data_load_any(&d, fuzz_path("rows.jsonl"), tok, eos, max_len, mpl, &e);
        if (rc == 0) {
            check_set(&d, max_len);
            data_free(&d);
        }
    } else if (data_load_texts(&t, fuzz_path("rows.jsonl"), fields[mode - 3], &e) == 0) {
        check_texts(&t, max_len);
        data_texts_free(&t);
    }
    return 0;
}
