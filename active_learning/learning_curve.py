"""A project's learning curve: held-out accuracy of each reward-model version against the labels it saw, with the
active-learning rounds marked at the label count when they ran; and what came back from one round's picks."""

from __future__ import annotations

from dataclasses import dataclass

from active_learning.models import SelectedItem, SelectionRound
from annotation.models import Project, Ranking
from config.charts import new_figure, png_bytes
from rewardmodel.models import RewardModelVersion

MAX_ROUNDS_MARKED = 200


@dataclass
class CurvePoint:
    number: int
    labels: int
    accuracy: float | None
    promoted: bool


def curve(project: Project) -> tuple[list[CurvePoint], list[int]]:
    """(one point per finished version, in training order; the label count at each finished round)."""
    points = [
        CurvePoint(v.number, int(v.snapshot.get("n_rankings") or 0), v.metrics.get("heldout_accuracy"),
                   v.promoted_at is not None)
        for v in RewardModelVersion.objects.filter(project=project).exclude(status=RewardModelVersion.TRAINING)
        .only("number", "snapshot", "metrics", "promoted_at").order_by("number")
    ]
    rankings = Ranking.objects.filter(task__project=project).from_people()  # human labels: the curve's x axis
    rounds = SelectionRound.objects.filter(project=project, status=SelectionRound.DONE).order_by("-created_at")
    marks = [rankings.filter(submitted_at__lte=r.created_at).count() for r in rounds[:MAX_ROUNDS_MARKED]]
    return points, sorted(marks)


def render_png(project: Project) -> bytes:
    points, marks = curve(project)
    fig, ax = new_figure(figsize=(6.4, 3.6))
    for i, x in enumerate(marks):
        ax.axvline(x, color="grey", lw=0.6, ls=":", label="active-learning round" if i == 0 else None)
    shown = [p for p in points if p.accuracy is not None]
    ax.plot([p.labels for p in shown], [p.accuracy for p in shown], color="C0", lw=1, alpha=0.6)
    for promoted, style in ((True, {"marker": "o", "color": "C0", "label": "promoted"}),
                            (False, {"marker": "x", "color": "C3", "label": "not promoted"})):
        sel = [p for p in shown if p.promoted == promoted]
        if sel:
            ax.scatter([p.labels for p in sel], [p.accuracy for p in sel], zorder=3, **style)
    for p in shown:
        ax.annotate(f"v{p.number}", (p.labels, p.accuracy), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("rankings in the version's snapshot")
    ax.set_ylabel("held-out pairwise accuracy")
    ax.set_title(f"{project.name}: learning curve" if shown else f"{project.name}: no version trained yet",
                 fontsize=10)
    if shown or marks:
        ax.legend(fontsize=7)
    return png_bytes(fig)


def outcome(item: SelectedItem) -> dict:
    """What came back for one pick: rankings of its task submitted after the round, and how many agree with the
    model's predicted direction (P(a≻b) from the round's scores)."""
    rankings = Ranking.objects.filter(task_id=item.task_id, submitted_at__gte=item.round.created_at)
    p = item.scores.get("p_mean")
    agree = judged = 0
    for order in rankings.values_list("order", flat=True):
        pos = {c: i for i, group in enumerate(order) for c in group}
        a, b = pos.get(item.completion_a_id), pos.get(item.completion_b_id)
        if a is None or b is None or a == b or p is None or p == 0.5:
            continue
        judged += 1
        agree += (a < b) == (p > 0.5)
    return {"rankings": rankings.count(), "judged": judged, "agree_with_model": agree}
