"""Reward-model API for project members (staff see all; others get 404). Scoring is serving's (serving.api).

GET  /api/projects/{id}/reward-models/ every version with its status, key held-out metrics and the promotion gate's
                                      decision and reason (why a version was promoted, rejected or not eligible)
GET  /api/projects/{id}/training-runs/ trainings, newest first: status, progress, deliveries and the worker that ran
                                      the latest one, and the held-out curve recorded while training
GET  /api/projects/{id}/training-runs/{run_id}/ one training (what a progress panel polls)
POST /api/projects/{id}/training-runs/ train now (managers): 202 and the queued run; 409 while one is queued/running
GET/PUT/PATCH /api/projects/{id}/retrain-policy/  when beat retrains the project, and with what (managers)
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from annotation.api import Conflict
from annotation.permissions import MANAGE, SEE, is_admin, project_for
from annotation.serializers import DetailSerializer
from config.api_contract import StrictJSONTypes
from rewardmodel.models import RetrainPolicy, RewardModelVersion, TrainingRun

METRIC_KEYS = ("heldout_accuracy", "active_heldout_accuracy", "heldout_pairs", "heldout_rankings", "train_rankings",
               "train_pairs", "ece_before", "ece_after", "temperature", "temperature_skipped", "flip_rate_vs_parent",
               "eval_sets", "train_truncated", "train_completions_cut", "truncation_keeps", "resolved", "processes",
               "peak_memory_mib", "resumed_from_step")


class VersionSerializer(serializers.ModelSerializer):
    metrics = serializers.SerializerMethodField()
    warnings = serializers.SerializerMethodField(help_text="Plain-language warnings on the held-out metrics "
                                                 "(length bias, below chance).")
    gate_reason = serializers.CharField(read_only=True)

    class Meta:
        model = RewardModelVersion
        fields = ["id", "number", "status", "is_active", "base_model", "gate_reason", "gate", "metrics", "warnings",
                  "parent", "created_at", "promoted_at"]
        read_only_fields = fields

    def get_metrics(self, obj) -> dict:
        return {k: obj.metrics.get(k) for k in METRIC_KEYS}

    def get_warnings(self, obj) -> list[str]:
        from rewardmodel.metrics import warnings_for

        return warnings_for(obj.metrics)


class VersionList(generics.ListAPIView):
    """A project's reward-model versions, newest first, with the promotion gate's reason for each."""

    serializer_class = VersionSerializer
    permission_classes = [IsAuthenticated]  # and annotation.permissions.project_for in get_queryset

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["project_id"], SEE)
        return RewardModelVersion.objects.filter(project=project).order_by("-number")


class TrainingRunSerializer(serializers.ModelSerializer):
    version_number = serializers.IntegerField(source="version.number", read_only=True, allow_null=True, default=None)

    class Meta:
        model = TrainingRun
        fields = ["id", "status", "trigger", "progress", "step", "total", "attempts", "worker", "message", "curve",
                  "created_at", "started_at", "finished_at", "version", "version_number"]
        read_only_fields = fields
        extra_kwargs = {"curve": {"help_text": "[step, mean train loss since the previous point, held-out accuracy "
                                               "(null without a held-out set)] at up to 20 points while training"}}


class StartTrainingSerializer(StrictJSONTypes, serializers.Serializer):
    hyperparameters = serializers.DictField(required=False, help_text="TrainConfig fields for this run only, on top "
                                            "of the retrain policy's (the same bounds and staff-only options).")


class TrainingRunList(generics.ListAPIView):
    """A project's trainings, newest first: a long job's progress, and which worker ran it. POST: train now."""

    serializer_class = TrainingRunSerializer
    permission_classes = [IsAuthenticated]  # and annotation.permissions.project_for in get_queryset

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["project_id"], SEE)
        return TrainingRun.objects.filter(project=project).select_related("version").order_by("-created_at", "-id")

    @extend_schema(request=StartTrainingSerializer, responses={202: TrainingRunSerializer, 409: DetailSerializer},
                   summary="Train now (managers): queue a training on the gpu workers; follow it in this list")
    def post(self, request, project_id: int):
        from rewardmodel.launch import TrainingBusy, train_now

        project = project_for(request.user, project_id, MANAGE)
        body = StartTrainingSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        overrides = body.validated_data.get("hyperparameters") or {}
        policy = RetrainPolicy.objects.filter(project=project).first()
        checker = RetrainPolicySerializer(instance=policy, context={"request": request})
        try:  # the retrain policy's own rules: bounds, combinations, staff-only options
            checker.validate_hyperparameters({**(policy.hyperparameters if policy else {}), **overrides})
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"hyperparameters": exc.detail}) from None
        try:
            run = train_now(project, overrides=overrides or None)
        except TrainingBusy as exc:
            raise Conflict(str(exc)) from None
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetail(generics.RetrieveAPIView):
    """One training of a project: status, progress 0–1, step/total, message and the held-out curve so far."""

    serializer_class = TrainingRunSerializer
    permission_classes = [IsAuthenticated]  # and annotation.permissions.project_for in get_object

    def get_object(self):
        project = project_for(self.request.user, self.kwargs["project_id"], SEE)
        return get_object_or_404(TrainingRun.objects.select_related("version"), project=project,
                                 pk=self.kwargs["run_id"])


class RetrainPolicySerializer(StrictJSONTypes, serializers.ModelSerializer):
    hyperparameters = serializers.DictField(required=False, help_text='TrainConfig fields, e.g. {"epochs": 2}.')

    class Meta:
        model = RetrainPolicy
        fields = ["enabled", "min_new_rankings", "training_source", "judge_rankings", "hyperparameters",
                  "min_train_rankings", "min_heldout_pairs", "promotion_margin", "backbone_path"]
        # A path on the workers' disks: set by staff in the admin, never through the API.
        read_only_fields = ["backbone_path"]

    def validate_hyperparameters(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object of training options, e.g. {\"epochs\": 2}")
        from rewardmodel.trainer import STAFF_ONLY, TrainConfig  # torch: loaded on use, not when the URLconf loads

        request = self.context.get("request")
        if not is_admin(getattr(request, "user", None)):
            # Unchanged values pass: a manager may save a policy whose staff-set options they did not touch.
            stored = self.instance.hyperparameters if self.instance is not None else {}
            chosen = sorted(k for k in STAFF_ONLY if k in value and value[k] != stored.get(k))
            if chosen:
                raise serializers.ValidationError(
                    f"{', '.join(chosen)}: set by staff only (they choose the workers' hardware or run code there)")
        try:
            TrainConfig.from_dict(value)
        except (TypeError, ValueError) as exc:
            raise serializers.ValidationError(str(exc)) from None
        return value


class RetrainPolicyView(generics.RetrieveUpdateAPIView):
    """The project's retrain policy (created with the defaults on first use): beat's retrain check trains the project
    once it has min_new_rankings new rankings; hyperparameters are TrainConfig fields."""

    serializer_class = RetrainPolicySerializer
    permission_classes = [IsAuthenticated]  # and annotation.permissions.project_for(MANAGE) in get_object

    def get_object(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        policy, _ = RetrainPolicy.objects.get_or_create(project=project)
        return policy
