/* tests/test_json.c - Check suite for json.c: the strict RFC 8259 reader, the
 * member readers and json_escape. Valid documents are checked field by field
 * (numbers exactly, strings byte for byte); hostile documents must fail with
 * a "line L, column C: ..." message and leave *out NULL. */
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* ======================================================================== */
/* helpers                                                                   */
/* ======================================================================== */

static json_value sentinel; /* *out is set to &sentinel before each parse */

static json_value *parse_ok_n(const char *text, size_t len, int line) {
    json_value *v = &sentinel;
    dpo_err e;
    int r;
    e.msg[0] = '\0';
    r = json_parse(text, len, &v, &e);
    ck_assert_msg(r == 0, "test line %d: parse failed: %s", line, e.msg);
    ck_assert_msg(v != NULL && v != &sentinel, "test line %d: no tree", line);
    return v;
}
#define PARSE_OK(lit) parse_ok_n((lit), sizeof(lit) - 1, __LINE__)

/* Parse must fail, leave *out NULL, and say where and (substring) what. */
static void expect_fail_n(const char *text, size_t len, const char *want, int line) {
    json_value *v = &sentinel;
    dpo_err e;
    int r;
    e.msg[0] = '\0';
    r = json_parse(text, len, &v, &e);
    if (r == 0 && v != &sentinel) json_free(v);
    ck_assert_msg(r == -1, "test line %d: parse succeeded, expected an error with \"%s\"", line, want);
    ck_assert_msg(v == NULL, "test line %d: *out not NULL after an error", line);
    ck_assert_msg(strncmp(e.msg, "line ", 5) == 0 && strstr(e.msg, ", column ") != NULL,
                  "test line %d: message without a position: \"%s\"", line, e.msg);
    ck_assert_msg(strstr(e.msg, want) != NULL, "test line %d: message \"%s\" lacks \"%s\"", line,
                  e.msg, want);
}
#define FAIL(lit, want) expect_fail_n((lit), sizeof(lit) - 1, (want), __LINE__)

/* Parse must fail with exactly this message. */
static void expect_msg_n(const char *text, size_t len, const char *msg, int line) {
    json_value *v = &sentinel;
    dpo_err e;
    int r;
    e.msg[0] = '\0';
    r = json_parse(text, len, &v, &e);
    if (r == 0 && v != &sentinel) json_free(v);
    ck_assert_msg(r == -1 && v == NULL, "test line %d: expected failure", line);
    ck_assert_msg(strcmp(e.msg, msg) == 0, "test line %d: got \"%s\", want \"%s\"", line, e.msg, msg);
}
#define FAIL_MSG(lit, msg) expect_msg_n((lit), sizeof(lit) - 1, (msg), __LINE__)

static void check_str(const json_value *v, const char *bytes, size_t len, int line) {
    ck_assert_msg(v != NULL, "test line %d: missing value", line);
    ck_assert_msg(v->type == JSON_STRING, "test line %d: type %d is not a string", line, (int)v->type);
    ck_assert_msg(v->len == len, "test line %d: len %zu, want %zu", line, v->len, len);
    ck_assert_msg(memcmp(v->str, bytes, len) == 0, "test line %d: bytes differ", line);
    ck_assert_msg(v->str[len] == '\0', "test line %d: not NUL-terminated", line);
}
#define CHECK_STR(v, lit) check_str((v), (lit), sizeof(lit) - 1, __LINE__)

static void check_num(const json_value *v, double x, int is_integer, int line) {
    ck_assert_msg(v != NULL, "test line %d: missing value", line);
    ck_assert_msg(v->type == JSON_NUMBER, "test line %d: not a number", line);
    ck_assert_msg(v->number == x, "test line %d: %.17g != %.17g", line, v->number, x);
    ck_assert_msg(v->is_integer == is_integer, "test line %d: is_integer %d, want %d", line,
                  v->is_integer, is_integer);
}
#define CHECK_NUM(v, x, i) check_num((v), (x), (i), __LINE__)

static void check_key(const json_value *obj, size_t i, const char *key, int line) {
    size_t n = strlen(key);
    ck_assert_msg(i < obj->count, "test line %d: member %zu missing", line, i);
    ck_assert_msg(obj->key_lens[i] == n && memcmp(obj->keys[i], key, n) == 0 &&
                      obj->keys[i][n] == '\0',
                  "test line %d: key %zu is \"%s\", want \"%s\"", line, i, obj->keys[i], key);
}
#define CHECK_KEY(o, i, k) check_key((o), (i), (k), __LINE__)

/* Deterministic generator for the randomized tests (xorshift64*). */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* Independent UTF-8 encoder for the tests. */
static size_t enc_utf8(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        o[2] = (unsigned char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 63));
    o[3] = (unsigned char)(0x80 | (cp & 63));
    return 4;
}

/* ======================================================================== */
/* valid documents                                                           */
/* ======================================================================== */

START_TEST(test_nested_document) {
    static const char doc[] =
        "{\n"
        "  \"name\": \"gpt2\",\n"
        "  \"n_layer\": 12,\n"
        "  \"eps\": 1e-05,\n"
        "  \"neg\": -0.5,\n"
        "  \"ok\": true, \"off\": false, \"none\": null,\n"
        "  \"dims\": [768, 3072, -1, 0],\n"
        "  \"nested\": {\"a\": {\"b\": [[], {}, [null]]}, \"s\": \"x\\\"y\\\\z\\/\\b\\f\\n\\r\\t\"},\n"
        "  \"unicode\": \"caf\\u00e9 \\ud83d\\ude00 \\u0000end\",\n"
        "  \"raw\": \"caf\xC3\xA9 \xF0\x9F\x98\x80\",\n"
        "  \"\": \"empty key\"\n"
        "}";
    json_value *v = PARSE_OK(doc);
    const json_value *nested, *a, *b, *dims;

    ck_assert_int_eq(v->type, JSON_OBJECT);
    ck_assert_uint_eq(v->count, 12);
    CHECK_KEY(v, 0, "name");
    CHECK_KEY(v, 1, "n_layer");
    CHECK_KEY(v, 2, "eps");
    CHECK_KEY(v, 3, "neg");
    CHECK_KEY(v, 4, "ok");
    CHECK_KEY(v, 5, "off");
    CHECK_KEY(v, 6, "none");
    CHECK_KEY(v, 7, "dims");
    CHECK_KEY(v, 8, "nested");
    CHECK_KEY(v, 9, "unicode");
    CHECK_KEY(v, 10, "raw");
    CHECK_KEY(v, 11, "");

    CHECK_STR(&v->items[0], "gpt2");
    CHECK_NUM(&v->items[1], 12.0, 1);
    CHECK_NUM(&v->items[2], 1e-05, 0);
    CHECK_NUM(&v->items[3], -0.5, 0);
    ck_assert_int_eq(v->items[4].type, JSON_TRUE);
    ck_assert_int_eq(v->items[5].type, JSON_FALSE);
    ck_assert_int_eq(v->items[6].type, JSON_NULL);

    dims = json_get(v, "dims");
    ck_assert_ptr_eq(dims, &v->items[7]);
    ck_assert_int_eq(dims->type, JSON_ARRAY);
    ck_assert_uint_eq(dims->count, 4);
    ck_assert_ptr_null(dims->keys);
    CHECK_NUM(&dims->items[0], 768.0, 1);
    CHECK_NUM(&dims->items[1], 3072.0, 1);
    CHECK_NUM(&dims->items[2], -1.0, 1);
    CHECK_NUM(&dims->items[3], 0.0, 1);

    nested = json_get(v, "nested");
    ck_assert_int_eq(nested->type, JSON_OBJECT);
    ck_assert_uint_eq(nested->count, 2);
    CHECK_KEY(nested, 0, "a");
    CHECK_KEY(nested, 1, "s");
    a = &nested->items[0];
    ck_assert_int_eq(a->type, JSON_OBJECT);
    ck_assert_uint_eq(a->count, 1);
    CHECK_KEY(a, 0, "b");
    b = &a->items[0];
    ck_assert_int_eq(b->type, JSON_ARRAY);
    ck_assert_uint_eq(b->count, 3);
    ck_assert_int_eq(b->items[0].type, JSON_ARRAY);
    ck_assert_uint_eq(b->items[0].count, 0);
    ck_assert_int_eq(b->items[1].type, JSON_OBJECT);
    ck_assert_uint_eq(b->items[1].count, 0);
    ck_assert_int_eq(b->items[2].type, JSON_ARRAY);
    ck_assert_uint_eq(b->items[2].count, 1);
    ck_assert_int_eq(b->items[2].items[0].type, JSON_NULL);
    CHECK_STR(&nested->items[1], "x\"y\\z/\b\f\n\r\t");

    /* \u00e9 -> C3 A9, \ud83d\ude00 -> F0 9F 98 80, \u0000 kept inside len */
    CHECK_STR(json_get(v, "unicode"), "caf\xC3\xA9 \xF0\x9F\x98\x80 \0end");
    ck_assert_uint_eq(json_get(v, "unicode")->len, 15);
    CHECK_STR(json_get(v, "raw"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
    CHECK_STR(json_get(v, ""), "empty key");
    json_free(v);
}
END_TEST

START_TEST(test_string_escapes_and_utf8) {
    json_value *v;
    v = PARSE_OK("\"\\u0000\"");
    CHECK_STR(v, "\0");
    ck_assert_uint_eq(v->len, 1);
    json_free(v);

    v = PARSE_OK("\"\"");
    CHECK_STR(v, "");
    json_free(v);

    /* \u escapes at every UTF-8 length boundary, upper and lower case hex */
    v = PARSE_OK("[\"\\u0041\", \"\\u007f\", \"\\u0080\", \"\\u07FF\", \"\\u0800\", \"\\uD7FF\","
                 " \"\\uE000\", \"\\uffff\", \"\\ud800\\udc00\", \"\\uDBFF\\uDFFF\","
                 " \"\\uD834\\uDD1E\", \"\\u00E9\\u00e9\", \"a\\u0000b\\u0000\"]");
    ck_assert_uint_eq(v->count, 13);
    CHECK_STR(&v->items[0], "A");
    CHECK_STR(&v->items[1], "\x7F");
    CHECK_STR(&v->items[2], "\xC2\x80");
    CHECK_STR(&v->items[3], "\xDF\xBF");
    CHECK_STR(&v->items[4], "\xE0\xA0\x80");
    CHECK_STR(&v->items[5], "\xED\x9F\xBF");
    CHECK_STR(&v->items[6], "\xEE\x80\x80");
    CHECK_STR(&v->items[7], "\xEF\xBF\xBF");
    CHECK_STR(&v->items[8], "\xF0\x90\x80\x80");
    CHECK_STR(&v->items[9], "\xF4\x8F\xBF\xBF");
    CHECK_STR(&v->items[10], "\xF0\x9D\x84\x9E"); /* G clef, RFC 8259 section 7 */
    CHECK_STR(&v->items[11], "\xC3\xA9\xC3\xA9");
    CHECK_STR(&v->items[12], "a\0b\0");
    json_free(v);

    /* raw UTF-8 at every boundary of table 3-7 passes through unchanged */
    v = PARSE_OK("[\"\xC2\x80\", \"\xDF\xBF\", \"\xE0\xA0\x80\", \"\xE1\x80\x80\", \"\xEC\xBF\xBF\","
                 " \"\xED\x80\x80\", \"\xED\x9F\xBF\", \"\xEE\x80\x80\", \"\xEF\xBF\xBF\","
                 " \"\xF0\x90\x80\x80\", \"\xF1\x80\x80\x80\", \"\xF3\xBF\xBF\xBF\", \"\xF4\x8F\xBF\xBF\","
                 " \"\x7F\"]");
    ck_assert_uint_eq(v->count, 14);
    CHECK_STR(&v->items[0], "\xC2\x80");
    CHECK_STR(&v->items[1], "\xDF\xBF");
    CHECK_STR(&v->items[2], "\xE0\xA0\x80");
    CHECK_STR(&v->items[3], "\xE1\x80\x80");
    CHECK_STR(&v->items[4], "\xEC\xBF\xBF");
    CHECK_STR(&v->items[5], "\xED\x80\x80");
    CHECK_STR(&v->items[6], "\xED\x9F\xBF");
    CHECK_STR(&v->items[7], "\xEE\x80\x80");
    CHECK_STR(&v->items[8], "\xEF\xBF\xBF");
    CHECK_STR(&v->items[9], "\xF0\x90\x80\x80");
    CHECK_STR(&v->items[10], "\xF1\x80\x80\x80");
    CHECK_STR(&v->items[11], "\xF3\xBF\xBF\xBF");
    CHECK_STR(&v->items[12], "\xF4\x8F\xBF\xBF");
    CHECK_STR(&v->items[13], "\x7F");
    json_free(v);

    /* keys are decoded the same way */
    v = PARSE_OK("{\"caf\\u00e9\": 1, \"\\ud83d\\ude00\": 2, \"a\\u0000b\": 3}");
    CHECK_KEY(v, 0, "caf\xC3\xA9");
    CHECK_KEY(v, 1, "\xF0\x9F\x98\x80");
    ck_assert_uint_eq(v->key_lens[2], 3);
    ck_assert_int_eq(memcmp(v->keys[2], "a\0b", 4), 0);
    json_free(v);
}
END_TEST

START_TEST(test_numbers) {
    static const struct {
        const char *text;
        double value;
        int is_integer;
    } cases[] = {
        {"0", 0.0, 1},
        {"1", 1.0, 1},
        {"-1", -1.0, 1},
        {"123456789", 123456789.0, 1},
        {"9007199254740993", 9007199254740992.0, 1}, /* rounded by strtod */
        {"12345678901234567890", 12345678901234567890.0, 1},
        {"1.5", 1.5, 0},
        {"-1.5e3", -1500.0, 0},
        {"1E2", 100.0, 0},
        {"1e+2", 100.0, 0},
        {"1e-2", 0.01, 0},
        {"0.1", 0.1, 0},
        {"0e0", 0.0, 0},
        {"2.5E-3", 2.5e-3, 0},
        {"123.456e-7", 123.456e-7, 0},
        {"-0.0", 0.0, 0},
        {"1.7976931348623157e308", 1.7976931348623157e308, 0},
        {"-1.7976931348623157e308", -1.7976931348623157e308, 0},
        {"4.9406564584124654e-324", 4.9406564584124654e-324, 0},
        {"1e-400", 0.0, 0}, /* underflow to zero is accepted */
        {"1e308", 1e308, 0},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_value *v = parse_ok_n(cases[i].text, strlen(cases[i].text), __LINE__);
        ck_assert_msg(v->type == JSON_NUMBER, "%s", cases[i].text);
        ck_assert_msg(v->number == cases[i].value, "%s -> %.17g", cases[i].text, v->number);
        ck_assert_msg(v->is_integer == cases[i].is_integer, "%s: is_integer %d", cases[i].text,
                      v->is_integer);
        json_free(v);
    }
    {
        json_value *v = PARSE_OK("-0");
        CHECK_NUM(v, 0.0, 1);
        ck_assert(signbit(v->number));
        json_free(v);
    }
    {
        /* numbers touching their delimiters, no whitespace */
        json_value *v = PARSE_OK("[1,-2,3.5,4e1,0,-0.25]");
        ck_assert_uint_eq(v->count, 6);
        CHECK_NUM(&v->items[0], 1.0, 1);
        CHECK_NUM(&v->items[1], -2.0, 1);
        CHECK_NUM(&v->items[2], 3.5, 0);
        CHECK_NUM(&v->items[3], 40.0, 0);
        CHECK_NUM(&v->items[4], 0.0, 1);
        CHECK_NUM(&v->items[5], -0.25, 0);
        json_free(v);
    }
    {
        /* tokens longer than any stack buffer: 1 followed by 300 zeros, and
         * 0.(100 zeros)1 */
        char buf[512];
        json_value *v;
        memset(buf, '0', sizeof buf);
        buf[0] = '1';
        v = parse_ok_n(buf, 301, __LINE__);
        CHECK_NUM(v, 1e300, 1);
        json_free(v);
        buf[0] = '0';
        buf[1] = '.';
        buf[102] = '1';
        v = parse_ok_n(buf, 103, __LINE__);
        CHECK_NUM(v, 1e-101, 0);
        json_free(v);
    }
}
END_TEST

START_TEST(test_rfc8259_examples) {
    static const char image[] =
        "{\n"
        "  \"Image\": {\n"
        "      \"Width\":  800,\n"
        "      \"Height\": 600,\n"
        "      \"Title\":  \"View from 15th Floor\",\n"
        "      \"Thumbnail\": {\n"
        "          \"Url\":    \"http://www.example.com/image/481989943\",\n"
        "          \"Height\": 125,\n"
        "          \"Width\":  100\n"
        "      },\n"
        "      \"Animated\" : false,\n"
        "      \"IDs\": [116, 943, 234, 38793]\n"
        "    }\n"
        "}\n";
    static const char places[] =
        "[\n"
        "  {\n"
        "     \"precision\": \"zip\",\n"
        "     \"Latitude\":  37.7668,\n"
        "     \"Longitude\": -122.3959,\n"
        "     \"Address\":   \"\",\n"
        "     \"City\":      \"SAN FRANCISCO\",\n"
        "     \"State\":     \"CA\",\n"
        "     \"Zip\":       \"94107\",\n"
        "     \"Country\":   \"US\"\n"
        "  },\n"
        "  {\n"
        "     \"precision\": \"zip\",\n"
        "     \"Latitude\":  37.371991,\n"
        "     \"Longitude\": -122.026020,\n"
        "     \"Address\":   \"\",\n"
        "     \"City\":      \"SUNNYVALE\",\n"
        "     \"State\":     \"CA\",\n"
        "     \"Zip\":       \"94085\",\n"
        "     \"Country\":   \"US\"\n"
        "  }\n"
        "]\n";
    json_value *v = PARSE_OK(image);
    const json_value *img, *th, *ids;
    ck_assert_uint_eq(v->count, 1);
    img = json_get(v, "Image");
    ck_assert_uint_eq(img->count, 6);
    CHECK_NUM(json_get(img, "Width"), 800.0, 1);
    CHECK_NUM(json_get(img, "Height"), 600.0, 1);
    CHECK_STR(json_get(img, "Title"), "View from 15th Floor");
    th = json_get(img, "Thumbnail");
    ck_assert_uint_eq(th->count, 3);
    CHECK_STR(json_get(th, "Url"), "http://www.example.com/image/481989943");
    CHECK_NUM(json_get(th, "Height"), 125.0, 1);
    CHECK_NUM(json_get(th, "Width"), 100.0, 1);
    ck_assert_int_eq(json_get(img, "Animated")->type, JSON_FALSE);
    ids = json_get(img, "IDs");
    ck_assert_uint_eq(ids->count, 4);
    CHECK_NUM(&ids->items[0], 116.0, 1);
    CHECK_NUM(&ids->items[1], 943.0, 1);
    CHECK_NUM(&ids->items[2], 234.0, 1);
    CHECK_NUM(&ids->items[3], 38793.0, 1);
    json_free(v);

    v = PARSE_OK(places);
    ck_assert_int_eq(v->type, JSON_ARRAY);
    ck_assert_uint_eq(v->count, 2);
    ck_assert_uint_eq(v->items[0].count, 8);
    ck_assert_uint_eq(v->items[1].count, 8);
    CHECK_STR(json_get(&v->items[0], "precision"), "zip");
    CHECK_NUM(json_get(&v->items[0], "Latitude"), 37.7668, 0);
    CHECK_NUM(json_get(&v->items[0], "Longitude"), -122.3959, 0);
    CHECK_STR(json_get(&v->items[0], "Address"), "");
    CHECK_STR(json_get(&v->items[0], "City"), "SAN FRANCISCO");
    CHECK_STR(json_get(&v->items[0], "State"), "CA");
    CHECK_STR(json_get(&v->items[0], "Zip"), "94107");
    CHECK_STR(json_get(&v->items[0], "Country"), "US");
    CHECK_NUM(json_get(&v->items[1], "Latitude"), 37.371991, 0);
    CHECK_NUM(json_get(&v->items[1], "Longitude"), -122.026020, 0);
    CHECK_STR(json_get(&v->items[1], "City"), "SUNNYVALE");
    CHECK_STR(json_get(&v->items[1], "Zip"), "94085");
    json_free(v);

    /* the three small texts of section 13, each a whole JSON text */
    v = PARSE_OK("\"Hello world!\"");
    CHECK_STR(v, "Hello world!");
    json_free(v);
    v = PARSE_OK("42");
    CHECK_NUM(v, 42.0, 1);
    json_free(v);
    v = PARSE_OK("true");
    ck_assert_int_eq(v->type, JSON_TRUE);
    json_free(v);
    v = PARSE_OK("null");
    ck_assert_int_eq(v->type, JSON_NULL);
    json_free(v);

    /* section 7: "\u005C" is a reverse solidus; section 8.3: "a\\b" == "a\u005Cb" */
    v = PARSE_OK("[\"\\u005C\", \"a\\\\b\", \"a\\u005Cb\"]");
    CHECK_STR(&v->items[0], "\\");
    CHECK_STR(&v->items[1], "a\\b");
    CHECK_STR(&v->items[2], "a\\b");
    json_free(v);
}
END_TEST

START_TEST(test_whitespace) {
    json_value *v = PARSE_OK(" \t\r\n[ 1 ,\t2\r\n,\n{ \"a\" : [ ] } ]\r\n\t ");
    ck_assert_uint_eq(v->count, 3);
    CHECK_NUM(&v->items[0], 1.0, 1);
    CHECK_NUM(&v->items[1], 2.0, 1);
    ck_assert_uint_eq(v->items[2].count, 1);
    json_free(v);

    /* only space, tab, LF and CR are whitespace */
    FAIL("\f1", "expected a value, found byte 0x0C");
    FAIL("\v1", "expected a value, found byte 0x0B");
    FAIL("1\f", "unexpected byte 0x0C after the JSON value");
    FAIL("\xC2\xA0" "1", "expected a value, found byte 0xC2");
    FAIL("[1,\xC2\xA0" "2]", "expected a value, found byte 0xC2");
}
END_TEST

/* ======================================================================== */
/* member readers                                                            */
/* ======================================================================== */

START_TEST(test_get_readers) {
    json_value *v = PARSE_OK("{\"n_layer\": 12, \"big\": 1e9, \"frac\": 2.5, \"three\": 3.0,"
                             " \"neg\": -7, \"name\": \"gpt2\", \"arr\": [1], \"nil\": null,"
                             " \"huge\": 9007199254740993, \"t\": true, \"obj\": {},"
                             " \"a\\u0000b\": 1, \"a\": 2}");
    dpo_err e;
    long long n = 777;
    double d = -1.0;
    const char *s = NULL;
    size_t len = 0;

    /* json_get: exact bytes */
    ck_assert_ptr_null(json_get(v, "n_laye"));
    ck_assert_ptr_null(json_get(v, "n_layerx"));
    ck_assert_ptr_null(json_get(v, "N_LAYER"));
    CHECK_NUM(json_get(v, "a"), 2.0, 1); /* not "a\0b" */
    ck_assert_ptr_null(json_get(json_get(v, "arr"), "n_layer"));
    ck_assert_ptr_null(json_get(NULL, "a"));
    ck_assert_ptr_null(json_get(v, NULL));

    /* json_get_int */
    ck_assert_int_eq(json_get_int(v, "n_layer", 1, 1024, &n, &e), 0);
    ck_assert_int_eq(n, 12);
    ck_assert_int_eq(json_get_int(v, "neg", -10, 0, &n, &e), 0);
    ck_assert_int_eq(n, -7);
    ck_assert_int_eq(json_get_int(v, "neg", LLONG_MIN, LLONG_MAX, &n, &e), 0);
    ck_assert_int_eq(n, -7);
    n = 777;
    ck_assert_int_eq(json_get_int(v, "missing", 1, 1024, &n, &e), 1);
    ck_assert_int_eq(n, 777);
    ck_assert_int_eq(json_get_int(v, "n_layer", 1, 10, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"n_layer\": expected an integer in [1, 10], got 12");
    ck_assert_int_eq(json_get_int(v, "n_layer", 13, 20, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"n_layer\": expected an integer in [13, 20], got 12");
    ck_assert_int_eq(json_get_int(v, "big", 1, 1024, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"big\": expected an integer in [1, 1024], got 1e+09 "
                            "(written with a fraction or exponent)");
    ck_assert_int_eq(json_get_int(v, "big", 1, LLONG_MAX, &n, &e), -1); /* strict: exponent */
    ck_assert_int_eq(json_get_int(v, "frac", 0, 10, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"frac\": expected an integer in [0, 10], got 2.5");
    ck_assert_int_eq(json_get_int(v, "three", 0, 10, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"three\": expected an integer in [0, 10], got 3 "
                            "(written with a fraction or exponent)");
    ck_assert_int_eq(json_get_int(v, "name", 0, 10, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"name\": expected an integer in [0, 10], got a string");
    ck_assert_int_eq(json_get_int(v, "arr", 0, 10, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"arr\": expected an integer in [0, 10], got an array");
    ck_assert_int_eq(json_get_int(v, "obj", 0, 10, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"obj\": expected an integer in [0, 10], got an object");
    ck_assert_int_eq(json_get_int(v, "nil", 0, 10, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"nil\": expected an integer in [0, 10], got null");
    ck_assert_int_eq(json_get_int(v, "t", 0, 10, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"t\": expected an integer in [0, 10], got true");
    ck_assert_int_eq(json_get_int(v, "huge", 0, LLONG_MAX, &n, &e), -1);
    ck_assert_msg(strstr(e.msg, "key \"huge\": expected an integer in [0, 9223372036854775807], got "
                                "9007199254740992 (integers of magnitude 2^53 or more") == e.msg,
                  "%s", e.msg);
    ck_assert_int_eq(n, 777); /* never written on failure */
    /* not an object */
    ck_assert_int_eq(json_get_int(json_get(v, "arr"), "x", 0, 1, &n, &e), -1);
    ck_assert_str_eq(e.msg, "key \"x\": cannot look it up in an array (expected an object)");

    /* json_get_number */
    ck_assert_int_eq(json_get_number(v, "n_layer", &d, &e), 0);
    ck_assert(d == 12.0);
    ck_assert_int_eq(json_get_number(v, "frac", &d, &e), 0);
    ck_assert(d == 2.5);
    ck_assert_int_eq(json_get_number(v, "big", &d, &e), 0);
    ck_assert(d == 1e9);
    d = -1.0;
    ck_assert_int_eq(json_get_number(v, "missing", &d, &e), 1);
    ck_assert(d == -1.0);
    ck_assert_int_eq(json_get_number(v, "name", &d, &e), -1);
    ck_assert_str_eq(e.msg, "key \"name\": expected a number, got a string");
    ck_assert_int_eq(json_get_number(v, "nil", &d, &e), -1);
    ck_assert_str_eq(e.msg, "key \"nil\": expected a number, got null");

    /* json_get_string */
    ck_assert_int_eq(json_get_string(v, "name", &s, &len, &e), 0);
    ck_assert_str_eq(s, "gpt2");
    ck_assert_uint_eq(len, 4);
    s = NULL;
    ck_assert_int_eq(json_get_string(v, "name", &s, NULL, &e), 0);
    ck_assert_str_eq(s, "gpt2");
    s = NULL;
    ck_assert_int_eq(json_get_string(v, "missing", &s, &len, &e), 1);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(json_get_string(v, "n_layer", &s, &len, &e), -1);
    ck_assert_str_eq(e.msg, "key \"n_layer\": expected a string, got 12");
    ck_assert_int_eq(json_get_string(v, "frac", &s, &len, &e), -1);
    ck_assert_str_eq(e.msg, "key \"frac\": expected a string, got 2.5");
    ck_assert_ptr_null(s);

    /* a key needing escapes is quoted as JSON in the message */
    ck_assert_int_eq(json_get_int(json_get(v, "obj"), "we\"ird\n", 0, 1, &n, &e), 1);
    {
        json_value *w = PARSE_OK("{\"we\\\"ird\\n\": \"x\"}");
        ck_assert_int_eq(json_get_int(w, "we\"ird\n", 0, 1, &n, &e), -1);
        ck_assert_str_eq(e.msg, "key \"we\\\"ird\\n\": expected an integer in [0, 1], got a string");
        json_free(w);
    }
    json_free(v);
}
END_TEST

/* ======================================================================== */
/* json_escape                                                               */
/* ======================================================================== */

START_TEST(test_escape_exact) {
    static const char in[] = "a\"b\\c/\n\t\r\b\f\x01\x1f\x7f \xC3\xA9\0z";
    static const char want[] = "\"a\\\"b\\\\c/\\n\\t\\r\\b\\f\\u0001\\u001f\x7f \xC3\xA9\\u0000z\"";
    char buf[128];
    size_t n = json_escape(buf, sizeof buf, in, sizeof in - 1);
    ck_assert_uint_eq(n, sizeof want - 1);
    ck_assert_int_eq(memcmp(buf, want, sizeof want), 0); /* including the NUL */

    n = json_escape(buf, sizeof buf, "", 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(buf, "\"\"");
    n = json_escape(buf, sizeof buf, NULL, 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(buf, "\"\"");

    /* every control byte becomes its escape and parses back */
    {
        int c;
        for (c = 0; c < 0x20; c++) {
            char one = (char)c;
            json_value *v;
            n = json_escape(buf, sizeof buf, &one, 1);
            ck_assert_msg(n == 4 || n == 8, "byte %d: %zu", c, n);
            v = parse_ok_n(buf, n, __LINE__);
            ck_assert_uint_eq(v->len, 1);
            ck_assert_int_eq((unsigned char)v->str[0], c);
            json_free(v);
        }
    }
}
END_TEST

START_TEST(test_escape_truncation) {
    static const char in[] = "ab\ncd";
    static const char full[] = "\"ab\\ncd\""; /* 8 bytes */
    char buf[16];
    size_t cap;
    ck_assert_uint_eq(json_escape(NULL, 0, in, 5), 8);
    for (cap = 0; cap <= 12; cap++) {
        size_t n, keep = cap == 0 ? 0 : (cap - 1 < 8 ? cap - 1 : 8), i;
        memset(buf, 'X', sizeof buf);
        n = json_escape(buf, cap, in, 5);
        ck_assert_uint_eq(n, 8);
        ck_assert_int_eq(memcmp(buf, full, keep), 0);
        if (cap > 0) ck_assert_int_eq(buf[keep], '\0');
        for (i = cap; i < sizeof buf; i++) ck_assert_msg(buf[i] == 'X', "cap %zu: byte %zu written", cap, i);
    }
}
END_TEST

START_TEST(test_escape_round_trip) {
    char *s = malloc(64 * 4), *lit = malloc(64 * 4 * 6 + 3), *doc = malloc(2 * (64 * 4 * 6 + 3) + 8);
    int iter;
    ck_assert(s && lit && doc);
    for (iter = 0; iter < 3000; iter++) {
        size_t len = 0, ncp = rng_u32() % 65, k, need, dlen;
        json_value *v;
        for (k = 0; k < ncp; k++) {
            uint32_t cp, cls = rng_u32() % 5;
            if (cls == 0) cp = rng_u32() % 0x20;                 /* control bytes, incl. NUL */
            else if (cls == 1) cp = 0x20 + rng_u32() % 0x60;     /* ASCII incl. " \ / DEL */
            else if (cls == 2) cp = 0x80 + rng_u32() % 0x780;    /* 2-byte */
            else if (cls == 3) {                                 /* 3-byte, no surrogates */
                do cp = 0x800 + rng_u32() % 0xF800; while (cp >= 0xD800 && cp <= 0xDFFF);
            } else cp = 0x10000 + rng_u32() % 0x100000;          /* 4-byte */
            len += enc_utf8(cp, s + len);
        }
        need = json_escape(NULL, 0, s, len);
        ck_assert_uint_eq(json_escape(lit, need + 1, s, len), need);
        ck_assert_uint_eq(strlen(lit), need); /* escaped text has no raw NUL */

        v = parse_ok_n(lit, need, __LINE__);
        ck_assert_int_eq(v->type, JSON_STRING);
        ck_assert_uint_eq(v->len, len);
        ck_assert_int_eq(memcmp(v->str, s, len), 0);
        json_free(v);

        /* the same literal as a key and a value */
        dlen = 0;
        doc[dlen++] = '{';
        memcpy(doc + dlen, lit, need);
        dlen += need;
        doc[dlen++] = ':';
        memcpy(doc + dlen, lit, need);
        dlen += need;
        doc[dlen++] = '}';
        v = parse_ok_n(doc, dlen, __LINE__);
        ck_assert_uint_eq(v->count, 1);
        ck_assert_uint_eq(v->key_lens[0], len);
        ck_assert_int_eq(memcmp(v->keys[0], s, len), 0);
        ck_assert_uint_eq(v->items[0].len, len);
        ck_assert_int_eq(memcmp(v->items[0].str, s, len), 0);
        json_free(v);
    }
    free(s);
    free(lit);
    free(doc);
}
END_TEST

/* ======================================================================== */
/* hostile input                                                             */
/* ======================================================================== */

START_TEST(test_empty_and_positions) {
    json_value *v = &sentinel;
    dpo_err e;
    FAIL_MSG("", "line 1, column 1: unexpected end of input");
    FAIL_MSG("   \n  ", "line 2, column 3: unexpected end of input");
    FAIL_MSG("[1,\n  2", "line 2, column 4: unexpected end of input");
    FAIL_MSG("{\n\"a\": tru}", "line 2, column 6: invalid literal (expected 'true')");
    FAIL_MSG("{\"a\":1, \"a\":2}", "line 1, column 9: duplicate key \"a\"");
    FAIL_MSG("[1,\r\n 2,\r\n  x]", "line 3, column 3: expected a value, found 'x'");
    FAIL_MSG("\xEF\xBB\xBF{}", "line 1, column 1: byte order mark (U+FEFF) is not allowed before JSON text");
    {
        static const char doc[] = "{\n  \"a\": 1,\n  \"key\": \"abcdef\xC0\x80\"\n}";
        json_value *w = &sentinel;
        ck_assert_int_eq(json_parse(doc, sizeof doc - 1, &w, &e), -1);
        ck_assert_ptr_null(w);
        ck_assert_msg(strncmp(e.msg, "line 3, column 17: invalid UTF-8 in string", 42) == 0, "%s", e.msg);
    }
    /* NULL text / NULL error / NULL out */
    ck_assert_int_eq(json_parse(NULL, 0, &v, &e), -1);
    ck_assert_ptr_null(v);
    ck_assert_str_eq(e.msg, "line 1, column 1: unexpected end of input");
    v = &sentinel;
    ck_assert_int_eq(json_parse(NULL, 5, &v, &e), -1);
    ck_assert_ptr_null(v);
    v = &sentinel;
    ck_assert_int_eq(json_parse("[", 1, &v, NULL), -1);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(json_parse("1", 1, NULL, &e), -1);
    json_free(NULL);
}
END_TEST

START_TEST(test_truncated_prefixes) {
    static const char doc[] =
        "{\"model\": {\"n_layer\": 12, \"eps\": -1.5e-05, \"tied\": true},\n"
        " \"ids\": [0, 50256, -3.25E+2, null, false],\n"
        " \"text\": \"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\",\n"
        " \"empty\": {}, \"nested\": [[], [{\"k\": \"v\"}]]}";
    size_t n, len = sizeof doc - 1;
    ck_assert_uint_ge(len, 180);
    for (n = 0; n < len; n++) {
        json_value *v = &sentinel;
        dpo_err e;
        int r;
        e.msg[0] = '\0';
        r = json_parse(doc, n, &v, &e);
        if (r == 0) json_free(v);
        ck_assert_msg(r == -1, "prefix of %zu bytes parsed", n);
        ck_assert_msg(v == NULL, "prefix of %zu bytes: *out not NULL", n);
        ck_assert_msg(strncmp(e.msg, "line ", 5) == 0 &&
                          (strstr(e.msg, ": unexpected end of input") ||
                           strstr(e.msg, ": unterminated string")),
                      "prefix of %zu bytes: \"%s\"", n, e.msg);
    }
    {
        json_value *v = parse_ok_n(doc, len, __LINE__);
        ck_assert_uint_eq(v->count, 5);
        CHECK_STR(json_get(v, "text"), "caf\xC3\xA9 \xF0\x9F\x98\x80 \"q\" \\ \xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
        CHECK_NUM(&json_get(v, "ids")->items[2], -325.0, 0);
        json_free(v);
    }
}
END_TEST

START_TEST(test_trailing_garbage) {
    FAIL("1 2", "unexpected '2' after the JSON value");
    FAIL("{}x", "unexpected 'x' after the JSON value");
    FAIL("[]]", "unexpected ']' after the JSON value");
    FAIL("true false", "unexpected 'f' after the JSON value");
    FAIL("\"a\"\"b\"", "unexpected '\"' after the JSON value");
    FAIL("[1]\0", "unexpected byte 0x00 after the JSON value");
    FAIL("nullx", "unexpected 'x' after the JSON value");
    FAIL("1.5.3", "unexpected '.' after the JSON value");
    FAIL("{} // comment", "unexpected '/' after the JSON value");
    FAIL("0x10", "unexpected 'x' after the JSON value");
    FAIL("1_000", "unexpected '_' after the JSON value");
    FAIL("{}\n{}", "line 2, column 1: unexpected '{' after the JSON value");
}
END_TEST

START_TEST(test_bad_numbers) {
    FAIL_MSG("01", "line 1, column 1: invalid number: leading zeros are not allowed");
    FAIL("-01", "leading zeros");
    FAIL("00", "leading zeros");
    FAIL("[01]", "leading zeros");
    FAIL("-00.5", "leading zeros");
    FAIL("+1", "expected a value, found '+'");
    FAIL(".5", "expected a value, found '.'");
    FAIL("1.", "unexpected end of input");
    FAIL("[1.]", "expected a digit after '.', found ']'");
    FAIL("1.e5", "expected a digit after '.', found 'e'");
    FAIL("[1e]", "expected a digit in the exponent");
    FAIL("[1e+]", "expected a digit in the exponent");
    FAIL("[1E-x]", "expected a digit in the exponent");
    FAIL("-", "unexpected end of input");
    FAIL("[-]", "expected a digit after '-', found ']'");
    FAIL("--1", "expected a digit after '-', found '-'");
    FAIL("-Infinity", "expected a digit after '-', found 'I'");
    FAIL("NaN", "expected a value, found 'N'");
    FAIL("Infinity", "expected a value, found 'I'");
    FAIL("[nan]", "invalid literal (expected 'null')");
    FAIL_MSG("1e999", "line 1, column 1: number out of range: 1e999 does not fit in a double");
    FAIL("-1e999", "number out of range");
    FAIL("[0, 1E309]", "line 1, column 5: number out of range");
    FAIL("1.8e308", "number out of range");
    {
        char buf[400];
        memset(buf, '9', sizeof buf);
        expect_fail_n(buf, sizeof buf, "number out of range: 9999999999", __LINE__);
    }
}
END_TEST

START_TEST(test_bad_escapes_and_surrogates) {
    FAIL_MSG("\"\\ud800\"", "line 1, column 2: lone high surrogate \\uD800 in string "
                            "(it must be followed by a \\uDC00-\\uDFFF escape)");
    FAIL_MSG("\"\\udc00\"", "line 1, column 2: lone low surrogate \\uDC00 in string "
                            "(it must follow a \\uD800-\\uDBFF escape)");
    FAIL("\"\\uDBFF\"", "lone high surrogate");
    FAIL("\"\\uDFFF\"", "lone low surrogate");
    FAIL("\"\\ud800\\u0041\"", "lone high surrogate");
    FAIL("\"\\ud800x\"", "lone high surrogate");
    FAIL("\"\\ud800\\n\"", "lone high surrogate");
    FAIL("\"\\udc00\\ud800\"", "lone low surrogate");
    FAIL("\"\\ud800\\ud800\"", "lone high surrogate");
    FAIL("\"\\ud83d\\ue000\"", "lone high surrogate");
    FAIL("[\"ok\", \"a\\ude00\"]", "line 1, column 10: lone low surrogate");
    FAIL("\"\\u12\"", "invalid \\u escape in string: expected 4 hex digits");
    FAIL("\"\\u12G4\"", "expected 4 hex digits");
    FAIL("\"\\u 123\"", "expected 4 hex digits");
    FAIL("\"\\ud800\\u12\"", "line 1, column 8: invalid \\u escape");
    FAIL("\"\\U0041\"", "invalid escape in string: backslash followed by 'U'");
    FAIL("\"\\x41\"", "backslash followed by 'x'");
    FAIL("\"\\'\"", "backslash followed by '''");
    FAIL("\"\\a\"", "backslash followed by 'a'");
    FAIL("\"\\0\"", "backslash followed by '0'");
    FAIL("\"\\\xC3\xA9\"", "backslash followed by byte 0xC3");
    FAIL("\"\\\n\"", "backslash followed by byte 0x0A");
}
END_TEST

START_TEST(test_invalid_utf8) {
    /* overlong */
    FAIL("\"\xC0\x80\"", "invalid UTF-8 in string (overlong encoding, byte 0xC0)");
    FAIL("\"\xC1\xBF\"", "invalid UTF-8 in string (overlong encoding, byte 0xC1)");
    FAIL("\"\xE0\x80\x80\"", "invalid UTF-8 in string (overlong encoding, byte 0xE0)");
    FAIL("\"\xE0\x9F\xBF\"", "invalid UTF-8 in string (overlong encoding");
    FAIL("\"\xF0\x80\x80\x80\"", "invalid UTF-8 in string (overlong encoding, byte 0xF0)");
    FAIL("\"\xF0\x8F\xBF\xBF\"", "invalid UTF-8 in string (overlong encoding");
    /* UTF-16 surrogates encoded in UTF-8 */
    FAIL("\"\xED\xA0\x80\"", "invalid UTF-8 in string (UTF-16 surrogate encoded in UTF-8");
    FAIL("\"\xED\xBF\xBF\"", "invalid UTF-8 in string (UTF-16 surrogate");
    FAIL("\"\xED\xA0\xBD\xED\xB8\x80\"", "invalid UTF-8 in string (UTF-16 surrogate"); /* CESU-8 */
    /* beyond U+10FFFF */
    FAIL("\"\xF4\x90\x80\x80\"", "invalid UTF-8 in string (code point above U+10FFFF, byte 0xF4)");
    FAIL("\"\xF5\x80\x80\x80\"", "invalid UTF-8 in string (code point above U+10FFFF, byte 0xF5)");
    FAIL("\"\xF7\xBF\xBF\xBF\"", "invalid UTF-8 in string (code point above U+10FFFF");
    /* bytes never used */
    FAIL("\"\xF8\x88\x80\x80\x80\"", "invalid UTF-8 in string (byte never used in UTF-8, byte 0xF8)");
    FAIL("\"\xFE\"", "invalid UTF-8 in string (byte never used in UTF-8, byte 0xFE)");
    FAIL("\"\xFF\"", "invalid UTF-8 in string (byte never used in UTF-8, byte 0xFF)");
    /* truncated sequences */
    FAIL("\"\xC3\"", "invalid UTF-8 in string (truncated sequence, byte 0xC3)");
    FAIL("\"\xC3" "a\"", "invalid UTF-8 in string (truncated sequence");
    FAIL("\"\xE2\x82\"", "invalid UTF-8 in string (truncated sequence, byte 0xE2)");
    FAIL("\"\xE2\x82" "a\"", "invalid UTF-8 in string (truncated sequence");
    FAIL("\"\xF0\x9F\x98\"", "invalid UTF-8 in string (truncated sequence, byte 0xF0)");
    FAIL("\"\xF0\x9F\x98\xC3\xA9\"", "invalid UTF-8 in string (truncated sequence");
    FAIL("\"\xE2\" ", "truncated sequence");
    /* stray continuation bytes */
    FAIL("\"\x80\"", "invalid UTF-8 in string (unexpected continuation byte, byte 0x80)");
    FAIL("\"\xBF\"", "invalid UTF-8 in string (unexpected continuation byte, byte 0xBF)");
    FAIL_MSG("\"a\xC3\xA9\xA9\"", "line 1, column 5: invalid UTF-8 in string (unexpected continuation byte, byte 0xA9)");
    /* in keys too */
    FAIL("{\"\xFF\": 1}", "line 1, column 3: invalid UTF-8 in string");
    /* non-ASCII outside strings */
    FAIL("\xC3\xA9", "expected a value, found byte 0xC3");
    FAIL("[1, \xE2\x80\x8B 2]", "expected a value, found byte 0xE2"); /* zero-width space */
}
END_TEST

START_TEST(test_control_characters) {
    int c;
    for (c = 0; c < 0x20; c++) {
        char doc[8], want[96];
        doc[0] = '"';
        doc[1] = 'a';
        doc[2] = (char)c;
        doc[3] = 'b';
        doc[4] = '"';
        snprintf(want, sizeof want, "line 1, column 3: unescaped control character (byte 0x%02X) in string", c);
        expect_msg_n(doc, 5, want, __LINE__);
    }
    FAIL("{\"a\tb\": 1}", "unescaped control character (byte 0x09)");
    FAIL("[\"multi\nline\"]", "line 1, column 8: unescaped control character (byte 0x0A)");
    {
        json_value *v = PARSE_OK("\"a\x7F" "b\""); /* DEL is not a control character in JSON */
        CHECK_STR(v, "a\x7F" "b");
        json_free(v);
    }
}
END_TEST

START_TEST(test_depth) {
    size_t n = 100000, i;
    char *buf = malloc(n * 5 + 16);
    char want[96];
    json_value *v;
    ck_assert_ptr_nonnull(buf);

    memset(buf, '[', n);
    snprintf(want, sizeof want, "line 1, column %d: nesting depth exceeds the limit of %d levels",
             JSON_MAX_DEPTH + 1, JSON_MAX_DEPTH);
    expect_msg_n(buf, n, want, __LINE__);

    for (i = 0; i < n; i++) memcpy(buf + 5 * i, "{\"a\":", 5);
    expect_fail_n(buf, 5 * n, "nesting depth exceeds the limit", __LINE__);

    /* exactly JSON_MAX_DEPTH levels parse, mixing arrays and objects */
    {
        size_t len = 0, d;
        const json_value *w;
        for (d = 0; d < JSON_MAX_DEPTH; d++) {
            if (d % 2) { memcpy(buf + len, "{\"k\":", 5); len += 5; }
            else buf[len++] = '[';
        }
        buf[len++] = '7';
        for (d = JSON_MAX_DEPTH; d-- > 0;) buf[len++] = (d % 2) ? '}' : ']';
        v = parse_ok_n(buf, len, __LINE__);
        w = v;
        for (d = 0; d < JSON_MAX_DEPTH; d++) {
            ck_assert_int_eq(w->type, (d % 2) ? JSON_OBJECT : JSON_ARRAY);
            ck_assert_uint_eq(w->count, 1);
            w = &w->items[0];
        }
        CHECK_NUM(w, 7.0, 1);
        json_free(v);
    }
    /* one more level fails, even when closed properly */
    memset(buf, '[', JSON_MAX_DEPTH + 1);
    memset(buf + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
    expect_fail_n(buf, 2 * (JSON_MAX_DEPTH + 1), "nesting depth exceeds the limit", __LINE__);
    /* siblings do not add depth (20000 empty arrays need 21 bytes of tree per
     * input byte, more than json_parse allows: see test_memory_*) */
    buf[0] = '[';
    for (i = 0; i < 20000; i++) memcpy(buf + 1 + 3 * i, "[],", 3);
    buf[3 * 20000] = ']'; /* replaces the last comma */
    {
        dpo_err e;
        size_t peak = 0;
        v = NULL;
        ck_assert_msg(json_parse_budget(buf, 3 * 20000 + 1, SIZE_MAX, &peak, &v, &e) == 0, "%s", e.msg);
    }
    ck_assert_uint_eq(v->count, 20000);
    ck_assert_int_eq(v->items[19999].type, JSON_ARRAY);
    json_free(v);
    free(buf);
}
END_TEST

START_TEST(test_duplicate_keys) {
    FAIL("{\"x\": {\"b\": 1, \"b\": 2}}", "line 1, column 16: duplicate key \"b\"");
    FAIL("{\"a\": 1, \"\\u0061\": 2}", "line 1, column 10: duplicate key \"a\"");
    FAIL("{\"\\u00e9\": 1, \"\xC3\xA9\": 2}", "duplicate key \"\xC3\xA9\"");
    FAIL("{\"a\\u0000\": 1, \"a\\u0000\": 2}", "duplicate key \"a\\u0000\"");
    FAIL("[{\"a\": 1}, {\"q\": 1, \"r\": 2, \"q\": 3}]", "line 1, column 29: duplicate key \"q\"");
    {
        /* a long key is shown cut, with "..." */
        char doc[512];
        int n = snprintf(doc, sizeof doc, "{\"%0100d\": 1, \"%0100d\": 2}", 5, 5);
        expect_fail_n(doc, (size_t)n, "duplicate key \"0000000000", __LINE__);
        expect_fail_n(doc, (size_t)n, "0000\"...", __LINE__);
    }
    {
        /* keys that differ only after a NUL, or by length, are distinct */
        json_value *v = PARSE_OK("{\"a\\u0000b\": 1, \"a\\u0000c\": 2, \"a\": 3, \"a\\u0000\": 4, \"\": 5, \"A\": 6}");
        ck_assert_uint_eq(v->count, 6);
        json_free(v);
    }
    /* large objects (sorted check): the first repeat in document order wins */
    {
        size_t cap = 20000 * 24 + 64, len = 0;
        char *doc = malloc(cap);
        int i;
        ck_assert_ptr_nonnull(doc);
        doc[len++] = '{';
        for (i = 0; i < 20000; i++) len += (size_t)snprintf(doc + len, cap - len, "\"k%d\": %d, ", i, i);
        len += (size_t)snprintf(doc + len, cap - len, "\"k7\": 1, \"k500\": 2}");
        expect_fail_n(doc, len, "duplicate key \"k7\"", __LINE__);
        /* and without repeats it parses */
        len = 1;
        for (i = 0; i < 20000; i++) len += (size_t)snprintf(doc + len, cap - len, "\"k%d\": %d, ", i, i);
        len -= 2;
        doc[len++] = '}';
        {
            json_value *v = parse_ok_n(doc, len, __LINE__);
            ck_assert_uint_eq(v->count, 20000);
            json_free(v);
        }
        free(doc);
    }
}
END_TEST

START_TEST(test_unterminated_and_literals) {
    FAIL_MSG("\"abc", "line 1, column 1: unterminated string (the input ends before its closing quote)");
    FAIL("[\"abc", "line 1, column 2: unterminated string");
    FAIL("{\"a", "unterminated string");
    FAIL("{\"a\": \"b", "line 1, column 7: unterminated string");
    FAIL("\"abc\\", "unterminated string");
    FAIL("\"abc\\\"", "unterminated string");
    FAIL("\"\\u00", "unterminated string");
    FAIL("\"\\ud83d", "unterminated string");
    FAIL("\"\\ud83d\\", "unterminated string");
    FAIL("\"\\ud83d\\ude0", "unterminated string");
    FAIL("\"\xF0\x9F\x98", "unterminated string");
    FAIL("tru", "unexpected end of input");
    FAIL("nul", "unexpected end of input");
    FAIL("True", "expected a value, found 'T'");
    FAIL("nulL", "invalid literal (expected 'null')");
    FAIL("fals3", "invalid literal (expected 'false')");
    FAIL("[t]", "invalid literal (expected 'true')");
    FAIL("undefined", "expected a value, found 'u'");
}
END_TEST

START_TEST(test_commas_and_structure) {
    FAIL_MSG("[1,]", "line 1, column 4: trailing comma before ']'");
    FAIL_MSG("{\"a\":1,}", "line 1, column 8: trailing comma before '}'");
    FAIL_MSG("[,1]", "line 1, column 2: expected a value, found ','");
    FAIL("[1,,2]", "line 1, column 4: expected a value, found ','");
    FAIL("[1 , ]", "trailing comma before ']'");
    FAIL("{,}", "expected a member name in double quotes, found ','");
    FAIL("{\"a\":1,,\"b\":2}", "expected a member name in double quotes, found ','");
    FAIL("[1 2]", "expected ',' or ']' after an array element, found '2'");
    FAIL("{\"a\" 1}", "expected ':' after the member name, found '1'");
    FAIL("{\"a\"}", "expected ':' after the member name, found '}'");
    FAIL("{\"a\":}", "expected a value, found '}'");
    FAIL("{\"a\":1 \"b\":2}", "expected ',' or '}' after an object member, found '\"'");
    FAIL("{\"a\":1]", "expected ',' or '}' after an object member, found ']'");
    FAIL("[1}", "expected ',' or ']' after an array element, found '}'");
    FAIL("{1:2}", "expected a member name in double quotes, found '1'");
    FAIL("{a:1}", "expected a member name in double quotes, found 'a'");
    FAIL("]", "expected a value, found ']'");
    FAIL("}", "expected a value, found '}'");
    FAIL(",", "expected a value, found ','");
    FAIL("[", "unexpected end of input");
    FAIL("{", "unexpected end of input");
    FAIL("{\"a\":1,", "unexpected end of input");
    FAIL("{\"a\":", "unexpected end of input");
    FAIL("{\"a\"", "unexpected end of input");
    /* single quotes */
    FAIL_MSG("'a'", "line 1, column 1: single-quoted strings are not JSON (use double quotes)");
    FAIL("{'a': 1}", "line 1, column 2: single-quoted member names are not JSON");
    FAIL("[\"a\", 'b']", "line 1, column 7: single-quoted strings are not JSON");
    FAIL("{\"a\": 'b'}", "single-quoted strings are not JSON");
}
END_TEST

/* ======================================================================== */
/* size                                                                      */
/* ======================================================================== */

START_TEST(test_large_documents) {
    const int nkeys = 60000;
    size_t cap = (size_t)nkeys * 32 + 64, len = 0;
    char *doc = malloc(cap), key[32];
    json_value *v;
    double t0, t1;
    int i;
    ck_assert_ptr_nonnull(doc);

    /* an object with 60000 keys, like GPT-2's vocab.json */
    doc[len++] = '{';
    for (i = 0; i < nkeys; i++)
        len += (size_t)snprintf(doc + len, cap - len, "%s\"tok\\u00e9%d\": %d", i ? ", " : "", i, i);
    doc[len++] = '}';
    t0 = util_seconds();
    v = parse_ok_n(doc, len, __LINE__);
    t1 = util_seconds();
    ck_assert_msg(t1 - t0 < 2.0, "60000-key object took %.3f s", t1 - t0);
    ck_assert_uint_eq(v->count, (size_t)nkeys);
    for (i = 0; i < nkeys; i++) {
        int n = snprintf(key, sizeof key, "tok\xC3\xA9%d", i);
        ck_assert_uint_eq(v->key_lens[i], (size_t)n);
        ck_assert_int_eq(memcmp(v->keys[i], key, (size_t)n + 1), 0);
        ck_assert(v->items[i].type == JSON_NUMBER && v->items[i].number == (double)i && v->items[i].is_integer);
    }
    CHECK_NUM(json_get(v, "tok\xC3\xA9" "59999"), 59999.0, 1);
    ck_assert_ptr_null(json_get(v, "tok\xC3\xA9" "60000"));
    json_free(v);
    free(doc);

    /* an array of 300000 numbers */
    {
        size_t n = 300000;
        cap = n * 8 + 16;
        doc = malloc(cap);
        ck_assert_ptr_nonnull(doc);
        len = 0;
        doc[len++] = '[';
        for (i = 0; i < (int)n; i++) len += (size_t)snprintf(doc + len, cap - len, "%s%d.5", i ? "," : "", i % 1000);
        doc[len++] = ']';
        t0 = util_seconds();
        v = parse_ok_n(doc, len, __LINE__);
        t1 = util_seconds();
        ck_assert_msg(t1 - t0 < 2.0, "300000-element array took %.3f s", t1 - t0);
        ck_assert_uint_eq(v->count, n);
        for (i = 0; i < (int)n; i++) ck_assert(v->items[i].number == (double)(i % 1000) + 0.5);
        json_free(v);
        free(doc);
    }

    /* a 4 MB string (a long JSONL row) with escapes and multi-byte characters */
    {
        size_t reps = 400000, k;
        static const char unit[] = "ab\\n\xC3\xA9\\u20ac"; /* 11 bytes -> a b \n C3 A9 E2 82 AC */
        static const char dec[] = "ab\n\xC3\xA9\xE2\x82\xAC";
        cap = reps * (sizeof unit - 1) + 16;
        doc = malloc(cap);
        ck_assert_ptr_nonnull(doc);
        len = 0;
        doc[len++] = '"';
        for (k = 0; k < reps; k++) {
            memcpy(doc + len, unit, sizeof unit - 1);
            len += sizeof unit - 1;
        }
        doc[len++] = '"';
        t0 = util_seconds();
        v = parse_ok_n(doc, len, __LINE__);
        t1 = util_seconds();
        ck_assert_msg(t1 - t0 < 2.0, "4 MB string took %.3f s", t1 - t0);
        ck_assert_uint_eq(v->len, reps * (sizeof dec - 1));
        for (k = 0; k < reps; k++)
            ck_assert(memcmp(v->str + k * (sizeof dec - 1), dec, sizeof dec - 1) == 0);
        json_free(v);
        free(doc);
    }
}
END_TEST

/* ======================================================================== */
/* memory budget                                                             */
/* ======================================================================== */

/* The budget message json_parse gives for a document of len bytes refused
 * under budget bytes (without its "line L, column C: " head). */
static void budget_msg(char *out, size_t cap, size_t budget, size_t len) {
    snprintf(out, cap, "document needs more than %zu bytes of memory for its size of %zu bytes",
             budget, len);
}

/* json_parse_budget with exactly `peak` bytes succeeds and reports peak; with
 * one byte less it fails with the budget message at a position, *out NULL. */
static void check_peak_n(const char *doc, size_t len, size_t peak, int line) {
    json_value *v = &sentinel;
    dpo_err e;
    size_t got = 0;
    char want[160];
    e.msg[0] = '\0';
    ck_assert_msg(json_parse_budget(doc, len, peak, &got, &v, &e) == 0, "test line %d: %s", line, e.msg);
    ck_assert_msg(got == peak, "test line %d: peak %zu bytes, want %zu", line, got, peak);
    json_free(v);
    v = &sentinel;
    ck_assert_msg(json_parse_budget(doc, len, peak - 1, &got, &v, &e) == -1 && v == NULL,
                  "test line %d: %zu bytes were enough", line, peak - 1);
    budget_msg(want, sizeof want, peak - 1, len);
    ck_assert_msg(strncmp(e.msg, "line 1, column ", 15) == 0 && strstr(e.msg, want) != NULL,
                  "test line %d: got \"%s\", want \"%s\"", line, e.msg, want);
}
#define CHECK_PEAK(lit, peak) check_peak_n((lit), sizeof(lit) - 1, (peak), __LINE__)

/* The parser counts exactly what it allocates: the root value with the
 * string arena after it (each string's raw length + 1), then each container's
 * arrays as they grow (capacity 1, 2, then by half, never past what the rest
 * of the input could hold). */
START_TEST(test_memory_exact) {
    const size_t V = sizeof(json_value), member = sizeof(char *) + sizeof(size_t);
    /* the per-value footprint was 72 bytes on LP64; now 8 doubles/pointers */
    ck_assert_uint_le(V, 8 * sizeof(void *));
    /* a scalar: the root alone; a string: the root and its 3 bytes + NUL */
    CHECK_PEAK("7", V);
    CHECK_PEAK("\"abc\"", V + 4);
    CHECK_PEAK("\"a\\u00e9\"", V + 8); /* raw length bounds the 3 decoded bytes */
    /* [1,2,3]: elements grow 1 -> 2 -> 3 (the input holds no fourth) */
    CHECK_PEAK("[1,2,3]", V + 3 * V);
    CHECK_PEAK("[]", V);
    /* {"a":[1],"b":"xy"}: arena 2+2+3; members 1 -> 2; the inner array 1 */
    CHECK_PEAK("{\"a\":[1],\"b\":\"xy\"}", V + 7 + 2 * (V + member) + V);
    /* a number token of 64 bytes or more is copied for strtod (65 bytes, freed) */
    CHECK_PEAK("1000000000000000000000000000000000000000000000000000000000000000", V + 65);

    /* the default budget */
    ck_assert_uint_eq(json_memory_budget(0), JSON_MEM_BASE);
    ck_assert_uint_eq(json_memory_budget(1000), 1000 * JSON_MEM_PER_BYTE + JSON_MEM_BASE);
    ck_assert_uint_eq(json_memory_budget(SIZE_MAX / 2), SIZE_MAX);
    ck_assert_uint_eq(JSON_MEM_PER_BYTE, 12);
}
END_TEST

/* A document made of n copies of unit (separated by sep) inside open/close. */
static char *repeat_doc(const char *open, const char *unit, const char *sep, const char *close,
                        size_t n, size_t *len) {
    size_t lo = strlen(open), lu = strlen(unit), ls = strlen(sep), lc = strlen(close), i, k = 0;
    char *d = malloc(lo + n * (lu + ls) + lc + 1);
    ck_assert_ptr_nonnull(d);
    memcpy(d, open, lo);
    k = lo;
    for (i = 0; i < n; i++) {
        if (i) {
            memcpy(d + k, sep, ls);
            k += ls;
        }
        memcpy(d + k, unit, lu);
        k += lu;
    }
    memcpy(d + k, close, lc);
    k += lc;
    d[k] = '\0';
    *len = k;
    return d;
}

/* Documents of tiny values, ~1 MB each, need 18 to 32 bytes of tree per input
 * byte: json_parse refuses each with the budget message, quickly, without
 * building the tree first (before the budget they all parsed). */
START_TEST(test_memory_hostile) {
    static const struct {
        const char *open, *unit, *sep, *close;
        size_t n;
    } docs[] = {
        {"[", "0", ",", "]", 500000},                        /* 64 bytes per 2 */
        {"{\"a\": [", "0", ", ", "]}", 340000},               /* the vocab.json of issue 8 */
        {"[", "[]", ",", "]", 340000},                       /* empty arrays */
        {"[", "{}", ",", "]", 340000},                       /* empty objects */
        {"[", "\"\"", ",", "]", 340000},                     /* empty strings */
        {"[", "{\"\":0}", ",", "]", 150000},                 /* one-member objects */
        {"[", "[0]", ",", "]", 250000},                      /* one-element arrays */
        {"{\"a\":{\"b\":[[", "0", ",", "]]}}", 500000},      /* nested */
    };
    size_t d;
    for (d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t len;
        char *doc = repeat_doc(docs[d].open, docs[d].unit, docs[d].sep, docs[d].close, docs[d].n, &len);
        char want[160];
        double t0, t1;
        budget_msg(want, sizeof want, json_memory_budget(len), len);
        t0 = util_seconds();
        expect_fail_n(doc, len, want, __LINE__);
        t1 = util_seconds();
        ck_assert_msg(t1 - t0 < 1.0, "document %zu refused after %.3f s", d, t1 - t0);
        free(doc);
    }
    /* the budget counts: the same array of zeros parses with a budget big
     * enough for it (1 + 500000 values of sizeof(json_value)) */
    {
        size_t len, peak = 0;
        char *doc = repeat_doc("[", "0", ",", "]", 500000, &len);
        json_value *v = NULL;
        dpo_err e;
        ck_assert_msg(json_parse_budget(doc, len, 500001 * sizeof(json_value), &peak, &v, &e) == 0,
                      "%s", e.msg);
        ck_assert_uint_eq(peak, 500001 * sizeof(json_value));
        ck_assert_uint_eq(v->count, 500000);
        json_free(v);
        free(doc);
    }
}
END_TEST

/* Parse text[0..len) with json_parse (the default budget) and return the peak
 * it needed (measured with an unlimited budget). */
static size_t real_peak(const char *what, const char *text, size_t len) {
    json_value *v = NULL;
    dpo_err e;
    size_t peak = 0;
    ck_assert_msg(json_parse(text, len, &v, &e) == 0, "%s: %s", what, e.msg);
    json_free(v);
    ck_assert_msg(json_parse_budget(text, len, SIZE_MAX, &peak, &v, &e) == 0, "%s: %s", what, e.msg);
    json_free(v);
    return peak;
}

/* A header like the one Hugging Face writes for GPT-2 124M (hub names, the
 * attn.bias buffers, 8-byte padding), written into a fresh buffer. */
static char *gpt2_header(size_t *len) {
    static const struct {
        const char *name;
        int ndim;
        size_t shape[4];
    } block[] = {
        {"attn.bias", 4, {1, 1, 1024, 1024}}, {"attn.c_attn.bias", 1, {2304}},
        {"attn.c_attn.weight", 2, {768, 2304}}, {"attn.c_proj.bias", 1, {768}},
        {"attn.c_proj.weight", 2, {768, 768}}, {"ln_1.bias", 1, {768}}, {"ln_1.weight", 1, {768}},
        {"ln_2.bias", 1, {768}}, {"ln_2.weight", 1, {768}}, {"mlp.c_fc.bias", 1, {3072}},
        {"mlp.c_fc.weight", 2, {768, 3072}}, {"mlp.c_proj.bias", 1, {768}},
        {"mlp.c_proj.weight", 2, {3072, 768}},
    };
    size_t cap = 64 << 10, n = 0, off = 0;
    char *h = malloc(cap);
    int l, b;
    ck_assert_ptr_nonnull(h);
    n += (size_t)snprintf(h + n, cap - n, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (l = 0; l < 12; l++) {
        for (b = 0; b < (int)(sizeof block / sizeof block[0]); b++) {
            size_t numel = 1, k;
            n += (size_t)snprintf(h + n, cap - n, ",\"h.%d.%s\":{\"dtype\":\"F32\",\"shape\":[", l,
                                  block[b].name);
            for (k = 0; k < (size_t)block[b].ndim; k++) {
                n += (size_t)snprintf(h + n, cap - n, "%s%zu", k ? "," : "", block[b].shape[k]);
                numel *= block[b].shape[k];
            }
            n += (size_t)snprintf(h + n, cap - n, "],\"data_offsets\":[%zu,%zu]}", off, off + 4 * numel);
            off += 4 * numel;
        }
    }
    n += (size_t)snprintf(h + n, cap - n,
                          ",\"ln_f.bias\":{\"dtype\":\"F32\",\"shape\":[768],\"data_offsets\":[%zu,%zu]}"
                          ",\"ln_f.weight\":{\"dtype\":\"F32\",\"shape\":[768],\"data_offsets\":[%zu,%zu]}"
                          ",\"wpe.weight\":{\"dtype\":\"F32\",\"shape\":[1024,768],\"data_offsets\":[%zu,%zu]}"
                          ",\"wte.weight\":{\"dtype\":\"F32\",\"shape\":[50257,768],\"data_offsets\":[%zu,%zu]}}",
                          off, off + 3072, off + 3072, off + 6144, off + 6144, off + 6144 + 3145728,
                          off + 6144 + 3145728, off + 6144 + 3145728 + 154389504);
    while (n % 8 != 0) h[n++] = ' ';
    ck_assert_uint_lt(n, cap);
    *len = n;
    return h;
}

/* The files dpo reads parse within the budget with room to spare (measured:
 * vocab.json 5.7, a GPT-2 124M header 6.9, JSONL rows and small files up to
 * ~10 bytes per input byte, under JSON_MEM_BASE), while a hostile document of
 * the same size is refused. */
START_TEST(test_memory_real_files) {
    static const char *jsonl[] = {"data/demo/sentiment_pairs.jsonl", "data/demo/sentiment_pairs_eval.jsonl",
                                  "tests/gpt2_tokenizer_vectors.jsonl"};
    static const char config[] =
        "{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"], "
        "\"attn_pdrop\": 0.1, \"bos_token_id\": 50256, \"embd_pdrop\": 0.1, \"eos_token_id\": 50256, "
        "\"initializer_range\": 0.02, \"layer_norm_epsilon\": 1e-05, \"model_type\": \"gpt2\", "
        "\"n_ctx\": 1024, \"n_embd\": 768, \"n_head\": 12, \"n_inner\": null, \"n_layer\": 12, "
        "\"n_positions\": 1024, \"reorder_and_upcast_attn\": false, \"resid_pdrop\": 0.1, "
        "\"scale_attn_by_inverse_layer_idx\": false, \"scale_attn_weights\": true, "
        "\"summary_activation\": null, \"summary_first_dropout\": 0.1, \"summary_proj_to_labels\": true, "
        "\"summary_type\": \"cls_index\", \"summary_use_proj\": true, \"task_specific_params\": "
        "{\"text-generation\": {\"do_sample\": true, \"max_length\": 50}}, \"vocab_size\": 50257}";
    static const char state[] = "{\n  \"mode\": \"dpo\",\n  \"step\": 2,\n  \"pairs_seen\": 8,\n"
                                "  \"seed\": \"0\",\n  \"batch\": 4,\n  \"micro_batch\": 4\n}\n";
    size_t n, peak, f, len;
    char *text, *hostile, want[160];
    dpo_err e;

    /* GPT-2's vocab.json (1 MB, 50257 members) */
    ck_assert_msg(util_read_file("data/gpt2/vocab.json", 1 << 24, &text, &n, &e) == 0, "%s", e.msg);
    peak = real_peak("vocab.json", text, n);
    ck_assert_msg(peak <= 6 * n, "vocab.json: %zu bytes need %zu", n, peak);
    free(text);
    hostile = repeat_doc("{\"a\": [", "0", ", ", "]}", (n - 4) / 3 + 1, &len);
    ck_assert(len >= n && len < n + 8);
    budget_msg(want, sizeof want, json_memory_budget(len), len);
    expect_fail_n(hostile, len, want, __LINE__);
    free(hostile);

    /* a GPT-2 124M safetensors header (about 15 KB) */
    text = gpt2_header(&n);
    peak = real_peak("124M header", text, n);
    ck_assert_msg(peak <= 7 * n && peak > 6 * n, "124M header: %zu bytes need %zu", n, peak);
    free(text);
    hostile = repeat_doc("{\"x\":{\"dtype\":\"F32\",\"shape\":[", "0", ",", "]}}", n / 2, &len);
    ck_assert(len >= n);
    budget_msg(want, sizeof want, json_memory_budget(len), len);
    expect_fail_n(hostile, len, want, __LINE__);
    free(hostile);

    /* config.json, trainer_state.json */
    peak = real_peak("config.json", config, sizeof config - 1);
    ck_assert_msg(peak <= 8 * (sizeof config - 1), "config.json: %zu", peak);
    peak = real_peak("trainer_state.json", state, sizeof state - 1);
    ck_assert_msg(peak <= 8 * (sizeof state - 1), "trainer_state.json: %zu", peak);

    /* every JSONL row of the shipped data and of the tokenizer vectors */
    for (f = 0; f < sizeof jsonl / sizeof jsonl[0]; f++) {
        size_t pos = 0, rows = 0, bytes = 0, peaks = 0;
        ck_assert_msg(util_read_file(jsonl[f], 1 << 24, &text, &n, &e) == 0, "%s", e.msg);
        while (pos < n) {
            size_t end = pos;
            while (end < n && text[end] != '\n') end++;
            if (end > pos) {
                peak = real_peak(jsonl[f], text + pos, end - pos);
                ck_assert_msg(peak <= json_memory_budget(end - pos) / 2, "%s row %zu: %zu bytes need %zu",
                              jsonl[f], rows + 1, end - pos, peak);
                rows++;
                bytes += end - pos;
                peaks += peak;
            }
            pos = end + 1;
        }
        ck_assert_uint_gt(rows, 60);
        ck_assert_msg(peaks <= 11 * bytes, "%s: %zu bytes need %zu", jsonl[f], bytes, peaks);
        free(text);
    }
}
END_TEST

/* ======================================================================== */
/* suite                                                                     */
/* ======================================================================== */

/* One JSONL line: the error gives the file's line and the column in it. */
START_TEST(test_parse_line) {
    json_value *v = NULL;
    dpo_err e;
    const char good[] = "{\"text\": \"hi\"}", bad[] = "{\"text\": x}", dup[] = "{\"a\": 1, \"a\": 2}";
    ck_assert_int_eq(json_parse_line(good, sizeof good - 1, "f.jsonl", 7, &v, &e), 0);
    ck_assert_int_eq(v->type, JSON_OBJECT);
    json_free(v);
    ck_assert_int_eq(json_parse_line(bad, sizeof bad - 1, "f.jsonl", 7, &v, &e), -1);
    ck_assert_str_eq(e.msg, "f.jsonl: line 7, column 10: expected a value, found 'x'");
    ck_assert_int_eq(json_parse_line(dup, sizeof dup - 1, "dir/g.jsonl", 123456, &v, &e), -1);
    ck_assert_str_eq(e.msg, "dir/g.jsonl: line 123456, column 10: duplicate key \"a\"");
    ck_assert_int_eq(json_parse_line("", 0, "h", 2, &v, &e), -1);
    ck_assert_str_eq(e.msg, "h: line 2, column 1: unexpected end of input");
}
END_TEST

static Suite *json_suite(void) {
    Suite *s = suite_create("json");
    TCase *valid = tcase_create("valid");
    TCase *readers = tcase_create("readers");
    TCase *escape = tcase_create("escape");
    TCase *hostile = tcase_create("hostile");
    TCase *size = tcase_create("size");

    tcase_add_test(valid, test_nested_document);
    tcase_add_test(valid, test_string_escapes_and_utf8);
    tcase_add_test(valid, test_numbers);
    tcase_add_test(valid, test_rfc8259_examples);
    tcase_add_test(valid, test_whitespace);
    suite_add_tcase(s, valid);

    tcase_add_test(readers, test_get_readers);
    suite_add_tcase(s, readers);

    tcase_add_test(escape, test_escape_exact);
    tcase_add_test(escape, test_escape_truncation);
    tcase_add_test(escape, test_escape_round_trip);
    suite_add_tcase(s, escape);

    tcase_add_test(hostile, test_empty_and_positions);
    tcase_add_test(hostile, test_parse_line);
    tcase_add_test(hostile, test_truncated_prefixes);
    tcase_add_test(hostile, test_trailing_garbage);
    tcase_add_test(hostile, test_bad_numbers);
    tcase_add_test(hostile, test_bad_escapes_and_surrogates);
    tcase_add_test(hostile, test_invalid_utf8);
    tcase_add_test(hostile, test_control_characters);
    tcase_add_test(hostile, test_depth);
    tcase_add_test(hostile, test_duplicate_keys);
    tcase_add_test(hostile, test_unterminated_and_literals);
    tcase_add_test(hostile, test_commas_and_structure);
    suite_add_tcase(s, hostile);

    tcase_set_timeout(size, 60);
    tcase_add_test(size, test_large_documents);
    tcase_add_test(size, test_memory_exact);
    tcase_add_test(size, test_memory_hostile);
    tcase_add_test(size, test_memory_real_files);
    suite_add_tcase(s, size);
    return s;
}

int main(void) {
    return testutil_run(json_suite());
}
