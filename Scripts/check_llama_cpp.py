#!/usr/bin/env python3
"""Checks with llama.cpp's own runtime (llama-cpp-python) that what GLMTrain exports serves correctly, and
measures llama.cpp's prefill and greedy-decode speed on the bench model.

Correctness (default mode):
  base     Checkpoints/glm-tiny (GlmForCausalLM, bf16) -> convert_hf_to_gguf.py --outtype f32 -> llama.cpp
           log-probabilities of a few token-id sequences vs `glm-train score --model BASE`
  lora     the same base GGUF + `glm-train export --format gguf-lora` loaded with Llama(lora_path=...)
           vs `glm-train score --model BASE --adapter RUN/adapter`
  merged   `glm-train export --format merged` -> convert_hf_to_gguf.py --outtype f32 -> llama.cpp
           vs `glm-train score --model RUN/merged`
  Each prints PASS/FAIL with the largest absolute log-probability difference (tolerance --tolerance, 1e-3).
  llama.cpp runs with an f32 KV cache and no flash attention, so that the comparison measures the export,
  not the f16 cache; the default f16 cache is measured too and reported (information only).
  If --run has no checkpoint, it is made first: `glm-train run Recipes/quickstart.yaml --set training.steps=20`.

Speed (--bench): the bench model of `glm-train bench generate` (Scripts/bench_model.py's config, saved with
  save_pretrained, random weights as seeded there) converted to f32 and bf16 GGUF; llama.cpp at batch 1,
  n_threads 2: prefill of a 128-token prompt and greedy decode of 64 new tokens (63 decode steps after the
  prefill, as glm-train counts them), best of --repeats. Unless --no-glm-train, `glm-train bench generate
  --no-compare` runs in the same invocation so that the figures share the machine's load: --rounds N alternates
  the two N times and prints each round's glm-train / llama.cpp ratio and their median.

The converter: --llama-cpp DIR is a llama.cpp source tree (convert_hf_to_gguf.py, conversion/, gguf-py/), e.g.
vendor/llama.cpp of the llama-cpp-python sdist (`pip download --no-deps --no-binary llama-cpp-python llama-cpp-python`).
The bundled tiny tokenizer's pre-tokenizer hash is not in llama.cpp's list (convert_hf_to_gguf.py stops with
"BPE pre-tokenizer was not recognized": the hash covers the vocabulary, which is the tiny model's own); the tiny
tokenizer uses GLM-4's pre-tokenizer (Scripts/make_tiny_tokenizer.py), so this script then writes
`tokenizer.ggml.pre = chatglm-bpe` (GLM-4's) and says so; a tokenizer check compares llama.cpp's text -> ids with
glm-train's.

Run:  .venv/bin/python Scripts/check_llama_cpp.py [--llama-cpp DIR] [--model DIR] [--run DIR]
      .venv/bin/python Scripts/check_llama_cpp.py --bench [--rounds N] [--repeats N] [--llama-cpp DIR]
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

CONVERT_WRAPPER = r"""
import sys
llama_cpp_dir = sys.argv[1]
sys.path.insert(0, llama_cpp_dir)
import convert_hf_to_gguf as c
from conversion import base
orig = base.TextModel.get_vocab_base_pre
def get_vocab_base_pre(self, tokenizer):
    try:
        return orig(self, tokenizer)
    except NotImplementedError:
        print("check_llama_cpp: pre-tokenizer hash not in llama.cpp's list; writing tokenizer.ggml.pre=chatglm-bpe",
              file=sys.stderr)
        return "chatglm-bpe"
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
sys.argv = ["convert_hf_to_gguf.py"] + sys.argv[2:]
c.main()
"""


def log(msg):
    print(msg, flush=True)


def find_llama_cpp(arg):
    cands = [arg, os.environ.get("LLAMA_CPP_DIR")]
    cands += sorted(glob.glob(str(Path.home() / ".cache/glmtrain/llama_cpp_python-*/vendor/llama.cpp")))
    for c in cands:
        if c and (Path(c) / "convert_hf_to_gguf.py").exists():
            return Path(c)
    # The llama.cpp tree that the installed llama-cpp-python was built from: its sdist, by pip.
    import llama_cpp
    ver = llama_cpp.__version__
    dest = Path.home() / ".cache/glmtrain"
    dest.mkdir(parents=True, exist_ok=True)
    log(f"fetching the llama-cpp-python {ver} sdist for convert_hf_to_gguf.py (pip download) into {dest}")
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python",
                    "--progress-bar", "off", f"llama-cpp-python=={ver}", "-d", str(dest)], check=True,
                   stdin=subprocess.DEVNULL)
    sdist = dest / f"llama_cpp_python-{ver}.tar.gz"
    with tarfile.open(sdist) as tf:
        tf.extractall(dest)
    tree = dest / f"llama_cpp_python-{ver}" / "vendor" / "llama.cpp"
    if not (tree / "convert_hf_to_gguf.py").exists():
        sys.exit(f"no convert_hf_to_gguf.py in {tree}")
    return tree


def convert(llama_cpp_dir, model_dir, out, outtype):
    cmd = [sys.executable, "-c", CONVERT_WRAPPER, str(llama_cpp_dir), str(model_dir),
           "--outtype", outtype, "--outfile", str(out)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        sys.exit(f"convert_hf_to_gguf.py failed on {model_dir}")
    for line in p.stderr.splitlines():
        if line.startswith("check_llama_cpp:"):
            log("  " + line)
    log(f"  converted {model_dir} -> {out} ({outtype}, {out.stat().st_size / 1e6:.1f} MB)")


def glm_score(binary, model, tokens_list, work, adapter=None):
    inp = work / "score-in.jsonl"
    inp.write_text("".join(json.dumps({"tokens": t}) + "\n" for t in tokens_list))
    cmd = [str(binary), "score", "--model", str(model), "--input", str(inp)]
    if adapter:
        cmd += ["--adapter", str(adapter)]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    for r, t in zip(rows, tokens_list):
        assert r["tokens"] == t, "glm-train score changed the tokens"
    return [np.array(r["logprobs"], dtype=np.float64) for r in rows]


def llama_logprobs(gguf, tokens_list, n_ctx, lora=None, f32_cache=True):
    import llama_cpp
    kw = dict(n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, logits_all=True, n_threads=2, n_threads_batch=2,
              verbose=False, flash_attn=False)
    if f32_cache:
        kw.update(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    if lora:
        kw["lora_path"] = str(lora)
    llm = llama_cpp.Llama(model_path=str(gguf), **kw)
    out = []
    for toks in tokens_list:
        llm.reset()
        llm.eval(toks)
        logits = np.array(llm.scores[: len(toks)], dtype=np.float64)
        m = logits.max(axis=1, keepdims=True)
        lsm = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
        out.append(np.array([lsm[i, toks[i + 1]] for i in range(len(toks) - 1)]))
    llm.close() if hasattr(llm, "close") else None
    del llm
    return out


def max_diff(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def test_sequences(binary, model, work):
    rng = np.random.default_rng(0)
    cfg = json.loads((Path(model) / "config.json").read_text())
    v = cfg["vocab_size"]
    seqs = [[int(x) for x in rng.integers(0, v, n)] for n in (2, 9, 33, 100)]
    # One in-distribution sequence: a quickstart chat tokenized by glm-train (where the adapter matters).
    text = "<|user|>\nWhat do we charge for the printer?<|assistant|>\n259 euros"
    inp = work / "tok-in.jsonl"
    inp.write_text(json.dumps({"text": text}) + "\n")
    p = subprocess.run([str(binary), "score", "--model", str(model), "--input", str(inp)],
                       capture_output=True, text=True, cwd=ROOT, check=True)
    seqs.append(json.loads(p.stdout.splitlines()[0])["tokens"])
    return seqs


def ensure_run(binary, run, base):
    run = Path(run)
    ckpts = list((run / "checkpoints").glob("*")) if (run / "checkpoints").exists() else []
    if not ckpts:
        log(f"making {run}: glm-train run Recipes/quickstart.yaml --set training.steps=20")
        subprocess.run([str(binary), "run", "Recipes/quickstart.yaml", "--set", "training.steps=20",
                        "--set", f"output_dir={run}", "--set", f"model.path={base}", "--overwrite"],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    for fmt, out in (("gguf-lora", run / "adapter.gguf"), ("merged", run / "merged"), ("peft", run / "adapter")):
        if not out.exists():
            log(f"  glm-train export --run {run} --format {fmt} --output {out}")
            subprocess.run([str(binary), "export", "--run", str(run), "--format", fmt, "--output", str(out),
                            "--model", str(base)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return run


def correctness(args, llama_cpp_dir, binary, work):
    import llama_cpp
    log(f"llama-cpp-python {llama_cpp.__version__}; converter {llama_cpp_dir}/convert_hf_to_gguf.py")
    base = Path(args.model)
    cfg = json.loads((base / "config.json").read_text())
    arch = cfg["architectures"][0]
    log(f"base {base}: {arch}, model_type {cfg.get('model_type')}, {cfg.get('dtype', cfg.get('torch_dtype'))}")
    seqs = test_sequences(binary, base, work)
    log(f"sequences: {len(seqs)}, lengths {[len(s) for s in seqs]}")
    n_ctx = 256
    results = []

    def report(name, ours, theirs, extra=""):
        d = max_diff(ours, theirs)
        ok = d <= args.tolerance
        results.append(ok)
        log(f"{'PASS' if ok else 'FAIL'} {name}: max |Δ log-prob| = {d:.2e} (tolerance {args.tolerance:g}){extra}")
        return d

    base_gguf = work / "base-f32.gguf"
    convert(llama_cpp_dir, base, base_gguf, "f32")
    ours_base = glm_score(binary, base, seqs, work)
    lc_base = llama_logprobs(base_gguf, seqs, n_ctx)
    lc_base16 = llama_logprobs(base_gguf, seqs, n_ctx, f32_cache=False)
    report("base (f32 GGUF) vs glm-train score", ours_base, lc_base,
           f"; with llama.cpp's default f16 KV cache {max_diff(ours_base, lc_base16):.2e} (information)")

    tokenizer_check(binary, base, base_gguf, work, results)

    if not args.skip_lora:
        run = ensure_run(binary, args.run, base)
        ours_lora = glm_score(binary, base, seqs, work, adapter=run / "adapter")
        lc_lora = llama_logprobs(base_gguf, seqs, n_ctx, lora=run / "adapter.gguf")
        log(f"  adapter changes glm-train's log-probs by up to {max_diff(ours_lora, ours_base):.3f}, "
            f"llama.cpp's by up to {max_diff(lc_lora, lc_base):.3f}")
        report(f"LoRA ({run}/adapter.gguf on the base GGUF) vs glm-train score --adapter", ours_lora, lc_lora)
        merged_gguf = work / "merged-f32.gguf"
        convert(llama_cpp_dir, run / "merged", merged_gguf, "f32")
        ours_merged = glm_score(binary, run / "merged", seqs, work)
        lc_merged = llama_logprobs(merged_gguf, seqs, n_ctx)
        report(f"merged ({run}/merged -> f32 GGUF) vs glm-train score --model merged", ours_merged, lc_merged,
               f"; vs the unmerged adapter {max_diff(lc_merged, ours_lora):.2e} (information: merged weights "
               f"are cast to the base dtype, {cfg.get('dtype', cfg.get('torch_dtype'))})")
    if not args.skip_glm4:
        glm4_checks(args, llama_cpp_dir, binary, work, base, seqs, n_ctx, report)
    log(f"{sum(results)}/{len(results)} checks passed")
    return all(results)


def tokenizer_check(binary, base, gguf, work, results):
    """Text -> ids by llama.cpp (special tokens parsed, no BOS) vs glm-train's tokenizer, whose plain encoding
    starts with [gMASK]<sop> (GLM-4's post-processor; llama.cpp's GLM chat templates write it themselves)."""
    import llama_cpp
    texts = ["<|user|>\nWhat do we charge for the printer?<|assistant|>\n259 euros",
             "Hello, world! It's 12345 o'clock.\n\n  Indented   spaces\tand tabs \u2014 na\u00efve caf\u00e9 \u4f60\u597d",
             "The filing cabinet I got is broken and I want to send it back."]
    inp = work / "tok-in.jsonl"
    inp.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    p = subprocess.run([str(binary), "score", "--model", str(base), "--input", str(inp)], capture_output=True,
                       text=True, cwd=ROOT, check=True)
    ours = [json.loads(l)["tokens"] for l in p.stdout.splitlines()]
    llm = llama_cpp.Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    same = [o[2:] == llm.tokenize(t.encode(), add_bos=False, special=True) for t, o in zip(texts, ours)]
    ok = all(same) and all(o[:2] == ours[0][:2] for o in ours)
    results.append(ok)
    log(f"{'PASS' if ok else 'FAIL'} tokenizer: llama.cpp's ids equal glm-train's (after its [gMASK]<sop>) on "
        f"{sum(same)}/{len(texts)} texts ({sum(len(o) - 2 for o in ours)} tokens)")


def glm4_checks(args, llama_cpp_dir, binary, work, base, seqs, n_ctx, report):
    """The Glm4ForCausalLM path (llama.cpp arch glm4): a small random Glm4ForCausalLM made by transformers with
    the bundled tokenizer, an rsLoRA adapter made by peft on all linear layers (B random, so it changes the
    output), exported by glm-train as gguf-lora and merged."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Glm4Config, Glm4ForCausalLM
    d, pd = work / "glm4-model", work / "glm4-peft"
    if not (d / "model.safetensors").exists() or not (pd / "adapter_model.safetensors").exists():
        torch.manual_seed(0)
        cfg = Glm4Config(vocab_size=2048, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=32, attention_bias=True,
                         rms_norm_eps=1e-5, max_position_embeddings=1024, tie_word_embeddings=False,
                         pad_token_id=2034, eos_token_id=[2034],
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                          "partial_rotary_factor": 0.5})
        model = Glm4ForCausalLM(cfg)
        with torch.no_grad():  # larger weights than the 0.02 init, so that log-probs are far from uniform
            for n, p in model.named_parameters():
                if p.dim() == 2:
                    p.normal_(0, 0.08)
        model.save_pretrained(d)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(base / f, d / f)
        pm = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, use_rslora=True, target_modules="all-linear"))
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.05)
        pm.save_pretrained(pd)
        log(f"made {d} (Glm4ForCausalLM, random) and {pd} (peft rsLoRA r 8, alpha 16, all-linear)")
    ad_gguf, merged = work / "glm4-adapter.gguf", work / "glm4-merged"
    for fmt, out in (("gguf-lora", ad_gguf), ("merged", merged)):
        subprocess.run([str(binary), "export", "--adapter", str(pd), "--model", str(d), "--format", fmt,
                        "--output", str(out)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    g = work / "glm4-f32.gguf"
    convert(llama_cpp_dir, d, g, "f32")
    ours = glm_score(binary, d, seqs, work)
    report("Glm4ForCausalLM base (f32 GGUF, arch glm4) vs glm-train score", ours, llama_logprobs(g, seqs, n_ctx))
    ours_lora = glm_score(binary, d, seqs, work, adapter=pd)
    lc_lora = llama_logprobs(g, seqs, n_ctx, lora=ad_gguf)
    log(f"  adapter changes glm-train's log-probs by up to {max_diff(ours_lora, ours):.3f}")
    # The adapter's meaning (rsLoRA scale) from peft itself, so that glm-train is not only compared with itself.
    from peft import PeftModel
    pm = PeftModel.from_pretrained(Glm4ForCausalLM.from_pretrained(d, attn_implementation="eager"), pd).eval()
    ref = []
    with torch.no_grad():
        for toks in seqs:
            lp = torch.log_softmax(pm(torch.tensor([toks])).logits[0].double(), dim=-1)
            ref.append(np.array([lp[i, toks[i + 1]].item() for i in range(len(toks) - 1)]))
    report("Glm4ForCausalLM rsLoRA: peft (PyTorch) vs glm-train score --adapter", ref, ours_lora)
    report("Glm4ForCausalLM rsLoRA (glm-train gguf-lora) vs glm-train score --adapter (peft dir)", ours_lora, lc_lora)
    mg = work / "glm4-merged-f32.gguf"
    convert(llama_cpp_dir, merged, mg, "f32")
    report("Glm4ForCausalLM merged (-> f32 GGUF) vs glm-train score --adapter", ours_lora,
           llama_logprobs(mg, seqs, n_ctx))


def bench(args, llama_cpp_dir, binary, work):
    import llama_cpp
    import torch
    sys.path.insert(0, str(ROOT / "Scripts"))
    from bench_model import bench_config
    from transformers import GlmForCausalLM
    bm = Path(args.bench_model)
    if not (bm / "model.safetensors").exists():
        torch.manual_seed(0)
        GlmForCausalLM(bench_config()).save_pretrained(bm)
        # A tokenizer for the converter (ids above the tiny tokenizer's 2048 become [PAD] entries).
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(Path(args.model) / f, bm / f)
        log(f"saved the bench model to {bm}")
    ggufs = {}
    for t in ("f32", "bf16"):
        ggufs[t] = work / f"bench-{t}.gguf"
        if not ggufs[t].exists():
            convert(llama_cpp_dir, bm, ggufs[t], t)
    def ps_top(when):
        # top's second sample: CPU use over the last second, not since each process started.
        out = subprocess.run(["top", "-b", "-n", "2", "-d", "1", "-w", "200"], capture_output=True,
                             text=True).stdout
        last = out[out.rfind("top - "):].splitlines()
        hdr = next(i for i, l in enumerate(last) if l.strip().startswith("PID"))
        la = os.getloadavg()
        log(f"processes {when} (top, %CPU over 1 s; load average {la[0]:.2f} {la[1]:.2f}):\n"
            + "\n".join("  " + l.rstrip() for l in last[hdr:hdr + 6]))

    ps_top("before")
    rng = np.random.default_rng(2)
    prompt = [int(x) for x in rng.integers(2, 8192, 128)]
    new = args.new_tokens

    def llama_round():
        res = {}
        for t, g in ggufs.items():
            llm = llama_cpp.Llama(model_path=str(g), n_ctx=512, n_batch=512, n_threads=2, n_threads_batch=2,
                                  verbose=False)
            ctx = llm._ctx.ctx
            nv = llm.n_vocab()

            def last_argmax():
                p = llama_cpp.llama_get_logits_ith(ctx, -1)
                return int(np.argmax(np.ctypeslib.as_array(p, shape=(nv,))))

            def run(n_new):
                llm.reset()
                t0 = time.perf_counter()
                llm.eval(prompt)
                tok = last_argmax()
                t1 = time.perf_counter()
                for _ in range(n_new - 1):
                    llm.eval([tok])
                    tok = last_argmax()
                t2 = time.perf_counter()
                return t1 - t0, t2 - t1

            run(2)  # warm-up
            best_p, best_d = float("inf"), float("inf")
            for _ in range(args.repeats):
                p, d = run(new)
                best_p, best_d = min(best_p, p), min(best_d, d)
            res[t] = (128 / best_p, (new - 1) / best_d)
            del llm
        return res

    def glm_round():
        p = subprocess.run([str(binary), "bench", "generate", "--no-compare", "--repeats", str(args.repeats)],
                           capture_output=True, text=True, cwd=ROOT)
        res = {}
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) >= 3 and f[0].endswith("tokens_per_s/b1") and f[1] in ("f32", "bf16"):
                kind = "prefill" if f[0].startswith("prefill") else "decode"
                res.setdefault(f[1], {})[kind] = float(f[2])
        if set(res) != {"f32", "bf16"}:
            sys.exit(f"error: glm-train bench generate printed no batch-1 figures:\n{p.stdout}\n{p.stderr}")
        return res

    # Rounds alternate llama.cpp and glm-train so that both see the same stretch of the host's load; each round's
    # ratio compares the two figures next to each other, and the median of the rounds is the result.
    log(f"llama.cpp (llama-cpp-python {llama_cpp.__version__}) vs glm-train bench generate --no-compare, bench "
        f"model, batch 1, prompt 128, {new} new tokens (greedy), 2 threads each; llama.cpp: f16 KV cache, no flash "
        f"attention; best of {args.repeats} per figure, {args.rounds} alternating round(s)")
    ratios = {(t, k): [] for t in ("f32", "bf16") for k in ("prefill", "decode")}
    for r in range(args.rounds):
        lc = llama_round()
        gt = glm_round() if not args.no_glm_train else None
        for t, (p, d) in lc.items():
            line = f"  round {r + 1} {t:4s}: llama.cpp prefill {p:8.1f} decode {d:7.1f} tok/s"
            if gt:
                gp, gd = gt[t]["prefill"], gt[t]["decode"]
                ratios[(t, "prefill")].append(gp / p)
                ratios[(t, "decode")].append(gd / d)
                line += f" | glm-train prefill {gp:8.1f} decode {gd:7.1f} tok/s | ratio {gp / p:.2f} / {gd / d:.2f}"
            log(line)
    if not args.no_glm_train:
        for (t, k), v in ratios.items():
            log(f"  {k:7s} {t:4s} glm-train / llama.cpp: median {float(np.median(v)):.2f} "
                f"(rounds: {' '.join(f'{x:.2f}' for x in v)})")
    ps_top("after")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llama-cpp", help="llama.cpp source tree (default: $LLAMA_CPP_DIR, else the sdist)")
    ap.add_argument("--model", default=str(ROOT / "Checkpoints/glm-tiny"))
    ap.add_argument("--run", default="/tmp/qs-llama", help="a glm-train run directory (made if missing)")
    ap.add_argument("--binary", default=str(ROOT / ".build/release/glm-train"))
    ap.add_argument("--work", default="/tmp/check-llama-cpp")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    ap.add_argument("--skip-lora", action="store_true")
    ap.add_argument("--skip-glm4", action="store_true", help="skip the Glm4ForCausalLM (arch glm4) checks")
    ap.add_argument("--bench", action="store_true", help="measure decode/prefill speed instead")
    ap.add_argument("--bench-model", default="/tmp/bench-model")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1, help="--bench: alternating llama.cpp / glm-train rounds")
    ap.add_argument("--no-glm-train", action="store_true")
    args = ap.parse_args()
    if args.rounds < 1 or args.repeats < 1:
        ap.error("--rounds and --repeats: expected at least 1")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    llama_cpp_dir = find_llama_cpp(args.llama_cpp)
    binary = Path(args.binary)
    if args.bench:
        bench(args, llama_cpp_dir, binary, work)
        return
    sys.exit(0 if correctness(args, llama_cpp_dir, binary, work) else 1)


if __name__ == "__main__":
    main()
