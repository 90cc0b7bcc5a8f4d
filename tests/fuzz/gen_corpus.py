#!/usr/bin/env python3
"""tests/fuzz/gen_corpus.py - writes the seed corpora of the libFuzzer
harnesses, tests/fuzz/corpus/<harness>/: small valid inputs and the hostile
cases of the Check suites (truncated, oversized, wrong types, invalid UTF-8,
sizes that overflow). Plain Python 3, no packages; deterministic.

Rerun from the repository root after changing an input format:
    python3 tests/fuzz/gen_corpus.py
It replaces every file it writes and nothing else (tests/fuzz/regress/ holds
crash reproducers and is never touched).
"""
import json
import os
import struct

ROOT = os.path.join("tests", "fuzz", "corpus")
SEP = b"@@FILE@@"


def put(harness, name, data):
    d = os.path.join(ROOT, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def jdump(obj):
    return json.dumps(obj, indent=1).encode()


# --------------------------------------------------------------------------
# safetensors and model directories

def safetensors(tensors, header_extra=None, raw_header=None, length=None, tail=b""):
    """tensors: list of (name, dtype, shape, bytes); offsets laid out in order"""
    hdr, data, off = {}, b"", 0
    if header_extra:
        hdr.update(header_extra)
    for name, dtype, shape, b in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    h = raw_header if raw_header is not None else json.dumps(hdr, separators=(",", ":")).encode()
    n = len(h) if length is None else length
    return struct.pack("<Q", n) + h + data + tail


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def f16(values):
    return struct.pack("<%de" % len(values), *values)


def bf16(values):
    return b"".join(struct.pack("<f", v)[2:] for v in values)


def model_tensors(L, C, T, V, score=False, conv=f32, dtype="F32"):
    def t(name, shape, fill=0.01):
        n = 1
        for s in shape:
            n *= s
        vals = [fill * ((i % 7) - 3) for i in range(n)]
        return (name, dtype, shape, conv(vals))

    out = [t("transformer.wte.weight", [V, C]), t("transformer.wpe.weight", [T, C])]
    for l in range(L):
        p = "transformer.h.%d." % l
        out += [t(p + "ln_1.weight", [C], 1.0), t(p + "ln_1.bias", [C]),
                t(p + "attn.c_attn.weight", [C, 3 * C]), t(p + "attn.c_attn.bias", [3 * C]),
                t(p + "attn.c_proj.weight", [C, C]), t(p + "attn.c_proj.bias", [C]),
                t(p + "ln_2.weight", [C], 1.0), t(p + "ln_2.bias", [C]),
                t(p + "mlp.c_fc.weight", [C, 4 * C]), t(p + "mlp.c_fc.bias", [4 * C]),
                t(p + "mlp.c_proj.weight", [4 * C, C]), t(p + "mlp.c_proj.bias", [C])]
    out += [t("transformer.ln_f.weight", [C], 1.0), t("transformer.ln_f.bias", [C])]
    if score:
        out.append(t("score.weight", [1, C]))
    return out


def config(L, H, C, T, V, score=False, **extra):
    c = {"model_type": "gpt2", "n_layer": L, "n_head": H, "n_embd": C, "n_positions": T,
         "vocab_size": V, "layer_norm_epsilon": 1e-5, "eos_token_id": V - 1 if isinstance(V, int) else 0,
         "activation_function": "gelu_new", "n_inner": None, "tie_word_embeddings": True,
         "architectures": ["GPT2ForSequenceClassification" if score else "GPT2LMHeadModel"]}
    if score:
        c["num_labels"] = 1
        c["id2label"] = {"0": "LABEL_0"}
    c.update(extra)
    return jdump(c)


def gen_model():
    L, H, C, T, V = 1, 2, 4, 4, 8
    cfg = config(L, H, C, T, V)
    st = safetensors(model_tensors(L, C, T, V))
    put("model", "valid_lm", cfg + SEP + st)
    put("model", "valid_rm", config(L, H, C, T, V, score=True) + SEP + safetensors(model_tensors(L, C, T, V, True)))
    put("model", "valid_f16", cfg + SEP + safetensors(model_tensors(L, C, T, V, conv=f16, dtype="F16")))
    put("model", "valid_bf16", cfg + SEP + safetensors(model_tensors(L, C, T, V, conv=bf16, dtype="BF16")))
    put("model", "valid_2layers", config(2, 1, 2, 2, 3) + SEP + safetensors(model_tensors(2, 2, 2, 3)))
    lm_head = model_tensors(L, C, T, V) + [("lm_head.weight", "F32", [V, C], f32([0.01 * ((i % 7) - 3) for i in range(V * C)]))]
    put("model", "lm_head_tied", cfg + SEP + safetensors(lm_head))
    meta = {"__metadata__": {"format": "pt"}}
    put("model", "metadata", cfg + SEP + safetensors(model_tensors(L, C, T, V), header_extra=meta))
    # config.json hostile
    put("model", "cfg_huge_layers", config(1000000000, H, C, T, V) + SEP + st)
    put("model", "cfg_huge_alloc", config(256, 256, 16384, 65536, 4194304) + SEP + st)
    put("model", "cfg_heads_not_divisor", config(L, 3, C, T, V) + SEP + st)
    put("model", "cfg_wrong_type", config(L, H, C, T, "8") + SEP + st)
    put("model", "cfg_float_layers", config(L, H, C, T, V, n_layer=1.5) + SEP + st)
    put("model", "cfg_not_object", b"[1, 2]" + SEP + st)
    put("model", "cfg_truncated", b'{"n_layer": 1,' + SEP + st)
    put("model", "cfg_dup_key", b'{"n_layer": 1, "n_layer": 2}' + SEP + st)
    put("model", "cfg_bad_utf8", b'{"model_type": "gp\xff2"}' + SEP + st)
    put("model", "cfg_two_classes", config(L, H, C, T, V, architectures=["GPT2ForSequenceClassification", "GPT2LMHeadModel"], num_labels=1) + SEP + st)
    put("model", "cfg_num_labels_2", config(L, H, C, T, V, score=True, num_labels=2) + SEP + st)
    put("model", "cfg_id2label_2", config(L, H, C, T, V, score=True, id2label={"0": "a", "1": "b"}) + SEP + st)
    put("model", "cfg_eos_out_of_range", config(L, H, C, T, V, eos_token_id=V) + SEP + st)
    put("model", "cfg_n_inner", config(L, H, C, T, V, n_inner=3) + SEP + st)
    put("model", "cfg_eps_string", config(L, H, C, T, V, layer_norm_epsilon="x") + SEP + st)
    put("model", "cfg_no_weights", cfg)
    # safetensors hostile
    put("model", "st_empty", cfg + SEP)
    put("model", "st_short_len", cfg + SEP + b"\x02\x00\x00\x00\x00")
    put("model", "st_len_zero", cfg + SEP + struct.pack("<Q", 0))
    put("model", "st_len_2p63", cfg + SEP + safetensors([], length=1 << 63))
    put("model", "st_len_max", cfg + SEP + safetensors([], length=(1 << 64) - 1))
    put("model", "st_len_past_end", cfg + SEP + safetensors(model_tensors(L, C, T, V), length=100000))
    put("model", "st_truncated", cfg + SEP + st[:len(st) - 5])
    put("model", "st_trailing", cfg + SEP + st + b"\0\0\0")
    put("model", "st_nul_padding", cfg + SEP + struct.pack("<Q", 8) + b"{}\0\0\0\0\0\0")
    put("model", "st_not_object", cfg + SEP + safetensors([], raw_header=b"[1, 2]"))
    put("model", "st_deep", cfg + SEP + safetensors([], raw_header=b'{"a":' + b"[" * 3000 + b"]" * 3000 + b"}"))

    def one(shape, offs, dtype="F32", nbytes=4, name="transformer.wte.weight"):
        h = json.dumps({name: {"dtype": dtype, "shape": shape, "data_offsets": offs}}).encode()
        return cfg + SEP + safetensors([], raw_header=h, tail=b"\0" * nbytes)

    put("model", "st_dtype_unknown", one([1], [0, 4], "F8"))
    put("model", "st_shape_negative", one([-1], [0, 4]))
    put("model", "st_shape_float", one([2, 2.5], [0, 20], nbytes=20))
    put("model", "st_shape_9dims", one([1] * 9, [0, 4]))
    put("model", "st_shape_overflow", one([4294967296, 4294967296, 16], [0, 4]))
    put("model", "st_bytes_overflow", one([2147483648, 2147483648], [0, 4]))
    put("model", "st_shape_2p54", one([18014398509481984], [0, 4], "U8"))
    put("model", "st_offsets_reversed", one([1], [4, 0]))
    put("model", "st_offsets_huge", cfg + SEP + safetensors([], raw_header=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551620]}}', tail=b"\0" * 4))
    put("model", "st_size_mismatch", one([2], [0, 4]))
    put("model", "st_overlap", cfg + SEP + safetensors([], raw_header=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}', tail=b"\0" * 6))
    put("model", "st_empty_name", one([1], [0, 4], name=""))
    put("model", "st_nul_name", cfg + SEP + safetensors([], raw_header=b'{"a\\u0000b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', tail=b"\0" * 4))
    put("model", "st_name_overlong_utf8", one([1], [0, 4], name="a\udcc0\udcaf").replace(b"\\udcc0\\udcaf", b"\xc0\xaf"))
    put("model", "st_all_dtypes", cfg + SEP + safetensors([
        ("b", "BOOL", [1], b"\1"), ("u8", "U8", [1], b"\1"), ("i8", "I8", [1], b"\1"), ("i16", "I16", [1], b"\1\0"),
        ("u16", "U16", [1], b"\1\0"), ("i32", "I32", [1], b"\1\0\0\0"), ("u32", "U32", [1], b"\1\0\0\0"),
        ("i64", "I64", [1], b"\1" + b"\0" * 7), ("u64", "U64", [1], b"\1" + b"\0" * 7), ("f64", "F64", [1], struct.pack("<d", 1.5)),
        ("s", "F32", [], f32([2.0])), ("e", "F32", [0, 5], b"")]))
    nan = model_tensors(L, C, T, V)
    nan[0] = (nan[0][0], "F32", nan[0][2], f32([float("nan")]) + nan[0][3][4:])
    put("model", "weights_nan", cfg + SEP + safetensors(nan))
    inf16 = model_tensors(L, C, T, V, conv=f16, dtype="F16")
    inf16[1] = (inf16[1][0], "F16", inf16[1][2], b"\x00\x7c" + inf16[1][3][2:])
    put("model", "weights_inf_f16", cfg + SEP + safetensors(inf16))
    wrong = model_tensors(L, C, T, V)
    wrong[2] = (wrong[2][0], "F32", [C + 1], f32([1.0] * (C + 1)))
    put("model", "weights_wrong_shape", cfg + SEP + safetensors(wrong))
    put("model", "weights_missing_tensor", cfg + SEP + safetensors(model_tensors(L, C, T, V)[:-1]))
    put("model", "weights_extra_layer", cfg + SEP + safetensors(model_tensors(2, C, T, V)))
    put("model", "weights_i32", cfg + SEP + safetensors(model_tensors(L, C, T, V, conv=lambda v: struct.pack("<%di" % len(v), *[0] * len(v)), dtype="I32")))


# --------------------------------------------------------------------------
# tokenizers

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def tokenizer(merges, extra=("<|endoftext|>",), base=None):
    """vocab.json and merges.txt: the 256 bytes (or base), then one token per merge, then extra"""
    toks = [B2U[b] for b in range(256)] if base is None else list(base)
    for a, b in merges:
        toks.append(a + b)
    toks += list(extra)
    vocab = json.dumps({t: i for i, t in enumerate(toks)}, ensure_ascii=False).encode()
    m = "#version: 0.2\n" + "".join("%s %s\n" % (a, b) for a, b in merges)
    return vocab, m.encode()


def gen_tokenizer():
    G = B2U[ord(" ")]
    merges = [(G, "t"), ("h", "e"), (G + "t", "he"), ("a", "t"), (G, "c"), (G + "c", "at"), ("i", "n")]
    v, m = tokenizer(merges)
    text = b"the cat in the hat's 12 \xff\xfe caf\xc3\xa9  \n"
    put("tokenizer", "valid", b"\0" + v + SEP + m + SEP + text)
    put("tokenizer", "valid_openai_names", b"\1" + v + SEP + m + SEP + text)
    v0, m0 = tokenizer([])
    put("tokenizer", "bytes_only", b"\0" + v0 + SEP + m0 + SEP + b"hello \x80 world")
    v1, m1 = tokenizer([], extra=())
    put("tokenizer", "no_eot", b"\0" + v1 + SEP + m1 + SEP + b"x")
    vs, ms = tokenizer([("a", "b")], base=["a", "b"], extra=("<|endoftext|>", "<|pad|>"))
    put("tokenizer", "tiny_alphabet", b"\0" + vs + SEP + ms + SEP + b"abba c")
    put("tokenizer", "merges_truncated", b"\0" + v + SEP + m[:len(m) - 5] + SEP + text)
    put("tokenizer", "merges_no_header", b"\0" + v + SEP + m.split(b"\n", 1)[1] + SEP + text)
    put("tokenizer", "merges_unknown_token", b"\0" + v + SEP + m + b"zz qq\n" + SEP + text)
    put("tokenizer", "merges_crlf", b"\0" + v + SEP + m.replace(b"\n", b"\r\n") + SEP + text)
    put("tokenizer", "merges_three_fields", b"\0" + v + SEP + m + b"a b c\n" + SEP + text)
    put("tokenizer", "merges_twice", b"\0" + v + SEP + m + m.split(b"\n", 1)[1] + SEP + text)
    put("tokenizer", "merges_missing", b"\0" + v)
    d = json.loads(v)
    d["<|endoftext|>"] = 3
    put("tokenizer", "vocab_dup_id", b"\0" + json.dumps(d).encode() + SEP + m + SEP + text)
    d = json.loads(v)
    d["<|endoftext|>"] = 100000
    put("tokenizer", "vocab_id_gap", b"\0" + json.dumps(d).encode() + SEP + m + SEP + text)
    d = json.loads(v)
    d["<|endoftext|>"] = -1
    put("tokenizer", "vocab_negative_id", b"\0" + json.dumps(d).encode() + SEP + m + SEP + text)
    d = json.loads(v)
    d["<|endoftext|>"] = "263"
    put("tokenizer", "vocab_string_id", b"\0" + json.dumps(d).encode() + SEP + m + SEP + text)
    put("tokenizer", "vocab_not_object", b"\0" + b"[1,2,3]" + SEP + m + SEP + text)
    put("tokenizer", "vocab_invalid_utf8", b"\0" + v[:-1] + b', "\xc0\xaf": 999}' + SEP + m + SEP + text)
    put("tokenizer", "vocab_raw_byte_token", b"\0" + v[:-1] + b', " ": 264}' + SEP + m + SEP + text)
    put("tokenizer", "vocab_empty_token", b"\0" + v[:-1] + b', "": 264}' + SEP + m + SEP + text)
    put("tokenizer", "vocab_truncated", b"\0" + v[:len(v) // 2] + SEP + m + SEP + text)
    put("tokenizer", "vocab_float_id", b"\0" + v[:-1] + b', "<|x|>": 264.0}' + SEP + m + SEP + text)

    # the reward harness: a tiny reward model with a bytes-only tokenizer (257 tokens)
    L, H, C, T, V = 1, 1, 2, 8, 257
    cfg = config(L, H, C, T, V, score=True)
    st = safetensors(model_tensors(L, C, T, V, score=True))
    files = cfg + SEP + st + SEP + v0 + SEP + m0
    put("reward", "valid", b"\0" + files + SEP + b"The movie" + SEP + b" was great!")
    put("reward", "valid_slash", b"\1" + files + SEP + b"" + SEP + b"a long completion " * 4)
    put("reward", "empty_spec", b"\2" + files)
    put("reward", "missing_dir", b"\3" + files)
    put("reward", "language_model", b"\0" + config(L, H, C, T, V) + SEP + safetensors(model_tensors(L, C, T, V)) + SEP + v0 + SEP + m0 + SEP + b"x" + SEP + b"y")
    put("reward", "vocab_too_big", b"\0" + config(L, H, C, T, 8, score=True) + SEP + safetensors(model_tensors(L, C, T, 8, score=True)) + SEP + v0 + SEP + m0)
    put("reward", "no_tokenizer", b"\0" + cfg + SEP + st)
    put("reward", "bad_merges", b"\0" + cfg + SEP + st + SEP + v0 + SEP + b"a b\n" + SEP + b"x" + SEP + b"y")


# --------------------------------------------------------------------------
# JSONL rows, state files, JSON documents, VADER, encoder texts

def gen_data():
    pairs = b'{"prompt": "The movie", "chosen": " was great.", "rejected": " was awful."}\n' \
            b'\n{"prompt": "", "chosen": "yes", "rejected": "no", "extra": [1, 2]}\r\n'
    sft = b'{"prompt": "Q: 2+2?", "completion": " 4"}\n{"text": "just text \\u00e9\\u0000 here"}\n'
    texts = b'{"prompt": "Once upon", "completion": " a time", "reward": 0.75}\n{"prompt": "", "completion": "", "reward": -1e3}\n'
    for mode, name, body in [(0, "pairs", pairs), (1, "sft", sft), (2, "any_sft", sft), (2, "any_pairs", pairs),
                             (3, "prompts", texts), (4, "completions", texts), (5, "scored", texts)]:
        put("data", name, bytes([mode, 40, 8]) + body)
    put("data", "pairs_truncated_lengths", bytes([0, 3, 1]) + pairs)
    put("data", "pairs_tiny_lengths", bytes([0, 0, 1]) + pairs)
    put("data", "pairs_bad_lengths", bytes([0, 10, 0]) + pairs)
    put("data", "pairs_long_prompt", bytes([0, 6, 4]) + b'{"prompt": "' + b"word " * 60 + b'", "chosen": "a b c d e f g", "rejected": "h"}\n')
    put("data", "pairs_missing_key", bytes([0, 40, 8]) + b'{"prompt": "a", "chosen": "b"}\n')
    put("data", "pairs_wrong_type", bytes([0, 40, 8]) + b'{"prompt": "a", "chosen": 1, "rejected": "c"}\n')
    put("data", "pairs_not_object", bytes([0, 40, 8]) + b'["a", "b", "c"]\n')
    put("data", "pairs_invalid_utf8", bytes([0, 40, 8]) + b'{"prompt": "\xff", "chosen": "b", "rejected": "c"}\n')
    put("data", "pairs_bad_json_line2", bytes([0, 40, 8]) + pairs.split(b"\n")[0] + b'\n{"prompt": x}\n')
    put("data", "pairs_dup_key", bytes([0, 40, 8]) + b'{"prompt": "a", "prompt": "b", "chosen": "c", "rejected": "d"}\n')
    put("data", "pairs_blank_only", bytes([0, 40, 8]) + b"\n \t\r\n\n")
    put("data", "pairs_empty", bytes([0, 40, 8]))
    put("data", "pairs_no_newline", bytes([0, 40, 8]) + pairs.rstrip())
    put("data", "sft_text_and_completion", bytes([1, 40, 8]) + b'{"text": "a", "completion": "b"}\n')
    put("data", "sft_missing_completion", bytes([1, 40, 8]) + b'{"prompt": "a"}\n')
    put("data", "any_mixed_kinds", bytes([2, 40, 8]) + sft.split(b"\n")[0] + b"\n" + pairs)
    put("data", "scored_reward_string", bytes([5, 40, 8]) + b'{"prompt": "a", "completion": "b", "reward": "1"}\n')
    put("data", "scored_reward_huge", bytes([5, 40, 8]) + b'{"prompt": "a", "completion": "b", "reward": 1e999}\n')
    put("data", "prompts_nul", bytes([3, 2, 1]) + b'{"prompt": "a\\u0000b c d e f g h"}\n')
    put("data", "prompts_surrogates", bytes([3, 40, 8]) + b'{"prompt": "\\ud83d\\ude00 \\ud800"}\n')


def gen_state():
    tr = {"mode": "dpo", "step": 12, "pairs_seen": 768, "seed": "42", "batch": 64, "micro_batch": 4}
    pp = {"mode": "ppo", "step": 3, "prompts_seen": 192, "seed": "7", "batch": 64, "mini_batch": 16,
          "micro_batch": 16, "ppo_epochs": 4, "kl_coef": 0.05}

    def var(base, **kw):
        d = dict(base)
        for k, v in kw.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return jdump(d)

    put("state", "train_valid", b"\0" + jdump(tr))
    put("state", "train_sft", b"\0" + var(tr, mode="sft"))
    put("state", "train_rm", b"\0" + var(tr, mode="rm"))
    put("state", "train_no_mode", b"\0" + var(tr, mode=None))
    put("state", "train_bad_mode", b"\0" + var(tr, mode="ppo"))
    put("state", "train_step_negative", b"\0" + var(tr, step=-1))
    put("state", "train_step_huge", b"\0" + var(tr, step=1 << 62))
    put("state", "train_step_float", b"\0" + var(tr, step=1.5))
    put("state", "train_seed_number", b"\0" + var(tr, seed=42))
    put("state", "train_seed_overflow", b"\0" + var(tr, seed="184467440737095516160"))
    put("state", "train_seed_sign", b"\0" + var(tr, seed="-1"))
    put("state", "train_seed_nul", b"\0" + jdump(tr).replace(b'"42"', b'"4\\u00002"'))
    put("state", "train_batch_zero", b"\0" + var(tr, batch=0))
    put("state", "train_missing_step", b"\0" + var(tr, step=None))
    put("state", "train_not_object", b"\0" + b'"dpo"')
    put("state", "train_truncated", b"\0" + jdump(tr)[:30])
    put("state", "train_invalid_utf8", b"\0" + jdump(tr).replace(b'"dpo"', b'"\xc3("'))
    put("state", "ppo_valid", b"\1" + jdump(pp))
    put("state", "ppo_bad_mode", b"\1" + var(pp, mode="dpo"))
    put("state", "ppo_kl_negative", b"\1" + var(pp, kl_coef=-0.1))
    put("state", "ppo_kl_huge", b"\1" + jdump(pp).replace(b"0.05", b"1e308"))
    put("state", "ppo_kl_overflow", b"\1" + jdump(pp).replace(b"0.05", b"1e999"))
    put("state", "ppo_kl_missing", b"\1" + var(pp, kl_coef=None))
    put("state", "ppo_epochs_zero", b"\1" + var(pp, ppo_epochs=0))
    put("state", "ppo_seed_empty", b"\1" + var(pp, seed=""))
    put("state", "ppo_mini_batch_string", b"\1" + var(pp, mini_batch="16"))
    put("state", "ppo_dup_key", b"\1" + jdump(pp)[:-2] + b', "step": 4}')

    # optimizer.safetensors: byte 1 the kind (0 sgd, 1 rmsprop, 2 adamw), byte 2 n - 1
    def opt(kind, n, step=5, m=None, v=None, extra=(), drop=()):
        ts = [("kind", "F32", [1], f32([kind + 1])), ("n", "F32", [2], f32([n % (1 << 24), n >> 24])),
              ("step", "F32", [2], f32([step % (1 << 24), step >> 24]))]
        if kind == 2:
            ts.append(("m", "F32", [n], f32(m if m is not None else [0.1] * n)))
        if kind >= 1:
            ts.append(("v", "F32", [n], f32(v if v is not None else [0.2] * n)))
        ts = [t for t in ts if t[0] not in drop] + list(extra)
        return safetensors(ts)

    for kind, name in [(0, "sgd"), (1, "rmsprop"), (2, "adamw")]:
        put("state", "optim_" + name, bytes([2, kind, 3]) + opt(kind, 4))
    put("state", "optim_wrong_n", bytes([2, 2, 3]) + opt(2, 5))
    put("state", "optim_wrong_kind", bytes([2, 1, 3]) + opt(2, 4))
    put("state", "optim_nan_moment", bytes([2, 2, 3]) + opt(2, 4, m=[float("nan"), 0, 0, 0]))
    put("state", "optim_negative_v", bytes([2, 1, 3]) + opt(1, 4, v=[0.1, -0.1, 0, 0]))
    put("state", "optim_step_fraction", bytes([2, 0, 3]) + safetensors([("kind", "F32", [1], f32([1])), ("n", "F32", [2], f32([4, 0])), ("step", "F32", [2], f32([0.5, 0]))]))
    put("state", "optim_step_huge", bytes([2, 0, 3]) + safetensors([("kind", "F32", [1], f32([1])), ("n", "F32", [2], f32([4, 0])), ("step", "F32", [2], f32([1, 1e30]))]))
    put("state", "optim_missing_v", bytes([2, 1, 3]) + opt(1, 4, drop=("v",)))
    put("state", "optim_extra_tensor", bytes([2, 0, 3]) + opt(0, 4, extra=[("x", "F32", [1], f32([0]))]))
    put("state", "optim_f16_moments", bytes([2, 1, 3]) + safetensors([("kind", "F32", [1], f32([2])), ("n", "F32", [2], f32([4, 0])), ("step", "F32", [2], f32([1, 0])), ("v", "F16", [4], f16([0.5] * 4))]))
    put("state", "optim_truncated", bytes([2, 2, 3]) + opt(2, 4)[:-3])


def gen_json():
    docs = {
        "object": b'{"a": [1, -2.5e-3, true, false, null], "b": {"c": "d\\n\\u00e9\\ud83d\\ude00"}, "n_layer": 12}',
        "config": jdump({"n_layer": 2, "layer_norm_epsilon": 1e-5, "prompt": "hi"}),
        "numbers": b"[0, -0, 1e308, -1e-308, 4.9e-324, 123456789012345678901234567890, 0.5E+2]",
        "overflow": b"[1e309]",
        "bad_numbers": b"[01, 1., .5, -, +1, 1e, 0x10]",
        "strings": b'["", "\\"\\\\\\/\\b\\f\\n\\r\\t", "\\u0000", "\xe2\x82\xac", "\xf0\x9f\x98\x80"]',
        "lone_surrogate": b'"\\ud800"',
        "reversed_surrogates": b'"\\udc00\\ud800"',
        "utf8_surrogate": b'"\xed\xa0\x80"',
        "utf8_overlong": b'"\xc0\xaf"',
        "utf8_above_max": b'"\xf4\x90\x80\x80"',
        "utf8_truncated": b'"\xe2\x82"',
        "control_char": b'"a\x01b"',
        "bad_escape": b'"\\x41"',
        "deep": b"[" * 300 + b"]" * 300,
        "deep_ok": b"[" * 255 + b"]" * 255,
        "dup_keys": b'{"a": 1, "b": 2, "a": 3}',
        "dup_keys_many": b"{" + b",".join(b'"k%d": %d' % (i % 40, i) for i in range(41)) + b"}",
        "truncated": b'{"a": [1, 2',
        "trailing": b"{} x",
        "trailing_comma": b"[1, 2,]",
        "literals": b"[true, false, null, nul]",
        "whitespace": b" \t\r\n[ 1 ,\n2 ] \n",
        "empty": b"",
        "tiny_values": b"[" + b"0," * 2000 + b"0]",
        "keys_nul": b'{"a\\u0000": 1, "a": 2}',
    }
    for name, d in docs.items():
        put("json", name, d)


def gen_vader():
    texts = [b"This movie was good.", b"This movie was not good.", b"VERY GOOD!!! :) but the ending was awful...",
             b"kind of ok, sort of meh. Not bad at all", b"the least bad film; without doubt the best",
             b"\xff\xfe bad \xc3\xa9\xc3\xa9 GREAT \x00 nul", b"", b"?!?!?! !!!! ????", b"no no no never " * 10,
             b"Hate  \t hate\n\n LOVE", b"sh*t :-( :D <3"]
    for i, t in enumerate(texts):
        put("vader", "text%02d" % i, b"\0" + t)
    lex = b"good\t1.9\t0.9\t[2, 2]\nbad\t-2.5\t0.5\nmeh\t-0.3\n:)\t2.0\n"
    put("vader", "lexicon_valid", b"\1" + lex + b"good bad meh :) text\n")
    put("vader", "lexicon_crlf", b"\1" + lex.replace(b"\n", b"\r\n"))
    put("vader", "lexicon_no_newline", b"\1" + b"x\t1")
    for i, bad in enumerate([b"good\n", b"\t1.0\n", b"good\tx\n", b"good\t1e3\n", b"good\t1001\n",
                             b"good\t1.0000000000000001\n", b" good\t1\n", b"\xff\t1\n", b"a\x01b\t1\n", b"\n",
                             b"good\t-\n", b"good\t1.\n", b"good\t.5\n"]):
        put("vader", "lexicon_bad%02d" % i, b"\1" + bad)


def gen_encode():
    texts = [b"Hello world", b"The cat's toys aren't hers; they'll've been y'all's.", b"   leading and trailing   ",
             b"1234567890 3.14159 1,000,000", b"caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
             b"\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", b"\xff\xfe\x80\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80",
             b"<|endoftext|> <|endoftext|>", b"\t\n\r\x0b\x0c \xc2\xa0\xe2\x80\x83\xe3\x80\x80x",
             b"a" * 600, b"'s's'S'LL 'Ll", b"\x00\x01\x02 nul", b"\xe2\x80\xae bidi \xe2\x80\xac",
             b"x\xcc\x81\xcc\x82 combining"]
    for i, t in enumerate(texts):
        put("encode", "text%02d" % i, t)


if __name__ == "__main__":
    gen_model()
    gen_tokenizer()
    gen_data()
    gen_state()
    gen_json()
    gen_vader()
    gen_encode()
