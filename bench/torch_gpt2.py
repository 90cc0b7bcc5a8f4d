#!/usr/bin/env python3
"""bench/torch_gpt2.py - the PyTorch reference for `dpo bench`.

Times forward and backward passes of a GPT-2 of the given size in PyTorch on the
CPU, on the same workload as `dpo bench`: S random sequences of T tokens, the
log-probability of a random target at every position, loss = mean negative
log-likelihood. Prints tokens per second in the same format, so that `make bench`
can report dpo's throughput as a ratio against PyTorch measured in the same run.

Needs Debian's python3-torch (run with /usr/bin/python3). Not used by the tests.
"""
import argparse
import math
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

    def forward(self, x, mask):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.H))
        att = att.masked_fill(mask[:T, :T] == 0, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, L, H, C, P, V):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(P, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.register_buffer("mask", torch.tril(torch.ones(P, P)))
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for b in self.h:
            x = b(x, self.mask)
        return self.ln_f(x) @ self.wte.weight.t()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--seqs", type=int, default=4)
    ap.add_argument("--len", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    m = GPT2(a.layers, a.heads, a.dim, a.ctx, a.vocab)
    x = torch.randint(0, a.vocab, (a.seqs, a.len))
    y = torch.randint(0, a.vocab, (a.seqs, a.len))
    n = a.seqs * a.len
    tf = tb = 0.0
    for i in range(a.steps + 1):
        m.zero_grad(set_to_none=False)
        t0 = time.perf_counter()
        logp = F.log_softmax(m(x), dim=-1).gather(-1, y.unsqueeze(-1))
        loss = -logp.mean()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if i > 0:
            tf += t1 - t0
            tb += t2 - t1
    nparam = sum(p.numel() for p in m.parameters())
    print(f"pytorch {torch.__version__}: {nparam} parameters, {a.threads} threads, "
          f"batch {a.seqs} x {a.len} tokens, {a.steps} timed passes")
    print(f"mean NLL {loss.item():.4f}")
    print(f"forward  {tf / a.steps:.3f} s/pass  {n * a.steps / tf:.0f} tokens/s")
    print(f"backward {tb / a.steps:.3f} s/pass  {n * a.steps / tb:.0f} tokens/s")
    print(f"fwd+bwd  {(tf + tb) / a.steps:.3f} s/pass  {n * a.steps / (tf + tb):.0f} tokens/s")


if __name__ == "__main__":
    main()
