#!/bin/sh
# experiment/run.sh - the DPO paper's controlled-sentiment experiment (its
# Figure 2), rebuilt offline at a scale a 2-core CPU can run, with dpo alone:
#
#   1. a synthetic corpus of movie reviews (dpo corpus), a tokenizer trained on
#      it, a small GPT-2 fine-tuned on it (dpo sft), gated on having learnt
#      review-level sentiment;
#   2. a preference set: prefixes of held-out reviews, 4 samples each from the
#      SFT model, scored by VADER (dpo pairs);
#   3. every method trained from the SFT model (DPO at several betas,
#      Preferred-FT, Unlikelihood) and evaluated every EVAL_EVERY steps on
#      held-out prompts: reward against exact KL (dpo eval); Best-of-N from one
#      set of 16 samples per prompt;
#   3b. the RLHF baseline: a reward model trained on the same pairs (dpo
#      rm-train; its accuracy on pairs from other held-out prompts), then PPO
#      with it and PPO with the true reward (VADER, "PPO-GT"), each at several
#      KL coefficients, evaluated every PPO_EVAL_EVERY steps like the others;
#   4. results: points.tsv, frontier.svg, temperature.tsv/.svg, report.md,
#      times.tsv (each stage's wall time).
#
# Usage: sh experiment/run.sh [--smoke] [DPO_BINARY]      (make experiment, make experiment-smoke)
# Every stage keeps its output under the work directory and marks itself done,
# so an interrupted run continues where it stopped (delete the work directory to
# start over). --smoke runs a reduced version (CI) and checks that DPO's reward
# beats the SFT model's by a clear margin at a bounded KL.
# No network, no Python: dpo, sh and awk.
set -eu

SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
DPO=${1:-./dpo}
THREADS=${THREADS:-2}

if [ $SMOKE -eq 1 ]; then
    W=${WORK:-build/experiment-smoke}
    RESULTS=$W/results
    REVIEWS=4000; HELD_OUT=600; VOCAB=${VOCAB:-1200}
    LAYERS=2; HEADS=2; DIM=64; CTX=96; INIT_STD=0.05
    SFT_STEPS=400; SFT_BATCH=32; SFT_LR=3e-3; SFT_MIN_LR=3e-4; SFT_WARMUP=20
    GATE_N=2; GATE_GAP=${GATE_GAP:--1}   # reported, not required: a smoke-sized SFT has not learnt it
    PREF_PROMPTS=300; EVAL_PROMPTS=100; EVAL_N=2
    DPO_STEPS=200; DPO_BATCH=32; EVAL_EVERY=200
    METHODS="dpo:0.5:3e-4"
    TEMPS="1.0"
    BON="1 4"
    RM_EVAL_PROMPTS=100; RM_EPOCHS=1; RM_LR=3e-4
    PPO_STEPS=10; PPO_EVAL_EVERY=10; PPO_BATCH=32; PPO_LR=3e-5
    # series:KL coefficient (ppo: the learned reward model; ppo-gt: VADER itself)
    RLHF="ppo:0.05 ppo-gt:0.01"
else
    W=${WORK:-build/experiment}
    RESULTS=${RESULTS:-results}
    REVIEWS=30000; HELD_OUT=3000; VOCAB=${VOCAB:-2000}
    LAYERS=4; HEADS=4; DIM=128; CTX=96; INIT_STD=0.05
    SFT_STEPS=2700; SFT_BATCH=64; SFT_LR=1e-3; SFT_MIN_LR=1e-4; SFT_WARMUP=100
    GATE_N=5; GATE_GAP=${GATE_GAP:-0.15}
    PREF_PROMPTS=2000; EVAL_PROMPTS=200; EVAL_N=4
    DPO_STEPS=500; DPO_BATCH=32; EVAL_EVERY=100
    # method:parameter:learning rate (dpo: beta; ul: alpha; pft: none)
    METHODS="dpo:0.1:3e-5 dpo:0.5:3e-5 dpo:1:3e-5 dpo:5:3e-5 dpo:1:1e-4 pft:-:1e-4 ul:0.01:3e-5 ul:0.1:3e-5 ul:1:3e-5"
    TEMPS="0.25 0.5 0.75 1.0"
    BON="1 2 4 8 16"
    RM_EVAL_PROMPTS=300; RM_EPOCHS=1; RM_LR=1e-4
    PPO_STEPS=60; PPO_EVAL_EVERY=20; PPO_BATCH=64; PPO_LR=3e-5
    RLHF="ppo:0.05 ppo:0.2 ppo:0.5 ppo-gt:0.01 ppo-gt:0.05 ppo-gt:0.1"
fi
mkdir -p "$W/done" "$RESULTS"
T0=$(date +%s)

say() { echo "[experiment $(( $(date +%s) - T0 )) s] $*" >&2; }
die() { echo "experiment: error: $*" >&2; exit 1; }

# stage NAME COMMAND...: run once; its wall time goes to $W/times.tsv
stage() {
    name=$1; shift
    if [ -e "$W/done/$name" ]; then say "$name: done in an earlier run, kept"; return 0; fi
    say "$name: running"
    s0=$(date +%s)
    "$@" || die "stage $name failed (its output so far is kept in $W; run again to continue)"
    printf '%s\t%s\n' "$name" $(( $(date +%s) - s0 )) >> "$W/times.tsv"
    : > "$W/done/$name"
}

# ------------------------------------------------------------------------
# 1. corpus, tokenizer, SFT model, gate

corpus() { "$DPO" corpus --out "$W/corpus" --reviews $REVIEWS --held-out $HELD_OUT --seed 1; }
tokenizer() { "$DPO" tokenizer-train --data "$W/corpus/train.txt" --vocab-size $VOCAB --out "$W/tok"; }
# one review per line -> {"text": ...} (the corpus has no quotes, backslashes or control bytes)
sft_data() {
    awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "{\"text\": \"%s\"}\n", $0 }' "$W/corpus/train.txt" > "$W/sft.jsonl"
}
# weights' std 0.05 instead of GPT-2's 0.02: the SFT model learns review-level
# sentiment sooner (README, "Why the grammar has leaning phrasings")
init() { "$DPO" init --out "$W/init" --layers $LAYERS --heads $HEADS --dim $DIM --ctx $CTX --tokenizer "$W/tok" --seed 1 \
    --init-std $INIT_STD; }
sft() {
    res=""
    [ -e "$W/sft/trainer_state.json" ] && res="--resume $W/sft"
    "$DPO" sft --model "$W/init" --data "$W/sft.jsonl" --out "$W/sft" $res --optimizer adamw --lr $SFT_LR \
        --min-lr $SFT_MIN_LR --schedule cosine --warmup $SFT_WARMUP --batch $SFT_BATCH --micro-batch 16 \
        --steps $SFT_STEPS --save-every 200 --threads $THREADS --log "$W/sft_log.jsonl"
}

# field, scored_samples
. "$(dirname "$0")/common.sh"

# The SFT loss does not show whether the model learnt review-level sentiment:
# after the opening of a clearly positive held-out review (hidden rating 9-10)
# its completions must score higher than after a clearly negative one (rating
# 1-2), by GATE_GAP at least. 20 openings of 12 words each way.
gate() {
    for side in pos neg; do
        awk -F'\t' -v side=$side 'NR == FNR { if ($2 == "heldout" && (side == "pos" ? $3 >= 9 : $3 <= 2)) keep[$1] = 1; next }
            (FNR in keep) && n < 20 { k = split($0, w, " "); p = w[1]; for (i = 2; i <= 12 && i <= k; i++) p = p " " w[i]
                                       printf "{\"prompt\": \"%s\"}\n", p; n++ }' \
            "$W/corpus/ratings.tsv" "$W/corpus/heldout.txt" > "$W/gate_$side.jsonl"
    done
    pos=$("$DPO" eval --model "$W/sft" --ref "$W/sft" --prompts "$W/gate_pos.jsonl" --n $GATE_N --max-new 48 \
        --threads $THREADS 2>/dev/null | field reward)
    neg=$("$DPO" eval --model "$W/sft" --ref "$W/sft" --prompts "$W/gate_neg.jsonl" --n $GATE_N --max-new 48 \
        --threads $THREADS 2>/dev/null | field reward)
    printf 'gate\tpositive_openings\t%s\tnegative_openings\t%s\tgap_needed\t%s\n' "$pos" "$neg" $GATE_GAP > "$W/gate.tsv"
    if awk -v p="$pos" -v n="$neg" -v g=$GATE_GAP 'BEGIN { exit !(p - n >= g) }'; then
        say "gate passed: completions after positive openings score $pos, after negative ones $neg"
    else
        die "the SFT model has not learnt review-level sentiment: completions after positive openings score $pos, after negative ones $neg (a gap of $GATE_GAP is needed); train it longer (SFT_STEPS) or check the corpus"
    fi
}

# ------------------------------------------------------------------------
# 2. prompts and the preference set

# prefixes of held-out reviews, 2 to 8 words: the first PREF_PROMPTS reviews for
# the preference set, the next EVAL_PROMPTS for evaluation (disjoint)
prompts() {
    awk -v a=$PREF_PROMPTS -v b=$EVAL_PROMPTS -v dir="$W" '
        NR <= a + b { k = 2 + (NR * 7919) % 7; p = $1; for (i = 2; i <= k && i <= NF; i++) p = p " " $i
                      f = NR <= a ? dir "/pref_prompts.jsonl" : dir "/eval_prompts.jsonl"
                      printf "{\"prompt\": \"%s\"}\n", p > f }' "$W/corpus/heldout.txt"
}
pairs() {
    "$DPO" pairs --model "$W/sft" --prompts "$W/pref_prompts.jsonl" --n 4 --reward sentiment --seed 1 \
        --threads $THREADS --out "$W/pairs.jsonl"
}

# ------------------------------------------------------------------------
# 3. methods, evaluated on the held-out prompts

HEADER="method	param	lr	step	reward	reward_se	kl	kl_se	kl_sampled	exclaim	but	length	truncated	distinct2"

# eval_point METHOD PARAM LR STEP MODEL: one row of points.tsv
eval_point() {
    json=$("$DPO" eval --model "$5" --ref "$W/sft" --prompts "$W/eval_prompts.jsonl" --n $EVAL_N --max-new 64 \
        --seed 7 --threads $THREADS 2>/dev/null)
    row="$1	$2	$3	$4"
    for f in reward reward_se kl kl_se kl_sampled exclaim but length truncated distinct2; do
        row="$row	$(printf '%s' "$json" | field $f)"
    done
    printf '%s\n' "$row" >> "$W/points/$1_$2_$3.tsv"
}

sft_point() {
    mkdir -p "$W/points"
    rm -f "$W/points/sft_-_-.tsv"
    eval_point sft - - 0 "$W/sft"
}

# train METHOD PARAM LR in chunks of EVAL_EVERY steps, evaluating after each
run_method() {
    m=$1; p=$2; lr=$3; out="$W/runs/${m}_${p}_${lr}"
    mkdir -p "$W/runs" "$W/points"
    case $m in
        dpo) loss="--loss dpo --beta $p" ;;
        pft) loss="--loss sft" ;;
        ul) loss="--loss unlikelihood --alpha $p" ;;
        *) die "unknown method $m" ;;
    esac
    step=0
    [ -e "$W/points/${m}_${p}_${lr}.tsv" ] && step=$(( $(wc -l < "$W/points/${m}_${p}_${lr}.tsv") * EVAL_EVERY ))
    while [ $step -lt $DPO_STEPS ]; do
        step=$(( step + EVAL_EVERY ))
        res=""
        [ -e "$out/trainer_state.json" ] && res="--resume $out"
        "$DPO" train --model "$W/sft" --data "$W/pairs.jsonl" --out "$out" $res $loss --optimizer rmsprop --lr $lr \
            --warmup 50 --batch $DPO_BATCH --micro-batch 16 --steps $step --quiet \
            --threads $THREADS --log "$W/runs/${m}_${p}_${lr}.log" || return 1
        eval_point $m $p $lr $step "$out"
        say "$m $p (lr $lr) step $step: $(tail -1 "$W/points/${m}_${p}_${lr}.tsv" | cut -f5,7 | awk '{ printf "reward %s, KL %s", $1, $2 }')"
    done
}

# Best-of-N: 16 samples per held-out prompt from the SFT model, scored; for each N
# the best of the first N. Its KL from the SFT model is the usual bound
# log N - (N - 1) / N (it uses the true reward at test time, and N samples).
best_of_n() {
    "$DPO" sample --model "$W/sft" --prompts "$W/eval_prompts.jsonl" --n 16 --max-new 64 --seed 7 --threads $THREADS \
        --out "$W/bon_samples.jsonl"
    "$DPO" sentiment --jsonl "$W/bon_samples.jsonl" | field reward > "$W/bon_rewards.txt"
    : > "$W/points/bon.tsv"
    for n in $BON; do
        awk -v n=$n '{ i = (NR - 1) % 16; if (i < n && (i == 0 || $1 > best)) best = $1
                       if (i == 15) { s += best; s2 += best * best; k++ } }
                     END { m = s / k; se = sqrt((s2 / k - m * m) / (k - 1))
                           kl = log(n) - (n - 1) / n
                           printf "best-of-n\t%d\t-\t0\t%.6f\t%.6f\t%.6f\t0\t\t\t\t\t\t\n", n, m, se, kl }' \
            "$W/bon_rewards.txt" >> "$W/points/bon.tsv"
    done
}

# ------------------------------------------------------------------------
# 3b. the RLHF baseline: a reward model, then PPO

# pairs for the reward model's held-out accuracy: the SFT model's samples after
# RM_EVAL_PROMPTS other held-out review prefixes (after the preference and the
# evaluation prompts), scored by VADER as the training pairs were
rm_pairs() {
    awk -v a=$((PREF_PROMPTS + EVAL_PROMPTS)) -v c=$RM_EVAL_PROMPTS '
        NR > a && NR <= a + c { k = 2 + (NR * 7919) % 7; p = $1; for (i = 2; i <= k && i <= NF; i++) p = p " " $i
                                printf "{\"prompt\": \"%s\"}\n", p }' "$W/corpus/heldout.txt" > "$W/rm_prompts.jsonl"
    "$DPO" pairs --model "$W/sft" --prompts "$W/rm_prompts.jsonl" --n 4 --reward sentiment --seed 2 \
        --threads $THREADS --out "$W/rm_eval_pairs.jsonl"
}
# the reward model: the SFT model with a score head, on DPO's pairs
rm_train() {
    res=""
    [ -e "$W/rm/trainer_state.json" ] && res="--resume $W/rm"
    "$DPO" rm-train --model "$W/sft" --data "$W/pairs.jsonl" --eval-data "$W/rm_eval_pairs.jsonl" --out "$W/rm" $res \
        --batch 64 --micro-batch 32 --epochs $RM_EPOCHS --lr $RM_LR --quiet --threads $THREADS --log "$W/rm_log.jsonl"
}

# PPO of one series at one KL coefficient from the SFT model, on the preference
# set's prompts, in chunks of PPO_EVAL_EVERY steps, evaluated after each
run_ppo() {
    series=$1; c=$2; out="$W/runs/${series}_${c}_${PPO_LR}"
    reward="model:$W/rm"
    [ $series = ppo-gt ] && reward=sentiment
    mkdir -p "$W/runs" "$W/points"
    step=0
    [ -e "$W/points/${series}_${c}_${PPO_LR}.tsv" ] && step=$(( $(wc -l < "$W/points/${series}_${c}_${PPO_LR}.tsv") * PPO_EVAL_EVERY ))
    while [ $step -lt $PPO_STEPS ]; do
        step=$(( step + PPO_EVAL_EVERY ))
        res=""
        [ -e "$out/ppo_state.json" ] && res="--resume $out"
        "$DPO" ppo --model "$W/sft" --prompts "$W/pref_prompts.jsonl" --reward "$reward" --out "$out" $res \
            --kl-coef $c --batch $PPO_BATCH --mini-batch 16 --micro-batch 16 --ppo-epochs 4 --max-new 64 --lr $PPO_LR \
            --steps $step --seed 1 --quiet --threads $THREADS --log "$W/runs/${series}_${c}_${PPO_LR}.log" || return 1
        eval_point $series $c $PPO_LR $step "$out"
        say "$series C=$c step $step: $(tail -1 "$W/points/${series}_${c}_${PPO_LR}.tsv" | cut -f5,7 | awk '{ printf "reward %s, KL %s", $1, $2 }')"
    done
}

# temperature rows of the PPO runs' final models (the other methods' are the temperatures stage's)
temperatures_rlhf() {
    : > "$W/temperature_rlhf.tsv"
    for spec in $RLHF; do
        series=${spec%%:*}; c=${spec#*:}
        for t in $TEMPS; do
            json=$("$DPO" eval --model "$W/runs/${series}_${c}_${PPO_LR}" --ref "$W/sft" --prompts "$W/eval_prompts.jsonl" \
                --n $EVAL_N --max-new 64 --seed 7 --temperature $t --threads $THREADS 2>/dev/null)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $series $c $PPO_LR $t "$(printf '%s' "$json" | field reward)" \
                "$(printf '%s' "$json" | field reward_se)" "$(printf '%s' "$json" | field kl)" \
                "$(printf '%s' "$json" | field kl_se)" >> "$W/temperature_rlhf.tsv"
        done
    done
}

# each method's final model at several sampling temperatures
temperatures() {
    printf 'method\tparam\tlr\ttemperature\treward\treward_se\tkl\tkl_se\n' > "$W/temperature.tsv"
    for spec in sft:-:- $METHODS; do
        m=${spec%%:*}; rest=${spec#*:}; p=${rest%%:*}; lr=${rest#*:}
        model="$W/runs/${m}_${p}_${lr}"
        [ $m = sft ] && model="$W/sft"
        for t in $TEMPS; do
            json=$("$DPO" eval --model "$model" --ref "$W/sft" --prompts "$W/eval_prompts.jsonl" --n $EVAL_N \
                --max-new 64 --seed 7 --temperature $t --threads $THREADS 2>/dev/null)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $m $p $lr $t "$(printf '%s' "$json" | field reward)" \
                "$(printf '%s' "$json" | field reward_se)" "$(printf '%s' "$json" | field kl)" \
                "$(printf '%s' "$json" | field kl_se)" >> "$W/temperature.tsv"
        done
    done
}

# report.md: each method's final point with what a reward can be gamed with,
# and a few samples of every method side by side for the same prompts
report() {
    f="$RESULTS/report.md"
    head -3 "$W/eval_prompts.jsonl" > "$W/report_prompts.jsonl"
    {
        echo "# Controlled sentiment: results of \`make experiment\`"
        echo
        echo "Generated by experiment/run.sh; every number below is in points.tsv and temperature.tsv."
        echo
        echo "## Final points (held-out prompts, temperature 1)"
        echo
        echo "| method | param | lr | step | reward | KL | \"!\" per sample | \"but\" per sample | length | truncated | distinct-2 |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|"
        for t in "$W/points/"*.tsv; do
            tail -1 "$t" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %.3f +- %.3f | %.2f +- %.2f | %s | %s | %s | %s | %s |\n",
                $1, $2, $3, $4, $5, $6, $7, $8, $10, $11, $12, $13, $14 }'
        done
        echo
        echo "## The reward model of the PPO series"
        echo
        tail -1 "$W/rm_log.jsonl" | awk -v n="$(wc -l < "$W/rm_eval_pairs.jsonl")" -v p="$(wc -l < "$W/rm_prompts.jsonl")" '{ a = $0; sub(/.*"eval_accuracy": /, "", a); sub(/,.*/, "", a)
            l = $0; sub(/.*"eval_loss": /, "", l); sub(/,.*/, "", l)
            printf "Held-out accuracy %.3f (Bradley-Terry loss %.3f) on %d pairs from %d prompts that neither DPO nor the reward model saw.\n", a, l, n, p }'
        echo
        echo "## Samples (temperature 1, seed 7)"
        for spec in sft:-:- $METHODS $(for r in $RLHF; do echo "${r%%:*}:${r#*:}:$PPO_LR"; done); do
            m=${spec%%:*}; rest=${spec#*:}; p=${rest%%:*}; lr=${rest#*:}
            model="$W/runs/${m}_${p}_${lr}"
            [ $m = sft ] && model="$W/sft"
            echo
            echo "### $m $p (lr $lr)"
            echo
            "$DPO" sample --model "$model" --prompts "$W/report_prompts.jsonl" --max-new 64 --seed 7 --threads $THREADS \
                2>/dev/null > "$W/report_samples.jsonl"
            scored_samples "$DPO" "$W/report_samples.jsonl" "$W/report_rewards.txt" |
                awk -F'|' '{ printf "- **%s**%s (reward %s)\n", $1, $2, $3 }'
        done
        echo
        echo "## Stage wall times (seconds)"
        echo
        awk -F'\t' '{ printf "- %s: %s s\n", $1, $2 }' "$W/times.tsv"
    } > "$f"
}

# A method's name in the figures' legends, from (method, param, lr)
LABEL_AWK='function label(m, p, lr) {
    if (m == "dpo") return "DPO beta=" p (lr == "3e-5" ? "" : " lr=" lr)
    if (m == "pft") return "Preferred-FT"
    if (m == "ul") return "Unlikelihood alpha=" p
    if (m == "best-of-n") return "Best-of-N"
    if (m == "ppo") return "PPO (reward model) C=" p
    if (m == "ppo-gt") return "PPO-GT (VADER) C=" p
    return "SFT" }'

# frontier.svg (reward against KL, like the paper's Figure 2, left) and
# temperature.svg (reward against the sampling temperature, Figure 2, right)
figures() {
    awk -F'\t' "$LABEL_AWK"' NR == 1 { print "method\tkl\tkl_se\treward\treward_se"; next }
        { printf "%s\t%s\t%s\t%s\t%s\n", label($1, $2, $3), $7, $8, $5, $6 }' \
        "$RESULTS/points.tsv" > "$W/frontier_plot.tsv"
    "$DPO" plot --data "$W/frontier_plot.tsv" --x kl --xerr kl_se --y reward --yerr reward_se --series method --lines \
        --out "$RESULTS/frontier.svg" --title "Reward against KL from the SFT model (held-out prompts, T = 1)" \
        --xlabel "sequence-level KL(pi || pi_SFT), exact (nats)" --ylabel "VADER reward (compound + 1) / 2"
    # the same, KL up to 14 nats (where every method but a collapsed one lies)
    "$DPO" plot --data "$W/frontier_plot.tsv" --x kl --xerr kl_se --y reward --yerr reward_se --series method --lines \
        --out "$RESULTS/frontier_zoom.svg" --xmin 0 --xmax 14 \
        --title "Reward against KL from the SFT model, KL up to 14 nats" \
        --xlabel "sequence-level KL(pi || pi_SFT), exact (nats)" --ylabel "VADER reward (compound + 1) / 2"
    awk -F'\t' "$LABEL_AWK"' NR == 1 { print "method\ttemperature\treward\treward_se"; next }
        { printf "%s\t%s\t%s\t%s\n", label($1, $2, $3), $4, $5, $6 }' \
        "$RESULTS/temperature.tsv" > "$W/temperature_plot.tsv"
    "$DPO" plot --data "$W/temperature_plot.tsv" --x temperature --y reward --yerr reward_se --series method --lines \
        --out "$RESULTS/temperature.svg" --title "Reward against sampling temperature (final models)" \
        --xlabel "sampling temperature" --ylabel "VADER reward (compound + 1) / 2"
}

# ------------------------------------------------------------------------
# run

stage corpus corpus
stage tokenizer tokenizer
stage sft_data sft_data
stage init init
stage sft sft
stage gate gate
stage prompts prompts
stage pairs pairs
stage sft_point sft_point
n_methods=$(echo $METHODS | wc -w); i_method=0; t_methods=0; n_timed=0
for spec in $METHODS; do
    m=${spec%%:*}; rest=${spec#*:}; p=${rest%%:*}; lr=${rest#*:}
    i_method=$((i_method + 1))
    eta=""
    [ $n_timed -gt 0 ] && eta=", about $(( t_methods / n_timed * (n_methods - i_method + 1) )) s left for the methods"
    had=0; [ -e "$W/done/run_${m}_${p}_${lr}" ] && had=1
    [ $had -eq 1 ] || say "method $i_method of $n_methods: $m $p (lr $lr)$eta"
    s_m=$(date +%s)
    stage "run_${m}_${p}_${lr}" run_method $m $p $lr
    if [ $had -eq 0 ]; then t_methods=$(( t_methods + $(date +%s) - s_m )); n_timed=$((n_timed + 1)); fi
done
stage best_of_n best_of_n
stage temperatures temperatures
stage rm_pairs rm_pairs
stage rm_train rm_train
for spec in $RLHF; do
    series=${spec%%:*}; c=${spec#*:}
    stage "run_${series}_${c}_${PPO_LR}" run_ppo $series $c
done
stage temperatures_rlhf temperatures_rlhf

# results: every point in one table
{ printf '%s\n' "$HEADER"; cat "$W/points/"*.tsv; } > "$RESULTS/points.tsv"
cat "$W/temperature.tsv" "$W/temperature_rlhf.tsv" > "$RESULTS/temperature.tsv"
cp "$W/times.tsv" "$RESULTS/times.tsv"
figures
report
say "done: $RESULTS/points.tsv, frontier.svg, frontier_zoom.svg, temperature.tsv, temperature.svg, report.md (stage times in times.tsv)"

if [ $SMOKE -eq 1 ]; then
    # DPO's final held-out reward must beat the SFT model's by a clear margin, at a bounded KL
    sft_r=$(awk -F'\t' '$1 == "sft" { print $5 }' "$RESULTS/points.tsv")
    awk -F'\t' -v s="$sft_r" '$1 == "dpo" { r = $5; se = $6; kl = $7 }
        END { ok = r - s >= 0.05 && kl < 30; printf "smoke: SFT reward %.3f, DPO reward %.3f (se %.3f) at KL %.2f: %s\n", s, r, se, kl, ok ? "passed" : "FAILED"
              exit !ok }' "$RESULTS/points.tsv"
fi
