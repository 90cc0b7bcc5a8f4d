/* svgbuf.c - owns the text buffer that SVG pictures are written into (growth,
 * printf-append) and the one XML escaping of text put into them (entities for
 * & < > " ', U+FFFD for bytes that are not valid UTF-8 and for characters XML
 * does not allow), so that every picture dpo draws escapes text the same way.
 * It must never print, open a file or decide what a picture shows (explain.c
 * and plot.c draw; the command layer writes the files). */
#include "svgbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unicode.h"
#include "util.h"

/* ======================================================================== */
/* the buffer                                                                */
/* ======================================================================== */

/* room for `more` bytes and a NUL after them; 0, or -1 with oom set */
static int reserve(svg_buf *b, size_t more) {
    size_t need, nc;
    if (b->oom) return -1;
    if (util_add_size(b->n, more, &need) != 0 || util_add_size(need, 1, &need) != 0) {
        b->oom = 1;
        b->oom_bytes = SIZE_MAX;
        return -1;
    }
    if (need <= b->cap) return 0;
    nc = b->cap ? b->cap : 4096;
    while (nc < need) {
        if (nc > (size_t)-1 / 2) {
            b->oom = 1;
            b->oom_bytes = SIZE_MAX;
            return -1;
        }
        nc *= 2;
    }
    {
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            b->oom_bytes = nc;
            return -1;
        }
        b->p = q;
        b->cap = nc;
    }
    return 0;
}

void svg_put(svg_buf *b, const char *s, size_t n) {
    if (reserve(b, n) != 0) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* measured first (vsnprintf into nothing), then formatted in place */
void svg_printf(svg_buf *b, const char *fmt, ...) {
    va_list ap;
    int k;
    va_start(ap, fmt);
    k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (k < 0) { /* more than INT_MAX bytes */
        b->oom = 1;
        b->oom_bytes = SIZE_MAX;
        return;
    }
    if (reserve(b, (size_t)k) != 0) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

void svg_buf_free(svg_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ======================================================================== */
/* text                                                                      */
/* ======================================================================== */

/* the entity that stands for an XML special character, or NULL */
static const char *xml_entity(uint32_t cp) {
    switch (cp) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&apos;";
    default: return NULL;
    }
}

void svg_xml(svg_buf *b, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp = 0;
        int n = uni_decode_utf8(p + i, len - i, &cp);
        const char *ent = n > 0 ? xml_entity(cp) : NULL;
        if (n == 0 || cp < 0x20 || cp == 0xfffe || cp == 0xffff) {
            SVG_LIT(b, "\xef\xbf\xbd");
            i += n == 0 ? 1 : (size_t)n;
        } else if (ent) {
            svg_put(b, ent, strlen(ent));
            i++;
        } else {
            svg_put(b, (const char *)p + i, (size_t)n);
            i += (size_t)n;
        }
    }
}

/* Walk s[0..len) a character at a time (an invalid byte is one), at most
 * max_chars of them; *chars gets how many were walked. Returns the bytes walked. */
static size_t walk(const char *s, size_t len, size_t max_chars, size_t *chars) {
    size_t i = 0, n = 0;
    while (i < len && n < max_chars) {
        uint32_t cp;
        int k = uni_decode_utf8((const unsigned char *)s + i, len - i, &cp);
        i += k > 0 ? (size_t)k : 1;
        n++;
    }
    *chars = n;
    return i;
}

size_t svg_chars(const char *s, size_t len) {
    size_t n;
    walk(s, len, (size_t)-1, &n);
    return n;
}

size_t svg_prefix_bytes(const char *s, size_t len, size_t max_chars) {
    size_t n;
    return walk(s, len, max_chars, &n);
}
