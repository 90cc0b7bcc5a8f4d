/* tests/test_unicode.c - Check suite for unicode.c: the character classes of
 * GPT-2's pre-tokenizer regex and the strict UTF-8 decoder.
 *
 * Expectations are independent of the generated tables where possible:
 * hand-picked code points with classes known from the Unicode 15.0 charts,
 * totals per class from the UCD's own extracted/DerivedGeneralCategory.txt
 * ("Total code points" of Lu+Ll+Lt+Lm+Lo = 1831+2233+31+397+131612 = 136104,
 * of Nd+Nl+No = 680+236+915 = 1831) and PropList.txt (White_Space: 25), and for
 * UTF-8 a second, deliberately naive decoder written here from the bit
 * patterns plus the three RFC 3629 value checks. */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"
#include "unicode_tables.h"

#define MAX_CP 0x10FFFFu

static const char *class_name(int c) {
    switch (c) {
    case UNI_OTHER: return "OTHER";
    case UNI_LETTER: return "LETTER";
    case UNI_NUMBER: return "NUMBER";
    case UNI_SPACE: return "SPACE";
    default: return "?";
    }
}

/* ======================================================================== */
/* classification                                                            */
/* ======================================================================== */

static const struct {
    uint32_t cp;
    uni_class want;
    const char *why;
} known[] = {
    {0x0041, UNI_LETTER, "A"},
    {0x005A, UNI_LETTER, "Z"},
    {0x0061, UNI_LETTER, "a"},
    {0x007A, UNI_LETTER, "z"},
    {0x0040, UNI_OTHER, "@ (just below A)"},
    {0x005B, UNI_OTHER, "[ (just above Z)"},
    {0x0060, UNI_OTHER, "` (just below a)"},
    {0x007B, UNI_OTHER, "{ (just above z)"},
    {0x0030, UNI_NUMBER, "0"},
    {0x0039, UNI_NUMBER, "9"},
    {0x002F, UNI_OTHER, "/ (just below 0)"},
    {0x003A, UNI_OTHER, ": (just above 9)"},
    {0x0021, UNI_OTHER, "!"},
    {0x0027, UNI_OTHER, "apostrophe"},
    {0x005F, UNI_OTHER, "underscore (Pc, not a letter)"},
    {0x0020, UNI_SPACE, "space"},
    {0x0009, UNI_SPACE, "tab"},
    {0x000A, UNI_SPACE, "line feed"},
    {0x000B, UNI_SPACE, "vertical tab"},
    {0x000C, UNI_SPACE, "form feed"},
    {0x000D, UNI_SPACE, "carriage return"},
    {0x0000, UNI_OTHER, "NUL"},
    {0x0008, UNI_OTHER, "backspace"},
    {0x000E, UNI_OTHER, "shift out"},
    {0x001C, UNI_OTHER, "file separator: isspace() but not White_Space"},
    {0x001F, UNI_OTHER, "unit separator: isspace() but not White_Space"},
    {0x007F, UNI_OTHER, "DEL"},
    {0x0085, UNI_SPACE, "NEL (Cc, White_Space)"},
    {0x00A0, UNI_SPACE, "no-break space"},
    {0x00A7, UNI_OTHER, "section sign (Po)"},
    {0x00AA, UNI_LETTER, "feminine ordinal indicator (Lo)"},
    {0x00AD, UNI_OTHER, "soft hyphen (Cf)"},
    {0x00B2, UNI_NUMBER, "superscript two (No)"},
    {0x00B5, UNI_LETTER, "micro sign (Ll)"},
    {0x00BC, UNI_NUMBER, "one quarter (No)"},
    {0x00BD, UNI_NUMBER, "one half (No)"},
    {0x00D7, UNI_OTHER, "multiplication sign (Sm)"},
    {0x00DF, UNI_LETTER, "sharp s (Ll)"},
    {0x01C5, UNI_LETTER, "Dz with caron (Lt)"},
    {0x02B0, UNI_LETTER, "modifier letter small h (Lm)"},
    {0x0301, UNI_OTHER, "combining acute accent (Mn)"},
    {0x0660, UNI_NUMBER, "Arabic-Indic digit zero (Nd)"},
    {0x0903, UNI_OTHER, "Devanagari sign visarga (Mc)"},
    {0x0E50, UNI_NUMBER, "Thai digit zero (Nd)"},
    {0x1680, UNI_SPACE, "Ogham space mark"},
    {0x180E, UNI_OTHER, "Mongolian vowel separator (Cf since Unicode 6.3)"},
    {0x2000, UNI_SPACE, "en quad"},
    {0x200A, UNI_SPACE, "hair space"},
    {0x200B, UNI_OTHER, "zero width space (Cf, not White_Space)"},
    {0x2028, UNI_SPACE, "line separator"},
    {0x2029, UNI_SPACE, "paragraph separator"},
    {0x202F, UNI_SPACE, "narrow no-break space"},
    {0x205F, UNI_SPACE, "medium mathematical space"},
    {0x20DD, UNI_OTHER, "combining enclosing circle (Me)"},
    {0x2160, UNI_NUMBER, "Roman numeral one (Nl)"},
    {0x3000, UNI_SPACE, "ideographic space"},
    {0x3007, UNI_NUMBER, "ideographic number zero (Nl)"},
    {0x3400, UNI_LETTER, "CJK extension A, first"},
    {0x4E00, UNI_LETTER, "CJK unified ideograph, first"},
    {0x6C34, UNI_LETTER, "CJK ideograph water (inside a <First>/<Last> range)"},
    {0x9FFF, UNI_LETTER, "CJK unified ideograph, last (Unicode 14)"},
    {0xAC00, UNI_LETTER, "Hangul syllable GA, first"},
    {0xD55C, UNI_LETTER, "Hangul syllable HAN (inside the range)"},
    {0xD7A3, UNI_LETTER, "Hangul syllable, last"},
    {0xD7A4, UNI_OTHER, "unassigned after the Hangul syllables"},
    {0xE000, UNI_OTHER, "private use"},
    {0xFEFF, UNI_OTHER, "BOM / zero width no-break space (Cf, not White_Space)"},
    {0xFF10, UNI_NUMBER, "fullwidth digit zero"},
    {0xFF21, UNI_LETTER, "fullwidth A"},
    {0xFFFE, UNI_OTHER, "noncharacter"},
    {0x10400, UNI_LETTER, "Deseret capital long I"},
    {0x11F50, UNI_NUMBER, "Kawi digit zero (new in 15.0)"},
    {0x17001, UNI_LETTER, "Tangut ideograph (inside the range)"},
    {0x1D400, UNI_LETTER, "mathematical bold capital A"},
    {0x1D7CE, UNI_NUMBER, "mathematical bold digit zero"},
    {0x1E4D0, UNI_LETTER, "Nag Mundari letter O (new in 15.0)"},
    {0x1F100, UNI_NUMBER, "digit zero full stop (No)"},
    {0x1F600, UNI_OTHER, "grinning face emoji (So)"},
    {0x20000, UNI_LETTER, "CJK extension B, first"},
    {0x2A123, UNI_LETTER, "CJK extension B (inside the range)"},
    {0x2A6DF, UNI_LETTER, "CJK extension B, last"},
    {0x2A6E0, UNI_OTHER, "unassigned after CJK extension B"},
    {0x31350, UNI_LETTER, "CJK extension H, first (new in 15.0)"},
    {0x31F00, UNI_LETTER, "CJK extension H (inside the range, new in 15.0)"},
    {0x323AF, UNI_LETTER, "CJK extension H, last (new in 15.0)"},
    {0x323B0, UNI_OTHER, "unassigned after CJK extension H"},
    {0xF0000, UNI_OTHER, "plane 15 private use"},
    {0x10FFFD, UNI_OTHER, "plane 16 private use"},
    {0x10FFFF, UNI_OTHER, "noncharacter, last code point"},
    {0x110000, UNI_OTHER, "above U+10FFFF"},
    {0xFFFFFFFFu, UNI_OTHER, "UINT32_MAX"},
};

START_TEST(test_known_code_points) {
    size_t i;
    for (i = 0; i < sizeof known / sizeof known[0]; i++) {
        uni_class got = uni_classify(known[i].cp);
        ck_assert_msg(got == known[i].want, "U+%04lX %s: got %s, want %s", (unsigned long)known[i].cp,
                      known[i].why, class_name((int)got), class_name((int)known[i].want));
    }
}
END_TEST

/* The ASCII fast path, against the rule written out by hand. */
START_TEST(test_ascii) {
    uint32_t c;
    for (c = 0; c < 0x80; c++) {
        uni_class want = UNI_OTHER;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')) want = UNI_LETTER;
        else if (c >= '0' && c <= '9') want = UNI_NUMBER;
        else if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r')
            want = UNI_SPACE;
        ck_assert_msg(uni_classify(c) == want, "0x%02X: got %s, want %s", (unsigned)c,
                      class_name((int)uni_classify(c)), class_name((int)want));
    }
}
END_TEST

START_TEST(test_surrogates_and_out_of_range) {
    uint32_t c;
    static const uint32_t big[] = {0x110000u, 0x110041u, 0x1FFFFFu, 0x7FFFFFFFu, 0x80000041u, 0xFFFFFFFFu};
    size_t i;
    for (c = 0xD800; c <= 0xDFFF; c++)
        ck_assert_msg(uni_classify(c) == UNI_OTHER, "surrogate U+%04X not OTHER", (unsigned)c);
    for (i = 0; i < sizeof big / sizeof big[0]; i++)
        ck_assert_msg(uni_classify(big[i]) == UNI_OTHER, "0x%lX not OTHER", (unsigned long)big[i]);
}
END_TEST

/* Each table: first <= last <= U+10FFFF, sorted, no overlap and no two ranges
 * touching (merged). */
static void check_table(const char *name, const uint32_t (*t)[2], size_t n) {
    size_t i;
    ck_assert_msg(n > 0, "%s is empty", name);
    for (i = 0; i < n; i++) {
        ck_assert_msg(t[i][0] <= t[i][1], "%s[%lu]: first > last", name, (unsigned long)i);
        ck_assert_msg(t[i][1] <= MAX_CP, "%s[%lu]: above U+10FFFF", name, (unsigned long)i);
        if (i > 0)
            ck_assert_msg(t[i][0] > t[i - 1][1] + 1, "%s[%lu]: not sorted, overlapping or unmerged",
                          name, (unsigned long)i);
    }
}

START_TEST(test_tables_sorted_merged) {
    ck_assert_str_eq(UNI_TABLES_UNICODE_VERSION, "15.0.0");
    ck_assert_uint_eq(sizeof uni_letter_ranges / sizeof uni_letter_ranges[0], UNI_LETTER_RANGES_COUNT);
    ck_assert_uint_eq(sizeof uni_number_ranges / sizeof uni_number_ranges[0], UNI_NUMBER_RANGES_COUNT);
    ck_assert_uint_eq(sizeof uni_space_ranges / sizeof uni_space_ranges[0], UNI_SPACE_RANGES_COUNT);
    check_table("uni_letter_ranges", uni_letter_ranges, UNI_LETTER_RANGES_COUNT);
    check_table("uni_number_ranges", uni_number_ranges, UNI_NUMBER_RANGES_COUNT);
    check_table("uni_space_ranges", uni_space_ranges, UNI_SPACE_RANGES_COUNT);
}
END_TEST

/* Paint every code point from the tables (each at most once: the classes are
 * disjoint), then uni_classify must agree on all of 0..0x10FFFF, and the totals
 * must be the UCD's. */
static void paint(unsigned char *map, const uint32_t (*t)[2], size_t n, uni_class c, size_t *total) {
    size_t i;
    uint32_t cp;
    for (i = 0; i < n; i++) {
        for (cp = t[i][0]; cp <= t[i][1]; cp++) {
            ck_assert_msg(map[cp] == UNI_OTHER, "U+%04lX is in two classes (%s and %s)", (unsigned long)cp,
                          class_name(map[cp]), class_name((int)c));
            map[cp] = (unsigned char)c;
            (*total)++;
        }
    }
}

START_TEST(test_classify_all_code_points) {
    unsigned char *map = calloc(MAX_CP + 1, 1);
    size_t n_letter = 0, n_number = 0, n_space = 0, count[4] = {0, 0, 0, 0};
    uint32_t cp;
    ck_assert_ptr_nonnull(map);
    paint(map, uni_letter_ranges, UNI_LETTER_RANGES_COUNT, UNI_LETTER, &n_letter);
    paint(map, uni_number_ranges, UNI_NUMBER_RANGES_COUNT, UNI_NUMBER, &n_number);
    paint(map, uni_space_ranges, UNI_SPACE_RANGES_COUNT, UNI_SPACE, &n_space);
    for (cp = 0; cp <= MAX_CP; cp++) {
        uni_class got = uni_classify(cp);
        if (got != (uni_class)map[cp]) {
            unsigned char want = map[cp];
            free(map);
            ck_abort_msg("U+%04lX: uni_classify says %s, the tables %s", (unsigned long)cp,
                         class_name((int)got), class_name(want));
        }
        count[got]++;
    }
    free(map);
    /* Unicode 15.0: DerivedGeneralCategory.txt and PropList.txt totals. */
    ck_assert_uint_eq(n_letter, 136104);
    ck_assert_uint_eq(n_number, 1831);
    ck_assert_uint_eq(n_space, 25);
    ck_assert_uint_eq(count[UNI_LETTER], 136104);
    ck_assert_uint_eq(count[UNI_NUMBER], 1831);
    ck_assert_uint_eq(count[UNI_SPACE], 25);
    ck_assert_uint_eq(count[UNI_OTHER], 0x110000 - 136104 - 1831 - 25);
}
END_TEST

/* ======================================================================== */
/* UTF-8                                                                     */
/* ======================================================================== */

#define SENTINEL 0xDEADBEEFu

/* Decode must accept exactly the first want_len bytes as code point want_cp. */
static void decode_ok(const char *bytes, size_t len, int want_len, uint32_t want_cp, int line) {
    uint32_t cp = SENTINEL;
    int r = uni_decode_utf8((const unsigned char *)bytes, len, &cp);
    ck_assert_msg(r == want_len, "test line %d: returned %d, want %d", line, r, want_len);
    ck_assert_msg(cp == want_cp, "test line %d: U+%04lX, want U+%04lX", line, (unsigned long)cp,
                  (unsigned long)want_cp);
}
#define OK(lit, n, cp) decode_ok((lit), sizeof(lit) - 1, (n), (cp), __LINE__)

/* Decode must reject the bytes and leave *cp untouched. */
static void decode_bad(const char *bytes, size_t len, int line) {
    uint32_t cp = SENTINEL;
    int r = uni_decode_utf8((const unsigned char *)bytes, len, &cp);
    ck_assert_msg(r == 0, "test line %d: returned %d, want 0", line, r);
    ck_assert_msg(cp == SENTINEL, "test line %d: *cp written on error", line);
}
#define BAD(lit) decode_bad((lit), sizeof(lit) - 1, __LINE__)

START_TEST(test_utf8_boundaries) {
    decode_ok("\0", 1, 1, 0x0000, __LINE__);
    OK("\x7F", 1, 0x007F);
    OK("\xC2\x80", 2, 0x0080);
    OK("\xDF\xBF", 2, 0x07FF);
    OK("\xE0\xA0\x80", 3, 0x0800);
    OK("\xE0\xBF\xBF", 3, 0x0FFF);
    OK("\xE1\x80\x80", 3, 0x1000);
    OK("\xEC\xBF\xBF", 3, 0xCFFF);
    OK("\xED\x80\x80", 3, 0xD000);
    OK("\xED\x9F\xBF", 3, 0xD7FF);
    OK("\xEE\x80\x80", 3, 0xE000);
    OK("\xEF\xBF\xBF", 3, 0xFFFF);
    OK("\xF0\x90\x80\x80", 4, 0x10000);
    OK("\xF0\xBF\xBF\xBF", 4, 0x3FFFF);
    OK("\xF1\x80\x80\x80", 4, 0x40000);
    OK("\xF3\xBF\xBF\xBF", 4, 0xFFFFF);
    OK("\xF4\x80\x80\x80", 4, 0x100000);
    OK("\xF4\x8F\xBF\xBF", 4, 0x10FFFF);
    /* Only the first sequence is consumed, whatever follows it. */
    OK("A\xFF", 1, 0x41);
    OK("\xC3\xA9\x80", 2, 0xE9);
    OK("\xE4\xB8\x80\xE4\xB8\x80", 3, 0x4E00);
    OK("\xF0\x9F\x98\x80\xFF", 4, 0x1F600);
}
END_TEST

START_TEST(test_utf8_invalid) {
    uint32_t cp = SENTINEL;
    /* nothing */
    ck_assert_int_eq(uni_decode_utf8((const unsigned char *)"A", 0, &cp), 0);
    ck_assert_int_eq(uni_decode_utf8(NULL, 0, &cp), 0);
    ck_assert_uint_eq(cp, SENTINEL);
    /* stray continuation bytes */
    BAD("\x80");
    BAD("\xBF");
    BAD("\x80\x80\x80\x80");
    /* overlong forms */
    BAD("\xC0\x80");
    BAD("\xC0\xAF");
    BAD("\xC1\xBF");
    BAD("\xE0\x80\x80");
    BAD("\xE0\x80\xAF");
    BAD("\xE0\x9F\xBF");
    BAD("\xF0\x80\x80\x80");
    BAD("\xF0\x80\x80\xAF");
    BAD("\xF0\x8F\xBF\xBF");
    /* surrogates, alone and as a CESU-8 pair */
    BAD("\xED\xA0\x80");
    BAD("\xED\xAD\xBF");
    BAD("\xED\xB0\x80");
    BAD("\xED\xBF\xBF");
    BAD("\xED\xA0\xBD\xED\xB8\x80");
    /* above U+10FFFF, and the 5- and 6-byte forms */
    BAD("\xF4\x90\x80\x80");
    BAD("\xF4\xBF\xBF\xBF");
    BAD("\xF5\x80\x80\x80");
    BAD("\xF7\xBF\xBF\xBF");
    BAD("\xF8\x88\x80\x80\x80");
    BAD("\xFB\xBF\xBF\xBF\xBF");
    BAD("\xFC\x84\x80\x80\x80\x80");
    BAD("\xFD\xBF\xBF\xBF\xBF\xBF");
    BAD("\xFE");
    BAD("\xFF");
    BAD("\xFE\xFF");
    /* truncated: the buffer ends, or len cuts it */
    BAD("\xC2");
    BAD("\xDF");
    BAD("\xE0\xA0");
    BAD("\xE1");
    BAD("\xEF\xBF");
    BAD("\xF0\x90\x80");
    BAD("\xF4\x8F\xBF");
    BAD("\xF1");
    decode_bad("\xC2\x80", 1, __LINE__);
    decode_bad("\xE0\xA0\x80", 2, __LINE__);
    decode_bad("\xF0\x90\x80\x80", 3, __LINE__);
    decode_bad("\xF4\x8F\xBF\xBF", 1, __LINE__);
    /* a lead byte followed by a non-continuation */
    BAD("\xC2\x41");
    BAD("\xC2\xC2\x80");
    BAD("\xC2\xFF");
    BAD("\xE1\x41\x80");
    BAD("\xE1\x80\x41");
    BAD("\xE1\x80\xE1\x80\x80");
    BAD("\xEF\xBF\xC0");
    BAD("\xF1\x41\x80\x80");
    BAD("\xF1\x80\x41\x80");
    BAD("\xF1\x80\x80\x41");
    BAD("\xF1\x80\x80\xC0");
    BAD("\xF4\x8F\xBF\x7F");
    BAD("\xC2\x00");
}
END_TEST

/* An independent encoder: every scalar value round-trips through the decoder. */
static size_t encode(uint32_t cp, unsigned char *out) {
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

START_TEST(test_utf8_roundtrip_all) {
    unsigned char buf[8];
    uint32_t cp, got;
    size_t n, k;
    for (cp = 0; cp <= MAX_CP; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF) continue;
        n = encode(cp, buf);
        buf[n] = 0x80; /* a trailing continuation byte must not be consumed */
        got = SENTINEL;
        if (uni_decode_utf8(buf, n + 1, &got) != (int)n || got != cp)
            ck_abort_msg("U+%04lX does not round-trip", (unsigned long)cp);
        /* every proper prefix is truncated */
        for (k = 1; k < n; k++)
            if (uni_decode_utf8(buf, k, &got) != 0)
                ck_abort_msg("U+%04lX cut to %lu bytes accepted", (unsigned long)cp, (unsigned long)k);
    }
}
END_TEST

/* The naive reference: decode by bit pattern alone, then apply RFC 3629's
 * three value rules (shortest form, no surrogates, at most U+10FFFF). */
static int ref_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    size_t n, i;
    uint32_t v;
    if (len == 0) return 0;
    if ((s[0] & 0x80) == 0x00) { n = 1; v = s[0]; }
    else if ((s[0] & 0xE0) == 0xC0) { n = 2; v = s[0] & 0x1Fu; }
    else if ((s[0] & 0xF0) == 0xE0) { n = 3; v = s[0] & 0x0Fu; }
    else if ((s[0] & 0xF8) == 0xF0) { n = 4; v = s[0] & 0x07u; }
    else return 0;
    if (len < n) return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v < min_for_len[n] || (v >= 0xD800 && v <= 0xDFFF) || v > MAX_CP) return 0;
    *cp = v;
    return (int)n;
}

static void compare_ref(const unsigned char *s, size_t len) {
    uint32_t a = SENTINEL, b = SENTINEL;
    int ra = uni_decode_utf8(s, len, &a);
    int rb = ref_decode(s, len, &b);
    if (ra != rb || a != b)
        ck_abort_msg("bytes %02X %02X %02X %02X (len %lu): got %d/%lX, reference %d/%lX", s[0],
                     len > 1 ? s[1] : 0, len > 2 ? s[2] : 0, len > 3 ? s[3] : 0, (unsigned long)len,
                     ra, (unsigned long)a, rb, (unsigned long)b);
}

/* Every 1-, 2- and 3-byte input, and every 4-byte input whose last two bytes
 * are drawn from the interesting values, agree with the reference. */
START_TEST(test_utf8_exhaustive_short) {
    static const unsigned char edge[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0,
                                         0xBF, 0xC0, 0xC2, 0xE0, 0xF0, 0xF4, 0xFF};
    unsigned char s[4];
    unsigned a, b, c, d;
    for (a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        compare_ref(s, 1);
        for (b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            compare_ref(s, 2);
            for (c = 0; c < 256; c++) {
                s[2] = (unsigned char)c;
                compare_ref(s, 3);
            }
            for (c = 0; c < sizeof edge; c++) {
                s[2] = edge[c];
                for (d = 0; d < sizeof edge; d++) {
                    s[3] = edge[d];
                    compare_ref(s, 4);
                }
            }
        }
    }
}
END_TEST

/* ======================================================================== */

static Suite *make_suite(void) {
    Suite *s = suite_create("unicode");
    TCase *tc = tcase_create("classes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_known_code_points);
    tcase_add_test(tc, test_ascii);
    tcase_add_test(tc, test_surrogates_and_out_of_range);
    tcase_add_test(tc, test_tables_sorted_merged);
    tcase_add_test(tc, test_classify_all_code_points);
    suite_add_tcase(s, tc);
    tc = tcase_create("utf8");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_utf8_boundaries);
    tcase_add_test(tc, test_utf8_invalid);
    tcase_add_test(tc, test_utf8_roundtrip_all);
    tcase_add_test(tc, test_utf8_exhaustive_short);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(make_suite()); }
