#!/usr/bin/env python3
"""Full fine-tuning trajectories of tiny GLM / GLM-4 models as transformers' Trainer computes them, with the pad
token in the data (Tests/GLMTrainingTests/Fixtures/fidelity/).

What the fixture pins down, each one a place where a CPU re-implementation can quietly differ from torch:
  * nn.Embedding(padding_idx=pad_token_id): the pad row gets no gradient from the lookup, so under AdamW it only
    decays (p *= 1 - lr*wd per step) -- unless the LM head is tied to it, whose gradient still reaches that row.
  * the causal-LM loss: labels shifted inside the model, ignore_index -100, sum over the non-ignored predictions
    divided by the number of them over ALL micro-batches of the optimizer step (Trainer's num_items_in_batch),
    each micro-batch backpropagated separately.
  * parameter groups: weight decay on Trainer.get_decay_parameter_names (everything but biases and norms).
  * torch.nn.utils.clip_grad_norm_ (total 2-norm, coefficient max_norm / (norm + 1e-6) clamped to 1).
  * get_cosine/linear_schedule_with_warmup, stepped after each optimizer step (update k uses lr_lambda(k), so
    with warmup the first update has lr 0).
  * torch.optim.AdamW (foreach=False: the single-tensor loop).
  * transformers' _init_weights (recorded as statistics of freshly built models, see "init" below).

Writes
  <case>/model/        the starting weights (save_pretrained, float32; every parameter perturbed away from the
                       default init, the pad row included, so decay and biases are visible)
  <case>/steps.safetensors   every parameter after each update, "step<k>/<name>" (k = 1...steps), float32
  fixtures.json        per case: hyper-parameters, the micro-batches (input ids and *unshifted* HF labels), the
                       decay / no-decay parameter names, and per update the logged loss (Trainer's tr_loss for the
                       step), the gradient norm before clipping, the learning rate used; the float32-vs-float64
                       spread of the same run; and "init": per-parameter statistics of freshly initialised models.

The training loop is Trainer's inner loop (trainer.py, _inner_training_loop / training_step) written out for a
fixed list of batches (no data loader, no accelerate): for each micro-batch, loss = model(ids, labels=labels,
num_items_in_batch=N).loss, loss.backward(); then clip_grad_norm_, optimizer.step(), lr_scheduler.step(),
zero_grad(). No attention_mask is passed: padding is at the end of rows (causal, so it cannot reach earlier
positions) and its labels are -100.

Run: .venv/bin/python Scripts/make_fidelity_fixtures.py
"""
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import (Glm4Config, Glm4ForCausalLM, GlmConfig, GlmForCausalLM, Trainer,
                          get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "GLMTrainingTests", "Fixtures", "fidelity")
VOCAB, PAD = 48, 3

CASES = {
    # GLM-4-9B-like: q/k/v bias, partial rotary 0.5, untied; two micro-batches per update with unequal label counts.
    "glm_untied": dict(model_type="glm", tied=False, bias=True, prf=0.5, steps=5, accum=2, schedule="cosine",
                       warmup=2, lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, max_grad_norm=1.0, seed=11),
    # Tied LM head: the pad row does get gradient (from the head). No bias, full rotary, linear decay.
    "glm_tied": dict(model_type="glm", tied=True, bias=False, prf=1.0, steps=4, accum=1, schedule="linear",
                     warmup=1, lr=2e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05, max_grad_norm=0.5, seed=12),
    # GLM-4-0414 (sandwich norms), bias, untied, no clipping.
    "glm4_untied": dict(model_type="glm4", tied=False, bias=True, prf=0.5, steps=4, accum=2, schedule="cosine",
                        warmup=1, lr=5e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, max_grad_norm=0.0, seed=13),
}
BATCH, LENGTH = 2, 12


def config(spec, **over):
    cls = GlmConfig if spec["model_type"] == "glm" else Glm4Config
    kw = dict(vocab_size=VOCAB, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
              num_key_value_heads=1, head_dim=8, max_position_embeddings=64, rms_norm_eps=1e-5,
              attention_bias=spec["bias"], tie_word_embeddings=spec["tied"], pad_token_id=PAD, eos_token_id=[1, 2],
              bos_token_id=None, initializer_range=0.02,
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": spec["prf"]})
    kw.update(over)
    return cls(**kw)


def build_model(spec):
    cfg = config(spec)
    cls = GlmForCausalLM if spec["model_type"] == "glm" else Glm4ForCausalLM
    torch.manual_seed(spec["seed"])
    m = cls(cfg)
    with torch.no_grad():  # default init: unit norms, zero biases, zero pad row; perturb everything
        for n, p in m.named_parameters():
            norm = "norm" in n
            p.copy_(torch.randn_like(p) * (0.3 if norm else 0.1) + (1.0 if norm else 0.0))
    m.config._attn_implementation = "eager"
    return m


def micro_batches(spec):
    """steps*accum micro-batches of BATCH x LENGTH: random tokens with the pad token inside documents (as GLM-4's
    <|endoftext|> between documents) and as a label, a masked prompt (-100) of varying length, trailing padding
    (pad ids, labels -100) of varying length, so micro-batches carry different numbers of loss tokens."""
    g = torch.Generator().manual_seed(spec["seed"] + 100)
    out = []
    for _ in range(spec["steps"] * spec["accum"]):
        ids = torch.randint(4, VOCAB, (BATCH, LENGTH), generator=g)
        labels = ids.clone()
        for b in range(BATCH):
            cut = int(torch.randint(2, 6, (1,), generator=g))      # pad token inside the text (input and label)
            ids[b, cut] = PAD
            labels[b, cut] = PAD
            prompt = int(torch.randint(0, 4, (1,), generator=g))   # masked prompt
            labels[b, :prompt] = -100
            tail = int(torch.randint(0, 5, (1,), generator=g))     # trailing padding
            if tail:
                ids[b, LENGTH - tail:] = PAD
                labels[b, LENGTH - tail:] = -100
        out.append((ids, labels))
    return out


def run(spec, dtype):
    model = build_model(spec).to(dtype).train()
    named = list(model.named_parameters())  # a tied lm_head.weight appears once, as model.embed_tokens.weight
    # Trainer.create_optimizer: named parameters whose name get_decay_parameter_names lists get weight decay.
    decay = set(Trainer.get_decay_parameter_names(None, model)) & {n for n, _ in named}
    groups = [{"params": [p for n, p in named if n in decay], "weight_decay": spec["weight_decay"]},
              {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=spec["lr"], betas=spec["betas"], eps=spec["eps"], foreach=False)
    make = get_cosine_schedule_with_warmup if spec["schedule"] == "cosine" else get_linear_schedule_with_warmup
    sched = make(opt, num_warmup_steps=spec["warmup"], num_training_steps=spec["steps"])
    batches = micro_batches(spec)
    losses, norms, lrs, weights = [], [], [], []
    for step in range(spec["steps"]):
        micro = batches[step * spec["accum"]:(step + 1) * spec["accum"]]
        n_items = sum(int((lab[..., 1:] != -100).sum()) for _, lab in micro)
        lrs.append(opt.param_groups[0]["lr"])
        total = 0.0
        for ids, lab in micro:
            loss = model(ids, labels=lab, num_items_in_batch=torch.tensor(n_items)).loss
            loss.backward()
            total += loss.item()
        if spec["max_grad_norm"] > 0:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), spec["max_grad_norm"])
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
        norms.append(float(norm))
        losses.append(total)
        opt.step()
        sched.step()
        model.zero_grad(set_to_none=True)
        weights.append({n: p.detach().clone() for n, p in model.named_parameters()})
    return dict(losses=losses, grad_norms=norms, lrs=lrs, weights=weights, decay=sorted(decay),
                no_decay=sorted(n for n, _ in named if n not in decay), batches=batches)


def init_statistics():
    """Per-parameter statistics of freshly built models (transformers' _init_weights, no perturbation), for
    configs with initializer_range 0.05 and 0 (transformers then uses 0.02: `initializer_range or 0.02`)."""
    out = []
    for model_type, tied, rng in [("glm", False, 0.05), ("glm4", True, 0.05), ("glm", False, 0.0)]:
        spec = dict(model_type=model_type, tied=tied, bias=True, prf=0.5)
        cfg = config(spec, vocab_size=512, hidden_size=64, intermediate_size=96, num_attention_heads=4,
                     num_key_value_heads=2, head_dim=16, initializer_range=rng, pad_token_id=7)
        torch.manual_seed(0)
        m = (GlmForCausalLM if model_type == "glm" else Glm4ForCausalLM)(cfg)
        stats = {}
        for n, p in m.named_parameters():
            p = p.detach().double()
            stats[n] = dict(mean=p.mean().item(), std=p.std().item(), min=p.min().item(), max=p.max().item(),
                            count=p.numel())
        e = m.model.embed_tokens.weight
        out.append(dict(config=json.loads(cfg.to_json_string()), model_type=model_type, tied=tied,
                        initializer_range=rng, pad_row_abs_max=e[7].abs().max().item(),
                        lm_head_is_embedding=m.lm_head.weight.data_ptr() == e.data_ptr(), parameters=stats))
    return out


def main():
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    torch.set_num_threads(1)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    fixture = {"generator": "Scripts/make_fidelity_fixtures.py", "torch": torch.__version__,
               "transformers": transformers.__version__, "pad_token_id": PAD, "batch": BATCH, "length": LENGTH,
               "cases": {}, "init": init_statistics()}
    for name, spec in CASES.items():
        d = os.path.join(OUT, name)
        build_model(spec).save_pretrained(os.path.join(d, "model"))
        f32, f64 = run(spec, torch.float32), run(spec, torch.float64)
        spread = max((a.double() - b).abs().max().item() for wa, wb in zip(f32["weights"], f64["weights"])
                     for a, b in zip(wa.values(), wb.values()))
        loss_spread = max(abs(a - b) for a, b in zip(f32["losses"], f64["losses"]))
        tensors = {f"step{k + 1}/{n}": t.contiguous() for k, w in enumerate(f32["weights"]) for n, t in w.items()}
        save_file(tensors, os.path.join(d, "steps.safetensors"), metadata={"format": "pt"})
        fixture["cases"][name] = {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()},
            "micro_batches": [{"ids": i.flatten().tolist(), "labels": l.flatten().tolist()} for i, l in f32["batches"]],
            "decay_parameters": f32["decay"], "no_decay_parameters": f32["no_decay"],
            "losses": f32["losses"], "grad_norms": f32["grad_norms"], "lrs": f32["lrs"],
            "losses_float64": f64["losses"], "grad_norms_float64": f64["grad_norms"],
            "max_weight_spread_float32_float64": spread,
        }
        print(f"{name:12s} loss {f32['losses'][0]:.5f} -> {f32['losses'][-1]:.5f}; grad norms "
              f"{', '.join(f'{x:.3f}' for x in f32['grad_norms'])}; lrs {f32['lrs']}; "
              f"max |f32 - f64|: weights {spread:.2e}, loss {loss_spread:.2e}")
    with open(os.path.join(OUT, "fixtures.json"), "w") as f:
        json.dump(fixture, f, indent=1)
    size = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fs in os.walk(OUT) for fn in fs)
    print(f"{OUT}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
