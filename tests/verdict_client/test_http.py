"""verdict_client.ApiClient against a real HTTP server that is briefly overloaded: 503s are retried after the
server's Retry-After (or a doubling wait), up to the client's retries, then raised; other errors are not retried."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from verdict_client import ApiClient, ApiError


class Flaky(http.server.BaseHTTPRequestHandler):
    answers: list[tuple[int, dict]] = []
    seen: list[float] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Flaky.seen.append(time.monotonic())
        status, headers = Flaky.answers.pop(0) if Flaky.answers else (200, {})
        body = json.dumps({"ok": status == 200}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    Flaky.answers, Flaky.seen = [], []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_503_is_retried_after_its_retry_after(server):
    Flaky.answers = [(503, {"Retry-After": "2"}), (503, {})]
    status, body = ApiClient(server, "t", retries=3).post("/x", {"a": 1})
    assert (status, body) == (200, {"ok": True}) and len(Flaky.seen) == 3
    assert Flaky.seen[1] - Flaky.seen[0] >= 1.9  # the server's Retry-After, not the first doubling wait (1 s)
    assert Flaky.seen[2] - Flaky.seen[1] >= 0.9


def test_retries_run_out_and_other_errors_are_not_retried(server):
    Flaky.answers = [(503, {})] * 3
    with pytest.raises(ApiError) as exhausted:
        ApiClient(server, "t", retries=1).post("/x")
    assert exhausted.value.status == 503 and len(Flaky.seen) == 2
    Flaky.answers, Flaky.seen = [(400, {})], []
    with pytest.raises(ApiError) as refused:
        ApiClient(server, "t", retries=5).post("/x")
    assert refused.value.status == 400 and len(Flaky.seen) == 1
