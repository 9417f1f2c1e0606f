"""Faults survived on the real services: a database connection dropped by the server (pg_terminate_backend), and
the answer the API gives while the database is unreachable."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import OperationalError, connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _terminate_other_backends() -> int:
    """Kill every connection to the test database but this test's own, as a database failover or restart would."""
    s = connection.settings_dict
    with psycopg.connect(host=s["HOST"] or "127.0.0.1", port=s["PORT"] or 5432, user=s["USER"],
                         dbname=s["NAME"], autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid NOT IN (pg_backend_pid(), %s)", [connection.connection.info.backend_pid]).fetchall()
    return len(rows)


@pytest.fixture
def gunicorn_server(transactional_db):
    """gunicorn (sync workers, as deployed) on this test's database: its workers keep connections between requests
    (CONN_MAX_AGE), which the test client and live_server never do."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    db = connection.settings_dict
    env = {**os.environ, "VERDICT_MODE": "test", "DB_CONN_MAX_AGE": "60",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "--bind",
                             f"127.0.0.1:{port}", "--workers", "2"], cwd=root, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/accounts/login/", timeout=5)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_connections_the_database_dropped_are_reopened_not_a_500(gunicorn_server, project, rater):
    """The database kills every connection the web workers keep (a failover, a restart, an admin); each next
    request checks its connection first (CONN_HEALTH_CHECKS) and reconnects: 200, never an error."""
    import json
    import urllib.request

    token = Token.objects.get_or_create(user=rater)[0].key

    def get() -> tuple[int, dict]:
        req = urllib.request.Request(f"{gunicorn_server}/api/projects/", headers={"Authorization": f"Token {token}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())

    for _ in range(4):  # warm both workers' connections
        assert get()[0] == 200
    for _ in range(3):
        assert _terminate_other_backends() >= 1
        for _ in range(4):
            status, body = get()
            assert status == 200 and body["results"][0]["id"] == project.pk


@pytest.mark.django_db
def test_the_api_answers_503_with_retry_after_while_the_database_is_gone(project, rater, monkeypatch):
    from annotation import api

    client = _client(rater)

    def unreachable(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(api.ProjectViewSet, "get_queryset", unreachable)
    response = client.get("/api/projects/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("application/json") and "retry" in response.json()["detail"]


def test_under_load_a_dropped_database_gives_200s_or_json_503s_never_an_html_500(gunicorn_server, project, rater):
    """Four clients hammer the API while the database kills every web connection five times: each answer is a 200,
    or a JSON 503 with Retry-After for a request whose query was cut mid-way; never an HTML error page."""
    import threading
    import urllib.error
    import urllib.request

    token = Token.objects.get_or_create(user=rater)[0].key
    answers: list[tuple[int, str, str | None]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            req = urllib.request.Request(f"{gunicorn_server}/api/projects/",
                                         headers={"Authorization": f"Token {token}"})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    answers.append((resp.status, resp.headers.get("Content-Type", ""), None))
            except urllib.error.HTTPError as exc:
                answers.append((exc.code, exc.headers.get("Content-Type", ""), exc.headers.get("Retry-After")))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            time.sleep(0.5)
            _terminate_other_backends()
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert len(answers) > 50
    bad = [a for a in answers if not (a[0] == 200 or (a[0] == 503 and a[1].startswith("application/json") and a[2]))]
    assert not bad, bad[:5]
    assert sum(a[0] == 200 for a in answers) >= 0.9 * len(answers)
