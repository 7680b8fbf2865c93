#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora Tests/Fuzz/Seeds/<target>/ from the repository's own fixtures (Python stdlib
only). The HDF5 checkpoint seeds come from the Swift target `fuzz-make-seeds` (TrainingCheckpoint.write);
`make fuzz-seeds` runs both. Seeds are kept small: libFuzzer mutates faster on small inputs."""
import json, os, shutil, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEEDS = os.path.join(ROOT, "Tests", "Fuzz", "Seeds")


def out(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(rel):
    with open(os.path.join(ROOT, rel), "rb") as f:
        return f.read()


def lines(rel, n):
    return b"".join(read(rel).splitlines(keepends=True)[:n])


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, raw bytes)] in data order."""
    header, offset = {}, 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def main():
    if os.path.isdir(SEEDS):
        for t in os.listdir(SEEDS):
            if t not in ("checkpoint", "rollout-batch"):  # written by fuzz-make-seeds and by hand (see README)
                shutil.rmtree(os.path.join(SEEDS, t))

    # safetensors: the small PEFT fixtures, plus every dtype, a scalar, an empty tensor and metadata.
    for case in ["glm-qv", "glm4-r8"]:
        out("safetensors", f"{case}-adapter.safetensors", read(f"Tests/GLMIOTests/Fixtures/peft/{case}/adapter_model.safetensors"))
    out("safetensors", "expected.safetensors", read("Tests/GLMIOTests/Fixtures/peft/glm-qv/expected.safetensors"))
    out("safetensors", "dtypes.safetensors", safetensors([
        ("a", "F32", [2, 2], struct.pack("<4f", 1, -2, 0.5, 3e38)),
        ("b", "F16", [3], struct.pack("<3H", 0x3C00, 0x7C00, 0x7E00)),
        ("c", "BF16", [1, 2], struct.pack("<2H", 0x3F80, 0xFF80)),
        ("s", "F32", [], struct.pack("<f", 7)),
        ("z", "F32", [0, 4], b""),
    ], {"format": "pt"}))

    # GGUF: the LoRA adapters the PEFT fixtures convert to.
    for case in ["glm-qv", "glm4-rslora-all-linear"]:
        out("gguf", f"{case}.gguf", read(f"Tests/GLMIOTests/Fixtures/peft/{case}/adapter.gguf"))
    out("gguf", "moe-a-experts-lora.gguf", read("Tests/GLMModelTests/Fixtures/moe-a-experts-lora/adapter.gguf"))

    # tokenizer.json: the bundled tiny tokenizer cut to its 256 byte tokens and the merges among the first tokens
    # (the whole file is 145 KB), with and without a post-processor, old-style string merges, added tokens.
    tok = json.loads(read("Checkpoints/glm-tiny/tokenizer.json"))
    vocab = tok["model"]["vocab"]
    keep = {t: i for t, i in vocab.items() if i < 300}
    merges = []
    for m in tok["model"]["merges"]:
        a, b = m if isinstance(m, list) else m.split(" ")
        if a in keep and b in keep and a + b in keep:
            merges.append(m)
    small = dict(tok)
    small["model"] = dict(tok["model"], vocab=keep, merges=merges)
    small["added_tokens"] = [dict(t, id=300 + i) for i, t in enumerate(tok["added_tokens"])]
    ids = {t["content"]: t["id"] for t in small["added_tokens"]}
    pp = small.get("post_processor")
    if pp:
        def renumber(p):
            if p.get("type") == "TemplateProcessing":
                for name, e in p.get("special_tokens", {}).items():
                    e["ids"] = [ids.get(name, 0)]
            for q in p.get("processors", []) or []:
                renumber(q)
        pp = json.loads(json.dumps(pp))
        renumber(pp)
        small["post_processor"] = pp
    compact = lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":"))
    out("tokenizer", "tiny-300.json", compact(small))
    out("tokenizer", "tiny-300-no-post-processor.json", compact(dict(small, post_processor=None)))
    strings = dict(small, model=dict(small["model"], merges=[" ".join(m) if isinstance(m, list) else m for m in merges]))
    out("tokenizer", "tiny-300-string-merges.json", compact(strings))
    out("tokenizer", "tiny-300-ignore-merges.json", compact(dict(small, model=dict(small["model"], ignore_merges=True))))

    # config.json: every model fixture.
    for d in sorted(os.listdir(os.path.join(ROOT, "Tests/GLMModelTests/Fixtures"))):
        p = f"Tests/GLMModelTests/Fixtures/{d}/config.json"
        if os.path.exists(os.path.join(ROOT, p)):
            out("config", f"{d}.json", read(p))
    out("config", "glm-tiny.json", read("Checkpoints/glm-tiny/config.json"))
    out("config", "glm-tiny-moe.json", read("Checkpoints/glm-tiny-moe/config.json"))
    # The directory's other JSON files, which the config target also reads its input as.
    out("config", "generation-config.json", read("Checkpoints/glm-tiny/generation_config.json"))
    out("config", "tokenizer-config.json", read("Checkpoints/glm-tiny-moe/tokenizer_config.json"))
    out("config", "safetensors-index.json", read("Tests/GLMModelTests/Fixtures/glm4-sharded/model.safetensors.index.json"))

    # tokenizer.model (tiktoken ranks): the first lines of the fixture's rank file.
    out("tiktoken", "ranks-300.model", lines("Tests/GLMIOTests/Fixtures/tokenizer/tokenizer.model", 300))

    # adapter_config.json: the PEFT fixtures.
    for case in ["glm-qv", "glm4-r8", "glm4-rslora-all-linear"]:
        out("adapter-config", f"{case}.json", read(f"Tests/GLMIOTests/Fixtures/peft/{case}/adapter_config.json"))
    # peft's routed-expert adapter (target_parameters, rank/alpha patterns) on the tiny glm4_moe
    out("adapter-config", "moe-a-lora.json", read("Tests/GLMModelTests/Fixtures/moe-a-lora/adapter_config.json"))

    # JSONL: a few lines of each data file (chat, prompt/completion, text, tokens, tools).
    out("jsonl", "quickstart-train.jsonl", lines("Data/quickstart/train.jsonl", 3))
    out("jsonl", "quickstart-task.jsonl", lines("Data/quickstart/task.jsonl", 3))
    out("jsonl", "tiny-corpus.jsonl", lines("Data/tiny-corpus/eval.jsonl", 2))
    out("jsonl", "rl-prompts.jsonl", lines("Data/rl/prompts.jsonl", 2))
    out("jsonl", "preference.jsonl", lines("Data/preference/train.jsonl", 1))
    out("jsonl", "metrics.jsonl", '{"step": 1, "loss": 2.5, "lr": 0.001}\n{"step": 2, "loss": 2.25, "lr": 0.001, "eval/loss": 2.4}\n'
                                  '{"step": 3, "loss": NaN, "grad_norm": 1e308}\n{"step": 3, "lo')
    out("jsonl", "tokens.jsonl", '{"tokens": [1, 2, 3, 1999]}\n{"tokens": []}\n\n{"text": "a b\\u00e9\\ud83d\\ude00"}\n')
    tools = [l for l in read("Tests/GLMIOTests/Fixtures/tokenizer/chat_template_cases.jsonl").splitlines() if b'"tools"' in l and len(l) < 3000]
    for i, l in enumerate(tools[:2]):
        case = json.loads(l)
        conv = {k: case[k] for k in ("messages", "tools") if k in case}
        out("jsonl", f"tools-{i}.jsonl", json.dumps(conv, ensure_ascii=False) + "\n")

    # recipes: the bundled ones.
    for name in sorted(os.listdir(os.path.join(ROOT, "Recipes"))):
        if name.endswith(".yaml"):
            out("recipe", name, read(f"Recipes/{name}"))


if __name__ == "__main__":
    sys.exit(main())
