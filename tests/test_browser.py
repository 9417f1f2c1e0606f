"""The rate page in a real headless Chromium: rank with the keyboard only, submit, and check the database.

Set VERDICT_SCREENSHOT=/some/file.png to also save a screenshot of the rate page.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from annotation.models import Assignment, Ranking

# Playwright's sync API runs an event loop in this thread; the ORM calls here are still plain synchronous ones.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # CI sets VERDICT_REQUIRE_BROWSER=1 so a missing Chromium fails there instead of skipping.
    pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("VERDICT_REQUIRE_BROWSER") != "1",
                       reason=f"Chromium not installed at {CHROMIUM}"),
]

OUTPUT_TEXTS = [
    "Paris is the capital of France. It has been the seat of government since the 10th century.",
    "The capital of France is **Paris**.\n\n- population ≈ 2.1 million (city)\n- on the Seine",
    "I think it's Lyon. <script>alert('pwned')</script>",
    "France's capital: Paris. See [the city site](https://www.paris.fr) or `print('Paris')`.",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("dialog", lambda dialog: pytest.fail(f"unexpected dialog: {dialog.message}"))
    yield page
    context.close()


def log_in_and_open_rate_page(page, project) -> None:
    page.goto(f"/accounts/login/?next=/projects/{project.pk}/rate/")
    page.fill("#id_username", "rater1")
    page.fill("#id_password", "pw-for-tests-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/projects/{project.pk}/rate/")
    page.wait_for_selector("body.js-ready")


def shown_ids(page) -> list[int]:
    """Completion ids in on-screen order (output 1, 2, …)."""
    return [int(x) for x in page.eval_on_selector_all("article.output", "els => els.map(e => e.dataset.id)")]


def test_rank_with_the_keyboard_only(page, project, rater, make_task):
    task = make_task(project, texts=OUTPUT_TEXTS, prompt_text="What is the capital of **France**?")
    log_in_and_open_rate_page(page, project)
    ids = shown_ids(page)
    assignment = Assignment.objects.get(rater=rater, task=task)
    assert ids == assignment.display_order

    # 3 = 1 (tie), 2 by mistake, Backspace undoes it, then 4, then 2.
    for key in ["3", "=", "1", "2", "Backspace", "4", "2"]:
        page.keyboard.press(key)
    # Typing in the rationale box must not trigger shortcuts (digits, s, f, g, Enter are just text there).
    page.keyboard.press("r")
    page.keyboard.type("Output 3 and 1 are equally good; 2 is fine. See f, g, s.")
    page.keyboard.press("Escape")
    assert page.locator("#status").inner_text().startswith("All 4 ranked")
    assert page.locator(f'.rank-badge[data-badge-for="{ids[2]}"]').inner_text() == "#1 · tie"
    assert page.locator(f'.rank-badge[data-badge-for="{ids[1]}"]').inner_text() == "#3"
    # The hostile output is shown as text, never executed (no dialog fired above).
    hostile = task.completions.get(text=OUTPUT_TEXTS[2]).pk
    assert "<script>alert('pwned')</script>" in page.locator(f'article[data-id="{hostile}"] .output-body').inner_text()

    if os.environ.get("VERDICT_SCREENSHOT"):
        page.screenshot(path=os.environ["VERDICT_SCREENSHOT"], full_page=True)

    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left")
    ranking = Ranking.objects.get(assignment=assignment)
    assert ranking.order == [sorted([ids[2], ids[0]]), [ids[3]], [ids[1]]]
    assert ranking.display_order == ids
    assert ranking.rationale == "Output 3 and 1 are equally good; 2 is fine. See f, g, s."
    assert 0 < ranking.time_spent_ms < 120_000
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.SUBMITTED
    assert not page.console_errors, page.console_errors  # e.g. CSP violations


def test_move_tie_and_incomplete_submit_with_the_keyboard(page, project, rater, make_task):
    task = make_task(project)
    log_in_and_open_rate_page(page, project)
    ids = shown_ids(page)

    page.keyboard.press("1")
    page.keyboard.press("Enter")  # 1 of 4 ranked: refused in the page, nothing posted
    assert "Rank all 4 outputs" in page.locator("#status").inner_text()
    assert not Ranking.objects.exists()

    for key in ["2", "3", "4"]:
        page.keyboard.press(key)
    page.keyboard.press("ArrowUp")  # focus: output 4 → output 3
    page.keyboard.press("ArrowDown")  # back to output 4
    page.keyboard.press("Shift+ArrowUp")  # 1, 2, 4, 3
    page.keyboard.press("t")  # output 4 tied with output 2: 1, 2 = 4, 3
    page.keyboard.press("g")  # hide the guidelines
    assert page.locator("#guidelines-body").is_hidden()
    page.keyboard.press("?")
    assert page.locator("#help-overlay").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#help-overlay").is_hidden()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left")
    ranking = Ranking.objects.get(task=task, rater=rater)
    assert ranking.order == [[ids[0]], sorted([ids[1], ids[3]]), [ids[2]]]
    assert not page.console_errors, page.console_errors


def test_skip_needs_a_second_press(page, project, rater, make_task):
    task = make_task(project)
    log_in_and_open_rate_page(page, project)
    page.keyboard.press("s")
    assert "Press s again" in page.locator("#status").inner_text()
    assert Assignment.objects.get(task=task, rater=rater).status == Assignment.LEASED
    page.keyboard.press("s")
    page.wait_for_selector("text=No tasks left")
    skipped = Assignment.objects.get(task=task, rater=rater)
    assert skipped.status == Assignment.SKIPPED and skipped.skip_reason == "skip"


def test_refused_submissions_keep_the_raters_input(page, project, rater, make_task):
    make_task(project)
    log_in_and_open_rate_page(page, project)
    ids = shown_ids(page)
    for key in ["2", "1", "4", "3"]:
        page.keyboard.press(key)
    # A half-done criterion ranking is refused in the page, before anything is posted.
    page.keyboard.press("c")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    assert "Finish the helpful ranking" in page.locator("#status").inner_text()
    for key in ["2", "3", "4"]:
        page.keyboard.press(key)
    page.keyboard.press("r")
    page.keyboard.type("my notes")
    page.keyboard.press("Escape")
    # Meanwhile a manager drops that criterion: the server refuses, and the page comes back with the input kept.
    project.criteria = ["harmless"]
    project.save()
    page.keyboard.press("Enter")
    page.wait_for_selector("#errors")
    page.wait_for_selector("body.js-ready")
    assert "unknown criterion 'helpful'" in page.locator("#errors").inner_text()
    assert page.locator("#rationale").input_value() == "my notes"
    assert page.locator(f'.rank-badge[data-badge-for="{ids[1]}"]').inner_text() == "#1"
    assert not Ranking.objects.exists()
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left")
    ranking = Ranking.objects.get(rater=rater)
    assert ranking.order == [[ids[1]], [ids[0]], [ids[3]], [ids[2]]]
    assert ranking.criteria_orders == {} and ranking.rationale == "my notes"


def test_drag_and_drop_reorders_and_ties(page, project, rater, make_task):
    make_task(project)
    log_in_and_open_rate_page(page, project)
    ids = shown_ids(page)
    page.keyboard.press("1")
    page.keyboard.press("3")
    slot = page.locator("#rank-form .ranking[data-ranking='overall'] li.slot")
    # Output 2's header dropped on the top edge of the first slot: it goes first.
    page.locator("#output-2 .output-head").drag_to(slot.nth(0), target_position={"x": 20, "y": 2})
    assert [int(x) for x in slot.evaluate_all("els => els.map(e => e.dataset.id)")] == [ids[1], ids[0], ids[2]]
    # The unranked chip 4 dropped onto the middle of output 1's slot: tied with it.
    box = slot.nth(1).bounding_box()
    page.locator(f".ranking[data-ranking='overall'] .chip[data-id='{ids[3]}']").drag_to(
        slot.nth(1), target_position={"x": 40, "y": box["height"] / 2}
    )
    assert page.locator(f'.rank-badge[data-badge-for="{ids[3]}"]').inner_text() == "#2 · tie"
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No tasks left")
    ranking = Ranking.objects.get(rater=rater)
    assert ranking.order == [[ids[1]], sorted([ids[0], ids[3]]), [ids[2]]]
    assert not page.console_errors, page.console_errors


def test_huge_outputs_keep_the_rate_page_responsive(page, project, make_task):
    """A 1 MB single-token output (a degenerate repetition) and a 100 KB one: the page is ready within a time
    budget, each output's height is capped with an expand control, long runs wrap, and ranking still works."""
    import time

    project.overlap = 1
    project.save()
    texts = ["x" * 1_000_000, ("word " * 20_000).strip(), "A short answer.", "Another short answer."]
    make_task(project, texts=texts)
    t0 = time.monotonic()
    log_in_and_open_rate_page(page, project)
    ready_s = time.monotonic() - t0
    assert ready_s < 10, f"the rate page took {ready_s:.1f} s to become usable"
    viewport = page.viewport_size["height"]
    heights = page.eval_on_selector_all("article.output .output-body", "els => els.map(e => e.clientHeight)")
    overflow_x = page.eval_on_selector_all("article.output .output-body",
                                           "els => els.map(e => e.scrollWidth - e.clientWidth)")
    assert max(heights) <= viewport * 0.75 and max(overflow_x) <= 1, (heights, overflow_x)  # capped, and wrapped
    big = page.locator("article.output", has_text="1,000,000 characters")
    assert "Showing the first 50,000 of 1,000,000 characters." in big.inner_text()
    short = page.locator("article.output", has_text="A short answer.")
    assert short.locator("button.expand").is_hidden() and big.locator("button.expand").is_visible()
    big.locator("button.expand").click()
    assert big.locator(".output-body").evaluate("e => e.clientHeight") > viewport
    assert big.locator("button.expand").get_attribute("aria-expanded") == "true"
    big.locator("button.expand").click()
    assert big.locator(".output-body").evaluate("e => e.clientHeight") <= viewport * 0.75
    if os.environ.get("VERDICT_SCREENSHOT"):
        page.screenshot(path=str(Path(os.environ["VERDICT_SCREENSHOT"]).with_suffix(".huge.png")))
    page.mouse.click(5, 5)  # focus back on the page, not the button
    t1 = time.monotonic()
    for key in ["1", "2", "3", "4"]:
        page.keyboard.press(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert time.monotonic() - t1 < 10 and Ranking.objects.count() == 1
    assert "No tasks left" in page.content()


LONG_GUIDELINES = "\n\n".join(f"{i}. Prefer the answer that is more **helpful**, honest and harmless; " * 3
                              for i in range(1, 9))


def covered(page, selector: str) -> bool:
    """Whether what is on top at the centre of `selector` (scrolled into view) is something else."""
    element = page.locator(selector).first
    element.scroll_into_view_if_needed()
    return not page.evaluate("""(el) => { const r = el.getBoundingClientRect();
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return el === top || el.contains(top); }""", element.element_handle())


@pytest.mark.parametrize("viewport", [(1366, 768), (1280, 720)])
def test_submit_is_in_view_on_a_laptop_without_scrolling(browser, live_server, project, rater, make_task, viewport):
    """At 1366×768 Submit sat at y=857, below the fold, under long guidelines."""
    project.guidelines = LONG_GUIDELINES
    project.save()
    task = make_task(project, texts=[text * 4 for text in OUTPUT_TEXTS])
    context = browser.new_context(base_url=live_server.url, viewport=dict(zip(("width", "height"), viewport,
                                                                               strict=True)))
    page = context.new_page()
    log_in_and_open_rate_page(page, project)
    box = page.locator("#submit-btn").bounding_box()
    assert 0 <= box["y"] and box["y"] + box["height"] <= viewport[1], box
    assert not covered(page, "#submit-btn")
    assert page.evaluate("window.scrollY") == 0  # nothing scrolled to get there
    crumbs = page.locator(".crumb.muted").inner_text()
    assert f"task {task.pk}" not in crumbs and "you ranked 0" in crumbs  # no global id that means nothing here
    if os.environ.get("VERDICT_SCREENSHOT"):
        page.screenshot(path=os.environ["VERDICT_SCREENSHOT"].replace(".png", f"-{viewport[0]}.png"))
    context.close()


def test_on_a_phone_submit_is_reachable_and_nothing_covers_the_outputs(browser, live_server, project, rater,
                                                                       make_task):
    """At 390×844 the fixed keyboard bar (useless on touch) covered output 4."""
    project.guidelines = LONG_GUIDELINES
    project.save()
    make_task(project, texts=OUTPUT_TEXTS)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    log_in_and_open_rate_page(page, project)
    assert not page.locator("#keybar").is_visible()
    for n in range(1, 5):
        assert not covered(page, f"#output-{n}"), n
    assert not covered(page, "#submit-btn")
    if os.environ.get("VERDICT_SCREENSHOT"):
        page.screenshot(path=os.environ["VERDICT_SCREENSHOT"].replace(".png", "-phone.png"), full_page=True)
    context.close()


# ---- dark theme, languages, the guidelines preview ------------------------------------------------------------

SHOTS = os.environ.get("VERDICT_SHOTS_DIR")  # e.g. /tmp/shots: screenshots of the rate page light and dark

CONTRAST = """(selector) => {
    const el = document.querySelector(selector);
    const rgb = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = (c) => { const v = rgb(c).map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92
                                                        : Math.pow((x + 0.055) / 1.055, 2.4); });
                         return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
    let node = el, bg = "rgba(0, 0, 0, 0)";
    while (node && /rgba\\(0, 0, 0, 0\\)|transparent/.test(bg)) { bg = getComputedStyle(node).backgroundColor;
                                                               node = node.parentElement; }
    const fg = getComputedStyle(el).color;
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return {fg: lum(fg), bg: lum(bg), ratio: (a + 0.05) / (b + 0.05)};
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_rate_page_follows_the_system_colour_scheme(browser, live_server, project, rater, make_task, scheme):
    from datetime import timedelta

    from django.utils import timezone

    from annotation import guidelines
    from annotation.assignment import next_assignment
    from annotation.submission import RankingPayload, submit_ranking

    # The rater ranked once, then the guidelines changed: the page shows its highlighted notice too.
    make_task(project)
    earlier = next_assignment(project, rater)
    ranking, _ = submit_ranking(earlier, RankingPayload(order=[[c] for c in earlier.display_order]))
    Ranking.objects.filter(pk=ranking.pk).update(submitted_at=timezone.now() - timedelta(days=1))
    project.guidelines = "Prefer **helpful** answers. Use `code` sparingly.\n\n> Quote the prompt if needed."
    project.save()
    guidelines.record_revision(project)
    make_task(project, texts=OUTPUT_TEXTS, prompt_text="What is the capital of **France**?")
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 768},
                                  color_scheme=scheme)
    page = context.new_page()
    log_in_and_open_rate_page(page, project)
    page.keyboard.press("2")  # one ranked output, for its badge and slot colours
    body = page.evaluate(CONTRAST, "body")
    if scheme == "dark":
        assert body["bg"] < 0.05 and body["fg"] > 0.6, body  # a dark background, light text
    else:
        assert body["bg"] > 0.8 and body["fg"] < 0.05, body
    # WCAG AA for body text (4.5:1) wherever raters read: prompt, outputs, guidelines, hints, the status line.
    assert page.locator("#guidelines-updated.is-new").is_visible()
    for selector in ("body", ".prompt-body p", ".output-body p", ".guidelines-body p", ".hint", "#status",
                     "#guidelines-updated", "#guidelines-updated strong", ".md code", ".md blockquote",
                     ".muted", ".rank-badge", "#submit-btn", ".slot .preview", ".keybar"):
        assert page.evaluate(CONTRAST, selector)["ratio"] >= 4.5, (scheme, selector)
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"rate-{scheme}-1366.png"))
    context.close()


def test_a_german_browser_gets_the_rate_page_and_its_script_in_german(browser, live_server, project, rater,
                                                                      make_task):
    make_task(project, texts=OUTPUT_TEXTS)
    context = browser.new_context(base_url=live_server.url, locale="de-DE", viewport={"width": 1366, "height": 768})
    page = context.new_page()
    log_in_and_open_rate_page(page, project)
    assert "Absenden" in page.locator("#submit-btn").inner_text()
    assert page.locator("#status").inner_text() == "0 von 4 eingeordnet."  # rate.js's strings come translated
    page.keyboard.press("1")
    assert page.locator("#status").inner_text() == "1 von 4 eingeordnet."
    context.close()


def test_admin_preview_renders_the_textarea_sanitised(browser, live_server, project, make_user):
    make_user("boss", password="pw-for-tests-1", is_staff=True, is_superuser=True)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900},
                                  color_scheme="dark")
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: msg.type == "error" and "Failed to load resource" not in msg.text
            and errors.append(msg.text))
    missing = []
    page.on("response", lambda r: r.status == 404 and "favicon" not in r.url and missing.append(r.url))
    page.goto(f"/admin/login/?next=/admin/annotation/project/{project.pk}/change/")
    page.fill("#id_username", "boss")
    page.fill("#id_password", "pw-for-tests-1")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/admin/annotation/project/{project.pk}/change/")
    page.fill("#id_guidelines", "Be **brief**. <script>window.pwned = 1</script> [x](javascript:alert(1))")
    page.click("#guidelines-preview-button")
    page.wait_for_selector("#guidelines-preview strong")
    preview = page.locator("#guidelines-preview")
    assert preview.locator("strong").inner_text() == "brief"
    assert preview.locator("script").count() == 0 and preview.locator("a[href^='javascript']").count() == 0
    assert page.evaluate("window.pwned") is None and not errors and not missing, (errors, missing)
    if SHOTS:
        page.locator("#guidelines-preview").scroll_into_view_if_needed()
        page.screenshot(path=os.path.join(SHOTS, "admin-preview-dark.png"))
    page.click("input[name=_continue]")  # save: revision 1, the note's box empty
    page.wait_for_selector(".guidelines-history a")
    page.goto(f"/admin/annotation/project/{project.pk}/guidelines/1/")
    assert "&lt;script&gt;" in page.locator("#guidelines-diff").inner_html()
    assert page.locator("#revision-rendered script").count() == 0 and page.evaluate("window.pwned") is None
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "admin-revision-dark.png"))
        page.goto(f"/admin/annotation/project/{project.pk}/quality/")  # our custom admin page, in the dark theme
        page.screenshot(path=os.path.join(SHOTS, "admin-quality-dark.png"), full_page=True)
    context.close()
