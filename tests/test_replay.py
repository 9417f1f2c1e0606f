"""The closed-loop replay, end to end: raters over HTTP (a live server), a real Celery worker on Redis, the retrain
check, the promotion gate, routing; both arms; a killed replay resumes without losing or doubling a label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count

from active_learning.models import SelectionRound
from annotation.models import Assignment, Ranking, RankingTask
from config.celery import app
from replay import datasets
from replay.loop import Oracle, split_pairs
from rewardmodel.models import RewardModelVersion

ROOT = Path(__file__).resolve().parents[1]
FAST_TRAIN = {"epochs": 1, "lr": 2e-3, "max_length": 48, "batch_rankings": 4, "holdout_fraction": 0.3, "device": "cpu"}

needs_services = pytest.mark.skipif(not settings.REDIS_URL, reason="needs REDIS_URL (a real Redis broker)")


def test_readers_keep_every_real_vote(shared_data):
    pandalm = datasets.load("pandalm", shared_data)
    assert len(pandalm.pairs) == 894 and all(len(v) == 3 for v in pandalm.votes)
    assert all(sum(v) > 0 for v in pandalm.votes)  # oriented so the majority prefers the first item
    assert all(isinstance(p, str) and isinstance(t, str) for p, t in pandalm.items)  # a few are JSON booleans
    llmfao = datasets.load("llmfao", shared_data)
    assert len(llmfao.votes) == len(llmfao.pairs) and max(len(v) for v in llmfao.votes) == 5
    assert any(0 in v for v in llmfao.votes) and any(-1 in v for v in llmfao.votes)  # ties and dissent are real
    with pytest.raises(FileNotFoundError):
        datasets.load("pandalm", shared_data / "missing")


def test_split_is_seeded_and_disjoint():
    test, pool = split_pairs(100, 20, 0, seed=1)
    again, _ = split_pairs(100, 20, 0, seed=1)
    assert list(test) == list(again) and not set(test) & set(pool) and len(pool) == 80
    assert len(split_pairs(100, 20, 30, seed=1)[1]) == 30
    with pytest.raises(ValueError):
        split_pairs(10, 10, 0, seed=0)
    prompts = [i // 5 for i in range(100)]  # five pairs a prompt: whole prompts go to one side
    test, pool = split_pairs(100, 22, 0, seed=1, prompts=prompts)
    assert len(test) == 25 and not {prompts[i] for i in test} & {prompts[i] for i in pool}


def _replay_args(url, arm, tiny, state, budget=24):
    return ["--url", url, "--dataset", "pandalm", "--arm", arm, "--seed", "3", "--raters", "3",
            "--budget", str(budget), "--retrain-every", "12", "--test-size", "20", "--pool-size", "40",
            "--al-batch", "4", "--backbone", str(tiny), "--train", json.dumps(FAST_TRAIN),
            "--min-train-rankings", "5", "--min-heldout-pairs", "2", "--trigger", "send", "--wait-timeout", "240",
            "--state", str(state)]


@pytest.fixture
def stack(live_server, shared_data, model_root):
    """A live server, a real Celery worker on Redis (queues default + gpu) and a model store in tmp."""
    if connection.vendor != "postgresql":
        pytest.skip("the live server, the worker and a killed replay share the database: PostgreSQL")
    from celery.contrib.testing.worker import start_worker

    with app.connection_for_write() as conn:  # no stale message from another test
        for q in app.amqp.queues.values():
            q(conn.default_channel).purge()
    with start_worker(app, queues=["default", "gpu"], perform_ping_check=False, concurrency=1, pool="solo",
                      shutdown_timeout=30):
        yield live_server.url


@needs_services
@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_both_arms_run_the_loop_through_the_platform(stack, tmp_path, tiny, capsys):
    for arm in ("plain", "routing"):
        state = tmp_path / f"{arm}.json"
        call_command("replay_raters", *_replay_args(stack, arm, tiny, state), "--project", f"replay {arm}")
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        record = json.loads(state.read_text())
        project_id = record["project_id"]
        assert summary["labels"] == 24 and record["finished"]
        assert Ranking.objects.filter(task__project_id=project_id).count() == 24
        assert RankingTask.objects.filter(project_id=project_id, origin__isnull=True).count() == 40
        # Two checkpoints (12 and 24 labels): beat's check, sent to the worker, trained a version each time.
        assert sorted(record["checkpoints"], key=int) == ["12", "24"]
        versions = RewardModelVersion.objects.filter(project_id=project_id)
        assert versions.count() >= 2 and len(record["versions"]) == versions.count()
        assert all(v["gate_reason"] for v in record["versions"].values())
        # The curve scores the test set with the active version. A tiny random model on 24 labels rarely clears
        # chance, and then the gate promotes nothing (rewardmodel.gate) and there is nothing to score.
        promoted = any(v["promoted"] for v in record["versions"].values())
        assert bool(record["curve"]) == promoted
        assert all(0 <= p["test_accuracy"] <= 1 and len(p["test_correct"]) >= 20 for p in record["curve"])
        rounds = SelectionRound.objects.filter(project_id=project_id, trigger=SelectionRound.AFTER_TRAINING)
        if arm == "routing":
            assert rounds.count() >= 2 and set(rounds.values_list("status", flat=True)) == {SelectionRound.DONE}
        else:
            assert not rounds.exists()
        # Nobody rated a prompt twice; no task has more rankings than its overlap.
        per_rater_prompt = (Ranking.objects.filter(task__project_id=project_id)
                            .values("rater", "task__prompt").annotate(n=Count("id")))
        assert max(row["n"] for row in per_rater_prompt) == 1
        assert max(Ranking.objects.filter(task__project_id=project_id).values("task")
                   .annotate(n=Count("id")).values_list("n", flat=True)) == 1


@needs_services
@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_a_killed_replay_resumes_without_losing_or_doubling_labels(stack, tmp_path, tiny, sigkill_when):
    state = tmp_path / "killed.json"
    args = _replay_args(stack, "routing", tiny, state, budget=12) + ["--project", "replay killed"]
    labelled = Ranking.objects.filter(task__project__name="replay killed")
    sigkill_when([str(ROOT / "manage.py"), "replay_raters", *args], lambda: labelled.count() >= 5, "replay")
    killed_at = Ranking.objects.filter(task__project__name="replay killed").count()
    assert 5 <= killed_at < 12
    call_command("replay_raters", *args)  # the same command again picks up where it stopped
    rankings = Ranking.objects.filter(task__project__name="replay killed")
    assert rankings.count() == 12
    assert RankingTask.objects.filter(project__name="replay killed", origin__isnull=True).count() == 40  # no re-import
    # At most the killed rater's lease is still open (it is theirs again on their next turn); nothing half-written.
    assert Assignment.objects.filter(task__project__name="replay killed", status=Assignment.LEASED).count() <= 1
    assert all(r.assignment.status == Assignment.SUBMITTED for r in rankings.select_related("assignment"))
    record = json.loads(state.read_text())
    assert record["finished"] and list(record["checkpoints"]) == ["12"]


def test_oracle_answers_with_the_humans_own_votes(shared_data, project, make_task):
    data = datasets.load("pandalm", shared_data)
    disputed = next(n for n, v in enumerate(data.votes) if len(set(v)) > 1)
    a, b = data.pairs[disputed]
    task = make_task(project, texts=[data.items[a][1], data.items[b][1]])
    ids = list(task.completions.order_by("id").values_list("id", flat=True))
    for c, item in zip(task.completions.order_by("id"), (a, b), strict=True):
        c.metadata = {"item": item}
        c.save()
    oracle = Oracle(data, project, seed=0)
    answers = {json.dumps(oracle.answer(r, ids)) for r in range(3)}
    assert len(answers) > 1  # the three simulated raters mirror the three annotators, who disagree here
