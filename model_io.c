/* model_io.c - owns reading and writing Hugging Face GPT-2 model directories:
 * config.json (parsed, and refused unless it describes the GPT-2 that model.c
 * computes) and model.safetensors (each tensor matched to the model's by name,
 * shape and dtype, converted to float, refused if non-finite; an lm_head must
 * equal wte, the tied head).
 * It reads untrusted bytes, so it must never use a size or name from a file
 * before validating it: the config's sizes are bounded (model_config_validate)
 * before anything is allocated from them, and every tensor of the file is
 * checked against the config before the model is allocated or read into. It
 * must never print or exit (errors go back in a dpo_err naming the file and the
 * tensor), never hand back a half-loaded model (a failed load frees it), never
 * write a file other than atomically, and never compute the model's math (that
 * is model.c). The formats themselves are parsed by json.c and safetensors.c. */
#include "model.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "safetensors.h"

#define MAX_CONFIG_BYTES (1u << 20)

/* ======================================================================== */
/* config.json                                                               */
/* ======================================================================== */

static int require_bool(const json_value *root, const char *key, int want, dpo_err *e) {
    const json_value *v = json_get(root, key);
    if (!v) return 0;
    if (v->type != JSON_TRUE && v->type != JSON_FALSE)
        return dpo_errf(e, "key \"%s\": expected true or false", key);
    if ((v->type == JSON_TRUE) != want)
        return dpo_errf(e, "key \"%s\": only %s is supported (it changes GPT-2's math)", key,
                        want ? "true" : "false");
    return 0;
}

static int get_required_int(const json_value *root, const char *key, long long min, long long max,
                            int *out, dpo_err *e) {
    long long v;
    int rc = json_get_int(root, key, min, max, &v, e);
    if (rc < 0) return -1;
    if (rc > 0) return dpo_errf(e, "missing key \"%s\"", key);
    *out = (int)v;
    return 0;
}

/* "architectures": GPT2ForSequenceClassification makes a model with a score
 * head (c->score_head = 1), which must have one label (num_labels, or the
 * entries of id2label); any other class, or none, a language model. */
static int parse_architecture(const json_value *root, model_config *c, dpo_err *e) {
    const json_value *a = json_get(root, "architectures"), *lab;
    size_t i;
    long long n;
    int rc;
    c->score_head = 0;
    if (!a || a->type == JSON_NULL) return 0;
    if (a->type != JSON_ARRAY) return dpo_errf(e, "key \"architectures\": expected an array of strings");
    for (i = 0; i < a->count; i++) {
        if (a->items[i].type != JSON_STRING)
            return dpo_errf(e, "key \"architectures\": expected an array of strings");
        if (strcmp(a->items[i].str, "GPT2ForSequenceClassification") == 0) c->score_head = 1;
    }
    if (c->score_head && a->count != 1)
        return dpo_errf(e, "key \"architectures\": GPT2ForSequenceClassification must be the only class");
    if (!c->score_head) return 0;
    rc = json_get_int(root, "num_labels", 0, 1LL << 30, &n, e);
    if (rc < 0) return -1;
    if (rc == 0 && n != 1)
        return dpo_errf(e, "num_labels is %lld: only a scalar score (num_labels 1) is supported", n);
    lab = json_get(root, "id2label");
    if (lab && lab->type != JSON_NULL && (lab->type != JSON_OBJECT || lab->count != 1))
        return dpo_errf(e, "id2label must have exactly one label: only a scalar score (num_labels 1) is supported");
    return 0;
}

static int parse_config(const json_value *root, model_config *c, dpo_err *e) {
    const char *s;
    size_t len;
    long long v;
    int rc;
    if (root->type != JSON_OBJECT) return dpo_errf(e, "not a JSON object");
    rc = json_get_string(root, "model_type", &s, &len, e);
    if (rc < 0) return -1;
    if (rc == 0 && strcmp(s, "gpt2") != 0)
        return dpo_errf(e, "model_type is \"%s\"; only \"gpt2\" is supported", s);
    if (get_required_int(root, "n_layer", 1, MODEL_MAX_LAYERS, &c->n_layer, e) != 0 ||
        get_required_int(root, "n_head", 1, MODEL_MAX_HEADS, &c->n_head, e) != 0 ||
        get_required_int(root, "n_embd", 1, MODEL_MAX_EMBD, &c->n_embd, e) != 0 ||
        get_required_int(root, "vocab_size", 1, MODEL_MAX_VOCAB, &c->vocab_size, e) != 0)
        return -1;
    rc = json_get_int(root, "n_positions", 1, MODEL_MAX_CTX, &v, e);
    if (rc < 0) return -1;
    if (rc > 0) {
        rc = json_get_int(root, "n_ctx", 1, MODEL_MAX_CTX, &v, e);
        if (rc < 0) return -1;
        if (rc > 0) return dpo_errf(e, "missing key \"n_positions\"");
    }
    c->n_ctx = (int)v;
    c->ln_eps = 1e-5;
    if (json_get_number(root, "layer_norm_epsilon", &c->ln_eps, e) < 0) return -1;
    c->eos_token_id = c->vocab_size - 1;
    rc = json_get_int(root, "eos_token_id", 0, c->vocab_size - 1, &v, e);
    if (rc < 0) return -1;
    if (rc == 0) c->eos_token_id = (int)v;
    rc = json_get_string(root, "activation_function", &s, &len, e);
    if (rc < 0) return -1;
    if (rc == 0 && strcmp(s, "gelu_new") != 0 && strcmp(s, "gelu_pytorch_tanh") != 0)
        return dpo_errf(e, "activation_function is \"%s\"; only \"gelu_new\" is supported", s);
    {
        const json_value *ni = json_get(root, "n_inner");
        if (ni && ni->type != JSON_NULL &&
            !(ni->type == JSON_NUMBER && ni->is_integer && ni->number == 4.0 * c->n_embd))
            return dpo_errf(e, "n_inner must be null or 4 * n_embd");
    }
    if (require_bool(root, "scale_attn_weights", 1, e) != 0 ||
        require_bool(root, "scale_attn_by_inverse_layer_idx", 0, e) != 0 ||
        require_bool(root, "tie_word_embeddings", 1, e) != 0 ||
        require_bool(root, "add_cross_attention", 0, e) != 0 || parse_architecture(root, c, e) != 0)
        return -1;
    return model_config_validate(c, e);
}

int model_load_config(const char *dir, model_config *c, dpo_err *e) {
    return model_load_config_as(dir, "config.json", c, e);
}

int model_load_config_as(const char *dir, const char *name, model_config *c, dpo_err *e) {
    char path[4096], *text;
    size_t len;
    json_value *root;
    int rc;
    if (util_path_join(path, sizeof path, dir, name, e) != 0) return -1;
    if (util_read_file(path, MAX_CONFIG_BYTES, &text, &len, e) != 0) return -1;
    rc = json_parse(text, len, &root, e);
    free(text);
    if (rc != 0) return dpo_err_prefix(e, "%s", path);
    memset(c, 0, sizeof *c);
    rc = parse_config(root, c, e);
    json_free(root);
    if (rc != 0) return dpo_err_prefix(e, "%s", path);
    return 0;
}

/* ======================================================================== */
/* model.safetensors                                                         */
/* ======================================================================== */

/* "h.<digits>.attn.bias" / "h.<digits>.attn.masked_bias": causal-mask buffers some files carry */
static int is_mask_buffer(const char *name) {
    const char *p = name;
    if (strncmp(p, "h.", 2) != 0) return 0;
    p += 2;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    return strcmp(p, ".attn.bias") == 0 || strcmp(p, ".attn.masked_bias") == 0;
}

static const char *strip_prefix(const char *name) {
    return strncmp(name, "transformer.", 12) == 0 ? name + 12 : name;
}

/* Index of the first non-finite value (NaN, +inf, -inf) of x[0..n), or n when
 * all are finite. |x| <= FLT_MAX is false exactly for those three (a NaN
 * compares false with everything), and it needs no fast-math to hold. One
 * pass: each block is tested with a branch-free loop the compiler vectorizes,
 * and only a block that fails is searched for its first bad element. */
static size_t first_nonfinite(const float *x, size_t n) {
    enum { BLOCK = 4096 };
    size_t b, i;
    for (b = 0; b < n; b += BLOCK) {
        size_t end = n - b < BLOCK ? n : b + BLOCK;
        int bad = 0;
        for (i = b; i < end; i++) bad |= !(fabsf(x[i]) <= FLT_MAX);
        if (bad)
            for (i = b; i < end; i++)
                if (!(fabsf(x[i]) <= FLT_MAX)) return i;
    }
    return n;
}

/* Refuse a tensor (as read, converted to float) holding a non-finite weight:
 * the model would compute NaN everywhere downstream. The message names the
 * tensor, the first bad flat index and what it is. */
static int check_finite(const st_tensor *t, const float *x, dpo_err *e) {
    /* NOLINTNEXTLINE(clang-analyzer-core.NullDereference): check_file_tensors found every tensor, or failed */
    size_t i = first_nonfinite(x, t->numel);
    if (i == t->numel) return 0;
    return dpo_errf(e, "tensor \"%s\": element %zu is %s (non-finite weights are refused)", t->name, i,
                    isnan(x[i]) ? "nan" : x[i] > 0 ? "inf" : "-inf");
}

/* The file's tensors matched to the model's, before anything is read. */
typedef struct {
    const st_tensor **found;  /* (model_num_tensors) the file's tensor for model tensor i */
    const st_tensor *lm_head; /* the file's lm_head.weight, or NULL when it has none */
} file_tensors;

static int is_float_dtype(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16; }

/* Step 1: every tensor in the file must be one we know, and appear once
 * (causal-mask buffers are skipped, lm_head is set aside for step 3). */
static int match_file_tensors(file_tensors *ft, const st_file *f, const model_config *c,
                              dpo_err *e) {
    int n = model_num_tensors(c), i;
    size_t k;
    for (k = 0; k < f->n_tensors; k++) {
        const st_tensor *t = &f->tensors[k];
        const char *name = strip_prefix(t->name);
        int hit = -1;
        if (is_mask_buffer(name)) continue;
        if (strcmp(t->name, "lm_head.weight") == 0) {
            if (t->ndim != 2 || t->shape[0] != (size_t)c->vocab_size ||
                t->shape[1] != (size_t)c->n_embd)
                return dpo_errf(e,
                                "tensor \"lm_head.weight\": shape is not (vocab_size, n_embd) = (%d, %d)",
                                c->vocab_size, c->n_embd);
            ft->lm_head = t;
            continue;
        }
        for (i = 0; i < n && hit < 0; i++) {
            model_tensor_info ti;
            model_tensor(c, i, &ti);
            /* score.weight sits outside "transformer.", as transformers writes it */
            if (strcmp(ti.family == P_SCORE ? t->name : name, ti.name) == 0) hit = i;
        }
        if (hit < 0 && strcmp(t->name, "score.weight") == 0)
            return dpo_errf(e, "tensor \"score.weight\" is a reward model's head, but config.json's "
                               "\"architectures\" does not say GPT2ForSequenceClassification");
        if (hit < 0)
            return dpo_errf(e, "tensor \"%s\" is not part of a GPT-2 model with this config", t->name);
        if (ft->found[hit])
            return dpo_errf(e,
                            "tensor \"%s\" appears twice (with and without the \"transformer.\" prefix)",
                            name);
        ft->found[hit] = t;
    }
    return 0;
}

/* Step 2: every tensor the config needs is there, with the right shape and a float dtype. */
static int check_file_tensors(const file_tensors *ft, const model_config *c, dpo_err *e) {
    int n = model_num_tensors(c), i;
    for (i = 0; i < n; i++) {
        model_tensor_info ti;
        const st_tensor *t = ft->found[i];
        model_tensor(c, i, &ti);
        if (!t)
            return dpo_errf(e, "missing tensor \"%s%s\"%s", ti.family == P_SCORE ? "" : "transformer.", ti.name,
                            ti.family == P_SCORE ? " (config.json says GPT2ForSequenceClassification)" : "");
        if (!is_float_dtype(t->dtype))
            return dpo_errf(e, "tensor \"%s\": dtype %s is not F32, F16 or BF16", t->name,
                            st_dtype_name(t->dtype));
        if (t->ndim != ti.ndim || t->shape[0] != ti.shape[0] ||
            (ti.ndim == 2 && t->shape[1] != ti.shape[1])) {
            if (ti.ndim == 2)
                return dpo_errf(e, "tensor \"%s\": shape must be (%zu, %zu) for this config", t->name,
                                ti.shape[0], ti.shape[1]);
            return dpo_errf(e, "tensor \"%s\": shape must be (%zu) for this config", t->name,
                            ti.shape[0]);
        }
    }
    if (ft->lm_head && !is_float_dtype(ft->lm_head->dtype))
        return dpo_errf(e, "tensor \"lm_head.weight\": dtype %s is not F32, F16 or BF16",
                        st_dtype_name(ft->lm_head->dtype));
    return 0;
}

/* Step 3: read each tensor, as float, into its slice of the allocated
 * parameters; refuse a non-finite weight, and a head that is not wte.
 * st_read_f32's messages already name the file; the others get path in front. */
static int read_file_tensors(model *m, const st_file *f, const file_tensors *ft, const char *path,
                             dpo_err *e) {
    int n = model_num_tensors(&m->cfg), i, same;
    float *head;
    for (i = 0; i < n; i++) {
        model_tensor_info ti;
        model_tensor(&m->cfg, i, &ti);
        if (st_read_f32(f, ft->found[i], m->params_mem + ti.offset, e) != 0) return -1;
        if (check_finite(ft->found[i], m->params_mem + ti.offset, e) != 0)
            return dpo_err_prefix(e, "%s", path);
    }
    if (!ft->lm_head) return 0;
    head = malloc(ft->lm_head->numel * sizeof(float));
    if (!head) {
        dpo_err_oom(e, "lm_head.weight", ft->lm_head->numel, sizeof(float));
        return dpo_err_prefix(e, "%s", path);
    }
    if (st_read_f32(f, ft->lm_head, head, e) != 0) {
        free(head);
        return -1;
    }
    same = memcmp(head, m->params.t[P_WTE], ft->lm_head->numel * sizeof(float)) == 0;
    free(head);
    if (!same) {
        dpo_errf(e, "tensor \"lm_head.weight\" differs from wte.weight: only a head tied to the "
                    "token embedding is supported");
        return dpo_err_prefix(e, "%s", path);
    }
    return 0;
}

/* Steps 1 and 2 check the whole file against the config; only then is the
 * model allocated (sizes from the validated config) and step 3 reads. */
static int load_weights(model *m, const model_config *c, const st_file *f, const char *path,
                        dpo_err *e) {
    file_tensors ft;
    int rc = 0;
    ft.lm_head = NULL;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers (found is const st_tensor **) */
    ft.found = calloc((size_t)model_num_tensors(c), sizeof *ft.found);
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers, as above */
    if (!ft.found) return dpo_err_oom(e, "the tensor list", (size_t)model_num_tensors(c), sizeof *ft.found);
    if (match_file_tensors(&ft, f, c, e) != 0 || check_file_tensors(&ft, c, e) != 0 ||
        model_create(m, c, e) != 0)
        rc = dpo_err_prefix(e, "%s", path);
    else if (read_file_tensors(m, f, &ft, path, e) != 0) {
        model_free(m);
        rc = -1;
    }
    free(ft.found);
    return rc;
}

int model_load_as(model *m, const char *dir, const char *config_name, const char *weights_name, dpo_err *e) {
    char path[4096];
    model_config c;
    st_file f;
    int rc;
    memset(m, 0, sizeof *m);
    if (model_load_config_as(dir, config_name, &c, e) != 0) return -1;
    if (util_path_join(path, sizeof path, dir, weights_name, e) != 0) return -1;
    if (st_open(&f, path, e) != 0) return -1;
    rc = load_weights(m, &c, &f, path, e);
    st_close(&f);
    return rc;
}

int model_load_any(model *m, const char *dir, dpo_err *e) {
    return model_load_as(m, dir, "config.json", "model.safetensors", e);
}

int model_load(model *m, const char *dir, dpo_err *e) {
    model_config c;
    memset(m, 0, sizeof *m);
    if (model_load_config(dir, &c, e) != 0) return -1;
    if (c.score_head)
        return dpo_errf(e, "%s: is a reward or value model (GPT2ForSequenceClassification); a language model "
                           "(GPT2LMHeadModel) is needed here", dir);
    return model_load_any(m, dir, e);
}

/* ======================================================================== */
/* saving                                                                    */
/* ======================================================================== */

/* model.safetensors: every tensor as F32 under HF's "transformer.<name>",
 * the head tied (no lm_head.weight). */
static int save_weights(const model *m, const char *dir, const char *name, dpo_err *e) {
    const model_config *c = &m->cfg;
    char path[4096];
    int n = model_num_tensors(c), i, rc = 0;
    st_out_tensor *ts = calloc((size_t)n, sizeof *ts);
    model_tensor_info *infos = calloc((size_t)n, sizeof *infos);
    if (!ts || !infos) {
        free(ts);
        free(infos);
        return dpo_err_oom(e, "the tensor list", (size_t)n, sizeof *ts + sizeof *infos);
    }
    for (i = 0; i < n; i++) {
        model_tensor(c, i, &infos[i]);
        /* HF's own files name them "transformer.<name>" (the score head: "score.weight") */
        if (infos[i].family != P_SCORE) {
            memmove(infos[i].name + 12, infos[i].name, sizeof infos[i].name - 12);
            memcpy(infos[i].name, "transformer.", 12);
            infos[i].name[sizeof infos[i].name - 1] = '\0';
        }
        ts[i].name = infos[i].name;
        ts[i].data = m->params_mem + infos[i].offset;
        ts[i].ndim = infos[i].ndim;
        ts[i].shape[0] = infos[i].shape[0];
        ts[i].shape[1] = infos[i].shape[1];
    }
    if (util_path_join(path, sizeof path, dir, name, e) != 0 || st_write_f32(path, ts, (size_t)n, e) != 0)
        rc = -1;
    free(ts);
    free(infos);
    return rc;
}

/* config.json with the keys and values transformers writes for GPT-2 */
static int save_config(const model_config *c, const char *dir, const char *name, dpo_err *e) {
    char path[4096], cfg[2048];
    util_atomic_file af;
    int len = snprintf(cfg, sizeof cfg,
                       "{\n"
                       "  \"activation_function\": \"gelu_new\",\n"
                       "  \"architectures\": [\"%s\"],\n"
                       "  \"attn_pdrop\": 0.1,\n"
                       "  \"bos_token_id\": %d,\n"
                       "  \"embd_pdrop\": 0.1,\n"
                       "  \"eos_token_id\": %d,\n"
                       "%s"
                       "  \"initializer_range\": 0.02,\n"
                       "  \"layer_norm_epsilon\": %.17g,\n"
                       "  \"model_type\": \"gpt2\",\n"
                       "  \"n_ctx\": %d,\n"
                       "  \"n_embd\": %d,\n"
                       "  \"n_head\": %d,\n"
                       "  \"n_inner\": null,\n"
                       "  \"n_layer\": %d,\n"
                       "  \"n_positions\": %d,\n"
                       "  \"resid_pdrop\": 0.1,\n"
                       "  \"tie_word_embeddings\": true,\n"
                       "  \"torch_dtype\": \"float32\",\n"
                       "  \"vocab_size\": %d\n"
                       "}\n",
                       c->score_head ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel", c->eos_token_id,
                       c->eos_token_id,
                       c->score_head ? "  \"id2label\": {\"0\": \"LABEL_0\"},\n"
                                       "  \"label2id\": {\"LABEL_0\": 0},\n"
                                       "  \"num_labels\": 1,\n"
                                     : "",
                       c->ln_eps, c->n_ctx, c->n_embd, c->n_head,
                       c->n_layer, c->n_ctx, c->vocab_size);
    if (len < 0 || (size_t)len >= sizeof cfg) return dpo_errf(e, "config too long");
    if (util_path_join(path, sizeof path, dir, name, e) != 0) return -1;
    if (util_atomic_open(&af, path, e) != 0) return -1;
    if (util_atomic_write(&af, cfg, (size_t)len, e) != 0) {
        util_atomic_abort(&af);
        return -1;
    }
    return util_atomic_commit(&af, e);
}

/* Weights first, then the config: a config always describes a complete weights file. */
int model_save_as(const model *m, const char *dir, const char *config_name, const char *weights_name, dpo_err *e) {
    if (util_mkdir(dir, e) != 0 || save_weights(m, dir, weights_name, e) != 0) return -1;
    return save_config(&m->cfg, dir, config_name, e);
}

int model_save(const model *m, const char *dir, dpo_err *e) {
    return model_save_as(m, dir, "config.json", "model.safetensors", e);
}
