#!/usr/bin/env python3
"""PyTorch side of `glm-train bench train` and `glm-train bench generate` on the bench model.

Bench model: vocab 8192, hidden 512, 8 layers, 8 heads, 2 KV heads, head_dim 64, intermediate 1536,
partial rotary 0.5, untied embeddings; transformers GlmForCausalLM (eager attention), CPU, all cores.

  bench_model.py train [--lora] [--steps N]   full-parameter (or PEFT LoRA r=16 on all linear layers) AdamW
                                               steps on batch 8 x 256; tokens/s and peak RSS
  bench_model.py generate [--new-tokens N]    HF generate, greedy: prefill tokens/s and decode tokens/s at
                                               batch 1 and 8 (prompt 128 tokens)
The last output line is one JSON object; glm-train prints the ratios.
"""
import argparse
import json
import os
import resource
import time

import torch
from transformers import GlmConfig, GlmForCausalLM

B, T = 8, 256


def bench_config():
    return GlmConfig(vocab_size=8192, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                     num_attention_heads=8, num_key_value_heads=2, head_dim=64, max_position_embeddings=4096,
                     rms_norm_eps=1e-5, attention_bias=True, tie_word_embeddings=False, pad_token_id=0,
                     eos_token_id=[1], rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                        "partial_rotary_factor": 0.5},
                     attn_implementation="eager")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def train(args):
    torch.manual_seed(0)
    model = GlmForCausalLM(bench_config())
    if args.lora:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                 "gate_up_proj", "down_proj"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    ids = torch.randint(2, 8192, (B, T))

    def step():
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    dt = (time.perf_counter() - t0) / args.steps
    return {"tokens_per_s": B * T / dt, "step_s": dt, "peak_rss_bytes": peak_rss_bytes()}


def generate(args):
    torch.manual_seed(0)
    model = GlmForCausalLM(bench_config()).eval()
    res = {}
    for batch in (1, 8):
        ids = torch.randint(2, 8192, (batch, 128))
        mask = torch.ones_like(ids)
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)  # warm-up
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask, use_cache=True)
            prefill = time.perf_counter() - t0
            t0 = time.perf_counter()
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.new_tokens,
                           min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)
            total = time.perf_counter() - t0
        decode = max(total - prefill, 1e-9)
        res[f"prefill_tokens_per_s/b{batch}"] = batch * 128 / prefill
        res[f"decode_tokens_per_s/b{batch}"] = batch * args.new_tokens / decode
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "generate"])
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    res = train(args) if args.mode == "train" else generate(args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
