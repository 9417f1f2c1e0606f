"""Encode (prompt, completion) for a reward model, never dropping an example and counting every cut.

Two formats, chosen by the tokenizer (``rewardmodel.backbones.load_backbone`` settles which one a backbone gets):

- **Text pairs** (encoders such as BERT/MiniLM, read at [CLS]): ``[CLS] prompt [SEP] completion [SEP]``.
- **Chat** (decoders, read at their last real token): the tokenizer's chat template with the prompt as the user turn
  and the completion as the assistant turn. The template is rendered once with sentinels and split into the fixed
  text around the two contents, so a cut shortens the contents and never the template's markup or its end of turn.

Too long for ``max_length``: the prompt loses its start first. When the completion alone does not fit, ``keep`` says
which end of it survives: ``"end"`` (the default: a decoder's reward is read at the end, and the end of an answer is
where it goes wrong) or ``"start"``; the prompt then keeps nothing in chat format, and in text-pair format the
tokenizer's longest-first rule cuts both. ``Encoded`` counts cut prompts and cut completions apart.
"""

from __future__ import annotations

from dataclasses import dataclass

KEEP = ("end", "start")
_PROMPT, _COMPLETION = "\u2063VERDICT_PROMPT\u2063", "\u2063VERDICT_COMPLETION\u2063"


class TooManyTokens(ValueError):
    """A scoring call would run more tokens through the model than its caller allows (rewardmodel.trainer.predict)."""

    def __init__(self, tokens: int, allowed: int):
        super().__init__(f"{tokens:,} tokens to score (after truncation); at most {allowed:,} per call")
        self.tokens, self.allowed = tokens, allowed


@dataclass
class Encoded:
    features: list[dict[str, list[int]]]  # one dict (input_ids, attention_mask, [token_type_ids]) per example
    truncated: int  # examples that did not fit max_length and were cut (never dropped)
    completions_cut: int = 0  # of those, how many lost part of the completion itself (not only prompt)


def uses_chat_format(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def encode_pairs(tokenizer, prompts: list[str], completions: list[str], max_length: int,
                 keep: str = "end") -> Encoded:
    if len(prompts) != len(completions):
        raise ValueError("prompts and completions must have the same length")
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}, got {keep!r}")
    if not prompts:
        return Encoded([], 0)
    if uses_chat_format(tokenizer):
        return _encode_chat(tokenizer, prompts, completions, max_length, keep)
    return _encode_text_pairs(tokenizer, prompts, completions, max_length, keep)


def template_parts(tokenizer) -> tuple[str, str, str]:
    """(before the prompt, between prompt and completion, after the completion) of the tokenizer's chat template."""
    messages = [{"role": "user", "content": _PROMPT}, {"role": "assistant", "content": _COMPLETION}]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False)
    if rendered.count(_PROMPT) != 1 or rendered.count(_COMPLETION) != 1 or (
            rendered.index(_PROMPT) > rendered.index(_COMPLETION)):
        raise ValueError("the chat template must render the user's and the assistant's content once each, verbatim "
                         "and in that order")
    head, rest = rendered.split(_PROMPT)
    middle, tail = rest.split(_COMPLETION)
    return head, middle, tail


def _encode_chat(tokenizer, prompts, completions, max_length, keep) -> Encoded:
    # verbose=False: these only measure; Verdict cuts to max_length itself, so transformers' "longer than the
    # maximum … indexing errors" warning would be wrong here.
    head, middle, tail = (tokenizer(part, add_special_tokens=False, verbose=False)["input_ids"]
                          for part in template_parts(tokenizer))
    budget = max_length - len(head) - len(middle) - len(tail)
    if budget < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text: the chat template alone takes "
                         f"{max_length - budget} tokens")
    prompt_ids = tokenizer(list(prompts), add_special_tokens=False, verbose=False)["input_ids"]
    completion_ids = tokenizer(list(completions), add_special_tokens=False, verbose=False)["input_ids"]
    features, truncated, completions_cut = [], 0, 0
    for p, c in zip(prompt_ids, completion_ids, strict=True):
        if len(p) + len(c) > budget:
            truncated += 1
            if len(c) >= budget:
                completions_cut += len(c) > budget
                p, c = [], (c[-budget:] if keep == "end" else c[:budget])
            else:
                p = p[len(p) - (budget - len(c)):]
        ids = head + p + middle + c + tail
        features.append({"input_ids": ids, "attention_mask": [1] * len(ids)})
    return Encoded(features, truncated, completions_cut)


def _encode_text_pairs(tokenizer, prompts, completions, max_length, keep) -> Encoded:
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    budget = max_length - specials
    # Measured only (verbose=False): no "indexing errors" warning for texts Verdict is about to cut.
    p_len = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False, verbose=False)["input_ids"]]
    c_len = [len(ids) for ids in tokenizer(completions, add_special_tokens=False, verbose=False)["input_ids"]]
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
                                    (both, "longest_first", "left" if keep == "end" else "right")):
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
    return Encoded([f for f in features if f is not None], len(prompt_only) + len(both), len(both))
