"""The demo: idempotent load_demo, the demo data itself, and run_demo's process supervision."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from annotation.management.commands.load_demo import DEMO_FILE, PROJECT_NAME
from annotation.management.commands.run_demo import demo_commands, supervise
from annotation.models import Completion, Membership, Project, RankingTask

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def load_demo() -> str:
    out = StringIO()
    call_command("load_demo", stdout=out)
    return out.getvalue()


def test_demo_file_is_small_varied_and_carries_inert_markup():
    records = [json.loads(line) for line in DEMO_FILE.read_text().splitlines() if line.strip()]
    assert len(records) == 12
    assert all(len(r["completions"]) == 4 for r in records)
    assert len({r["id"] for r in records}) == 12
    texts = [c["text"] for r in records for c in r["completions"]]
    assert any("<script>alert(1)</script>" in t for t in texts)
    assert any("[x](javascript:alert(1))" in t for t in texts)


@pytest.mark.django_db
def test_load_demo_is_idempotent_and_prints_credentials(var_dir):
    first = load_demo()
    creds = json.loads((var_dir / "demo-credentials.json").read_text())
    assert set(creds) == {"admin", "rater1", "rater2", "rater3", "rater4"}
    assert oct((var_dir / "demo-credentials.json").stat().st_mode & 0o777) == "0o600"
    token = Token.objects.get(user__username="admin")
    for user, password in creds.items():
        assert f"{user:8} password {password}" in first
    assert token.key in first
    second = load_demo()
    assert "already there" in second
    # Same accounts, same passwords, same token, nothing duplicated.
    assert json.loads((var_dir / "demo-credentials.json").read_text()) == creds
    assert Token.objects.get(user__username="admin").key == token.key
    project = Project.objects.get(name=PROJECT_NAME)
    assert RankingTask.objects.filter(project=project).count() == 12
    assert Completion.objects.filter(prompt__project=project).count() == 48
    assert RankingTask.objects.filter(project=project, is_gold=True).count() == 4
    users = get_user_model().objects
    admin = users.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password(creds["admin"])
    assert users.get(username="rater1").check_password(creds["rater1"])
    roles = dict(Membership.objects.filter(project=project).values_list("user__username", "role"))
    assert roles == {"admin": "manager", "rater1": "rater", "rater2": "rater", "rater3": "rater", "rater4": "rater"}
    # Untrusted markup is stored verbatim: escaping is the renderer's job, and it must not be lost.
    assert Completion.objects.filter(prompt__project=project, text__contains="<script>alert(1)</script>").exists()


@pytest.mark.django_db
def test_load_demo_completes_a_partial_project_and_resets_passwords_on_request(var_dir):
    load_demo()
    project = Project.objects.get(name=PROJECT_NAME)
    RankingTask.objects.filter(project=project, prompt__external_id="demo-05").delete()
    project.prompts.filter(external_id="demo-05").delete()
    old = json.loads((var_dir / "demo-credentials.json").read_text())
    assert "imported 1 tasks" in load_demo()
    out = StringIO()
    call_command("load_demo", "--reset-passwords", stdout=out)
    new = json.loads((var_dir / "demo-credentials.json").read_text())
    assert new["rater1"] != old["rater1"]
    assert get_user_model().objects.get(username="rater1").check_password(new["rater1"])


def test_demo_data_renders_inert_through_the_markdown_sanitiser():
    markdown = pytest.importorskip("annotation.markdown")
    for line in DEMO_FILE.read_text().splitlines():
        for completion in json.loads(line)["completions"]:
            html = str(markdown.render_markdown(completion["text"]))
            assert "<script" not in html and "href=\"javascript" not in html.lower()


def test_demo_commands_run_web_worker_on_both_queues_and_database_beat():
    cmds = demo_commands("127.0.0.1", 8000)
    assert cmds["web"][-2:] == ["127.0.0.1:8000", "--noreload"] and "runserver" in cmds["web"]
    worker = cmds["worker"]
    assert worker[worker.index("-Q") + 1] == "default,gpu"
    assert worker[worker.index("--concurrency") + 1] == "1"
    beat = cmds["beat"]
    assert beat[beat.index("--scheduler") + 1] == "django_celery_beat.schedulers:DatabaseScheduler"


def _sleeper(seconds: float, code: int = 0) -> list[str]:
    return [sys.executable, "-c", f"import sys, time; time.sleep({seconds}); sys.exit({code})"]


def test_supervise_stops_everyone_when_one_child_dies():
    started = time.monotonic()
    log: list[str] = []
    code = supervise({"long": _sleeper(60), "short": _sleeper(0.2, code=3)}, log=log.append, grace=5)
    assert code == 3
    assert time.monotonic() - started < 20
    assert any("short exited with status 3" in line for line in log)


def test_supervise_treats_a_clean_exit_of_a_child_as_a_failure():
    assert supervise({"long": _sleeper(60), "done": _sleeper(0.1)}, log=lambda _: None, grace=5) == 1


def test_sigterm_is_forwarded_to_every_child(tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    child = (
        "import os, pathlib, sys, time; "
        f"pathlib.Path({str(pid_dir)!r}, sys.argv[1]).write_text(str(os.getpid())); time.sleep(120)"
    )
    script = textwrap.dedent(
        f"""
        import sys
        from annotation.management.commands.run_demo import supervise
        child = {child!r}
        cmds = {{n: [sys.executable, "-c", child, n] for n in ("web", "worker", "beat")}}
        sys.exit(supervise(cmds, log=lambda m: print(m, flush=True), grace=5))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(list(pid_dir.iterdir())) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = [int(p.read_text()) for p in pid_dir.iterdir()]
        assert len(pids) == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "received SIGTERM" in proc.stdout.read()
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
