"""The data browser's query: a project's tasks by text, status, source, model, rater, metadata, consensus
confidence, review and exclusion, as one queryset the admin page, the API and the bulk actions share.

Text search is PostgreSQL full-text search (``websearch_to_tsquery``: words, "quoted phrases", ``-not``, ``or``)
over prompts and completions, served by the GIN indexes of migration ``annotation.0015``; SQLite (demo mode) matches
a case-insensitive substring instead. Filters are a Django form, so the admin and the API reject the same bad input
with the same field-named messages.
"""

from __future__ import annotations

from django import forms
from django.db import connection
from django.db.models import BooleanField, Exists, F, Func, OuterRef, Q, QuerySet, Value

from annotation.models import Completion, Membership, Project, Prompt, Ranking, RankingTask
from config.ids import MAX_ID

MAX_QUERY_CHARS = 200
# Where a task's data came from: how its rankings were made (the first three) or how the task itself was made.
RANKING_SOURCES = {"human": Ranking.RATER, "imported": Ranking.IMPORTED, "judge": Ranking.JUDGE}
TASK_SOURCES = ("import", "preference_import", "active_learning", "policy", "reask")
SOURCE_CHOICES = [(s, s) for s in (*RANKING_SOURCES, *TASK_SOURCES)]
ORDERINGS = {"priority": ("-priority", "id"), "newest": ("-created_at", "-id"), "oldest": ("id",),
             "least_confident": ("consensus__confidence", "id"), "most_rankings": ("-submitted_count", "id")}
REVIEW_CHOICES = [("rejected", "has a rejected ranking"), ("accepted", "has an accepted ranking"),
                  ("unreviewed", "has an unreviewed ranking")]
TRISTATE = [("", "any"), ("yes", "yes"), ("no", "no")]


class BrowseFilters(forms.Form):
    """What a manager may filter by; every field is optional. ``metadata`` is ``key=value`` on the prompt's metadata
    (a string value, compared exactly)."""

    q = forms.CharField(required=False, max_length=MAX_QUERY_CHARS, strip=True,
                        help_text="Words in the prompt or any completion.")
    status = forms.ChoiceField(required=False, choices=[("", "any"), *RankingTask.STATUSES])
    source = forms.ChoiceField(required=False, choices=[("", "any"), *SOURCE_CHOICES])
    model = forms.CharField(required=False, max_length=200, help_text="A completion's model name, exactly.")
    rater = forms.IntegerField(required=False, min_value=1, max_value=MAX_ID,
                               help_text="A rater's user id: tasks they ranked.")
    metadata = forms.CharField(required=False, max_length=300, help_text="key=value on the prompt's metadata.")
    min_confidence = forms.FloatField(required=False, min_value=0.0, max_value=1.0)
    max_confidence = forms.FloatField(required=False, min_value=0.0, max_value=1.0)
    contested = forms.ChoiceField(required=False, choices=TRISTATE,
                                  help_text="yes: the consensus is below the project's threshold.")
    review = forms.ChoiceField(required=False, choices=[("", "any"), *REVIEW_CHOICES])
    excluded = forms.ChoiceField(required=False, choices=TRISTATE, help_text="Excluded from training.")
    gold = forms.ChoiceField(required=False, choices=TRISTATE)
    ordering = forms.ChoiceField(required=False, choices=[("", "priority")] + [(k, k) for k in ORDERINGS])

    def clean_metadata(self) -> tuple[str, str] | None:
        raw = self.cleaned_data.get("metadata") or ""
        if not raw:
            return None
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError("write key=value, e.g. language=de")
        return key.strip(), value.strip()

    def clean(self):
        data = super().clean()
        for name, value in list(data.items()):
            if isinstance(value, str) and not _storable(value):
                # A JSON body (bulk actions) can carry lone surrogates, which PostgreSQL can neither match nor log.
                self.add_error(name, "contains an invalid unicode escape (lone surrogate)")
        low, high = data.get("min_confidence"), data.get("max_confidence")
        if low is not None and high is not None and low > high:
            self.add_error("max_confidence", f"must be at least min_confidence ({low})")
        return data


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def filters_as_given(cleaned: dict) -> dict:
    """The filters a selection used, as the JSON the bulk-action log keeps: set fields only, as a person types them."""
    given = {name: value for name, value in cleaned.items() if value not in (None, "")}
    if "metadata" in given:
        given["metadata"] = "=".join(given["metadata"])
    return given


class FullTextMatch(Func):
    """``to_tsvector('english', column) @@ websearch_to_tsquery('english', query)``: the indexes' own expression
    (annotation.0015), so PostgreSQL uses them. Django's SearchVector wraps the column in COALESCE, which no index
    matches; written as an expression (not raw SQL) so that the column keeps its alias inside subqueries."""

    output_field = BooleanField()

    def __init__(self, column: str, query: str):
        super().__init__(F(column), Value(query))

    def as_sql(self, compiler, connection, **extra):
        column_sql, column_params = compiler.compile(self.source_expressions[0])
        query_sql, query_params = compiler.compile(self.source_expressions[1])
        return (f"to_tsvector('english'::regconfig, {column_sql}) @@ "
                f"websearch_to_tsquery('english'::regconfig, {query_sql})", [*column_params, *query_params])


def _text_match(query: str) -> Q | FullTextMatch:
    """Rows (prompts or completions) whose ``text`` matches ``query``."""
    if connection.vendor != "postgresql":
        return Q(text__icontains=query)
    return FullTextMatch("text", query)


def search_text(tasks: QuerySet[RankingTask], query: str, project_id: int | None = None) -> QuerySet[RankingTask]:
    """``tasks`` whose prompt or any completion matches ``query`` (narrowed to one project's texts when given)."""
    prompts, completions = Prompt.objects.all(), Completion.objects.all()
    if project_id is not None:
        prompts, completions = prompts.filter(project_id=project_id), completions.filter(prompt__project_id=project_id)
    prompts = prompts.filter(_text_match(query)).values("pk")
    completions = completions.filter(_text_match(query)).values("pk")
    links = RankingTask.completions.through.objects.filter(rankingtask_id=OuterRef("pk"), completion__in=completions)
    return tasks.filter(Q(prompt__in=prompts) | Exists(links))


def _yes(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def browse(project: Project, filters: dict) -> QuerySet[RankingTask]:
    """The project's tasks matching cleaned ``BrowseFilters`` data, in the asked order."""
    tasks = RankingTask.objects.filter(project=project)
    links = RankingTask.completions.through.objects.filter(rankingtask_id=OuterRef("pk"))
    if query := filters.get("q"):
        tasks = search_text(tasks, query, project.pk)
    if status := filters.get("status"):
        tasks = tasks.filter(status=status)
    if source := filters.get("source"):
        if source in RANKING_SOURCES:
            tasks = tasks.filter(Exists(Ranking.objects.filter(task=OuterRef("pk"), source=RANKING_SOURCES[source])))
        elif source == "reask":
            tasks = tasks.filter(origin__isnull=False)
        else:
            tasks = tasks.filter(source=source)
    if model := filters.get("model"):
        tasks = tasks.filter(Exists(links.filter(completion__model_name=model)))
    if rater := filters.get("rater"):
        tasks = tasks.filter(Exists(Ranking.objects.filter(task=OuterRef("pk"), rater_id=rater)))
    if metadata := filters.get("metadata"):
        key, value = metadata
        tasks = tasks.filter(prompt__metadata__contains={key: value})
    if (low := filters.get("min_confidence")) is not None:
        tasks = tasks.filter(consensus__confidence__gte=low)
    if (high := filters.get("max_confidence")) is not None:
        tasks = tasks.filter(consensus__confidence__lte=high)
    if (contested := _yes(filters.get("contested", ""))) is not None:
        below = Q(consensus__confidence__lt=project.consensus_threshold)
        tasks = tasks.filter(below) if contested else tasks.filter(consensus__isnull=False).exclude(below)
    if review := filters.get("review"):
        reviewed = Ranking.objects.filter(task=OuterRef("pk"))
        reviewed = (reviewed.filter(review__isnull=True) if review == "unreviewed"
                    else reviewed.filter(review__decision=review))
        tasks = tasks.filter(Exists(reviewed))
    if (excluded := _yes(filters.get("excluded", ""))) is not None:
        tasks = tasks.filter(excluded_from_training=excluded)
    if (gold := _yes(filters.get("gold", ""))) is not None:
        tasks = tasks.filter(is_gold=gold)
    return tasks.order_by(*ORDERINGS[filters.get("ordering") or "priority"])


def raters_of(project: Project) -> list[tuple[int, str]]:
    """(user id, username) of the project's raters, for the rater filter's choices."""
    return list(Membership.objects.filter(project=project).order_by("user__username")
                .values_list("user_id", "user__username"))
