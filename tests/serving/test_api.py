"""POST /score/ does bounded work (serving.api.ScoreView): characters before tokenising, tokens before any
forward (scaled by the model's size), a JSON body limit that answers JSON, and a scoring rate of its own. On main,
256 items of ~100 k characters ran past gunicorn's 120 s timeout and killed the worker, and a 51 MB JSON body got
Django's HTML 400."""

from __future__ import annotations

import json
import time

import pytest

from rewardmodel import scoring
from tests.test_rewardmodel_api import trained  # noqa: F401 - the fixture: an active tiny version

pytestmark = pytest.mark.usefixtures("model_root")


def url(project) -> str:
    return f"/api/projects/{project.pk}/score/"


@pytest.mark.parametrize("items, bound", [(256, "VERDICT_MAX_JSON_BYTES"), (64, "VERDICT_SCORE_MAX_CHARS")])
def test_a_batch_of_long_texts_is_refused_before_tokenising(trained, project, rater, token_client, items,  # noqa: F811
                                                           bound):
    body = {"items": [{"prompt": "q", "completion": "word " * 20_000}] * items}  # the attack's was 256 items
    began = time.perf_counter()
    response = token_client(rater).post(url(project), body, format="json")
    assert response.status_code == 413 and bound in response.json()["detail"]
    assert time.perf_counter() - began < 2


def test_tokens_are_bounded_by_the_models_size(trained, project, rater, token_client, settings):  # noqa: F811
    client = token_client(rater)
    per_reference_token = scoring.token_budget(trained, 1_000_000) / 1_000_000  # tokens allowed per budget token
    settings.VERDICT_SCORE_MAX_TOKENS = max(1, int(60 / per_reference_token))
    assert 40 <= scoring.token_budget(trained, settings.VERDICT_SCORE_MAX_TOKENS) <= 80
    small = client.post(url(project), {"prompt": "q?", "completions": ["a", "b"]}, format="json")
    assert small.status_code == 200, small.content
    big = client.post(url(project), {"prompt": "q?", "completions": ["answer " * 30] * 8}, format="json")
    assert big.status_code == 413 and "VERDICT_SCORE_MAX_TOKENS" in big.json()["detail"]


def test_a_json_body_past_its_limit_is_a_json_413(project, rater, plain_manager, token_client, settings):
    body = json.dumps({"prompt": "q", "completions": ["x" * 9_000_000]})  # past the 8 MiB default
    response = token_client(rater).post(url(project), body, content_type="application/json")
    assert response.status_code == 413 and response["Content-Type"].startswith("application/json")
    assert "VERDICT_MAX_JSON_BYTES" in response.json()["detail"]
    settings.VERDICT_MAX_JSON_BYTES = 100
    patch = token_client(plain_manager).patch(f"/api/projects/{project.pk}/", json.dumps({"description": "d" * 200}),
                                      content_type="application/json")
    assert patch.status_code == 413  # every JSON endpoint


def test_scoring_has_its_own_rate(trained, project, rater, token_client, monkeypatch):  # noqa: F811
    from serving.api import ScoreThrottle

    monkeypatch.setattr(ScoreThrottle, "rate", "2/min", raising=False)  # VERDICT_THROTTLE_SCORE, made small
    client = token_client(rater)
    codes = [client.post(url(project), {"prompt": "q", "completions": ["a"]}, format="json").status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
