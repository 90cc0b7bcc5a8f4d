/* json.c - owns the one strict JSON reader (RFC 8259) that config.json,
 * safetensors headers, vocab.json and JSONL rows all share, the member
 * lookups over the tree it builds, and json_escape for writers.
 *
 * It must never print, never exit, and never trust a size or a byte of its
 * input. Every error goes back in a dpo_err as "line L, column C: what"
 * (1-based; columns count bytes) and leaves nothing allocated behind; every
 * allocation size is overflow-checked; nesting is bounded by JSON_MAX_DEPTH
 * and checked before each descent, so hostile input cannot exhaust the stack.
 *
 * Memory is bounded by the input: the parser counts every byte it mallocs or
 * reallocs (tree and scratch alike) and refuses the document as soon as that
 * count would pass its budget, json_memory_budget(len) = JSON_MEM_PER_BYTE *
 * len + JSON_MEM_BASE by default. Without the budget a document of small
 * values ("[0,0,0,...]": 2 input bytes, one 64-byte json_value) could make a
 * 32 MiB file cost gigabytes. The multiple, 12, comes from measuring the
 * files dpo reads (peak bytes held per input byte): GPT-2's vocab.json 5.2, a
 * Hugging Face GPT-2 124M safetensors header 6.9, JSONL rows of text 4.5 and
 * of token ids 9.6, small config/state files up to 9.5 (and those fall under
 * JSON_MEM_BASE anyway); documents of tiny values need 18 to 32 and are
 * refused once they have used 12.
 *
 * Cost: one pass over the input to size the string arena, then one
 * left-to-right parse; containers grow by 1.5x (never past what the rest of
 * the input could fill) and are cut to their exact size when they close;
 * duplicate keys are found per object by a pairwise scan (small objects) or
 * one sort (large ones), so a document of n bytes parses in O(n log n) at
 * worst, O(n) in practice.
 *
 * The tree: the root json_value and, right after it, an arena holding every
 * decoded string and key (NUL-terminated, in document order) are one malloc'd
 * block; children live inline in their parent's items array; an object's keys
 * and key_lens are arrays of their own. json_free releases all of it. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================== */
/* parser state and error reporting                                          */
/* ======================================================================== */

typedef struct {
    const unsigned char *s; /* (len,) the document, not NUL-terminated */
    size_t len;
    size_t pos;             /* next byte to read, 0 <= pos <= len */
    int depth;              /* arrays/objects currently open, <= JSON_MAX_DEPTH */
    char *arena;            /* (arena_cap,) decoded strings and keys, in document order */
    size_t arena_cap;       /* what the input's strings could need (string_bound) */
    size_t arena_used;      /* bytes of the arena handed out */
    size_t used;            /* bytes the parser holds from malloc/realloc right now */
    size_t peak;            /* the most it has held at once */
    size_t budget;          /* used may never exceed this */
    dpo_err *e;
} parser;

/* Line and column (1-based, columns in bytes) of byte offset `at`. Computed
 * only when an error is reported, so success costs nothing. */
static void locate(const unsigned char *s, size_t at, size_t *line, size_t *col) {
    size_t i, l = 1, line_start = 0;
    for (i = 0; i < at; i++) {
        if (s[i] == '\n') {
            l++;
            line_start = i + 1;
        }
    }
    *line = l;
    *col = at - line_start + 1;
}

static int fail_at(const parser *p, size_t at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Set p->e to "line L, column C: <fmt...>" for byte offset `at`; returns -1. */
static int fail_at(const parser *p, size_t at, const char *fmt, ...) {
    char what[768];
    size_t line, col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    locate(p->s, at, &line, &col);
    return dpo_errf(p->e, "line %zu, column %zu: %s", line, col, what);
}

static int fail_eof(const parser *p) {
    return fail_at(p, p->len, "unexpected end of input");
}

static int fail_oom(const parser *p, size_t bytes) {
    fail_at(p, p->pos, "out of memory (a block of %zu bytes for the parsed document)", bytes);
    return dpo_err_resource(p->e);
}

/* A byte for a message: 'x' when printable ASCII, else "byte 0xNN". */
static const char *describe_byte(unsigned char c, char *buf, size_t cap) {
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, cap, "'%c'", (char)c);
    else
        snprintf(buf, cap, "byte 0x%02X", (unsigned)c);
    return buf;
}

/* A key as a JSON string literal for messages, cut to its first 64 bytes
 * (at a UTF-8 boundary) with "..." appended when cut. cap must be >= 400. */
static void quote_key(char *out, size_t cap, const char *key, size_t len) {
    size_t cut = len, need;
    int more = 0;
    if (len > 64) {
        cut = 64;
        while (cut > 0 && ((unsigned char)key[cut] & 0xC0) == 0x80) cut--;
        more = 1;
    }
    need = json_escape(out, cap, key, cut); /* at most 6*64 + 2 bytes */
    if (more && need + 4 <= cap) memcpy(out + need, "...", 4);
}

/* ======================================================================== */
/* memory helpers                                                            */
/* ======================================================================== */

/* The budget error: the document would need more than p->budget bytes. */
static int fail_budget(const parser *p) {
    return fail_at(p, p->pos, "document needs more than %zu bytes of memory for its size of %zu bytes",
                   p->budget, p->len);
}

/* Resize the block *ptr of old_bytes to n elements of elem bytes (malloc when
 * *ptr is NULL), counting the change against the budget. Growth beyond the
 * budget is refused before anything is allocated. On failure (budget, size
 * overflow, out of memory) the error is set, *ptr is untouched and still owned
 * by the caller, and -1 is returned. */
static int mem_resize(parser *p, void **ptr, size_t old_bytes, size_t n, size_t elem) {
    size_t bytes;
    void *q;
    if (util_mul_size(n, elem, &bytes) != 0 || bytes == 0) {
        fail_at(p, p->pos, "out of memory (a block of %zu x %zu bytes)", n, elem);
        return dpo_err_resource(p->e);
    }
    if (bytes > old_bytes && bytes - old_bytes > p->budget - p->used) return fail_budget(p);
    q = realloc(*ptr, bytes);
    if (!q) {
        if (bytes < old_bytes) return 0; /* a shrink that failed: keep the larger block */
        return fail_oom(p, bytes);
    }
    *ptr = q;
    p->used = p->used - old_bytes + bytes;
    if (p->used > p->peak) p->peak = p->used;
    return 0;
}

/* free() a block of bytes counted by mem_resize. */
static void mem_release(parser *p, void *ptr, size_t bytes) {
    free(ptr);
    p->used -= bytes;
}

/* Capacity after cap, growing by half (0 -> 1 -> 2 -> 4 -> 7 -> 11 ...: one-
 * element containers, such as a shape [768], are common), but never
 * past limit when limit > cap: limit is the most items the rest of the input
 * could hold, so the last growth of a large container wastes little. */
static size_t next_cap(size_t cap, size_t limit) {
    size_t grown = cap + cap / 2 + 1;
    if (grown <= cap) grown = (size_t)-1; /* saturate; mem_resize refuses it */
    if (limit > cap && limit < grown) grown = limit;
    return grown;
}

/* Cut a container's block (cap items) down to count items; the items stay. */
static void mem_fit(parser *p, void **ptr, size_t cap, size_t count, size_t elem) {
    if (count == 0 || count == cap) return;
    (void)mem_resize(p, ptr, cap * elem, count, elem); /* cannot fail: a shrink */
}

static void value_init(json_value *v) {
    /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): fail_at always returns -1; the analyzer does not follow variadic calls */
    v->type = JSON_NULL;
    v->number = 0.0;
    v->is_integer = 0;
    v->str = NULL;
    v->len = 0;
    v->count = 0;
    v->items = NULL;
    v->keys = NULL;
    v->key_lens = NULL;
}

/* Free what v owns (not v itself): its containers' arrays; strings and keys
 * live in the root's arena. Recursion depth is bounded by the parser. */
static void free_contents(json_value *v) {
    size_t i;
    switch (v->type) {
    case JSON_ARRAY:
    case JSON_OBJECT:
        for (i = 0; i < v->count; i++) free_contents(&v->items[i]);
        free(v->items);
        free(v->keys);     /* NULL for an array */
        free(v->key_lens);
        break;
    default:
        break;
    }
    value_init(v);
}

/* ======================================================================== */
/* whitespace                                                                */
/* ======================================================================== */

/* RFC 8259 whitespace is exactly: space, horizontal tab, line feed, carriage return. */
static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* ======================================================================== */
/* UTF-8                                                                     */
/* ======================================================================== */

/* Well-formed UTF-8 (Unicode 15, table 3-7):
 *   U+0000..U+007F     00..7F
 *   U+0080..U+07FF     C2..DF  80..BF
 *   U+0800..U+0FFF     E0      A0..BF  80..BF
 *   U+1000..U+CFFF     E1..EC  80..BF  80..BF
 *   U+D000..U+D7FF     ED      80..9F  80..BF      (ED A0..BF = surrogates: invalid)
 *   U+E000..U+FFFF     EE..EF  80..BF  80..BF
 *   U+10000..U+3FFFF   F0      90..BF  80..BF  80..BF
 *   U+40000..U+FFFFF   F1..F3  80..BF  80..BF  80..BF
 *   U+100000..U+10FFFF F4      80..8F  80..BF  80..BF
 * Returns the length (1..4) of the valid sequence at s[0..avail), 0 with *why
 * set when it is invalid, or -1 when the input ends inside the sequence. */
static int utf8_sequence(const unsigned char *s, size_t avail, const char **why) {
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int n, k;
    if (c < 0x80) return 1;
    if (c < 0xC0) {
        *why = "unexpected continuation byte";
        return 0;
    }
    if (c < 0xC2) {
        *why = "overlong encoding";
        return 0;
    }
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0) lo = 0xA0; /* below: overlong */
        if (c == 0xED) hi = 0x9F; /* above: UTF-16 surrogate */
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0) lo = 0x90; /* below: overlong */
        if (c == 0xF4) hi = 0x8F; /* above: beyond U+10FFFF */
    } else if (c < 0xF8) {
        *why = "code point above U+10FFFF";
        return 0;
    } else {
        *why = "byte never used in UTF-8";
        return 0;
    }
    for (k = 1; k < n; k++) {
        unsigned b;
        if ((size_t)k >= avail) return -1;
        b = s[k];
        if ((b & 0xC0) != 0x80) {
            *why = "truncated sequence";
            return 0;
        }
        if (k == 1 && (b < lo || b > hi)) {
            *why = (c == 0xED) ? "UTF-16 surrogate encoded in UTF-8"
                 : (c == 0xF4) ? "code point above U+10FFFF"
                               : "overlong encoding";
            return 0;
        }
    }
    return n;
}

/* Encode code point cp (<= U+10FFFF, not a surrogate) into out; returns bytes. */
static size_t utf8_encode(unsigned long cp, unsigned char *out) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
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

/* ======================================================================== */
/* strings                                                                   */
/* ======================================================================== */

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits at s[i..i+4): 0 and *cp on success, -1 when one is not a
 * hex digit, -2 when the input ends first. */
static int read_hex4(const parser *p, size_t i, unsigned long *cp) {
    unsigned long v = 0;
    size_t k;
    for (k = 0; k < 4; k++) {
        int h;
        if (i + k >= p->len) return -2;
        h = hex_value(p->s[i + k]);
        if (h < 0) return -1;
        v = (v << 4) | (unsigned long)h;
    }
    *cp = v;
    return 0;
}

/* Upper bound of the arena all of the text's strings can need: for each
 * string (a '"' outside a string opens one; a backslash inside skips the next
 * byte) its raw bytes between the quotes plus one for the NUL. Escapes only
 * shrink (2 -> 1 byte, \uXXXX 6 -> <= 3, a surrogate pair 12 -> 4) and raw
 * bytes copy 1:1, so a decoded string never needs more than its raw length;
 * and since each string's raw length plus its two quotes is input, the bound
 * is at most len. The parser reads exactly these strings for as long as the
 * text is valid, so the bound holds while it parses. */
static size_t string_bound(const unsigned char *s, size_t len) {
    size_t i = 0, total = 0;
    for (;;) {
        const unsigned char *q = memchr(s + i, '"', len - i);
        size_t start;
        if (!q) return total;
        start = i = (size_t)(q - s) + 1;
        while (i < len && s[i] != '"') i += (s[i] == '\\') ? 2 : 1;
        if (i > len) i = len;
        total += i - start + 1;
        if (i >= len) return total;
        i++; /* past the closing quote */
    }
}

/* The error for a string whose closing quote never comes (opened at `open`). */
static int fail_unterminated(const parser *p, size_t open) {
    return fail_at(p, open, "unterminated string (the input ends before its closing quote)");
}

/* The code point of the \u escape whose backslash is at s[i]: "\uXXXX", or a
 * surrogate pair "\uD8xx\uDCxx" read as one code point. On success *cp is set
 * and *end is just past the escape; on error the message points at the escape
 * (or at the string's opening quote `open` when the input ends inside it). */
static int decode_u_escape(const parser *p, size_t open, size_t i, unsigned long *cp, size_t *end) {
    const unsigned char *s = p->s;
    unsigned long hi, lo;
    int r = read_hex4(p, i + 2, &hi);
    if (r == -2) return fail_unterminated(p, open);
    if (r != 0) return fail_at(p, i, "invalid \\u escape in string: expected 4 hex digits");
    if (hi >= 0xDC00 && hi <= 0xDFFF) {
        return fail_at(p, i, "lone low surrogate \\u%04lX in string "
                             "(it must follow a \\uD800-\\uDBFF escape)", hi);
    }
    *cp = hi;
    *end = i + 6;
    if (hi < 0xD800 || hi > 0xDBFF) return 0;
    /* A high surrogate must be followed at once by \uDC00..\uDFFF. */
    if (i + 6 >= p->len || (s[i + 6] == '\\' && i + 7 >= p->len)) return fail_unterminated(p, open);
    if (s[i + 6] != '\\' || s[i + 7] != 'u') {
        return fail_at(p, i, "lone high surrogate \\u%04lX in string "
                             "(it must be followed by a \\uDC00-\\uDFFF escape)", hi);
    }
    r = read_hex4(p, i + 8, &lo);
    if (r == -2) return fail_unterminated(p, open);
    if (r != 0) return fail_at(p, i + 6, "invalid \\u escape in string: expected 4 hex digits");
    if (lo < 0xDC00 || lo > 0xDFFF) {
        return fail_at(p, i, "lone high surrogate \\u%04lX in string "
                             "(it must be followed by a \\uDC00-\\uDFFF escape)", hi);
    }
    /* cp = 0x10000 + (high - 0xD800) * 0x400 + (low - 0xDC00) */
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    *end = i + 12;
    return 0;
}

/* Decode the escape whose backslash is at s[i] (inside the string opened at
 * `open`) into out: *n bytes (1..4, UTF-8), and *end just past the escape. */
static int decode_escape(const parser *p, size_t open, size_t i, unsigned char out[4], size_t *n,
                         size_t *end) {
    unsigned long cp = 0;
    char what[16];
    if (i + 1 >= p->len) return fail_unterminated(p, open);
    *n = 1;
    *end = i + 2;
    switch (p->s[i + 1]) {
    case '"': out[0] = '"'; return 0;
    case '\\': out[0] = '\\'; return 0;
    case '/': out[0] = '/'; return 0;
    case 'b': out[0] = '\b'; return 0;
    case 'f': out[0] = '\f'; return 0;
    case 'n': out[0] = '\n'; return 0;
    case 'r': out[0] = '\r'; return 0;
    case 't': out[0] = '\t'; return 0;
    case 'u':
        if (decode_u_escape(p, open, i, &cp, end) != 0) return -1;
        *n = utf8_encode(cp, out);
        return 0;
    default:
        return fail_at(p, i, "invalid escape in string: backslash followed by %s",
                       describe_byte(p->s[i + 1], what, sizeof what));
    }
}

/* Decode the string literal whose opening quote is at p->pos into the arena.
 * On success *out points at the decoded NUL-terminated bytes, *out_len of them
 * (which may include NULs from \u0000), and p->pos is just past the closing
 * quote. On error the arena is unchanged and *out, *out_len are untouched.
 * Each step copies one unit to the arena: a printable ASCII byte, an escape
 * (decoded), or a whole UTF-8 sequence (validated). */
static int parse_string(parser *p, char **out, size_t *out_len) {
    const unsigned char *s = p->s;
    size_t open = p->pos, i = open + 1, n = 0;
    /* what is left of the arena: at least this string's raw length + 1 */
    size_t cap = p->arena_cap - p->arena_used;
    unsigned char *buf = (unsigned char *)p->arena + p->arena_used;

    if (cap == 0) return fail_at(p, open, "internal error: no room left for a string");
    for (;;) {
        unsigned char tmp[4];
        const unsigned char *src;
        size_t k = 1, next = i + 1;
        unsigned char c;
        if (i >= p->len) return fail_unterminated(p, open);
        c = s[i];
        src = s + i;
        if (c == '"') break;
        if (c == '\\') {
            if (decode_escape(p, open, i, tmp, &k, &next) != 0) return -1;
            src = tmp;
        } else if (c < 0x20) {
            return fail_at(p, i, "unescaped control character (byte 0x%02X) in string", (unsigned)c);
        } else if (c >= 0x80) {
            const char *why = "";
            int r = utf8_sequence(s + i, p->len - i, &why);
            if (r < 0) return fail_unterminated(p, open);
            if (r == 0) return fail_at(p, i, "invalid UTF-8 in string (%s, byte 0x%02X)", why, (unsigned)c);
            k = (size_t)r;
            next = i + k;
        }
        if (k >= cap - n) /* cannot happen (see string_bound); checked all the same */
            return fail_at(p, open, "internal error: string longer than its bound");
        memcpy(buf + n, src, k);
        n += k;
        i = next;
    }
    buf[n] = '\0';
    p->arena_used += n + 1;
    p->pos = i + 1;
    *out = (char *)buf;
    *out_len = n;
    return 0;
}

/* ======================================================================== */
/* numbers and literals                                                      */
/* ======================================================================== */

static int is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* Skip the digits at s[i..): the index of the first byte that is not one. */
static size_t skip_digits(const parser *p, size_t i) {
    while (i < p->len && is_digit(p->s[i])) i++;
    return i;
}

/* RFC 8259 section 6:
 *   number = [ "-" ] int [ frac ] [ exp ]
 *   int    = "0" / ( digit1-9 *DIGIT )
 *   frac   = "." 1*DIGIT
 *   exp    = ( "e" / "E" ) [ "-" / "+" ] 1*DIGIT
 * Validates the token at p->pos against that grammar: *end is just past it,
 * and *integer is 1 when it has neither a fraction nor an exponent. */
static int scan_number(parser *p, size_t *end, int *integer) {
    const unsigned char *s = p->s;
    size_t start = p->pos, i = start;
    char what[16];
    *integer = 1;
    if (s[i] == '-') i++;
    if (i >= p->len) return fail_eof(p);
    if (s[i] == '0') {
        i++;
        if (i < p->len && is_digit(s[i]))
            return fail_at(p, start, "invalid number: leading zeros are not allowed");
    } else if (is_digit(s[i])) {
        i = skip_digits(p, i);
    } else {
        return fail_at(p, i, "invalid number: expected a digit after '-', found %s",
                       describe_byte(s[i], what, sizeof what));
    }
    if (i < p->len && s[i] == '.') {
        *integer = 0;
        i++;
        if (i >= p->len) return fail_eof(p);
        if (!is_digit(s[i]))
            return fail_at(p, i, "invalid number: expected a digit after '.', found %s",
                           describe_byte(s[i], what, sizeof what));
        i = skip_digits(p, i);
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        *integer = 0;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= p->len) return fail_eof(p);
        if (!is_digit(s[i]))
            return fail_at(p, i, "invalid number: expected a digit in the exponent, found %s",
                           describe_byte(s[i], what, sizeof what));
        i = skip_digits(p, i);
    }
    *end = i;
    return 0;
}

/* A number (see scan_number), converted by strtod (the "C" locale: this
 * program never calls setlocale). Overflow to +-inf is an error; underflow
 * towards 0 is accepted. */
static int parse_number(parser *p, json_value *v) {
    const unsigned char *s = p->s;
    size_t start = p->pos, i = start, n, tok_cap = 0;
    int integer = 1, whole;
    char small[64], *tok, *end;
    double x;

    if (scan_number(p, &i, &integer) != 0) return -1;
    /* strtod needs a NUL-terminated copy; most tokens fit on the stack. */
    n = i - start;
    if (n < sizeof small) {
        tok = small;
    } else {
        void *t = NULL;
        if (util_add_size(n, 1, &tok_cap) != 0 || mem_resize(p, &t, 0, tok_cap, 1) != 0) return -1;
        tok = t;
    }
    /* NOLINTNEXTLINE(clang-analyzer-core.NonNullParamChecker): as in value_init, mem_resize's failure is always -1 */
    memcpy(tok, s + start, n);
    tok[n] = '\0';
    x = strtod(tok, &end);
    whole = (end == tok + n);
    if (tok != small) mem_release(p, tok, tok_cap);
    if (!whole) return fail_at(p, start, "invalid number"); /* cannot happen for a validated token */
    if (isinf(x))
        return fail_at(p, start, "number out of range: %.*s%s does not fit in a double",
                       n > 40 ? 40 : (int)n, (const char *)(s + start), n > 40 ? "..." : "");
    v->type = JSON_NUMBER;
    v->number = x;
    v->is_integer = integer;
    p->pos = i;
    return 0;
}

/* One of true, false, null at p->pos (whose first byte has been matched). */
static int parse_literal(parser *p, const char *word, json_type type, json_value *v) {
    size_t k, n = strlen(word);
    for (k = 0; k < n; k++) {
        if (p->pos + k >= p->len) return fail_eof(p);
        if (p->s[p->pos + k] != (unsigned char)word[k])
            return fail_at(p, p->pos, "invalid literal (expected '%s')", word);
    }
    p->pos += n;
    v->type = type;
    return 0;
}

/* ======================================================================== */
/* values, arrays, objects                                                   */
/* ======================================================================== */

static int parse_value(parser *p, json_value *v);

/* Objects with at most this many members are checked for duplicate keys
 * pairwise; larger ones are sorted once. */
#define JSON_PAIRWISE_MAX 16

typedef struct {
    const char *key; /* (len,) decoded key bytes, in the arena */
    size_t len;
} key_ref;

/* Order by key bytes (shorter first on a common prefix), then by place in the
 * arena, which is document order (all keys point into the one arena block). */
static int key_ref_cmp(const void *a, const void *b) {
    const key_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return (x->key > y->key) - (x->key < y->key);
}

static int same_key(const char *a, size_t alen, const char *b, size_t blen) {
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Byte offset of the opening quote of member `index`'s name in the object
 * whose '{' is at `open`, found again from the text (for an error message, so
 * that the parser need not keep every key's offset). Only called once the
 * object has parsed, so the text there is valid JSON: at nesting level 1 a
 * string followed by ':' is a member name. */
static size_t key_position(const parser *p, size_t open, size_t index) {
    const unsigned char *s = p->s;
    size_t i = open + 1, k = 0;
    int level = 1;
    while (i < p->len && level > 0) {
        unsigned char c = s[i];
        if (c == '"') {
            size_t start = i++;
            while (i < p->len && s[i] != '"') i += (s[i] == '\\') ? 2 : 1;
            i++; /* past the closing quote */
            if (level == 1) {
                size_t j = i;
                while (j < p->len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r')) j++;
                if (j < p->len && s[j] == ':') {
                    if (k == index) return start;
                    k++;
                }
            }
            continue;
        }
        if (c == '{' || c == '[') level++;
        if (c == '}' || c == ']') level--;
        i++;
    }
    return open; /* not reached for an object that parsed */
}

/* The error for member j of the object whose '{' is at `open`: its key
 * repeats an earlier one. */
static int fail_duplicate(const parser *p, size_t open, char *const *keys, const size_t *lens,
                          size_t j) {
    char quoted[400];
    quote_key(quoted, sizeof quoted, keys[j], lens[j]);
    return fail_at(p, key_position(p, open, j), "duplicate key %s", quoted);
}

/* Report the first key (in document order) that repeats an earlier one, in
 * the object whose '{' is at `open`. */
static int check_duplicates(parser *p, size_t open, char *const *keys, const size_t *lens,
                            size_t count) {
    size_t i, j;
    if (count <= JSON_PAIRWISE_MAX) {
        for (j = 1; j < count; j++) {
            for (i = 0; i < j; i++) {
                if (same_key(keys[i], lens[i], keys[j], lens[j]))
                    return fail_duplicate(p, open, keys, lens, j);
            }
        }
        return 0;
    } else {
        void *mem = NULL;
        key_ref *refs;
        const char *best = NULL;
        if (mem_resize(p, &mem, 0, count, sizeof *refs) != 0) return -1;
        refs = mem;
        for (i = 0; i < count; i++) {
            refs[i].key = keys[i];
            refs[i].len = lens[i];
        }
        qsort(refs, count, sizeof *refs, key_ref_cmp);
        /* Within a run of equal keys the members are in document order, so the
         * first repeat of each run is its second element; the earliest of
         * those in the arena is the first repeat in the document. */
        for (i = 1; i < count; i++) {
            if (same_key(refs[i - 1].key, refs[i - 1].len, refs[i].key, refs[i].len) &&
                (!best || refs[i].key < best))
                best = refs[i].key;
        }
        mem_release(p, refs, count * sizeof *refs);
        if (!best) return 0;
        for (j = 0; j < count && keys[j] != best; j++) continue;
        return fail_duplicate(p, open, keys, lens, j);
    }
}

/* After an array element or object member: a ',' (not followed by the closing
 * bracket) means another item follows (0); the closing bracket ends the
 * container (1); anything else is an error (-1). */
static int after_item(parser *p, unsigned char close, const char *item) {
    char what[16];
    unsigned char c;
    skip_ws(p);
    if (p->pos >= p->len) {
        fail_eof(p);
        return -1;
    }
    c = p->s[p->pos];
    if (c == ',') {
        p->pos++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == close) {
            fail_at(p, p->pos, "trailing comma before '%c'", close);
            return -1;
        }
        return 0;
    }
    if (c == close) {
        p->pos++;
        return 1;
    }
    fail_at(p, p->pos, "expected ',' or '%c' after %s, found %s", close, item,
            describe_byte(c, what, sizeof what));
    return -1;
}

/* array = "[" [ value *( "," value ) ] "]" ; p->pos is at the '['. */
static int parse_array(parser *p, json_value *v) {
    void *items = NULL; /* (cap,) json_value elements; the first count are parsed */
    size_t count = 0, cap = 0, k;
    int rc;

    if (p->depth >= JSON_MAX_DEPTH)
        return fail_at(p, p->pos, "nesting depth exceeds the limit of %d levels", JSON_MAX_DEPTH);
    p->depth++;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
    } else {
        for (;;) {
            if (count == cap) {
                /* each further element takes at least one byte and a comma */
                size_t ncap = next_cap(cap, count + (p->len - p->pos + 1) / 2);
                if (mem_resize(p, &items, cap * sizeof(json_value), ncap, sizeof(json_value)) != 0)
                    goto fail;
                cap = ncap;
            }
            if (parse_value(p, (json_value *)items + count) != 0) goto fail;
            count++;
            rc = after_item(p, ']', "an array element");
            if (rc < 0) goto fail;
            if (rc > 0) break;
        }
        mem_fit(p, &items, cap, count, sizeof(json_value));
    }
    p->depth--;
    v->type = JSON_ARRAY;
    v->items = items;
    v->count = count;
    return 0;

fail:
    for (k = 0; k < count; k++) free_contents((json_value *)items + k);
    free(items);
    p->depth--;
    return -1;
}

/* The members of an object being parsed: three arrays that grow together. */
typedef struct {
    void *items;    /* (cap,) json_value member values; the first count are owned */
    void *keys;     /* (cap,) char *: decoded keys, in the arena */
    void *key_lens; /* (cap,) size_t: key byte lengths */
    size_t count, cap;
} members;

/* Make room for one more member in m. */
static int members_reserve(parser *p, members *m) {
    size_t ncap;
    if (m->count < m->cap) return 0;
    /* each further member takes at least 4 bytes ("":0) */
    ncap = next_cap(m->cap, m->count + (p->len - p->pos) / 4 + 1);
    if (mem_resize(p, &m->items, m->cap * sizeof(json_value), ncap, sizeof(json_value)) != 0 ||
        mem_resize(p, &m->keys, m->cap * sizeof(char *), ncap, sizeof(char *)) != 0 ||
        mem_resize(p, &m->key_lens, m->cap * sizeof(size_t), ncap, sizeof(size_t)) != 0)
        return -1;
    m->cap = ncap;
    return 0;
}

/* A member name must open here: a '"' (not the end, not a single quote). */
static int expect_member_name(parser *p) {
    char what[16];
    unsigned char c;
    if (p->pos >= p->len) return fail_eof(p);
    c = p->s[p->pos];
    if (c == '"') return 0;
    if (c == '\'') return fail_at(p, p->pos, "single-quoted member names are not JSON (use double quotes)");
    return fail_at(p, p->pos, "expected a member name in double quotes, found %s",
                   describe_byte(c, what, sizeof what));
}

/* member = string ":" value, appended to m. The member is owned by m from the
 * moment its name has parsed (its value null until parse_value fills it). */
static int parse_member(parser *p, members *m) {
    char what[16];
    json_value *v;
    if (expect_member_name(p) != 0 || members_reserve(p, m) != 0) return -1;
    if (parse_string(p, (char **)m->keys + m->count, (size_t *)m->key_lens + m->count) != 0) return -1;
    v = (json_value *)m->items + m->count;
    value_init(v);
    m->count++;
    skip_ws(p);
    if (p->pos >= p->len) return fail_eof(p);
    if (p->s[p->pos] != ':') {
        return fail_at(p, p->pos, "expected ':' after the member name, found %s",
                       describe_byte(p->s[p->pos], what, sizeof what));
    }
    p->pos++;
    return parse_value(p, v);
}

/* object = "{" [ member *( "," member ) ] "}" ; member = string ":" value.
 * p->pos is at the '{'. Keys must be unique (checked once the object closes). */
static int parse_object(parser *p, json_value *v) {
    members m = {NULL, NULL, NULL, 0, 0};
    size_t open = p->pos, k;
    int rc;

    if (p->depth >= JSON_MAX_DEPTH)
        return fail_at(p, p->pos, "nesting depth exceeds the limit of %d levels", JSON_MAX_DEPTH);
    p->depth++;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
    } else {
        do {
            if (parse_member(p, &m) != 0) goto fail;
            rc = after_item(p, '}', "an object member");
        } while (rc == 0);
        if (rc < 0) goto fail;
        mem_fit(p, &m.items, m.cap, m.count, sizeof(json_value));
        mem_fit(p, &m.keys, m.cap, m.count, sizeof(char *));
        mem_fit(p, &m.key_lens, m.cap, m.count, sizeof(size_t));
        if (check_duplicates(p, open, m.keys, m.key_lens, m.count) != 0) goto fail;
    }
    p->depth--;
    v->type = JSON_OBJECT;
    v->count = m.count;
    v->items = m.items;
    v->keys = m.keys;
    v->key_lens = m.key_lens;
    return 0;

fail:
    for (k = 0; k < m.count; k++) free_contents((json_value *)m.items + k);
    free(m.items);
    free(m.keys);
    free(m.key_lens);
    p->depth--;
    return -1;
}

/* value = object / array / string / number / true / false / null, after
 * optional whitespace. On error v owns nothing. */
static int parse_value(parser *p, json_value *v) {
    unsigned char c;
    char what[16];
    value_init(v);
    skip_ws(p);
    if (p->pos >= p->len) return fail_eof(p);
    c = p->s[p->pos];
    switch (c) {
    case '{':
        return parse_object(p, v);
    case '[':
        return parse_array(p, v);
    case '"':
        if (parse_string(p, &v->str, &v->len) != 0) return -1;
        v->type = JSON_STRING;
        return 0;
    case 't':
        return parse_literal(p, "true", JSON_TRUE, v);
    case 'f':
        return parse_literal(p, "false", JSON_FALSE, v);
    case 'n':
        return parse_literal(p, "null", JSON_NULL, v);
    case '\'':
        return fail_at(p, p->pos, "single-quoted strings are not JSON (use double quotes)");
    default:
        if (c == '-' || is_digit(c)) return parse_number(p, v);
        return fail_at(p, p->pos, "expected a value, found %s", describe_byte(c, what, sizeof what));
    }
}

/* ======================================================================== */
/* entry points: parse and free                                              */
/* ======================================================================== */

size_t json_memory_budget(size_t len) {
    size_t b;
    if (util_mul_size(len, JSON_MEM_PER_BYTE, &b) != 0 || util_add_size(b, JSON_MEM_BASE, &b) != 0)
        return (size_t)-1;
    return b;
}

int json_parse(const char *text, size_t len, json_value **out, dpo_err *e) {
    return json_parse_budget(text, len, json_memory_budget(len), NULL, out, e);
}

/* After the top-level value only whitespace may follow. */
static int expect_end(parser *p) {
    char what[16];
    skip_ws(p);
    if (p->pos >= p->len) return 0;
    return fail_at(p, p->pos, "unexpected %s after the JSON value",
                   describe_byte(p->s[p->pos], what, sizeof what));
}

int json_parse_budget(const char *text, size_t len, size_t max_bytes, size_t *peak,
                      json_value **out, dpo_err *e) {
    parser p;
    void *block = NULL;
    json_value *root;
    size_t arena;

    if (!out) return dpo_errf(e, "json_parse: no output pointer");
    *out = NULL;
    if (!text && len > 0) return dpo_errf(e, "json_parse: no input text");
    p.s = (const unsigned char *)(text ? text : "");
    p.len = text ? len : 0;
    p.pos = 0;
    p.depth = 0;
    p.used = 0;
    p.peak = 0;
    p.budget = max_bytes;
    p.e = e;

    if (p.len >= 3 && p.s[0] == 0xEF && p.s[1] == 0xBB && p.s[2] == 0xBF)
        return fail_at(&p, 0, "byte order mark (U+FEFF) is not allowed before JSON text");
    /* one block: the root value, then the arena for every string (<= len bytes) */
    arena = string_bound(p.s, p.len);
    if (util_add_size(arena, sizeof *root, &arena) != 0 || mem_resize(&p, &block, 0, arena, 1) != 0)
        return -1;
    root = block;
    p.arena = (char *)block + sizeof *root;
    p.arena_cap = arena - sizeof *root;
    p.arena_used = 0;
    if (parse_value(&p, root) != 0 || expect_end(&p) != 0) {
        free_contents(root); /* owns nothing when parse_value failed */
        free(block);
        return -1;
    }
    if (peak) *peak = p.peak;
    *out = root;
    return 0;
}

int json_parse_line(const char *text, size_t len, const char *path, long line, json_value **out, dpo_err *e) {
    static const char first[] = "line 1, ";
    dpo_err pe;
    if (json_parse(text, len, out, &pe) == 0) return 0;
    /* the text has no newline, so the parser's position is on its line 1 */
    if (strncmp(pe.msg, first, sizeof first - 1) == 0)
        return dpo_errf(e, "%s: line %ld, %s", path, line, pe.msg + sizeof first - 1);
    return dpo_errf(e, "%s: line %ld: %s", path, line, pe.msg);
}

void json_free(json_value *v) {
    if (!v) return;
    free_contents(v);
    free(v);
}

/* ======================================================================== */
/* lookups                                                                   */
/* ======================================================================== */

const json_value *json_get(const json_value *v, const char *key) {
    size_t i, n;
    if (!v || !key || v->type != JSON_OBJECT) return NULL;
    n = strlen(key);
    for (i = 0; i < v->count; i++)
        if (same_key(v->keys[i], v->key_lens[i], key, n)) return &v->items[i];
    return NULL;
}

/* The shortest "%.Ng" (N >= 6) that reads back as x, e.g. 1e+09, 2000, 0.1. */
static void format_number(char *buf, size_t cap, double x) {
    int prec;
    for (prec = 6; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) return;
    }
}

/* What a value is, for "got ..." in messages. */
static void describe_value(const json_value *v, char *buf, size_t cap) {
    const char *s = "a value";
    switch (v->type) {
    case JSON_NUMBER:
        format_number(buf, cap, v->number);
        return;
    case JSON_NULL: s = "null"; break;
    case JSON_FALSE: s = "false"; break;
    case JSON_TRUE: s = "true"; break;
    case JSON_STRING: s = "a string"; break;
    case JSON_ARRAY: s = "an array"; break;
    case JSON_OBJECT: s = "an object"; break;
    }
    snprintf(buf, cap, "%s", s);
}

/* Shared head of the json_get_* readers: 0 and *m when present, 1 when absent,
 * -1 when obj is not an object. */
static int lookup(const json_value *obj, const char *key, const json_value **m, char *quoted,
                  size_t qcap, dpo_err *e) {
    char got[64];
    quote_key(quoted, qcap, key ? key : "", key ? strlen(key) : 0);
    if (!obj || obj->type != JSON_OBJECT) {
        if (obj)
            describe_value(obj, got, sizeof got);
        else
            snprintf(got, sizeof got, "nothing");
        return dpo_errf(e, "key %s: cannot look it up in %s (expected an object)", quoted, got);
    }
    *m = json_get(obj, key);
    return *m ? 0 : 1;
}

int json_get_int(const json_value *obj, const char *key, long long min, long long max,
                 long long *out, dpo_err *e) {
    /* From 2^53 up, strtod may have rounded the integer: refuse those. */
    const double exact = 9007199254740992.0;
    const json_value *m = NULL;
    char quoted[400], got[64];
    const char *note = "";
    int r = lookup(obj, key, &m, quoted, sizeof quoted, e);
    if (r != 0) return r;
    if (m->type == JSON_NUMBER && m->is_integer && m->number > -exact && m->number < exact) {
        long long x = (long long)m->number;
        if (x >= min && x <= max) {
            *out = x;
            return 0;
        }
    }
    describe_value(m, got, sizeof got);
    if (m->type == JSON_NUMBER) {
        if (m->is_integer && (m->number <= -exact || m->number >= exact))
            note = " (integers of magnitude 2^53 or more cannot be read exactly)";
        else if (!m->is_integer && m->number == floor(m->number))
            note = " (written with a fraction or exponent)";
    }
    return dpo_errf(e, "key %s: expected an integer in [%lld, %lld], got %s%s", quoted, min, max,
                    got, note);
}

int json_get_number(const json_value *obj, const char *key, double *out, dpo_err *e) {
    const json_value *m = NULL;
    char quoted[400], got[64];
    int r = lookup(obj, key, &m, quoted, sizeof quoted, e);
    if (r != 0) return r;
    if (m->type != JSON_NUMBER) {
        describe_value(m, got, sizeof got);
        return dpo_errf(e, "key %s: expected a number, got %s", quoted, got);
    }
    *out = m->number;
    return 0;
}

int json_get_string(const json_value *obj, const char *key, const char **out, size_t *len,
                    dpo_err *e) {
    const json_value *m = NULL;
    char quoted[400], got[64];
    int r = lookup(obj, key, &m, quoted, sizeof quoted, e);
    if (r != 0) return r;
    if (m->type != JSON_STRING) {
        describe_value(m, got, sizeof got);
        return dpo_errf(e, "key %s: expected a string, got %s", quoted, got);
    }
    *out = m->str;
    if (len) *len = m->len;
    return 0;
}

/* ======================================================================== */
/* escaping for writers                                                      */
/* ======================================================================== */

/* Append one byte: stored while it fits before the NUL, always counted
 * (saturating, so the count can never wrap). */
static void emit(char *buf, size_t cap, size_t *n, char c) {
    if (cap > 0 && *n < cap - 1) buf[*n] = c;
    if (*n != (size_t)-1) (*n)++;
}

size_t json_escape(char *buf, size_t cap, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, i;
    emit(buf, cap, &n, '"');
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc = 0;
        switch (c) {
        case '"': esc = '"'; break;
        case '\\': esc = '\\'; break;
        case '\n': esc = 'n'; break;
        case '\t': esc = 't'; break;
        case '\r': esc = 'r'; break;
        case '\b': esc = 'b'; break;
        case '\f': esc = 'f'; break;
        default: break;
        }
        if (esc) {
            emit(buf, cap, &n, '\\');
            emit(buf, cap, &n, esc);
        } else if (c < 0x20) {
            emit(buf, cap, &n, '\\');
            emit(buf, cap, &n, 'u');
            emit(buf, cap, &n, '0');
            emit(buf, cap, &n, '0');
            emit(buf, cap, &n, hex[c >> 4]);
            emit(buf, cap, &n, hex[c & 15]);
        } else {
            emit(buf, cap, &n, (char)c);
        }
    }
    emit(buf, cap, &n, '"');
    if (cap > 0) buf[n < cap ? n : cap - 1] = '\0';
    return n;
}
