"""The demo's web server (runserver, a thread per request) against PostgreSQL keeps no connection per request: with
persistent connections every request thread left one open, and a long replay ran PostgreSQL out of connections."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
              pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connections_to(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [name])
        return cursor.fetchone()[0]


def test_runserver_in_demo_mode_does_not_keep_a_connection_per_request(tmp_path):
    db = connection.settings_dict
    port = free_port()
    env = {**os.environ, "VERDICT_MODE": "demo", "VERDICT_VAR_DIR": str(tmp_path), "REDIS_URL": "",
           "VERDICT_THROTTLE_BAD_TOKEN": "100000/min",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    env.pop("DB_CONN_MAX_AGE", None)
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=ROOT,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        before = connections_to(db["NAME"])
        deadline = time.monotonic() + 60
        answered = 0
        while answered < 40:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/api/projects/",
                                             headers={"Authorization": "Token not-a-token"})  # a query per request
            try:
                urllib.request.urlopen(request, timeout=10)
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
                answered += 1
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "runserver did not start"
                time.sleep(0.3)
        time.sleep(0.5)
        assert connections_to(db["NAME"]) - before <= 3
    finally:
        server.terminate()
        server.wait(timeout=30)
