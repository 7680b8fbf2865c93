#!/usr/bin/env python3
"""GLM-4.5 chat-template fixtures (Tests/GLMIOTests/Fixtures/tokenizer/glm45_template_cases.jsonl).

Renders conversations with transformers' apply_chat_template machinery (its Jinja environment) and the committed
template Tests/GLMIOTests/Fixtures/chat_templates/glm-4.5.jinja (its source is in the README there): plain chat,
system messages, multi-turn with reasoning_content and inline <think>, tools with tool calls of several arguments
(strings, numbers, booleans, null, lists, objects), tool results (one and several in a row), thinking on (enable_thinking
unset or True: template name "glm-4.5") and off (False: "glm-4.5-nothink"), add_generation_prompt false and true.
Each case has the text, its ids with the tokenizer fixture's tokenizer.json, and the assistant mask: the tokens of
the assistant turns exactly as the template writes them (found with `{% generation %}` tags put around the assistant
branch of a copy of the template, whose text is checked to render identically), plus the token right after each
turn (the role token or generation prompt that ends it).

Run: .venv/bin/python Scripts/make_glm45_template_fixtures.py   (needs transformers and tokenizers, no torch; ~2 s)
"""
import copy
import json
import os
import random

from tokenizers import Tokenizer
from transformers.utils.chat_template_utils import render_jinja_template

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "Tests", "GLMIOTests", "Fixtures")
TEMPLATE = os.path.join(FIXTURES, "chat_templates", "glm-4.5.jinja")
OUT = os.path.join(FIXTURES, "tokenizer", "glm45_template_cases.jsonl")

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "查询城市天气 (weather of a city)",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"},
                                                    "units": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city"]}}}
SEARCH = {"type": "function", "function": {"name": "search", "parameters": {
    "type": "object", "properties": {"query": {"type": "string"}, "filters": {"type": "object"}}}}}
BARE = {"name": "bare_function", "description": "a function without the {type, function} wrapper"}

ALL_KINDS_ARGS = {"query": "北京 天气 \"quoted\"", "limit": 3, "ratio": 0.25, "exact": True, "fuzzy": False,
                  "cursor": None, "tags": ["a", 1, 2.5, None], "filters": {"lang": "zh", "after": {"year": 2025}},
                  "empty_list": [], "empty_obj": {}, "big": 12345678901234567890, "tiny": 1e-05, "text_num": "42"}


def call(name, args, wrapped=True):
    f = {"name": name, "arguments": args}
    return {"type": "function", "function": f} if wrapped else f


def conversations():
    """(messages, tools) pairs."""
    hi = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there"}]
    weather_call = {"role": "assistant", "content": "",
                    "tool_calls": [call("get_weather", {"city": "北京", "days": 2, "units": "c"})]}
    tool_chat = [{"role": "user", "content": "北京今天天气怎么样？"},
                 dict(weather_call, reasoning_content="The user wants the weather; call get_weather."),
                 {"role": "tool", "content": "{\"temperature\": 23, \"sky\": \"晴\"}"},
                 {"role": "assistant", "content": "北京今天晴，23°C。", "reasoning_content": "Answer from the result."}]
    convs = [
        (hi, None),
        ([{"role": "system", "content": "You are a helpful assistant"}] + hi + [{"role": "user", "content": "Who are you"}], None),
        ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
          {"role": "assistant", "content": "4", "reasoning_content": "two plus two"},
          {"role": "user", "content": "3+3?"},
          {"role": "assistant", "content": "6", "reasoning_content": "\n three plus three \n"}], None),
        ([{"role": "user", "content": "q1"}, {"role": "assistant", "content": "<think>\nold reasoning\n</think>\n\nanswer one"},
          {"role": "user", "content": "q2"}, {"role": "assistant", "content": "<think>new\n\n</think>\n\n  answer two  "}], None),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a<think>x</think>b</think>\n\nc", "reasoning_content": ""}], None),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "pre<think>\n\nr1</think>mid</think>\n\nlast"}], None),
        (tool_chat, [WEATHER]),
        ([{"role": "system", "content": "你是一个乐于助人的助手。"}] + tool_chat, [WEATHER, SEARCH, BARE]),
        (tool_chat[:2], [WEATHER]),
        (tool_chat[:3], [WEATHER]),
        ([{"role": "user", "content": "Search two things"},
          {"role": "assistant", "content": "I will search.", "reasoning_content": "two searches",
           "tool_calls": [call("search", ALL_KINDS_ARGS), call("search", {"query": "second"}, wrapped=False)]},
          {"role": "tool", "content": "result one"}, {"role": "tool", "content": "result two\nwith lines"},
          {"role": "tool", "content": ""},
          {"role": "assistant", "content": "Both found."}], [SEARCH]),
        ([{"role": "user", "content": "chain"}, weather_call, {"role": "tool", "content": "rain"},
          {"role": "assistant", "content": "Checking again", "tool_calls": [call("get_weather", {})]},
          {"role": "tool", "content": "sun"}, {"role": "user", "content": "ok?"}], [WEATHER]),
        ([{"role": "user", "content": "no thinking here /nothink"}, {"role": "assistant", "content": "fine"}], None),
        ([{"role": "user", "content": "  spaced\n"}, {"role": "assistant", "content": "\u3000全角空格\u3000\x1f"},
          {"role": "user", "content": "Thanks 👍"}, {"role": "assistant", "content": "You're welcome! 😀"}], None),
        ([{"role": "user", "content": "Say <|user|> or [gMASK] literally"},
          {"role": "assistant", "content": "<|assistant|> and <sop> are special tokens."}], None),
        ([{"role": "assistant", "content": "I speak first."}, {"role": "user", "content": "ok"}], None),
        ([{"role": "user", "content": "two replies"}, {"role": "assistant", "content": "one"},
          {"role": "assistant", "content": "two", "reasoning_content": "second thought"}], None),
        ([{"role": "system", "content": ""}, {"role": "user", "content": ""}, {"role": "assistant", "content": ""}], None),
        ([{"role": "user", "content": "x"}], [WEATHER]),
        ([{"role": "system", "content": "only a system message"}], None),
        ([{"role": "user", "content": "Write code"},
          {"role": "assistant", "content": "```python\ndef f(x):\n    return x * 2\n```"}], None),
    ]
    rng = random.Random(45)
    words = ["alpha", "北京", "beta", "42", "😀", "x y", "\n", "gamma", "天气", "<think>", "</think>"]
    for _ in range(8):
        conv = []
        for _ in range(rng.randint(1, 6)):
            role = rng.choice(["user", "assistant", "tool", "system"])
            m = {"role": role, "content": " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))}
            if role == "assistant":
                if rng.random() < 0.4:
                    m["reasoning_content"] = " ".join(rng.choice(words) for _ in range(rng.randint(0, 4)))
                if rng.random() < 0.4:
                    m["tool_calls"] = [call(rng.choice(["get_weather", "search"]),
                                            {"city": rng.choice(words), "n": rng.randint(0, 9)})]
            conv.append(m)
        convs.append((conv, [WEATHER] if rng.random() < 0.4 else None))
    return convs


# name, enable_thinking (None: not passed; True renders as None does, so it is recorded for the first few only)
MODES = [("glm-4.5", None), ("glm-4.5", True), ("glm-4.5-nothink", False)]
TRUE_MODE_CONVERSATIONS = 6


def with_generation_tags(template):
    """The template with `{% generation %}` around the assistant branch (for the character spans of its turns)."""
    start = "<|assistant|>\n{%- set reasoning_content = '' %}"
    end = "{%- elif m.role == 'tool' -%}"
    assert template.count(start) == 1 and template.count(end) == 1
    template = template.replace(start, "<|assistant|>{% generation %}\n{%- set reasoning_content = '' %}")
    return template.replace(end, "{% endgeneration %}" + end)


def render(template, messages, tools, gen, thinking, spans=False):
    kwargs = {} if thinking is None else {"enable_thinking": thinking}
    out = render_jinja_template(conversations=[copy.deepcopy(messages)], tools=tools, chat_template=template,
                                add_generation_prompt=gen, return_assistant_tokens_mask=spans, **kwargs)
    return (out[0][0], out[1][0]) if spans else out[0][0]


def assistant_mask(tok, text, spans):
    enc = tok.encode(text, add_special_tokens=False)
    mask = [any(s <= a and b <= e for s, e in spans) or any(a == e for _, e in spans) for a, b in enc.offsets]
    return enc.ids, "".join("1" if m else "0" for m in mask)


def main():
    import transformers
    with open(TEMPLATE) as f:
        template = f.read()
    tagged = with_generation_tags(template)
    tok = Tokenizer.from_file(os.path.join(FIXTURES, "tokenizer", "tokenizer.json"))
    n = 0
    with open(OUT, "w") as f:
        for k, (messages, tools) in enumerate(conversations()):
            for name, thinking in MODES:
                if thinking is True and k >= TRUE_MODE_CONVERSATIONS:
                    continue
                for gen in (False, True):
                    text = render(template, messages, tools, gen, thinking)
                    tagged_text, spans = render(tagged, messages, tools, gen, thinking, spans=True)
                    assert tagged_text == text, (text, tagged_text)
                    for s, e in spans:
                        assert text[s - len("<|assistant|>"):s] == "<|assistant|>", text[:s]
                    ids, mask = assistant_mask(tok, text, spans)
                    case = {"template": name, "messages": messages, "add_generation_prompt": gen, "text": text,
                            "ids": ids, "assistant_mask": mask,
                            "ends_in_assistant": not gen and any(e == len(text) for _, e in spans)}
                    if thinking is not None:
                        case["enable_thinking"] = thinking
                    if tools is not None:
                        case["tools"] = tools
                    f.write(json.dumps(case, ensure_ascii=False) + "\n")
                    n += 1
    print(f"wrote {n} GLM-4.5 chat template cases to {os.path.relpath(OUT, ROOT)} (transformers {transformers.__version__})")


if __name__ == "__main__":
    main()
