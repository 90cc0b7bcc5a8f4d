/* ckpt.h - checkpoint directories that are replaced atomically and recovered
 * after a crash at any moment (ckpt.c). A kind of checkpoint (dpo train's,
 * dpo ppo's) names its files and how to read the step its state file records;
 * what goes into the files is the caller's. */
#ifndef DPO_CKPT_H
#define DPO_CKPT_H

#include <stddef.h>
#include "util.h"

typedef struct {
    const char *const *files; /* every file a checkpoint holds; files[0] is the state file, written last */
    size_t n_files;
    /* Read and validate dir's state file; its step in *step. Changes nothing. */
    int (*read_step)(const char *dir, long *step, void *ctx, dpo_err *e);
    void *ctx;
} ckpt_kind;

/* OUT (trailing slashes dropped) and its two siblings OUT.tmp and OUT.old */
typedef struct {
    char dir[4096], tmp[4096], old[4096];
} ckpt_paths;

int ckpt_paths_of(ckpt_paths *p, const char *dir, dpo_err *e);

/* Saving is ckpt_begin, the caller's files written into p->tmp, then
 * ckpt_commit with the state file's bytes:
 *   remove OUT.tmp; mkdir OUT.tmp; (the caller's files); the state file last;
 *   fsync OUT.tmp; remove OUT.old; rename OUT -> OUT.old; rename OUT.tmp -> OUT;
 *   fsync; remove OUT.old
 * so that whatever moment the process dies at, one of OUT, OUT.tmp and OUT.old
 * is complete and holds the newest step saved (or no save had finished). Only
 * the kind's files are ever removed, as regular files, never through a
 * symbolic link: a directory holding anything else is refused, not emptied. */
int ckpt_begin(const ckpt_kind *k, ckpt_paths *p, const char *out_dir, dpo_err *e);
int ckpt_commit(const ckpt_kind *k, const ckpt_paths *p, const char *state, size_t len, dpo_err *e);

/* The newest complete checkpoint among DIR, DIR.tmp and DIR.old (by the step
 * of its state file), moved to DIR, the others removed; *found = 1 and *step.
 * *found = 0 when there is none: DIR.tmp and DIR.old are removed and note says
 * the run starts from step 0; but a DIR that exists without a valid state file
 * is an error and is left alone (saving never leaves DIR incomplete with
 * nothing complete beside it: it is something else, such as a model
 * directory). note (may be set when found too) says what was moved. */
int ckpt_recover(const ckpt_kind *k, const char *dir, int *found, long *step, char *note, size_t note_cap, dpo_err *e);

/* The output directory, before any work: OUT, OUT.tmp and OUT.old must not be
 * one of the n input directories (names[i] is how the user gave inputs[i],
 * e.g. "--model"; a NULL input is skipped), must hold nothing but the kind's
 * files, and OUT must be missing, empty, or a complete checkpoint (or
 * resume_dir, which recovery sorts out). Errors name the path. */
int ckpt_check_out(const ckpt_kind *k, const char *out_dir, const char *const *inputs, const char *const *names,
                   int n, const char *resume_dir, dpo_err *e);

/* 1 when dir is OUT, OUT.tmp or OUT.old (the directories a save replaces), with
 * that name copied into name (capacity cap); else 0. */
int ckpt_is_sibling(const char *out_dir, const char *dir, char *name, size_t cap);

#endif
