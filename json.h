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
/* One value; 64 bytes on LP64 (type and is_integer share the first 8). */
struct json_value {
    json_type type;
    int is_integer;      /* JSON_NUMBER: the text had no fraction and no exponent */
    double number;       /* JSON_NUMBER: value as parsed by strtod of the validated text */
    char *str;           /* JSON_STRING: decoded UTF-8, NUL-terminated (may contain \u0000: use len) */
    size_t len;          /* JSON_STRING: bytes in str, excluding the terminator */
    size_t count;        /* JSON_ARRAY / JSON_OBJECT: number of elements / members */
    json_value *items;   /* (count,) elements, or member values in document order */
    char **keys;         /* JSON_OBJECT: (count,) decoded keys, NUL-terminated (NULL for arrays) */
    size_t *key_lens;    /* JSON_OBJECT: (count,) key byte lengths */
};

/* Limits a document is held to; exceeding one is an error, never a crash. */
#define JSON_MAX_DEPTH 256

/* Memory budget of a parse: the parser counts every byte it allocates (the
 * tree, its strings and its scratch space) and refuses a document that would
 * need more than JSON_MEM_PER_BYTE bytes per input byte plus JSON_MEM_BASE.
 * Real files need much less (see json.c); a document of tiny values
 * ("[0,0,0,...]", 64 bytes of tree per 2 input bytes) is refused early. */
#define JSON_MEM_PER_BYTE 12
#define JSON_MEM_BASE ((size_t)64 << 10)

/* Parse exactly one JSON value from text[0..len) (surrounding whitespace allowed,
 * nothing else). Strings must be valid UTF-8 (no overlongs, no surrogates
 * encoded in UTF-8, nothing above U+10FFFF); \u escapes must pair surrogates.
 * Duplicate object keys are an error. Numbers follow the RFC grammar exactly;
 * a number that overflows a double is an error.
 * On error returns -1 and e->msg says what and where ("line L, column C: ...").
 * On success *out is a tree owned by the caller: free with json_free. */
int json_parse(const char *text, size_t len, json_value **out, dpo_err *e);
void json_free(json_value *v);

/* The default budget of json_parse for len input bytes:
 * JSON_MEM_PER_BYTE * len + JSON_MEM_BASE (saturating). */
size_t json_memory_budget(size_t len);

/* json_parse with an explicit budget: the parse fails ("line L, column C:
 * document needs more than N bytes of memory for its size of M bytes") as soon
 * as the bytes it holds from malloc/realloc would exceed max_bytes. On success,
 * when peak is not NULL, *peak is the most it held at once (the tree returned
 * is never more than that). */
int json_parse_budget(const char *text, size_t len, size_t max_bytes, size_t *peak,
                      json_value **out, dpo_err *e);

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
