"""Importing preference data others made (issue 11, part 4): pairs, HH-RLHF transcripts and rankings from JSONL and
Parquet, streamed, with provenance; all rows or none; imported rankings train and export, and stay out of rater
statistics."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from annotation.exporter import iter_rankings, iter_trl_pairs
from annotation.importer import ImportFailed
from annotation.models import Membership, Prompt, Ranking, RankingTask
from annotation.preference_import import import_preferences, split_transcripts
from quality.agreement import project_agreement
from quality.models import RaterQuality
from quality.refresh import refresh_project
from rewardmodel.snapshot import build_snapshot
from tests.quality.helpers import best_first, rate_once

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def write_jsonl(path: Path, rows) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


PAIRS = [
    {"prompt": "Is the sky blue?", "chosen": "Yes, because of Rayleigh scattering.", "rejected": "No.",
     "rater": "w17", "chosen_model": "m-a", "rejected_model": "m-b"},
    {"prompt": [{"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}],
     "rejected": "go away", "annotator": 4, "id": "ext-2"},
]


@pytest.mark.django_db
def test_pairs_become_rankings_with_provenance_and_export_back_unchanged(project, tmp_path):
    summary = import_preferences(project, write_jsonl(tmp_path / "helpful-v1.jsonl", PAIRS))
    assert summary.as_dict() == {"dataset": "helpful-v1", "rows": 2, "rankings": 2, "pairs": 2, "completions": 4}
    rankings = Ranking.objects.filter(task__project=project).order_by("id")
    assert [(r.source, r.dataset, r.original_rater) for r in rankings] == [
        ("imported", "helpful-v1", "w17"), ("imported", "helpful-v1", "4")]
    account = rankings[0].rater
    assert account.username == "import:helpful-v1" and not account.is_active and not account.has_usable_password()
    assert not Membership.objects.filter(user=account).exists()
    assert set(RankingTask.objects.filter(project=project).values_list("status", flat=True)) == {"complete"}
    assert Prompt.objects.get(project=project, external_id="ext-2").text == "hi"
    exported = list(iter_trl_pairs(project))
    assert [(r["prompt"], r["chosen"], r["rejected"], r["chosen_model"]) for r in exported] == [
        ("Is the sky blue?", "Yes, because of Rayleigh scattering.", "No.", "m-a"), ("hi", "Hello!", "go away", "")]
    assert exported[0]["source"] == "imported" and exported[0]["original_rater"] == "w17"
    assert next(iter_rankings(project))["dataset"] == "helpful-v1"


@pytest.mark.django_db
def test_hh_transcripts_split_at_the_last_shared_assistant_turn(project, tmp_path):
    chosen = "\n\nHuman: how do I bake bread?\n\nAssistant: With flour.\n\nHuman: and?\n\nAssistant: Water, yeast."
    rejected = "\n\nHuman: how do I bake bread?\n\nAssistant: With flour.\n\nHuman: and?\n\nAssistant: Go away."
    prompt, good, bad = split_transcripts(chosen, rejected)
    assert prompt.endswith("Human: and?\n\nAssistant:") and (good, bad) == (" Water, yeast.", " Go away.")
    # Answers that start alike: the cut stays at the turn, not inside the shared words.
    prompt, good, bad = split_transcripts(chosen.replace("Water", "Wa"), chosen.replace("Water", "Wo"))
    assert good == " Wa, yeast." and bad == " Wo, yeast."
    if not (SHARED / "hh-harmless-dev.jsonl").is_file():
        pytest.skip("../shared/data/hh-harmless-dev.jsonl is absent")
    rows = [json.loads(line) for line in (SHARED / "hh-harmless-dev.jsonl").open()][:200]
    import_preferences(project, write_jsonl(tmp_path / "hh.jsonl", rows), dataset="hh-rlhf-harmless")
    exported = list(iter_trl_pairs(project))
    assert len(exported) == 200
    assert all(e["prompt"] + e["chosen"] == r["chosen"] and e["prompt"] + e["rejected"] == r["rejected"]
               for e, r in zip(exported, rows, strict=True))


@pytest.mark.django_db
def test_rankings_with_ties_from_parquet(project, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": "rank these", "completions": ["best", "mid one", "mid two", "worst"],
             "ranking": [[0], [1, 2], [3]], "worker": "crowd-9"},
            {"prompt": "and these", "completions": ["a", "b"], "ranking": [[1], [0]], "worker": None}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "ranked.parquet")
    summary = import_preferences(project, tmp_path / "ranked.parquet")
    assert (summary.rankings, summary.pairs) == (2, 5 + 1)
    first, second = Ranking.objects.filter(task__project=project).order_by("id")
    texts = dict(first.task.completions.values_list("id", "text"))
    assert [[texts[c] for c in group] for group in first.order] == [["best"], ["mid one", "mid two"], ["worst"]]
    assert first.original_rater == "crowd-9" and second.original_rater == ""
    snap = build_snapshot(project.pk)  # imported rankings train like rater rankings
    assert sorted(snap.ranking_ids) == [first.pk, second.pk] and sum(len(e.pairs) for e in snap.examples) == 6


@pytest.mark.django_db
def test_every_bad_row_is_reported_and_nothing_is_written(project, tmp_path):
    rows = [PAIRS[0], {"prompt": "p", "chosen": "a"}, {"prompt": "", "chosen": "a", "rejected": "b"},
            {"prompt": "p", "completions": ["a", "b"], "ranking": [[0]]}, {"chosen": "x", "rejected": "y"},
            {"prompt": "p", "chosen": "a", "rejected": "b", "colour": "red"}, PAIRS[1], PAIRS[1]]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with path.open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(ImportFailed) as caught:
        import_preferences(project, path)
    errors = dict(caught.value.errors)
    assert sorted(errors) == [2, 3, 4, 5, 6, 8, 9]
    assert "needs 'rejected'" in errors[2] and "'prompt' is empty" in errors[3]
    assert "missing indexes [1]" in errors[4] and "give a 'prompt'" in errors[5] and "colour" in errors[6]
    assert "duplicate id 'ext-2'" in errors[8] and "invalid JSON" in errors[9]
    assert not Prompt.objects.filter(project=project).exists()
    assert not get_user_model().objects.filter(username__startswith="import:").exists()
    with pytest.raises(CommandError, match="7 error"):
        call_command("import_preferences", str(path), project=project.name)
    (tmp_path / "bad.csv").write_text("prompt,chosen,rejected\n")
    with pytest.raises(CommandError, match="reads .jsonl"):
        call_command("import_preferences", str(tmp_path / "bad.csv"), project=project.name)


@pytest.mark.django_db
def test_imported_rankings_stay_out_of_rater_statistics(project, rater, rater2, make_task, tmp_path):
    for _ in range(3):
        make_task(project)
    for user in (rater, rater2):
        while rate_once(project, user, best_first):
            pass
    import_preferences(project, write_jsonl(tmp_path / "ext.jsonl", PAIRS))
    report = refresh_project(project)
    assert set(RaterQuality.objects.filter(project=project).values_list("rater_id", flat=True)) == {
        rater.pk, rater2.pk}
    assert {s.username for s in project_agreement(project).raters} == {rater.username, rater2.username}
    assert report.summary["rankings"] == 6
    assert set(Ranking.objects.filter(source="imported").values_list("weight", flat=True)) == {1.0}


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_hundred_thousand_pairs_stream_in(project, tmp_path):
    n = 100_000
    path = write_jsonl(tmp_path / "big.jsonl.gz", ({"prompt": f"question {i}", "chosen": f"good answer {i}",
                                                    "rejected": f"bad answer {i}", "rater": f"r{i % 50}"}
                                                   for i in range(n)))
    began = time.perf_counter()
    out = call_command("import_preferences", str(path), project=str(project.pk), dataset="big",
                       stdout=open(tmp_path / "out.json", "w"))
    seconds = time.perf_counter() - began
    assert out is None
    summary = json.loads((tmp_path / "out.json").read_text())
    assert summary == {"dataset": "big", "rows": n, "rankings": n, "pairs": n, "completions": 2 * n}
    assert Ranking.objects.filter(task__project=project, dataset="big").count() == n
    last = Ranking.objects.filter(dataset="big").order_by("-id").first()
    assert last.task.prompt.text == f"question {n - 1}" and last.original_rater == f"r{(n - 1) % 50}"
    print(f"100k pairs imported in {seconds:.1f} s")


@pytest.mark.django_db
def test_the_command_creates_the_project_and_records_an_import_run(tmp_path, capsys):
    """The README's command failed on a new project name, and left no import run to follow (issue 24)."""
    from annotation.models import ImportRun, Project

    path = write_jsonl(tmp_path / "helpful-v1.jsonl", PAIRS)
    with pytest.raises(CommandError, match="--create-project"):
        call_command("import_preferences", str(path), project="Helpful pairs")
    assert not Project.objects.filter(name="Helpful pairs").exists()
    call_command("import_preferences", str(path), "--create-project", project="Helpful pairs")
    project = Project.objects.get(name="Helpful pairs")
    assert (project.k, project.overlap) == (2, 1) and "Created project" in capsys.readouterr().err
    run = ImportRun.objects.get(project=project)
    assert (run.status, run.source, run.rows_done) == (ImportRun.SUCCEEDED, "helpful-v1.jsonl", len(PAIRS))
    assert run.summary["rankings"] == Ranking.objects.filter(task__project=project).count() > 0
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "q", "chosen": "only one side"}])
    with pytest.raises(CommandError):
        call_command("import_preferences", str(bad), project=project.name)
    failed = ImportRun.objects.filter(project=project).latest("started_at")
    assert failed.status == ImportRun.FAILED and failed.errors
