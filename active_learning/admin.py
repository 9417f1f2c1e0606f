"""Admin: every round with its strategy, model version, counts and score summary; picks inline with what came back;
filtered to one project, the rounds list opens with the project's learning curve (versions and rounds)."""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from active_learning import learning_curve
from active_learning.models import ActiveLearningPolicy, CachedEmbedding, RoutingAudit, SelectedItem, SelectionRound
from annotation.permissions import MANAGE, project_for
from config.display import RecordAdmin, data_table, figure
from config.text import VisibleTextAdmin


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
        "project", "strategy", "strategy_used", "trigger", "status", "model_version", "model_note",
        "feature_source", "batch_size", "params_table", "dedupe_key", "summary_table", "score_histogram", "error",
        "attempts", "created_at", "started_at", "finished_at",
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
