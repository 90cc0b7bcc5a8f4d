#!/usr/bin/env python3
"""bench/torch_dpo_step.py - the PyTorch reference for bench/train_step.sh.

One DPO optimizer step in PyTorch on the CPU, on the same workload as
`dpo train` in bench/train_step.sh: a GPT-2 of the given size with random
weights, P pairs whose sequences are a 128-token prompt and a 128-token response
(T = 256 tokens, the last predicting nothing), beta 0.1, RMSprop (PyTorch's
defaults, lr 1e-6), the global gradient norm clipped to 10. Per step: the
frozen reference forward under no_grad (unless --precompute, which computes the
reference log-probs once before timing and frees the reference), the policy
forward and backward, the clip and the optimizer step. Like dpo, the head
(logits over the vocabulary) is computed only at the positions whose next token
is a response token. Prints the median seconds per step over steps 2..N and the
peak resident memory of the process (which includes PyTorch's own libraries),
and the BLAS and allocator libraries the process has mapped. The sentiment
experiment's small model is --layers 4 --heads 4 --dim 128 --ctx 96 --vocab 2000,
and its batch of 32 pairs of 64 tokens --pairs 32 --prompt 32 --response 32.
bench/all.sh runs it tuned (DESIGN.md, "Performance"): jemalloc preloaded,
OMP_WAIT_POLICY=PASSIVE, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset.

Needs Debian's python3-torch (run with /usr/bin/python3). Not used by the tests.
"""
import argparse
import copy
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_gpt2 import GPT2  # noqa: E402


def response_logps(m, idx, tgt, first):
    """Summed log p(tgt[:, j] | idx[:, :j+1]) over positions j >= first, per row."""
    T = idx.shape[1]
    x = m.wte(idx) + m.wpe(torch.arange(T))
    for b in m.h:
        x = b(x, m.mask)
    h = m.ln_f(x)[:, first:, :]
    logits = h @ m.wte.weight.t()
    return F.log_softmax(logits, dim=-1).gather(-1, tgt[:, first:].unsqueeze(-1)).squeeze(-1).sum(-1)


def mapped(word):
    """The shared libraries of this process whose file name holds word, or "none"."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if word in line.rsplit("/", 1)[-1]}
        return ", ".join(sorted(libs)) or "none"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--response", type=int, default=128)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precompute", action="store_true")
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    pol = GPT2(a.layers, a.heads, a.dim, a.ctx, a.vocab)
    ref = copy.deepcopy(pol)
    for p in ref.parameters():
        p.requires_grad_(False)
    # rows 0..P-1 chosen, P..2P-1 rejected; full sequence = prompt ++ response (with eos)
    T = a.prompt + a.response
    full = torch.randint(0, a.vocab, (2 * a.pairs, T))
    full[a.pairs:, :a.prompt] = full[:a.pairs, :a.prompt]
    idx, tgt = full[:, :-1], full[:, 1:]
    first = a.prompt - 1  # position whose target is the first response token
    ref_lp = None
    if a.precompute:
        with torch.no_grad():
            ref_lp = response_logps(ref, idx, tgt, first)
        del ref
    opt = torch.optim.RMSprop(pol.parameters(), lr=1e-6)
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        if ref_lp is None:
            with torch.no_grad():
                r = response_logps(ref, idx, tgt, first)
        else:
            r = ref_lp
        lp = response_logps(pol, idx, tgt, first)
        h = (lp[:a.pairs] - r[:a.pairs]) - (lp[a.pairs:] - r[a.pairs:])
        loss = -F.logsigmoid(0.1 * h).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pol.parameters(), 10.0)
        opt.step()
        times.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1048576.0
    print(f"BLAS: {mapped('blas')}; allocator: {mapped('jemalloc')}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    med = statistics.median(times[1:])
    print(f"pytorch {torch.__version__} {'precompute' if a.precompute else 'ref'}: {a.threads} threads, "
          f"{med:.2f} s/step (median of steps 2-{a.steps}: {' '.join(f'{t:.3f}' for t in sorted(times[1:]))}), "
          f"peak RSS {rss:.2f} GiB, loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
