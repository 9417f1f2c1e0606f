"""API representations. Model outputs travel as plain JSON strings; the JSON renderer escapes them."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.guidelines import MAX_PREVIEW_CHARS
from annotation.models import (
    Assignment,
    Completion,
    GuidelinesRevision,
    ImportRun,
    Membership,
    Project,
    Ranking,
    RankingTask,
    overlap_bounds_errors,
    validate_criteria,
)
from config.api_contract import StrictJSONTypes


@extend_schema_field({"type": "array", "items": {"type": "string", "minLength": 1}})
class CriteriaField(serializers.JSONField):
    """Names of the criteria raters may rank separately (e.g. helpful, harmless, honest)."""


class ProjectSerializer(StrictJSONTypes, serializers.ModelSerializer):
    """A project with progress counts (annotated by the viewset) and the caller's role."""

    tasks_total = serializers.IntegerField(read_only=True, default=0)
    tasks_complete = serializers.IntegerField(read_only=True, default=0)
    rankings_count = serializers.IntegerField(read_only=True, default=0)
    my_role = serializers.CharField(read_only=True, allow_null=True, default=None)
    criteria = CriteriaField(required=False)

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "guidelines",
            "k",
            "overlap",
            "criteria",
            "lease_minutes",
            "reask_share",
            "eval_share",
            "edit_window_s",
            "max_prompt_chars",
            "max_completion_chars",
            "max_unbroken_run",
            "min_overlap",
            "max_overlap",
            "consensus_threshold",
            "gold_rate",
            "reliability_threshold",
            "judge_trust",
            "min_rater_evidence",
            "pause_unreliable",
            "created_at",
            "tasks_total",
            "tasks_complete",
            "rankings_count",
            "my_role",
        ]
        read_only_fields = ["id", "created_at"]
        # A taken name is a conflict with what exists (409, from the view), not malformed input (400).
        extra_kwargs = {
            # Kept as typed (no trimming) so that the schema's rule, at least one character, is the whole rule.
            "name": {"validators": [], "min_length": 1, "trim_whitespace": False},
            "edit_window_s": {"max_value": 2**31 - 1},
            "max_prompt_chars": {"max_value": 2**31 - 1},
            "max_completion_chars": {"max_value": 2**31 - 1},
            "max_unbroken_run": {"max_value": 2**31 - 1},
        }

    def validate(self, data):
        data = super().validate(data)
        current = self.instance
        bounds = {f: data[f] if f in data else getattr(current, f, None) for f in ("min_overlap", "max_overlap")}
        errors = overlap_bounds_errors(bounds["min_overlap"], bounds["max_overlap"])
        if errors:
            raise serializers.ValidationError(errors)
        return data

    def validate_criteria(self, value) -> list[str]:
        try:
            validate_criteria(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value


class TaskSerializer(StrictJSONTypes, serializers.ModelSerializer):
    """A ranking task as managers see it; only `priority` can be changed."""

    prompt_external_id = serializers.CharField(source="prompt.external_id", read_only=True)

    class Meta:
        model = RankingTask
        fields = [
            "id",
            "prompt",
            "prompt_external_id",
            "status",
            "priority",
            "submitted_count",
            "is_gold",
            "source",
            "origin",
            "created_at",
        ]
        read_only_fields = [f for f in fields if f != "priority"]


class BlindCompletionSerializer(serializers.ModelSerializer):
    """A completion as a rater sees it: no model name, so nobody ranks by brand."""

    class Meta:
        model = Completion
        fields = ["id", "text"]


class AssignmentSerializer(serializers.ModelSerializer):
    """A leased task: prompt and completions in this rater's display order."""

    task_id = serializers.IntegerField(read_only=True)
    project_id = serializers.IntegerField(source="task.project_id", read_only=True)
    prompt = serializers.CharField(source="task.prompt.text", read_only=True)
    completions = serializers.SerializerMethodField()
    criteria = serializers.ListField(source="task.project.criteria", child=serializers.CharField(), read_only=True)
    guidelines = serializers.CharField(source="task.project.guidelines", read_only=True)

    class Meta:
        model = Assignment
        fields = [
            "id",
            "task_id",
            "project_id",
            "status",
            "leased_at",
            "expires_at",
            "prompt",
            "completions",
            "criteria",
            "guidelines",
        ]
        read_only_fields = fields

    @staticmethod
    def _completions(assignment: Assignment) -> list[Completion]:
        # A fresh lease carries its completions (annotation.assignment fetched them to shuffle): no second query.
        shown = getattr(assignment, "shown_completions", None)
        if shown is not None:
            return shown
        by_id = {c.id: c for c in assignment.task.completions.only("id", "text")}
        shown = [by_id[i] for i in assignment.display_order if i in by_id]
        # Any completion missing from display_order (should not happen) still appears, last.
        listed = set(assignment.display_order)
        shown += [c for cid, c in sorted(by_id.items()) if cid not in listed]
        return shown

    @extend_schema_field(BlindCompletionSerializer(many=True))
    def get_completions(self, assignment: Assignment) -> list[dict]:
        return BlindCompletionSerializer(self._completions(assignment), many=True).data


TIE_GROUPS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {"oneOf": [{"type": "integer"}, {"type": "array", "minItems": 1, "items": {"type": "integer"}}]},
}


@extend_schema_field(TIE_GROUPS_SCHEMA)
class TieGroupsField(serializers.JSONField):
    """Tie groups of completion ids, best first; a bare id is a group of one. Checked against the task on submit."""


@extend_schema_field({"type": "object", "additionalProperties": TIE_GROUPS_SCHEMA})
class CriteriaOrdersField(serializers.JSONField):
    """criterion → tie groups."""


class SubmitSerializer(StrictJSONTypes, serializers.Serializer):
    """Shape checks only; `annotation.submission` validates the order against the task."""

    order = TieGroupsField(help_text="Tie groups of completion ids, best first: [[12], [10, 13], [11]].")
    criteria_orders = CriteriaOrdersField(required=False, default=dict, help_text="criterion → tie groups")
    rationale = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    flags = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    time_spent_ms = serializers.IntegerField(required=False, default=0, min_value=0)


class SkipSerializer(StrictJSONTypes, serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class RankingSerializer(serializers.ModelSerializer):
    project_id = serializers.IntegerField(source="task.project_id", read_only=True)
    assignment_id = serializers.IntegerField(read_only=True)
    task_id = serializers.IntegerField(read_only=True)
    rater_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Ranking
        fields = [
            "id",
            "assignment_id",
            "task_id",
            "project_id",
            "rater_id",
            "order",
            "criteria_orders",
            "rationale",
            "flags",
            "time_spent_ms",
            "display_order",
            "submitted_at",
            "revision",
            "revised_at",
        ]
        read_only_fields = fields


class ImportSummarySerializer(serializers.Serializer):
    import_id = serializers.IntegerField(help_text="The import's record: GET /api/projects/{id}/imports/")
    prompts = serializers.IntegerField()
    completions = serializers.IntegerField()
    tasks = serializers.IntegerField()
    gold_tasks = serializers.IntegerField()


class ImportLineErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="1-based line number (0: the file as a whole)")
    message = serializers.CharField()


class ImportFailedSerializer(serializers.Serializer):
    import_id = serializers.IntegerField(required=False)
    detail = serializers.CharField()
    error_count = serializers.IntegerField()
    errors = ImportLineErrorSerializer(many=True)


class ErrorsSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.CharField())


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


class MemberSerializer(StrictJSONTypes, serializers.Serializer):
    """A member of a project: add one with POST {"username", "role"} (an existing role is changed)."""

    user_id = serializers.IntegerField(read_only=True, help_text="What …/raters/{user_id}/pause/ takes.")
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.ROLES, default=Membership.RATER)
    paused = serializers.BooleanField(read_only=True)


class ImportRunSerializer(serializers.ModelSerializer):
    """An import as it runs (phase, rows done of the total) and once done (summary or first errors)."""

    errors = serializers.ListField(child=serializers.ListField(), read_only=True)

    class Meta:
        model = ImportRun
        fields = ["id", "project", "created_by", "source", "size_bytes", "status", "phase", "rows_done", "rows_total",
                  "summary", "error_count", "errors", "attempts", "started_at", "finished_at"]
        read_only_fields = fields


class ImportQueuedSerializer(serializers.Serializer):
    """An import too big for one request, queued for a worker: follow it at GET …/imports/."""

    import_id = serializers.IntegerField()
    status = serializers.CharField()
    rows_total = serializers.IntegerField(allow_null=True, help_text="Lines in the file, when the request saw them all")
    detail = serializers.CharField()


class TooLargeSerializer(serializers.Serializer):
    """A file over one of the import bounds (SECURITY.md): nothing was read past it, nothing imported."""

    import_id = serializers.IntegerField(allow_null=True)
    detail = serializers.CharField()
    setting = serializers.CharField(help_text="The setting that holds the bound")


class GuidelinesRevisionSerializer(serializers.ModelSerializer):
    """One version of a project's guidelines (Markdown as written; render it sanitised, as the rate page does)."""

    edited_by = serializers.CharField(source="edited_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = GuidelinesRevision
        fields = ["number", "text", "edited_by", "created_at", "note"]
        read_only_fields = fields


class GuidelinesPreviewSerializer(StrictJSONTypes, serializers.Serializer):
    """A draft of the guidelines to render as raters would see it; nothing is saved."""

    text = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=MAX_PREVIEW_CHARS,
                                 help_text="Markdown.")


class GuidelinesPreviewResultSerializer(serializers.Serializer):
    html = serializers.CharField(help_text="The draft rendered and sanitised exactly as the rate page shows it.")
