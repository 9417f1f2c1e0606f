"""A judge's verdicts on a task become a ranking, made under the judge's own inactive account with
``source="judge"``: the quality app fits the judge's reliability like a rater's, while training, learning curves
and rater statistics count people only (``Ranking.objects.from_people()``, ``from_raters()``). The ranking is sent
as ``ranking_submitted`` like a person's, so with dynamic overlap the quality app re-decides how many people the
task still needs (hybrid routing); its assignment is ``judged``, holding none of the people's slots.

The order is Copeland's: completions by their pairwise wins (a tie or an inconsistent pair gives half a win each),
equal wins tied. A task with a failed pair gets no ranking: what is missing is not guessed.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from annotation.models import Assignment, Ranking, RankingTask
from annotation.signals import ranking_submitted
from feedback.judging import PairOutcome
from feedback.models import Judge, JudgeVerdict


def account_of(judge: Judge):
    """The judge's user: inactive, no usable password, so nobody can sign in as it; made on first use."""
    if judge.user_id is None:
        with transaction.atomic():
            locked = Judge.objects.select_for_update().get(pk=judge.pk)
            if locked.user_id is None:
                user = get_user_model()(username=f"judge-{judge.pk}", is_active=False,
                                        first_name=judge.name[:150])
                user.set_unusable_password()
                user.save()
                locked.user = user
                locked.save(update_fields=["user"])
        judge.user = locked.user  # the caller's object too: a later call must not make a second account
    return judge.user


def copeland_order(completion_ids: list[int], outcomes: list[PairOutcome]) -> list[list[int]]:
    wins = dict.fromkeys(completion_ids, 0.0)
    for o in outcomes:
        if o.winner_id is None:
            wins[o.first_id] += 0.5
            wins[o.second_id] += 0.5
        else:
            wins[o.winner_id] += 1.0
    order: list[list[int]] = []
    for cid in sorted(completion_ids, key=lambda c: (-wins[c], c)):
        if order and wins[order[-1][0]] == wins[cid]:
            order[-1].append(cid)
        else:
            order.append([cid])
    return order


def record_ranking(judge: Judge, task, outcomes: list[PairOutcome]) -> Ranking | None:
    """The judge's ranking of `task` from its pair outcomes (None when a pair failed); once per judge and task."""
    if not outcomes or any(o.failed for o in outcomes):
        return None
    user = account_of(judge)
    existing = Ranking.objects.filter(task=task, rater=user).first()
    if existing is not None:
        return existing
    ids = sorted({o.first_id for o in outcomes} | {o.second_id for o in outcomes})
    now = timezone.now()
    with transaction.atomic():
        # Locked as a person's submission locks it: the quality receiver re-decides the task's overlap.
        locked = RankingTask.objects.select_for_update().select_related("project").get(pk=task.pk)
        assignment = Assignment.objects.create(task=locked, rater=user, status=Assignment.JUDGED, leased_at=now,
                                               expires_at=now, display_order=ids)
        ranking = Ranking.objects.create(assignment=assignment, task=locked, rater=user,
                                         order=copeland_order(ids, outcomes), display_order=ids,
                                         source=Ranking.JUDGE, original_rater=f"judge:{judge.name}"[:200])
        JudgeVerdict.objects.filter(judge=judge, task=locked, first_id__in=ids, second_id__in=ids,
                                    ranking__isnull=True).update(ranking=ranking)
        # Hybrid routing: the judge votes first, and is not counted among the task's people (submitted_count).
        before = (locked.target_overlap, locked.status)
        ranking_submitted.send(sender=Ranking, ranking=ranking, task=locked, created=True)
        if (locked.target_overlap, locked.status) != before:
            RankingTask.objects.filter(pk=locked.pk).update(target_overlap=locked.target_overlap,
                                                            status=locked.status)
    return ranking
