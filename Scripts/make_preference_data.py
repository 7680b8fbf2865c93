#!/usr/bin/env python3
"""Generates the preference data of the DPO recipe (Recipes/dpo-lora.yaml), built on the quickstart's help desk.

The quickstart's SFT adapter routes tickets to five teams and answers company facts with the bare answer. The
help desk then gets a sixth team, `security`: phishing, lost badges, leaked passwords, break-ins, viruses. The SFT
model sends those tickets to `tech` or `facilities`. The preference pairs teach the new rule, which is checkable:
- security tickets (40% of the pairs; 8 templates with the quickstart's slots): chosen `security`, rejected the
  team the SFT model picks (`tech` for computers and accounts, `facilities` for doors and locks) or the right
  team in a wordy reply ("This goes to the security team.");
- the quickstart's tickets and facts (60%): chosen the bare right answer, rejected another team or fact, or the
  right answer in a wordy reply, so the SFT skills are held while the new rule is learnt.
Files (Data/preference/):
- train.jsonl  2,000 pairs {"prompt", "chosen", "rejected"}
- eval.jsonl   200 held-out pairs of the same mix (the `loss` hook's rewards/accuracies and margins)
- task.jsonl   100 held-out security tickets {"prompt", "answer", "kind"} for the exact_match hook
Held out: no security ticket of eval.jsonl or task.jsonl occurs in train.jsonl (new slot combinations of the same
templates), and no ticket or fact prompt of Data/quickstart/task.jsonl is used anywhere here.

Deterministic: the same seed gives byte-identical files.
Run: .venv/bin/python Scripts/make_preference_data.py [--seed 1]
"""
import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_quickstart_data as q  # noqa: E402  (the help desk's templates, facts and teams)


SECURITY = [  # (template, the team the SFT model would pick)
    ("Someone emailed me asking for my password for order {order}, is that phishing?", "tech"),
    ("{name} lost the access badge for floor {floor}.", "facilities"),
    ("I think my account was hacked, there are logins from {city}.", "tech"),
    ("A stranger followed me through the door on floor {floor} without a badge.", "facilities"),
    ("My {device} shows a warning about a virus.", "tech"),
    ("I clicked a strange link in an email about the {product}.", "tech"),
    ("The lock of room {room} was forced open last night.", "facilities"),
    ("Hi, {name} here. My password was leaked, please lock my account.", "tech"),
]


def security_item(rng):
    template, old_team = rng.choice(SECURITY)
    return q.fill(rng, template), old_team


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    facts = q.fact_plan(random.Random(0))  # the quickstart's plan: the same trained phrasings
    with open(os.path.join(q.DATA, "quickstart", "task.jsonl"), encoding="utf-8") as f:
        quickstart_task = {json.loads(line)["prompt"] for line in f}

    held = set()
    task = []
    while len(task) < 100:
        p, _ = security_item(rng)
        if p not in held:
            held.add(p)
            task.append({"prompt": p, "answer": "security", "kind": "security"})

    def desk_item():
        while True:
            if rng.random() < 0.5:
                item = q.ticket_item(rng)
            else:
                train, _, answer = rng.choice(facts)
                item = (rng.choice(train), answer, "fact")
            if item[0] not in quickstart_task:
                return item

    def pair(heldout):
        if rng.random() < 0.4:
            while True:
                p, old_team = security_item(rng)
                if (p in held) == heldout:
                    break
            rejected = q.wordy(rng, "security", "routing") if rng.random() < 0.25 else old_team
            return {"prompt": p, "chosen": "security", "rejected": rejected}
        p, a, kind = desk_item()
        rejected = q.wordy(rng, a, kind) if rng.random() < 0.3 else q.wrong_answer(rng, a, kind, facts)
        assert rejected != a
        return {"prompt": p, "chosen": a, "rejected": rejected}

    # Held-out security tickets for eval.jsonl beyond the task's: drawn first, so train.jsonl avoids them.
    while len(held) < 300:
        held.add(security_item(rng)[0])
    eval_rows = [pair(True) for _ in range(200)]
    train_rows = [pair(False) for _ in range(2000)]

    q.write(os.path.join(q.DATA, "preference", "train.jsonl"), train_rows)
    q.write(os.path.join(q.DATA, "preference", "eval.jsonl"), eval_rows)
    q.write(os.path.join(q.DATA, "preference", "task.jsonl"), task)


if __name__ == "__main__":
    main()
