"""create_release, export_release (parquet and save_to_disk) and diff_releases; an unknown project or release
ends the command with a non-zero status and says which releases exist."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import datasets
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from releases.models import DatasetRelease
from tests.conftest import ROOT
from tests.releases.conftest import revise


def run(*args) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue()


def test_create_export_and_diff(project, ranked, tmp_path):
    said = run("create_release", "--project", project.name, "--name", "v1", "--description", "first")
    release = DatasetRelease.objects.get(name="v1")
    assert "train: 2 rankings, 11 pairs" in said and release.sha256 in said and release.description == "first"

    run("export_release", str(tmp_path / "hf"), "--project", str(project.pk), "--release", "v1")
    pairs = datasets.load_dataset(str(tmp_path / "hf"), "pairs", cache_dir=str(tmp_path / "cache"))
    assert pairs["train"].num_rows == 11
    run("export_release", str(tmp_path / "disk"), "--project", str(project.pk), "--release", str(release.pk),
        "--format", "save_to_disk")
    assert datasets.load_from_disk(str(tmp_path / "disk" / "rankings"))["train"].num_rows == 2

    revise(ranked.strict, [[1], [0], [2], [3]])  # C≻A≻D≻B to B≻A≻C≻D: 4 pairs flip, C≻D and A≻D stay
    run("create_release", "--project", project.name, "--name", "v2", "--include-eval")
    text = run("diff_releases", "v1", "v2", "--project", project.name)
    assert "rankings: +1 added, -0 removed, 1 changed, 1 unchanged" in text
    assert f"ranking {ranked.strict.pk} changed: order" in text
    as_json = json.loads(run("diff_releases", "v1", "v2", "--project", project.name, "--json"))
    assert as_json["added_ids"] == [ranked.streamed.pk] and as_json["pairs"] == {"added": 10, "removed": 4}


def test_bad_requests_are_command_errors(project, ranked, tmp_path):
    run("create_release", "--project", project.name, "--name", "v1")
    with pytest.raises(CommandError, match="already has a release named 'v1'"):
        run("create_release", "--project", project.name, "--name", "v1")
    with pytest.raises(CommandError, match="name: "):
        run("create_release", "--project", project.name, "--name", "no spaces")
    with pytest.raises(CommandError, match="has no release 'v9'; its releases: v1"):
        run("export_release", str(tmp_path / "x"), "--project", project.name, "--release", "v9")
    with pytest.raises(CommandError, match="has no release 'v9'"):
        run("diff_releases", "v1", "v9", "--project", project.name)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(CommandError, match="not an empty folder"):
        run("export_release", str(tmp_path / "full"), "--project", project.name, "--release", "v1")


@pytest.mark.django_db(transaction=True)
def test_an_unknown_release_exits_non_zero(project, tmp_path):
    db = connection.settings_dict
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "VERDICT_MODE": "test",
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    done = subprocess.run([sys.executable, "manage.py", "export_release", str(tmp_path / "x"), "--project",
                           str(project.pk), "--release", "nope"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "has no release 'nope'; it has no release yet" in done.stderr
