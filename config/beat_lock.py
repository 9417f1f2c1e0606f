"""One Celery beat at a time for the whole deployment: beat takes a lock when it starts and a second beat exits.

With Redis the lock is a key with a time-to-live (``VERDICT_BEAT_LOCK_TTL`` seconds, 60) that the running beat
renews every third of it: a beat that dies (kill -9, a lost host) frees the lock within the TTL, so a replacement can
start. Without Redis (the demo's file-system broker, one host) it is an flock on ``VAR_DIR/beat.lock``, freed by the
kernel when the process ends.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading

from django.conf import settings

log = logging.getLogger(__name__)
KEY = "verdict:beat-lock"
_held = {}  # keeps the file handle (or the renewing thread) alive for the process' lifetime


class BeatAlreadyRunning(RuntimeError):
    pass


def acquire() -> str:
    """Take the lock or raise BeatAlreadyRunning; returns a description of the holder (this process)."""
    me = f"{socket.gethostname()}:{os.getpid()}"
    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        ttl = int(settings.VERDICT_BEAT_LOCK_TTL)
        if not client.set(KEY, me, nx=True, ex=ttl):
            holder = (client.get(KEY) or b"?").decode()
            raise BeatAlreadyRunning(f"another beat holds the lock ({holder}); only one may run. If that beat is "
                                     f"gone, its lock expires within {ttl} s.")
        thread = threading.Thread(target=_renew, args=(client, me, ttl), name="beat-lock", daemon=True)
        thread.start()
        _held["thread"] = thread
    else:
        path = settings.VAR_DIR / "beat.lock"
        handle = open(path, "a+")  # noqa: SIM115 (held open for the life of the process)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BeatAlreadyRunning(f"another beat holds {path}; only one may run") from None
        _held["file"] = handle
    log.info("beat lock taken by %s", me)
    return me


def _renew(client, me: str, ttl: int) -> None:
    # Renew only while the key is still ours (compare-and-expire in one step).
    script = client.register_script(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0")
    stop = threading.Event()
    while not stop.wait(max(1.0, ttl / 3)):
        if not script(keys=[KEY], args=[me, ttl]):
            log.critical("the beat lock was lost (expired or taken over); stopping this beat")
            os._exit(1)
