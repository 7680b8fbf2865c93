#!/usr/bin/env python3
"""Ten-step training trajectories of a tiny GLM under AdamW and Muon (Tests/GLMTrainingTests/Fixtures/optimizers/).

Writes
  model/               a tiny random transformers GlmForCausalLM (save_pretrained, float32 safetensors): vocab 64,
                       hidden 32, 2 layers, 4 heads / 2 KV heads x 8, intermediate 48, partial rotary 0.5, q/k/v
                       bias, untied, every parameter perturbed away from the default init (unit norms, zero biases)
  trajectories.json    the batch (2 rows x 16 token ids) and, per run, its hyper-parameters and the causal-LM loss
                       before each of the 10 updates plus the loss after the last one (11 values). The loss is
                       transformers' own (`labels=ids`: mean cross-entropy over the 2 x 15 next-token predictions).

Runs (full-batch, the same batch every step, constant learning rate, no clipping):
  adamw            torch.optim.AdamW on every parameter: lr 1e-2, betas (0.9, 0.95), eps 1e-8, weight decay 0.1.
  muon             Muon on the 2-D hidden matrices (names with "layers." ending ".weight", 2 dims: q/k/v/o,
                   gate_up, down): lr 0.02, momentum 0.95 (Nesterov), 5 Newton-Schulz steps, scale
                   sqrt(max(1, rows/cols)), weight decay 0.1; torch.optim.AdamW (as above, lr 1e-2) on the
                   embedding, lm_head, norms and biases.
  muon_moonlight   as `muon` but with Moonlight's scale 0.2 * sqrt(max(rows, cols)) and one shared lr 1e-2.

Muon is a float32 transcription of KellerJordan/Muon `muon_update` + `zeropower_via_newtonschulz5` (which run
Newton-Schulz in bfloat16): momentum.lerp_(g, 1 - beta); update = g.lerp(momentum, beta); X = update, transposed
when rows > cols; X /= (||X||_F + 1e-7); 5 x {A = X X^T; B = b A + c A A; X = a X + B X}; then
p *= 1 - lr * wd; p -= lr * scale * X.

Each run is also repeated in float64 (`losses_float64`): the float32/float64 spread shows how much float32
rounding alone moves the trajectory, which is the scale against which another float32 implementation is judged.

Run: .venv/bin/python Scripts/make_optimizer_fixtures.py
"""
import json
import os
import shutil

import torch
import transformers
from transformers import GlmConfig, GlmForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "GLMTrainingTests", "Fixtures", "optimizers")
SEED = 1234
STEPS = 10
BATCH, LENGTH = 2, 16
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)

RUNS = {
    "adamw": dict(optimizer="adamw", lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
    "muon": dict(optimizer="muon", muon_lr=0.02, adamw_lr=1e-2, momentum=0.95, ns_steps=5, scale="original",
                 betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
    "muon_moonlight": dict(optimizer="muon", muon_lr=1e-2, adamw_lr=1e-2, momentum=0.95, ns_steps=5,
                           scale="moonlight", betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1),
}


def build_model():
    cfg = GlmConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                    rms_norm_eps=1e-5, attention_bias=True, tie_word_embeddings=False, pad_token_id=None,
                    eos_token_id=[1, 2], bos_token_id=None,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})
    torch.manual_seed(SEED)
    m = GlmForCausalLM(cfg)
    with torch.no_grad():  # default init has unit norms and zero biases: perturb everything
        for n, p in m.named_parameters():
            norm = "norm" in n
            p.copy_(torch.randn_like(p) * (0.3 if norm else 0.1) + (1.0 if norm else 0.0))
    return m


def batch_ids():
    g = torch.Generator().manual_seed(SEED + 1)
    return torch.randint(3, 64, (BATCH, LENGTH), generator=g)


def uses_muon(name, p):
    return "layers." in name and name.endswith(".weight") and p.ndim == 2


def newton_schulz(g, steps, eps=1e-7):
    a, b, c = NS_COEFFICIENTS
    x = g.clone()
    transposed = g.size(-2) > g.size(-1)
    if transposed:
        x = x.mT
    x = x / (x.norm() + eps)
    for _ in range(steps):
        A = x @ x.mT
        B = b * A + c * A @ A
        x = a * x + B @ x
    return x.mT if transposed else x


class Muon:
    """KellerJordan/Muon's SingleDeviceMuon step without the bfloat16 cast, with a choice of update scale."""

    def __init__(self, params, lr, weight_decay, momentum, ns_steps, scale):
        self.params, self.lr, self.wd, self.beta, self.ns_steps, self.scale = params, lr, weight_decay, momentum, ns_steps, scale
        self.buffers = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.params, self.buffers):
            g = p.grad
            buf.lerp_(g, 1 - self.beta)
            update = g.lerp(buf, self.beta)
            update = newton_schulz(update, self.ns_steps)
            rows, cols = p.size(-2), p.size(-1)
            if self.scale == "original":
                update *= max(1, rows / cols) ** 0.5
            else:
                update *= 0.2 * max(rows, cols) ** 0.5
            p.mul_(1 - self.lr * self.wd)
            p.add_(update, alpha=-self.lr)


def run(spec, dtype):
    model = build_model().to(dtype).train()
    model.config._attn_implementation = "eager"
    ids = batch_ids()
    named = list(model.named_parameters())
    if spec["optimizer"] == "adamw":
        opts = [torch.optim.AdamW([p for _, p in named], lr=spec["lr"], betas=spec["betas"], eps=spec["eps"],
                                  weight_decay=spec["weight_decay"], foreach=False)]
    else:
        hidden = [p for n, p in named if uses_muon(n, p)]
        rest = [p for n, p in named if not uses_muon(n, p)]
        opts = [Muon(hidden, spec["muon_lr"], spec["weight_decay"], spec["momentum"], spec["ns_steps"], spec["scale"]),
                torch.optim.AdamW(rest, lr=spec["adamw_lr"], betas=spec["betas"], eps=spec["eps"],
                                  weight_decay=spec["weight_decay"], foreach=False)]
    losses = []
    for _ in range(STEPS):
        model.zero_grad(set_to_none=True)
        loss = model(ids, labels=ids).loss
        losses.append(loss.item())
        loss.backward()
        for o in opts:
            o.step()
    with torch.no_grad():
        losses.append(model(ids, labels=ids).loss.item())
    return losses


def main():
    transformers.utils.logging.disable_progress_bar()
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    model = build_model()
    model.save_pretrained(os.path.join(OUT, "model"))
    names = [n for n, p in model.named_parameters()]
    out = {
        "generator": "Scripts/make_optimizer_fixtures.py",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "batch": BATCH, "length": LENGTH, "ids": batch_ids().flatten().tolist(), "steps": STEPS,
        "muon_parameters": [n for n, p in model.named_parameters() if uses_muon(n, p)],
        "adamw_parameters": [n for n, p in model.named_parameters() if not uses_muon(n, p)],
        "runs": {},
    }
    assert len(names) == len(out["muon_parameters"]) + len(out["adamw_parameters"])
    for name, spec in RUNS.items():
        f32, f64 = run(spec, torch.float32), run(spec, torch.float64)
        spread = max(abs(a - b) for a, b in zip(f32, f64))
        out["runs"][name] = {**{k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()},
                             "losses": f32, "losses_float64": f64}
        print(f"{name:16s} loss {f32[0]:.5f} -> {f32[-1]:.5f}; max |float32 - float64| {spread:.2e}")
    with open(os.path.join(OUT, "trajectories.json"), "w") as f:
        json.dump(out, f, indent=1)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"{OUT}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
