/* train.c - owns the training loop of dpo train and dpo sft, built on data.c
 * (datasets and packed batches), model.c, objective.c and optim.c; held-out
 * evaluation; and checkpoints (writing, and recovering the newest complete one).
 * It must never print (progress and metrics go through callbacks and files the
 * caller names), never train on a half-read file, and never leave a partly
 * written checkpoint behind. */
#include "train.h"

#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "json.h"

/* ======================================================================== */
/* the training loop                                                         */
/* ======================================================================== */

typedef struct {
    const train_config *c;
    const train_callbacks *cb;   /* may be NULL */
    model *policy, *ref;     /* own_policy and own_ref in train_run; the caller's in train_step */
    model own_policy, own_ref;
    tok_tokenizer *tok;
    data_set data, eval;
    optim_state *opt;        /* own_opt in train_run; the caller's in train_step */
    optim_state own_opt;
    data_batch buf;
    int *perm, *rows;
    int *eval_rows;          /* 0, 1, ..., eval.n_rows - 1 */
    obj_pair_in *pin;
    obj_pair_out *pout;
    double *ref_logp;        /* (2 n_rows) with --precompute-ref, else NULL */
    double *eval_ref_logp;   /* (2 eval.n_rows) when the objective uses the reference */
    int batch, micro_batch;  /* B rows per step, at most B per forward pass */
    int use_ref;             /* the objective looks at the reference model */
    long total_steps, first_step;
    long long rows_seen;     /* rows drawn from the shuffled stream so far */
    char resume[4096];       /* the checkpoint resumed from, or "" */
} train_state;

static void train_free(train_state *run) {
    model_free(&run->own_policy);
    model_free(&run->own_ref);
    tok_free(run->tok);
    data_free(&run->data);
    data_free(&run->eval);
    optim_free(&run->own_opt);
    data_batch_free(&run->buf);
    free(run->perm);
    free(run->rows);
    free(run->eval_rows);
    free(run->pin);
    free(run->pout);
    free(run->ref_logp);
    free(run->eval_ref_logp);
}

/* does the objective look at the reference model? (not SFT, nor the baselines) */
static int needs_ref(const train_config *c) {
    return c->mode == TRAIN_DPO && c->loss.kind != OBJ_LOSS_SFT && c->loss.kind != OBJ_LOSS_UNLIKELIHOOD;
}

/* response tokens (each one a log-prob term) of rows[0..n) */
static double response_tokens(const data_set *d, const int *rows, int n) {
    double t = 0.0;
    int i;
    for (i = 0; i < n; i++) t += d->rows[rows[i]].n_chosen + d->rows[rows[i]].n_rejected;
    return t;
}

/* The forward half of a reward model's micro-batch (TRAIN_RM): the 2n
 * sequences prompt ++ response ++ <|endoftext|> fed whole, the reward of each
 * its score at its last token, and the Bradley-Terry loss of each pair
 * (obj_bt_loss). The batch loss is the mean over its B pairs, so buf.dlogp
 * receives d loss / d score: (1 / B) dL/dr at the two last tokens, 0 elsewhere. */
static int forward_rm(train_state *run, const data_set *d, const int *rows, int n, int B, train_metrics *acc,
                      size_t *tokens, dpo_err *e) {
    data_batch *b = &run->buf;
    size_t N = data_batch_build_whole(b, d, rows, n);
    int i, j;
    if (N == 0) return dpo_err_oom(e, "a batch's arrays", data_batch_bytes(d, rows, n, 1), 1);
    *tokens += N;
    if (model_forward_score(run->policy, b->logp, b->tokens, b->seq_len, 2 * n, e) != 0) return -1;
    for (j = 0; j < (int)N; j++) b->dlogp[j] = 0.0f;
    for (i = 0; i < n; i++) {
        int lw = b->resp_start[2 * (size_t)i] + b->resp_len[2 * (size_t)i] - 1;
        int ll = b->resp_start[2 * i + 1] + b->resp_len[2 * i + 1] - 1;
        double rw = b->logp[lw], rl = b->logp[ll], dm, loss = obj_bt_loss(rw - rl, &dm);
        acc->loss += loss / B;
        b->dlogp[lw] = (float)(dm / B);
        b->dlogp[ll] = (float)(-dm / B);
        acc->reward_chosen += rw;
        acc->reward_rejected += rl;
        acc->accuracy += rw > rl ? 1.0 : 0.0;
        acc->margin += rw - rl;
    }
    return 0;
}

/* The forward half of a micro-batch: rows[0..n) of d, part of a batch of B rows
 * with tok_batch response tokens. Forwards the reference (unless its log-probs
 * are given in ref_logp, indexed like data_logps, or the objective ignores
 * it) and the policy, evaluates the objective, and leaves in buf.dlogp the
 * derivative of the batch's loss with respect to every token's log-prob:
 *   TRAIN_DPO: the batch loss is the mean over its B pairs, so this micro-batch
 *     contributes (n / B) * (mean over its n pairs), and every token of a
 *     sequence receives (1 / B) * d(pair loss) / d(the sequence's summed log-prob);
 *   TRAIN_SFT: the batch loss is -(sum of completion token log-probs) / tok_batch,
 *     so every completion token receives -1 / tok_batch.
 * The loss is added into acc->loss already divided as above; the other metrics
 * are added as sums over rows. */
static int forward_part(train_state *run, const train_config *c, const data_set *d, const double *ref_logp,
                        const int *rows, int n, int B, double tok_batch, train_metrics *acc, size_t *tokens,
                        dpo_err *e) {
    data_batch *b = &run->buf;
    size_t N;
    int i, j, need_ref = needs_ref(c);
    if (c->mode == TRAIN_RM) return forward_rm(run, d, rows, n, B, acc, tokens, e);
    N = data_batch_build(b, d, rows, n);
    if (N == 0) return dpo_err_oom(e, "a batch's arrays", data_batch_bytes(d, rows, n, 0), 1);
    *tokens += N;
    if (d->sft) {
        if (model_forward(run->policy, b->logp, b->tokens, b->targets, b->seq_len, n, e) != 0) return -1;
        for (j = 0; j < (int)N; j++) b->dlogp[j] = 0.0f;
        for (i = 0; i < n; i++) {
            double lp = data_seq_logp(b, i);
            acc->loss -= lp / tok_batch;
            acc->logp_chosen += lp;
            for (j = 0; j < b->resp_len[i]; j++) b->dlogp[b->resp_start[i] + j] = (float)(-1.0 / tok_batch);
        }
        return 0;
    }
    /* reference log-probs (not needed by the baselines that ignore the reference) */
    for (i = 0; i < n; i++) run->pin[i].ref_chosen = run->pin[i].ref_rejected = 0.0;
    if (need_ref && ref_logp) {
        for (i = 0; i < n; i++) {
            run->pin[i].ref_chosen = ref_logp[2 * (size_t)rows[i]];
            run->pin[i].ref_rejected = ref_logp[2 * (size_t)rows[i] + 1];
        }
    } else if (need_ref) {
        if (model_forward(run->ref, b->logp, b->tokens, b->targets, b->seq_len, 2 * n, e) != 0) return -1;
        for (i = 0; i < n; i++) {
            run->pin[i].ref_chosen = data_seq_logp(b, 2 * i);
            run->pin[i].ref_rejected = data_seq_logp(b, 2 * i + 1);
        }
    }
    if (model_forward(run->policy, b->logp, b->tokens, b->targets, b->seq_len, 2 * n, e) != 0) return -1;
    for (i = 0; i < n; i++) {
        run->pin[i].policy_chosen = data_seq_logp(b, 2 * i);
        run->pin[i].policy_rejected = data_seq_logp(b, 2 * i + 1);
        run->pin[i].n_chosen = b->resp_len[2 * (size_t)i];
        run->pin[i].n_rejected = b->resp_len[2 * i + 1];
        run->pin[i].tok_rejected = b->logp + b->resp_start[2 * i + 1];
        run->pout[i].d_tok_rejected = c->loss.kind == OBJ_LOSS_UNLIKELIHOOD ? b->dtok + b->resp_start[2 * i + 1] : NULL;
    }
    /* this micro-batch's share of the batch loss (1/B) sum_i L_i, and its derivatives
       (already divided by B: the one normalisation, objective.c step 7) */
    acc->loss += obj_loss_batch(&c->loss, run->pin, run->pout, n, (double)B);
    /* d loss / d logp of each token: every token of a sum receives the sum's gradient */
    for (j = 0; j < (int)N; j++) b->dlogp[j] = 0.0f;
    for (i = 0; i < n; i++) {
        const obj_pair_out *o = &run->pout[i];
        int k;
        for (k = 0; k < 2; k++) {
            int sq = 2 * i + k;
            float g = (float)(k ? o->d_rejected : o->d_chosen);
            for (j = 0; j < b->resp_len[sq]; j++) {
                float extra = (k && o->d_tok_rejected) ? o->d_tok_rejected[j] : 0.0f;
                b->dlogp[b->resp_start[sq] + j] = g + extra;
            }
        }
        acc->reward_chosen += o->reward_chosen;
        acc->reward_rejected += o->reward_rejected;
        acc->accuracy += o->reward_chosen > o->reward_rejected ? 1.0 : 0.0;
        acc->margin += o->reward_chosen - o->reward_rejected;
        acc->logp_chosen += run->pin[i].policy_chosen;
        acc->logp_rejected += run->pin[i].policy_rejected;
    }
    return 0;
}

/* One micro-batch of a training step: the forward half, then the policy's
 * backward pass, which adds the micro-batch's share of d(batch loss) into the
 * gradients. */
static int micro_step(train_state *run, const train_config *c, const int *rows, int n, int B, double tok_batch,
                      train_metrics *acc, size_t *tokens, dpo_err *e) {
    if (forward_part(run, c, &run->data, run->ref_logp, rows, n, B, tok_batch, acc, tokens, e) != 0) return -1;
    return c->mode == TRAIN_RM ? model_backward_score(run->policy, run->buf.dlogp, e)
                               : model_backward(run->policy, run->buf.dlogp, e);
}

/* turn the sums over rows of a batch of B rows into means (the loss already is one) */
static void metrics_mean(train_metrics *m, int B) {
    m->reward_chosen /= B;
    m->reward_rejected /= B;
    m->accuracy /= B;
    m->margin /= B;
    m->logp_chosen /= B;
    m->logp_rejected /= B;
}

/* The metrics of the policy on the whole held-out set, micro_batch rows per
 * forward pass; no backward pass, so the gradients and the run are untouched. */
static int evaluate(train_state *run, const train_config *c, int micro_batch, train_metrics *m, dpo_err *e) {
    const data_set *d = &run->eval;
    double t0 = util_seconds(), tok_all;
    size_t tokens = 0;
    int r0;
    memset(m, 0, sizeof *m);
    tok_all = response_tokens(d, run->eval_rows, d->n_rows);
    for (r0 = 0; r0 < d->n_rows; r0 += micro_batch) {
        int n = d->n_rows - r0 < micro_batch ? d->n_rows - r0 : micro_batch;
        if (forward_part(run, c, d, run->eval_ref_logp, run->eval_rows + r0, n, d->n_rows, tok_all, m, &tokens, e) != 0)
            return dpo_err_prefix(e, "evaluating on %s", c->eval_path);
    }
    metrics_mean(m, d->n_rows);
    m->seconds = util_seconds() - t0;
    m->tokens_per_second = (double)tokens / m->seconds;
    return 0;
}

/* ======================================================================== */
/* checkpoints                                                               */
/* ======================================================================== */

/* dpo train's checkpoints (ckpt.c saves and recovers them): a Hugging Face
 * model directory plus the optimizer state, and trainer_state.json (the run's
 * position and settings), which is written last. */
static const char *const ckpt_files[] = {"trainer_state.json", "config.json", "model.safetensors",
                                         "vocab.json", "merges.txt", "optimizer.safetensors"};
#define N_CKPT_FILES (sizeof ckpt_files / sizeof ckpt_files[0])

/* the mode in trainer_state.json, and the command that trains it ("dpo <command>") */
static const char *mode_name(train_mode m) { return m == TRAIN_SFT ? "sft" : m == TRAIN_RM ? "rm" : "dpo"; }
static const char *mode_command(train_mode m) { return m == TRAIN_SFT ? "sft" : m == TRAIN_RM ? "rm-train" : "train"; }

typedef struct {
    train_mode mode;
    long step;
    long long pairs_seen;
    uint64_t seed;
    int batch, micro_batch;
} ckpt_state;

static int req_int(const json_value *root, const char *key, long long max, long long *v, dpo_err *e) {
    int rc = json_get_int(root, key, 0, max, v, e);
    if (rc > 0) return dpo_errf(e, "missing key \"%s\"", key);
    return rc;
}

static int req_str(const json_value *root, const char *key, const char **v, size_t *len, dpo_err *e) {
    int rc = json_get_string(root, key, v, len, e);
    if (rc > 0) return dpo_errf(e, "missing key \"%s\"", key);
    return rc;
}

/* "mode"; checkpoints written before dpo sft existed have none and are "dpo" */
static int opt_mode(const json_value *root, const char **mode, size_t *len, dpo_err *e) {
    int rc = json_get_string(root, "mode", mode, len, e);
    if (rc > 0) {
        *mode = "dpo";
        *len = 3;
        return 0;
    }
    return rc;
}

static int load_ckpt_state(const char *dir, ckpt_state *st, dpo_err *e) {
    char path[4096], *text, *end;
    size_t len, slen, mlen;
    json_value *root;
    long long step, pairs, batch, micro;
    const char *seed, *mode;
    int rc = -1;
    if (util_path_join(path, sizeof path, dir, "trainer_state.json", e) != 0) return -1;
    if (util_read_file(path, 1 << 16, &text, &len, e) != 0) return -1;
    if (json_parse(text, len, &root, e) != 0) {
        free(text);
        return dpo_err_prefix(e, "%s", path);
    }
    free(text);
    if (root->type != JSON_OBJECT) dpo_errf(e, "not a JSON object");
    else if (opt_mode(root, &mode, &mlen, e) == 0 && req_int(root, "step", 1LL << 40, &step, e) == 0 &&
             req_int(root, "pairs_seen", 1LL << 52, &pairs, e) == 0 &&
             req_int(root, "batch", 1 << 20, &batch, e) == 0 &&
             req_int(root, "micro_batch", 1 << 20, &micro, e) == 0 && req_str(root, "seed", &seed, &slen, e) == 0) {
        errno = 0;
        st->seed = (uint64_t)strtoull(seed, &end, 10);
        if (!(mlen == 3 && (memcmp(mode, "dpo", 3) == 0 || memcmp(mode, "sft", 3) == 0)) &&
            !(mlen == 2 && memcmp(mode, "rm", 2) == 0)) {
            dpo_errf(e, "key \"mode\": not \"dpo\", \"sft\" or \"rm\"");
        } else if (errno != 0 || end == seed || *end != '\0' || seed[0] < '0' || seed[0] > '9') {
            dpo_errf(e, "key \"seed\": not a decimal integer");
        } else if (batch < 1 || micro < 1) {
            dpo_errf(e, "keys \"batch\" and \"micro_batch\" must be at least 1");
        } else {
            st->mode = mlen == 2 ? TRAIN_RM : memcmp(mode, "sft", 3) == 0 ? TRAIN_SFT : TRAIN_DPO;
            st->step = (long)step;
            st->pairs_seen = pairs;
            st->batch = (int)batch;
            st->micro_batch = (int)micro;
            rc = 0;
        }
    }
    json_free(root);
    if (rc != 0) dpo_err_prefix(e, "%s", path);
    return rc;
}

/* ckpt_kind's reader: the step of a valid trainer_state.json */
static int read_step(const char *dir, long *step, void *ctx, dpo_err *e) {
    ckpt_state st;
    (void)ctx;
    if (load_ckpt_state(dir, &st, e) != 0) return -1;
    *step = st.step;
    return 0;
}

static const ckpt_kind train_ckpt = {ckpt_files, N_CKPT_FILES, read_step, NULL};

static int save_checkpoint(const train_state *run, const train_config *c, long step, long long pairs_seen,
                           dpo_err *e) {
    ckpt_paths p;
    char path[4096], state[512];
    int n;
    if (ckpt_begin(&train_ckpt, &p, c->out_dir, e) != 0) return -1;
    if (model_save(run->policy, p.tmp, e) != 0 || tok_write_files(run->tok, p.tmp, e) != 0 ||
        util_path_join(path, sizeof path, p.tmp, "optimizer.safetensors", e) != 0 || optim_save(run->opt, path, e) != 0)
        return -1;
    n = snprintf(state, sizeof state,
                 "{\n  \"mode\": \"%s\",\n  \"step\": %ld,\n  \"pairs_seen\": %lld,\n  \"seed\": \"%llu\",\n  \"batch\": %d,\n"
                 "  \"micro_batch\": %d\n}\n",
                 mode_name(c->mode), step, pairs_seen, (unsigned long long)c->seed, c->batch, c->micro_batch);
    return ckpt_commit(&train_ckpt, &p, state, (size_t)n, e);
}

/* The output directory, before any work (ckpt_check_out). */
int train_check_out(const train_config *c, dpo_err *e) {
    static const char *const names[3] = {"--model", "--ref", "--tokenizer"};
    const char *inputs[3];
    inputs[0] = c->model_dir;
    inputs[1] = c->ref_dir;
    inputs[2] = c->tokenizer_dir;
    return ckpt_check_out(&train_ckpt, c->out_dir, inputs, names, 3, c->resume_dir, e);
}

int train_out_sibling(const train_config *c, const char *dir, char *name, size_t cap) {
    return ckpt_is_sibling(c->out_dir, dir, name, cap);
}

/* the caller's ref_progress, told which data the reference is going through */
typedef struct {
    const train_callbacks *cb;
    const char *which;
} ref_progress_ctx;

static void ref_progress(void *ctx, int done, int total) {
    const ref_progress_ctx *r = ctx;
    r->cb->ref_progress(r->cb->ctx, r->which, done, total);
}

/* the reference's log-probs of every row of d, reporting progress as `which` */
static int ref_logps(model *ref, const data_set *d, int mb, double *out, const train_callbacks *cb,
                     const char *which, dpo_err *e) {
    ref_progress_ctx r;
    r.cb = cb;
    r.which = which;
    return data_logps(ref, d, mb, out, cb && cb->ref_progress ? ref_progress : NULL, &r, e);
}

void train_config_defaults(train_config *c, train_mode mode) {
    memset(c, 0, sizeof *c);
    c->mode = mode;
    c->loss.kind = OBJ_LOSS_DPO;
    c->loss.beta = OBJ_DEFAULT_BETA;
    c->loss.alpha = 1.0;
    optim_config_defaults(&c->opt, OPTIM_RMSPROP);
    c->batch = TRAIN_DEFAULT_BATCH;
    c->micro_batch = TRAIN_DEFAULT_MICRO_BATCH;
    c->epochs = 1;
    c->max_len = DATA_DEFAULT_MAX_LEN;
    c->max_prompt_len = DATA_DEFAULT_MAX_PROMPT_LEN;
    if (mode == TRAIN_RM) { /* a new head: AdamW at 1e-5, no warm-up, clipping at 1 */
        optim_config_defaults(&c->opt, OPTIM_ADAMW);
        c->opt.lr = 1e-5;
        c->opt.warmup = 0;
        c->opt.grad_clip = 1.0;
    }
}

/* the data of one JSONL file, as the mode reads it, lengths fitted to n_ctx */
static int load_data(data_set *d, const train_config *c, const char *path, const tok_tokenizer *t, int eos,
                     int n_ctx, dpo_err *e) {
    int max_len = c->max_len, mpl = c->max_prompt_len;
    data_fit_lengths(&max_len, &mpl, n_ctx);
    return c->mode == TRAIN_SFT ? data_load_sft(d, path, t, eos, max_len, mpl, e)
                                : data_load_pairs(d, path, t, eos, max_len, mpl, e);
}

/* --resume: the newest complete checkpoint, recovered into place (ckpt_recover)
 * and checked against this run's settings; its directory in from, or from[0] =
 * 0 when there is none and the run starts from step 0 (the caller is told). */
static int resume_state(const train_config *c, const train_callbacks *cb, ckpt_state *ck, char *from, size_t cap,
                        dpo_err *e) {
    char note[8192 + 256];
    int found;
    long step;
    from[0] = '\0';
    if (ckpt_recover(&train_ckpt, c->resume_dir, &found, &step, note, sizeof note, e) != 0) return -1;
    if (note[0] && cb && cb->note) cb->note(cb->ctx, note);
    if (!found) return 0;
    if (util_out_dir_path(from, cap, c->resume_dir, e) != 0 || load_ckpt_state(from, ck, e) != 0) return -1;
    if (ck->mode != c->mode)
        return dpo_errf(e, "%s: the checkpoint is of a dpo %s run; resume it with dpo %s", from,
                        mode_command(ck->mode), mode_command(ck->mode));
    if (ck->seed != c->seed || ck->batch != c->batch || ck->micro_batch != c->micro_batch)
        return dpo_errf(e, "%s: the checkpoint was made with --seed %llu --batch %d --micro-batch %d; resume with the same",
                        from, (unsigned long long)ck->seed, ck->batch, ck->micro_batch);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* the run, in the order it happens */

/* the settings train_run relies on, before anything is loaded */
static int check_config(const train_config *c, dpo_err *e) {
    if (c->batch < 1 || c->micro_batch < 1) return dpo_errf(e, "batch and micro-batch must be at least 1");
    if (train_check_out(c, e) != 0) return -1;
    if (c->eval_every < 0) return dpo_errf(e, "eval_every must be >= 0");
    if (c->mode == TRAIN_DPO && obj_loss_config_validate(&c->loss, e) != 0) return -1;
    return 0;
}

/* the tokenizer, the checkpoint to resume (if any), the policy and the reference */
static int load_models(train_state *run, ckpt_state *ck, dpo_err *e) {
    const train_config *c = run->c;
    if (tok_load(&run->tok, c->tokenizer_dir ? c->tokenizer_dir : c->model_dir, e) != 0) return -1;
    if (c->resume_dir && resume_state(c, run->cb, ck, run->resume, sizeof run->resume, e) != 0) return -1;
    if (c->mode != TRAIN_RM) {
        if (model_load(run->policy, run->resume[0] ? run->resume : c->model_dir, e) != 0) return -1;
    } else {
        /* a reward model to go on training, or a language model given a new score head */
        if (model_load_any(run->policy, run->resume[0] ? run->resume : c->model_dir, e) != 0) return -1;
        if (!run->policy->cfg.score_head &&
            model_add_score_head(run->policy, c->seed ^ 0x5c0e5c0e5c0e5c0eULL, TRAIN_RM_HEAD_STD, e) != 0)
            return -1;
    }
    if (run->use_ref) {
        if (model_load(run->ref, c->ref_dir ? c->ref_dir : c->model_dir, e) != 0) return -1;
        model_set_no_grad(run->ref, 1); /* frozen: forward passes only, one layer of activations */
        if (run->ref->cfg.vocab_size != run->policy->cfg.vocab_size)
            return dpo_errf(e, "the reference's vocabulary (%d) differs from the policy's (%d)",
                            run->ref->cfg.vocab_size, run->policy->cfg.vocab_size);
    }
    if (tok_vocab_size(run->tok) > run->policy->cfg.vocab_size)
        return dpo_errf(e, "the tokenizer has %d tokens, more than the model's vocab_size %d", tok_vocab_size(run->tok),
                        run->policy->cfg.vocab_size);
    return 0;
}

/* the training (and held-out) rows, fitted to the models' context; the run's length */
static int load_datasets(train_state *run, dpo_err *e) {
    const train_config *c = run->c;
    int eos = tok_eot_id(run->tok) >= 0 ? tok_eot_id(run->tok) : run->policy->cfg.eos_token_id;
    int n_ctx = run->policy->cfg.n_ctx;
    if (run->use_ref && run->ref->cfg.n_ctx < n_ctx) n_ctx = run->ref->cfg.n_ctx;
    if (load_data(&run->data, c, c->data_path, run->tok, eos, n_ctx, e) != 0) return -1;
    if (c->eval_path && load_data(&run->eval, c, c->eval_path, run->tok, eos, n_ctx, e) != 0) return -1;
    run->total_steps = c->steps > 0 ? c->steps : ((long)c->epochs * run->data.n_rows + run->batch - 1) / run->batch;
    return 0;
}

/* the optimizer, its state and the data position restored when resuming */
static int setup_optimizer(train_state *run, const ckpt_state *ck, dpo_err *e) {
    optim_config oc = run->c->opt;
    char path[4096];
    if (oc.schedule == OPTIM_COSINE && oc.total_steps <= 0) oc.total_steps = run->total_steps;
    if (optim_init(run->opt, &oc, run->policy->num_params, e) != 0) return -1;
    if (!run->resume[0]) return 0;
    if (util_path_join(path, sizeof path, run->resume, "optimizer.safetensors", e) != 0 ||
        optim_load(run->opt, path, e) != 0)
        return -1;
    run->first_step = ck->step;
    run->rows_seen = ck->pairs_seen;
    if (run->first_step > run->total_steps)
        return dpo_errf(e, "%s: the checkpoint is at step %ld, past this run's %ld steps", run->resume,
                        run->first_step, run->total_steps);
    return 0;
}

/* gradients and the per-step buffers */
static int alloc_buffers(train_state *run, dpo_err *e) {
    int i;
    if (model_alloc_grads(run->policy, e) != 0) return -1;
    run->perm = malloc((size_t)run->data.n_rows * sizeof *run->perm);
    run->rows = malloc((size_t)run->batch * sizeof *run->rows);
    run->eval_rows = malloc((size_t)(run->eval.n_rows > 0 ? run->eval.n_rows : 1) * sizeof *run->eval_rows);
    run->pin = calloc((size_t)run->micro_batch, sizeof *run->pin);
    run->pout = calloc((size_t)run->micro_batch, sizeof *run->pout);
    if (!run->perm || !run->rows || !run->eval_rows || !run->pin || !run->pout)
        return dpo_err_oom(e, "the run's index arrays",
                           (size_t)run->data.n_rows * sizeof *run->perm + (size_t)run->batch * sizeof *run->rows +
                               (size_t)(run->eval.n_rows > 0 ? run->eval.n_rows : 1) * sizeof *run->eval_rows +
                               (size_t)run->micro_batch * (sizeof *run->pin + sizeof *run->pout),
                           1);
    for (i = 0; i < run->eval.n_rows; i++) run->eval_rows[i] = i;
    if (run->data.n_rows > 0 && run->rows_seen % run->data.n_rows != 0) /* resuming inside an epoch */
        data_epoch_order(run->perm, run->data.n_rows, run->c->seed, (long)(run->rows_seen / run->data.n_rows));
    return 0;
}

/* The reference's log-probs computed once where they can be: the held-out rows'
 * always (the reference never changes), every training row's with
 * --precompute-ref, after which the reference model is freed. */
static int precompute_reference(train_state *run, dpo_err *e) {
    const train_config *c = run->c;
    if (run->use_ref && c->eval_path) {
        run->eval_ref_logp = malloc(2 * (size_t)run->eval.n_rows * sizeof *run->eval_ref_logp);
        if (!run->eval_ref_logp)
            return dpo_err_oom(e, "the held-out reference log-probs", 2 * (size_t)run->eval.n_rows,
                               sizeof *run->eval_ref_logp);
        if (ref_logps(run->ref, &run->eval, run->micro_batch, run->eval_ref_logp, run->cb, "held-out", e) != 0)
            return -1;
    }
    if (run->use_ref && c->precompute_ref) {
        run->ref_logp = malloc(2 * (size_t)run->data.n_rows * sizeof *run->ref_logp);
        if (!run->ref_logp)
            return dpo_err_oom(e, "the reference log-probs", 2 * (size_t)run->data.n_rows, sizeof *run->ref_logp);
        if (ref_logps(run->ref, &run->data, run->micro_batch, run->ref_logp, run->cb, "training", e) != 0) return -1;
        model_free(run->ref);
    }
    return 0;
}

/* the next B rows of the shuffled stream: epoch k visits the rows in
 * data_epoch_order(seed, k) */
static void draw_batch(train_state *run) {
    int i, n = run->data.n_rows;
    for (i = 0; i < run->batch; i++, run->rows_seen++) {
        int k = (int)(run->rows_seen % n);
        if (k == 0) data_epoch_order(run->perm, n, run->c->seed, (long)(run->rows_seen / n));
        run->rows[i] = run->perm[k];
    }
}

/* One optimizer step on the drawn batch: gradients accumulated over its
 * micro-batches, then the update; a non-finite loss or gradient stops the run. */
static int optimize_batch(train_state *run, long step, train_metrics *m, dpo_err *e) {
    int B = run->batch, mb = run->micro_batch, i;
    double t0 = util_seconds(), tok_batch = response_tokens(&run->data, run->rows, B);
    size_t tokens = 0;
    memset(m, 0, sizeof *m);
    model_zero_grad(run->policy);
    for (i = 0; i < B; i += mb)
        if (micro_step(run, run->c, run->rows + i, B - i < mb ? B - i : mb, B, tok_batch, m, &tokens, e) != 0)
            return -1;
    m->learning_rate = optim_lr(&run->opt->cfg, run->opt->step);
    m->optim_seconds = util_seconds();
    m->grad_norm = optim_step(run->opt, run->policy->params_mem, run->policy->grads_mem);
    m->optim_seconds = util_seconds() - m->optim_seconds;
    if (!isfinite(m->loss) || !isfinite(m->grad_norm))
        return dpo_errf(e, "step %ld: the %s is not finite (%g); training stopped, nothing was saved by this run "
                           "after its last checkpoint", step + 1, isfinite(m->loss) ? "gradient norm" : "loss",
                        isfinite(m->loss) ? m->grad_norm : m->loss);
    m->step = step + 1;
    m->epoch = (double)run->rows_seen / run->data.n_rows;
    metrics_mean(m, B);
    m->seconds = util_seconds() - t0;
    m->tokens_per_second = (double)tokens / m->seconds;
    return 0;
}

int train_step(const train_config *c, model *policy, model *ref, optim_state *opt, const data_set *d,
               const int *rows, train_metrics *m, dpo_err *e) {
    train_state run;
    int i, rc;
    if (c->batch < 1 || c->micro_batch < 1) return dpo_errf(e, "batch and micro-batch must be at least 1");
    if (c->mode == TRAIN_DPO && obj_loss_config_validate(&c->loss, e) != 0) return -1;
    if (c->mode == TRAIN_RM && !policy->cfg.score_head)
        return dpo_errf(e, "train_step: the reward model has no score head");
    if ((c->mode == TRAIN_SFT) != (d->sft != 0))
        return dpo_errf(e, "train_step: the data are %s, the mode %s", d->sft ? "SFT rows" : "preference pairs",
                        mode_name(c->mode));
    if (needs_ref(c) && !ref) return dpo_errf(e, "train_step: the objective needs the reference model");
    for (i = 0; i < c->batch; i++)
        if (rows[i] < 0 || rows[i] >= d->n_rows)
            return dpo_errf(e, "train_step: row %d is outside the data's %d rows", rows[i], d->n_rows);
    if (model_alloc_grads(policy, e) != 0) return -1;
    memset(&run, 0, sizeof run);
    run.c = c;
    run.policy = policy;
    run.ref = ref;
    run.opt = opt;
    run.data = *d; /* read only, and never freed here: d stays the caller's */
    run.batch = c->batch;
    run.micro_batch = c->micro_batch < c->batch ? c->micro_batch : c->batch;
    run.use_ref = needs_ref(c);
    run.rows = malloc((size_t)c->batch * sizeof *run.rows);
    run.pin = calloc((size_t)run.micro_batch, sizeof *run.pin);
    run.pout = calloc((size_t)run.micro_batch, sizeof *run.pout);
    if (!run.rows || !run.pin || !run.pout) {
        rc = dpo_err_oom(e, "the step's index arrays",
                         (size_t)c->batch * sizeof *run.rows +
                             (size_t)run.micro_batch * (sizeof *run.pin + sizeof *run.pout),
                         1);
    } else {
        memcpy(run.rows, rows, (size_t)c->batch * sizeof *run.rows);
        rc = optimize_batch(&run, opt->step, m, e);
    }
    data_batch_free(&run.buf);
    free(run.rows);
    free(run.pin);
    free(run.pout);
    return rc;
}

/* after step number `done` (1-based): the metrics to the caller, an evaluation
 * when one is due, a checkpoint when one is due (the last one is train_run's) */
static int after_step(train_state *run, const train_metrics *m, dpo_err *e) {
    const train_config *c = run->c;
    const train_callbacks *cb = run->cb;
    long done = m->step, total = run->total_steps;
    if (cb && cb->step && cb->step(cb->ctx, m, total, e) != 0) return -1;
    if (c->eval_path && (done == total || (c->eval_every > 0 && done % c->eval_every == 0))) {
        train_metrics em;
        if (evaluate(run, c, run->micro_batch, &em, e) != 0) return -1;
        em.step = m->step;
        em.epoch = m->epoch;
        if (cb && cb->eval && cb->eval(cb->ctx, &em, total, e) != 0) return -1;
    }
    if (c->save_every > 0 && done % c->save_every == 0 && done < total)
        return save_checkpoint(run, c, done, run->rows_seen, e);
    return 0;
}

int train_run(const train_config *c, const train_callbacks *cb, dpo_err *e) {
    train_state run;
    ckpt_state ck;
    train_metrics m;
    long step;
    int rc = -1;
    if (check_config(c, e) != 0) return -1;
    memset(&run, 0, sizeof run);
    memset(&ck, 0, sizeof ck);
    run.c = c;
    run.cb = cb;
    run.policy = &run.own_policy;
    run.ref = &run.own_ref;
    run.opt = &run.own_opt;
    run.batch = c->batch;
    run.micro_batch = c->micro_batch < c->batch ? c->micro_batch : c->batch;
    run.use_ref = needs_ref(c);
    if (load_models(&run, &ck, e) == 0 && load_datasets(&run, e) == 0 && setup_optimizer(&run, &ck, e) == 0 &&
        alloc_buffers(&run, e) == 0) {
        if (cb && cb->start) cb->start(cb->ctx, &run.data, c->eval_path ? &run.eval : NULL, run.total_steps);
        rc = precompute_reference(&run, e);
        for (step = run.first_step; rc == 0 && step < run.total_steps; step++) {
            draw_batch(&run);
            rc = optimize_batch(&run, step, &m, e);
            if (rc == 0) rc = after_step(&run, &m, e);
            if (rc == 0 && step + 1 < run.total_steps && cb && cb->stop && cb->stop(cb->ctx)) {
                /* asked to stop: a checkpoint of this step (unless --save-every just wrote it), then 1 */
                if (!(c->save_every > 0 && (step + 1) % c->save_every == 0))
                    rc = save_checkpoint(&run, c, step + 1, run.rows_seen, e);
                if (rc == 0) rc = 1;
            }
        }
        if (rc == 0) rc = save_checkpoint(&run, c, run.total_steps, run.rows_seen, e);
    }
    train_free(&run);
    return rc;
}
