"""Container health check for the web service: GET the login page from gunicorn inside the container.

It sends a Host from DJANGO_ALLOWED_HOSTS (so Django accepts it) and X-Forwarded-Proto: https (so production
settings answer instead of redirecting to HTTPS). Exit status 0 when the page answers 200.
"""

import os
import sys
import urllib.request

hosts = [h.strip().lstrip(".") for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",")]
host = next((h for h in hosts if h and h != "*"), "localhost")
port = os.environ.get("VERDICT_HEALTHCHECK_PORT", "8000")
request = urllib.request.Request(
    f"http://127.0.0.1:{port}/accounts/login/", headers={"Host": host, "X-Forwarded-Proto": "https"}
)
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
