/* unicode.h - the Unicode character classes of GPT-2's pre-tokenizer regex
 * (\p{L}, \p{N}, \s over all of Unicode 15.0) and a strict UTF-8 decoder.
 * See unicode.c; the tables come from unicode_gen.py. */
#ifndef DPO_UNICODE_H
#define DPO_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* The class of one code point, as GPT-2's pattern sees it:
 *   UNI_LETTER  \p{L}  General_Category Lu, Ll, Lt, Lm, Lo
 *   UNI_NUMBER  \p{N}  General_Category Nd, Nl, No
 *   UNI_SPACE   \s     the White_Space property (as in Python's `regex` module)
 *   UNI_OTHER   everything else, including unassigned code points, surrogates
 *               and values above U+10FFFF. */
typedef enum { UNI_OTHER = 0, UNI_LETTER, UNI_NUMBER, UNI_SPACE } uni_class;

uni_class uni_classify(uint32_t cp);

/* Decode one UTF-8 sequence at s[0..len): return its length in bytes (1..4)
 * and store its code point in *cp; or return 0 (and leave *cp alone) when the
 * bytes at s do not start a valid sequence: len == 0, a stray continuation
 * byte, C0/C1/F5..FF leads, an overlong form, a surrogate (U+D800..U+DFFF),
 * a value above U+10FFFF, or a sequence cut off by len. Strict RFC 3629. */
int uni_decode_utf8(const unsigned char *s, size_t len, uint32_t *cp);

#endif
