#!/usr/bin/env python3
"""data/demo/gen_pairs.py - writes data/demo/sentiment_pairs.jsonl, the shipped
demo data of `make demo-train`: synthetic movie-review preference pairs in TRL's
format {"prompt", "chosen", "rejected"}, where the chosen continuation is
positive and the rejected one negative (the paper's controlled-sentiment idea,
in miniature). Words come from Hu & Liu's opinion lexicon
(/work/shared/data/liu-opinion-lexicon, see LICENSE.liu-opinion-lexicon);
only single lowercase ASCII words are used.

Deterministic: python3 data/demo/gen_pairs.py LEXICON_DIR > data/demo/sentiment_pairs.jsonl
"""
import json
import random
import sys

lex = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/liu-opinion-lexicon"


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
for i in range(512):
    prompt = f"{rng.choice(subjects)} {rng.choice(verbs)}"
    p1, p2 = rng.sample(pos, 2)
    n1, n2 = rng.sample(neg, 2)
    row = {"prompt": prompt, "chosen": f" {p1} and {p2}.", "rejected": f" {n1} and {n2}."}
    print(json.dumps(row))
