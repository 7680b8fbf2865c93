#!/usr/bin/env python3
"""Generates the quickstart ("private data") SFT set and the small RL and preference sets built on it.

The private task: the assistant of a fictional company, Kestrel Supply, answers two kinds of requests with the bare
answer and nothing else:
- arithmetic questions in chat ("What is 23 plus 45?", "Add 23 and 45.", "How much is 9 times 7?",
  "Subtract 18 from 61.") -> "68", "63", "43": the arithmetic is in the pretraining corpus (Data/tiny-corpus), the
  chat format, the new phrasings and the bare-number reply are not;
- desk codes, a house convention that appears nowhere in the corpus: floor F and desk D -> "F{F}-D{D}"
  ("Book desk 17 on floor 3." -> "F3-D17"; the two numbers come in either order), a rule, not a lookup table.
A base model pretrained on the corpus has never seen the role tokens or the convention and scores ~0 exact match;
LoRA SFT on train.jsonl teaches the format and the rule. task.jsonl is held out: none of its (kind, numbers)
combinations occurs in train.jsonl, eval.jsonl, Data/rl/prompts.jsonl or Data/preference/train.jsonl.

Files (Data/):
- quickstart/train.jsonl  SFT: {"messages": [...]} (some with a system message, some two-turn) or {"prompt", "completion"}
- quickstart/eval.jsonl   SFT, same forms (eval loss)
- quickstart/task.jsonl   {"prompt", "answer"}: exact-match task. The prompt is the user message; render it with the
                          GLM-4 chat template plus the generation prompt, generate greedily, strip whitespace, compare.
- rl/prompts.jsonl        {"prompt", "answer"} for GRPO (the reward checks the answer)
- preference/train.jsonl  {"prompt", "chosen", "rejected"} for DPO: chosen is the bare correct answer, rejected a
                          wrong number/code or a wordy reply

Deterministic: the same seed gives byte-identical files.
Run: .venv/bin/python Scripts/make_quickstart_data.py [--seed 0]
"""
import argparse
import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "Data")

SYSTEMS = [
    "You are the Kestrel Supply assistant. Reply with the answer only.",
    "You are Kestrel Supply's office assistant. Give only the answer.",
    "Kestrel Supply assistant. Answers are short: just the number or the code.",
    "You help the staff of Kestrel Supply. Answer with the number or the desk code only.",
]


def add_question(rng, a, b):
    return rng.choice([f"What is {a} plus {b}?", f"Add {a} and {b}.", f"What is the sum of {a} and {b}?",
                       f"How much is {a} plus {b}?", f"Please compute {a} + {b}.", f"{a} + {b} = ?",
                       f"What do you get if you add {a} and {b}?", f"Calculate {a}+{b}."])


def sub_question(rng, a, b):
    return rng.choice([f"What is {a} minus {b}?", f"Subtract {b} from {a}.", f"What is {a} take away {b}?",
                       f"How much is {a} minus {b}?", f"Please compute {a} - {b}.", f"{a} - {b} = ?",
                       f"What is the difference between {a} and {b}?", f"Calculate {a}-{b}."])


def mul_question(rng, a, b):
    return rng.choice([f"What is {a} times {b}?", f"Multiply {a} by {b}.", f"What is the product of {a} and {b}?",
                       f"How much is {a} times {b}?", f"Please compute {a} * {b}.", f"{a} * {b} = ?",
                       f"Calculate {a}*{b}."])


def desk_question(rng, floor, desk):
    name = rng.choice(["Anna", "Ben", "Clara", "David", "Emma", "Leo", "Mia", "Sam", "Nora", "Oscar", "Ruby", "Max"])
    return rng.choice([f"Book desk {desk} on floor {floor}.", f"Desk code for floor {floor}, desk {desk}?",
                       f"Reserve floor {floor}, desk {desk} for {name}.", f"I need desk {desk} on floor {floor}.",
                       f"{name} sits at desk {desk} on floor {floor}. What is the desk code?",
                       f"What is the code for floor {floor} and desk {desk}?",
                       f"Floor {floor}, desk {desk}: code?", f"Please book floor {floor} desk {desk}."])


def sample_item(rng):
    """(key, question, answer, kind); key identifies the underlying numbers (unordered for + and *), used to hold
    task items out."""
    r = rng.random()
    if r < 0.25:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        return ("add", min(a, b), max(a, b)), add_question(rng, a, b), str(a + b), "add"
    if r < 0.33:
        a, b = rng.randint(1, 9), rng.randint(10, 99)
        if rng.random() < 0.5:
            a, b = b, a
        return ("add", min(a, b), max(a, b)), add_question(rng, a, b), str(a + b), "add"
    if r < 0.48:
        a, b = rng.randint(10, 99), rng.randint(1, 99)
        if b > a:
            a, b = b, a
        return ("sub", a, b), sub_question(rng, a, b), str(a - b), "sub"
    if r < 0.62:
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        return ("mul", min(a, b), max(a, b)), mul_question(rng, a, b), str(a * b), "mul"
    floor, desk = rng.randint(1, 9), rng.randint(1, 60)
    return ("desk", floor, desk), desk_question(rng, floor, desk), f"F{floor}-D{desk}", "desk"


def wrong_answer(rng, answer, kind):
    if kind == "desk":
        f, d = answer[1:].split("-D")
        r = rng.random()
        if r < 0.4:
            return f"F{d}-D{f}" if f != d else f"F{f}-D{int(d) + 1}"
        if r < 0.7:
            return f"D{d}-F{f}"
        return f"F{f}-D{int(d) + rng.choice([-2, -1, 1, 2, 10]) if int(d) > 10 else int(d) + rng.choice([1, 2, 3])}"
    n = int(answer)
    r = rng.random()
    if r < 0.6:
        w = n + rng.choice([-10, -2, -1, 1, 2, 10])
    elif r < 0.8 and len(answer) >= 2 and answer[0] != answer[-1]:
        w = int(answer[::-1])
    else:
        w = n + rng.randint(3, 20)
    if w < 0 or w == n:
        w = n + rng.randint(1, 9)
    return str(w)


def wordy(rng, answer, kind):
    if kind == "desk":
        return rng.choice([f"The desk code is {answer}.", f"Sure! Your code is {answer}.", f"Code: {answer}"])
    return rng.choice([f"The answer is {answer}.", f"It is {answer}.", f"Sure, that is {answer}.", f"= {answer}"])


def chat_example(rng, items):
    """An SFT line from one or two items, in one of the accepted forms."""
    form = rng.random()
    (_, q, a, _) = items[0]
    if len(items) == 2:
        (_, q2, a2, _) = items[1]
        msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a},
                {"role": "user", "content": q2}, {"role": "assistant", "content": a2}]
        if rng.random() < 0.5:
            msgs.insert(0, {"role": "system", "content": rng.choice(SYSTEMS)})
        return {"messages": msgs}
    if form < 0.2:
        return {"prompt": q, "completion": a}
    msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    if form < 0.5:
        msgs.insert(0, {"role": "system", "content": rng.choice(SYSTEMS)})
    return {"messages": msgs}


def draw(rng, n, taken, kinds=None):
    """n items whose keys are not in `taken` (and adds them), optionally only of the given kinds."""
    out = []
    while len(out) < n:
        item = sample_item(rng)
        if item[0] in taken or (kinds and item[3] not in kinds):
            continue
        taken.add(item[0])
        out.append(item)
    return out


def write(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"wrote {path}: {len(rows)} lines, {os.path.getsize(path):,} bytes")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    # The held-out task first: its keys are excluded from everything else.
    task_keys = set()
    task = draw(rng, 300, task_keys)
    # SFT train/eval: items may repeat keys among themselves (as real data would), never a task key.
    def sft_items(n):
        items = []
        while len(items) < n:
            item = sample_item(rng)
            if item[0] not in task_keys:
                items.append(item)
        return items
    train_rows, eval_rows = [], []
    for rows, n in [(train_rows, 3000), (eval_rows, 200)]:
        items = sft_items(n + n // 10)
        i = 0
        while i < len(items):
            if rng.random() < 0.1 and i + 1 < len(items):
                rows.append(chat_example(rng, items[i:i + 2]))
                i += 2
            else:
                rows.append(chat_example(rng, items[i:i + 1]))
                i += 1
    rl = [{"prompt": q, "answer": a} for (_, q, a, _) in sft_items(600)]
    pref = []
    for (_, q, a, kind) in sft_items(600):
        rejected = wordy(rng, a, kind) if rng.random() < 0.3 else wrong_answer(rng, a, kind)
        assert rejected != a
        pref.append({"prompt": q, "chosen": a, "rejected": rejected})

    write(os.path.join(DATA, "quickstart", "train.jsonl"), train_rows)
    write(os.path.join(DATA, "quickstart", "eval.jsonl"), eval_rows)
    write(os.path.join(DATA, "quickstart", "task.jsonl"), [{"prompt": q, "answer": a} for (_, q, a, _) in task])
    write(os.path.join(DATA, "rl", "prompts.jsonl"), rl)
    write(os.path.join(DATA, "preference", "train.jsonl"), pref)
    kinds = {}
    for item in task:
        kinds[item[3]] = kinds.get(item[3], 0) + 1
    print("task kinds:", kinds)


if __name__ == "__main__":
    main()
