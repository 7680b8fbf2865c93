#!/usr/bin/env python3
"""PyTorch side of `glm-train bench train` and `glm-train bench generate` on the bench model.

Bench model: vocab 8192, hidden 512, 8 layers, 8 heads, 2 KV heads, head_dim 64, intermediate 1536,
partial rotary 0.5, untied embeddings; transformers GlmForCausalLM (eager attention), CPU, all cores.

  bench_model.py train [--lora] [--steps N]   full-parameter (or PEFT LoRA r=16 on all linear layers) AdamW
                                               steps on batch 8 x 256; tokens/s and peak RSS
  bench_model.py train --dpo [--steps N]      a LoRA DPO step through TRL's DPOTrainer (see dpo_train): 4 pairs
                                               = batch 8 x 256; tokens/s of chosen+rejected tokens and peak RSS
  bench_model.py generate [--new-tokens N]    HF generate, greedy: prefill tokens/s and decode tokens/s at
                                               batch 1 and 8 (prompt 128 tokens)
The last output line is one JSON object; glm-train prints the ratios.
"""
import argparse
import json
import os
import resource
import time

import torch
from transformers import GlmConfig, GlmForCausalLM

B, T = 8, 256


def bench_config():
    return GlmConfig(vocab_size=8192, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                     num_attention_heads=8, num_key_value_heads=2, head_dim=64, max_position_embeddings=4096,
                     rms_norm_eps=1e-5, attention_bias=True, tie_word_embeddings=False, pad_token_id=0,
                     eos_token_id=[1], rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                        "partial_rotary_factor": 0.5},
                     attn_implementation="eager")


def current_rss_bytes():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def peak_rss_bytes():
    """This process's own peak RSS. VmHWM, not ru_maxrss: glm-train starts this script with posix_spawn (vfork),
    and exec carries the parent's high-water mark into the child's ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def train(args):
    torch.manual_seed(0)
    model = GlmForCausalLM(bench_config())
    if args.lora:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                 "gate_up_proj", "down_proj"]))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01)
    ids = torch.randint(2, 8192, (B, T))

    def step():
        # --bf16: PyTorch's CPU autocast (what transformers' Trainer does with bf16=True on a CPU).
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    for _ in range(2):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    dt = sum(times) / len(times)
    # The fastest step too: a shared machine's noise only ever slows a step, so the fastest of each side is the
    # steadier comparison.
    return {"tokens_per_s": B * T / dt, "step_s": dt, "fastest_tokens_per_s": B * T / min(times),
            "peak_rss_bytes": peak_rss_bytes()}


P, PROMPT = 4, 64  # DPO: 4 pairs (chosen rows then rejected rows = batch 8 x 256), prompts of 64 tokens


def dpo_tokenizer():
    """A word-level tokenizer over the bench model's 8192 ids ("t0" ... "t8191"; pad t0, eos t1), only so that
    DPOTrainer can be constructed; the timed batch is built from token ids by TRL's own collator."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(8192)}, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="t0", eos_token="t1", unk_token="t0")


def dpo_train(args):
    """TRL 1.16's DPOTrainer (loss_type sigmoid, beta 0.1, no precomputed reference) on the bench model with a new
    PEFT LoRA adapter (r 16, alpha 32, all linear layers), so the reference policy is the base with the adapter
    disabled (trl.trainer.utils.use_adapter(model, None) = disable_adapter(), under no_grad), as TRL does it. f32
    (bf16=False), no gradient checkpointing (DPOConfig defaults both on), no clipping, AdamW lr 1e-4, weight decay
    0.01. A step is HF Trainer's training_step (DPOTrainer.compute_loss: one concatenated forward of chosen and
    rejected with TRL's fused LM head, the reference forward, the sigmoid loss and TRL's metrics; backward) then
    the trainer's optimizer step, on one batch collated by TRL's DataCollatorForPreference from random token ids."""
    import logging
    import sys
    import warnings
    try:
        import datasets
        import peft
        import transformers
        import trl
        from datasets import Dataset
        from peft import LoraConfig
        from trl import DPOConfig, DPOTrainer
        from trl.trainer.dpo_trainer import DataCollatorForPreference
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        sys.exit(f"bench_model.py train --dpo needs trl and peft ({e}): .venv/bin/pip install trl peft")
    import_rss = current_rss_bytes()
    hf_logging.set_verbosity_error()
    logging.getLogger("datasets").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    datasets.disable_progress_bars()
    torch.manual_seed(0)
    model = GlmForCausalLM(bench_config())
    tok = dpo_tokenizer()
    g = torch.Generator().manual_seed(1)
    rand = lambda n: torch.randint(2, 8192, (n,), generator=g).tolist()
    examples = []
    for _ in range(P):
        examples.append({"prompt_ids": rand(PROMPT), "chosen_ids": rand(T - PROMPT), "rejected_ids": rand(T - PROMPT)})
    text = lambda ids: " ".join(f"t{i}" for i in ids)
    dataset = Dataset.from_list([{"prompt": text(e["prompt_ids"]), "chosen": " " + text(e["chosen_ids"][:-1]),
                                  "rejected": " " + text(e["rejected_ids"][:-1])} for e in examples])
    config = DPOConfig(output_dir=os.path.join(os.environ.get("TMPDIR", "/tmp"), "glm-bench-dpo"), report_to=[],
                       use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False, loss_type=["sigmoid"],
                       beta=0.1, precompute_ref_log_probs=False, per_device_train_batch_size=P, max_length=None,
                       learning_rate=1e-4, weight_decay=0.01, max_grad_norm=0.0, lr_scheduler_type="constant",
                       warmup_steps=0, max_steps=args.steps + 2, save_strategy="no", logging_strategy="no",
                       dataset_num_proc=None, seed=0, disable_tqdm=True)
    peft_config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj"])
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tok, peft_config=peft_config)
    assert trainer.ref_model is None and "ref" not in trainer.model.peft_config  # reference = adapter disabled
    trainer.create_optimizer_and_scheduler(num_training_steps=args.steps + 2)
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which this drives step by step
    batch = DataCollatorForPreference(pad_token_id=tok.pad_token_id)(examples)
    assert tuple(batch["input_ids"].shape) == (2 * P, T) and int(batch["completion_mask"].sum()) == 2 * P * (T - PROMPT)
    peft_model, opt = trainer.model, trainer.optimizer
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)

    def step():
        loss = trainer.training_step(peft_model, batch)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss)
    first = step()
    step()
    times, last = [], None
    cpu0 = time.process_time()
    for _ in range(args.steps):
        t0 = time.perf_counter()
        last = step()
        times.append(time.perf_counter() - t0)
    cpu = (time.process_time() - cpu0) / args.steps
    dt = sum(times) / len(times)
    versions = (f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
                f"trl {trl.__version__}, {torch.get_num_threads()} threads")
    return {"tokens_per_s": 2 * P * T / dt, "step_s": dt, "fastest_tokens_per_s": 2 * P * T / min(times),
            "step_times": times, "cpu_s_per_step": cpu, "peak_rss_bytes": peak_rss_bytes(), "import_rss_bytes": import_rss,
            "first_loss": first, "last_loss": last, "trainable": trainable, "versions": versions}


def generate(args):
    torch.manual_seed(0)
    model = GlmForCausalLM(bench_config()).eval()
    res = {}
    for batch in (1, 8):
        ids = torch.randint(2, 8192, (batch, 128))
        mask = torch.ones_like(ids)
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)  # warm-up
            t0 = time.perf_counter()
            model(input_ids=ids, attention_mask=mask, use_cache=True)
            prefill = time.perf_counter() - t0
            t0 = time.perf_counter()
            model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args.new_tokens,
                           min_new_tokens=args.new_tokens, do_sample=False, pad_token_id=0)
            total = time.perf_counter() - t0
        decode = max(total - prefill, 1e-9)
        res[f"prefill_tokens_per_s/b{batch}"] = batch * 128 / prefill
        res[f"decode_tokens_per_s/b{batch}"] = batch * args.new_tokens / decode
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train", "generate"])
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--dpo", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="train under torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--new-tokens", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if args.mode == "generate":
        res = generate(args)
    else:
        res = dpo_train(args) if args.dpo else train(args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
