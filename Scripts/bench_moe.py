#!/usr/bin/env python3
"""A glm4_moe full-fine-tuning step, GLMTrain against transformers, on the same model, data and CPU threads.

Bench MoE: vocab 4096, hidden 256, 4 layers (1 dense), 8 heads, 2 KV heads, head_dim 32, dense intermediate 768,
16 routed experts of width 128, top-4 in 4 groups (2 kept), one shared expert, QK-norm, attention bias,
routed_scaling_factor 2.5; batch 8 x 128 tokens; AdamW (lr 1e-4, no weight decay), no clipping.

transformers 5 (eager attention; experts `eager`, the reference loop, and `grouped_mm`, its default, when it runs
on this CPU): mean seconds per step over --steps steps after one warm-up step, peak RSS of the process.
GLMTrain: `glm-train run` on a recipe over the same model directory and data (pretokenized, unshuffled), its
`tokens_per_s` from metrics.jsonl (mean after the first step) and the peak RSS of the child (getrusage).

Run: .venv/bin/python Scripts/bench_moe.py [--steps N]   (after swift build -c release)
"""
import argparse
import json
import os
import resource
import subprocess
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM, Glm4MoeConfig, Glm4MoeForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B, T = 8, 128


def config():
    return Glm4MoeConfig(vocab_size=4096, hidden_size=256, intermediate_size=768, moe_intermediate_size=128,
                         num_hidden_layers=4, first_k_dense_replace=1, num_attention_heads=8, num_key_value_heads=2,
                         head_dim=32, n_routed_experts=16, n_shared_experts=1, num_experts_per_tok=4, n_group=4,
                         topk_group=2, routed_scaling_factor=2.5, norm_topk_prob=True, use_qk_norm=True,
                         attention_bias=True, max_position_embeddings=512, num_nextn_predict_layers=0,
                         pad_token_id=0, eos_token_id=1, tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})


def torch_steps(path, data, steps, experts):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager",
                                                 experts_implementation=experts)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0, betas=(0.9, 0.95), eps=1e-8)
    batches = [torch.tensor(data[i * B:(i + 1) * B]) for i in range(steps + 1)]
    times = []
    for i, ids in enumerate(batches):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i > 0:
            times.append(time.perf_counter() - t0)
    return sum(times) / len(times)


def glmtrain_steps(path, data_file, steps, tmp):
    out = os.path.join(tmp, "run")
    recipe = os.path.join(tmp, "bench.yaml")
    with open(recipe, "w") as f:
        f.write(f"""task: pretrain
model: {{path: {path}}}
data: {{train: {data_file}, shuffle: false}}
training: {{steps: {steps + 1}, batch_size: {B}, seq_len: {T}, max_grad_norm: 0, seed: 0}}
optimizer: {{name: adamw, lr: 1.0e-4, weight_decay: 0.0}}
schedule: {{name: constant}}
moe: {{bias_update_rate: 0.0}}
output_dir: {out}
""")
    binary = os.path.join(ROOT, ".build", "release", "glm-train")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run([binary, "run", recipe, "--overwrite"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"glm-train run failed: {r.stderr.strip()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rates = [json.loads(line)["tokens_per_s"] for line in open(os.path.join(out, "metrics.jsonl")) if '"loss"' in line]
    return sum(rates[1:]) / len(rates[1:]), max(peak, before) * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model")
        Glm4MoeForCausalLM(config()).save_pretrained(path)
        g = torch.Generator().manual_seed(1)
        data = torch.randint(2, 4096, ((args.steps + 1) * B, T), generator=g).tolist()
        data_file = os.path.join(tmp, "train.jsonl")
        with open(data_file, "w") as f:
            for row in data:
                f.write(json.dumps({"tokens": row}) + "\n")
        rate, rss = glmtrain_steps(path, data_file, args.steps, tmp)
        print(f"GLMTrain: {rate:.0f} tokens/s, peak RSS {rss / 2**20:.0f} MiB")
        result = {"glmtrain_tokens_per_s": rate, "glmtrain_peak_rss_mib": rss / 2**20}
        for experts in ("eager", "grouped_mm"):
            try:
                sec = torch_steps(path, data, args.steps, experts)
            except Exception as e:  # grouped_mm may not run on this CPU / build
                print(f"transformers ({experts} experts): not run ({type(e).__name__}: {str(e).splitlines()[0][:120]})")
                continue
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            print(f"transformers ({experts} experts): {B * T / sec:.0f} tokens/s, peak RSS so far {rss / 2**20:.0f} MiB")
            result[f"torch_{experts}_tokens_per_s"] = B * T / sec
            result[f"torch_peak_rss_mib"] = rss / 2**20
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
