/* ckpt.c - owns checkpoint directories: saving one so that a crash at any
 * moment leaves a complete checkpoint of the newest step saved under one of
 * three names, recovering the newest complete one, and checking an output
 * directory before a run writes into it. What a checkpoint's files hold is the
 * caller's (train.c, ppo_train.c); a checkpoint is complete when its state file
 * (written last, removed first) validates.
 * It must never remove a file that is not one of the kind's, follow a symbolic
 * link when it removes, or leave a half-written checkpoint under OUT. */
#include "ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int ckpt_paths_of(ckpt_paths *p, const char *dir, dpo_err *e) {
    size_t n;
    if (util_out_dir_path(p->dir, sizeof p->dir - 4, dir, e) != 0) return -1;
    n = strlen(p->dir); /* < 4092: room for the suffix */
    memcpy(p->tmp, p->dir, n);
    memcpy(p->tmp + n, ".tmp", 5);
    memcpy(p->old, p->dir, n);
    memcpy(p->old + n, ".old", 5);
    return 0;
}

static int remove_ckpt(const ckpt_kind *k, const char *dir, dpo_err *e) {
    return util_dir_remove_owned(dir, k->files, k->n_files, e);
}

/* Move dir's sibling `from` (OUT.tmp or OUT.old, complete) to OUT: the previous
 * OUT goes to OUT.old first (removed after), so that a complete checkpoint
 * exists under one of the three names at every moment. */
static int swap_in(const ckpt_kind *k, const ckpt_paths *p, const char *from, dpo_err *e) {
    if (strcmp(from, p->old) != 0) {
        if (remove_ckpt(k, p->old, e) != 0) return -1;
        if (rename(p->dir, p->old) != 0 && errno != ENOENT)
            return dpo_errf(e, "%s: cannot move the previous checkpoint aside: %s", p->dir, strerror(errno));
    } else if (remove_ckpt(k, p->dir, e) != 0) { /* OUT.old is the newest: OUT is older or incomplete */
        return -1;
    }
    if (rename(from, p->dir) != 0)
        return dpo_errf(e, "%s: cannot move the new checkpoint into place: %s", p->dir, strerror(errno));
    if (util_fsync_parent(p->dir) != 0)
        return dpo_errf(e, "%s: cannot sync its directory: %s", p->dir, strerror(errno));
    return remove_ckpt(k, p->old, e);
}

int ckpt_begin(const ckpt_kind *k, ckpt_paths *p, const char *out_dir, dpo_err *e) {
    if (ckpt_paths_of(p, out_dir, e) != 0 || remove_ckpt(k, p->tmp, e) != 0) return -1;
    /* a fresh OUT.tmp of our own: mkdir fails if anything (a planted link) took the name */
    if (mkdir(p->tmp, 0777) != 0) return dpo_errf(e, "%s: cannot create directory: %s", p->tmp, strerror(errno));
    return 0;
}

int ckpt_commit(const ckpt_kind *k, const ckpt_paths *p, const char *state, size_t len, dpo_err *e) {
    char path[4096];
    long n_entries;
    /* the state file last: from here on OUT.tmp is complete */
    if (util_path_join(path, sizeof path, p->tmp, k->files[0], e) != 0 ||
        util_atomic_write_file(path, state, len, e) != 0)
        return -1;
    if (util_fsync_dir(p->tmp) != 0) return dpo_errf(e, "%s: cannot sync: %s", p->tmp, strerror(errno));
    /* OUT must still hold only a checkpoint's files before it is moved aside */
    if (util_dir_inspect(p->dir, k->files, k->n_files, &n_entries, e) < 0) return -1;
    return swap_in(k, p, p->tmp, e);
}

int ckpt_check_out(const ckpt_kind *k, const char *out_dir, const char *const *inputs, const char *const *names,
                   int n, const char *resume_dir, dpo_err *e) {
    ckpt_paths p;
    const char *mine[3];
    long n_entries[3], step;
    int i, j, present[3];
    if (ckpt_paths_of(&p, out_dir, e) != 0) return -1;
    mine[0] = p.dir;
    mine[1] = p.tmp;
    mine[2] = p.old;
    for (i = 0; i < 3; i++) {
        for (j = 0; j < n; j++)
            if (inputs[j] && util_same_file(mine[i], inputs[j]))
                return dpo_errf(e, "%s: is the %s directory; the output must be a new directory, or a checkpoint of "
                                   "dpo (it is replaced)", mine[i], names[j]);
        present[i] = util_dir_inspect(mine[i], k->files, k->n_files, &n_entries[i], e);
        if (present[i] < 0) return -1;
    }
    /* --resume may name an incomplete OUT: recovery decides what it holds */
    if (present[0] == 1 && n_entries[0] > 0 && !(resume_dir && util_same_file(resume_dir, p.dir))) {
        dpo_err why;
        why.resource = 0;
        if (k->read_step(p.dir, &step, k->ctx, &why) == 0) return 0;
        if (why.resource) { /* not a judgement of the directory: say what failed */
            if (e) *e = why;
            return -1;
        }
        return dpo_errf(e, "%s: exists and is neither empty nor a checkpoint of dpo (no valid %s); give a new or "
                           "empty directory", p.dir, k->files[0]);
    }
    return 0;
}

int ckpt_is_sibling(const char *out_dir, const char *dir, char *name, size_t cap) {
    ckpt_paths p;
    const char *mine[3];
    int i;
    if (ckpt_paths_of(&p, out_dir, NULL) != 0) return 0;
    mine[0] = p.dir;
    mine[1] = p.tmp;
    mine[2] = p.old;
    for (i = 0; i < 3; i++) {
        if (util_same_file(dir, mine[i])) {
            snprintf(name, cap, "%s", mine[i]);
            return 1;
        }
    }
    return 0;
}

int ckpt_recover(const ckpt_kind *k, const char *dir, int *found, long *step, char *note, size_t note_cap,
                 dpo_err *e) {
    ckpt_paths p;
    const char *cand[3];
    long steps[3], n_entries;
    dpo_err why;
    int ok[3], present[3], i, best = -1;
    *found = 0;
    note[0] = '\0';
    why.msg[0] = '\0';
    if (ckpt_paths_of(&p, dir, e) != 0) return -1;
    cand[0] = p.dir;
    cand[1] = p.old;
    cand[2] = p.tmp;
    for (i = 0; i < 3; i++) {
        dpo_err ignored;
        /* cppcheck-suppress uninitvar ; only an address is taken; err->resource is set below */
        dpo_err *err = i == 0 ? &why : &ignored;
        present[i] = util_dir_inspect(cand[i], k->files, k->n_files, &n_entries, e);
        if (present[i] < 0) return -1;
        err->resource = 0;
        ok[i] = present[i] == 1 && k->read_step(cand[i], &steps[i], k->ctx, err) == 0;
        /* memory ran out, or a read failed: nothing is known about this candidate,
         * and choosing another could discard the newest checkpoint */
        if (!ok[i] && err->resource) {
            if (e) *e = *err;
            return -1;
        }
        if (ok[i] && (best < 0 || steps[i] > steps[best])) best = i; /* ties: OUT, then OUT.old */
    }
    if (best < 0) {
        if (present[0]) {
            if (!why.msg[0]) snprintf(why.msg, sizeof why.msg, "no %s here, nor in .tmp or .old", k->files[0]);
            return dpo_errf(e, "%s: not a checkpoint (%s)", p.dir, why.msg);
        }
        if (remove_ckpt(k, p.tmp, e) != 0 || remove_ckpt(k, p.old, e) != 0) return -1;
        snprintf(note, note_cap, "%s: no complete checkpoint here (nor in .tmp or .old): starting from step 0", p.dir);
        return 0;
    }
    if (best == 0) {
        if (remove_ckpt(k, p.tmp, e) != 0 || remove_ckpt(k, p.old, e) != 0) return -1;
    } else {
        if ((best == 1 && remove_ckpt(k, p.tmp, e) != 0) || swap_in(k, &p, cand[best], e) != 0) return -1;
        snprintf(note, note_cap, "%s: the newest complete checkpoint (step %ld) was in %s; moved into place", p.dir,
                 steps[best], cand[best]);
    }
    *step = steps[best];
    *found = 1;
    return 0;
}
