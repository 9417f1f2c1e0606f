"""Verdict as the reward in TRL's online trainers (GRPO, RLOO, online DPO's ``reward_funcs``), from the standard
library alone:

    from verdict_client import VerdictReward
    reward = VerdictReward("http://verdict:8000", token, project=3, run="grpo-7b-lr1e-6")
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], ...)

TRL calls a reward function with keyword arguments ``prompts``, ``completions`` (strings, or chat messages for a
conversational dataset), the dataset's other columns and ``trainer_state``; it expects one float per completion and
names the function by its ``__name__`` in its logs. Each call here becomes one or more ``POST /score/`` calls of at
most ``batch_size`` items, cut between prompts where possible so the server keeps a GRPO group together (capture and
routing treat a prompt's completions as one K-way ranking). The trainer's ``global_step`` travels as the capture
step, ``run`` as the policy run's name; a project that opted in keeps what was scored and watches the run (Goodhart
watch). Connection errors, 502/503 and 429 are retried (verdict_client.http); other errors raise, because a reward
silently replaced by a default would train the policy on nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from verdict_client.http import ApiClient
from verdict_client.messages import flatten

MAX_ITEMS = 256  # the server's per-call limit (serving.api.MAX_ITEMS)


def _chunks(pairs: list[tuple[str, str]], size: int) -> list[tuple[int, int]]:
    """[start, end) ranges of at most ``size`` items, ending at a change of prompt whenever a range can."""
    out, start = [], 0
    while start < len(pairs):
        end = min(start + size, len(pairs))
        if end < len(pairs):
            cut = end
            while cut > start + 1 and pairs[cut - 1][0] == pairs[cut][0]:
                cut -= 1
            if cut > start + 1 or pairs[start][0] != pairs[start + 1][0]:
                end = cut  # else a single group longer than a chunk: split it where the size says
        out.append((start, end))
        start = end
    return out


class VerdictReward:
    """A callable reward function for TRL: rewards from a Verdict project's active reward model (or ``version``)."""

    def __init__(self, base_url: str, token: str, project: int, *, run: str | None = None,
                 version: int | None = None, batch_size: int = 64, timeout: float = 60.0, retries: int = 4,
                 name: str = "verdict"):
        if not 1 <= batch_size <= MAX_ITEMS:
            raise ValueError(f"batch_size must be between 1 and {MAX_ITEMS}")
        self.client = ApiClient(base_url, token, timeout=timeout, retries=retries)
        self.project = int(project)
        self.run = run
        self.version = version
        self.batch_size = batch_size
        self.__name__ = name  # TRL logs rewards under the function's name
        self.last_version: int | None = None  # the version that answered the latest call (hot-swaps show here)
        self.captured = 0  # samples the project kept, over this object's life

    def score(self, prompts: Sequence[Any], completions: Sequence[Any], step: int | None = None) -> list[float]:
        """One reward per (prompt, completion); strings or chat messages."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        pairs = [(flatten(p), flatten(c)) for p, c in zip(prompts, completions, strict=True)]
        rewards: list[float] = []
        for start, end in _chunks(pairs, self.batch_size):
            body: dict[str, Any] = {"items": [{"prompt": p, "completion": c} for p, c in pairs[start:end]]}
            if self.version is not None:
                body["version"] = self.version
            if self.run:
                body["capture"] = {"run": self.run, "step": step}
            _, answer = self.client.post(f"/api/projects/{self.project}/score/", body)
            rewards.extend(float(s) for s in answer["scores"])
            self.last_version = answer["version"]
            self.captured += answer.get("captured", 0)
        return rewards

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], trainer_state: Any = None,
                 **_columns: Any) -> list[float]:
        step = getattr(trainer_state, "global_step", None)
        return self.score(prompts, completions, step=int(step) if step is not None else None)
