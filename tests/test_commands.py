"""Management commands: import_jsonl, export_trl, export_rankings, driven through call_command."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotation.assignment import next_assignment
from annotation.models import Project, RankingTask
from annotation.submission import RankingPayload, submit_ranking


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def rows(n, k=3):
    return [
        {"id": f"r{i}", "prompt": f"Q{i}?", "completions": [{"text": f"a{j}", "model": f"m{j}"} for j in range(k)]}
        for i in range(n)
    ]


def test_import_into_existing_project_by_name_and_id(project, tmp_path):
    out = io.StringIO()
    call_command("import_jsonl", str(write_jsonl(tmp_path / "a.jsonl", rows(3))), project=project.name, stdout=out)
    assert "3 prompts, 9 completions, 3 tasks" in out.getvalue()
    more = [{"prompt": "extra", "completions": [{"text": "x"}, {"text": "y"}]}]
    call_command("import_jsonl", str(write_jsonl(tmp_path / "b.jsonl", more)), project=str(project.pk), stdout=out)
    assert RankingTask.objects.filter(project=project).count() == 4


def test_import_errors_are_printed_per_line_and_nothing_is_written(project, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(rows(1)[0]) + "\n{oops\n" + json.dumps({"prompt": "p"}) + "\n", encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError, match="2 error"):
        call_command("import_jsonl", str(path), project=project.name, stderr=err, stdout=io.StringIO())
    assert f"{path}:2: invalid JSON" in err.getvalue()
    assert f"{path}:3: missing required field 'completions'" in err.getvalue()
    assert RankingTask.objects.count() == 0


def test_import_unknown_project_needs_create_flag(db, tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", rows(2, k=2))
    with pytest.raises(CommandError, match="--create-project"):
        call_command("import_jsonl", str(path), project="Fresh")
    out = io.StringIO()
    call_command("import_jsonl", str(path), project="Fresh", create_project=True, k=2, overlap=1, stdout=out)
    fresh = Project.objects.get(name="Fresh")
    assert fresh.k == 2 and fresh.overlap == 1 and fresh.tasks.count() == 2
    with pytest.raises(CommandError, match="--k"):
        call_command("import_jsonl", str(path), project="Other", create_project=True, k=12)
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_jsonl", str(tmp_path / "missing.jsonl"), project="Fresh")


def _rank_one(project, rater, flags=()):
    a = next_assignment(project, rater)
    ids = list(a.task.completions.order_by("id").values_list("id", flat=True))
    submit_ranking(a, RankingPayload(order=[[ids[0], ids[1]]] + [[i] for i in ids[2:]], flags=list(flags)))


def test_export_trl_to_stdout_and_file(project, rater, rater2, tmp_path):
    call_command(
        "import_jsonl", str(write_jsonl(tmp_path / "a.jsonl", rows(1, k=4))), project=project.name, stdout=io.StringIO()
    )
    _rank_one(project, rater)  # a0 = a1 ≻ a2 ≻ a3
    _rank_one(project, rater2, flags=["unsafe"])
    out = io.StringIO()
    call_command("export_trl", project=project.name, stdout=out)
    pairs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(pairs) == 5 and {p["rater_id"] for p in pairs} == {rater.pk}
    assert all(set(p) >= {"prompt", "chosen", "rejected"} for p in pairs)
    target = tmp_path / "pairs.jsonl"
    err = io.StringIO()
    call_command("export_trl", project=project.name, ties="mark", include_flagged=True, output=str(target), stderr=err)
    marked = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(marked) == 12 and sum(p["tie"] for p in marked) == 2
    assert "Wrote 12 pairs" in err.getvalue()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_export_rankings_to_file(project, rater, tmp_path):
    call_command(
        "import_jsonl", str(write_jsonl(tmp_path / "a.jsonl", rows(2, k=3))), project=project.name, stdout=io.StringIO()
    )
    _rank_one(project, rater)
    _rank_one(project, rater, flags=["unsure"])
    target = tmp_path / "rankings.jsonl"
    call_command("export_rankings", project=project.name, output=str(target), stderr=io.StringIO())
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 2 and [row["flags"] for row in lines] == [[], ["unsure"]]
    assert {c["model"] for c in lines[0]["completions"]} == {"m0", "m1", "m2"}
    out = io.StringIO()
    call_command("export_rankings", project=project.name, exclude_flagged=True, stdout=out)
    assert len(out.getvalue().splitlines()) == 1
    with pytest.raises(CommandError, match="no project"):
        call_command("export_rankings", project="nope")
