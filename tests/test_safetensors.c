/* tests/test_safetensors.c - Check suite for safetensors.c, the format layer:
 * F16/BF16 -> F32 conversion (known bit patterns and all 65536 patterns
 * against values computed here from the bit fields), st_write_f32 ->
 * st_open/st_read_f32 round trips (unusual names, scalars, empty tensors,
 * bit-exact data, 8-byte-aligned header, atomic write), reads through the
 * descriptor st_open validated (a file renamed over the path afterwards is not
 * read; a file that grows or shrinks is refused), paths that are not regular
 * files (directory, FIFO, device), and hostile files written byte by byte
 * here: each must make st_open fail with a message that names the file and
 * the problem, and leave the st_file safe to st_close. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "safetensors.h"
#include "util.h"

/* ======================================================================== */
/* helpers                                                                   */
/* ======================================================================== */

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* number of directory entries (other than . and ..); *tmp_seen counts names containing ".tmp." */
static int count_entries(const char *dir, int *tmp_seen) {
    DIR *d = opendir(dir);
    struct dirent *ent;
    int n = 0;
    *tmp_seen = 0;
    ck_assert_ptr_nonnull(d);
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
        n++;
        if (strstr(ent->d_name, ".tmp.")) (*tmp_seen)++;
    }
    closedir(d);
    return n;
}



/* A safetensors file built by hand: the 8-byte little-endian length field
 * len_field (which need not match), hlen bytes of header, then ndata data
 * bytes (0, 1, 2, ... mod 251). */
static void write_raw_len(const char *path, uint64_t len_field, const char *hdr, size_t hlen,
                          size_t ndata) {
    size_t total = 8 + hlen + ndata, i;
    unsigned char *buf = malloc(total);
    ck_assert_ptr_nonnull(buf);
    for (i = 0; i < 8; i++) buf[i] = (unsigned char)(len_field >> (8 * i));
    memcpy(buf + 8, hdr, hlen);
    for (i = 0; i < ndata; i++) buf[8 + hlen + i] = (unsigned char)(i % 251);
    testutil_write_bytes(path, buf, total);
    free(buf);
}

/* the usual case: the length field is the header's length */
static void write_raw(const char *path, const char *hdr, size_t ndata) {
    write_raw_len(path, strlen(hdr), hdr, strlen(hdr), ndata);
}

/* st_open must fail, name the file and contain want; the st_file must then be
 * safe to close (twice: a failed open leaves nothing to free). */
static void expect_open_fail_at(const char *path, const char *want, int line) {
    st_file f;
    dpo_err e;
    int r;
    memset(&e, 0, sizeof e);
    r = st_open(&f, path, &e);
    ck_assert_msg(r == -1, "test line %d: st_open succeeded, expected an error with \"%s\"", line,
                  want);
    ck_assert_msg(strstr(e.msg, path) != NULL, "test line %d: message does not name the file: \"%s\"",
                  line, e.msg);
    ck_assert_msg(strstr(e.msg, want) != NULL, "test line %d: message \"%s\" lacks \"%s\"", line,
                  e.msg, want);
    ck_assert_msg(f.n_tensors == 0 && f.tensors == NULL,
                  "test line %d: failed st_open left %zu tensors", line, f.n_tensors);
    st_close(&f);
    st_close(&f);
}
#define EXPECT_OPEN_FAIL(path, want) expect_open_fail_at((path), (want), __LINE__)

/* write a header (with ndata data bytes) to path and expect st_open to fail */
static void hostile_at(const char *path, const char *hdr, size_t ndata, const char *want, int line) {
    write_raw(path, hdr, ndata);
    expect_open_fail_at(path, want, line);
}
#define HOSTILE(path, hdr, ndata, want) hostile_at((path), (hdr), (ndata), (want), __LINE__)

static void open_ok_at(st_file *f, const char *path, int line) {
    dpo_err e;
    memset(&e, 0, sizeof e);
    ck_assert_msg(st_open(f, path, &e) == 0, "test line %d: st_open failed: %s", line, e.msg);
}
#define OPEN_OK(f, path) open_ok_at((f), (path), __LINE__)

/* ======================================================================== */
/* conversions                                                               */
/* ======================================================================== */

START_TEST(test_f16_known_patterns) {
    static const struct {
        uint16_t h;
        double want;
    } cases[] = {
        {0x3C00, 1.0},
        {0xC000, -2.0},
        {0x7BFF, 65504.0},
        {0x0001, 5.9604644775390625e-08},          /* 2^-24, smallest subnormal */
        {0x03FF, 6.097555160522461e-05},           /* 1023 * 2^-24, largest subnormal */
        {0x0400, 6.103515625e-05},                 /* 2^-14, smallest normal */
        {0x3555, 0.333251953125},                  /* 1365 * 2^-12 */
        {0xBBFF, -0.99951171875},                  /* -(2 - 2^-10) / 2 */
        {0x3BFF, 0.99951171875},
        {0x8001, -5.9604644775390625e-08},
        {0x0000, 0.0},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float got = st_f16_to_f32(cases[i].h);
        ck_assert_msg(bits_of(got) == bits_of((float)cases[i].want),
                      "f16 0x%04X -> %.17g, want %.17g", (unsigned)cases[i].h, (double)got,
                      cases[i].want);
    }
    /* -0.0: compares equal to 0, so check the sign bit itself */
    ck_assert_uint_eq(bits_of(st_f16_to_f32(0x8000)), 0x80000000u);
    ck_assert_uint_eq(bits_of(st_f16_to_f32(0x0000)), 0x00000000u);
    ck_assert(isinf(st_f16_to_f32(0x7C00)) && st_f16_to_f32(0x7C00) > 0);
    ck_assert(isinf(st_f16_to_f32(0xFC00)) && st_f16_to_f32(0xFC00) < 0);
    /* the quiet NaN with an empty payload is the quiet NaN of F32 */
    ck_assert(isnan(st_f16_to_f32(0x7E00)));
    ck_assert_uint_eq(bits_of(st_f16_to_f32(0x7E00)), 0x7FC00000u);
    ck_assert(isnan(st_f16_to_f32(0xFE00)) && signbit(st_f16_to_f32(0xFE00)));
    ck_assert(isnan(st_f16_to_f32(0x7C01)));
    ck_assert(isnan(st_f16_to_f32(0x7FFF)));
}
END_TEST

/* Every one of the 65536 half-precision patterns, against the value computed
 * from its fields: (-1)^s 2^(e-15) (1 + m/1024) for 0 < e < 31,
 * (-1)^s 2^-14 (m/1024) for e = 0, +-inf (m = 0) or NaN (m != 0) for e = 31. */
START_TEST(test_f16_exhaustive) {
    uint32_t h, bad = 0, first_bad = 0;
    for (h = 0; h < 65536; h++) {
        unsigned s = h >> 15, ex = (h >> 10) & 31u, m = h & 1023u;
        float got = st_f16_to_f32((uint16_t)h);
        int ok;
        if (ex == 31) {
            ok = m == 0 ? (isinf(got) && (signbit(got) != 0) == (s != 0))
                        : (isnan(got) && (signbit(got) != 0) == (s != 0));
        } else {
            double mag = ex == 0 ? ldexp((double)m, -24) : ldexp(1024.0 + m, (int)ex - 25);
            float want = (float)(s ? -mag : mag); /* exact: at most 11 significant bits */
            ok = bits_of(got) == bits_of(want);
        }
        if (!ok && bad++ == 0) first_bad = h;
    }
    ck_assert_msg(bad == 0, "%u f16 patterns convert wrongly, the first is 0x%04X -> %.17g",
                  (unsigned)bad, (unsigned)first_bad, (double)st_f16_to_f32((uint16_t)first_bad));
}
END_TEST

START_TEST(test_bf16_known_and_exhaustive) {
    uint32_t h, bad = 0, first_bad = 0;
    ck_assert(st_bf16_to_f32(0x3F80) == 1.0f);
    ck_assert(st_bf16_to_f32(0xC2F7) == -123.5f);
    ck_assert(st_bf16_to_f32(0x4049) == 3.140625f);
    ck_assert(isinf(st_bf16_to_f32(0x7F80)) && st_bf16_to_f32(0x7F80) > 0);
    ck_assert(isinf(st_bf16_to_f32(0xFF80)) && st_bf16_to_f32(0xFF80) < 0);
    ck_assert(isnan(st_bf16_to_f32(0x7FC0)));
    ck_assert_uint_eq(bits_of(st_bf16_to_f32(0x8000)), 0x80000000u);
    /* (-1)^s 2^(e-127) (1 + m/128) for 0 < e < 255; (-1)^s 2^-126 (m/128) for e = 0 */
    for (h = 0; h < 65536; h++) {
        unsigned s = h >> 15, ex = (h >> 7) & 255u, m = h & 127u;
        float got = st_bf16_to_f32((uint16_t)h);
        int ok;
        if (ex == 255) {
            ok = m == 0 ? (isinf(got) && (signbit(got) != 0) == (s != 0))
                        : (isnan(got) && (signbit(got) != 0) == (s != 0));
        } else {
            double mag = ex == 0 ? ldexp((double)m, -133) : ldexp(128.0 + m, (int)ex - 134);
            float want = (float)(s ? -mag : mag);
            ok = bits_of(got) == bits_of(want);
        }
        if (!ok && bad++ == 0) first_bad = h;
    }
    ck_assert_msg(bad == 0, "%u bf16 patterns convert wrongly, the first is 0x%04X -> %.17g",
                  (unsigned)bad, (unsigned)first_bad, (double)st_bf16_to_f32((uint16_t)first_bad));
}
END_TEST

START_TEST(test_dtype_table) {
    ck_assert_str_eq(st_dtype_name(ST_F32), "F32");
    ck_assert_str_eq(st_dtype_name(ST_BF16), "BF16");
    ck_assert_str_eq(st_dtype_name(ST_BOOL), "BOOL");
    ck_assert_uint_eq(st_dtype_size(ST_F32), 4);
    ck_assert_uint_eq(st_dtype_size(ST_F16), 2);
    ck_assert_uint_eq(st_dtype_size(ST_BF16), 2);
    ck_assert_uint_eq(st_dtype_size(ST_I64), 8);
    ck_assert_uint_eq(st_dtype_size(ST_F64), 8);
    ck_assert_uint_eq(st_dtype_size(ST_BOOL), 1);
    ck_assert_uint_eq(st_dtype_size(ST_U16), 2);
}
END_TEST

/* ======================================================================== */
/* write -> open -> read round trip                                          */
/* ======================================================================== */

START_TEST(test_roundtrip) {
    const char *dir = tmp_root;
    char path[128];
    /* names: unicode, quote, backslash, a control character */
    static const char *const names[4] = {"wte.weight", "n\xC3\xA4me \xE2\x82\xAC \xF0\x9F\x98\x80",
                                         "quote\"back\\slash", "tab\there"};
    static const uint32_t special[6] = {0x7FC12345u, /* quiet NaN with a payload */
                                        0x80000000u, /* -0.0 */
                                        0x7F800000u, 0xFF800000u, 0x00000001u, /* smallest subnormal */
                                        0x7F7FFFFFu}; /* FLT_MAX */
    float d0[6], d1[1] = {-3.25f}, d3[7], dummy[1] = {0.0f};
    st_out_tensor ts[4];
    st_file f;
    dpo_err e;
    unsigned char *raw;
    size_t n, hlen, i;
    int tmp_seen;
    json_value *hdr = NULL;
    const json_value *meta;
    const char *fmt;

    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    for (i = 0; i < 6; i++) d0[i] = float_of(special[i]);
    for (i = 0; i < 7; i++) d3[i] = (float)i * 0.5f - 1.0f;
    memset(ts, 0, sizeof ts);
    ts[0].name = names[0]; ts[0].data = d0; ts[0].ndim = 2; ts[0].shape[0] = 2; ts[0].shape[1] = 3;
    ts[1].name = names[1]; ts[1].data = d1; ts[1].ndim = 0;                 /* a scalar */
    ts[2].name = names[2]; ts[2].data = dummy; ts[2].ndim = 3;              /* an empty tensor */
    ts[2].shape[0] = 3; ts[2].shape[1] = 0; ts[2].shape[2] = 2;
    ts[3].name = names[3]; ts[3].data = d3; ts[3].ndim = 1; ts[3].shape[0] = 7;
    memset(&e, 0, sizeof e);
    ck_assert_msg(st_write_f32(path, ts, 4, &e) == 0, "st_write_f32: %s", e.msg);

    /* atomic write: only the final file is left */
    ck_assert_int_eq(count_entries(dir, &tmp_seen), 1);
    ck_assert_int_eq(tmp_seen, 0);

    /* the raw layout: length field, header padded to a multiple of 8, 14 floats */
    raw = testutil_read_bytes(path, &n);
    for (hlen = 0, i = 0; i < 8; i++) hlen |= (size_t)raw[i] << (8 * i);
    ck_assert_msg(hlen % 8 == 0, "header length %zu is not a multiple of 8", hlen);
    ck_assert_uint_eq(n, 8 + hlen + 4 * (6 + 1 + 0 + 7));
    ck_assert_int_eq(raw[8], '{');
    /* the header is strict JSON with HF's "__metadata__": {"format": "pt"} */
    memset(&e, 0, sizeof e);
    ck_assert_msg(json_parse((const char *)raw + 8, hlen, &hdr, &e) == 0, "header: %s", e.msg);
    meta = json_get(hdr, "__metadata__");
    ck_assert_ptr_nonnull(meta);
    ck_assert_int_eq(json_get_string(meta, "format", &fmt, NULL, &e), 0);
    ck_assert_str_eq(fmt, "pt");
    ck_assert_ptr_nonnull(json_get(hdr, names[1]));
    ck_assert_uint_eq(hdr->count, 5);
    json_free(hdr);
    free(raw);

    OPEN_OK(&f, path);
    ck_assert_uint_eq(f.n_tensors, 4);
    ck_assert_uint_eq(f.data_start, 8 + hlen);
    ck_assert_uint_eq(f.file_size, n);
    {
        const st_tensor *t0 = st_find(&f, names[0]), *t1 = st_find(&f, names[1]),
                        *t2 = st_find(&f, names[2]), *t3 = st_find(&f, names[3]);
        float o0[6], o1[1], o3[7], o2[1] = {42.0f};
        ck_assert_ptr_nonnull(t0);
        ck_assert_ptr_nonnull(t1);
        ck_assert_ptr_nonnull(t2);
        ck_assert_ptr_nonnull(t3);
        ck_assert_ptr_null(st_find(&f, "wte"));
        ck_assert_ptr_null(st_find(&f, "__metadata__"));
        ck_assert_int_eq(t0->dtype, ST_F32);
        ck_assert_int_eq(t0->ndim, 2);
        ck_assert_uint_eq(t0->shape[0], 2);
        ck_assert_uint_eq(t0->shape[1], 3);
        ck_assert_uint_eq(t0->numel, 6);
        ck_assert_uint_eq(t0->end - t0->begin, 24);
        ck_assert_int_eq(t1->ndim, 0);
        ck_assert_uint_eq(t1->numel, 1);
        ck_assert_uint_eq(t1->end - t1->begin, 4);
        ck_assert_int_eq(t2->ndim, 3);
        ck_assert_uint_eq(t2->shape[0], 3);
        ck_assert_uint_eq(t2->shape[1], 0);
        ck_assert_uint_eq(t2->shape[2], 2);
        ck_assert_uint_eq(t2->numel, 0);
        ck_assert_uint_eq(t2->end, t2->begin);
        ck_assert_int_eq(t3->ndim, 1);
        ck_assert_uint_eq(t3->numel, 7);
        ck_assert_msg(st_read_f32(&f, t0, o0, &e) == 0, "%s", e.msg);
        ck_assert_msg(st_read_f32(&f, t1, o1, &e) == 0, "%s", e.msg);
        ck_assert_msg(st_read_f32(&f, t2, o2, &e) == 0, "%s", e.msg);
        ck_assert_msg(st_read_f32(&f, t3, o3, &e) == 0, "%s", e.msg);
        for (i = 0; i < 6; i++)
            ck_assert_msg(bits_of(o0[i]) == special[i], "element %zu: 0x%08x, want 0x%08x", i,
                          (unsigned)bits_of(o0[i]), (unsigned)special[i]);
        ck_assert_uint_eq(bits_of(o1[0]), bits_of(-3.25f));
        ck_assert_uint_eq(bits_of(o2[0]), bits_of(42.0f)); /* nothing written for 0 elements */
        ck_assert_int_eq(memcmp(o3, d3, sizeof d3), 0);
        /* st_read_raw gives the little-endian bytes */
        {
            unsigned char rb[24];
            ck_assert_msg(st_read_raw(&f, t0, rb, &e) == 0, "%s", e.msg);
            ck_assert_int_eq(rb[0], 0x45);
            ck_assert_int_eq(rb[1], 0x23);
            ck_assert_int_eq(rb[2], 0xC1);
            ck_assert_int_eq(rb[3], 0x7F);
            ck_assert_int_eq(rb[7], 0x80);
        }
    }
    st_close(&f);

    /* rewriting replaces the file (atomically: still no temporary left) */
    ts[0].ndim = 1;
    ts[0].shape[0] = 1;
    ck_assert_msg(st_write_f32(path, ts, 1, &e) == 0, "%s", e.msg);
    OPEN_OK(&f, path);
    ck_assert_uint_eq(f.n_tensors, 1);
    ck_assert_uint_eq(f.tensors[0].numel, 1);
    st_close(&f);
    ck_assert_int_eq(count_entries(dir, &tmp_seen), 1);
    ck_assert_int_eq(tmp_seen, 0);

    /* zero tensors: a valid file holding only metadata */
    ck_assert_msg(st_write_f32(path, ts, 0, &e) == 0, "%s", e.msg);
    OPEN_OK(&f, path);
    ck_assert_uint_eq(f.n_tensors, 0);
    ck_assert_uint_eq(f.file_size, f.data_start);
    st_close(&f);

}
END_TEST

START_TEST(test_write_into_missing_dir) {
    const char *dir = tmp_root;
    char path[160];
    float d[1] = {1.0f};
    st_out_tensor t;
    dpo_err e;
    int tmp_seen;
    memset(&t, 0, sizeof t);
    t.name = "a";
    t.data = d;
    t.ndim = 1;
    t.shape[0] = 1;
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(st_write_f32(path, &t, 1, &e), -1);
    ck_assert_msg(strstr(e.msg, path) != NULL, "message does not name the file: %s", e.msg);
    ck_assert_int_eq(count_entries(dir, &tmp_seen), 0);
}
END_TEST

/* F16 and BF16 tensors are read little-endian and converted; I32 is refused by
 * st_read_f32 but available through st_read_raw. */
START_TEST(test_read_dtypes) {
    const char *dir = tmp_root;
    char path[128];
    /* F16 [1.0, -2.0, 65504, 2^-24] + BF16 [1.0, -123.5] + I32 [7, -1] = 8 + 4 + 8 bytes */
    static const unsigned char data[20] = {0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00,
                                           0x80, 0x3F, 0xF7, 0xC2,
                                           0x07, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
    static const char hdr[] =
        "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
        "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[12,20]}}";
    unsigned char file[8 + sizeof hdr - 1 + sizeof data];
    size_t hl = sizeof hdr - 1, k;
    st_file f;
    dpo_err e;
    float out[4] = {0};
    int32_t iv[2];
    unsigned char ib[8];
    snprintf(path, sizeof path, "%s/d.safetensors", dir);
    for (k = 0; k < 8; k++) file[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(file + 8, hdr, hl);
    memcpy(file + 8 + hl, data, sizeof data);
    testutil_write_bytes(path, file, sizeof file);
    OPEN_OK(&f, path);
    ck_assert_uint_eq(f.n_tensors, 3);
    ck_assert_int_eq(st_find(&f, "h")->dtype, ST_F16);
    ck_assert_int_eq(st_find(&f, "b")->dtype, ST_BF16);
    ck_assert_int_eq(st_find(&f, "i")->dtype, ST_I32);
    memset(&e, 0, sizeof e);
    ck_assert_msg(st_read_f32(&f, st_find(&f, "h"), out, &e) == 0, "%s", e.msg);
    ck_assert(out[0] == 1.0f && out[1] == -2.0f && out[2] == 65504.0f);
    ck_assert(out[3] == ldexpf(1.0f, -24));
    ck_assert_msg(st_read_f32(&f, st_find(&f, "b"), out, &e) == 0, "%s", e.msg);
    ck_assert(out[0] == 1.0f && out[1] == -123.5f);
    /* I32 is not a float type */
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(st_read_f32(&f, st_find(&f, "i"), out, &e), -1);
    ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, "I32") && strstr(e.msg, "\"i\""),
                  "message: %s", e.msg);
    ck_assert_msg(st_read_raw(&f, st_find(&f, "i"), ib, &e) == 0, "%s", e.msg);
    for (k = 0; k < 2; k++)
        iv[k] = (int32_t)((uint32_t)ib[4 * k] | (uint32_t)ib[4 * k + 1] << 8 |
                          (uint32_t)ib[4 * k + 2] << 16 | (uint32_t)ib[4 * k + 3] << 24);
    ck_assert_int_eq(iv[0], 7);
    ck_assert_int_eq(iv[1], -1);
    st_close(&f);
}
END_TEST

/* A file that passes st_open and is then truncated on disk: reading what is
 * gone is an error, never garbage. */
START_TEST(test_truncated_after_open) {
    const char *dir = tmp_root;
    char path[128];
    float a[300], b[5] = {1, 2, 3, 4, 5}, out[300];
    st_out_tensor ts[2];
    st_file f;
    dpo_err e;
    size_t i;
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    for (i = 0; i < 300; i++) a[i] = (float)i;
    memset(ts, 0, sizeof ts);
    ts[0].name = "a"; ts[0].data = a; ts[0].ndim = 1; ts[0].shape[0] = 300;
    ts[1].name = "b"; ts[1].data = b; ts[1].ndim = 1; ts[1].shape[0] = 5;
    memset(&e, 0, sizeof e);
    ck_assert_msg(st_write_f32(path, ts, 2, &e) == 0, "%s", e.msg);
    OPEN_OK(&f, path);
    ck_assert_msg(truncate(path, (off_t)(f.file_size - 2)) == 0, "truncate: %s", strerror(errno));
    {
        /* the tensor that ends at the end of the file has lost its last 2 bytes */
        const st_tensor *last = f.tensors[0].end > f.tensors[1].end ? &f.tensors[0] : &f.tensors[1];
        unsigned char rb[1200];
        memset(&e, 0, sizeof e);
        ck_assert_int_eq(st_read_f32(&f, last, out, &e), -1);
        ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, "truncated"), "message: %s", e.msg);
        memset(&e, 0, sizeof e);
        ck_assert_int_eq(st_read_raw(&f, last, rb, &e), -1);
        ck_assert_msg(strstr(e.msg, path) && strstr(e.msg, "truncated"), "message: %s", e.msg);
    }
    /* cut into the first tensor too: both are now unreadable */
    ck_assert(truncate(path, (off_t)(f.data_start + 10)) == 0);
    ck_assert_int_eq(st_read_f32(&f, &f.tensors[0], out, &e), -1);
    ck_assert_int_eq(st_read_f32(&f, &f.tensors[1], out, &e), -1);
    /* the file is gone */
    ck_assert(remove(path) == 0);
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(st_read_f32(&f, &f.tensors[0], out, &e), -1);
    ck_assert_msg(strstr(e.msg, path) != NULL, "message: %s", e.msg);
    st_close(&f);
}
END_TEST

/* Write tensors "a" (300 floats, a0 + i) and "b" (5 floats, b0 + i) to path. */
static void write_ab(const char *path, float a0, float b0) {
    float a[300], b[5];
    st_out_tensor ts[2];
    dpo_err e;
    size_t i;
    for (i = 0; i < 300; i++) a[i] = a0 + (float)i;
    for (i = 0; i < 5; i++) b[i] = b0 + (float)i;
    memset(ts, 0, sizeof ts);
    ts[0].name = "a"; ts[0].data = a; ts[0].ndim = 1; ts[0].shape[0] = 300;
    ts[1].name = "b"; ts[1].data = b; ts[1].ndim = 1; ts[1].shape[0] = 5;
    memset(&e, 0, sizeof e);
    ck_assert_msg(st_write_f32(path, ts, 2, &e) == 0, "%s", e.msg);
}

/* The file is read through the descriptor st_open validated: another file
 * renamed over the path afterwards (same header, other data) is never read. */
START_TEST(test_replaced_after_open) {
    char path[128], other[128];
    float out[300];
    unsigned char raw[20];
    st_file f;
    dpo_err e;
    size_t i;
    snprintf(path, sizeof path, "%s/m.safetensors", tmp_root);
    snprintf(other, sizeof other, "%s/other.safetensors", tmp_root);
    write_ab(path, 0.0f, 100.0f);
    write_ab(other, 1000.0f, 2000.0f);
    OPEN_OK(&f, path);
    ck_assert_int_eq(st_same_file(&f, path), 1);
    ck_assert_msg(rename(other, path) == 0, "rename: %s", strerror(errno));
    ck_assert_int_eq(st_same_file(&f, path), 0); /* what dpo info checks before listing */
    memset(&e, 0, sizeof e);
    ck_assert_msg(st_read_f32(&f, st_find(&f, "a"), out, &e) == 0, "%s", e.msg);
    for (i = 0; i < 300; i++) ck_assert_float_eq(out[i], (float)i);
    ck_assert_msg(st_read_raw(&f, st_find(&f, "b"), raw, &e) == 0, "%s", e.msg);
    for (i = 0; i < 5; i++) {
        float x;
        uint32_t u = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
                     (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;
        x = float_of(u);
        ck_assert_float_eq(x, 100.0f + (float)i);
    }
    st_close(&f);
    ck_assert_int_eq(f.fd, -1);
    /* opened again, the path now gives the other file's data */
    OPEN_OK(&f, path);
    ck_assert_msg(st_read_f32(&f, st_find(&f, "a"), out, &e) == 0, "%s", e.msg);
    ck_assert_float_eq(out[0], 1000.0f);
    ck_assert_float_eq(out[299], 1299.0f);
    st_close(&f);
}
END_TEST

/* A file that grows after st_open is refused at the next read (its size is
 * checked against the size fstat gave at open). */
START_TEST(test_grown_after_open) {
    char path[128], want[256];
    float out[300];
    unsigned char raw[1200];
    st_file f;
    dpo_err e;
    FILE *fp;
    snprintf(path, sizeof path, "%s/g.safetensors", tmp_root);
    write_ab(path, 0.0f, 100.0f);
    OPEN_OK(&f, path);
    fp = fopen(path, "ab");
    ck_assert_ptr_nonnull(fp);
    ck_assert(fputs("0123456789", fp) >= 0);
    ck_assert_int_eq(fclose(fp), 0);
    snprintf(want, sizeof want, "%s: tensor \"a\": the file changed since it was opened (%zu bytes then, %zu now",
             path, f.file_size, f.file_size + 10);
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(st_read_f32(&f, st_find(&f, "a"), out, &e), -1);
    ck_assert_msg(strstr(e.msg, want) != NULL, "got \"%s\", want \"%s\"", e.msg, want);
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(st_read_raw(&f, st_find(&f, "a"), raw, &e), -1);
    ck_assert_msg(strstr(e.msg, want) != NULL, "got \"%s\", want \"%s\"", e.msg, want);
    st_close(&f);
}
END_TEST

/* A path that is not a regular file is refused at once with what it is; a
 * FIFO without a writer must not block the open. */
START_TEST(test_not_regular_file) {
    char path[128], want[256];
    double t0;
    snprintf(path, sizeof path, "%s/dir.safetensors", tmp_root);
    ck_assert_int_eq(mkdir(path, 0777), 0);
    snprintf(want, sizeof want, "%s: not a regular file (a directory)", path);
    EXPECT_OPEN_FAIL(path, want);
    snprintf(path, sizeof path, "%s/fifo.safetensors", tmp_root);
    ck_assert_msg(mkfifo(path, 0666) == 0, "mkfifo: %s", strerror(errno));
    snprintf(want, sizeof want, "%s: not a regular file (a FIFO)", path);
    t0 = util_seconds();
    EXPECT_OPEN_FAIL(path, want);
    ck_assert(util_seconds() - t0 < 1.0);
    EXPECT_OPEN_FAIL("/dev/null", "/dev/null: not a regular file (a character device)");
}
END_TEST

/* ======================================================================== */
/* hostile files                                                             */
/* ======================================================================== */

#define T4(name, dtype, shape, offs) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

START_TEST(test_hostile_framing) {
    const char *dir = tmp_root;
    char path[128];
    static const char hdr[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    snprintf(path, sizeof path, "%s/h.safetensors", dir);

    /* missing file */
    EXPECT_OPEN_FAIL(path, "cannot open");
    /* empty, and shorter than the 8-byte length */
    testutil_write_bytes(path, "", 0);
    EXPECT_OPEN_FAIL(path, "truncated");
    testutil_write_bytes(path, "\x02\x00\x00\x00\x00", 5);
    EXPECT_OPEN_FAIL(path, "truncated");
    testutil_write_bytes(path, "\x02\x00\x00\x00\x00\x00\x00", 7);
    EXPECT_OPEN_FAIL(path, "truncated");
    /* exactly the length field, claiming a 0-byte header */
    write_raw_len(path, 0, "", 0, 0);
    EXPECT_OPEN_FAIL(path, "header length");
    /* header length larger than the file (by one byte, and by far) */
    write_raw_len(path, sizeof hdr, hdr, sizeof hdr - 1, 0);
    EXPECT_OPEN_FAIL(path, "header length");
    write_raw_len(path, 1000, hdr, sizeof hdr - 1, 4);
    EXPECT_OPEN_FAIL(path, "header length");
    /* 2^63, and 2^64 - 1: no allocation, no wrap-around */
    write_raw_len(path, (uint64_t)1 << 63, hdr, sizeof hdr - 1, 4);
    EXPECT_OPEN_FAIL(path, "header length");
    write_raw_len(path, UINT64_MAX, hdr, sizeof hdr - 1, 4);
    EXPECT_OPEN_FAIL(path, "header length");
    /* length 1: too short for any JSON object */
    write_raw_len(path, 1, "{", 1, 0);
    EXPECT_OPEN_FAIL(path, "header length");
    /* header does not start with '{' (leading space, or an array, or a string) */
    HOSTILE(path, " {}     ", 0, "'{'");
    HOSTILE(path, "[1, 2]", 0, "'{'");
    HOSTILE(path, "\"{}\"", 0, "'{'");
    /* invalid JSON: the JSON reader's message, with its position */
    HOSTILE(path, "{\"a\": }", 0, "line 1, column 7");
    HOSTILE(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "line 1");
    HOSTILE(path, "{} x", 0, "line 1");
    /* NUL padding: bytes after the object that are not JSON whitespace */
    write_raw_len(path, 8, "{}\0\0\0\0\0\0", 8, 0);
    EXPECT_OPEN_FAIL(path, "line 1");
    /* a valid header followed by bytes nobody describes */
    HOSTILE(path, "{}", 3, "3 bytes after the last tensor");
    HOSTILE(path, hdr, 5, "1 bytes after the last tensor");
    /* __metadata__ that is not an object */
    HOSTILE(path, "{\"__metadata__\":[1]}", 0, "__metadata__");
    /* nesting far deeper than the JSON reader's limit: an error, not a stack overflow */
    {
        char deep[5 + 2 * 5000 + 2];
        size_t k, len = 0;
        memcpy(deep, "{\"a\":", 5);
        len = 5;
        for (k = 0; k < 5000; k++) deep[len++] = '[';
        for (k = 0; k < 5000; k++) deep[len++] = ']';
        deep[len++] = '}';
        deep[len] = '\0';
        HOSTILE(path, deep, 0, "nesting depth exceeds");
    }
}
END_TEST

START_TEST(test_hostile_entries) {
    const char *dir = tmp_root;
    char path[128];
    snprintf(path, sizeof path, "%s/h.safetensors", dir);

    /* entry type and keys */
    HOSTILE(path, "{\"a\":[1]}", 0, "\"a\": entry is not an object");
    HOSTILE(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
            "exactly dtype, shape and data_offsets");
    HOSTILE(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "exactly dtype, shape and data_offsets");
    HOSTILE(path, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"offsets\":[0,4]}}", 4,
            "exactly dtype, shape and data_offsets");
    /* dtype */
    HOSTILE(path, "{" T4("a", "F8", "[1]", "[0,1]") "}", 1, "\"a\": unknown dtype \"F8\"");
    HOSTILE(path, "{" T4("a", "f32", "[1]", "[0,4]") "}", 4, "unknown dtype");
    HOSTILE(path, "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype is not a string");
    /* shape: negative, fractional, string, exponent, null, not an array, too many dims */
    HOSTILE(path, "{" T4("a", "F32", "[-1]", "[0,4]") "}", 4, "shape[0] is not a non-negative integer");
    HOSTILE(path, "{" T4("a", "F32", "[2, 2.5]", "[0,20]") "}", 20, "shape[1]");
    HOSTILE(path, "{" T4("a", "F32", "[\"2\"]", "[0,8]") "}", 8, "shape[0]");
    HOSTILE(path, "{" T4("a", "F32", "[1e0]", "[0,4]") "}", 4, "shape[0]");
    HOSTILE(path, "{" T4("a", "F32", "[null]", "[0,4]") "}", 4, "shape[0]");
    HOSTILE(path, "{" T4("a", "F32", "1", "[0,4]") "}", 4, "shape must be an array");
    HOSTILE(path, "{" T4("a", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4, "at most 8");
    /* shape whose element count overflows size_t (2^32 * 2^32 * 16) */
    HOSTILE(path, "{" T4("a", "F32", "[4294967296,4294967296,16]", "[0,4]") "}", 4, "shape overflows");
    /* a size above 2^53 cannot be read exactly from a JSON number */
    HOSTILE(path, "{" T4("a", "U8", "[18014398509481984]", "[0,4]") "}", 4, "shape[0]");

    /* data_offsets */
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[4,0]") "}", 4, "data_offsets [4, 0] out of range");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,8]") "}", 4, "data_offsets [0, 8] out of range");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[4,8]") "}", 4, "out of range");
    HOSTILE(path, "{" T4("a", "F32", "[2]", "[0,4]") "}", 4, "4 bytes at data_offsets, but shape and dtype need 8");
    HOSTILE(path, "{" T4("a", "F16", "[3]", "[0,4]") "}", 4, "need 6");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0]") "}", 4, "data_offsets must be two non-negative integers");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,4,4]") "}", 4, "data_offsets must be");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[-4,0]") "}", 4, "data_offsets must be");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,4.0]") "}", 4, "data_offsets must be");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,\"4\"]") "}", 4, "data_offsets must be");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "{}") "}", 4, "data_offsets must be");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,18446744073709551620]") "}", 4, "data_offsets must be");

    /* tiling of the data section */
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,4]") "," T4("b", "F32", "[1]", "[2,6]") "}", 6,
            "\"b\": data overlaps the tensor before it");
    HOSTILE(path, "{" T4("a", "F32", "[2]", "[0,8]") "," T4("b", "F32", "[1]", "[0,4]") "}", 8,
            "overlaps");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,4]") "," T4("b", "F32", "[1]", "[0,4]") "}", 4,
            "overlaps");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,4]") "," T4("b", "F32", "[1]", "[8,12]") "}", 12,
            "\"b\": gap of 4 bytes before its data");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[4,8]") "}", 8, "\"a\": gap of 4 bytes");
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,4]") "," T4("b", "F32", "[1]", "[4,8]") "}", 10,
            "2 bytes after the last tensor");
    /* an empty tensor inside another one's bytes */
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,4]") "," T4("z", "F32", "[0]", "[2,2]") "}", 4,
            "overlaps");

    /* names */
    HOSTILE(path, "{" T4("a", "F32", "[1]", "[0,4]") "," T4("a", "F32", "[1]", "[4,8]") "}", 8,
            "duplicate key");
    HOSTILE(path, "{" T4("\xFF", "F32", "[1]", "[0,4]") "}", 4, "invalid UTF-8");
    HOSTILE(path, "{" T4("a\xC0\xAF", "F32", "[1]", "[0,4]") "}", 4, "invalid UTF-8"); /* overlong */
    HOSTILE(path, "{" T4("\xED\xA0\x80", "F32", "[1]", "[0,4]") "}", 4, "invalid UTF-8"); /* surrogate */
    HOSTILE(path, "{" T4("", "F32", "[1]", "[0,4]") "}", 4, "empty name");
    HOSTILE(path, "{" T4("a\\u0000b", "F32", "[1]", "[0,4]") "}", 4, "NUL byte in name");
    /* the error names the offending tensor, not just the file */
    HOSTILE(path, "{" T4("good", "F32", "[1]", "[0,4]") "," T4("bad.one", "F32", "[2]", "[4,8]") "}",
            8, "\"bad.one\"");
}
END_TEST

/* An element count that fits in size_t (2^62) but whose byte size (2^62 * 4)
 * does not: the error must say so, not print a byte count that was never
 * computed. */
START_TEST(test_hostile_byte_size_overflow) {
    const char *dir = tmp_root;
    char path[128];
    st_file f;
    dpo_err e;
    int r;
    snprintf(path, sizeof path, "%s/h.safetensors", dir);
    write_raw(path, "{" T4("a", "F32", "[2147483648,2147483648]", "[0,4]") "}", 4);
    memset(&e, 0, sizeof e);
    r = st_open(&f, path, &e);
    st_close(&f);
    ck_assert_int_eq(r, -1);
    ck_assert_msg(strstr(e.msg, path) != NULL && strstr(e.msg, "\"a\"") != NULL, "message: %s", e.msg);
    ck_assert_msg(strstr(e.msg, "overflow") != NULL, "message \"%s\" lacks \"overflow\"", e.msg);
}
END_TEST

/* Well-formed files written by hand that st_open must accept. */
START_TEST(test_accepts_valid_variants) {
    const char *dir = tmp_root;
    char path[128];
    st_file f;
    snprintf(path, sizeof path, "%s/v.safetensors", dir);
    /* no tensors, nothing else */
    write_raw(path, "{}", 0);
    OPEN_OK(&f, path);
    ck_assert_uint_eq(f.n_tensors, 0);
    ck_assert_uint_eq(f.data_start, 10);
    st_close(&f);
    /* tensors listed out of data order, metadata first, trailing spaces, 0-d and empty tensors */
    write_raw(path,
              "{\"__metadata__\":{\"format\":\"pt\"}," T4("b", "F32", "[2]", "[4,12]") ","
              T4("s", "I8", "[]", "[12,13]") "," T4("e", "F64", "[0,5]", "[13,13]") ","
              T4("a", "BF16", "[2]", "[0,4]") "}   ",
              13);
    OPEN_OK(&f, path);
    ck_assert_uint_eq(f.n_tensors, 4);
    /* header order is kept */
    ck_assert_str_eq(f.tensors[0].name, "b");
    ck_assert_str_eq(f.tensors[3].name, "a");
    ck_assert_uint_eq(st_find(&f, "b")->begin, 4);
    ck_assert_uint_eq(st_find(&f, "b")->end, 12);
    ck_assert_int_eq(st_find(&f, "s")->ndim, 0);
    ck_assert_uint_eq(st_find(&f, "s")->numel, 1);
    ck_assert_int_eq(st_find(&f, "e")->dtype, ST_F64);
    ck_assert_uint_eq(st_find(&f, "e")->numel, 0);
    ck_assert_int_eq(st_find(&f, "a")->dtype, ST_BF16);
    {
        /* data bytes are 0, 1, 2, ...: "a" is BF16 0x0100, 0x0302 */
        float out[2];
        dpo_err e;
        ck_assert_msg(st_read_f32(&f, st_find(&f, "a"), out, &e) == 0, "%s", e.msg);
        ck_assert_uint_eq(bits_of(out[0]), 0x01000000u);
        ck_assert_uint_eq(bits_of(out[1]), 0x03020000u);
    }
    st_close(&f);
    /* the largest shape count that still fits in 2^53 with offsets within range: 0 elements */
    write_raw(path, "{" T4("z", "U8", "[9007199254740992,0]", "[0,0]") "}", 0);
    OPEN_OK(&f, path);
    ck_assert_uint_eq(f.tensors[0].shape[0], 9007199254740992u);
    ck_assert_uint_eq(f.tensors[0].numel, 0);
    st_close(&f);
    /* a product with a 0 factor is 0, whatever the other factors: no overflow */
    write_raw(path, "{" T4("z", "F32", "[4294967296,0,4294967296,4294967296]", "[0,0]") "}", 0);
    OPEN_OK(&f, path);
    ck_assert_uint_eq(f.tensors[0].numel, 0);
    ck_assert_int_eq(f.tensors[0].ndim, 4);
    st_close(&f);
    /* 8 dimensions is the limit, and allowed */
    write_raw(path, "{" T4("d", "U8", "[1,1,1,1,1,1,1,2]", "[0,2]") "}", 2);
    OPEN_OK(&f, path);
    ck_assert_int_eq(f.tensors[0].ndim, 8);
    st_close(&f);
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("safetensors");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_f16_known_patterns);
    tcase_add_test(tc, test_f16_exhaustive);
    tcase_add_test(tc, test_bf16_known_and_exhaustive);
    tcase_add_test(tc, test_dtype_table);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_write_into_missing_dir);
    tcase_add_test(tc, test_read_dtypes);
    tcase_add_test(tc, test_truncated_after_open);
    tcase_add_test(tc, test_replaced_after_open);
    tcase_add_test(tc, test_grown_after_open);
    tcase_add_test(tc, test_not_regular_file);
    tcase_add_test(tc, test_hostile_framing);
    tcase_add_test(tc, test_hostile_entries);
    tcase_add_test(tc, test_hostile_byte_size_overflow);
    tcase_add_test(tc, test_accepts_valid_variants);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(make_suite()); }
