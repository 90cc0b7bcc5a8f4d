/* ppo_train.c - owns the loop of dpo ppo: prompts drawn in a seeded order,
 * rollouts sampled from the policy with the key-value cache (sample.c), scored
 * by the reward (reward.c), the rollout policy's, the reference's and the value
 * model's numbers on every generated token (model.c), advantages and returns
 * (ppo.c), then several epochs of mini-batch updates of the policy (clipped
 * surrogate) and of the value model (clipped value loss), each with its own
 * optimizer (optim.c); checkpoints through ckpt.c.
 * The arithmetic and its derivation are ppo.c's; this file must never print
 * (metrics go to callbacks), never leave a partly written checkpoint, and never
 * let a result depend on the thread count or the sampling batch.
 *
 * The value model is a separate GPT-2 with a score head (model_forward_score),
 * not a head on the policy's trunk: its loss then never pulls on the policy's
 * weights (no coefficient to balance the two losses in one trunk), it can start
 * from the reward model, which already reads whole sequences, as TRL's PPO
 * trainer does, and each model keeps its own optimizer and gradient clipping.
 * The price is a second model's memory, small at the experiment's size. */
#include "ppo_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "data.h"
#include "json.h"
#include "model.h"
#include "ppo.h"
#include "reward.h"
#include "sample.h"
#include "tokenizer.h"

void ppo_config_defaults(ppo_config *c) {
    memset(c, 0, sizeof *c);
    c->kl_coef = 0.05;
    c->kl_horizon = PPO_DEFAULT_KL_HORIZON;
    c->batch = 64;
    c->mini_batch = 16;
    c->micro_batch = 16;
    c->ppo_epochs = 4;
    c->max_new = 32;
    c->max_prompt_len = 0;
    c->temperature = 1.0;
    c->gamma = PPO_DEFAULT_GAMMA;
    c->lam = PPO_DEFAULT_LAM;
    c->clip = PPO_DEFAULT_CLIP;
    c->clip_value = PPO_DEFAULT_CLIP_VALUE;
    optim_config_defaults(&c->opt, OPTIM_ADAMW);
    c->opt.lr = 1e-5;
    c->opt.warmup = 0;
    c->opt.grad_clip = 1.0;
    c->value_opt = c->opt;
    c->steps = 100;
    c->reward_spec = "sentiment";
}

/* ======================================================================== */
/* checkpoints                                                               */
/* ======================================================================== */

static const char *const ppo_files[] = {"ppo_state.json",   "config.json",           "model.safetensors",
                                        "vocab.json",       "merges.txt",            "optimizer.safetensors",
                                        "value_config.json", "value.safetensors",    "value_optimizer.safetensors"};
#define N_PPO_FILES (sizeof ppo_files / sizeof ppo_files[0])

typedef struct {
    long step;
    long long prompts_seen;
    uint64_t seed;
    int batch, mini_batch, micro_batch, ppo_epochs;
    double kl_coef;
} ppo_state_file;

static int get_count(const json_value *root, const char *key, long long max, long long *v, dpo_err *e) {
    int rc = json_get_int(root, key, 0, max, v, e);
    if (rc > 0) return dpo_errf(e, "missing key \"%s\"", key);
    return rc;
}

static int load_state(const char *dir, ppo_state_file *st, dpo_err *e) {
    char path[4096], *text, *end;
    size_t len, slen, mlen;
    json_value *root;
    long long step, seen, b, mb, mic, ep;
    const char *seed, *mode;
    int rc = -1;
    if (util_path_join(path, sizeof path, dir, "ppo_state.json", e) != 0) return -1;
    if (util_read_file(path, 1 << 16, &text, &len, e) != 0) return -1;
    if (json_parse(text, len, &root, e) != 0) {
        free(text);
        return dpo_err_prefix(e, "%s", path);
    }
    free(text);
    if (root->type != JSON_OBJECT) {
        dpo_errf(e, "not a JSON object");
    } else if (json_get_string(root, "mode", &mode, &mlen, e) != 0 || mlen != 3 || memcmp(mode, "ppo", 3) != 0) {
        dpo_errf(e, "key \"mode\": not \"ppo\"");
    } else if (get_count(root, "step", 1LL << 40, &step, e) == 0 &&
               get_count(root, "prompts_seen", 1LL << 52, &seen, e) == 0 &&
               get_count(root, "batch", 1 << 20, &b, e) == 0 && get_count(root, "mini_batch", 1 << 20, &mb, e) == 0 &&
               get_count(root, "micro_batch", 1 << 20, &mic, e) == 0 &&
               get_count(root, "ppo_epochs", 1 << 20, &ep, e) == 0 &&
               json_get_string(root, "seed", &seed, &slen, e) == 0) {
        int krc = json_get_number(root, "kl_coef", &st->kl_coef, e);
        st->seed = (uint64_t)strtoull(seed, &end, 10);
        if (krc != 0) {
            if (krc > 0) dpo_errf(e, "missing key \"kl_coef\"");
        } else if (!(st->kl_coef >= 0.0 && isfinite(st->kl_coef))) {
            dpo_errf(e, "key \"kl_coef\": not a finite number >= 0");
        } else if (end == seed || *end != '\0' || seed[0] < '0' || seed[0] > '9') {
            dpo_errf(e, "key \"seed\": not a decimal integer");
        } else if (b < 1 || mb < 1 || mic < 1 || ep < 1) {
            dpo_errf(e, "batch sizes and ppo_epochs must be at least 1");
        } else {
            st->step = (long)step;
            st->prompts_seen = seen;
            st->batch = (int)b;
            st->mini_batch = (int)mb;
            st->micro_batch = (int)mic;
            st->ppo_epochs = (int)ep;
            rc = 0;
        }
    }
    json_free(root);
    if (rc != 0) dpo_err_prefix(e, "%s", path);
    return rc;
}

static int read_step(const char *dir, long *step, void *ctx, dpo_err *e) {
    ppo_state_file st;
    (void)ctx;
    if (load_state(dir, &st, e) != 0) return -1;
    *step = st.step;
    return 0;
}

static const ckpt_kind ppo_ckpt = {ppo_files, N_PPO_FILES, read_step, NULL};

int ppo_check_out(const ppo_config *c, dpo_err *e) {
    static const char *const names[4] = {"--model", "--ref", "--value", "--tokenizer"};
    const char *inputs[4];
    inputs[0] = c->model_dir;
    inputs[1] = c->ref_dir;
    inputs[2] = c->value_dir;
    inputs[3] = c->tokenizer_dir;
    return ckpt_check_out(&ppo_ckpt, c->out_dir, inputs, names, 4, c->resume_dir, e);
}

/* ======================================================================== */
/* the run's state                                                           */
/* ======================================================================== */

typedef struct {
    const ppo_config *c;
    const ppo_callbacks *cb;
    tok_tokenizer *tok;
    model policy, ref, value;
    reward *rw;
    optim_state opt, vopt;
    data_texts prompts;
    int **pids, *plen;          /* (n_prompts) the prompts' tokens */
    int n_prompts, eos;
    int max_prompt;             /* prompt tokens kept: c->max_prompt_len, or what the context leaves */
    int *perm;                  /* (n_prompts) this epoch's order */
    long first_step;
    long long prompts_seen;
    double kl_coef;
    char resume[4096];
    /* one step's rollouts */
    int *rows;                  /* (B) prompt of each rollout */
    const int **bp;             /* (B) its tokens, for sample_run */
    int *bl;                    /* (B) */
    int **gen, *ngen, *ended;   /* (B) generated ids (end-of-text excluded), how many, whether it ended so */
    data_set roll;              /* (B) rows prompt ++ generated ids (++ end-of-text) */
    double *score;              /* (B) the reward of each completion */
    size_t *off;                /* (B + 1) first token of each rollout in the per-token arrays */
    float *old_lp, *ref_lp, *old_v; /* (tokens) log pi_old, log pi_ref, V of each generated token */
    double *rew, *adv, *ret;    /* (tokens) */
    data_batch buf;
    float *vscratch;            /* (2 N) the value model's scores and their gradients for a micro-batch */
    size_t vcap;
    int *order;                 /* (B) the rollouts' order in one PPO epoch */
} ppo_run_state;

static void run_free(ppo_run_state *s) {
    int i;
    tok_free(s->tok);
    model_free(&s->policy);
    model_free(&s->ref);
    model_free(&s->value);
    reward_free(s->rw);
    optim_free(&s->opt);
    optim_free(&s->vopt);
    for (i = 0; s->pids && i < s->n_prompts; i++) free(s->pids[i]);
    free(s->pids);
    free(s->plen);
    data_texts_free(&s->prompts);
    free(s->perm);
    free(s->rows);
    free(s->bp);
    free(s->bl);
    for (i = 0; s->gen && i < s->c->batch; i++) free(s->gen[i]);
    free(s->gen);
    free(s->ngen);
    free(s->ended);
    data_free(&s->roll);
    free(s->score);
    free(s->off);
    free(s->old_lp);
    free(s->ref_lp);
    free(s->old_v);
    free(s->rew);
    free(s->adv);
    free(s->ret);
    data_batch_free(&s->buf);
    free(s->vscratch);
    free(s->order);
}

static int check_config(const ppo_config *c, dpo_err *e) {
    if (c->batch < 1 || c->mini_batch < 1 || c->micro_batch < 1 || c->ppo_epochs < 1)
        return dpo_errf(e, "batch, mini-batch, micro-batch and ppo-epochs must be at least 1");
    if (c->mini_batch > c->batch) return dpo_errf(e, "the mini-batch (%d) is larger than the batch (%d)", c->mini_batch, c->batch);
    if (c->steps < 1) return dpo_errf(e, "steps must be at least 1");
    if (c->max_new < 1 || c->max_prompt_len < 0) return dpo_errf(e, "max-new must be at least 1, max-prompt-len at least 0");
    if (!(c->temperature >= 1e-3 && c->temperature <= 1e3))
        return dpo_errf(e, "temperature %g: PPO samples at a temperature in [0.001, 1000]", c->temperature);
    if (!(c->kl_coef >= 0.0 && c->kl_coef < 1e6)) return dpo_errf(e, "kl-coef %g must be in [0, 1e6)", c->kl_coef);
    if (!(c->target_kl >= 0.0 && c->target_kl < 1e6)) return dpo_errf(e, "target-kl %g must be in [0, 1e6)", c->target_kl);
    if (c->target_kl > 0.0 && !(c->kl_coef > 0.0)) return dpo_errf(e, "an adaptive coefficient (--target-kl) needs --kl-coef > 0 to start from");
    if (!(c->kl_horizon >= 1.0 && c->kl_horizon < 1e12)) return dpo_errf(e, "kl-horizon %g must be in [1, 1e12)", c->kl_horizon);
    if (!(c->gamma >= 0.0 && c->gamma <= 1.0) || !(c->lam >= 0.0 && c->lam <= 1.0))
        return dpo_errf(e, "gamma and lam must be in [0, 1]");
    if (!(c->clip > 0.0 && c->clip < 1.0) || !(c->clip_value > 0.0 && c->clip_value < 1e6))
        return dpo_errf(e, "cliprange must be in (0, 1) and cliprange-value in (0, 1e6)");
    if (optim_config_validate(&c->opt, e) != 0 || optim_config_validate(&c->value_opt, e) != 0) return -1;
    return ppo_check_out(c, e);
}

/* --resume: the newest complete checkpoint moved into place and read; its
 * settings must be this run's */
static int resume_state(ppo_run_state *s, ppo_state_file *st, dpo_err *e) {
    const ppo_config *c = s->c;
    char note[8192 + 256];
    int found;
    long step;
    if (ckpt_recover(&ppo_ckpt, c->resume_dir, &found, &step, note, sizeof note, e) != 0) return -1;
    if (note[0] && s->cb && s->cb->note) s->cb->note(s->cb->ctx, note);
    if (!found) return 0;
    if (util_out_dir_path(s->resume, sizeof s->resume, c->resume_dir, e) != 0 || load_state(s->resume, st, e) != 0)
        return -1;
    if (st->seed != c->seed || st->batch != c->batch || st->mini_batch != c->mini_batch ||
        st->micro_batch != c->micro_batch || st->ppo_epochs != c->ppo_epochs)
        return dpo_errf(e, "%s: the checkpoint was made with --seed %llu --batch %d --mini-batch %d --micro-batch %d "
                           "--ppo-epochs %d; resume with the same", s->resume, (unsigned long long)st->seed, st->batch,
                        st->mini_batch, st->micro_batch, st->ppo_epochs);
    return 0;
}

/* the value model of a new run: --value, else the reward model, else the
 * policy's trunk with a new head */
static int init_value(ppo_run_state *s, dpo_err *e) {
    const ppo_config *c = s->c;
    const char *from = c->value_dir;
    char note[4200];
    if (!from && strncmp(c->reward_spec, "model:", 6) == 0) from = c->reward_spec + 6;
    if (!from) from = c->model_dir;
    if (model_load_any(&s->value, from, e) != 0) return -1;
    snprintf(note, sizeof note, "value model: %s%s", from,
             s->value.cfg.score_head ? " (its score head)" : " with a new score head");
    if (!s->value.cfg.score_head && model_add_score_head(&s->value, c->seed ^ 0x7a1e7a1e7a1e7a1eULL, 0.02, e) != 0)
        return -1;
    if (s->cb && s->cb->note) s->cb->note(s->cb->ctx, note);
    return 0;
}

/* models, tokenizer, reward and optimizers: a new run's, or the checkpoint's */
static int load_all(ppo_run_state *s, dpo_err *e) {
    const ppo_config *c = s->c;
    ppo_state_file st;
    char path[4096];
    int need;
    optim_config oc = c->opt, vc = c->value_opt;
    memset(&st, 0, sizeof st);
    if (tok_load(&s->tok, c->tokenizer_dir ? c->tokenizer_dir : c->model_dir, e) != 0) return -1;
    if (c->resume_dir && resume_state(s, &st, e) != 0) return -1;
    if (model_load(&s->policy, s->resume[0] ? s->resume : c->model_dir, e) != 0 ||
        model_load(&s->ref, c->ref_dir ? c->ref_dir : c->model_dir, e) != 0)
        return -1;
    if (s->resume[0] ? model_load_as(&s->value, s->resume, "value_config.json", "value.safetensors", e) != 0
                     : init_value(s, e) != 0)
        return -1;
    if (!s->value.cfg.score_head)
        return dpo_errf(e, "%s: the value model has no score head", s->resume[0] ? s->resume : "value");
    if (s->ref.cfg.vocab_size != s->policy.cfg.vocab_size || s->value.cfg.vocab_size != s->policy.cfg.vocab_size)
        return dpo_errf(e, "the policy, reference and value models must share a vocabulary (%d, %d, %d tokens)",
                        s->policy.cfg.vocab_size, s->ref.cfg.vocab_size, s->value.cfg.vocab_size);
    if (tok_vocab_size(s->tok) > s->policy.cfg.vocab_size)
        return dpo_errf(e, "the tokenizer has %d tokens, more than the model's vocab_size %d", tok_vocab_size(s->tok),
                        s->policy.cfg.vocab_size);
    s->max_prompt = c->max_prompt_len;
    if (s->max_prompt == 0) { /* the longest prompt the smallest context leaves room for */
        int ctx = s->policy.cfg.n_ctx;
        if (s->ref.cfg.n_ctx < ctx) ctx = s->ref.cfg.n_ctx;
        if (s->value.cfg.n_ctx < ctx) ctx = s->value.cfg.n_ctx;
        s->max_prompt = ctx - c->max_new;
        if (s->max_prompt < 1)
            return dpo_errf(e, "--max-new %d leaves no room for a prompt in a context of %d tokens", c->max_new, ctx);
    }
    need = s->max_prompt + c->max_new;
    if (need > s->policy.cfg.n_ctx || need > s->ref.cfg.n_ctx || need > s->value.cfg.n_ctx)
        return dpo_errf(e, "--max-prompt-len %d + --max-new %d = %d tokens is more than a model's context (policy %d, "
                           "reference %d, value %d)", s->max_prompt, c->max_new, need, s->policy.cfg.n_ctx,
                        s->ref.cfg.n_ctx, s->value.cfg.n_ctx);
    model_set_no_grad(&s->ref, 1);
    model_set_temperature(&s->policy, c->temperature);
    model_set_temperature(&s->ref, c->temperature);
    if (!(s->cb && s->cb->score) && reward_open(&s->rw, c->reward_spec, e) != 0) return -1;
    s->eos = tok_eot_id(s->tok) >= 0 ? tok_eot_id(s->tok) : s->policy.cfg.eos_token_id;
    if (oc.schedule == OPTIM_COSINE && oc.total_steps <= 0)
        oc.total_steps = c->steps * c->ppo_epochs * ((c->batch + c->mini_batch - 1) / c->mini_batch);
    if (vc.schedule == OPTIM_COSINE && vc.total_steps <= 0) vc.total_steps = oc.total_steps;
    if (optim_init(&s->opt, &oc, s->policy.num_params, e) != 0 || optim_init(&s->vopt, &vc, s->value.num_params, e) != 0 ||
        model_alloc_grads(&s->policy, e) != 0 || model_alloc_grads(&s->value, e) != 0)
        return -1;
    s->kl_coef = c->kl_coef;
    if (!s->resume[0]) return 0;
    if (util_path_join(path, sizeof path, s->resume, "optimizer.safetensors", e) != 0 || optim_load(&s->opt, path, e) != 0 ||
        util_path_join(path, sizeof path, s->resume, "value_optimizer.safetensors", e) != 0 ||
        optim_load(&s->vopt, path, e) != 0)
        return -1;
    s->first_step = st.step;
    s->prompts_seen = st.prompts_seen;
    s->kl_coef = st.kl_coef;
    if (s->first_step > c->steps)
        return dpo_errf(e, "%s: the checkpoint is at step %ld, past this run's %ld steps", s->resume, s->first_step,
                        c->steps);
    return 0;
}

/* the prompts, encoded (the last max_prompt_len tokens of a longer one) */
static int load_prompts(ppo_run_state *s, dpo_err *e) {
    const ppo_config *c = s->c;
    int p;
    if (data_load_texts(&s->prompts, c->prompts_path, 0, e) != 0) return -1;
    if (s->prompts.n_rows < 1) return dpo_errf(e, "%s: no prompts", c->prompts_path);
    s->n_prompts = s->prompts.n_rows;
    s->pids = calloc((size_t)s->n_prompts, sizeof *s->pids);
    s->plen = calloc((size_t)s->n_prompts, sizeof *s->plen);
    s->perm = malloc((size_t)s->n_prompts * sizeof *s->perm);
    if (!s->pids || !s->plen || !s->perm)
        return dpo_err_oom(e, "the prompts' token lists", (size_t)s->n_prompts,
                           sizeof *s->pids + sizeof *s->plen + sizeof *s->perm);
    for (p = 0; p < s->n_prompts; p++) {
        const data_text_row *r = &s->prompts.rows[p];
        if (data_encode_prompt(s->tok, r->prompt, r->prompt_len, s->eos, s->max_prompt, &s->pids[p], &s->plen[p],
                               e) < 0)
            return dpo_err_prefix(e, "%s: line %ld", c->prompts_path, r->line);
    }
    if (s->prompts_seen % s->n_prompts != 0) /* resuming inside an epoch */
        data_epoch_order(s->perm, s->n_prompts, c->seed, (long)(s->prompts_seen / s->n_prompts));
    return 0;
}

static int alloc_rollouts(ppo_run_state *s, dpo_err *e) {
    int B = s->c->batch;
    s->rows = malloc((size_t)B * sizeof *s->rows);
    s->bp = malloc((size_t)B * sizeof *s->bp);
    s->bl = malloc((size_t)B * sizeof *s->bl);
    s->gen = calloc((size_t)B, sizeof *s->gen);
    s->ngen = calloc((size_t)B, sizeof *s->ngen);
    s->ended = calloc((size_t)B, sizeof *s->ended);
    s->score = malloc((size_t)B * sizeof *s->score);
    s->off = malloc(((size_t)B + 1) * sizeof *s->off);
    s->order = malloc((size_t)B * sizeof *s->order);
    if (!s->rows || !s->bp || !s->bl || !s->gen || !s->ngen || !s->ended || !s->score || !s->off || !s->order)
        return dpo_err_oom(e, "the rollouts' arrays",
                           (size_t)B * (sizeof *s->rows + sizeof *s->bp + sizeof *s->bl + sizeof *s->gen +
                                        sizeof *s->ngen + sizeof *s->ended + sizeof *s->score + sizeof *s->order) +
                               ((size_t)B + 1) * sizeof *s->off,
                           1);
    return 0;
}

/* ======================================================================== */
/* one PPO step                                                              */
/* ======================================================================== */

/* the next B prompts of the shuffled stream */
static void draw_prompts(ppo_run_state *s) {
    int i, n = s->n_prompts;
    for (i = 0; i < s->c->batch; i++, s->prompts_seen++) {
        int k = (int)(s->prompts_seen % n);
        if (k == 0) data_epoch_order(s->perm, n, s->c->seed, (long)(s->prompts_seen / n));
        s->rows[i] = s->perm[k];
        s->bp[i] = s->pids[s->rows[i]];
        s->bl[i] = s->plen[s->rows[i]];
    }
}

static int emit_rollout(void *ctx, const sample_result *r, dpo_err *e) {
    ppo_run_state *s = ctx;
    int i = (int)r->prompt;
    int *ids = malloc(((size_t)r->n_ids + 1) * sizeof *ids);
    if (!ids) return dpo_err_oom(e, "a rollout's tokens", (size_t)r->n_ids + 1, sizeof *ids);
    memcpy(ids, r->ids, (size_t)r->n_ids * sizeof *ids);
    free(s->gen[i]);
    s->gen[i] = ids;
    s->ngen[i] = r->n_ids;
    s->ended[i] = r->finish == SAMPLE_EOS;
    return 0;
}

/* grow a float array to n; what names it in the message */
static int grow_f(float **p, size_t n, const char *what, dpo_err *e) {
    float *q = realloc(*p, (n ? n : 1) * sizeof *q);
    if (!q) return dpo_err_oom(e, what, n ? n : 1, sizeof *q);
    *p = q;
    return 0;
}

static int grow_d(double **p, size_t n, const char *what, dpo_err *e) {
    double *q = realloc(*p, (n ? n : 1) * sizeof *q);
    if (!q) return dpo_err_oom(e, what, n ? n : 1, sizeof *q);
    *p = q;
    return 0;
}

/* Sample one completion per drawn prompt (the stream of rollout i of step k is
 * a function of the seed, k and i only), score each, and lay the rollouts out
 * as SFT rows (prompt ++ generated tokens ++ the end-of-text when generated):
 * the generated tokens are the rows' responses. */
static int rollout(ppo_run_state *s, long step, ppo_metrics *m, dpo_err *e) {
    const ppo_config *c = s->c;
    sample_config sc;
    int B = c->batch, i;
    size_t total = 0, pool = 0;
    memset(&sc, 0, sizeof sc);
    sc.filter.temperature = c->temperature;
    sc.filter.top_k = 0;
    sc.filter.top_p = 1.0;
    sc.seed = c->seed ^ ((uint64_t)(step + 1) * 0xd1b54a32d192ed03ULL);
    sc.n = 1;
    sc.max_new = c->max_new;
    sc.batch = B < 64 ? B : 64;
    sc.eos = s->eos;
    if (sample_run(&s->policy, NULL, s->bp, s->bl, B, &sc, emit_rollout, NULL, s, e) != 0) return -1;
    for (i = 0; i < B; i++) {
        const data_text_row *r = &s->prompts.rows[s->rows[i]];
        char *text;
        size_t len;
        int rc;
        if (s->cb && s->cb->score) {
            rc = s->cb->score(s->cb->ctx, s->rows[i], s->gen[i], s->ngen[i], s->ended[i], &s->score[i], e);
        } else {
            if (tok_decode(s->tok, s->gen[i], (size_t)s->ngen[i], &text, &len, e) != 0) return -1;
            rc = reward_score(s->rw, r->prompt, r->prompt_len, text, len, &s->score[i], e);
            free(text);
        }
        if (rc != 0) return -1;
        if (!isfinite(s->score[i])) return dpo_errf(e, "the reward of rollout %d is not finite", i);
        pool += (size_t)s->bl[i] + (size_t)s->ngen[i] + 1;
    }
    /* the rows */
    data_free(&s->roll);
    s->roll.rows = calloc((size_t)(unsigned)B, sizeof *s->roll.rows);
    /* NOLINTNEXTLINE(clang-analyzer-optin.portability.UnixAPI): batch >= 1 (checked), and each rollout adds >= 1 */
    s->roll.pool = malloc(pool * sizeof *s->roll.pool);
    if (!s->roll.rows || !s->roll.pool)
        return dpo_err_oom(e, "the rollouts", (size_t)(unsigned)B * sizeof *s->roll.rows + pool * sizeof *s->roll.pool,
                           1);
    s->roll.n_rows = B;
    s->roll.sft = 1;
    pool = 0;
    for (i = 0; i < B; i++) {
        data_row *row = &s->roll.rows[i];
        int n = s->ngen[i] + (s->ended[i] ? 1 : 0);
        if (n < 1) return dpo_errf(e, "rollout %d generated nothing", i);
        row->off = pool;
        row->n_prompt = s->bl[i];
        row->n_chosen = n;
        memcpy(s->roll.pool + pool, s->bp[i], (size_t)s->bl[i] * sizeof(int));
        memcpy(s->roll.pool + pool + s->bl[i], s->gen[i], (size_t)s->ngen[i] * sizeof(int));
        if (s->ended[i]) s->roll.pool[pool + (size_t)s->bl[i] + (size_t)s->ngen[i]] = s->eos;
        pool += (size_t)s->bl[i] + (size_t)n;
        s->off[i] = total;
        total += (size_t)n;
        m->length += n;
        m->scores += s->score[i];
    }
    s->roll.n_pool = pool;
    s->off[B] = total;
    if (grow_f(&s->old_lp, total, "the rollouts' log-probs", e) != 0 ||
        grow_f(&s->ref_lp, total, "the reference's log-probs", e) != 0 ||
        grow_f(&s->old_v, total, "the rollouts' values", e) != 0 || grow_d(&s->rew, total, "the rewards", e) != 0 ||
        grow_d(&s->adv, total, "the advantages", e) != 0 || grow_d(&s->ret, total, "the returns", e) != 0)
        return -1;
    return 0;
}

/* the value model's scratch for a batch of N tokens: scores, then their gradients */
static int value_scratch(ppo_run_state *s, size_t N, dpo_err *e) {
    if (2 * N <= s->vcap) return 0;
    if (grow_f(&s->vscratch, 2 * N, "the value model's scratch", e) != 0) return -1;
    s->vcap = 2 * N;
    return 0;
}

/* pack rollouts rows[0..n): returns the tokens fed, 0 on out of memory */
static size_t pack(ppo_run_state *s, const int *rows, int n, dpo_err *e) {
    size_t N = data_batch_build(&s->buf, &s->roll, rows, n);
    if (N == 0) {
        dpo_err_oom(e, "a batch's arrays", data_batch_bytes(&s->roll, rows, n, 0), 1);
        return 0;
    }
    if (value_scratch(s, N, e) != 0) return 0;
    return N;
}

/* The rollout policy's and the reference's log-probs and the value model's
 * values of every generated token (forward passes only), then the rewards,
 * advantages (whitened over the batch) and returns. */
static int score_tokens(ppo_run_state *s, ppo_metrics *m, dpo_err *e) {
    const ppo_config *c = s->c;
    int B = c->batch, r0, i, j;
    size_t total = s->off[B], t;
    for (i = 0; i < B; i++) s->order[i] = i;
    for (r0 = 0; r0 < B; r0 += c->micro_batch) {
        int n = B - r0 < c->micro_batch ? B - r0 : c->micro_batch;
        data_batch *b = &s->buf;
        if (pack(s, s->order + r0, n, e) == 0) return -1;
        if (model_forward(&s->ref, b->logp, b->tokens, b->targets, b->seq_len, n, e) != 0) return -1;
        for (i = 0; i < n; i++)
            for (j = 0; j < b->resp_len[i]; j++) s->ref_lp[s->off[r0 + i] + (size_t)j] = b->logp[b->resp_start[i] + j];
        if (model_forward(&s->policy, b->logp, b->tokens, b->targets, b->seq_len, n, e) != 0 ||
            model_forward_score(&s->value, s->vscratch, b->tokens, b->seq_len, n, e) != 0)
            return -1;
        for (i = 0; i < n; i++)
            for (j = 0; j < b->resp_len[i]; j++) {
                s->old_lp[s->off[r0 + i] + (size_t)j] = b->logp[b->resp_start[i] + j];
                s->old_v[s->off[r0 + i] + (size_t)j] = s->vscratch[b->resp_start[i] + j];
            }
    }
    for (i = 0; i < B; i++) {
        size_t o = s->off[i];
        int n = (int)(s->off[i + 1] - o);
        double kl = ppo_token_rewards(s->rew + o, s->old_lp + o, s->ref_lp + o, n, s->score[i], s->kl_coef);
        ppo_gae(s->adv + o, s->ret + o, s->rew + o, s->old_v + o, n, c->gamma, c->lam);
        m->kl += kl;
    }
    for (t = 0; t < total; t++) {
        m->value_mean += s->old_v[t];
        m->returns_mean += s->ret[t];
    }
    m->value_mean /= (double)total;
    m->returns_mean /= (double)total;
    ppo_whiten(s->adv, total);
    return 0;
}

/* One mini-batch: rollouts rows[0..n), its token-mean losses through
 * micro-batches (gradients accumulate), then one update of each model. */
static int minibatch(ppo_run_state *s, const int *rows, int n, ppo_metrics *m, long *clipped, long *vclipped,
                     double *sq, dpo_err *e) {
    const ppo_config *c = s->c;
    data_batch *b = &s->buf;
    size_t tokens = 0;
    double scale;
    int r0, i;
    for (i = 0; i < n; i++) tokens += s->off[rows[i] + 1] - s->off[rows[i]];
    scale = 1.0 / (double)tokens;
    model_zero_grad(&s->policy);
    model_zero_grad(&s->value);
    for (r0 = 0; r0 < n; r0 += c->micro_batch) {
        int k = n - r0 < c->micro_batch ? n - r0 : c->micro_batch;
        size_t N = pack(s, rows + r0, k, e), j;
        float *vs = s->vscratch, *dv = s->vscratch + N;
        if (N == 0) return -1;
        if (model_forward(&s->policy, b->logp, b->tokens, b->targets, b->seq_len, k, e) != 0) return -1;
        for (j = 0; j < N; j++) b->dlogp[j] = 0.0f;
        for (i = 0; i < k; i++) {
            size_t o = s->off[rows[r0 + i]];
            int p = b->resp_start[i];
            m->loss_policy += ppo_policy_loss(b->dlogp + p, b->logp + p, s->old_lp + o, s->adv + o, b->resp_len[i],
                                              c->clip, scale, clipped, sq);
        }
        if (model_backward(&s->policy, b->dlogp, e) != 0) return -1;
        if (model_forward_score(&s->value, vs, b->tokens, b->seq_len, k, e) != 0) return -1;
        for (j = 0; j < N; j++) dv[j] = 0.0f;
        for (i = 0; i < k; i++) {
            size_t o = s->off[rows[r0 + i]];
            int p = b->resp_start[i];
            m->loss_value += ppo_value_loss(dv + p, vs + p, s->old_v + o, s->ret + o, b->resp_len[i], c->clip_value,
                                            scale, vclipped);
        }
        if (model_backward_score(&s->value, dv, e) != 0) return -1;
    }
    m->grad_norm = optim_step(&s->opt, s->policy.params_mem, s->policy.grads_mem);
    m->value_grad_norm = optim_step(&s->vopt, s->value.params_mem, s->value.grads_mem);
    if (!isfinite(m->grad_norm) || !isfinite(m->value_grad_norm))
        return dpo_errf(e, "the %s model's gradient norm is not finite; training stopped, nothing was saved by this run "
                           "after its last checkpoint", isfinite(m->grad_norm) ? "value" : "policy");
    return 0;
}

/* ppo_epochs passes over the rollouts, each in an order drawn from the seed,
 * the step and the epoch, mini_batch rollouts per update */
static int update(ppo_run_state *s, long step, ppo_metrics *m, dpo_err *e) {
    const ppo_config *c = s->c;
    int B = c->batch, ep, r0, n_mb = 0;
    long clipped = 0, vclipped = 0;
    double sq = 0.0;
    size_t total = s->off[B];
    for (ep = 0; ep < c->ppo_epochs; ep++) {
        data_epoch_order(s->order, B, c->seed ^ 0x9f0e5a3c5a3c9f0eULL, (long)step * c->ppo_epochs + ep);
        for (r0 = 0; r0 < B; r0 += c->mini_batch, n_mb++) {
            int n = B - r0 < c->mini_batch ? B - r0 : c->mini_batch;
            if (minibatch(s, s->order + r0, n, m, &clipped, &vclipped, &sq, e) != 0) return -1;
        }
    }
    m->loss_policy /= n_mb;
    m->loss_value /= n_mb;
    m->clipfrac = (double)clipped / ((double)total * c->ppo_epochs);
    m->value_clipfrac = (double)vclipped / ((double)total * c->ppo_epochs);
    m->approxkl = 0.5 * sq / ((double)total * c->ppo_epochs);
    return 0;
}

static int save(ppo_run_state *s, long step, dpo_err *e) {
    ckpt_paths p;
    char path[4096], state[1024];
    int n;
    if (ckpt_begin(&ppo_ckpt, &p, s->c->out_dir, e) != 0) return -1;
    if (model_save(&s->policy, p.tmp, e) != 0 || tok_write_files(s->tok, p.tmp, e) != 0 ||
        util_path_join(path, sizeof path, p.tmp, "optimizer.safetensors", e) != 0 || optim_save(&s->opt, path, e) != 0 ||
        model_save_as(&s->value, p.tmp, "value_config.json", "value.safetensors", e) != 0 ||
        util_path_join(path, sizeof path, p.tmp, "value_optimizer.safetensors", e) != 0 ||
        optim_save(&s->vopt, path, e) != 0)
        return -1;
    n = snprintf(state, sizeof state,
                 "{\n  \"mode\": \"ppo\",\n  \"step\": %ld,\n  \"prompts_seen\": %lld,\n  \"seed\": \"%llu\",\n"
                 "  \"batch\": %d,\n  \"mini_batch\": %d,\n  \"micro_batch\": %d,\n  \"ppo_epochs\": %d,\n"
                 "  \"kl_coef\": %.17g\n}\n",
                 step, s->prompts_seen, (unsigned long long)s->c->seed, s->c->batch, s->c->mini_batch,
                 s->c->micro_batch, s->c->ppo_epochs, s->kl_coef);
    return ckpt_commit(&ppo_ckpt, &p, state, (size_t)n, e);
}

static int ppo_step(ppo_run_state *s, long step, ppo_metrics *m, dpo_err *e) {
    const ppo_config *c = s->c;
    double t0 = util_seconds();
    int B = c->batch;
    memset(m, 0, sizeof *m);
    m->kl_coef = s->kl_coef;
    draw_prompts(s);
    if (rollout(s, step, m, e) != 0) return -1;
    m->rollout_seconds = util_seconds() - t0;
    if (score_tokens(s, m, e) != 0 || update(s, step, m, e) != 0) return -1;
    m->kl /= B;
    m->scores /= B;
    m->length /= B;
    m->non_score_reward = -s->kl_coef * m->kl;
    m->rlhf_reward = m->scores + m->non_score_reward;
    m->step = step + 1;
    m->epoch = (double)s->prompts_seen / s->n_prompts;
    if (c->target_kl > 0.0) s->kl_coef = ppo_kl_update(s->kl_coef, m->kl, c->target_kl, B, c->kl_horizon);
    m->seconds = util_seconds() - t0;
    return 0;
}

int ppo_run(const ppo_config *c, const ppo_callbacks *cb, dpo_err *e) {
    ppo_run_state s;
    ppo_metrics m;
    long step;
    int rc = -1;
    if (check_config(c, e) != 0) return -1;
    memset(&s, 0, sizeof s);
    s.c = c;
    s.cb = cb;
    if (load_all(&s, e) == 0 && load_prompts(&s, e) == 0 && alloc_rollouts(&s, e) == 0) {
        rc = 0;
        for (step = s.first_step; rc == 0 && step < c->steps; step++) {
            rc = ppo_step(&s, step, &m, e);
            if (rc == 0 && cb && cb->step) rc = cb->step(cb->ctx, &m, c->steps, e);
            if (rc == 0 && c->save_every > 0 && (step + 1) % c->save_every == 0 && step + 1 < c->steps)
                rc = save(&s, step + 1, e);
            if (rc == 0 && step + 1 < c->steps && cb && cb->stop && cb->stop(cb->ctx)) {
                if (!(c->save_every > 0 && (step + 1) % c->save_every == 0)) rc = save(&s, step + 1, e);
                if (rc == 0) rc = 1; /* stopped on request, with a checkpoint of this step */
            }
        }
        if (rc == 0) rc = save(&s, c->steps, e);
    }
    run_free(&s);
    return rc;
}
