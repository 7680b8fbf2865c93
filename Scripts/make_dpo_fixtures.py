#!/usr/bin/env python3
"""Reference values of every preference loss for GLMTrain's DPO objective
(Tests/GLMTrainingTests/Fixtures/dpo/).

Model: the committed tiny GlmForCausalLM of Tests/GLMModelTests/Fixtures/glm (vocab 256, hidden 64, 2 layers),
run in float64 from its float32 weights. A PEFT LoRA adapter (r 4, alpha 8, all six projections) gets seeded
random A and B (B nonzero, so the policy differs from the reference) rounded to float32 and saved with
`save_pretrained` (adapter/). The batch: 3 pairs with prompts of 4-6 tokens and responses of 1-5 tokens,
chosen rows first, right-padded with the pad id, loss on the response tokens only (batch.ids, batch.completion_mask).
The reference policy is the base model with the adapter disabled (`disable_adapter()`), as for a new adapter.

Per case (expected.json): the loss, TRL's metrics and d loss / d (every lora_A and lora_B) (grads.safetensors,
`<case>/<PEFT tensor name without base_model.model.>`), computed by TRL 1.16's own code wherever TRL has it:
- sigmoid, ipo, hinge, robust (label_smoothing 0.1), sigmoid_rpo (sigmoid + rpo_alpha 0.5 = TRL's loss_type
  ["sigmoid", "sft"] with loss_weights [1, 0.5]): DPOTrainer._compute_loss on a stand-in trainer object, given the
  PEFT model's per-token log-probabilities (what TRL's fused LM head returns) and precomputed reference log-probs;
- simpo (beta 2.0, gamma 0.5, label_smoothing 0.1): CPOTrainer.cpo_loss on length-averaged log-probs
  (CPOTrainer's average_log_prob for simpo), cpo_alpha 0;
- orpo (lambda = ORPOConfig.beta 0.2): ORPOTrainer.odds_ratio_loss on length-averaged log-probs; loss =
  chosen NLL (mean cross-entropy over the chosen response tokens) − mean(odds-ratio term).
Each TRL value is also recomputed from the formulas written out here (independent of TRL) and the two must agree
to 1e-12 (ORPO: 1e-6, as TRL's ORPOTrainer computes in float32; the fixture keeps the float64 formula's loss and
gradient for it), so the fixture also checks that the formulas in GLMTrain's PreferenceLoss documentation are TRL's.

Run: .venv/bin/python Scripts/make_dpo_fixtures.py   (needs `pip install trl`, 1.16)
"""
import json
import os
import types
from collections import defaultdict

import torch
import torch.nn.functional as F
import trl
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM
from trl.experimental.cpo import CPOTrainer
from trl.experimental.orpo import ORPOTrainer
from trl.trainer.dpo_trainer import DPOTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = os.path.join(ROOT, "Tests", "GLMModelTests", "Fixtures", "glm")
OUT = os.path.join(ROOT, "Tests", "GLMTrainingTests", "Fixtures", "dpo")
PAD = 0
# (prompt, chosen, rejected) token ids
PAIRS = [([5, 17, 33, 200], [7, 9, 100], [8, 1]),
         ([11, 250, 3, 3, 99], [42], [17, 8, 190, 64, 2]),
         ([61, 4, 140, 23, 77, 9], [12, 13, 14, 15], [12, 13, 99])]

CASES = {
    "sigmoid": dict(kind="dpo", loss_types=["sigmoid"], weights=[1.0], beta=0.1, label_smoothing=0.0),
    "ipo": dict(kind="dpo", loss_types=["ipo"], weights=[1.0], beta=0.1, label_smoothing=0.0),
    "hinge": dict(kind="dpo", loss_types=["hinge"], weights=[1.0], beta=0.1, label_smoothing=0.0),
    "robust": dict(kind="dpo", loss_types=["robust"], weights=[1.0], beta=0.1, label_smoothing=0.1),
    "sigmoid_rpo": dict(kind="dpo", loss_types=["sigmoid", "sft"], weights=[1.0, 0.5], beta=0.1, label_smoothing=0.0,
                        rpo_alpha=0.5),
    "simpo": dict(kind="simpo", beta=2.0, gamma=0.5, label_smoothing=0.1),
    "orpo": dict(kind="orpo", beta=0.1, lam=0.2),
}


def batch():
    rows = [p + c for p, c, _ in PAIRS] + [p + r for p, _, r in PAIRS]
    masks = [[0] * len(p) + [1] * len(c) for p, c, _ in PAIRS] + [[0] * len(p) + [1] * len(r) for p, _, r in PAIRS]
    T = max(map(len, rows))
    ids = torch.tensor([r + [PAD] * (T - len(r)) for r in rows])
    mask = torch.tensor([m + [0] * (T - len(m)) for m in masks])
    attn = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
    return ids, mask, attn


def per_token_logps(model, ids, mask, attn):
    """log p of each next token (shifted), 0 where the target is not a response token: [2P, T-1]."""
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
    lp = torch.gather(logits.log_softmax(-1), 2, ids[:, 1:, None])[..., 0]
    return lp * mask[:, 1:]


class Outputs:
    """What TRL's fused LM head returns (the fields DPOTrainer._compute_loss reads)."""
    def __init__(self, log_probs):
        self.log_probs = log_probs
        zeros = torch.zeros_like(log_probs.detach())
        self.entropy, self.mean_logits, self.is_top1 = zeros, zeros, zeros.bool()


def trl_dpo(case, policy_lp, ref_chosen, ref_rejected, ids, mask, attn):
    acc = types.SimpleNamespace(device=torch.device("cpu"), gather_for_metrics=lambda x: x, gather=lambda x: x,
                                unwrap_model=lambda m: m)
    stub = types.SimpleNamespace(
        model=types.SimpleNamespace(training=True), accelerator=acc, aux_loss_enabled=False, ld_alpha=None,
        precompute_ref_logps=True, f_divergence_type="reverse_kl", loss_types=case["loss_types"],
        loss_weights=case["weights"], beta=case["beta"], label_smoothing=case["label_smoothing"], use_weighting=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0, _tp_size=1,
        args=types.SimpleNamespace(), router_aux_loss_coef=0.0)
    inputs = {"input_ids": ids, "attention_mask": attn, "completion_mask": mask,
              "ref_chosen_logps": ref_chosen, "ref_rejected_logps": ref_rejected}
    loss = DPOTrainer._compute_loss(stub, lambda **kw: Outputs(policy_lp), inputs, False)
    m = stub._metrics["train"]
    metrics = {k: m[k][-1] for k in ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                                     "logps/chosen", "logps/rejected"]}
    return loss, metrics


def own_formulas(name, case, lp, ref_c, ref_r, mask):
    """The same losses written out from the formulas (GLMTrain's PreferenceLoss documentation)."""
    P = lp.shape[0] // 2
    seq = lp.sum(1)
    n = mask[:, 1:].sum(1).double()
    c, r = seq[:P], seq[P:]
    nll = -c.sum() / n[:P].sum()
    b = case["beta"]
    if case["kind"] == "dpo":
        eps = case["label_smoothing"]
        cr, rr = c - ref_c, r - ref_r
        d = cr - rr
        loss = {"sigmoid": lambda: -F.logsigmoid(b * d),
                "ipo": lambda: (cr / n[:P] - rr / n[P:] - 1 / (2 * b)) ** 2,
                "hinge": lambda: torch.relu(1 - b * d),
                "robust": lambda: (-(1 - eps) * F.logsigmoid(b * d) + eps * F.logsigmoid(-b * d)) / (1 - 2 * eps),
                }[case["loss_types"][0]]().mean()
        return loss + case.get("rpo_alpha", 0) * nll
    ac, ar = c / n[:P], r / n[P:]
    if case["kind"] == "simpo":
        z = b * (ac - ar) - case["gamma"]
        eps = case["label_smoothing"]
        return (-(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)).mean()
    log_odds = (ac - ar) - (torch.log(-torch.expm1(ac)) - torch.log(-torch.expm1(ar)))
    return nll - case["lam"] * F.logsigmoid(log_odds).mean()


def main():
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.float64, attn_implementation="eager")
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"])
    model = get_peft_model(base, config)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_((torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.2).float().double())
    model.eval()
    os.makedirs(OUT, exist_ok=True)
    model.float().save_pretrained(os.path.join(OUT, "adapter"))  # float32 files (the values are float32 already)
    model.double()
    for junk in ["README.md"]:
        path = os.path.join(OUT, "adapter", junk)
        if os.path.exists(path):
            os.remove(path)
    cfg_path = os.path.join(OUT, "adapter", "adapter_config.json")
    cfg = json.load(open(cfg_path))
    cfg["base_model_name_or_path"] = "Tests/GLMModelTests/Fixtures/glm"
    json.dump(cfg, open(cfg_path, "w"), indent=2, sort_keys=True)

    ids, mask, attn = batch()
    P = len(PAIRS)
    with torch.no_grad(), model.disable_adapter():
        ref = per_token_logps(model, ids, mask, attn).sum(1)
    ref_c, ref_r = ref[:P], ref[P:]
    lora = {n.removeprefix("base_model.model."): p for n, p in model.named_parameters() if "lora_" in n}
    # PEFT's names carry the adapter name ("lora_A.default.weight"); GLMTrain's and PEFT's files do not.
    lora = {n.replace(".default", ""): p for n, p in lora.items()}
    expected, grads = {"pairs": PAIRS, "pad": PAD, "trl": trl.__version__, "cases": {}}, {}
    for name, case in CASES.items():
        model.zero_grad()
        lp = per_token_logps(model, ids, mask, attn)
        seq = lp.sum(1)
        n = mask[:, 1:].sum(1).double()
        metrics = {}
        if case["kind"] == "dpo":
            loss, metrics = trl_dpo(case, lp, ref_c, ref_r, ids, mask, attn)
        else:
            avg = seq / n
            c, r = avg[:P], avg[P:]
            nll = -seq[:P].sum() / n[:P].sum()
            acc = types.SimpleNamespace(device=torch.device("cpu"))
            if case["kind"] == "simpo":
                stub = types.SimpleNamespace(alpha=0.0, loss_type="simpo", simpo_gamma=case["gamma"], beta=case["beta"],
                                             label_smoothing=case["label_smoothing"], accelerator=acc)
                losses, cr, rr = CPOTrainer.cpo_loss(stub, c, r)
                loss = losses.mean()
            else:
                stub = types.SimpleNamespace(beta=case["lam"], accelerator=acc)
                losses, cr, rr, ratio, log_odds = ORPOTrainer.odds_ratio_loss(stub, c, r)
                loss = nll - losses.mean()
                metrics.update({"nll_loss": nll.item(), "log_odds_ratio": ratio.item(), "log_odds_chosen": log_odds.item()})
                # The logged rewards are TRL's: its single beta (lambda here) times the length-averaged log-probs.
            metrics.update({"rewards/chosen": cr.mean().item(), "rewards/rejected": rr.mean().item(),
                            "rewards/accuracies": (cr > rr).double().mean().item(),
                            "rewards/margins": (cr - rr).mean().item(),
                            "logps/chosen": c.mean().item(), "logps/rejected": r.mean().item()})
        own = own_formulas(name, case, lp, ref_c, ref_r, mask)
        # TRL's ORPOTrainer casts the log-probabilities to float32; everything else runs in float64.
        tolerance = 1e-6 if case["kind"] == "orpo" else 1e-12
        assert abs(own.item() - loss.item()) <= tolerance * max(1, abs(loss.item())), (name, own.item(), loss.item())
        if case["kind"] == "orpo":
            loss = own  # the float64 value and gradient (TRL's agrees to float32 precision)
        if "rpo_alpha" in case:
            metrics["nll_loss"] = (-seq[:P].sum() / n[:P].sum()).item()
        loss.backward()
        for k, p in lora.items():
            grads[f"{name}/{k}"] = p.grad.detach().float().contiguous()
        expected["cases"][name] = {**{k: v for k, v in case.items() if k not in ("kind", "loss_types", "weights")},
                                   "loss_type": case.get("loss_types", [case["kind"]])[0], "loss": loss.item(),
                                   "metrics": metrics}
        print(f"{name}: loss {loss.item():.10f}")
    save_file(grads, os.path.join(OUT, "grads.safetensors"))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
