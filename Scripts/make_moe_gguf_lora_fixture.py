#!/usr/bin/env python3
"""A LoRA adapter on every linear of the moe-a fixture, routed experts included, in the per-expert PEFT layout
(the transformers-4 module names `model.layers.N.mlp.experts.{e}.gate_proj`, what GLMTrain's RUN/adapter keeps),
and what llama.cpp's convert_lora_to_gguf.py writes for it (Tests/GLMModelTests/Fixtures/moe-a-experts-lora/).

peft 0.21 on transformers 5 cannot make this layout (it fuses the routed experts into target_parameters), so the
adapter is written here: adapter_config.json by peft's own LoraConfig.save_pretrained (r 4, alpha 8,
target_modules q/k/v/o and gate/up/down, base_model_name_or_path moe-a's path relative to the repository root),
adapter_model.safetensors with seeded random A [r, in] and B [out, r] for every declared linear of moe-a (layer 0:
attention and the dense MLP; layer 1: attention, the shared expert and the 4 routed experts), names with peft's
"base_model.model." prefix. peft's model card (README.md, taken from a save_pretrained of an attention-only peft
model on moe-a, as a user's adapter directory would have it) is present while converting and removed after.

  adapter.gguf   convert_lora_to_gguf.py --outtype f32 --base Tests/GLMModelTests/Fixtures/moe-a: the converter
                 stacks the routed experts' A and B (torch.stack) into blk.1.ffn_{down,gate,up}_exps.weight.lora_a
                 [experts, r, in] and .lora_b [experts, out, r]

Run: .venv/bin/python Scripts/make_moe_gguf_lora_fixture.py --llama-cpp DIR
     DIR is a llama.cpp source tree (convert_lora_to_gguf.py, conversion/, gguf-py/), e.g. the one inside the
     llama-cpp-python sdist (vendor/llama.cpp); Scripts/check_llama_cpp.py finds one when --llama-cpp is left out.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_moe_fixtures import OUT, ROOT, moe_base  # noqa: E402

NAME = "moe-a-experts-lora"
BASE = "Tests/GLMModelTests/Fixtures/moe-a"
TARGETS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
R, ALPHA = 4, 8


def modules(cfg):
    """(module path, [out, in]) of every linear GLMTrain declares for moe-a."""
    h, q, kv = cfg["hidden_size"], cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
    out = []
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        out += [(p + "self_attn.q_proj", [q, h]), (p + "self_attn.k_proj", [kv, h]),
                (p + "self_attn.v_proj", [kv, h]), (p + "self_attn.o_proj", [h, q])]
        if layer < cfg["first_k_dense_replace"]:
            mlps = [(p + "mlp.", cfg["intermediate_size"])]
        else:
            mlps = [(p + "mlp.shared_experts.", cfg["moe_intermediate_size"] * cfg["n_shared_experts"])]
            mlps += [(p + f"mlp.experts.{e}.", cfg["moe_intermediate_size"]) for e in range(cfg["n_routed_experts"])]
        for prefix, width in mlps:
            out += [(prefix + "gate_proj", [width, h]), (prefix + "up_proj", [width, h]), (prefix + "down_proj", [h, width])]
    return out


def peft_model_card():
    """README.md as peft's save_pretrained writes it for an adapter on moe-a."""
    with tempfile.TemporaryDirectory() as d:
        model = get_peft_model(moe_base("moe-a"), LoraConfig(task_type="CAUSAL_LM", r=R, lora_alpha=ALPHA,
                                                            target_modules=["q_proj"]))
        model.save_pretrained(d)
        return open(os.path.join(d, "README.md")).read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-cpp", metavar="DIR", help="llama.cpp source tree for convert_lora_to_gguf.py")
    args = ap.parse_args()
    if args.llama_cpp:
        llama_cpp = args.llama_cpp
    else:
        from check_llama_cpp import find_llama_cpp
        llama_cpp = str(find_llama_cpp(None))
    path = os.path.join(OUT, NAME)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    cfg = json.load(open(os.path.join(ROOT, BASE, "config.json")))
    LoraConfig(task_type="CAUSAL_LM", r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS,
               base_model_name_or_path=BASE).save_pretrained(path)
    cfg_path = os.path.join(path, "adapter_config.json")  # sorted target_modules: reproducible bytes
    ac = json.load(open(cfg_path))
    ac["target_modules"] = sorted(ac["target_modules"])
    with open(cfg_path, "w") as f:
        f.write(json.dumps(ac, indent=2, sort_keys=True))
    torch.manual_seed(sum(map(ord, NAME)))
    tensors = {}
    for module, (out, inner) in modules(cfg):
        tensors[f"base_model.model.{module}.lora_A.weight"] = torch.randn(R, inner) * 0.2
        tensors[f"base_model.model.{module}.lora_B.weight"] = torch.randn(out, R) * 0.2
    save_file(tensors, os.path.join(path, "adapter_model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(path, "README.md"), "w") as f:
        f.write(peft_model_card())
    env = dict(os.environ, PYTHONPATH=os.path.join(llama_cpp, "gguf-py"))
    subprocess.run([sys.executable, os.path.join(llama_cpp, "convert_lora_to_gguf.py"), "--outtype", "f32",
                    "--base", BASE, "--outfile", os.path.join(path, "adapter.gguf"), path],
                   check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    os.remove(os.path.join(path, "README.md"))
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    print(f"{NAME} {sorted(os.listdir(path))} {size / 1024:.0f} KiB ({len(tensors) // 2} adapted modules)")


if __name__ == "__main__":
    main()
