"""The admin's busiest changelists fit a 1366 × 768 laptop screen: no horizontal scrolling of the page or of the
result table, with realistic rows (long prompts, long project names, full metrics). One screenshot per page goes to
/tmp/adminshots/ (or $VERDICT_ADMINSHOTS) to look at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.utils import timezone

from active_learning.models import SelectedItem, SelectionRound
from annotation.models import Assignment, Ranking
from rewardmodel.models import RewardModelVersion
from tests.test_browser import browser, page, pytestmark  # noqa: F401 - Chromium fixtures and markers

SHOTS = Path(os.environ.get("VERDICT_ADMINSHOTS", "/tmp/adminshots"))
WIDTH, HEIGHT = 1366, 768


@pytest.fixture
def filled(make_user, make_task):
    """A project with a long name, tasks over long prompts, rankings, versions with full metrics and rounds."""
    from annotation.models import Membership, Project

    rater = make_user("rater-with-a-rather-long-username")
    project = Project.objects.create(name="Helpfulness and harmlessness, second batch (Dec)", k=4, overlap=2)
    Membership.objects.create(project=project, user=rater)
    long_prompt = "Explain, step by step and with examples, how a reward model is trained on human rankings " * 3
    tasks = [make_task(project, prompt_text=f"{i}: {long_prompt}") for i in range(12)]
    for task in tasks:
        ids = sorted(task.completions.values_list("id", flat=True))
        assignment = Assignment.objects.create(task=task, rater=rater, status=Assignment.SUBMITTED,
                                               expires_at=timezone.now())
        Ranking.objects.create(assignment=assignment, task=task, rater=rater,
                               order=[[ids[0]], [ids[1], ids[2]], [ids[3]]], display_order=ids,
                               flags=["unsure", "offensive"], time_spent_ms=123456)
    metrics = {"heldout_accuracy": 0.7234567891, "ece_after": 0.0456789123, "flip_rate_vs_parent": 0.1234567,
               "length_correlation": {"spearman": -0.5123456}}
    for n in range(1, 8):
        RewardModelVersion.objects.create(
            project=project, number=n, status=RewardModelVersion.READY, path=f"v{n}",
            base_model="sentence-transformers/all-MiniLM-L6-v2", snapshot={"n_rankings": 12345}, metrics=metrics,
            gate={"reason": "rejected: accuracy not above the active version's by the margin (0.0123 < 0.02)"},
            job_key=f"key-{n}")
    for n in range(8):
        rnd = SelectionRound.objects.create(
            project=project, strategy="uncertainty_diversity", batch_size=50, status=SelectionRound.DONE,
            summary={"instability_all": {"mean": 0.49999999}, "instability_selected": {"mean": 0.9512345678}})
        a, b = tasks[n].completions.order_by("id")[:2]
        SelectedItem.objects.create(round=rnd, task=tasks[n], completion_a=a, completion_b=b, rank=1,
                                    action=SelectedItem.RAISED, scores={"margin": 0.0123456789})
    return project


@pytest.fixture
def admin_page(page, make_user):  # noqa: F811 - the imported fixture
    make_user("root", password="pw-for-tests-1", is_staff=True, is_superuser=True)
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    page.goto("/admin/login/")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return page


@pytest.mark.parametrize("changelist", ["annotation/ranking", "annotation/rankingtask",
                                        "rewardmodel/rewardmodelversion", "active_learning/selectionround"])
def test_changelists_fit_a_1366_pixel_screen(admin_page, filled, changelist):
    admin_page.goto(f"/admin/{changelist}/")
    assert admin_page.locator("#result_list tbody tr").count() >= 5, "the list has rows to measure"
    SHOTS.mkdir(parents=True, exist_ok=True)
    admin_page.screenshot(path=str(SHOTS / f"{changelist.replace('/', '_')}.png"), full_page=True)
    page_width = admin_page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= WIDTH, f"{changelist}: the page is {page_width} px wide"
    # The admin wraps the table in a horizontally scrolling box: the page can fit while the table does not.
    table, box = admin_page.evaluate(
        "[document.querySelector('#result_list').scrollWidth, document.querySelector('.results').clientWidth]")
    columns = admin_page.evaluate(
        "[...document.querySelectorAll('#result_list thead th')].map(th => th.className + ' ' + th.offsetWidth)")
    assert table <= box, f"{changelist}: the table is {table} px wide in a {box} px box: {columns}"


def test_a_rounds_page_reads_as_tables_not_json(admin_page, filled):
    import numpy as np

    from active_learning.pipeline import _summary
    from tests.active_learning.test_admin import skewed_stability

    rnd = SelectionRound.objects.filter(project=filled).first()
    rnd.summary = _summary(skewed_stability(), np.arange(10), n_labels=50, n_candidates=400, n_contested=3)
    rnd.params = {"seed": 4242, "contested_share": 0.3333333333333333, "max_asks": 3}
    rnd.save()
    admin_page.goto(f"/admin/active_learning/selectionround/{rnd.pk}/change/")
    SHOTS.mkdir(parents=True, exist_ok=True)
    admin_page.screenshot(path=str(SHOTS / "active_learning_selectionround_change.png"), full_page=True)
    assert admin_page.locator("table.data-table").count() >= 3  # parameters, summary, the pick's scores
    assert admin_page.locator("pre.histogram").count() == 1  # the margins; BALD is 0 for all: one line
    assert admin_page.locator("input[name=_save]").count() == 0
    assert admin_page.evaluate("document.documentElement.scrollWidth") <= WIDTH
