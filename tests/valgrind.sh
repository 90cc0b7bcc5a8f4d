#!/bin/sh
# tests/valgrind.sh BIN - what `make valgrind` runs: short commands of a plain
# build (no sanitizer, no hardening, -O1 -g) under Valgrind's memcheck, which
# must find nothing: no invalid read or write, no use of an uninitialised value
# in a branch or a system call, no bad free, and no definitely lost block.
#
#   1. dpo init: a small GPT-2 (2 layers, dim 32, context 64) with the
#      tokenizer of the experiment's SFT model (data/sentiment/sft, 2000 tokens);
#      the shipped 4-layer model itself takes minutes a step under memcheck;
#   2. dpo train: 3 steps of DPO on 8 shipped pairs (data/sentiment/pairs.jsonl),
#      2 OpenMP threads, a metrics log, a checkpoint (model, optimizer state,
#      data position) after every step;
#   3. dpo train --resume: one more step from that checkpoint (reads it back);
#   4. dpo sample: 2 prompts x 2 samples of 8 tokens from the trained model,
#      top-k and top-p, with VADER's reward (the key-value cache, the filters,
#      the tokenizer's decoding and the reward scorer).
#
# "Possibly lost" blocks are listed but are not errors: libgomp keeps its thread
# pool (and each thread's TLS block) to the end of the process by design.
# Prints valgrind's summary of each run; exits 1 on any error.
set -u
DPO=$1
T=$(mktemp -d /tmp/dpo-valgrind-XXXXXX)
trap 'rm -rf "$T"' EXIT
D=data/sentiment
VG="valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,possible
    --errors-for-leak-kinds=definite --track-origins=yes --num-callers=30"
fail=0

# run NAME -- command...: the command under memcheck; its exit status must be 0
run() {
    name=$1
    shift 2
    start=$(date +%s)
    # shellcheck disable=SC2086
    $VG --log-file="$T/$name.vg" "$@" > "$T/$name.out" 2> "$T/$name.err"
    rc=$?
    end=$(date +%s)
    errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$T/$name.vg" | tail -1)
    lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$T/$name.vg" | tail -1)
    maybe=$(sed -n 's/.*possibly lost: \([0-9,]*\) bytes.*/\1/p' "$T/$name.vg" | tail -1)
    echo "valgrind $name: exit $rc, ${errs:-?} errors, ${lost:-0} bytes definitely lost," \
        "${maybe:-0} possibly lost ($((end - start)) s)"
    if [ "$rc" -ne 0 ]; then
        fail=1
        sed -n '/^==[0-9]*== [A-Z]/,$p' "$T/$name.vg" | head -80
        tail -5 "$T/$name.err"
    fi
}

head -8 "$D/pairs.jsonl" > "$T/pairs.jsonl"
head -2 "$D/prompts.jsonl" > "$T/prompts.jsonl"
run init -- "$DPO" init --out "$T/m" --layers 2 --heads 2 --dim 32 --ctx 64 --tokenizer "$D/sft" --seed 1
A="--model $T/m --data $T/pairs.jsonl --batch 4 --micro-batch 2 --max-len 48 --warmup 0 --lr 1e-3 --threads 2 --quiet"
run train -- "$DPO" train $A --out "$T/run" --steps 3 --save-every 1 --log "$T/metrics.jsonl"
run resume -- "$DPO" train $A --out "$T/run" --steps 4 --save-every 1 --resume "$T/run" --log "$T/metrics.jsonl"
run sample -- "$DPO" sample --model "$T/run" --prompts "$T/prompts.jsonl" --n 2 --max-new 8 --top-k 50 \
    --top-p 0.9 --seed 3 --threads 2 --reward sentiment
# the runs did their work: 4 logged steps, 4 samples
[ "$(grep -c '"step"' "$T/metrics.jsonl" 2>/dev/null)" = 4 ] ||
    { fail=1; echo "valgrind: the metrics log does not have 4 steps"; }
[ "$(grep -c '"completion"' "$T/sample.out" 2>/dev/null)" = 4 ] ||
    { fail=1; echo "valgrind: dpo sample did not print 4 samples"; }
if [ $fail -ne 0 ]; then
    echo "VALGRIND FOUND ERRORS"
    exit 1
fi
echo "VALGRIND CLEAN"
