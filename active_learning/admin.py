"""Admin: every round with its strategy, model version, counts and score summary; picks inline with what came back;
filtered to one project, the rounds list opens with the project's learning curve (versions and rounds). Also the
project's run controls (train now, run a selection round, refresh quality) with live progress."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from active_learning import learning_curve
from active_learning.launch import RoundBusy, queue_round
from active_learning.models import ActiveLearningPolicy, CachedEmbedding, RoutingAudit, SelectedItem, SelectionRound
from active_learning.pipeline import RoundError
from annotation.models import Project
from annotation.permissions import MANAGE, project_for
from config.display import RecordAdmin, data_table, figure
from config.text import VisibleTextAdmin
from quality.admin import QualityProjectAdmin


@admin.register(ActiveLearningPolicy)
class ActiveLearningPolicyAdmin(VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("project", "enabled", "strategy", "batch_size", "max_asks", "max_asks_per_prompt", "ensemble_size",
                    "priority_boost")
    list_filter = ("enabled", "strategy")


class SelectedItemInline(admin.TabularInline):
    model = SelectedItem
    extra = 0
    can_delete = False
    fields = ("rank", "action", "task", "completion_a", "completion_b", "scores_table", "came_back")
    readonly_fields = fields

    @admin.display(description="scores")
    def scores_table(self, obj: SelectedItem):
        return data_table(obj.scores)

    @admin.display(description="came back")
    def came_back(self, obj: SelectedItem) -> str:
        got = learning_curve.outcome(obj)
        if not got["rankings"]:
            return "nothing yet"
        return f"{got['rankings']} ranking(s); {got['agree_with_model']}/{got['judged']} agree with the model"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SelectionRound)
class SelectionRoundAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    """A round is a record of what the selector did: read-only (start one from the API or the project's page)."""

    # Few columns: the list must fit a 1366 px screen (tests/test_admin_browser.py).
    list_display = ("id", "project", "strategy", "status", "model_version", "picks", "mean_instability", "created_at")
    list_filter = ("project", "strategy", "trigger", "status")
    fields = readonly_fields = (
        "project", "strategy", "strategy_used", "trigger", "status", "progress", "stage", "model_version",
        "model_note", "feature_source", "batch_size", "params_table", "dedupe_key", "summary_table",
        "score_histogram", "error", "attempts", "created_at", "started_at", "finished_at",
    )
    inlines = [SelectedItemInline]
    change_list_template = "admin/active_learning/selectionround/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("project", "model_version")

    def get_urls(self):
        extra = [path("learning-curve/<id:project_id>.png", self.admin_site.admin_view(self.learning_curve_view),
                      name="active_learning_learning_curve")]
        return extra + super().get_urls()

    def learning_curve_view(self, request, project_id: int):
        if not self.has_view_permission(request):
            raise Http404
        project = project_for(request.user, project_id, MANAGE)
        return HttpResponse(learning_curve.render_png(project), content_type="image/png")

    def changelist_view(self, request, extra_context=None):
        """Filtered to one project, the list opens with that project's learning curve."""
        project_id = request.GET.get("project__id__exact")
        extra = {"learning_curve_url": None}
        if project_id and project_id.isdigit():
            extra["learning_curve_url"] = reverse("admin:active_learning_learning_curve", args=[int(project_id)])
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    @admin.display(description="reward model")
    def model_note(self, obj: SelectionRound) -> str:
        return obj.summary.get("model_note") or (f"version {obj.model_version.number}" if obj.model_version else "–")

    @admin.display(description="strategy used, and why")
    def strategy_used(self, obj: SelectionRound) -> str:
        used = obj.summary.get("strategy_used") or obj.strategy
        note = obj.summary.get("strategy_note")
        return f"{used}: {note}" if note else used

    @admin.display(description="picks (raised / new)")
    def picks(self, obj: SelectionRound) -> str:
        actions = list(obj.items.values_list("action", flat=True))
        raised = sum(a == SelectedItem.RAISED for a in actions)
        created = sum(a == SelectedItem.CREATED for a in actions)
        return f"{len(actions)} ({raised} / {created})"

    @admin.display(description="parameters")
    def params_table(self, obj: SelectionRound):
        return data_table(obj.params)

    @admin.display(description="summary")
    def summary_table(self, obj: SelectionRound):
        shown = {k: v for k, v in (obj.summary or {}).items() if not k.endswith("_histogram")}
        return data_table(shown)

    @admin.display(description="mean instability (selected / all)")
    def mean_instability(self, obj: SelectionRound) -> str:
        sel = obj.summary.get("instability_selected", {}).get("mean")
        alls = obj.summary.get("instability_all", {}).get("mean")
        if sel is None or alls is None:
            return "–"
        return f"{figure(sel)} / {figure(alls)}"

    @admin.display(description="scores of all candidates")
    def score_histogram(self, obj: SelectionRound):
        """Histograms of the raw scores (the reward margin, BALD). Rounds from before they were stored have only the
        histogram of `instability`, a percentile rank: flat by construction, so it is not shown as if it meant more."""
        summary = obj.summary or {}
        parts = [
            (title, _bars(summary.get(key) or {}))
            for key, title in (("margin_histogram", "reward margin |r(a) − r(b)| (small: the model is unsure)"),
                               ("bald_histogram", "BALD: disagreement between the ensemble's members (nats)"))
            if summary.get(key)
        ]
        if not parts:
            if summary.get("instability_histogram"):
                return "– (this round stored only percentile ranks, which are uniform: no histogram to show)"
            return "–"
        return format_html_join("", "<p>{}</p>{}", parts)


def _bars(hist: dict):
    """A histogram ({"counts", "edges"}) as text bars, one line per bin, edges to 3 significant digits."""
    counts, edges = hist.get("counts") or [], hist.get("edges") or []
    if not counts or len(edges) != len(counts) + 1:
        return "–"
    filled = [i for i, c in enumerate(counts) if c]
    if len(filled) == 1:  # every candidate in one bin (a constant score): a bar chart of one bar says nothing more
        i = filled[0]
        return format_html("<p>all {} candidates between {} and {}</p>", int(counts[i]), figure(edges[i]),
                           figure(edges[i + 1]))
    top = max(max(counts), 1)
    rows = ((figure(edges[i]), figure(edges[i + 1]), "█" * round(30 * int(c) / top), int(c))
            for i, c in enumerate(counts))
    return format_html('<pre class="histogram">{}</pre>', format_html_join("\n", "{:>8}–{:<8} {} {}", rows))


@admin.register(CachedEmbedding)
class CachedEmbeddingAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("source_key", "completion", "dim", "created_at")
    list_filter = ("source_key",)
    fields = ("source_key", "completion", "dim", "created_at")
    readonly_fields = fields


def _figure(value, digits: int = 3, signed: bool = False) -> str:
    if value is None:
        return "∞" if not signed else "–"
    if isinstance(value, float) and value == float("inf"):
        return "∞"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


@admin.register(RoutingAudit)
class RoutingAuditAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    """Every audit of routing: strategies replayed against random on the evaluation stream, and auto's choice."""

    list_display = ("created_at", "project", "model_version", "eval_pairs", "chosen_or_random", "reason")
    list_filter = ("project",)
    fields = ("project", "model_version", "eval_pairs", "chosen_or_random", "reason", "table", "seconds",
              "created_at")
    readonly_fields = fields  # written by rounds with policy auto

    @admin.display(description="auto uses")
    def chosen_or_random(self, obj: RoutingAudit) -> str:
        return obj.chosen or "random among fresh tasks"

    @admin.display(description="against random (95 % intervals)")
    def table(self, obj: RoutingAudit):
        rows = []
        for name, r in (obj.results.get("strategies") or {}).items():
            lo, hi = r.get("auc_gain_ci95") or [None, None]
            slo, shi = r.get("budget_share_ci95") or [None, None]
            rows.append((name, _figure(r.get("auc_gain_vs_random"), signed=True), _figure(lo, signed=True),
                         _figure(hi, signed=True), _figure(r.get("budget_share"), 2), _figure(slo, 2),
                         _figure(shi, 2), _figure(r.get("final_accuracy"))))
        return format_html(
            "<table><tr><th>strategy</th><th>AUC gain [95 % CI]</th><th>budget share [95 % CI]</th>"
            "<th>accuracy at the budget</th></tr>{}</table><p>Replayed {} times on the evaluation stream's "
            "labelled pairs, split by prompt; a linear head on the version's last-layer features.</p>",
            format_html_join("", "<tr><td>{}</td><td>{} [{}, {}]</td><td>{} [{}, {}]</td><td>{}</td></tr>", rows),
            obj.results.get("resamples", 0))


# --- run controls on the project's admin pages -----------------------------------------------------------------
# "Train now", "Run a selection round" and "Refresh quality", here because this app is the highest of the three that
# own them (rewardmodel, quality, active_learning): the project admin (annotation, extended by quality) knows none of
# them. Each button POSTs (CSRF: admin views are csrf_protect'ed) to a launch service and lands on the project's run
# page, whose progress panels (quality/static/quality/job_progress.js) poll each job's API GET every 2 s.

RUN_KINDS = {"train": "Train now", "round": "Run a selection round", "quality": "Refresh quality"}


class RunControlsProjectAdmin(QualityProjectAdmin):
    list_display = (*QualityProjectAdmin.list_display, "run_link")
    readonly_fields = (*QualityProjectAdmin.readonly_fields, "run_controls")
    fields = (*QualityProjectAdmin.fields, "run_controls")
    actions = ["train_now", "run_selection_round", "refresh_quality"]

    @admin.display(description="runs")
    def run_link(self, obj) -> str:
        return format_html('<a href="{}">run controls</a>', reverse("admin:annotation_project_runs", args=[obj.pk]))

    @admin.display(description="run controls")
    def run_controls(self, obj) -> str:
        """The three buttons inside the change form: each submits the form's CSRF token to its own launch URL
        (formaction), not the form's fields to the project."""
        if not obj.pk:
            return "—"
        buttons = format_html_join(" ", '<button type="submit" formaction="{}" formmethod="post" formnovalidate '
                                   'class="button run-control" name="run" value="{}">{}</button>',
                                   ((reverse("admin:annotation_project_run", args=[obj.pk, kind]), kind, label)
                                    for kind, label in RUN_KINDS.items()))
        return format_html('{} <a href="{}">progress of the latest runs</a>', buttons,
                           reverse("admin:annotation_project_runs", args=[obj.pk]))

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path("<id:object_id>/runs/", view(self.runs_view), name="annotation_project_runs"),
            path("<id:object_id>/runs/<str:kind>/", view(self.launch_view), name="annotation_project_run"),
        ]
        return custom + super().get_urls()

    def runs_view(self, request, object_id):
        """The latest training, selection round and quality refresh of the project, each live, with its button."""
        from quality.figures import report_dict
        from rewardmodel.models import TrainingRun

        project = self._managed(request, object_id)
        run = TrainingRun.objects.filter(project=project).order_by("-created_at", "-id").first()
        rnd = SelectionRound.objects.filter(project=project).order_by("-created_at", "-id").first()
        report = report_dict(project)
        panels = [
            {"kind": "train", "button": RUN_KINDS["train"], "label": "Training",
             "status": run.status if run else "never", "progress": run.progress if run else 0,
             "stage": run.message if run else "no training yet",
             "poll_url": reverse("project-training-run", args=[project.pk, run.pk]) if run else "",
             "result_url": reverse("admin:rewardmodel_trainingrun_change", args=[run.pk]) if run else "",
             "result_label": "the training run (version, held-out curve)"},
            {"kind": "round", "button": RUN_KINDS["round"], "label": "Selection round",
             "status": rnd.status if rnd else "never", "progress": rnd.progress if rnd else 0,
             "stage": (rnd.error or rnd.stage) if rnd else "no round yet",
             "poll_url": reverse("al-round-detail", args=[project.pk, rnd.pk]) if rnd else "",
             "result_url": reverse("admin:active_learning_selectionround_change", args=[rnd.pk]) if rnd else "",
             "result_label": "the round (what it routed)"},
            {"kind": "quality", "button": RUN_KINDS["quality"], "label": "Quality refresh",
             "status": report["status"], "progress": report["progress"],
             "stage": report["message"] if report["status"] == "failed" else report["stage"],
             "poll_url": reverse("project-quality-refresh", args=[project.pk]),
             "result_url": reverse("admin:annotation_project_quality", args=[project.pk]),
             "result_label": "the quality page"},
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": project,
            "title": f"Run controls — {project}",
            "panels": panels,
            "strategies": [s for s, _ in SelectionRound._meta.get_field("strategy").choices],
            "policy": ActiveLearningPolicy.for_project(project),
        }
        return TemplateResponse(request, "admin/annotation/project/runs.html", context)

    def launch_view(self, request, object_id, kind: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        project = self._managed(request, object_id)
        if kind not in RUN_KINDS:
            raise Http404("no such run")
        level, text = self._launch(project, kind, request.POST)
        self.message_user(request, text, level)
        return HttpResponseRedirect(reverse("admin:annotation_project_runs", args=[project.pk]))

    @staticmethod
    def _launch(project, kind: str, form) -> tuple[int, str]:
        """Start one run of `kind` for the project; (message level, message) for the admin user."""
        from quality.launch import RefreshBusy, queue_refresh
        from rewardmodel.launch import TrainingBusy, train_now

        try:
            if kind == "train":
                run = train_now(project)
                return messages.SUCCESS, f"{project}: training run {run.pk} queued."
            if kind == "round":
                strategy = form.get("strategy") or None
                raw = (form.get("batch_size") or "").strip()
                try:
                    batch_size = int(raw) if raw else None
                except ValueError:
                    return messages.ERROR, f"{project}: batch size must be a whole number, not {raw!r}."
                rnd = queue_round(project, strategy=strategy, batch_size=batch_size)
                return messages.SUCCESS, f"{project}: selection round {rnd.pk} ({rnd.strategy}) queued."
            queue_refresh(project)
            return messages.SUCCESS, f"{project}: quality refresh queued."
        except (TrainingBusy, RoundBusy, RefreshBusy, RoundError) as exc:
            return messages.WARNING, f"{project}: nothing started: {exc}."

    def _launch_selected(self, request, queryset, kind: str):
        """An action on the changelist: launch for each selected project this user manages; with one project, open
        its run page to follow it."""
        projects = list(queryset[:50])  # bounded work per request
        for project in projects:
            try:
                project_for(request.user, project.pk, MANAGE)
            except (PermissionDenied, Http404):
                self.message_user(request, f"{project}: only its managers can start runs.", messages.ERROR)
                continue
            level, text = self._launch(project, kind, {})
            self.message_user(request, text, level)
        if len(projects) == 1:
            return HttpResponseRedirect(reverse("admin:annotation_project_runs", args=[projects[0].pk]))
        return None

    @admin.action(description="Train now (a reward model for each selected project)")
    def train_now(self, request, queryset):
        return self._launch_selected(request, queryset, "train")

    @admin.action(description="Run a selection round (the project's policy)")
    def run_selection_round(self, request, queryset):
        return self._launch_selected(request, queryset, "round")

    @admin.action(description="Refresh quality")
    def refresh_quality(self, request, queryset):
        return self._launch_selected(request, queryset, "quality")


admin.site.unregister(Project)
admin.site.register(Project, RunControlsProjectAdmin)
