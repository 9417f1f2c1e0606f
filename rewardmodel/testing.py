"""Helpers for tests and demos: a tiny random BERT backbone and synthetic rankings with a learnable signal."""

from __future__ import annotations

import random
from pathlib import Path

from rewardmodel.backbones import default_backbone_path, load_tokenizer


def make_tiny_backbone(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A BertForSequenceClassification with random weights and the MiniLM tokenizer, saved as safetensors."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = load_tokenizer(default_backbone_path())
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128,
                        num_labels=1, pad_token_id=tokenizer.pad_token_id)
    model = BertForSequenceClassification(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


GOOD = ["a clear and correct answer", "helpful precise explanation", "correct and kind reply", "accurate summary"]
BAD = ["wrong nonsense", "rude useless text", "incorrect guess", "off topic rambling"]


def synthetic_completions(rng: random.Random, k: int = 4) -> list[tuple[str, int]]:
    """k completions with a hidden quality (higher = better): more 'good' phrases → better."""
    out = []
    for quality in range(k):
        words = [rng.choice(GOOD) for _ in range(quality)] + [rng.choice(BAD) for _ in range(k - 1 - quality)]
        rng.shuffle(words)
        out.append((" ".join(words) or "ok", quality))
    rng.shuffle(out)
    return out
