"""The data browser and the review page in a real headless Chromium at 1366×768: search, a bulk action, a
rejection with a reason; model output and rater text stay text; the list fits the screen.

Set VERDICT_SCREENSHOT_DIR=/some/folder to also save screenshots of the pages.
"""

from __future__ import annotations

import os

from annotation.models import Completion, RankingTask
from quality.models import RankingReview
from quality.refresh import refresh_project
from tests.curation.helpers import rate_all
from tests.test_browser import browser  # noqa: F401  (fixture)
from tests.test_browser import pytestmark as browser_marks

pytestmark = browser_marks


def _shot(page, name: str) -> None:
    if os.environ.get("VERDICT_SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["VERDICT_SCREENSHOT_DIR"], name), full_page=True)


def test_browse_exclude_and_review_in_the_admin(browser, live_server, project, make_task, make_user,  # noqa: F811
                                                rater, rater2):
    make_user("engineer", is_staff=True, is_superuser=True)
    for i in range(6):
        make_task(project, prompt_text=f"How should I store tomatoes, question {i}?" if i % 2 else
                  f"Explain recursion to a beginner, take {i}")
    Completion.objects.filter(model_name="model-3").update(model_name="<img src=x onerror=alert(1)>")
    rankings = rate_all(project, [rater, rater2])
    refresh_project(project)

    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 768})
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "engineer")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("input[type=submit]")

    page.goto(f"/admin/curation/browsedtask/?project__id__exact={project.pk}")
    page.fill("#searchbar", "tomato")
    page.press("#searchbar", "Enter")
    page.wait_for_load_state()
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 3 and "tomatoes" in rows.first.inner_text()
    assert "<img src=x onerror=alert(1)>" in page.locator("#result_list").inner_text()  # text, not an image
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    _shot(page, "data-browser.png")

    page.check("#action-toggle")  # every task on the page: the three tomato questions
    page.select_option("select[name=action]", "exclude_from_training")
    page.click("button[name=index]")
    page.wait_for_load_state()
    assert "Excluded from training: 3 of 3 task(s)" in page.locator(".messagelist").inner_text()
    assert RankingTask.objects.filter(excluded_from_training=True).count() == 3

    ranking = rankings[0]
    page.goto(f"/admin/curation/reviewedranking/{ranking.pk}/change/")
    assert "no active reward-model version yet" in page.locator("#model-verdict").inner_text()
    assert page.locator("#review-completions tbody tr").count() == 4
    page.fill("#review-reason", "<b>ranked</b> without reading")
    page.click("#review-reject")
    page.wait_for_load_state()
    assert "Review saved" in page.locator(".messagelist").inner_text()
    assert "<b>ranked</b> without reading" in page.locator("#review-state").inner_text()
    assert RankingReview.objects.get(ranking=ranking).decision == "rejected"
    _shot(page, "review-ranking.png")

    page.click("#rater-history-link")
    page.wait_for_load_state()
    assert page.locator("#rater-rejected").inner_text().startswith("1 /")
    assert page.locator("#rater-rankings tbody tr").count() == 6
    _shot(page, "rater-history.png")
    assert dialogs == []
    context.close()
