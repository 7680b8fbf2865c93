#!/usr/bin/env python3
"""Reference outputs and gradients for GLMCore's block tests (Tests/GLMCoreTests/Fixtures/blocks.safetensors).

A GLM attention block (RMSNorm, q/k/v with bias, interleaved partial rotary, grouped-query attention,
o_proj, residual) under four masks (causal, prefix-bidirectional, packed segments, 2D rotary with block
positions + prefix), a GLM MLP block (RMSNorm, fused gate_up, SwiGLU, down_proj, residual) and a
cross-entropy with ignored labels, written the way transformers' GlmForCausalLM computes them, in float64.
Each block's loss is sum(out * R) for a fixed random R; the file holds inputs, R, outputs and gradients.

Run: .venv/bin/python Scripts/make_core_fixtures.py   (needs torch and safetensors)
"""
import os
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
dt = torch.float64
B, T, H, NH, KV, D, I, EPS, THETA = 2, 7, 32, 4, 2, 8, 24, 1e-5, 10000.0
RD = D // 2  # partial rotary factor 0.5


def rand(*shape, scale=1.0, shift=0.0):
    return (torch.randn(*shape, dtype=dt) * scale + shift)


def rms_norm(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def inv_freq(dim):
    return 1.0 / (THETA ** (torch.arange(0, dim, 2, dtype=torch.int64).to(dt) / dim))


def rotate_pairs(x, angles):
    """Interleaved pairs (2i, 2i+1) of x[..., :2*angles.shape[-1]] turn by angles; x: [B, T, heads, d]."""
    n = angles.shape[-1]
    cos, sin = angles.cos()[:, :, None, :], angles.sin()[:, :, None, :]
    x0, x1 = x[..., 0:2 * n:2], x[..., 1:2 * n:2]
    y0, y1 = x0 * cos - x1 * sin, x1 * cos + x0 * sin
    rot = torch.stack([y0, y1], dim=-1).flatten(-2)
    return torch.cat([rot, x[..., 2 * n:]], dim=-1)


def rope(x, pos, block_pos=None):
    if block_pos is None:
        return rotate_pairs(x, pos[..., None].to(dt) * inv_freq(RD))
    f = inv_freq(RD // 2)
    angles = torch.cat([pos[..., None].to(dt) * f, block_pos[..., None].to(dt) * f], dim=-1)
    return rotate_pairs(x, angles)


def attention_block(p, x, mask, pos, block_pos=None):
    h = rms_norm(x, p["norm"])
    q = (h @ p["wq"].T + p["bq"]).view(B, T, NH, D)
    k = (h @ p["wk"].T + p["bk"]).view(B, T, KV, D)
    v = (h @ p["wv"].T + p["bv"]).view(B, T, KV, D)
    q, k = rope(q, pos, block_pos), rope(k, pos, block_pos)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    k = k.repeat_interleave(NH // KV, dim=1)
    v = v.repeat_interleave(NH // KV, dim=1)
    s = q @ k.transpose(-1, -2) / D ** 0.5
    s = s.masked_fill(~mask[:, None], float("-inf"))
    a = torch.softmax(s, dim=-1) @ v
    a = a.transpose(1, 2).reshape(B, T, NH * D)
    return x + a @ p["wo"].T


def mlp_block(p, x):
    h = rms_norm(x, p["norm"])
    gu = h @ p["gate_up"].T
    g, u = gu[..., :I], gu[..., I:]
    return x + (torch.nn.functional.silu(g) * u) @ p["down"].T


def masks():
    i = torch.arange(T)
    causal = (i[None, :] <= i[:, None]).expand(B, T, T)
    prefix_len = torch.tensor([3, 5])
    prefix = (i[None, None, :] < prefix_len[:, None, None]) | (i[None, None, :] <= i[None, :, None])
    seg = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 2, 2]])
    packed = (seg[:, :, None] == seg[:, None, :]) & causal
    return {"causal": causal, "prefix": prefix, "packed": packed}, seg, prefix_len


def main():
    out = {}
    params = {"norm": rand(H, scale=0.5, shift=1.0), "wq": rand(NH * D, H, scale=0.2), "bq": rand(NH * D, scale=0.1),
              "wk": rand(KV * D, H, scale=0.2), "bk": rand(KV * D, scale=0.1),
              "wv": rand(KV * D, H, scale=0.2), "bv": rand(KV * D, scale=0.1), "wo": rand(H, NH * D, scale=0.2)}
    x0 = rand(B, T, H)
    r = rand(B, T, H)
    pos = torch.arange(T).expand(B, T).contiguous()
    # 2D positions as blank infilling lays them out: Part A positions, Part B repeats its span's position.
    pos2 = torch.tensor([[0, 1, 2, 2, 2, 1, 1], [0, 1, 2, 3, 4, 4, 4]])
    block2 = torch.tensor([[0, 0, 0, 1, 2, 1, 2], [0, 0, 0, 0, 0, 1, 2]])
    mask_set, seg, prefix_len = masks()
    out["attn.x"], out["attn.r"] = x0, r
    for k, v in params.items():
        out[f"attn.param.{k}"] = v
    out["attn.segments"] = seg.to(dt)
    out["attn.prefix_lengths"] = prefix_len.to(dt)
    out["attn.pos2d"], out["attn.block2d"] = pos2.to(dt), block2.to(dt)
    cases = [("causal", mask_set["causal"], pos, None), ("prefix", mask_set["prefix"], pos, None),
             ("packed", mask_set["packed"], pos, None), ("block2d", mask_set["prefix"], pos2, block2)]
    for name, mask, p_ids, b_ids in cases:
        ps = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        x = x0.clone().requires_grad_(True)
        y = attention_block(ps, x, mask, p_ids, b_ids)
        (y * r).sum().backward()
        out[f"attn.{name}.out"] = y.detach()
        out[f"attn.{name}.grad.x"] = x.grad
        for k, v in ps.items():
            out[f"attn.{name}.grad.{k}"] = v.grad

    mp = {"norm": rand(H, scale=0.5, shift=1.0), "gate_up": rand(2 * I, H, scale=0.2), "down": rand(H, I, scale=0.2)}
    ps = {k: v.clone().requires_grad_(True) for k, v in mp.items()}
    x = rand(B, T, H).requires_grad_(True)
    rm = rand(B, T, H)
    out["mlp.x"], out["mlp.r"] = x.detach().clone(), rm
    for k, v in mp.items():
        out[f"mlp.param.{k}"] = v
    y = mlp_block(ps, x)
    (y * rm).sum().backward()
    out["mlp.out"], out["mlp.grad.x"] = y.detach(), x.grad
    for k, v in ps.items():
        out[f"mlp.grad.{k}"] = v.grad

    logits = rand(10, 17, scale=2.0).requires_grad_(True)
    targets = torch.tensor([3, -100, 16, 0, 5, -100, 7, 7, 1, 12])
    loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=-100)
    loss.backward()
    out["ce.logits"], out["ce.targets"] = logits.detach().clone(), targets.to(dt)
    out["ce.loss"], out["ce.grad"] = loss.detach().reshape(1), logits.grad

    path = os.path.join(os.path.dirname(__file__), "..", "Tests", "GLMCoreTests", "Fixtures", "blocks.safetensors")
    save_file({k: v.to(torch.float32).contiguous() for k, v in out.items()}, path)
    print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
