"""Quick commands: the web process and the data commands start without torch, transformers, scikit-learn,
matplotlib or scipy's optimisers (they cost seconds to import and only training, scoring, selection and charts use
them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sklearn", "matplotlib", "scipy.optimize", "scipy.stats", "peft", "pyarrow")

PROBE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.core.management import get_commands, load_command_class
from django.urls import get_resolver
get_resolver().url_patterns  # the whole URL configuration, as the first request of a web process loads it
import config.wsgi
from django.contrib import admin
admin.autodiscover()
for name in {commands!r}:
    load_command_class(get_commands()[name], name)
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_heavy_modules(commands: list[str]) -> list[str]:
    env = {**os.environ, "VERDICT_MODE": "test"}
    out = subprocess.run([sys.executable, "-c", PROBE.format(commands=commands, heavy=HEAVY)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_web_process_and_data_commands_start_without_heavy_libraries():
    assert loaded_heavy_modules(["export_trl", "export_rankings", "import_jsonl", "import_preferences",
                                 "refresh_quality", "run_active_learning", "add_eval_set"]) == []


def test_manage_py_help_is_quick():
    env = {**os.environ, "VERDICT_MODE": "test"}
    out = subprocess.run([sys.executable, "-X", "importtime", "manage.py", "help"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    assert "export_trl" in out.stdout
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & set(HEAVY)
