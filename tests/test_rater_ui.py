"""The rater web UI: access control, the rate page, submit (idempotent, input kept on error), skip and flag."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotation.assignment import next_assignment
from annotation.models import Assignment, Membership, Project, Ranking

pytestmark = pytest.mark.django_db


def rate_url(project) -> str:
    return reverse("annotation:rate", args=[project.pk])


def submit_url(assignment) -> str:
    return reverse("annotation:submit", args=[assignment.task.project_id, assignment.pk])


def skip_url(assignment) -> str:
    return reverse("annotation:skip", args=[assignment.task.project_id, assignment.pk])


def rate_data(response) -> dict:
    match = re.search(r'<script id="rate-data" type="application/json">(.*?)</script>', response.content.decode())
    assert match, "the rate page must carry its data in a json_script element"
    return json.loads(match.group(1))


def lease(client, project, user) -> Assignment:
    """Open the rate page as `user` and return the lease it shows."""
    response = client.get(rate_url(project))
    assert response.status_code == 200
    return Assignment.objects.get(pk=rate_data(response)["assignment"], rater=user)


def singleton_groups(ids) -> str:
    return json.dumps([[cid] for cid in ids])


@pytest.fixture
def rater_client(client, rater):
    client.force_login(rater)
    return client


# ---- access -------------------------------------------------------------------------------------------------


def test_every_page_requires_login(client, project, rater, make_task):
    make_task(project)
    a = next_assignment(project, rater)
    for method, url in [
        ("get", reverse("annotation:home")),
        ("get", rate_url(project)),
        ("post", submit_url(a)),
        ("post", skip_url(a)),
    ]:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response.url.startswith(reverse("login")), url
    assert not Ranking.objects.exists()
    assert Assignment.objects.get(pk=a.pk).status == Assignment.LEASED


def test_login_page_renders_and_logs_in(client, rater):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b'name="password"' in page.content
    response = client.post(reverse("login"), {"username": "rater1", "password": "pw-for-tests-1"})
    assert response.status_code == 302 and response.url == reverse("annotation:home")
    bad = client.post(reverse("login"), {"username": "rater1", "password": "wrong"})
    assert bad.status_code == 200 and b"didn't match" in bad.content


def test_home_lists_only_my_projects_with_progress(rater_client, project, rater, make_task):
    other = Project.objects.create(name="Someone else's project")
    for _ in range(3):
        make_task(project)
    a = next_assignment(project, rater)
    order = [[cid] for cid in a.display_order]
    rater_client.post(submit_url(a), {"order": json.dumps(order)})
    page = rater_client.get(reverse("annotation:home"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Test project" in html and other.name not in html
    assert rate_url(project) in html and "Start rating" in html
    assert "0 of 3 tasks complete" in html and "you ranked <strong>1</strong>" in html


def test_non_members_get_404(client, make_user, project, rater, make_task):
    make_task(project)
    a = next_assignment(project, rater)
    outsider = make_user("outsider")
    client.force_login(outsider)
    assert client.get(rate_url(project)).status_code == 404
    assert client.post(submit_url(a), {"order": singleton_groups(a.display_order)}).status_code == 404
    assert client.post(skip_url(a), {"reason": "skip"}).status_code == 404
    assert not Assignment.objects.filter(rater=outsider).exists()
    assert Assignment.objects.get(pk=a.pk).status == Assignment.LEASED


def test_a_rater_cannot_submit_or_skip_another_raters_assignment(client, project, rater, rater2, make_task):
    make_task(project)
    theirs = next_assignment(project, rater2)
    client.force_login(rater)
    assert client.post(submit_url(theirs), {"order": singleton_groups(theirs.display_order)}).status_code == 404
    assert client.post(skip_url(theirs), {"reason": "skip"}).status_code == 404
    assert not Ranking.objects.exists()
    assert Assignment.objects.get(pk=theirs.pk).status == Assignment.LEASED


def test_submit_and_skip_are_post_only(rater_client, project, rater, make_task):
    make_task(project)
    a = lease(rater_client, project, rater)
    assert rater_client.get(submit_url(a)).status_code == 405
    assert rater_client.get(skip_url(a)).status_code == 405


# ---- the rate page ------------------------------------------------------------------------------------------


def test_rate_page_shows_the_leased_task_in_display_order(rater_client, project, rater, make_task):
    task = make_task(project, texts=["alpha text", "bravo text", "charlie text", "delta text"], prompt_text="Pick one")
    response = rater_client.get(rate_url(project))
    assert response.status_code == 200
    a = Assignment.objects.get(rater=rater, task=task)
    html = response.content.decode()
    texts = dict(task.completions.values_list("id", "text"))
    positions = [html.index(texts[cid]) for cid in a.display_order]
    assert positions == sorted(positions), "completions must appear in the assignment's display order"
    for n, cid in enumerate(a.display_order, start=1):
        assert f'id="output-{n}" data-id="{cid}"' in html
    data = rate_data(response)
    assert data["assignment"] == a.pk
    assert data["outputs"] == [{"n": n, "id": cid} for n, cid in enumerate(a.display_order, start=1)]
    assert data["criteria"] == ["helpful", "harmless", "honest"]
    assert "Pick one" in html and "Prefer <strong>helpful</strong> answers." in html  # prompt and guidelines
    assert "model-0" not in html, "model names stay hidden: raters rank blind"
    # Reloading keeps the same lease and the same on-screen order.
    again = rate_data(rater_client.get(rate_url(project)))
    assert again["assignment"] == a.pk and again["outputs"] == data["outputs"]


def test_rate_page_sends_a_content_security_policy(rater_client, project, make_task):
    make_task(project)
    response = rater_client.get(rate_url(project))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "object-src 'none'" in csp
    assert rater_client.get(reverse("annotation:home"))["Content-Security-Policy"] == csp
    # No inline script: every <script> either loads a static file or is inert JSON data.
    for tag in re.findall(r"<script\b[^>]*>", response.content.decode()):
        assert 'src="/static/annotation/rate.js"' in tag or 'type="application/json"' in tag, tag
    assert " style=" not in response.content.decode() and "<style" not in response.content.decode()


def test_no_tasks_left(rater_client, project):
    response = rater_client.get(rate_url(project))
    assert response.status_code == 200
    assert b"No tasks left" in response.content and b"rank-form" not in response.content


def test_rate_page_cost_does_not_grow_with_the_queue(rater_client, project, rater, make_task):
    make_task(project)
    with CaptureQueriesContext(connection) as few:
        rater_client.get(rate_url(project))  # leases the task
    Assignment.objects.all().delete()
    for _ in range(40):
        make_task(project)
    with CaptureQueriesContext(connection) as many:
        rater_client.get(rate_url(project))
    assert len(many) == len(few)
    assert len(few) <= 21  # 20, plus the pause check (quality) since issue 10


# ---- submit -------------------------------------------------------------------------------------------------


def test_submit_stores_the_ranking_and_serves_the_next_task(rater_client, project, rater, make_task):
    first = make_task(project, priority=5)
    second = make_task(project, priority=1)
    a = lease(rater_client, project, rater)
    assert a.task_id == first.pk
    ids = a.display_order
    order = [[ids[2]], [ids[0], ids[3]], [ids[1]]]
    criteria = {"helpful": [[i] for i in ids], "harmless": []}
    response = rater_client.post(
        submit_url(a),
        {
            "order": json.dumps(order),
            "criteria_orders": json.dumps(criteria),
            "rationale": "Output 3 answers the question.",
            "flags": ["unsure"],
            "time_spent_ms": "8421",
        },
    )
    assert response.status_code == 302 and response.url == rate_url(project)
    ranking = Ranking.objects.get(assignment=a)
    assert ranking.order == [[ids[2]], sorted([ids[0], ids[3]]), [ids[1]]]
    assert ranking.display_order == ids
    assert ranking.time_spent_ms == 8421
    assert ranking.rationale == "Output 3 answers the question."
    assert ranking.flags == ["unsure"]
    assert ranking.criteria_orders == {"helpful": [[i] for i in ids]}  # an empty criterion is simply not rated
    assert ranking.rater == rater
    nxt = rater_client.get(response.url)
    assert rate_data(nxt)["assignment"] != a.pk
    assert Assignment.objects.get(pk=rate_data(nxt)["assignment"]).task_id == second.pk
    assert b"Ranking saved." in nxt.content


def test_double_submit_is_idempotent(rater_client, project, rater, make_task):
    make_task(project)
    a = lease(rater_client, project, rater)
    ids = a.display_order
    first = rater_client.post(submit_url(a), {"order": singleton_groups(ids), "time_spent_ms": "1000"})
    second = rater_client.post(submit_url(a), {"order": singleton_groups(ids), "time_spent_ms": "2000"})  # double click
    assert first.status_code == second.status_code == 302
    ranking = Ranking.objects.get(assignment=a)
    assert ranking.order == [[i] for i in ids] and ranking.time_spent_ms == 1000 and ranking.revision == 0
    a.task.refresh_from_db()
    assert a.task.submitted_count == 1


@pytest.mark.parametrize(
    ("raw_order", "message"),
    [
        ("dup", "appears more than once"),
        ("missing", "must rank exactly"),
        ("[[1, 2", "Enter a valid JSON"),
        ("", "rank the outputs before submitting"),
    ],
)
def test_bad_order_keeps_the_input_and_shows_the_error(rater_client, project, rater, make_task, raw_order, message):
    make_task(project)
    a = lease(rater_client, project, rater)
    ids = a.display_order
    if raw_order == "dup":
        raw_order = json.dumps([[ids[0]], [ids[0]], [ids[1]], [ids[2]]])
    elif raw_order == "missing":
        raw_order = json.dumps([[ids[0]], [ids[1]]])
    response = rater_client.post(
        submit_url(a),
        {
            "order": raw_order,
            "criteria_orders": json.dumps({"helpful": [[i] for i in ids]}),
            "rationale": "My careful <reasons> & notes",
            "flags": ["broken"],
            "time_spent_ms": "5000",
        },
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert message.replace("'", "&#x27;") in html and 'role="alert"' in html
    assert "My careful &lt;reasons&gt; &amp; notes</textarea>" in html
    assert 'value="broken" checked' in html
    data = rate_data(response)
    assert data["assignment"] == a.pk
    assert data["initial"]["criteria_orders"] == {"helpful": [[i] for i in ids]}
    assert data["initial"]["time_spent_ms"] == 5000
    if raw_order.startswith("[") and raw_order.endswith("]"):
        assert data["initial"]["order"] == json.loads(raw_order)
    assert not Ranking.objects.exists()
    assert Assignment.objects.get(pk=a.pk).status == Assignment.LEASED


def test_bad_criterion_and_time_are_refused(rater_client, project, rater, make_task):
    make_task(project)
    a = lease(rater_client, project, rater)
    order = singleton_groups(a.display_order)
    bad_criterion = rater_client.post(
        submit_url(a), {"order": order, "criteria_orders": json.dumps({"funny": [[i] for i in a.display_order]})}
    )
    assert bad_criterion.status_code == 400 and b"unknown criterion" in bad_criterion.content
    bad_time = rater_client.post(submit_url(a), {"order": order, "time_spent_ms": "-5"})
    assert bad_time.status_code == 400 and b"Time spent" in bad_time.content
    assert not Ranking.objects.exists()


def test_submitting_a_skipped_task_moves_on_with_a_message(rater_client, project, rater, make_task):
    make_task(project)
    make_task(project)
    a = lease(rater_client, project, rater)
    rater_client.post(skip_url(a), {"reason": "skip"})
    response = rater_client.post(submit_url(a), {"order": singleton_groups(a.display_order)}, follow=True)
    assert response.status_code == 200 and b"Not saved: this task was skipped" in response.content
    assert not Ranking.objects.exists()


# ---- skip and flag ------------------------------------------------------------------------------------------


def test_skip_releases_the_task_and_serves_another(rater_client, project, rater, make_task):
    t1 = make_task(project, priority=2)
    t2 = make_task(project, priority=1)
    a = lease(rater_client, project, rater)
    assert a.task_id == t1.pk
    response = rater_client.post(skip_url(a), {"reason": "skip"})
    assert response.status_code == 302 and response.url == rate_url(project)
    a.refresh_from_db()
    assert a.status == Assignment.SKIPPED and a.skip_reason == "skip"
    assert lease(rater_client, project, rater).task_id == t2.pk


def test_flag_unsafe_records_the_flag(rater_client, project, rater, make_task):
    make_task(project)
    a = lease(rater_client, project, rater)
    response = rater_client.post(skip_url(a), {"reason": "flag:unsafe"}, follow=True)
    a.refresh_from_db()
    assert a.status == Assignment.SKIPPED and a.skip_reason == "flag:unsafe"
    assert b"flagged as unsafe" in response.content
    assert b"No tasks left" in response.content  # a flagged task is not offered to the same rater again


def test_unknown_skip_reason_is_refused(rater_client, project, rater, make_task):
    make_task(project)
    a = lease(rater_client, project, rater)
    response = rater_client.post(skip_url(a), {"reason": "because"})
    assert response.status_code == 400
    assert Assignment.objects.get(pk=a.pk).status == Assignment.LEASED


# ---- privacy ------------------------------------------------------------------------------------------------


def test_raters_never_see_other_raters_rankings(client, project, rater, rater2, make_task):
    make_task(project)
    other = next_assignment(project, rater2)
    client.force_login(rater2)
    client.post(
        submit_url(other), {"order": singleton_groups(other.display_order), "rationale": "SECRET-RATIONALE-OF-RATER2"}
    )
    assert Ranking.objects.filter(rater=rater2).exists()
    client.force_login(rater)
    pages = [client.get(reverse("annotation:home")), client.get(rate_url(project))]
    for page in pages:
        assert b"SECRET-RATIONALE-OF-RATER2" not in page.content and b"rater2" not in page.content
    data = rate_data(pages[1])
    assert data["initial"] == {"order": [], "criteria_orders": {}, "time_spent_ms": 0}


def test_membership_removed_mid_task_blocks_submit(rater_client, project, rater, make_task):
    make_task(project)
    a = lease(rater_client, project, rater)
    Membership.objects.filter(project=project, user=rater).delete()
    assert rater_client.post(submit_url(a), {"order": singleton_groups(a.display_order)}).status_code == 404
    assert not Ranking.objects.exists()
