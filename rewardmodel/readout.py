"""Read one reward per sequence from a reward model: the one place that knows where a reward lives.

Encoders: the model's own forward (its classifier pools [CLS]). Decoders: the base model runs with position ids
from the attention mask and the ``score`` head is applied at the last real token, found from the attention mask
(the last 1, whichever side the padding is on), as OpenRLHF reads it. Transformers' own decoder heads find that
token from ``pad_token_id``, which is wrong when pad is EOS and the sequence ends with EOS, and their position ids
ignore left padding. Rankings packed around a shared prompt (``rewardmodel.prefix_sharing``) bring their own position
ids and say where each completion's last token is (``read_at``).
"""

from __future__ import annotations

import torch

from rewardmodel.backbones import is_decoder


def _unwrapped(model):
    """The transformers model under a PEFT wrapper (its LoRA layers live inside it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Per row, the index of its last 1 (right, left or no padding alike)."""
    width = attention_mask.size(1)
    return width - 1 - attention_mask.flip(-1).to(torch.int64).argmax(-1)


def reads_last_token(model) -> bool:
    return is_decoder(_unwrapped(model).config)


def decoder_features(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """(completions, hidden): the decoder's final hidden state at each completion's last real token: one per row, or
    for packed rankings (rewardmodel.prefix_sharing) where ``read_at`` says."""
    hf = _unwrapped(model)
    mask = inputs["attention_mask"]
    if "read_at" in inputs:
        # Rankings packed by rewardmodel.prefix_sharing: a 4D mask, its own position ids, and the (row, column) of
        # each completion's last token.
        positions = inputs["position_ids"]
        rows, columns = inputs["read_at"].unbind(-1)
    else:
        positions = (mask.to(torch.int64).cumsum(-1) - 1).clamp(min=0)
        rows = torch.arange(mask.size(0), device=mask.device)
        columns = last_token_index(mask)
    hidden = hf.base_model(input_ids=inputs["input_ids"], attention_mask=mask, position_ids=positions,
                           use_cache=False).last_hidden_state
    return hidden[rows, columns]


def rewards(model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """(batch,) rewards, float32."""
    if reads_last_token(model):
        return _unwrapped(model).score(decoder_features(model, inputs)).squeeze(-1).float()
    return model(**inputs).logits.squeeze(-1).float()


class RewardReader(torch.nn.Module):
    """A model whose forward is the reward read: what DistributedDataParallel wraps, so that its gradient hooks see
    the forward that really runs (the decoder read calls the base model and the head, not the model's forward)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        return rewards(self.model, inputs)
