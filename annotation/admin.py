"""Django admin for ML engineers: projects with progress and agreement, tasks, leases and rankings.

Built to stay fast with millions of rows: counts come from correlated subqueries evaluated only for the
rows on the page, foreign keys use raw-id widgets (no giant <select>s), changelists never ask for the
unfiltered total twice, and an unfiltered PostgreSQL changelist uses the planner's row estimate.
All model text shown in custom columns goes through format_html / escaping.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Substr
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from annotation.guidelines_admin import GuidelinesAdminMixin
from annotation.import_runs import live
from annotation.models import (
    Assignment,
    Completion,
    ImportRun,
    Membership,
    Project,
    Prompt,
    Ranking,
    RankingRevision,
    RankingTask,
    RaterProfile,
)
from config.display import RecordAdmin, data_table
from config.display import percent as percent  # one percentage format for every admin page (config.display)
from config.text import VisibleTextAdmin, show_bidi_controls

PRIORITY_STEP = 10
EXCERPT_CHARS = 80

admin.site.site_header = "Verdict admin"
admin.site.site_title = "Verdict admin"
admin.site.index_title = "Projects, tasks, rankings, models and jobs"
# The left-hand list of every model took 300 px of a 1366 px laptop screen from each changelist, which then scrolled
# sideways (tests/config/test_admin_browser.py); the index page and the breadcrumbs lead to the same places.
admin.site.enable_nav_sidebar = False


class EstimatedCountPaginator(Paginator):
    """Uses PostgreSQL's row estimate for an unfiltered changelist of a big table (exact count otherwise)."""

    exact_below = 100_000

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        query = getattr(qs, "query", None)
        if query is not None and not query.where and not query.distinct:
            connection = connections[qs.db]
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [qs.model._meta.db_table]
                    )
                    row = cursor.fetchone()
                if row and row[0] >= self.exact_below:
                    return int(row[0])
        return super().count


class BigTableAdmin(VisibleTextAdmin, admin.ModelAdmin):
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50


def excerpt(text: str, chars: int = EXCERPT_CHARS) -> str:
    return Truncator(show_bidi_controls(text).replace("\n", " ")).chars(chars)


def count_of(queryset, group_by: str):
    """A correlated COUNT(*) subquery over `queryset` (already filtered on OuterRef), 0 when empty."""
    sub = queryset.order_by().values(group_by).annotate(n=Count("*")).values("n")
    return Coalesce(Subquery(sub, output_field=IntegerField()), Value(0))


def format_order(order, labels: dict[int, str] | None = None) -> str:
    """Tie groups as text, best first: ``12 ≻ 10 = 13 ≻ 11`` (optionally with a label per id)."""
    labels = labels or {}

    def name(cid) -> str:
        return f"{cid} ({labels[cid]})" if cid in labels else str(cid)

    return " ≻ ".join(" = ".join(name(c) for c in group) for group in order or [])


def completion_labels(task_ids) -> dict[int, dict[int, tuple[str, str, str]]]:
    """For each task, each completion id → (letter, model name, first characters of its text): A, B, C… in id order,
    one query for all the tasks, reading at most 200 characters of each text."""
    through = RankingTask.completions.through
    rows = (through.objects.filter(rankingtask_id__in=list(task_ids))
            .annotate(model=F("completion__model_name"), head=Substr("completion__text", 1, 200))
            .order_by("rankingtask_id", "completion_id")
            .values_list("rankingtask_id", "completion_id", "model", "head"))
    labels: dict[int, dict[int, tuple[str, str, str]]] = {}
    for task_id, cid, model, head in rows:
        of_task = labels.setdefault(task_id, {})
        n = len(of_task)
        letter = chr(ord("A") + n) if n < 26 else f"#{n + 1}"
        of_task[cid] = (letter, model or "?", head or "")
    return labels


def labelled_order(order, labels: dict[int, tuple[str, str, str]], scores: dict | None = None):
    """An order, best first, as ``A (gpt-4) ≻ B (llama) = C (mistral)``: each completion by its letter and model,
    its text's start in the title (escaped). ``order`` is tie groups (a ranking) or a flat list of ids (a consensus,
    where equal ``scores`` make a tie)."""
    if not order:
        return "—"
    if all(isinstance(g, list) for g in order):
        groups = order
    else:
        scores = {str(k): v for k, v in (scores or {}).items()}
        groups = []
        for cid in order:
            score = scores.get(str(cid))
            last = groups[-1] if groups else None
            if last and score is not None and scores.get(str(last[-1])) is not None \
                    and round(scores[str(last[-1])], 6) == round(score, 6):
                last.append(cid)
            else:
                groups.append([cid])

    def one(cid):
        letter, model, head = labels.get(cid, (str(cid), "?", ""))
        return format_html('<span class="completion-label" title="completion {}: {}">{} ({})</span>', cid,
                           excerpt(head, 160), letter, show_bidi_controls(model))

    return format_html_join(" ≻ ", "{}", ((format_html_join(" = ", "{}", ((one(c),) for c in g)),) for g in groups))


# --- projects -----------------------------------------------------------------------------------


class MembershipInline(admin.TabularInline):
    """The project's managers, and a row to add anyone. Raters are listed in Memberships (filtered by project,
    searchable, paginated): a project with thousands of raters would make its page a form of thousands of rows."""

    model = Membership
    extra = 1
    raw_id_fields = ("user",)
    fields = ("user", "role", "paused", "pause_reason")
    # Pausing goes through the quality page, which records who paused whom and why.
    readonly_fields = ("paused", "pause_reason")
    verbose_name_plural = "managers (raters: see Memberships, filtered by this project)"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(role=Membership.MANAGER).select_related("user")

    @admin.display(description="paused reason")
    def pause_reason(self, obj) -> str:
        return show_bidi_controls(obj.paused_reason)


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = "__all__"

    def clean_name(self):
        """Staff see every project, so in the admin a name is unique across all of them (the API scopes it)."""
        name = self.cleaned_data["name"]
        if Project.objects.filter(name=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"A project named {name!r} exists already.")
        return name


@admin.register(Project)
class ProjectAdmin(GuidelinesAdminMixin, VisibleTextAdmin, admin.ModelAdmin):
    form = ProjectForm
    list_display = ("name", "k", "overlap", "task_count", "complete_percent", "ranking_count")
    search_fields = ("name",)
    inlines = [MembershipInline]
    readonly_fields = ("created_at",)
    fields = ("name", "description", "guidelines", "k", "overlap", "criteria", "lease_minutes", "reask_share",
              "eval_share",
              "edit_window_s", "max_prompt_chars", "max_completion_chars", "max_unbroken_run",
              "min_overlap", "max_overlap", "consensus_threshold", "judge_trust", "gold_rate", "reliability_threshold",
              "min_rater_evidence", "pause_unreliable", "created_at")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if getattr(request.resolver_match, "url_name", "") != "annotation_project_changelist":
            return queryset  # the counts are for the list; on a project's own page they would count millions of rows
        tasks = RankingTask.objects.filter(project=OuterRef("pk"))
        # Rankings counted as the sum of their tasks' submitted_count: a scan of the project's tasks rather than a
        # join of every ranking to its task (12 s for 3,000,000 rankings on 2 cores).
        submitted = tasks.order_by().values("project").annotate(n=Sum("submitted_count")).values("n")
        return (
            queryset
            .annotate(
                n_tasks=count_of(tasks, "project"),
                n_complete=count_of(tasks.filter(status=RankingTask.COMPLETE), "project"),
                n_rankings=Coalesce(Subquery(submitted, output_field=IntegerField()), Value(0)),
            )
        )

    @admin.display(description="tasks", ordering="n_tasks")
    def task_count(self, obj) -> int:
        return obj.n_tasks

    @admin.display(description="complete")
    def complete_percent(self, obj) -> str:
        return percent(obj.n_complete / obj.n_tasks) if obj.n_tasks else "—"

    @admin.display(description="rankings", ordering="n_rankings")
    def ranking_count(self, obj) -> int:
        return obj.n_rankings


@admin.register(Membership)
class MembershipAdmin(VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("project", "user", "role")
    list_filter = ("role", "project")
    list_select_related = ("project", "user")
    raw_id_fields = ("user", "project")
    search_fields = ("user__username",)


@admin.register(RaterProfile)
class RaterProfileAdmin(VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("user", "display_name", "expertise", "is_active_rater", "created_at")
    list_filter = ("is_active_rater",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    search_fields = ("user__username", "display_name")


# --- prompts and completions --------------------------------------------------------------------


class CompletionInline(admin.StackedInline):
    model = Completion
    extra = 0
    fields = ("model_name", "text", "metadata")


class IdOrExactExternalIdSearch:
    """Search by primary key or exact external id: both indexed, unlike a LIKE over a million texts."""

    search_fields = ("external_id",)
    search_help_text = "A prompt id or an exact external id."

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(**{self.external_id_lookup: term})
        if term.isdigit():
            condition |= Q(**{self.id_lookup: int(term)})
        return queryset.filter(condition), False


@admin.register(Prompt)
class PromptAdmin(IdOrExactExternalIdSearch, BigTableAdmin):
    external_id_lookup = "external_id"
    id_lookup = "pk"
    list_display = ("id", "external_id", "text_excerpt", "project", "completion_count", "created_at")
    list_filter = ("project",)
    list_select_related = ("project",)
    raw_id_fields = ("project",)
    inlines = [CompletionInline]

    def get_queryset(self, request):
        completions = Completion.objects.filter(prompt=OuterRef("pk"))
        return super().get_queryset(request).annotate(n_completions=count_of(completions, "prompt"))

    @admin.display(description="text")
    def text_excerpt(self, obj) -> str:
        return excerpt(obj.text)

    @admin.display(description="completions")
    def completion_count(self, obj) -> int:
        return obj.n_completions


@admin.register(Completion)
class CompletionAdmin(BigTableAdmin):
    list_display = ("id", "prompt", "model_name", "text_excerpt")
    list_select_related = ("prompt",)
    raw_id_fields = ("prompt",)
    search_fields = ("=model_name",)

    @admin.display(description="text")
    def text_excerpt(self, obj) -> str:
        return excerpt(obj.text)


# --- ranking tasks ------------------------------------------------------------------------------


class PriorityFilter(admin.SimpleListFilter):
    """Buckets instead of one entry per distinct priority (no DISTINCT scan of the task table)."""

    title = "priority"
    parameter_name = "priority_band"

    def lookups(self, request, model_admin):
        return [("raised", "raised (> 0)"), ("default", "default (0)"), ("lowered", "lowered (< 0)")]

    def queryset(self, request, queryset):
        band = self.value()
        if band == "raised":
            return queryset.filter(priority__gt=0)
        if band == "default":
            return queryset.filter(priority=0)
        if band == "lowered":
            return queryset.filter(priority__lt=0)
        return queryset


class SourceFilter(admin.SimpleListFilter):
    """The known task sources, plus "other": no DISTINCT scan over the task table to list them."""

    title = "source"
    parameter_name = "source"
    known = ("import", "active_learning")

    def lookups(self, request, model_admin):
        return [(s, s) for s in self.known] + [("other", "other")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "other":
            return queryset.exclude(source__in=self.known)
        if value:
            return queryset.filter(source=value)
        return queryset


@admin.register(RankingTask)
class RankingTaskAdmin(IdOrExactExternalIdSearch, BigTableAdmin):
    external_id_lookup = "prompt__external_id"
    id_lookup = "pk"
    search_help_text = "A task id or a prompt's exact external id."
    # Source and origin are filters and on the task's page: the list must fit a 1366 px screen.
    list_display = ("id", "project", "prompt_excerpt", "status", "priority", "progress", "is_gold", "created_at")
    list_filter = ("status", PriorityFilter, "is_gold", SourceFilter, "project")
    list_select_related = ("project", "prompt")
    raw_id_fields = ("project", "prompt", "completions", "origin")
    readonly_fields = ("submitted_count", "created_at")
    ordering = ("-id",)
    actions = ["raise_priority", "lower_priority"]

    @admin.display(description="prompt")
    def prompt_excerpt(self, obj) -> str:
        return excerpt(obj.prompt.text)

    @admin.display(description="progress", ordering="submitted_count")
    def progress(self, obj) -> str:
        return f"{obj.submitted_count}/{obj.project.task_target(obj)}"

    @admin.action(description=f"Raise priority by {PRIORITY_STEP} (served sooner)")
    def raise_priority(self, request, queryset):
        n = queryset.update(priority=F("priority") + PRIORITY_STEP)
        self.message_user(request, f"Raised the priority of {n} task(s) by {PRIORITY_STEP}.", messages.SUCCESS)

    @admin.action(description=f"Lower priority by {PRIORITY_STEP}")
    def lower_priority(self, request, queryset):
        n = queryset.update(priority=F("priority") - PRIORITY_STEP)
        self.message_user(request, f"Lowered the priority of {n} task(s) by {PRIORITY_STEP}.", messages.SUCCESS)


@admin.register(Assignment)
class AssignmentAdmin(BigTableAdmin):
    list_display = ("id", "task", "rater", "status", "leased_at", "expires_at", "skip_reason")
    list_filter = ("status",)
    list_select_related = ("task", "rater")
    raw_id_fields = ("task", "rater")
    readonly_fields = ("display_order",)
    search_fields = ("=rater__username",)
    ordering = ("-id",)


class RankingRevisionInline(admin.TabularInline):
    """What the ranking said before each correction by its rater."""

    model = RankingRevision
    fields = ("number", "order", "criteria_orders", "rationale", "flags", "submitted_at", "replaced_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Ranking)
class RankingAdmin(BigTableAdmin):
    """Rankings are the record of what raters said: viewable, never edited or deleted here."""

    list_display = ("id", "task", "rater", "order_text", "flag_list", "time_spent_ms", "submitted_at")
    list_filter = ("submitted_at",)
    list_select_related = ("task", "rater")
    search_fields = ("=rater__username",)
    ordering = ("-id",)
    fields = ("task", "rater", "assignment", "order_detail", "display_order", "criteria_orders", "rationale",
              "flags", "time_spent_ms", "submitted_at", "revision", "revised_at")
    readonly_fields = fields
    inlines = [RankingRevisionInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="order (best first)")
    def order_text(self, obj) -> str:
        return format_order(obj.order)

    @admin.display(description="flags")
    def flag_list(self, obj) -> str:
        return ", ".join(obj.flags or []) or "—"

    @admin.display(description="order (best first)")
    def order_detail(self, obj):
        completions = {c.id: c for c in Completion.objects.filter(tasks=obj.task_id)}
        rows = []
        for rank, group in enumerate(obj.order or [], start=1):
            for cid in group:
                c = completions.get(cid)
                model = c.model_name if c else "?"
                text = excerpt(c.text, 160) if c else "(missing)"
                tie = " (tie)" if len(group) > 1 else ""
                rows.append((rank, tie, cid, model, text))
        items = format_html_join("", "<li>#{}{} — completion {} ({}): {}</li>", rows)
        return format_html("<p>{}</p><ol style='margin-left:1em'>{}</ol>", format_order(obj.order), items)


# --- imports ------------------------------------------------------------------------------------


@admin.register(ImportRun)
class ImportRunAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    """Every import, newest first; a running one shows its phase and rows so far (read-only: imports happen through
    the API or ``manage.py import_jsonl``)."""

    list_display = ("id", "project", "source", "status", "progress", "error_count", "created_by", "started_at",
                    "finished_at")
    list_filter = ("status",)
    list_select_related = ("project", "created_by")
    fields = readonly_fields = [
        {"summary": "summary_table", "errors": "errors_table"}.get(f.name, f.name)
        for f in ImportRun._meta.fields if f.name != "id"] + ["progress"]

    @admin.display(description="summary")
    def summary_table(self, obj) -> str:
        return data_table(obj.summary)

    @admin.display(description="first errors")
    def errors_table(self, obj):
        if not obj.errors:
            return "none"
        rows = ((line, show_bidi_controls(message)) for line, message in
                (e if isinstance(e, list | tuple) and len(e) == 2 else ("?", e) for e in obj.errors))
        return format_html("<table><tr><th>line</th><th>error</th></tr>{}</table>",
                           format_html_join("", "<tr><td>{}</td><td>{}</td></tr>", rows))

    @admin.display(description="progress")
    def progress(self, obj) -> str:
        run = live(obj)
        if run.status == ImportRun.SUCCEEDED:
            return f"{run.rows_done:,} tasks"
        if run.status == ImportRun.FAILED:
            return "nothing written"
        total = f"/{run.rows_total:,}" if run.rows_total else ""
        return f"{run.phase or 'starting'} {run.rows_done:,}{total}"
