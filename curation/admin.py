"""The data browser and the review queue in the admin.

*Data browser* (a list of tasks): full-text search over prompts and completions, filters by project, status,
source, model, rater, prompt metadata, consensus confidence, review and exclusion, and bulk actions on the ticked
tasks (or, with "select all", on every task the filters select: at most ``bulk_actions.MAX_TASKS``).
*Review* (a list of rankings): each ranking's page shows it next to the task's consensus and the active reward
model's scores, with accept/reject and a reason; a rater's name leads to their history.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from annotation.admin import BigTableAdmin, excerpt, percent
from annotation.api import jsonl_response
from annotation.models import Completion, Membership, Prompt, Ranking
from annotation.permissions import MANAGE, managed_projects, project_for
from curation import bulk_actions
from curation.models import BrowsedTask, BulkAction, ReviewedRanking
from curation.review import ReviewError, order_label, ranking_context, rater_history, review
from curation.search import RANKING_SOURCES, TASK_SOURCES, search_text
from quality.models import RankingReview

MODEL_CHOICES = 30  # the rater and model filters list at most this many names
METADATA_SAMPLE = 2_000


def _project_id(request) -> int | None:
    raw = request.GET.get("project__id__exact") or request.GET.get("task__project__id__exact")
    return int(raw) if raw and raw.isdigit() else None


class ModelFilter(admin.SimpleListFilter):
    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        completions = Completion.objects.exclude(model_name="")
        if (project_id := _project_id(request)) is not None:
            completions = completions.filter(prompt__project_id=project_id)
        names = (completions.values("model_name").annotate(n=Count("pk")).order_by("-n")
                 .values_list("model_name", flat=True)[:MODEL_CHOICES])
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(completions__model_name=self.value()).distinct()
        return queryset


class RaterFilter(admin.SimpleListFilter):
    """Tasks a rater ranked (the browser) or rankings a rater made (review)."""

    title = "rater"
    parameter_name = "rater"
    lookup = "rankings__rater_id"

    def lookups(self, request, model_admin):
        members = Membership.objects.all()
        if (project_id := _project_id(request)) is not None:
            members = members.filter(project_id=project_id)
        users = members.values_list("user_id", "user__username").distinct().order_by("user__username")
        return [(str(uid), name) for uid, name in users[:MODEL_CHOICES]]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(**{self.lookup: int(self.value())}).distinct()
        return queryset


class RankingRaterFilter(RaterFilter):
    lookup = "rater_id"


class TaskSourceFilter(admin.SimpleListFilter):
    """How the task's rankings were made (human, imported, judge) or how the task was made."""

    title = "source"
    parameter_name = "data_source"

    def lookups(self, request, model_admin):
        return [(s, s.replace("_", " ")) for s in (*RANKING_SOURCES, *TASK_SOURCES)]

    def queryset(self, request, queryset):
        value = self.value()
        if value in RANKING_SOURCES:
            return queryset.filter(rankings__source=RANKING_SOURCES[value]).distinct()
        if value == "reask":
            return queryset.filter(origin__isnull=False)
        if value in TASK_SOURCES:
            return queryset.filter(source=value)
        return queryset


class ConfidenceFilter(admin.SimpleListFilter):
    """The consensus's confidence (its least sure pair), in bands."""

    title = "consensus confidence"
    parameter_name = "confidence"
    bands = {"none": None, "lt60": (0.0, 0.6), "60-80": (0.6, 0.8), "80-95": (0.8, 0.95), "ge95": (0.95, 1.01)}

    def lookups(self, request, model_admin):
        return [("none", "no consensus yet"), ("lt60", "below 60%"), ("60-80", "60–80%"), ("80-95", "80–95%"),
                ("ge95", "95% and above")]

    def queryset(self, request, queryset):
        if self.value() not in self.bands:
            return queryset
        band = self.bands[self.value()]
        if band is None:
            return queryset.filter(consensus__isnull=True)
        return queryset.filter(consensus__confidence__gte=band[0], consensus__confidence__lt=band[1])


class ReviewFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "review"
    prefix = "rankings__"

    def lookups(self, request, model_admin):
        return [("rejected", "rejected"), ("accepted", "accepted"), ("unreviewed", "not reviewed")]

    def queryset(self, request, queryset):
        if self.value() == "unreviewed":
            return queryset.filter(**{f"{self.prefix}review__isnull": True}).distinct()
        if self.value() in ("rejected", "accepted"):
            return queryset.filter(**{f"{self.prefix}review__decision": self.value()}).distinct()
        return queryset


class RankingReviewFilter(ReviewFilter):
    prefix = ""


class MetadataFilter(admin.SimpleListFilter):
    """The commonest ``key=value`` string pairs of the prompts' metadata (from a sample of the latest prompts)."""

    title = "prompt metadata"
    parameter_name = "metadata"

    def lookups(self, request, model_admin):
        prompts = Prompt.objects.exclude(metadata={})
        if (project_id := _project_id(request)) is not None:
            prompts = prompts.filter(project_id=project_id)
        counts: dict[str, int] = {}
        for metadata in prompts.order_by("-id").values_list("metadata", flat=True)[:METADATA_SAMPLE]:
            for key, value in (metadata or {}).items() if isinstance(metadata, dict) else ():
                if isinstance(value, str) and len(value) <= 60:
                    counts[f"{key}={value}"] = counts.get(f"{key}={value}", 0) + 1
        return [(kv, kv) for kv, _ in sorted(counts.items(), key=lambda item: -item[1])[:MODEL_CHOICES]]

    def queryset(self, request, queryset):
        key, sep, value = (self.value() or "").partition("=")
        if sep and key:
            return queryset.filter(prompt__metadata__contains={key: value})
        return queryset


class BulkActionForm(ActionForm):
    priority = forms.IntegerField(required=False, min_value=bulk_actions.MIN_PRIORITY,
                                  max_value=bulk_actions.MAX_PRIORITY, help_text="for Set priority / Re-ask")


class ReviewActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=500, help_text="required to reject")


class ManagedOnly:
    """Rows of the projects the user manages; the admin itself is for staff, who manage all."""

    project_path = "project"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset.filter(**{f"{self.project_path}__in": managed_projects(request.user)})

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(BrowsedTask)
class DataBrowserAdmin(ManagedOnly, BigTableAdmin):
    search_fields = ("prompt__text",)  # overridden by get_search_results: full-text search
    search_help_text = "Words in the prompt or any completion: \"a phrase\", -word, or (PostgreSQL full-text search)."
    list_display = ("id", "prompt_excerpt", "models", "status", "priority", "rankings", "confidence", "review_state",
                    "in_training")
    list_display_links = ("id",)
    list_filter = ("project", "status", TaskSourceFilter, ModelFilter, RaterFilter, ConfidenceFilter, ReviewFilter,
                   "excluded_from_training", "is_gold", MetadataFilter)
    list_select_related = ("prompt", "consensus")
    ordering = ("-priority", "id")
    action_form = BulkActionForm
    actions = ["set_priority", "reask", "exclude_from_training", "include_in_training", "export"]
    fields = ("project", "prompt_text", "completion_list", "status", "priority", "source", "origin", "is_gold",
              "excluded_from_training", "submitted_count", "rankings_list")
    readonly_fields = fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # changes go through the bulk actions, which log them

    def get_queryset(self, request):
        return (super().get_queryset(request).prefetch_related("completions")
                .annotate(_rejected=Count("rankings", filter=Q(rankings__review__decision="rejected")),
                          _reviewed=Count("rankings", filter=Q(rankings__review__isnull=False))))

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return search_text(queryset, search_term.strip()[:200], _project_id(request)), False

    @admin.display(description="prompt")
    def prompt_excerpt(self, obj) -> str:
        return excerpt(obj.prompt.text, 90)

    @admin.display(description="models")
    def models(self, obj) -> str:
        return ", ".join(sorted({c.model_name or "?" for c in obj.completions.all()}))

    @admin.display(description="rankings", ordering="submitted_count")
    def rankings(self, obj) -> int:
        return obj.submitted_count

    @admin.display(description="confidence", ordering="consensus__confidence")
    def confidence(self, obj) -> str:
        consensus = getattr(obj, "consensus", None)
        return percent(consensus.confidence) if consensus is not None else "—"

    @admin.display(description="review")
    def review_state(self, obj) -> str:
        if not obj._reviewed:
            return "—"
        return f"{obj._rejected} rejected" if obj._rejected else "accepted"

    @admin.display(description="in training", boolean=True, ordering="excluded_from_training")
    def in_training(self, obj) -> bool:
        return not obj.excluded_from_training

    @admin.display(description="prompt")
    def prompt_text(self, obj) -> str:
        return format_html('<div class="curation-text">{}</div>', obj.prompt.text)

    @admin.display(description="completions")
    def completion_list(self, obj) -> str:
        return format_html_join("", '<div class="curation-text"><strong>{}</strong> {}</div>',
                                ((c.model_name or "?", c.text) for c in obj.completions.all()))

    @admin.display(description="rankings (review)")
    def rankings_list(self, obj) -> str:
        rows = obj.rankings.select_related("rater").order_by("id")[:100]
        return format_html_join(", ", '<a href="{}">ranking {} by {}</a>', (
            (reverse("admin:curation_reviewedranking_change", args=[r.pk]), r.pk, r.rater.get_username())
            for r in rows)) or "—"

    def _run(self, request, queryset, label: str, call):
        project_ids = set(queryset.values_list("project_id", flat=True).distinct()[:2])
        if len(project_ids) != 1:
            self.message_user(request, "Pick one project (the project filter) before a bulk action.", messages.ERROR)
            return None
        project = project_for(request.user, project_ids.pop(), MANAGE)
        try:
            done = call(project)
        except (bulk_actions.SelectionTooLarge, ValueError) as exc:
            self.message_user(request, f"Nothing changed: {exc}", messages.ERROR)
            return None
        self.message_user(request, f"{label}: {done.changed} of {done.tasks} task(s).", messages.SUCCESS)
        return done

    def _priority(self, request) -> int | None:
        raw = request.POST.get("priority", "").strip()
        return int(raw) if raw.lstrip("-").isdigit() else None

    @admin.action(description="Set priority (the value beside the action)")
    def set_priority(self, request, queryset):
        priority = self._priority(request)
        if priority is None:
            self.message_user(request, "Nothing changed: enter a priority beside the action.", messages.ERROR)
            return
        self._run(request, queryset, f"Priority set to {priority}",
                  lambda p: bulk_actions.set_priority(p, queryset, priority, user=request.user))

    @admin.action(description="Re-ask of new raters")
    def reask(self, request, queryset):
        self._run(request, queryset, "Re-asks created",
                  lambda p: bulk_actions.reask(p, queryset, self._priority(request), user=request.user))

    @admin.action(description="Exclude from training")
    def exclude_from_training(self, request, queryset):
        self._run(request, queryset, "Excluded from training",
                  lambda p: bulk_actions.set_excluded(p, queryset, True, user=request.user))

    @admin.action(description="Include in training again")
    def include_in_training(self, request, queryset):
        self._run(request, queryset, "Included in training",
                  lambda p: bulk_actions.set_excluded(p, queryset, False, user=request.user))

    @admin.action(description="Export their rankings (JSON Lines)")
    def export(self, request, queryset):
        project_ids = set(queryset.values_list("project_id", flat=True).distinct()[:2])
        if len(project_ids) != 1:
            self.message_user(request, "Pick one project (the project filter) before exporting.", messages.ERROR)
            return None
        project = project_for(request.user, project_ids.pop(), MANAGE)
        try:
            rows = bulk_actions.export_rankings(project, queryset, user=request.user)
        except bulk_actions.SelectionTooLarge as exc:
            self.message_user(request, f"Nothing exported: {exc}", messages.ERROR)
            return None
        return jsonl_response(rows, f"project-{project.pk}-selection.jsonl")


@admin.register(ReviewedRanking)
class ReviewAdmin(ManagedOnly, BigTableAdmin):
    project_path = "task__project"
    list_display = ("id", "task_link", "rater_link", "source", "order_letters", "time_s", "flags_shown",
                    "decision", "submitted_at")
    list_filter = ("task__project", RankingReviewFilter, RankingRaterFilter, "source")
    list_select_related = ("rater", "task", "review")
    search_fields = ("=rater__username",)
    search_help_text = "A rater's exact username."
    ordering = ("-id",)
    action_form = ReviewActionForm
    actions = ["accept", "reject"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the review form on the ranking's page is the only change

    @admin.display(description="task")
    def task_link(self, obj) -> str:
        return format_html('<a href="{}">task {}</a>', reverse("admin:curation_browsedtask_change", args=[obj.task_id]),
                           obj.task_id)

    @admin.display(description="rater")
    def rater_link(self, obj) -> str:
        url = reverse("admin:curation_rater_history", args=[obj.task.project_id, obj.rater_id])
        return format_html('<a href="{}">{}</a>', url, obj.rater.get_username())

    @admin.display(description="order")
    def order_letters(self, obj) -> str:
        shown = obj.display_order or [c for group in obj.order for c in group]
        labels = {int(c): chr(ord("A") + i) for i, c in enumerate(sorted(int(x) for x in shown))}
        return order_label(obj.order, labels)

    @admin.display(description="time", ordering="time_spent_ms")
    def time_s(self, obj) -> str:
        return f"{obj.time_spent_ms / 1000:.0f} s"

    @admin.display(description="flags")
    def flags_shown(self, obj) -> str:
        return ", ".join(obj.flags) or "—"

    @admin.display(description="review")
    def decision(self, obj) -> str:
        row = getattr(obj, "review", None)
        return row.get_decision_display() if row else "—"

    def _review_all(self, request, queryset, decision: str):
        reason = request.POST.get("reason", "")
        done = 0
        for ranking in queryset.select_related("task")[: bulk_actions.MAX_TASKS]:
            project_for(request.user, ranking.task.project_id, MANAGE)
            try:
                review(ranking, decision, reason, request.user)
            except ReviewError as exc:
                self.message_user(request, f"Nothing more changed: {exc.field}: {exc}", messages.ERROR)
                break
            done += 1
        if done:
            self.message_user(request, f"{decision.capitalize()} {done} ranking(s).", messages.SUCCESS)

    @admin.action(description="Accept")
    def accept(self, request, queryset):
        self._review_all(request, queryset, RankingReview.ACCEPTED)

    @admin.action(description="Reject (the reason beside the action): leaves training")
    def reject(self, request, queryset):
        self._review_all(request, queryset, RankingReview.REJECTED)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("rater/<id:project_id>/<id:rater_id>/", view(self.rater_view), name="curation_rater_history"),
                *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied("no permission to view reviews")
        ranking = self.get_queryset(request).filter(pk=object_id).select_related("task__prompt", "rater").first()
        if ranking is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        project_for(request.user, ranking.task.project_id, MANAGE)
        if request.method == "POST":
            try:
                review(ranking, request.POST.get("decision", ""), request.POST.get("reason", ""), request.user)
            except ReviewError as exc:
                self.message_user(request, f"Not saved: {exc.field}: {exc}", messages.ERROR)
            else:
                self.message_user(request, "Review saved; training uses it from the next snapshot.", messages.SUCCESS)
            return HttpResponseRedirect(request.path)
        context = ranking_context(ranking)
        labels = context["labels"]
        context |= {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Review ranking {ranking.pk}",
            "original": ranking,
            "order_text": order_label(ranking.order, labels),
            "consensus_text": order_label([[c] for c in context["consensus"].order], labels)
            if context["consensus"] else "",
            "agreement": percent(context["consensus_agreement"]),
            "model_agreement_text": percent(context.get("model_agreement")),
            "history_url": reverse("admin:curation_rater_history", args=[ranking.task.project_id, ranking.rater_id]),
        }
        return TemplateResponse(request, "admin/curation/review_ranking.html", context)

    def rater_view(self, request, project_id, rater_id):
        project = project_for(request.user, project_id, MANAGE)
        if not self.has_view_permission(request):
            raise PermissionDenied("no permission to view reviews")
        history = rater_history(project, rater_id)
        user = Ranking.objects.filter(rater_id=rater_id).select_related("rater").first()
        name = user.rater.get_username() if user else f"user {rater_id}"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{name} in {project}",
            "project": project,
            "history": history,
            "rows": [{**row, "agreement": percent(row["consensus_agreement"]),
                      "gold": percent(row["gold_accuracy"])} for row in history["rows"]],
        }
        return TemplateResponse(request, "admin/curation/rater_history.html", context)


@admin.register(BulkAction)
class BulkActionAdmin(ManagedOnly, admin.ModelAdmin):
    list_display = ("created_at", "project", "action", "tasks", "changed", "user")
    list_filter = ("action", "project")
    readonly_fields = ("project", "user", "action", "params", "tasks", "changed", "created_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return False
