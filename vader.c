/* vader.c - owns the VADER sentiment scorer (Hutto & Gilbert, ICWSM 2014): the
 * lexicon reader (vader_load) and the rules that turn a text into the scores
 * neg, neu, pos and compound (vader_score), exactly as upstream vaderSentiment
 * 3.3.1 (github cjhutto/vaderSentiment) applies them, quirks included. Written
 * in C from the paper and from reading upstream's Python; no code is copied.
 * The constants and word lists below are upstream's (the algorithm is defined
 * by them; MIT, see data/vader/LICENSE.vaderSentiment-upstream.MIT.txt).
 *
 * It must never print, read files, keep mutable global state, read outside
 * text[0..len), or trust a lexicon: every line is checked before it is used.
 * vader_score only reads the lexicon, so threads may share one.
 *
 * What upstream does that this file does not: translate emojis into words
 * (its emoji lexicon is not shipped; an emoji here is a character without
 * case that no lexicon word matches); and know the case of characters beyond
 * U+00FF (here they have no case; ASCII and Latin-1 follow Python exactly).
 *
 * vader_score, section by section below:
 *   text --split at white space, strip punctuation--> words (lower-cased copies)
 *   each word --lexicon, "no", CAPS, boosters, negation, idioms, "least"--> valence
 *   valences --"but": 0.5x before the first "but", 1.5x after it--> valences
 *   valences, "!" and "?" --sum, normalise, proportions, round--> scores
 */
#include "vader.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"

/* ======================================================================== */
/* constants and word lists (upstream's)                                    */
/* ======================================================================== */

static const double B_INCR = 0.293;    /* a booster word raises |valence| by this */
static const double B_DECR = -0.293;   /* a dampener word lowers it */
static const double C_INCR = 0.733;    /* an ALL-CAPS word in mixed-case text */
static const double N_SCALAR = -0.74;  /* a negated valence is multiplied by this */
static const double ALPHA = 15.0;      /* compound = s / sqrt(s^2 + ALPHA) */

/* Words sorted in byte order (find_word is a binary search; a test checks the
 * order). Upstream's negation list also holds 22 words with "n't" (don't,
 * isn't, won't, ...); they are left out here because every word containing
 * "n't" negates anyway (see word_negates). */
static const char *const negation_words[] = {
    "aint",   "arent",   "cannot", "cant",     "couldnt", "darent",  "despite", "didnt",
    "doesnt", "dont",    "hadnt",  "hasnt",    "havent",  "isnt",    "mightnt", "mustnt",
    "neednt", "neither", "never",  "none",     "nope",    "nor",     "not",     "nothing",
    "nowhere", "oughtnt", "rarely", "seldom",  "shant",   "shouldnt", "uh-uh",  "uhuh",
    "wasnt",  "werent",  "without", "wont",    "wouldnt",
};

/* Degree adverbs: boosters add B_INCR to the magnitude of the word they
 * modify, dampeners B_DECR. */
static const char *const booster_words[] = {
    "absolutely", "amazingly", "awfully", "completely", "considerable", "considerably",
    "decidedly", "deeply", "effing", "enormous", "enormously", "entirely", "especially",
    "exceptional", "exceptionally", "extreme", "extremely", "fabulously", "flippin", "flipping",
    "frackin", "fracking", "frickin", "fricking", "friggin", "frigging", "fuckin", "fucking",
    "fuggin", "fugging", "fully", "greatly", "hella", "highly", "hugely", "incredible",
    "incredibly", "intensely", "major", "majorly", "more", "most", "particularly", "purely",
    "quite", "really", "remarkably", "so", "substantially", "thoroughly", "total", "totally",
    "tremendous", "tremendously", "uber", "unbelievably", "unusually", "utter", "utterly", "very",
};
static const char *const dampener_words[] = {
    "almost", "barely", "hardly", "kind-of", "kinda", "kindof", "less", "little", "marginal",
    "marginally", "occasional", "occasionally", "partly", "scarce", "scarcely", "slight",
    "slightly", "somewhat", "sort-of", "sorta", "sortof",
};
/* Upstream's dampener list also holds three two-word entries. A single word
 * can never equal them; only the idiom rule (special_idioms) looks them up,
 * as word pairs. */
static const char *const dampener_pairs[][2] = {{"just", "enough"}, {"kind", "of"}, {"sort", "of"}};

/* Phrases whose valence replaces the computed one (upstream's SPECIAL_CASES).
 * Upstream also lists "badass", which as one word can never match a phrase
 * of two or three words, so it is not here. Upstream's list of sentiment-laden
 * idioms without lexicon words ("cut the mustard", ...) is marked future work
 * there and never applied; it is not applied here either. */
static const struct {
    const char *w[3]; /* two or three words; w[2] NULL for two */
    double valence;
} special_phrases[] = {
    {{"the", "shit", NULL}, 3.0},       {{"the", "bomb", NULL}, 3.0},
    {{"bad", "ass", NULL}, 1.5},        {{"bus", "stop", NULL}, 0.0},
    {{"yeah", "right", NULL}, -2.0},    {{"kiss", "of", "death"}, -1.5},
    {{"to", "die", "for"}, 3.0},        {{"beating", "heart", NULL}, 3.1},
    {{"broken", "heart", NULL}, -2.9},
};

#define NWORDS(a) (sizeof(a) / sizeof((a)[0]))

/* malloc of count elements of size bytes; NULL when that overflows or fails. */
static void *alloc_array(size_t count, size_t size) {
    size_t bytes;
    if (util_mul_size(count, size, &bytes) != 0) return NULL;
    return malloc(bytes ? bytes : 1);
}

/* Byte-order comparison of a[0..an) with b[0..bn) (bytes may include NUL):
 * the order of strcmp for strings without NUL. */
static int bytes_cmp(const void *a, size_t an, const void *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c != 0) return c;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

/* 1 when w[0..n) is in list[0..count) (sorted in byte order). */
static int find_word(const char *const *list, size_t count, const unsigned char *w, size_t n) {
    size_t lo = 0, hi = count; /* the answer, if any, is in list[lo..hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = bytes_cmp(w, n, list[mid], strlen(list[mid]));
        if (c == 0) return 1;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return 0;
}

/* ======================================================================== */
/* the lexicon                                                              */
/* ======================================================================== */

typedef struct {
    const char *key; /* the token, NUL-terminated, inside lx->text */
    size_t len;      /* bytes in key */
    double valence;
    size_t line;     /* the line it was read from (1-based) */
} vader_entry;

struct vader_lexicon {
    char *text;             /* a copy of the file; each token's TAB became a NUL */
    vader_entry *entries;   /* (n,) sorted by key bytes, each key once */
    size_t n;
};

/* The valence column: [+-]DIGITS[.DIGITS] with at most 15 digits in all.
 * value = (the digits read as one integer) / 10^(digits after the point).
 * Both operands are exact doubles (below 10^15 < 2^53) and IEEE division
 * rounds correctly, so the result is the double nearest the decimal: the
 * value Python's float() gives upstream, and independent of the C locale.
 * 0, or -1 when the text is not of that form. */
static int parse_valence(const char *s, size_t n, double *out) {
    static const double pow10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    size_t i = 0;
    int neg = 0, digits = 0, frac = -1; /* frac: digits after the point, -1 before it */
    double mant = 0.0;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    for (; i < n; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            if (++digits > 15) return -1;
            mant = mant * 10.0 + (double)(s[i] - '0'); /* exact: stays below 10^15 */
            if (frac >= 0) frac++;
        } else if (s[i] == '.' && frac < 0 && digits > 0) {
            frac = 0;
        } else {
            return -1;
        }
    }
    if (digits == 0 || frac == 0) return -1; /* nothing, or a point without digits after it */
    mant = frac > 0 ? mant / pow10[frac] : mant;
    *out = neg ? -mant : mant;
    return 0;
}

/* Why token[0..n) cannot be a lexicon token, or NULL when it can. */
static const char *token_problem(const unsigned char *t, size_t n) {
    size_t i = 0;
    if (n == 0) return "empty token before the TAB";
    if (t[0] == ' ' || t[n - 1] == ' ') return "token starts or ends with a space";
    while (i < n) {
        uint32_t cp;
        int k = uni_decode_utf8(t + i, n - i, &cp);
        if (k == 0) return "token is not valid UTF-8";
        if (cp < 0x20 || cp == 0x7F) return "token holds a control character";
        i += (size_t)k;
    }
    return NULL;
}

/* One line s[0..n) (without its LF; a CR before the LF is removed here) into
 * *ent. The TAB after the token becomes a NUL. 0, or -1 with "NAME: line N: what". */
static int parse_line(vader_entry *ent, char *s, size_t n, size_t line, const char *name, dpo_err *e) {
    char *tab, *end;
    const char *why;
    if (n > VADER_MAX_LINE) return dpo_errf(e, "%s: line %zu: longer than %d bytes", name, line, VADER_MAX_LINE);
    if (n > 0 && s[n - 1] == '\r') n--;
    if (n == 0) return dpo_errf(e, "%s: line %zu: empty line", name, line);
    tab = memchr(s, '\t', n);
    if (!tab) return dpo_errf(e, "%s: line %zu: no TAB after the token (expected: token TAB valence)", name, line);
    if ((why = token_problem((const unsigned char *)s, (size_t)(tab - s))) != NULL)
        return dpo_errf(e, "%s: line %zu: %s", name, line, why);
    /* the valence runs to the next TAB or the end of the line; later columns are not read */
    end = memchr(tab + 1, '\t', n - (size_t)(tab + 1 - s));
    if (!end) end = s + n;
    if (parse_valence(tab + 1, (size_t)(end - tab - 1), &ent->valence) != 0)
        return dpo_errf(e, "%s: line %zu: valence '%.*s' is not a decimal number (at most 15 digits)", name,
                        line, (int)(end - tab - 1 < 40 ? end - tab - 1 : 40), tab + 1);
    if (!(fabs(ent->valence) <= VADER_MAX_VALENCE))
        return dpo_errf(e, "%s: line %zu: valence %g is outside [-%g, %g]", name, line, ent->valence,
                        VADER_MAX_VALENCE, VADER_MAX_VALENCE);
    *tab = '\0';
    ent->key = s;
    ent->len = (size_t)(tab - s);
    ent->line = line;
    return 0;
}

/* qsort order: by key bytes, then by line, so that the last of a repeated
 * token ends its run of equal keys. */
static int entry_cmp(const void *pa, const void *pb) {
    const vader_entry *a = pa, *b = pb;
    int c = bytes_cmp(a->key, a->len, b->key, b->len);
    if (c != 0) return c;
    return a->line < b->line ? -1 : a->line > b->line ? 1 : 0;
}

void vader_free(vader_lexicon *lx) {
    if (!lx) return;
    free(lx->entries);
    free(lx->text);
    free(lx);
}

int vader_load(vader_lexicon **out, const char *text, size_t len, const char *name, dpo_err *e) {
    vader_lexicon *lx;
    size_t n_lines = 0, i, line = 0, kept;
    char *p, *end;
    *out = NULL;
    if (len > VADER_MAX_LEXICON_BYTES)
        return dpo_errf(e, "%s: %zu bytes, more than the %zu a lexicon may have", name, len,
                        VADER_MAX_LEXICON_BYTES);
    if (len == 0) return dpo_errf(e, "%s: empty file (no lexicon entries)", name);
    for (i = 0; i < len; i++) n_lines += text[i] == '\n';
    if (text[len - 1] != '\n') n_lines++; /* a last line without its newline */
    lx = calloc(1, sizeof *lx);
    if (!lx) {
        dpo_err_oom(e, "the lexicon", 1, sizeof *lx);
        return dpo_err_prefix(e, "%s", name);
    }
    lx->text = malloc(len + 1);
    lx->entries = alloc_array(n_lines, sizeof *lx->entries);
    if (!lx->text || !lx->entries) {
        vader_free(lx);
        dpo_err_oom(e, "the lexicon's text and entries", len + 1 + n_lines * sizeof *lx->entries, 1);
        return dpo_err_prefix(e, "%s", name);
    }
    memcpy(lx->text, text, len);
    lx->text[len] = '\0';
    p = lx->text;
    end = lx->text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
        line++;
        if (parse_line(&lx->entries[lx->n], p, (size_t)(le - p), line, name, e) != 0) {
            vader_free(lx);
            return -1;
        }
        lx->n++;
        p = nl ? nl + 1 : end;
    }
    /* sort, then keep the last line of each repeated token (upstream's dict: the last assignment wins) */
    qsort(lx->entries, lx->n, sizeof *lx->entries, entry_cmp);
    for (i = 0, kept = 0; i < lx->n; i++) {
        int last_of_run = i + 1 == lx->n || bytes_cmp(lx->entries[i].key, lx->entries[i].len,
                                                      lx->entries[i + 1].key, lx->entries[i + 1].len) != 0;
        if (last_of_run) lx->entries[kept++] = lx->entries[i];
    }
    lx->n = kept;
    *out = lx;
    return 0;
}

size_t vader_size(const vader_lexicon *lx) { return lx->n; }

static const vader_entry *lex_find(const vader_lexicon *lx, const void *w, size_t n) {
    size_t lo = 0, hi = lx->n; /* the answer, if any, is in entries[lo..hi) */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = bytes_cmp(w, n, lx->entries[mid].key, lx->entries[mid].len);
        if (c == 0) return &lx->entries[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

int vader_lookup(const vader_lexicon *lx, const char *token, size_t len, double *valence) {
    const vader_entry *ent = lex_find(lx, token, len);
    if (!ent) return 0;
    *valence = ent->valence;
    return 1;
}

/* ======================================================================== */
/* characters: what Python's str methods see in the text                    */
/* ======================================================================== */

/* One character at s[0..n), n >= 1: its length in bytes and code point. A
 * byte that does not begin valid UTF-8 is a character of its own, code point
 * 0xDC00 + byte: Python's "surrogateescape" stand-in, which has no case and
 * is neither space nor punctuation. */
static size_t next_char(const unsigned char *s, size_t n, uint32_t *cp) {
    int k = uni_decode_utf8(s, n, cp);
    if (k > 0) return (size_t)k;
    *cp = 0xDC00u + s[0];
    return 1;
}

/* Python's str.isspace, which str.split() splits at: the Unicode White_Space
 * characters, and the four ASCII separators 0x1C..0x1F. */
static int is_space(uint32_t cp) {
    return (cp >= 0x1Cu && cp <= 0x1Fu) || uni_classify(cp) == UNI_SPACE;
}

/* Python's string.punctuation: the 32 ASCII characters !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ */
static int is_punct(unsigned char c) {
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
}

/* The case of a character as Python's str.isupper / str.lower see it, for
 * ASCII and Latin-1 (U+0000..U+00FF); anything beyond has no case here.
 *   upper: A-Z, and U+00C0..U+00DE except U+00D7 (x); lower-cased by +0x20
 *   lower: a-z, U+00DF..U+00FF except U+00F7 (/), and U+00AA, U+00B5, U+00BA */
enum { UNCASED, LOWER, UPPER };

static int char_case(uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return UPPER;
    if (cp >= 'a' && cp <= 'z') return LOWER;
    if (cp >= 0xC0u && cp <= 0xDEu && cp != 0xD7u) return UPPER;
    if ((cp >= 0xDFu && cp <= 0xFFu && cp != 0xF7u) || cp == 0xAAu || cp == 0xB5u || cp == 0xBAu) return LOWER;
    return UNCASED;
}

/* ======================================================================== */
/* words: split, strip punctuation, lower-case                              */
/* ======================================================================== */

/* One word of the text, with what the rules ask of it. */
typedef struct {
    const unsigned char *low; /* the word lower-cased (same length as written) */
    size_t len;               /* bytes in low */
    int all_caps;             /* Python's str.isupper() of the word as written */
    int in_lexicon;           /* low is a lexicon token ... */
    double valence;           /* ... of this valence */
    double booster;           /* B_INCR or B_DECR for a booster/dampener word, else 0 */
    int negates;              /* a negation word, or a word containing "n't" */
} vword;

static int is_word(const vword *w, const char *lit) {
    size_t n = strlen(lit);
    return w->len == n && memcmp(w->low, lit, n) == 0;
}

/* A word negates when it is one of negation_words or contains "n't". */
static int word_negates(const unsigned char *w, size_t n) {
    size_t i;
    if (find_word(negation_words, NWORDS(negation_words), w, n)) return 1;
    for (i = 0; i + 3 <= n; i++)
        if (w[i] == 'n' && w[i + 1] == '\'' && w[i + 2] == 't') return 1;
    return 0;
}

/* Number of characters in s[0..n), counting no further than limit. */
static size_t count_chars(const unsigned char *s, size_t n, size_t limit) {
    size_t i = 0, count = 0;
    while (i < n && count < limit) {
        uint32_t cp;
        i += next_char(s + i, n - i, &cp);
        count++;
    }
    return count;
}

/* Fill w from the run s[a..b) (the word as split): strip, lower-case into
 * low[a..b), look up.
 *
 * Punctuation: the ASCII punctuation at both ends is stripped, unless that
 * leaves two characters or fewer (an emoticon such as ":)" or "<3", which is
 * then kept whole with its punctuation).
 *
 * Case: low is the word with each upper-case letter replaced by its lower
 * case (A-Z and Latin-1: both one code point + 0x20, same byte length).
 * all_caps: no lower-case letter and at least one upper-case letter. */
static void make_word(vword *w, unsigned char *low, const unsigned char *s, size_t a, size_t b,
                      const vader_lexicon *lx) {
    size_t c = a, d = b, i;
    int upper = 0, lower = 0;
    const vader_entry *ent;
    while (c < d && is_punct(s[c])) c++;
    while (d > c && is_punct(s[d - 1])) d--;
    if (count_chars(s + c, d - c, 3) > 2) { /* ASCII bytes never sit inside a UTF-8 sequence: c, d are character boundaries */
        a = c;
        b = d;
    }
    for (i = a; i < b;) {
        uint32_t cp;
        size_t k = next_char(s + i, b - i, &cp);
        int cs = char_case(cp);
        memcpy(low + i, s + i, k);
        if (cs == UPPER) {
            upper = 1;
            if (cp < 0x80) low[i] = (unsigned char)(cp + 0x20);
            else low[i + 1] = (unsigned char)(0x80u | ((cp + 0x20u) & 0x3Fu)); /* U+00C0..U+00DE: C3 80..C3 9E -> C3 A0..C3 BE */
        } else if (cs == LOWER) {
            lower = 1;
        }
        i += k;
    }
    w->low = low + a;
    w->len = b - a;
    w->all_caps = upper && !lower;
    ent = lex_find(lx, w->low, w->len);
    w->in_lexicon = ent != NULL;
    w->valence = ent ? ent->valence : 0.0;
    w->booster = find_word(booster_words, NWORDS(booster_words), w->low, w->len) ? B_INCR
                 : find_word(dampener_words, NWORDS(dampener_words), w->low, w->len) ? B_DECR
                                                                                     : 0.0;
    w->negates = word_negates(w->low, w->len);
}

/* The words of s[0..n) are its runs of non-space characters (Python's
 * str.split()). Returns their number; with w not NULL, also fills w[0..count)
 * (low: n bytes of scratch for their lower-cased copies). */
static size_t split_words(vword *w, unsigned char *low, const unsigned char *s, size_t n, const vader_lexicon *lx) {
    size_t i = 0, start = 0, count = 0;
    int in_word = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = next_char(s + i, n - i, &cp);
        int sp = is_space(cp);
        if (!sp && !in_word) start = i;
        if (sp && in_word) {
            if (w) make_word(&w[count], low, s, start, i, lx);
            count++;
        }
        in_word = !sp;
        i += k;
    }
    if (in_word) {
        if (w) make_word(&w[count], low, s, start, n, lx);
        count++;
    }
    return count;
}

/* ======================================================================== */
/* the valence of one word                                                  */
/* ======================================================================== */

typedef struct {
    const vword *w; /* (n,) the words */
    size_t n;
    int cap_diff;   /* some words, but not all, are ALL CAPS: emphasis counts */
} vtext;

/* The booster/dampener b of the word m places before a lexicon word of
 * valence v: it pushes away from zero (so its sign follows v), and by C_INCR
 * more when it is itself in ALL CAPS in a mixed-case text. */
static double booster_scalar(const vtext *t, const vword *b, double v) {
    double s;
    if (b->booster == 0.0) return 0.0;
    s = v < 0 ? -b->booster : b->booster;
    if (b->all_caps && t->cap_diff) s = v > 0 ? s + C_INCR : s - C_INCR;
    return s;
}

/* Negation, looking back m = 1, 2, 3 words from word i (i >= m):
 *   m = 1: the word before negates                      -> v * N_SCALAR
 *   m = 2: "never so X" / "never this X"                -> v * 1.25
 *          "without doubt X"                            -> v unchanged
 *          else the word two before negates             -> v * N_SCALAR
 *   m = 3: "never so/this _ X", or the word right before
 *          X is "so" or "this" (upstream's condition
 *          groups it so)                                -> v * 1.25
 *          "without doubt _ X" / "without _ doubt X"    -> v unchanged
 *          else the word three before negates           -> v * N_SCALAR */
static double negation_check(const vtext *t, size_t i, size_t m, double v) {
    const vword *w = t->w;
    if (m == 1) {
        if (w[i - 1].negates) v *= N_SCALAR;
    } else if (m == 2) {
        int never_so = is_word(&w[i - 2], "never") && (is_word(&w[i - 1], "so") || is_word(&w[i - 1], "this"));
        int without_doubt = is_word(&w[i - 2], "without") && is_word(&w[i - 1], "doubt");
        if (never_so) v *= 1.25;
        else if (!without_doubt && w[i - 2].negates) v *= N_SCALAR;
    } else {
        int never_so = (is_word(&w[i - 3], "never") && (is_word(&w[i - 2], "so") || is_word(&w[i - 2], "this"))) ||
                       is_word(&w[i - 1], "so") || is_word(&w[i - 1], "this");
        int without_doubt = is_word(&w[i - 3], "without") && (is_word(&w[i - 2], "doubt") || is_word(&w[i - 1], "doubt"));
        if (never_so) v *= 1.25;
        else if (!without_doubt && w[i - 3].negates) v *= N_SCALAR;
    }
    return v;
}

/* 1 when words w[first..first+count) are a special phrase; its valence in *v. */
static int special_phrase(const vtext *t, size_t first, size_t count, double *v) {
    size_t p, k;
    for (p = 0; p < NWORDS(special_phrases); p++) {
        size_t words = special_phrases[p].w[2] ? 3 : 2;
        if (words != count) continue;
        for (k = 0; k < count && is_word(&t->w[first + k], special_phrases[p].w[k]); k++)
            ;
        if (k == count) {
            *v = special_phrases[p].valence;
            return 1;
        }
    }
    return 0;
}

/* Idioms around word i (i >= 3), checked once the three words before i have
 * been applied:
 *   1. the first of these phrases that is special sets v to its valence:
 *      (i-1 i), (i-2 i-1 i), (i-2 i-1), (i-3 i-2 i-1), (i-3 i-2)
 *   2. then (i i+1), then (i i+1 i+2), when special, set v (later ones win)
 *   3. each of (i-3 i-2), (i-2 i-1) that is a two-word dampener ("kind of",
 *      "sort of", "just enough") adds B_DECR. (Upstream also tries the three
 *      words i-3..i-1, which no booster entry can equal.) */
static double special_idioms(const vtext *t, size_t i, double v) {
    static const size_t before[5][2] = {{1, 2}, {2, 3}, {2, 2}, {3, 3}, {3, 2}}; /* (i - first, words) */
    double sv;
    size_t k, p;
    for (k = 0; k < 5; k++)
        if (special_phrase(t, i - before[k][0], before[k][1], &sv)) {
            v = sv;
            break;
        }
    if (i + 1 < t->n && special_phrase(t, i, 2, &sv)) v = sv;
    if (i + 2 < t->n && special_phrase(t, i, 3, &sv)) v = sv;
    for (k = 3; k >= 2; k--) /* the pairs starting at i-3, then at i-2 */
        for (p = 0; p < NWORDS(dampener_pairs); p++)
            if (is_word(&t->w[i - k], dampener_pairs[p][0]) && is_word(&t->w[i - k + 1], dampener_pairs[p][1]))
                v += B_DECR;
    return v;
}

/* "least" right before a word negates it, except in "at least" and "very
 * least" (when "least" is not itself a lexicon word). */
static double least_check(const vtext *t, size_t i, double v) {
    const vword *w = t->w;
    if (i >= 1 && !w[i - 1].in_lexicon && is_word(&w[i - 1], "least")) {
        if (i == 1 || (!is_word(&w[i - 2], "at") && !is_word(&w[i - 2], "very"))) v *= N_SCALAR;
    }
    return v;
}

/* The valence of word i before the "but" rule. Words that are not in the
 * lexicon are 0; booster/dampener words, and "kind" before "of", are 0 too
 * (they act on their neighbours instead). For a lexicon word, v starts at its
 * lexicon valence, then in this order:
 *   - "no": a "no" followed by a lexicon word is 0; a word one or two after
 *     "no" (or three after, with "or"/"nor" right before it) is
 *     lexicon valence * N_SCALAR
 *   - ALL CAPS in a mixed-case text: v +/- C_INCR (away from zero; 0 goes down)
 *   - for m = 1, 2, 3, when word i-m exists and is not a lexicon word: add its
 *     booster scalar (scaled 1, 0.95, 0.9 with distance), then the negation
 *     check for distance m, and at m = 3 the idiom check
 *   - "least" before it */
static double word_valence(const vtext *t, size_t i) {
    const vword *w = t->w;
    double v;
    size_t m;
    if (w[i].booster != 0.0) return 0.0;
    if (i + 1 < t->n && is_word(&w[i], "kind") && is_word(&w[i + 1], "of")) return 0.0;
    if (!w[i].in_lexicon) return 0.0;
    v = w[i].valence;
    if (is_word(&w[i], "no") && i + 1 < t->n && w[i + 1].in_lexicon) v = 0.0;
    if ((i >= 1 && is_word(&w[i - 1], "no")) || (i >= 2 && is_word(&w[i - 2], "no")) ||
        (i >= 3 && is_word(&w[i - 3], "no") && (is_word(&w[i - 1], "or") || is_word(&w[i - 1], "nor"))))
        v = w[i].valence * N_SCALAR;
    if (w[i].all_caps && t->cap_diff) v = v > 0 ? v + C_INCR : v - C_INCR;
    for (m = 1; m <= 3; m++) {
        double s;
        if (i < m || w[i - m].in_lexicon) continue;
        s = booster_scalar(t, &w[i - m], v);
        if (m == 2) s *= 0.95;
        if (m == 3) s *= 0.9;
        v += s;
        v = negation_check(t, i, m, v);
        if (m == 3) v = special_idioms(t, i, v);
    }
    return least_check(t, i, v);
}

/* ======================================================================== */
/* "but"                                                                    */
/* ======================================================================== */

/* The words before the first "but" count half, the words after it one and a
 * half times. Upstream applies this with a loop that, for the k-th valence v,
 * finds the FIRST position currently holding a value equal to v (Python's
 * list.index) and scales that position instead of position k. When an earlier
 * word holds v (the same valence, or a value an earlier step produced), that
 * word is scaled again and word k keeps its value. Scores depend on it, so it
 * is reproduced exactly, with bi the position of the first "but":
 *
 *   for k = 0 .. n-1:
 *       v  = s[k]                        (position k is still untouched)
 *       si = min { j : s[j] == v }       (so si <= k)
 *       s[si] = v * 0.5 if si < bi, v * 1.5 if si > bi, v if si == bi
 *
 * Looking for si by a scan from 0 costs O(n) per word, O(n^2) for a long text.
 * Instead, the positions j < k are kept in one min-heap per value they hold
 * (leftist heaps whose nodes are the positions; a hash table maps a value to
 * its heap's root), so that each step costs O(log n). tests/test_vader.c
 * checks it against the plain scan. */

#define NIL ((size_t)-1)

typedef struct {
    size_t *left, *right; /* (n,) children of position j in its heap */
    unsigned *rank;       /* (n,) null-path length of position j's subtree (<= log2(n+1)) */
    uint64_t *keys;       /* (cap,) the value of a hash slot, as its bits */
    size_t *roots;        /* (cap,) the heap of that value: its root position, or NIL when empty */
    unsigned char *used;  /* (cap,) slot taken */
    size_t cap;           /* power of two >= 4n: each step adds at most 2 values, load <= 1/2 */
} but_heaps;

static void but_heaps_free(but_heaps *h) {
    free(h->left);
    free(h->right);
    free(h->rank);
    free(h->keys);
    free(h->roots);
    free(h->used);
}

static int but_heaps_init(but_heaps *h, size_t n) {
    size_t need;
    memset(h, 0, sizeof *h);
    if (util_mul_size(n, 4, &need) != 0) return -1;
    for (h->cap = 16; h->cap < need; h->cap *= 2)
        if (h->cap > SIZE_MAX / 4) return -1;
    h->left = alloc_array(n, sizeof *h->left);
    h->right = alloc_array(n, sizeof *h->right);
    h->rank = alloc_array(n, sizeof *h->rank);
    h->keys = alloc_array(h->cap, sizeof *h->keys);
    h->roots = alloc_array(h->cap, sizeof *h->roots);
    h->used = calloc(h->cap, 1);
    if (!h->left || !h->right || !h->rank || !h->keys || !h->roots || !h->used) {
        but_heaps_free(h);
        return -1;
    }
    return 0;
}

/* The root slot of the heap of value v (created empty if v is new). Python's
 * == makes 0.0 and -0.0 one value. */
static size_t *heap_of(but_heaps *h, double v) {
    uint64_t key, x;
    size_t i;
    /* cppcheck-suppress duplicateConditionalAssign ; turns -0.0 into +0.0, whose bits differ */
    if (v == 0.0) v = 0.0;
    memcpy(&key, &v, sizeof key);
    x = util_mix64(key);
    for (i = (size_t)x & (h->cap - 1); h->used[i] && h->keys[i] != key; i = (i + 1) & (h->cap - 1))
        ;
    if (!h->used[i]) {
        h->used[i] = 1;
        h->keys[i] = key;
        h->roots[i] = NIL;
    }
    return &h->roots[i];
}

static unsigned rank_of(const but_heaps *h, size_t x) { return x == NIL ? 0u : h->rank[x]; }

/* Merge two leftist heaps (smaller position on top). The recursion follows
 * right spines only, which are at most log2(n+1) long: depth <= 2 log2(n+1). */
static size_t heap_merge(but_heaps *h, size_t a, size_t b) {
    size_t tmp;
    if (a == NIL) return b;
    if (b == NIL) return a;
    if (b < a) {
        tmp = a;
        a = b;
        b = tmp;
    }
    h->right[a] = heap_merge(h, h->right[a], b);
    if (rank_of(h, h->left[a]) < rank_of(h, h->right[a])) {
        tmp = h->left[a];
        h->left[a] = h->right[a];
        h->right[a] = tmp;
    }
    h->rank[a] = rank_of(h, h->right[a]) + 1;
    return a;
}

static void heap_push(but_heaps *h, size_t *root, size_t j) {
    h->left[j] = h->right[j] = NIL;
    h->rank[j] = 1;
    *root = heap_merge(h, *root, j);
}

static void heap_pop(but_heaps *h, size_t *root) {
    size_t j = *root;
    *root = heap_merge(h, h->left[j], h->right[j]);
}

/* Apply the rule to s[0..n), bi < n the first "but". 0, or -1 out of memory. */
static int but_weighting(double *s, size_t n, size_t bi) {
    but_heaps h;
    size_t k;
    if (but_heaps_init(&h, n) != 0) return -1;
    for (k = 0; k < n; k++) {
        double v = s[k];
        size_t *root = heap_of(&h, v);
        size_t si = *root != NIL ? *root : k; /* the heaps hold positions < k only */
        double nv = si < bi ? v * 0.5 : si > bi ? v * 1.5 : v;
        if (si != k) {
            heap_pop(&h, root);
            s[si] = nv;
            heap_push(&h, heap_of(&h, nv), si);
            heap_push(&h, heap_of(&h, v), k); /* word k keeps v */
        } else {
            s[k] = nv;
            heap_push(&h, heap_of(&h, nv), k);
        }
    }
    but_heaps_free(&h);
    return 0;
}

/* ======================================================================== */
/* scores                                                                   */
/* ======================================================================== */

/* Emphasis of "!" and "?" anywhere in the text: 0.292 per "!" (at most 4);
 * for two or three "?" 0.18 each, for four or more 0.96; a single "?" adds
 * nothing. It is added to the sum away from zero. */
static double punctuation_emphasis(const unsigned char *s, size_t n) {
    size_t i, ep = 0, qm = 0;
    double e;
    for (i = 0; i < n; i++) {
        ep += s[i] == '!';
        qm += s[i] == '?';
    }
    e = (double)(ep > 4 ? 4 : ep) * 0.292;
    if (qm > 1) e += qm <= 3 ? (double)qm * 0.18 : 0.96;
    return e;
}

/* compound = s / sqrt(s^2 + ALPHA), in [-1, 1]. (s*s + ALPHA stays two
 * roundings, as in Python: the Makefile's -ffp-contract=off forbids fusing it.) */
static double normalize(double s) {
    double x = s / sqrt(s * s + ALPHA);
    return x < -1.0 ? -1.0 : x > 1.0 ? 1.0 : x;
}

/* Python's round(x, digits) for |x| <= 1, digits 3 or 4: the decimal nearest
 * the exact binary value of x (ties to even; a tie needs x to be exactly
 * halfway in binary), returned as the double nearest that decimal.
 * Exactly: frexp gives |x| = m * 2^(k-53) with the integer m < 2^53, so
 *   |x| * 10^d = m * 5^d / 2^sh,  sh = 53 - k - d >= 48 (k <= 1)
 * and m * 5^d < 2^53 * 625 < 2^63 fits 64 bits: the quotient q and remainder
 * r of that division are exact, and q rounds up when r is past half (or at
 * half with q odd). q / 10^d then is one correctly rounded division, the
 * double nearest the decimal, as Python's float(repr) gives. */
static double py_round(double x, int digits) {
    static const double pow10[] = {1.0, 10.0, 100.0, 1000.0, 10000.0};
    static const uint64_t pow5[] = {1, 5, 25, 125, 625};
    double a = fabs(x), f, r;
    uint64_t m, big, q = 0;
    int k, sh;
    if (!(a > 0.0 && a <= 1.0)) return x; /* 0 stays, and nothing else reaches here */
    f = frexp(a, &k);
    m = (uint64_t)ldexp(f, 53);
    big = m * pow5[digits];
    sh = 53 - k - digits;
    if (sh < 64) { /* else |x| * 10^d < 2^63 / 2^64: rounds to 0 */
        uint64_t rem = big & (((uint64_t)1 << sh) - 1), half = (uint64_t)1 << (sh - 1);
        q = big >> sh;
        if (rem > half || (rem == half && (q & 1u))) q++;
    }
    r = (double)q / pow10[digits];
    return x < 0 ? -r : r;
}

/* From the valences s[0..n) (n >= 1) to the scores:
 *   sum = s[0] + s[1] + ... (in order), moved away from 0 by the emphasis e
 *   compound = normalize(sum)
 *   pos = sum of (s + 1) over s > 0, neg = sum of (s - 1) over s < 0 (each
 *   word's 1 stands for the neutral words' 1), neu = count of s == 0;
 *   e is added to the larger of pos and |neg| (neither on a tie);
 *   the shares are pos, |neg|, neu over their total. */
static void final_scores(const double *s, size_t n, double e, vader_scores *out) {
    double sum = 0.0, pos = 0.0, neg = 0.0, neu = 0.0, total;
    size_t k;
    for (k = 0; k < n; k++) sum += s[k];
    if (sum > 0) sum += e;
    else if (sum < 0) sum -= e;
    for (k = 0; k < n; k++) {
        if (s[k] > 0) pos += s[k] + 1.0;
        if (s[k] < 0) neg += s[k] - 1.0;
        if (s[k] == 0) neu += 1.0;
    }
    if (pos > fabs(neg)) pos += e;
    else if (pos < fabs(neg)) neg -= e;
    total = pos + fabs(neg) + neu; /* >= 1: every word adds at least 1 */
    out->neg = py_round(fabs(neg / total), 3);
    out->neu = py_round(fabs(neu / total), 3);
    out->pos = py_round(fabs(pos / total), 3);
    out->compound = py_round(normalize(sum), 4);
}

/* The valence of every word of s[0..len), the "but" rule applied: *val is
 * (*n,) from malloc, NULL when the text has no words. 0, or -1 out of memory. */
static int text_valences(const vader_lexicon *lx, const unsigned char *s, size_t len, double **val, size_t *n) {
    vword *words;
    unsigned char *low;
    double *v;
    vtext t;
    size_t i, bi, caps = 0;
    int rc = 0;
    *val = NULL;
    *n = split_words(NULL, NULL, s, len, lx);
    if (*n == 0) return 0;
    words = alloc_array(*n, sizeof *words);
    low = malloc(len); /* len >= n >= 1 */
    v = alloc_array(*n, sizeof *v);
    if (!words || !low || !v) {
        rc = -1;
        goto done;
    }
    split_words(words, low, s, len, lx);
    /* NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult): split_words fills the *n words it counted */
    for (i = 0; i < *n; i++) caps += words[i].all_caps != 0;
    t.w = words;
    t.n = *n;
    t.cap_diff = caps > 0 && caps < *n;
    for (i = 0; i < *n; i++) v[i] = word_valence(&t, i);
    for (bi = 0; bi < *n && !is_word(&words[bi], "but"); bi++)
        ;
    if (bi < *n && but_weighting(v, *n, bi) != 0) rc = -1;
done:
    free(words);
    free(low);
    if (rc == 0) *val = v;
    else free(v);
    return rc;
}

/* The bytes text_valences asks for, for a text of len bytes and n words, at
 * most: the words, their lowercase copy and valences, and the heaps of the
 * "but" rule (but_heaps_init's sizes); for the message when it fails. */
static size_t valence_bytes(size_t n, size_t len) {
    size_t cap = 16;
    while (cap < 4 * n && cap <= SIZE_MAX / 4) cap *= 2;
    return n * (sizeof(vword) + sizeof(double)) + len + n * (2 * sizeof(size_t) + sizeof(unsigned)) +
           cap * (sizeof(uint64_t) + sizeof(size_t) + 1);
}

int vader_score(const vader_lexicon *lx, const char *text, size_t len, vader_scores *out, dpo_err *e) {
    const unsigned char *s = (const unsigned char *)text;
    double *val;
    size_t n;
    out->neg = out->neu = out->pos = out->compound = 0.0;
    if (text_valences(lx, s, len, &val, &n) != 0)
        return dpo_err_oom(e, "the text's word tables", valence_bytes(n, len), 1);
    if (n > 0) final_scores(val, n, punctuation_emphasis(s, len), out); /* else: no words, all 0 as upstream */
    free(val);
    return 0;
}
