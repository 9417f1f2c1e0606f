"""Encode (prompt, completion) text pairs for a reward model: keep the completion, cut the prompt's start."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Encoded:
    features: list[dict[str, list[int]]]  # one dict (input_ids, attention_mask, [token_type_ids]) per text pair
    truncated: int  # how many pairs did not fit max_length and were cut (never dropped)


def encode_pairs(tokenizer, prompts: list[str], completions: list[str], max_length: int) -> Encoded:
    """Tokenize as text pairs. Too long: cut the prompt from the left; if the completion alone is too long, cut both."""
    if len(prompts) != len(completions):
        raise ValueError("prompts and completions must have the same length")
    if not prompts:
        return Encoded([], 0)
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    budget = max_length - specials
    p_len = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    c_len = [len(ids) for ids in tokenizer(completions, add_special_tokens=False)["input_ids"]]
    fits, prompt_only, both = [], [], []
    for i, (p, c) in enumerate(zip(p_len, c_len, strict=True)):
        if p + c <= budget:
            fits.append(i)
        elif c < budget:
            prompt_only.append(i)
        else:
            both.append(i)
    features: list[dict[str, list[int]] | None] = [None] * len(prompts)
    saved_side = tokenizer.truncation_side
    try:
        for idx, strategy, side in ((fits, False, "right"), (prompt_only, "only_first", "left"),
                                    (both, "longest_first", "right")):
            if not idx:
                continue
            tokenizer.truncation_side = side
            enc = tokenizer([prompts[i] for i in idx], [completions[i] for i in idx],
                            truncation=strategy, max_length=max_length if strategy else None)
            keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
            for j, i in enumerate(idx):
                features[i] = {k: enc[k][j] for k in keys}
    finally:
        tokenizer.truncation_side = saved_side
    return Encoded([f for f in features if f is not None], len(prompt_only) + len(both))
