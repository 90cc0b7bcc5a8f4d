/* tests/test_model_load.c - Check suite for model_load / model_load_config /
 * model_save (model_io.c) against hostile Hugging Face model directories.
 * A valid tiny model (2 layers, 2 heads, n_embd 8, n_ctx 8, vocab 11) is saved
 * and must load back bit for bit; then every broken variant (bad config.json,
 * missing or truncated model.safetensors, wrong shapes, missing, unknown or
 * duplicated tensors, non-float dtypes, an untied head, a NaN or infinite
 * weight in an F32, F16 or BF16 file) must fail with -1, a
 * message naming the file and the problem, and no model left allocated.
 * Variants of the weights file are written by a small raw safetensors writer
 * in this file (header JSON built here, padded with spaces to a multiple of 8). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"
#include "safetensors.h"
#include "util.h"

/* ======================================================================== */
/* file helpers                                                              */
/* ======================================================================== */

static void path_in(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    ck_assert(n > 0 && (size_t)n < cap);
}

/* a fresh subdirectory of the temporary root */
static void new_dir(char *out, size_t cap, const char *name) {
    path_in(out, cap, tmp_root, name);
    ck_assert_msg(mkdir(out, 0777) == 0, "mkdir %s: %s", out, strerror(errno));
}



static void copy_file(const char *from, const char *to) {
    size_t n;
    unsigned char *b = testutil_read_bytes(from, &n);
    testutil_write_bytes(to, b, n);
    free(b);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char p[4096];
    path_in(p, sizeof p, dir, name);
    testutil_write_bytes(p, text, strlen(text));
}

/* ======================================================================== */
/* the tiny model and its config.json                                        */
/* ======================================================================== */

static const model_config tiny_cfg = {2, 2, 8, 8, 11, 1e-5, 10, 0};

/* config.json of tiny_cfg, as a list of members; a test replaces one member's
 * value, removes it (value NULL) or appends a new key */
static const char *const cfg_keys[] = {"model_type", "activation_function", "n_layer",
                                       "n_head", "n_embd", "n_positions", "vocab_size",
                                       "layer_norm_epsilon", "eos_token_id", "n_inner",
                                       "tie_word_embeddings"};
static const char *const cfg_vals[] = {"\"gpt2\"", "\"gelu_new\"", "2", "2", "8", "8", "11",
                                       "1e-05", "10", "null", "true"};
#define N_CFG ((int)(sizeof cfg_keys / sizeof cfg_keys[0]))

static void build_config(char *buf, size_t cap, const char *key, const char *val) {
    size_t len = 0;
    int i, found = 0, first = 1, n;
    n = snprintf(buf, cap, "{");
    ck_assert(n > 0 && (size_t)n < cap);
    len = (size_t)n;
    for (i = 0; i <= N_CFG; i++) {
        const char *k, *v;
        if (i < N_CFG) {
            k = cfg_keys[i];
            v = cfg_vals[i];
            if (key && strcmp(k, key) == 0) {
                found = 1;
                v = val;
            }
        } else {
            if (!key || found) break;
            k = key;
            v = val;
        }
        if (!v) continue;
        n = snprintf(buf + len, cap - len, "%s\n  \"%s\": %s", first ? "" : ",", k, v);
        ck_assert(n > 0 && (size_t)n < cap - len);
        len += (size_t)n;
        first = 0;
    }
    n = snprintf(buf + len, cap - len, "\n}\n");
    ck_assert(n > 0 && (size_t)n < cap - len);
}

/* the good model: saved into <tmp>/good by the fixture-using tests */
static void make_good(model *m, char *dir, size_t cap) {
    dpo_err e;
    memset(&e, 0, sizeof e);
    ck_assert_msg(model_create(m, &tiny_cfg, &e) == 0, "model_create: %s", e.msg);
    model_init_random(m, 1234);
    path_in(dir, cap, tmp_root, "good");
    ck_assert_msg(model_save(m, dir, &e) == 0, "model_save: %s", e.msg);
}

/* model_load must succeed and give exactly the parameters of want */
static void load_ok_at(const model *want, const char *dir, int line) {
    model m;
    dpo_err e;
    memset(&e, 0, sizeof e);
    ck_assert_msg(model_load(&m, dir, &e) == 0, "test line %d: model_load(%s): %s", line, dir, e.msg);
    ck_assert_int_eq(m.cfg.n_layer, want->cfg.n_layer);
    ck_assert_int_eq(m.cfg.n_head, want->cfg.n_head);
    ck_assert_int_eq(m.cfg.n_embd, want->cfg.n_embd);
    ck_assert_int_eq(m.cfg.n_ctx, want->cfg.n_ctx);
    ck_assert_int_eq(m.cfg.vocab_size, want->cfg.vocab_size);
    ck_assert_int_eq(m.cfg.eos_token_id, want->cfg.eos_token_id);
    ck_assert(m.cfg.ln_eps == want->cfg.ln_eps);
    ck_assert_uint_eq(m.num_params, want->num_params);
    ck_assert_msg(memcmp(m.params_mem, want->params_mem, m.num_params * sizeof(float)) == 0,
                  "test line %d: loaded parameters differ from the saved ones", line);
    model_free(&m);
}
#define LOAD_OK(want, dir) load_ok_at((want), (dir), __LINE__)

/* model_load must fail, name file_name inside dir, and say want; nothing stays allocated */
static void load_fail_at(const char *dir, const char *file_name, const char *want, int line) {
    /* line: the test's source line, or a case number from a table loop */
    model m;
    dpo_err e;
    char p[4096];
    int r;
    path_in(p, sizeof p, dir, file_name);
    memset(&e, 0, sizeof e);
    r = model_load(&m, dir, &e);
    if (r == 0) model_free(&m);
    ck_assert_msg(r == -1, "test line %d: model_load(%s) succeeded; expected \"%s\"", line, dir, want);
    ck_assert_msg(strstr(e.msg, p) != NULL, "test line %d: message does not name %s: \"%s\"", line, p,
                  e.msg);
    ck_assert_msg(strstr(e.msg, want) != NULL, "test line %d: message \"%s\" lacks \"%s\"", line,
                  e.msg, want);
    ck_assert_msg(m.params_mem == NULL && m.grads_mem == NULL && m.acts_mem == NULL,
                  "test line %d: a failed load left memory allocated", line);
}
#define LOAD_FAIL(dir, file, want) load_fail_at((dir), (file), (want), __LINE__)

/* ======================================================================== */
/* a raw safetensors writer                                                  */
/* ======================================================================== */

typedef struct {
    char name[96];
    char dtype[8];
    int ndim;
    size_t shape[4];
    unsigned char *data; /* owned */
    size_t nbytes;
} raw_tensor;

typedef struct {
    raw_tensor t[64];
    int n;
} raw_set;

static void raw_free(raw_set *s) {
    int i;
    for (i = 0; i < s->n; i++) free(s->t[i].data);
    s->n = 0;
}

static raw_tensor *raw_add(raw_set *s, const char *name, const char *dtype, int ndim,
                           const size_t *shape, const void *data, size_t nbytes) {
    raw_tensor *t;
    ck_assert_int_lt(s->n, 64);
    t = &s->t[s->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    t->data = malloc(nbytes ? nbytes : 1);
    ck_assert_ptr_nonnull(t->data);
    if (nbytes) memcpy(t->data, data, nbytes);
    t->nbytes = nbytes;
    return t;
}

static void raw_remove(raw_set *s, const char *name) {
    int i;
    for (i = 0; i < s->n; i++) {
        if (strcmp(s->t[i].name, name) == 0) {
            free(s->t[i].data);
            memmove(&s->t[i], &s->t[i + 1], (size_t)(s->n - i - 1) * sizeof s->t[0]);
            s->n--;
            return;
        }
    }
    ck_abort_msg("no tensor %s to remove", name);
}

static raw_tensor *raw_get(raw_set *s, const char *name) {
    int i;
    for (i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0) return &s->t[i];
    ck_abort_msg("no tensor %s", name);
    return NULL;
}

/* every tensor of a safetensors file, in header order, with its raw bytes */
static void raw_read(raw_set *s, const char *path) {
    st_file f;
    dpo_err e;
    size_t i;
    memset(&e, 0, sizeof e);
    s->n = 0;
    ck_assert_msg(st_open(&f, path, &e) == 0, "st_open: %s", e.msg);
    for (i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        size_t nb = t->end - t->begin;
        unsigned char *buf = malloc(nb ? nb : 1);
        ck_assert_ptr_nonnull(buf);
        ck_assert_msg(st_read_raw(&f, t, buf, &e) == 0, "st_read_raw: %s", e.msg);
        raw_add(s, t->name, st_dtype_name(t->dtype), t->ndim, t->shape, buf, nb);
        free(buf);
    }
    st_close(&f);
}

/* Write the set as a safetensors file. Tensors appear in the header in set
 * order; their data is laid out in set order, or reversed when reverse_data. */
static void raw_write(const raw_set *s, const char *path, int reverse_data) {
    size_t cap = 65536, len = 0, off = 0, total, k, offs[64];
    char *hdr = malloc(cap);
    unsigned char *file;
    int i, j, n;
    ck_assert_ptr_nonnull(hdr);
    for (k = 0; k < (size_t)s->n; k++) {
        i = reverse_data ? s->n - 1 - (int)k : (int)k;
        offs[i] = off;
        off += s->t[i].nbytes;
    }
    n = snprintf(hdr, cap, "{\"__metadata__\":{\"format\":\"pt\"}");
    len = (size_t)n;
    for (i = 0; i < s->n; i++) {
        const raw_tensor *t = &s->t[i];
        n = snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, t->dtype);
        ck_assert(n > 0 && (size_t)n < cap - len);
        len += (size_t)n;
        for (j = 0; j < t->ndim; j++) {
            n = snprintf(hdr + len, cap - len, "%s%zu", j ? "," : "", t->shape[j]);
            ck_assert(n > 0 && (size_t)n < cap - len);
            len += (size_t)n;
        }
        n = snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", offs[i],
                     offs[i] + t->nbytes);
        ck_assert(n > 0 && (size_t)n < cap - len);
        len += (size_t)n;
    }
    ck_assert(len + 9 < cap);
    hdr[len++] = '}';
    while (len % 8) hdr[len++] = ' ';
    total = 8 + len + off;
    file = malloc(total);
    ck_assert_ptr_nonnull(file);
    for (k = 0; k < 8; k++) file[k] = (unsigned char)((uint64_t)len >> (8 * k));
    memcpy(file + 8, hdr, len);
    for (i = 0; i < s->n; i++) memcpy(file + 8 + len + offs[i], s->t[i].data, s->t[i].nbytes);
    testutil_write_bytes(path, file, total);
    free(file);
    free(hdr);
}

/* a directory holding the good config.json and the given tensor set */
static void write_variant(char *dir, size_t cap, const char *name, const char *good,
                          const raw_set *s, int reverse_data) {
    char from[4096], to[4096];
    new_dir(dir, cap, name);
    path_in(from, sizeof from, good, "config.json");
    path_in(to, sizeof to, dir, "config.json");
    copy_file(from, to);
    path_in(to, sizeof to, dir, "model.safetensors");
    raw_write(s, to, reverse_data);
}

/* ======================================================================== */
/* the valid model                                                           */
/* ======================================================================== */

/* HF's names and shapes for the tiny config, written out by hand */
static const struct {
    const char *suffix;
    int rows, cols; /* cols 0: a vector */
} layer_tensors[12] = {
    {"ln_1.weight", 8, 0},         {"ln_1.bias", 8, 0},         {"attn.c_attn.weight", 8, 24},
    {"attn.c_attn.bias", 24, 0},   {"attn.c_proj.weight", 8, 8}, {"attn.c_proj.bias", 8, 0},
    {"ln_2.weight", 8, 0},         {"ln_2.bias", 8, 0},         {"mlp.c_fc.weight", 8, 32},
    {"mlp.c_fc.bias", 32, 0},      {"mlp.c_proj.weight", 32, 8}, {"mlp.c_proj.bias", 8, 0},
};

START_TEST(test_valid_model_roundtrip) {
    model m;
    model_config c;
    char good[4096], p[4096];
    dpo_err e;
    st_file f;
    int l, j;
    make_good(&m, good, sizeof good);
    LOAD_OK(&m, good);

    memset(&e, 0, sizeof e);
    ck_assert_msg(model_load_config(good, &c, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(c.n_layer, 2);
    ck_assert_int_eq(c.n_head, 2);
    ck_assert_int_eq(c.n_embd, 8);
    ck_assert_int_eq(c.n_ctx, 8);
    ck_assert_int_eq(c.vocab_size, 11);
    ck_assert_int_eq(c.eos_token_id, 10);
    ck_assert(c.ln_eps == 1e-5);

    /* the file holds exactly HF's 28 tensors, F32, "transformer." names, HF shapes */
    path_in(p, sizeof p, good, "model.safetensors");
    ck_assert_msg(st_open(&f, p, &e) == 0, "%s", e.msg);
    ck_assert_uint_eq(f.n_tensors, 28);
    {
        const st_tensor *t;
        t = st_find(&f, "transformer.wte.weight");
        ck_assert(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 11 && t->shape[1] == 8);
        t = st_find(&f, "transformer.wpe.weight");
        ck_assert(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 8 && t->shape[1] == 8);
        t = st_find(&f, "transformer.ln_f.weight");
        ck_assert(t && t->dtype == ST_F32 && t->ndim == 1 && t->shape[0] == 8);
        t = st_find(&f, "transformer.ln_f.bias");
        ck_assert(t && t->dtype == ST_F32 && t->ndim == 1 && t->shape[0] == 8);
        for (l = 0; l < 2; l++) {
            for (j = 0; j < 12; j++) {
                char name[96];
                snprintf(name, sizeof name, "transformer.h.%d.%s", l, layer_tensors[j].suffix);
                t = st_find(&f, name);
                ck_assert_msg(t != NULL, "missing %s", name);
                ck_assert_msg(t->dtype == ST_F32, "%s: dtype", name);
                if (layer_tensors[j].cols) {
                    ck_assert_msg(t->ndim == 2 && t->shape[0] == (size_t)layer_tensors[j].rows &&
                                      t->shape[1] == (size_t)layer_tensors[j].cols,
                                  "%s: shape", name);
                } else {
                    ck_assert_msg(t->ndim == 1 && t->shape[0] == (size_t)layer_tensors[j].rows,
                                  "%s: shape", name);
                }
            }
        }
        /* the values: LayerNorm gains are 1, biases 0, weights random and small */
        {
            float v[256];
            size_t k;
            int nonzero = 0;
            t = st_find(&f, "transformer.h.1.ln_2.weight");
            ck_assert(st_read_f32(&f, t, v, &e) == 0);
            for (k = 0; k < 8; k++) ck_assert(v[k] == 1.0f);
            t = st_find(&f, "transformer.h.0.attn.c_attn.bias");
            ck_assert(st_read_f32(&f, t, v, &e) == 0);
            for (k = 0; k < 24; k++) ck_assert(v[k] == 0.0f);
            t = st_find(&f, "transformer.h.1.mlp.c_fc.weight");
            ck_assert(st_read_f32(&f, t, v, &e) == 0);
            for (k = 0; k < 256; k++) {
                ck_assert(v[k] > -0.2f && v[k] < 0.2f); /* 10 standard deviations of 0.02 */
                nonzero += v[k] != 0.0f;
            }
            ck_assert_int_eq(nonzero, 256);
        }
    }
    st_close(&f);
    model_free(&m);
}
END_TEST

/* ======================================================================== */
/* config.json                                                               */
/* ======================================================================== */

static const struct {
    const char *key, *val; /* val NULL: the key is removed */
    const char *want;
} bad_configs[] = {
    {"n_layer", "1000000000", "\"n_layer\": expected an integer in [1, 256]"},
    {"n_layer", "0", "\"n_layer\": expected an integer in [1, 256]"},
    {"n_layer", "-2", "\"n_layer\""},
    {"n_layer", "2.5", "\"n_layer\""},
    {"n_layer", "2.0", "\"n_layer\""},
    {"n_layer", "\"2\"", "\"n_layer\""},
    {"n_layer", "null", "\"n_layer\""},
    {"n_layer", NULL, "missing key \"n_layer\""},
    {"n_head", "0", "\"n_head\""},
    {"n_head", "3", "n_embd = 8 is not a multiple of n_head = 3"},
    {"n_embd", "9", "n_embd = 9 is not a multiple of n_head = 2"},
    {"n_embd", "100000", "\"n_embd\""},
    {"n_positions", "0", "\"n_positions\""},
    {"n_positions", NULL, "missing key \"n_positions\""},
    {"vocab_size", NULL, "missing key \"vocab_size\""},
    {"vocab_size", "-11", "\"vocab_size\""},
    {"vocab_size", "5", "\"eos_token_id\""}, /* eos 10 is not below 5 */
    {"eos_token_id", "11", "\"eos_token_id\""},
    {"model_type", "\"llama\"", "model_type is \"llama\""},
    {"model_type", "2", "\"model_type\": expected a string"},
    {"activation_function", "\"relu\"", "activation_function is \"relu\""},
    {"n_inner", "7", "n_inner"},
    {"n_inner", "\"32\"", "n_inner"},
    {"layer_norm_epsilon", "0", "layer_norm_epsilon"},
    {"layer_norm_epsilon", "-1", "layer_norm_epsilon"},
    {"layer_norm_epsilon", "1", "layer_norm_epsilon"},
    {"layer_norm_epsilon", "\"1e-5\"", "\"layer_norm_epsilon\": expected a number"},
    {"tie_word_embeddings", "false", "tie_word_embeddings"},
    {"tie_word_embeddings", "1", "\"tie_word_embeddings\": expected true or false"},
    {"scale_attn_by_inverse_layer_idx", "true", "scale_attn_by_inverse_layer_idx"},
    {"scale_attn_weights", "false", "scale_attn_weights"},
    {"add_cross_attention", "true", "add_cross_attention"},
};

START_TEST(test_config_hostile) {
    model m;
    char good[4096], dir[4096], cfgpath[4096], text[4096], weights[4096], name[32];
    size_t i;
    make_good(&m, good, sizeof good);
    path_in(weights, sizeof weights, good, "model.safetensors");
    for (i = 0; i < sizeof bad_configs / sizeof bad_configs[0]; i++) {
        model_config c;
        dpo_err e;
        snprintf(name, sizeof name, "cfg%zu", i);
        new_dir(dir, sizeof dir, name);
        build_config(text, sizeof text, bad_configs[i].key, bad_configs[i].val);
        write_text(dir, "config.json", text);
        path_in(cfgpath, sizeof cfgpath, dir, "model.safetensors");
        copy_file(weights, cfgpath);
        load_fail_at(dir, "config.json", bad_configs[i].want, (int)i); /* "test line" = case i */
        /* model_load_config says the same */
        path_in(cfgpath, sizeof cfgpath, dir, "config.json");
        memset(&e, 0, sizeof e);
        ck_assert_msg(model_load_config(dir, &c, &e) == -1, "case %zu: model_load_config succeeded", i);
        ck_assert_msg(strstr(e.msg, cfgpath) && strstr(e.msg, bad_configs[i].want),
                      "case %zu: message \"%s\"", i, e.msg);
    }
    model_free(&m);
}
END_TEST

START_TEST(test_config_file_hostile) {
    model m;
    char good[4096], dir[4096], p[4096], weights[4096];
    char *big;
    size_t k;
    make_good(&m, good, sizeof good);
    path_in(weights, sizeof weights, good, "model.safetensors");

    /* config.json missing */
    new_dir(dir, sizeof dir, "nocfg");
    path_in(p, sizeof p, dir, "model.safetensors");
    copy_file(weights, p);
    LOAD_FAIL(dir, "config.json", "cannot open");
    /* empty, malformed, not an object */
    write_text(dir, "config.json", "");
    LOAD_FAIL(dir, "config.json", "line 1");
    write_text(dir, "config.json", "{\"n_layer\": 2,");
    LOAD_FAIL(dir, "config.json", "line 1");
    write_text(dir, "config.json", "{\"n_layer\": 2, \"n_layer\": 3}");
    LOAD_FAIL(dir, "config.json", "duplicate key");
    write_text(dir, "config.json", "[1, 2]");
    LOAD_FAIL(dir, "config.json", "not a JSON object");
    write_text(dir, "config.json", "\"gpt2\"");
    LOAD_FAIL(dir, "config.json", "not a JSON object");
    /* larger than the 1 MiB a config may have: refused before parsing */
    big = malloc((1u << 20) + 16);
    ck_assert_ptr_nonnull(big);
    big[0] = '{';
    for (k = 1; k < (1u << 20) + 8; k++) big[k] = ' ';
    big[k++] = '}';
    big[k] = '\0';
    write_text(dir, "config.json", big);
    free(big);
    LOAD_FAIL(dir, "config.json", "larger than the limit");
    /* a directory that does not exist */
    path_in(p, sizeof p, tmp_root, "no-such-dir");
    LOAD_FAIL(p, "config.json", "cannot open");
    model_free(&m);
}
END_TEST

/* configs that differ from the saved one but describe the same model */
START_TEST(test_config_accepted_variants) {
    model m;
    char good[4096], dir[4096], p[4096], weights[4096], text[4096];
    make_good(&m, good, sizeof good);
    path_in(weights, sizeof weights, good, "model.safetensors");
    new_dir(dir, sizeof dir, "ok");
    path_in(p, sizeof p, dir, "model.safetensors");
    copy_file(weights, p);
    build_config(text, sizeof text, "n_inner", "32"); /* 4 * n_embd */
    write_text(dir, "config.json", text);
    LOAD_OK(&m, dir);
    build_config(text, sizeof text, "activation_function", "\"gelu_pytorch_tanh\"");
    write_text(dir, "config.json", text);
    LOAD_OK(&m, dir);
    build_config(text, sizeof text, "model_type", NULL);
    write_text(dir, "config.json", text);
    LOAD_OK(&m, dir);
    /* the old name of n_positions */
    write_text(dir, "config.json",
               "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 8, \"n_ctx\": 8, \"vocab_size\": 11, "
               "\"eos_token_id\": 10}");
    LOAD_OK(&m, dir);
    model_free(&m);
}
END_TEST

/* ======================================================================== */
/* model.safetensors                                                         */
/* ======================================================================== */

START_TEST(test_weights_missing_and_truncated) {
    model m;
    char good[4096], dir[4096], from[4096], p[4096];
    unsigned char *bytes;
    size_t n, hlen, k, cuts[6];
    const char *want[6] = {"truncated", "truncated", "header length", "header length",
                           "out of range", "out of range"};
    int i;
    make_good(&m, good, sizeof good);
    new_dir(dir, sizeof dir, "w");
    path_in(from, sizeof from, good, "config.json");
    path_in(p, sizeof p, dir, "config.json");
    copy_file(from, p);
    /* model.safetensors missing */
    LOAD_FAIL(dir, "model.safetensors", "cannot open");

    path_in(from, sizeof from, good, "model.safetensors");
    bytes = testutil_read_bytes(from, &n);
    for (hlen = 0, k = 0; k < 8; k++) hlen |= (size_t)bytes[k] << (8 * k);
    /* the cut points fall where the messages below expect them */
    ck_assert_msg(8 + hlen > 100 && 8 + hlen < n / 2, "header %zu, file %zu", hlen, n);
    cuts[0] = 1;
    cuts[1] = 7;
    cuts[2] = 8;
    cuts[3] = 100;
    cuts[4] = n / 2;
    cuts[5] = n - 1;
    path_in(p, sizeof p, dir, "model.safetensors");
    for (i = 0; i < 6; i++) {
        testutil_write_bytes(p, bytes, cuts[i]);
        load_fail_at(dir, "model.safetensors", want[i], 1000 + i);
    }
    /* header length beyond the end of the file */
    {
        unsigned char *copy = malloc(n);
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, bytes, n);
        for (k = 0; k < 8; k++) copy[k] = (unsigned char)((uint64_t)(n - 7) >> (8 * k));
        testutil_write_bytes(p, copy, n);
        LOAD_FAIL(dir, "model.safetensors", "header length");
        /* and a header length of 2^63 */
        for (k = 0; k < 8; k++) copy[k] = k == 7 ? 0x80 : 0;
        testutil_write_bytes(p, copy, n);
        LOAD_FAIL(dir, "model.safetensors", "header length");
        free(copy);
    }
    /* a directory in place of the file */
    ck_assert(remove(p) == 0);
    ck_assert(mkdir(p, 0777) == 0);
    {
        model m2;
        dpo_err e;
        memset(&e, 0, sizeof e);
        ck_assert_int_eq(model_load(&m2, dir, &e), -1);
        ck_assert_msg(strstr(e.msg, p) != NULL, "message: %s", e.msg);
        ck_assert_ptr_null(m2.params_mem);
    }
    free(bytes);
    model_free(&m);
}
END_TEST

START_TEST(test_weights_wrong_shape) {
    model m, big;
    model_config c16 = tiny_cfg;
    char good[4096], dir16[4096], dir[4096], from[4096], to[4096];
    dpo_err e;
    make_good(&m, good, sizeof good);
    /* the same architecture with n_embd 16, saved, its weights paired with the n_embd 8 config */
    c16.n_embd = 16;
    memset(&e, 0, sizeof e);
    ck_assert_msg(model_create(&big, &c16, &e) == 0, "%s", e.msg);
    model_init_random(&big, 5);
    path_in(dir16, sizeof dir16, tmp_root, "c16");
    ck_assert_msg(model_save(&big, dir16, &e) == 0, "%s", e.msg);
    model_free(&big);
    new_dir(dir, sizeof dir, "mix");
    path_in(from, sizeof from, good, "config.json");
    path_in(to, sizeof to, dir, "config.json");
    copy_file(from, to);
    path_in(from, sizeof from, dir16, "model.safetensors");
    path_in(to, sizeof to, dir, "model.safetensors");
    copy_file(from, to);
    LOAD_FAIL(dir, "model.safetensors", "shape must be (11, 8)");
    /* and the other way round: n_embd 16 config, n_embd 8 weights */
    path_in(from, sizeof from, dir16, "config.json");
    path_in(to, sizeof to, dir, "config.json");
    copy_file(from, to);
    path_in(from, sizeof from, good, "model.safetensors");
    path_in(to, sizeof to, dir, "model.safetensors");
    copy_file(from, to);
    LOAD_FAIL(dir, "model.safetensors", "shape must be (11, 16)");
    model_free(&m);
}
END_TEST

/* A valid config that asks for a huge model (13.6 G parameters, 54 GB) paired
 * with the tiny weights file: the mismatch must be found from the header
 * alone, before anything is allocated for the config (an allocation first
 * would fail with "out of memory", or take the machine's memory). */
START_TEST(test_huge_config_fails_before_alloc) {
    model m;
    model_config c;
    char good[4096], dir[4096], from[4096], to[4096];
    dpo_err e;
    make_good(&m, good, sizeof good);
    new_dir(dir, sizeof dir, "huge");
    path_in(from, sizeof from, good, "model.safetensors");
    path_in(to, sizeof to, dir, "model.safetensors");
    copy_file(from, to);
    write_text(dir, "config.json",
               "{\"model_type\": \"gpt2\", \"n_layer\": 64, \"n_head\": 32, \"n_embd\": 4096, "
               "\"n_positions\": 65536, \"vocab_size\": 50257, \"eos_token_id\": 50256}");
    memset(&e, 0, sizeof e);
    ck_assert_msg(model_load_config(dir, &c, &e) == 0, "the config itself is valid: %s", e.msg);
    ck_assert_int_eq(c.n_layer, 64);
    ck_assert_int_eq(c.n_embd, 4096);
    LOAD_FAIL(dir, "model.safetensors", "tensor \"transformer.wte.weight\": shape must be (50257, 4096)");
    model_free(&m);
}
END_TEST

/* config with more or fewer layers than the file */
START_TEST(test_weights_layer_count_mismatch) {
    model m;
    char good[4096], dir[4096], from[4096], to[4096], text[4096];
    make_good(&m, good, sizeof good);
    new_dir(dir, sizeof dir, "l3");
    path_in(from, sizeof from, good, "model.safetensors");
    path_in(to, sizeof to, dir, "model.safetensors");
    copy_file(from, to);
    build_config(text, sizeof text, "n_layer", "3");
    write_text(dir, "config.json", text);
    LOAD_FAIL(dir, "model.safetensors", "missing tensor \"transformer.h.2.ln_1.weight\"");
    build_config(text, sizeof text, "n_layer", "1");
    write_text(dir, "config.json", text);
    LOAD_FAIL(dir, "model.safetensors", "tensor \"transformer.h.1.");
    LOAD_FAIL(dir, "model.safetensors", "is not part of a GPT-2 model with this config");
    model_free(&m);
}
END_TEST

START_TEST(test_weights_bad_tensor_sets) {
    model m;
    raw_set s;
    char good[4096], dir[4096], p[4096];
    size_t shape[4];
    unsigned char zeros[64];
    memset(zeros, 0, sizeof zeros);
    make_good(&m, good, sizeof good);
    path_in(p, sizeof p, good, "model.safetensors");

    /* the raw writer itself reproduces a loadable file (in reversed data order, too) */
    raw_read(&s, p);
    ck_assert_int_eq(s.n, 28);
    write_variant(dir, sizeof dir, "same", good, &s, 1);
    LOAD_OK(&m, dir);

    /* a missing tensor */
    raw_remove(&s, "transformer.h.1.mlp.c_fc.bias");
    write_variant(dir, sizeof dir, "missing", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "missing tensor \"transformer.h.1.mlp.c_fc.bias\"");
    raw_free(&s);

    /* an unknown extra tensor */
    raw_read(&s, p);
    shape[0] = 8;
    raw_add(&s, "transformer.h.0.attn.rotary", "F32", 1, shape, zeros, 32);
    write_variant(dir, sizeof dir, "extra", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors",
              "tensor \"transformer.h.0.attn.rotary\" is not part of a GPT-2 model");
    raw_free(&s);
    /* a layer index beyond n_layer */
    raw_read(&s, p);
    raw_add(&s, "transformer.h.2.ln_1.weight", "F32", 1, shape, zeros, 32);
    write_variant(dir, sizeof dir, "extra2", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "\"transformer.h.2.ln_1.weight\" is not part");
    raw_free(&s);

    /* the same tensor with and without the prefix */
    raw_read(&s, p);
    {
        raw_tensor *t = raw_get(&s, "transformer.ln_f.bias");
        raw_add(&s, "ln_f.bias", "F32", 1, t->shape, t->data, t->nbytes);
    }
    write_variant(dir, sizeof dir, "dup", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "\"ln_f.bias\" appears twice");
    raw_free(&s);

    /* a tensor with dtype I32 (right shape and size), and one with F64 */
    raw_read(&s, p);
    snprintf(raw_get(&s, "transformer.h.0.ln_2.bias")->dtype, 8, "%s", "I32");
    write_variant(dir, sizeof dir, "i32", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "tensor \"transformer.h.0.ln_2.bias\": dtype I32");
    raw_free(&s);
    raw_read(&s, p);
    {
        unsigned char d64[64];
        memset(d64, 0, sizeof d64);
        shape[0] = 8;
        raw_remove(&s, "transformer.ln_f.weight");
        raw_add(&s, "transformer.ln_f.weight", "F64", 1, shape, d64, 64);
    }
    write_variant(dir, sizeof dir, "f64", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "dtype F64");
    raw_free(&s);

    /* a transposed Conv1D weight (HF Linear layout): same bytes, shape (24, 8) */
    raw_read(&s, p);
    {
        raw_tensor *t = raw_get(&s, "transformer.h.1.attn.c_attn.weight");
        t->shape[0] = 24;
        t->shape[1] = 8;
    }
    write_variant(dir, sizeof dir, "transposed", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "\"transformer.h.1.attn.c_attn.weight\": shape must be (8, 24)");
    raw_free(&s);
    /* a vector stored as a (1, 8) matrix */
    raw_read(&s, p);
    {
        raw_tensor *t = raw_get(&s, "transformer.h.0.ln_1.weight");
        t->ndim = 2;
        t->shape[0] = 1;
        t->shape[1] = 8;
    }
    write_variant(dir, sizeof dir, "rank", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "\"transformer.h.0.ln_1.weight\": shape must be (8)");
    raw_free(&s);
    model_free(&m);
}
END_TEST

START_TEST(test_weights_lm_head) {
    model m;
    raw_set s;
    char good[4096], dir[4096], p[4096];
    make_good(&m, good, sizeof good);
    path_in(p, sizeof p, good, "model.safetensors");

    /* lm_head.weight equal to wte: loads */
    raw_read(&s, p);
    {
        raw_tensor *w = raw_get(&s, "transformer.wte.weight");
        raw_add(&s, "lm_head.weight", "F32", 2, w->shape, w->data, w->nbytes);
    }
    write_variant(dir, sizeof dir, "tied", good, &s, 0);
    LOAD_OK(&m, dir);
    /* one element different (in the last row): refused */
    {
        raw_tensor *h = raw_get(&s, "lm_head.weight");
        h->data[h->nbytes - 2] ^= 0x01;
    }
    write_variant(dir, sizeof dir, "untied", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "\"lm_head.weight\" differs from wte.weight");
    raw_free(&s);
    /* wrong shape (transposed) */
    raw_read(&s, p);
    {
        raw_tensor *w = raw_get(&s, "transformer.wte.weight");
        size_t shape[2] = {8, 11};
        raw_add(&s, "lm_head.weight", "F32", 2, shape, w->data, w->nbytes);
    }
    write_variant(dir, sizeof dir, "headshape", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "\"lm_head.weight\": shape is not (vocab_size, n_embd) = (11, 8)");
    raw_free(&s);
    /* right shape, integer dtype */
    raw_read(&s, p);
    {
        raw_tensor *w = raw_get(&s, "transformer.wte.weight");
        raw_add(&s, "lm_head.weight", "I32", 2, w->shape, w->data, w->nbytes);
    }
    write_variant(dir, sizeof dir, "headi32", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "\"lm_head.weight\": dtype I32");
    raw_free(&s);
    model_free(&m);
}
END_TEST

/* The causal-mask buffers some files carry are ignored; unprefixed (hub-style)
 * names and any data order load the same model. */
START_TEST(test_weights_accepted_variants) {
    model m;
    raw_set s;
    char good[4096], dir[4096], p[4096], name[96];
    float mask[64], neg = -1e4f;
    size_t shape4[4] = {1, 1, 8, 8};
    int l, i, j;
    make_good(&m, good, sizeof good);
    path_in(p, sizeof p, good, "model.safetensors");
    for (i = 0; i < 8; i++)
        for (j = 0; j < 8; j++) mask[i * 8 + j] = j <= i ? 1.0f : 0.0f;

    raw_read(&s, p);
    for (l = 0; l < 2; l++) {
        snprintf(name, sizeof name, "transformer.h.%d.attn.bias", l);
        raw_add(&s, name, "F32", 4, shape4, mask, sizeof mask);
        snprintf(name, sizeof name, "transformer.h.%d.attn.masked_bias", l);
        raw_add(&s, name, "F32", 0, NULL, &neg, sizeof neg);
    }
    write_variant(dir, sizeof dir, "buffers", good, &s, 0);
    LOAD_OK(&m, dir);
    raw_free(&s);

    /* hub style: no prefix, a buffer without prefix (as BOOL, as newer PyTorch saves it),
     * data in reversed order */
    raw_read(&s, p);
    for (i = 0; i < s.n; i++) {
        char *nm = s.t[i].name;
        ck_assert(strncmp(nm, "transformer.", 12) == 0);
        memmove(nm, nm + 12, strlen(nm + 12) + 1);
    }
    raw_add(&s, "h.0.attn.bias", "BOOL", 4, shape4, mask, 64);
    write_variant(dir, sizeof dir, "hub", good, &s, 1);
    LOAD_OK(&m, dir);
    raw_free(&s);
    model_free(&m);
}
END_TEST

/* ======================================================================== */
/* non-finite weights                                                        */
/* ======================================================================== */

/* The set's float tensors rewritten as F16 or BF16 (esz 2), by truncation of
 * the F32 bits: BF16 keeps the top half; F16 rebiases the exponent (the tiny
 * model's values are all below 2 in magnitude) and flushes |x| < 2^-14 to 0. */
static void raw_to_half(raw_set *s, const char *dtype) {
    int i;
    for (i = 0; i < s->n; i++) {
        raw_tensor *t = &s->t[i];
        size_t n = t->nbytes / 4, k;
        unsigned char *d = malloc(2 * n + 1);
        ck_assert_str_eq(t->dtype, "F32");
        ck_assert_ptr_nonnull(d);
        for (k = 0; k < n; k++) {
            uint32_t b = (uint32_t)t->data[4 * k] | (uint32_t)t->data[4 * k + 1] << 8 |
                         (uint32_t)t->data[4 * k + 2] << 16 | (uint32_t)t->data[4 * k + 3] << 24;
            uint16_t h;
            if (strcmp(dtype, "BF16") == 0) {
                h = (uint16_t)(b >> 16);
            } else {
                int exp = (int)((b >> 23) & 0xff) - 127 + 15;
                ck_assert_int_lt(exp, 31);
                h = (uint16_t)((b >> 16) & 0x8000);
                if (exp > 0) h = (uint16_t)(h | (unsigned)exp << 10 | ((b >> 13) & 0x3ff));
            }
            d[2 * k] = (unsigned char)h;
            d[2 * k + 1] = (unsigned char)(h >> 8);
        }
        free(t->data);
        t->data = d;
        t->nbytes = 2 * n;
        snprintf(t->dtype, sizeof t->dtype, "%s", dtype);
    }
}

/* Store the little-endian bit pattern bits as element k of t (2 or 4 bytes). */
static void raw_set_bits(raw_tensor *t, size_t k, uint32_t bits, size_t esz) {
    size_t b;
    ck_assert_uint_lt((k + 1) * esz, t->nbytes + 1);
    for (b = 0; b < esz; b++) t->data[k * esz + b] = (unsigned char)(bits >> (8 * b));
}

/* A NaN, +inf or -inf anywhere in a loaded tensor is refused, in F32, F16 and
 * BF16 files alike, naming the tensor and the first bad flat index; the same
 * files without it load. */
START_TEST(test_weights_nonfinite) {
    static const struct {
        const char *dtype;
        size_t esz;
        uint32_t bits[4]; /* nan, inf, -inf, a negative NaN with a payload */
    } kinds[] = {
        {"F32", 4, {0x7FC00000u, 0x7F800000u, 0xFF800000u, 0xFF800123u}},
        {"F16", 2, {0x7E00u, 0x7C00u, 0xFC00u, 0xFC01u}},
        {"BF16", 2, {0x7FC0u, 0x7F80u, 0xFF80u, 0xFF81u}},
    };
    static const char *const what[4] = {"nan", "inf", "-inf", "nan"};
    /* (tensor, flat index): first, middle and last element of one tensor, and
     * the first and last tensors the loader reads */
    static const struct {
        const char *name;
        size_t index;
    } where[] = {
        {"transformer.h.0.attn.c_attn.weight", 0},   {"transformer.h.0.attn.c_attn.weight", 97},
        {"transformer.h.0.attn.c_attn.weight", 191}, {"transformer.wte.weight", 0},
        {"transformer.ln_f.bias", 7},                {"transformer.h.1.mlp.c_proj.bias", 5},
    };
    model m, clean;
    raw_set s;
    char good[4096], dir[4096], p[4096], name[64], want[256];
    size_t d, w, v;
    make_good(&m, good, sizeof good);
    path_in(p, sizeof p, good, "model.safetensors");
    for (d = 0; d < sizeof kinds / sizeof kinds[0]; d++) {
        dpo_err e;
        /* the clean file of this dtype loads */
        raw_read(&s, p);
        if (kinds[d].esz == 2) raw_to_half(&s, kinds[d].dtype);
        snprintf(name, sizeof name, "clean_%s", kinds[d].dtype);
        write_variant(dir, sizeof dir, name, good, &s, 0);
        memset(&e, 0, sizeof e);
        ck_assert_msg(model_load(&clean, dir, &e) == 0, "%s: %s", name, e.msg);
        if (kinds[d].esz == 4)
            ck_assert(memcmp(clean.params_mem, m.params_mem, m.num_params * sizeof(float)) == 0);
        model_free(&clean);
        for (w = 0; w < sizeof where / sizeof where[0]; w++) {
            for (v = 0; v < 4; v++) {
                raw_tensor *t = raw_get(&s, where[w].name);
                unsigned char keep[4];
                memcpy(keep, t->data + where[w].index * kinds[d].esz, kinds[d].esz);
                raw_set_bits(t, where[w].index, kinds[d].bits[v], kinds[d].esz);
                snprintf(name, sizeof name, "bad_%s_%zu_%zu", kinds[d].dtype, w, v);
                write_variant(dir, sizeof dir, name, good, &s, 0);
                snprintf(want, sizeof want,
                         "model.safetensors: tensor \"%s\": element %zu is %s (non-finite weights are refused)",
                         where[w].name, where[w].index, what[v]);
                load_fail_at(dir, "model.safetensors", want, (int)(100 * d + 10 * w + v));
                memcpy(t->data + where[w].index * kinds[d].esz, keep, kinds[d].esz);
            }
        }
        raw_free(&s);
    }
    /* two bad elements: the first one is named */
    raw_read(&s, p);
    raw_set_bits(raw_get(&s, "transformer.wpe.weight"), 40, 0x7F800000u, 4);
    raw_set_bits(raw_get(&s, "transformer.wpe.weight"), 9, 0xFF800000u, 4);
    write_variant(dir, sizeof dir, "two_bad", good, &s, 0);
    LOAD_FAIL(dir, "model.safetensors", "tensor \"transformer.wpe.weight\": element 9 is -inf");
    raw_free(&s);
    /* the largest finite values load */
    raw_read(&s, p);
    raw_set_bits(raw_get(&s, "transformer.wpe.weight"), 0, 0x7F7FFFFFu, 4);
    raw_set_bits(raw_get(&s, "transformer.wpe.weight"), 1, 0xFF7FFFFFu, 4);
    raw_set_bits(raw_get(&s, "transformer.wpe.weight"), 2, 0x00000001u, 4);
    write_variant(dir, sizeof dir, "max_finite", good, &s, 0);
    {
        dpo_err e;
        memset(&e, 0, sizeof e);
        ck_assert_msg(model_load(&clean, dir, &e) == 0, "%s", e.msg);
        ck_assert(clean.params.t[P_WPE][0] == FLT_MAX && clean.params.t[P_WPE][1] == -FLT_MAX);
        model_free(&clean);
    }
    raw_free(&s);
    model_free(&m);
}
END_TEST

/* ======================================================================== */
/* model_save errors                                                         */
/* ======================================================================== */

START_TEST(test_save_errors) {
    model m;
    char good[4096], p[4096], q[4096];
    dpo_err e;
    unsigned char *before, *after;
    size_t nb, na;
    DIR *d;
    struct dirent *ent;
    int entries = 0;
    make_good(&m, good, sizeof good);

    /* a directory path that is an existing regular file */
    path_in(p, sizeof p, tmp_root, "plain-file");
    testutil_write_bytes(p, "keep me", 7);
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(model_save(&m, p, &e), -1);
    ck_assert_msg(strstr(e.msg, p) != NULL, "message does not name the path: %s", e.msg);
    ck_assert_msg(strstr(e.msg, "not a directory") != NULL, "message: %s", e.msg);
    after = testutil_read_bytes(p, &na);
    ck_assert(na == 7 && memcmp(after, "keep me", 7) == 0);
    free(after);

    /* a directory below a regular file (missing parents are created, like mkdir -p,
     * but a parent that is a file is an error naming it) */
    path_in(q, sizeof q, p, "model");
    memset(&e, 0, sizeof e);
    ck_assert_int_eq(model_save(&m, q, &e), -1);
    ck_assert_msg(strstr(e.msg, p) != NULL, "message does not name the path: %s", e.msg);

    /* saving over an existing model replaces both files and leaves no temporary */
    path_in(p, sizeof p, good, "model.safetensors");
    before = testutil_read_bytes(p, &nb);
    m.params_mem[0] += 1.0f;
    ck_assert_msg(model_save(&m, good, &e) == 0, "%s", e.msg);
    after = testutil_read_bytes(p, &na);
    ck_assert_uint_eq(na, nb);
    ck_assert(memcmp(before, after, nb) != 0);
    free(before);
    free(after);
    LOAD_OK(&m, good);
    d = opendir(good);
    ck_assert_ptr_nonnull(d);
    while ((ent = readdir(d)) != NULL) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) continue;
        entries++;
        ck_assert_msg(strstr(ent->d_name, ".tmp.") == NULL, "temporary left: %s", ent->d_name);
    }
    closedir(d);
    ck_assert_int_eq(entries, 2);
    model_free(&m);
}
END_TEST

static Suite *make_suite(void) {
    Suite *s = suite_create("model_load");
    TCase *tc = tcase_create("model_load");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, testutil_setup_tmp, testutil_teardown_tmp);
    tcase_add_test(tc, test_valid_model_roundtrip);
    tcase_add_test(tc, test_config_hostile);
    tcase_add_test(tc, test_config_file_hostile);
    tcase_add_test(tc, test_config_accepted_variants);
    tcase_add_test(tc, test_weights_missing_and_truncated);
    tcase_add_test(tc, test_weights_wrong_shape);
    tcase_add_test(tc, test_weights_layer_count_mismatch);
    tcase_add_test(tc, test_huge_config_fails_before_alloc);
    tcase_add_test(tc, test_weights_bad_tensor_sets);
    tcase_add_test(tc, test_weights_lm_head);
    tcase_add_test(tc, test_weights_accepted_variants);
    tcase_add_test(tc, test_weights_nonfinite);
    tcase_add_test(tc, test_save_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return testutil_run(make_suite()); }
