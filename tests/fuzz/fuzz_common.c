/* fuzz_common.c - the shared part of the libFuzzer harnesses: their private
 * temporary directory and the split of an input into files. It must never
 * touch anything outside that directory. */
#include "fuzz_common.h"
#include "tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* every name a harness writes, removed at exit with the directory */
static const char *const known_names[] = {"config.json", "model.safetensors", "vocab.json", "merges.txt",
                                          "encoder.json", "vocab.bpe", "rows.jsonl", "trainer_state.json",
                                          "ppo_state.json", "optimizer.safetensors"};
static char dir[4096];
static char path[4096 + 64];
static char repo[4096 + 256];

static void remove_dir(void) {
    size_t i;
    char p[4096 + 64];
    for (i = 0; i < sizeof known_names / sizeof known_names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, known_names[i]);
        unlink(p);
    }
    rmdir(dir);
}

const char *fuzz_dir(void) {
    if (!dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/dpo-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    return dir;
}

const char *fuzz_path(const char *name) {
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    return path;
}

void fuzz_put(const char *name, const uint8_t *data, size_t len) {
    const char *p = fuzz_path(name);
    FILE *f;
    if (!data) {
        unlink(p);
        return;
    }
    f = fopen(p, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(p);
        abort();
    }
}

size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **part, size_t *len, size_t n) {
    const size_t sl = sizeof FUZZ_SEP - 1;
    size_t k = 0, start = 0, i = 0;
    for (k = 0; k < n; k++) {
        part[k] = NULL;
        len[k] = 0;
    }
    if (n == 0) return 0;
    for (k = 0; k + 1 < n; k++) { /* find the end of part k */
        for (i = start; i + sl <= size && memcmp(data + i, FUZZ_SEP, sl) != 0; i++) {}
        if (i + sl > size) break;
        part[k] = data + start;
        len[k] = i - start;
        start = i + sl;
    }
    part[k] = data + start; /* the rest, possibly empty */
    len[k] = size - start;
    return k + 1;
}

const char *fuzz_repo_path(const char *rel) {
    const char *root = getenv("DPO_ROOT");
    if (root && *root) snprintf(repo, sizeof repo, "%s/%s", root, rel);
    else snprintf(repo, sizeof repo, "%s", rel);
    return repo;
}

static tok_tokenizer *gpt2;

static void free_gpt2(void) { tok_free(gpt2); }

const tok_tokenizer *fuzz_gpt2(const char *harness) {
    static const uint64_t key[2] = {1, 2};
    dpo_err e;
    if (gpt2) return gpt2;
    if (tok_load_keyed(&gpt2, fuzz_repo_path("data/gpt2"), key, &e) != 0) {
        fprintf(stderr, "%s: %s (run from the repository root, or set DPO_ROOT)\n", harness, e.msg);
        abort();
    }
    atexit(free_gpt2);
    return gpt2;
}
