"""The evaluation stream: an unbiased yardstick for a project whose labels active learning chooses.

Routing sends the reward model's hardest pairs to raters, so a held-out set drawn from the project's own labels
becomes a set of hard pairs, and a version is judged on what routing chose. The evaluation stream keeps a share
(``Project.eval_share``, 0.15) of the project's fresh tasks apart: a uniformly random sample of them, marked before
anyone saw them (``RankingTask.eval_key``, a random number that is also their serving order), served at that share
of each rater's tasks in random order (annotation.assignment), never routed (active learning leaves them out of its
candidates) and never trained on: their rankings are the held-out set of the promotion gate, the eval card and the
learning curve (rewardmodel.snapshot). Active learning tops the stream up before each round (:func:`top_up`); a
project that does not route never has one, and nothing changes for it.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef
from django.db.models.functions import Random

from annotation.models import Assignment, Project, RankingTask

MAX_MARKED_AT_ONCE = 100_000
CHUNK = 500


def fresh_tasks(project: Project):
    """Imported tasks: not re-asks, not gold (the stream is a sample of these)."""
    return RankingTask.objects.filter(project=project, origin__isnull=True, is_gold=False)


def top_up(project: Project) -> int:
    """Mark untouched open tasks (no lease, no ranking ever) until `eval_share` of the fresh tasks are in the stream;
    returns how many were marked. A random sample, so the stream is unbiased whatever routing did to the rest."""
    share = project.eval_share
    if share <= 0:
        return 0
    fresh = fresh_tasks(project)
    wanted = round(share * fresh.count()) - fresh.filter(eval_key__isnull=False).count()
    if wanted <= 0:
        return 0
    untouched = fresh.filter(status=RankingTask.OPEN, eval_key__isnull=True, submitted_count=0).filter(
        ~Exists(Assignment.objects.filter(task=OuterRef("pk"))))
    ids = list(untouched.order_by(Random()).values_list("pk", flat=True)[: min(wanted, MAX_MARKED_AT_ONCE)])
    marked = 0
    for start in range(0, len(ids), CHUNK):  # SQLite bounds the parameters of one statement
        marked += RankingTask.objects.filter(pk__in=ids[start : start + CHUNK], eval_key__isnull=True).update(
            eval_key=Random())
    return marked
