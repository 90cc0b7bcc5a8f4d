#!/usr/bin/env python3
"""data/demo/gen_pairs.py - writes data/demo/sentiment_pairs.jsonl, the shipped
demo data of `make demo`: synthetic movie-review preference pairs in TRL's
format {"prompt", "chosen", "rejected"}, where the chosen continuation is
positive and the rejected one negative (the paper's controlled-sentiment idea,
in miniature). Words come from Hu & Liu's opinion lexicon
(/work/shared/data/liu-opinion-lexicon, see LICENSE.liu-opinion-lexicon);
only single lowercase ASCII words are used.

Deterministic: python3 data/demo/gen_pairs.py LEXICON_DIR > data/demo/sentiment_pairs.jsonl
With --eval, writes instead data/demo/sentiment_pairs_eval.jsonl: 64 held-out
pairs, each a new combination (prompt and word pair not among the training
pairs) of words that the training pairs use, drawn from a second generator:
  python3 data/demo/gen_pairs.py LEXICON_DIR --eval > data/demo/sentiment_pairs_eval.jsonl
"""
import json
import random
import sys

args = [a for a in sys.argv[1:] if a != "--eval"]
held_out = "--eval" in sys.argv[1:]
lex = args[0] if args else "/work/shared/data/liu-opinion-lexicon"


def words(name):
    out = []
    with open(f"{lex}/{name}", encoding="utf-8", errors="replace") as f:
        for line in f:
            w = line.strip()
            if w and w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 10:
                out.append(w)
    return out


pos, neg = words("positive-words.txt"), words("negative-words.txt")
rng = random.Random(20231129)
subjects = ["The movie", "This film", "The acting", "The plot", "The soundtrack", "The ending",
            "The director's new film", "The sequel", "The cast", "The script"]
verbs = ["was", "felt", "seemed", "turned out to be", "is"]
train = []
for i in range(512):
    prompt = f"{rng.choice(subjects)} {rng.choice(verbs)}"
    p1, p2 = rng.sample(pos, 2)
    n1, n2 = rng.sample(neg, 2)
    train.append({"prompt": prompt, "chosen": f" {p1} and {p2}.", "rejected": f" {n1} and {n2}."})
if not held_out:
    for row in train:
        print(json.dumps(row))
    sys.exit(0)
seen = {(r["prompt"], r["chosen"]) for r in train} | {(r["prompt"], r["rejected"]) for r in train}
pos_seen = sorted({w for r in train for w in r["chosen"].strip(" .").split(" and ")})
neg_seen = sorted({w for r in train for w in r["rejected"].strip(" .").split(" and ")})
rng = random.Random(20240229)
n = 0
while n < 64:
    prompt = f"{rng.choice(subjects)} {rng.choice(verbs)}"
    p1, p2 = rng.sample(pos_seen, 2)
    n1, n2 = rng.sample(neg_seen, 2)
    row = {"prompt": prompt, "chosen": f" {p1} and {p2}.", "rejected": f" {n1} and {n2}."}
    if (prompt, row["chosen"]) in seen or (prompt, row["rejected"]) in seen:
        continue
    print(json.dumps(row))
    n += 1
