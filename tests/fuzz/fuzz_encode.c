/* fuzz_encode.c - libFuzzer harness of GPT-2's encoder (tokenizer.c) on
 * arbitrary bytes, with GPT-2's own vocabulary (data/gpt2).
 *
 * Feeds: the input bytes as a text to tok_pretokenize and tok_encode; the ids
 * to tok_decode.
 * Asserts: the pre-tokenizer's pieces are non-empty and tile the text in
 * order; encoding succeeds with ids of the vocabulary other than
 * <|endoftext|>; decoding them gives back exactly the input bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_common.h"
#include "tokenizer.h"

static const tok_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    tok = fuzz_gpt2("fuzz_encode");
    return 0;
}

/* each piece starts where the last one ended */
typedef struct {
    const char *next;
} tiling;

static int piece(void *ctx, const char *start, size_t len) {
    tiling *t = ctx;
    if (start != t->next || len == 0) abort();
    t->next = start + len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    int *ids = NULL, V = tok_vocab_size(tok), eot = tok_eot_id(tok);
    size_t n = 0, cap = 0, k, olen;
    char *out;
    tiling t;
    dpo_err e;
    t.next = text;
    if (tok_pretokenize(text, size, piece, &t) != 0 || t.next != text + size) abort();
    if (tok_encode(tok, text, size, &ids, &n, &cap, &e) != 0) {
        fprintf(stderr, "tok_encode failed: %s\n", e.msg);
        abort();
    }
    for (k = 0; k < n; k++)
        if (ids[k] < 0 || ids[k] >= V || ids[k] == eot) abort();
    if (tok_decode(tok, ids, n, &out, &olen, &e) != 0) {
        fprintf(stderr, "tok_decode failed: %s\n", e.msg);
        abort();
    }
    if (olen != size || memcmp(out, text, size) != 0) {
        fprintf(stderr, "decode(encode(x)) != x for %zu bytes\n", size);
        abort();
    }
    free(out);
    free(ids);
    return 0;
}
