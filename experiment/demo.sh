#!/bin/sh
# experiment/demo.sh - what `make demo` runs: DPO steering a small GPT-2 towards
# positive movie reviews, in about a minute, from files the repository ships:
#
#   data/sentiment/sft/         the experiment's SFT model and its tokenizer
#   data/sentiment/pairs.jsonl  preference pairs sampled from it, scored by VADER
#   data/sentiment/prompts.jsonl  held-out prompts (not in the pairs)
#
# It trains DPO from the SFT model on the pairs, then samples the same prompts
# from both models with the same seed and prints them side by side with their
# VADER rewards, and the mean reward and exact KL over all the prompts.
#
# Usage: sh experiment/demo.sh DPO_BINARY OUT_DIR [THREADS]
# No network, no Python: dpo, sh, sed and awk.
set -eu

DPO=$1
OUT=$2
THREADS=${3:-2}
D=data/sentiment
STEPS=${DEMO_STEPS:-100}

die() { echo "demo: error: $*" >&2; exit 1; }
[ -e "$D/sft/model.safetensors" ] || die "$D/sft/model.safetensors is missing (see $D/ORIGIN.md)"
mkdir -p "$OUT"

echo "== DPO from the shipped SFT model: $STEPS steps of 32 pairs (beta 1, RMSprop, lr 1e-4)"
rm -f "$OUT/metrics.jsonl"
"$DPO" train --model "$D/sft" --data "$D/pairs.jsonl" --out "$OUT/dpo" --loss dpo --beta 1 --optimizer rmsprop \
    --lr 1e-4 --warmup 20 --batch 32 --micro-batch 16 --steps "$STEPS" --precompute-ref --threads "$THREADS" \
    --log "$OUT/metrics.jsonl"

# field, scored_samples
. "$(dirname "$0")/common.sh"

# samples of one model for the first 6 prompts, then "text|reward" lines
head -6 "$D/prompts.jsonl" > "$OUT/show.jsonl"
for who in sft dpo; do
    model="$D/sft"
    [ $who = dpo ] && model="$OUT/dpo"
    "$DPO" sample --model "$model" --prompts "$OUT/show.jsonl" --max-new 48 --seed 3 --threads "$THREADS" \
        2>/dev/null > "$OUT/samples_$who.jsonl"
    scored_samples "$DPO" "$OUT/samples_$who.jsonl" "$OUT/rewards_$who.txt" > "$OUT/show_$who.txt"
done
echo
echo "== the same prompts, the same seed: before (SFT) and after (DPO), with VADER's reward in [0, 1]"
paste -d '|' "$OUT/show_sft.txt" "$OUT/show_dpo.txt" |
    awk -F'|' '{ printf "\nprompt: %s\n  before (%.2f): ...%s\n  after  (%.2f): ...%s\n", $1, $3, $2, $6, $5 }'

echo
echo "== over all $(wc -l < "$D/prompts.jsonl") held-out prompts x 4 samples (exact KL from the SFT model, nats per sample)"
for who in sft dpo; do
    model="$D/sft"
    [ $who = dpo ] && model="$OUT/dpo"
    json=$("$DPO" eval --model "$model" --ref "$D/sft" --prompts "$D/prompts.jsonl" --n 4 --max-new 64 --seed 7 \
        --threads "$THREADS" 2>/dev/null)
    printf '%s' "$json" > "$OUT/eval_$who.json"
    printf '%s: reward %.3f +- %.3f, KL %.2f +- %.2f\n' $who "$(printf '%s' "$json" | field reward)" \
        "$(printf '%s' "$json" | field reward_se)" "$(printf '%s' "$json" | field kl)" \
        "$(printf '%s' "$json" | field kl_se)"
done
echo
echo "metrics of the run: $OUT/metrics.jsonl; samples: $OUT/samples_sft.jsonl, $OUT/samples_dpo.jsonl"
# the demo fails loudly if DPO did not steer: its reward must beat the SFT model's by 0.2
awk -v s="$(field reward < "$OUT/eval_sft.json")" -v d="$(field reward < "$OUT/eval_dpo.json")" \
    'BEGIN { if (!(d - s >= 0.2)) { printf "demo: error: DPO reward %s does not beat the SFT model'"'"'s %s by 0.2\n", d, s; exit 1 } }'

