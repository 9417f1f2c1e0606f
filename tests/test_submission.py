"""Re-submitting a ranking through the API: a repeat is idempotent, a correction inside the project's edit window is
kept as a revision, a different ranking after it is a 409 with the reason, and an invalid body is always a 400."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Ranking, RankingRevision


@pytest.fixture
def leased(project, rater, make_task):
    make_task(project)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=rater).key}")
    body = client.post(f"/api/projects/{project.pk}/tasks/next/").json()
    ids = [c["id"] for c in body["completions"]]
    return client, f"/api/assignments/{body['id']}/submit/", ids


def test_a_repeat_is_idempotent_and_a_correction_in_the_window_is_a_revision(leased):
    client, url, ids = leased
    first = client.post(url, {"order": [[i] for i in ids], "time_spent_ms": 5000}, format="json")
    assert first.status_code == 201 and first.json()["revision"] == 0
    retry = client.post(url, {"order": [[i] for i in ids], "time_spent_ms": 7000}, format="json")
    assert retry.status_code == 200 and retry.json()["revision"] == 0 and retry.json()["time_spent_ms"] == 5000

    fixed = client.post(url, {"order": [[i] for i in reversed(ids)], "rationale": "misclicked",
                              "time_spent_ms": 9000}, format="json")
    assert fixed.status_code == 200, fixed.content
    assert fixed.json()["order"] == [[i] for i in reversed(ids)] and fixed.json()["revision"] == 1
    ranking = Ranking.objects.get()
    old = RankingRevision.objects.get(ranking=ranking)
    assert old.number == 1 and old.order == [[i] for i in ids] and old.time_spent_ms == 5000
    assert old.submitted_at == ranking.submitted_at and ranking.revised_at is not None
    assert ranking.task.submitted_count == 1  # a correction is not a second opinion

    invalid = client.post(url, {"order": [[ids[0]]]}, format="json")
    assert invalid.status_code == 400 and "order" in invalid.json()["errors"]
    huge = client.post(url, {"order": [[i] for i in ids], "time_spent_ms": 10**20}, format="json")
    assert huge.status_code == 400 and "time_spent_ms" in huge.json()["errors"]
    assert Ranking.objects.get().revision == 1


def test_a_different_ranking_after_the_window_is_a_conflict(leased, project):
    client, url, ids = leased
    assert client.post(url, {"order": [[i] for i in ids]}, format="json").status_code == 201
    first_submitted = Ranking.objects.get().submitted_at
    Ranking.objects.update(submitted_at=first_submitted - timedelta(seconds=project.edit_window_s + 1))
    late = client.post(url, {"order": [[i] for i in reversed(ids)]}, format="json")
    assert late.status_code == 409 and "edit window" in late.json()["errors"]["assignment"]
    assert client.post(url, {"order": [[i] for i in ids]}, format="json").status_code == 200  # still idempotent
    project.edit_window_s = 0
    project.save()
    never = client.post(url, {"order": [[i] for i in reversed(ids)]}, format="json")
    assert never.status_code == 409 and "no corrections" in never.json()["errors"]["assignment"]
    assert Ranking.objects.get().order == [[i] for i in ids] and not RankingRevision.objects.exists()
