"""The admin: every page renders, counts and agreement are right, text is escaped, no N+1 queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotation.admin import EstimatedCountPaginator, format_order
from annotation.assignment import next_assignment
from annotation.models import Membership, Prompt, Ranking, RankingTask
from annotation.submission import RankingPayload, submit_ranking

XSS = "<script>alert(1)</script>"


@pytest.fixture
def admin_client_(client, make_user):
    user = make_user("boss", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def rank_in_id_order(project, rater) -> Ranking:
    a = next_assignment(project, rater)
    ids = list(a.task.completions.order_by("id").values_list("id", flat=True))
    return submit_ranking(a, RankingPayload(order=[[c] for c in ids], time_spent_ms=2500))[0]


def test_format_order():
    assert format_order([[12], [10, 13], [11]]) == "12 ≻ 10 = 13 ≻ 11"
    assert format_order([[1], [2]], {1: "gpt", 2: "llama"}) == "1 (gpt) ≻ 2 (llama)"


def test_every_changelist_and_the_index_render(admin_client_, project, rater, make_task):
    make_task(project)
    rank_in_id_order(project, rater)
    index = admin_client_.get(reverse("admin:index"))
    assert index.status_code == 200
    body = index.content.decode()
    # Celery job results and editable beat schedules come with their own admin registrations.
    assert "Task results" in body and "Periodic tasks" in body
    for model in ("project", "prompt", "completion", "rankingtask", "assignment", "ranking", "raterprofile",
                  "membership"):
        response = admin_client_.get(reverse(f"admin:annotation_{model}_changelist"))
        assert response.status_code == 200, model
    ranking = Ranking.objects.get()
    detail = admin_client_.get(reverse("admin:annotation_ranking_change", args=[ranking.pk]))
    assert detail.status_code == 200
    assert format_order(ranking.order) in detail.content.decode()
    for model, obj in (("project", project), ("rankingtask", ranking.task), ("prompt", ranking.task.prompt)):
        assert admin_client_.get(reverse(f"admin:annotation_{model}_change", args=[obj.pk])).status_code == 200


def test_rankings_are_view_only(admin_client_, project, rater, make_task):
    make_task(project)
    ranking = rank_in_id_order(project, rater)
    assert admin_client_.get(reverse("admin:annotation_ranking_add")).status_code == 403
    assert admin_client_.get(reverse("admin:annotation_ranking_delete", args=[ranking.pk])).status_code == 403
    admin_client_.post(reverse("admin:annotation_ranking_change", args=[ranking.pk]), {"rationale": "edited"})
    ranking.refresh_from_db()
    assert ranking.rationale == ""


def test_project_list_counts_and_agreement_page(admin_client_, project, rater, rater2, make_task):
    for _ in range(3):
        make_task(project)
    rank_in_id_order(project, rater)
    rank_in_id_order(project, rater2)  # same task, same order: full agreement
    response = admin_client_.get(reverse("admin:annotation_project_changelist"))
    row = response.context["cl"].result_list[0]
    assert (row.n_tasks, row.n_complete, row.n_rankings) == (3, 1, 2)
    body = response.content.decode()
    assert "33.3%" in body
    agreement_url = reverse("admin:annotation_project_agreement", args=[project.pk])
    assert agreement_url in body
    page = admin_client_.get(agreement_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<td id="pairwise-agreement">100.0%</td>' in html
    assert '<td id="alpha-ordinal">1.000</td>' in html
    assert "rater1" in html and "rater2" in html and "2.5 s" in html


def test_agreement_page_needs_staff(client, project, rater):
    client.force_login(rater)
    response = client.get(reverse("admin:annotation_project_agreement", args=[project.pk]))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_model_text_is_escaped(admin_client_, project, make_task, make_user):
    task = make_task(project, texts=[XSS, "[x](javascript:alert(1))", "b", "c"], prompt_text=f"Prompt {XSS}")
    evil = make_user("<b>eve</b>")
    Membership.objects.create(project=project, user=evil)
    a = next_assignment(project, evil)
    submit_ranking(a, RankingPayload(order=[[c] for c in task.completions.values_list("id", flat=True)]))
    pages = [
        reverse("admin:annotation_rankingtask_changelist"),
        reverse("admin:annotation_prompt_changelist"),
        reverse("admin:annotation_completion_changelist"),
        reverse("admin:annotation_prompt_change", args=[task.prompt_id]),
        reverse("admin:annotation_ranking_change", args=[Ranking.objects.get().pk]),
        reverse("admin:annotation_project_agreement", args=[project.pk]),
    ]
    for url in pages:
        html = admin_client_.get(url).content.decode()
        assert XSS not in html and "<b>eve</b>" not in html, url
        assert 'href="javascript:' not in html, url
    assert "&lt;script&gt;" in admin_client_.get(pages[0]).content.decode()


def test_raise_priority_action(admin_client_, project, make_task):
    tasks = [make_task(project, priority=1) for _ in range(3)]
    response = admin_client_.post(
        reverse("admin:annotation_rankingtask_changelist"),
        {"action": "raise_priority", "_selected_action": [tasks[0].pk, tasks[1].pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert [t.priority for t in RankingTask.objects.order_by("id")] == [11, 11, 1]
    raised = admin_client_.get(reverse("admin:annotation_rankingtask_changelist"), {"priority_band": "raised"})
    assert {t.pk for t in raised.context["cl"].result_list} == {t.pk for t in tasks}


def test_task_search_and_filters(admin_client_, project, make_task):
    first = make_task(project)
    second = make_task(project)
    RankingTask.objects.filter(pk=second.pk).update(source="active_learning", is_gold=True)
    url = reverse("admin:annotation_rankingtask_changelist")
    by_external = admin_client_.get(url, {"q": first.prompt.external_id})
    assert [t.pk for t in by_external.context["cl"].result_list] == [first.pk]
    by_id = admin_client_.get(url, {"q": str(second.pk)})
    assert second.pk in [t.pk for t in by_id.context["cl"].result_list]
    by_source = admin_client_.get(url, {"source": "active_learning"})
    assert [t.pk for t in by_source.context["cl"].result_list] == [second.pk]
    assert [t.pk for t in admin_client_.get(url, {"source": "other"}).context["cl"].result_list] == []


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx)


@pytest.mark.parametrize("model", ["rankingtask", "prompt", "ranking", "assignment", "project", "completion"])
def test_changelists_make_a_constant_number_of_queries(admin_client_, project, make_user, make_task, model):
    url = reverse(f"admin:annotation_{model}_changelist")
    raters = [make_user(f"q{i}") for i in range(4)]
    for r in raters:
        Membership.objects.create(project=project, user=r)

    def add_ranked_task():
        make_task(project)
        for r in raters[:2]:
            rank_in_id_order(project, r)

    add_ranked_task()
    few = _queries(admin_client_, url)
    for _ in range(4):
        add_ranked_task()
    assert _queries(admin_client_, url) == few


@pytest.mark.django_db
def test_estimated_count_paginator_uses_the_planner_estimate_for_big_unfiltered_tables(project, make_task):
    for _ in range(3):
        make_task(project)
    if connection.vendor == "postgresql":
        # The planner's estimate is whatever the last ANALYZE saw, and ANALYZE's figures outlive the rolled-back
        # transactions of earlier tests (a big import analyses what it loaded: annotation.bulk.analyze).
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Prompt._meta.db_table}")
    exact = EstimatedCountPaginator(Prompt.objects.order_by("id"), 10)
    assert exact.count == 3
    if connection.vendor != "postgresql":
        pytest.skip("row estimates come from PostgreSQL's pg_class")

    class Tiny(EstimatedCountPaginator):
        exact_below = 1

    Prompt.objects.filter(pk=Prompt.objects.order_by("id").first().pk).delete()
    # The estimate from the last ANALYZE (3 rows), not a fresh COUNT(*) (2 rows)...
    assert Tiny(Prompt.objects.order_by("id"), 10).count == 3
    assert EstimatedCountPaginator(Prompt.objects.order_by("id"), 10).count == 2
    # ...and a filtered changelist always counts exactly.
    assert Tiny(Prompt.objects.exclude(external_id="").order_by("id"), 10).count == 2
