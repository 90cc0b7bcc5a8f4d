#!/bin/sh
# bench/sample.sh - generation throughput of `dpo sample` against PyTorch,
# measured in the same run on the same workload: a batch of 16 prompts of 8
# tokens each (the same ids on both sides), each continued with a key-value
# cache, temperature-1 sampling over the full vocabulary, 2 threads, random
# weights, for three model shapes:
#   demo   4 layers, 4 heads, width 128, context 64 (the first `make demo`'s shape)
#   small  4 layers, 4 heads, width 128, context 96, vocabulary 2000 (the sentiment
#          experiment's model, with its tokenizer from data/sentiment/sft)
#   124m   12 layers, 12 heads, width 768, context 1024 (GPT-2 124M's shape)
# demo and 124m with GPT-2's vocabulary (50257). New tokens per sequence: 64, or
# as many as the context leaves after the prompt (56 for the demo shape: 8 + 56 = 64).
# Also the single-sequence rate (--batch 1 --n 1, the first prompt).
#
# Each measurement is one process: dpo's rate is the "tokens/s" of its last
# stderr line (new tokens over the time from the first forward to the last
# sample written); PyTorch's is bench/torch_sample.py's (new tokens over the
# generation loop). dpo and PyTorch runs alternate, RUNS of each (median kept),
# and each waits until the machine is quiet: no more than BUSY_MAX cores busy
# over 3 seconds (other processes' work; the 1-minute load average is printed
# too but lags behind our own previous run), up to WAIT_MAX seconds.
#
# Usage: sh bench/sample.sh [DPO_BINARY]    (or `make bench-sample`)
# The PyTorch side needs Debian's python3-torch; without it only dpo's numbers
# are printed. Environment: RUNS (3), THREADS (2), BATCH (16), MAX_NEW (64),
# SHAPES ("demo 124m"; also "small"), BUSY_MAX (0.3), WAIT_MAX (1200).
set -eu
DPO=${1:-./dpo}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
BATCH=${BATCH:-16}
MAX_NEW=${MAX_NEW:-64}
SHAPES=${SHAPES:-demo 124m}
BUSY_MAX=${BUSY_MAX:-0.3}
WAIT_MAX=${WAIT_MAX:-1200}
OUT=build/bench-sample
mkdir -p "$OUT"

# cores busy over the next 3 seconds, from /proc/stat (user+nice+system+irq+softirq+steal)
busy() {
    a=$(head -1 /proc/stat)
    sleep 3
    b=$(head -1 /proc/stat)
    echo "$a $b" | awk -v hz="$(getconf CLK_TCK)" '{
        busy0 = $2 + $3 + $4 + $7 + $8 + $9; busy1 = $13 + $14 + $15 + $18 + $19 + $20
        printf "%.2f", (busy1 - busy0) / hz / 3 }'
}
# wait for a quiet machine; sets LOAD to "load1 busy" at measurement time
quiet() {
    waited=0
    while :; do
        b=$(busy)
        if awk -v b="$b" -v m="$BUSY_MAX" 'BEGIN { exit !(b <= m) }'; then break; fi
        if [ "$waited" -ge "$WAIT_MAX" ]; then
            echo "bench/sample.sh: still busy ($b cores) after ${WAIT_MAX}s; measuring anyway" >&2
            break
        fi
        echo "bench/sample.sh: machine busy ($b cores; $(cut -d' ' -f1-3 /proc/loadavg)); waiting 30 s" >&2
        sleep 30
        waited=$((waited + 30))
    done
    LOAD="$(cut -d' ' -f1 /proc/loadavg)/$b"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# the prompts: 16 sentences of exactly 8 GPT-2 tokens each (another tokenizer's
# prompts are their first 8 tokens: see prompts_for)
cat > "$OUT/prompts.txt" <<'EOF'
The movie was one of the best I
The script is clever and the cast is
The soundtrack seemed loud but the story was
I did not like the ending of this
The acting was good and the plot was
This film is a story about a young
We watched it twice and both times it
The director has made a film that is
It was a long night and the rain
She said that the book was better than
The first half is slow but the second
My friends and I went to see it
The music is great and the songs are
He plays the role of a man who
The best part of the show is the
At the end of the day the film
EOF
# prompts_for TOKENIZER_DIR NAME: $OUT/NAME.jsonl (the texts, for dpo sample),
# $OUT/NAME_ids.txt and NAME_ids_1.txt (their ids, for PyTorch; all and the first).
# Each prompt is the text of the sentence's first 8 tokens, checked to encode back
# to exactly those 8 ids, so that both sides start from the same ids.
prompts_for() {
    : > "$OUT/$2.jsonl"
    : > "$OUT/$2_ids.txt"
    n=0
    while IFS= read -r p; do
        n=$((n + 1))
        [ "$n" -le "$BATCH" ] || break
        ids=$(printf '%s' "$p" | "$DPO" encode --tokenizer "$1" | cut -d' ' -f1-8)
        txt=$(echo "$ids" | "$DPO" decode --tokenizer "$1")
        re=$(printf '%s' "$txt" | "$DPO" encode --tokenizer "$1")
        if [ "$re" != "$ids" ] || [ "$(echo "$ids" | wc -w)" -ne 8 ]; then
            echo "bench/sample.sh: prompt $n is not 8 tokens of $1 that encode back the same: '$txt'" >&2
            exit 1
        fi
        printf '{"prompt": "%s"}\n' "$txt" >> "$OUT/$2.jsonl"
        echo "$ids" >> "$OUT/$2_ids.txt"
    done < "$OUT/prompts.txt"
    [ "$n" -ge "$BATCH" ] || { echo "bench/sample.sh: at most 16 prompts (BATCH=$BATCH)" >&2; exit 1; }
    head -1 "$OUT/$2_ids.txt" > "$OUT/$2_ids_1.txt"
}

TORCH=
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then TORCH=yes; fi
# the tuned PyTorch (DESIGN.md, "Performance"): passive OpenMP waiting, OpenBLAS's
# own kernel choice (Debian's libopenblas0 must provide libblas.so.3: the reference
# libblas is many times slower; torch_sample.py prints the BLAS it loaded),
# jemalloc without page decay when it is installed
JEMALLOC=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1 || true)
torch_run() { # bench/torch_sample.py's arguments
    set -- /usr/bin/python3 bench/torch_sample.py "$@"
    [ -z "$JEMALLOC" ] || set -- env LD_PRELOAD="$JEMALLOC" MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1 "$@"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS="$THREADS" "$@"
}
dpo_rate() { sed -n 's/.* \([0-9][0-9]*\) tokens\/s$/\1/p' "$1" | tail -1; }

echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) cores;" \
    "$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo | tr ' ' '\n' | grep -x -E 'avx2|fma|avx512f|asimd|neon' | tr '\n' ' ')"
echo "dpo: $("$DPO" --version | tr '\n' ' ' | sed 's/ $//')"
echo "dpo: $DPO; PyTorch: $([ -n "$TORCH" ] && /usr/bin/python3 -c 'import torch; print(torch.__version__)' || echo none)" \
    "$([ -n "$JEMALLOC" ] && echo "(jemalloc)" || echo "(no jemalloc)"); $THREADS threads, $RUNS runs each, median"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$OUT/table.txt"
for shape in $SHAPES; do
    case $shape in
        demo) L=4 H=4 C=128 P=64 V=50257 TOK=data/gpt2 ;;
        small) L=4 H=4 C=128 P=96 V=2000 TOK=data/sentiment/sft ;;
        124m) L=12 H=12 C=768 P=1024 V=50257 TOK=data/gpt2 ;;
        *) echo "bench/sample.sh: unknown shape $shape (demo, small, 124m)" >&2; exit 1 ;;
    esac
    DIR=build/bench-sample-$shape
    if [ ! -f "$DIR/model.safetensors" ]; then
        "$DPO" init --out "$DIR" --layers $L --heads $H --dim $C --ctx $P --tokenizer $TOK --seed 1 >/dev/null
    fi
    PR=prompts-$shape
    prompts_for "$TOK" "$PR"
    FIRST=$(sed -n '1s/^{"prompt": "\(.*\)"}$/\1/p' "$OUT/$PR.jsonl")
    NEW=$((P - 8 < MAX_NEW ? P - 8 : MAX_NEW))
    for mode in batch single; do
        if [ $mode = batch ]; then
            src="--prompts $OUT/$PR.jsonl --n 1 --batch $BATCH"; ids=$OUT/${PR}_ids.txt; nseq=$BATCH
        else
            src="--n 1 --batch 1"; ids=$OUT/${PR}_ids_1.txt; nseq=1
        fi
        : > "$OUT/$shape-$mode.dpo"
        : > "$OUT/$shape-$mode.torch"
        loads=
        i=0
        while [ $i -lt "$RUNS" ]; do
            i=$((i + 1))
            quiet
            loads="$loads $LOAD"
            if [ $mode = batch ]; then
                "$DPO" sample --model "$DIR" $src --max-new "$NEW" --threads "$THREADS" --seed $i \
                    --out "$OUT/$shape-$mode.jsonl" 2> "$OUT/$shape-$mode.err"
            else
                "$DPO" sample --model "$DIR" --prompt "$FIRST" $src --max-new "$NEW" --threads "$THREADS" --seed $i \
                    --out "$OUT/$shape-$mode.jsonl" 2> "$OUT/$shape-$mode.err"
            fi
            dpo_rate "$OUT/$shape-$mode.err" >> "$OUT/$shape-$mode.dpo"
            # every sample must have run to the end: NEW tokens, finish "length"
            full=$(grep -c '"finish": "length"' "$OUT/$shape-$mode.jsonl" || true)
            tok=$(sed -n 's/.*samples, \([0-9]*\) tokens.*/\1/p' "$OUT/$shape-$mode.err" | tail -1)
            if [ "$full" -ne "$nseq" ] || [ "$tok" -ne $((nseq * NEW)) ]; then
                echo "bench/sample.sh: $shape $mode run $i: $full of $nseq samples ran to the end, $tok tokens" >&2
            fi
            if [ -n "$TORCH" ]; then
                quiet
                loads="$loads $LOAD"
                torch_run --layers $L --heads $H --dim $C --ctx $P --vocab $V --prompt-ids "$ids" --max-new "$NEW" --runs 1 \
                    --threads "$THREADS" > "$OUT/$shape-$mode.torch.out"
                [ "$shape$mode$i" != "${SHAPES%% *}batch1" ] || sed -n 's/^BLAS: /PyTorch BLAS: /p' "$OUT/$shape-$mode.torch.out"
                sed -n 's/^sample \([0-9.]*\) tokens.*/\1/p' "$OUT/$shape-$mode.torch.out" >> "$OUT/$shape-$mode.torch"
            fi
        done
        d=$(median < "$OUT/$shape-$mode.dpo")
        if [ -n "$TORCH" ]; then
            t=$(median < "$OUT/$shape-$mode.torch")
            r=$(awk -v d="$d" -v t="$t" 'BEGIN { printf "%.2f", d / t }')
        else
            t=- r=-
        fi
        printf '%-5s %-6s %2sx%-3s %9s %9s %6s\n' "$shape" "$mode" "$nseq" "$NEW" "$d" "$t" "$r" >> "$OUT/table.txt"
        printf '%-5s %-6s dpo [%s] PyTorch [%s] load1/busy cores [%s]\n' "$shape" "$mode" \
            "$(tr '\n' ' ' < "$OUT/$shape-$mode.dpo" | sed 's/ $//')" "$(tr '\n' ' ' < "$OUT/$shape-$mode.torch" | sed 's/ $//')" \
            "$(echo $loads)"
    done
done
echo
echo "new tokens/s, median of $RUNS (dpo and PyTorch runs alternating); ratio = dpo / PyTorch (> 1: dpo is faster)"
printf '%-5s %-6s %-6s %9s %9s %6s\n' model mode seqxnew dpo PyTorch ratio
cat "$OUT/table.txt"
[ -n "$TORCH" ] || echo "(no python3-torch: PyTorch reference skipped)"
