/* tests/test_tokenizer.c - Check suite for tokenizer.c: GPT-2 byte-level BPE.
 *
 * Ground truth is external: tests/gpt2_tokenizer_vectors.jsonl holds 474 texts
 * with the ids js-tiktoken 1.0.21 (getEncoding('gpt2'), encode(text, [], []))
 * gives them, and gpt-3-encoder 1.1.4 agrees (see tests/VECTORS.md); the long-
 * word expectations below were computed with js-tiktoken too; the pre-tokenizer
 * cases were run through the GPT-2 pattern with node's Unicode regexes
 * (/.../gu); training is compared with a naive BPE trainer written here (which
 * recounts every pair after every merge) and with the output the trainer wrote
 * before it was made incremental (tests/tok_train_expected/, see its ORIGIN.md).
 * Hash flooding is tested with strings built here to collide under FNV-1a, the
 * unkeyed hash the tables used before; speed is always a ratio to a reference
 * measured in the same run. Run from the repository root (the data paths are
 * relative to it). */
#include "testutil.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tokenizer.h"
#include "util.h"

#define TOK_DIR "data/gpt2"
#define VECTORS_PATH "tests/gpt2_tokenizer_vectors.jsonl"
#define N_VECTORS 474
#define GPT2_VOCAB 50257
#define GPT2_EOT 50256
#define MAX_FILE (64u << 20)
#define LONG_SECONDS 2.0 /* each long word must encode and decode within this */

/* ======================================================================== */
/* helpers: files, GPT-2's byte alphabet, encode/decode wrappers             */
/* ======================================================================== */

static void path_in(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    ck_assert_msg(n > 0 && (size_t)n < cap, "path too long: %s/%s", dir, name);
}

static void make_dir(const char *path) {
    dpo_err e;
    ck_assert_msg(util_mkdir(path, &e) == 0, "mkdir %s: %s", path, e.msg);
}

/* A fresh subdirectory of tmp_root; its path in out. */
static void sub_dir(char *out, size_t cap, const char *name) {
    path_in(out, cap, tmp_root, name);
    make_dir(out);
}

static void write_bytes(const char *dir, const char *name, const void *data, size_t n) {
    char p[4096];
    FILE *fp;
    path_in(p, sizeof p, dir, name);
    fp = fopen(p, "wb");
    ck_assert_msg(fp != NULL, "cannot create %s", p);
    ck_assert_msg(fwrite(data, 1, n, fp) == n, "cannot write %s", p);
    ck_assert_msg(fclose(fp) == 0, "cannot close %s", p);
}

static void write_str(const char *dir, const char *name, const char *s) {
    write_bytes(dir, name, s, strlen(s));
}

static char *slurp(const char *path, size_t *len) {
    char *buf = NULL;
    dpo_err e;
    ck_assert_msg(util_read_file(path, MAX_FILE, &buf, len, &e) == 0, "%s", e.msg);
    return buf;
}

static char *slurp_in(const char *dir, const char *name, size_t *len) {
    char p[4096];
    path_in(p, sizeof p, dir, name);
    return slurp(p, len);
}

static void copy_file(const char *from, const char *dir, const char *name) {
    size_t n;
    char *buf = slurp(from, &n);
    write_bytes(dir, name, buf, n);
    free(buf);
}

/* GPT-2's bytes_to_unicode, written independently of tokenizer.c: the printable
 * bytes '!'..'~', 0xA1..0xAC, 0xAE..0xFF stand for themselves, the other 68
 * bytes (in increasing order) for U+0100, U+0101, ... The vocabulary's ids
 * 0..255 are the byte tokens in this order: id i is byte gpt2_byte[i]. */
static int gpt2_byte[256];    /* id -> byte */
static int gpt2_id[256];      /* byte -> id */
static int gpt2_cp[256];      /* byte -> code point of its character */

static int printable_byte(int b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

static void init_byte_alphabet(void) {
    int b, n = 0, extra = 0;
    for (b = 0; b < 256; b++)
        if (printable_byte(b)) { gpt2_byte[n++] = b; gpt2_cp[b] = b; }
    for (b = 0; b < 256; b++)
        if (!printable_byte(b)) { gpt2_byte[n++] = b; gpt2_cp[b] = 256 + extra++; }
    for (n = 0; n < 256; n++) gpt2_id[gpt2_byte[n]] = n;
}

/* UTF-8 of code point cp into out (at least 4 bytes); returns the length. */
static size_t utf8_put(unsigned char *out, uint32_t cp) {
    if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The byte-level (vocab.json) spelling of raw bytes, UTF-8, into out (4*n+1). */
static size_t byte_level(char *out, const unsigned char *raw, size_t n) {
    size_t i, k = 0;
    for (i = 0; i < n; i++) k += utf8_put((unsigned char *)out + k, (uint32_t)gpt2_cp[raw[i]]);
    out[k] = '\0';
    return k;
}

static tok_tokenizer *load_ok(const char *dir) {
    tok_tokenizer *t = NULL;
    dpo_err e;
    e.msg[0] = '\0';
    ck_assert_msg(tok_load(&t, dir, &e) == 0, "tok_load(%s): %s", dir, e.msg);
    ck_assert_msg(t != NULL, "tok_load(%s) returned 0 and no tokenizer", dir);
    return t;
}

/* Encode into a fresh array (*ids, owned by the caller); returns the count. */
static size_t encode(const tok_tokenizer *t, const char *text, size_t len, int **ids) {
    size_t n = 0, cap = 0;
    dpo_err e;
    *ids = NULL;
    e.msg[0] = '\0';
    ck_assert_msg(tok_encode(t, text, len, ids, &n, &cap, &e) == 0, "tok_encode: %s", e.msg);
    ck_assert_msg(n <= cap, "count %zu above capacity %zu", n, cap);
    ck_assert_msg(n == 0 || *ids != NULL, "no id array");
    return n;
}

/* Decode ids and require exactly the bytes text[0..len). */
static void expect_decodes_to(const tok_tokenizer *t, const int *ids, size_t n, const char *text,
                              size_t len, const char *what) {
    char *out = NULL;
    size_t out_len = 12345;
    dpo_err e;
    e.msg[0] = '\0';
    ck_assert_msg(tok_decode(t, ids, n, &out, &out_len, &e) == 0, "%s: tok_decode: %s", what, e.msg);
    ck_assert_msg(out != NULL, "%s: no output buffer", what);
    ck_assert_msg(out[out_len] == '\0', "%s: output not NUL-terminated", what);
    if (out_len != len || memcmp(out, text, len) != 0) {
        size_t i = 0;
        while (i < len && i < out_len && out[i] == text[i]) i++;
        ck_abort_msg("%s: decode gave %zu bytes, want %zu (first difference at byte %zu)", what,
                     out_len, len, i);
    }
    free(out);
}

/* encode, check every id is an ordinary token, decode, require the input back. */
static size_t round_trip(const tok_tokenizer *t, const char *text, size_t len, const char *what) {
    int *ids;
    size_t i, n = encode(t, text, len, &ids);
    int vs = tok_vocab_size(t), eot = tok_eot_id(t);
    for (i = 0; i < n; i++)
        ck_assert_msg(ids[i] >= 0 && ids[i] < vs && ids[i] != eot,
                      "%s: id %d at %zu is not an ordinary token", what, ids[i], i);
    expect_decodes_to(t, ids, n, text, len, what);
    free(ids);
    return n;
}

static int ids_equal(const int *a, size_t na, const int *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* FNV-1a (32-bit) over each id's four little-endian bytes: how the long-word
 * expectations computed with js-tiktoken are summarized. */
static uint32_t fnv_ids(const int *ids, size_t n) {
    uint32_t h = 2166136261u;
    size_t i;
    int k;
    for (i = 0; i < n; i++)
        for (k = 0; k < 4; k++) {
            h ^= ((uint32_t)ids[i] >> (8 * k)) & 255u;
            h *= 16777619u;
        }
    return h;
}

/* ======================================================================== */
/* the test vectors                                                          */
/* ======================================================================== */

typedef struct {
    char *text; /* (len,) bytes, NUL-terminated */
    size_t len;
    int *ids;   /* (n,) expected ids */
    size_t n;
    char src[64];
} vector;

/* Read tests/gpt2_tokenizer_vectors.jsonl, one JSON object per line. */
static vector *load_vectors(size_t *count) {
    size_t len, pos = 0, nv = 0, lineno = 0;
    char *buf = slurp(VECTORS_PATH, &len);
    vector *v = calloc(N_VECTORS + 1, sizeof *v);
    ck_assert(v != NULL);
    while (pos < len) {
        size_t end = pos, i;
        json_value *root = NULL;
        const json_value *text, *ids, *src;
        dpo_err e;
        while (end < len && buf[end] != '\n') end++;
        lineno++;
        ck_assert_msg(nv < N_VECTORS, "%s: more than %d lines", VECTORS_PATH, N_VECTORS);
        ck_assert_msg(json_parse(buf + pos, end - pos, &root, &e) == 0, "%s line %zu: %s",
                      VECTORS_PATH, lineno, e.msg);
        text = json_get(root, "text");
        ids = json_get(root, "ids");
        src = json_get(root, "src");
        ck_assert_msg(text && text->type == JSON_STRING && ids && ids->type == JSON_ARRAY,
                      "%s line %zu: want {\"text\": str, \"ids\": [int]}", VECTORS_PATH, lineno);
        v[nv].len = text->len;
        v[nv].text = malloc(text->len + 1);
        v[nv].n = ids->count;
        v[nv].ids = malloc((ids->count + 1) * sizeof(int));
        ck_assert(v[nv].text && v[nv].ids);
        memcpy(v[nv].text, text->str, text->len + 1);
        for (i = 0; i < ids->count; i++) {
            const json_value *x = &ids->items[i];
            ck_assert_msg(x->type == JSON_NUMBER && x->is_integer && x->number >= 0 &&
                              x->number < GPT2_VOCAB,
                          "%s line %zu: bad id", VECTORS_PATH, lineno);
            v[nv].ids[i] = (int)x->number;
        }
        snprintf(v[nv].src, sizeof v[nv].src, "%s",
                 src && src->type == JSON_STRING ? src->str : "?");
        json_free(root);
        nv++;
        pos = end + 1;
    }
    free(buf);
    *count = nv;
    return v;
}

static void free_vectors(vector *v, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        free(v[i].text);
        free(v[i].ids);
    }
    free(v);
}

static void print_ids(const char *label, const int *ids, size_t n) {
    size_t i;
    printf("    %s (%zu):", label, n);
    for (i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

START_TEST(test_vectors_encode_decode) {
    tok_tokenizer *t = load_ok(TOK_DIR);
    size_t nv, i, same = 0, decoded = 0, shown = 0;
    vector *v = load_vectors(&nv);
    for (i = 0; i < nv; i++) {
        int *ids;
        size_t n = encode(t, v[i].text, v[i].len, &ids);
        char *out = NULL;
        size_t out_len = 0;
        dpo_err e;
        if (ids_equal(ids, n, v[i].ids, v[i].n)) {
            same++;
        } else if (shown++ < 8) {
            char esc[400];
            json_escape(esc, sizeof esc, v[i].text, v[i].len);
            printf("  vector %zu (%s) differs: text %s%s\n", i + 1, v[i].src, esc,
                   json_escape(NULL, 0, v[i].text, v[i].len) >= sizeof esc ? "..." : "");
            print_ids("want", v[i].ids, v[i].n);
            print_ids("got ", ids, n);
        }
        /* decoding the reference ids must give the text back, byte for byte */
        if (tok_decode(t, v[i].ids, v[i].n, &out, &out_len, &e) == 0 && out_len == v[i].len &&
            memcmp(out, v[i].text, out_len) == 0)
            decoded++;
        else if (shown++ < 8)
            printf("  vector %zu (%s): decode of the reference ids differs\n", i + 1, v[i].src);
        free(out);
        free(ids);
    }
    printf("%zu/%d vectors identical\n", same, N_VECTORS);
    printf("%zu/%d vectors decode to their text\n", decoded, N_VECTORS);
    free_vectors(v, nv);
    tok_free(t);
    ck_assert_uint_eq(nv, N_VECTORS);
    ck_assert_uint_eq(same, N_VECTORS);
    ck_assert_uint_eq(decoded, N_VECTORS);
}
END_TEST

/* The same files under OpenAI's names (encoder.json + vocab.bpe) load to the
 * same tokenizer. */
START_TEST(test_openai_file_names) {
    char dir[4096];
    tok_tokenizer *hf, *oa;
    size_t nv, i;
    vector *v;
    int id;
    sub_dir(dir, sizeof dir, "openai");
    copy_file(TOK_DIR "/vocab.json", dir, "encoder.json");
    copy_file(TOK_DIR "/merges.txt", dir, "vocab.bpe");
    hf = load_ok(TOK_DIR);
    oa = load_ok(dir);
    ck_assert_int_eq(tok_vocab_size(oa), tok_vocab_size(hf));
    ck_assert_int_eq(tok_eot_id(oa), tok_eot_id(hf));
    for (id = 0; id < tok_vocab_size(hf); id++) {
        size_t la = 0, lb = 0;
        const unsigned char *a = tok_token_bytes(hf, id, &la), *b = tok_token_bytes(oa, id, &lb);
        ck_assert_msg(a && b && la == lb && memcmp(a, b, la) == 0, "token %d differs", id);
    }
    v = load_vectors(&nv);
    for (i = 0; i < nv; i++) {
        int *a, *b;
        size_t na = encode(hf, v[i].text, v[i].len, &a), nb = encode(oa, v[i].text, v[i].len, &b);
        ck_assert_msg(ids_equal(a, na, b, nb), "vector %zu encodes differently", i + 1);
        free(a);
        free(b);
    }
    free_vectors(v, nv);
    tok_free(hf);
    tok_free(oa);
}
END_TEST

/* ======================================================================== */
/* known facts of GPT-2's vocabulary                                         */
/* ======================================================================== */

static void expect_encoding(const tok_tokenizer *t, const char *text, const int *want, size_t nwant) {
    int *ids;
    size_t n = encode(t, text, strlen(text), &ids);
    if (!ids_equal(ids, n, want, nwant)) {
        printf("  \"%s\":\n", text);
        print_ids("want", want, nwant);
        print_ids("got ", ids, n);
    }
    ck_assert_msg(ids_equal(ids, n, want, nwant), "\"%s\" encodes wrongly", text);
    expect_decodes_to(t, ids, n, text, strlen(text), text);
    free(ids);
}

START_TEST(test_gpt2_facts) {
    static const int hello[] = {15496, 995};                            /* "Hello world" */
    static const int eot_text[] = {27, 91, 437, 1659, 5239, 91, 29};    /* "<|endoftext|>" */
    static const int dont[] = {9099, 470, 23917, 6, 51, 2094, 470};     /* "don't DON'T Don't" */
    static const int path[] = {34, 7479, 14490, 59, 1326};              /* "C:\\Users\\me" */
    static const int nl2[] = {628};                                     /* "\n\n" */
    static const int sp2[] = {220, 220};                                /* "  " */
    tok_tokenizer *t = load_ok(TOK_DIR);
    const unsigned char *b;
    size_t len = 0, n, cap;
    int *ids = NULL, id;
    char *out = NULL;
    dpo_err e;

    ck_assert_int_eq(tok_vocab_size(t), GPT2_VOCAB);
    ck_assert_int_eq(tok_eot_id(t), GPT2_EOT);
    b = tok_token_bytes(t, GPT2_EOT, &len);
    ck_assert_msg(b && len == 13 && memcmp(b, "<|endoftext|>", 13) == 0, "token 50256");
    b = tok_token_bytes(t, 220, &len);
    ck_assert_msg(b && len == 1 && b[0] == ' ', "token 220 is the space");
    b = tok_token_bytes(t, 198, &len);
    ck_assert_msg(b && len == 1 && b[0] == '\n', "token 198 is the newline");
    b = tok_token_bytes(t, 995, &len);
    ck_assert_msg(b && len == 6 && memcmp(b, " world", 6) == 0, "token 995 is \" world\"");
    ck_assert_ptr_null(tok_token_bytes(t, GPT2_VOCAB, &len));
    ck_assert_ptr_null(tok_token_bytes(t, -1, &len));
    /* ids 0..255 are the single bytes, in GPT-2's byte order */
    for (id = 0; id < 256; id++) {
        b = tok_token_bytes(t, id, &len);
        ck_assert_msg(b && len == 1 && b[0] == gpt2_byte[id], "token %d is not byte %d", id,
                      gpt2_byte[id]);
    }

    /* "<|endoftext|>" in text is ordinary text: never the special id */
    expect_encoding(t, "<|endoftext|>", eot_text, 7);
    expect_encoding(t, "Hello world", hello, 2);
    expect_encoding(t, "don't DON'T Don't", dont, 7);
    expect_encoding(t, "C:\\Users\\me", path, 5); /* the 13 backslash merges are there */
    expect_encoding(t, "\n\n", nl2, 1);
    expect_encoding(t, "  ", sp2, 2);
    expect_encoding(t, "", NULL, 0);

    /* tok_encode appends to what the array already holds */
    n = 0;
    cap = 0;
    ck_assert_int_eq(tok_encode(t, "Hello", 5, &ids, &n, &cap, &e), 0);
    ck_assert_int_eq(tok_encode(t, " world", 6, &ids, &n, &cap, &e), 0);
    ck_assert_msg(ids_equal(ids, n, hello, 2), "appending encode");
    free(ids);

    /* decode: the special token decodes to its text; nothing decodes to ""; bad ids fail */
    id = GPT2_EOT;
    ck_assert_int_eq(tok_decode(t, &id, 1, &out, &len, &e), 0);
    ck_assert_msg(len == 13 && strcmp(out, "<|endoftext|>") == 0, "decode of 50256");
    free(out);
    out = NULL;
    ck_assert_int_eq(tok_decode(t, NULL, 0, &out, &len, &e), 0);
    ck_assert_msg(out != NULL && len == 0 && out[0] == '\0', "decode of nothing");
    free(out);
    {
        const int bad[][2] = {{15496, GPT2_VOCAB}, {-1, 995}, {15496, 2147483647}};
        size_t k;
        for (k = 0; k < 3; k++) {
            out = NULL;
            e.msg[0] = '\0';
            ck_assert_msg(tok_decode(t, bad[k], 2, &out, &len, &e) == -1, "bad id %zu decoded", k);
            ck_assert_msg(e.msg[0] != '\0', "no message for a bad id");
            free(out); /* in case an implementation left one */
        }
    }
    tok_free(t);
}
END_TEST

/* ======================================================================== */
/* round trips: decode(encode(s)) == s for any bytes                         */
/* ======================================================================== */

START_TEST(test_round_trip_random_bytes) {
    tok_tokenizer *t = load_ok(TOK_DIR);
    util_rng rng;
    char buf[512];
    int b, k;
    util_rng_seed(&rng, 20261126);
    /* every single byte is its own byte token */
    for (b = 0; b < 256; b++) {
        int *ids;
        char c = (char)b;
        size_t n = encode(t, &c, 1, &ids);
        ck_assert_msg(n == 1 && ids[0] == gpt2_id[b], "byte %d -> %zu ids, first %d, want [%d]", b,
                      n, n ? ids[0] : -1, gpt2_id[b]);
        free(ids);
    }
    /* all 256 byte values in order, reversed, and twice interleaved */
    for (b = 0; b < 256; b++) buf[b] = (char)b;
    round_trip(t, buf, 256, "bytes 0..255");
    for (b = 0; b < 256; b++) buf[b] = (char)(255 - b);
    round_trip(t, buf, 256, "bytes 255..0");
    for (b = 0; b < 256; b++) { buf[2 * b] = (char)b; buf[2 * b + 1] = (char)(b ^ 0x80); }
    round_trip(t, buf, 512, "bytes interleaved");
    /* random strings, uniform bytes and text-like mixtures (spaces, quotes, letters,
     * digits, NULs, stray UTF-8 lead and continuation bytes) */
    for (k = 0; k < 3000; k++) {
        size_t len = (size_t)(util_rng_u64(&rng) % 301), i;
        int mode = k % 3;
        char what[64];
        for (i = 0; i < len; i++) {
            uint64_t r = util_rng_u64(&rng);
            if (mode == 0) {
                buf[i] = (char)(r & 255);
            } else {
                static const char pool[] = "  \n\t'sSdlLmtvre1234567890aAzZ.,!?\\\0\xc3\xa9\x80\xff\xe4\xb8";
                buf[i] = (mode == 1 && (r & 3) == 0) ? (char)((r >> 8) & 255)
                                                      : pool[(r >> 16) % (sizeof pool - 1)];
            }
        }
        snprintf(what, sizeof what, "random string %d (%zu bytes)", k, len);
        round_trip(t, buf, len, what);
    }
    tok_free(t);
}
END_TEST

START_TEST(test_round_trip_random_utf8) {
    /* code point ranges from many scripts, spaces and marks */
    static const uint32_t ranges[][2] = {
        {0x20, 0x7E},      {0x0A, 0x0A},      {0x09, 0x0D},      {0xA0, 0xFF},
        {0x100, 0x17F},    {0x300, 0x36F},    {0x391, 0x3C9},    {0x400, 0x4FF},
        {0x5D0, 0x5EA},    {0x600, 0x6FF},    {0x660, 0x669},    {0x900, 0x97F},
        {0xE00, 0xE5B},    {0x1100, 0x11FF},  {0x2000, 0x200F},  {0x2028, 0x202F},
        {0x2190, 0x21FF},  {0x3000, 0x303F},  {0x3040, 0x30FF},  {0x4E00, 0x9FFF},
        {0xAC00, 0xD7A3},  {0xFF00, 0xFFEF},  {0xFEFF, 0xFEFF},  {0x1F300, 0x1F64F},
        {0x1D400, 0x1D7FF}, {0x10000, 0x1007F}, {0xE0000, 0xE007F}, {0x10FFF0, 0x10FFFF},
    };
    const size_t nr = sizeof ranges / sizeof ranges[0];
    tok_tokenizer *t = load_ok(TOK_DIR);
    util_rng rng;
    unsigned char buf[4 * 200];
    int k;
    util_rng_seed(&rng, 7);
    for (k = 0; k < 2000; k++) {
        size_t ncp = (size_t)(util_rng_u64(&rng) % 121), i, len = 0;
        char what[64];
        for (i = 0; i < ncp; i++) {
            const uint32_t *rg = ranges[util_rng_u64(&rng) % nr];
            uint32_t cp = rg[0] + (uint32_t)(util_rng_u64(&rng) % (rg[1] - rg[0] + 1));
            len += utf8_put(buf + len, cp);
        }
        snprintf(what, sizeof what, "random UTF-8 string %d (%zu bytes)", k, len);
        round_trip(t, (const char *)buf, len, what);
    }
    tok_free(t);
}
END_TEST

/* A 32-bit LCG the js-tiktoken script below reproduces exactly. */
static char *lcg_text(size_t n, const char *alpha) {
    size_t i, na = strlen(alpha);
    uint32_t x = 12345u;
    char *s = malloc(n + 1);
    ck_assert(s != NULL);
    for (i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = alpha[(x >> 16) % na];
    }
    s[n] = '\0';
    return s;
}

/* Very long single pieces must encode in about linear time. Expected counts and
 * FNV-1a hashes of the ids: js-tiktoken 1.0.21 (which itself needs 457 s for
 * the 100000 'a's, 104 s for the 50000 letters and 621 s for the 100000 digits:
 * it is quadratic in the length of a piece), e.g.
 *   const enc = getEncoding("gpt2"); ids = enc.encode("a".repeat(100000), [], []);
 * with the LCG text made as in lcg_text (x = (Math.imul(x, 1103515245) + 12345)
 * >>> 0; alpha[(x >>> 16) % alpha.length]) and FNV-1a over each id's 4 LE bytes. */
static void long_case(const tok_tokenizer *t, const char *name, const char *text, size_t len,
                      size_t want_n, uint32_t want_hash, int first_id) {
    int *ids;
    size_t n;
    double t0 = util_seconds(), dt;
    n = encode(t, text, len, &ids);
    expect_decodes_to(t, ids, n, text, len, name);
    dt = util_seconds() - t0;
    printf("  %-28s %7zu bytes -> %6zu tokens in %.3f s\n", name, len, n, dt);
    ck_assert_msg(n == want_n, "%s: %zu tokens, js-tiktoken gives %zu", name, n, want_n);
    ck_assert_msg(n > 0 && ids[0] == first_id, "%s: first id %d, want %d", name, n ? ids[0] : -1,
                  first_id);
    ck_assert_msg(fnv_ids(ids, n) == want_hash, "%s: ids differ from js-tiktoken's (hash 0x%08x, want 0x%08x)",
                  name, (unsigned)fnv_ids(ids, n), (unsigned)want_hash);
    ck_assert_msg(dt < LONG_SECONDS, "%s took %.2f s (limit %.1f s): quadratic?", name, dt,
                  LONG_SECONDS);
    free(ids);
}

START_TEST(test_long_words) {
    tok_tokenizer *t = load_ok(TOK_DIR);
    char *s = malloc(100001);
    ck_assert(s != NULL);
    memset(s, 'a', 100000);
    long_case(t, "100000 x 'a'", s, 100000, 25000, 0x5d36cf45u, 24794); /* 24794 = "aaaa" */
    memset(s, ' ', 20000);
    long_case(t, "20000 spaces", s, 20000, 20000, 0xb14a3dc5u, 220);
    /* a space run followed by a word: \s+(?!\S) backs off one space, once */
    s[0] = 'x';
    memset(s + 1, ' ', 20000);
    s[20001] = 'y';
    long_case(t, "'x' + 20000 spaces + 'y'", s, 20002, 20001, 0x0341f50au, 87);
    free(s);
    s = lcg_text(50000, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
    long_case(t, "50000 random letters", s, 50000, 35426, 0x679c8534u, 321);
    free(s);
    s = lcg_text(100000, "0123456789");
    long_case(t, "100000-digit number", s, 100000, 43160, 0x64faec36u, 2791);
    free(s);
    tok_free(t);
}
END_TEST

/* ======================================================================== */
/* the pre-tokenizer                                                         */
/* ======================================================================== */

#define MAX_PIECES 64

typedef struct {
    const char *base;
    size_t n;
    size_t start[MAX_PIECES];
    size_t len[MAX_PIECES];
    size_t calls;
    size_t stop_at; /* return 7 from this call (1-based); 0: never */
} pieces;

static int collect(void *ctx, const char *start, size_t len) {
    pieces *p = ctx;
    p->calls++;
    if (p->n < MAX_PIECES) {
        p->start[p->n] = (size_t)(start - p->base);
        p->len[p->n] = len;
        p->n++;
    }
    return p->calls == p->stop_at ? 7 : 0;
}

/* Pieces must tile text[0..len) exactly: in order, contiguous, none empty. */
static void expect_tiling(const pieces *p, size_t len, const char *what) {
    size_t i, at = 0;
    ck_assert_msg(p->calls <= MAX_PIECES, "%s: too many pieces for the test", what);
    for (i = 0; i < p->n; i++) {
        ck_assert_msg(p->start[i] == at, "%s: piece %zu starts at %zu, want %zu", what, i,
                      p->start[i], at);
        ck_assert_msg(p->len[i] > 0, "%s: empty piece %zu", what, i);
        at += p->len[i];
    }
    ck_assert_msg(at == len, "%s: pieces cover %zu of %zu bytes", what, at, len);
}

typedef struct {
    const char *text;
    const char *want[12]; /* NULL-terminated */
} pretok_case;

/* Worked out from the pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (the first alternative that matches at a position wins; \s+(?!\S) backs off
 * one character when the run is followed by a non-space, leaving that space to
 * prefix the next word) and checked with node: "str".match(/<pattern>/gu). */
static const pretok_case pretok_cases[] = {
    {"Hello world", {"Hello", " world", NULL}},
    {"I'm", {"I", "'m", NULL}},
    {"  hi", {" ", " hi", NULL}},                  /* run of 2 backs off to 1 */
    {"Hello  world", {"Hello", " ", " world", NULL}},
    {"a  \n b", {"a", "  \n", " b", NULL}},        /* "  \n " backs off its last space */
    {"x   ", {"x", "   ", NULL}},                  /* at the end nothing follows: whole run */
    {"hi  ", {"hi", "  ", NULL}},
    {"x \n", {"x", " \n", NULL}},
    {"   ", {"   ", NULL}},
    {" ", {" ", NULL}},
    {"don't", {"don", "'t", NULL}},
    {"'S", {"'", "S", NULL}},                      /* contractions are case-sensitive */
    {"Don'T", {"Don", "'", "T", NULL}},
    {"we'll've", {"we", "'ll", "'ve", NULL}},
    {"it's'", {"it", "'s", "'", NULL}},
    {"'ll", {"'ll", NULL}},
    {" 'll", {" '", "ll", NULL}},                  /* " ?" punctuation wins over the contraction */
    {"'''", {"'''", NULL}},
    {" 123abc", {" 123", "abc", NULL}},
    {"1,000.5", {"1", ",", "000", ".", "5", NULL}},
    {" $5", {" $", "5", NULL}},
    {"hello!!! ok", {"hello", "!!!", " ok", NULL}},
    {"\n\nfoo", {"\n", "\n", "foo", NULL}},        /* "\n\n" backs off to "\n"; then \s+ takes "\n" */
    {"  \n\n  x", {"  \n\n ", " x", NULL}},
    {"a\tb", {"a", "\t", "b", NULL}},
    {"\r\n", {"\r\n", NULL}},
    {" \xc3\xa9t\xc3\xa9 caf\xc3\xa9", {" \xc3\xa9t\xc3\xa9", " caf\xc3\xa9", NULL}},
    {"x\xe3\x80\x80y", {"x", "\xe3\x80\x80", "y", NULL}},        /* U+3000 is a space */
    {"a\xc2\xa0" "b", {"a", "\xc2\xa0", "b", NULL}},             /* U+00A0 is a space */
    {"\xe4\xb8\xad\xe6\x96\x87 text", {"\xe4\xb8\xad\xe6\x96\x87", " text", NULL}},
    {"\xd9\xa1\xd9\xa2", {"\xd9\xa1\xd9\xa2", NULL}},           /* Arabic-Indic digits: \p{N} */
    {"a\xcc\x81" "b", {"a", "\xcc\x81", "b", NULL}},             /* a combining mark is \p{M} */
    {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80 x", {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80", " x", NULL}},
    /* invalid UTF-8: each offending byte is a character that is neither letter,
     * number nor space (tokenizer.h), so runs of them group like punctuation */
    {"a\xff" "b", {"a", "\xff", "b", NULL}},
    {" \xff\xfe!", {" \xff\xfe!", NULL}},
    {"caf\xc3\xa9\xff", {"caf\xc3\xa9", "\xff", NULL}},
    {"\xe4\xb8" "a", {"\xe4\xb8", "a", NULL}},                   /* truncated sequence */
    {"\xc0\x80 x", {"\xc0\x80", " x", NULL}},                    /* overlong NUL */
    {"\xed\xa0\x80" "a", {"\xed\xa0\x80", "a", NULL}},           /* UTF-8-encoded surrogate */
    {"\xff hi", {"\xff", " hi", NULL}},
    {"'s\xff", {"'s", "\xff", NULL}},
    {"a\xe4\xb8\x80" "b", {"a\xe4\xb8\x80" "b", NULL}},          /* U+4E00 is a letter */
    /* \s is Unicode's White_Space property, as in the original GPT-2 encoder (Python's
     * `regex`) and tiktoken (see unicode.h). JavaScript's \s differs on two code points
     * (JS has U+FEFF, lacks U+0085), so here js-tiktoken is no oracle: it encodes
     * "a \u0085b" as [64, 1587, 227, 65] and "a \ufeffb" as [64, 220, 171, 119, 123, 65].
     * By hand: U+0085 is a space, so " \u0085" is a run backing off before "b"; the
     * last \s+ alternative then takes U+0085 alone. U+FEFF (Cf) is "other". */
    {"a \xc2\x85" "b", {"a", " ", "\xc2\x85", "b", NULL}},
    {"a \xef\xbb\xbf" "b", {"a", " \xef\xbb\xbf", "b", NULL}},
};

START_TEST(test_pretokenize_cases) {
    size_t c, i;
    for (c = 0; c < sizeof pretok_cases / sizeof pretok_cases[0]; c++) {
        const pretok_case *pc = &pretok_cases[c];
        size_t len = strlen(pc->text), nwant = 0;
        pieces p;
        char what[600];
        int ok;
        memset(&p, 0, sizeof p);
        p.base = pc->text;
        json_escape(what, sizeof what, pc->text, len);
        ck_assert_int_eq(tok_pretokenize(pc->text, len, collect, &p), 0);
        expect_tiling(&p, len, what);
        while (pc->want[nwant]) nwant++;
        ok = p.n == nwant;
        for (i = 0; ok && i < nwant; i++)
            ok = p.len[i] == strlen(pc->want[i]) && memcmp(pc->text + p.start[i], pc->want[i], p.len[i]) == 0;
        if (!ok) {
            printf("  pretokenize %s:\n    want", what);
            for (i = 0; i < nwant; i++) {
                char w[200];
                json_escape(w, sizeof w, pc->want[i], strlen(pc->want[i]));
                printf(" %s", w);
            }
            printf("\n    got ");
            for (i = 0; i < p.n; i++) {
                char w[200];
                json_escape(w, sizeof w, pc->text + p.start[i], p.len[i]);
                printf(" %s", w);
            }
            printf("\n");
        }
        ck_assert_msg(ok, "pretokenize %s gives the wrong pieces", what);
    }
    /* NULs are ordinary (non-letter, non-space) characters: "a\0\0b" -> "a", "\0\0", "b" */
    {
        pieces p;
        memset(&p, 0, sizeof p);
        p.base = "a\0\0b";
        ck_assert_int_eq(tok_pretokenize(p.base, 4, collect, &p), 0);
        expect_tiling(&p, 4, "a\\0\\0b");
        ck_assert_uint_eq(p.n, 3);
        ck_assert_uint_eq(p.len[1], 2);
    }
    /* nothing in, no calls */
    {
        pieces p;
        memset(&p, 0, sizeof p);
        p.base = "";
        ck_assert_int_eq(tok_pretokenize(p.base, 0, collect, &p), 0);
        ck_assert_uint_eq(p.calls, 0);
    }
}
END_TEST

/* Random input: the pieces always tile; a non-zero callback value stops it. */
START_TEST(test_pretokenize_tiling_and_stop) {
    util_rng rng;
    char buf[200];
    int k;
    pieces p;
    util_rng_seed(&rng, 99);
    for (k = 0; k < 20000; k++) {
        size_t len = (size_t)(util_rng_u64(&rng) % 60), i;
        static const char pool[] = " \n\t'sdmlvreAz09.,!\xc3\xa9\xe3\x80\x80\xc2\xa0\xff\x80";
        char what[40];
        for (i = 0; i < len; i++) {
            uint64_t r = util_rng_u64(&rng);
            buf[i] = (k & 1) ? (char)(r & 255) : pool[(r >> 8) % (sizeof pool - 1)];
        }
        memset(&p, 0, sizeof p);
        p.base = buf;
        snprintf(what, sizeof what, "random case %d", k);
        ck_assert_int_eq(tok_pretokenize(buf, len, collect, &p), 0);
        expect_tiling(&p, len, what);
    }
    memset(&p, 0, sizeof p);
    p.base = "one two three four";
    p.stop_at = 2;
    ck_assert_int_eq(tok_pretokenize(p.base, strlen(p.base), collect, &p), 7);
    ck_assert_uint_eq(p.calls, 2);
}
END_TEST

/* ======================================================================== */
/* hostile vocabulary directories                                            */
/* ======================================================================== */

/* A small string builder with checked appends. */
typedef struct {
    char buf[65536];
    size_t n;
} sbuf;

static void sb_add(sbuf *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_add(sbuf *s, const char *fmt, ...) {
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(s->buf + s->n, sizeof s->buf - s->n, fmt, ap);
    va_end(ap);
    ck_assert_msg(k >= 0 && (size_t)k < sizeof s->buf - s->n, "test buffer too small");
    s->n += (size_t)k;
}

/* Append the UTF-8 string s[0..n) as the inside of a JSON string literal
 * (byte-level spellings hold no control characters; '"' and '\\' are escaped). */
static void json_lit(sbuf *b, const char *s, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') sb_add(b, "\\");
        sb_add(b, "%c", s[i]);
    }
}

/* A valid small vocab.json: the 256 byte tokens (ids 0..255, GPT-2's order),
 * then "\u0120t" 256, "he" 257, "\u0120the" 258, "<|endoftext|>" eot_id, then
 * the raw members in extra (each starting with a comma). */
static void small_vocab(sbuf *s, const char *eot_id, const char *extra) {
    int id;
    s->n = 0;
    sb_add(s, "{");
    for (id = 0; id < 256; id++) {
        int cp = gpt2_cp[gpt2_byte[id]];
        if (cp < 128 && cp != '"' && cp != '\\')
            sb_add(s, "\"%c\": %d, ", (char)cp, id);
        else
            sb_add(s, "\"\\u%04x\": %d, ", (unsigned)cp, id);
    }
    sb_add(s, "\"\\u0120t\": 256, \"he\": 257, \"\\u0120the\": 258, \"<|endoftext|>\": %s%s}\n",
           eot_id, extra);
}

#define SMALL_MERGES "#version: 0.2\n\xc4\xa0 t\nh e\n\xc4\xa0t he\n"

static void write_small(const char *dir, const char *eot_id, const char *extra, const char *merges) {
    static sbuf s;
    small_vocab(&s, eot_id, extra);
    write_bytes(dir, "vocab.json", s.buf, s.n);
    if (merges) write_str(dir, "merges.txt", merges);
}

/* tok_load(dir) must fail; the message must name file and contain one of the
 * '|'-separated words in problem (case-insensitive). */
static int contains_ci(const char *hay, const char *needle, size_t nlen) {
    size_t i, j;
    for (i = 0; hay[i]; i++) {
        for (j = 0; j < nlen && hay[i + j]; j++) {
            char a = hay[i + j], b = needle[j];
            if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
            if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
            if (a != b) break;
        }
        if (j == nlen) return 1;
    }
    return 0;
}

static void expect_load_fail_at(const char *dir, const char *file, const char *line,
                                const char *problem, const char *what) {
    tok_tokenizer *t = NULL;
    dpo_err e;
    const char *w = problem;
    int found = 0;
    e.msg[0] = '\0';
    ck_assert_msg(tok_load(&t, dir, &e) == -1, "%s: tok_load accepted it", what);
    if (getenv("TOK_TEST_VERBOSE")) printf("  %-34s -> %s\n", what, e.msg);
    ck_assert_msg(t == NULL, "%s: *out set after an error", what);
    ck_assert_msg(strstr(e.msg, file) != NULL, "%s: message \"%s\" does not name %s", what, e.msg, file);
    ck_assert_msg(line == NULL || strstr(e.msg, line) != NULL, "%s: message \"%s\" does not say %s",
                  what, e.msg, line);
    while (*w && !found) {
        const char *bar = strchr(w, '|');
        size_t n = bar ? (size_t)(bar - w) : strlen(w);
        found = contains_ci(e.msg, w, n);
        w += n + (bar ? 1 : 0);
    }
    ck_assert_msg(found, "%s: message \"%s\" says none of \"%s\"", what, e.msg, problem);
}

static void expect_load_fail(const char *dir, const char *file, const char *problem, const char *what) {
    expect_load_fail_at(dir, file, NULL, problem, what);
}

/* Each case gets its own directory. */
static const char *case_dir(const char *name) {
    static char dir[4096];
    sub_dir(dir, sizeof dir, name);
    return dir;
}

START_TEST(test_small_vocab_loads) {
    /* the base of the hostile cases is itself valid and behaves */
    static const int the[] = {258};
    const char *dir = case_dir("ok");
    tok_tokenizer *t;
    int *ids;
    size_t n;
    write_small(dir, "259", "", SMALL_MERGES);
    t = load_ok(dir);
    ck_assert_int_eq(tok_vocab_size(t), 260);
    ck_assert_int_eq(tok_eot_id(t), 259);
    n = encode(t, " the", 4, &ids);
    ck_assert_msg(ids_equal(ids, n, the, 1), "\" the\" -> [258]");
    free(ids);
    n = encode(t, "the", 3, &ids);
    ck_assert_msg(n == 2 && ids[0] == gpt2_id['t'] && ids[1] == 257, "\"the\" -> [t, he]");
    free(ids);
    n = encode(t, " then", 5, &ids);
    ck_assert_msg(n == 2 && ids[0] == 258 && ids[1] == gpt2_id['n'], "\" then\" -> [\" the\", n]");
    free(ids);
    round_trip(t, "<|endoftext|> \xff\x00 x", 18, "small vocab round trip");
    tok_free(t);

    /* header only, no merges, no "<|endoftext|>": bytes only, eot -1 */
    dir = case_dir("bytes-only");
    {
        static sbuf s;
        int id;
        s.n = 0;
        sb_add(&s, "{");
        for (id = 0; id < 256; id++)
            sb_add(&s, "\"\\u%04x\": %d%s", (unsigned)gpt2_cp[gpt2_byte[id]], id, id < 255 ? ", " : "}");
        write_bytes(dir, "vocab.json", s.buf, s.n);
        write_str(dir, "merges.txt", "#version: 0.2\n");
    }
    t = load_ok(dir);
    ck_assert_int_eq(tok_vocab_size(t), 256);
    ck_assert_int_eq(tok_eot_id(t), -1);
    n = encode(t, "the", 3, &ids);
    ck_assert_msg(n == 3 && ids[0] == gpt2_id['t'] && ids[1] == gpt2_id['h'] && ids[2] == gpt2_id['e'],
                  "\"the\" -> 3 bytes");
    free(ids);
    tok_free(t);
}
END_TEST

START_TEST(test_hostile_merges) {
    const char *d;
    d = case_dir("no-header");
    write_small(d, "259", "", "\xc4\xa0 t\nh e\n\xc4\xa0t he\n");
    expect_load_fail(d, "merges.txt", "#version|header", "merges without #version header");

    d = case_dir("empty-merges");
    write_small(d, "259", "", "");
    expect_load_fail(d, "merges.txt", "#version|header|empty", "empty merges file");

    d = case_dir("unknown-token");
    write_small(d, "259", "", "#version: 0.2\n\xc4\xa0 t\nq zz\n");
    expect_load_fail_at(d, "merges.txt", "line 3", "unknown|not in|no such|not found|missing",
                        "merge of an unknown token");

    d = case_dir("concat-missing");
    write_small(d, "259", "", "#version: 0.2\n\xc4\xa0 t\nh e\nx y\n");
    expect_load_fail_at(d, "merges.txt", "line 4", "concat|not in|unknown|missing|no such|not found|xy",
                        "merge whose result is not a token");

    d = case_dir("one-token");
    write_small(d, "259", "", "#version: 0.2\n\xc4\xa0 t\nhe\n");
    expect_load_fail_at(d, "merges.txt", "line 3", "malformed|two|expected|format|invalid",
                        "merge line with one token");

    d = case_dir("three-tokens");
    write_small(d, "259", "", "#version: 0.2\n\xc4\xa0 t\nh e x\n");
    expect_load_fail_at(d, "merges.txt", "line 3", "malformed|two|expected|format|invalid",
                        "merge line with three tokens");

    d = case_dir("missing-merges");
    write_small(d, "259", "", NULL);
    expect_load_fail(d, "merges.txt", "open|no such|missing|not found|exist", "vocab.json without merges.txt");
}
END_TEST

START_TEST(test_hostile_vocab) {
    const char *d;
    static const char *not_objects[] = {"[1, 2]", "\"x\"", "42", "null", "true"};
    size_t k;

    d = case_dir("dup-id");
    write_small(d, "258", "", SMALL_MERGES); /* "<|endoftext|>" gets the id of "\u0120the" */
    expect_load_fail(d, "vocab.json", "duplicate|twice|more than once|already|again|258",
                     "duplicate id");

    d = case_dir("dup-key");
    write_small(d, "259", ", \"he\": 260", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "duplicate", "duplicate key");

    d = case_dir("range-small");
    write_str(d, "vocab.json", "{\"a\": 0, \"b\": 1, \"c\": 5}");
    write_str(d, "merges.txt", "#version: 0.2\n");
    expect_load_fail(d, "vocab.json", "range|out of|exceed|missing|gap|0..|5", "ids 0,1,5 for 3 tokens");

    d = case_dir("range");
    write_small(d, "262", "", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "range|out of|exceed|missing|gap|0..|262", "id 262 among 260 tokens");

    d = case_dir("negative");
    write_small(d, "-1", "", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "negative|range|-1|invalid", "negative id");

    d = case_dir("fraction");
    write_small(d, "259.5", "", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "integer", "fractional id");

    d = case_dir("string-id");
    write_small(d, "\"259\"", "", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "integer|number", "string id");

    d = case_dir("huge-id");
    write_small(d, "99999999999999999999", "", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "range|large|integer|exceed", "id 1e20 (no overflow)");

    d = case_dir("empty");
    write_str(d, "vocab.json", "{}");
    write_str(d, "merges.txt", "#version: 0.2\n");
    expect_load_fail(d, "vocab.json", "empty|no token|0 token|no entr", "empty vocabulary {}");

    for (k = 0; k < sizeof not_objects / sizeof not_objects[0]; k++) {
        char name[32], what[64];
        snprintf(name, sizeof name, "not-object-%zu", k);
        snprintf(what, sizeof what, "vocab.json is %s", not_objects[k]);
        d = case_dir(name);
        write_str(d, "vocab.json", not_objects[k]);
        write_str(d, "merges.txt", "#version: 0.2\n");
        expect_load_fail(d, "vocab.json", "object", what);
    }

    d = case_dir("cjk-token");
    write_small(d, "259", ", \"\\u4e00\": 260", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "byte|alphabet|character|u+4e00|invalid", "token with U+4E00");

    d = case_dir("space-token");
    write_small(d, "259", ", \"a b\": 260", SMALL_MERGES); /* a raw space is not in the alphabet */
    expect_load_fail(d, "vocab.json", "byte|alphabet|character|u+0020|invalid", "token with a raw space");

    d = case_dir("bad-utf8");
    write_small(d, "259", ", \"\xff\xfe\": 260", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "UTF-8|utf8", "invalid UTF-8 in vocab.json");

    d = case_dir("truncated");
    write_str(d, "vocab.json", "{\"a\": 0, \"b\":");
    write_str(d, "merges.txt", "#version: 0.2\n");
    expect_load_fail(d, "vocab.json", "line 1|end|unexpected|truncated|expected", "truncated vocab.json");

    d = case_dir("missing-vocab");
    write_str(d, "merges.txt", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "open|no such|missing|not found|exist", "merges.txt without vocab.json");

    d = case_dir("nothing");
    expect_load_fail(d, d, "open|no such|missing|not found|exist|vocab.json", "empty directory");

    expect_load_fail("/nonexistent/dpo-tokenizer", "/nonexistent/dpo-tokenizer",
                     "open|no such|missing|not found|exist|vocab.json", "missing directory");

    /* OpenAI's names: errors name OpenAI's file */
    d = case_dir("openai-bad");
    write_str(d, "encoder.json", "[]");
    write_str(d, "vocab.bpe", "#version: 0.2\n");
    expect_load_fail(d, "encoder.json", "object", "encoder.json not an object");
}
END_TEST

/* ======================================================================== */
/* training                                                                  */
/* ======================================================================== */

#define TRAIN_MERGES 40
#define TRAIN_VOCAB (256 + TRAIN_MERGES + 1)

/* Random words from words[] each followed by a random separator from punct[],
 * up to target bytes; deterministic for a seed. */
static char *word_corpus(const char *const *words, size_t nw, const char *const *punct, size_t np, uint64_t seed,
                         size_t target, size_t *len) {
    util_rng rng;
    char *s = malloc(target + 64);
    size_t n = 0;
    ck_assert(s != NULL);
    util_rng_seed(&rng, seed);
    while (n < target) {
        const char *w = words[util_rng_u64(&rng) % nw];
        const char *p = punct[util_rng_u64(&rng) % np];
        size_t lw = strlen(w), lp = strlen(p);
        if (n + lw + lp > target) break;
        memcpy(s + n, w, lw);
        n += lw;
        memcpy(s + n, p, lp);
        n += lp;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* A few KB of English-like text, deterministic. No word has a letter three times
 * in a row, so counting overlapping pairs ("aaa" as 1 or 2) cannot matter. */
static char *make_corpus(uint64_t seed, size_t target, size_t *len) {
    static const char *words[] = {
        "the", "film", "was", "a", "story", "of", "love", "and", "loss", "in", "small", "town",
        "where", "every", "actor", "plays", "their", "part", "with", "great", "care", "but",
        "there", "is", "too", "much", "talking", "I", "liked", "it", "they", "will", "tell",
        "you", "that", "this", "movie", "feels", "long", "good", "bad", "scene", "music",
        "don't", "can't", "it's", "we'll", "2024", "10", "ending", "beginning", "thinking"};
    static const char *punct[] = {" ", " ", " ", " ", " ", ", ", ". ", "! ", "? ", ".\n", "\n\n"};
    return word_corpus(words, sizeof words / sizeof words[0], punct, sizeof punct / sizeof punct[0], seed, target,
                       len);
}

/* A corpus full of overlapping pairs ("aaaa", "abab"), multi-byte characters
 * and repeated punctuation, every piece under 512 bytes; deterministic. */
static char *make_runs_corpus(uint64_t seed, size_t target, size_t *len) {
    static const char *words[] = {
        "aaa", "aaaa", "aaaaa", "aa", "baaab", "abab", "ababab", "bababa", "mississippi",
        "bookkeeper", "committee", "zzz", "zzzz", "!!!", "!!", "...", "....", "1000000", "111",
        "\xc3\xb1\xc3\xb1\xc3\xb1\xc3\xb1", "\xc3\xb1" "a\xc3\xb1" "a", "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5",
        "\xe6\x97\xa5\xe6\x9c\xac", "xxxxxxxxx", "abba", "aabbaabb", "llll", "the", "a"};
    static const char *punct[] = {" ", " ", " ", "  ", "\n", ", ", "... ", "\n\n   "};
    return word_corpus(words, sizeof words / sizeof words[0], punct, sizeof punct / sizeof punct[0], seed, target,
                       len);
}

/* ---- a naive reference trainer: every pair counted at every position, the most
 * frequent pair merged, ties to the smallest (left id, right id), each piece
 * merged left to right; pieces over 512 bytes cut as tokenizer.h documents
 * (chunks of 512 bytes, 1 to 3 bytes fewer when that ends the chunk before a
 * character's first byte instead of inside a character). Everything is recounted
 * after every merge. ---- */

#define REF_MAX_MERGES 160
#define REF_VOCAB (256 + REF_MAX_MERGES + 1)
#define REF_MAX_TOKEN 1024
#define TRAIN_CUT 512

typedef struct {
    int *ids; /* (total,) token ids of all pieces, back to back */
    size_t *start; /* (npieces + 1,) piece boundaries in ids */
    size_t *len;   /* (npieces,) current token count of each piece */
    size_t npieces, total, cap_pieces;
} ref_words;

static void ref_chunk(ref_words *w, const char *start, size_t len) {
    size_t i;
    if (w->npieces + 1 >= w->cap_pieces) {
        w->cap_pieces = w->cap_pieces ? 2 * w->cap_pieces : 1024;
        w->start = realloc(w->start, w->cap_pieces * sizeof *w->start);
        w->len = realloc(w->len, w->cap_pieces * sizeof *w->len);
        ck_assert(w->start && w->len);
    }
    w->start[w->npieces] = w->total;
    w->len[w->npieces] = len;
    for (i = 0; i < len; i++) w->ids[w->total++] = gpt2_id[(unsigned char)start[i]];
    w->npieces++;
}

static int ref_piece(void *ctx, const char *start, size_t len) {
    while (len > TRAIN_CUT) {
        size_t n = TRAIN_CUT, back;
        for (back = 0; back <= 3; back++) /* the first of 512, 511, 510, 509 that starts a character */
            if (((unsigned char)start[TRAIN_CUT - back] & 0xC0) != 0x80) break;
        if (back <= 3) n = TRAIN_CUT - back;
        ref_chunk(ctx, start, n);
        start += n;
        len -= n;
    }
    ref_chunk(ctx, start, len);
    return 0;
}

typedef struct {
    unsigned char bytes[REF_VOCAB][REF_MAX_TOKEN]; /* raw bytes of each token */
    size_t nbytes[REF_VOCAB];
    int left[REF_MAX_MERGES], right[REF_MAX_MERGES];
    size_t tokens_after[REF_MAX_MERGES + 1]; /* corpus token count after k merges */
} ref_result;

static void ref_train(const char *const *texts, const size_t *lens, int ntexts, int nmerges, ref_result *r) {
    ref_words w;
    size_t total_bytes = 0, i, p;
    int k, id, f;
    long *count = malloc((size_t)REF_VOCAB * REF_VOCAB * sizeof *count);
    ck_assert(count != NULL && nmerges <= REF_MAX_MERGES);
    memset(&w, 0, sizeof w);
    for (f = 0; f < ntexts; f++) total_bytes += lens[f];
    w.ids = malloc((total_bytes + 1) * sizeof *w.ids);
    ck_assert(w.ids != NULL);
    for (f = 0; f < ntexts; f++)
        ck_assert_int_eq(tok_pretokenize(texts[f], lens[f], ref_piece, &w), 0);
    for (id = 0; id < 256; id++) {
        r->bytes[id][0] = (unsigned char)gpt2_byte[id];
        r->nbytes[id] = 1;
    }
    for (k = 0; k <= nmerges; k++) {
        long best = 0;
        int bl = -1, br = -1, a, b;
        r->tokens_after[k] = 0;
        for (p = 0; p < w.npieces; p++) r->tokens_after[k] += w.len[p];
        if (k == nmerges) break;
        memset(count, 0, (size_t)REF_VOCAB * REF_VOCAB * sizeof *count);
        for (p = 0; p < w.npieces; p++) {
            const int *x = w.ids + w.start[p];
            for (i = 0; i + 1 < w.len[p]; i++) count[(size_t)x[i] * REF_VOCAB + (size_t)x[i + 1]]++;
        }
        for (a = 0; a < 256 + k; a++)
            for (b = 0; b < 256 + k; b++)
                if (count[(size_t)a * REF_VOCAB + (size_t)b] > best) {
                    best = count[(size_t)a * REF_VOCAB + (size_t)b];
                    bl = a;
                    br = b;
                }
        ck_assert_msg(best > 0, "reference trainer ran out of pairs at merge %d", k);
        r->left[k] = bl;
        r->right[k] = br;
        ck_assert(r->nbytes[bl] + r->nbytes[br] <= sizeof r->bytes[0]);
        memcpy(r->bytes[256 + k], r->bytes[bl], r->nbytes[bl]);
        memcpy(r->bytes[256 + k] + r->nbytes[bl], r->bytes[br], r->nbytes[br]);
        r->nbytes[256 + k] = r->nbytes[bl] + r->nbytes[br];
        for (p = 0; p < w.npieces; p++) { /* merge left to right, non-overlapping */
            int *x = w.ids + w.start[p];
            size_t o = 0;
            for (i = 0; i < w.len[p]; i++) {
                if (i + 1 < w.len[p] && x[i] == bl && x[i + 1] == br) {
                    x[o++] = 256 + k;
                    i++;
                } else {
                    x[o++] = x[i];
                }
            }
            w.len[p] = o;
        }
    }
    free(count);
    free(w.ids);
    free(w.start);
    free(w.len);
}

/* The merges.txt the reference learns (header + nmerges lines) into a fresh buffer. */
static char *ref_merges_txt(const ref_result *r, int nmerges, size_t *len) {
    size_t cap = 64 + (size_t)nmerges * (8 * REF_MAX_TOKEN + 2), n;
    char *out = malloc(cap);
    int k;
    ck_assert(out != NULL);
    n = (size_t)snprintf(out, cap, "#version: 0.2\n");
    for (k = 0; k < nmerges; k++) {
        n += byte_level(out + n, r->bytes[r->left[k]], r->nbytes[r->left[k]]);
        out[n++] = ' ';
        n += byte_level(out + n, r->bytes[r->right[k]], r->nbytes[r->right[k]]);
        out[n++] = '\n';
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* Train on the given texts (written to files first) into a fresh directory under
 * tmp_root; returns the directory's merges.txt (and vocab.json when vocab != NULL). */
static char *train_texts(const char *name, const char *const *texts, const size_t *lens, int ntexts,
                         int vocab_size, size_t *mlen, char **vocab, size_t *vlen) {
    char dir[4096], paths[4][4096], fname[64];
    const char *files[4];
    dpo_err e;
    int f;
    char *m;
    ck_assert(ntexts <= 4);
    for (f = 0; f < ntexts; f++) {
        snprintf(fname, sizeof fname, "%s-%d.txt", name, f);
        write_bytes(tmp_root, fname, texts[f], lens[f]);
        path_in(paths[f], sizeof paths[f], tmp_root, fname);
        files[f] = paths[f];
    }
    path_in(dir, sizeof dir, tmp_root, name);
    e.msg[0] = '\0';
    ck_assert_msg(tok_train(files, ntexts, vocab_size, dir, NULL, NULL, &e) == 0, "tok_train %s: %s", name, e.msg);
    m = slurp_in(dir, "merges.txt", mlen);
    if (vocab) *vocab = slurp_in(dir, "vocab.json", vlen);
    return m;
}

/* Index of the first byte where a[0..na) and b[0..nb) differ (min(na, nb) when one is a prefix). */
static size_t first_diff(const char *a, size_t na, const char *b, size_t nb) {
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

typedef struct {
    int calls, last, total, bad;
} progress_log;

static void on_progress(void *ctx, int done, int total) {
    progress_log *p = ctx;
    if (total != TRAIN_MERGES || done < p->last || done < 0 || done > total) p->bad = 1;
    p->calls++;
    p->last = done;
    p->total = total;
}

/* The lines of merges.txt (NUL-separated in place); returns the count. */
static size_t split_lines(char *buf, size_t len, char **lines, size_t max) {
    size_t n = 0, i, at = 0;
    for (i = 0; i <= len; i++) {
        if (i == len || buf[i] == '\n') {
            if (i == len && at == len) break; /* no empty line after a final newline */
            ck_assert_msg(n < max, "too many lines");
            if (i < len) buf[i] = '\0';
            lines[n++] = buf + at;
            at = i + 1;
        }
    }
    return n;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *ent;
    int n = 0;
    ck_assert_msg(d != NULL, "cannot list %s", dir);
    while ((ent = readdir(d)) != NULL)
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

START_TEST(test_train) {
    char dir1[4096], dir2[4096], f1[4096], f2[4096], kdir[4096];
    const char *files[2];
    const char *texts[2];
    size_t lens[2], total_bytes, v1n, v2n, m1n, m2n, i, nlines;
    char *text1 = make_corpus(1, 3000, &lens[0]), *text2 = make_corpus(2, 2000, &lens[1]);
    char *v1, *v2, *m1, *m2, *lines[TRAIN_MERGES + 8];
    static ref_result ref;
    progress_log plog = {0, 0, 0, 0};
    json_value *vocab = NULL;
    const char *by_id[TRAIN_VOCAB];
    size_t by_id_len[TRAIN_VOCAB];
    size_t tokens_k[TRAIN_MERGES + 1];
    dpo_err e;
    tok_tokenizer *t;
    int k;

    texts[0] = text1;
    texts[1] = text2;
    total_bytes = lens[0] + lens[1];
    write_bytes(tmp_root, "corpus-a.txt", text1, lens[0]);
    write_bytes(tmp_root, "corpus-b.txt", text2, lens[1]);
    path_in(f1, sizeof f1, tmp_root, "corpus-a.txt");
    path_in(f2, sizeof f2, tmp_root, "corpus-b.txt");
    files[0] = f1;
    files[1] = f2;
    path_in(dir1, sizeof dir1, tmp_root, "bpe1"); /* not created: tok_train makes it */
    sub_dir(dir2, sizeof dir2, "bpe2");           /* exists already */

    e.msg[0] = '\0';
    ck_assert_msg(tok_train(files, 2, TRAIN_VOCAB, dir1, on_progress, &plog, &e) == 0, "tok_train: %s", e.msg);
    ck_assert_msg(tok_train(files, 2, TRAIN_VOCAB, dir2, NULL, NULL, &e) == 0, "tok_train: %s", e.msg);
    ck_assert_msg(!plog.bad, "progress called with bad values (last %d of %d)", plog.last, plog.total);

    /* deterministic, and nothing but the two files left behind */
    v1 = slurp_in(dir1, "vocab.json", &v1n);
    v2 = slurp_in(dir2, "vocab.json", &v2n);
    m1 = slurp_in(dir1, "merges.txt", &m1n);
    m2 = slurp_in(dir2, "merges.txt", &m2n);
    ck_assert_msg(v1n == v2n && memcmp(v1, v2, v1n) == 0, "vocab.json differs between two runs");
    ck_assert_msg(m1n == m2n && memcmp(m1, m2, m1n) == 0, "merges.txt differs between two runs");
    ck_assert_int_eq(count_entries(dir1), 2);
    ck_assert_int_eq(count_entries(dir2), 2);

    /* vocab.json: exactly ids 0..vocab_size-1; bytes first; "<|endoftext|>" last */
    ck_assert_msg(json_parse(v1, v1n, &vocab, &e) == 0, "trained vocab.json: %s", e.msg);
    ck_assert_int_eq(vocab->type, JSON_OBJECT);
    ck_assert_uint_eq(vocab->count, TRAIN_VOCAB);
    memset(by_id, 0, sizeof by_id);
    for (i = 0; i < vocab->count; i++) {
        const json_value *x = &vocab->items[i];
        int id;
        ck_assert(x->type == JSON_NUMBER && x->is_integer && x->number >= 0 && x->number < TRAIN_VOCAB);
        id = (int)x->number;
        ck_assert_msg(by_id[id] == NULL, "id %d twice", id);
        by_id[id] = vocab->keys[i];
        by_id_len[id] = vocab->key_lens[i];
    }
    for (k = 0; k < 256; k++) {
        char want[8];
        unsigned char raw = (unsigned char)gpt2_byte[k];
        size_t wl = byte_level(want, &raw, 1);
        ck_assert_msg(by_id_len[k] == wl && memcmp(by_id[k], want, wl) == 0,
                      "id %d is not byte %d in GPT-2's order", k, gpt2_byte[k]);
    }
    ck_assert_msg(strcmp(by_id[TRAIN_VOCAB - 1], "<|endoftext|>") == 0, "last id is \"%s\"",
                  by_id[TRAIN_VOCAB - 1]);

    /* merges.txt: the header, then 40 merges; merge k makes token 256 + k; and they
     * are exactly what the naive reference trainer learns */
    ref_train(texts, lens, 2, TRAIN_MERGES, &ref);
    nlines = split_lines(m1, m1n, lines, sizeof lines / sizeof lines[0]);
    ck_assert_msg(strncmp(lines[0], "#version", 8) == 0, "merges.txt header is \"%s\"", lines[0]);
    ck_assert_uint_eq(nlines, 1 + TRAIN_MERGES);
    for (k = 0; k < TRAIN_MERGES; k++) {
        char want[600], a[300], b[300], made[300];
        byte_level(a, ref.bytes[ref.left[k]], ref.nbytes[ref.left[k]]);
        byte_level(b, ref.bytes[ref.right[k]], ref.nbytes[ref.right[k]]);
        snprintf(want, sizeof want, "%s %s", a, b);
        byte_level(made, ref.bytes[256 + k], ref.nbytes[256 + k]);
        ck_assert_msg(strcmp(lines[1 + k], want) == 0, "merge %d is \"%s\", the reference learns \"%s\"",
                      k + 1, lines[1 + k], want);
        ck_assert_msg(strlen(made) == by_id_len[256 + k] && memcmp(by_id[256 + k], made, strlen(made)) == 0,
                      "id %d is \"%s\", want \"%s\"", 256 + k, by_id[256 + k], made);
    }

    /* every merge strictly shortens the corpus: load with the first k merges */
    for (k = 0; k <= TRAIN_MERGES; k++) {
        int f, j;
        char name[32];
        sbuf *mb = malloc(sizeof *mb);
        ck_assert(mb != NULL);
        snprintf(name, sizeof name, "first-%d", k);
        sub_dir(kdir, sizeof kdir, name);
        /* the vocabulary of the first k merges: ids 0..255+k, then "<|endoftext|>" */
        mb->n = 0;
        sb_add(mb, "{");
        for (j = 0; j < 256 + k; j++) {
            sb_add(mb, "\"");
            json_lit(mb, by_id[j], by_id_len[j]);
            sb_add(mb, "\": %d, ", j);
        }
        sb_add(mb, "\"<|endoftext|>\": %d}", 256 + k);
        write_bytes(kdir, "vocab.json", mb->buf, mb->n);
        mb->n = 0;
        sb_add(mb, "#version: 0.2\n");
        for (j = 0; j < k; j++) sb_add(mb, "%s\n", lines[1 + j]);
        write_bytes(kdir, "merges.txt", mb->buf, mb->n);
        free(mb);
        t = load_ok(kdir);
        tokens_k[k] = 0;
        for (f = 0; f < 2; f++) {
            int *ids;
            tokens_k[k] += encode(t, texts[f], lens[f], &ids);
            free(ids);
        }
        tok_free(t);
        ck_assert_msg(tokens_k[k] == ref.tokens_after[k], "%d merges: %zu tokens, reference %zu", k,
                      tokens_k[k], ref.tokens_after[k]);
        if (k == 0) ck_assert_uint_eq(tokens_k[0], total_bytes);
        else ck_assert_msg(tokens_k[k] < tokens_k[k - 1], "merge %d does not shorten the corpus (%zu -> %zu)",
                           k, tokens_k[k - 1], tokens_k[k]);
    }

    /* the trained tokenizer itself: fewer tokens than bytes, exact round trip */
    t = load_ok(dir1);
    ck_assert_int_eq(tok_vocab_size(t), TRAIN_VOCAB);
    ck_assert_int_eq(tok_eot_id(t), TRAIN_VOCAB - 1);
    {
        size_t n = round_trip(t, text1, lens[0], "corpus a") + round_trip(t, text2, lens[1], "corpus b");
        ck_assert_uint_eq(n, tokens_k[TRAIN_MERGES]);
        ck_assert_msg(n < total_bytes, "%zu tokens for %zu bytes", n, total_bytes);
        printf("  trained %d merges on %zu bytes: %zu tokens\n", TRAIN_MERGES, total_bytes, n);
    }
    tok_free(t);

    json_free(vocab);
    free(v1);
    free(v2);
    free(m1);
    free(m2);
    free(text1);
    free(text2);
}
END_TEST

/* The trainer's output is byte for byte what the trainer before the incremental
 * rewrite wrote (tests/tok_train_expected/, recorded with it from this corpus),
 * and its merges are the naive reference's: on a corpus full of overlapping
 * pairs ("aaaa" holds (a, a) three times and becomes "aa aa"). */
#define SAME_MERGES 150
START_TEST(test_train_same_as_before) {
    const char *texts[2];
    size_t lens[2], mlen, vlen, wm, wv, rn, d;
    char *t1 = make_runs_corpus(5, 6000, &lens[0]), *t2 = make_corpus(7, 4000, &lens[1]);
    char *m, *v, *want_m, *want_v, *refm;
    static ref_result ref;
    texts[0] = t1;
    texts[1] = t2;
    m = train_texts("same", texts, lens, 2, 256 + SAME_MERGES + 1, &mlen, &v, &vlen);
    want_m = slurp("tests/tok_train_expected/merges.txt", &wm);
    want_v = slurp("tests/tok_train_expected/vocab.json", &wv);
    d = first_diff(m, mlen, want_m, wm);
    ck_assert_msg(mlen == wm && d == mlen, "merges.txt differs from the recorded one at byte %zu", d);
    d = first_diff(v, vlen, want_v, wv);
    ck_assert_msg(vlen == wv && d == vlen, "vocab.json differs from the recorded one at byte %zu", d);
    ref_train(texts, lens, 2, SAME_MERGES, &ref);
    refm = ref_merges_txt(&ref, SAME_MERGES, &rn);
    d = first_diff(m, mlen, refm, rn);
    ck_assert_msg(mlen == rn && d == mlen, "merges.txt differs from the reference's at byte %zu: \"%.40s\" vs \"%.40s\"",
                  d, m + d, refm + d);
    free(refm);
    free(m);
    free(v);
    free(want_m);
    free(want_v);
    free(t1);
    free(t2);
}
END_TEST

/* Pieces over 512 bytes are cut for training. One run of 1300 'q' is the chunks
 * 512, 512, 276 = 256 + 16 + 4: the merges double 'q' up to 512, then (ties:
 * the smallest ids) q16 + q4, q256 + q20, and then no pair is left: 11 merges
 * and no more (uncut, q512 + q512 and q1024 + q276 would follow). And on a corpus with long runs of letters, digits and 3-byte
 * characters, the merges are the naive reference's with the documented cut. */
#define LONG_MERGES 120
START_TEST(test_train_long_pieces) {
    char *qrun = malloc(1301), *m, *line, *big, *refm;
    const char *texts[1];
    size_t lens[1], mlen, n = 0, i, rn, d, runs_len;
    int k;
    char *runs = make_runs_corpus(11, 5000, &runs_len);
    static ref_result ref;
    util_rng rng;
    ck_assert(qrun != NULL);
    memset(qrun, 'q', 1300);
    texts[0] = qrun;
    lens[0] = 1300;
    m = train_texts("qrun", texts, lens, 1, 256 + 11 + 1, &mlen, NULL, NULL);
    line = strchr(m, '\n') + 1;
    for (k = 0; k < 11; k++) {
        size_t a, b;
        char want[1100], *nl = strchr(line, '\n');
        if (k < 9) {
            a = b = (size_t)1 << k; /* q^(2^k) + q^(2^k) */
        } else if (k == 9) {
            a = 16; b = 4;
        } else {
            a = 256; b = 20;
        }
        memset(want, 'q', a);
        want[a] = ' ';
        memset(want + a + 1, 'q', b);
        want[a + 1 + b] = '\0';
        ck_assert_msg(nl != NULL, "merges.txt has %d merges, want 11", k);
        *nl = '\0';
        ck_assert_msg(strcmp(line, want) == 0, "merge %d is q^%zu + q^%zu? got a line of %zu bytes", k + 1,
                      a, b, strlen(line));
        line = nl + 1;
    }
    ck_assert_msg(*line == '\0', "more than 11 merges");
    free(m);
    {
        char f[4096], out[4096];
        const char *files[1];
        dpo_err e;
        path_in(f, sizeof f, tmp_root, "qrun-0.txt");
        path_in(out, sizeof out, tmp_root, "qrun12");
        files[0] = f;
        e.msg[0] = '\0';
        ck_assert_msg(tok_train(files, 1, 256 + 12 + 1, out, NULL, NULL, &e) == -1, "a 12th merge was found");
        ck_assert_msg(strstr(e.msg, "only 11 merges") != NULL, "message \"%s\"", e.msg);
    }

    /* long pieces of several kinds among ordinary text, against the reference */
    big = malloc(runs_len + 8000);
    ck_assert(big != NULL);
    memcpy(big, runs, runs_len);
    n = runs_len;
    big[n++] = ' ';
    memset(big + n, 'q', 1300); /* letters: 512 + 512 + 276 */
    n += 1300;
    big[n++] = ' ';
    for (i = 0; i < 250; i++) { /* 750 bytes of U+65E5: cut at 510, inside no character */
        memcpy(big + n, "\xe6\x97\xa5", 3);
        n += 3;
    }
    big[n++] = ' ';
    util_rng_seed(&rng, 99);
    for (i = 0; i < 1500; i++) big[n++] = (char)('0' + util_rng_u64(&rng) % 3); /* digits */
    big[n++] = '\n';
    for (i = 0; i < 2000; i++) big[n++] = (char)('a' + util_rng_u64(&rng) % 4); /* letters */
    big[n++] = '\n';
    texts[0] = big;
    lens[0] = n;
    m = train_texts("long", texts, lens, 1, 256 + LONG_MERGES + 1, &mlen, NULL, NULL);
    ref_train(texts, lens, 1, LONG_MERGES, &ref);
    refm = ref_merges_txt(&ref, LONG_MERGES, &rn);
    d = first_diff(m, mlen, refm, rn);
    ck_assert_msg(mlen == rn && d == mlen, "merges.txt differs from the reference's at byte %zu: \"%.40s\" vs \"%.40s\"",
                  d, m + d, refm + d);
    free(refm);
    free(m);
    free(big);
    free(runs);
    free(qrun);
}
END_TEST

/* Text of made-up words (1 to 4 syllables), n bytes without spaces; with
 * spaces=1 the same words separated by spaces. Deterministic. */
static char *syllable_text(size_t target_nospace, int spaces, size_t *len) {
    static const char *syl[] = {"ka", "ri", "to", "mu", "se", "na", "lo", "pe", "ti", "ga", "bu",
                                "re", "shi", "an", "or", "el", "in", "ou", "ta", "de", "vo"};
    util_rng rng;
    char *s = malloc(2 * target_nospace + 64);
    size_t n = 0, letters = 0;
    ck_assert(s != NULL);
    util_rng_seed(&rng, 7);
    while (letters < target_nospace) {
        int k, nsyl = 1 + (int)(util_rng_u64(&rng) % 4);
        if (spaces && n > 0) s[n++] = ' ';
        for (k = 0; k < nsyl; k++) {
            const char *x = syl[util_rng_u64(&rng) % (sizeof syl / sizeof syl[0])];
            size_t lx = strlen(x);
            if (letters + lx > target_nospace) lx = target_nospace - letters;
            memcpy(s + n, x, lx);
            n += lx;
            letters += lx;
        }
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* 80 KB without a single space (one 80 KB piece) trains 500 merges within 20
 * times the time of the same words with spaces (the trainer used to take 13 s
 * and 473 MB against 0.24 s: each merge rescanned every word holding the pair). */
START_TEST(test_train_fast_without_spaces) {
    size_t ls, ln, mlen;
    char *sp = syllable_text(80000, 1, &ls), *nosp = syllable_text(80000, 0, &ln), *m;
    const char *texts[1];
    double t0, t_sp, t_nosp;
    texts[0] = sp;
    t0 = util_seconds();
    m = train_texts("spaces", texts, &ls, 1, 757, &mlen, NULL, NULL);
    t_sp = util_seconds() - t0;
    free(m);
    texts[0] = nosp;
    t0 = util_seconds();
    m = train_texts("nospaces", texts, &ln, 1, 757, &mlen, NULL, NULL);
    t_nosp = util_seconds() - t0;
    free(m);
    printf("  500 merges: %zu bytes with spaces %.3f s, %zu bytes without %.3f s (%.1fx)\n", ls, t_sp, ln,
           t_nosp, t_nosp / (t_sp > 0 ? t_sp : 1e-9));
    ck_assert_uint_eq(ln, 80000);
    /* 20 ms floor: below that the clock and the shared cores dominate */
    ck_assert_msg(t_nosp <= 20.0 * (t_sp > 0.02 ? t_sp : 0.02), "without spaces %.3f s, with spaces %.3f s",
                  t_nosp, t_sp);
    free(sp);
    free(nosp);
}
END_TEST

START_TEST(test_train_errors) {
    char f[4096], out[4096], missing[4096];
    const char *files[1];
    size_t len;
    char *text = make_corpus(3, 1000, &len);
    struct stat st;
    dpo_err e;
    write_bytes(tmp_root, "c.txt", text, len);
    free(text);
    path_in(f, sizeof f, tmp_root, "c.txt");
    path_in(out, sizeof out, tmp_root, "out");
    path_in(missing, sizeof missing, tmp_root, "no-such-file.txt");

    files[0] = f;
    e.msg[0] = '\0';
    ck_assert_msg(tok_train(files, 1, 100, out, NULL, NULL, &e) == -1, "vocab_size 100 accepted");
    ck_assert_msg(e.msg[0] != '\0', "no message for vocab_size 100");
    files[0] = missing;
    e.msg[0] = '\0';
    ck_assert_msg(tok_train(files, 1, TRAIN_VOCAB, out, NULL, NULL, &e) == -1, "missing input accepted");
    ck_assert_msg(strstr(e.msg, "no-such-file.txt") != NULL, "message \"%s\" does not name the file", e.msg);
    /* no partial output */
    {
        char p[4096];
        path_in(p, sizeof p, out, "vocab.json");
        ck_assert_msg(stat(p, &st) != 0, "vocab.json written by a failed training");
        path_in(p, sizeof p, out, "merges.txt");
        ck_assert_msg(stat(p, &st) != 0, "merges.txt written by a failed training");
    }
}
END_TEST

/* ======================================================================== */
/* matching files, size limit, hash flooding, key independence, kept bytes  */
/* ======================================================================== */

/* vocab.json and merges.txt must belong together: every merge forms an entry
 * no other merge forms, and every entry but the bytes and "<|...|>" is formed. */
START_TEST(test_vocab_merges_agree) {
    const char *d;
    char dir[4096];
    size_t vn, mn, half = 0, lines = 0, i;
    char *v, *m;
    tok_tokenizer *t;

    d = case_dir("formed-twice"); /* "\u0120the" from "\u0120t he" and from "\u0120th e" */
    write_small(d, "259", ", \"\\u0120th\": 260", "#version: 0.2\n\xc4\xa0 t\nh e\n\xc4\xa0t he\n\xc4\xa0t h\n\xc4\xa0th e\n");
    expect_load_fail_at(d, "merges.txt", "line 6", "line 4", "an entry formed by two merges");

    d = case_dir("unformed"); /* "xy" is no byte, no special token, and no merge forms it */
    write_small(d, "259", ", \"xy\": 260", SMALL_MERGES);
    expect_load_fail_at(d, "merges.txt", "261 entries", "xy", "an entry no merge forms");

    d = case_dir("missing-result"); /* the message quotes the merge */
    write_small(d, "259", "", "#version: 0.2\n\xc4\xa0 t\nh e\nx y\n");
    expect_load_fail_at(d, "merges.txt", "line 4", "\"x y\"", "merge whose result is not a token, quoted");

    d = case_dir("specials"); /* "<|...|>" entries need no merge */
    write_small(d, "259", ", \"<|pad|>\": 260, \"<|im_start|>\": 261", SMALL_MERGES);
    t = load_ok(d);
    ck_assert_int_eq(tok_vocab_size(t), 262);
    tok_free(t);

    d = case_dir("not-special"); /* "<||>" and "<|a b|>" are not of that form */
    write_small(d, "259", ", \"<||>\": 260", SMALL_MERGES);
    expect_load_fail(d, "merges.txt", "<||>", "\"<||>\" is no special token");

    /* GPT-2's vocab.json next to its merges.txt with only the header, or half of it */
    v = slurp(TOK_DIR "/vocab.json", &vn);
    m = slurp(TOK_DIR "/merges.txt", &mn);
    for (i = 0; i < mn; i++)
        if (m[i] == '\n' && ++lines == 25001) half = i + 1; /* the header + 25000 merges */
    ck_assert_uint_eq(lines, 50001);
    sub_dir(dir, sizeof dir, "gpt2-header-only");
    write_bytes(dir, "vocab.json", v, vn);
    write_str(dir, "merges.txt", "#version: 0.2\n");
    expect_load_fail_at(dir, "merges.txt", "50257 entries", "only 257", "GPT-2 vocab, merges header only");
    sub_dir(dir, sizeof dir, "gpt2-half");
    write_bytes(dir, "vocab.json", v, vn);
    write_bytes(dir, "merges.txt", m, half);
    expect_load_fail_at(dir, "merges.txt", "50257 entries", "only 25257", "GPT-2 vocab, half its merges");
    sub_dir(dir, sizeof dir, "gpt2-whole"); /* and whole, it loads */
    write_bytes(dir, "vocab.json", v, vn);
    write_bytes(dir, "merges.txt", m, mn);
    t = load_ok(dir);
    ck_assert_int_eq(tok_vocab_size(t), GPT2_VOCAB);
    tok_free(t);
    free(v);
    free(m);
}
END_TEST

/* Files over 32 MiB are refused before they are parsed. */
START_TEST(test_vocab_file_limit) {
    const char *d = case_dir("huge");
    static sbuf s;
    char p[4096];
    FILE *fp;
    size_t i;
    static char spaces[1 << 16];
    small_vocab(&s, "259", "");
    memset(spaces, ' ', sizeof spaces);
    path_in(p, sizeof p, d, "vocab.json");
    fp = fopen(p, "wb");
    ck_assert(fp != NULL);
    ck_assert(fwrite(s.buf, 1, s.n - 2, fp) == s.n - 2); /* all but "}\n" */
    for (i = 0; i < (33u << 20) / sizeof spaces; i++) ck_assert(fwrite(spaces, 1, sizeof spaces, fp) == sizeof spaces);
    ck_assert(fwrite("}\n", 1, 2, fp) == 2);
    ck_assert(fclose(fp) == 0);
    write_str(d, "merges.txt", SMALL_MERGES);
    expect_load_fail(d, "vocab.json", "limit|large", "a 33 MiB vocab.json");
}
END_TEST

/* ---- hash flooding: strings chosen so that FNV-1a (64-bit), the unkeyed hash
 * tokenizer.c used, gives them all the same low 17 bits, i.e. the same slot of a
 * table of 2^17 slots (the vocabulary index at 40257 entries, the trainer's word
 * index at 40000 words). FNV-1a: h = (h ^ byte) * P mod 2^64 from h = offset;
 * the low k bits of h depend on the low k bits only, and the step inverts:
 * h_before = (h_after * P^-1) ^ byte. So each 5-letter suffix fixes the state it
 * needs before it to end at the target, and a prefix ending in that state is
 * completed by it. ---- */

#define FLOOD_BITS 17
#define FLOOD_N 40000
#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

/* FLOOD_N strings of 10 bytes: ' ' + 4 letters + 5 letters, all distinct, whose
 * FNV-1a hashes agree in the low FLOOD_BITS bits when flood != 0; when flood == 0,
 * random strings of the same shape. out: FLOOD_N * 10 bytes. */
static void flood_strings(unsigned char *out, int flood) {
    const uint64_t mask = ((uint64_t)1 << FLOOD_BITS) - 1, target = 12345 & mask;
    uint64_t inv = FNV_PRIME, h;
    int32_t *need = malloc(sizeof(int32_t) << FLOOD_BITS); /* state -> suffix index */
    int i, k, made = 0;
    long sfx, pre;
    util_rng rng;
    ck_assert(need != NULL);
    if (!flood) {
        util_rng_seed(&rng, 4242);
        for (i = 0; i < FLOOD_N; i++) {
            out[10 * i] = ' ';
            for (k = 1; k < 10; k++) out[10 * i + k] = (unsigned char)('a' + util_rng_u64(&rng) % 26);
        }
        free(need);
        return;
    }
    for (k = 0; k < 6; k++) inv *= 2 - FNV_PRIME * inv; /* Newton: P * inv = 1 mod 2^64 */
    ck_assert(inv * FNV_PRIME == 1);
    for (i = 0; i < (1 << FLOOD_BITS); i++) need[i] = -1;
    for (sfx = 0; sfx < 26L * 26 * 26 * 26 * 26; sfx++) { /* walk back from the target */
        long x = sfx;
        char c[5];
        for (k = 4; k >= 0; k--) {
            c[k] = (char)('a' + x % 26);
            x /= 26;
        }
        h = target;
        for (k = 4; k >= 0; k--) h = ((h * inv) & mask) ^ (unsigned char)c[k];
        if (need[h] < 0) need[h] = (int32_t)sfx;
    }
    for (pre = 0; made < FLOOD_N && pre < 26L * 26 * 26 * 26; pre++) {
        unsigned char *s = out + 10 * made;
        long x = pre, y;
        s[0] = ' ';
        for (k = 4; k >= 1; k--) {
            s[k] = (unsigned char)('a' + x % 26);
            x /= 26;
        }
        h = FNV_OFFSET;
        for (k = 0; k < 5; k++) h = (h ^ s[k]) * FNV_PRIME;
        if (need[h & mask] < 0) continue;
        y = need[h & mask];
        for (k = 9; k >= 5; k--) {
            s[k] = (unsigned char)('a' + y % 26);
            y /= 26;
        }
        h = FNV_OFFSET;
        for (k = 0; k < 10; k++) h = (h ^ s[k]) * FNV_PRIME;
        ck_assert((h & mask) == target);
        made++;
    }
    ck_assert_int_eq(made, FLOOD_N);
    free(need);
}

/* Seconds tok_load takes on a vocabulary of the 256 bytes, "<|endoftext|>" and
 * the FLOOD_N strings, next to a merges.txt of the header only (the load fails
 * at the merges, after building the index): the best of 3 runs. */
static double flood_load_seconds(const char *name, const unsigned char *strs) {
    char dir[4096];
    char *buf;
    size_t cap = 80 + 16 * 256 + (size_t)FLOOD_N * 40, n = 0;
    double best = 1e30;
    int i, k, run;
    buf = malloc(cap);
    ck_assert(buf != NULL);
    n = (size_t)snprintf(buf, cap, "{");
    for (i = 0; i < 256; i++) {
        int cp = gpt2_cp[gpt2_byte[i]];
        n += (size_t)snprintf(buf + n, cap - n, "\"\\u%04x\": %d, ", (unsigned)cp, i);
    }
    n += (size_t)snprintf(buf + n, cap - n, "\"<|endoftext|>\": 256");
    for (i = 0; i < FLOOD_N; i++) {
        char lit[64];
        byte_level(lit, strs + 10 * i, 10);
        n += (size_t)snprintf(buf + n, cap - n, ", \"%s\": %d", lit, 257 + i);
        ck_assert(n < cap);
    }
    for (k = 0; k < 2; k++) buf[n++] = "}\n"[k];
    sub_dir(dir, sizeof dir, name);
    write_bytes(dir, "vocab.json", buf, n);
    write_str(dir, "merges.txt", "#version: 0.2\n");
    for (run = 0; run < 3; run++) {
        tok_tokenizer *t = NULL;
        dpo_err e;
        double t0 = util_seconds(), dt;
        (void)tok_load(&t, dir, &e); /* refused (no merges) or, by the old code, accepted */
        dt = util_seconds() - t0;
        tok_free(t);
        if (dt < best) best = dt;
    }
    free(buf);
    return best;
}

START_TEST(test_vocab_hash_flood) {
    unsigned char *strs = malloc((size_t)FLOOD_N * 10);
    double t_rand, t_flood;
    ck_assert(strs != NULL);
    flood_strings(strs, 0);
    t_rand = flood_load_seconds("rand", strs);
    flood_strings(strs, 1);
    t_flood = flood_load_seconds("flood", strs);
    printf("  vocabulary of %d: random strings %.3f s, strings colliding under FNV-1a %.3f s\n", FLOOD_N + 257,
           t_rand, t_flood);
    ck_assert_msg(t_flood <= 20.0 * (t_rand > 0.01 ? t_rand : 0.01), "colliding strings load in %.3f s, random in %.3f s",
                  t_flood, t_rand);
    free(strs);
}
END_TEST

/* The same for the trainer's word index: a corpus of FLOOD_N distinct words. */
START_TEST(test_train_hash_flood) {
    unsigned char *strs = malloc((size_t)FLOOD_N * 10);
    const char *texts[1];
    size_t len = (size_t)FLOOD_N * 10, mlen;
    double t0, t_rand, t_flood;
    char *m;
    ck_assert(strs != NULL);
    texts[0] = (const char *)strs;
    flood_strings(strs, 0);
    t0 = util_seconds();
    m = train_texts("rand", texts, &len, 1, 256 + 20 + 1, &mlen, NULL, NULL);
    t_rand = util_seconds() - t0;
    free(m);
    flood_strings(strs, 1);
    t0 = util_seconds();
    m = train_texts("flood", texts, &len, 1, 256 + 20 + 1, &mlen, NULL, NULL);
    t_flood = util_seconds() - t0;
    free(m);
    printf("  training on %d words: random %.3f s, colliding under FNV-1a %.3f s\n", FLOOD_N, t_rand, t_flood);
    ck_assert_msg(t_flood <= 20.0 * (t_rand > 0.01 ? t_rand : 0.01), "colliding words train in %.3f s, random in %.3f s",
                  t_flood, t_rand);
    free(strs);
}
END_TEST

/* No result depends on the hash key: GPT-2 loaded with fixed keys (all zero, all
 * ones, arbitrary) and with two random ones encodes every test vector to the
 * reference ids. */
START_TEST(test_hash_key_independent) {
    static const uint64_t keys[3][2] = {{0, 0}, {~0ULL, ~0ULL}, {0x0123456789abcdefULL, 0xfedcba9876543210ULL}};
    size_t nv, i;
    vector *v = load_vectors(&nv);
    int k;
    for (k = 0; k < 5; k++) {
        tok_tokenizer *t = NULL;
        dpo_err e;
        e.msg[0] = '\0';
        ck_assert_msg(tok_load_keyed(&t, TOK_DIR, k < 3 ? keys[k] : NULL, &e) == 0, "key %d: %s", k, e.msg);
        for (i = 0; i < nv; i++) {
            int *ids;
            size_t n = encode(t, v[i].text, v[i].len, &ids);
            ck_assert_msg(ids_equal(ids, n, v[i].ids, v[i].n), "key %d: vector %zu encodes differently", k, i + 1);
            free(ids);
        }
        tok_free(t);
    }
    free_vectors(v, nv);
}
END_TEST

/* tok_write_files writes the bytes that were loaded and checked, whatever has
 * happened to the source files since; from OpenAI's names too. */
START_TEST(test_write_files) {
    char src[4096], dst[4096], oa[4096], dst2[4096], cp[4096];
    size_t vn, mn, n;
    char *v = slurp(TOK_DIR "/vocab.json", &vn), *m = slurp(TOK_DIR "/merges.txt", &mn), *got;
    tok_tokenizer *t, *ot;
    dpo_err e;
    sub_dir(src, sizeof src, "src");
    sub_dir(dst, sizeof dst, "dst");
    sub_dir(oa, sizeof oa, "openai");
    sub_dir(dst2, sizeof dst2, "dst2");
    sub_dir(cp, sizeof cp, "copy");
    write_bytes(src, "vocab.json", v, vn);
    write_bytes(src, "merges.txt", m, mn);
    write_bytes(oa, "encoder.json", v, vn);
    write_bytes(oa, "vocab.bpe", m, mn);
    t = load_ok(src);
    ot = load_ok(oa);
    /* the sources change on disk after loading */
    write_str(src, "vocab.json", "{\"changed\": 0}");
    write_str(src, "merges.txt", "#version: 0.2\n");
    write_str(oa, "encoder.json", "[]");
    write_str(oa, "vocab.bpe", "");
    e.msg[0] = '\0';
    ck_assert_msg(tok_write_files(t, dst, &e) == 0, "tok_write_files: %s", e.msg);
    ck_assert_msg(tok_write_files(ot, dst2, &e) == 0, "tok_write_files: %s", e.msg);
    got = slurp_in(dst, "vocab.json", &n);
    ck_assert_msg(n == vn && memcmp(got, v, vn) == 0, "vocab.json is not the loaded bytes");
    free(got);
    got = slurp_in(dst, "merges.txt", &n);
    ck_assert_msg(n == mn && memcmp(got, m, mn) == 0, "merges.txt is not the loaded bytes");
    free(got);
    got = slurp_in(dst2, "vocab.json", &n);
    ck_assert_msg(n == vn && memcmp(got, v, vn) == 0, "vocab.json (from encoder.json) is not the loaded bytes");
    free(got);
    got = slurp_in(dst2, "merges.txt", &n);
    ck_assert_msg(n == mn && memcmp(got, m, mn) == 0, "merges.txt (from vocab.bpe) is not the loaded bytes");
    free(got);
    ck_assert_int_eq(count_entries(dst), 2);
    /* tok_copy_files still copies a valid tokenizer and refuses the changed one */
    ck_assert_msg(tok_copy_files(dst, cp, &e) == 0, "tok_copy_files: %s", e.msg);
    got = slurp_in(cp, "merges.txt", &n);
    ck_assert_msg(n == mn && memcmp(got, m, mn) == 0, "tok_copy_files: merges.txt differs");
    free(got);
    ck_assert_msg(tok_copy_files(src, cp, &e) == -1, "tok_copy_files copied an invalid tokenizer");
    tok_free(t);
    tok_free(ot);
    free(v);
    free(m);
}
END_TEST

/* ======================================================================== */
/* suite                                                                     */
/* ======================================================================== */

static Suite *make_suite(void) {
    Suite *s = suite_create("tokenizer");
    TCase *tc;
    init_byte_alphabet();

    tc = tcase_create("gpt2");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_vectors_encode_decode);
    tcase_add_test(tc, test_openai_file_names);
    tcase_add_test(tc, test_gpt2_facts);
    tcase_add_test(tc, test_hash_key_independent);
    tcase_add_test(tc, test_write_files);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip_random_bytes);
    tcase_add_test(tc, test_round_trip_random_utf8);
    tcase_add_test(tc, test_long_words);
    suite_add_tcase(s, tc);

    tc = tcase_create("pretokenize");
    tcase_add_test(tc, test_pretokenize_cases);
    tcase_add_test(tc, test_pretokenize_tiling_and_stop);
    suite_add_tcase(s, tc);

    tc = tcase_create("load_errors");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_small_vocab_loads);
    tcase_add_test(tc, test_hostile_merges);
    tcase_add_test(tc, test_hostile_vocab);
    tcase_add_test(tc, test_vocab_merges_agree);
    tcase_add_test(tc, test_vocab_file_limit);
    tcase_add_test(tc, test_vocab_hash_flood);
    suite_add_tcase(s, tc);

    tc = tcase_create("train");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_train);
    tcase_add_test(tc, test_train_errors);
    tcase_add_test(tc, test_train_same_as_before);
    tcase_add_test(tc, test_train_long_pieces);
    tcase_add_test(tc, test_train_fast_without_spaces);
    tcase_add_test(tc, test_train_hash_flood);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(make_suite()); }
