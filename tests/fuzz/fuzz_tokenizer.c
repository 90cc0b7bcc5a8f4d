/* fuzz_tokenizer.c - libFuzzer harness of the tokenizer loader (tokenizer.c):
 * vocab.json + merges.txt, or OpenAI's encoder.json + vocab.bpe.
 *
 * Feeds: byte 0 picks the file names (even: Hugging Face's, odd: OpenAI's);
 * the rest, split at FUZZ_SEP, is the vocabulary file, the merges file and a
 * text, written into a private directory and read with tok_load_keyed (a fixed
 * hash key). A tokenizer that loads encodes the text and decodes the ids.
 * Asserts: every id of the vocabulary has its bytes, the end-of-text id is in
 * range, encoding gives ids of the vocabulary and never the end-of-text, and
 * when the text encodes, decoding gives back exactly its bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_common.h"
#include "tokenizer.h"

static void check(const tok_tokenizer *t, const uint8_t *text, size_t len) {
    int V = tok_vocab_size(t), eot = tok_eot_id(t), i, *ids = NULL;
    size_t n = 0, cap = 0, k, blen, olen;
    char *out;
    dpo_err e;
    if (V < 1 || eot < -1 || eot >= V) abort();
    for (i = 0; i < V; i++)
        if (!tok_token_bytes(t, i, &blen) || blen == 0) abort();
    if (tok_token_bytes(t, V, &blen) != NULL || tok_token_bytes(t, -1, &blen) != NULL) abort();
    if (tok_encode(t, (const char *)text, len, &ids, &n, &cap, &e) == 0) {
        for (k = 0; k < n; k++)
            if (ids[k] < 0 || ids[k] >= V || ids[k] == eot) abort();
        if (tok_decode(t, ids, n, &out, &olen, &e) != 0) {
            fprintf(stderr, "ids from tok_encode do not decode: %s\n", e.msg);
            abort();
        }
        if (olen != len || memcmp(out, text, len) != 0) {
            fprintf(stderr, "decode(encode(text)) differs from text\n");
            abort();
        }
        free(out);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint64_t key[2] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    const uint8_t *part[3];
    size_t len[3];
    int openai;
    tok_tokenizer *t;
    dpo_err e;
    if (size < 1) return 0;
    openai = data[0] & 1;
    fuzz_split(data + 1, size - 1, part, len, 3);
    fuzz_put("vocab.json", openai ? NULL : part[0], len[0]);
    fuzz_put("merges.txt", openai ? NULL : part[1], len[1]);
    fuzz_put("encoder.json", openai ? part[0] : NULL, len[0]);
    fuzz_put("vocab.bpe", openai ? part[1] : NULL, len[1]);
    if (tok_load_keyed(&t, fuzz_dir(), key, &e) != 0) return 0;
    check(t, part[2] ? part[2] : (const uint8_t *)"", len[2]);
    tok_free(t);
    return 0;
}
