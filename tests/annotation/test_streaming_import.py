"""The task importer at scale: flat memory on a large file, two passes (nothing written on a late bad line),
JSONL, gzip and Parquet in, Parquet out, progress."""

from __future__ import annotations

import gzip
import json
import random
import tracemalloc
from pathlib import Path

import pytest
from django.core.management import call_command

from annotation import importer
from annotation.importer import ImportFailed, import_jsonl
from annotation.models import Completion, Prompt, RankingTask

WORDS = "the a model answer helpful harmless honest reward ranking rater prompt completion data engine".split()


def synthetic_lines(n: int, seed: int = 0, words: int = 60):
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(k))

    for i in range(n):
        yield json.dumps({"id": f"s{i}", "prompt": text(words // 2),
                          "completions": [{"text": text(words), "model": f"m{j}"} for j in range(4)]})


def write_file(path: Path, lines) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line + "\n")
    return path


@pytest.mark.django_db(transaction=True)
def test_memory_stays_flat_on_a_large_file(project, tmp_path, monkeypatch):
    """6,000 lines, 10 MB, written 500 at a time: the importer holds a batch, never the file (the old one held
    every record, ~10 times the file's size)."""
    monkeypatch.setattr(importer, "BATCH_SIZE", 500)
    path = write_file(tmp_path / "big.jsonl", synthetic_lines(6_000, words=80))
    size_mb = path.stat().st_size / 2**20
    assert size_mb > 10
    tracemalloc.start()
    try:
        summary = import_jsonl(project, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.tasks == 6_000 and RankingTask.objects.filter(project=project).count() == 6_000
    assert Completion.objects.filter(prompt__project=project).count() == 24_000
    peak_mb = peak / 2**20
    # A batch of 500 records (~0.9 MB of text, as Python objects and as rows) plus the id hashes: a fraction of the
    # file, and it does not grow with it.
    assert peak_mb < 6, f"peak {peak_mb:.1f} MB for a {size_mb:.0f} MB file"


def test_a_bad_last_line_writes_nothing_and_every_error_is_counted(project, tmp_path):
    lines = list(synthetic_lines(2_500))  # more than one write batch
    lines.append("{broken")
    lines.append(lines[0])  # a duplicate id, found by hash then confirmed
    path = write_file(tmp_path / "bad.jsonl", lines)
    with pytest.raises(ImportFailed) as failed:
        import_jsonl(project, path)
    assert failed.value.errors == [(2501, "invalid JSON: Expecting property name enclosed in double quotes "
                                          "(column 2)"),
                                   (2502, "duplicate id 's0' (first used on line 1)")]
    assert not Prompt.objects.filter(project=project).exists()


def test_reading_stops_at_the_error_cap(project, monkeypatch):
    """Bounded work: a file of bad lines is refused at the cap, the rest unread (5,000,000 `{}` lines cost 28 s)."""
    monkeypatch.setattr(importer, "MAX_ERRORS", 3)
    with pytest.raises(ImportFailed) as failed:
        import_jsonl(project, "\n".join(["nope"] * 10))
    assert failed.value.total == 3
    assert failed.value.errors[-1] == (3, "stopped reading here after 3 errors")
    assert "3 error(s)" in str(failed.value)


def test_gzip_and_parquet_files_import_like_jsonl(project, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    gz = write_file(tmp_path / "a.jsonl.gz", synthetic_lines(30, seed=1))
    assert import_jsonl(project, gz).tasks == 30
    rows = [json.loads(line) for line in synthetic_lines(20, seed=2)]
    for i, row in enumerate(rows):
        row["id"] = f"pq{i}"
    rows[0]["gold"] = [[1], [0, 2], [3]]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "b.parquet")
    summary = import_jsonl(project, tmp_path / "b.parquet")
    assert (summary.tasks, summary.gold_tasks) == (20, 1)
    gold = RankingTask.objects.get(prompt__external_id="pq0")
    ids = list(gold.completions.order_by("id").values_list("id", flat=True))
    assert gold.is_gold and gold.gold_order == [[ids[1]], [ids[0], ids[2]], [ids[3]]]
    # An upload's bytes are told apart by their first bytes: Parquet, gzip or text.
    with open(tmp_path / "b.parquet", "rb") as fh:
        with pytest.raises(ImportFailed, match="already exists"):
            import_jsonl(project, fh.read())


def test_the_file_must_not_change_between_the_passes(project, tmp_path, monkeypatch):
    path = write_file(tmp_path / "c.jsonl", synthetic_lines(5))
    real_check = importer.check_file

    def check_then_edit(*args, **kwargs):
        total = real_check(*args, **kwargs)
        with open(path, "a") as fh:
            fh.write('{"prompt": "x", "completions": [{"text": 1}]}\n')
        return total

    monkeypatch.setattr(importer, "check_file", check_then_edit)
    with pytest.raises(ImportFailed, match="changed while it was being checked"):
        import_jsonl(project, path)
    assert not Prompt.objects.filter(project=project).exists()


def test_cli_reports_progress_and_exports_parquet(project, make_task, rater, tmp_path, capsys):
    import pyarrow.parquet as pq

    from tests.quality.helpers import rate_once

    path = write_file(tmp_path / "d.jsonl", synthetic_lines(4_100))
    call_command("import_jsonl", str(path), project=str(project.pk))
    err = capsys.readouterr().err
    assert "checking" in err and "writing" in err and "4,100/4,100 tasks" in err
    task = RankingTask.objects.filter(project=project).order_by("id").first()
    ids = list(task.completions.order_by("id").values_list("id", flat=True))
    rate_once(project, rater, lambda _ids, _shown: [[ids[0]], [ids[1], ids[2]], [ids[3]]])
    out = tmp_path / "pairs.parquet"
    call_command("export_trl", project=str(project.pk), output=str(out), ties="mark")
    table = pq.read_table(out).to_pylist()
    assert len(table) == 6 and sum(r["tie"] for r in table) == 1
    assert {r["chosen"] for r in table if not r["tie"]} >= {Completion.objects.get(pk=ids[0]).text}
    call_command("export_rankings", project=str(project.pk), output=str(tmp_path / "r.parquet"))
    (ranking,) = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert ranking["order"] == [[ids[0]], [ids[1], ids[2]], [ids[3]]]
    assert [c["id"] for c in ranking["completions"]] == ids and json.loads(ranking["criteria_orders"]) == {}


def test_api_upload_is_recorded_with_progress_and_errors(project, manager, rater, tmp_path, settings):
    from django.core.cache import cache
    from rest_framework.test import APIClient

    from annotation import import_runs
    from annotation.models import ImportRun

    client = APIClient()
    client.force_authenticate(manager)
    body = "\n".join(synthetic_lines(3)).encode()
    response = client.post(f"/api/projects/{project.pk}/import/", body, content_type="application/x-ndjson")
    assert response.status_code == 201, response.content
    run = ImportRun.objects.get(pk=response.json()["import_id"])
    assert (run.status, run.rows_done, run.summary["tasks"], run.size_bytes) == ("succeeded", 3, 3, len(body))
    bad = client.post(f"/api/projects/{project.pk}/import/", b"{oops\n", content_type="application/x-ndjson")
    assert bad.status_code == 400
    failed = ImportRun.objects.get(pk=bad.json()["import_id"])
    assert failed.status == "failed" and failed.error_count == 1 and failed.errors[0][0] == 1
    # A running import's progress comes from the cache, where its recorder puts it.
    running = ImportRun.objects.create(project=project, source="big.jsonl")
    record = import_runs._recorder(running, None)
    record("writing", 4000, 10000)
    listed = client.get(f"/api/projects/{project.pk}/imports/").json()["results"]
    assert [r["id"] for r in listed] == [running.pk, failed.pk, run.pk]
    assert (listed[0]["status"], listed[0]["phase"], listed[0]["rows_done"], listed[0]["rows_total"]) == (
        "running", "writing", 4000, 10000)
    cache.clear()
    client.force_authenticate(rater)  # a rater may not see the project's imports
    assert client.get(f"/api/projects/{project.pk}/imports/").status_code == 403


def test_a_big_import_refreshes_the_planners_statistics(project, monkeypatch):
    """Without statistics PostgreSQL plans for empty tables until autovacuum comes (never, where it is off): the
    next-task join then read every task–completion link (annotation.bulk.analyze)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation import bulk

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's statistics")
    project.k = 4
    project.save(update_fields=["k"])
    # ANALYZE's figures outlive the test transactions that rolled back: earlier tests' statistics may say the
    # tables are big. Growth 0 makes every load worth an ANALYZE, whatever they say.
    monkeypatch.setattr(bulk, "ANALYZE_GROWTH", 0.0)
    with CaptureQueriesContext(connection) as small:
        import_jsonl(project, "\n".join(synthetic_lines(10, seed=1, words=6)))
    with CaptureQueriesContext(connection) as big:
        import_jsonl(project, "\n".join(synthetic_lines(300, seed=2, words=6)).replace('"s', '"b'))
    assert not any(q["sql"].startswith("ANALYZE") for q in small.captured_queries)
    analysed = [q["sql"] for q in big.captured_queries if q["sql"].startswith("ANALYZE")]
    # 300 prompts and tasks are below the 1,000 rows worth an ANALYZE; 1,200 completions and links are not. Text
    # columns are left out (their statistics cost the most and no plan of the rater loop needs them).
    assert analysed == ['ANALYZE "annotation_completion" ("id", "prompt_id", "model_name"), '
                        '"annotation_rankingtask_completions" ("id", "rankingtask_id", "completion_id")']
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'annotation_rankingtask_completions'")
        assert cursor.fetchone()[0] >= 1_240  # (10 + 300) × 4 links, as the sample counted them
    # A table whose statistics know its size is analysed again only when a load grows it by a tenth.
    monkeypatch.setattr(bulk, "ANALYZE_GROWTH", 1_000.0)
    with CaptureQueriesContext(connection) as steady:
        bulk.analyze({Completion: 1_500})
    assert not any(q["sql"].startswith("ANALYZE") for q in steady.captured_queries)
