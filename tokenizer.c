/* tokenizer.c - owns GPT-2's byte-level BPE: reading a vocabulary (vocab.json +
 * merges.txt, or OpenAI's encoder.json + vocab.bpe), the pre-tokenizer written
 * by hand, encoding by merge rank, decoding, and training a new vocabulary.
 * It must never print or exit, never trust an id, a size or a string from a
 * vocabulary file before checking it, and never add "<|endoftext|>" on its own:
 * only the caller adds that id, explicitly.
 *
 * Byte-level BPE in three steps:
 *   1. the pre-tokenizer cuts text into pieces (words with their leading space,
 *      numbers, runs of punctuation, whitespace) that no merge may cross;
 *   2. each piece starts as its bytes, one token per byte;
 *   3. repeatedly, the adjacent pair with the lowest merge rank (the earliest
 *      line of merges.txt) is replaced by the merged token, leftmost first, until
 *      no adjacent pair has a rank.
 * The vocabulary files spell each byte as a printable Unicode character
 * (GPT-2's byte-to-unicode table) so that tokens are valid JSON strings.
 *
 * Files read: the tokenizer's two files (kept in memory, as validated, so that
 * what a checkpoint gets is what was checked), the training corpus, and 16 bytes
 * of /dev/urandom per table set: the key of the hash tables, so that whoever
 * writes a vocabulary or a corpus cannot choose strings that all land in one
 * slot. No id, merge or output ever depends on that key. */
#include "tokenizer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "unicode.h"

#define MAX_VOCAB 4194304 /* ids must fit this, as in model.h */
/* Largest vocab.json / merges.txt (or encoder.json / vocab.bpe) accepted. GPT-2's
 * vocab.json is about 1 MB and its merges.txt 456 KB; the largest byte-level BPE
 * vocabularies in use (200k-250k entries) take a few MB per file. 32 MiB is ten
 * times that, and bounds what a hostile file makes the loader hold (the text, its
 * JSON tree and the tables: a few hundred MB at most). */
#define MAX_VOCAB_FILE ((size_t)32 << 20)
/* Training reads each corpus file whole, up to 4 GiB (1 GiB where size_t is 32 bits). */
#define MAX_TRAIN_FILE ((size_t)1 << (sizeof(size_t) >= 8 ? 32 : 30))
/* Training cuts a pre-tokenizer piece longer than this many bytes into chunks of at
 * most this size (ending at a UTF-8 character boundary when one is within 3 bytes).
 * Real words are far shorter; pieces this long are runs of one class (base64
 * letters, digits, a line of '=' or spaces) where a merge across a chunk boundary
 * is worth nothing. 512 is four times GPT-2's longest token (128 bytes), so any
 * token GPT-2 learnt can still be learnt; equal chunks of a long run are counted
 * as one word, and positions inside a word fit an int. Encoding never cuts. */
#define MAX_TRAIN_PIECE 512
/* Encoding keeps positions inside one piece in an int: a piece of more than 2^30
 * bytes (one GiB without a single change of character class) is refused. */
#define MAX_ENCODE_PIECE ((size_t)1 << 30)
#define EOT_TEXT "<|endoftext|>"

/* The key of a set of hash tables (SipHash's 128-bit key). */
typedef struct {
    uint64_t k0, k1;
} hash_key;

struct tok_tokenizer {
    int n_vocab;
    unsigned char *bytes;   /* all tokens' bytes, concatenated */
    size_t *off;            /* (n_vocab + 1) token id's bytes are bytes[off[id] .. off[id+1]) */
    int byte_id[256];       /* id of each single-byte token */
    int eot;                /* id of "<|endoftext|>", or -1 */
    hash_key key;           /* of both tables below; random per tokenizer */
    int *vocab_slots;       /* open addressing: token bytes -> id; -1 empty */
    size_t vocab_mask;
    uint64_t *merge_keys;   /* open addressing: (left id << 32 | right id) -> slot; ~0 empty */
    int *merge_rank;        /* rank of the merge in a slot */
    int *merge_result;      /* id of the merged token */
    size_t merge_mask;
    int n_merges;
    char *vocab_text;       /* (vocab_len) the vocabulary file's bytes as read and validated */
    size_t vocab_len;
    char *merges_text;      /* (merges_len) the merges file's bytes as read and validated */
    size_t merges_len;
};
/* ======================================================================== */
/* GPT-2's byte <-> unicode table                                            */
/* ======================================================================== */

/* Printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves; the
 * other 68 bytes, in increasing order, become U+0100, U+0101, ... This order
 * (printable first, then the rest) is also the order of the 256 byte tokens. */
static int byte_is_printable(int b) {
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

/* cp_of[b]: the character for byte b; order[i]: the byte of the i-th byte token */
static void byte_table(uint32_t cp_of[256], int order[256]) {
    int b, n = 0, k = 0;
    for (b = 0; b < 256; b++)
        if (byte_is_printable(b)) {
            cp_of[b] = (uint32_t)b;
            order[k++] = b;
        }
    for (b = 0; b < 256; b++)
        if (!byte_is_printable(b)) {
            cp_of[b] = 256u + (uint32_t)n++;
            order[k++] = b;
        }
}

/* inv[cp]: the byte that character cp stands for, or -1 (cp < 324) */
static void byte_inverse(int inv[324]) {
    uint32_t cp_of[256];
    int order[256], b;
    byte_table(cp_of, order);
    for (b = 0; b < 324; b++) inv[b] = -1;
    for (b = 0; b < 256; b++) inv[cp_of[b]] = b;
}

/* Decode a vocabulary string (UTF-8) into bytes with the inverse table; -1 if a
 * character is outside the table. */
static int unicode_to_bytes(const int inv[324], const char *s, size_t len, unsigned char *out,
                            size_t *out_len) {
    size_t i = 0, n = 0;
    while (i < len) {
        uint32_t cp;
        int k = uni_decode_utf8((const unsigned char *)s + i, len - i, &cp);
        if (k == 0 || cp >= 324 || inv[cp] < 0) return -1;
        out[n++] = (unsigned char)inv[cp];
        i += (size_t)k;
    }
    *out_len = n;
    return 0;
}

/* Encode bytes as vocabulary characters (UTF-8) into out (at most 2 bytes per byte). */
static size_t bytes_to_unicode(const unsigned char *s, size_t len, char *out) {
    uint32_t cp_of[256];
    int order[256];
    size_t i, n = 0;
    byte_table(cp_of, order);
    for (i = 0; i < len; i++) {
        uint32_t cp = cp_of[s[i]];
        if (cp < 0x80) {
            out[n++] = (char)cp;
        } else {
            out[n++] = (char)(0xC0 | (cp >> 6));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return n;
}

/* ======================================================================== */
/* keyed hashing                                                             */
/* ======================================================================== */

/* SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012),
 * written from the paper. State v0..v3 = the key XOR the four constants of
 * "somepseudorandomlygeneratedbytes"; each 8-byte little-endian block m is
 * absorbed as v3 ^= m, two SipRounds, v0 ^= m; the last block holds the 0..7
 * remaining bytes and, in its top byte, the length mod 256; then v2 ^= 0xff, four
 * SipRounds, and the hash is v0 ^ v1 ^ v2 ^ v3. Without the key, which inputs
 * collide in a table cannot be predicted, so a table of n keys costs O(n)
 * probes in total whatever the files hold. */

static uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

/* One SipRound: an add-rotate-xor network over the four state words. */
static void sip_round(uint64_t v[4]) {
    v[0] += v[1];
    v[1] = rotl64(v[1], 13);
    v[1] ^= v[0];
    v[0] = rotl64(v[0], 32);
    v[2] += v[3];
    v[3] = rotl64(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = rotl64(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = rotl64(v[1], 17);
    v[1] ^= v[2];
    v[2] = rotl64(v[2], 32);
}

/* The initial state for key k. */
static void sip_init(uint64_t v[4], const hash_key *k) {
    v[0] = k->k0 ^ 0x736f6d6570736575ULL;
    v[1] = k->k1 ^ 0x646f72616e646f6dULL;
    v[2] = k->k0 ^ 0x6c7967656e657261ULL;
    v[3] = k->k1 ^ 0x7465646279746573ULL;
}

/* Absorb one 64-bit block (c = 2 rounds). */
static void sip_block(uint64_t v[4], uint64_t m) {
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
}

/* Finalize (d = 4 rounds). */
static uint64_t sip_final(uint64_t v[4]) {
    v[2] ^= 0xff;
    sip_round(v);
    sip_round(v);
    sip_round(v);
    sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* SipHash-2-4 of s[0..n) under key k. */
static uint64_t hash_bytes(const hash_key *k, const unsigned char *s, size_t n) {
    uint64_t v[4], m;
    size_t i, j;
    sip_init(v, k);
    for (i = 0; i + 8 <= n; i += 8) {
        m = 0;
        for (j = 0; j < 8; j++) m |= (uint64_t)s[i + j] << (8 * j);
        sip_block(v, m);
    }
    m = (uint64_t)(n & 0xff) << 56;
    for (j = 0; i + j < n; j++) m |= (uint64_t)s[i + j] << (8 * j);
    sip_block(v, m);
    return sip_final(v);
}

/* SipHash-2-4 of the 8 little-endian bytes of x (the same value hash_bytes gives them). */
static uint64_t hash_u64(const hash_key *k, uint64_t x) {
    uint64_t v[4];
    sip_init(v, k);
    sip_block(v, x);
    sip_block(v, (uint64_t)8 << 56);
    return sip_final(v);
}

/* splitmix64: one step of a 64-bit mixer, for the fallback key below. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A fresh random key: 16 bytes of /dev/urandom; where that cannot be read, a mix of
 * the time, the CPU clock, the process id and two addresses (not secret, but not
 * written in any file either). */
static void hash_key_random(hash_key *k) {
    unsigned char b[16];
    size_t got = 0;
    int i;
    FILE *fp = fopen("/dev/urandom", "rb");
    if (fp) {
        got = fread(b, 1, sizeof b, fp);
        fclose(fp);
    }
    if (got == sizeof b) {
        k->k0 = k->k1 = 0;
        for (i = 0; i < 8; i++) {
            k->k0 |= (uint64_t)b[i] << (8 * i);
            k->k1 |= (uint64_t)b[8 + i] << (8 * i);
        }
    } else {
        uint64_t s = (uint64_t)time(NULL) ^ (uint64_t)clock() << 24 ^ (uint64_t)getpid() << 40 ^
                     (uint64_t)(uintptr_t)k ^ (uint64_t)(uintptr_t)&s << 7;
        k->k0 = splitmix64(&s);
        k->k1 = splitmix64(&s);
    }
}

/* ======================================================================== */
/* hash tables                                                               */
/* ======================================================================== */

/* a power of two at least twice n */
static size_t table_size(size_t n) {
    size_t s = 16;
    while (s < 2 * n) s *= 2;
    return s;
}

/* id of the token spelled s[0..n), or -1 */
static int vocab_find(const tok_tokenizer *t, const unsigned char *s, size_t n) {
    size_t i = (size_t)hash_bytes(&t->key, s, n) & t->vocab_mask;
    for (;; i = (i + 1) & t->vocab_mask) {
        int id = t->vocab_slots[i];
        if (id < 0) return -1;
        if (t->off[id + 1] - t->off[id] == n && memcmp(t->bytes + t->off[id], s, n) == 0) return id;
    }
}

static uint64_t pair_key(int a, int b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

/* slot of merge (a, b), or -1 */
static long merge_find(const tok_tokenizer *t, int a, int b) {
    uint64_t k = pair_key(a, b);
    size_t i = (size_t)hash_u64(&t->key, k) & t->merge_mask;
    for (;; i = (i + 1) & t->merge_mask) {
        if (t->merge_keys[i] == k) return (long)i;
        if (t->merge_keys[i] == ~(uint64_t)0) return -1;
    }
}

/* ======================================================================== */
/* loading                                                                   */
/* ======================================================================== */

void tok_free(tok_tokenizer *t) {
    if (!t) return;
    free(t->bytes);
    free(t->off);
    free(t->vocab_slots);
    free(t->merge_keys);
    free(t->merge_rank);
    free(t->merge_result);
    free(t->vocab_text);
    free(t->merges_text);
    free(t);
}

int tok_vocab_size(const tok_tokenizer *t) { return t->n_vocab; }
int tok_eot_id(const tok_tokenizer *t) { return t->eot; }

const unsigned char *tok_token_bytes(const tok_tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    *len = t->off[id + 1] - t->off[id];
    return t->bytes + t->off[id];
}

static int file_exists(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    fclose(fp);
    return 1;
}

/* The vocab.json spelling of token id for a message: at most 40 bytes of the
 * token (80 bytes of printable characters), NUL-terminated, "..." when cut.
 * out must hold 96 bytes. Never raw bytes: every byte maps to a printable
 * character of GPT-2's table. */
static void token_spelling(const tok_tokenizer *t, int id, char *out) {
    size_t n = t->off[id + 1] - t->off[id], k;
    k = bytes_to_unicode(t->bytes + t->off[id], n > 40 ? 40 : n, out);
    if (n > 40) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
}

/* Length of at most max bytes of the UTF-8 text s[0..n), not cutting a character. */
static int utf8_clip(const char *s, size_t n, size_t max) {
    if (n <= max) return (int)n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
    return (int)max;
}

/* A special token: "<|" + one or more printable ASCII characters other than '|'
 * + "|>", such as "<|endoftext|>". Such an entry may be formed by no merge. */
static int is_special(const unsigned char *s, size_t n) {
    size_t i;
    if (n < 5 || s[0] != '<' || s[1] != '|' || s[n - 2] != '|' || s[n - 1] != '>') return 0;
    for (i = 2; i + 2 < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '|') return 0;
    return 1;
}

/* vocab.json's root: an object of 1 .. MAX_VOCAB members. */
static int check_vocab_root(const json_value *root, const char *path, dpo_err *e) {
    if (root->type != JSON_OBJECT) return dpo_errf(e, "%s: not a JSON object of token -> id", path);
    if (root->count == 0 || root->count > MAX_VOCAB)
        return dpo_errf(e, "%s: vocabulary has %zu entries (must be 1 .. %d)", path, root->count, MAX_VOCAB);
    return 0;
}

/* order[id] = the member of root that has that id, for every id, each id an
 * integer in [0, n) given to one token only: then the ids are exactly 0..n-1.
 * *total = the tokens' spelled lengths, summed (an upper bound of their bytes). */
static int order_by_id(const json_value *root, int *order, size_t *total, const char *path, dpo_err *e) {
    size_t i;
    *total = 0;
    for (i = 0; i < root->count; i++) order[i] = -1;
    for (i = 0; i < root->count; i++) {
        const json_value *v = &root->items[i];
        long long id;
        if (v->type != JSON_NUMBER || !v->is_integer || v->number < 0 || v->number >= (double)root->count) {
            return dpo_errf(e, "%s: token \"%.*s\": id must be an integer in [0, %zu)", path,
                            utf8_clip(root->keys[i], root->key_lens[i], 64), root->keys[i], root->count);
        }
        id = (long long)v->number;
        if (order[id] >= 0) {
            return dpo_errf(e, "%s: id %lld is given to two tokens (\"%.*s\" and \"%.*s\")", path, id,
                            utf8_clip(root->keys[order[id]], root->key_lens[order[id]], 64),
                            root->keys[order[id]], utf8_clip(root->keys[i], root->key_lens[i], 64),
                            root->keys[i]);
        }
        order[id] = (int)i;
        *total += root->key_lens[i];
    }
    return 0;
}

/* t->bytes and t->off: each token's bytes, decoded from its spelling in GPT-2's
 * byte characters, in id order. */
static int decode_tokens(tok_tokenizer *t, const json_value *root, const int *order, size_t total,
                         const char *path, dpo_err *e) {
    int inv[324];
    size_t i;
    byte_inverse(inv);
    t->bytes = malloc(total ? total : 1);
    if (!t->bytes) {
        dpo_err_oom(e, "the tokens' bytes", total ? total : 1, 1);
        return dpo_err_prefix(e, "%s", path);
    }
    total = 0;
    for (i = 0; i < root->count; i++) {
        size_t k = (size_t)order[i], n;
        t->off[i] = total;
        if (root->key_lens[k] == 0 ||
            unicode_to_bytes(inv, root->keys[k], root->key_lens[k], t->bytes + total, &n) != 0) {
            return dpo_errf(e, "%s: token \"%.*s\" (id %zu) is not a string of GPT-2 byte characters", path,
                            utf8_clip(root->keys[k], root->key_lens[k], 64), root->keys[k], i);
        }
        total += n;
    }
    t->off[root->count] = total;
    return 0;
}

/* vocab.json: {"token": id, ...}, ids exactly 0..n-1; keeps the file's bytes */
static int load_vocab(tok_tokenizer *t, const char *path, dpo_err *e) {
    char *text;
    size_t len, total;
    json_value *root;
    int *order = NULL, rc = -1;
    if (util_read_file(path, MAX_VOCAB_FILE, &text, &len, e) != 0) return -1;
    if (json_parse(text, len, &root, e) != 0) {
        free(text);
        return dpo_err_prefix(e, "%s", path);
    }
    t->vocab_text = text; /* freed by tok_free */
    t->vocab_len = len;
    if (check_vocab_root(root, path, e) != 0) goto done;
    t->n_vocab = (int)root->count;
    order = malloc(root->count * sizeof *order); /* order[id] = member index */
    t->off = malloc((root->count + 1) * sizeof *t->off);
    if (!order || !t->off) {
        dpo_err_oom(e, "the vocabulary's index arrays",
                    root->count * sizeof *order + (root->count + 1) * sizeof *t->off, 1);
        dpo_err_prefix(e, "%s", path);
    } else if (order_by_id(root, order, &total, path, e) == 0 &&
             decode_tokens(t, root, order, total, path, e) == 0)
        rc = 0;
done:
    free(order);
    json_free(root);
    return rc;
}

/* the token bytes -> id table; finds the 256 byte tokens and "<|endoftext|>" */
static int build_vocab_index(tok_tokenizer *t, const char *path, dpo_err *e) {
    size_t size = table_size((size_t)t->n_vocab), i;
    int id, b;
    t->vocab_slots = malloc(size * sizeof *t->vocab_slots);
    if (!t->vocab_slots) {
        dpo_err_oom(e, "the vocabulary's hash table", size, sizeof *t->vocab_slots);
        return dpo_err_prefix(e, "%s", path);
    }
    for (i = 0; i < size; i++) t->vocab_slots[i] = -1;
    t->vocab_mask = size - 1;
    for (id = 0; id < t->n_vocab; id++) {
        const unsigned char *s = t->bytes + t->off[id];
        size_t n = t->off[id + 1] - t->off[id];
        if (vocab_find(t, s, n) >= 0)
            return dpo_errf(e, "%s: two ids spell the same bytes (id %d)", path, id);
        i = (size_t)hash_bytes(&t->key, s, n) & t->vocab_mask;
        while (t->vocab_slots[i] >= 0) i = (i + 1) & t->vocab_mask;
        t->vocab_slots[i] = id;
    }
    for (b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        t->byte_id[b] = vocab_find(t, &c, 1);
        if (t->byte_id[b] < 0)
            return dpo_errf(e, "%s: the vocabulary lacks the token for byte 0x%02x (byte-level BPE needs all 256)",
                            path, b);
    }
    t->eot = vocab_find(t, (const unsigned char *)EOT_TEXT, strlen(EOT_TEXT));
    return 0;
}

/* After all merges are read: every entry of vocab.json is a byte token, a special
 * token "<|...|>" or the result of a merge (formed[id] >= 0), else the two files
 * do not belong together (typically a truncated merges.txt). */
static int check_all_formed(const tok_tokenizer *t, const int *formed, const char *mpath, dpo_err *e) {
    int id, first = -1, unformed = 0, special = 0;
    char spell[96];
    for (id = 0; id < t->n_vocab; id++) {
        const unsigned char *s = t->bytes + t->off[id];
        size_t n = t->off[id + 1] - t->off[id];
        if (n == 1 || formed[id] >= 0) continue;
        if (is_special(s, n)) {
            special++;
        } else {
            if (first < 0) first = id;
            unformed++;
        }
    }
    if (unformed == 0) return 0;
    token_spelling(t, first, spell);
    return dpo_errf(e, "%s: vocab.json has %d entries but merges.txt accounts for only %d (%d merged "
                       "+ 256 bytes + %d special <|...|>): truncated, or from another vocabulary? "
                       "(id %d \"%s\" is formed by no merge)",
                    mpath, t->n_vocab, t->n_vocab - unformed, t->n_merges, special, first, spell);
}

/* What load_merges keeps while it reads merges.txt line by line. */
typedef struct {
    tok_tokenizer *t;
    const char *path;
    int inv[324];       /* GPT-2 byte character -> byte */
    unsigned char *buf; /* (file length + 1) one line's two tokens, decoded back to back */
    int *formed;        /* (n_vocab) formed[id]: line of the merge forming it, or -1 */
    int line_no;        /* of the line being read, 1-based */
} merges_reader;

/* The empty merge table, sized for n_vocab (there are fewer merges than entries). */
static int alloc_merge_table(tok_tokenizer *t) {
    size_t size = table_size((size_t)t->n_vocab), i;
    t->merge_keys = malloc(size * sizeof *t->merge_keys);
    t->merge_rank = malloc(size * sizeof *t->merge_rank);
    t->merge_result = malloc(size * sizeof *t->merge_result);
    if (!t->merge_keys || !t->merge_rank || !t->merge_result) return -1;
    for (i = 0; i < size; i++) t->merge_keys[i] = ~(uint64_t)0;
    t->merge_mask = size - 1;
    return 0;
}

/* Add merge (a, b) -> r with the next rank (it must not be in the table yet). */
static void merge_insert(tok_tokenizer *t, int a, int b, int r) {
    size_t i = (size_t)hash_u64(&t->key, pair_key(a, b)) & t->merge_mask;
    while (t->merge_keys[i] != ~(uint64_t)0) i = (i + 1) & t->merge_mask;
    t->merge_keys[i] = pair_key(a, b);
    t->merge_rank[i] = t->n_merges++;
    t->merge_result[i] = r;
}

/* One non-empty line p[0..le) of merges.txt, "LEFT RIGHT": both tokens in the
 * vocabulary, their concatenation an entry that no earlier merge forms. */
static int read_merge_line(merges_reader *mr, const char *p, const char *le, dpo_err *e) {
    tok_tokenizer *t = mr->t;
    const char *sp = memchr(p, ' ', (size_t)(le - p)), *path = mr->path;
    int line_no = mr->line_no, a, b, r, ql;
    size_t na, nb;
    if (!sp || sp == p || sp + 1 == le || memchr(sp + 1, ' ', (size_t)(le - sp - 1)))
        return dpo_errf(e, "%s: line %d: a merge is two tokens separated by one space", path, line_no);
    if (unicode_to_bytes(mr->inv, p, (size_t)(sp - p), mr->buf, &na) != 0 ||
        unicode_to_bytes(mr->inv, sp + 1, (size_t)(le - sp - 1), mr->buf + na, &nb) != 0)
        return dpo_errf(e, "%s: line %d: not GPT-2 byte characters", path, line_no);
    /* from here the line is GPT-2 byte characters only: printable, safe to quote */
    ql = utf8_clip(p, (size_t)(le - p), 120);
    a = vocab_find(t, mr->buf, na);
    b = vocab_find(t, mr->buf + na, nb);
    r = vocab_find(t, mr->buf, na + nb);
    if (a < 0 || b < 0) {
        return dpo_errf(e, "%s: line %d: merge \"%.*s\" names a token that is not in the vocabulary", path,
                        line_no, ql, p);
    }
    if (r < 0) {
        return dpo_errf(e, "%s: line %d: merge \"%.*s\": the merged token is not in vocab.json "
                           "(the two files do not belong together)", path, line_no, ql, p);
    }
    if (merge_find(t, a, b) >= 0)
        return dpo_errf(e, "%s: line %d: the same merge appears twice (\"%.*s\")", path, line_no, ql, p);
    if (mr->formed[r] >= 0) {
        return dpo_errf(e, "%s: line %d: merge \"%.*s\" forms the token (id %d) that line %d forms already",
                        path, line_no, ql, p, r, mr->formed[r]);
    }
    mr->formed[r] = line_no;
    merge_insert(t, a, b, r);
    return 0;
}

/* Every line after the header, in order: rank = order of the merge lines
 * (empty lines are skipped; a line may end in "\r\n"). */
static int read_merge_lines(merges_reader *mr, const char *text, size_t len, dpo_err *e) {
    const char *end = text + len, *p = memchr(text, '\n', len);
    p = p ? p + 1 : end;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        if (mr->line_no == INT_MAX) return dpo_errf(e, "%s: too many lines", mr->path);
        mr->line_no++;
        if (le > p && le[-1] == '\r') le--;
        if (le > p && read_merge_line(mr, p, le, e) != 0) return -1;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* merges.txt: "#version: ..." then one "LEFT RIGHT" per line, rank = order.
 * Each merge must form an entry of vocab.json that no other merge forms, and
 * every entry of vocab.json but the bytes and special tokens must be formed:
 * then there are at most n_vocab - 256 merges and the table is sized by n_vocab.
 * Keeps the file's bytes. */
static int load_merges(tok_tokenizer *t, const char *path, dpo_err *e) {
    merges_reader mr;
    char *text;
    size_t len, i;
    int rc = -1;
    if (util_read_file(path, MAX_VOCAB_FILE, &text, &len, e) != 0) return -1;
    t->merges_text = text; /* freed by tok_free */
    t->merges_len = len;
    if (len < 8 || strncmp(text, "#version", 8) != 0)
        return dpo_errf(e, "%s: line 1: missing the \"#version\" header of a merges file", path);
    mr.t = t;
    mr.path = path;
    mr.line_no = 1;
    byte_inverse(mr.inv);
    mr.formed = malloc((size_t)t->n_vocab * sizeof *mr.formed);
    mr.buf = malloc(len + 1);
    if (alloc_merge_table(t) != 0 || !mr.formed || !mr.buf) {
        size_t size = table_size((size_t)t->n_vocab); /* alloc_merge_table's slots */
        dpo_err_oom(e, "the merge tables",
                    size * (sizeof *t->merge_keys + sizeof *t->merge_rank + sizeof *t->merge_result) +
                        (size_t)t->n_vocab * sizeof *mr.formed + len + 1,
                    1);
        dpo_err_prefix(e, "%s", path);
    } else {
        for (i = 0; i < (size_t)t->n_vocab; i++) mr.formed[i] = -1;
        if (read_merge_lines(&mr, text, len, e) == 0 && check_all_formed(t, mr.formed, path, e) == 0) rc = 0;
    }
    free(mr.formed);
    free(mr.buf);
    return rc;
}

/* the two files of a tokenizer directory: HF's names, else OpenAI's */
static int tokenizer_paths(const char *dir, char *vpath, char *mpath, size_t cap, dpo_err *e) {
    if (util_path_join(vpath, cap, dir, "vocab.json", e) != 0 ||
        util_path_join(mpath, cap, dir, "merges.txt", e) != 0)
        return -1;
    if (file_exists(vpath)) return 0;
    if (util_path_join(vpath, cap, dir, "encoder.json", e) != 0 ||
        util_path_join(mpath, cap, dir, "vocab.bpe", e) != 0)
        return -1;
    if (file_exists(vpath)) return 0;
    return dpo_errf(e, "%s: no tokenizer here: vocab.json (with merges.txt) or encoder.json "
                       "(with vocab.bpe) is missing", dir);
}

int tok_load_keyed(tok_tokenizer **out, const char *dir, const uint64_t key[2], dpo_err *e) {
    char vpath[4096], mpath[4096];
    tok_tokenizer *t;
    *out = NULL;
    if (tokenizer_paths(dir, vpath, mpath, sizeof vpath, e) != 0) return -1;
    t = calloc(1, sizeof *t);
    if (!t) return dpo_err_oom(e, "the tokenizer", 1, sizeof *t);
    if (key) {
        t->key.k0 = key[0];
        t->key.k1 = key[1];
    } else {
        hash_key_random(&t->key);
    }
    if (load_vocab(t, vpath, e) != 0 || build_vocab_index(t, vpath, e) != 0 || load_merges(t, mpath, e) != 0) {
        tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int tok_load(tok_tokenizer **out, const char *dir, dpo_err *e) { return tok_load_keyed(out, dir, NULL, e); }

/* write data[0..len) as dir/name, atomically */
static int write_file_atomic(const char *dir, const char *name, const char *data, size_t len, dpo_err *e) {
    char path[4096];
    util_atomic_file af;
    if (util_path_join(path, sizeof path, dir, name, e) != 0 || util_atomic_open(&af, path, e) != 0) return -1;
    if (util_atomic_write(&af, data, len, e) != 0) {
        util_atomic_abort(&af);
        return -1;
    }
    return util_atomic_commit(&af, e);
}

int tok_write_files(const tok_tokenizer *t, const char *dir, dpo_err *e) {
    if (write_file_atomic(dir, "vocab.json", t->vocab_text, t->vocab_len, e) != 0) return -1;
    return write_file_atomic(dir, "merges.txt", t->merges_text, t->merges_len, e);
}

int tok_copy_files(const char *src_dir, const char *dst_dir, dpo_err *e) {
    tok_tokenizer *t;
    int rc;
    if (tok_load(&t, src_dir, e) != 0) return -1; /* only a valid tokenizer is copied */
    rc = tok_write_files(t, dst_dir, e);
    tok_free(t);
    return rc;
}

/* ======================================================================== */
/* pre-tokenizer                                                             */
/* ======================================================================== */

/* class and length of the character at s (len > 0): invalid UTF-8 is one OTHER byte */
static uni_class char_at(const unsigned char *s, size_t len, int *n) {
    uint32_t cp;
    int k = uni_decode_utf8(s, len, &cp);
    if (k == 0) {
        *n = 1;
        return UNI_OTHER;
    }
    *n = k;
    return uni_classify(cp);
}

/* end of the run of characters of class c starting at i (or of "not space,
 * letter, number" when c is UNI_OTHER) */
static size_t run_end(const unsigned char *s, size_t len, size_t i, uni_class c) {
    while (i < len) {
        int n;
        if (char_at(s + i, len - i, &n) != c) break;
        i += (size_t)n;
    }
    return i;
}

/* length of the piece at s[i..len): the first alternative of the pattern that matches */
static size_t piece_len(const unsigned char *s, size_t len, size_t i) {
    size_t j = i, k, last = i;
    int n;
    uni_class c;
    /* 's 't 're 've 'm 'll 'd */
    if (s[i] == '\'' && i + 1 < len) {
        unsigned char a = s[i + 1], b = i + 2 < len ? s[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    /* ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional ASCII space, then a run */
    if (s[i] == ' ' && i + 1 < len) j = i + 1;
    c = char_at(s + j, len - j, &n);
    if (c != UNI_SPACE) return run_end(s, len, j, c) - i;
    /* '\s+(?!\S)': a whitespace run, less its last character when a non-space follows;
     * '\s+': otherwise the whole run (here: a single whitespace character) */
    k = i;
    while (k < len) {
        if (char_at(s + k, len - k, &n) != UNI_SPACE) break;
        last = k;
        k += (size_t)n;
    }
    if (k == len || last == i) return k - i;
    return last - i;
}

int tok_pretokenize(const char *text, size_t len, tok_piece_fn fn, void *ctx) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        size_t n = piece_len(s, len, i);
        int rc = fn(ctx, text + i, n);
        if (rc != 0) return rc;
        i += n;
    }
    return 0;
}

/* ======================================================================== */
/* encoding                                                                  */
/* ======================================================================== */

/* Scratch for one piece: a doubly linked list of tokens and a min-heap of
 * candidate merges ordered by (rank, position). A heap entry is stale when the
 * tokens it names are no longer adjacent with those ids; stale entries are
 * skipped when popped. Each merge pushes at most two entries, so a piece of n
 * bytes costs O(n log n), not O(n^2). */
typedef struct {
    int rank, pos, left, right; /* merge rank; list position; the two ids */
} cand;

typedef struct {
    int *id, *prev, *next; /* (cap) the list */
    cand *heap;            /* (2 * cap) */
    size_t cap, n_heap;
} bpe_work;

static int cand_less(const cand *a, const cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_work *w, cand c) {
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static cand heap_pop(bpe_work *w) {
    cand top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const cand *best = &last;
        if (l < n && cand_less(&w->heap[l], best)) {
            m = l;
            best = &w->heap[l];
        }
        if (l + 1 < n && cand_less(&w->heap[l + 1], best)) m = l + 1;
        if (m == i) break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n > 0) w->heap[i] = last;
    return top;
}

static void push_pair(const tok_tokenizer *t, bpe_work *w, int pos) {
    int nx;
    long slot;
    cand c;
    if (pos < 0) return;
    nx = w->next[pos];
    if (nx < 0) return;
    slot = merge_find(t, w->id[pos], w->id[nx]);
    if (slot < 0) return;
    c.rank = t->merge_rank[slot];
    c.pos = pos;
    c.left = w->id[pos];
    c.right = w->id[nx];
    heap_push(w, c);
}

/* room for a piece of n tokens (n <= MAX_ENCODE_PIECE, so that the sizes below fit) */
static int work_reserve(bpe_work *w, size_t n) {
    size_t bytes_int, bytes_heap;
    if (n <= w->cap) return 0;
    free(w->id);
    free(w->prev);
    free(w->next);
    free(w->heap);
    w->id = w->prev = w->next = NULL;
    w->heap = NULL;
    w->cap = 0;
    if (util_mul_size(n, sizeof(int), &bytes_int) != 0 || util_mul_size(n, 2 * sizeof(cand), &bytes_heap) != 0)
        return -1;
    w->id = malloc(bytes_int);
    w->prev = malloc(bytes_int);
    w->next = malloc(bytes_int);
    w->heap = malloc(bytes_heap);
    w->cap = (w->id && w->prev && w->next && w->heap) ? n : 0;
    return w->cap ? 0 : -1;
}

/* append one id to the growing array (doubling, overflow-checked) */
static int append_id(int **ids, size_t *n, size_t *cap, int id) {
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 256, bytes;
        int *p;
        if (nc < *cap || util_mul_size(nc, sizeof *p, &bytes) != 0) return -1;
        p = realloc(*ids, bytes);
        if (!p) return -1;
        *ids = p;
        *cap = nc;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

typedef struct {
    const tok_tokenizer *t;
    bpe_work w;
    int **ids;
    size_t *n, *cap;
    size_t too_long;  /* length of a piece refused for its size, or 0 */
    const char *oom_what;       /* out of memory: what could not be allocated, */
    size_t oom_count, oom_size; /* and its size, count x size bytes */
} encode_ctx;

/* append_id to the ids being encoded; when out of memory, c's oom fields say so */
static int encode_append(encode_ctx *c, int id) {
    size_t cap = *c->cap;
    if (append_id(c->ids, c->n, c->cap, id) == 0) return 0;
    c->oom_what = "the token ids";
    c->oom_count = cap ? 2 * cap : 256;
    c->oom_size = sizeof **c->ids;
    return -1;
}

/* BPE on one piece, appending its ids */
static int encode_piece(void *p, const char *start, size_t len) {
    encode_ctx *c = p;
    const tok_tokenizer *t = c->t;
    bpe_work *w = &c->w;
    const unsigned char *s = (const unsigned char *)start;
    int i, n = (int)len, pos;
    if (len == 1) return encode_append(c, t->byte_id[s[0]]);
    if (len > MAX_ENCODE_PIECE) {
        c->too_long = len;
        return -1;
    }
    if (work_reserve(w, len) != 0) {
        c->oom_what = "a piece's merge arrays";
        c->oom_count = len;
        c->oom_size = 3 * sizeof(int) + 2 * sizeof(cand);
        return -1;
    }
    for (i = 0; i < n; i++) {
        w->id[i] = t->byte_id[s[i]];
        w->prev[i] = i - 1;
        w->next[i] = i + 1 < n ? i + 1 : -1;
    }
    w->n_heap = 0;
    for (i = 0; i + 1 < n; i++) push_pair(t, w, i);
    while (w->n_heap > 0) {
        cand m = heap_pop(w);
        int nx = w->next[m.pos];
        long slot;
        if (w->id[m.pos] != m.left || nx < 0 || w->id[nx] != m.right) continue; /* stale */
        /* merge the pair: the left token becomes the merged one, the right leaves the list */
        slot = merge_find(t, m.left, m.right);
        w->id[m.pos] = t->merge_result[slot];
        w->id[nx] = -1;
        w->next[m.pos] = w->next[nx];
        if (w->next[nx] >= 0) w->prev[w->next[nx]] = m.pos;
        push_pair(t, w, w->prev[m.pos]);
        push_pair(t, w, m.pos);
    }
    for (pos = 0; pos >= 0; pos = w->next[pos])
        if (encode_append(c, w->id[pos]) != 0) return -1;
    return 0;
}

int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int **ids, size_t *n,
               size_t *cap, dpo_err *e) {
    encode_ctx c;
    int rc;
    memset(&c, 0, sizeof c);
    c.t = t;
    c.ids = ids;
    c.n = n;
    c.cap = cap;
    rc = tok_pretokenize(text, len, encode_piece, &c);
    free(c.w.id);
    free(c.w.prev);
    free(c.w.next);
    free(c.w.heap);
    if (rc != 0 && c.too_long)
        return dpo_errf(e, "a piece of %zu bytes (a run of one kind of character) is longer than the %zu "
                           "bytes one piece may have", c.too_long, MAX_ENCODE_PIECE);
    if (rc != 0) return dpo_err_oom(e, c.oom_what ? c.oom_what : "the token ids", c.oom_count, c.oom_size);
    return 0;
}

/* ======================================================================== */
/* decoding                                                                  */
/* ======================================================================== */

int tok_decode(const tok_tokenizer *t, const int *ids, size_t n, char **out, size_t *len,
               dpo_err *e) {
    size_t i, total = 0;
    char *buf;
    for (i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab)
            return dpo_errf(e, "id %d at position %zu is outside the vocabulary [0, %d)", ids[i], i,
                            t->n_vocab);
        if (util_add_size(total, t->off[ids[i] + 1] - t->off[ids[i]], &total) != 0 || total == SIZE_MAX)
            return dpo_errf(e, "decoding %zu ids: the text would not fit in memory", n);
    }
    buf = malloc(total + 1);
    if (!buf) return dpo_errf(e, "out of memory decoding %zu bytes", total);
    total = 0;
    for (i = 0; i < n; i++) {
        size_t k = t->off[ids[i] + 1] - t->off[ids[i]];
        memcpy(buf + total, t->bytes + t->off[ids[i]], k);
        total += k;
    }
    buf[total] = '\0';
    *out = buf;
    *len = total;
    return 0;
}

/* ======================================================================== */
/* training                                                                  */
/* ======================================================================== */

/* Byte-level BPE training, as GPT-2's merges were learnt: count the corpus's
 * pre-tokenized pieces ("words", pieces over MAX_TRAIN_PIECE bytes cut into
 * chunks); start every word as its bytes; repeatedly merge the adjacent pair
 * that occurs most often, everywhere, as a new token:
 *
 *   count(l, r) = sum over words w of  count(w) * #{ i : sym_w[i] = l, sym_w[i+1] = r }
 *
 * (overlapping positions count: "a a a" holds (a, a) twice), and merging (l, r)
 * rewrites each word left to right without overlaps ("a a a" -> "aa a").
 *
 * Cost near-linear in the corpus: each word's tokens are a linked list over its
 * byte positions, and each pair keeps the (word, position) of its occurrences.
 * Merging (l, r) at position i of word w, with neighbours x before and y after,
 *   x l r y  ->  x z y
 * changes only four counts, each by count(w): (x, l) and (r, y) lose one
 * occurrence, (x, z) and (z, y) gain one (recorded for when they are merged).
 * Occurrences are never removed; one is stale when its tokens have changed since,
 * and is checked when used. Every merge at least shortens a word by one token, so
 * the whole training touches O(corpus bytes) occurrences (plus a sort when l = r).
 *
 * The best pair is kept in a max-heap of (count, then smallest left id, then
 * smallest right id); whenever a count grows, the pair is queued again with it,
 * and a popped entry is checked against the live count: a lower entry is stale
 * (the live one is queued too), a higher one is queued again with the live count.
 *
 * A merge whose result would spell "<|endoftext|>", or a token that exists
 * already (another merge formed those bytes), is refused and never tried again:
 * every trained token is formed by exactly one merge, as tok_load requires. */

typedef struct {
    size_t base;     /* its bytes and tokens start at text[base], sym[base] */
    int len;         /* bytes, 1 .. MAX_TRAIN_PIECE */
    long long count; /* occurrences in the corpus */
} tr_word;

typedef struct {
    int w, pos; /* word index; position of the pair's left token in the word */
} tr_occ;

typedef struct {
    int left, right;
    long long count; /* live count, per the formula above */
    tr_occ *occ;     /* (n_occ) where the pair was formed or first counted; some are stale */
    size_t n_occ, cap_occ;
    int done;        /* merged already, or refused */
    int touched;     /* last merge step in which its count grew */
} tr_pair;

typedef struct {
    long long count;
    int left, right;
} tr_entry;

typedef struct {
    hash_key key;          /* of the three tables; random per training */
    /* tokens */
    unsigned char *bytes;  /* all tokens' bytes, concatenated */
    size_t n_bytes, cap_bytes;
    size_t *off;           /* (vocab_size + 1) token id's bytes are bytes[off[id] .. off[id+1]) */
    int n_tok;
    int byte_id[256];      /* id of each byte's token */
    int *tok_slots;        /* open addressing: token bytes -> id; -1 empty */
    size_t tok_mask;
    /* words: distinct chunks */
    tr_word *words;
    size_t n_words, cap_words;
    int *word_slots;       /* open addressing: word bytes -> index; -1 empty */
    size_t word_mask;
    unsigned char *text;   /* (n_sym) the words' bytes, back to back (freed once counted) */
    int *sym;              /* (n_sym) token at each position, -1 once merged into its left neighbour */
    int *prev, *next;      /* (n_sym) neighbouring live position in the same word, or -1 */
    size_t n_sym, cap_sym;
    /* pairs */
    tr_pair *pairs;
    size_t n_pairs, cap_pairs;
    size_t *pair_slots;    /* open addressing: pair_key(l, r) -> index in pairs; SIZE_MAX empty */
    size_t pair_mask;
    size_t *touched;       /* (n_touched) pairs whose count grew in this merge step */
    size_t n_touched, cap_touched;
    tr_entry *heap;
    size_t n_heap, cap_heap;
    /* merges in order: (left, right) ids */
    int (*merges)[2];
    size_t n_merges, cap_merges;
    unsigned char *merged; /* (2 * MAX_TRAIN_PIECE) the bytes of the merge being tried */
    int oom;
    size_t oom_bytes;      /* with oom: the bytes the failed allocation asked for (SIZE_MAX: the size
                              overflowed; 0: not memory but more than INT_MAX words) */
} trainer;

/* Make room for need elements of size elem in *p (capacity *cap, doubling);
 * -1 when out of memory or when the size would overflow (*want = the bytes
 * asked for, SIZE_MAX when they overflow). */
static int grow(void **p, size_t *cap, size_t need, size_t elem, size_t *want) {
    size_t nc, bytes;
    void *q;
    if (need <= *cap) return 0;
    nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) {
            *want = SIZE_MAX;
            return -1;
        }
        nc *= 2;
    }
    if (util_mul_size(nc, elem, &bytes) != 0) {
        *want = SIZE_MAX;
        return -1;
    }
    q = realloc(*p, bytes);
    if (!q) {
        *want = bytes;
        return -1;
    }
    *p = q;
    *cap = nc;
    return 0;
}

/* id of the token spelled s[0..n), or -1 */
static int tr_find_tok(const trainer *tr, const unsigned char *s, size_t n) {
    size_t i = (size_t)hash_bytes(&tr->key, s, n) & tr->tok_mask;
    for (;; i = (i + 1) & tr->tok_mask) {
        int id = tr->tok_slots[i];
        if (id < 0) return -1;
        if (tr->off[id + 1] - tr->off[id] == n && memcmp(tr->bytes + tr->off[id], s, n) == 0) return id;
    }
}

/* add a token (bytes must be new); the token table is sized for the final vocabulary */
static int tr_add_tok(trainer *tr, const unsigned char *s, size_t n) {
    size_t i;
    if (grow((void **)&tr->bytes, &tr->cap_bytes, tr->n_bytes + n, 1, &tr->oom_bytes) != 0) return -1;
    memcpy(tr->bytes + tr->n_bytes, s, n);
    tr->off[tr->n_tok] = tr->n_bytes;
    tr->n_bytes += n;
    tr->off[tr->n_tok + 1] = tr->n_bytes;
    i = (size_t)hash_bytes(&tr->key, s, n) & tr->tok_mask;
    while (tr->tok_slots[i] >= 0) i = (i + 1) & tr->tok_mask;
    tr->tok_slots[i] = tr->n_tok;
    return tr->n_tok++;
}

/* heap order: higher count first, then smaller left id, then smaller right id */
static int entry_before(const tr_entry *a, const tr_entry *b) {
    if (a->count != b->count) return a->count > b->count;
    if (a->left != b->left) return a->left < b->left;
    return a->right < b->right;
}

/* queue (count, l, r) */
static void tr_push(trainer *tr, long long count, int l, int r) {
    tr_entry en;
    size_t i;
    if (grow((void **)&tr->heap, &tr->cap_heap, tr->n_heap + 1, sizeof *tr->heap, &tr->oom_bytes) != 0) {
        tr->oom = 1;
        return;
    }
    en.count = count;
    en.left = l;
    en.right = r;
    i = tr->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!entry_before(&en, &tr->heap[p])) break;
        tr->heap[i] = tr->heap[p];
        i = p;
    }
    tr->heap[i] = en;
}

/* remove and return the first entry (the heap is not empty) */
static tr_entry tr_pop(trainer *tr) {
    tr_entry top = tr->heap[0], last = tr->heap[--tr->n_heap];
    size_t i = 0, n = tr->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const tr_entry *best = &last;
        if (l < n && entry_before(&tr->heap[l], best)) {
            m = l;
            best = &tr->heap[l];
        }
        if (l + 1 < n && entry_before(&tr->heap[l + 1], best)) m = l + 1;
        if (m == i) break;
        tr->heap[i] = tr->heap[m];
        i = m;
    }
    if (n > 0) tr->heap[i] = last;
    return top;
}

/* index of pair (l, r) in tr->pairs, added with count 0 if new; SIZE_MAX when out
 * of memory. (Adding may move tr->pairs: hold indices, not pointers.) */
static size_t tr_pair_index(trainer *tr, int l, int r) {
    uint64_t k = pair_key(l, r);
    size_t i = (size_t)hash_u64(&tr->key, k) & tr->pair_mask, idx;
    for (;; i = (i + 1) & tr->pair_mask) {
        size_t s = tr->pair_slots[i];
        if (s == SIZE_MAX) break;
        if (tr->pairs[s].left == l && tr->pairs[s].right == r) return s;
    }
    /* a new pair: grow the index first when it is half full */
    if (2 * (tr->n_pairs + 1) > tr->pair_mask + 1) {
        size_t ns = 2 * (tr->pair_mask + 1), j, *nsl;
        if (ns > SIZE_MAX / sizeof *nsl || !(nsl = malloc(ns * sizeof *nsl))) {
            tr->oom_bytes = ns > SIZE_MAX / sizeof *nsl ? SIZE_MAX : ns * sizeof *nsl;
            return SIZE_MAX;
        }
        for (j = 0; j < ns; j++) nsl[j] = SIZE_MAX;
        for (j = 0; j < tr->n_pairs; j++) {
            size_t m = (size_t)hash_u64(&tr->key, pair_key(tr->pairs[j].left, tr->pairs[j].right)) & (ns - 1);
            while (nsl[m] != SIZE_MAX) m = (m + 1) & (ns - 1);
            nsl[m] = j;
        }
        free(tr->pair_slots);
        tr->pair_slots = nsl;
        tr->pair_mask = ns - 1;
        i = (size_t)hash_u64(&tr->key, k) & tr->pair_mask;
        while (tr->pair_slots[i] != SIZE_MAX) i = (i + 1) & tr->pair_mask;
    }
    if (grow((void **)&tr->pairs, &tr->cap_pairs, tr->n_pairs + 1, sizeof *tr->pairs, &tr->oom_bytes) != 0)
        return SIZE_MAX;
    idx = tr->n_pairs++;
    memset(&tr->pairs[idx], 0, sizeof tr->pairs[idx]);
    tr->pairs[idx].left = l;
    tr->pairs[idx].right = r;
    tr->pairs[idx].touched = -1;
    tr->pair_slots[i] = idx;
    return idx;
}

/* count(l, r) += delta; a gain (delta > 0) records the occurrence (w, pos) and,
 * in merge step `step` (>= 0), puts the pair on the list to queue again. */
static void tr_pair_add(trainer *tr, int l, int r, long long delta, int w, int pos, int step) {
    size_t idx = tr_pair_index(tr, l, r);
    tr_pair *p;
    if (idx == SIZE_MAX) {
        tr->oom = 1;
        return;
    }
    p = &tr->pairs[idx];
    p->count += delta;
    if (delta <= 0) return;
    if (grow((void **)&p->occ, &p->cap_occ, p->n_occ + 1, sizeof *p->occ, &tr->oom_bytes) != 0) {
        tr->oom = 1;
        return;
    }
    p->occ[p->n_occ].w = w;
    p->occ[p->n_occ].pos = pos;
    p->n_occ++;
    if (step >= 0 && p->touched != step) {
        p->touched = step;
        if (grow((void **)&tr->touched, &tr->cap_touched, tr->n_touched + 1, sizeof *tr->touched,
                 &tr->oom_bytes) != 0) {
            tr->oom = 1;
            return;
        }
        tr->touched[tr->n_touched++] = idx;
    }
}

/* Count one chunk s[0..len) (1 <= len <= MAX_TRAIN_PIECE): one more occurrence of
 * a known word, or a new word whose tokens start as its bytes. */
static int tr_add_word(trainer *tr, const unsigned char *s, size_t len) {
    size_t h = (size_t)hash_bytes(&tr->key, s, len), i, w, k;
    tr_word *wd;
    for (i = h & tr->word_mask;; i = (i + 1) & tr->word_mask) {
        int x = tr->word_slots[i];
        if (x < 0) break;
        wd = &tr->words[x];
        if ((size_t)wd->len == len && memcmp(tr->text + wd->base, s, len) == 0) {
            wd->count++;
            return 0;
        }
    }
    if (tr->n_words >= INT_MAX) { /* word indices are ints */
        tr->oom_bytes = 0;
        return -1;
    }
    /* a new word: grow the index when half full */
    if (2 * (tr->n_words + 1) > tr->word_mask + 1) {
        size_t ns = 2 * (tr->word_mask + 1), j;
        int *nsl;
        if (ns > SIZE_MAX / sizeof *nsl || !(nsl = malloc(ns * sizeof *nsl))) {
            tr->oom_bytes = ns > SIZE_MAX / sizeof *nsl ? SIZE_MAX : ns * sizeof *nsl;
            return -1;
        }
        for (j = 0; j < ns; j++) nsl[j] = -1;
        for (w = 0; w < tr->n_words; w++) {
            j = (size_t)hash_bytes(&tr->key, tr->text + tr->words[w].base, (size_t)tr->words[w].len) & (ns - 1);
            while (nsl[j] >= 0) j = (j + 1) & (ns - 1);
            nsl[j] = (int)w;
        }
        free(tr->word_slots);
        tr->word_slots = nsl;
        tr->word_mask = ns - 1;
        for (i = h & tr->word_mask; tr->word_slots[i] >= 0; i = (i + 1) & tr->word_mask) {}
    }
    if (grow((void **)&tr->words, &tr->cap_words, tr->n_words + 1, sizeof *tr->words, &tr->oom_bytes) != 0) return -1;
    if (tr->n_sym + len > tr->cap_sym) {
        size_t c = tr->cap_sym;
        if (grow((void **)&tr->text, &c, tr->n_sym + len, 1, &tr->oom_bytes) != 0) return -1;
        c = tr->cap_sym;
        if (grow((void **)&tr->sym, &c, tr->n_sym + len, sizeof(int), &tr->oom_bytes) != 0) return -1;
        c = tr->cap_sym;
        if (grow((void **)&tr->prev, &c, tr->n_sym + len, sizeof(int), &tr->oom_bytes) != 0) return -1;
        c = tr->cap_sym;
        if (grow((void **)&tr->next, &c, tr->n_sym + len, sizeof(int), &tr->oom_bytes) != 0) return -1;
        tr->cap_sym = c;
    }
    w = tr->n_words++;
    wd = &tr->words[w];
    wd->base = tr->n_sym;
    wd->len = (int)len;
    wd->count = 1;
    memcpy(tr->text + wd->base, s, len);
    for (k = 0; k < len; k++) {
        tr->sym[wd->base + k] = tr->byte_id[s[k]];
        tr->prev[wd->base + k] = (int)k - 1;
        tr->next[wd->base + k] = k + 1 < len ? (int)k + 1 : -1;
    }
    tr->n_sym += len;
    tr->word_slots[i] = (int)w;
    return 0;
}

/* tok_pretokenize callback: a piece, cut into chunks of at most MAX_TRAIN_PIECE
 * bytes, each ending before a UTF-8 continuation byte when a character start is
 * among its last 3 bytes. */
static int tr_add_piece(void *ctx, const char *start, size_t len) {
    trainer *tr = ctx;
    const unsigned char *s = (const unsigned char *)start;
    while (len > MAX_TRAIN_PIECE) {
        size_t n = MAX_TRAIN_PIECE; /* s[n] exists: len > n */
        while (n > MAX_TRAIN_PIECE - 3 && (s[n] & 0xC0) == 0x80) n--;
        if ((s[n] & 0xC0) == 0x80) n = MAX_TRAIN_PIECE; /* no character start near: invalid UTF-8, cut anyway */
        if (tr_add_word(tr, s, n) != 0) return -1;
        s += n;
        len -= n;
    }
    return tr_add_word(tr, s, len);
}

/* occurrences in word order, then position order */
static int occ_cmp(const void *a, const void *b) {
    const tr_occ *x = a, *y = b;
    if (x->w != y->w) return x->w < y->w ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Merge (l, r) -> z at occurrence o, if it is still there: x l r y -> x z y, and
 * the four counts around it change by the word's count. */
static void tr_merge_at(trainer *tr, tr_occ o, int l, int r, int z, int step) {
    const tr_word *wd = &tr->words[o.w];
    int *sym = tr->sym + wd->base, *prv = tr->prev + wd->base, *nxt = tr->next + wd->base;
    int q = nxt[o.pos], x, y;
    long long c = wd->count;
    if (sym[o.pos] != l || q < 0 || sym[q] != r) return; /* stale */
    x = prv[o.pos];
    y = nxt[q];
    if (x >= 0) {
        tr_pair_add(tr, sym[x], l, -c, o.w, x, step);
        tr_pair_add(tr, sym[x], z, c, o.w, x, step);
    }
    if (y >= 0) {
        tr_pair_add(tr, r, sym[y], -c, o.w, q, step);
        tr_pair_add(tr, z, sym[y], c, o.w, o.pos, step);
    }
    sym[o.pos] = z;
    sym[q] = -1;
    nxt[o.pos] = y;
    if (y >= 0) prv[y] = o.pos;
}

static void tr_free(trainer *tr) {
    size_t j;
    free(tr->bytes);
    free(tr->off);
    free(tr->tok_slots);
    free(tr->words);
    free(tr->word_slots);
    free(tr->text);
    free(tr->sym);
    free(tr->prev);
    free(tr->next);
    for (j = 0; j < tr->n_pairs; j++) free(tr->pairs[j].occ);
    free(tr->pairs);
    free(tr->pair_slots);
    free(tr->touched);
    free(tr->heap);
    free(tr->merges);
    free(tr->merged);
}

/* Make room for need bytes in *buf (capacity *cap): when it does not fit, the
 * capacity becomes twice need (*want when out of memory). */
static int reserve_text(char **buf, size_t *cap, size_t need, size_t *want) {
    char *q;
    if (need <= *cap) return 0;
    q = realloc(*buf, 2 * need);
    if (!q) {
        *want = 2 * need;
        return -1;
    }
    *buf = q;
    *cap = 2 * need;
    return 0;
}

/* vocab.json into *buf from its start: {"token": id, ...} in id order,
 * "<|endoftext|>" last; *len its length (*want the bytes asked for when out of memory). */
static int tr_vocab_text(const trainer *tr, char **buf, size_t *cap, size_t *len, size_t *want) {
    char *lit = NULL, *u = NULL;
    size_t ucap = 0, n = 0;
    int id, rc = -1;
    /* worst case per token: 2 bytes per byte as UTF-8, escaped up to 6 per byte;
     * tokens are at most MAX_TRAIN_PIECE bytes, so these sizes are small */
    for (id = 0; id < tr->n_tok; id++) {
        size_t nb = tr->off[id + 1] - tr->off[id];
        if (2 * nb + 1 > ucap) ucap = 2 * nb + 1;
    }
    u = malloc(ucap + 16);
    lit = malloc(6 * ucap + 16);
    if (!u || !lit) {
        *want = ucap + 16 + 6 * ucap + 16;
        goto done;
    }
    (*buf)[n++] = '{';
    for (id = 0; id <= tr->n_tok; id++) {
        size_t nu, ln;
        if (id < tr->n_tok) nu = bytes_to_unicode(tr->bytes + tr->off[id], tr->off[id + 1] - tr->off[id], u);
        else {
            nu = strlen(EOT_TEXT);
            memcpy(u, EOT_TEXT, nu);
        }
        ln = json_escape(lit, 6 * ucap + 16, u, nu);
        if (reserve_text(buf, cap, n + ln + 32, want) != 0) goto done;
        n += (size_t)snprintf(*buf + n, *cap - n, "%s%s: %d", id ? ", " : "", lit, id);
    }
    (*buf)[n++] = '}';
    (*buf)[n++] = '\n';
    *len = n;
    rc = 0;
done:
    free(u);
    free(lit);
    return rc;
}

/* merges.txt into *buf from its start: the version line, then "LEFT RIGHT"
 * per merge in the order learnt; *len its length (*want as for tr_vocab_text). */
static int tr_merges_text(const trainer *tr, char **buf, size_t *cap, size_t *len, size_t *want) {
    size_t n = (size_t)snprintf(*buf, *cap, "#version: 0.2\n"), m;
    for (m = 0; m < tr->n_merges; m++) {
        int l = tr->merges[m][0], r = tr->merges[m][1];
        size_t nl = tr->off[l + 1] - tr->off[l], nr = tr->off[r + 1] - tr->off[r];
        if (reserve_text(buf, cap, n + 2 * (nl + nr) + 2, want) != 0) return -1;
        n += bytes_to_unicode(tr->bytes + tr->off[l], nl, *buf + n);
        (*buf)[n++] = ' ';
        n += bytes_to_unicode(tr->bytes + tr->off[r], nr, *buf + n);
        (*buf)[n++] = '\n';
    }
    *len = n;
    return 0;
}

/* write vocab.json and merges.txt for the trained tokens, through one buffer */
static int tr_write(const trainer *tr, const char *dir, dpo_err *e) {
    char *buf = NULL;
    size_t cap = 0, len = 0, want = SIZE_MAX; /* the bytes asked for when out of memory (SIZE_MAX: overflow) */
    int rc = -1;
    if (util_mul_size(tr->n_bytes, 14, &cap) != 0 || util_add_size(cap, 64 + (size_t)tr->n_tok * 32, &cap) != 0)
        goto oom;
    buf = malloc(cap);
    if (!buf) want = cap;
    if (!buf || tr_vocab_text(tr, &buf, &cap, &len, &want) != 0) goto oom;
    if (write_file_atomic(dir, "vocab.json", buf, len, e) != 0) goto done;
    if (tr_merges_text(tr, &buf, &cap, &len, &want) != 0) goto oom;
    if (write_file_atomic(dir, "merges.txt", buf, len, e) != 0) goto done;
    rc = 0;
    goto done;
oom:
    dpo_err_oom(e, "the tokenizer files' text", want, 1);
done:
    free(buf);
    return rc;
}

/* Count every adjacent pair of every word (with the word's count), remember
 * where, and queue each pair once; the words' bytes are not needed after this. */
static void tr_count_all(trainer *tr) {
    size_t w, j;
    for (w = 0; w < tr->n_words && !tr->oom; w++) {
        const tr_word *wd = &tr->words[w];
        const int *sym = tr->sym + wd->base;
        int k;
        for (k = 0; k + 1 < wd->len; k++) tr_pair_add(tr, sym[k], sym[k + 1], wd->count, (int)w, k, -1);
    }
    for (j = 0; j < tr->n_pairs && !tr->oom; j++)
        if (tr->pairs[j].count > 0) tr_push(tr, tr->pairs[j].count, tr->pairs[j].left, tr->pairs[j].right);
    free(tr->text);
    tr->text = NULL;
    free(tr->word_slots);
    tr->word_slots = NULL;
}

/* Mark the trainer out of memory; returns -1. */
static int tr_out_of_memory(trainer *tr) {
    tr->oom = 1;
    return -1;
}

/* An empty trainer for a vocabulary of vocab_size tokens, holding the 256 byte
 * tokens in GPT-2's order; -1 when out of memory (tr->oom). */
static int tr_init(trainer *tr, int vocab_size) {
    uint32_t cp_of[256];
    int order[256], i;
    size_t j;
    memset(tr, 0, sizeof *tr);
    hash_key_random(&tr->key);
    tr->merged = malloc(2 * (size_t)MAX_TRAIN_PIECE); /* a merged token is at most one chunk */
    tr->off = malloc(((size_t)vocab_size + 1) * sizeof *tr->off);
    tr->tok_mask = table_size((size_t)vocab_size) - 1;
    tr->tok_slots = malloc((tr->tok_mask + 1) * sizeof *tr->tok_slots);
    tr->word_mask = 1023;
    tr->word_slots = malloc((tr->word_mask + 1) * sizeof *tr->word_slots);
    tr->pair_mask = 1023;
    tr->pair_slots = malloc((tr->pair_mask + 1) * sizeof *tr->pair_slots);
    if (!tr->merged || !tr->off || !tr->tok_slots || !tr->word_slots || !tr->pair_slots) {
        tr->oom_bytes = 2 * (size_t)MAX_TRAIN_PIECE + ((size_t)vocab_size + 1) * sizeof *tr->off +
                        (tr->tok_mask + 1) * sizeof *tr->tok_slots + (tr->word_mask + 1) * sizeof *tr->word_slots +
                        (tr->pair_mask + 1) * sizeof *tr->pair_slots;
        return tr_out_of_memory(tr);
    }
    for (j = 0; j <= tr->tok_mask; j++) tr->tok_slots[j] = -1;
    for (j = 0; j <= tr->word_mask; j++) tr->word_slots[j] = -1;
    for (j = 0; j <= tr->pair_mask; j++) tr->pair_slots[j] = SIZE_MAX;
    byte_table(cp_of, order);
    for (i = 0; i < 256; i++) {
        unsigned char b = (unsigned char)order[i];
        if ((tr->byte_id[b] = tr_add_tok(tr, &b, 1)) < 0) return tr_out_of_memory(tr);
    }
    return 0;
}

/* Count the words of every file, then every pair of every word. -1 when a file
 * cannot be read (e set) or when out of memory (tr->oom). */
static int tr_read_corpus(trainer *tr, const char *const *files, int n_files, dpo_err *e) {
    int i;
    for (i = 0; i < n_files; i++) {
        char *text;
        size_t len;
        int r;
        if (util_read_file(files[i], MAX_TRAIN_FILE, &text, &len, e) != 0) return -1;
        r = tok_pretokenize(text, len, tr_add_piece, tr);
        free(text);
        if (r != 0) return tr_out_of_memory(tr);
    }
    tr_count_all(tr);
    return tr->oom ? -1 : 0;
}

/* Pop the best pair off the heap: its index when the entry is live (the pair
 * is then marked done), SIZE_MAX when the entry is stale (dropped, or queued
 * again with the pair's lower live count) or out of memory (tr->oom). */
static size_t tr_pop_best(trainer *tr) {
    tr_entry best = tr_pop(tr);
    size_t idx = tr_pair_index(tr, best.left, best.right);
    tr_pair *p;
    if (idx == SIZE_MAX) {
        tr->oom = 1;
        return SIZE_MAX;
    }
    p = &tr->pairs[idx];
    if (p->done || p->count <= 0 || best.count < p->count) return SIZE_MAX; /* stale */
    if (best.count > p->count) { /* the count fell since: queue it again */
        tr_push(tr, p->count, best.left, best.right);
        return SIZE_MAX;
    }
    p->done = 1;
    return idx;
}

/* The new token for merging l and r, recorded as the next merge: its id, or -1
 * when the merge is refused (its bytes spell "<|endoftext|>", or a token that
 * another merge formed already) or out of memory (tr->oom). */
static int tr_add_merge(trainer *tr, int l, int r) {
    size_t nl = tr->off[l + 1] - tr->off[l], nr = tr->off[r + 1] - tr->off[r];
    int z;
    memcpy(tr->merged, tr->bytes + tr->off[l], nl);
    memcpy(tr->merged + nl, tr->bytes + tr->off[r], nr);
    if (nl + nr == strlen(EOT_TEXT) && memcmp(tr->merged, EOT_TEXT, nl + nr) == 0) return -1; /* reserved */
    if (tr_find_tok(tr, tr->merged, nl + nr) >= 0) return -1; /* formed by another merge already */
    z = tr_add_tok(tr, tr->merged, nl + nr);
    if (z < 0) return tr_out_of_memory(tr);
    if (grow((void **)&tr->merges, &tr->cap_merges, tr->n_merges + 1, sizeof *tr->merges, &tr->oom_bytes) != 0)
        return tr_out_of_memory(tr);
    tr->merges[tr->n_merges][0] = l;
    tr->merges[tr->n_merges][1] = r;
    tr->n_merges++;
    return z;
}

/* Merge pair idx into token z at every recorded occurrence (with l = r, left
 * to right in each word, so that "a a a" becomes "aa a"), then queue again
 * every pair whose count grew. */
static void tr_merge_everywhere(trainer *tr, size_t idx, int z, int step) {
    tr_pair *pair = &tr->pairs[idx];
    int l = pair->left, r = pair->right;
    tr_occ *occ = pair->occ;
    size_t n_occ = pair->n_occ, k;
    pair->occ = NULL;
    pair->n_occ = pair->cap_occ = 0;
    if (l == r) qsort(occ, n_occ, sizeof *occ, occ_cmp);
    for (k = 0; k < n_occ && !tr->oom; k++) tr_merge_at(tr, occ[k], l, r, z, step); /* moves tr->pairs */
    free(occ);
    for (k = 0; k < tr->n_touched && !tr->oom; k++) {
        const tr_pair *p = &tr->pairs[tr->touched[k]];
        if (!p->done && p->count > 0) tr_push(tr, p->count, p->left, p->right);
    }
    tr->n_touched = 0;
}

/* Merge the most frequent pair until the vocabulary is full (vocab_size - 1
 * tokens: "<|endoftext|>" comes last). -1 when the corpus runs out of pairs
 * first (e set) or out of memory (tr->oom). */
static int tr_learn_merges(trainer *tr, int vocab_size, tok_progress_fn progress, void *progress_ctx,
                           dpo_err *e) {
    int step = 0;
    while (tr->n_tok < vocab_size - 1 && !tr->oom) {
        size_t idx;
        int z;
        if (tr->n_heap == 0) {
            return dpo_errf(e, "the corpus yields only %d merges; ask for --vocab-size %d or less "
                               "(or give more text)", tr->n_tok - 256, tr->n_tok + 1);
        }
        idx = tr_pop_best(tr);
        if (idx == SIZE_MAX) continue;
        z = tr_add_merge(tr, tr->pairs[idx].left, tr->pairs[idx].right);
        if (z < 0) continue;
        tr_merge_everywhere(tr, idx, z, step);
        if (tr->oom) break;
        step++;
        if (progress && (step % 100 == 0 || tr->n_tok == vocab_size - 1))
            progress(progress_ctx, step, vocab_size - 257);
    }
    return tr->oom ? -1 : 0;
}

/* Training in its four steps: the byte tokens, the corpus counted, the merges
 * learnt, the two files written. */
int tok_train(const char *const *files, int n_files, int vocab_size, const char *out_dir,
              tok_progress_fn progress, void *progress_ctx, dpo_err *e) {
    trainer tr;
    int rc = -1;
    if (vocab_size < 257 || vocab_size > MAX_VOCAB)
        return dpo_errf(e, "vocabulary size %d is out of range [257, %d] (256 bytes + merges + <|endoftext|>)",
                        vocab_size, MAX_VOCAB);
    if (tr_init(&tr, vocab_size) == 0 && tr_read_corpus(&tr, files, n_files, e) == 0 &&
        tr_learn_merges(&tr, vocab_size, progress, progress_ctx, e) == 0 && util_mkdir(out_dir, e) == 0 &&
        tr_write(&tr, out_dir, e) == 0)
        rc = 0;
    if (tr.oom && tr.oom_bytes == 0) dpo_errf(e, "the corpus has more than %d distinct words", INT_MAX);
    else if (tr.oom) dpo_err_oom(e, "the tokenizer trainer's tables", tr.oom_bytes, 1);
    tr_free(&tr);
    return rc;
}
