"""The demo as a user meets it: migrate, load_demo, run_demo (web + worker + beat on SQLite and the file-system
broker), a rater ranks a task with the keyboard in Chromium, and the ranking shows up in the TRL export."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("VERDICT_REQUIRE_BROWSER") != "1",
                       reason=f"Chromium not installed at {CHROMIUM}"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A running demo in its own var/ dir; yields (base url, env, var dir, run_demo's log path)."""
    var = tmp_path_factory.mktemp("demo-var")
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY",
                        "CELERY_TASK_ALWAYS_EAGER"}}
    env.update({"VERDICT_MODE": "demo", "VERDICT_VAR_DIR": str(var), "PYTHONUNBUFFERED": "1"})

    def manage(*args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    manage("migrate", "--noinput")
    loaded = manage("load_demo")
    assert "rater1" in loaded and "password" in loaded  # credentials are printed
    port = free_port()
    log = var / "run_demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "manage.py", "run_demo", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                urllib.request.urlopen(f"{url}/accounts/login/", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the demo web server did not come up\n" + log.read_text()
                time.sleep(0.5)
        yield url, env, var, log, manage
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_demo_worker_answers_over_the_file_system_broker(demo):
    url, env, var, log, manage = demo
    reply = manage("shell", "-c", "from config.celery import ping; print(ping.delay().get(timeout=60))")
    assert reply.strip().splitlines()[-1] == "pong"
    text = log.read_text()
    assert "started web" in text and "started worker" in text and "started beat" in text


def test_rater_ranks_a_demo_task_and_it_appears_in_the_trl_export(demo):
    from playwright.sync_api import sync_playwright

    url, env, var, log, manage = demo
    creds = json.loads((var / "demo-credentials.json").read_text())
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(base_url=url)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto("/")
        page.fill("#id_username", "rater1")
        page.fill("#id_password", creds["rater1"])
        page.keyboard.press("Enter")
        page.click("text=Start rating")
        page.wait_for_selector("body.js-ready")
        prompt = page.locator(".prompt-body").inner_text().strip()
        for key in ["2", "4", "1", "3"]:
            page.keyboard.press(key)
        with page.expect_navigation():  # submitted: on to the next task
            page.keyboard.press("Enter")
        page.wait_for_selector("body.js-ready")
        assert page.locator(".prompt-body").inner_text().strip() != prompt
        browser.close()
    assert not dialogs, dialogs  # no model output ran as script

    lines = [json.loads(x) for x in manage("export_trl", "--project", "Verdict demo").splitlines() if x.strip()]
    assert len(lines) == 6  # K=4 → 4·3/2 pairs, from the one ranking
    assert all(prompt.split()[0] in line["prompt"] for line in lines)
    assert all(line["chosen"] != line["rejected"] for line in lines)
