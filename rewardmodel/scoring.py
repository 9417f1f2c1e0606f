"""Score and embed texts with a stored reward-model version (model + tokenizer cached per folder and device)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

_CACHE: dict[str, tuple] = {}
_LOCK = threading.Lock()
MAX_CACHED = 4


def _folder(version_or_path) -> Path:
    return Path(version_or_path.directory) if hasattr(version_or_path, "directory") else Path(version_or_path)


def load(version_or_path):
    """(model, tokenizer, device) in eval mode, on CUDA when present; cached."""
    from rewardmodel.backbones import holds_model, load_backbone
    from rewardmodel.trainer import pick_device

    folder = _folder(version_or_path)
    key = str(folder.resolve())
    with _LOCK:
        if key not in _CACHE:
            if not holds_model(folder):
                raise FileNotFoundError(f"no reward model at {folder}")
            model, tokenizer = load_backbone(folder)
            device = pick_device("auto")
            model.to(device).eval()
            if len(_CACHE) >= MAX_CACHED:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = (model, tokenizer, device)
        return _CACHE[key]


def clear_cache() -> None:
    with _LOCK:
        _CACHE.clear()


def _encoding(version_or_path) -> tuple[int, str]:
    """(max_length, keep) the version was trained with: scoring must cut texts as training did."""
    config = getattr(version_or_path, "config", None) or {}
    return int(config.get("max_length", 256)), str(config.get("keep", "end"))


# A web request's scoring budget is VERDICT_SCORE_MAX_TOKENS tokens of a backbone this size (all-MiniLM-L6-v2); a
# larger backbone gets proportionally fewer, since a forward costs about 2 × parameters FLOPs per token.
REFERENCE_PARAMETERS = 22_700_000


def token_budget(version, tokens_for_reference: int) -> int:
    """Tokens one call may score with this version: the budget for a MiniLM-sized model, scaled by its size."""
    model, _, _ = load(version)
    parameters = sum(p.numel() for p in model.parameters())
    return max(1, int(tokens_for_reference * REFERENCE_PARAMETERS / max(1, parameters)))


def score(version, prompts: list[str], completions: list[str], max_tokens: int | None = None) -> np.ndarray:
    """Rewards of (prompt, completion) pairs; with `max_tokens`, rewardmodel.trainer.TooManyTokens is raised before
    any forward when the texts hold more tokens (after truncation) than that."""
    from rewardmodel.trainer import predict

    model, tokenizer, device = load(version)
    max_length, keep = _encoding(version)
    rewards, _ = predict(model, tokenizer, list(prompts), list(completions), max_length, device=device, keep=keep,
                         max_tokens=max_tokens)
    return rewards.numpy()


def embed(version_or_path, prompts: list[str], completions: list[str], batch_size: int = 64) -> np.ndarray:
    """Features the reward head sees, (n, hidden): what the classifier gets for encoders (pooled [CLS]), the last
    real token's hidden state for decoders."""
    import torch

    from rewardmodel import readout
    from rewardmodel.encoding import encode_pairs
    from rewardmodel.trainer import collate

    model, tokenizer, device = load(version_or_path)
    max_length, keep = _encoding(version_or_path)
    encoded = encode_pairs(tokenizer, list(prompts), list(completions), max_length, keep)
    decoder = readout.reads_last_token(model)
    captured: list[torch.Tensor] = []
    hook = None if decoder else model.classifier.register_forward_pre_hook(
        lambda _m, args: captured.append(args[0].detach()))
    out: list[np.ndarray] = []
    try:
        with torch.no_grad():
            for start in range(0, len(encoded.features), batch_size):
                inputs = collate(tokenizer, encoded.features[start : start + batch_size], device)
                if decoder:
                    feats = readout.decoder_features(model, inputs)
                else:
                    captured.clear()
                    model(**inputs)
                    feats = captured[0]
                    if feats.dim() == 3:  # encoder heads that pool inside (e.g. RoBERTa): the first token
                        feats = feats[:, 0]
                out.append(feats.float().cpu().numpy())
    finally:
        if hook is not None:
            hook.remove()
    if not out:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    return np.concatenate(out).astype(np.float32)
