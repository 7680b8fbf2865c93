#!/usr/bin/env python3
"""Trains the byte-level BPE tokenizer of the bundled tiny GLM: Checkpoints/glm-tiny/tokenizer.json and
tokenizer_config.json, in GLM-4's exact format (the format Scripts/make_tokenizer_fixtures.py builds and GLMIO reads).

- A BPE is trained with `tokenizers` on Data/tiny-corpus/train.jsonl with GLM-4's pre-tokenizer:
  Split(GLM-4/cl100k regex, isolated) + ByteLevel(add_prefix_space false, use_regex false).
- Numbers are kept digit by digit: every learned token made of several digits is dropped (GLM-4's regex cuts numbers
  into chunks of at most three digits, which never mix with letters or punctuation, so no other token depends on
  them). Single-digit tokens make arithmetic learnable by a small model (each digit is one token, the same token
  wherever it appears); the merges of all other text are unchanged.
- The kept vocabulary (ids renumbered in merge order, rank = id) is turned into tokenizer.json the way transformers'
  TikTokenConverter converts glm-4's tiktoken rank file: merges = every split l+r of a token where l and r are
  tokens, ordered by the rank of l+r, ignore_merges true; a ByteLevel decoder; GLM-4's 14 special tokens after the
  ranks, in GLM-4's order; the post-processor TemplateProcessing("[gMASK]:0 <sop>:0 $A:0") that plain encoding
  uses to prepend [gMASK]<sop>, as in GLM-4's -hf tokenizers.
- tokenizer_config.json: glm-4-9b-chat's chat template (verbatim, shared with the fixtures), the special tokens as
  added_tokens_decoder, eos/pad <|endoftext|>, left padding. The generation stop set of GLM-4
  (eos_token_id = [<|endoftext|>, <|user|>, <|observation|>]) belongs in the model's config.json and
  generation_config.json, written by the pretraining run; the ids are printed here.

The total vocabulary (ranks + special tokens) is --vocab-size (default 2048).
Deterministic: the same corpus gives the same files.
Run: .venv/bin/python Scripts/make_tiny_tokenizer.py   (after Scripts/make_tiny_corpus.py; ~20 s)
"""
import argparse
import json
import os
import sys

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_fixtures import (BYTE_DECODER, GLM4_CHAT_TEMPLATE, SPECIALS, build_tokenizer,  # noqa: E402
                                     glm_pre_tokenizer)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "Data", "tiny-corpus")
OUT = os.path.join(ROOT, "Checkpoints", "glm-tiny")
DIGITS = set(b"0123456789")


def corpus_texts(name):
    with open(os.path.join(CORPUS, f"{name}.jsonl"), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def train_ranks(texts, n_ranks):
    """{token bytes: rank}: the first n_ranks tokens of a byte-level BPE in merge order, multi-digit tokens left out."""
    n_digit_guess = 1200   # at most 10 + 100 + 1000 multi-digit chunks can be learned; train a little past them
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = glm_pre_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=n_ranks + n_digit_guess, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, special_tokens=[])
    tok.train_from_iterator(texts, trainer=trainer)
    vocab = tok.get_vocab()
    assert sorted(vocab.values()) == list(range(len(vocab))), "trained ids are not contiguous"
    ordered = [bytes(BYTE_DECODER[c] for c in token) for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    kept = [b for b in ordered if len(b) == 1 or not (set(b) & DIGITS)]
    assert all(len(b) == 1 or not (set(b) & DIGITS) or set(b) <= DIGITS for b in ordered)
    if len(kept) < n_ranks:
        raise SystemExit(f"the corpus yields only {len(kept)} tokens; lower --vocab-size")
    return {b: i for i, b in enumerate(kept[:n_ranks])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vocab-size", type=int, default=2048, help="total, special tokens included")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()

    train = corpus_texts("train")
    ranks = train_ranks(train, args.vocab_size - len(SPECIALS))
    tok = build_tokenizer(ranks)
    special_ids = {s: tok.token_to_id(s) for s in SPECIALS}
    assert list(special_ids.values()) == list(range(len(ranks), len(ranks) + len(SPECIALS)))
    assert tok.get_vocab_size(with_added_tokens=True) == args.vocab_size

    os.makedirs(args.out, exist_ok=True)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    config = {
        "added_tokens_decoder": {str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True} for s, i in special_ids.items()},
        "chat_template": GLM4_CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "padding_side": "left",
        "model_max_length": 2048,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write("\n")

    # Reload from disk as users do; check round trips, digits, and the chat template.
    tok = Tokenizer.from_file(os.path.join(args.out, "tokenizer.json"))
    hf = PreTrainedTokenizerFast.from_pretrained(args.out)
    for d in "0123456789":
        assert tok.encode(d, add_special_tokens=False).ids == [ranks[d.encode()]]
    assert tok.encode("1234567", add_special_tokens=False).ids == [ranks[d.encode()] for d in b"1234567".decode()]
    stats = {}
    for name, texts in [("train", train), ("eval", corpus_texts("eval"))]:
        enc = tok.encode_batch(texts, add_special_tokens=False)
        n_tokens = sum(len(e.ids) for e in enc)
        n_bytes = sum(len(t.encode("utf-8")) for t in texts)
        for t, e in zip(texts[:2000], enc[:2000]):
            assert tok.decode(e.ids, skip_special_tokens=False) == t
            assert hf(t, add_special_tokens=False)["input_ids"] == e.ids
        stats[name] = (len(texts), n_tokens, n_bytes)
    conv = [{"role": "system", "content": "Answer with the number only."},
            {"role": "user", "content": "What is 23 plus 45?"}, {"role": "assistant", "content": "68"}]
    rendered = hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=False)
    assert rendered == "[gMASK]<sop><|system|>\nAnswer with the number only.<|user|>\nWhat is 23 plus 45?<|assistant|>\n68"
    assert tok.encode("hi").ids[:2] == [special_ids["[gMASK]"], special_ids["<sop>"]]

    print(f"wrote {args.out}/tokenizer.json, tokenizer_config.json: {len(ranks)} BPE tokens + {len(SPECIALS)} special "
          f"tokens = {args.vocab_size}")
    print("special token ids: " + ", ".join(f"{s} {i}" for s, i in special_ids.items()))
    print(f"eos_token_id (GLM-4 stop set) = {[special_ids[s] for s in ['<|endoftext|>', '<|user|>', '<|observation|>']]}, "
          f"pad_token_id = {special_ids['<|endoftext|>']}")
    for name, (docs, n_tokens, n_bytes) in stats.items():
        print(f"{name}: {docs} documents, {n_tokens:,} tokens without [gMASK]<sop> ({n_tokens + 2 * docs:,} with), "
              f"{n_bytes / n_tokens:.2f} bytes/token")


if __name__ == "__main__":
    main()
