"""The quality API with tokens: who may see what, the figures, pausing, leaderboard JSON/CSV, consensus export, and
bad settings refused with 400 and nothing written."""

from __future__ import annotations

import csv
import io
import json
import time

import pytest

from annotation.models import Completion, Membership, Project
from quality.models import PauseEvent
from quality.refresh import refresh_project
from tests.quality.helpers import best_first, rate_once
from tests.test_api import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead(make_user, project):
    user = make_user("lead")
    Membership.objects.create(project=project, user=user, role=Membership.MANAGER)
    return user


@pytest.fixture
def refreshed(project, rater, rater2, make_task):
    return refreshed_project(project, rater, rater2, make_task)


def refreshed_project(project, rater, rater2, make_task):
    """Four tasks, both raters careful, then a quality refresh."""
    for _ in range(4):
        make_task(project)
    for _ in range(4):
        rate_once(project, rater, best_first)
        rate_once(project, rater2, best_first)
    refresh_project(project)
    return project


QUALITY_URLS = ["/api/projects/{}/quality/", "/api/projects/{}/leaderboard/", "/api/projects/{}/consensus/"]


@pytest.mark.parametrize("url", QUALITY_URLS)
def test_only_managers_get_quality_figures(refreshed, url, rater, make_user):
    path = url.format(refreshed.pk)
    assert client_for(rater).get(path).status_code == 403
    assert client_for(make_user("stranger")).get(path).status_code == 404
    from rest_framework.test import APIClient

    assert APIClient().get(path).status_code == 401


def test_quality_figures(refreshed, lead, rater):
    body = client_for(lead).get(f"/api/projects/{refreshed.pk}/quality/").json()
    assert body["report"]["status"] == "done"
    assert body["report"]["summary"]["rankings"] == 8
    assert sum(body["report"]["summary"]["confidence_histogram"]["counts"]) == 4
    row = next(r for r in body["raters"] if r["rater_id"] == rater.pk)
    assert 0 <= row["reliability_low"] <= row["reliability"] <= row["reliability_high"] <= 1
    assert row["loo_agreement"] == 1.0 and row["rankings"] == 4


def test_refresh_is_queued(refreshed, lead, rater):
    response = client_for(lead).post(f"/api/projects/{refreshed.pk}/quality/refresh/")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert client_for(rater).post(f"/api/projects/{refreshed.pk}/quality/refresh/").status_code == 403


def test_pause_and_unpause_through_the_api(refreshed, lead, rater, rater2):
    base = f"/api/projects/{refreshed.pk}/raters/{rater2.pk}"
    api = client_for(lead)
    refused = api.post(f"{base}/pause/", {}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()
    assert not PauseEvent.objects.exists()
    assert client_for(rater).post(f"{base}/pause/", {"reason": "x"}, format="json").status_code == 403
    assert api.post(f"/api/projects/{refreshed.pk}/raters/999999/pause/", {"reason": "x"},
                    format="json").status_code == 404
    ok = api.post(f"{base}/pause/", {"reason": "careless"}, format="json")
    assert ok.status_code == 200 and ok.json() == {"rater_id": rater2.pk, "paused": True, "changed": True}
    assert Membership.objects.get(project=refreshed, user=rater2).paused
    assert client_for(rater2).post(f"/api/projects/{refreshed.pk}/tasks/next/").status_code == 204
    assert api.post(f"{base}/unpause/", {}, format="json").json()["changed"]
    events = list(PauseEvent.objects.order_by("id").values_list("paused", "reason", "by"))
    assert events == [(True, "careless", lead.pk), (False, "un-paused by a manager", lead.pk)]


def test_leaderboard_json_and_csv(refreshed, lead):
    api = client_for(lead)
    rows = api.get(f"/api/projects/{refreshed.pk}/leaderboard/").json()
    # make_task names completions model-0 … model-3, best first, and both raters ranked them so.
    assert [r["model"] for r in rows] == ["model-0", "model-1", "model-2", "model-3"]
    assert all(r["low"] <= r["score"] <= r["high"] for r in rows)
    assert rows[0]["elo"] > 1000 > rows[-1]["elo"]
    response = api.get(f"/api/projects/{refreshed.pk}/leaderboard/?format=csv")
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["model"] for r in table] == ["model-0", "model-1", "model-2", "model-3"]


def test_leaderboard_csv_cannot_carry_a_formula_or_hide_text(refreshed, lead):
    """OWASP's CSV-injection rule (config.spreadsheet): on main a model named =HYPERLINK(…) was written as is."""
    Completion.objects.filter(prompt__project=refreshed, model_name="model-0").update(
        model_name='=HYPERLINK("http://evil/","x")')
    Completion.objects.filter(prompt__project=refreshed, model_name="model-1").update(model_name="@SUM(1+1)")
    Completion.objects.filter(prompt__project=refreshed, model_name="model-2").update(model_name="evil\u202eexe.txt")
    refresh_project(refreshed)  # the leaderboard is the refresh's
    response = client_for(lead).get(f"/api/projects/{refreshed.pk}/leaderboard/?format=csv")
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [r["model"] for r in table] == ['\'=HYPERLINK("http://evil/","x")', "'@SUM(1+1)", "evil<U+202E>exe.txt",
                                          "model-3"]
    assert float(table[-1]["score"]) < 0  # numbers stay numbers, a minus sign included


def test_leaderboard_without_model_names_is_a_clear_409(refreshed, lead):
    Completion.objects.filter(prompt__project=refreshed).update(model_name="")
    refresh_project(refreshed)
    response = client_for(lead).get(f"/api/projects/{refreshed.pk}/leaderboard/")
    assert response.status_code == 409
    assert "model name" in response.json()["detail"]


def test_the_leaderboard_is_read_not_computed_and_says_why_it_is_missing(project, lead, rater, rater2, make_task,
                                                                       django_assert_max_num_queries):
    """Recomputed on every request it took 4.8–9.8 s on a 23-ranking project; and with every rater at weight 0 it
    vanished 'for want of two named models'."""
    url = f"/api/projects/{project.pk}/leaderboard/"
    never = client_for(lead).get(url)
    assert never.status_code == 409 and "no quality refresh" in never.json()["detail"]
    refreshed = refreshed_project(project, rater, rater2, make_task)
    api = client_for(lead)
    api.get(url)  # the token's first use
    started = time.perf_counter()
    with django_assert_max_num_queries(8):
        rows = api.get(url).json()
    elapsed = time.perf_counter() - started
    assert len(rows) == 4 and elapsed < 1.0  # ~20 ms here; a bound a busy CI machine still meets
    Membership.objects.filter(project=refreshed).exclude(user=lead).update(paused=True)
    refresh_project(refreshed)
    gone = api.get(url)
    assert gone.status_code == 409 and "training weight is 0" in gone.json()["detail"]


def test_consensus_export(refreshed, lead):
    api = client_for(lead)
    lines = b"".join(api.get(f"/api/projects/{refreshed.pk}/consensus/").streaming_content).decode().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == 4 and all(r["rankings"] == 2 for r in rows)
    assert all(r["order"] == sorted(r["order"]) for r in rows)
    pairs = b"".join(api.get(f"/api/projects/{refreshed.pk}/consensus/?kind=trl&min_probability=0.5")
                     .streaming_content).decode().splitlines()
    assert len(pairs) == 4 * 6 and {"prompt", "chosen", "rejected", "probability"} <= set(json.loads(pairs[0]))
    bad = api.get(f"/api/projects/{refreshed.pk}/consensus/?kind=trl&min_probability=2")
    assert bad.status_code == 400 and "min_probability" in bad.json()


def test_exports_carry_training_weights(refreshed, lead):
    lines = b"".join(client_for(lead).get(f"/api/projects/{refreshed.pk}/export/?kind=rankings")
                     .streaming_content).decode().splitlines()
    assert all(0 < json.loads(line)["weight"] <= 1 for line in lines)


@pytest.mark.parametrize("change, field", [
    ({"min_overlap": 3, "max_overlap": 2}, "max_overlap"),
    ({"min_overlap": 3}, "max_overlap"),
    ({"max_overlap": 3}, "min_overlap"),
    ({"consensus_threshold": 0.3}, "consensus_threshold"),
    ({"consensus_threshold": 1.5}, "consensus_threshold"),
    ({"reliability_threshold": -0.1}, "reliability_threshold"),
    ({"gold_rate": 2}, "gold_rate"),
])
def test_bad_quality_settings_are_refused_and_nothing_is_written(project, lead, change, field):
    before = Project.objects.filter(pk=project.pk).values().get()
    response = client_for(lead).patch(f"/api/projects/{project.pk}/", change, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Project.objects.filter(pk=project.pk).values().get() == before


def test_good_quality_settings_are_saved(project, lead):
    response = client_for(lead).patch(f"/api/projects/{project.pk}/", {
        "min_overlap": 2, "max_overlap": 5, "consensus_threshold": 0.9, "gold_rate": 0.1,
        "reliability_threshold": 0.4, "pause_unreliable": True}, format="json")
    assert response.status_code == 200, response.json()
    project.refresh_from_db()
    assert (project.min_overlap, project.max_overlap, project.gold_rate) == (2, 5, 0.1)
    # Later, one bound alone may change while the other stays.
    assert client_for(lead).patch(f"/api/projects/{project.pk}/", {"max_overlap": 1},
                                  format="json").status_code == 400


def test_only_managers_change_settings(project, rater, make_user):
    assert client_for(rater).patch(f"/api/projects/{project.pk}/", {"gold_rate": 0.2},
                                   format="json").status_code == 403
    assert client_for(make_user("stranger")).patch(f"/api/projects/{project.pk}/", {"gold_rate": 0.2},
                                                   format="json").status_code == 404
    assert client_for(rater).patch(f"/api/projects/{project.pk}/", {"gold_rate": 7},
                                   format="json").status_code == 403  # refused before the body is looked at
    project.refresh_from_db()
    assert project.gold_rate == 0.0


def test_contested_gold_tasks_have_no_target_while_injection_is_on(refreshed, lead):
    from annotation.models import RankingTask
    from quality.models import TaskConsensus

    TaskConsensus.objects.filter(task__project=refreshed).update(confidence=0.6)
    gold = RankingTask.objects.filter(project=refreshed).first()
    RankingTask.objects.filter(pk=gold.pk).update(is_gold=True)
    refreshed.gold_rate = 0.2
    refreshed.save()
    rows = client_for(lead).get(f"/api/projects/{refreshed.pk}/quality/").json()["contested_tasks"]
    assert {r["task_id"]: r["target"] for r in rows if r["is_gold"]} == {gold.pk: None}
    assert all(r["target"] == 2 for r in rows if not r["is_gold"])
