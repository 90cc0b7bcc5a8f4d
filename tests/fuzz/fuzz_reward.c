/* fuzz_reward.c - libFuzzer harness of the reward spec "model:DIR"
 * (reward.c): a reward model directory, loaded with model_load_any and
 * tok_load and checked against each other, then a completion scored.
 *
 * Feeds: byte 0 picks the spec ("model:" + the private directory, the same
 * with a trailing slash, "model:" alone, or a missing directory under it);
 * the rest, split at FUZZ_SEP, is config.json, model.safetensors, vocab.json,
 * merges.txt (each missing when its part is), a prompt and a completion. A
 * reward that opens scores the completion of the prompt.
 * Asserts: a reward that opens has the spec as its name. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_common.h"
#include "reward.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const files[4] = {"config.json", "model.safetensors", "vocab.json", "merges.txt"};
    static const char *const suffix[4] = {"", "/", NULL, "/missing"};
    const uint8_t *part[6];
    size_t len[6];
    char spec[4200];
    reward *r;
    double score;
    dpo_err e;
    int k;
    if (size < 1) return 0;
    fuzz_split(data + 1, size - 1, part, len, 6);
    for (k = 0; k < 4; k++) fuzz_put(files[k], part[k], len[k]);
    k = data[0] & 3;
    if (suffix[k]) snprintf(spec, sizeof spec, "model:%s%s", fuzz_dir(), suffix[k]);
    else snprintf(spec, sizeof spec, "model:");
    if (reward_open(&r, spec, &e) != 0) return 0;
    if (strcmp(reward_name(r), spec) != 0) abort();
    (void)reward_score(r, part[4] ? (const char *)part[4] : "", len[4], part[5] ? (const char *)part[5] : "",
                       len[5], &score, &e);
    reward_free(r);
    return 0;
}
