#!/bin/sh
# tests/fuzz/run.sh - run the libFuzzer harnesses built in build/fuzz/ (make
# fuzz, fuzz-ci, fuzz-regress; see tests/fuzz/fuzz.mk). Usage:
#   sh tests/fuzz/run.sh fuzz SECONDS NAME...    fuzz each harness SECONDS seconds,
#                                                one after another, on build/fuzz/corpus/NAME
#                                                (the seeds copied in; never the committed ones)
#   sh tests/fuzz/run.sh regress 0 NAME...       run each harness once on every file of
#                                                tests/fuzz/corpus/NAME and tests/fuzz/regress/NAME
# Prints one line per harness (name, executions, crashes, seconds); exits 1 when
# any harness crashed, leaked, hung or failed an assertion.
mode=$1; secs=$2; shift 2
B=build/fuzz
mkdir -p "$B/tmp"
# the harnesses' private directories go under build/fuzz/tmp, and data/ is found from here
TMPDIR=$(cd "$B/tmp" && pwd); export TMPDIR
DPO_ROOT=$(pwd); export DPO_ROOT
# abort (not exit) on an ASan/UBSan report so that libFuzzer saves the input
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}; export ASAN_OPTIONS
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}; export UBSAN_OPTIONS
fail=0
printf '%-10s %12s %8s %8s\n' harness executions crashes seconds
for name in "$@"; do
    bin=$B/fuzz_$name
    log=$B/log/$name.$mode.log
    mkdir -p "$B/log"
    t0=$(date +%s)
    if [ "$mode" = fuzz ]; then
        corpus=$B/corpus/$name
        art=$B/artifacts/$name
        mkdir -p "$corpus" "$art"
        # the seeds and reproducers join what earlier runs found (existing files are kept)
        for d in tests/fuzz/corpus/$name tests/fuzz/regress/$name; do
            [ -d "$d" ] && find "$d" -type f -exec cp -f {} "$corpus/" \;
        done
        before=$(ls "$art" | wc -l)
        "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$art/" "$corpus" > "$log" 2>&1
        rc=$?
        crashes=$(( $(ls "$art" | wc -l) - before ))
    else
        files=$(for d in tests/fuzz/corpus/$name tests/fuzz/regress/$name; do
            [ -d "$d" ] && find "$d" -type f; done | sort)
        # shellcheck disable=SC2086 # one argument per file (the names have no spaces)
        "$bin" -timeout=10 -rss_limit_mb=2048 -runs=1 $files > "$log" 2>&1
        rc=$?
        crashes=0
        [ $rc -ne 0 ] && crashes=1
    fi
    t1=$(date +%s)
    if [ "$mode" = fuzz ]; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    else
        execs=$(grep -c '^Executed ' "$log")
    fi
    [ $rc -ne 0 ] && [ "$crashes" -eq 0 ] && crashes=1
    printf '%-10s %12s %8s %8s\n' "$name" "${execs:-?}" "$crashes" "$((t1 - t0))"
    if [ $rc -ne 0 ] || [ "$crashes" -ne 0 ]; then
        fail=1
        echo "fuzz_$name failed (exit $rc): see $log"
        grep -m 5 -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | sed 's/^/    /'
    fi
done
if [ $fail -ne 0 ]; then echo "FUZZING FOUND A PROBLEM"; exit 1; fi
echo "no crashes"
