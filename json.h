/* json.h - the one strict JSON reader (RFC 8259) shared by config.json,
 * safetensors headers, vocab.json and JSONL rows; plus a tiny string escaper
 * for writers. See json.c. */
#ifndef DPO_JSON_H
#define DPO_JSON_H

#include <stddef.h>
#include "util.h"

typedef enum {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json_value json_value;
struct json_value {
    json_type type;
    double number;       /* JSON_NUMBER: value as parsed by strtod of the validated text */
    int is_integer;      /* JSON_NUMBER: the text had no fraction and no exponent */
    char *str;           /* JSON_STRING: decoded UTF-8, NUL-terminated (may contain \u0000: use len) */
    size_t len;          /* JSON_STRING: bytes in str, excluding the terminator */
    size_t count;        /* JSON_ARRAY / JSON_OBJECT: number of elements / members */
    json_value *items;   /* (count,) elements, or member values in document order */
    char **keys;         /* JSON_OBJECT: (count,) decoded keys, NUL-terminated */
    size_t *key_lens;    /* JSON_OBJECT: (count,) key byte lengths */
};

/* Limits a document is held to; exceeding one is an error, never a crash. */
#define JSON_MAX_DEPTH 256

/* Parse exactly one JSON value from text[0..len) (surrounding whitespace allowed,
 * nothing else). Strings must be valid UTF-8 (no overlongs, no surrogates
 * encoded in UTF-8, nothing above U+10FFFF); \u escapes must pair surrogates.
 * Duplicate object keys are an error. Numbers follow the RFC grammar exactly;
 * a number that overflows a double is an error.
 * On error returns -1 and e->msg says what and where ("line L, column C: ...").
 * On success *out is a tree owned by the caller: free with json_free. */
int json_parse(const char *text, size_t len, json_value **out, dpo_err *e);
void json_free(json_value *v);

/* json_parse of one line of a JSONL file (text without its newline), with an
 * error that reads "PATH: line N, column C: what", N the line in the file. */
int json_parse_line(const char *text, size_t len, const char *path, long line, json_value **out, dpo_err *e);

/* Member lookup in an object by key (exact bytes); NULL if absent or v is not an object. */
const json_value *json_get(const json_value *v, const char *key);

/* Convenience readers for a member of an object. Each returns 0 on success,
 * 1 when the key is absent (out untouched), -1 on a wrong type / out-of-range
 * value with a message naming the key. */
int json_get_int(const json_value *obj, const char *key, long long min, long long max,
                 long long *out, dpo_err *e);
int json_get_number(const json_value *obj, const char *key, double *out, dpo_err *e);
int json_get_string(const json_value *obj, const char *key, const char **out, size_t *len,
                    dpo_err *e);

/* Write s[0..len) as a JSON string literal (with quotes) into buf of capacity cap.
 * Returns the number of bytes the literal needs (excluding a NUL); writes at most
 * cap-1 bytes plus a NUL when cap > 0 (like snprintf). Non-ASCII UTF-8 is copied
 * through; control characters, quote and backslash are escaped. */
size_t json_escape(char *buf, size_t cap, const char *s, size_t len);

#endif
