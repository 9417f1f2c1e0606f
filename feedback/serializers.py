"""API shapes of the feedback app. A judge is shown with the *name* of its key's variable, never a key."""

from __future__ import annotations

from rest_framework import serializers

from config.api_contract import StrictJSONTypes
from feedback.models import Judge, JudgeRun


class JudgeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Judge
        fields = ["id", "name", "enabled", "backend", "base_url", "model", "api_key_env", "temperature", "max_tokens",
                  "principles", "cost_per_1k_input", "cost_per_1k_output", "budget", "created_at"]
        read_only_fields = fields


class JudgeRunSerializer(serializers.ModelSerializer):
    judge = serializers.CharField(source="judge.name", read_only=True)
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = JudgeRun
        fields = ["id", "judge", "status", "limit", "tasks_done", "tasks_total", "progress", "summary", "message",
                  "attempts", "created_at", "started_at", "finished_at"]
        read_only_fields = fields


class StartJudgeRunSerializer(StrictJSONTypes, serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False,
                                     help_text="Tasks at most in this run; every pending one when left out.")
