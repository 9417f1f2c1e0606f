"""The rater web UI: the project list, the keyboard-first rate page, submit and skip.

Every page is login-only and shown to project members only; a rater only ever sees the one task they hold
and never another rater's ranking. Model text is rendered through annotation.markdown (sanitised).

What raters read is translatable (LocaleMiddleware picks the language from the browser or the page's switcher):
templates use {% translate %}, messages here gettext, and the rate page's script gets its strings from
:func:`rate_strings` in its json_script data, so the one .po (locale/) holds them all.
"""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST, require_safe

from annotation import guidelines
from annotation.assignment import is_paused, next_assignment, release
from annotation.forms import SKIP_REASONS, RankingForm
from annotation.models import Assignment, Completion, Membership, Project, Ranking, RankingTask
from annotation.permissions import RATE, project_for
from annotation.submission import SubmissionError, submit_ranking
from config.text import show_bidi_controls

DISPLAY_MAX_CHARS = 50_000  # per output on the rate page; projects bound imports separately (Project.max_*)

FIELD_LABELS = {
    "order": gettext_lazy("Ranking"),
    "criteria_orders": gettext_lazy("Criteria"),
    "rationale": gettext_lazy("Rationale"),
    "flags": gettext_lazy("Flags"),
    "time_spent_ms": gettext_lazy("Time spent"),
    "assignment": gettext_lazy("Task"),
}
# The flags' values are stored and exported as they are; only their labels on the page are translated.
FLAG_LABELS = {
    "unsafe": pgettext_lazy("flag", "unsafe"),
    "broken": pgettext_lazy("flag", "broken"),
    "duplicate": pgettext_lazy("flag", "duplicate"),
    "unsure": pgettext_lazy("flag", "unsure"),
}

ROLE_LABELS = {Membership.RATER: gettext_lazy("Rater"), Membership.MANAGER: gettext_lazy("Manager")}


def rate_strings() -> dict[str, str]:
    """What rate.js shows, in the request's language. Placeholders are %(name)s, filled in by the script."""
    return {
        "unranked": _("unranked"),
        "rank_badge": _("#%(rank)s"),
        "rank_badge_tie": _("#%(rank)s · tie"),
        "tied_title": _("Tied with the output above (t toggles)"),
        "slots_empty": _("Press 1–%(k)s for the best output first, or drag one here."),
        "chip_title": _("Click or press %(n)s to rank next"),
        "nothing_above": _("The first output has nothing above it to tie with."),
        "confirm_skip": _("Press s again to skip this task."),
        "confirm_flag": _("Press f again to flag this task as unsafe and skip it."),
        "pending_tie": _("Tie: press the number of the output equal to your last pick."),
        "criterion_label": _(" (%(criterion)s)"),
        "all_ranked": _("All %(k)s ranked%(label)s. Enter submits."),
        "one_left": _("%(done)s of %(k)s ranked — Enter puts the last one last."),
        "progress": _("%(done)s of %(k)s ranked%(label)s."),
        "no_criteria": _("This project has no per-criterion rankings."),
        "now_overall": _("Now ranking: overall."),
        "now_criterion": _("Now ranking: %(criterion)s. c switches on."),
        "rank_all_first": _("Rank all %(k)s outputs before submitting (%(done)s so far)."),
        "finish_criterion": _("Finish the %(criterion)s ranking (%(done)s of %(k)s) or clear it with Backspace."),
        "submitting": _("Submitting…"),
        "only_k": _("There are only %(k)s outputs."),
        "tie_needs_pick": _("Pick the first output before tying another with it."),
        "show_all": _("Show all"),
        "show_less": _("Show less"),
        "drag_label": _("Output %(n)s"),
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
                "role": ROLE_LABELS.get(m.role, m.get_role_display()),
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
        "flag_choices": [{"value": f, "label": FLAG_LABELS.get(f, f)} for f in Ranking.FLAG_CHOICES],
        "flags": flags or [],
        "rationale": rationale,
        "errors": [(FIELD_LABELS.get(k, k), v) for k, v in (errors or {}).items()],
        "done_by_me": Ranking.objects.filter(rater=request.user, task__project=project).count(),
        "guidelines_notice": guidelines.rater_notice(project, request.user),
        "rate_data": {
            "assignment": assignment.pk,
            "outputs": [{"n": o["n"], "id": o["id"]} for o in outputs],
            "criteria": criteria,
            # What the page's messages show for each (config.text: bidi controls as markers); keys stay as stored.
            "criteria_shown": [show_bidi_controls(c) for c in criteria],
            "initial": state,
            "strings": rate_strings(),
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
            messages.error(request, _("Not saved: %(reason)s") % {"reason": exc.errors["assignment"]})
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
    messages.success(request, _("Ranking saved."))
    return redirect("annotation:rate", project_id=project.pk)


@require_POST
@login_required
def skip(request: HttpRequest, project_id: int, assignment_id: int) -> HttpResponse:
    project = project_for(request.user, project_id, RATE)
    assignment = _own_assignment(request, project, assignment_id)
    reason = request.POST.get("reason", "skip")
    if reason not in SKIP_REASONS:
        return HttpResponseBadRequest(_("reason must be one of %(reasons)s") % {"reasons": sorted(SKIP_REASONS)})
    release(assignment, reason)
    if reason.startswith("flag:"):
        flag = reason.removeprefix("flag:")
        messages.info(request, _("Task flagged as %(flag)s and skipped.") % {"flag": FLAG_LABELS.get(flag, flag)})
    else:
        messages.info(request, _("Task skipped."))
    return redirect("annotation:rate", project_id=project.pk)
