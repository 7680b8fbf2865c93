#!/usr/bin/env python3
"""Tiny random GLM model directories and their transformers outputs (Tests/GLMModelTests/Fixtures/<name>/).

Each fixture is a directory written by transformers' save_pretrained (config.json, model.safetensors or shards
+ index, generation_config.json) plus `expected.safetensors`: logits (float32, eager attention) of the
directory as transformers loads it, for a batch of two sequences, a single longer sequence, the single
sequence at shifted position ids, and the batch under a bidirectional-prefix 4D mask, plus the per-token
log-probabilities log p(ids[i+1] | ids[..i]). Variants: glm and glm4; tied and untied; partial rotary
0.5 and 1.0; attention bias on and off; bf16 storage; sharded; a 4.x-style config.json; the legacy THUDM
`chatglm` layout (query_key_value, transformer.* names).

Run:   .venv/bin/python Scripts/make_model_fixtures.py [--only NAME ...]
Check: .venv/bin/python Scripts/make_model_fixtures.py --check DIR [DIR ...] [--fixture NAME]
       loads each DIR (e.g. written by GLMTrain's ModelDirectory.save) with transformers and prints the largest
       logit difference from the fixture NAME's expected logits (NAME defaults to DIR's basename);
       exits 1 if any relative difference exceeds --tolerance.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, Glm4Config, Glm4ForCausalLM, GlmConfig, GlmForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "GLMModelTests", "Fixtures")
BATCH_IDS = [[5, 17, 33, 200, 7, 9, 100], [0, 255, 1, 2, 128, 64, 3]]
SINGLE_IDS = [11, 250, 3, 3, 99, 42, 17, 8, 190, 64, 1]
POSITION_OFFSET = 5
PREFIX_LENGTHS = [3, 5]

# name: (model_type, tie_word_embeddings, partial_rotary_factor, attention_bias, rope_theta, rms_norm_eps, variant)
FIXTURES = {
    "glm": ("glm", False, 0.5, True, 10000.0, 1e-5, None),
    "glm-tied-full-rotary": ("glm", True, 1.0, False, 10000.0, 1e-5, None),
    "glm4": ("glm4", False, 0.5, True, 1000.0, 1e-6, None),
    "glm4-tied-full-rotary": ("glm4", True, 1.0, False, 10000.0, 1e-5, None),
    "glm-bf16": ("glm", False, 0.5, True, 10000.0, 1e-5, "bf16"),
    "glm4-sharded": ("glm4", False, 0.5, False, 10000.0, 1e-5, "sharded"),
    "glm-v4-config": ("glm", True, 1.0, True, 500.0, 1e-5, "v4config"),
    "chatglm-legacy": ("glm", False, 0.5, True, 5000.0, 1e-5, "chatglm"),
    # int(16 · 0.3125) = 5 and int(16 · 0.6875) = 11 are odd: transformers makes ⌈d/2⌉ frequencies θ^(-2i/d) and
    # rotates 2·⌈d/2⌉ dims (6 and 12)
    "glm-odd-rotary": ("glm", False, 0.3125, True, 10000.0, 1e-5, None),
    "glm4-odd-rotary": ("glm4", False, 0.6875, False, 10000.0, 1e-5, None),
}


def build(name, model_type, tie, prf, bias, theta, eps):
    cfg_cls, model_cls = (GlmConfig, GlmForCausalLM) if model_type == "glm" else (Glm4Config, Glm4ForCausalLM)
    cfg = cfg_cls(vocab_size=256, hidden_size=64, intermediate_size=40, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                  rms_norm_eps=eps, attention_bias=bias, tie_word_embeddings=tie, pad_token_id=0,
                  eos_token_id=[1, 2], bos_token_id=None,
                  rope_parameters={"rope_type": "default", "rope_theta": theta, "partial_rotary_factor": prf})
    torch.manual_seed(sum(map(ord, name)))
    m = model_cls(cfg).eval()
    with torch.no_grad():  # default init has zero biases and unit norms: perturb everything (reference §D)
        for n, p in m.named_parameters():
            norm = "norm" in n
            p.copy_(torch.randn_like(p) * (0.5 if norm else 0.1) + (1.0 if norm else 0.0))
    return m


def reference_outputs(model):
    """Logits and log-probs of the fixed inputs, computed with the given (already loaded) model."""
    out = {}
    with torch.no_grad():
        ids = torch.tensor(BATCH_IDS)
        logits = model(ids).logits.float()
        out["batch.ids"], out["batch.logits"] = ids, logits
        out["batch.logprobs"] = logprobs(logits, ids)
        single = torch.tensor([SINGLE_IDS])
        logits = model(single).logits.float()
        out["single.ids"], out["single.logits"] = single[0], logits
        out["single.logprobs"] = logprobs(logits, single)[0]
        pos = torch.arange(len(SINGLE_IDS))[None] + POSITION_OFFSET
        out["offset.positions"] = pos[0]
        out["offset.logits"] = model(single, position_ids=pos).logits.float()
        B, T = ids.shape
        i = torch.arange(T)
        lengths = torch.tensor(PREFIX_LENGTHS)
        allowed = (i[None, None, :] < lengths[:, None, None]) | (i[None, None, :] <= i[None, :, None])
        mask = torch.zeros(B, 1, T, T, dtype=torch.float32).masked_fill(~allowed[:, None], float("-inf"))
        out["prefix.lengths"] = lengths
        out["prefix.logits"] = model(ids, attention_mask=mask.to(model.dtype)).logits.float()
    return out


def logprobs(logits, ids):
    lp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    return lp.gather(-1, ids[:, 1:, None])[..., 0].float()


def load_hf(path, dtype=torch.float32):
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="eager").eval()


def to_legacy(src_dir, dst_dir, theta):
    """Rewrites an HF glm directory in the THUDM ChatGLM layout (the inverse of convert_glm_weights_to_hf)."""
    cfg = json.load(open(os.path.join(src_dir, "config.json")))
    sd = load_file(os.path.join(src_dir, "model.safetensors"))
    out = {}
    for i in range(cfg["num_hidden_layers"]):
        p, q = f"model.layers.{i}.", f"transformer.encoder.layers.{i}."
        out[q + "input_layernorm.weight"] = sd[p + "input_layernorm.weight"]
        out[q + "post_attention_layernorm.weight"] = sd[p + "post_attention_layernorm.weight"]
        for kind in ("weight", "bias"):
            parts = [sd.get(f"{p}self_attn.{x}_proj.{kind}") for x in "qkv"]
            if parts[0] is not None:
                out[q + f"self_attention.query_key_value.{kind}"] = torch.cat(parts, 0)
        out[q + "self_attention.dense.weight"] = sd[p + "self_attn.o_proj.weight"]
        out[q + "mlp.dense_h_to_4h.weight"] = sd[p + "mlp.gate_up_proj.weight"]
        out[q + "mlp.dense_4h_to_h.weight"] = sd[p + "mlp.down_proj.weight"]
    out["transformer.embedding.word_embeddings.weight"] = sd["model.embed_tokens.weight"]
    out["transformer.encoder.final_layernorm.weight"] = sd["model.norm.weight"]
    out["transformer.output_layer.weight"] = sd["lm_head.weight"]
    rd = cfg["head_dim"] // 2
    out["transformer.rotary_pos_emb.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, rd, 2).float() / rd))
    os.makedirs(dst_dir, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(dst_dir, "model.safetensors"),
              metadata={"format": "pt"})
    legacy = {
        "_name_or_path": "THUDM/glm-4-9b-chat", "model_type": "chatglm", "architectures": ["ChatGLMModel"],
        "auto_map": {"AutoConfig": "configuration_chatglm.ChatGLMConfig",
                     "AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration"},
        "add_bias_linear": False, "add_qkv_bias": cfg["attention_bias"],
        "apply_query_key_layer_scaling": True, "apply_residual_connection_post_layernorm": False,
        "attention_dropout": 0.0, "attention_softmax_in_fp32": True, "bias_dropout_fusion": True,
        "ffn_hidden_size": cfg["intermediate_size"], "fp32_residual_connection": False, "hidden_dropout": 0.0,
        "hidden_size": cfg["hidden_size"], "kv_channels": cfg["head_dim"], "layernorm_epsilon": cfg["rms_norm_eps"],
        "rope_ratio": theta / 10000.0, "multi_query_attention": True,
        "multi_query_group_num": cfg["num_key_value_heads"], "num_attention_heads": cfg["num_attention_heads"],
        "num_layers": cfg["num_hidden_layers"], "original_rope": True, "padded_vocab_size": cfg["vocab_size"],
        "post_layer_norm": True, "rmsnorm": True, "seq_length": cfg["max_position_embeddings"], "use_cache": True,
        "torch_dtype": "float32", "transformers_version": "4.40.2", "tie_word_embeddings": False,
        "eos_token_id": cfg["eos_token_id"], "pad_token_id": cfg["pad_token_id"],
    }
    json.dump(legacy, open(os.path.join(dst_dir, "config.json"), "w"), indent=2)


def make(name, spec):
    model_type, tie, prf, bias, theta, eps, variant = spec
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    m = build(name, model_type, tie, prf, bias, theta, eps)
    extra = {}
    if variant == "bf16":
        m.to(torch.bfloat16).save_pretrained(path)
        extra = {k.replace("logits", "logits_bf16"): v for k, v in reference_outputs(load_hf(path, torch.bfloat16)).items()
                 if "logits" in k}
    elif variant == "sharded":
        m.save_pretrained(path, max_shard_size="100KB")
    elif variant == "chatglm":
        with tempfile.TemporaryDirectory() as tmp:
            m.save_pretrained(tmp)
            to_legacy(tmp, path, theta)
            ref = reference_outputs(load_hf(tmp))
    else:
        m.save_pretrained(path)
    if variant == "v4config":
        cfg_path = os.path.join(path, "config.json")
        cfg = json.load(open(cfg_path))
        rope = cfg.pop("rope_parameters")
        cfg["rope_theta"], cfg["partial_rotary_factor"] = rope["rope_theta"], rope["partial_rotary_factor"]
        cfg["torch_dtype"] = cfg.pop("dtype")
        cfg["transformers_version"] = "4.46.0"
        json.dump(cfg, open(cfg_path, "w"), indent=2, sort_keys=True)
    if variant != "chatglm":
        ref = reference_outputs(load_hf(path))  # what transformers makes of the directory as written
    ref.update(extra)
    save_file({k: v.float().contiguous() for k, v in ref.items()}, os.path.join(path, "expected.safetensors"))
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    print(f"{name:24s} {sorted(os.listdir(path))} {size / 1024:.0f} KiB")


def check(dirs, fixture, tolerance):
    worst = 0.0
    for d in dirs:
        name = fixture or os.path.basename(os.path.normpath(d))
        expected = load_file(os.path.join(OUT, name, "expected.safetensors"))
        got = reference_outputs(load_hf(d))
        for key in ("batch.logits", "single.logits", "offset.logits", "prefix.logits"):
            diff = (got[key] - expected[key]).abs().max().item()
            rel = diff / max(expected[key].abs().max().item(), 1e-6)
            worst = max(worst, rel)
            print(f"{d}: {key} max |diff| {diff:.3e} (relative {rel:.3e}) against fixture {name}")
    print(f"largest relative logit difference {worst:.3e}")
    return worst <= tolerance


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", nargs="+", metavar="DIR", help="model directories to load with transformers")
    ap.add_argument("--fixture", help="fixture whose expected logits to compare with (default: DIR's basename)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="make only these fixtures")
    args = ap.parse_args()
    transformers.utils.logging.disable_progress_bar()
    if args.check:
        sys.exit(0 if check(args.check, args.fixture, args.tolerance) else 1)
    os.makedirs(OUT, exist_ok=True)
    for name, spec in FIXTURES.items():
        if args.only is None or name in args.only:
            make(name, spec)


if __name__ == "__main__":
    main()
