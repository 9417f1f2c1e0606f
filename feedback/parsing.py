"""Strict reading of a judge's reply: A, B or TIE and nothing else. A reply that says more is not read for a verdict
("A is better than B, though B…" could be either): it is asked again, then recorded as a failure, never guessed."""

from __future__ import annotations

import re

# Wrapping a model may add around a bare answer: quotes, markdown emphasis, a final full stop, "Answer:".
_WRAPPED = re.compile(r"""^\s*(?:(?:final\s+)?answer\s*:\s*)?[\s"'`*_(\[]*(A|B|TIE)[\s"'`*_)\].!]*$""", re.IGNORECASE)


class Unparseable(ValueError):
    pass


def parse_pairwise(reply: str) -> str:
    """'A', 'B' or 'TIE'; raises Unparseable for anything else."""
    match = _WRAPPED.match(reply or "")
    if match is None:
        shown = (reply or "").strip().replace("\n", " ")
        raise Unparseable(f"not A, B or TIE: {shown[:80]!r}")
    return match.group(1).upper()
