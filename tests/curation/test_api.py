"""The curation API: browse, bulk actions, review, rater history; managers only; bad input is 400 and writes
nothing."""

from __future__ import annotations

import json

import pytest

from annotation.models import Membership, RankingTask
from curation.models import BulkAction
from quality.models import RankingReview
from tests.conftest import client_for
from tests.curation.helpers import rate_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated(project, make_task, rater, rater2):
    tasks = [make_task(project, prompt_text=f"Explain topic {i} to a child") for i in range(3)]
    tasks.append(make_task(project, prompt_text="Write a haiku about autumn"))
    rankings = rate_all(project, [rater, rater2])
    return tasks, rankings


def test_browse_searches_and_filters(project, rated, plain_manager):
    api = client_for(plain_manager)
    response = api.get(f"/api/projects/{project.pk}/browse/", {"q": "haiku"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 1 and body["results"][0]["prompt_excerpt"] == "Write a haiku about autumn"
    assert len(body["results"][0]["completions"]) == 4
    assert api.get(f"/api/projects/{project.pk}/browse/", {"status": "open", "limit": 2}).json()["count"] == 0
    bad = api.get(f"/api/projects/{project.pk}/browse/", {"min_confidence": "2", "colour": "red"})
    assert bad.status_code == 400 and "colour" in bad.json()
    bad = api.get(f"/api/projects/{project.pk}/browse/", {"min_confidence": "2"})
    assert bad.status_code == 400 and "min_confidence" in bad.json()
    schema = api.get("/api/schema/?format=json").json()["paths"]["/api/projects/{project_id}/browse/"]["get"]
    confidence = next(p for p in schema["parameters"] if p["name"] == "min_confidence")["schema"]
    assert confidence["type"] == "number" and confidence["minimum"] == 0 and confidence["maximum"] == 1


def test_bulk_actions_by_filters_and_ids(project, rated, plain_manager):
    tasks, _ = rated
    api = client_for(plain_manager)
    url = f"/api/projects/{project.pk}/browse/actions/"
    response = api.post(url, {"action": "exclude", "filters": {"q": "child"}}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["changed"] == 3
    assert set(RankingTask.objects.filter(excluded_from_training=True)) == set(tasks[:3])
    response = api.post(url, {"action": "priority", "task_ids": [tasks[3].pk], "priority": 7}, format="json")
    assert response.json()["changed"] == 1 and RankingTask.objects.get(pk=tasks[3].pk).priority == 7
    export = api.post(url, {"action": "export", "task_ids": [tasks[3].pk]}, format="json")
    assert export.status_code == 200 and export["Content-Type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in b"".join(export.streaming_content).decode().splitlines()]
    assert len(rows) == 2 and {r["task_id"] for r in rows} == {tasks[3].pk}
    assert BulkAction.objects.filter(user=plain_manager).count() == 3
    assert BulkAction.objects.get(action="exclude").params == {"filters": {"q": "child"}}


@pytest.mark.parametrize("body, field", [
    ({"action": "priority", "task_ids": [1]}, "priority"),
    ({"action": "exclude"}, "task_ids"),
    ({"action": "exclude", "task_ids": [1], "filters": {}}, "task_ids"),
    ({"action": "melt", "task_ids": [1]}, "action"),
    ({"action": "exclude", "filters": {"metadata": "nokey"}}, "metadata"),
    ({"action": "exclude", "task_ids": [999999]}, "task_ids"),
    ({"action": "exclude", "filters": {"statsu": "done"}}, "filters"),  # a typo must not select every task
    ({"action": "reask", "filters": {"q": "\udba0"}}, "q"),  # a lone surrogate, which JSON lets through
])
def test_bad_bulk_requests_are_400_and_change_nothing(project, rated, plain_manager, body, field):
    response = client_for(plain_manager).post(f"/api/projects/{project.pk}/browse/actions/", json.dumps(body),
                                              content_type="application/json")  # json.dumps escapes surrogates
    assert response.status_code == 400 and field in response.json(), response.content
    assert not BulkAction.objects.exists() and not RankingTask.objects.filter(excluded_from_training=True).exists()


def test_review_api_rejects_with_a_reason(project, rated, plain_manager):
    _, rankings = rated
    api = client_for(plain_manager)
    url = f"/api/projects/{project.pk}/rankings/{rankings[0].pk}/review/"
    got = api.get(url)
    assert got.status_code == 200 and got.json()["model_note"] == "no active reward-model version yet"
    assert len(got.json()["completions"]) == 4
    no_reason = api.post(url, {"decision": "rejected"}, format="json")
    assert no_reason.status_code == 400 and "reason" in no_reason.json()
    done = api.post(url, {"decision": "rejected", "reason": "skipped reading"}, format="json")
    assert done.status_code == 200 and done.json()["review"]["decision"] == "rejected"
    assert RankingReview.objects.get().reviewer == plain_manager
    history = api.get(f"/api/projects/{project.pk}/raters/{rankings[0].rater_id}/history/").json()
    assert history["counts"]["rejected"] == 1 and len(history["rankings"]) == 4


def test_outsiders_and_raters_are_refused(project, rated, rater, make_user):
    _, rankings = rated
    outsider = make_user("outsider")
    other = project.__class__.objects.create(name="Other")
    Membership.objects.create(project=other, user=outsider, role=Membership.MANAGER)
    urls = [("get", f"/api/projects/{project.pk}/browse/", None),
            ("post", f"/api/projects/{project.pk}/browse/actions/", {"action": "exclude", "task_ids": [1]}),
            ("get", f"/api/projects/{project.pk}/rankings/{rankings[0].pk}/review/", None),
            ("post", f"/api/projects/{project.pk}/rankings/{rankings[0].pk}/review/", {"decision": "accepted"}),
            ("get", f"/api/projects/{project.pk}/raters/{rater.pk}/history/", None)]
    for user, expected in ((rater, 403), (outsider, 404)):
        api = client_for(user)
        for method, url, body in urls:
            response = getattr(api, method)(url, body, format="json") if body else getattr(api, method)(url)
            assert response.status_code == expected, (user, url, response.content)
    assert not RankingReview.objects.exists() and not BulkAction.objects.exists()


def test_a_ranking_of_another_project_is_404(project, rated, manager, make_task):
    other = project.__class__.objects.create(name="Other")
    Membership.objects.create(project=other, user=manager, role=Membership.MANAGER)
    _, rankings = rated
    response = client_for(manager).get(f"/api/projects/{other.pk}/rankings/{rankings[0].pk}/review/")
    assert response.status_code == 404
