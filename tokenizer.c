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
 * (GPT-2's byte-to-unicode table) so that tokens are valid JSON strings. */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "unicode.h"

#define MAX_VOCAB 4194304             /* ids must fit this, as in model.h */
#define MAX_VOCAB_FILE (256u << 20)   /* 256 MiB */
#define EOT_TEXT "<|endoftext|>"

struct tok_tokenizer {
    int n_vocab;
    unsigned char *bytes;   /* all tokens' bytes, concatenated */
    size_t *off;            /* (n_vocab + 1) token id's bytes are bytes[off[id] .. off[id+1]) */
    int byte_id[256];       /* id of each single-byte token */
    int eot;                /* id of "<|endoftext|>", or -1 */
    int *vocab_slots;       /* open addressing: token bytes -> id; -1 empty */
    size_t vocab_mask;
    uint64_t *merge_keys;   /* open addressing: (left id << 32 | right id) -> slot; ~0 empty */
    int *merge_rank;        /* rank of the merge in a slot */
    int *merge_result;      /* id of the merged token */
    size_t merge_mask;
    int n_merges;
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
/* hash tables                                                               */
/* ======================================================================== */

/* FNV-1a over bytes */
static uint64_t hash_bytes(const unsigned char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

/* a power of two at least twice n */
static size_t table_size(size_t n) {
    size_t s = 16;
    while (s < 2 * n) s *= 2;
    return s;
}

static int vocab_find(const tok_tokenizer *t, const unsigned char *s, size_t n) {
    size_t i = (size_t)hash_bytes(s, n) & t->vocab_mask;
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
    size_t i = (size_t)hash_u64(k) & t->merge_mask;
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

/* vocab.json: {"token": id, ...}, ids exactly 0..n-1 */
static int load_vocab(tok_tokenizer *t, const char *path, dpo_err *e) {
    int inv[324];
    char *text;
    size_t len, i, total = 0;
    json_value *root;
    int *order = NULL;
    byte_inverse(inv);
    if (util_read_file(path, MAX_VOCAB_FILE, &text, &len, e) != 0) return -1;
    if (json_parse(text, len, &root, e) != 0) {
        free(text);
        return dpo_err_prefix(e, "%s", path);
    }
    free(text);
    if (root->type != JSON_OBJECT) {
        json_free(root);
        return dpo_errf(e, "%s: not a JSON object of token -> id", path);
    }
    if (root->count == 0 || root->count > MAX_VOCAB) {
        size_t count = root->count;
        json_free(root);
        return dpo_errf(e, "%s: vocabulary has %zu entries (must be 1 .. %d)", path, count, MAX_VOCAB);
    }
    t->n_vocab = (int)root->count;
    order = malloc(root->count * sizeof *order); /* order[id] = member index */
    t->off = malloc((root->count + 1) * sizeof *t->off);
    if (!order || !t->off) goto oom;
    for (i = 0; i < root->count; i++) order[i] = -1;
    for (i = 0; i < root->count; i++) {
        const json_value *v = &root->items[i];
        long long id;
        if (v->type != JSON_NUMBER || !v->is_integer || v->number < 0 || v->number >= (double)root->count) {
            dpo_errf(e, "%s: token \"%.64s\": id must be an integer in [0, %zu)", path, root->keys[i],
                     root->count);
            goto fail;
        }
        id = (long long)v->number;
        if (order[id] >= 0) {
            dpo_errf(e, "%s: id %lld is given to two tokens (\"%.64s\" and \"%.64s\")", path, id,
                     root->keys[order[id]], root->keys[i]);
            goto fail;
        }
        order[id] = (int)i;
        total += root->key_lens[i];
    }
    /* every id 0..n-1 used exactly once (n distinct ids below n); decode the strings */
    t->bytes = malloc(total ? total : 1);
    if (!t->bytes) goto oom;
    total = 0;
    for (i = 0; i < root->count; i++) {
        size_t k = (size_t)order[i], n;
        t->off[i] = total;
        if (root->key_lens[k] == 0 ||
            unicode_to_bytes(inv, root->keys[k], root->key_lens[k], t->bytes + total, &n) != 0) {
            dpo_errf(e, "%s: token \"%.64s\" (id %zu) is not a string of GPT-2 byte characters", path,
                     root->keys[k], i);
            goto fail;
        }
        total += n;
    }
    t->off[root->count] = total;
    free(order);
    json_free(root);
    return 0;
oom:
    dpo_errf(e, "%s: out of memory", path);
fail:
    free(order);
    json_free(root);
    return -1;
}

static int build_vocab_index(tok_tokenizer *t, const char *path, dpo_err *e) {
    size_t size = table_size((size_t)t->n_vocab), i;
    int id, b;
    t->vocab_slots = malloc(size * sizeof *t->vocab_slots);
    if (!t->vocab_slots) return dpo_errf(e, "%s: out of memory", path);
    for (i = 0; i < size; i++) t->vocab_slots[i] = -1;
    t->vocab_mask = size - 1;
    for (id = 0; id < t->n_vocab; id++) {
        const unsigned char *s = t->bytes + t->off[id];
        size_t n = t->off[id + 1] - t->off[id];
        if (vocab_find(t, s, n) >= 0)
            return dpo_errf(e, "%s: two ids spell the same bytes (id %d)", path, id);
        i = (size_t)hash_bytes(s, n) & t->vocab_mask;
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

/* merges.txt: "#version: ..." then one "LEFT RIGHT" per line, rank = order */
static int load_merges(tok_tokenizer *t, const char *path, dpo_err *e) {
    int inv[324];
    char *text, *p, *end;
    size_t len, lines = 0, size, i;
    unsigned char *buf = NULL;
    int line_no = 1;
    byte_inverse(inv);
    if (util_read_file(path, MAX_VOCAB_FILE, &text, &len, e) != 0) return -1;
    end = text + len;
    if (len < 8 || strncmp(text, "#version", 8) != 0) {
        free(text);
        return dpo_errf(e, "%s: line 1: missing the \"#version\" header of a merges file", path);
    }
    for (p = text; p < end; p++) lines += (*p == '\n');
    size = table_size(lines + 1);
    t->merge_keys = malloc(size * sizeof *t->merge_keys);
    t->merge_rank = malloc(size * sizeof *t->merge_rank);
    t->merge_result = malloc(size * sizeof *t->merge_result);
    buf = malloc(len + 1);
    if (!t->merge_keys || !t->merge_rank || !t->merge_result || !buf) {
        free(text);
        free(buf);
        return dpo_errf(e, "%s: out of memory", path);
    }
    for (i = 0; i < size; i++) t->merge_keys[i] = ~(uint64_t)0;
    t->merge_mask = size - 1;
    p = memchr(text, '\n', len);
    p = p ? p + 1 : end;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *sp;
        size_t na, nb;
        int a, b, r;
        line_no++;
        if (le > p && le[-1] == '\r') le--;
        if (le > p) {
            sp = memchr(p, ' ', (size_t)(le - p));
            if (!sp || sp == p || sp + 1 == le || memchr(sp + 1, ' ', (size_t)(le - sp - 1))) {
                dpo_errf(e, "%s: line %d: a merge is two tokens separated by one space", path, line_no);
                goto fail;
            }
            if (unicode_to_bytes(inv, p, (size_t)(sp - p), buf, &na) != 0 ||
                unicode_to_bytes(inv, sp + 1, (size_t)(le - sp - 1), buf + na, &nb) != 0) {
                dpo_errf(e, "%s: line %d: not GPT-2 byte characters", path, line_no);
                goto fail;
            }
            a = vocab_find(t, buf, na);
            b = vocab_find(t, buf + na, nb);
            r = vocab_find(t, buf, na + nb);
            if (a < 0 || b < 0) {
                dpo_errf(e, "%s: line %d: merge names a token that is not in the vocabulary", path,
                         line_no);
                goto fail;
            }
            if (r < 0) {
                dpo_errf(e, "%s: line %d: the merged token is not in the vocabulary", path, line_no);
                goto fail;
            }
            if (merge_find(t, a, b) >= 0) {
                dpo_errf(e, "%s: line %d: the same merge appears twice", path, line_no);
                goto fail;
            }
            i = (size_t)hash_u64(pair_key(a, b)) & t->merge_mask;
            while (t->merge_keys[i] != ~(uint64_t)0) i = (i + 1) & t->merge_mask;
            t->merge_keys[i] = pair_key(a, b);
            t->merge_rank[i] = t->n_merges++;
            t->merge_result[i] = r;
        }
        p = nl ? nl + 1 : end;
    }
    free(buf);
    free(text);
    return 0;
fail:
    free(buf);
    free(text);
    return -1;
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

int tok_load(tok_tokenizer **out, const char *dir, dpo_err *e) {
    char vpath[4096], mpath[4096];
    tok_tokenizer *t;
    *out = NULL;
    if (tokenizer_paths(dir, vpath, mpath, sizeof vpath, e) != 0) return -1;
    t = calloc(1, sizeof *t);
    if (!t) return dpo_errf(e, "out of memory");
    if (load_vocab(t, vpath, e) != 0 || build_vocab_index(t, vpath, e) != 0 || load_merges(t, mpath, e) != 0) {
        tok_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

static int copy_file(const char *src, const char *dst, dpo_err *e) {
    char *data;
    size_t len;
    util_atomic_file af;
    if (util_read_file(src, MAX_VOCAB_FILE, &data, &len, e) != 0) return -1;
    if (util_atomic_open(&af, dst, e) != 0) {
        free(data);
        return -1;
    }
    if (util_atomic_write(&af, data, len, e) != 0) {
        util_atomic_abort(&af);
        free(data);
        return -1;
    }
    free(data);
    return util_atomic_commit(&af, e);
}

int tok_copy_files(const char *src_dir, const char *dst_dir, dpo_err *e) {
    char vpath[4096], mpath[4096], out[4096];
    tok_tokenizer *t;
    if (tok_load(&t, src_dir, e) != 0) return -1; /* only a valid tokenizer is copied */
    tok_free(t);
    if (tokenizer_paths(src_dir, vpath, mpath, sizeof vpath, e) != 0) return -1;
    if (util_path_join(out, sizeof out, dst_dir, "vocab.json", e) != 0 || copy_file(vpath, out, e) != 0)
        return -1;
    if (util_path_join(out, sizeof out, dst_dir, "merges.txt", e) != 0 || copy_file(mpath, out, e) != 0)
        return -1;
    return 0;
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

static int work_reserve(bpe_work *w, size_t n) {
    if (n <= w->cap) return 0;
    free(w->id);
    free(w->prev);
    free(w->next);
    free(w->heap);
    w->id = malloc(n * sizeof *w->id);
    w->prev = malloc(n * sizeof *w->prev);
    w->next = malloc(n * sizeof *w->next);
    w->heap = malloc(2 * n * sizeof *w->heap);
    w->cap = (w->id && w->prev && w->next && w->heap) ? n : 0;
    return w->cap ? 0 : -1;
}

static int append_id(int **ids, size_t *n, size_t *cap, int id) {
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 256;
        int *p = realloc(*ids, nc * sizeof *p);
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
} encode_ctx;

/* BPE on one piece, appending its ids */
static int encode_piece(void *p, const char *start, size_t len) {
    encode_ctx *c = p;
    const tok_tokenizer *t = c->t;
    bpe_work *w = &c->w;
    const unsigned char *s = (const unsigned char *)start;
    int i, n = (int)len, pos;
    if (len == 1) return append_id(c->ids, c->n, c->cap, t->byte_id[s[0]]);
    if (len > (size_t)1 << 30 || work_reserve(w, len) != 0) return -1;
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
        if (append_id(c->ids, c->n, c->cap, w->id[pos]) != 0) return -1;
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
    if (rc != 0) return dpo_errf(e, "out of memory while encoding");
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
        total += t->off[ids[i] + 1] - t->off[ids[i]];
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
 * pre-tokenized pieces ("words"); start every word as its bytes; repeatedly
 * merge the adjacent pair that occurs most often (summed over word counts),
 * everywhere, as a new token. The best pair is kept in a max-heap ordered by
 * (count, then smallest left id, then smallest right id); counts change as
 * words are rewritten, so an entry is checked against the live count when it
 * is popped, and re-queued with the live count if that is lower. */

typedef struct {
    unsigned char *text; /* the word's bytes */
    size_t len;
    int *sym;            /* the word's current tokens */
    int n_sym;
    long long count;     /* occurrences in the corpus */
    int stamp;           /* last merge step that rewrote it */
} tr_word;

typedef struct {
    uint64_t key;      /* pair_key(left, right); ~0 for an empty slot */
    long long count;
    int *words;        /* indices of words that contained the pair when it was counted */
    int n_words, cap_words;
    int done;          /* merged already, or refused */
} tr_pair;

typedef struct {
    long long count;
    int left, right;
} tr_entry;

typedef struct {
    /* tokens */
    unsigned char *bytes;
    size_t n_bytes, cap_bytes;
    size_t *off;          /* (cap_tok + 1) */
    int n_tok, cap_tok;
    int *tok_slots;       /* bytes -> id */
    size_t tok_mask;
    /* words */
    tr_word *words;
    int n_words, cap_words;
    int *word_slots;      /* word bytes -> index */
    size_t word_mask;
    /* pairs */
    tr_pair *pairs;
    size_t pair_mask, n_pairs;
    tr_entry *heap;
    size_t n_heap, cap_heap;
    /* merges in order: (left, right) ids */
    int (*merges)[2];
    int n_merges, cap_merges;
    int oom;
} trainer;

static int grow(void **p, int *cap, int need, size_t elem) {
    int nc;
    void *q;
    if (need <= *cap) return 0;
    nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > (1 << 29)) return -1;
        nc *= 2;
    }
    q = realloc(*p, (size_t)nc * elem);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static int tr_find_tok(const trainer *tr, const unsigned char *s, size_t n) {
    size_t i = (size_t)hash_bytes(s, n) & tr->tok_mask;
    for (;; i = (i + 1) & tr->tok_mask) {
        int id = tr->tok_slots[i];
        if (id < 0) return -1;
        if (tr->off[id + 1] - tr->off[id] == n && memcmp(tr->bytes + tr->off[id], s, n) == 0) return id;
    }
}

/* add a token (bytes must be new); the token table is sized for the final vocabulary */
static int tr_add_tok(trainer *tr, const unsigned char *s, size_t n) {
    size_t i;
    if (tr->n_bytes + n > tr->cap_bytes) {
        size_t nc = tr->cap_bytes ? tr->cap_bytes : 4096;
        unsigned char *q;
        while (nc < tr->n_bytes + n) nc *= 2;
        q = realloc(tr->bytes, nc);
        if (!q) return -1;
        tr->bytes = q;
        tr->cap_bytes = nc;
    }
    memcpy(tr->bytes + tr->n_bytes, s, n);
    tr->off[tr->n_tok] = tr->n_bytes;
    tr->n_bytes += n;
    tr->off[tr->n_tok + 1] = tr->n_bytes;
    i = (size_t)hash_bytes(s, n) & tr->tok_mask;
    while (tr->tok_slots[i] >= 0) i = (i + 1) & tr->tok_mask;
    tr->tok_slots[i] = tr->n_tok;
    return tr->n_tok++;
}

static int entry_before(const tr_entry *a, const tr_entry *b) {
    if (a->count != b->count) return a->count > b->count;
    if (a->left != b->left) return a->left < b->left;
    return a->right < b->right;
}

static void tr_push(trainer *tr, long long count, int l, int r) {
    tr_entry en;
    size_t i;
    if (tr->n_heap == tr->cap_heap) {
        size_t nc = tr->cap_heap ? 2 * tr->cap_heap : 1024;
        tr_entry *q = realloc(tr->heap, nc * sizeof *q);
        if (!q) {
            tr->oom = 1;
            return;
        }
        tr->heap = q;
        tr->cap_heap = nc;
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

static tr_pair *tr_pair_get(trainer *tr, int l, int r) {
    uint64_t k = pair_key(l, r);
    size_t i = (size_t)hash_u64(k) & tr->pair_mask;
    for (;; i = (i + 1) & tr->pair_mask) {
        if (tr->pairs[i].key == k) return &tr->pairs[i];
        if (tr->pairs[i].key == ~(uint64_t)0) break;
    }
    /* new pair: grow the table first when it is half full */
    if (2 * (tr->n_pairs + 1) > tr->pair_mask + 1) {
        size_t ns = 2 * (tr->pair_mask + 1), j;
        tr_pair *np = malloc(ns * sizeof *np), *old = tr->pairs;
        if (!np) {
            tr->oom = 1;
            return NULL;
        }
        for (j = 0; j < ns; j++) np[j].key = ~(uint64_t)0;
        for (j = 0; j <= tr->pair_mask; j++) {
            size_t m;
            if (old[j].key == ~(uint64_t)0) continue;
            m = (size_t)hash_u64(old[j].key) & (ns - 1);
            while (np[m].key != ~(uint64_t)0) m = (m + 1) & (ns - 1);
            np[m] = old[j];
        }
        free(old);
        tr->pairs = np;
        tr->pair_mask = ns - 1;
        i = (size_t)hash_u64(k) & tr->pair_mask;
        while (tr->pairs[i].key != ~(uint64_t)0) i = (i + 1) & tr->pair_mask;
    }
    memset(&tr->pairs[i], 0, sizeof tr->pairs[i]);
    tr->pairs[i].key = k;
    tr->n_pairs++;
    return &tr->pairs[i];
}

/* count += delta for every adjacent pair of word w; new occurrences remember w */
static void tr_count_word(trainer *tr, int w, long long delta) {
    tr_word *wd = &tr->words[w];
    int i;
    for (i = 0; i + 1 < wd->n_sym; i++) {
        tr_pair *p = tr_pair_get(tr, wd->sym[i], wd->sym[i + 1]);
        if (!p) return;
        p->count += delta;
        if (delta > 0) {
            if (grow((void **)&p->words, &p->cap_words, p->n_words + 1, sizeof(int)) != 0) {
                tr->oom = 1;
                return;
            }
            p->words[p->n_words++] = w;
            if (!p->done) tr_push(tr, p->count, wd->sym[i], wd->sym[i + 1]);
        }
    }
}

static int tr_add_piece(void *ctx, const char *start, size_t len) {
    trainer *tr = ctx;
    const unsigned char *s = (const unsigned char *)start;
    size_t h = (size_t)hash_bytes(s, len), i;
    tr_word *wd;
    int w;
    for (i = h & tr->word_mask;; i = (i + 1) & tr->word_mask) {
        w = tr->word_slots[i];
        if (w < 0) break;
        if (tr->words[w].len == len && memcmp(tr->words[w].text, s, len) == 0) {
            tr->words[w].count++;
            return 0;
        }
    }
    /* a new word: grow the index when half full */
    if (2 * ((size_t)tr->n_words + 1) > tr->word_mask + 1) {
        size_t ns = 2 * (tr->word_mask + 1), j;
        int *nsl = malloc(ns * sizeof *nsl);
        if (!nsl) return -1;
        for (j = 0; j < ns; j++) nsl[j] = -1;
        for (w = 0; w < tr->n_words; w++) {
            j = (size_t)hash_bytes(tr->words[w].text, tr->words[w].len) & (ns - 1);
            while (nsl[j] >= 0) j = (j + 1) & (ns - 1);
            nsl[j] = w;
        }
        free(tr->word_slots);
        tr->word_slots = nsl;
        tr->word_mask = ns - 1;
        for (i = h & tr->word_mask; tr->word_slots[i] >= 0; i = (i + 1) & tr->word_mask) {}
    }
    if (grow((void **)&tr->words, &tr->cap_words, tr->n_words + 1, sizeof *tr->words) != 0) return -1;
    w = tr->n_words;
    wd = &tr->words[w];
    wd->text = malloc(len);
    wd->sym = malloc(len * sizeof(int));
    if (!wd->text || !wd->sym) {
        free(wd->text);
        free(wd->sym);
        return -1;
    }
    memcpy(wd->text, s, len);
    wd->len = len;
    wd->n_sym = (int)len;
    wd->count = 1;
    wd->stamp = -1;
    for (i = 0; i < len; i++) wd->sym[i] = tr_find_tok(tr, s + i, 1);
    for (i = h & tr->word_mask; tr->word_slots[i] >= 0; i = (i + 1) & tr->word_mask) {}
    tr->word_slots[i] = w;
    tr->n_words++;
    return 0;
}

static void tr_free(trainer *tr) {
    int i;
    size_t j;
    free(tr->bytes);
    free(tr->off);
    free(tr->tok_slots);
    for (i = 0; i < tr->n_words; i++) {
        free(tr->words[i].sym);
        free(tr->words[i].text);
    }
    free(tr->words);
    free(tr->word_slots);
    if (tr->pairs)
        for (j = 0; j <= tr->pair_mask; j++)
            if (tr->pairs[j].key != ~(uint64_t)0) free(tr->pairs[j].words);
    free(tr->pairs);
    free(tr->heap);
    free(tr->merges);
}

/* merge (l, r) -> z in word w, left to right, without overlaps */
static void tr_rewrite(trainer *tr, int w, int l, int r, int z) {
    tr_word *wd = &tr->words[w];
    int i, k = 0;
    tr_count_word(tr, w, -wd->count);
    for (i = 0; i < wd->n_sym; i++) {
        if (i + 1 < wd->n_sym && wd->sym[i] == l && wd->sym[i + 1] == r) {
            wd->sym[k++] = z;
            i++;
        } else {
            wd->sym[k++] = wd->sym[i];
        }
    }
    wd->n_sym = k;
    tr_count_word(tr, w, wd->count);
}

/* write vocab.json and merges.txt for the trained tokens */
static int tr_write(const trainer *tr, const char *dir, dpo_err *e) {
    char path[4096], *buf = NULL, *lit = NULL, *u;
    size_t cap = 0, len = 0, ucap = 0;
    util_atomic_file af;
    int id, m;
    /* worst case per token: 2 bytes per byte as UTF-8, escaped up to 6 per byte */
    for (id = 0; id < tr->n_tok; id++) {
        size_t n = tr->off[id + 1] - tr->off[id];
        if (2 * n + 1 > ucap) ucap = 2 * n + 1;
    }
    u = malloc(ucap + 16);
    lit = malloc(6 * ucap + 16);
    cap = 64 + (size_t)tr->n_tok * 32 + 14 * tr->n_bytes;
    buf = malloc(cap);
    if (!u || !lit || !buf) goto oom;
    /* vocab.json: {"token": id, ...} in id order, "<|endoftext|>" last */
    buf[len++] = '{';
    for (id = 0; id <= tr->n_tok; id++) {
        size_t n, ln;
        if (id < tr->n_tok) n = bytes_to_unicode(tr->bytes + tr->off[id], tr->off[id + 1] - tr->off[id], u);
        else {
            n = strlen(EOT_TEXT);
            memcpy(u, EOT_TEXT, n);
        }
        ln = json_escape(lit, 6 * ucap + 16, u, n);
        if (len + ln + 32 > cap) {
            char *q;
            cap = 2 * (len + ln + 32);
            q = realloc(buf, cap);
            if (!q) goto oom;
            buf = q;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s%s: %d", id ? ", " : "", lit, id);
    }
    buf[len++] = '}';
    buf[len++] = '\n';
    if (util_path_join(path, sizeof path, dir, "vocab.json", e) != 0 || util_atomic_open(&af, path, e) != 0)
        goto fail;
    if (util_atomic_write(&af, buf, len, e) != 0) {
        util_atomic_abort(&af);
        goto fail;
    }
    if (util_atomic_commit(&af, e) != 0) goto fail;
    /* merges.txt */
    len = (size_t)snprintf(buf, cap, "#version: 0.2\n");
    for (m = 0; m < tr->n_merges; m++) {
        int l = tr->merges[m][0], r = tr->merges[m][1];
        size_t nl = tr->off[l + 1] - tr->off[l], nr = tr->off[r + 1] - tr->off[r];
        if (len + 2 * (nl + nr) + 2 > cap) {
            char *q;
            cap = 2 * (len + 2 * (nl + nr) + 2);
            q = realloc(buf, cap);
            if (!q) goto oom;
            buf = q;
        }
        len += bytes_to_unicode(tr->bytes + tr->off[l], nl, buf + len);
        buf[len++] = ' ';
        len += bytes_to_unicode(tr->bytes + tr->off[r], nr, buf + len);
        buf[len++] = '\n';
    }
    if (util_path_join(path, sizeof path, dir, "merges.txt", e) != 0 || util_atomic_open(&af, path, e) != 0)
        goto fail;
    if (util_atomic_write(&af, buf, len, e) != 0) {
        util_atomic_abort(&af);
        goto fail;
    }
    if (util_atomic_commit(&af, e) != 0) goto fail;
    free(u);
    free(lit);
    free(buf);
    return 0;
oom:
    dpo_errf(e, "out of memory writing the vocabulary");
fail:
    free(u);
    free(lit);
    free(buf);
    return -1;
}

int tok_train(const char *const *files, int n_files, int vocab_size, const char *out_dir,
              tok_progress_fn progress, void *progress_ctx, dpo_err *e) {
    trainer tr;
    uint32_t cp_of[256];
    int order[256], i, step = 0, rc = -1, target_merges;
    size_t j;
    unsigned char *mbuf = NULL;
    size_t mcap = 0;

    if (vocab_size < 257 || vocab_size > MAX_VOCAB)
        return dpo_errf(e, "vocabulary size %d is out of range [257, %d] (256 bytes + merges + <|endoftext|>)",
                        vocab_size, MAX_VOCAB);
    memset(&tr, 0, sizeof tr);
    target_merges = vocab_size - 257;
    tr.off = malloc(((size_t)vocab_size + 1) * sizeof *tr.off);
    tr.tok_mask = table_size((size_t)vocab_size) - 1;
    tr.tok_slots = malloc((tr.tok_mask + 1) * sizeof *tr.tok_slots);
    tr.word_mask = 1023;
    tr.word_slots = malloc((tr.word_mask + 1) * sizeof *tr.word_slots);
    tr.pair_mask = 1023;
    tr.pairs = malloc((tr.pair_mask + 1) * sizeof *tr.pairs);
    if (!tr.off || !tr.tok_slots || !tr.word_slots || !tr.pairs) goto oom;
    for (j = 0; j <= tr.tok_mask; j++) tr.tok_slots[j] = -1;
    for (j = 0; j <= tr.word_mask; j++) tr.word_slots[j] = -1;
    for (j = 0; j <= tr.pair_mask; j++) tr.pairs[j].key = ~(uint64_t)0;
    /* the 256 byte tokens, in GPT-2's order */
    byte_table(cp_of, order);
    for (i = 0; i < 256; i++) {
        unsigned char b = (unsigned char)order[i];
        if (tr_add_tok(&tr, &b, 1) < 0) goto oom;
    }
    /* count the words of every file */
    for (i = 0; i < n_files; i++) {
        char *text;
        size_t len;
        int r;
        if (util_read_file(files[i], (size_t)1 << 32, &text, &len, e) != 0) goto done;
        r = tok_pretokenize(text, len, tr_add_piece, &tr);
        free(text);
        if (r != 0) goto oom;
    }
    for (i = 0; i < tr.n_words; i++) tr_count_word(&tr, i, tr.words[i].count);
    if (tr.oom) goto oom;

    /* merge the most frequent pair until the vocabulary is full */
    while (tr.n_tok < vocab_size - 1) {
        tr_entry best;
        tr_pair *p;
        size_t nl, nr;
        int z, k, n_words;
        if (tr.n_heap == 0) {
            dpo_errf(e, "the corpus yields only %d merges; ask for --vocab-size %d or less (or give more text)",
                     tr.n_tok - 256, tr.n_tok + 1);
            goto done;
        }
        best = tr_pop(&tr);
        p = tr_pair_get(&tr, best.left, best.right);
        if (!p) goto oom;
        if (p->done || p->count <= 0 || best.count < p->count) continue; /* stale */
        if (best.count > p->count) { /* the count fell since: queue it again */
            tr_push(&tr, p->count, best.left, best.right);
            continue;
        }
        nl = tr.off[best.left + 1] - tr.off[best.left];
        nr = tr.off[best.right + 1] - tr.off[best.right];
        if (nl + nr > mcap) {
            unsigned char *q = realloc(mbuf, 2 * (nl + nr));
            if (!q) goto oom;
            mbuf = q;
            mcap = 2 * (nl + nr);
        }
        memcpy(mbuf, tr.bytes + tr.off[best.left], nl);
        memcpy(mbuf + nl, tr.bytes + tr.off[best.right], nr);
        p->done = 1;
        if (nl + nr == strlen(EOT_TEXT) && memcmp(mbuf, EOT_TEXT, nl + nr) == 0) continue; /* reserved */
        z = tr_find_tok(&tr, mbuf, nl + nr);
        if (z < 0) z = tr_add_tok(&tr, mbuf, nl + nr);
        if (z < 0) goto oom;
        if (grow((void **)&tr.merges, &tr.cap_merges, tr.n_merges + 1, sizeof *tr.merges) != 0) goto oom;
        tr.merges[tr.n_merges][0] = best.left;
        tr.merges[tr.n_merges][1] = best.right;
        tr.n_merges++;
        /* rewrite every word that holds the pair (p may move as the table grows: copy the list) */
        n_words = p->n_words;
        {
            int *ws = p->words;
            p->words = NULL;
            p->n_words = p->cap_words = 0;
            for (k = 0; k < n_words; k++) {
                int w = ws[k];
                if (tr.words[w].stamp == step) continue;
                tr.words[w].stamp = step;
                tr_rewrite(&tr, w, best.left, best.right, z);
            }
            free(ws);
        }
        if (tr.oom) goto oom;
        step++;
        if (progress && (step % 100 == 0 || tr.n_tok == vocab_size - 1)) progress(progress_ctx, step, target_merges);
    }
    if (util_mkdir(out_dir, e) != 0 || tr_write(&tr, out_dir, e) != 0) goto done;
    rc = 0;
    goto done;
oom:
    dpo_errf(e, "out of memory while training the tokenizer");
done:
    free(mbuf);
    tr_free(&tr);
    return rc;
}
