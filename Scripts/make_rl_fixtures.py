"""PyTorch transcription of GLMTrain's RL policy losses (Sources/GLMRL/PolicyLoss.swift), for RLPolicyLossTests.

Writes Tests/GLMRLTests/Fixtures/policy_loss.safetensors: for one fixed random batch (B=5 rows, T=7 positions, a
response mask (the last row without response tokens: it adds 0 but counts as a row, as in TRL), log-probs of the current policy, the ratio's denominator, rollout and reference log-probs, per-token
advantages) the loss and d loss / d logp of each configuration below, computed with torch autograd from the
formulas as slime/verl write them:

  token ratio:  r = exp(logp - old);  pg = -w * min(r*A, clamp(r, 1-eps_low, 1+eps_high)*A)     (torch.maximum of the
                negated terms, as slime's compute_policy_loss), w = min(exp(prox - rollout), tis_cap) with TIS
  GSPO:         s_i = exp(mean_t(logp - old)) per sequence, the same clipped surrogate with the sequence advantage
  KL:           k1 = logp - ref, k2 = (logp - ref)^2 / 2, k3 = exp(ref - logp) - (ref - logp) - 1, times kl_coef
  reduction:    token: sum(mask * l) / sum(mask); sequence: mean over all rows of sum(mask * l) / max(sum_row(mask), 1)
                (TRL's `grpo`);
                constant: sum(mask * l) / (B * max_completion_length), TRL's dr_grpo (grpo_trainer.py `loss_type ==
                "dr_grpo"`), with max_completion_length 9 (GLMTrain: rl.max_new_tokens)

Run: .venv/bin/python Scripts/make_rl_fixtures.py   (torch only; deterministic, seed 0)
"""
import os
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
B, T = 5, 7
mask = torch.zeros(B, T)
lengths = [5, 3, 7, 2, 0]
for b, n in enumerate(lengths):
    mask[b, T - n:] = 1
logp = (-torch.rand(B, T) * 3) * mask
old = (logp + 0.3 * torch.randn(B, T)) * mask
rollout = (logp + 0.2 * torch.randn(B, T)) * mask
ref = (logp + 0.25 * torch.randn(B, T)) * mask
seq_adv = torch.tensor([1.2, -0.7, 0.4, -1.5, 0.9])
adv = seq_adv[:, None].expand(B, T) * mask

configs = {
    "grpo_token": dict(eps_low=0.2, eps_high=0.2, seq=False, red="token", kl=0.0, est="k3", tis=False, cap=2.0),
    "dapo_clip_higher": dict(eps_low=0.2, eps_high=0.28, seq=False, red="token", kl=0.0, est="k3", tis=False, cap=2.0),
    "grpo_sequence_k3": dict(eps_low=0.2, eps_high=0.2, seq=False, red="sequence", kl=0.05, est="k3", tis=False, cap=2.0),
    "token_k1_tis": dict(eps_low=0.1, eps_high=0.3, seq=False, red="token", kl=0.1, est="k1", tis=True, cap=1.5),
    "token_k2": dict(eps_low=0.2, eps_high=0.2, seq=False, red="token", kl=0.2, est="k2", tis=False, cap=2.0),
    "gspo": dict(eps_low=3e-4, eps_high=4e-4, seq=True, red="sequence", kl=0.0, est="k3", tis=False, cap=2.0),
    "gspo_wide_tis": dict(eps_low=0.2, eps_high=0.2, seq=True, red="sequence", kl=0.0, est="k3", tis=True, cap=1.2),
    "dr_grpo_constant_k3": dict(eps_low=0.2, eps_high=0.28, seq=False, red="constant", kl=0.05, est="k3", tis=False, cap=2.0),
}
MAX_COMPLETION = 9


def loss_of(c, lp):
    lp64, old64, roll64, ref64, adv64, m = lp.double(), old.double(), rollout.double(), ref.double(), adv.double(), mask.double()
    counts = m.sum(1).clamp(min=1.0)
    rows = (m.sum(1) > 0).double()
    if c["seq"]:
        s = torch.exp(((lp64 - old64) * m).sum(1) / counts)
        a = seq_adv.double()
        w = torch.clamp(torch.exp(((lp64.detach() - roll64) * m).sum(1) / counts), max=c["cap"]) if c["tis"] else torch.ones(B, dtype=torch.float64)
        pg = torch.maximum(-a * s, -a * torch.clamp(s, 1 - c["eps_low"], 1 + c["eps_high"])) * w
        loss = (pg * rows).sum() / B
    else:
        r = torch.exp(lp64 - old64)
        w = torch.clamp(torch.exp(lp64.detach() - roll64), max=c["cap"]) if c["tis"] else torch.ones_like(r)
        pg = torch.maximum(-adv64 * r, -adv64 * torch.clamp(r, 1 - c["eps_low"], 1 + c["eps_high"])) * w
        if c["red"] == "token":
            loss = (pg * m).sum() / m.sum()
        elif c["red"] == "constant":
            loss = (pg * m).sum() / (B * MAX_COMPLETION)
        else:
            loss = ((pg * m).sum(1) / counts).sum() / B
    if c["kl"] > 0:
        d = lp64 - ref64
        k = {"k1": d, "k2": 0.5 * d * d, "k3": torch.exp(-d) + d - 1}[c["est"]]
        if c["red"] == "token":
            loss = loss + c["kl"] * (k * m).sum() / m.sum()
        elif c["red"] == "constant":
            loss = loss + c["kl"] * (k * m).sum() / (B * MAX_COMPLETION)
        else:
            loss = loss + c["kl"] * (((k * m).sum(1) / counts).sum() / B)
    return loss


out = {"mask": mask, "logp": logp, "old": old, "rollout": rollout, "ref": ref, "adv": adv}
for name, c in configs.items():
    lp = logp.clone().requires_grad_(True)
    loss = loss_of(c, lp)
    loss.backward()
    out[f"{name}.loss"] = loss.detach().float().reshape(1)
    out[f"{name}.grad"] = lp.grad.float()

# Group-normalised advantages (GRPO: unbiased std + 1e-6; Dr. GRPO: centred only).
rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.25, 1.0, 0.0], dtype=torch.float64).reshape(3, 4)
out["group.rewards"] = rewards.float().reshape(-1)
out["group.grpo"] = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-6)).float().reshape(-1)
out["group.drgrpo"] = (rewards - rewards.mean(1, keepdim=True)).float().reshape(-1)

path = os.path.join(os.path.dirname(__file__), "..", "Tests", "GLMRLTests", "Fixtures", "policy_loss.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, path)
print("wrote", os.path.normpath(path))
