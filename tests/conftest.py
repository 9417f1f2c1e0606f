"""Shared fixtures: users, a project with members, and a factory for ranking tasks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from annotation.models import Completion, Membership, Project, Prompt, RankingTask

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle counters live in the (in-process) cache: every test starts with none."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def shared_data() -> Path:
    """../shared/data: real preference data, read in place and never copied into the repo."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def make_user(db):
    def make(username: str, password: str = "pw-for-tests-1", **extra):
        return get_user_model().objects.create_user(username=username, password=password, **extra)

    return make


@pytest.fixture
def manager(make_user):
    return make_user("manager", is_staff=True)


@pytest.fixture
def rater(make_user):
    return make_user("rater1")


@pytest.fixture
def rater2(make_user):
    return make_user("rater2")


def client_for(user):
    """A DRF APIClient that authenticates with the user's API token, as an API caller does."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def token_client():
    """token_client(user) → client_for(user), for tests that take it as a fixture."""
    return client_for


@pytest.fixture
def plain_manager(make_user, project):
    """A manager by membership only (the `manager` fixture is also staff, who sees everything)."""
    user = make_user("lead")
    Membership.objects.create(project=project, user=user, role=Membership.MANAGER)
    return user


@pytest.fixture
def project(db, manager, rater, rater2):
    p = Project.objects.create(name="Test project", guidelines="Prefer **helpful** answers.", k=4, overlap=2)
    Membership.objects.create(project=p, user=manager, role=Membership.MANAGER)
    Membership.objects.create(project=p, user=rater, role=Membership.RATER)
    Membership.objects.create(project=p, user=rater2, role=Membership.RATER)
    return p


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny randomly initialised reward-model backbone (rewardmodel.testing), built once per test session."""
    from rewardmodel.testing import make_tiny_backbone

    return make_tiny_backbone(tmp_path_factory.mktemp("tiny") / "backbone")


@pytest.fixture
def model_root(settings, tmp_path):
    """VERDICT_MODEL_ROOT in this test's tmp folder, with the scoring cache cleared."""
    from rewardmodel import scoring

    settings.VERDICT_MODEL_ROOT = tmp_path / "models"
    scoring.clear_cache()
    return settings.VERDICT_MODEL_ROOT


@pytest.fixture
def sigkill_when(model_root):
    """sigkill_when(argv, ready, what): run argv against this test's database and model store, and SIGKILL it as soon
    as ready() holds, as a crash would (a worker mid-training, a replay mid-labelling). PostgreSQL only: the
    subprocess must see the test's committed rows."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from django.db import connection

    def run(argv: list[str], ready, what: str, timeout: float = 120) -> None:
        db = connection.settings_dict
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "VERDICT_MODE": "test",
               "VERDICT_MODEL_ROOT": str(model_root),
               "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
        proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env)
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                assert proc.poll() is None, f"the {what} ended before it was killed"
                assert time.monotonic() < deadline, f"the {what} never got far enough to be killed"
                time.sleep(0.1)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()

    return run


@pytest.fixture
def lenient_gate(project):
    """Let the promotion gate promote versions trained on the few rankings a fast test has (minimums of 1)."""
    from rewardmodel.models import RetrainPolicy

    policy, _ = RetrainPolicy.objects.update_or_create(
        project=project, defaults={"enabled": False, "min_train_rankings": 1, "min_heldout_pairs": 1})
    return policy


@pytest.fixture
def make_task(db):
    """make_task(project, texts=[...], priority=0) → a RankingTask over one prompt and its completions."""
    counter = {"n": 0}

    def make(project: Project, texts: list[str] | None = None, priority: int = 0, prompt_text: str | None = None):
        counter["n"] += 1
        n = counter["n"]
        texts = texts or [f"answer {i} to prompt {n}" for i in range(project.k)]
        prompt = Prompt.objects.create(project=project, external_id=f"p{n}", text=prompt_text or f"Prompt {n}?")
        comps = [Completion.objects.create(prompt=prompt, model_name=f"model-{i}", text=t) for i, t in enumerate(texts)]
        task = RankingTask.objects.create(project=project, prompt=prompt, priority=priority)
        task.completions.set(comps)
        return task

    return make


def all_at_once(work, args: list) -> tuple[list, list]:
    """Run work(arg) in one thread per arg, released together by a barrier, each closing its own database
    connection; returns (results, exceptions)."""
    import threading

    from django.db import close_old_connections, connection

    barrier = threading.Barrier(len(args))
    results, errors = [], []

    def run(arg):
        try:
            barrier.wait()
            results.append(work(arg))
        except Exception as exc:  # surfaced to the caller
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@dataclass
class ScriptedServer:
    """A real HTTP server on 127.0.0.1 for clients under test: ``answer(request JSON) → (status, body, headers)``
    decides each reply (``render`` turns the body into JSON); every request, its headers (lower-cased) and arrival
    time are kept."""

    url: str
    answer: Callable[[dict], tuple[int, object, dict]] = lambda request: (200, {}, {})
    render: Callable[[object], object] = lambda body: body
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


@pytest.fixture
def scripted_server():
    import http.server
    import json
    import threading
    import time

    state: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            server: ScriptedServer = state["server"]
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = json.loads(raw) if raw else {}
            server.times.append(time.monotonic())
            server.requests.append(request)
            server.headers.append({k.lower(): v for k, v in self.headers.items()})
            status, body, headers = server.answer(request)
            payload = json.dumps(server.render(body) if status == 200 else (body or {"error": "busy"})).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["server"] = ScriptedServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state["server"]
    httpd.shutdown()
