"""The one access rule (annotation.permissions.project_for), asserted for every kind of caller on every endpoint and
page: anonymous, a bad token, an outsider, a rater, a (non-staff) manager, staff who are not members, a superuser who
is not a member."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from active_learning.models import RoutingAudit, SelectionRound
from annotation.assignment import next_assignment
from annotation.models import Membership, Project
from annotation.permissions import MANAGE, RATE, SEE, project_for
from annotation.submission import RankingPayload, submit_ranking
from feedback.models import Judge
from serving.models import PolicyRun

CALLERS = ("anonymous", "bad_token", "outsider", "rater", "manager", "staff", "superuser")
API_UNAUTH = {"anonymous": 401, "bad_token": 401}
MEMBERS_SEE = {**API_UNAUTH, "outsider": 404, "rater": 200, "manager": 200, "staff": 200, "superuser": 200}
MANAGERS = {**API_UNAUTH, "outsider": 404, "rater": 403, "manager": 200, "staff": 200, "superuser": 200}
RATERS = {**API_UNAUTH, "outsider": 404, "rater": 200, "manager": 200, "staff": 403, "superuser": 403}
OWNER_ONLY = {**API_UNAUTH, "outsider": 404, "rater": 200, "manager": 404, "staff": 404, "superuser": 404}


def _with(expected: dict, **changes) -> dict:
    return {**expected, **changes}


@pytest.fixture
def world(db, make_user, make_task):
    """One project with a rater, a non-staff manager, a submitted ranking, a leased assignment and a round."""
    project = Project.objects.create(name="Matrix", k=2, overlap=1)
    users = {
        "outsider": make_user("outsider"),
        "rater": make_user("matrix-rater"),
        "manager": make_user("matrix-manager"),
        "staff": make_user("staff-non-member", is_staff=True),
        "superuser": make_user("root-non-member", is_staff=True, is_superuser=True),
    }
    Membership.objects.create(project=project, user=users["rater"], role=Membership.RATER)
    Membership.objects.create(project=project, user=users["manager"], role=Membership.MANAGER)
    for _ in range(12):
        make_task(project)
    done = next_assignment(project, users["rater"])
    ranking, _ = submit_ranking(done, RankingPayload(order=[[c] for c in done.display_order]))
    leased = next_assignment(project, users["rater"])
    rnd = SelectionRound.objects.create(project=project, strategy="random", batch_size=1, status=SelectionRound.DONE)
    policy_run = PolicyRun.objects.create(project=project, name="grpo")
    judge = Judge.objects.create(project=project, name="llm", base_url="http://127.0.0.1:9/v1", model="m",
                                 enabled=False)  # disabled: a permitted start answers 400 and queues nothing
    RoutingAudit.objects.create(project=project, eval_pairs=0, results={}, reason="matrix")
    return {"project": project, "users": users, "task": done.task, "ranking": ranking, "assignment": leased,
            "round": rnd, "policy_run": policy_run, "judge": judge}


def api_client(world, caller: str) -> APIClient:
    client = APIClient()
    if caller == "bad_token":
        client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    elif caller != "anonymous":
        token, _ = Token.objects.get_or_create(user=world["users"][caller])
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def api_cases(w) -> list[tuple[str, str, object, dict]]:
    p, t, a, r, rnd = w["project"].pk, w["task"].pk, w["assignment"].pk, w["ranking"].pk, w["round"].pk
    run = w["policy_run"].pk
    created = _with(MANAGERS, outsider=403, manager=201, staff=201, superuser=201)
    return [
        ("get", "/api/projects/", None, _with(MEMBERS_SEE, outsider=200)),
        ("get", f"/api/projects/{p}/", None, MEMBERS_SEE),
        ("post", "/api/projects/", lambda c: {"name": f"new by {c}", "k": 2}, created),
        ("post", f"/api/projects/{p}/import/", lambda c: json.dumps(
            {"id": f"imp-{c}", "prompt": "Q?", "completions": [{"text": "a"}, {"text": "b"}]}),
         _with(MANAGERS, manager=201, staff=201, superuser=201)),
        ("get", f"/api/projects/{p}/export/?kind=rankings", None, MANAGERS),
        ("get", f"/api/projects/{p}/tasks/", None, MANAGERS),
        ("get", f"/api/projects/{p}/tasks/{t}/", None, MANAGERS),
        ("patch", f"/api/projects/{p}/tasks/{t}/", {"priority": 3}, MANAGERS),
        ("post", f"/api/projects/{p}/tasks/next/", None, RATERS),
        ("get", f"/api/assignments/{a}/", None, OWNER_ONLY),
        ("post", f"/api/assignments/{a}/skip/", {"reason": "skip"}, OWNER_ONLY),
        ("get", "/api/rankings/", None, _with(MEMBERS_SEE, outsider=200)),
        ("get", f"/api/rankings/{r}/", None, MEMBERS_SEE),
        ("post", f"/api/projects/{p}/score/", {}, _with(MEMBERS_SEE, rater=400, manager=400, staff=400, superuser=400)),
        ("get", f"/api/projects/{p}/reward-models/", None, MEMBERS_SEE),
        ("get", f"/api/projects/{p}/training-runs/", None, MEMBERS_SEE),
        ("post", f"/api/projects/{p}/training-runs/", {"hyperparameters": {"epochs": 0}},
         _with(MANAGERS, manager=400, staff=400, superuser=400)),
        ("get", f"/api/projects/{p}/retrain-policy/", None, MANAGERS),
        ("patch", f"/api/projects/{p}/retrain-policy/", {"min_new_rankings": 5}, MANAGERS),
        ("get", f"/api/projects/{p}/members/", None, MANAGERS),
        ("post", f"/api/projects/{p}/members/", {"username": "matrix-rater", "role": "rater"}, MANAGERS),
        ("get", f"/api/projects/{p}/active-learning/rounds/", None, MANAGERS),
        ("post", f"/api/projects/{p}/active-learning/rounds/", {"batch_size": 0},
         _with(MANAGERS, manager=400, staff=400, superuser=400)),
        ("get", f"/api/projects/{p}/active-learning/rounds/{rnd}/", None, MANAGERS),
        ("get", f"/api/projects/{p}/active-learning/audit/", None, MANAGERS),
        ("get", f"/api/projects/{p}/policy-runs/", None, MANAGERS),
        ("get", f"/api/projects/{p}/policy-runs/{run}/watch/", None, MANAGERS),
        ("get", f"/api/projects/{p}/judges/", None, MANAGERS),
        ("post", f"/api/projects/{p}/judges/", {"name": "matrix-judge", "base_url": ""},
         _with(MANAGERS, manager=400, staff=400, superuser=400)),
        ("post", f"/api/projects/{p}/judges/{w['judge'].pk}/runs/", {},
         _with(MANAGERS, manager=400, staff=400, superuser=400)),
        ("get", f"/api/projects/{p}/judge-runs/", None, MANAGERS),
    ]


def test_every_api_endpoint_answers_each_caller_by_the_one_rule(world):
    seen = []
    from django.core.cache import cache

    for method, url, body, expected in api_cases(world):
        cache.clear()  # the bad-token throttle counts per address; this test makes one bad call per endpoint
        for caller in CALLERS:
            data = body(caller) if callable(body) else body
            kwargs = {"content_type": "application/x-ndjson"} if url.endswith("/import/") else {"format": "json"}
            response = getattr(api_client(world, caller), method)(url, data, **kwargs)
            if url.endswith("/tasks/next/") and expected[caller] == 200:
                assert response.status_code in (200, 204), (method, url, caller, response.content[:300])
            else:
                assert response.status_code == expected[caller], (method, url, caller, response.content[:300])
            seen.append((url, caller, response.status_code))
    assert len(seen) == len(api_cases(world)) * len(CALLERS)


def test_lists_show_each_caller_only_what_the_rule_allows(world):
    project = world["project"]
    ids = {c: [p["id"] for p in api_client(world, c).get("/api/projects/").json()["results"]] for c in CALLERS[2:]}
    assert ids["outsider"] == [] and all(ids[c] == [project.pk] for c in ("rater", "manager", "staff", "superuser"))
    counts = {c: api_client(world, c).get("/api/rankings/").json()["count"] for c in CALLERS[2:]}
    assert counts == {"outsider": 0, "rater": 1, "manager": 1, "staff": 1, "superuser": 1}


def test_web_pages_and_admin_follow_the_same_rule(world):
    p = world["project"].pk
    a = world["assignment"]
    pages = [
        ("get", "/", {"outsider": 200, "rater": 200, "manager": 200, "staff": 200, "superuser": 200}),
        ("get", f"/projects/{p}/rate/",
         {"outsider": 404, "rater": 200, "manager": 200, "staff": 403, "superuser": 403}),
        ("post", f"/projects/{p}/assignments/{a.pk}/skip/",
         {"outsider": 404, "rater": 302, "manager": 404, "staff": 403, "superuser": 403}),
        # The admin is staff-only (Django's own model permissions on top of the rule): others go to its login page.
        ("get", f"/admin/annotation/project/{p}/agreement/",
         {"outsider": 302, "rater": 302, "manager": 302, "staff": 403, "superuser": 200}),
        ("get", f"/admin/active_learning/selectionround/learning-curve/{p}.png",
         {"outsider": 302, "rater": 302, "manager": 302, "staff": 404, "superuser": 200}),
    ]
    for method, url, expected in pages:
        anonymous = getattr(Client(), method)(url)
        assert anonymous.status_code == 302 and "login" in anonymous["Location"], url
        for caller, code in expected.items():
            client = Client()
            client.force_login(world["users"][caller])
            response = getattr(client, method)(url, {"reason": "skip"} if method == "post" else None)
            assert response.status_code == code, (url, caller, response.status_code)


@pytest.mark.parametrize("bad_id", ["0", "-1", "x", str(2**63), "9" * 40])
def test_ids_that_cannot_exist_are_404_not_500(world, bad_id):
    client = api_client(world, "superuser")
    for url in (f"/api/projects/{bad_id}/", f"/api/projects/{bad_id}/reward-models/"):
        assert client.get(url).status_code == 404, url
    response = client.get(f"/api/rankings/?project={bad_id}")
    assert response.status_code == 400 and "project" in response.json()


def test_project_for_roles(world):
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    project, users = world["project"], world["users"]
    assert project_for(users["rater"], project.pk, RATE) == project
    assert project_for(users["staff"], str(project.pk), MANAGE) == project
    with pytest.raises(PermissionDenied):
        project_for(users["rater"], project.pk, MANAGE)
    with pytest.raises(PermissionDenied):
        project_for(users["superuser"], project.pk, RATE)
    for user in (users["outsider"], AnonymousUser()):
        with pytest.raises(Http404):
            project_for(user, project.pk, SEE)
    with pytest.raises(ValueError):
        project_for(users["rater"], project.pk, "own")
