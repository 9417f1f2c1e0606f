"""Encoding for the reward model: texts longer than the model are cut by Verdict, quietly (issue 24: transformers'
"513 > 512 … indexing errors" warning was the only thing `train_reward_model --sync` printed for 19 minutes)."""

from __future__ import annotations

from rewardmodel.backbones import default_backbone_path, load_tokenizer
from rewardmodel.encoding import encode_pairs
from rewardmodel.testing import make_tiny_tokenizer


def test_long_texts_are_cut_without_a_misleading_warning(capfd):
    long = "word " * 2000  # far past MiniLM's 512 positions
    for tokenizer in (load_tokenizer(default_backbone_path()), make_tiny_tokenizer(chat=True)):
        tokenizer.model_max_length = 512
        encoded = encode_pairs(tokenizer, ["a question " + long], [long], max_length=128)
        assert all(len(f["input_ids"]) <= 128 for f in encoded.features) and encoded.truncated == 1
    assert "indexing errors" not in capfd.readouterr().err  # transformers' own handler writes to stderr
