"""A judge's verdicts become rankings made under its own inactive account (source=judge): the consensus fits the
judge like a rater, its agreement is measured against the people only, and training, retraining and the learning
curve count people's rankings only."""

from __future__ import annotations

import pytest

from annotation.models import Membership, Ranking
from feedback.judging import PairOutcome, judge_task
from feedback.models import Judge, JudgeVerdict
from feedback.rankings import account_of, copeland_order, record_ranking
from quality.models import RaterQuality
from quality.refresh import refresh_project
from rewardmodel.models import RetrainPolicy
from rewardmodel.snapshot import build_snapshot, trainable_rankings
from rewardmodel.training import new_rankings_since_last_version
from tests.feedback.helpers import prefers_lower_answers
from tests.quality.helpers import best_first, rate_once

pytestmark = pytest.mark.django_db


def test_copeland_order_with_ties_and_inconsistent_pairs():
    outcomes = [PairOutcome(1, 2, 1), PairOutcome(1, 3, 1), PairOutcome(2, 3, None, inconsistent=True)]
    assert copeland_order([1, 2, 3], outcomes) == [[1], [2, 3]]
    assert copeland_order([1, 2], [PairOutcome(1, 2, 2)]) == [[2], [1]]


def test_a_judges_rankings_are_fitted_like_a_raters_but_counted_apart(project, make_user, make_task, chat_server,
                                                                      client):
    project.overlap = 3
    project.save()
    tasks = [make_task(project) for _ in range(12)]
    people = [make_user(f"careful{i}") for i in range(2)]
    for u in people:
        Membership.objects.create(project=project, user=u)
        for _ in tasks:
            rate_once(project, u, best_first)
    chat_server.answer = prefers_lower_answers
    judge = Judge.objects.create(project=project, name="careful-llm", base_url=chat_server.url, model="m")
    for task in tasks:
        ranking = record_ranking(judge, task, judge_task(judge, task))
        assert ranking.order == [[c] for c in sorted(task.completions.values_list("id", flat=True))]
    account = account_of(judge)
    assert not account.is_active and not account.has_usable_password()
    judged = Ranking.objects.filter(source=Ranking.JUDGE)
    assert judged.count() == 12 and set(judged.values_list("rater_id", flat=True)) == {account.pk}
    assert JudgeVerdict.objects.filter(ranking__isnull=False).count() == 12 * 6 * 2  # every question, both orders
    assert record_ranking(judge, tasks[0], judge_task(judge, tasks[0])) == judged.get(task=tasks[0])  # once

    # Training and the retrain count see people's rankings only.
    assert not trainable_rankings(project.pk).filter(source=Ranking.JUDGE).exists()
    assert new_rankings_since_last_version(project.pk) == 24

    report = refresh_project(project)
    assert report.summary["raters"] == 2 and report.summary["judges"] == 1
    rows = {q.rater_id: q for q in RaterQuality.objects.filter(project=project)}
    assert rows[account.pk].is_judge and rows[account.pk].reliability > 0.8
    assert rows[account.pk].loo_agreement == pytest.approx(1.0) and rows[account.pk].median_time_s is None
    # A person's agreement is with the other people only: 6 pairs per task, the other careful rater.
    assert all(rows[u.pk].loo_pairs == 12 * 6 and not rows[u.pk].is_judge for u in people)
    # The judge's calibration against the crowd's plurality, with its interval; people have none.
    assert (rows[account.pk].crowd_agreement, rows[account.pk].crowd_pairs) == (1.0, 12 * 6)
    assert rows[account.pk].crowd_interval[0] > 0.9 and rows[people[0].pk].crowd_agreement is None
    assert rows[account.pk].position_p is None and "position bias" not in rows[account.pk].flags  # asked both ways
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/annotation/project/{project.pk}/quality/").content.decode()
    judge_row = page[page.index("careful-llm"):].split("</tr>")[0]  # by the judge's name, with its calibration
    assert "(AI judge)" in judge_row and "1.0 (72)" in judge_row and 'value="Pause"' not in judge_row

    # With the retrain policy's judge_rankings="weighted", training takes the judge's rankings at its reliability.
    RetrainPolicy.objects.create(project=project, judge_rankings=RetrainPolicy.WEIGHTED)
    judged_weights = trainable_rankings(project.pk).filter(source=Ranking.JUDGE).values_list("weight", flat=True)
    assert list(judged_weights) == [pytest.approx(rows[account.pk].reliability)] * 12
    assert len(build_snapshot(project.pk).ranking_ids) == 36


def test_a_failed_pair_gives_no_ranking(project, make_task, chat_server):
    chat_server.answer = lambda request: (200, "cannot say", {})
    judge = Judge.objects.create(project=project, name="j", base_url=chat_server.url, model="m")
    task = make_task(project, ["x", "y"])
    assert record_ranking(judge, task, judge_task(judge, task)) is None
    assert not Ranking.objects.filter(task=task).exists() and judge.user_id is None
