#!/bin/sh
# tests/faults.sh BIN - disk-full and out-of-memory faults at every moment of a
# save and of a short run (make test-faults). BIN is the fault-injection build
# (make FAULTS=1, tests/fault.h): with DPO_FAULT=io:N its Nth file-writing call
# and every later one fail with ENOSPC (a short write for fwrite), with
# DPO_FAULT=alloc:N its Nth allocation returns NULL (and later ones succeed).
#
# Each scenario is first run with DPO_FAULT=count to learn how many calls of
# each class it makes, then once for every N from 1 to that count. For every N:
#   - the exit status is 1 (an error, reported): not a crash, not a sanitizer
#     report (those exit 86/87 here, or by a signal); or, for an allocation the
#     code can do without (a shrinking realloc), 0 with exactly the bytes of a
#     run without faults;
#   - the message says what failed: "No space left on device" and the path of
#     the file (io), or "out of memory" (alloc);
#   - nothing is lost: a checkpoint resumed from (train, ppo) is still there,
#     complete and byte-identical, under its own name or .old/.tmp, or the new
#     one is complete; a --out file (sample, eval, pairs) holds its previous
#     bytes (or all the new ones, when only the directory's sync after the
#     rename failed), and no temporary is left beside it;
#   - and (every N for io, every RESUME_EVERY-th N for alloc) a resume without
#     faults finishes with exactly the bytes of a run that never failed.
# Optional further arguments: only the scenarios named (train ppo sample eval
# pairs), e.g. `sh tests/faults.sh build/faults/dpo train`.
set -u
DPO=$1
shift
WANT=${*:-"train ppo sample eval pairs"}
RESUME_EVERY=${RESUME_EVERY:-8}
# JOBS=K: K runs at a time (default 2: the machines here have 2 cores)
JOBS=${JOBS:-2}
# STRIDE=K: only every Kth N, from a random start (the sanitizer build, which is
# slower); PPO_STRIDE=K the same for the ppo scenario alone (its runs are the longest)
STRIDE=${STRIDE:-1}
stride_note() { [ "$STRIDE" -gt 1 ] && echo ", every ${STRIDE}th from a random start"; }
first_n() { awk -v k="$STRIDE" 'BEGIN { srand(); print 1 + int(rand() * k) }'; }
# the runs write many small files and fsync each: on a memory file system when there is one
base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base=${TMPDIR:-/tmp}
T=$(mktemp -d "$base/dpo-faults.XXXXXX")
trap 'rm -rf "$T"' EXIT
export ASAN_OPTIONS="exitcode=86:detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:exitcode=87:print_stacktrace=1"
export OMP_NUM_THREADS=1
fail=0
checked=0
ERR="$T/err"

say_fail() {
    fail=$((fail + 1))
    echo "FAIL: $*"
    [ -f "$ERR" ] && sed 's/^/    /' "$ERR" | head -20
}

# count SCENARIO-COMMAND...: prints "A W", the allocations and writes it makes
count() {
    DPO_FAULT=count "$@" >/dev/null 2>"$ERR" || { echo "FAIL: a fault-free run failed: $*" >&2; sed "s/^/    /" "$ERR" >&2; return 1; }
    sed -n 's/^dpo-fault: alloc=\([0-9]*\) io=\([0-9]*\)$/\1 \2/p' "$ERR" | tail -1
}

# same_dir A B FILES: every file byte-identical
same_dir() {
    for f in $3; do cmp -s "$1/$f" "$2/$f" || return 1; done
    return 0
}

# check_run CLASS N RC: the exit status and the message
check_run() {
    if [ "$3" -ne 1 ]; then
        say_fail "$scen $1:$2: exit status $3, not 1"
        return 1
    fi
    if [ "$1" = io ]; then
        grep -q "No space left on device" "$ERR" && grep -q "$T/" "$ERR" ||
            { say_fail "$scen io:$2: the message does not name the file and the full disk"; return 1; }
    else
        grep -q "out of memory" "$ERR" || { say_fail "$scen alloc:$2: the message does not say out of memory"; return 1; }
    fi
    grep -q "^dpo [a-z-]*: error: " "$ERR" || { say_fail "$scen $1:$2: no 'dpo CMD: error:' line"; return 1; }
    return 0
}

# --- checkpoints: train and ppo, resumed for one step that ends with a save ---
# io:    OUT holds step 1; the run resumes it to step 2. What must survive: step 1
#        or step 2, complete, under OUT, OUT.old or OUT.tmp.
# alloc: OUT holds step 2 and OUT.old step 1 (as a kill between the two renames
#        of a save leaves them); the run resumes to step 3. What must survive:
#        step 2 or step 3 (recovery must not fall back to step 1 because memory
#        ran out while it read step 2's state).
# ckpt_scenario NAME FILES ARGS
ckpt_scenario() {
    scen=$1
    files=$2
    args=$3
    rm -rf "$T/s1" "$T/r2" "$T/r3" "$T/c" "$T/c.old"
    # shellcheck disable=SC2086
    "$DPO" $scen $args --steps 1 --out "$T/s1" >/dev/null 2>&1 || { say_fail "$scen: step 1 failed"; return; }
    cp -r "$T/s1" "$T/r2"
    # shellcheck disable=SC2086
    c=$(count "$DPO" $scen $args --steps 2 --out "$T/r2" --resume "$T/r2" --log "$T/r2.log") || { fail=$((fail + 1)); return; }
    set -- $c
    n_io=$2
    cp -r "$T/r2" "$T/c"
    cp -r "$T/s1" "$T/c.old"
    # shellcheck disable=SC2086
    c=$(count "$DPO" $scen $args --steps 3 --out "$T/c" --resume "$T/c" --log "$T/c.log") || { fail=$((fail + 1)); return; }
    set -- $c
    n_alloc=$1
    mv "$T/c" "$T/r3"
    echo "$scen: a resumed step and its save make $n_alloc allocations and $n_io file writes"
    for class in io alloc; do
        total=$n_io old="$T/s1" new="$T/r2" steps=2
        [ $class = alloc ] && total=$n_alloc old="$T/r2" new="$T/r3" steps=3
        start=$(first_n)
        job=0
        while [ $job -lt "$JOBS" ]; do
            ckpt_sweep $job $((start + job * STRIDE)) &
            job=$((job + 1))
        done
        wait
        sum_jobs "$scen $class" "$total" "resumed to the unbroken run's bytes"
    done
}

# ckpt_sweep JOB FIRST: this job's share of the N (FIRST, then every JOBS*STRIDE-th)
ckpt_sweep() {
    W="$T/j$1"
    ERR="$W.err"
    n=$2 bad=0 resumed=0 runs=0 absorbed=0
    while [ $n -le "$total" ]; do
        rm -rf "$W" "$W.old" "$W.tmp" "$W.log"
        cp -r "$old" "$W"
        [ $class = alloc ] && cp -r "$T/s1" "$W.old"
        # shellcheck disable=SC2086
        DPO_FAULT=$class:$n "$DPO" $scen $args --steps $steps --out "$W" --resume "$W" --log "$W.log" \
            >/dev/null 2>"$ERR"
        rc=$?
        # OUT held a complete step 2: recovery must never prefer the older OUT.old
        # (it would, if it took a read that ran out of memory for an invalid checkpoint)
        if [ $class = alloc ] && grep -q "checkpoint (step 1) was in" "$ERR"; then
            say_fail "$scen alloc:$n: recovery fell back to the older checkpoint"
            bad=$((bad + 1))
        fi
        if [ $rc -eq 0 ] && [ $class = alloc ]; then
            # the code had a way around the failure (a shrinking realloc that
            # failed keeps its block): then the run must have saved the right bytes
            same_dir "$new" "$W" "$files" || { say_fail "$scen alloc:$n: exit 0 with other bytes"; bad=$((bad + 1)); }
            absorbed=$((absorbed + 1))
        else
            check_run $class $n $rc || bad=$((bad + 1))
        fi
        intact=0
        for d in "$W" "$W.old" "$W.tmp"; do
            [ -d "$d" ] || continue
            if same_dir "$old" "$d" "$files" || same_dir "$new" "$d" "$files"; then intact=1; fi
        done
        [ $intact -eq 1 ] || { say_fail "$scen $class:$n: the checkpoint resumed from (or the new one) is lost"; bad=$((bad + 1)); }
        if [ $class = io ] || [ $(((n - 1) / STRIDE % RESUME_EVERY)) -eq 0 ]; then
            # shellcheck disable=SC2086
            if ! "$DPO" $scen $args --steps $steps --out "$W" --resume "$W" >/dev/null 2>"$ERR"; then
                say_fail "$scen $class:$n: the resume after the fault failed"
                bad=$((bad + 1))
            elif ! same_dir "$new" "$W" "$files"; then
                say_fail "$scen $class:$n: the resume after the fault saved other bytes"
                bad=$((bad + 1))
            fi
            resumed=$((resumed + 1))
        fi
        runs=$((runs + 1))
        [ $bad -gt 5 ] && { echo "$scen $class: job $1 stops after 5 failures"; break; }
        n=$((n + JOBS * STRIDE))
    done
    echo "$runs $bad $absorbed $resumed" > "$W.res"
}

# sum_jobs WHAT TOTAL NOTE: add up the jobs' counts, report, count failures
sum_jobs() {
    set -- "$1" "$2" "$3" $(cat "$T"/j*.res | awk '{ r += $1; b += $2; a += $3; s += $4 } END { print r, b, a, s }')
    rm -f "$T"/j*.res
    checked=$((checked + $4))
    fail=$((fail + $5))
    note=
    [ "$6" -gt 0 ] && note="; $6 absorbed (exit 0, the right bytes)"
    [ "$3" ] && note="$note; $7 $3"
    echo "$1: $4 faults (N in 1..$2$(stride_note)): $5 failed$note"
}

# --- an output file: --out over an existing file (dpo sample, eval, pairs) ---
# out_scenario NAME ARGS: ARGS is the command line after "dpo", without --out
out_scenario() {
    scen=$1
    args=$2
    printf 'the previous contents\n' > "$T/prev.jsonl"
    rm -rf "$T/o"
    mkdir "$T/o"
    # shellcheck disable=SC2086
    c=$(count "$DPO" $args --out "$T/o/s.jsonl") || { fail=$((fail + 1)); return; }
    set -- $c
    cp "$T/o/s.jsonl" "$T/new.jsonl"
    n_alloc=$1
    n_io=$2
    echo "$scen: $n_alloc allocations and $n_io file writes"
    for class in io alloc; do
        total=$n_io
        [ $class = alloc ] && total=$n_alloc
        start=$(first_n)
        job=0
        while [ $job -lt "$JOBS" ]; do
            out_sweep $job $((start + job * STRIDE)) &
            job=$((job + 1))
        done
        wait
        sum_jobs "$scen $class" "$total" ""
    done
}

out_sweep() {
    W="$T/j$1"
    ERR="$W.err"
    n=$2 bad=0 runs=0 absorbed=0
    while [ $n -le "$total" ]; do
        rm -rf "$W"
        mkdir "$W"
        cp "$T/prev.jsonl" "$W/s.jsonl"
        # shellcheck disable=SC2086
        DPO_FAULT=$class:$n "$DPO" $args --out "$W/s.jsonl" >/dev/null 2>"$ERR"
        rc=$?
        if [ $rc -eq 0 ] && [ $class = alloc ]; then
            cmp -s "$T/new.jsonl" "$W/s.jsonl" || { say_fail "$scen alloc:$n: exit 0 with other bytes"; bad=$((bad + 1)); }
            absorbed=$((absorbed + 1))
        else
            check_run $class $n $rc || bad=$((bad + 1))
        fi
        # the rename is atomic: the old bytes, or (a fault after it, syncing the directory) all the new ones
        cmp -s "$T/prev.jsonl" "$W/s.jsonl" || cmp -s "$T/new.jsonl" "$W/s.jsonl" ||
            { say_fail "$scen $class:$n: the --out file holds neither its old nor its new bytes"; bad=$((bad + 1)); }
        [ "$(ls "$W")" = s.jsonl ] || { say_fail "$scen $class:$n: left $(ls "$W" | tr '\n' ' ')"; bad=$((bad + 1)); }
        runs=$((runs + 1))
        [ $bad -gt 5 ] && { echo "$scen $class: job $1 stops after 5 failures"; break; }
        n=$((n + JOBS * STRIDE))
    done
    echo "$runs $bad $absorbed 0" > "$W.res"
}

head -8 data/sentiment/pairs.jsonl > "$T/pairs.jsonl"
head -3 data/sentiment/prompts.jsonl > "$T/ppo_prompts.jsonl"
head -2 data/sentiment/prompts.jsonl > "$T/prompts.jsonl"
for s in $WANT; do
    case $s in
    train)
        ckpt_scenario train "model.safetensors optimizer.safetensors trainer_state.json config.json vocab.json merges.txt" \
            "--model data/sentiment/sft --data $T/pairs.jsonl --batch 4 --micro-batch 2 --seed 3 --quiet" ;;
    ppo)
        s0=$STRIDE
        STRIDE=${PPO_STRIDE:-$STRIDE}
        ckpt_scenario ppo "model.safetensors optimizer.safetensors value.safetensors value_optimizer.safetensors ppo_state.json" \
            "--model data/sentiment/sft --prompts $T/ppo_prompts.jsonl --reward sentiment --batch 4 --mini-batch 2 --max-new 4 --seed 3 --quiet"
        STRIDE=$s0 ;;
    sample) out_scenario sample "sample --model data/sentiment/sft --prompts $T/prompts.jsonl --max-new 4 --n 2 --seed 3" ;;
    # the results file of an evaluation (its summary goes to standard output)
    eval) out_scenario eval "eval --model data/sentiment/sft --ref data/sentiment/sft --prompts $T/prompts.jsonl --max-new 4 --n 2 --seed 3" ;;
    # preference pairs made from scored samples
    pairs) out_scenario pairs "pairs --model data/sentiment/sft --prompts $T/prompts.jsonl --reward sentiment --max-new 10 --n 4 --seed 3" ;;
    *) echo "unknown scenario $s"; exit 2 ;;
    esac
done
echo "faults: $checked faulty runs, $fail failures"
[ $fail -eq 0 ]
