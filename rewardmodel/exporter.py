"""Export a registered reward-model version to a folder that transformers (or TRL, vLLM…) loads as it is.

A full version is copied. A LoRA version is copied as adapters (they need the base model beside them), or, with
``merge``, folded into its base (peft's ``merge_and_unload``) and saved as one ordinary model: what serving wants.
Either way the tokenizer (and its chat template) and the version's cards go along.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rewardmodel.backbones import adapter_base, holds_model, load_backbone
from rewardmodel.models import RewardModelVersion

CARDS = ("training_config.json", "snapshot.json", "metrics.json")


def export_version(version: RewardModelVersion, out: Path, merge: bool = False) -> dict:
    """Write `version` to `out` (which must not exist or be empty); returns what was written."""
    source = version.directory
    if not holds_model(source):
        raise FileNotFoundError(f"version {version.number} has no weights at {source}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    base = adapter_base(source)
    if base is None or not merge:
        shutil.copytree(source, out, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("checkpoint.pt", "checkpoint.tmp"))
        kind = "adapters" if base is not None else "full"
    else:
        model, tokenizer = load_backbone(source)
        merged = model.merge_and_unload()
        out.mkdir(parents=True, exist_ok=True)
        merged.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        for card in CARDS:
            if (source / card).is_file():
                shutil.copy2(source / card, out / card)
        kind = "merged"
    return {"version": version.number, "kind": kind, "base_model": str(base) if base else None, "path": str(out)}
