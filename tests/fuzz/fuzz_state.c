/* fuzz_state.c - libFuzzer harness of the checkpoint state readers:
 * trainer_state.json (train.c, through ckpt.c), ppo_state.json
 * (ppo_train.c) and the optimizer state (optim.c's optim_load). The two JSON
 * parsers are file-local; they are reached through the public check of an
 * output directory (train_check_out, ppo_check_out), which reads the state
 * file of a directory that holds one.
 *
 * Feeds: byte 0 % 3 picks the reader. 0: the rest is trainer_state.json,
 * 1: ppo_state.json, each written alone into a private directory that is
 * then given as the output directory. 2: byte 1 picks the optimizer (SGD,
 * RMSprop, AdamW) and byte 2 its parameter count (1..16); the rest is
 * optimizer.safetensors for optim_load into a state of that kind and size.
 * Asserts: a failed optim_load leaves the state as optim_init made it (step
 * 0, zero moments), and a successful one a state with finite moments, v >= 0. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include "fuzz_common.h"
#include "optim.h"
#include "ppo_train.h"
#include "train.h"

static void check_optim(const uint8_t *data, size_t size) {
    optim_config c;
    optim_state s;
    dpo_err e;
    size_t i;
    int ok;
    if (size < 2) return;
    optim_config_defaults(&c, (optim_kind)(data[0] % 3));
    if (optim_init(&s, &c, 1 + data[1] % 16, &e) != 0) abort();
    fuzz_put("optimizer.safetensors", data + 2, size - 2);
    ok = optim_load(&s, fuzz_path("optimizer.safetensors"), &e) == 0;
    if (!ok && s.step != 0) abort();
    for (i = 0; i < s.n; i++) {
        if (s.m && (ok ? !isfinite(s.m[i]) : s.m[i] != 0.0f)) abort();
        if (s.v && (ok ? !(isfinite(s.v[i]) && s.v[i] >= 0.0f) : s.v[i] != 0.0f)) abort();
    }
    optim_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    train_config tc;
    ppo_config pc;
    dpo_err e;
    if (size < 1) return 0;
    fuzz_put("trainer_state.json", NULL, 0);
    fuzz_put("ppo_state.json", NULL, 0);
    fuzz_put("optimizer.safetensors", NULL, 0);
    switch (data[0] % 3) {
    case 0:
        fuzz_put("trainer_state.json", data + 1, size - 1);
        train_config_defaults(&tc, TRAIN_DPO);
        tc.out_dir = fuzz_dir();
        (void)train_check_out(&tc, &e);
        break;
    case 1:
        fuzz_put("ppo_state.json", data + 1, size - 1);
        ppo_config_defaults(&pc);
        pc.out_dir = fuzz_dir();
        (void)ppo_check_out(&pc, &e);
        break;
    default:
        check_optim(data + 1, size - 1);
    }
    return 0;
}
