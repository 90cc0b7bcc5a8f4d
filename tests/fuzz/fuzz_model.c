/* fuzz_model.c - libFuzzer harness of the safetensors reader (safetensors.c)
 * and the Hugging Face model-directory loader (model_io.c).
 *
 * Feeds: the input split at FUZZ_SEP into config.json and model.safetensors
 * (a part that is not there: the file is missing), written into a private
 * directory; then model_load (language models), model_load_any (reward and
 * value models too: architectures, num_labels, id2label, score.weight), and
 * st_open with every tensor read through st_read_f32 and st_read_raw.
 * Asserts: a model that loads, saved with model_save and loaded again, has the
 * same configuration and the same parameter bits. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_common.h"
#include "model.h"
#include "safetensors.h"

static void read_tensors(void) {
    st_file f;
    dpo_err e;
    size_t i;
    if (st_open(&f, fuzz_path("model.safetensors"), &e) != 0) {
        st_close(&f);
        return;
    }
    for (i = 0; i < f.n_tensors; i++) {
        const st_tensor *t = &f.tensors[i];
        float *x = malloc(t->numel ? t->numel * sizeof *x : 1);
        void *raw = malloc(t->end > t->begin ? t->end - t->begin : 1);
        if (!x || !raw) abort();
        (void)st_read_f32(&f, t, x, &e);
        (void)st_read_raw(&f, t, raw, &e);
        if (st_find(&f, t->name) == NULL) abort();
        free(x);
        free(raw);
    }
    st_close(&f);
}

/* saved and loaded again, the model is the same bits */
static void check_round_trip(const model *m) {
    model m2;
    dpo_err e;
    if (model_save(m, fuzz_dir(), &e) != 0 || model_load_any(&m2, fuzz_dir(), &e) != 0) {
        fprintf(stderr, "a loaded model does not save and load again: %s\n", e.msg);
        abort();
    }
    if (memcmp(&m2.cfg, &m->cfg, sizeof m->cfg) != 0 || m2.num_params != m->num_params ||
        memcmp(m2.params_mem, m->params_mem, m->num_params * sizeof(float)) != 0) {
        fprintf(stderr, "a model saved and loaded again differs\n");
        abort();
    }
    model_free(&m2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[2];
    size_t len[2];
    model m;
    model_config c;
    dpo_err e;
    fuzz_split(data, size, part, len, 2);
    fuzz_put("config.json", part[0], len[0]);
    fuzz_put("model.safetensors", part[1], len[1]);
    (void)model_load_config(fuzz_dir(), &c, &e);
    if (model_load(&m, fuzz_dir(), &e) == 0) model_free(&m);
    read_tensors();
    if (model_load_any(&m, fuzz_dir(), &e) == 0) {
        check_round_trip(&m);
        model_free(&m);
    }
    return 0;
}
