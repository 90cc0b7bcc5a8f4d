#!/bin/sh
# tests/compilers.sh - two builds of dpo (gcc's and clang's, or two matrix
# kernels from tests/kernels.sh) must compute the same bits: the same tiny
# training run (AdamW, 3 steps) saved by each gives byte-identical model and
# optimizer files. Usage: sh tests/compilers.sh DPO_A DPO_B
A=$1; B=$2
T=$(mktemp -d /tmp/dpo-cc-XXXXXX)
trap 'rm -rf "$T"' EXIT
"$A" init --out "$T/m" --layers 2 --heads 2 --dim 32 --ctx 32 --tokenizer data/gpt2 --seed 1 >/dev/null || exit 1
for x in A B; do
    eval "bin=\$$x"
    "$bin" train --model "$T/m" --data data/demo/sentiment_pairs.jsonl --out "$T/o$x" --steps 3 --batch 4 \
        --micro-batch 2 --lr 1e-3 --warmup 0 --optimizer adamw --quiet >/dev/null || exit 1
done
if cmp "$T/oA/model.safetensors" "$T/oB/model.safetensors" && cmp "$T/oA/optimizer.safetensors" "$T/oB/optimizer.safetensors"; then
    echo "same bits: $A and $B saved identical model and optimizer bytes"
else
    echo "FAIL: $A and $B compute different bits"
    exit 1
fi
