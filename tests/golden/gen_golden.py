#!/usr/bin/python3
# gen_golden.py -- independent reference values for dpo's GPT-2 (tests/test_model.c).
#
# What it produces (all under tests/golden/):
#   tiny/config.json, tiny/model.safetensors
#       a tiny random GPT-2 (2 layers, 4 heads, 32 wide, 24 positions, 61 tokens),
#       F32, names prefixed "transformer.", tied head (no lm_head.weight).
#   tiny-hub-f16/config.json, tiny-hub-f16/model.safetensors
#       the same model in F16, names without the prefix (like the file the Hugging
#       Face hub serves for gpt2), plus the old attn.bias / attn.masked_bias F32
#       buffers, tensors stored in a shuffled (fixed) order in the data section.
#   tiny-bf16/config.json, tiny-bf16/model.safetensors
#       the same model in BF16, prefixed names, plus an explicit lm_head.weight (= wte).
#   tiny-rm/config.json, tiny-rm/model.safetensors
#       the same trunk as a reward model (GPT2ForSequenceClassification, num_labels 1):
#       F32, "transformer." names plus "score.weight" (1, C).
#   golden_rm.safetensors
#       the scores of that reward model at every position of the same packed batch
#       ("score"), per-position weights ("weights"), the loss sum_i w_i*score_i and its
#       gradient w.r.t. every parameter, score.weight included, all in float64.
#   golden.safetensors
#       a packed batch of 3 sequences (tokens, targets, seq_len, per-token weights),
#       the per-token log-probabilities, the loss sum_i w_i*logp_i, and the gradient
#       of that loss w.r.t. every parameter ("grad.<name>"), all computed in float64.
#
# Every parameter value is exactly representable in F32, F16 and BF16 at once, so
# the three model files hold the same model and the same golden values apply to all.
#
# How to run (from the repository root; needs Debian's python3-torch, not pyenv):
#   /usr/bin/python3 tests/golden/gen_golden.py
#
# This is the independent reference for tests/test_model.c: the GPT-2 math below is
# written from the GPT-2 definition (as Hugging Face's GPT2LMHeadModel computes it in
# eval mode) with plain torch ops, and the safetensors writer is written from the
# format description; nothing is copied from any library or from the C code.
# CI never runs this script; it only reads the files it wrote (they are committed).
# The output is deterministic: fixed seeds, one thread; running it twice gives
# byte-identical files.

import json
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.set_num_threads(1)  # same reduction order every run

HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------
# config

L, H, C, P, V = 2, 4, 32, 24, 61
EPS = 1e-5

CONFIG = {
    "model_type": "gpt2",
    "architectures": ["GPT2LMHeadModel"],
    "n_layer": L,
    "n_head": H,
    "n_embd": C,
    "n_positions": P,
    "n_ctx": P,
    "vocab_size": V,
    "layer_norm_epsilon": EPS,
    "activation_function": "gelu_new",
    "n_inner": None,
    "resid_pdrop": 0.0,
    "embd_pdrop": 0.0,
    "attn_pdrop": 0.0,
    "bos_token_id": V - 1,
    "eos_token_id": V - 1,
    "tie_word_embeddings": True,
}

SEQ_LEN = [7, 12, 5]
N = sum(SEQ_LEN)
N_NO_TARGET = 5


# ----------------------------------------------------------------------------
# parameters: names, shapes, kinds in the order HF lists them

def param_specs():
    """(name without 'transformer.' prefix, shape, kind) in the order listed."""
    specs = [("wte.weight", (V, C), "w"), ("wpe.weight", (P, C), "w")]
    for l in range(L):
        p = "h.%d." % l
        specs += [
            (p + "ln_1.weight", (C,), "ln"),
            (p + "ln_1.bias", (C,), "b"),
            (p + "attn.c_attn.weight", (C, 3 * C), "w"),
            (p + "attn.c_attn.bias", (3 * C,), "b"),
            (p + "attn.c_proj.weight", (C, C), "w"),
            (p + "attn.c_proj.bias", (C,), "b"),
            (p + "ln_2.weight", (C,), "ln"),
            (p + "ln_2.bias", (C,), "b"),
            (p + "mlp.c_fc.weight", (C, 4 * C), "w"),
            (p + "mlp.c_fc.bias", (4 * C,), "b"),
            (p + "mlp.c_proj.weight", (4 * C, C), "w"),
            (p + "mlp.c_proj.bias", (C,), "b"),
        ]
    specs += [("ln_f.weight", (C,), "ln"), ("ln_f.bias", (C,), "b")]
    return specs


def exact_in_all_formats(x):
    """Round to bfloat16, then lift |x| < 2^-10 to sign(x)*2^-10 (0 -> +2^-10) so the
    value is also an exact (normal) float16. Returns float32."""
    x = x.to(torch.bfloat16).float()
    tiny = 2.0 ** -10
    sign = torch.where(x < 0, torch.tensor(-1.0), torch.tensor(1.0))
    x = torch.where(x.abs() < tiny, sign * tiny, x)
    assert torch.equal(x, x.half().float()), "not exact in F16"
    assert torch.equal(x, x.bfloat16().float()), "not exact in BF16"
    assert torch.equal(x, x.float())
    return x


def make_params():
    g = torch.Generator().manual_seed(20230529)
    params = {}
    for name, shape, kind in param_specs():
        z = torch.randn(shape, generator=g, dtype=torch.float32)
        if kind == "w":
            x = 0.3 * z
        elif kind == "b":
            x = 0.1 * z
        else:  # LayerNorm gain
            x = 1.0 + 0.2 * z
        params[name] = exact_in_all_formats(x)
    return params


# ----------------------------------------------------------------------------
# minimal safetensors writer
#
# layout: u64 little-endian N; N bytes of JSON header (padded with spaces to a
# multiple of 8); then the raw little-endian tensor data. data_offsets are
# [begin, end) relative to the start of the data section.

NP_DTYPE = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I32": "<i4"}
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I32": 4}


def tensor_bytes(t, dtype):
    if dtype == "BF16":
        # bfloat16 bit patterns; numpy has no bfloat16, so go through int16.
        return t.to(torch.bfloat16).contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "F16":
        return t.to(torch.float16).contiguous().numpy().astype("<f2").tobytes()
    if dtype == "F32":
        return t.to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
    if dtype == "F64":
        return t.to(torch.float64).contiguous().numpy().astype("<f8").tobytes()
    if dtype == "I32":
        return t.to(torch.int32).contiguous().numpy().astype("<i4").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, entries, header_order=None, metadata_first=False):
    """entries: list of (name, tensor, dtype) in data-section order.
    header_order: optional list of names giving the JSON key order (default: data order)."""
    blobs, info, off = [], {}, 0
    for name, t, dtype in entries:
        b = tensor_bytes(t, dtype)
        n_el = 1
        for d in t.shape:
            n_el *= d
        assert len(b) == n_el * ITEMSIZE[dtype]
        assert off % ITEMSIZE[dtype] == 0, "misaligned tensor %s" % name
        info[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    names = header_order if header_order is not None else [e[0] for e in entries]
    assert sorted(names) == sorted(info)
    header = {}
    if metadata_first:
        header["__metadata__"] = {"format": "pt"}
    for n in names:
        header[n] = info[n]
    if not metadata_first:
        header["__metadata__"] = {"format": "pt"}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def write_config(dirpath):
    os.makedirs(dirpath, exist_ok=True)
    with open(os.path.join(dirpath, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2, sort_keys=True)
        f.write("\n")


# ----------------------------------------------------------------------------
# GPT-2 forward, float64, written out op by op

def layer_norm(x, w, b):
    mu = x.mean(dim=-1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)  # biased variance
    return (x - mu) / torch.sqrt(var + EPS) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def softmax_rows(s):
    s = s - s.max(dim=-1, keepdim=True).values
    e = torch.exp(s)
    return e / e.sum(dim=-1, keepdim=True)


def gpt2_hidden(p, tokens, pos, allowed):
    """p: dict of float64 params (no prefix); tokens, pos: (T,) long;
    allowed: (T,T) bool, allowed[i,j] = query i may attend to key j.
    Returns the final hidden states, after ln_f (T,C)."""
    D = C // H
    h = p["wte.weight"][tokens] + p["wpe.weight"][pos]
    for l in range(L):
        q_ = "h.%d." % l
        a = layer_norm(h, p[q_ + "ln_1.weight"], p[q_ + "ln_1.bias"])
        qkv = a @ p[q_ + "attn.c_attn.weight"] + p[q_ + "attn.c_attn.bias"]
        q, k, v = qkv[:, 0:C], qkv[:, C:2 * C], qkv[:, 2 * C:3 * C]
        heads = []
        for hh in range(H):
            sl = slice(hh * D, (hh + 1) * D)
            s = (q[:, sl] @ k[:, sl].t()) / math.sqrt(D)
            s = s.masked_fill(~allowed, float("-inf"))
            heads.append(softmax_rows(s) @ v[:, sl])
        y = torch.cat(heads, dim=1)
        h = h + (y @ p[q_ + "attn.c_proj.weight"] + p[q_ + "attn.c_proj.bias"])
        m = layer_norm(h, p[q_ + "ln_2.weight"], p[q_ + "ln_2.bias"])
        f = gelu_new(m @ p[q_ + "mlp.c_fc.weight"] + p[q_ + "mlp.c_fc.bias"])
        h = h + (f @ p[q_ + "mlp.c_proj.weight"] + p[q_ + "mlp.c_proj.bias"])
    return layer_norm(h, p["ln_f.weight"], p["ln_f.bias"])


def gpt2_logits(p, tokens, pos, allowed):
    """Logits (T,V) of the language model: the tied head on the hidden states."""
    return gpt2_hidden(p, tokens, pos, allowed) @ p["wte.weight"].t()


def gpt2_scores(p, tokens, pos, allowed):
    """Scores (T,) of the reward model: GPT2ForSequenceClassification's bias-free
    Linear(C, 1), score.weight (1, C), on the hidden states at every position."""
    return (gpt2_hidden(p, tokens, pos, allowed) @ p["score.weight"].t())[:, 0]


def logits_per_sequence(p, tokens, seq_len, fn=gpt2_logits):
    """Each sequence run on its own; positions restart at 0."""
    out, s = [], 0
    for T in seq_len:
        tok = tokens[s:s + T]
        pos = torch.arange(T)
        causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
        out.append(fn(p, tok, pos, causal))
        s += T
    return torch.cat(out, dim=0)


def logits_packed(p, tokens, seq_len):
    """All sequences in one pass with a block-diagonal causal mask (cross-check)."""
    seg = torch.cat([torch.full((T,), i, dtype=torch.long) for i, T in enumerate(seq_len)])
    pos = torch.cat([torch.arange(T) for T in seq_len])
    n = tokens.shape[0]
    idx = torch.arange(n)
    allowed = (seg[:, None] == seg[None, :]) & (idx[None, :] <= idx[:, None])
    return gpt2_logits(p, tokens, pos, allowed)


def token_logp(logits, targets):
    lsm = F.log_softmax(logits, dim=-1)
    has = targets >= 0
    safe = torch.where(has, targets, torch.zeros_like(targets))
    lp = lsm.gather(1, safe[:, None])[:, 0]
    return torch.where(has, lp, torch.zeros_like(lp))


def loss_fn(p, batch):
    logits = logits_per_sequence(p, batch["tokens"], batch["seq_len"])
    lp = token_logp(logits, batch["targets"])
    return (batch["w64"] * lp).sum(), lp, logits


# ----------------------------------------------------------------------------

def make_batch():
    g = torch.Generator().manual_seed(424242)
    tokens = torch.randint(0, V, (N,), generator=g, dtype=torch.long)
    targets = torch.randint(0, V, (N,), generator=g, dtype=torch.long)
    none = torch.randperm(N, generator=g)[:N_NO_TARGET]
    targets[none] = -1
    w = torch.randn(N, generator=g, dtype=torch.float32)
    w = torch.where(targets < 0, torch.zeros_like(w), w)
    return {
        "tokens": tokens,
        "targets": targets,
        "seq_len": SEQ_LEN,
        "w32": w,
        "w64": w.double(),  # the loss uses exactly the stored float32 weights
    }


def rm_loss_fn(p, batch):
    sc = logits_per_sequence(p, batch["tokens"], batch["seq_len"], gpt2_scores)
    return (batch["rw64"] * sc).sum(), sc


def finite_difference_check(p64, batch, names, loss_fn=loss_fn):
    """4-point central differences (error O(h^4)) in float64 at 4 random entries per
    tensor. Returns (max relative error |fd-ad|/max(|ad|,|fd|) over entries whose
    gradient is >= 1e-5 in size, worst such entry, max absolute error over the
    entries below that, which are gradients that are zero in exact arithmetic, such
    as the key part of c_attn.bias: softmax ignores a shift common to all keys)."""
    g = torch.Generator().manual_seed(777)
    hstep = 1e-3
    worst_rel, worst_at, worst_abs_small = 0.0, None, 0.0
    with torch.no_grad():
        for name in names:
            flat = p64[name].view(-1)
            picks = torch.randperm(flat.numel(), generator=g)[:4].tolist()
            for i in picks:
                orig = flat[i].item()

                def f(x):
                    flat[i] = x
                    return loss_fn(p64, batch)[0].item()

                fd = (-f(orig + 2 * hstep) + 8 * f(orig + hstep)
                      - 8 * f(orig - hstep) + f(orig - 2 * hstep)) / (12 * hstep)
                flat[i] = orig
                ad = p64[name].grad.view(-1)[i].item()
                scale = max(abs(ad), abs(fd))
                if scale >= 1e-5:
                    err = abs(fd - ad) / scale
                    if err > worst_rel:
                        worst_rel, worst_at = err, (name, i, ad, fd)
                else:
                    worst_abs_small = max(worst_abs_small, abs(fd - ad))
    assert worst_rel < 1e-6, (worst_rel, worst_at)
    assert worst_abs_small < 1e-9, worst_abs_small
    return worst_rel, worst_at, worst_abs_small


def main():
    params = make_params()
    specs = param_specs()
    names = [s[0] for s in specs]

    # ---- model files -------------------------------------------------------
    for d in ("tiny", "tiny-hub-f16", "tiny-bf16"):
        write_config(os.path.join(HERE, d))

    write_safetensors(
        os.path.join(HERE, "tiny", "model.safetensors"),
        [("transformer." + n, params[n], "F32") for n in names])

    hub = [(n, params[n], "F16") for n in names]
    for l in range(L):
        hub.append(("h.%d.attn.bias" % l,
                    torch.tril(torch.ones(P, P)).view(1, 1, P, P), "F32"))
        hub.append(("h.%d.attn.masked_bias" % l, torch.tensor(-1e4), "F32"))
    perm = torch.randperm(len(hub), generator=torch.Generator().manual_seed(31337)).tolist()
    hub_shuffled = [hub[i] for i in perm]
    write_safetensors(
        os.path.join(HERE, "tiny-hub-f16", "model.safetensors"),
        hub_shuffled, header_order=sorted(e[0] for e in hub), metadata_first=True)

    bf = [("transformer." + n, params[n], "BF16") for n in names]
    bf.append(("lm_head.weight", params["wte.weight"], "BF16"))
    write_safetensors(os.path.join(HERE, "tiny-bf16", "model.safetensors"), bf)

    # ---- reference computation -----------------------------------------------
    batch = make_batch()
    p64 = {n: params[n].double().clone().requires_grad_(True) for n in names}
    loss, lp, logits = loss_fn(p64, batch)
    loss.backward()

    with torch.no_grad():
        packed = logits_packed(p64, batch["tokens"], batch["seq_len"])
        pack_diff = (packed - logits).abs().max().item()
        # loss recomputed from scratch must agree bit for bit (determinism of the math)
        loss2 = loss_fn(p64, batch)[0].item()
    assert loss2 == loss.item()
    assert pack_diff < 1e-12, pack_diff

    fd_err, fd_at, fd_abs_small = finite_difference_check(p64, batch, names)

    # ---- golden file ------------------------------------------------------------
    # F64 first, then F32, then I32, so every tensor is aligned to its element size.
    g_entries = [("logp", lp.detach(), "F64"), ("loss", loss.detach(), "F64")]
    for n in names:
        g_entries.append(("grad." + n, p64[n].grad.detach(), "F64"))
    g_entries += [
        ("weights", batch["w32"], "F32"),
        ("tokens", batch["tokens"], "I32"),
        ("targets", batch["targets"], "I32"),
        ("seq_len", torch.tensor(SEQ_LEN), "I32"),
    ]
    write_safetensors(os.path.join(HERE, "golden.safetensors"), g_entries)

    # ---- summary --------------------------------------------------------------------
    torch.set_printoptions(precision=10)
    print("tokens  :", batch["tokens"].tolist())
    print("targets :", batch["targets"].tolist())
    print("seq_len :", SEQ_LEN)
    print("loss    : %.17g" % loss.item())
    print("logp[0:8]:", " ".join("%.12g" % v for v in lp[:8].tolist()))
    print("packed vs per-sequence logits, max |diff|: %.3g" % pack_diff)
    print("finite differences (4 entries/tensor): max rel error %.3g at %s[%d] "
          "(autograd %.12g, fd %.12g)" % ((fd_err,) + fd_at))
    print("  max abs error where |grad| < 1e-5 (exactly-zero gradients): %.3g" % fd_abs_small)
    kb = max(p64["h.%d.attn.c_attn.bias" % l].grad[C:2 * C].abs().max().item() for l in range(L))
    print("  max |grad| of the key bias (zero in exact arithmetic): %.3g" % kb)
    print("max |grad| per tensor:")
    for n in names:
        print("  %-24s %.6g" % (n, p64[n].grad.abs().max().item()))
    reward_model(params, names, batch)


def reward_model(params, names, batch):
    """tiny-rm/ and golden_rm.safetensors: the same trunk with a score head, its
    scores at every position of the same batch and the gradients of a weighted sum
    of them. Its own random streams: the files above do not change."""
    g = torch.Generator().manual_seed(5150)
    params = dict(params)
    params["score.weight"] = exact_in_all_formats(0.3 * torch.randn((1, C), generator=g, dtype=torch.float32))
    rm_names = names + ["score.weight"]
    # mean 1: the gradient of ln_f.bias through the score is score.weight * sum_t w_t,
    # which weights of mean 0 would make a cancellation (a sum near 0 of terms near 1)
    w = 1.0 + torch.randn(N, generator=g, dtype=torch.float32)
    batch = dict(batch)
    batch["rw64"] = w.double()
    cfg = dict(CONFIG)
    cfg["architectures"] = ["GPT2ForSequenceClassification"]
    cfg["id2label"] = {"0": "LABEL_0"}
    cfg["label2id"] = {"LABEL_0": 0}
    d = os.path.join(HERE, "tiny-rm")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    write_safetensors(os.path.join(d, "model.safetensors"),
                      [(n if n == "score.weight" else "transformer." + n, params[n], "F32") for n in rm_names])
    p64 = {n: params[n].double().clone().requires_grad_(True) for n in rm_names}
    loss, sc = rm_loss_fn(p64, batch)
    loss.backward()
    fd_err, fd_at, fd_abs_small = finite_difference_check(p64, batch, rm_names, rm_loss_fn)
    entries = [("score", sc.detach(), "F64"), ("loss", loss.detach(), "F64")]
    for n in rm_names:
        entries.append(("grad." + n, p64[n].grad.detach(), "F64"))
    entries += [("weights", w, "F32"), ("tokens", batch["tokens"], "I32"),
                ("seq_len", torch.tensor(SEQ_LEN), "I32")]
    write_safetensors(os.path.join(HERE, "golden_rm.safetensors"), entries)
    print("reward model: loss %.17g, scores[0:4] %s" % (loss.item(), " ".join("%.12g" % v for v in sc[:4].tolist())))
    print("  finite differences: max rel error %.3g at %s[%d] (autograd %.12g, fd %.12g); "
          "max abs error of zero gradients %.3g" % ((fd_err,) + fd_at + (fd_abs_small,)))


if __name__ == "__main__":
    main()
