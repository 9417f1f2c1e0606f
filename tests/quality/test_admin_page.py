"""The admin quality page in a real headless Chromium: the ML engineer's view renders with its plots, escapes what
raters and models wrote, and pauses a rater with a reason.

Set VERDICT_SCREENSHOT_DIR=/some/folder to also save a screenshot of the page.
"""

from __future__ import annotations

import os

import pytest

from annotation.models import Completion, Membership
from quality.models import PauseEvent
from quality.refresh import refresh_project
from tests.quality.helpers import as_shown, best_first, rate_once
from tests.test_browser import browser, page  # noqa: F401  (fixtures)
from tests.test_browser import pytestmark as browser_marks

pytestmark = browser_marks


@pytest.fixture
def engineer(make_user):
    return make_user("engineer", is_staff=True, is_superuser=True)


def test_quality_page_renders_with_plots_and_pauses_a_rater(page, project, make_user, make_task, engineer):  # noqa: F811
    project.overlap = 4
    project.save()
    for _ in range(12):
        make_task(project)
    Completion.objects.filter(prompt__project=project, model_name="model-3").update(
        model_name="<img src=x onerror=alert(1)>")
    raters = [make_user(f"r{i}") for i in range(3)]
    spammer = make_user("spam<b>bot</b>")
    for u in [*raters, spammer]:
        Membership.objects.create(project=project, user=u)
    for _ in range(12):
        for u in raters:
            rate_once(project, u, best_first)
        rate_once(project, spammer, as_shown, time_ms=800)
    refresh_project(project)

    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "engineer")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("input[type=submit]")
    page.goto(f"/admin/annotation/project/{project.pk}/quality/")
    assert page.locator("#quality-status").inner_text().startswith("Refreshed")
    rows = page.locator("#quality-rater-table tbody tr")
    assert rows.count() == 4
    assert "spam<b>bot</b>" in rows.first.inner_text()  # least reliable first, and shown as text
    assert "unreliable" in rows.first.inner_text()
    board = page.locator("#leaderboard-table tbody tr")
    assert board.count() == 4 and "model-0" in board.first.inner_text()
    assert "<img src=x onerror=alert(1)>" in page.locator("#leaderboard-table").inner_text()
    for kind in ("leaderboard", "confidence", "raters"):
        img = page.locator(f"#plot-{kind}")
        img.scroll_into_view_if_needed()
        page.wait_for_function("(el) => el.complete && el.naturalWidth > 0", arg=img.element_handle())
        assert img.evaluate("el => el.naturalWidth") > 300
    if os.environ.get("VERDICT_SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["VERDICT_SCREENSHOT_DIR"], "quality-page.png"), full_page=True)

    first = rows.first
    first.locator("input[name=reason]").fill("answers in screen order")
    first.locator("input[type=submit][value=Pause]").click()
    page.wait_for_load_state()
    assert "Paused rater" in page.locator(".messagelist").inner_text()
    assert Membership.objects.get(project=project, user=spammer).paused
    event = PauseEvent.objects.get(rater=spammer)
    assert event.by == engineer and event.reason == "answers in screen order"
    assert "answers in screen order" in page.locator("#pause-log").inner_text()
    # The admin has no favicon (a 404 the browser reports); nothing else may go wrong, and no dialog ever opens.
    assert [e for e in page.console_errors if not e.startswith("Failed to load resource")] == []
