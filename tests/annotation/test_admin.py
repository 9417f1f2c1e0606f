"""Import runs in the admin are records: read-only for everyone, no Add or Save, deleted by a superuser only; their
summary and first errors shown as tables, not JSON."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from annotation.models import ImportRun


@pytest.fixture
def run(project):
    return ImportRun.objects.create(project=project, source="batch.jsonl", status=ImportRun.FAILED, attempts=2,
                                    summary={"tasks": 0, "seconds": 1.23456789},
                                    errors=[[3, "completions: <b>expected</b> a list"]], error_count=1)


def test_import_runs_are_read_only_for_staff(make_user, run):
    staff = make_user("staffer", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="annotation",
                                                         codename__endswith="importrun"))
    client = Client()
    client.force_login(staff)
    change = reverse("admin:annotation_importrun_change", args=[run.pk])
    body = client.get(change).content.decode()
    for button in ('name="_save"', 'name="_continue"', "deletelink"):
        assert button not in body, button
    assert 'name="attempts"' not in body and 'name="started_at' not in body and 'name="status"' not in body
    assert client.get(reverse("admin:annotation_importrun_add")).status_code == 403
    assert client.post(change, {"status": "succeeded"}).status_code == 403


def test_import_run_page_shows_tables(admin_client, run):
    body = admin_client.get(reverse("admin:annotation_importrun_change", args=[run.pk])).content.decode()
    assert "<th>seconds</th><td>1.23</td>" in body
    assert "<td>3</td><td>completions: &lt;b&gt;expected&lt;/b&gt; a list</td>" in body
    assert "deletelink" in body  # a superuser may still delete one
