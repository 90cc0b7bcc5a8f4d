/* svgbuf.h - the text buffer every SVG picture of dpo is written into: a
 * growable buffer, printf-append, and XML-escaped text (valid UTF-8 whatever
 * the input). Used by explain.c and plot.c. See svgbuf.c. */
#ifndef DPO_SVGBUF_H
#define DPO_SVGBUF_H

#include <stddef.h>

/* A growing NUL-terminated text p[0..n). Zero it (memset, or = {0}) to start.
 * An allocation that fails, or a size that would overflow, sets oom: the
 * buffer stops growing and every later append does nothing, so that a writer
 * appends freely and checks oom once at the end. */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
    size_t oom_bytes; /* with oom: the bytes the failed allocation asked for; SIZE_MAX when the size overflowed */
} svg_buf;

/* s[0..n) appended as it is (the caller vouches that it is valid markup) */
void svg_put(svg_buf *b, const char *s, size_t n);
/* a string literal, its length known at compile time */
#define SVG_LIT(b, lit) svg_put((b), (lit), sizeof(lit) - 1)

/* printf-style append, of any length */
void svg_printf(svg_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* s[0..len) as XML character data or attribute text: & < > " ' as entities;
 * a byte that is not valid UTF-8, and a character XML 1.0 does not allow (C0
 * controls, U+FFFE, U+FFFF), as U+FFFD. */
void svg_xml(svg_buf *b, const char *s, size_t len);

/* characters (code points; a byte that is not valid UTF-8 counts as one) of s[0..len) */
size_t svg_chars(const char *s, size_t len);

/* bytes of the first max_chars characters of s[0..len), counted as svg_chars does */
size_t svg_prefix_bytes(const char *s, size_t len, size_t max_chars);

/* free the text and zero the buffer */
void svg_buf_free(svg_buf *b);

#endif
