"""The live progress panel in a real headless Chromium: "Refresh quality" on the admin quality page queues a
refresh, the panel polls GET …/quality/refresh/ (quality/static/quality/job_progress.js) while a worker runs it, and
reaches done with a link to the result, under the site's Content-Security-Policy (no inline script)."""

from __future__ import annotations

import pytest

from quality.tasks import refresh_quality
from tests.quality.helpers import best_first, rate_once
from tests.test_browser import browser, page  # noqa: F401  (fixtures)
from tests.test_browser import pytestmark as browser_marks

pytestmark = browser_marks


@pytest.fixture
def broker_emptied_after():
    """The click really queues the job on this test's Redis; the test plays the worker, then empties the queues so
    the message reaches no other test's worker."""
    from config.celery import app

    yield
    app.control.purge()


def test_refresh_quality_panel_follows_the_job_to_done(page, project, rater, rater2, make_task, make_user,  # noqa: F811
                                                       broker_emptied_after):
    for _ in range(3):
        make_task(project)
    for _ in range(3):
        rate_once(project, rater, best_first)
        rate_once(project, rater2, best_first)
    make_user("engineer", is_staff=True, is_superuser=True)

    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "engineer")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("input[type=submit]")
    page.goto(f"/admin/annotation/project/{project.pk}/quality/")
    assert page.locator("#job-quality").get_attribute("data-status") == "never"

    page.click("#refresh-quality")
    page.wait_for_load_state()
    panel = page.locator("#job-quality")
    page.wait_for_selector("#job-quality[data-state=polling]")
    assert panel.get_attribute("data-status") == "queued"
    assert panel.locator(".job-result").is_hidden()

    refresh_quality(project.pk, claimed=True)  # the worker takes the job; the panel sees it finish
    page.wait_for_selector("#job-quality[data-state=done]", timeout=15_000)
    assert panel.locator(".job-status").inner_text() == "done 100%"
    link = panel.locator(".job-result")
    assert link.is_visible() and link.get_attribute("href") == f"/admin/annotation/project/{project.pk}/quality/"
    assert [e for e in page.console_errors if not e.startswith("Failed to load resource")] == []
