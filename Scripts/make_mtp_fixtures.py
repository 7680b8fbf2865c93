#!/usr/bin/env python3
"""A tiny random glm4_moe with one MTP layer and its MTP logits from transformers
(Tests/GLMModelTests/Fixtures/moe-mtp/).

The MTP logits come from transformers' own `MtpModel` (transformers/modeling_layers.py: `MtpLayer`, the class
`generate(use_mtp=True)` drafts with), not a reimplementation: `MtpModel(main, 1)` shares the main model's
embedding, head and rotary, and its layer's weights are set from random values that are then written into
model.safetensors under the checkpoint names (`model.layers.{N}.` + `enorm`, `hnorm`, `eh_proj`, the decoder
layer's names, `shared_head.norm` for MtpLayer's `post_norm`; routed experts per expert, as save_pretrained
writes them). The drafting call is `MtpModel.forward_layer(0, h[:, :-1], positions, None, input_ids=ids[:, 1:])`
then `_project_to_logits`: the row for position t reads the main model's final (post-norm) hidden state h_t and
token t+1, and predicts token t+2. transformers gives that row rotary position t+1; RoPE is relative, so any
common shift of all positions gives the same logits.

expected.safetensors:
  mtp.ids          [2, 7]     the sequences
  mtp.logits       [2, 6, V]  MtpModel logits (row t: h_t and ids[t+1])
  mtp.logprobs     [2, 5]     log p_mtp(ids[t+2] | ...) for t < 5
  mtp.logprobs_zero_first   the same with the first row's embedding zeroed before enorm (vLLM's
                            `inputs_embeds[positions == 0] = 0` in glm4_moe_mtp.py / deepseek_mtp.py)
  mtp.head         [V, H]     a random `shared_head.head.weight`
  mtp.logprobs_head         the log-probs when that head replaces the main lm_head (vLLM's and llama.cpp's
                            loaders use shared_head.head when present; transformers' MtpModel always takes the main
                            head): computed with torch from MtpModel's normed hidden states
  main.logprobs    [2, 6]     the main model's next-token log-probs (the MTP layer must not change them)

Run:   .venv/bin/python Scripts/make_mtp_fixtures.py   (transformers 5.24, eager attention and experts)
Check: .venv/bin/python Scripts/make_mtp_fixtures.py --check DIR
       DIR is what `GLM_MTP_EXPORT_DIR=DIR swift test --filter Glm4MoeMTPTests/testExportForTransformersCheck` writes:
       moe-mtp after a few MTP-trained steps, saved by GLMTrain, with GLMTrain's MTP log-probs of the fixture ids in
       glmtrain_mtp.json. Loads DIR with transformers, its MTP layer into MtpModel (load_state_dict strict), and
       prints the largest log-prob difference; exit 1 beyond 2e-4.
"""
import argparse
import glob
import json
import sys
import os
import shutil

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import Glm4MoeConfig, Glm4MoeForCausalLM
from transformers.modeling_layers import MtpModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "GLMModelTests", "Fixtures", "moe-mtp")
IDS = [[5, 17, 33, 60, 7, 9, 40], [0, 63, 1, 2, 28, 44, 3]]

CONFIG = dict(vocab_size=64, hidden_size=32, intermediate_size=48, moe_intermediate_size=16, num_attention_heads=4,
              num_key_value_heads=2, head_dim=8, max_position_embeddings=128, rms_norm_eps=1e-5,
              num_nextn_predict_layers=1, pad_token_id=0, eos_token_id=[1, 2], bos_token_id=None,
              num_hidden_layers=2, first_k_dense_replace=1, n_routed_experts=4, n_shared_experts=1,
              num_experts_per_tok=2, n_group=1, topk_group=1, norm_topk_prob=True, routed_scaling_factor=2.5,
              use_qk_norm=True, attention_bias=True, tie_word_embeddings=False,
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5})


def randomize(module):
    with torch.no_grad():
        for n, p in module.named_parameters():
            norm = "norm" in n
            scale = 0.5 if norm else (0.3 if "mlp.gate.weight" in n else 0.15)
            p.copy_(torch.randn_like(p) * scale + (1.0 if norm else 0.0))
        for mod in module.modules():
            if hasattr(mod, "e_score_correction_bias"):
                mod.e_score_correction_bias.copy_(torch.randn_like(mod.e_score_correction_bias) * 0.3)


def checkpoint_names(mtp, layer):
    """MtpModel's layer tensors under the checkpoint's names (per-expert routed experts)."""
    out = {}
    p = f"model.layers.{layer}."
    state = {k: v for k, v in mtp.layers[0].state_dict().items()}
    for k, v in state.items():
        if k.startswith("mtp_block.mlp.experts.gate_up_proj"):
            im = v.shape[1] // 2
            for e in range(v.shape[0]):
                out[p + f"mlp.experts.{e}.gate_proj.weight"] = v[e, :im].clone()
                out[p + f"mlp.experts.{e}.up_proj.weight"] = v[e, im:].clone()
        elif k.startswith("mtp_block.mlp.experts.down_proj"):
            for e in range(v.shape[0]):
                out[p + f"mlp.experts.{e}.down_proj.weight"] = v[e].clone()
        elif k.startswith("mtp_block."):
            out[p + k[len("mtp_block."):]] = v.clone()
        elif k.startswith("post_norm."):
            out[p + "shared_head.norm." + k[len("post_norm."):]] = v.clone()
        else:
            out[p + k] = v.clone()
    return {k: v.contiguous() for k, v in out.items() if not k.endswith("rotary_emb.inv_freq")}


def mtp_state(tensors, layer):
    """The checkpoint's MTP layer tensors as MtpLayer's state dict (experts fused as transformers holds them)."""
    p = f"model.layers.{layer}."
    out, experts = {}, {}
    for k, v in tensors.items():
        if not k.startswith(p):
            continue
        k = k[len(p):]
        if k.startswith("mlp.experts."):
            e, name = k[len("mlp.experts."):].split(".", 1)
            experts.setdefault(int(e), {})[name] = v
        elif k.startswith("shared_head.norm."):
            out["post_norm." + k[len("shared_head.norm."):]] = v
        elif k.split(".")[0] in ("enorm", "hnorm", "eh_proj"):
            out[k] = v
        elif not k.startswith(("shared_head.head", "embed_tokens")):
            out["mtp_block." + k] = v
    order = sorted(experts)
    out["mtp_block.mlp.experts.gate_up_proj"] = torch.stack(
        [torch.cat([experts[e]["gate_proj.weight"], experts[e]["up_proj.weight"]], 0) for e in order])
    out["mtp_block.mlp.experts.down_proj"] = torch.stack([experts[e]["down_proj.weight"] for e in order])
    return out


def mtp_logprobs(model, mtp, ids):
    with torch.no_grad():
        h = model.model(ids).last_hidden_state
        pos = torch.arange(1, ids.shape[1])[None].expand(ids.shape[0], -1)
        logits = mtp._project_to_logits(mtp.forward_layer(0, h[:, :-1], pos, None, input_ids=ids[:, 1:]))
    return lp(logits[:, :-1], ids[:, 2:])


def check(path):
    model = Glm4MoeForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager",
                                               experts_implementation="eager").eval()
    mtp = MtpModel(model, 1).eval()
    mtp.config._experts_implementation = "eager"
    mtp.config._attn_implementation = "eager"
    tensors = {}
    for f in glob.glob(os.path.join(path, "*.safetensors")):
        tensors.update(load_file(f))
    mtp.layers[0].load_state_dict({k: v.float() for k, v in mtp_state(tensors, model.config.num_hidden_layers).items()},
                                  strict=True)
    ours = json.load(open(os.path.join(path, "glmtrain_mtp.json")))
    got = mtp_logprobs(model, mtp, torch.tensor(ours["ids"]))
    diff = (got - torch.tensor(ours["logprobs"])).abs().max().item()
    print(f"{path}: MTP log-probs, transformers MtpModel vs GLMTrain: max difference {diff:.2e}")
    return diff <= 2e-4


def lp(logits, targets):
    return torch.log_softmax(logits.double(), dim=-1).gather(-1, targets[..., None])[..., 0].float()


def main():
    cfg = Glm4MoeConfig(**CONFIG)
    torch.manual_seed(1414)
    model = Glm4MoeForCausalLM(cfg).eval()
    randomize(model)
    model.config._experts_implementation = "eager"
    model.config._attn_implementation = "eager"
    mtp = MtpModel(model, 1).eval()
    randomize(mtp.layers)
    mtp.config._experts_implementation = "eager"
    mtp.config._attn_implementation = "eager"
    shutil.rmtree(OUT, ignore_errors=True)
    model.save_pretrained(OUT)
    weights_file = os.path.join(OUT, "model.safetensors")
    tensors = load_file(weights_file)
    tensors.update(checkpoint_names(mtp, cfg.num_hidden_layers))
    save_file(tensors, weights_file, metadata={"format": "pt"})

    ids = torch.tensor(IDS)
    B, T = ids.shape
    with torch.no_grad():
        h = model.model(ids).last_hidden_state                       # post-norm, [B, T, H]
        main_logits = model.lm_head(h)
        pos = torch.arange(1, T)[None].expand(B, -1)
        hm = mtp.forward_layer(0, h[:, :-1], pos, None, input_ids=ids[:, 1:])
        logits = mtp._project_to_logits(hm)
        emb = mtp.embed_tokens(ids[:, 1:]).clone()
        emb[:, 0] = 0
        hz = mtp.forward_layer(0, h[:, :-1], pos, None, inputs_embeds=emb)
        logits_zero = mtp._project_to_logits(hz)
        head = torch.randn(cfg.vocab_size, cfg.hidden_size) * 0.15
        logits_head = torch.nn.functional.linear(hm, head)
    targets = ids[:, 2:]
    out = {
        "mtp.ids": ids, "mtp.logits": logits, "mtp.logprobs": lp(logits[:, :-1], targets),
        "mtp.logprobs_zero_first": lp(logits_zero[:, :-1], targets), "mtp.head": head,
        "mtp.logprobs_head": lp(logits_head[:, :-1], targets), "main.logprobs": lp(main_logits[:, :-1], ids[:, 1:]),
    }
    save_file({k: v.float().contiguous() for k, v in out.items()}, os.path.join(OUT, "expected.safetensors"),
              metadata={"transformers": transformers.__version__, "torch": torch.__version__})
    print(sorted(os.listdir(OUT)), f"{sum(len(v.flatten()) for v in tensors.values())} parameters")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", nargs="+")
    args = ap.parse_args()
    if args.check:
        sys.exit(0 if all([check(d) for d in args.check]) else 1)
    main()
