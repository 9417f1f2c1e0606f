"""REST API of the feedback app (managers of the project, by the one access rule):

GET  /api/projects/{id}/judges/                   the project's judges (the key's variable name, never a key)
POST /api/projects/{id}/judges/                   add a judge (an OpenAI-compatible endpoint or the reward model)
POST /api/projects/{id}/judges/{judge}/runs/      start a judge run on the workers (202, with its progress row)
GET  /api/projects/{id}/judge-runs/               the runs, newest first, with progress and summaries
"""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import Conflict
from annotation.permissions import MANAGE, project_for
from annotation.serializers import DetailSerializer
from feedback.models import Judge, JudgeRun
from feedback.serializers import JudgeRunSerializer, JudgeSerializer, StartJudgeRunSerializer


@extend_schema_view(get=extend_schema(summary="The project's judges (managers)"),
                    post=extend_schema(summary="Add a judge (managers); 409 when the name is taken",
                                       responses={201: JudgeSerializer, 409: DetailSerializer}))
class JudgeList(generics.ListCreateAPIView):
    """The project's judges (managers). The key is never sent: the judge names the workers' environment variable."""

    serializer_class = JudgeSerializer

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        return Judge.objects.filter(project=project).order_by("name")

    def create(self, request, *args, **kwargs):
        self.project = project_for(request.user, self.kwargs["project_id"], MANAGE)  # access first, then the body
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        project = self.project
        if Judge.objects.filter(project=project, name=serializer.validated_data["name"]).exists():
            raise Conflict(f"project {project.name!r} already has a judge named "
                           f"{serializer.validated_data['name']!r}")
        serializer.save(project=project)


class JudgeRunList(generics.ListAPIView):
    """The project's judge runs, newest first (managers)."""

    serializer_class = JudgeRunSerializer

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        return JudgeRun.objects.filter(judge__project=project).select_related("judge")


class StartJudgeRun(APIView):
    serializer_class = StartJudgeRunSerializer

    @extend_schema(request=StartJudgeRunSerializer, responses={202: JudgeRunSerializer},
                   summary="Start a judge run on the workers (answers at once, status 'queued')")
    def post(self, request, project_id: int, judge_id: int):
        from feedback.tasks import run_judge_job

        project = project_for(request.user, project_id, MANAGE)
        judge = get_object_or_404(Judge, project=project, pk=judge_id)
        body = StartJudgeRunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if not judge.enabled:
            return Response({"detail": f"judge {judge.name!r} is disabled"}, status=status.HTTP_400_BAD_REQUEST)
        run = JudgeRun.objects.create(judge=judge, limit=body.validated_data.get("limit"), created_by=request.user)
        transaction.on_commit(lambda: run_judge_job.apply_async((run.pk,), queue=judge.queue))
        return Response(JudgeRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)
