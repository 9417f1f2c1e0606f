"""Verdict's Python client, importable without Django (it needs only the standard library): the REST API with a
token (:class:`ApiClient`), and :class:`VerdictReward`, a reward function for TRL's online trainers. The replay uses
the first; RL trainers the second."""

from verdict_client.http import ApiClient, ApiError
from verdict_client.reward import VerdictReward

__all__ = ["ApiClient", "ApiError", "VerdictReward"]
