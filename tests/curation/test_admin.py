"""The data browser and review pages in the admin: search, filters, bulk actions, the review form, a rater's
history; text from raters and models is escaped."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation.models import Completion, RankingTask
from curation.models import BulkAction
from quality.models import RankingReview
from quality.refresh import refresh_project
from tests.curation.helpers import rate_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(make_user):
    return make_user("engineer", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(engineer):
    client = Client()
    client.force_login(engineer)
    return client


@pytest.fixture
def rated(project, make_task, rater, rater2):
    tasks = [make_task(project, prompt_text=f"Question {i} about volcanoes") for i in range(2)]
    tasks.append(make_task(project, prompt_text="A question about gardening"))
    Completion.objects.filter(prompt=tasks[2].prompt).update(model_name="<script>alert(1)</script>")
    rankings = rate_all(project, [rater, rater2])
    refresh_project(project)
    return tasks, rankings


def test_browser_searches_filters_and_escapes(admin_client, project, rated):
    url = "/admin/curation/browsedtask/"
    page = admin_client.get(url, {"q": "volcanoes", "project__id__exact": project.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Question 0 about volcanoes" in html and "gardening" not in html
    page = admin_client.get(url, {"project__id__exact": project.pk, "confidence": "lt60"}).content.decode()
    assert "<script>alert(1)</script>" not in page


def test_bulk_exclude_from_the_browser(admin_client, project, rated):
    tasks, _ = rated
    response = admin_client.post(f"/admin/curation/browsedtask/?project__id__exact={project.pk}", {
        "action": "exclude_from_training", "_selected_action": [tasks[0].pk, tasks[1].pk], "priority": ""})
    assert response.status_code == 302
    assert set(RankingTask.objects.filter(excluded_from_training=True)) == {tasks[0], tasks[1]}
    assert BulkAction.objects.get().changed == 2
    admin_client.post("/admin/curation/browsedtask/", {
        "action": "set_priority", "_selected_action": [tasks[2].pk], "priority": "40"})
    assert RankingTask.objects.get(pk=tasks[2].pk).priority == 40


def test_review_page_rejects_with_a_reason_and_links_the_history(admin_client, project, rated, rater):
    _, rankings = rated
    ranking = rankings[0]
    url = f"/admin/curation/reviewedranking/{ranking.pk}/change/"
    html = admin_client.get(url).content.decode()
    assert "Consensus" in html and "no active reward-model version yet" in html
    admin_client.post(url, {"decision": "rejected", "reason": ""})
    assert not RankingReview.objects.exists()  # a rejection needs a reason
    admin_client.post(url, {"decision": "rejected", "reason": "did not read <b>the</b> answers"})
    assert RankingReview.objects.get().decision == "rejected"
    html = admin_client.get(url).content.decode()
    assert "did not read &lt;b&gt;the&lt;/b&gt; answers" in html
    history = admin_client.get(f"/admin/curation/reviewedranking/rater/{project.pk}/{ranking.rater_id}/")
    assert history.status_code == 200 and 'id="rater-rejected">1 / 0' in history.content.decode()


def test_staff_without_the_admin_permission_are_refused(project, rated, make_user):
    outsider = make_user("staffer", is_staff=True)  # staff, but not given the curation models' permissions
    client = Client()
    client.force_login(outsider)
    _, rankings = rated
    assert client.get(f"/admin/curation/reviewedranking/{rankings[0].pk}/change/").status_code == 403
    assert client.get("/admin/curation/browsedtask/").status_code == 403
