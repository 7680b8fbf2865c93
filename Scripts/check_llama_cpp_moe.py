#!/usr/bin/env python3
"""glm4_moe (GLM-4.5) against llama.cpp: what its converter and runtime accept.

  1. convert  a small random Glm4MoeForCausalLM made by transformers (the bundled tokenizer, random non-zero
              e_score_correction_bias, 2 layers: one dense, one MoE with a shared expert) and a glm-train
              `export --format merged` of a LoRA on every linear of it (routed experts included) ->
              llama.cpp's convert_hf_to_gguf.py --outtype f32 (arch glm4moe)
  2. load     (needs llama-cpp-python) both GGUF files in llama.cpp; per-token log-probs vs `glm-train score`
              (and `score --adapter` for the merged one)
  3. lora     (needs llama-cpp-python) an attention-only LoRA exported by `glm-train export --format gguf-lora`
              (arch glm4moe, blk.N.attn_{q,k,v,output}) applied by llama.cpp (Llama(lora_path=...)) vs
              `glm-train score --adapter`
  4. lora     the same for the all-linear run's adapter without its routed experts (attention, the dense MLP
              ffn_{gate,up,down} and the shared expert ffn_*_shexp)
  5. lora     the all-linear run's whole adapter, routed experts included (stacked ffn_{down,gate,up}_exps)
  6. lora     peft's own routed-expert adapter (target_parameters; gate/up rank 2r sharing A) exported by
              `glm-train export --format gguf-lora`, in llama.cpp vs peft's log-probs (and `score --adapter` vs peft)

Run: .venv/bin/python Scripts/check_llama_cpp_moe.py [--llama-cpp DIR] [--work DIR] [--tolerance 1e-3]
The converter: --llama-cpp DIR (a llama.cpp tree: convert_hf_to_gguf.py, conversion/, gguf-py/), else as
Scripts/check_llama_cpp.py finds it. Without llama-cpp-python installed only step 1 runs (and says so).
Exit 1 if a step that ran fails.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_llama_cpp import ROOT, convert, glm_score, llama_logprobs, log, max_diff  # noqa: E402

TINY = dict(vocab_size=2048, hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2,
            first_k_dense_replace=1, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            n_routed_experts=4, n_shared_experts=1, num_experts_per_tok=2, n_group=1, topk_group=1,
            norm_topk_prob=True, routed_scaling_factor=2.5, use_qk_norm=True, attention_bias=True,
            rms_norm_eps=1e-5, max_position_embeddings=512, tie_word_embeddings=False, num_nextn_predict_layers=0,
            pad_token_id=2034, eos_token_id=[2034],
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})


def make_model(d):
    import torch
    from transformers import Glm4MoeConfig, Glm4MoeForCausalLM
    torch.manual_seed(0)
    model = Glm4MoeForCausalLM(Glm4MoeConfig(**TINY))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("e_score_correction_bias"):
                p.copy_(torch.randn_like(p) * 0.05)
            elif p.dim() >= 2:
                p.normal_(0, 0.08)
    model.save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(ROOT / "Checkpoints" / "glm-tiny" / f, d / f)


def lora_run(binary, base, work, name, targets):
    """A 6-step LoRA run of glm-train on `base` (random token data), returning its run directory."""
    import random
    run = work / name
    if (run / "adapter" / "adapter_model.safetensors").exists():
        return run
    data = work / "train.jsonl"
    rng = random.Random(0)
    data.write_text("".join(json.dumps({"tokens": [rng.randrange(2000) for _ in range(33)]}) + "\n" for _ in range(16)))
    recipe = work / f"{name}.yaml"
    t = "" if targets is None else f", targets: [{', '.join(targets)}]"
    recipe.write_text(f"""task: pretrain
model: {{path: {base}}}
data: {{train: {data}, shuffle: false}}
training: {{steps: 6, batch_size: 4, seq_len: 33, seed: 1}}
optimizer: {{name: adamw, lr: 2.0e-2, weight_decay: 0.0}}
schedule: {{name: constant}}
lora: {{rank: 4, alpha: 8{t}}}
checkpoint: {{every: 6, keep: 1}}
output_dir: {run}
""")
    subprocess.run([str(binary), "run", str(recipe)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-cpp", help="a llama.cpp source tree (for convert_hf_to_gguf.py)")
    ap.add_argument("--work", default=str(ROOT / ".build" / "llama-cpp-moe-check"))
    ap.add_argument("--tolerance", type=float, default=1e-3)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    binary = ROOT / ".build" / "release" / "glm-train"
    if args.llama_cpp:
        tree = Path(args.llama_cpp)
    else:
        from check_llama_cpp import find_llama_cpp
        tree = find_llama_cpp(None)
    base = work / "moe-model"
    if not (base / "model.safetensors").exists():
        make_model(base)
        log(f"made {base} (Glm4MoeForCausalLM, random, vocab 2048, 4 experts top-2, one shared expert)")

    # 1. convert: the base, and a merged LoRA run over every linear (routed experts included)
    full = lora_run(binary, base, work, "run-all", None)
    merged = work / "merged"
    subprocess.run([str(binary), "export", "--run", str(full), "--format", "merged", "--output", str(merged)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if not (merged / f).exists():
            shutil.copy(base / f, merged / f)
    g_base, g_merged = work / "moe-f32.gguf", work / "merged-f32.gguf"
    convert(tree, base, g_base, "f32")
    convert(tree, merged, g_merged, "f32")
    sys.path.insert(0, str(tree / "gguf-py"))
    from gguf import GGUFReader  # the converter's own gguf-py
    r = GGUFReader(str(g_base))
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    names = sorted(t.name for t in r.tensors if t.name.startswith("blk.1."))
    log(f"PASS convert: arch {arch}; blk.1 tensors {', '.join(names)}")

    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        log("SKIP load/lora: llama-cpp-python is not installed (pip install llama-cpp-python builds llama.cpp)")
        return 0
    seqs = [[1, 5, 17, 33, 60, 7, 9, 40, 100, 1500], list(range(3, 60, 2)), [2000, 4, 4, 4, 12, 900, 31]]
    n_ctx = 64
    failed = False

    def report(name, a, b):
        nonlocal failed
        d = max_diff(a, b)
        ok = d <= args.tolerance
        failed |= not ok
        log(f"{'PASS' if ok else 'FAIL'} {name}: max |Δ log-prob| {d:.2e}")

    ours = glm_score(binary, base, seqs, work)
    report("glm4moe base (f32 GGUF) vs glm-train score", ours, llama_logprobs(g_base, seqs, n_ctx))
    ours_full = glm_score(binary, base, seqs, work, adapter=full / "adapter")
    log(f"  the all-linear adapter moves glm-train's log-probs by up to {max_diff(ours_full, ours):.3f}")
    report("glm4moe merged LoRA incl. routed experts (f32 GGUF) vs glm-train score --adapter", ours_full,
           llama_logprobs(g_merged, seqs, n_ctx))

    # 3. GGUF LoRA, attention only
    att = lora_run(binary, base, work, "run-attention", ["q_proj", "k_proj", "v_proj", "o_proj"])
    ad = work / "attention.gguf"
    subprocess.run([str(binary), "export", "--run", str(att), "--format", "gguf-lora", "--output", str(ad)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    ours_att = glm_score(binary, base, seqs, work, adapter=att / "adapter")
    log(f"  the attention adapter moves glm-train's log-probs by up to {max_diff(ours_att, ours):.3f}")
    report("glm4moe attention-only gguf-lora in llama.cpp vs glm-train score --adapter", ours_att,
           llama_logprobs(g_base, seqs, n_ctx, lora=ad))

    # 4. GGUF LoRA on attention, the dense MLP and the shared expert (ffn_*_shexp): the all-linear run's adapter
    #    without its routed experts
    from safetensors.torch import load_file, save_file
    src, dst = full / "adapter", work / "no-routed-experts"
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    kept = {k: v for k, v in load_file(src / "adapter_model.safetensors").items() if ".mlp.experts." not in k}
    save_file(kept, dst / "adapter_model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg["exclude_modules"] = r".*\.mlp\.experts\..*"
    (dst / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    ad2 = work / "no-routed-experts.gguf"
    subprocess.run([str(binary), "export", "--adapter", str(dst), "--model", str(base), "--format", "gguf-lora",
                    "--output", str(ad2)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    ours_ns = glm_score(binary, base, seqs, work, adapter=dst)
    log(f"  the attention + dense + shared-expert adapter moves glm-train's log-probs by up to {max_diff(ours_ns, ours):.3f}")
    report("glm4moe gguf-lora on attention, dense MLP and shared expert in llama.cpp vs glm-train score --adapter",
           ours_ns, llama_logprobs(g_base, seqs, n_ctx, lora=ad2))

    # 5. GGUF LoRA on every linear, the routed experts as stacked blk.1.ffn_{down,gate,up}_exps
    ad3 = work / "all-linear.gguf"
    subprocess.run([str(binary), "export", "--run", str(full), "--format", "gguf-lora", "--output", str(ad3)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    report("glm4moe gguf-lora on every linear incl. routed experts in llama.cpp vs glm-train score --adapter",
           ours_full, llama_logprobs(g_base, seqs, n_ctx, lora=ad3))

    # 6. peft's own routed-expert adapter (target_parameters, gate and up sharing one rank-2r A per expert, so
    #    rank_pattern 2r / alpha_pattern 2α) -> glm-train export --format gguf-lora -> llama.cpp vs peft itself
    ours_peft, theirs_peft, ad4 = peft_expert_adapter(binary, base, work, seqs)
    log(f"  peft's routed-expert adapter moves peft's log-probs by up to {max_diff(theirs_peft, ours):.3f}")
    report("peft routed-expert adapter: glm-train score --adapter vs peft", ours_peft, theirs_peft)
    report("peft routed-expert adapter: glm-train gguf-lora in llama.cpp vs peft", theirs_peft,
           llama_logprobs(g_base, seqs, n_ctx, lora=ad4))
    return 1 if failed else 0


def peft_expert_adapter(binary, base, work, seqs):
    """peft's LoRA on `base` (r 4, alpha 8, q/v and gate/up/down: peft 0.21 on transformers 5 turns those into
    target_parameters on the fused experts), seeded random; its log-probs under peft, glm-train's with it, and
    the path of its `export --format gguf-lora`."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    d = work / "peft-experts"
    shutil.rmtree(d, ignore_errors=True)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="eager").eval()
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                                             target_modules=["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]))
    torch.manual_seed(7)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_A" in n or "lora_B" in n:
                p.copy_(torch.randn_like(p) * 0.1)
    model.eval()
    model.save_pretrained(d)
    theirs = []
    with torch.no_grad():
        for t in seqs:
            lp = torch.log_softmax(model(input_ids=torch.tensor([t])).logits[0].double(), dim=-1)
            theirs.append(np.array([lp[i, t[i + 1]].item() for i in range(len(t) - 1)]))
    out = work / "peft-experts.gguf"
    subprocess.run([str(binary), "export", "--adapter", str(d), "--model", str(base), "--format", "gguf-lora",
                    "--output", str(out)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return glm_score(binary, base, seqs, work, adapter=d), theirs, out


if __name__ == "__main__":
    sys.exit(main())
