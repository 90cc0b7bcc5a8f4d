#!/usr/bin/env python3
"""bench/torch_sample.py - the PyTorch reference for `dpo sample`'s throughput.

Generates new tokens from a GPT-2 of the given shape (random weights) in PyTorch
on the CPU, on the same workload as `bench/sample.sh` runs through `dpo sample`:
a batch of prompts (the same token ids, read from --prompt-ids), each continued
by --max-new tokens with a key-value cache (each layer's past keys and values
concatenated step by step, as Hugging Face's GPT-2 does), logits for the last
position only over the full vocabulary, temperature-1 multinomial sampling, in
torch.no_grad(), fp32. Prints new tokens per second (batch x max-new over the
wall time of the generation loop, model creation excluded), the median of
--runs runs, in the format bench/sample.sh reads.

Needs Debian's python3-torch (run with /usr/bin/python3). Not used by the tests.
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def forward(self, x, past):
        """x (B, T, C) the new positions; past None or (k, v), each (B, H, T_past, D).
        Returns the new x and the concatenated (k, v)."""
        B, T, C = x.shape
        D = C // self.H
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, D).transpose(1, 2) for t in (q, k, v))
        if past is not None:
            k = torch.cat((past[0], k), dim=-2)
            v = torch.cat((past[1], v), dim=-2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
        if T > 1:  # the prompt: causal within the new positions (a single new one sees everything)
            S = k.shape[-2]
            mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, (k, v)


class GPT2(nn.Module):
    def __init__(self, L, H, C, P, V):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(P, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx, past, start):
        """idx (B, T) new tokens at positions start..start+T-1; past a list of
        per-layer (k, v) or None. Returns the last position's logits (B, V) and
        the new past."""
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(start, start + T))
        new_past = []
        for i, b in enumerate(self.h):
            x, kv = b(x, None if past is None else past[i])
            new_past.append(kv)
        return self.ln_f(x[:, -1, :]) @ self.wte.weight.t(), new_past


@torch.no_grad()
def generate(m, prompt, max_new, gen):
    """Returns the (B, max_new) new tokens: temperature 1, the full vocabulary."""
    logits, past = m(prompt, None, 0)
    pos = prompt.shape[1]
    out = []
    for _ in range(max_new):
        nxt = torch.multinomial(logits.softmax(dim=-1), 1, generator=gen)  # (B, 1)
        out.append(nxt)
        if len(out) == max_new:
            break
        logits, past = m(nxt, past, pos)
        pos += 1
    return torch.cat(out, dim=1)


def blas_library():
    """The BLAS shared library this process has mapped (PyTorch's matrix products
    go through it): Debian's reference libblas is far slower than OpenBLAS."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.rsplit("/", 1)[-1]}
        return ", ".join(sorted(libs)) or "none found"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--prompt-ids", help="file: one prompt a line, token ids separated by spaces "
                    "(all of one length); default: --batch rows of 8 random ids")
    ap.add_argument("--batch", type=int, default=16, help="prompts when --prompt-ids is not given")
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    if a.prompt_ids:
        with open(a.prompt_ids) as f:
            rows = [[int(t) for t in line.split()] for line in f if line.strip()]
        if len({len(r) for r in rows}) != 1:
            raise SystemExit("torch_sample.py: the prompts must all have the same number of tokens")
        prompt = torch.tensor(rows, dtype=torch.long)
    else:
        prompt = torch.randint(0, a.vocab, (a.batch, 8))
    B, T = prompt.shape
    if T + a.max_new > a.ctx:
        raise SystemExit("torch_sample.py: prompt + max-new exceeds the context")
    m = GPT2(a.layers, a.heads, a.dim, a.ctx, a.vocab).eval()
    gen = torch.Generator().manual_seed(1)
    rates = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        toks = generate(m, prompt, a.max_new, gen)
        dt = time.perf_counter() - t0
        assert toks.shape == (B, a.max_new)
        rates.append(B * a.max_new / dt)
    nparam = sum(p.numel() for p in m.parameters())
    print(f"pytorch {torch.__version__}: {nparam} parameters, {a.threads} threads, "
          f"{B} prompts x {T} tokens, {a.max_new} new tokens each, {a.runs} runs")
    print(f"BLAS: {blas_library()}")
    print("runs " + " ".join(f"{r:.1f}" for r in rates) + " tokens/s")
    print(f"sample {statistics.median(rates):.1f} tokens/s (median)")


if __name__ == "__main__":
    main()
