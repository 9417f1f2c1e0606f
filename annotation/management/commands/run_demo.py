"""`manage.py run_demo`: the web server, a Celery worker (queues default + gpu) and Celery beat, together.

The three run as child processes. Ctrl-C or SIGTERM is passed on to all of them; if any one of them
dies, the others are stopped too and the command exits with that child's status, so a broken demo
never half-runs. Without REDIS_URL the worker and beat use the file-system broker under VAR_DIR.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.3


def demo_commands(host: str = "127.0.0.1", port: int = 8000) -> dict[str, list[str]]:
    """name → argv of each child process."""
    python = sys.executable
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    celery = [python, "-m", "celery", "-A", "config"]
    return {
        "web": [python, manage, "runserver", f"{host}:{port}", "--noreload"],
        "worker": [*celery, "worker", "-Q", "default,gpu", "--concurrency", "1", "--loglevel", "INFO",
                   "--hostname", "demo@%h"],
        "beat": [*celery, "beat", "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
                 "--loglevel", "INFO"],
    }


def stop_all(children: dict[str, subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM every child still running, then SIGKILL whatever has not exited after `grace` seconds."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def supervise(commands: dict[str, Sequence[str]], *, env: dict[str, str] | None = None, cwd: str | None = None,
              log=print, grace: float = STOP_GRACE_SECONDS) -> int:
    """Run every command until one exits or we are told to stop; return the exit status to use.

    Children run in their own sessions, so a terminal's Ctrl-C reaches only this process, which
    then stops them in order (no child sees the signal twice).
    """
    stop_requested: list[int] = []
    previous = {}

    def request_stop(signum, _frame):
        stop_requested.append(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, request_stop)
    children: dict[str, subprocess.Popen] = {}
    try:
        for name, argv in commands.items():
            children[name] = subprocess.Popen(list(argv), env=env, cwd=cwd, start_new_session=True)
            log(f"started {name} (pid {children[name].pid}): {' '.join(argv)}")
        while True:
            if stop_requested:
                log(f"received {signal.Signals(stop_requested[0]).name}; stopping {', '.join(children)}")
                return 0
            for name, proc in children.items():
                code = proc.poll()
                if code is not None:
                    log(f"{name} exited with status {code}; stopping the others")
                    return code if code != 0 else 1
            time.sleep(POLL_SECONDS)
    finally:
        stop_all(children, grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Command(BaseCommand):
    help = "Run the demo: web server, Celery worker (queues default,gpu) and Celery beat; Ctrl-C stops all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str = "127.0.0.1", port: int = 8000, **options):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.setdefault("VERDICT_MODE", settings.MODE)
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        url = f"http://{host}:{port}/"
        self.stdout.write(self.style.SUCCESS(f"Verdict demo: {url}  (admin: {url}admin/, API docs: {url}api/docs/)"))
        self.stdout.write(self._credentials_hint())
        broker = "Redis" if getattr(settings, "REDIS_URL", "") else f"file-system broker in {Path(settings.VAR_DIR)}"
        self.stdout.write(f"Celery: worker on queues default,gpu and beat, over the {broker}. Ctrl-C stops everything.")
        code = supervise(demo_commands(host, port), env=env, cwd=str(settings.BASE_DIR), log=self.stdout.write)
        if code:
            sys.exit(code)

    def _credentials_hint(self) -> str:
        path = Path(settings.VAR_DIR) / "demo-credentials.json"
        try:
            creds = json.loads(path.read_text())
        except (OSError, ValueError):
            return "No demo accounts yet: run `manage.py load_demo` first (`make demo` does)."
        accounts = ", ".join(f"{user} / {password}" for user, password in creds.items())
        return f"Log in with one of: {accounts}  (from {path})"
