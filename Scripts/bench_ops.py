#!/usr/bin/env python3
"""PyTorch side of `glm-train bench ops`: the same ops on the bench model's shapes, on the same cores.

Prints one JSON object (seconds, median of --repeats) as its last line; glm-train prints the ratios.
With --bf16 the linears run under CPU bf16 autocast (operands rounded to bf16, output bf16).
Run through `glm-train bench ops` (or alone: .venv/bin/python Scripts/bench_ops.py).
"""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F

B, T, HID, NH, KV, D, I, V = 8, 256, 512, 8, 2, 64, 1536, 8192
LINEARS = [("q_proj", HID, NH * D), ("k_proj", HID, KV * D), ("o_proj", NH * D, HID),
           ("gate_up_proj", HID, 2 * I), ("down_proj", I, HID), ("lm_head", HID, V)]


def median(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--bf16", action="store_true", help="linears under torch.autocast('cpu', torch.bfloat16), as glm-train bench ops --precision bf16")
    args = ap.parse_args()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    res = {}
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    res["peak_gflops"] = 2 * n ** 3 / median(lambda: torch.mm(a, b), max(3, args.repeats // 2)) / 1e9
    with torch.no_grad():
        for name, fin, fout in LINEARS:
            x, w = torch.randn(B * T, fin), torch.randn(fout, fin)
            def linear():
                with autocast:
                    return F.linear(x, w)
            res[f"matmul/{name}"] = median(linear, args.repeats)
    q = torch.randn(B, NH, T, D, requires_grad=True)
    k = torch.randn(B, KV, T, D, requires_grad=True)
    v = torch.randn(B, KV, T, D, requires_grad=True)
    g = torch.randn(B, NH, T, D)

    def attn():
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        o.backward(g)
        q.grad = k.grad = v.grad = None
    res["attention"] = median(attn, args.repeats)
    x = torch.randn(B, T, HID, requires_grad=True)
    w = torch.randn(HID, requires_grad=True)
    gy = torch.randn(B, T, HID)

    def norm():
        F.rms_norm(x, (HID,), w, 1e-5).backward(gy)
        x.grad = w.grad = None
    res["rmsnorm"] = median(norm, args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
