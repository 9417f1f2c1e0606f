"""API shapes of the feedback app. A judge is shown with the *name* of its key's variable, never a key."""

from __future__ import annotations

from rest_framework import serializers

from config.api_contract import StrictJSONTypes
from feedback.models import Judge, JudgeRun, judge_errors

API_BACKENDS = [Judge.OPENAI, Judge.REWARD_MODEL]  # a local model is a folder on the workers: staff set it (admin)


class JudgeSerializer(StrictJSONTypes, serializers.ModelSerializer):
    """A judge as managers see and create it: its key's variable *name*, never a key."""

    backend = serializers.ChoiceField(choices=API_BACKENDS, default=Judge.OPENAI,
                                      help_text="openai or reward_model (a local model is set up in the admin).")
    principles = serializers.ListField(child=serializers.CharField(max_length=2000), max_length=50, required=False,
                                       help_text="The constitution, in order; the HHH principles when left out.")

    class Meta:
        model = Judge
        fields = ["id", "name", "enabled", "backend", "base_url", "model", "api_key_env", "temperature", "max_tokens",
                  "timeout_s", "max_retries", "parse_retries", "concurrency", "requests_per_minute", "principles",
                  "template", "cost_per_1k_input", "cost_per_1k_output", "budget", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"template": {"max_length": 20_000}}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["backend"] = instance.backend  # a local judge made in the admin is shown as it is
        return data

    def validate(self, data):
        current = self.instance
        value = {f: data[f] if f in data else getattr(current, f, None)
                 for f in ("backend", "base_url", "model", "template", "principles")}
        if value["principles"] is None:
            value["principles"] = []
        errors = judge_errors(value["backend"] or Judge.OPENAI, value["base_url"] or "", value["model"] or "",
                              value["template"] or "", value["principles"])
        if errors:
            raise serializers.ValidationError(errors)
        return data


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
