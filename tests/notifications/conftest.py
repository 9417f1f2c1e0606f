"""A real HTTP receiver for webhooks (http.server on 127.0.0.1, a random port, in a thread), the signature check a
receiver would run (the one docs/webhooks.md shows), and Celery run eagerly for the queued deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from notifications.models import Webhook


def verify(secret: str, headers, body: bytes, tolerance_s: int = 300) -> bool:
    """The receiver's side, as in docs/webhooks.md: HMAC-SHA256 of b"<timestamp>." + body, and a fresh timestamp."""
    timestamp = headers["X-Verdict-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance_s
    return fresh and hmac.compare_digest(expected, headers["X-Verdict-Signature"])


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """What it got, and the statuses it answers with, in turn (200 once the script runs out)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)

    def of(self, event: str) -> list[Received]:
        return [r for r in self.requests if r.headers.get("X-Verdict-Event") == event]


@pytest.fixture
def receiver():
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(Received(self.path, dict(self.headers.items()), body))
            code = state.script.pop(0) if state.script else 200
            self.send_response(code)
            if code == 302:
                self.send_header("Location", "/elsewhere")
            answer = b'{"ok": false, "why": "<b>nope</b>"}' if code >= 300 else b"{}"
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def eager(settings, django_capture_on_commit_callbacks):
    """Queued deliveries run at once, in this process (their retries too, without waiting), when the test's
    transaction would have committed: use as `with eager():`."""
    from config.celery import app

    settings.VERDICT_WEBHOOK_BACKOFF_S = 0.01
    app.conf.task_always_eager = True
    try:
        yield lambda: django_capture_on_commit_callbacks(execute=True)
    finally:
        app.conf.task_always_eager = False


@pytest.fixture
def hook(project, receiver):
    """A webhook of the test project on every event, pointing at the receiver."""
    from notifications.models import EVENTS

    return Webhook.objects.create(project=project, url=receiver.url, events=list(EVENTS))
