"""The quality refresh on PostgreSQL: rater figures, flags, training weights, task consensus, pauses and their log."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from annotation.assignment import next_assignment
from annotation.models import Membership, Ranking
from quality import pausing
from quality.models import PauseEvent, QualityReport, RaterQuality, TaskConsensus
from quality.refresh import refresh_project
from tests.quality.helpers import as_shown, best_first, rate_once

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated(project, make_user, make_task):
    """30 four-way tasks, each ranked by 5 raters: 4 careful, 1 who ranks in screen order."""
    project.overlap = 5
    project.save()
    for _ in range(30):
        make_task(project)
    careful = [make_user(f"careful{i}") for i in range(4)]
    spammer = make_user("spammer")
    for u in [*careful, spammer]:
        Membership.objects.create(project=project, user=u)
    for _ in range(30):
        for u in careful:
            rate_once(project, u, best_first)
        rate_once(project, spammer, as_shown, time_ms=900)
    return careful, spammer


def test_refresh_finds_the_spammer_and_weighs_them_out(project, rated):
    careful, spammer = rated
    report = refresh_project(project)
    assert report.status == QualityReport.DONE and report.progress == 1.0
    assert report.summary["rankings"] == 150 and report.summary["tasks"] == 30
    q = {r.rater_id: r for r in RaterQuality.objects.filter(project=project)}
    bad = q[spammer.pk]
    assert bad.reliability_high < project.reliability_threshold
    assert RaterQuality.UNRELIABLE in bad.flags
    assert bad.training_weight == 0
    assert bad.loo_agreement < 0.7
    assert bad.position_bias == 1.0 and bad.position_p < 1e-3 and RaterQuality.POSITION_BIAS in bad.flags
    assert RaterQuality.TOO_FAST in bad.flags and bad.speed_z < -3
    for u in careful:
        assert q[u.pk].reliability > 0.8 and not q[u.pk].flags
        assert q[u.pk].loo_agreement == pytest.approx(1.0)
        assert q[u.pk].reliability_low < q[u.pk].reliability < q[u.pk].reliability_high
    assert set(Ranking.objects.filter(rater=spammer).values_list("weight", flat=True)) == {0.0}
    assert min(Ranking.objects.filter(rater__in=careful).values_list("weight", flat=True)) > 0.8
    # Consensus: the careful raters' order, sure of every pair.
    for c in TaskConsensus.objects.filter(task__project=project):
        assert c.order == sorted(c.order) and c.rankings == 5
        assert c.confidence > project.consensus_threshold  # 4 unanimous rankings: every pair ≥ 0.85


def test_unreliable_raters_are_paused_when_the_project_says_so(project, rated, make_task):
    careful, spammer = rated
    make_task(project)  # something left to serve
    refresh_project(project)
    assert not Membership.objects.get(project=project, user=spammer).paused  # pause_unreliable is off
    project.pause_unreliable = True
    project.save()
    report = refresh_project(project)
    assert report.summary["pauses"] == {"paused": 1, "unpaused": 0}
    membership = Membership.objects.get(project=project, user=spammer)
    assert membership.paused and "reliability" in membership.paused_reason
    event = PauseEvent.objects.get(project=project, rater=spammer)
    assert event.paused and event.by is None
    assert next_assignment(project, spammer) is None
    assert next_assignment(project, careful[0]) is not None


def test_a_managers_decision_stands_across_refreshes(project, rated, manager):
    careful, spammer = rated
    project.pause_unreliable = True
    project.save()
    refresh_project(project)
    assert pausing.unpause(project, spammer.pk, "talked to them", by=manager)
    assert pausing.pause(project, careful[0].pk, "on holiday", by=manager)
    refresh_project(project)
    assert not Membership.objects.get(project=project, user=spammer).paused
    assert Membership.objects.get(project=project, user=careful[0]).paused
    # A pause takes the rater's rankings out of training at once.
    assert set(Ranking.objects.filter(rater=careful[0]).values_list("weight", flat=True)) == {0.0}
    log = list(PauseEvent.objects.filter(project=project).order_by("id").values_list("rater_id", "paused", "by_id"))
    assert log == [(spammer.pk, True, None), (spammer.pk, False, manager.pk), (careful[0].pk, True, manager.pk)]


def test_pausing_needs_a_reason_and_a_member(project, manager, make_user):
    with pytest.raises(pausing.PauseError):
        pausing.pause(project, project.memberships.filter(role="rater").first().user_id, "", by=manager)
    outsider = make_user("outsider")
    with pytest.raises(pausing.PauseError):
        pausing.pause(project, outsider.pk, "spam", by=manager)
    assert not PauseEvent.objects.exists()


def test_refresh_of_a_project_without_rankings(project):
    report = refresh_project(project)
    assert report.status == QualityReport.DONE and report.summary["rankings"] == 0


def test_command_refreshes_with_progress(project, rated, capsys):
    call_command("refresh_quality", "--project", str(project.pk))
    out, err = capsys.readouterr()
    assert '"rankings": 150' in out
    assert "fitting consensus" in err and "100%" in err


def test_command_refuses_an_unknown_project(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no project"):
        call_command("refresh_quality", "--project", "nope")


def test_speed_outliers():
    from quality.refresh import speed_scores

    z = speed_scores({1: 20.0, 2: 21.0, 3: 19.0, 4: 22.0, 5: 0.8})
    assert z[5] < -3 and all(abs(z[r]) < 3 for r in (1, 2, 3, 4))
    same = speed_scores({1: 20.0, 2: 20.0, 3: 20.0, 4: 0.8})  # MAD 0: the mean absolute deviation steps in
    assert same[4] < -3 and same[1] == 0
    assert speed_scores({1: 3.0, 2: 4.0}) == {}


def test_a_paused_rater_is_told_so_on_the_rate_page(client, project, rater, make_task, manager):
    make_task(project)
    pausing.pause(project, rater.pk, "too fast", by=manager)
    client.force_login(rater)
    page = client.get(f"/projects/{project.pk}/rate/").content.decode()
    assert "paused by its managers" in page and "too fast" not in page


def test_new_rankings_take_their_raters_current_weight(project, rated, make_task):
    careful, spammer = rated
    refresh_project(project)
    make_task(project)
    rate_once(project, spammer, as_shown)
    rate_once(project, careful[0], best_first)
    newest = Ranking.objects.order_by("-id")
    assert newest.filter(rater=spammer).first().weight == 0.0
    assert newest.filter(rater=careful[0]).first().weight == RaterQuality.objects.get(rater=careful[0]).training_weight


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_pause_stops_a_rater_who_is_leasing_concurrently(project, make_user, make_task, manager):
    """A rater hammers the task queue from four threads while a manager pauses them: once the pause has committed,
    no lease is handed out to them, and the pause is recorded once."""
    import threading

    from django.db import connection

    from annotation.models import Assignment
    from tests.conftest import all_at_once

    if connection.vendor != "postgresql":
        pytest.skip("row locks under concurrent writers: PostgreSQL's (SQLite's test database locks whole tables)")

    project.overlap = 1
    project.save()
    for _ in range(60):
        make_task(project)
    worker = make_user("busy")
    Membership.objects.create(project=project, user=worker)
    paused_at = {}
    go = threading.Event()

    def work(role):
        if role == "manager":
            go.wait(5)
            pausing.pause(project, worker.pk, "checking their work", by=manager)
            paused_at["count"] = Assignment.objects.filter(rater=worker).count()
            return
        while True:
            if rate_once(project, worker, best_first) is None:
                return
            go.set()

    _, errors = all_at_once(work, ["manager", "rater", "rater", "rater", "rater"])
    assert errors == []
    # Leases already in flight when the pause committed may finish; none starts after it.
    assert Assignment.objects.filter(rater=worker).count() <= paused_at["count"] + 4
    assert next_assignment(project, worker) is None
    assert PauseEvent.objects.filter(rater=worker).count() == 1
