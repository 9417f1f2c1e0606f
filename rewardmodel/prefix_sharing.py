"""Prefix sharing for decoder reward models: the K completions of a ranking share their prompt, so run it once.

Unshared, every completion is its own sequence ``[prompt, completion_k]`` and a decoder pays for the prompt K times.
Shared, a ranking is one packed row ``[prefix, rest_1, …, rest_K]`` with

- a 4D attention mask: the prefix is causal as usual; a token of ``rest_k`` sees the whole prefix and, causally,
  ``rest_k`` itself, never another completion;
- position ids that restart after the prefix for each completion (``rest_k`` sits at the positions it has alone);
- the reward of completion k read at the last token of ``rest_k`` (``rewardmodel.readout`` reads it, from ``read_at``).

In a causal decoder a token's hidden state depends only on the tokens it attends to and their positions, so every
completion token computes what it computes alone, and each reward is the unshared one up to the order of float sums
(about 1e-7 in fp32); gradients flow through the prefix once, summed over the K completions, as they would K times.
The prompt's tokens are paid once per ranking instead of K times: with prompts three times longer than completions,
about 9/16 of the tokens at K=4 (16 units become 7) and 3/8 at K=2.

The prefix is the longest common *token* prefix of the ranking's K encoded sequences (``rewardmodel.encoding``), not
a re-tokenised prompt: nothing is tokenised again, so the packed pieces concatenate to exactly the ids the unshared
path runs, whatever the tokenizer merges at the template's seams. With the chat format that prefix is the template's
head, the prompt and the template's middle (and any tokens the completions start with alike); when a long completion
made truncation cut one sequence's prompt more than the others', the sequences part earlier (at worst after the
head) and less is shared: never a different reward. Each completion keeps at least its last token of its own.

For decoders only. An encoder's prompt tokens attend to the completion (bidirectional attention), so a prompt run
once cannot serve K completions; encoders keep one sequence per completion. Among decoders, only attention
implementations that take a custom 4D mask (eager, sdpa; not flash-attention 2, which reads only a 2D padding mask),
and no sliding-window attention narrower than max_length (transformers uses a custom 4D mask as given, so a window
would be lost).
"""

from __future__ import annotations

import torch

from rewardmodel.readout import _unwrapped, reads_last_token

# A packed batch's mask holds rows × width² elements, and a custom mask keeps sdpa off its flash kernel (whose memory
# grows with the width, not its square): past this many elements (256 MiB as booleans) a batch runs one sequence per
# completion instead. The same rewards either way; only long contexts at large K get there.
MAX_MASK_ELEMENTS = 2**28

# Attention implementations that apply a 4D mask as given: sdpa wants it boolean (True: attend), eager additive.
MASKED_ATTENTION = {"sdpa": "bool", "eager": "additive"}


def mask_kind(model, max_length: int | None = None) -> str | None:
    """How `model` takes a packed ranking's mask ("bool" or "additive"), or None when it cannot share the prompt.

    A sliding attention window rules sharing out unless it is at least `max_length` (the longest sequence encoding
    makes): then the window never cuts anything, and the packed mask, which has none, is still exact."""
    if not reads_last_token(model):
        return None  # an encoder: its prompt tokens attend to the completion
    config = _unwrapped(model).config
    window = getattr(config, "sliding_window", None)
    slides = getattr(config, "use_sliding_window", True) or any(
        "sliding" in str(kind) for kind in getattr(config, "layer_types", None) or ())
    if window and slides and (max_length is None or window < max_length):
        return None
    return MASKED_ATTENTION.get(getattr(config, "_attn_implementation", None) or "eager")


def shared_prefix(sequences: list[list[int]]) -> int:
    """The length of the sequences' longest common prefix, leaving every sequence at least one token of its own (its
    reward is read at its own last token)."""
    shortest = min(len(s) for s in sequences)
    n = 0
    for column in zip(*sequences, strict=False):
        if n >= shortest - 1 or any(token != column[0] for token in column[1:]):
            break
        n += 1
    return n


def packed_width(sequences: list[list[int]]) -> int:
    """The length of one ranking's packed row: the shared prefix once, then each completion's own tokens."""
    return sum(len(s) for s in sequences) - (len(sequences) - 1) * shared_prefix(sequences)


def mask_fits(rankings: list[list[list[int]]]) -> bool:
    """Whether these rankings' packed mask stays within MAX_MASK_ELEMENTS."""
    return len(rankings) * max(packed_width(r) for r in rankings) ** 2 <= MAX_MASK_ELEMENTS


def pack(rankings: list[list[list[int]]], pad_token_id: int, device: torch.device, kind: str = "bool",
         dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """One packed row per ranking (each a list of its K encoded ``input_ids``), right-padded to the longest row.

    Returns the model inputs ``input_ids`` (R, L), ``attention_mask`` (R, 1, L, L: boolean, or additive in `dtype`
    when `kind` is "additive"), ``position_ids`` (R, L), and ``read_at`` (N, 2): for each completion in the order
    given (ranking by ranking), the row and column of its last token, where its reward is read.
    """
    rows, segments, positions, read_at = [], [], [], []
    for r, sequences in enumerate(rankings):
        n = shared_prefix(sequences)
        ids, seg, pos = list(sequences[0][:n]), [0] * n, list(range(n))
        for k, sequence in enumerate(sequences, start=1):
            rest = sequence[n:]
            ids += rest
            seg += [k] * len(rest)
            pos += range(n, len(sequence))
            read_at.append((r, len(ids) - 1))
        rows.append(ids)
        segments.append(seg)
        positions.append(pos)
    width = max(len(ids) for ids in rows)

    def padded(values: list[list[int]], fill: int) -> torch.Tensor:
        return torch.tensor([v + [fill] * (width - len(v)) for v in values], dtype=torch.int64, device=device)

    seg = padded(segments, -1)  # -1: padding, 0: the shared prefix, k: completion k
    index = torch.arange(width, device=device)
    query, key = seg.unsqueeze(2), seg.unsqueeze(1)
    allowed = (index.view(1, -1) <= index.view(-1, 1)).unsqueeze(0) & (key >= 0) & ((key == 0) | (key == query))
    # A padding row attends to itself only: never an empty row (sdpa would give NaN), and no real token reads it.
    allowed |= torch.eye(width, dtype=torch.bool, device=device).unsqueeze(0) & (query < 0)
    mask = allowed.unsqueeze(1)
    if kind == "additive":
        mask = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, torch.finfo(dtype).min)
    elif kind != "bool":
        raise ValueError(f"mask kind must be bool or additive, got {kind!r}")
    return {"input_ids": padded(rows, pad_token_id), "attention_mask": mask, "position_ids": padded(positions, 0),
            "read_at": torch.tensor(read_at, dtype=torch.int64, device=device)}
