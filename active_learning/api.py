"""REST API for managers: list a project's rounds, start one on demand (queued on Celery; 409 while one is queued or
running), read one (status, progress 0–1 and stage while it runs: poll it); the latest audit of its routing (what
policy auto concluded from the evaluation stream)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from active_learning.launch import RoundBusy, queue_round
from active_learning.models import RoutingAudit, SelectedItem, SelectionRound
from active_learning.pipeline import RoundError
from active_learning.selection import POLICIES
from annotation.api import Conflict
from annotation.permissions import MANAGE, project_for
from annotation.serializers import DetailSerializer
from config.api_contract import StrictJSONTypes


class SelectedItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = SelectedItem
        fields = ["rank", "action", "task", "completion_a", "completion_b", "scores"]


class RoundSerializer(serializers.ModelSerializer):
    selected = serializers.IntegerField(source="items.count", read_only=True)

    class Meta:
        model = SelectionRound
        fields = [
            "id", "project", "strategy", "trigger", "status", "progress", "stage", "model_version",
            "feature_source", "batch_size", "params", "summary", "error", "selected", "created_at", "finished_at",
        ]
        read_only_fields = fields


class RoundDetailSerializer(RoundSerializer):
    items = SelectedItemSerializer(many=True, read_only=True)

    class Meta(RoundSerializer.Meta):
        fields = [*RoundSerializer.Meta.fields, "items"]


class StartRoundSerializer(StrictJSONTypes, serializers.Serializer):
    strategy = serializers.ChoiceField(choices=POLICIES, required=False)
    batch_size = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    seed = serializers.IntegerField(min_value=0, required=False)


class RoundListCreate(generics.ListAPIView):
    serializer_class = RoundSerializer

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        return SelectionRound.objects.filter(project=project).order_by("-created_at", "-id")

    @extend_schema(request=StartRoundSerializer, responses={202: RoundSerializer, 409: DetailSerializer},
                   summary="Run a selection round now (managers): queued on the worker, answers at once with status "
                           "'queued'; 409 while another round of the project is queued or running; poll the round")
    def post(self, request, project_id: int):
        project = project_for(request.user, project_id, MANAGE)
        body = StartRoundSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            rnd = queue_round(project, **body.validated_data)
        except RoundError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        except RoundBusy as exc:
            raise Conflict(str(exc)) from None
        return Response(RoundSerializer(rnd).data, status=status.HTTP_202_ACCEPTED)


class RoundDetail(generics.RetrieveAPIView):
    serializer_class = RoundDetailSerializer

    def get_object(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        return get_object_or_404(SelectionRound, project=project, pk=self.kwargs["round_id"])


class AuditSerializer(serializers.ModelSerializer):
    class Meta:
        model = RoutingAudit
        fields = ["id", "project", "model_version", "eval_pairs", "chosen", "reason", "results", "seconds",
                  "created_at"]
        read_only_fields = fields


class LatestAudit(generics.RetrieveAPIView):
    """The project's latest routing audit: per strategy, AUC gain and budget share against random with 95 %
    intervals on its evaluation stream, and the strategy policy auto uses (blank: random among fresh tasks)."""

    serializer_class = AuditSerializer

    def get_object(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        audit = RoutingAudit.objects.filter(project=project).first()
        if audit is None:
            from rest_framework.exceptions import NotFound

            raise NotFound("No audit yet: policy auto audits once the evaluation stream has enough labelled pairs "
                           "(ActiveLearningPolicy.audit_min_pairs) and a version passes the gate.")
        return audit
