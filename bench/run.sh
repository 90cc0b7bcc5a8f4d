#!/bin/sh
# bench/run.sh - forward+backward throughput of dpo against PyTorch, measured in
# the same run on the same workload (GPT-2 124M shape, random weights, 2 threads,
# a packed batch of 4 x 256 tokens). Usage: sh bench/run.sh [DPO_BINARY]
# The PyTorch side needs Debian's python3-torch (and libopenblas0 for a tuned
# BLAS); without it only dpo's numbers are printed.
set -eu
DPO=${1:-./dpo}
DIR=${BENCH_MODEL:-build/bench-gpt2-124m}
SEQS=${SEQS:-4}
LEN=${LEN:-256}
STEPS=${STEPS:-3}
THREADS=${THREADS:-2}
if [ ! -f "$DIR/model.safetensors" ]; then
    "$DPO" init --out "$DIR" --layers 12 --heads 12 --dim 768 --ctx 1024 --vocab 50257 --seed 1
fi
"$DPO" bench --model "$DIR" --seqs "$SEQS" --len "$LEN" --steps "$STEPS" --threads "$THREADS" | tee build/bench-dpo.txt
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    # OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, set on some machines here, slow OpenBLAS down: unset for the reference only
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch_gpt2.py \
        --seqs "$SEQS" --len "$LEN" --steps "$STEPS" --threads "$THREADS" | tee build/bench-torch.txt
    awk '/^(forward|backward|fwd\+bwd)/ { if (FILENAME ~ /dpo/) d[$1] = $2; else t[$1] = $2 }
         END { for (k in d) printf "%-8s dpo is %.2fx PyTorch (time ratio torch/dpo)\n", k, t[k] / d[k] }' \
        build/bench-dpo.txt build/bench-torch.txt | sort
else
    echo "(no python3-torch: PyTorch reference skipped)"
fi
