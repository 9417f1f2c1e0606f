"""REST API for managers: list a project's rounds, start one on demand (queued on Celery), read one."""

from __future__ import annotations

from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework import generics, serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from active_learning.models import SelectedItem, SelectionRound
from active_learning.pipeline import RoundError, create_round
from active_learning.selection import STRATEGIES
from annotation.models import Membership, Project


class SelectedItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = SelectedItem
        fields = ["rank", "action", "task", "completion_a", "completion_b", "scores"]


class RoundSerializer(serializers.ModelSerializer):
    selected = serializers.IntegerField(source="items.count", read_only=True)

    class Meta:
        model = SelectionRound
        fields = [
            "id", "project", "strategy", "trigger", "status", "model_version",
            "feature_source", "batch_size", "params", "summary", "error", "selected", "created_at", "finished_at",
        ]
        read_only_fields = fields


class RoundDetailSerializer(RoundSerializer):
    items = SelectedItemSerializer(many=True, read_only=True)

    class Meta(RoundSerializer.Meta):
        fields = [*RoundSerializer.Meta.fields, "items"]


class StartRoundSerializer(serializers.Serializer):
    strategy = serializers.ChoiceField(choices=STRATEGIES, required=False)
    batch_size = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    seed = serializers.IntegerField(min_value=0, required=False)


def managed_project(request, project_id: int) -> Project:
    project = get_object_or_404(Project, pk=project_id)
    user = request.user
    role = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    if not user.is_superuser and role is None:
        raise Http404  # as elsewhere in the API: outsiders cannot tell which projects exist
    if not (user.is_superuser or role == Membership.MANAGER):
        raise PermissionDenied("only the project's managers can see or start active-learning rounds")
    return project


class RoundListCreate(generics.ListAPIView):
    serializer_class = RoundSerializer

    def get_queryset(self):
        project = managed_project(self.request, self.kwargs["project_id"])
        return SelectionRound.objects.filter(project=project).order_by("-created_at", "-id")

    def post(self, request, project_id: int):
        from active_learning.tasks import run_round

        project = managed_project(request, project_id)
        body = StartRoundSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            rnd, _ = create_round(project, trigger=SelectionRound.ON_DEMAND, **body.validated_data)
        except RoundError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        transaction.on_commit(lambda: run_round.delay(project.pk, round_id=rnd.pk))
        return Response(RoundSerializer(rnd).data, status=status.HTTP_202_ACCEPTED)


class RoundDetail(generics.RetrieveAPIView):
    serializer_class = RoundDetailSerializer

    def get_object(self):
        project = managed_project(self.request, self.kwargs["project_id"])
        return get_object_or_404(SelectionRound, project=project, pk=self.kwargs["round_id"])
