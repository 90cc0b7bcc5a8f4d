#!/bin/sh
# tests/compilers.sh - two builds of dpo (gcc's and clang's, or two matrix
# kernels from tests/kernels.sh) must compute the same bits: the same tiny
# training run (AdamW, 3 steps) saved by each gives byte-identical model and
# optimizer files; so do a reward model (dpo rm-train, 2 steps) and a PPO run on
# it (2 steps at temperature 0.7: sampling, the reward model, the value model).
# Usage: sh tests/compilers.sh DPO_A DPO_B
A=$1; B=$2
T=$(mktemp -d /tmp/dpo-cc-XXXXXX)
trap 'rm -rf "$T"' EXIT
"$A" init --out "$T/m" --layers 2 --heads 2 --dim 32 --ctx 32 --tokenizer data/gpt2 --seed 1 >/dev/null || exit 1
for x in A B; do
    eval "bin=\$$x"
    "$bin" train --model "$T/m" --data data/demo/sentiment_pairs.jsonl --out "$T/o$x" --steps 3 --batch 4 \
        --micro-batch 2 --lr 1e-3 --warmup 0 --optimizer adamw --quiet >/dev/null || exit 1
    "$bin" rm-train --model "$T/m" --data data/demo/sentiment_pairs.jsonl --out "$T/r$x" --steps 2 --batch 4 \
        --micro-batch 2 --lr 1e-3 --quiet >/dev/null || exit 1
    "$bin" ppo --model "$T/m" --prompts data/sentiment/prompts.jsonl --reward "model:$T/r$x" --out "$T/p$x" --steps 2 \
        --batch 4 --mini-batch 2 --micro-batch 1 --ppo-epochs 1 --max-new 4 --temperature 0.7 --lr 1e-3 --quiet >/dev/null || exit 1
done
if cmp "$T/oA/model.safetensors" "$T/oB/model.safetensors" && cmp "$T/oA/optimizer.safetensors" "$T/oB/optimizer.safetensors" &&
    cmp "$T/rA/model.safetensors" "$T/rB/model.safetensors" && cmp "$T/pA/model.safetensors" "$T/pB/model.safetensors" &&
    cmp "$T/pA/value.safetensors" "$T/pB/value.safetensors" && cmp "$T/pA/ppo_state.json" "$T/pB/ppo_state.json"; then
    echo "same bits: $A and $B saved identical model and optimizer bytes (train, rm-train, ppo)"
else
    echo "FAIL: $A and $B compute different bits"
    exit 1
fi
