"""The selection rounds' admin: stored JSON shown as small tables with 3 significant digits, histograms of the raw
scores (not of percentile ranks, which are flat by construction), and rounds as read-only records."""

from __future__ import annotations

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from active_learning.models import SelectedItem, SelectionRound
from active_learning.pipeline import _summary
from active_learning.stability import InstabilityWeights, PairStability, percentile_rank


@pytest.fixture
def superuser_client(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def staff_client(make_user):
    """A staff member given every permission on rounds, short of being a superuser."""
    client = Client()
    user = make_user("staffer", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="active_learning"))
    client.force_login(user)
    return client


def skewed_stability(n: int = 400) -> PairStability:
    """Most candidates far from the boundary, a few close: the margins are skewed, their ranks are not."""
    margin = np.random.default_rng(0).exponential(0.3, n) ** 2
    zeros = np.zeros(n)
    weights = InstabilityWeights()
    return PairStability(zeros + 0.5, zeros, zeros, margin, zeros, weights.margin * percentile_rank(-margin))


def test_a_skewed_score_gives_a_skewed_histogram():
    stab = skewed_stability()
    summary = _summary(stab, np.arange(10), n_labels=50, n_candidates=len(stab.margin), n_contested=0)
    counts = summary["margin_histogram"]["counts"]
    assert sum(counts) == 400
    assert counts[0] > 5 * max(counts[-1], 1), counts  # most pairs have small margins
    # What was plotted before: the instability is a percentile rank, so its histogram is flat whatever the scores.
    flat, _ = np.histogram(stab.instability, bins=10)
    assert flat.max() - flat.min() <= 1


@pytest.fixture
def round_(project, make_task):
    stab = skewed_stability()
    summary = _summary(stab, np.arange(10), n_labels=50, n_candidates=400, n_contested=3)
    summary["finished_note_at"] = "2026-03-04T15:30:12.123456+00:00"
    rnd = SelectionRound.objects.create(project=project, strategy="uncertainty", batch_size=10,
                                        status=SelectionRound.DONE, summary=summary,
                                        params={"seed": 4242, "contested_share": 0.3333333333333333})
    task = make_task(project)
    a, b = task.completions.order_by("id")[:2]
    SelectedItem.objects.create(round=rnd, task=task, completion_a=a, completion_b=b, rank=1,
                                action=SelectedItem.RAISED,
                                scores={"margin": 0.012345678901234567, "bald": 0.00098765432109876})
    return rnd


def test_round_page_shows_tables_rounded_and_a_histogram(superuser_client, round_):
    change = reverse("admin:active_learning_selectionround_change", args=[round_.pk])
    body = superuser_client.get(change).content.decode()
    assert 'class="data-table"' in body
    assert "0.0123" in body and "0.000988" in body and "0.333" in body  # the pick's scores and the parameters
    assert "0.012345678901234567" not in body and "0.3333333333333333" not in body
    assert "2026-03-04T15:30:12" not in body  # a time in the summary, shown localized
    assert "reward margin" in body and 'class="histogram"' in body
    histogram = body.split('class="histogram">', 1)[1].split("</pre>", 1)[0]
    bars = [line.count("█") for line in histogram.splitlines()]
    assert max(bars) == 30 and min(bars) < 10, bars  # not flat


def test_rounds_are_records_not_forms(staff_client, superuser_client, round_):
    change = reverse("admin:active_learning_selectionround_change", args=[round_.pk])
    body = staff_client.get(change).content.decode()
    assert staff_client.get(change).status_code == 200
    for button in ('name="_save"', 'name="_continue"', 'name="_addanother"', "deletelink"):
        assert button not in body, button
    assert "<textarea" not in body and 'name="status"' not in body  # status, attempts, started at: not editable
    assert staff_client.get(reverse("admin:active_learning_selectionround_add")).status_code == 403
    assert staff_client.post(change, {"status": "failed"}).status_code == 403
    assert staff_client.get(reverse("admin:active_learning_selectionround_delete", args=[round_.pk])).status_code == 403
    # A superuser may still delete a record (and only delete it).
    body = superuser_client.get(change).content.decode()
    assert 'name="_save"' not in body and "deletelink" in body


def test_rounds_list_renders(superuser_client, round_):
    body = superuser_client.get(reverse("admin:active_learning_selectionround_changelist")).content.decode()
    assert "1 (1 / 0)" in body  # picks (raised / new)
