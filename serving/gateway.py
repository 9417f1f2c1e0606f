"""How a web process gets rewards: from a reward server when one runs (serving.server), else in this process.

``VERDICT_REWARD_SERVER`` decides: ``auto`` (the default) hands requests to the reward servers while their heartbeat
is fresh and scores in-process otherwise (the zero-setup demo, a deployment without them); ``required`` answers 503
when no server is alive (a web process then never loads a model); ``off`` always scores in-process. In-process
scoring keeps the per-call bounds (serving.api), so it stays a few seconds of CPU at most.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from django.conf import settings


class ScoringUnavailable(RuntimeError):
    """No reward server answered in time (or none runs and in-process scoring is off)."""


class NoVersion(LookupError):
    """The project has no such version (or no active one)."""


@dataclass
class Scored:
    version_number: int
    version_id: int
    scores: list[float]
    via: str  # "server:<name>" or "in-process"


def _resolve(project, number: int | None):
    from rewardmodel import registry
    from rewardmodel.models import RewardModelVersion

    if number is None:
        version = registry.active_version(project)
        if version is None:
            raise NoVersion("This project has no active reward model.")
        return version
    version = RewardModelVersion.objects.filter(project=project, number=number,
                                                status=RewardModelVersion.READY).first()
    if version is None:
        raise NoVersion(f"This project has no ready version {number}.")
    return version


def in_process(project, number: int | None, pairs: list[tuple[str, str]], max_tokens: int | None) -> Scored:
    from rewardmodel import scoring

    version = _resolve(project, number)
    budget = None if max_tokens is None else scoring.token_budget(version, max_tokens)
    scores = scoring.score(version, [p for p, _ in pairs], [c for _, c in pairs], max_tokens=budget)
    return Scored(version.number, version.pk, [float(s) for s in scores], "in-process")


def via_server(project, number: int | None, pairs: list[tuple[str, str]], timeout_s: float) -> Scored:
    from serving.server import REPLY_KEY, REQUESTS_KEY, redis_client

    wait_s = max(1, int(round(timeout_s)))
    client = redis_client(socket_timeout=wait_s + 10)
    request_id = uuid.uuid4().hex
    client.rpush(REQUESTS_KEY, json.dumps({"id": request_id, "project": project.pk, "version": number,
                                           "pairs": [list(p) for p in pairs], "deadline": time.time() + timeout_s}))
    got = client.blpop([REPLY_KEY.format(request_id)], timeout=wait_s)
    if got is None:
        raise ScoringUnavailable(f"no reward server answered within {timeout_s:.0f} s")
    body = json.loads(got[1])
    if "error" in body:
        if body.get("status") == 404:
            raise NoVersion(body["error"])
        raise ScoringUnavailable(f"the reward server failed: {body['error']}")
    return Scored(body["version"], body["version_id"], body["scores"], f"server:{body.get('server', '?')}")


def score(project, number: int | None, pairs: list[tuple[str, str]], max_tokens: int | None) -> Scored:
    """Rewards for `pairs` from the project's active version (or version `number`), by the configured route."""
    mode = settings.VERDICT_REWARD_SERVER
    if mode != "off" and settings.REDIS_URL:
        from serving.server import servers_alive

        if servers_alive():
            return via_server(project, number, pairs, settings.VERDICT_REWARD_SERVER_TIMEOUT)
        if mode == "required":
            raise ScoringUnavailable("no reward server is running (VERDICT_REWARD_SERVER=required)")
    elif mode == "required":
        raise ScoringUnavailable("a reward server needs REDIS_URL (VERDICT_REWARD_SERVER=required)")
    return in_process(project, number, pairs, max_tokens)
