"""Two-digit addition and subtraction prompts for the GRPO recipe (Recipes/grpo-async.yaml), in the phrasings of
the quickstart's RL set (Scripts/make_quickstart_data.py): Data/rl/arithmetic-train.jsonl (3,000 lines) and
Data/rl/arithmetic-eval.jsonl (200 lines; no (a, op, b) of it occurs in train), {"prompt", "answer"} lines whose
reward checks the answer numerically; and Data/rl/helpdesk.jsonl, the help-desk lines of Data/rl/prompts.jsonl
(routing and company facts, answers checked by exact match). Seeded and deterministic: .venv/bin/python Scripts/make_rl_arithmetic.py
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(__file__))
from make_quickstart_data import add_question, sub_question  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "Data", "rl")


def item(rng):
    a, b = rng.randint(10, 99), rng.randint(1, 99)
    if rng.random() < 0.6:
        return ("+", a, b), add_question(rng, a, b), str(a + b)
    a, b = max(a, b), min(a, b)
    return ("-", a, b), sub_question(rng, a, b), str(a - b)


def main():
    rng = random.Random(1234)
    seen, evals, train = set(), [], []
    while len(evals) < 200:
        key, q, a = item(rng)
        if key not in seen:
            seen.add(key)
            evals.append({"prompt": q, "answer": a})
    while len(train) < 3000:
        key, q, a = item(rng)
        if key not in seen:
            train.append({"prompt": q, "answer": a})
    # The help-desk half of the quickstart's RL prompts (routing and company facts: answers that are not numbers).
    with open(os.path.join(DATA, "prompts.jsonl")) as f:
        helpdesk = [r for r in map(json.loads, f) if not r["answer"].lstrip("-").isdigit()]
    for name, rows in [("arithmetic-train.jsonl", train), ("arithmetic-eval.jsonl", evals), ("helpdesk.jsonl", helpdesk)]:
        with open(os.path.join(DATA, name), "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        print("wrote", name, len(rows))


if __name__ == "__main__":
    main()
