"""Container health checks that need no Django start-up (they run every 30 s):

    python deploy/healthcheck.py web    GET the login page from gunicorn inside the container (VERDICT_HEALTHCHECK_PORT)
    python deploy/healthcheck.py beat   this host's beat holds the one-beat lock in Redis (config/beat_lock.py)
    python deploy/healthcheck.py rewards   this host's reward server refreshed its heartbeat (serving/server.py)

The web check sends a Host from DJANGO_ALLOWED_HOSTS (so Django accepts it) and X-Forwarded-Proto: https (so
production settings answer instead of redirecting to HTTPS). Exit status 0 means healthy.
"""

import os
import socket
import sys
import urllib.request

BEAT_LOCK_KEY = "verdict:beat-lock"  # config.beat_lock.KEY (not imported: that would load Django's settings)
REWARDS_HEARTBEAT_KEY = "verdict:rewards:alive"  # serving.server.HEARTBEAT_KEY, suffixed ":<host>:<pid>"


def web() -> None:
    hosts = [h.strip().lstrip(".") for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")]
    host = next((h for h in hosts if h and h != "*"), "localhost")
    port = os.environ.get("VERDICT_HEALTHCHECK_PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/accounts/login/", headers={"Host": host, "X-Forwarded-Proto": "https"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200:
            raise RuntimeError(f"login page answered {response.status}")


def beat() -> None:
    import redis

    holder = (redis.Redis.from_url(os.environ["REDIS_URL"]).get(BEAT_LOCK_KEY) or b"").decode()
    if not holder.startswith(f"{socket.gethostname()}:"):
        raise RuntimeError(f"the beat lock is held by {holder or 'nobody'}, not by {socket.gethostname()}")


def rewards() -> None:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    if not any(True for _ in client.scan_iter(match=f"{REWARDS_HEARTBEAT_KEY}:{socket.gethostname()}:*")):
        raise RuntimeError(f"no reward server on {socket.gethostname()} refreshed its heartbeat")


if __name__ == "__main__":
    check = sys.argv[1] if len(sys.argv) > 1 else "web"
    try:
        {"web": web, "beat": beat, "rewards": rewards}[check]()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        print(f"unhealthy ({check}): {exc}", file=sys.stderr)
        sys.exit(1)
