"""POST /api/projects/{id}/score/: rewards from the project's active reward model (members only; staff see all)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.models import Membership, Project
from rewardmodel import registry, scoring

MAX_ITEMS = 256


class ScoreItem(serializers.Serializer):
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)
    completion = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=100_000)


class ScoreRequest(serializers.Serializer):
    prompt = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=100_000)
    completions = serializers.ListField(child=serializers.CharField(allow_blank=True, trim_whitespace=False,
                                                                    max_length=100_000),
                                        required=False, max_length=MAX_ITEMS)
    items = ScoreItem(many=True, required=False, max_length=MAX_ITEMS)

    def validate(self, data):
        has_pair = "prompt" in data and "completions" in data
        if has_pair == ("items" in data):
            raise serializers.ValidationError('send either {"prompt", "completions"} or {"items"}')
        if has_pair:
            data["pairs"] = [(data["prompt"], c) for c in data["completions"]]
        else:
            data["pairs"] = [(i["prompt"], i["completion"]) for i in data["items"]]
        if not data["pairs"]:
            raise serializers.ValidationError("nothing to score")
        return data


class ScoreResponse(serializers.Serializer):
    version = serializers.IntegerField()
    version_id = serializers.IntegerField()
    scores = serializers.ListField(child=serializers.FloatField())


class ScoreView(APIView):
    serializer_class = ScoreRequest

    @extend_schema(request=ScoreRequest, responses=ScoreResponse)
    def post(self, request, project_id: int):
        project = get_object_or_404(Project, pk=project_id)
        if not request.user.is_staff and not Membership.objects.filter(project=project, user=request.user).exists():
            return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
        body = ScoreRequest(data=request.data)
        body.is_valid(raise_exception=True)
        version = registry.active_version(project)
        if version is None:
            return Response({"detail": "This project has no active reward model."}, status=status.HTTP_404_NOT_FOUND)
        pairs = body.validated_data["pairs"]
        rewards = scoring.score(version, [p for p, _ in pairs], [c for _, c in pairs])
        return Response({"version": version.number, "version_id": version.pk,
                         "scores": [float(r) for r in rewards]})
