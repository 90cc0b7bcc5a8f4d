/* cmd_ppo.c - dpo ppo: the command line of PPO training (ppo_train.c), its
 * progress display and its metrics log. It only parses, prints and exits; the
 * loop is ppo_train.c's, the arithmetic ppo.c's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"
#include "cli.h"
#include "optim.h"
#include "ppo_train.h"
#include "util.h"

typedef struct {
    FILE *log;
    const char *log_path;
    int quiet, tty;
    double step_seconds;
    long n_steps, last_step;
} ppo_ui;

/* one JSONL line with TRL's PPO names */
static int write_metrics(FILE *fp, const char *path, const ppo_metrics *m, dpo_err *e) {
    static const char *const names[] = {
        "objective/kl",      "objective/kl_coef",  "objective/scores", "objective/non_score_reward",
        "objective/rlhf_reward", "ppo/loss/policy", "ppo/loss/value",  "ppo/policy/clipfrac",
        "ppo/policy/approxkl", "ppo/val/clipfrac", "ppo/val/mean",     "ppo/returns/mean",
        "ppo/mean_length",   "grad_norm",          "value_grad_norm",  "time/seconds",
        "time/rollout_seconds"};
    const double vals[] = {m->kl,          m->kl_coef,        m->scores,       m->non_score_reward, m->rlhf_reward,
                           m->loss_policy, m->loss_value,     m->clipfrac,     m->approxkl,         m->value_clipfrac,
                           m->value_mean,  m->returns_mean,   m->length,       m->grad_norm,        m->value_grad_norm,
                           m->seconds,     m->rollout_seconds};
    size_t i;
    fprintf(fp, "{\"step\": %ld, ", m->step);
    cli_put_num(fp, "epoch", m->epoch);
    for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        fputs(", ", fp);
        cli_put_num(fp, names[i], vals[i]);
    }
    fputs("}\n", fp);
    if (fflush(fp) != 0 || ferror(fp)) return dpo_errf(e, "%s: cannot write the metrics log: %s", path, strerror(errno));
    return 0;
}

static int ui_step(void *ctx, const ppo_metrics *m, long total, dpo_err *e) {
    ppo_ui *ui = ctx;
    long every = total >= 20 ? total / 20 : 1;
    double eta;
    ui->step_seconds += m->seconds;
    ui->n_steps++;
    ui->last_step = m->step;
    eta = ui->step_seconds / (double)ui->n_steps * (double)(total - m->step);
    if (ui->log && write_metrics(ui->log, ui->log_path, m, e) != 0) return -1;
    if (ui->quiet || (!ui->tty && m->step % every != 0 && m->step != 1 && m->step != total)) return 0;
    fprintf(stderr, "%sstep %ld/%ld  score %.4f  kl %.3f  C %.4g  loss %.4f / %.4f  clip %.3f  %.1f s/step  ETA %.0f s%s",
            ui->tty ? "\r" : "", m->step, total, m->scores, m->kl, m->kl_coef, m->loss_policy, m->loss_value,
            m->clipfrac, m->seconds, eta, !ui->tty || m->step == total ? "\n" : "   ");
    return 0;
}

static void ui_note(void *ctx, const char *msg) {
    char safe[8192];
    ppo_ui *ui = ctx;
    util_escape_text(safe, sizeof safe, msg);
    if (!ui->quiet || strncmp(msg, "value model", 11) != 0) fprintf(stderr, "%s\n", safe);
}

int cmd_ppo(int argc, char **argv) {
    ppo_config c;
    ppo_ui ui;
    ppo_callbacks cb;
    const char *optimizer = "adamw", *log_path = NULL;
    int steps, threads = 0, quiet = 0, rc;
    double lr, vlr = -1.0;
    dpo_err e;
    char dir[4096], sib[4096];
    ppo_config_defaults(&c);
    steps = (int)c.steps;
    lr = c.opt.lr;
    {
        opt_spec opts[] = {
            {"--model", OPT_STR, &c.model_dir, 0, 0, 1, "the policy to train: a language model directory (with its tokenizer)", 0},
            {"--ref", OPT_STR, &c.ref_dir, 0, 0, 0, "the frozen reference of the KL penalty (default: a copy of --model)", 0},
            {"--prompts", OPT_STR, &c.prompts_path, 0, 0, 1, "JSONL rows {\"prompt\": ...} to sample rollouts from, in a seeded order", 0},
            {"--reward", OPT_NAME, &c.reward_spec, 0, 0, 0, "sentiment (VADER: PPO with the true reward) or model:DIR (a reward model from dpo rm-train) (default {default})", 0},
            {"--out", OPT_STR, &c.out_dir, 0, 0, 1, "directory for the trained policy, the value model and checkpoints: new, empty, or a dpo ppo checkpoint", 0},
            {"--value", OPT_STR, &c.value_dir, 0, 0, 0, "where the value model starts (default: the reward model with model:DIR, else --model with a new head)", 0},
            {"--tokenizer", OPT_STR, &c.tokenizer_dir, 0, 0, 0, "tokenizer directory (default: --model's)", 0},
            {"--kl-coef", OPT_DOUBLE, &c.kl_coef, 0, 0, 0, "C, the per-token KL penalty -C (log pi - log pi_ref) (default {default}; with --target-kl, the first C)", 0},
            {"--target-kl", OPT_DOUBLE, &c.target_kl, 0, 0, 0, "adapt C towards this KL per rollout, in nats (Ziegler et al.'s controller; default: C fixed)", 0},
            {"--kl-horizon", OPT_DOUBLE, &c.kl_horizon, 0, 0, 0, "the controller's horizon, in rollouts (default {default})", 0},
            {"--batch", OPT_INT, &c.batch, 1, 1 << 16, 0, "rollouts (prompts) per PPO step (default {default})", 0},
            {"--mini-batch", OPT_INT, &c.mini_batch, 1, 1 << 16, 0, "rollouts per optimizer step (default {default})", 0},
            {"--micro-batch", OPT_INT, &c.micro_batch, 1, 1 << 16, 0, "rollouts per forward/backward pass, gradients accumulated (default {default})", 0},
            {"--ppo-epochs", OPT_INT, &c.ppo_epochs, 1, 1 << 10, 0, "passes over each batch of rollouts (default {default})", 0},
            {"--steps", OPT_INT, &steps, 1, 1 << 30, 0, "PPO steps, each a batch of rollouts (default {default})", 0},
            {"--max-new", OPT_INT, &c.max_new, 1, 1 << 16, 0, "tokens generated at most, the end-of-text included (default {default})", 0},
            {"--max-prompt-len", OPT_INT, &c.max_prompt_len, 1, 1 << 20, 0, "prompt tokens kept, the last ones (default: the context minus --max-new)", 0},
            {"--temperature", OPT_DOUBLE, &c.temperature, 0, 0, 0, "sample rollouts from softmax(logits / T), and train that distribution (default {default})", 0},
            {"--gamma", OPT_DOUBLE, &c.gamma, 0, 0, 0, "discount of GAE (default {default})", 0},
            {"--lam", OPT_DOUBLE, &c.lam, 0, 0, 0, "lambda of GAE (default {default})", 0},
            {"--cliprange", OPT_DOUBLE, &c.clip, 0, 0, 0, "epsilon of the policy's clipped ratio (default {default})", 0},
            {"--cliprange-value", OPT_DOUBLE, &c.clip_value, 0, 0, 0, "how far a value may move from the rollout's before its loss is clipped (default {default})", 0},
            {"--optimizer", OPT_NAME, &optimizer, 0, 0, 0, "adamw, rmsprop or sgd, for both models (default {default})", 0},
            {"--lr", OPT_DOUBLE, &lr, 0, 0, 0, "the policy's learning rate (default {default})", 0},
            {"--value-lr", OPT_DOUBLE, &vlr, 0, 0, 0, "the value model's learning rate (default: --lr)", 0},
            {"--grad-clip", OPT_DOUBLE, &c.opt.grad_clip, 0, 0, 0, "clip each model's gradient norm to this; 0: off (default {default})", 0},
            {"--seed", OPT_U64, &c.seed, 0, 0, 0, "seed of the prompt order and the sampling (default {default})", 0},
            {"--save-every", OPT_INT, &c.save_every, 1, 1 << 30, 0, "also checkpoint into --out every N steps", 0},
            {"--resume", OPT_STR, &c.resume_dir, 0, 0, 0, "continue the run checkpointed in this directory (same settings)", 0},
            {"--threads", OPT_INT, &threads, 1, 1024, 0, "OpenMP threads (default: all); results do not depend on it", 0},
            {"--log", OPT_STR, &log_path, 0, 0, 0, "append one JSON object of metrics per step to this file (TRL's PPO names)", 0},
            {"--quiet", OPT_FLAG, &quiet, 0, 0, 0, "no progress display", 0},
        };
        rc = cli_parse("ppo",
                       "usage: dpo ppo --model DIR --prompts FILE --out DIR [--ref DIR] [--reward sentiment|model:DIR]\n"
                       "               [--kl-coef C | --target-kl K] [--batch N] [--mini-batch N] [--ppo-epochs E]\n"
                       "               [--max-new N] [--temperature T] [options]\n\n"
                       "RLHF's reinforcement-learning step, the DPO paper's main rival: PPO on the\n"
                       "KL-regularised reward. Each step samples one completion per prompt from the\n"
                       "policy (key-value cache), scores it with the reward, adds the per-token KL\n"
                       "penalty -C (log pi - log pi_ref), estimates advantages with a value model\n"
                       "(GAE, gamma and lambda), whitens them, and takes --ppo-epochs passes of\n"
                       "mini-batch updates: the clipped surrogate for the policy, the clipped value\n"
                       "loss for the value model (a separate GPT-2 with a score head), each with its\n"
                       "own optimizer and gradient clipping. The derivation is at the top of ppo.c.\n"
                       "Results are the same for any --threads; --resume continues a checkpoint\n"
                       "bit-identically. Prints progress to standard error; --log writes TRL's names\n"
                       "(objective/kl, objective/scores, ppo/loss/policy, ppo/loss/value,\n"
                       "ppo/policy/clipfrac, ppo/policy/approxkl, ...) as JSONL.",
                       argc, argv, opts, CLI_NOPTS(opts));
    }
    if (rc != 0) return rc > 0 ? 0 : 2;
    c.steps = steps;
    if (optim_kind_from_name(optimizer, &c.opt.kind, NULL) != 0) {
        fprintf(stderr, "dpo ppo: unknown --optimizer '%s' (adamw, rmsprop, sgd)\n", optimizer);
        return 2;
    }
    {
        double clip = c.opt.grad_clip;
        optim_config_defaults(&c.opt, c.opt.kind);
        c.opt.warmup = 0;
        c.opt.grad_clip = clip;
    }
    c.opt.lr = lr;
    c.value_opt = c.opt;
    c.value_opt.lr = vlr >= 0.0 ? vlr : lr;
    if (ppo_check_out(&c, &e) != 0) {
        fprintf(stderr, "dpo ppo: %s\n", e.msg);
        return 2;
    }
    if (log_path && (util_same_file(log_path, c.prompts_path) ||
                     (util_parent_dir(dir, sizeof dir, log_path) == 0 && ckpt_is_sibling(c.out_dir, dir, sib, sizeof sib)))) {
        fprintf(stderr, "dpo ppo: --log %s is the prompts file or lies in the output directory; put it beside them\n",
                log_path);
        return 2;
    }
    util_set_threads(threads);
    memset(&ui, 0, sizeof ui);
    ui.quiet = quiet;
    ui.tty = isatty(2);
    ui.log_path = log_path;
    if (log_path && !(ui.log = fopen(log_path, "a"))) {
        fprintf(stderr, "dpo ppo: error: %s: cannot open for appending: %s\n", log_path, strerror(errno));
        return 1;
    }
    memset(&cb, 0, sizeof cb);
    cb.step = ui_step;
    cb.note = ui_note;
    cb.stop = cli_stop_requested;
    cb.ctx = &ui;
    cli_catch_interrupts();
    {
        double t0 = util_seconds();
        rc = ppo_run(&c, &cb, &e);
        if (ui.log && fclose(ui.log) != 0 && rc == 0)
            rc = dpo_errf(&e, "%s: cannot write the metrics log: %s", log_path, strerror(errno));
        if (rc != 0) {
            if (!quiet && ui.tty) fprintf(stderr, "\n");
            return rc == 1 ? cli_interrupt_exit("ppo", c.out_dir, ui.last_step) : cli_fail("ppo", &e);
        }
        printf("wrote %s (%.1f s)\n", c.out_dir, util_seconds() - t0);
    }
    return 0;
}
