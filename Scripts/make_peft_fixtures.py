#!/usr/bin/env python3
"""PEFT LoRA adapters made by `peft` on the tiny GLM fixtures, their outputs, and llama.cpp's GGUF of each
(Tests/GLMIOTests/Fixtures/peft/<name>/).

Base models are the committed tiny models of Tests/GLMModelTests/Fixtures (glm4: Glm4ForCausalLM, glm:
GlmForCausalLM), loaded by their path relative to the repository root, which is what each adapter's
`base_model_name_or_path` records. Each adapter is made by `get_peft_model` with peft's initialisation, then
every lora_A and lora_B is overwritten with seeded random values (B nonzero, so the adapter changes the
output), and saved with `save_pretrained`. Per adapter directory:

  adapter_config.json, adapter_model.safetensors   what peft 0.21 writes
  expected.safetensors   ids and log-probabilities of base+adapter (eager attention, eval mode: no dropout)
                         for a batch of two sequences and a single sequence, as in make_model_fixtures.py
                         (batch.ids, batch.logprobs, single.ids, single.logprobs), plus the merged model's
                         (merge_and_unload) single.logprobs_merged
  adapter.gguf           what llama.cpp's convert_lora_to_gguf.py --outtype f32 --base BASE writes for the
                         adapter (converted while peft's README.md model card is present, as a user would;
                         the card is then removed to keep the fixtures small)

Adapters: glm4-r8 (all six projections, r 8, alpha 16, dropout 0.05), glm4-rslora-all-linear (target
"all-linear", rsLoRA, r 4, alpha 8), glm-qv (GlmForCausalLM, q_proj/v_proj, r 4, alpha 4,
layers_to_transform [1]), glm4-patterns (rank_pattern / alpha_pattern by suffix and by full module name; no
adapter.gguf).

Run:   .venv/bin/python Scripts/make_peft_fixtures.py --llama-cpp DIR
       DIR is a llama.cpp source tree (convert_lora_to_gguf.py, conversion/, gguf-py/); one comes inside the
       llama-cpp-python sdist (`pip download --no-deps --no-binary llama-cpp-python llama-cpp-python`, vendor/llama.cpp).
Check: .venv/bin/python Scripts/make_peft_fixtures.py --check DIR [DIR ...] [--fixture NAME]
       loads each DIR (a PEFT adapter written by GLMTrain, e.g. `glm-train export --format peft`) on its base
       model with PeftModel.from_pretrained and compares its log-probabilities with the fixture NAME's
       (default: DIR's basename); exits 1 if any differs by more than --tolerance.
       --check-merged DIR [DIR ...] does the same for full model directories (`--format merged`) loaded
       with transformers.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "GLMIOTests", "Fixtures", "peft")
BASES = {"glm4": "Tests/GLMModelTests/Fixtures/glm4", "glm": "Tests/GLMModelTests/Fixtures/glm"}
BATCH_IDS = [[5, 17, 33, 200, 7, 9, 100], [0, 255, 1, 2, 128, 64, 3]]
SINGLE_IDS = [11, 250, 3, 3, 99, 42, 17, 8, 190, 64, 1]

# name: (base, LoraConfig keyword arguments)
ADAPTERS = {
    "glm4-r8": ("glm4", dict(r=8, lora_alpha=16, lora_dropout=0.05,
                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"])),
    "glm4-rslora-all-linear": ("glm4", dict(r=4, lora_alpha=8, use_rslora=True, target_modules="all-linear")),
    "glm-qv": ("glm", dict(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"], layers_to_transform=[1])),
    # per-module ranks and alphas (peft's first matching pattern key, by full module name); llama.cpp's converter
    # ignores alpha_pattern, so this fixture has no adapter.gguf (GLMTrain folds each module's scale into B).
    "glm4-patterns": ("glm4", dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"],
                                   rank_pattern={"q_proj": 8, "model.layers.1.mlp.down_proj": 2, "layers.0.self_attn.v_proj": 6},
                                   alpha_pattern={"o_proj": 3, "v_proj": 20})),
}
NO_GGUF = {"glm4-patterns"}


def load_base(base):
    # Relative path from the repository root: peft records it as base_model_name_or_path.
    return AutoModelForCausalLM.from_pretrained(BASES[base], dtype=torch.float32, attn_implementation="eager").eval()


def logprobs(model, ids):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(ids)).logits.double()
    lp = torch.log_softmax(logits[:, :-1], dim=-1)
    return lp.gather(-1, torch.tensor(ids)[:, 1:, None])[..., 0].float()


def outputs(model):
    return {"batch.ids": torch.tensor(BATCH_IDS), "batch.logprobs": logprobs(model, BATCH_IDS),
            "single.ids": torch.tensor(SINGLE_IDS), "single.logprobs": logprobs(model, [SINGLE_IDS])[0]}


def make(name, base, kwargs, llama_cpp):
    path = os.path.join(OUT, name)
    shutil.rmtree(path, ignore_errors=True)
    model = get_peft_model(load_base(base), LoraConfig(task_type="CAUSAL_LM", **kwargs))
    torch.manual_seed(sum(map(ord, name)))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_A" in n:
                p.copy_(torch.randn_like(p) * 0.2)
            elif "lora_B" in n:
                p.copy_(torch.randn_like(p) * 0.2)
    model.eval()
    ref = outputs(model)
    model.save_pretrained(path)
    # peft writes target_modules in set order, which changes from run to run; sort it (same json.dumps layout)
    # so that regenerating the fixtures reproduces them byte for byte.
    cfg_path = os.path.join(path, "adapter_config.json")
    cfg = json.load(open(cfg_path))
    if isinstance(cfg["target_modules"], list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(cfg_path, "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True))
    merged = model.merge_and_unload()
    ref["single.logprobs_merged"] = logprobs(merged, [SINGLE_IDS])[0]
    save_file({k: v.float().contiguous() for k, v in ref.items()}, os.path.join(path, "expected.safetensors"))
    if llama_cpp and name not in NO_GGUF:
        convert(llama_cpp, path, BASES[base], os.path.join(path, "adapter.gguf"))
    for f in ("README.md",):  # peft's model card: not needed by any reader
        if os.path.exists(os.path.join(path, f)):
            os.remove(os.path.join(path, f))
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    print(f"{name:24s} {sorted(os.listdir(path))} {size / 1024:.0f} KiB")


def convert(llama_cpp, adapter, base, out):
    env = dict(os.environ, PYTHONPATH=os.path.join(llama_cpp, "gguf-py"))
    cmd = [sys.executable, os.path.join(llama_cpp, "convert_lora_to_gguf.py"), "--outtype", "f32",
           "--base", base, "--outfile", out, adapter]
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def compare(label, got, expected, tolerance):
    worst = 0.0
    for key in ("batch.logprobs", "single.logprobs"):
        diff = (got[key] - expected[key]).abs().max().item()
        worst = max(worst, diff)
        print(f"{label}: {key} max |diff| {diff:.3e}")
    return worst <= tolerance


def check(dirs, fixture, tolerance, merged):
    ok = True
    for d in dirs:
        name = fixture or os.path.basename(os.path.normpath(d))
        expected = load_file(os.path.join(OUT, name, "expected.safetensors"))
        if merged:
            model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
        else:
            base, _ = ADAPTERS[name]
            model = PeftModel.from_pretrained(load_base(base), d).eval()
        ok = compare(f"{d} (fixture {name})", outputs(model), expected, tolerance) and ok
    print("all within tolerance" if ok else "MISMATCH")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-cpp", metavar="DIR", help="llama.cpp source tree for convert_lora_to_gguf.py")
    ap.add_argument("--check", nargs="+", metavar="DIR", help="PEFT adapter directories to load with peft")
    ap.add_argument("--check-merged", nargs="+", metavar="DIR", help="merged model directories to load with transformers")
    ap.add_argument("--fixture", help="fixture whose expected log-probs to compare with (default: DIR's basename)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="make only these fixtures")
    args = ap.parse_args()
    transformers.utils.logging.disable_progress_bar()
    os.chdir(ROOT)
    if args.check or args.check_merged:
        ok = True
        if args.check:
            ok = check(args.check, args.fixture, args.tolerance, merged=False) and ok
        if args.check_merged:
            ok = check(args.check_merged, args.fixture, args.tolerance, merged=True) and ok
        sys.exit(0 if ok else 1)
    if not args.llama_cpp and not (args.only and set(args.only) <= NO_GGUF):
        ap.error("--llama-cpp DIR is needed to make the fixtures (each includes llama.cpp's GGUF of the adapter)")
    os.makedirs(OUT, exist_ok=True)
    for name, (base, kwargs) in ADAPTERS.items():
        if not args.only or name in args.only:
            make(name, base, kwargs, args.llama_cpp)
    json.dump({"torch": torch.__version__, "transformers": transformers.__version__,
               "peft": __import__("peft").__version__},
              open(os.path.join(OUT, "versions.json"), "w"), indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
