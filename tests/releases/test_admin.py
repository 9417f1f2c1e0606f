"""The releases admin: read-only pages with the diff against the previous release; no add or change; only a
superuser deletes; text from outside is escaped."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from releases.build import create_release
from releases.models import DatasetRelease
from tests.releases.conftest import revise

XSS = "<script>alert(1)</script>"


@pytest.fixture
def boss(client, make_user):
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    return client


def test_the_change_page_shows_the_diff_against_the_previous_release(boss, project, ranked):
    first = create_release(project, "v1", XSS)
    revise(ranked.strict, [[0], [1], [2], [3]])
    second = create_release(project, "v2")
    assert boss.get(reverse("admin:releases_datasetrelease_changelist")).status_code == 200
    page = boss.get(reverse("admin:releases_datasetrelease_change", args=[second.pk])).content.decode()
    assert "v1 → v2" in page and "1 changed" in page and f"ranking {ranked.strict.pk} changed: order" in page
    assert f"export_release --project {project.pk} --release v2" in page
    assert "the project&#x27;s first release" in boss.get(
        reverse("admin:releases_datasetrelease_change", args=[first.pk])).content.decode()
    shown = boss.get(reverse("admin:releases_datasetrelease_change", args=[first.pk])).content.decode()
    assert XSS not in shown and "&lt;script&gt;" in shown


def test_no_add_and_no_change(boss, project, ranked):
    release = create_release(project, "v1", "kept")
    assert boss.get(reverse("admin:releases_datasetrelease_add")).status_code == 403
    posted = boss.post(reverse("admin:releases_datasetrelease_change", args=[release.pk]),
                       {"name": "v2", "description": "changed"})
    assert posted.status_code == 403
    assert DatasetRelease.objects.get().description == "kept"


def test_only_a_superuser_deletes(client, make_user, project, ranked):
    release = create_release(project, "v1")
    staff = make_user("staffer", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_datasetrelease",
                                                                        "delete_datasetrelease"]))
    client.force_login(staff)
    delete = reverse("admin:releases_datasetrelease_delete", args=[release.pk])
    assert client.get(reverse("admin:releases_datasetrelease_change", args=[release.pk])).status_code == 200
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert DatasetRelease.objects.exists()
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not DatasetRelease.objects.exists()
