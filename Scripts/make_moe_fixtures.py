#!/usr/bin/env python3
"""Tiny random glm4_moe (GLM-4.5 MoE) model directories and their transformers outputs
(Tests/GLMModelTests/Fixtures/moe-<name>/).

Each fixture is a directory written by transformers' save_pretrained (config.json, model.safetensors in the
per-expert layout save_pretrained writes, generation_config.json) plus `expected.safetensors`, computed with the
directory as transformers loads it (float32, eager attention, eager experts):
  batch.ids / batch.logits / batch.logprobs      two sequences of 7 tokens
  single.ids / single.logits / single.logprobs   one sequence of 11 tokens
  offset.positions / offset.logits               the single sequence at position ids shifted by 5
  routing.<layer>                                the experts each token of the batch picks in each MoE layer
                                                 (sorted ascending per token), [B·T, top_k]
  generate.prompt / generate.tokens              greedy generation (KV cache) of 8 new tokens
log-probs are log p(ids[i+1] | ids[..i]). Every parameter is random (norms around 1, biases non-zero) and each
router's `e_score_correction_bias` is random and large enough that selection by s + bias differs from selection
by s alone for some tokens (checked here), so that selecting with the bias and weighting without it is tested.

Variants:
  moe-a  the reference's tiny config: QK-norm, attention bias, 4 experts top-2, one shared expert,
         routed_scaling_factor 2.5, one dense layer then one MoE layer
  moe-b  groups (Tiny-B): 3 layers, 8 experts in n_group 4, topk_group 2, top-3, two shared experts, no QK-norm,
         no attention bias
  moe-c  no dense layer (first_k_dense_replace 0), norm_topk_prob false with routed_scaling_factor 0.5,
         no shared expert (n_shared_experts 0), full rotary (partial_rotary_factor 1.0), tied embeddings,
         QK-norm without attention bias

PEFT adapter (Tests/GLMModelTests/Fixtures/moe-a-lora/): peft's LoRA (r 4, alpha 8, no dropout) on moe-a with
target_modules q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj. peft 0.21 on transformers 5 converts
the gate/up/down targets of glm4_moe into target_parameters gate_up_proj, down_proj (the fused routed experts, with
rank_pattern/alpha_pattern 2r/2α for gate_up) and drops the dense MLP and the shared expert; every lora_A/lora_B is
seeded random (so gate_up's B is not block-diagonal: gate and up share A, rank 8), saved
with save_pretrained (base_model_name_or_path is moe-a's path relative to the repository root); expected.safetensors
holds its log-probs (batch.logprobs, single.logprobs) and the merged model's (single.logprobs_merged).

PEFT adapter (Tests/GLMModelTests/Fixtures/moe-b-lora-params/): peft's native target_parameters adapter on moe-b
(rsLoRA r 4, alpha 8; target_modules q_proj, v_proj; target_parameters mlp.experts.gate_up_proj,
mlp.experts.down_proj, so gate and up share one rank-4 A per expert), seeded random; expected.safetensors holds
its log-probs, and grads.safetensors the gradients peft computes for its lora_A/lora_B (named as in the adapter
file) from the mean next-token cross-entropy of single.ids with the adapter trainable (PeftModel.from_pretrained
is_trainable=True): gate and up share one A per expert, so its gradient is the sum of both uses.
MOE_FIXTURES_ONLY=lora-params makes only this one (grads.safetensors too); MOE_FIXTURES_ONLY=lora-params-grads
only its gradients, from the committed adapter; MOE_FIXTURES_ONLY=NAME (moe-a … moe-d) only that model.

Run:   .venv/bin/python Scripts/make_moe_fixtures.py
Check: .venv/bin/python Scripts/make_moe_fixtures.py --check DIR [DIR ...]
       loads each DIR (written by GLMTrain's ModelDirectory.save, named like the fixture it came from) with
       transformers and prints the largest logit difference from that fixture's expected logits; exits 1 if any
       relative difference exceeds --tolerance (bf16 directories are compared in f32 after loading).
       --check-peft DIR [DIR ...] [--base moe-c]: loads each PEFT adapter DIR (one GLMTrain wrote for the base,
       moe-a by default) on the base with PeftModel.from_pretrained and compares its log-probs with
       `glm-train score --adapter DIR` (the built binary); exit 1 beyond --tolerance. Routed-expert adapters
       (`export --format peft` writes them as target_parameters) are loaded by peft's ParamWrapper.
"""
import argparse
import json
import os
import shutil

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, Glm4MoeConfig, Glm4MoeForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "GLMModelTests", "Fixtures")
BATCH_IDS = [[5, 17, 33, 60, 7, 9, 40], [0, 63, 1, 2, 28, 44, 3]]
SINGLE_IDS = [11, 50, 3, 3, 59, 42, 17, 8, 19, 61, 1]
POSITION_OFFSET = 5
PROMPT = [7, 21, 4, 30]
NEW_TOKENS = 8

BASE = dict(vocab_size=64, hidden_size=32, intermediate_size=48, moe_intermediate_size=16, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=128, rms_norm_eps=1e-5,
            num_nextn_predict_layers=0, pad_token_id=0, eos_token_id=[1, 2], bos_token_id=None)

FIXTURES = {
    "moe-a": dict(num_hidden_layers=2, first_k_dense_replace=1, n_routed_experts=4, n_shared_experts=1,
                  num_experts_per_tok=2, n_group=1, topk_group=1, norm_topk_prob=True, routed_scaling_factor=2.5,
                  use_qk_norm=True, attention_bias=True, tie_word_embeddings=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5}),
    "moe-b": dict(num_hidden_layers=3, first_k_dense_replace=1, n_routed_experts=8, n_shared_experts=2,
                  num_experts_per_tok=3, n_group=4, topk_group=2, norm_topk_prob=True, routed_scaling_factor=1.0,
                  use_qk_norm=False, attention_bias=False, tie_word_embeddings=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 1000.0, "partial_rotary_factor": 0.5}),
    "moe-c": dict(num_hidden_layers=2, first_k_dense_replace=0, n_routed_experts=4, n_shared_experts=0,
                  num_experts_per_tok=2, n_group=2, topk_group=1, norm_topk_prob=False, routed_scaling_factor=0.5,
                  use_qk_norm=True, attention_bias=False, tie_word_embeddings=True,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0}),
    # int(8 · 0.375) = 3 is odd: transformers makes 2 frequencies θ^(-2i/3) and rotates 4 dims (half-split)
    "moe-d": dict(num_hidden_layers=2, first_k_dense_replace=1, n_routed_experts=4, n_shared_experts=1,
                  num_experts_per_tok=2, n_group=1, topk_group=1, norm_topk_prob=True, routed_scaling_factor=1.0,
                  use_qk_norm=False, attention_bias=True, tie_word_embeddings=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.375}),
}


def build(name, spec, attempt=0):
    cfg = Glm4MoeConfig(**BASE, **spec)
    torch.manual_seed(sum(map(ord, name)) + 1000 * attempt)
    m = Glm4MoeForCausalLM(cfg).eval()
    with torch.no_grad():  # default init has zero biases and unit norms: perturb everything
        for n, p in m.named_parameters():
            norm = "norm" in n
            scale = 0.5 if norm else (0.3 if "mlp.gate.weight" in n else 0.15)
            p.copy_(torch.randn_like(p) * scale + (1.0 if norm else 0.0))
        for mod in m.modules():
            if hasattr(mod, "e_score_correction_bias"):
                mod.e_score_correction_bias.copy_(torch.randn_like(mod.e_score_correction_bias) * 0.3)
    return m


def load_hf(path):
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager",
                                                experts_implementation="eager").eval()


def logprobs(logits, ids):
    lp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    return lp.gather(-1, ids[:, 1:, None])[..., 0].float()


def routers(model):
    return [(i, layer.mlp.gate) for i, layer in enumerate(model.model.layers) if hasattr(layer.mlp, "gate")]


def reference_outputs(model):
    out = {}
    picked = {}
    hooks = [gate.register_forward_hook(lambda mod, inp, o, i=i: picked.__setitem__(i, o[2].sort(dim=-1)[0]))
             for i, gate in routers(model)]
    with torch.no_grad():
        ids = torch.tensor(BATCH_IDS)
        logits = model(ids).logits.float()
        out["batch.ids"], out["batch.logits"], out["batch.logprobs"] = ids, logits, logprobs(logits, ids)
        for i, idx in picked.items():
            out[f"routing.{i}"] = idx
    for h in hooks:
        h.remove()
    with torch.no_grad():
        single = torch.tensor([SINGLE_IDS])
        logits = model(single).logits.float()
        out["single.ids"], out["single.logits"] = single[0], logits
        out["single.logprobs"] = logprobs(logits, single)[0]
        pos = torch.arange(len(SINGLE_IDS))[None] + POSITION_OFFSET
        out["offset.positions"] = pos[0]
        out["offset.logits"] = model(single, position_ids=pos).logits.float()
        prompt = torch.tensor([PROMPT])
        gen = model.generate(prompt, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                             eos_token_id=None, pad_token_id=0)
        out["generate.prompt"], out["generate.tokens"] = prompt[0], gen[0, len(PROMPT):]
    return out


def bias_changes_selection(model):
    """Whether, on the batch, some token picks other experts with the bias than it would without it."""
    changed = []
    for _, gate in routers(model):
        saved = gate.e_score_correction_bias.clone()
        x = []
        h = gate.register_forward_hook(lambda mod, inp, o: x.append(inp[0]))
        with torch.no_grad():
            model(torch.tensor(BATCH_IDS))
        h.remove()
        with torch.no_grad():
            with_bias = gate(x[0])[2].sort(dim=-1)[0]
            gate.e_score_correction_bias.zero_()
            without = gate(x[0])[2].sort(dim=-1)[0]
            gate.e_score_correction_bias.copy_(saved)
        changed.append(bool((with_bias != without).any()))
    return all(changed)


def make(name, spec):
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    for attempt in range(50):  # the first seed whose biases change some selection in every MoE layer
        m = build(name, spec, attempt)
        m.save_pretrained(path)
        loaded = load_hf(path)
        if bias_changes_selection(loaded):
            break
        shutil.rmtree(path)
    else:
        raise SystemExit(f"{name}: no seed tried makes the correction bias change a selection in every MoE layer")
    ref = reference_outputs(loaded)
    save_file({k: v.float().contiguous() for k, v in ref.items()}, os.path.join(path, "expected.safetensors"),
              metadata={"transformers": transformers.__version__, "torch": torch.__version__})
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    print(f"{name:8s} {sorted(os.listdir(path))} {size / 1024:.0f} KiB")


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def lp_of(model, ids):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(ids)).logits.double()
    return torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, torch.tensor(ids)[:, 1:, None])[..., 0].float()


def adapter_outputs(model):
    return {"batch.ids": torch.tensor(BATCH_IDS), "batch.logprobs": lp_of(model, BATCH_IDS),
            "single.ids": torch.tensor(SINGLE_IDS), "single.logprobs": lp_of(model, [SINGLE_IDS])[0]}


def moe_base(name="moe-a"):
    rel = os.path.relpath(os.path.join(OUT, name), ROOT)  # peft records it as base_model_name_or_path
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return load_hf(rel)
    finally:
        os.chdir(cwd)


def make_lora():
    from peft import LoraConfig, get_peft_model
    name = "moe-a-lora"
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    model = get_peft_model(moe_base(), LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                                  target_modules=LORA_TARGETS))
    adapted = sorted(n for n, _ in model.named_modules() if n.endswith(tuple(LORA_TARGETS)) and hasattr(_, "lora_A"))
    assert not any(".experts." in n or n.endswith(".gate") for n in adapted), adapted
    torch.manual_seed(sum(map(ord, name)))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_A" in n or "lora_B" in n:
                p.copy_(torch.randn_like(p) * 0.2)
    model.eval()
    ref = adapter_outputs(model)
    model.save_pretrained(path)
    cfg_path = os.path.join(path, "adapter_config.json")  # target_modules in sorted order: reproducible bytes
    cfg = json.load(open(cfg_path))
    cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(cfg_path, "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True))
    ref["single.logprobs_merged"] = lp_of(model.merge_and_unload(), [SINGLE_IDS])[0]
    save_file({k: v.float().contiguous() for k, v in ref.items()}, os.path.join(path, "expected.safetensors"))
    if os.path.exists(os.path.join(path, "README.md")):
        os.remove(os.path.join(path, "README.md"))
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    print(f"{name:8s} {sorted(os.listdir(path))} {size / 1024:.0f} KiB ({len(adapted)} adapted modules)")


def make_lora_params():
    """peft's native target_parameters adapter on moe-b (8 experts in 4 groups, 2 MoE layers): rsLoRA r 4, alpha 8,
    q_proj/v_proj modules plus the fused experts named directly (gate and up share one A per expert, rank r)."""
    from peft import LoraConfig, get_peft_model
    name = "moe-b-lora-params"
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    model = get_peft_model(moe_base("moe-b"), LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0, use_rslora=True, target_modules=["q_proj", "v_proj"],
        target_parameters=["mlp.experts.gate_up_proj", "mlp.experts.down_proj"]))
    torch.manual_seed(sum(map(ord, name)))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_A" in n or "lora_B" in n:
                p.copy_(torch.randn_like(p) * 0.2)
    model.eval()
    ref = adapter_outputs(model)
    model.save_pretrained(path)
    cfg_path = os.path.join(path, "adapter_config.json")  # sorted lists: reproducible bytes
    cfg = json.load(open(cfg_path))
    cfg["target_modules"] = sorted(cfg["target_modules"])
    cfg["target_parameters"] = sorted(cfg["target_parameters"], key=lambda t: not t.endswith("gate_up_proj"))
    with open(cfg_path, "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True))
    save_file({k: v.float().contiguous() for k, v in ref.items()}, os.path.join(path, "expected.safetensors"))
    if os.path.exists(os.path.join(path, "README.md")):
        os.remove(os.path.join(path, "README.md"))
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    print(f"{name:8s} {sorted(os.listdir(path))} {size / 1024:.0f} KiB")


def make_lora_params_grads():
    """grads.safetensors beside the committed moe-b-lora-params adapter: d(mean CE of SINGLE_IDS) / d lora_*."""
    from peft import PeftModel
    path = os.path.join(OUT, "moe-b-lora-params")
    model = PeftModel.from_pretrained(moe_base("moe-b"), path, is_trainable=True)
    model.eval()  # no dropout (there is none), same forward as scoring
    ids = torch.tensor([SINGLE_IDS])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = {}
    for n, p in model.named_parameters():
        if ("lora_A" in n or "lora_B" in n) and p.grad is not None:
            grads[n.replace(".default.", ".")] = p.grad.detach().float().contiguous()
    grads["loss"] = loss.detach().float().reshape(1)
    save_file(grads, os.path.join(path, "grads.safetensors"))
    print(f"moe-b-lora-params/grads.safetensors: loss {loss.item():.6f}, {len(grads) - 1} gradients")


def check_peft(dirs, tolerance, base="moe-a"):
    """Log-probs of BASE + each adapter DIR under peft against `glm-train score --adapter DIR` (the built binary).
    Adapters with routed-expert LoRA (target_parameters) are checked to adapt the fused experts in peft, and the
    adapter must move the log-probs (else the comparison shows nothing)."""
    import subprocess
    import tempfile
    from peft import PeftModel
    binary = os.path.join(ROOT, ".build", "release", "glm-train")
    worst = 0.0
    for d in dirs:
        peft_model = PeftModel.from_pretrained(moe_base(base), d).eval()
        wrapped = sorted(n for n, m in peft_model.named_modules() if type(m).__name__ == "ParamWrapper")
        cfg = peft_model.peft_config["default"]
        print(f"{d}: target_modules {sorted(cfg.target_modules or [])}, target_parameters "
              f"{sorted(cfg.target_parameters or [])}, {len(wrapped)} ParamWrapper modules")
        got = adapter_outputs(peft_model)
        with peft_model.disable_adapter():
            plain = adapter_outputs(peft_model)
        moved = (got["single.logprobs"] - plain["single.logprobs"]).abs().max().item()
        print(f"{d}: the adapter moves peft's log-probs by up to {moved:.3e}")
        with tempfile.TemporaryDirectory() as tmp:
            inp, out = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
            with open(inp, "w") as f:
                for ids in BATCH_IDS + [SINGLE_IDS]:
                    f.write(json.dumps({"tokens": ids}) + "\n")
            subprocess.run([binary, "score", "--model", os.path.join(OUT, base), "--adapter", d, "--input", inp,
                            "--output", out], check=True)
            ours = [json.loads(line)["logprobs"] for line in open(out)]
        theirs = got["batch.logprobs"].tolist() + [got["single.logprobs"].tolist()]
        diff = max(abs(a - b) for x, y in zip(ours, theirs) for a, b in zip(x, y))
        worst = max(worst, diff)
        print(f"{d}: max |peft − glm-train score| {diff:.3e}")
    print(f"largest log-prob difference {worst:.3e}")
    return worst <= tolerance


def check(dirs, tolerance):
    from safetensors.torch import load_file
    worst = 0.0
    for d in dirs:
        name = os.path.basename(os.path.normpath(d))
        expected = load_file(os.path.join(OUT, name, "expected.safetensors"))
        got = reference_outputs(load_hf(d))
        for key in ("batch.logits", "single.logits", "offset.logits"):
            diff = (got[key] - expected[key]).abs().max().item()
            rel = diff / max(expected[key].abs().max().item(), 1e-6)
            worst = max(worst, rel)
            print(f"{d}: {key} max |diff| {diff:.3e} (relative {rel:.3e}) against fixture {name}")
        same = all(torch.equal(got[k], expected[k]) for k in expected if k.startswith("routing."))
        print(f"{d}: experts chosen {'equal' if same else 'DIFFER'}; greedy tokens "
              f"{'equal' if torch.equal(got['generate.tokens'], expected['generate.tokens']) else 'DIFFER'}")
    print(f"largest relative logit difference {worst:.3e}")
    return worst <= tolerance


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", nargs="+", metavar="DIR", help="model directories to load with transformers")
    ap.add_argument("--check-peft", nargs="+", metavar="DIR", help="PEFT adapter directories to load on moe-a with peft")
    ap.add_argument("--base", default="moe-a", help="--check-peft: the fixture model the adapters are for (moe-a, moe-b, moe-c)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()
    transformers.utils.logging.disable_progress_bar()
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    if args.check:
        raise SystemExit(0 if check(args.check, args.tolerance) else 1)
    if args.check_peft:
        raise SystemExit(0 if check_peft(args.check_peft, args.tolerance, args.base) else 1)
    ap_only = os.environ.get("MOE_FIXTURES_ONLY")
    if ap_only == "lora-params":  # just the target_parameters adapter on the committed moe-b
        make_lora_params()
        make_lora_params_grads()
        return
    if ap_only == "lora-params-grads":
        make_lora_params_grads()
        return
    if ap_only in FIXTURES:  # one model fixture
        make(ap_only, FIXTURES[ap_only])
        return
    for name, spec in FIXTURES.items():
        make(name, spec)
    make_lora()
    make_lora_params()
    make_lora_params_grads()


if __name__ == "__main__":
    main()
