/* fuzz_json.c - libFuzzer harness of the JSON reader (json.c).
 *
 * Feeds: the input bytes as one document to json_parse, and to the member
 * readers (json_get_int/number/string) on the root.
 * Asserts: a failed parse leaves *out NULL; on success, every string and key
 * written back with json_escape parses again to the same bytes, and
 * json_parse_budget succeeds with exactly the peak it reports and fails with
 * one byte less. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

/* json_escape(s) parsed again must be s, byte for byte */
static void check_escape(const char *s, size_t len) {
    size_t need = json_escape(NULL, 0, s, len);
    char *buf = malloc(need + 1);
    json_value *v = NULL;
    dpo_err e;
    if (!buf) abort();
    if (json_escape(buf, need + 1, s, len) != need) abort();
    if (json_parse(buf, need, &v, &e) != 0) {
        fprintf(stderr, "escaped string does not parse: %s\n", e.msg);
        abort();
    }
    if (v->type != JSON_STRING || v->len != len || memcmp(v->str, s, len) != 0) {
        fprintf(stderr, "escaped string parses to other bytes\n");
        abort();
    }
    json_free(v);
    free(buf);
}

static void walk(const json_value *v) {
    size_t i;
    if (v->type == JSON_STRING) check_escape(v->str, v->len);
    if (v->type != JSON_ARRAY && v->type != JSON_OBJECT) return;
    for (i = 0; i < v->count; i++) {
        if (v->type == JSON_OBJECT) check_escape(v->keys[i], v->key_lens[i]);
        walk(&v->items[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    json_value *v = (json_value *)1, *w = (json_value *)1;
    size_t peak = 0, peak2 = 0;
    long long n;
    double x;
    const char *s;
    size_t slen;
    dpo_err e;
    if (json_parse(text, size, &v, &e) != 0) {
        if (v != NULL) abort();
        return 0;
    }
    walk(v);
    (void)json_get_int(v, "n_layer", 1, 256, &n, &e);
    (void)json_get_number(v, "layer_norm_epsilon", &x, &e);
    (void)json_get_string(v, "prompt", &s, &slen, &e);
    json_free(v);
    /* the budget is exact: the peak reported is enough, one byte less is not */
    if (json_parse_budget(text, size, (size_t)-1, &peak, &v, &e) != 0) abort();
    json_free(v);
    if (json_parse_budget(text, size, peak, &peak2, &v, &e) != 0 || peak2 != peak) abort();
    json_free(v);
    if (peak > 0 && json_parse_budget(text, size, peak - 1, NULL, &w, &e) == 0) abort();
    if (w != NULL) abort();
    return 0;
}
