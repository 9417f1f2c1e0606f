"""Guidelines history and preview: one revision per change whatever the path (admin, API create/PATCH, restore), the
data migration's revision 1, the diff, the sanitised preview (admin and API) refused to raters and outsiders, and the
rate page's "Guidelines updated" notice."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils import timezone

from annotation import guidelines
from annotation.assignment import next_assignment
from annotation.models import GuidelinesRevision, Membership, Project, Ranking
from annotation.submission import RankingPayload, submit_ranking

pytestmark = pytest.mark.django_db

HOSTILE = ('Be **kind**. <script>alert("x")</script> [click](javascript:alert(1)) '
           '<img src=x onerror=alert(2)> [ok](https://example.org)')


def revisions(project) -> list[tuple[int, str]]:
    return list(GuidelinesRevision.objects.filter(project=project).order_by("number").values_list("number", "text"))


# ---- the service ------------------------------------------------------------------------------------------


def test_record_revision_writes_only_changes_and_numbers_them(project, manager):
    first = guidelines.record_revision(project, by=manager)
    assert first.number == 1 and first.text == project.guidelines and first.edited_by == manager
    assert guidelines.record_revision(project, by=manager) is None  # unchanged: nothing new
    project.guidelines = "Prefer *honest* answers."
    project.save()
    second = guidelines.record_revision(project, by=manager, note="honesty first")
    assert (second.number, second.note) == (2, "honesty first")
    assert revisions(project) == [(1, "Prefer **helpful** answers."), (2, "Prefer *honest* answers.")]


def test_restore_is_a_new_revision_with_the_old_text(project, manager):
    guidelines.record_revision(project)
    Project.objects.filter(pk=project.pk).update(guidelines="v2")
    guidelines.record_revision(project)
    restored = guidelines.restore_revision(project, 1, by=manager)
    project.refresh_from_db()
    assert project.guidelines == "Prefer **helpful** answers."
    assert (restored.number, restored.note, restored.edited_by) == (3, "restored revision 1", manager)
    assert guidelines.restore_revision(project, 3, by=manager) is None  # already that text


def test_the_data_migration_records_existing_guidelines_as_revision_1(project):
    migration = importlib.import_module("annotation.migrations.0016_guidelines_revisions")
    migration.record_current_guidelines(apps, None)
    revision = GuidelinesRevision.objects.get(project=project)
    assert (revision.number, revision.text) == (1, project.guidelines)
    assert revision.created_at == project.created_at  # not "now": raters are not told they just changed


def test_diff_is_escaped_and_shows_both_sides(project):
    guidelines.record_revision(project)
    Project.objects.filter(pk=project.pk).update(guidelines="Prefer **helpful** answers.\n<script>evil()</script>")
    second = guidelines.record_revision(project)
    html = guidelines.revision_diff(second)
    assert "<script>" not in html and "&lt;script&gt;evil()&lt;/script&gt;" in html
    assert 'class="diff"' in html


def test_preview_strips_scripts_and_javascript_links_and_is_bounded():
    html = guidelines.preview(HOSTILE)
    assert "<strong>kind</strong>" in html and 'href="https://example.org"' in html
    assert "<script" not in html and "href=\"javascript" not in html and "<img" not in html
    with pytest.raises(guidelines.PreviewTooLong):
        guidelines.preview("x" * (guidelines.MAX_PREVIEW_CHARS + 1))


# ---- the API ----------------------------------------------------------------------------------------------


def test_api_create_and_patch_record_revisions(manager, token_client):
    client = token_client(manager)
    created = client.post("/api/projects/", {"name": "G", "guidelines": "one"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert client.patch(f"/api/projects/{pk}/", {"k": 3}, format="json").status_code == 200
    assert client.patch(f"/api/projects/{pk}/", {"guidelines": "two"}, format="json").status_code == 200
    # Restoring through the API is a PATCH with the old text.
    assert client.patch(f"/api/projects/{pk}/", {"guidelines": "one"}, format="json").status_code == 200
    listed = client.get(f"/api/projects/{pk}/guidelines/revisions/")
    assert listed.status_code == 200
    rows = listed.json()["results"]
    assert [(r["number"], r["text"], r["edited_by"]) for r in rows] == [
        (3, "one", "manager"), (2, "two", "manager"), (1, "one", "manager")]


def test_api_revisions_are_for_members_only(project, rater, make_user, token_client):
    guidelines.record_revision(project)
    rows = token_client(rater).get(f"/api/projects/{project.pk}/guidelines/revisions/")
    assert rows.status_code == 200 and rows.json()["results"][0]["text"] == project.guidelines
    outsider = token_client(make_user("outsider")).get(f"/api/projects/{project.pk}/guidelines/revisions/")
    assert outsider.status_code == 404


def test_api_preview_sanitises_for_managers_and_refuses_others(project, plain_manager, rater, make_user,
                                                              token_client):
    url = f"/api/projects/{project.pk}/guidelines/preview/"
    answer = token_client(plain_manager).post(url, {"text": HOSTILE}, format="json")
    assert answer.status_code == 200, answer.content
    html = answer.json()["html"]
    assert "<strong>kind</strong>" in html and "<script" not in html and "href=\"javascript" not in html
    assert token_client(rater).post(url, {"text": "x"}, format="json").status_code == 403
    assert token_client(make_user("outsider")).post(url, {"text": "x"}, format="json").status_code == 404
    too_long = token_client(plain_manager).post(url, {"text": "x" * (guidelines.MAX_PREVIEW_CHARS + 1)},
                                                format="json")
    assert too_long.status_code == 400 and "text" in too_long.json()
    assert token_client(plain_manager).post(url, {}, format="json").status_code == 400
    assert GuidelinesRevision.objects.filter(project=project).count() == 0  # a preview saves nothing


# ---- the admin --------------------------------------------------------------------------------------------


@pytest.fixture
def boss(make_user):
    return make_user("boss", is_staff=True, is_superuser=True)


def _admin_form_data(project, **changes) -> dict:
    data = {
        "name": project.name, "description": project.description, "guidelines": project.guidelines,
        "k": project.k, "overlap": project.overlap, "criteria": '["helpful"]', "lease_minutes": project.lease_minutes,
        "reask_share": project.reask_share, "eval_share": project.eval_share, "edit_window_s": project.edit_window_s,
        "max_prompt_chars": project.max_prompt_chars, "max_completion_chars": project.max_completion_chars,
        "max_unbroken_run": project.max_unbroken_run, "min_overlap": "", "max_overlap": "",
        "consensus_threshold": project.consensus_threshold, "judge_trust": "", "gold_rate": project.gold_rate,
        "reliability_threshold": project.reliability_threshold, "min_rater_evidence": project.min_rater_evidence,
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0", "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000", "guidelines_note": "",
    }
    data.update(changes)
    return data


def test_admin_save_records_a_revision_with_its_note_and_the_page_shows_history(client, project, boss):
    client.force_login(boss)
    url = reverse("admin:annotation_project_change", args=[project.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'id="guidelines-preview-button"' in page.content and b"guidelines_admin.js" in page.content
    saved = client.post(url, _admin_form_data(project, guidelines="New **rules**.", guidelines_note="clearer"))
    assert saved.status_code == 302, saved.content.decode()[:3000]
    revision = GuidelinesRevision.objects.get(project=project)
    assert (revision.number, revision.text, revision.note, revision.edited_by) == (1, "New **rules**.", "clearer",
                                                                                  boss)
    page = client.get(url)
    assert b"revision 1" in page.content and b"clearer" in page.content


def test_admin_revision_page_diff_and_restore(client, project, boss):
    guidelines.record_revision(project)
    Project.objects.filter(pk=project.pk).update(guidelines="Changed <b>text</b>.")
    guidelines.record_revision(project)
    client.force_login(boss)
    history = client.get(reverse("admin:annotation_project_guidelines_history", args=[project.pk]))
    assert history.status_code == 200 and b"revision 2" in history.content
    url = reverse("admin:annotation_project_guidelines_revision", args=[project.pk, 2])
    page = client.get(url)
    assert page.status_code == 200
    assert b"&lt;b&gt;text&lt;/b&gt;" in page.content and b"<b>text</b>" not in page.content
    first = reverse("admin:annotation_project_guidelines_revision", args=[project.pk, 1])
    assert b'id="restore-revision"' in client.get(first).content
    restored = client.post(first)
    assert restored.status_code == 302
    project.refresh_from_db()
    assert project.guidelines == "Prefer **helpful** answers." and revisions(project)[-1][0] == 3
    assert client.get(reverse("admin:annotation_project_guidelines_revision", args=[project.pk, 9])).status_code == 404


def test_admin_preview_is_sanitised_csrf_checked_and_staff_only(project, boss, manager, rater):
    from django.test import Client

    url = reverse("admin:annotation_project_guidelines_preview")
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(boss)
    assert staff.post(url, {"text": "x"}).status_code == 403  # no CSRF token
    staff.get(reverse("admin:annotation_project_change", args=[project.pk]))  # sets the CSRF cookie
    token = staff.cookies["csrftoken"].value
    answer = staff.post(url, {"text": HOSTILE}, HTTP_X_CSRFTOKEN=token)
    assert answer.status_code == 200
    html = answer.json()["html"]
    assert "<strong>kind</strong>" in html and "<script" not in html and "href=\"javascript" not in html
    too_long = staff.post(url, {"text": "x" * (guidelines.MAX_PREVIEW_CHARS + 1)}, HTTP_X_CSRFTOKEN=token)
    assert too_long.status_code == 400 and "text" in too_long.json()
    assert staff.get(url).status_code == 405
    no_rights = Client()
    no_rights.force_login(manager)  # staff without the project admin's permissions
    assert no_rights.post(url, {"text": "x"}).status_code == 403
    outsider = Client()
    outsider.force_login(rater)  # not staff: the admin sends them to its login page
    refused = outsider.post(url, {"text": "x"})
    assert refused.status_code == 302 and "/admin/login/" in refused["Location"]


# ---- the rate page ----------------------------------------------------------------------------------------


def _rank_one(project, rater, make_task) -> Ranking:
    make_task(project)
    assignment = next_assignment(project, rater)
    ranking, _ = submit_ranking(assignment, RankingPayload(order=[[c] for c in assignment.display_order]))
    return ranking


def test_rate_page_says_when_guidelines_changed_since_the_raters_last_ranking(client, project, rater, make_task):
    client.force_login(rater)
    make_task(project)
    url = reverse("annotation:rate", args=[project.pk])
    assert b"guidelines-updated" not in client.get(url).content  # no history yet: nothing to say

    guidelines.record_revision(project)
    page = client.get(url).content.decode()
    assert "Guidelines updated" in page and "is-new" not in page  # never ranked here: nothing "changed" for them

    ranking = _rank_one(project, rater, make_task)
    Ranking.objects.filter(pk=ranking.pk).update(submitted_at=timezone.now() - timedelta(hours=1))
    Project.objects.filter(pk=project.pk).update(guidelines="New rules.")
    guidelines.record_revision(project)
    page = client.get(url).content.decode()
    assert 'class="guidelines-updated is-new"' in page and "changed since your last ranking" in page

    Ranking.objects.filter(pk=ranking.pk).update(submitted_at=timezone.now() + timedelta(minutes=1))
    assert "is-new" not in client.get(url).content.decode()


def test_other_projects_rankings_do_not_hide_the_notice(project, rater, make_task):
    other = Project.objects.create(name="Other", k=4, overlap=2)
    Membership.objects.create(project=other, user=rater, role=Membership.RATER)
    ranking = _rank_one(project, rater, make_task)
    Ranking.objects.filter(pk=ranking.pk).update(submitted_at=timezone.now() - timedelta(hours=1))
    guidelines.record_revision(project)
    _rank_one(other, rater, make_task)  # a newer ranking, but elsewhere
    assert guidelines.rater_notice(project, rater).changed_since_last_ranking
