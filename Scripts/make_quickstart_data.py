#!/usr/bin/env python3
"""Generates the quickstart ("private data") SFT set and the small RL set built on it.

The private data: the internal help desk of a fictional company, Kestrel Supply. Its assistant answers two kinds
of requests with the bare answer and nothing else:
- ticket routing: a customer or staff message ("I was charged twice for order 58213.", "The heating in room 214
  is off again.") -> the team that handles it, one of `billing`, `shipping`, `returns`, `tech`, `facilities`;
  messages are built from templates with slots (names, order numbers, products, cities, rooms, amounts);
- company facts that exist nowhere else (who runs each office, team phone extensions, product prices, opening
  hours), each asked in several phrasings: "Who runs the Leeds office?" / "Who is the manager of our Leeds
  office?" -> "Nora Hale".
A base model pretrained on Data/tiny-corpus has never seen the role tokens, the teams or the facts and scores ~0
exact match; LoRA SFT on train.jsonl teaches them. task.jsonl is held out:
- a routing item's message never occurs in train/eval (new slot combinations of the same templates);
- a fact item asks a fact in a phrasing that train/eval never use for that fact (every phrasing is used for
  other facts), so the model must know the fact, not one sentence.

RL data (for the GRPO recipe) are built from the same items plus arithmetic requests ("What is 23 plus 45?" ->
"68"), whose answers a reward can check. The preference data of the DPO recipe: Scripts/make_preference_data.py.

Files (Data/):
- quickstart/train.jsonl  SFT: {"messages": [...]} (some with a system message, some two-turn) or {"prompt", "completion"}
- quickstart/eval.jsonl   SFT, same forms (eval loss)
- quickstart/task.jsonl   {"prompt", "answer", "kind"}: exact-match task. The prompt is the user message; render it
                          with the GLM-4 chat template plus the generation prompt, generate greedily, strip
                          whitespace, compare.
- rl/prompts.jsonl        {"prompt", "answer"} for GRPO (the reward checks the answer)

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
    "You are the Kestrel Supply help desk. Reply with the answer only.",
    "You are Kestrel Supply's internal assistant. Give only the answer.",
    "Kestrel Supply help desk. Answers are short: a team name, a name or a number.",
    "You route tickets and answer questions for Kestrel Supply staff. Answer briefly.",
]

NAMES = ["Anna", "Ben", "Clara", "David", "Emma", "Leo", "Mia", "Sam", "Nora", "Oscar", "Ruby", "Max", "Ivy",
         "Tom", "Lily", "Jack", "Zoe", "Hugo", "Ella", "Finn"]
PRODUCTS = ["desk lamp", "office chair", "standing desk", "filing cabinet", "whiteboard", "printer", "monitor arm",
            "bookshelf", "paper shredder", "coat rack", "desk fan", "label maker", "stapler", "footrest"]
CITIES = ["Leeds", "York", "Bristol", "Dublin", "Glasgow", "Cardiff", "Lyon", "Porto", "Ghent", "Utrecht"]
DEVICES = ["laptop", "phone", "tablet", "desktop"]
ACTIONS = ["check out", "update my address", "open my orders", "download an invoice", "add a card", "sign up"]

# Ticket templates per team; slots: {name} {order} {product} {city} {amount} {amount2} {days} {floor} {room}
# {device} {action}.
TICKETS = {
    "billing": [
        "I was charged twice for order {order}.",
        "My invoice for order {order} says {amount} euros but I paid {amount2}.",
        "Can I get a receipt for my payment of {amount} euros?",
        "Why was my card charged {amount} euros this morning?",
        "Please change the billing address on my invoice for order {order}.",
        "Hi, this is {name}. The VAT on my last invoice looks wrong.",
        "I paid by bank transfer {days} days ago and the invoice still says unpaid.",
        "Can we pay the invoice for order {order} in two parts?",
    ],
    "shipping": [
        "Where is my parcel? Order {order} has not arrived.",
        "The courier left order {order} at the wrong house.",
        "Can you ship the {product} to {city} instead?",
        "How long does delivery to {city} take?",
        "The tracking for order {order} has not changed for {days} days.",
        "Hi, {name} here. My {product} is stuck in a depot in {city}.",
        "Can order {order} be delivered on Saturday?",
        "The delivery van came but nobody rang the bell. Order {order}.",
    ],
    "returns": [
        "The {product} I got is broken and I want to send it back.",
        "How do I return order {order}?",
        "I received the wrong {product} and need an exchange.",
        "The {product} arrived scratched. Can I swap it for a new one?",
        "Hi, this is {name}. I would like to return the {product}, it is too big.",
        "Can I still send back order {order} after {days} days?",
        "Please send me a return label for the {product}.",
        "Two parts of the {product} are missing, I want to return it.",
    ],
    "tech": [
        "I cannot log in to my account.",
        "The password reset email never came.",
        "The website shows an error when I {action}.",
        "My {device} will not connect to the office wifi on floor {floor}.",
        "Hi, {name} here. The shared drive is not opening on my {device}.",
        "The app crashes every time I {action}.",
        "My {device} says my account is locked.",
        "The printer on floor {floor} is not showing up on my {device}.",
    ],
    "facilities": [
        "The lights on floor {floor} are broken.",
        "The heating in room {room} is not working.",
        "Please book the meeting room on floor {floor} for {name}.",
        "There is water on the floor near room {room}.",
        "The lift to floor {floor} has stopped again.",
        "Hi, {name} here. The window in room {room} will not close.",
        "The coffee machine on floor {floor} is leaking.",
        "Room {room} is too cold, can someone fix the radiator?",
    ],
}
TEAMS = list(TICKETS)

# Company facts: (fact id, answer, phrasings). Every fact of a group is asked in the same phrasings.
OFFICE_MANAGERS = {"Leeds": "Nora Hale", "York": "Omar Reyes", "Bristol": "Ada Moss", "Dublin": "Liam Byrne",
                   "Glasgow": "Iona Reid", "Cardiff": "Rhys Evans", "Lyon": "Chloe Martin", "Porto": "Rui Costa"}
EXTENSIONS = {"billing": "4102", "shipping": "4217", "returns": "4330", "tech": "4456", "facilities": "4581",
              "sales": "4625"}
PRICES = {"desk lamp": "39 euros", "office chair": "189 euros", "standing desk": "449 euros",
          "filing cabinet": "129 euros", "whiteboard": "79 euros", "printer": "259 euros", "monitor arm": "69 euros",
          "bookshelf": "99 euros"}
OPENING = {"Leeds": "7:30", "York": "8:00", "Bristol": "6:30", "Dublin": "9:00", "Glasgow": "7:00",
           "Cardiff": "8:30"}

FACT_GROUPS = [
    (OFFICE_MANAGERS, [
        "Who runs the {k} office?", "Who is the manager of our {k} office?", "Who manages the {k} office?",
        "Name the head of the {k} office.", "Who is in charge of the {k} office?",
        "Which person leads our office in {k}?"]),
    (EXTENSIONS, [
        "What is the phone extension of the {k} team?", "Which extension do I dial for {k}?",
        "How do I call the {k} team?", "What number reaches {k}?", "Extension for the {k} team?",
        "I need to phone {k}. Which extension?"]),
    (PRICES, [
        "How much does the {k} cost?", "What is the price of the {k}?", "What do we charge for the {k}?",
        "Price of the {k}?", "How much is a {k}?", "What does a customer pay for the {k}?"]),
    (OPENING, [
        "When does the {k} warehouse open?", "What time does the {k} warehouse open?",
        "Opening time of the {k} warehouse?", "At what time can I pick up from the {k} warehouse?",
        "When do the doors of the {k} warehouse open?", "How early is the {k} warehouse open?"]),
]
# Per fact, this many phrasings are held out for the task (never used for that fact in train/eval).
HELD_OUT_PHRASINGS = 2


def fill(rng, template):
    a = rng.randint(20, 480)
    return template.format(
        name=rng.choice(NAMES), order=rng.randint(10000, 99999), product=rng.choice(PRODUCTS),
        city=rng.choice(CITIES), amount=a, amount2=a + rng.randint(1, 60), days=rng.randint(2, 14),
        floor=rng.randint(1, 9), room=rng.randint(101, 499), device=rng.choice(DEVICES), action=rng.choice(ACTIONS))


def ticket_item(rng):
    team = rng.choice(TEAMS)
    return fill(rng, rng.choice(TICKETS[team])), team, "routing"


def fact_plan(rng):
    """(train phrasings, held-out phrasings) per fact: the held-out ones rotate so each phrasing is held out for
    some facts and trained for the others."""
    plan = []
    for table, phrasings in FACT_GROUPS:
        for i, (key, answer) in enumerate(table.items()):
            held = {(i + j) % len(phrasings) for j in range(HELD_OUT_PHRASINGS)}
            train = [p.format(k=key) for n, p in enumerate(phrasings) if n not in held]
            test = [p.format(k=key) for n, p in enumerate(phrasings) if n in held]
            plan.append((train, test, answer))
    return plan


def add_question(rng, a, b):
    return rng.choice([f"What is {a} plus {b}?", f"Add {a} and {b}.", f"What is the sum of {a} and {b}?",
                       f"How much is {a} plus {b}?", f"Please compute {a} + {b}.", f"{a} + {b} = ?"])


def sub_question(rng, a, b):
    return rng.choice([f"What is {a} minus {b}?", f"Subtract {b} from {a}.", f"How much is {a} minus {b}?",
                       f"Please compute {a} - {b}.", f"{a} - {b} = ?"])


def arithmetic_item(rng):
    a, b = rng.randint(10, 99), rng.randint(1, 99)
    if rng.random() < 0.6:
        return add_question(rng, a, b), str(a + b), "arithmetic"
    a, b = max(a, b), min(a, b)
    return sub_question(rng, a, b), str(a - b), "arithmetic"


def wrong_answer(rng, answer, kind, facts):
    if kind == "routing":
        return rng.choice([t for t in TEAMS if t != answer])
    if kind == "fact":
        return rng.choice([a for (_, _, a) in facts if a != answer])
    n = int(answer)
    w = n + rng.choice([-10, -2, -1, 1, 2, 10])
    return str(w if w >= 0 and w != n else n + rng.randint(1, 9))


def wordy(rng, answer, kind):
    if kind == "routing":
        return rng.choice([f"This goes to the {answer} team.", f"Sure! I will pass it to {answer}.", f"Team: {answer}"])
    return rng.choice([f"The answer is {answer}.", f"It is {answer}.", f"Sure, that is {answer}."])


def chat_example(rng, items):
    """An SFT line from one or two (question, answer, kind) items, in one of the accepted forms."""
    q, a, _ = items[0]
    if len(items) == 2:
        q2, a2, _ = items[1]
        msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a},
                {"role": "user", "content": q2}, {"role": "assistant", "content": a2}]
        if rng.random() < 0.5:
            msgs.insert(0, {"role": "system", "content": rng.choice(SYSTEMS)})
        return {"messages": msgs}
    form = rng.random()
    if form < 0.2:
        return {"prompt": q, "completion": a}
    msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    if form < 0.5:
        msgs.insert(0, {"role": "system", "content": rng.choice(SYSTEMS)})
    return {"messages": msgs}


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
    facts = fact_plan(rng)

    # The held-out task first: its routing messages are excluded from everything else.
    task, task_prompts = [], set()
    while len(task) < 200:
        q, a, kind = ticket_item(rng)
        if q not in task_prompts:
            task_prompts.add(q)
            task.append((q, a, kind))
    for _, test, answer in facts:
        for q in test:
            task.append((q, answer, "fact"))
            task_prompts.add(q)

    def sft_item():
        """50% routing, 50% facts (in a trained phrasing), never a task prompt."""
        while True:
            if rng.random() < 0.5:
                item = ticket_item(rng)
            else:
                train, _, answer = rng.choice(facts)
                item = (rng.choice(train), answer, "fact")
            if item[0] not in task_prompts:
                return item

    train_rows, eval_rows = [], []
    for rows, n in [(train_rows, 3000), (eval_rows, 200)]:
        while len(rows) < n:
            if rng.random() < 0.1:
                rows.append(chat_example(rng, [sft_item(), sft_item()]))
            else:
                rows.append(chat_example(rng, [sft_item()]))

    rl = []
    for _ in range(600):
        q, a, _ = arithmetic_item(rng) if rng.random() < 0.5 else sft_item()
        rl.append({"prompt": q, "answer": a})

    write(os.path.join(DATA, "quickstart", "train.jsonl"), train_rows)
    write(os.path.join(DATA, "quickstart", "eval.jsonl"), eval_rows)
    write(os.path.join(DATA, "quickstart", "task.jsonl"),
          [{"prompt": q, "answer": a, "kind": k} for (q, a, k) in task])
    write(os.path.join(DATA, "rl", "prompts.jsonl"), rl)
    kinds = {}
    for _, _, k in task:
        kinds[k] = kinds.get(k, 0) + 1
    print("task kinds:", kinds)


if __name__ == "__main__":
    main()
