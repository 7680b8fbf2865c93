#!/usr/bin/env python3
"""PyTorch + PEFT side of `glm-train bench shape`: one LoRA training step at a real GLM shape.

  bench_shapes.py --shape glm-edge-1.5b --seq 1024 --steps 2 --mode f32|autocast|bf16

Random weights of the config (transformers GlmForCausalLM, eager attention, CPU, all cores), PEFT LoRA r=16,
alpha=32, no dropout on q/k/v/o_proj, gate_up_proj, down_proj; AdamW (lr 1e-4, weight decay 0.01) on the adapter;
batch 1 x SEQ random tokens, labels = inputs. One warm-up step, then --steps timed steps.
  f32       f32 weights, f32 compute (PyTorch's default)
  autocast  f32 weights, torch.autocast("cpu", bfloat16) (what transformers' Trainer does with bf16=True on a CPU)
  bf16      weights loaded in bf16 (as a bf16 checkpoint with torch_dtype=bfloat16), adapters f32, under autocast
The configs are those of glm-train's RealShape (reference/glm.md §C). The last output line is one JSON object.
"""
import argparse
import json
import os
import time

import torch
from transformers import GlmConfig, GlmForCausalLM

SHAPES = {
    "glm-edge-1.5b": dict(vocab_size=59264, hidden_size=2048, num_hidden_layers=28, num_attention_heads=16,
                          num_key_value_heads=4, head_dim=128, intermediate_size=6144, partial_rotary_factor=1.0,
                          attention_bias=False, max_position_embeddings=8192, rms_norm_eps=1e-5),
    "glm-edge-4b": dict(vocab_size=59264, hidden_size=3072, num_hidden_layers=40, num_attention_heads=24,
                        num_key_value_heads=6, head_dim=128, intermediate_size=8192, partial_rotary_factor=1.0,
                        attention_bias=False, max_position_embeddings=4096, rms_norm_eps=1e-5),
    "glm-4-9b": dict(vocab_size=151552, hidden_size=4096, num_hidden_layers=40, num_attention_heads=32,
                     num_key_value_heads=2, head_dim=128, intermediate_size=13696, partial_rotary_factor=0.5,
                     attention_bias=True, max_position_embeddings=131072, rms_norm_eps=1.5625e-7),
}


def peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--mode", choices=["f32", "autocast", "bf16"], default="f32")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    s = dict(SHAPES[args.shape])
    prf = s.pop("partial_rotary_factor")
    config = GlmConfig(**s, tie_word_embeddings=False, pad_token_id=0, eos_token_id=[1],
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": prf},
                       attn_implementation="eager")
    dtype = torch.bfloat16 if args.mode == "bf16" else torch.float32
    with torch.device("cpu"):
        torch.set_default_dtype(dtype)
        model = GlmForCausalLM(config)
        torch.set_default_dtype(torch.float32)
    from peft import LoraConfig, get_peft_model
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"]))
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    ids = torch.randint(2, min(8192, config.vocab_size), (1, args.seq))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.mode != "f32"):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    dt = sum(times) / len(times)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mode {args.mode}, step times {times}")
    print(json.dumps({"tokens_per_s": args.seq / dt, "step_s": dt, "peak_rss_bytes": peak_rss_bytes()}))


if __name__ == "__main__":
    main()
