#!/usr/bin/env python3
"""The fidelity cases (Scripts/make_fidelity_fixtures.py: tiny GLM / GLM-4 models, transformers' Trainer inner loop)
trained again under PyTorch's CPU autocast to bfloat16 -- `torch.autocast("cpu", dtype=torch.bfloat16)` around the
whole step, as transformers' Trainer does with `bf16=True` on a CPU: linear layers take bf16 operands and give bf16
outputs, norms/softmax/loss upcast to f32 as the GLM modules do, weights and optimizer stay float32.

The fidelity cases use large learning rates on 16-wide models (to make every rule visible in a few steps), where
bf16 rounding is amplified; so a smoother case is added: a 64-wide GLM memorising 4 fixed micro-batches over
40 updates (lr 3e-3, constant, no clipping, no decay), trained in float32 and under autocast.

Writes Tests/GLMTrainingTests/Fixtures/bf16/: `model/` (the smooth case's starting weights, float32),
`fixtures.json` (its micro-batches and both loss curves; per fidelity case the autocast losses and gradient
norms). The Swift test (BF16PrecisionTests) trains them with `training.precision: bf16` and bounds the distance of
its loss curve to the float32 and the autocast curves.

Run: .venv/bin/python Scripts/make_bf16_fixtures.py (after make_fidelity_fixtures.py; it reuses its cases).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fidelity_fixtures as F  # noqa: E402


OUT = os.path.join(F.ROOT, "Tests", "GLMTrainingTests", "Fixtures", "bf16")
SMOOTH = dict(model_type="glm", tied=False, bias=True, prf=0.5, steps=40, lr=3e-3, seed=21)
SB, SL = 4, 24


def smooth_model():
    cfg = F.config(SMOOTH, hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                   head_dim=16)
    torch.manual_seed(SMOOTH["seed"])
    m = F.GlmForCausalLM(cfg)
    m.config._attn_implementation = "eager"
    return m


def smooth_batches():
    g = torch.Generator().manual_seed(SMOOTH["seed"] + 1)
    return [torch.randint(4, F.VOCAB, (SB, SL), generator=g) for _ in range(4)]


def smooth_run(model, batches, autocast):
    opt = torch.optim.AdamW(model.parameters(), lr=SMOOTH["lr"], betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0,
                            foreach=False)
    losses = []
    for step in range(SMOOTH["steps"]):
        ids = batches[step % len(batches)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(ids, labels=ids).loss
        loss.backward()
        losses.append(loss.item())
        opt.step()
        opt.zero_grad(set_to_none=True)
    return losses


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    model = smooth_model()
    model.save_pretrained(os.path.join(OUT, "model"), safe_serialization=True)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    batches = smooth_batches()
    f32 = smooth_run(model, batches, autocast=False)
    model.load_state_dict(start)
    bf16 = smooth_run(model, batches, autocast=True)
    print("smooth f32   ", ["%.4f" % x for x in f32[::8]])
    print("smooth bf16  ", ["%.4f" % x for x in bf16[::8]])
    out = {"torch": torch.__version__, "cases": {},
           "smooth": {"batch": SB, "length": SL, "steps": SMOOTH["steps"], "lr": SMOOTH["lr"],
                      "micro_batches": [b.flatten().tolist() for b in batches],
                      "f32_losses": f32, "autocast_losses": bf16}}
    for name, spec in F.CASES.items():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            r = F.run(spec, torch.float32)
        out["cases"][name] = {"losses": r["losses"], "grad_norms": r["grad_norms"]}
        print(name, ["%.5f" % x for x in r["losses"]])
    path = os.path.join(OUT, "fixtures.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
