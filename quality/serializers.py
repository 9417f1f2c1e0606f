"""API representations of the quality figures (their shapes, for the OpenAPI schema) and the pause request."""

from __future__ import annotations

from rest_framework import serializers

from config.api_contract import StrictJSONTypes


class RaterQualitySerializer(serializers.Serializer):
    rater_id = serializers.IntegerField()
    username = serializers.CharField()
    is_judge = serializers.BooleanField(help_text="An AI judge: its agreement is with the people only, and people's "
                                        "figures leave it out.")
    rankings = serializers.IntegerField()
    evidence = serializers.FloatField(help_text="Comparisons the estimate rests on (a K-way ranking counts K−1).")
    reliability = serializers.FloatField(allow_null=True, help_text="Share of the rater's votes explained by the "
                                         "completions (posterior mean), 0–1.")
    reliability_low = serializers.FloatField(allow_null=True)
    reliability_high = serializers.FloatField(allow_null=True)
    tie_propensity = serializers.FloatField(allow_null=True)
    gold_accuracy = serializers.FloatField(allow_null=True)
    gold_tasks = serializers.IntegerField()
    loo_agreement = serializers.FloatField(allow_null=True, help_text="Agreement with the other raters' consensus "
                                           "(people's: a judge's is with the people).")
    loo_pairs = serializers.IntegerField()
    crowd_agreement = serializers.FloatField(allow_null=True, help_text="AI judges only: agreement with the people's "
                                             "plurality where both call a winner.")
    crowd_pairs = serializers.IntegerField()
    crowd_interval = serializers.ListField(child=serializers.FloatField(), allow_null=True,
                                           help_text="95 % Wilson interval of crowd_agreement.")
    position_bias = serializers.FloatField(allow_null=True)
    position_expected = serializers.FloatField(allow_null=True)
    position_p = serializers.FloatField(allow_null=True, help_text="Binomial test against position_expected.")
    median_time_s = serializers.FloatField(allow_null=True)
    speed_z = serializers.FloatField(allow_null=True)
    training_weight = serializers.FloatField()
    flags = serializers.ListField(child=serializers.CharField())
    paused = serializers.BooleanField()
    paused_reason = serializers.CharField(allow_blank=True)


class ContestedTaskSerializer(serializers.Serializer):
    task_id = serializers.IntegerField()
    confidence = serializers.FloatField()
    rankings = serializers.IntegerField()
    target = serializers.IntegerField(allow_null=True, help_text="Rankings the task may have now; null for a gold "
                                      "task while gold injection is on (every rater gets it once).")
    is_gold = serializers.BooleanField()
    status = serializers.CharField()
    order = serializers.ListField(child=serializers.IntegerField())
    pairs = serializers.ListField(child=serializers.ListField(child=serializers.FloatField()),
                                  help_text="[better id, worse id, probability] per pair")


class PauseEventSerializer(serializers.Serializer):
    rater_id = serializers.IntegerField()
    username = serializers.CharField()
    paused = serializers.BooleanField()
    reason = serializers.CharField()
    by = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField()


class ReportSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["never", "queued", "running", "done", "failed"])
    progress = serializers.FloatField()
    stage = serializers.CharField(allow_blank=True)
    summary = serializers.DictField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    message = serializers.CharField(allow_blank=True)


class QualityPageSerializer(serializers.Serializer):
    project_id = serializers.IntegerField()
    settings = serializers.DictField()
    report = ReportSerializer()
    raters = RaterQualitySerializer(many=True)
    contested_tasks = ContestedTaskSerializer(many=True)
    pause_events = PauseEventSerializer(many=True)


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    model = serializers.CharField()
    score = serializers.FloatField(help_text="Bradley–Terry score (log-odds), centred on the models' mean.")
    low = serializers.FloatField()
    high = serializers.FloatField()
    elo = serializers.FloatField()
    elo_low = serializers.FloatField()
    elo_high = serializers.FloatField()
    games = serializers.FloatField()
    wins = serializers.FloatField()
    ties = serializers.FloatField()


class PauseRequestSerializer(StrictJSONTypes, serializers.Serializer):
    reason = serializers.CharField(min_length=1, max_length=300, trim_whitespace=False,
                                   help_text="Why the rater is paused; recorded with the event.")


class UnpauseRequestSerializer(StrictJSONTypes, serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True, default="",
                                   help_text="Why (optional; recorded with the event).")
