#!/bin/sh
# bench/train_step.sh - seconds per optimizer step and peak memory of `dpo train`
# on a GPT-2 124M-shaped model (random weights, GPT-2's tokenizer) with 2 pairs
# of 256 tokens per step (P = 2, T = 256): each sequence is a 128-token prompt
# (" the" x 128) and a 128-token response (127 one-token words + <|endoftext|>),
# so a step forwards the reference on 4 sequences and the policy forward and
# backward on the same 4, then takes an RMSprop step over 124M parameters.
# Runs twice: with the reference model in memory, and with --precompute-ref;
# then the same two with PyTorch (bench/torch_dpo_step.py, when Debian's
# python3-torch is there) and prints PyTorch's time per step over dpo's.
# Usage: sh bench/train_step.sh [DPO_BINARY]   (needs GNU time at /usr/bin/time)
set -eu
DPO=${1:-./dpo}
DIR=${BENCH_MODEL:-build/bench-gpt2-124m}
STEPS=${STEPS:-6}
THREADS=${THREADS:-2}
OUT=build/bench-train
mkdir -p "$OUT"
if [ ! -f "$DIR/model.safetensors" ]; then
    "$DPO" init --out "$DIR" --layers 12 --heads 12 --dim 768 --ctx 1024 --vocab 50257 --seed 1
fi
words() { i=0; s=; while [ $i -lt "$2" ]; do s="$s $1"; i=$((i + 1)); done; printf '%s' "$s"; }
P=$(words the 128); C=$(words cat 127); R=$(words dog 127)
printf '{"prompt": "%s", "chosen": "%s", "rejected": "%s"}\n' "$P" "$C" "$R" "$P" "$R" "$C" > "$OUT/pairs.jsonl"
# tokens forwarded per step: 2 pairs x 2 sequences x (256 - 1), the last token predicting nothing
NTOK=1020
for mode in ref precompute; do
    extra=
    [ "$mode" = precompute ] && extra=--precompute-ref
    rm -f "$OUT/$mode.jsonl"
    /usr/bin/time -v "$DPO" train --model "$DIR" --tokenizer data/gpt2 --data "$OUT/pairs.jsonl" --out "$OUT/model-$mode" \
        --batch 2 --micro-batch 2 --max-len 256 --steps "$STEPS" --warmup 0 --lr 1e-6 --threads "$THREADS" \
        --quiet --log "$OUT/$mode.jsonl" $extra 2> "$OUT/$mode.time" >/dev/null
    # step 1 warms up: the median of the others
    sed -n 's/.*"tokens_per_second": \([0-9.e+]*\)}/\1/p' "$OUT/$mode.jsonl" | tail -n +2 |
        awk -v n=$NTOK '{ print n / $1 }' | sort -n > "$OUT/$mode.steps"
    med=$(awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }' "$OUT/$mode.steps")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$OUT/$mode.time")
    printf 'dpo %s: %s threads, %.2f s/step (median of steps 2-%s: %s), peak RSS %.2f GiB\n' "$mode" "$THREADS" "$med" \
        "$STEPS" "$(tr '\n' ' ' < "$OUT/$mode.steps" | sed 's/ $//')" "$(echo "$rss" | awk '{ print $1 / 1048576 }')" |
        tee "$OUT/dpo-$mode.txt"
done
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    for mode in ref precompute; do
        extra=
        [ "$mode" = precompute ] && extra=--precompute
        # OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, set on some machines here, slow OpenBLAS down: unset for the reference only
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch_dpo_step.py --steps "$STEPS" \
            --threads "$THREADS" $extra | tee "$OUT/torch-$mode.txt"
        d=$(sed -n 's/.* threads, \([0-9.]*\) s\/step.*/\1/p' "$OUT/dpo-$mode.txt")
        t=$(sed -n 's/.* threads, \([0-9.]*\) s\/step.*/\1/p' "$OUT/torch-$mode.txt")
        echo "$mode: dpo is $(awk -v d="$d" -v t="$t" 'BEGIN { printf "%.2f", t / d }')x PyTorch (time per step, torch/dpo)"
    done
else
    echo "(no python3-torch: PyTorch reference skipped)"
fi
