"""Quality pages in the admin, added to the project admin from here so that annotation (a lower floor) knows nothing
of quality: the agreement & raters page, and the quality page (rater reliability with intervals and flags, pausing,
contested tasks, consensus confidence, model leaderboard with its plot). Also the quality models' own admins."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from annotation.admin import ProjectAdmin, completion_labels, labelled_order, percent
from annotation.models import Project
from annotation.permissions import MANAGE, project_for
from config.display import RecordAdmin, data_table, figure, when
from config.text import VisibleTextAdmin, show_bidi_controls
from quality import figures, pausing, plots
from quality.agreement import project_agreement
from quality.launch import RefreshBusy, queue_refresh
from quality.leaderboard import LATEST_RANKINGS, stored_leaderboard
from quality.models import GoldScore, PauseEvent, QualityReport, RaterQuality, TaskConsensus

# The agreement page reads at most this many of a project's latest rankings.
AGREEMENT_MAX_RANKINGS = 50_000


class QualityProjectAdmin(ProjectAdmin):
    list_display = (*ProjectAdmin.list_display, "agreement_link", "quality_link")
    readonly_fields = (*ProjectAdmin.readonly_fields, "agreement_link", "quality_link")
    fields = (*ProjectAdmin.fields, "agreement_link", "quality_link")

    @admin.display(description="agreement")
    def agreement_link(self, obj) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:annotation_project_agreement", args=[obj.pk])
        return format_html('<a href="{}">agreement &amp; raters</a>', url)

    @admin.display(description="quality")
    def quality_link(self, obj) -> str:
        if not obj.pk:
            return "—"
        return format_html('<a href="{}">quality &amp; leaderboard</a>',
                           reverse("admin:annotation_project_quality", args=[obj.pk]))

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("<path:object_id>/agreement/", view(self.agreement_view), name="annotation_project_agreement"),
            path("<id:object_id>/quality/", view(self.quality_view), name="annotation_project_quality"),
            path("<id:object_id>/quality/plot/<str:kind>.png", view(self.quality_plot_view),
                 name="annotation_project_quality_plot"),
        ]
        return custom + super().get_urls()

    def _managed(self, request, object_id):
        project = project_for(request.user, object_id, MANAGE)
        if not self.has_view_permission(request, project):
            raise PermissionDenied("no permission to view this project")
        return project

    def quality_view(self, request, object_id):
        project = self._managed(request, object_id)
        if request.method == "POST":
            return self._quality_action(request, project)
        page = _for_people(figures.quality_page(project))
        leaderboard, leaderboard_error = stored_leaderboard(project)
        summary = page["report"]["summary"]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": project,
            "title": f"Quality — {project}",  # __str__: bidi controls as markers
            "page": page,
            "summary": summary,
            "leaderboard": leaderboard,
            "leaderboard_error": leaderboard_error,
            "leaderboard_latest": LATEST_RANKINGS,
            # The refresh's live progress panel polls the API's refresh endpoint while one is queued or running.
            "refresh_poll_url": reverse("project-quality-refresh", args=[project.pk]),
            "plot_kinds": [k for k in plots.KINDS if k != "leaderboard" or leaderboard],
        }
        return TemplateResponse(request, "admin/annotation/project/quality.html", context)

    def _quality_action(self, request, project):
        action = request.POST.get("action", "")
        here = reverse("admin:annotation_project_quality", args=[project.pk])
        if action == "refresh":
            try:
                queue_refresh(project)
            except RefreshBusy as exc:
                self.message_user(request, f"Not refreshed: {exc}.", messages.WARNING)
            else:
                self.message_user(request, "Quality refresh queued; its progress is shown below.", messages.SUCCESS)
            return HttpResponseRedirect(here)
        if action not in ("pause", "unpause"):
            self.message_user(request, f"Unknown action {action!r}.", messages.ERROR)
            return HttpResponseRedirect(here)
        try:
            rater_id = int(request.POST.get("rater_id", ""))
            if action == "pause":
                changed = pausing.pause(project, rater_id, request.POST.get("reason", ""), by=request.user)
            else:
                changed = pausing.unpause(project, rater_id, request.POST.get("reason", ""), by=request.user)
        except (ValueError, pausing.PauseError) as exc:
            self.message_user(request, f"Nothing changed: {exc}", messages.ERROR)
            return HttpResponseRedirect(here)
        verb = "Paused" if action == "pause" else "Un-paused"
        self.message_user(request, f"{verb} rater {rater_id}." if changed else "Nothing to change.", messages.SUCCESS)
        return HttpResponseRedirect(here)

    def quality_plot_view(self, request, object_id, kind: str):
        project = self._managed(request, object_id)
        if kind not in plots.KINDS:
            raise Http404("no such plot")
        if kind == "leaderboard":
            rows, reason = stored_leaderboard(project)
            if not rows:
                raise Http404(reason)
            png = plots.leaderboard_png(rows)
        elif kind == "confidence":
            histogram = figures.report_dict(project)["summary"].get("confidence_histogram") or {}
            png = plots.confidence_png(histogram, project.consensus_threshold)
        else:
            png = plots.raters_png(figures.rater_rows(project), project.reliability_threshold)
        return HttpResponse(png, content_type="image/png")

    def agreement_view(self, request, object_id):
        project = project_for(request.user, object_id, MANAGE)
        if not self.has_view_permission(request, project):
            raise PermissionDenied("no permission to view this project")
        stats = project_agreement(project, max_rankings=AGREEMENT_MAX_RANKINGS)
        rows = [
            {
                "username": s.username,
                "rankings": s.rankings,
                "skips": s.skips,
                "median_time": "—" if s.median_time_s is None else f"{s.median_time_s:.1f} s",
                "agreement": percent(s.agreement),
                "gold": "—" if s.gold_accuracy is None else f"{percent(s.gold_accuracy)} ({s.gold_tasks})",
                "position": percent(s.position_bias),
                "position_expected": percent(s.position_expected),
                "flag_rate": percent(s.flag_rate),
            }
            for s in stats.raters
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": project,
            "title": f"Agreement — {project}",
            "stats": stats,
            "pairwise": percent(stats.pairwise_rate),
            "alpha_ordinal": "—" if stats.alpha_ordinal is None else f"{stats.alpha_ordinal:.3f}",
            "alpha_interval": "—" if stats.alpha_interval is None else f"{stats.alpha_interval:.3f}",
            "rows": rows,
            "max_rankings": AGREEMENT_MAX_RANKINGS,
        }
        return TemplateResponse(request, "admin/annotation/project/agreement.html", context)


def _for_people(page: dict) -> dict:
    """The quality page's figures (as the API gives them) made readable: times in the site's format, shares as
    percentages, consensus orders by completion letter and model rather than ids."""
    report = page["report"]
    report["finished_shown"] = when(report.get("finished_at"))
    report["seconds_shown"] = figure((report.get("summary") or {}).get("seconds"))
    for row in page["raters"]:
        row["gold_shown"] = percent(row["gold_accuracy"])
    for event in page["pause_events"]:
        event["at_shown"] = when(event["at"])
    task_ids = [t["task_id"] for t in page["contested_tasks"]]
    labels = completion_labels(task_ids)
    scores = dict(TaskConsensus.objects.filter(task_id__in=task_ids).values_list("task_id", "scores"))  # ties
    for t in page["contested_tasks"]:
        t["order_shown"] = labelled_order(t["order"], labels.get(t["task_id"], {}), scores.get(t["task_id"]))
    return page


admin.site.unregister(Project)
admin.site.register(Project, QualityProjectAdmin)


@admin.register(RaterQuality)
class RaterQualityAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("rater", "project", "rankings", "reliability", "reliability_low", "reliability_high",
                    "training_weight", "flags", "updated_at")
    list_filter = ("project",)
    search_fields = ("rater__username",)
    readonly_fields = [f.name for f in RaterQuality._meta.fields]  # written by the quality refresh only


@admin.register(PauseEvent)
class PauseEventAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("at", "project", "rater", "paused", "reason", "by")
    list_filter = ("project", "paused")
    fields = readonly_fields = [("reason_shown" if f.name == "reason" else f.name) for f in PauseEvent._meta.fields]

    @admin.display(description="reason")
    def reason_shown(self, obj) -> str:
        return show_bidi_controls(obj.reason)  # pause from the project's quality page, which records the event


@admin.register(TaskConsensus)
class TaskConsensusAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("task", "confidence_shown", "rankings", "order_shown", "updated_at")
    list_filter = ("task__project",)
    ordering = ("confidence",)
    fields = readonly_fields = ("task", "confidence_shown", "rankings", "order_shown", "scores_table", "pairs_table",
                                "updated_at")

    def get_changelist_instance(self, request):
        """The page's rows get their completions' labels from one query for all of them (no query per row)."""
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)  # evaluates the page's queryset once; the list reuses these objects
        labels = completion_labels(o.task_id for o in rows)
        for o in rows:
            o.completion_labels = labels.get(o.task_id, {})
        return changelist

    @staticmethod
    def _labels_for(obj) -> dict:
        if not hasattr(obj, "completion_labels"):  # a consensus's own page
            obj.completion_labels = completion_labels([obj.task_id]).get(obj.task_id, {})
        return obj.completion_labels

    @admin.display(description="confidence", ordering="confidence")
    def confidence_shown(self, obj) -> str:
        return figure(obj.confidence)

    @admin.display(description="consensus order (best first)")
    def order_shown(self, obj):
        return labelled_order(obj.order, self._labels_for(obj), obj.scores)

    @admin.display(description="scores")
    def scores_table(self, obj):
        labels = self._labels_for(obj)
        return data_table({f"{labels[int(k)][0]} ({labels[int(k)][1]})" if int(k) in labels else k: v
                           for k, v in (obj.scores or {}).items()})

    @admin.display(description="pairs: P(better ≻ worse)")
    def pairs_table(self, obj):
        labels = self._labels_for(obj)

        def name(cid) -> str:
            return labels[cid][0] if cid in labels else str(cid)

        return data_table({f"{name(a)} ≻ {name(b)}": p for a, b, p in (obj.pairs or [])})


@admin.register(GoldScore)
class GoldScoreAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("ranking", "accuracy_shown", "pairs", "scored_at")
    fields = readonly_fields = ("ranking", "accuracy_shown", "pairs", "scored_at")

    @admin.display(description="gold accuracy", ordering="accuracy")
    def accuracy_shown(self, obj) -> str:
        return percent(obj.accuracy)


@admin.register(QualityReport)
class QualityReportAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("project", "status", "progress", "stage", "started_at", "finished_at")
    fields = readonly_fields = [("summary_table" if f.name == "summary" else f.name)
                                for f in QualityReport._meta.fields if f.name != "id"]

    @admin.display(description="summary")
    def summary_table(self, obj):
        return data_table(obj.summary)
