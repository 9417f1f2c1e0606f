"""The periodic-task admin (django-celery-beat, where beat's schedules are edited) works under the site's CSP
(config/security.py): on main its inline script was blocked on the add and change pages, so the crontab's
translation never showed. Its script is a file now (templates/admin/djcelery/)."""

from __future__ import annotations

import pytest
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from tests.test_browser import browser, page, pytestmark  # noqa: F401 - Chromium fixtures and markers


@pytest.fixture
def admin_page(page, make_user):  # noqa: F811 - the imported fixture
    make_user("root", password="pw-for-tests-1", is_staff=True, is_superuser=True)
    page.goto("/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.console_errors.clear()  # the browser's one request for /favicon.ico, which the admin does not serve
    return page


def test_periodic_task_pages_run_no_blocked_script(admin_page):
    crontab = CrontabSchedule.objects.create(minute="30", hour="4")
    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(name="nightly", task="verdict.ping", interval=every)
    for url in ("/admin/django_celery_beat/periodictask/add/",
                f"/admin/django_celery_beat/periodictask/{task.pk}/change/"):
        admin_page.goto(url)
        admin_page.select_option("#id_crontab", str(crontab.pk))
        help_text = admin_page.locator(".field-crontab .help").inner_text()
        assert "Translation:" in help_text and "04:30" in help_text.replace("4:30", "04:30"), help_text
    assert not admin_page.console_errors, admin_page.console_errors  # a CSP violation is a console error
