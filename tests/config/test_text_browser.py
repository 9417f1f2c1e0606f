"""The rate page's own messages (rate.js) show a criterion's bidirectional controls as markers too: the server
sends each name as shown beside the name as stored (config.text), in a real Chromium."""

from __future__ import annotations

from playwright.sync_api import expect

from annotation.models import Membership, Project
from tests.test_browser import browser, page, pytestmark  # noqa: F401 - Chromium fixtures and markers


def test_criterion_names_in_messages_show_markers(page, make_user, make_task):  # noqa: F811 - the fixture
    project = Project.objects.create(name="P", k=2, overlap=1, criteria=["help\u202eful"])
    Membership.objects.create(project=project, user=make_user("rita", password="pw-for-tests-1"),
                              role=Membership.RATER)
    make_task(project, texts=["one", "two"])
    page.goto(f"/accounts/login/?next=/projects/{project.pk}/rate/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "pw-for-tests-1")
    page.click(".login-card button[type=submit]")  # the header also has a submit button (the language form)
    page.wait_for_selector("body.js-ready")  # rate.js has bound its keys
    page.keyboard.press("c")
    expect(page.locator("#status")).to_contain_text("Now ranking")
    status = page.locator("#status").inner_text()
    assert "help<U+202E>ful" in status and "\u202e" not in status, status
    assert not page.console_errors, page.console_errors
