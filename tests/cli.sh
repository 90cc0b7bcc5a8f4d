#!/bin/sh
# tests/cli.sh - the command line as a user meets it: help, bad options and
# values, init -> info round trip, and errors that name the file. Usage:
#   sh tests/cli.sh PATH/TO/dpo
# Prints one line per check and "N passed, N failed"; exits 1 on any failure.
DPO=${1:-./dpo}
T=$(mktemp -d /tmp/dpo-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0

# expect CODE PATTERN -- command...: exit status CODE and PATTERN in stdout+stderr
expect() {
    code=$1; pat=$2; shift 2
    out=$("$@" 2>&1); got=$?
    if [ "$got" -eq "$code" ] && printf '%s' "$out" | grep -q -- "$pat"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $* -> exit $got (want $code), output lacks '$pat':"
        printf '%s\n' "$out" | head -5
    fi
}

expect 0 "usage: dpo COMMAND" "$DPO" --help
expect 2 "usage: dpo COMMAND" "$DPO"
expect 2 "unknown command 'frobnicate'" "$DPO" frobnicate
expect 0 "^matrix kernel: [a-z0-9]* " "$DPO" --version
expect 0 "--layers" "$DPO" init --help
expect 0 "--model" "$DPO" info --help
expect 0 "--seqs" "$DPO" bench --help
expect 2 "missing required option --out" "$DPO" init --layers 2 --heads 2 --dim 8 --ctx 8 --vocab 11
expect 2 "unknown option '--layer'" "$DPO" init --out "$T/m" --layer 2
expect 2 "--layers must be an integer in \[1, 256\], got '1000000000'" \
    "$DPO" init --out "$T/m" --layers 1000000000 --heads 2 --dim 8 --ctx 8 --vocab 11
expect 2 "--heads must be an integer" "$DPO" init --out "$T/m" --layers 2 --heads 2x --dim 8 --ctx 8 --vocab 11
expect 2 "needs a value" "$DPO" init --out
expect 2 "given twice" "$DPO" init --out a --out b
expect 1 "not a multiple of n_head" "$DPO" init --out "$T/m" --layers 2 --heads 3 --dim 8 --ctx 8 --vocab 11
[ ! -e "$T/m" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a failed init left $T/m behind"; }
# 11*8 + 8*8 + 2*(12*8*8 + 13*8) + 2*8 = 1912
expect 0 "1912 parameters" "$DPO" init --out "$T/m" --layers 2 --heads 2 --dim 8 --ctx 8 --vocab 11 --seed 5
expect 0 "transformer.h.1.mlp.c_proj.weight *F32 *(32, 8)" "$DPO" info --model "$T/m"
expect 2 "--init-std 0 must be in (0, 1]" "$DPO" init --out "$T/m0" --layers 2 --heads 2 --dim 8 --ctx 8 --vocab 11 --init-std 0
expect 2 "--init-std 1.5 must be in (0, 1]" "$DPO" init --out "$T/m0" --layers 2 --heads 2 --dim 8 --ctx 8 --vocab 11 --init-std 1.5
[ ! -e "$T/m0" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a refused --init-std left $T/m0 behind"; }
expect 0 "1912 parameters" "$DPO" init --out "$T/m1" --layers 2 --heads 2 --dim 8 --ctx 8 --vocab 11 --seed 5 --init-std 0.02
cmp -s "$T/m/model.safetensors" "$T/m1/model.safetensors" && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: --init-std 0.02 differs from the default"; }
expect 0 "n_layer 2, n_head 2, n_embd 8, n_positions 8, vocab_size 11" "$DPO" info --model "$T/m"
expect 0 "tokens/s" "$DPO" bench --model "$T/m" --seqs 2 --len 8 --steps 1
expect 2 "exceeds the model's context" "$DPO" bench --model "$T/m" --len 9
# dpo bench: the machine first, the modes, peak memory last; bad values refused
expect 0 "--products" "$DPO" bench --help
expect 0 "^kernel: " "$DPO" bench --model "$T/m" --seqs 1 --len 2 --steps 1
expect 0 "head.dw *mm_add_at_b *11 *8 *8 " "$DPO" bench --layers 2 --heads 2 --dim 8 --vocab 11 --products --seqs 2 --len 4 --reps 1
expect 0 "fcproj.dinp *mm_a_bt *8 *32 *8 " "$DPO" bench --model "$T/m" --products --seqs 2 --len 4 --reps 2
expect 0 "peak memory: " "$DPO" bench --model "$T/m" --products --seqs 1 --len 1 --reps 1
expect 0 "dpo step [0-9.]* s (median of 2" "$DPO" bench --model "$T/m" --dpo --pairs 2 --len 8 --steps 2
expect 0 "head + log-softmax" "$DPO" bench --model "$T/m" --dpo --pairs 3 --len 8 --prompt-len 0 --micro-batch 2 --steps 1
expect 2 "give one of --model DIR, --shape NAME" "$DPO" bench --products
expect 2 "give one of --model DIR, --shape NAME" "$DPO" bench --model "$T/m" --shape small
expect 2 "unknown --shape 'huge' (known: 124m, small)" "$DPO" bench --shape huge
expect 2 "needs all of --layers, --heads, --dim and --vocab" "$DPO" bench --layers 2 --heads 2 --dim 8
expect 1 "not a multiple of n_head" "$DPO" bench --layers 2 --heads 3 --dim 8 --vocab 11 --products
expect 2 "--prompt-len 8 must be below --len 8" "$DPO" bench --model "$T/m" --dpo --len 8 --prompt-len 8
expect 2 "--dpo needs --len of at least 2" "$DPO" bench --model "$T/m" --dpo --len 1
expect 2 "exceeds the model's context of 8" "$DPO" bench --model "$T/m" --dpo --len 9
expect 2 "options of --dpo" "$DPO" bench --model "$T/m" --pairs 4
expect 2 "--reps is an option of --products" "$DPO" bench --model "$T/m" --reps 4
expect 2 "--reps must be an integer in \[1, 1000000\], got '0'" "$DPO" bench --model "$T/m" --products --reps 0
expect 1 "$T/nothing/config.json: cannot open" "$DPO" info --model "$T/nothing"
printf '{"n_layer": 1000000000, "n_head": 2, "n_embd": 8, "n_positions": 8, "vocab_size": 11}' > "$T/m/config.json"
expect 1 "$T/m/config.json: key \"n_layer\": expected an integer in \[1, 256\]" "$DPO" info --model "$T/m"
head -c 100 "$T/m/model.safetensors" > "$T/short" && mv "$T/short" "$T/m/model.safetensors"
"$DPO" init --out "$T/m2" --layers 2 --heads 2 --dim 8 --ctx 8 --vocab 11 >/dev/null
cp "$T/m2/config.json" "$T/m/config.json"
expect 1 "$T/m/model.safetensors: header length .* is invalid" "$DPO" info --model "$T/m"

# tokenizer commands (data/gpt2 is GPT-2's own vocabulary)
expect 0 "15496 995$" sh -c "printf 'Hello world' | '$DPO' encode --tokenizer data/gpt2"
expect 0 "^\[15496, 995\]$" sh -c "printf '{\"text\": \"Hello world\"}\n' | '$DPO' encode --tokenizer data/gpt2 --jsonl"
expect 0 "^Hello world$" sh -c "echo 15496 995 | '$DPO' decode --tokenizer data/gpt2"
printf '{"text": "ok"}\n{"txt": "no"}\n' > "$T/bad.jsonl"
expect 1 "$T/bad.jsonl: line 2: missing key \"text\"" "$DPO" encode --tokenizer data/gpt2 --jsonl "$T/bad.jsonl"
[ -z "$("$DPO" encode --tokenizer data/gpt2 --jsonl "$T/bad.jsonl" 2>/dev/null)" ] && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: encode --jsonl printed rows before failing on a bad one"; }
printf '{"text": "ok"}\n{"text": x}\n' > "$T/bad2.jsonl"
expect 1 "$T/bad2.jsonl: line 2, column 10: expected a value" "$DPO" encode --tokenizer data/gpt2 --jsonl "$T/bad2.jsonl"
expect 1 "id 50257 at position 1 is outside the vocabulary" sh -c "echo 1 50257 | '$DPO' decode --tokenizer data/gpt2"
expect 1 "not a token id" sh -c "echo 1 x2 | '$DPO' decode --tokenizer data/gpt2"
expect 1 "no tokenizer here" "$DPO" encode --tokenizer "$T"
expect 2 "give --tokenizer DIR" "$DPO" encode
expect 2 "unexpected argument 'b'" "$DPO" encode --tokenizer data/gpt2 a b
head -c 20000 /dev/urandom > "$T/rand.bin"
"$DPO" encode --tokenizer data/gpt2 "$T/rand.bin" > "$T/rand.ids" && "$DPO" decode --tokenizer data/gpt2 "$T/rand.ids" > "$T/rand.out"
cmp -s "$T/rand.bin" "$T/rand.out" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: random bytes do not round-trip through encode/decode"; }
i=0; while [ $i -lt 200 ]; do echo "the cat sat on the mat with another cat and a hat $i"; i=$((i + 1)); done > "$T/corpus.txt"
expect 0 "wrote $T/tok/vocab.json and $T/tok/merges.txt: 300 tokens" \
    "$DPO" tokenizer-train --data "$T/corpus.txt" --vocab-size 300 --out "$T/tok"
expect 0 "\"<|endoftext|>\": 299}" cat "$T/tok/vocab.json"
expect 1 "the corpus yields only" "$DPO" tokenizer-train --data "$T/corpus.txt" --vocab-size 100000 --out "$T/tok2"
[ ! -e "$T/tok2" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a failed tokenizer-train left $T/tok2 behind"; }
expect 2 "--vocab-size must be an integer in \[257" "$DPO" tokenizer-train --data "$T/corpus.txt" --vocab-size 10 --out "$T/tok3"
expect 1 "$T/missing.txt: cannot open" "$DPO" tokenizer-train --data "$T/missing.txt" --vocab-size 300 --out "$T/tok3"
# 50257*32 + 16*32 + (12*32*32 + 13*32) + 2*32 = 1621504
expect 0 "vocab 50257: 1621504 parameters (with its tokenizer)" \
    "$DPO" init --out "$T/g" --layers 1 --heads 2 --dim 32 --ctx 16 --tokenizer data/gpt2
cmp -s data/gpt2/vocab.json "$T/g/vocab.json" && cmp -s data/gpt2/merges.txt "$T/g/merges.txt" &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: init --tokenizer did not copy the tokenizer files"; }
expect 0 "tokenizer: 50257 tokens, <|endoftext|> = 50256" "$DPO" info --model "$T/g"
expect 0 "15496 995$" sh -c "printf 'Hello world' | '$DPO' encode --model '$T/g'"
expect 2 "differs from the tokenizer's 50257 tokens" \
    "$DPO" init --out "$T/g2" --layers 1 --heads 2 --dim 32 --ctx 16 --vocab 100 --tokenizer data/gpt2
expect 2 "give --vocab V or --tokenizer DIR" "$DPO" init --out "$T/g2" --layers 1 --heads 2 --dim 32 --ctx 16

# dpo sentiment: VADER with the lexicon built in (run from another directory:
# no data directory needed); the numbers are upstream's, rows 1, 2 and 13 of
# tests/vader_vectors.tsv; a blank plain line is the empty text
expect 0 "usage: dpo sentiment" "$DPO" sentiment --help
printf 'This movie was good.\nThis movie was not good.\n\nThe film was GREAT!!!\n' > "$T/sent.txt"
cat > "$T/sent.want" <<'WANT'
{"neg": 0, "neu": 0.508, "pos": 0.492, "compound": 0.4404, "reward": 0.7202}
{"neg": 0.376, "neu": 0.624, "pos": 0, "compound": -0.3412, "reward": 0.3294}
{"neg": 0, "neu": 0, "pos": 0, "compound": 0, "reward": 0.5}
{"neg": 0, "neu": 0.344, "pos": 0.656, "compound": 0.7723, "reward": 0.88615}
WANT
DPO_ABS=$(cd "$(dirname "$DPO")" && pwd)/$(basename "$DPO")
(cd "$T" && "$DPO_ABS" sentiment sent.txt) > "$T/sent.got" 2>&1 && cmp -s "$T/sent.want" "$T/sent.got" &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo sentiment printed:"; cat "$T/sent.got"; }
printf '{"text": "This movie was good."}\n\n{"prompt": "x", "completion": "This movie was not good."}\n' > "$T/sent.jsonl"
sed -n '1,2p' "$T/sent.want" > "$T/sent2.want"
"$DPO" sentiment --jsonl < "$T/sent.jsonl" > "$T/sent2.got" 2>&1 && cmp -s "$T/sent2.want" "$T/sent2.got" &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo sentiment --jsonl printed:"; cat "$T/sent2.got"; }
printf '{"text": "good"}\n{"text": "bad"}\n{"txt": "no"}\n' > "$T/sentbad.jsonl"
expect 1 "$T/sentbad.jsonl: line 3: missing key \"completion\" or \"text\"" "$DPO" sentiment --jsonl "$T/sentbad.jsonl"
[ -z "$("$DPO" sentiment --jsonl "$T/sentbad.jsonl" 2>/dev/null)" ] && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: sentiment --jsonl printed rows before failing on a bad one"; }
expect 1 "$T/sentbad.jsonl: line 1, column 10: expected a value" sh -c "printf '{\"text\": x}\n' > '$T/sentbad.jsonl'; '$DPO' sentiment --jsonl '$T/sentbad.jsonl'"
expect 1 "standard input: line 1: key \"text\": expected a string" sh -c "echo '{\"text\": 5}' | '$DPO' sentiment --jsonl"
printf 'good\t-1\n' > "$T/lex.txt"
expect 0 "^{\"neg\": 1, \"neu\": 0, \"pos\": 0, \"compound\": -0.25, \"reward\": 0.375}$" sh -c "echo good | '$DPO' sentiment --lexicon '$T/lex.txt'"
printf 'good -1\n' > "$T/lex.txt"
expect 1 "$T/lex.txt: line 1: no TAB after the token" sh -c "echo good | '$DPO' sentiment --lexicon '$T/lex.txt'"
expect 2 "unknown option '--json'" "$DPO" sentiment --json
head -c 20000 /dev/urandom > "$T/rand.txt"
[ "$("$DPO" sentiment "$T/rand.txt" | wc -l)" -eq "$(awk 'END { print NR }' "$T/rand.txt")" ] && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: dpo sentiment of random bytes: not one line of output per line of input"; }

# training: the command line's checks and a tiny run
"$DPO" init --out "$T/p" --layers 1 --heads 2 --dim 16 --ctx 32 --tokenizer data/gpt2 >/dev/null
head -8 data/demo/sentiment_pairs.jsonl > "$T/pairs.jsonl"
expect 0 "--label-smoothing" "$DPO" train --help
expect 2 "missing required option --data" "$DPO" train --model "$T/p" --out "$T/o"
expect 2 "unknown --loss 'dop'" "$DPO" train --model "$T/p" --data "$T/pairs.jsonl" --out "$T/o" --loss dop
expect 2 "unknown --optimizer" "$DPO" train --model "$T/p" --data "$T/pairs.jsonl" --out "$T/o" --optimizer adam
expect 2 "--beta must be a finite non-negative number" "$DPO" train --model "$T/p" --data "$T/pairs.jsonl" --out "$T/o" --beta x
expect 1 "weight decay" "$DPO" train --model "$T/p" --data "$T/pairs.jsonl" --out "$T/o" --optimizer sgd --weight-decay 0.1
printf '{"prompt": "a", "chosen": "b", "rejected": "c"}\n{"prompt": "a", "chosen": 5, "rejected": "c"}\n' > "$T/badpairs.jsonl"
expect 1 "$T/badpairs.jsonl: line 2: key \"chosen\"" "$DPO" train --model "$T/p" --data "$T/badpairs.jsonl" --out "$T/o"
[ ! -e "$T/o" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a failed train left $T/o behind"; }
expect 0 "\"step\": 2, " sh -c "'$DPO' train --model '$T/p' --data '$T/pairs.jsonl' --out '$T/o' --batch 4 --micro-batch 2 \
    --steps 2 --warmup 0 --lr 1e-3 --quiet --log '$T/m.jsonl' && cat '$T/m.jsonl'"
expect 0 "\"loss\": 0.693147" head -1 "$T/m.jsonl"
expect 0 "tokenizer: 50257 tokens" "$DPO" info --model "$T/o"

# kill -9 in the middle of a run, resume: the model ends bit-identical to an uninterrupted run
A="--data $T/pairs.jsonl --batch 4 --micro-batch 2 --warmup 2 --lr 1e-3 --optimizer adamw --schedule cosine --quiet --seed 3 --steps 40"
"$DPO" train --model "$T/p" --out "$T/full" $A >/dev/null 2>&1
"$DPO" train --model "$T/p" --out "$T/part" --save-every 2 $A >/dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 400 ] && ! grep -q '"step": \([4-9]\|[1-9][0-9]\)' "$T/part/trainer_state.json" 2>/dev/null; do
    sleep 0.02; i=$((i + 1))
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
expect 0 "wrote $T/part" "$DPO" train --model "$T/p" --out "$T/part" --save-every 2 $A --resume "$T/part"
cmp -s "$T/full/model.safetensors" "$T/part/model.safetensors" && cmp -s "$T/full/optimizer.safetensors" "$T/part/optimizer.safetensors" &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: kill -9 + --resume did not end bit-identical to an uninterrupted run"; }
expect 1 "resume with the same" "$DPO" train --model "$T/p" --out "$T/part" --data "$T/pairs.jsonl" --batch 4 \
    --micro-batch 2 --seed 4 --steps 40 --resume "$T/part"
expect 1 "not a checkpoint" "$DPO" train --model "$T/p" --out "$T/x" $A --resume "$T/p"
# a checkpoint from before trainer_state.json had "mode" resumes as dpo; a bad mode is an error
grep -v '"mode"' "$T/part/trainer_state.json" > "$T/state" && mv "$T/state" "$T/part/trainer_state.json"
expect 0 "wrote $T/part" "$DPO" train --model "$T/p" --out "$T/part" $(echo "$A" | sed 's/--steps 40/--steps 41/') --resume "$T/part"
sed 's/"mode": "dpo"/"mode": "ppo"/' "$T/part/trainer_state.json" > "$T/state" && mv "$T/state" "$T/part/trainer_state.json"
expect 1 "trainer_state.json: key \"mode\": not \"dpo\", \"sft\" or \"rm\"" "$DPO" train --model "$T/p" --out "$T/part" $(echo "$A" | sed 's/--steps 40/--steps 42/') --resume "$T/part"

# dpo logp: packing-independent sums; with --ref the implicit rewards (policy = reference: 0)
"$DPO" logp --model "$T/p" --data "$T/pairs.jsonl" --micro-batch 1 > "$T/lp1.jsonl"
"$DPO" logp --model "$T/p" --data "$T/pairs.jsonl" --micro-batch 3 > "$T/lp3.jsonl"
cmp -s "$T/lp1.jsonl" "$T/lp3.jsonl" && [ "$(wc -l < "$T/lp1.jsonl")" -eq 8 ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo logp depends on --micro-batch or misses rows"; }
expect 0 "\"reward_chosen\": 0, \"reward_rejected\": 0}" "$DPO" logp --model "$T/p" --ref "$T/p" --data "$T/pairs.jsonl"
expect 1 "$T/badpairs.jsonl: line 2" "$DPO" logp --model "$T/p" --data "$T/badpairs.jsonl"

# dpo explain: the per-token table's totals are dpo logp's implicit rewards for the same row
# expect_silent CODE PATTERN -- command...: exit status CODE, PATTERN on stderr, nothing on stdout
expect_silent() {
    code=$1; pat=$2; shift 2
    out=$("$@" 2>"$T/stderr"); got=$?
    if [ "$got" -eq "$code" ] && [ -z "$out" ] && grep -q -- "$pat" "$T/stderr"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $* -> exit $got (want $code), stdout '$(printf '%s' "$out" | head -c 200)', stderr:"
        head -5 "$T/stderr"
    fi
}
"$DPO" init --out "$T/r" --layers 1 --heads 2 --dim 16 --ctx 32 --tokenizer data/gpt2 --seed 7 >/dev/null
"$DPO" logp --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --beta 0.5 > "$T/lpx.jsonl"
"$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --row 3 --beta 0.5 --svg "$T/x.svg" > "$T/x.txt"
ex_c=$(sed -n 's/^  reward(chosen) = .* = \([-+0-9.]*\)$/\1/p' "$T/x.txt")
ex_r=$(sed -n 's/^  reward(rejected) = .* = \([-+0-9.]*\)$/\1/p' "$T/x.txt")
ex_m=$(sed -n 's/^margin .* = \([-+0-9.]*\)$/\1/p' "$T/x.txt")
lp_c=$(sed -n 3p "$T/lpx.jsonl" | sed 's/.*"reward_chosen": \([^,}]*\).*/\1/')
lp_r=$(sed -n 3p "$T/lpx.jsonl" | sed 's/.*"reward_rejected": \([^,}]*\).*/\1/')
# explain prints 6 decimals, logp 9 significant digits: equal within 1e-6 (2e-6 for the difference)
if [ -n "$ex_c" ] && [ -n "$ex_r" ] && [ -n "$ex_m" ] && awk -v a="$ex_c" -v b="$lp_c" -v c="$ex_r" -v d="$lp_r" -v m="$ex_m" \
    'BEGIN { x = a - b; y = c - d; z = m - (b - d); exit !(x * x < 1e-12 && y * y < 1e-12 && z * z < 4e-12 && b != d) }'; then
    pass=$((pass + 1))
else
    fail=$((fail + 1)); echo "FAIL: dpo explain's rewards ($ex_c, $ex_r, margin $ex_m) differ from dpo logp's ($lp_c, $lp_r)"
fi
# the shares column sums to the total (4 decimals each: within n * 5e-5)
awk '/^chosen \(/ { on = 1; next } on && /^ +[0-9]+  / { s += $NF; n++ } on && /^ +sum / { t = $NF; exit }
    END { d = s - t; exit !(n > 1 && d * d <= (n * 5e-5) ^ 2) }' "$T/x.txt" && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: dpo explain's shares do not add up to its sum"; }
[ "$(head -c 4 "$T/x.svg")" = "<svg" ] && tail -c 7 "$T/x.svg" | grep -q "</svg>" && ! grep -q "$(printf '\033')" "$T/x.txt" &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --svg did not write an SVG, or colour codes went to a pipe"; }
expect 0 "<|endoftext|> " "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl"
expect 0 "weight  sigmoid(-beta\*h) = " "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --row 8
expect 0 "reward(response) = " "$DPO" explain --model "$T/p" --ref "$T/r" --prompt "Q: 1 < 2?" --response " A: \"yes\" & more"
expect 0 "prompt: empty, so the sequences start with <|endoftext|>" "$DPO" explain --model "$T/p" --ref "$T/r" --prompt "" --response ""
printf '{"prompt": "The movie was", "completion": " great"}\n' > "$T/sftx.jsonl"
expect 0 "reward(completion) = " "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/sftx.jsonl"
expect 0 "--svg" "$DPO" explain --help
cp "$T/pairs.jsonl" "$T/pairs.keep"
expect_silent 2 "--svg $T/pairs.jsonl is the input file" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --svg "$T/pairs.jsonl"
expect_silent 2 "--svg $T/r/config.json lies in the model or tokenizer directory $T/r" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --svg "$T/r/config.json"
expect_silent 2 "lies in the model or tokenizer directory" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --svg "$T/p/new.svg"
cmp -s "$T/pairs.jsonl" "$T/pairs.keep" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --svg wrote over an input"; }
expect_silent 2 "--row 9 is past the end of $T/pairs.jsonl, which has 8 rows" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --row 9
expect_silent 1 "$T/none.jsonl: cannot open" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/none.jsonl"
expect_silent 1 "$T/badpairs.jsonl: line 2: key \"chosen\"" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/badpairs.jsonl"
expect_silent 1 "$T/bad2.jsonl: line 2, column 10" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/bad2.jsonl"
expect_silent 1 "the reference's n_layer (2) differs from the policy's (1)" "$DPO" explain --model "$T/p" --ref "$T/m2" --data "$T/pairs.jsonl"
expect_silent 1 "the tokenizer has 50257 tokens, more than the model's vocab_size 11" "$DPO" explain --model "$T/m2" --ref "$T/m2" --tokenizer data/gpt2 --data "$T/pairs.jsonl"
expect_silent 1 "$T/nothing/config.json: cannot open" "$DPO" explain --model "$T/p" --ref "$T/nothing" --data "$T/pairs.jsonl"
expect_silent 2 "not both" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --prompt a --response b
expect_silent 2 "give --data FILE" "$DPO" explain --model "$T/p" --ref "$T/r" --prompt a
expect_silent 2 "--row needs --data" "$DPO" explain --model "$T/p" --ref "$T/r" --prompt a --response b --row 2
expect_silent 2 "--beta must be > 0" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --beta 0
expect_silent 2 "missing required option --ref" "$DPO" explain --model "$T/p" --data "$T/pairs.jsonl"
expect_silent 1 "$T/no/dir/x.svg" "$DPO" explain --model "$T/p" --ref "$T/r" --data "$T/pairs.jsonl" --svg "$T/no/dir/x.svg"

# held-out evaluation, and dpo sft
expect 2 "needs --eval-data" "$DPO" train --model "$T/p" --data "$T/pairs.jsonl" --out "$T/o" --eval-every 2
expect 1 "$T/badpairs.jsonl: line 2" "$DPO" train --model "$T/p" --data "$T/pairs.jsonl" --out "$T/ev" --eval-data "$T/badpairs.jsonl"
[ ! -e "$T/ev" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a failed train left $T/ev behind"; }
expect 0 "\"eval_rewards/accuracies\"" sh -c "'$DPO' train --model '$T/p' --data '$T/pairs.jsonl' --out '$T/ev' --batch 4 \
    --steps 3 --eval-data '$T/pairs.jsonl' --eval-every 2 --quiet --log '$T/ev.jsonl' && grep -c eval_loss '$T/ev.jsonl' | grep -qx 2 && cat '$T/ev.jsonl'"
expect 0 "eval after step 2: loss" "$DPO" train --model "$T/p" --data "$T/pairs.jsonl" --out "$T/ev2" --batch 4 --steps 2 \
    --eval-data "$T/pairs.jsonl" --eval-every 2
expect 0 "--eval-data" "$DPO" sft --help
expect 2 "unknown option '--beta'" "$DPO" sft --model "$T/p" --data "$T/pairs.jsonl" --out "$T/s" --beta 0.1
printf '{"prompt": "The movie was", "completion": " great"}\n{"text": "A fine day."}\n' > "$T/sft.jsonl"
expect 1 "$T/pairs.jsonl: line 1: missing key \"completion\"" "$DPO" sft --model "$T/p" --data "$T/pairs.jsonl" --out "$T/s"
expect 0 "\"eval_loss\"" sh -c "'$DPO' sft --model '$T/p' --data '$T/sft.jsonl' --out '$T/s' --batch 2 --steps 2 \
    --warmup 0 --lr 1e-3 --eval-data '$T/sft.jsonl' --quiet --log '$T/s.jsonl' && cat '$T/s.jsonl'"
! grep -q rewards "$T/s.jsonl" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo sft logged DPO rewards"; }
expect 0 "tokenizer: 50257 tokens" "$DPO" info --model "$T/s"
expect 1 "resume it with dpo sft" "$DPO" train --model "$T/p" --data "$T/pairs.jsonl" --out "$T/s" --batch 2 --steps 3 --resume "$T/s"

# ---------------------------------------------------------------------------
# the user's files are never destroyed (issue 8)
printf '{"prompt": "a", "chosen": " good", "rejected": " bad"}\n' > "$T/one.jsonl"
mkdir "$T/u"; echo keep > "$T/u/notes.txt"; echo '{}' > "$T/u/config.json"; cp "$T/one.jsonl" "$T/u/pairs.jsonl"
expect 2 "$T/u: holds '.*', which dpo did not write" "$DPO" train --model "$T/p" --data "$T/u/pairs.jsonl" --out "$T/u" --steps 1 --batch 1 --micro-batch 1
[ "$(cat "$T/u/notes.txt")" = keep ] && [ -s "$T/u/pairs.jsonl" ] && [ -s "$T/u/config.json" ] && [ ! -e "$T/u.old" ] && [ ! -e "$T/u.tmp" ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a refused --out was changed"; }
# only dpo's names, but no valid trainer_state.json: a model directory, not a checkpoint
expect 2 "$T/p: is the --model directory" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$T/p" --steps 1 --batch 1
expect 2 "$T/p: is the --ref directory" "$DPO" train --model "$T/g" --ref "$T/p/" --data "$T/one.jsonl" --out "$T/p/" --steps 1 --batch 1
expect 2 "$T/p: is the --tokenizer directory" "$DPO" train --model "$T/g" --tokenizer "$T/p" --data "$T/one.jsonl" --out "$T/p" --steps 1 --batch 1
expect 2 "$T/m2: exists and is neither empty nor a checkpoint of dpo" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$T/m2" --steps 1 --batch 1
[ -s "$T/p/model.safetensors" ] && [ -s "$T/m2/model.safetensors" ] && [ ! -e "$T/p.old" ] && [ ! -e "$T/m2.old" ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a refused --out lost its model"; }
for d in . / .. "$T/." ; do
    expect 2 "give the output directory by its own name" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$d" --steps 1 --batch 1
done
# a trailing slash is the directory itself: nothing inside it, OUT.tmp beside it
expect 0 "wrote $T/slash" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$T/slash/" --steps 2 --batch 1 --save-every 1 --quiet
[ -s "$T/slash/trainer_state.json" ] && [ ! -e "$T/slash/.tmp" ] && [ ! -e "$T/slash.tmp" ] && [ ! -e "$T/slash.old" ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: --out DIR/ left DIR/.tmp, DIR.tmp or DIR.old"; }
expect 0 "wrote $T/slash" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$T/slash" --steps 1 --batch 1 --quiet
# symbolic links are never followed: OUT.old, OUT.tmp or OUT itself a link to a victim
mkdir "$T/victim"; cp "$T/p/model.safetensors" "$T/victim/"; echo keep > "$T/victim/notes.txt"
for sib in old tmp; do
    rm -rf "$T/run3" "$T/run3.old" "$T/run3.tmp"; ln -s "$T/victim" "$T/run3.$sib"
    expect 2 "$T/run3.$sib: is a symbolic link" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$T/run3" --steps 1 --batch 1
done
rm -f "$T/run3.tmp"; ln -s "$T/victim" "$T/run4"
expect 2 "$T/run4: is a symbolic link" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$T/run4" --steps 1 --batch 1
[ -s "$T/victim/model.safetensors" ] && [ -s "$T/victim/notes.txt" ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a file behind a symbolic link was removed"; }
# an option's value is never another option
expect 2 "option --out needs a value, but the next argument is the option '--data'" "$DPO" train --model "$T/p" --out --data "$T/one.jsonl"
[ ! -e ./--data ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a directory named --data was made"; }
# init and tokenizer-train: a new or empty directory, or one holding only what they write (so they can run again)
expect 2 "holds 'notes.txt', which dpo did not write" "$DPO" init --out "$T/u" --layers 1 --heads 2 --dim 16 --ctx 8 --vocab 300
expect 2 "is the input directory" "$DPO" init --out "$T/p" --layers 1 --heads 2 --dim 16 --ctx 8 --tokenizer "$T/p"
expect 0 "wrote $T/m2" "$DPO" init --out "$T/m2" --layers 2 --heads 2 --dim 8 --ctx 8 --vocab 11
expect 2 "holds 'notes.txt', which dpo did not write" "$DPO" tokenizer-train --data "$T/corpus.txt" --vocab-size 300 --out "$T/u"
[ "$(cat "$T/u/notes.txt")" = keep ] && [ ! -e "$T/u/vocab.json" ] && [ ! -e "$T/u/model.safetensors" ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: init or tokenizer-train wrote into a directory it refused"; }
# corpus: synthetic reviews; the same seed gives the same bytes; a foreign --out is refused untouched
expect 0 "wrote $T/cor/train.txt (150 reviews), $T/cor/heldout.txt (50)" "$DPO" corpus --out "$T/cor" --reviews 200 --held-out 50
[ "$(wc -l < "$T/cor/train.txt")" -eq 150 ] && [ "$(wc -l < "$T/cor/heldout.txt")" -eq 50 ] &&
    [ "$(wc -l < "$T/cor/ratings.tsv")" -eq 201 ] && [ "$(ls "$T/cor" | wc -l)" -eq 3 ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo corpus did not write 150 + 50 reviews and 201 rating lines"; }
cp "$T/cor/train.txt" "$T/cor_train1.txt"
expect 0 "wrote" "$DPO" corpus --out "$T/cor" --reviews 200 --held-out 50
cmp -s "$T/cor/train.txt" "$T/cor_train1.txt" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo corpus: same seed, other bytes"; }
expect 0 "wrote" "$DPO" corpus --out "$T/cor2" --reviews 200 --held-out 50 --seed 2
cmp -s "$T/cor2/train.txt" "$T/cor_train1.txt" && { fail=$((fail + 1)); echo "FAIL: dpo corpus: seeds 1 and 2 gave the same bytes"; } || pass=$((pass + 1))
expect 2 "holds 'notes.txt', which dpo did not write" "$DPO" corpus --out "$T/u" --reviews 20 --held-out 5
[ "$(cat "$T/u/notes.txt")" = keep ] && [ ! -e "$T/u/train.txt" ] && [ ! -e "$T/u/heldout.txt" ] && [ ! -e "$T/u/ratings.tsv" ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo corpus wrote into a directory it refused"; }
expect 2 "missing required option --out" "$DPO" corpus --reviews 20
expect 2 "--held-out (30) must be fewer than --reviews (30)" "$DPO" corpus --out "$T/cor3" --reviews 30 --held-out 30
expect 2 "must exceed --min-words (40) by at least" "$DPO" corpus --out "$T/cor3" --min-words 40 --max-words 45
expect 2 "--reviews must be an integer" "$DPO" corpus --out "$T/cor3" --reviews 0
[ ! -e "$T/cor3" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a refused dpo corpus left $T/cor3 behind"; }
expect 0 "hidden rating" "$DPO" corpus --help
# every write is checked: a full disk is an error, not exit 0
if [ -w /dev/full ]; then
    expect 1 "standard output: write failed" sh -c "head -c 100000 '$T/corpus.txt' | '$DPO' encode --tokenizer data/gpt2 > /dev/full"
    expect 1 "standard output: write failed" sh -c "echo 15496 995 | '$DPO' decode --tokenizer data/gpt2 > /dev/full"
    expect 1 "standard output: write failed" sh -c "'$DPO' logp --model '$T/p' --data '$T/pairs.jsonl' > /dev/full"
    expect 1 "/dev/full: cannot write the metrics log" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$T/full1" --steps 2 --batch 1 --log /dev/full
fi
# a NaN weight is refused at load, naming the tensor (info "fully validates"; logp never prints nan)
cp -r "$T/p" "$T/nanm"
hl=$(od -An -tu8 -N8 "$T/nanm/model.safetensors" | tr -d ' ')
printf '\000\000\300\177' | dd of="$T/nanm/model.safetensors" bs=1 seek=$((8 + hl + 8)) conv=notrunc 2>/dev/null
expect 1 "element 2 is nan (non-finite weights are refused)" "$DPO" info --model "$T/nanm"
expect 1 "element 2 is nan" "$DPO" logp --model "$T/nanm" --data "$T/pairs.jsonl"
# the metrics log is appended to: never a data file, never inside --out
expect 2 "is a data file" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$T/lg" --steps 1 --batch 1 --log "$T/one.jsonl"
mkdir "$T/lg"
expect 2 "is inside $T/lg, which dpo replaces" "$DPO" train --model "$T/p" --data "$T/one.jsonl" --out "$T/lg/" --steps 1 --batch 1 --log "$T/lg/m.jsonl"
[ "$(wc -l < "$T/one.jsonl")" -eq 1 ] && [ ! -e "$T/lg/m.jsonl" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a refused --log was written"; }
# names from files are escaped in messages: no escape sequence reaches the terminal
cp -r "$T/m2" "$T/esc"
printf '{"model_type": "gpt2\\u001b]0;pwned\\u0007\\u001b[2J", "n_layer": 2, "n_head": 2, "n_embd": 8, "n_positions": 8, "vocab_size": 11}' > "$T/esc/config.json"
out=$("$DPO" info --model "$T/esc" 2>&1)
if printf '%s' "$out" | grep -q "$(printf '\033')"; then fail=$((fail + 1)); echo "FAIL: an escape byte reached the terminal: $out"
elif printf '%s' "$out" | grep -q 'x1b\]0;pwned'; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: model_type not shown escaped: $out"; fi

# ---------------------------------------------------------------------------
# a crashed run always resumes, bit-identical: a --save-every 1 run killed at
# random moments (uniform over the run's wall time; every other one then waits
# for OUT.tmp to appear, so that it lands inside a save) and resumed each time
# ends byte-for-byte as the uninterrupted run. A small
# vocabulary keeps each save small; DPO_KILLS sets the number of kills (24).
K="$T/kill"; mkdir "$K"
i=0; while [ $i -lt 100 ]; do echo "a good film, a bad film, the cast was great $i"; i=$((i + 1)); done > "$K/corpus.txt"
"$DPO" tokenizer-train --data "$K/corpus.txt" --vocab-size 300 --out "$K/tok" >/dev/null 2>&1
"$DPO" init --out "$K/p" --layers 1 --heads 2 --dim 16 --ctx 48 --tokenizer "$K/tok" --seed 9 >/dev/null
head -16 data/demo/sentiment_pairs.jsonl > "$K/pairs.jsonl"
KA="--model $K/p --data $K/pairs.jsonl --batch 4 --micro-batch 2 --warmup 2 --lr 1e-3 --optimizer adamw --quiet --seed 3 --steps 60 --save-every 1"
t0=$(date +%s.%N)
"$DPO" train $KA --out "$K/ref" >/dev/null 2>&1
dur=$(echo "$t0 $(date +%s.%N)" | awk '{ print $2 - $1 }')
tdur=$dur
kills=${DPO_KILLS:-24}; k=0; identical=0; in_save=0; fresh=0
while [ $k -lt $kills ]; do
    rm -rf "$K/o" "$K/o.tmp" "$K/o.old"
    delay=$(awk -v s=$k -v d="$dur" 'BEGIN { srand(1000 + s); printf "%.4f", rand() * d }')
    "$DPO" train $KA --out "$K/o" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    # every other kill waits (spinning) for OUT.tmp to exist: it exists only inside a save
    if [ $((k % 2)) -eq 1 ]; then
        n=0; while [ ! -e "$K/o.tmp" ] && [ $n -lt 200000 ] && kill -0 $pid 2>/dev/null; do n=$((n + 1)); done
    fi
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    [ -e "$K/o.tmp" ] && in_save=$((in_save + 1))
    out=$("$DPO" train $KA --out "$K/o" --resume "$K/o" 2>&1) || echo "resume after a kill at $delay s failed: $out"
    printf '%s' "$out" | grep -q "starting from step 0" && fresh=$((fresh + 1))
    cmp -s "$K/ref/model.safetensors" "$K/o/model.safetensors" && cmp -s "$K/ref/optimizer.safetensors" "$K/o/optimizer.safetensors" &&
        cmp -s "$K/ref/trainer_state.json" "$K/o/trainer_state.json" && [ ! -e "$K/o.tmp" ] && [ ! -e "$K/o.old" ] &&
        identical=$((identical + 1))
    k=$((k + 1))
done
echo "random kills: $identical of $kills resumed bit-identical ($in_save killed inside a save, $fresh before the first save; run $dur s)"
[ $identical -eq $kills ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: only $identical of $kills killed runs resumed bit-identical"; }

# the same for dpo ppo: its checkpoint holds two models, two optimizers and the KL coefficient
printf '{"prompt": "a good film"}\n{"prompt": "the cast was"}\n{"prompt": "a bad"}\n' > "$K/prompts.jsonl"
PA="--model $K/p --prompts $K/prompts.jsonl --reward sentiment --batch 6 --mini-batch 3 --micro-batch 2 --ppo-epochs 2 --max-new 6 --target-kl 2 --kl-horizon 50 --lr 1e-3 --quiet --seed 5 --steps 25 --save-every 1"
t0=$(date +%s.%N)
"$DPO" ppo $PA --out "$K/pref" >/dev/null 2>&1
dur=$(echo "$t0 $(date +%s.%N)" | awk '{ print $2 - $1 }')
pdur=$dur
kills=${DPO_PPO_KILLS:-12}; k=0; identical=0; in_save=0
while [ $k -lt $kills ]; do
    rm -rf "$K/q" "$K/q.tmp" "$K/q.old"
    delay=$(awk -v s=$k -v d="$dur" 'BEGIN { srand(2000 + s); printf "%.4f", rand() * d }')
    "$DPO" ppo $PA --out "$K/q" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    if [ $((k % 2)) -eq 1 ]; then
        n=0; while [ ! -e "$K/q.tmp" ] && [ $n -lt 200000 ] && kill -0 $pid 2>/dev/null; do n=$((n + 1)); done
    fi
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
    [ -e "$K/q.tmp" ] && in_save=$((in_save + 1))
    out=$("$DPO" ppo $PA --out "$K/q" --resume "$K/q" 2>&1) || echo "ppo resume after a kill at $delay s failed: $out"
    same=1
    for f in model.safetensors optimizer.safetensors value.safetensors value_optimizer.safetensors ppo_state.json; do
        cmp -s "$K/pref/$f" "$K/q/$f" || same=0
    done
    [ $same -eq 1 ] && [ ! -e "$K/q.tmp" ] && [ ! -e "$K/q.old" ] && identical=$((identical + 1))
    k=$((k + 1))
done
echo "ppo random kills: $identical of $kills resumed bit-identical ($in_save killed inside a save; run $dur s)"
[ $identical -eq $kills ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: only $identical of $kills killed ppo runs resumed bit-identical"; }

# SIGINT or SIGTERM at a random moment of the training (after its first step,
# when the handler is surely in place): the run stops at the end of its step with
# a checkpoint of that step, says how to resume, exits 128 + the signal; resuming
# ends with the uninterrupted run's bytes (train: $K/ref, ppo: $K/pref). A run
# that finished before the signal came counts too, as long as one was stopped.
ints=${DPO_INTS:-6}; k=0; good=0; stopped=0
while [ $k -lt $ints ]; do
    sig=INT; want=130; [ $((k % 2)) -eq 1 ] && { sig=TERM; want=143; }
    for cmd in train ppo; do
        rm -rf "$K/i" "$K/i.tmp" "$K/i.old" "$K/i.jsonl"
        if [ $cmd = train ]; then args=$KA; ref="$K/ref"; d=$tdur; files="model.safetensors optimizer.safetensors trainer_state.json"
        else args=$PA; ref="$K/pref"; d=$pdur; files="model.safetensors optimizer.safetensors value.safetensors value_optimizer.safetensors ppo_state.json"; fi
        delay=$(awk -v s=$k -v d="$d" 'BEGIN { srand(3000 + s); printf "%.4f", rand() * 0.7 * d }')
        "$DPO" $cmd $args --out "$K/i" --log "$K/i.jsonl" > "$K/i.log" 2>&1 &
        pid=$!
        n=0; while ! [ -s "$K/i.jsonl" ] && [ $n -lt 200000 ] && kill -0 $pid 2>/dev/null; do n=$((n + 1)); done
        sleep "$delay"
        kill -$sig $pid 2>/dev/null; wait $pid; st=$?
        if [ $st -eq $want ]; then
            stopped=$((stopped + 1))
            grep -q "after step [0-9]*: a checkpoint of that step is in $K/i; to continue, run the same command with --resume $K/i" "$K/i.log" ||
                { fail=$((fail + 1)); echo "FAIL: dpo $cmd stopped by SIG$sig without saying how to resume:"; cat "$K/i.log"; }
        elif [ $st -ne 0 ]; then
            fail=$((fail + 1)); echo "FAIL: dpo $cmd after SIG$sig exited $st (want $want, or 0 if it had finished)"; cat "$K/i.log"
        fi
        "$DPO" $cmd $args --out "$K/i" --resume "$K/i" >/dev/null 2>&1 || echo "resume of an interrupted dpo $cmd failed"
        same=1
        for f in $files; do cmp -s "$ref/$f" "$K/i/$f" || same=0; done
        [ $same -eq 1 ] && good=$((good + 1))
    done
    k=$((k + 1))
done
echo "interrupts: $good of $((2 * ints)) interrupted runs (train and ppo) resumed bit-identical; $stopped stopped by the signal"
[ $good -eq $((2 * ints)) ] && [ $stopped -ge 1 ] && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: interrupts: $good of $((2 * ints)) resumed bit-identical, $stopped stopped by the signal"; }

# generation: dpo sample, eval, pairs (a small random model with GPT-2's tokenizer)
G=$T/gen
mkdir -p "$G"
"$DPO" init --out "$G/pol" --layers 2 --heads 2 --dim 32 --ctx 48 --tokenizer data/gpt2 --seed 21 >/dev/null
"$DPO" init --out "$G/ref" --layers 2 --heads 2 --dim 32 --ctx 48 --tokenizer data/gpt2 --seed 22 >/dev/null
printf '{"prompt": "The film was"}\n\n{"prompt": "", "other": 1}\n{"prompt": "I did not like the ending because"}\n' > "$G/prompts.jsonl"
expect 0 "--top-p" "$DPO" sample --help
expect 0 "exact" "$DPO" eval --help
expect 0 "--scored" "$DPO" pairs --help
SA="--model $G/pol --prompts $G/prompts.jsonl --n 3 --max-new 12 --seed 5 --temperature 0.9 --top-k 40 --top-p 0.95"
"$DPO" sample $SA --batch 1 --threads 1 > "$G/s1.jsonl" 2>/dev/null
"$DPO" sample $SA --batch 7 --threads 2 --out "$G/s2.jsonl" 2>/dev/null
cmp -s "$G/s1.jsonl" "$G/s2.jsonl" && [ "$(wc -l < "$G/s1.jsonl")" -eq 9 ] && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: dpo sample differs between --batch 1 --threads 1 and --batch 7 --threads 2 (or not 9 rows)"; }
# every row has the four keys; no completion has more than --max-new ids, and "length" ones exactly that many
awk '!/^\{"prompt": ".*", "completion": ".*", "finish": "(eos|length)", "ids": \[[0-9, ]*\]\}$/ { bad = 1 }
     { ids = $0; sub(/.*"ids": \[/, "", ids); sub(/\]\}$/, "", ids); n = ids == "" ? 0 : split(ids, a, ", ")
       if (n > 12 || ($0 ~ /"finish": "length"/ && n != 12)) bad = 1 }
     END { exit bad }' "$G/s1.jsonl" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo sample rows:"; head -3 "$G/s1.jsonl"; }
"$DPO" sample $SA --seed 6 > "$G/s3.jsonl" 2>/dev/null
cmp -s "$G/s1.jsonl" "$G/s3.jsonl" && { fail=$((fail + 1)); echo "FAIL: another seed gave the same samples"; } || pass=$((pass + 1))
[ "$("$DPO" sample --model "$G/pol" --prompt "Hello" --n 3 --temperature 0 --max-new 8 2>/dev/null | sort -u | wc -l)" -eq 1 ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: greedy samples of one prompt differ"; }
expect 2 "exactly one of --prompt TEXT and --prompts FILE" "$DPO" sample --model "$G/pol" --prompt a --prompts "$G/prompts.jsonl"
expect 2 "exactly one of --prompt TEXT and --prompts FILE" "$DPO" sample --model "$G/pol"
expect 1 "top-p must be in (0, 1\]" "$DPO" sample --model "$G/pol" --prompt a --top-p 0
expect 1 "temperature must be 0 (greedy) or in" "$DPO" sample --model "$G/pol" --prompt a --temperature 1e-9
expect 2 "is the input file" "$DPO" sample --model "$G/pol" --prompts "$G/prompts.jsonl" --out "$G/prompts.jsonl"
expect 2 "lies in the model or tokenizer directory" "$DPO" sample --model "$G/pol" --prompt a --out "$G/pol/x.jsonl"
# --out is renamed into place: a FIFO or device there (/dev/null as root!) must be refused, not replaced
mkfifo "$G/fifo"
expect 1 "$G/fifo: exists and is not a regular file" "$DPO" sample --model "$G/pol" --prompt a --max-new 2 --out "$G/fifo"
[ -p "$G/fifo" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo sample --out replaced a FIFO"; }
printf '{"prompt": "ok"}\n{"prompt": 3}\n' > "$G/badp.jsonl"
expect 1 "$G/badp.jsonl: line 2: key \"prompt\"" "$DPO" sample --model "$G/pol" --prompts "$G/badp.jsonl" --out "$G/never.jsonl"
[ ! -e "$G/never.jsonl" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a failed dpo sample left its --out file"; }
# eval: a model against itself has KL 0 exactly, sampled or along given text
expect 0 '"kl": 0, "kl_se": 0, "kl_sampled": 0,' "$DPO" eval --model "$G/pol" --ref "$G/pol" --prompts "$G/prompts.jsonl" --n 2 --max-new 6
head -4 data/demo/sentiment_pairs.jsonl | sed 's/"chosen"/"completion"/; s/, "rejected": "[^"]*"//' > "$G/comp.jsonl"
expect 0 '"kl": 0, "kl_se": 0, "kl_sampled": 0,.*"completions": "given"' "$DPO" eval --model "$G/pol" --ref "$G/pol" --completions "$G/comp.jsonl"
# along given completions, kl_sampled is log pi - log ref of the completion: dpo logp's implicit reward at beta 1
"$DPO" eval --model "$G/pol" --ref "$G/ref" --completions "$G/comp.jsonl" --out "$G/evc.jsonl" >/dev/null 2>&1
head -4 data/demo/sentiment_pairs.jsonl > "$G/pairs4.jsonl"
"$DPO" logp --model "$G/pol" --ref "$G/ref" --data "$G/pairs4.jsonl" --beta 1 > "$G/logp4.jsonl"
paste -d ' ' "$G/evc.jsonl" "$G/logp4.jsonl" | awk '{ a = $0; sub(/.*"kl_sampled": /, "", a); sub(/,.*/, "", a)
    b = $0; sub(/.*"reward_chosen": /, "", b); sub(/,.*/, "", b); d = a - b; if (d < 0) d = -d
    if (NF == 0 || d > 1e-5 * (b < 0 ? -b : b) + 1e-6) bad = 1; n++ } END { exit bad || n != 4 }' &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: eval --completions kl_sampled != dpo logp's implicit reward"; }
expect 2 "not both" "$DPO" eval --model "$G/pol" --ref "$G/ref" --completions "$G/comp.jsonl" --prompt a
expect 1 "$G/pairs4.jsonl: line 1: missing key \"completion\"" "$DPO" eval --model "$G/pol" --ref "$G/ref" --completions "$G/pairs4.jsonl"
# pairs from scored rows: every two with different rewards, the higher chosen; ties give none
printf '%s\n' '{"prompt": "A", "completion": "a0", "reward": 1}' '{"prompt": "B", "completion": "b0", "reward": 0.5}' \
    '{"prompt": "A", "completion": "a1", "reward": 0}' '{"prompt": "B", "completion": "b1", "reward": 0.5}' \
    '{"prompt": "A", "completion": "a2", "reward": 1}' > "$G/scored.jsonl"
"$DPO" pairs --scored "$G/scored.jsonl" --out "$G/sp.jsonl" 2>/dev/null
printf '%s\n' '{"prompt": "A", "chosen": "a0", "rejected": "a1"}' '{"prompt": "A", "chosen": "a2", "rejected": "a1"}' > "$G/sp.want"
cmp -s "$G/sp.jsonl" "$G/sp.want" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo pairs --scored:"; cat "$G/sp.jsonl"; }
expect 1 "$G/prompts.jsonl: line 1: missing key \"completion\"" "$DPO" pairs --scored "$G/prompts.jsonl" --out "$G/x.jsonl"
expect 2 "give --model DIR with prompts to sample from, or --scored FILE" "$DPO" pairs --out "$G/x.jsonl"
# pairs from samples feed dpo logp (the training reader) as they are
"$DPO" pairs --model "$G/pol" --prompts "$G/prompts.jsonl" --n 4 --max-new 8 --reward sentiment --out "$G/pairs.jsonl" 2>/dev/null
expect 0 "logp_chosen" "$DPO" logp --model "$G/pol" --data "$G/pairs.jsonl"

# dpo rm-train: a reward model from a language model, saved as GPT2ForSequenceClassification,
# then used as --reward model:DIR; the language-model commands refuse it
expect 0 "Bradley-Terry" "$DPO" rm-train --help
"$DPO" rm-train --help | grep -q -- "--beta" && { fail=$((fail + 1)); echo "FAIL: rm-train offers --beta"; } || pass=$((pass + 1))
expect 0 "wrote $G/rm" "$DPO" rm-train --model "$G/pol" --data "$G/pairs4.jsonl" --eval-data "$G/pairs4.jsonl" --out "$G/rm" \
    --batch 2 --steps 2 --quiet --log "$G/rm.log"
grep -q '"architectures": \["GPT2ForSequenceClassification"\]' "$G/rm/config.json" && grep -q '"num_labels": 1' "$G/rm/config.json" &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: rm-train config.json"; cat "$G/rm/config.json"; }
grep -q '^{"step": 2, "epoch": 1, "loss": [0-9.e-]*, "accuracy": [0-9.e-]*, "margin": .*"rewards/chosen": .*"grad_norm": ' "$G/rm.log" &&
    grep -q '"eval_loss": .*"eval_accuracy": ' "$G/rm.log" && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: rm-train metrics log:"; cat "$G/rm.log"; }
expect 0 "score.weight *F32 *(1, 32)" "$DPO" info --model "$G/rm"
expect 0 "kind: reward or value model" "$DPO" info --model "$G/rm"
expect 1 "$G/rm: is a reward or value model" "$DPO" sample --model "$G/rm" --prompt a
expect 1 "$G/rm: is a reward or value model" "$DPO" train --model "$G/rm" --data "$G/pairs4.jsonl" --out "$G/never" --steps 1 --batch 1
expect 1 "resume it with dpo rm-train" "$DPO" train --model "$G/pol" --data "$G/pairs4.jsonl" --out "$G/rm" --resume "$G/rm" --steps 1 --batch 2
expect 0 '"reward_name": "model:'"$G"'/rm"' "$DPO" eval --model "$G/pol" --ref "$G/pol" --completions "$G/comp.jsonl" --reward "model:$G/rm"
expect 1 "$G/pol: is a language model, not a reward model" "$DPO" eval --model "$G/pol" --ref "$G/pol" --completions "$G/comp.jsonl" --reward "model:$G/pol"
"$DPO" sample --model "$G/pol" --prompts "$G/prompts.jsonl" --n 2 --max-new 5 --seed 4 --reward "model:$G/rm" > "$G/rs.jsonl" 2>/dev/null
"$DPO" sample --model "$G/pol" --prompts "$G/prompts.jsonl" --n 2 --max-new 5 --seed 4 > "$G/rs0.jsonl" 2>/dev/null
# the same samples, each with its reward between "finish" and "ids"
sed 's/, "reward": [^,]*,/,/' "$G/rs.jsonl" | cmp -s - "$G/rs0.jsonl" && [ "$(grep -c '"finish": "[a-z]*", "reward": [-0-9.e]*, "ids"' "$G/rs.jsonl")" -eq 6 ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo sample --reward:"; head -2 "$G/rs.jsonl"; }
expect 1 "unknown reward 'vader' (known: sentiment, model:DIR)" "$DPO" sample --model "$G/pol" --prompt a --reward vader
expect 1 "unknown reward 'vader' (known: sentiment, model:DIR)" "$DPO" eval --model "$G/pol" --ref "$G/pol" --completions "$G/comp.jsonl" --reward vader
"$DPO" pairs --model "$G/pol" --prompts "$G/prompts.jsonl" --n 3 --max-new 6 --reward "model:$G/rm" --out "$G/rmpairs.jsonl" 2>/dev/null
[ "$(wc -l < "$G/rmpairs.jsonl")" -ge 1 ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo pairs --reward model:DIR wrote no pairs"; }

# dpo ppo: with the reward model (the value model starts from it) and with the true reward
expect 0 "clipped surrogate" "$DPO" ppo --help
expect 0 "value model: $G/rm (its score head)" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" --reward "model:$G/rm" \
    --out "$G/ppo" --batch 4 --mini-batch 2 --steps 2 --max-new 4 --log "$G/ppo.log"
for f in config.json model.safetensors vocab.json merges.txt optimizer.safetensors value_config.json value.safetensors \
    value_optimizer.safetensors ppo_state.json; do
    [ -s "$G/ppo/$f" ] || { fail=$((fail + 1)); echo "FAIL: dpo ppo wrote no $f"; }
done
grep -q '"architectures": \["GPT2ForSequenceClassification"\]' "$G/ppo/value_config.json" && pass=$((pass + 1)) ||
    { fail=$((fail + 1)); echo "FAIL: the value model's config"; }
[ "$(wc -l < "$G/ppo.log")" -eq 2 ] && grep -q '^{"step": 2, "epoch": .*"objective/kl": .*"objective/scores": .*"ppo/loss/policy": .*"ppo/loss/value": .*"ppo/policy/clipfrac": .*"ppo/policy/approxkl": ' "$G/ppo.log" &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo ppo metrics log:"; cat "$G/ppo.log"; }
# a checkpoint whose state was tampered with is refused on --resume, naming the key, and left alone
cp -r "$G/ppo" "$G/ppobad"
sed -i 's/"kl_coef": .*/"kl_coef": -1/' "$G/ppobad/ppo_state.json"
expect 1 "$G/ppobad/ppo_state.json: key \"kl_coef\": not a finite number >= 0" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" \
    --reward "model:$G/rm" --out "$G/ppobad" --resume "$G/ppobad" --batch 4 --mini-batch 2 --steps 3 --max-new 4
sed -i 's/"mode": "ppo"/"mode": "dpo"/; s/"kl_coef": .*/"kl_coef": 0.05/' "$G/ppobad/ppo_state.json"
expect 1 "key \"mode\": not \"ppo\"" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" \
    --reward "model:$G/rm" --out "$G/ppobad" --resume "$G/ppobad" --batch 4 --mini-batch 2 --steps 3 --max-new 4
cmp -s "$G/ppo/model.safetensors" "$G/ppobad/model.safetensors" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a refused resume changed the checkpoint"; }
expect 1 "the checkpoint was made with --seed 0 --batch 4 --mini-batch 2" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" \
    --reward "model:$G/rm" --out "$G/ppo" --resume "$G/ppo" --batch 5 --mini-batch 2 --steps 3 --max-new 4
expect 0 "value model: $G/pol with a new score head" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" --reward sentiment \
    --out "$G/ppogt" --batch 3 --mini-batch 3 --steps 1 --max-new 3 --temperature 0.7
expect 0 "logp_chosen" "$DPO" logp --model "$G/ppo" --data "$G/pairs4.jsonl"
expect 1 "the mini-batch (8) is larger than the batch (4)" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" --out "$G/never" --batch 4 --mini-batch 8
expect 1 "temperature 0: PPO samples at a temperature in" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" --out "$G/never" --temperature 0
expect 1 "needs --kl-coef > 0" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" --out "$G/never" --kl-coef 0 --target-kl 3
expect 1 "unknown reward 'vader'" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" --out "$G/never" --reward vader --steps 1
expect 1 "is more than a model's context" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" --out "$G/never" --max-new 40 --max-prompt-len 20
expect 1 "$G/rm: is a reward or value model" "$DPO" ppo --model "$G/rm" --prompts "$G/prompts.jsonl" --out "$G/never"
expect 1 "$G/badp.jsonl: line 2: key \"prompt\"" "$DPO" ppo --model "$G/pol" --prompts "$G/badp.jsonl" --out "$G/never"
[ ! -e "$G/never" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a refused dpo ppo left $G/never"; }
expect 2 "is the --model directory" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" --out "$G/pol"
expect 2 "$G/rm: holds 'trainer_state.json', which dpo did not write" "$DPO" ppo --model "$G/pol" --prompts "$G/prompts.jsonl" --out "$G/rm" --resume "$G/rm"

# dpo plot: a TSV drawn as an SVG; bad tables and paths refused, nothing written
P="$T/plot"
mkdir -p "$P"
printf 'method\tkl\treward\tse\nDPO\t0\t0.5\t0.01\nDPO\t2.5\t0.7\t0.02\nSFT <&>\t0\t0.5\t0.01\n' > "$P/f.tsv"
cp "$P/f.tsv" "$P/f.keep"
expect 0 "--series" "$DPO" plot --help
expect 0 "3 points in 2 series" "$DPO" plot --data "$P/f.tsv" --x kl --y reward --yerr se --series method --lines --out "$P/f.svg"
[ "$(head -c 5 "$P/f.svg")" = "<?xml" ] && grep -q "SFT &lt;&amp;&gt;" "$P/f.svg" && tail -c 7 "$P/f.svg" | grep -q "</svg>" &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo plot did not write an SVG"; }
expect 0 "2 points in 1 series" sh -c "head -3 '$P/f.tsv' | '$DPO' plot --data - --x kl --y reward --out '$P/stdin.svg'"
expect_silent 2 "--out $P/f.tsv is the input file" "$DPO" plot --data "$P/f.tsv" --x kl --y reward --out "$P/f.tsv"
cmp -s "$P/f.tsv" "$P/f.keep" && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: dpo plot wrote over its input"; }
printf 'kl\treward\n1\t0.5\n2\tnan\n' > "$P/nan.tsv"
expect_silent 1 "$P/nan.tsv: line 3, column 2 (\"reward\"): \"nan\" is not a number" "$DPO" plot --data "$P/nan.tsv" --x kl --y reward --out "$P/nan.svg"
printf 'kl\treward\n1\t0.5\n2\n' > "$P/ragged.tsv"
expect_silent 1 "$P/ragged.tsv: line 3: 1 cell, but the header (line 1) has 2 columns" "$DPO" plot --data "$P/ragged.tsv" --x kl --y reward --out "$P/ragged.svg"
expect_silent 1 "no column \"rwd\"" "$DPO" plot --data "$P/f.tsv" --x kl --y rwd --out "$P/col.svg"
: > "$P/empty.tsv"
expect_silent 1 "$P/empty.tsv: empty: no header row" "$DPO" plot --data "$P/empty.tsv" --x kl --y reward --out "$P/empty.svg"
[ ! -e "$P/nan.svg" ] && [ ! -e "$P/ragged.svg" ] && [ ! -e "$P/col.svg" ] && [ ! -e "$P/empty.svg" ] &&
    pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL: a refused dpo plot left an output file"; }
expect_silent 1 "$P/none.tsv: cannot open" "$DPO" plot --data "$P/none.tsv" --x kl --y reward --out "$P/none.svg"
expect_silent 2 "missing required option --y" "$DPO" plot --data "$P/f.tsv" --x kl --out "$P/x.svg"
expect_silent 2 "--xmin must be a finite decimal number, got 'inf'" "$DPO" plot --data "$P/f.tsv" --x kl --y reward --out "$P/x.svg" --xmin inf
expect_silent 2 "--ymin 1 must be below --ymax 0.5" "$DPO" plot --data "$P/f.tsv" --x kl --y reward --out "$P/x.svg" --ymin 1 --ymax 0.5
expect 0 "3 points" "$DPO" plot --data "$P/f.tsv" --x kl --y reward --out "$P/neg.svg" --xmin -1 --ymin -0.5 --title "t & <t>"

# dpo selftest: every check passes on this build, and each kind of check can
# fail: a source tree whose vectors were altered (one token id, one VADER score)
# fails exactly that check, with exit status 1; a missing tree is an error
expect 0 "dpo selftest: 62 checks, 0 failed" "$DPO" selftest
expect 0 "^ok   gradient  rel. error .*score.weight (score head" "$DPO" selftest --seed 9 --threads 2
S="$T/selftest-root"
mkdir -p "$S/data" "$S/tests"
ln -s "$(pwd)/data/gpt2" "$S/data/gpt2"
sed '7s/"ids":\[15496,995\]/"ids":[15496,996]/' tests/gpt2_tokenizer_vectors.jsonl > "$S/tests/gpt2_tokenizer_vectors.jsonl"
awk -F '\t' 'BEGIN { OFS = "\t" } NR == 2 { $5 = 0.4424 } { print }' tests/vader_vectors.tsv > "$S/tests/vader_vectors.tsv"
expect 1 "^FAIL tokenizer texts differing  *1.00e+00 <= 0.0e+00  GPT-2 encoding of 474" "$DPO" selftest --root "$S"
expect 1 "^FAIL sentiment max |error|  *2.00e-03 <= 1.0e-04  VADER" "$DPO" selftest --root "$S"
expect 1 "dpo selftest: 62 checks, 2 failed" "$DPO" selftest --root "$S"
expect 1 "$T/none/data/gpt2: no tokenizer here" "$DPO" selftest --root "$T/none"
expect 2 "unknown option '--rot'" "$DPO" selftest --rot x

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
