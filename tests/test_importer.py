"""JSONL import: good files, per-line errors with numbers, all-or-nothing, duplicates, gold, real data."""

from __future__ import annotations

import json
import time

import pytest

from annotation.importer import ImportFailed, import_jsonl
from annotation.models import Completion, Prompt, RankingTask


def line(prompt="Why is the sky blue?", n=3, **extra) -> str:
    record = {"prompt": prompt, "completions": [{"text": f"answer {i}", "model": f"m{i}"} for i in range(n)]}
    record.update(extra)
    return json.dumps(record)


def db_counts() -> tuple[int, int, int]:
    return Prompt.objects.count(), Completion.objects.count(), RankingTask.objects.count()


def test_good_file_creates_prompts_completions_and_tasks(project):
    text = "\n".join(
        [
            line("First?", n=4, id="a", metadata={"src": "x"}, priority=3),
            "",
            "   ",
            line("Second?", n=2),
        ]
    )
    summary = import_jsonl(project, text)
    assert summary.as_dict() == {"prompts": 2, "completions": 6, "tasks": 2, "gold_tasks": 0}
    first = Prompt.objects.get(project=project, external_id="a")
    assert first.text == "First?" and first.metadata == {"src": "x"}
    task = RankingTask.objects.get(prompt=first)
    assert task.priority == 3 and not task.is_gold and task.status == RankingTask.OPEN
    comps = list(task.completions.order_by("id"))
    assert [c.text for c in comps] == [f"answer {i}" for i in range(4)]
    assert [c.model_name for c in comps] == ["m0", "m1", "m2", "m3"]
    assert all(c.prompt_id == first.pk for c in comps)
    second = RankingTask.objects.get(prompt__text="Second?")
    assert second.completions.count() == 2 and second.prompt.external_id == ""


def test_every_bad_line_is_reported_with_its_number_and_nothing_is_written(project, make_task):
    make_task(project)  # something already there must survive untouched
    before = db_counts()
    lines = [
        line("ok", id="ok-1"),  # 1
        "{not json",  # 2
        json.dumps({"completions": [{"text": "a"}, {"text": "b"}]}),  # 3 missing prompt
        line("   "),  # 4 empty prompt
        line("too few", n=1),  # 5
        line("too many", n=5),  # 6 (project k=4)
        json.dumps({"prompt": "x", "completions": [{"text": "a"}, {"text": 7}]}),  # 7 wrong type
        line("p", priority="high"),  # 8
        line("dup", id="ok-1"),  # 9 duplicate id in file
        line("typo", prioirty=1),  # 10 unknown field
        json.dumps([1, 2]),  # 11 not an object
        line("nul", metadata={"a": "b\u0000"}),  # 12 not storable
        line("fine again"),  # 13
    ]
    with pytest.raises(ImportFailed) as failed:
        import_jsonl(project, "\n".join(lines))
    errors = dict(failed.value.errors)
    assert sorted(errors) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert "invalid JSON" in errors[2]
    assert "'prompt'" in errors[3] and "missing" in errors[3]
    assert "empty" in errors[4]
    assert "between 2 and 4" in errors[5] and "between 2 and 4" in errors[6]
    assert "completions[1]" in errors[7] and "string" in errors[7]
    assert "priority" in errors[8]
    assert "duplicate id 'ok-1'" in errors[9] and "line 1" in errors[9]
    assert "prioirty" in errors[10]
    assert "JSON object" in errors[11]
    assert "NUL" in errors[12]
    assert db_counts() == before


def test_ids_already_in_the_project_are_refused(project):
    import_jsonl(project, line("one", id="x1"))
    before = db_counts()
    with pytest.raises(ImportFailed) as failed:
        import_jsonl(project, "\n".join([line("new", id="x2"), line("again", id="x1")]))
    assert failed.value.errors == [(2, "id 'x1' already exists in project 'Test project'")]
    assert db_counts() == before


def test_same_id_in_another_project_is_fine(project):
    from annotation.models import Project

    other = Project.objects.create(name="Other", k=2, overlap=1)
    import_jsonl(project, line("one", id="shared"))
    import_jsonl(other, line("one", n=2, id="shared"))
    assert Prompt.objects.filter(external_id="shared").count() == 2


def test_gold_order_becomes_a_gold_task_with_completion_ids(project):
    summary = import_jsonl(project, line("gold?", n=3, gold=[[2], [0, 1]]))
    assert summary.gold_tasks == 1
    task = RankingTask.objects.get()
    ids = list(task.completions.order_by("id").values_list("id", flat=True))
    assert task.is_gold and task.gold_order == [[ids[2]], [ids[0], ids[1]]]


@pytest.mark.parametrize(
    "gold, message",
    [
        ([[0], [1]], "missing indexes [2]"),
        ([[0], [1], [1, 2]], "more than once"),
        ([[0], [1], [3]], "out of range"),
        ([["0"], [1], [2]], "integers"),
        ("0>1>2", "tie groups"),
    ],
)
def test_bad_gold_orders_are_refused(project, gold, message):
    with pytest.raises(ImportFailed) as failed:
        import_jsonl(project, line("g", n=3, gold=gold))
    assert failed.value.errors[0][0] == 1 and message in failed.value.errors[0][1]
    assert db_counts() == (0, 0, 0)


def test_bytes_with_bad_utf8_and_an_empty_file(project):
    with pytest.raises(ImportFailed) as failed:
        import_jsonl(project, line("ok").encode() + b"\n" + b'{"prompt": "\xff"}')
    assert failed.value.errors[0][0] == 2 and "UTF-8" in failed.value.errors[0][1]
    with pytest.raises(ImportFailed, match="no records"):
        import_jsonl(project, "\n\n")


def test_ten_thousand_lines_import_in_seconds(project):
    text = "\n".join(line(f"prompt {i}", n=4, id=f"id-{i}") for i in range(10_000))
    started = time.perf_counter()
    summary = import_jsonl(project, text)
    elapsed = time.perf_counter() - started
    assert summary.tasks == 10_000 and summary.completions == 40_000
    assert RankingTask.completions.through.objects.count() == 40_000
    assert elapsed < 30, f"10k lines took {elapsed:.1f}s"


def test_real_pandalm_records_import(project, shared_data, tmp_path):
    """The first 30 PandaLM test records (instruction + input, two responses) as a k=2 project."""
    records = json.loads((shared_data / "pandalm-testset-v1.json").read_text(encoding="utf-8"))[:30]
    project.k = 2
    project.save()
    path = tmp_path / "pandalm.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            prompt = r["instruction"] + ("\n\n" + r["input"] if r["input"] else "")
            models = r["cmp_key"].split("_")
            row = {
                "id": f"pandalm-{r['idx']}",
                "prompt": prompt,
                "metadata": {"app": r["motivation_app"]},
                "completions": [
                    {"text": r["response1"], "model": models[0]},
                    {"text": r["response2"], "model": models[1]},
                ],
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    with path.open("rb") as fh:
        summary = import_jsonl(project, fh)
    assert summary.prompts == 30 and summary.completions == 60 and summary.tasks == 30
    first = Prompt.objects.get(external_id=f"pandalm-{records[0]['idx']}")
    assert first.text.startswith(records[0]["instruction"])
    # PandaLM has empty responses (a model that answered nothing); they import as empty completions.
    empty = sum(1 for r in records for k in ("response1", "response2") if not r[k])
    assert empty > 0 and Completion.objects.filter(prompt__project=project, text="").count() == empty
    assert [c.text for c in first.completions.order_by("id")] == [records[0]["response1"], records[0]["response2"]]


def test_empty_completion_text_is_kept_but_missing_text_is_an_error(project):
    ok = json.dumps({"prompt": "p", "completions": [{"text": ""}, {"text": "b"}]})
    bad = json.dumps({"prompt": "q", "completions": [{"model": "m"}, {"text": "b"}]})
    with pytest.raises(ImportFailed) as failed:
        import_jsonl(project, ok + "\n" + bad)
    assert failed.value.errors == [(2, "completions[0]: missing required field 'text'")]
    assert import_jsonl(project, ok).completions == 2


def test_text_over_the_projects_bounds_is_refused_line_by_line(project):
    project.max_prompt_chars, project.max_completion_chars, project.max_unbroken_run = 50, 200, 30
    project.save()
    degenerate = {"prompt": "Fine?", "completions": [{"text": "x" * 100}, {"text": "ok"}]}
    too_long = {"prompt": "Fine?", "completions": [{"text": "word " * 60}, {"text": "ok"}]}
    lines = [line("Fine?"), line("Q" * 10 + " " + "why " * 20), json.dumps(degenerate), json.dumps(too_long)]
    with pytest.raises(ImportFailed) as exc:
        import_jsonl(project, "\n".join(lines))
    errors = dict(exc.value.errors)
    assert sorted(errors) == [2, 3, 4] and db_counts() == (0, 0, 0)
    assert "'prompt' has 91 characters; this project allows at most 50 (Project.max_prompt_chars)" in errors[2]
    assert "completions[0]: 'text' has a run of 100 characters without a space" in errors[3]
    assert "Project.max_unbroken_run" in errors[3]
    assert "completions[0]: 'text' has 300 characters; this project allows at most 200" in errors[4]


def test_a_megabyte_single_token_output_is_refused_by_default(project):
    record = {"prompt": "Say something.", "completions": [{"text": "a" * 1_048_576}, {"text": "Something."}]}
    with pytest.raises(ImportFailed, match="1,048,576 characters; this project allows at most 100,000"):
        import_jsonl(project, json.dumps(record))
