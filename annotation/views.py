"""The rater web UI: the project list, the keyboard-first rate page, submit and skip.

Every page is login-only and shown to project members only; a rater only ever sees the one task they hold
and never another rater's ranking. Model text is rendered through annotation.markdown (sanitised).
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from annotation.assignment import is_paused, next_assignment, release
from annotation.forms import SKIP_REASONS, RankingForm
from annotation.models import Assignment, Completion, Membership, Project, Ranking, RankingTask
from annotation.permissions import RATE, project_for
from annotation.submission import SubmissionError, submit_ranking
from config.text import show_bidi_controls

DISPLAY_MAX_CHARS = 50_000  # per output on the rate page; projects bound imports separately (Project.max_*)

FIELD_LABELS = {
    "order": "Ranking",
    "criteria_orders": "Criteria",
    "rationale": "Rationale",
    "flags": "Flags",
    "time_spent_ms": "Time spent",
    "assignment": "Task",
}


def _own_assignment(request: HttpRequest, project: Project, assignment_id: int) -> Assignment:
    """The user's own assignment in this project; 404 for anyone else's."""
    return get_object_or_404(
        Assignment.objects.select_related("task__prompt"), pk=assignment_id, rater=request.user, task__project=project
    )


@require_safe
@login_required
def home(request: HttpRequest) -> HttpResponse:
    memberships = list(Membership.objects.filter(user=request.user).select_related("project").order_by("project__name"))
    project_ids = [m.project_id for m in memberships]
    task_counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        RankingTask.objects.filter(project_id__in=project_ids)
        .values("project_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        task_counts[row["project_id"]][row["status"]] = row["n"]
    mine = dict(
        Ranking.objects.filter(rater=request.user, task__project_id__in=project_ids)
        .values_list("task__project_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    admin_links = request.user.is_staff and request.user.has_perm("annotation.view_project")
    projects = []
    for m in memberships:
        counts = task_counts[m.project_id]
        total = sum(counts.values())
        open_tasks = counts.get(RankingTask.OPEN, 0)
        projects.append(
            {
                "project": m.project,
                "role": m.get_role_display(),
                "total": total,
                "complete": counts.get(RankingTask.COMPLETE, 0),
                "mine": mine.get(m.project_id, 0),
                # "Start rating" only leads somewhere when there is something to rate and the rater is not paused.
                "can_rate": open_tasks > 0 and not m.paused,
                "paused": m.paused,
                # Links to the admin's pages (quality, reward models) only for managers who may open them.
                "manages": m.role == Membership.MANAGER and admin_links,
            }
        )
    return render(request, "annotation/home.html", {"projects": projects})


def _display(n: int, completion_id: int, text: str) -> dict:
    """An output as the rate page shows it: at most DISPLAY_MAX_CHARS characters are rendered (the page must stay
    responsive whatever a model produced), with its full length shown."""
    return {"n": n, "id": completion_id, "text": text[:DISPLAY_MAX_CHARS], "chars": len(text),
            "shown": min(len(text), DISPLAY_MAX_CHARS), "cut": len(text) > DISPLAY_MAX_CHARS}


def _rate_context(
    request: HttpRequest,
    project: Project,
    assignment: Assignment,
    *,
    errors: dict[str, str] | None = None,
    state: dict | None = None,
    rationale: str = "",
    flags: list[str] | None = None,
) -> dict:
    task = assignment.task
    fresh = getattr(assignment, "shown_completions", None)  # a new lease carries them (annotation.assignment)
    by_id = {c.pk: c for c in (fresh if fresh is not None else Completion.objects.filter(tasks=task))}
    shown = [cid for cid in assignment.display_order if cid in by_id] or sorted(by_id)
    outputs = [_display(n, cid, by_id[cid].text) for n, cid in enumerate(shown, start=1)]
    criteria = [str(c) for c in (project.criteria or [])]
    state = state or {"order": [], "criteria_orders": {}, "time_spent_ms": 0}
    return {
        "project": project,
        "assignment": assignment,
        "prompt": task.prompt,
        "outputs": outputs,
        "criteria": criteria,
        "flag_choices": Ranking.FLAG_CHOICES,
        "flags": flags or [],
        "rationale": rationale,
        "errors": [(FIELD_LABELS.get(k, k), v) for k, v in (errors or {}).items()],
        "done_by_me": Ranking.objects.filter(rater=request.user, task__project=project).count(),
        "rate_data": {
            "assignment": assignment.pk,
            "outputs": [{"n": o["n"], "id": o["id"]} for o in outputs],
            "criteria": criteria,
            # What the page's messages show for each (config.text: bidi controls as markers); keys stay as stored.
            "criteria_shown": [show_bidi_controls(c) for c in criteria],
            "initial": state,
        },
    }


@require_safe
@login_required
def rate(request: HttpRequest, project_id: int) -> HttpResponse:
    project = project_for(request.user, project_id, RATE)
    assignment = next_assignment(project, request.user)
    if assignment is None:
        done = Ranking.objects.filter(rater=request.user, task__project=project).count()
        return render(request, "annotation/no_tasks.html", {"project": project, "done_by_me": done,
                                                            "paused": is_paused(project, request.user)})
    return render(request, "annotation/rate.html", _rate_context(request, project, assignment))


@require_POST
@login_required
def submit(request: HttpRequest, project_id: int, assignment_id: int) -> HttpResponse:
    project = project_for(request.user, project_id, RATE)
    assignment = _own_assignment(request, project, assignment_id)
    form = RankingForm(request.POST)
    try:
        if not form.is_valid():
            raise SubmissionError(form.error_dict())
        submit_ranking(assignment, form.payload())
    except SubmissionError as exc:
        if "assignment" in exc.errors:
            # The task itself is gone (skipped, or the expired lease went to others): move on to the next one.
            messages.error(request, f"Not saved: {exc.errors['assignment']}")
            return redirect("annotation:rate", project_id=project.pk)
        context = _rate_context(
            request,
            project,
            assignment,
            errors=exc.errors,
            state=form.submitted_state(),
            rationale=request.POST.get("rationale", ""),
            flags=[f for f in request.POST.getlist("flags") if f in Ranking.FLAG_CHOICES],
        )
        return render(request, "annotation/rate.html", context, status=400)
    messages.success(request, "Ranking saved.")
    return redirect("annotation:rate", project_id=project.pk)


@require_POST
@login_required
def skip(request: HttpRequest, project_id: int, assignment_id: int) -> HttpResponse:
    project = project_for(request.user, project_id, RATE)
    assignment = _own_assignment(request, project, assignment_id)
    reason = request.POST.get("reason", "skip")
    if reason not in SKIP_REASONS:
        return HttpResponseBadRequest(f"reason must be one of {sorted(SKIP_REASONS)}")
    release(assignment, reason)
    if reason.startswith("flag:"):
        messages.info(request, f"Task flagged as {reason.removeprefix('flag:')} and skipped.")
    else:
        messages.info(request, "Task skipped.")
    return redirect("annotation:rate", project_id=project.pk)
