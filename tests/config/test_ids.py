"""Ids past the bigint range answer 404 on every database (config.ids). On main,
POST /api/projects/1/raters/99999999999999999999/pause/ was an HTML 500 with SQLite's OverflowError on SQLite."""

from __future__ import annotations

import pytest

from config.ids import MAX_ID, is_id

HUGE = "99999999999999999999"  # 20 digits
JUST_PAST = str(MAX_ID + 1)  # 19 digits, one past the largest bigint


@pytest.mark.parametrize("big", [HUGE, JUST_PAST])
@pytest.mark.parametrize("method, path", [
    ("post", "/api/projects/{p}/raters/{big}/pause/"), ("post", "/api/projects/{p}/raters/{big}/unpause/"),
    ("get", "/api/projects/{big}/"), ("get", "/api/projects/{big}/quality/"), ("post", "/api/projects/{big}/score/"),
    ("get", "/api/projects/{p}/tasks/{big}/"), ("get", "/api/projects/{big}/tasks/"),
    ("get", "/api/assignments/{big}/"), ("post", "/api/assignments/{big}/submit/"), ("get", "/api/rankings/{big}/"),
    ("get", "/api/projects/{p}/active-learning/rounds/{big}/"), ("get", "/api/projects/{big}/reward-models/"),
])
def test_api_ids_past_bigint_are_404(project, manager, token_client, method, path, big):
    url = path.format(p=project.pk, big=big)
    response = getattr(token_client(manager), method)(url, {"reason": "x"}, format="json")
    assert response.status_code == 404, (url, response.status_code, response.content[:200])
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/projects/{big}/rate/", "/projects/{p}/assignments/{big}/skip/"])
def test_page_ids_past_bigint_are_404(project, rater, client, path):
    client.force_login(rater)
    url = path.format(p=project.pk, big=HUGE)
    assert client.get(url).status_code == 404 or client.post(url).status_code == 404


def test_the_rule():
    assert is_id(1) and is_id(MAX_ID) and is_id(str(MAX_ID))
    assert not any(is_id(v) for v in (0, -1, MAX_ID + 1, HUGE, "1e3", "", None, "٣"))  # Arabic-Indic three
