#!/bin/sh
# bench/all.sh - how fast this build of dpo is on this CPU, against references
# measured in the same run on the same work (`make bench` runs it). For two model
# sizes, GPT-2 124M (12 layers, width 768, vocabulary 50257) and the sentiment
# experiment's small model (4 layers, width 128, vocabulary 2000):
#   1. matrix products: `dpo bench --products` against cblas_sgemm of OpenBLAS
#      (bench/openblas_gemm.c, built here when OpenBLAS is installed) on the same
#      shapes and layouts, at n_tok = 512 (124M) and 2048 (small) tokens; the
#      ratio dpo GFLOP/s / OpenBLAS GFLOP/s per product, from the best of REPS
#      calls in each of ROUNDS rounds that alternate the two programs;
#   2. a DPO optimizer step: `dpo bench --dpo` against bench/torch_dpo_step.py
#      (PyTorch), 2 pairs of 256 tokens (124M) and 32 pairs of 64 tokens (small),
#      half prompt, half response, the reference in memory, RMSprop lr 1e-6,
#      clipping at 10: the median of STEPS steps after a warm-up, in ROUNDS
#      rounds that alternate dpo and PyTorch (the machine's speed drifts by 20%
#      over minutes; alternating puts both through the same drift), the median
#      round of each, and each process's peak memory;
#   3. sampling with the key-value cache: bench/sample.sh (dpo sample against
#      bench/torch_sample.py) for the two shapes.
# The references run as tuned (DESIGN.md, "Performance"): OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE unset so that OpenBLAS picks its own kernel (both programs
# print which), OPENBLAS_NUM_THREADS = THREADS, and PyTorch with jemalloc
# preloaded (no page decay) and OMP_WAIT_POLICY=PASSIVE. Without OpenBLAS's
# development files or /usr/bin/python3 with torch, that part says it is skipped;
# dpo's own numbers are printed either way.
#
# Usage: sh bench/all.sh [DPO_BINARY]      (make bench)
# Environment: THREADS (2), REPS (5), STEPS (5), ROUNDS (3), SIZES ("124m small"),
# SAMPLE (1; 0 skips sampling), CC (cc); bench/sample.sh's RUNS, BUSY_MAX, WAIT_MAX.
# Everything it writes goes to build/bench-all/ (and build/bench-sample/).
set -eu
DPO=${1:-./build/dpo}
THREADS=${THREADS:-2}
REPS=${REPS:-5}
STEPS=${STEPS:-5}
ROUNDS=${ROUNDS:-3}
SIZES=${SIZES:-124m small}
SAMPLE=${SAMPLE:-1}
CC=${CC:-cc}
OUT=build/bench-all
mkdir -p "$OUT"

# ------------------------------------------------------------------ the machine
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
isa=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' |
      grep -x -E 'avx2|fma|avx512f|asimd|neon' | tr '\n' ' ' | sed 's/ $//' || true)
machine="CPU: ${cpu:-unknown}, $(nproc) cores; instruction sets: ${isa:-unknown}; $("$DPO" --version | tr '\n' ' ' | sed 's/ $//'); $THREADS threads"
echo "$machine"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

# ---------------------------------------------------------------- the references
# OpenBLAS: pkg-config's flags, else the header and library in the compiler's
# default paths (or /usr/include/openblas); built only here, never by make.
BLAS=
for flags in pkg "-I/usr/include/openblas -lopenblas" "-lopenblas"; do
    if [ "$flags" = pkg ]; then
        pkg-config --exists openblas 2>/dev/null || continue
        flags="$(pkg-config --cflags openblas) $(pkg-config --libs openblas)"
    fi
    # shellcheck disable=SC2086 # the flags are words
    if "$CC" -std=c99 -O2 -D_POSIX_C_SOURCE=200809L -o build/openblas_gemm bench/openblas_gemm.c $flags 2> "$OUT/openblas-build.txt"; then
        BLAS=build/openblas_gemm
        break
    fi
done
if [ -n "$BLAS" ]; then
    echo "OpenBLAS reference: $BLAS (bench/openblas_gemm.c)"
else
    echo "OpenBLAS reference: skipped (no OpenBLAS development files: pkg-config openblas, cblas.h and -lopenblas)"
fi
blas_run() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$THREADS" "$BLAS" "$@"; }

TORCH=
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then TORCH=yes; fi
JEMALLOC=
if [ -f /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ]; then
    JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
else
    JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1 || true)
fi
torch_run() { # a python script and its arguments
    set -- /usr/bin/python3 "$@"
    [ -z "$JEMALLOC" ] || set -- env LD_PRELOAD="$JEMALLOC" MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 "$@"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS="$THREADS" "$@"
}
if [ -n "$TORCH" ]; then
    echo "PyTorch reference: $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')," \
        "$([ -n "$JEMALLOC" ] && echo "jemalloc $JEMALLOC" || echo "no jemalloc (glibc malloc)"), OMP_WAIT_POLICY=PASSIVE"
else
    echo "PyTorch reference: skipped (/usr/bin/python3 cannot import torch)"
fi

# size -> dpo bench's --shape, the products' batch, the DPO step's pairs, PyTorch's model options
shape_of() {
    case $1 in
        124m) SHAPE=124m L=12 H=12 C=768 P=1024 V=50257 SEQS=2 LEN=256 PAIRS=2 T=256 WHAT="GPT-2 124M" ;;
        small) SHAPE=small L=4 H=4 C=128 P=96 V=2000 SEQS=32 LEN=64 PAIRS=32 T=64 WHAT="small (the experiment's)" ;;
        *) echo "bench/all.sh: unknown size $1 (124m, small)" >&2; exit 1 ;;
    esac
}
num() { sed -n "$1" "$2" | tail -1; } # the last value a sed expression prints from a file
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# stop when a step printed no result (a pipe into tee hides the exit status)
need() { [ -n "$1" ] || { echo "bench/all.sh: $2 failed (its output: $3)" >&2; exit 1; }; }

# ------------------------------------------------------------- 1. matrix products
: > "$OUT/summary.txt"
for size in $SIZES; do
    shape_of "$size"
    : > "$OUT/products-$size.dpo"
    : > "$OUT/products-$size.blas"
    r=1
    while [ "$r" -le "$ROUNDS" ]; do # rounds alternating dpo and OpenBLAS, as for the steps below
        echo
        echo "== matrix products, $WHAT, n_tok $((SEQS * LEN)), round $r of $ROUNDS"
        "$DPO" bench --shape "$SHAPE" --products --seqs "$SEQS" --len "$LEN" --reps "$REPS" --threads "$THREADS" |
            tee "$OUT/round.txt"
        need "$(num '/^all products/p' "$OUT/round.txt")" "dpo bench --products" "$OUT/round.txt"
        cat "$OUT/round.txt" >> "$OUT/products-$size.dpo"
        if [ -n "$BLAS" ]; then
            echo
            blas_run --layers "$L" --dim "$C" --vocab "$V" --tokens $((SEQS * LEN)) --reps "$REPS" \
                --threads "$THREADS" | tee "$OUT/round.txt"
            need "$(num '/^all products/p' "$OUT/round.txt")" "$BLAS" "$OUT/round.txt"
            cat "$OUT/round.txt" >> "$OUT/products-$size.blas"
        fi
        r=$((r + 1))
    done
    [ -n "$BLAS" ] || continue
    {
        echo
        echo "matrix products, $WHAT, n_tok $((SEQS * LEN)): GFLOP/s (the best of $REPS calls in each of $ROUNDS rounds), ratio = dpo / OpenBLAS (> 1: dpo is faster)"
        awk 'FNR == 1 { f++ }
             $1 ~ /^(qkv|attproj|fc|fcproj|head)\.(fwd|dinp|dw)$/ {
                 if (!((f, $1) in g)) { g[f, $1] = 0; if (f == 1) name[++n] = $1 }
                 if ($NF > g[f, $1]) g[f, $1] = $NF
             }
             /^all products/ { sub(/ GFLOP\/s$/, ""); if ($NF > a[f]) a[f] = $NF }
             END {
                 printf "%-13s %9s %9s %7s\n", "product", "dpo", "OpenBLAS", "ratio"
                 for (i = 1; i <= n; i++)
                     printf "%-13s %9.1f %9.1f %7.2f\n", name[i], g[1, name[i]], g[2, name[i]], g[1, name[i]] / g[2, name[i]]
                 printf "%-13s %9.1f %9.1f %7.2f\n", "one pass", a[1], a[2], a[1] / a[2]
             }' "$OUT/products-$size.dpo" "$OUT/products-$size.blas"
    } | tee -a "$OUT/summary.txt"
done

# ------------------------------------------------------------------ 2. DPO steps
echo
printf '%-7s %-13s %10s %10s %10s %10s %8s %8s\n' size "pairs x len" "dpo s" "dpo GiB" "torch s" "torch GiB" speedup memory > "$OUT/dpo-table.txt"
for size in $SIZES; do
    shape_of "$size"
    echo
    echo "== DPO step, $WHAT, $PAIRS pairs x $T tokens ($ROUNDS rounds, dpo and PyTorch alternating)"
    ds= ts=
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        "$DPO" bench --shape "$SHAPE" --dpo --pairs "$PAIRS" --len "$T" --steps "$STEPS" --threads "$THREADS" |
            tee "$OUT/dpo-$size.dpo"
        d=$(num 's/^dpo step \([0-9.]*\) s.*/\1/p' "$OUT/dpo-$size.dpo")
        need "$d" "dpo bench --dpo" "$OUT/dpo-$size.dpo"
        ds="$ds $d"
        if [ -n "$TORCH" ]; then
            torch_run bench/torch_dpo_step.py --layers "$L" --heads "$H" --dim "$C" --ctx "$P" --vocab "$V" \
                --pairs "$PAIRS" --prompt $((T / 2)) --response $((T - T / 2)) --steps $((STEPS + 1)) \
                --threads "$THREADS" | tee "$OUT/dpo-$size.torch"
            t=$(num 's/.* threads, \([0-9.]*\) s\/step.*/\1/p' "$OUT/dpo-$size.torch")
            need "$t" "bench/torch_dpo_step.py" "$OUT/dpo-$size.torch"
            ts="$ts $t"
        fi
        r=$((r + 1))
    done
    # the median over the rounds of each round's median step
    d=$(median $ds)
    dm=$(num 's/^peak memory: \([0-9.]*\) GiB.*/\1/p' "$OUT/dpo-$size.dpo")
    echo "dpo: the rounds' steps (s):$ds; median $d"
    t=- tm=- sp=- mr=-
    if [ -n "$TORCH" ]; then
        t=$(median $ts)
        tm=$(num 's/.*peak RSS \([0-9.]*\) GiB.*/\1/p' "$OUT/dpo-$size.torch")
        echo "PyTorch: the rounds' steps (s):$ts; median $t"
        sp=$(awk -v d="$d" -v t="$t" 'BEGIN { printf "%.2f", t / d }')
        mr=$(awk -v d="$dm" -v t="$tm" 'BEGIN { printf "%.2f", d / t }')
    fi
    printf '%-7s %-13s %10s %10s %10s %10s %8s %8s\n' "$size" "${PAIRS}x$T" "$d" "$dm" "$t" "$tm" "$sp" "$mr" >> "$OUT/dpo-table.txt"
done
{
    echo
    echo "DPO step: median seconds of $STEPS steps after a warm-up, the median of $ROUNDS alternating rounds; peak memory of the process (dpo VmHWM, PyTorch ru_maxrss);"
    echo "speedup = PyTorch s / dpo s (> 1: dpo is faster), memory = dpo GiB / PyTorch GiB"
    cat "$OUT/dpo-table.txt"
    [ -n "$TORCH" ] || echo "(PyTorch skipped: /usr/bin/python3 cannot import torch)"
} | tee -a "$OUT/summary.txt"

# -------------------------------------------------------------------- 3. sampling
if [ "$SAMPLE" != 0 ]; then
    echo
    echo "== sampling with the key-value cache (bench/sample.sh)"
    THREADS=$THREADS SHAPES=$SIZES sh bench/sample.sh "$DPO" | tee "$OUT/sample.txt"
    { echo; sed -n '/^new tokens\/s/,$p' "$OUT/sample.txt"; } >> "$OUT/summary.txt"
fi

echo
echo "== summary ($OUT/summary.txt)"
echo "$machine"
[ -z "$BLAS" ] || sed -n 's/^openblas: /OpenBLAS: /p' "$OUT/products-$(echo "$SIZES" | cut -d' ' -f1).blas" | head -1
cat "$OUT/summary.txt"
