"""The reward server: a long-running process that holds reward models and answers scoring requests in batches.

    manage.py serve_rewards            # one per machine that scores (CPU or GPU); any number of them

RL trainers call ``POST /api/projects/{id}/score/`` thousands of times. The web process only checks the caller and
the bounds, then hands the request over Redis to whichever reward server is free (serving.gateway), and waits for
its answer: no web process ever loads a model or runs a forward. A server takes every request waiting on the queue
(up to ``max_items`` pairs, or what arrived within ``max_wait_s`` of the first), groups them by project and
version, runs each group as one batch, and answers each request on its own reply key.

Versions: a request names one (pinned) or follows the project's active version. The server looks the active version
up at most every ``resolve_every_s``; when a promotion changed it, the new model is loaded in a background thread
while the old one keeps answering, then swapped in: a promotion fails no call, and the answer says which version
scored it. Liveness is a Redis key with a short expiry (``HEARTBEAT_KEY``), refreshed by every server while it runs.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

REQUESTS_KEY = "verdict:rewards:requests"
REPLY_KEY = "verdict:rewards:reply:{}"
HEARTBEAT_KEY = "verdict:rewards:alive"
HEARTBEAT_TTL_S = 10
REPLY_TTL_S = 60


def redis_client(socket_timeout: float = 10.0):
    """A Redis client whose reads wait up to `socket_timeout` s: a blocking pop must ask for more than it blocks
    (redis-py 8 otherwise cuts every read at 5 s, so a reply slower than that raised instead of arriving)."""
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=socket_timeout)


@dataclass
class ServerStats:
    batches: int = 0
    requests: int = 0
    items: int = 0
    swaps: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)


class RewardServer:
    def __init__(self, max_items: int = 256, max_wait_s: float = 0.005, resolve_every_s: float = 1.0,
                 name: str = ""):
        self.max_items, self.max_wait_s, self.resolve_every_s = max_items, max_wait_s, resolve_every_s
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.redis = redis_client()
        self.stats = ServerStats()
        self._active: dict[int, tuple[float, object]] = {}  # project → (looked up at, version serving "active")
        self._loading: dict[int, threading.Thread] = {}
        self._stop = threading.Event()

    # --- the loop ------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    def serve_forever(self, idle_timeout_s: float = 1.0) -> None:
        from django.db import close_old_connections, connection

        log.info("reward server %s: serving %s", self.name, REQUESTS_KEY)
        try:
            while not self._stop.is_set():
                self.heartbeat()
                close_old_connections()  # a connection the database dropped is reopened, as a web request's is
                requests = self.take(idle_timeout_s)
                if requests:
                    self.answer(requests)
        finally:
            self.redis.delete(f"{HEARTBEAT_KEY}:{self.name}")
            connection.close()

    def heartbeat(self) -> None:
        self.redis.set(f"{HEARTBEAT_KEY}:{self.name}", "1", ex=HEARTBEAT_TTL_S)

    def take(self, timeout_s: float) -> list[dict]:
        """The waiting requests: block for the first, then take what is there (or arrives within max_wait_s)."""
        first = self.redis.blpop([REQUESTS_KEY], timeout=max(1, int(timeout_s)))
        if first is None:
            return []
        batch = [json.loads(first[1])]
        items = len(batch[0]["pairs"])
        deadline = time.monotonic() + self.max_wait_s
        while items < self.max_items:
            raw = self.redis.lpop(REQUESTS_KEY)
            if raw is None:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.0005)
                continue
            request = json.loads(raw)
            batch.append(request)
            items += len(request["pairs"])
        return batch

    def answer(self, requests: list[dict]) -> None:
        """Score every request, grouped by (project, version), one batch per group; reply to each."""
        from rewardmodel import scoring

        groups: dict[tuple, list[dict]] = {}
        now = time.time()
        for request in requests:
            if request.get("deadline") and request["deadline"] < now:
                continue  # its caller gave up waiting: nobody reads the answer
            try:
                version = self.version_for(request["project"], request.get("version"))
            except LookupError as exc:
                self.reply(request, {"error": str(exc), "status": 404})
                continue
            groups.setdefault((version.pk,), []).append({**request, "_version": version})
        for group in groups.values():
            version = group[0]["_version"]
            pairs = [p for request in group for p in request["pairs"]]
            try:
                scores = scoring.score(version, [p for p, _ in pairs], [c for _, c in pairs])
            except Exception as exc:  # a broken model answers every caller, instead of leaving them to time out
                log.exception("reward server %s: scoring with version %s failed", self.name, version.pk)
                self.stats.errors += 1
                for request in group:
                    self.reply(request, {"error": f"{type(exc).__name__}: {exc}"[:500], "status": 500})
                continue
            self.stats.batches += 1  # before the replies: whoever reads an answer sees it counted
            self.stats.requests += len(group)
            self.stats.items += len(pairs)
            start = 0
            for request in group:
                n = len(request["pairs"])
                self.reply(request, {"version": version.number, "version_id": version.pk,
                                     "scores": [float(s) for s in scores[start : start + n]]})
                start += n

    def reply(self, request: dict, body: dict) -> None:
        key = REPLY_KEY.format(request["id"])
        pipe = self.redis.pipeline()
        pipe.rpush(key, json.dumps({**body, "server": self.name}))
        pipe.expire(key, REPLY_TTL_S)
        pipe.execute()

    # --- versions ------------------------------------------------------------------------------

    def version_for(self, project_id: int, number: int | None):
        """The version to score with: the pinned one, or the one serving "active" (swapped once a newly promoted
        version is loaded). LookupError when there is none."""
        from rewardmodel.models import RewardModelVersion

        if number is not None:
            version = RewardModelVersion.objects.filter(project_id=project_id, number=number,
                                                        status=RewardModelVersion.READY).first()
            if version is None:
                raise LookupError(f"project {project_id} has no ready version {number}")
            return version
        looked_at, serving = self._active.get(project_id, (0.0, None))
        if serving is not None and time.monotonic() - looked_at < self.resolve_every_s:
            return serving
        from rewardmodel import registry

        active = registry.active_version(project_id)
        if active is None:
            if serving is not None:  # demoted without a successor: keep answering with what was active
                return serving
            raise LookupError(f"project {project_id} has no active reward model")
        if serving is None:
            self._load(active)  # nothing to answer with meanwhile: load now
            self._active[project_id] = (time.monotonic(), active)
            return active
        if active.pk != serving.pk:
            self._swap_when_loaded(project_id, active)
        self._active[project_id] = (time.monotonic(), self._active.get(project_id, (0, serving))[1])
        return self._active[project_id][1]

    def _load(self, version) -> None:
        from rewardmodel import scoring

        scoring.load(version)

    def _swap_when_loaded(self, project_id: int, version) -> None:
        """Load `version` in a thread; the project's "active" answers switch to it once it is in memory."""
        thread = self._loading.get(project_id)
        if thread is not None and thread.is_alive():
            return

        def load_then_swap():
            try:
                self._load(version)
            except Exception:
                log.exception("reward server %s: loading version %s failed; still serving the old one", self.name,
                              version.pk)
                return
            finally:
                from django.db import connection

                connection.close()  # this thread's own connection
            self._active[project_id] = (time.monotonic(), version)
            self.stats.swaps += 1
            log.info("reward server %s: project %s now served by version %s", self.name, project_id,
                     version.number)

        thread = threading.Thread(target=load_then_swap, name=f"load-v{version.pk}", daemon=True)
        self._loading[project_id] = thread
        thread.start()


def servers_alive() -> bool:
    """Whether any reward server's heartbeat is fresh (the gateway then hands requests over)."""
    client = redis_client()
    return any(True for _ in client.scan_iter(match=f"{HEARTBEAT_KEY}:*", count=100))
