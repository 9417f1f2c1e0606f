"""Shapes of the curation API: browsed tasks, bulk-action requests and results, reviews, a rater's history."""

from __future__ import annotations

from rest_framework import serializers

from curation.bulk_actions import MAX_PRIORITY, MAX_TASKS, MIN_PRIORITY
from curation.models import BulkAction
from curation.review import MAX_REASON
from curation.search import BrowseFilters

EXCERPT = 300


class BrowsedCompletionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(source="model_name")
    excerpt = serializers.SerializerMethodField()

    def get_excerpt(self, completion) -> str:
        return completion.text[:EXCERPT]


class BrowsedTaskSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    priority = serializers.IntegerField()
    source = serializers.CharField()
    is_gold = serializers.BooleanField()
    origin_task_id = serializers.IntegerField(source="origin_id", allow_null=True)
    excluded_from_training = serializers.BooleanField()
    rankings = serializers.IntegerField(source="submitted_count")
    consensus_confidence = serializers.SerializerMethodField()
    prompt_id = serializers.IntegerField()
    prompt_excerpt = serializers.SerializerMethodField()
    prompt_metadata = serializers.JSONField(source="prompt.metadata")
    completions = BrowsedCompletionSerializer(many=True)
    created_at = serializers.DateTimeField()

    def get_consensus_confidence(self, task) -> float | None:
        consensus = getattr(task, "consensus", None)
        return round(consensus.confidence, 4) if consensus is not None else None

    def get_prompt_excerpt(self, task) -> str:
        return task.prompt.text[:EXCERPT]


FILTER_FIELDS = list(BrowseFilters.base_fields)


class BulkActionRequestSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=[a for a, _ in BulkAction.ACTIONS])
    task_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False,
                                     max_length=MAX_TASKS, help_text="These tasks (of this project)…")
    filters = serializers.DictField(required=False, help_text=f"…or every task the browser's filters select "
                                    f"({', '.join(FILTER_FIELDS)}); at most {MAX_TASKS:,} tasks.")
    priority = serializers.IntegerField(required=False, min_value=MIN_PRIORITY, max_value=MAX_PRIORITY,
                                        help_text="For priority (required) and reask (optional).")

    def validate(self, data):
        if ("task_ids" in data) == ("filters" in data):
            raise serializers.ValidationError({"task_ids": "give task_ids or filters (exactly one)"})
        unknown = sorted(set(data.get("filters", {})) - set(FILTER_FIELDS))
        if unknown:
            # A misspelt filter would otherwise select every task: refuse it rather than act on the whole project.
            raise serializers.ValidationError({"filters": f"unknown filters {unknown[:10]}; known: {FILTER_FIELDS}"})
        if data["action"] == BulkAction.PRIORITY and "priority" not in data:
            raise serializers.ValidationError({"priority": "required for the priority action"})
        return data


class BulkActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = BulkAction
        fields = ["id", "action", "params", "tasks", "changed", "created_at"]


class ReviewRequestSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["accepted", "rejected"])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=MAX_REASON)


class ReviewCompletionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    model = serializers.CharField()
    text = serializers.CharField()
    consensus_score = serializers.FloatField(allow_null=True)
    model_score = serializers.FloatField(allow_null=True)


class ReviewStateSerializer(serializers.Serializer):
    decision = serializers.CharField()
    reason = serializers.CharField()
    reviewer = serializers.CharField(source="reviewer.username", allow_null=True, default=None)
    reviewed_at = serializers.DateTimeField()


class RankingReviewSerializer(serializers.Serializer):
    """One ranking next to the consensus and the reward model."""

    ranking_id = serializers.IntegerField(source="ranking.pk")
    task_id = serializers.IntegerField(source="task.pk")
    rater_id = serializers.IntegerField(source="ranking.rater_id")
    source = serializers.CharField(source="ranking.source")
    order = serializers.JSONField(source="ranking.order")
    rationale = serializers.CharField(source="ranking.rationale")
    flags = serializers.JSONField(source="ranking.flags")
    time_spent_ms = serializers.IntegerField(source="ranking.time_spent_ms")
    prompt = serializers.CharField(source="task.prompt.text")
    completions = ReviewCompletionSerializer(many=True)
    consensus_order = serializers.JSONField(source="consensus.order", allow_null=True, default=None)
    consensus_confidence = serializers.FloatField(source="consensus.confidence", allow_null=True, default=None)
    consensus_agreement = serializers.FloatField(allow_null=True)
    model_version_id = serializers.IntegerField(source="verdict.version_id", allow_null=True, default=None)
    model_note = serializers.CharField(source="verdict.note", default="")
    model_agreement = serializers.FloatField(allow_null=True, default=None)
    gold_accuracy = serializers.FloatField(allow_null=True)
    review = ReviewStateSerializer(allow_null=True)


class HistoryRowSerializer(serializers.Serializer):
    ranking_id = serializers.IntegerField(source="ranking.pk")
    task_id = serializers.IntegerField(source="ranking.task_id")
    submitted_at = serializers.DateTimeField(source="ranking.submitted_at")
    time_spent_ms = serializers.IntegerField(source="ranking.time_spent_ms")
    flags = serializers.JSONField(source="ranking.flags")
    consensus_agreement = serializers.FloatField(allow_null=True)
    pairs = serializers.IntegerField()
    gold_accuracy = serializers.FloatField(allow_null=True)
    decision = serializers.CharField(source="review.decision", allow_null=True, default=None)
    reason = serializers.CharField(source="review.reason", allow_null=True, default=None)


class RaterHistorySerializer(serializers.Serializer):
    rater_id = serializers.IntegerField()
    username = serializers.CharField()
    reliability = serializers.FloatField(source="quality.reliability", allow_null=True, default=None)
    reliability_low = serializers.FloatField(source="quality.reliability_low", allow_null=True, default=None)
    reliability_high = serializers.FloatField(source="quality.reliability_high", allow_null=True, default=None)
    training_weight = serializers.FloatField(source="quality.training_weight", allow_null=True, default=None)
    quality_flags = serializers.JSONField(source="quality.flags", default=list)
    counts = serializers.DictField(child=serializers.IntegerField())
    rankings = HistoryRowSerializer(source="rows", many=True)
