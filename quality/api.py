"""REST API of the quality app: the quality page's figures, a refresh, pausing raters, the model leaderboard and the
consensus export. Every view is for the project's managers (``annotation.permissions.project_for(…, MANAGE)``):
rater statistics are personal, and the leaderboard names the models that raters rank blind."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import NDJSON, Conflict, NDJSONRenderer, jsonl_response
from annotation.models import Membership
from annotation.permissions import MANAGE, STAFF_ACCOUNT, may_act_on_member, project_for
from annotation.serializers import DetailSerializer
from config.spreadsheet import csv_text
from quality import figures, pausing
from quality.exporter import iter_consensus, iter_consensus_pairs
from quality.launch import RefreshBusy, queue_refresh
from quality.leaderboard import stored_leaderboard
from quality.serializers import (
    LeaderboardRowSerializer,
    PauseRequestSerializer,
    QualityPageSerializer,
    ReportSerializer,
    UnpauseRequestSerializer,
)

CONSENSUS_KINDS = ("tasks", "trl")
LEADERBOARD_FIELDS = ["rank", "model", "score", "low", "high", "elo", "elo_low", "elo_high", "games", "wins", "ties"]


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, list):
            return csv_text(LEADERBOARD_FIELDS, data).encode()
        # An error body: its fields and messages, as two columns.
        return csv_text(["field", "message"], [[key, str(value)] for key, value in (data or {}).items()]).encode()


class QualityView(APIView):
    """Rater table (reliability with 95 % interval, gold, leave-one-out agreement, position bias, speed, flags),
    contested tasks, consensus confidence histogram (in the report's summary) and the pause log."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)

    @extend_schema(summary="A project's rater quality and consensus figures (managers)",
                   responses={200: QualityPageSerializer})
    def get(self, request, project_id: int):
        project = project_for(request.user, project_id, MANAGE)
        return Response(figures.quality_page(project))


class RefreshView(APIView):
    """A quality refresh: POST runs one now, GET follows it (status, progress 0–1 and stage: the page's progress
    panel polls this rather than the whole quality page)."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)

    @extend_schema(summary="The state of the project's latest quality refresh: status (never, queued, running, done, "
                           "failed), progress 0–1 and stage (managers)", responses={200: ReportSerializer})
    def get(self, request, project_id: int):
        project = project_for(request.user, project_id, MANAGE)
        return Response(figures.report_dict(project))

    @extend_schema(summary="Refresh quality now (managers): 202 with the report, status 'queued'; 409 while a refresh "
                           "of the project is queued or running; poll GET …/quality/refresh/",
                   request=None, responses={202: ReportSerializer, 409: DetailSerializer})
    def post(self, request, project_id: int):
        project = project_for(request.user, project_id, MANAGE)
        try:
            queue_refresh(project)
        except RefreshBusy as exc:
            raise Conflict(str(exc)) from None
        return Response(figures.report_dict(project), status=status.HTTP_202_ACCEPTED)


class PauseView(APIView):
    """Pause a rater from assignment in this project; recorded with who and why."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)
    serializer_class = PauseRequestSerializer
    pause = True

    @extend_schema(summary="Pause a rater in this project (managers)", responses={200: OpenApiTypes.OBJECT})
    def post(self, request, project_id: int, rater_id: int):
        project = project_for(request.user, project_id, MANAGE)
        body = self.serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        member = Membership.objects.filter(project=project, user_id=rater_id).select_related("user").first()
        if member is None:
            raise NotFound("No such rater in this project.")
        if not may_act_on_member(request.user, member.user):
            raise PermissionDenied(STAFF_ACCOUNT)
        act = pausing.pause if self.pause else pausing.unpause
        changed = act(project, rater_id, body.validated_data["reason"], by=request.user)
        return Response({"rater_id": rater_id, "paused": self.pause, "changed": changed})


class UnpauseView(PauseView):
    """Un-pause a rater in this project; recorded with who and why."""

    serializer_class = UnpauseRequestSerializer
    pause = False

    @extend_schema(summary="Un-pause a rater in this project (managers)", responses={200: OpenApiTypes.OBJECT})
    def post(self, request, project_id: int, rater_id: int):
        return super().post(request, project_id, rater_id)


class LeaderboardView(APIView):
    """Bradley–Terry scores of the models behind the completions, with bootstrap 95 % intervals (as the public
    chatbot arenas compute them); ``?format=csv`` for a spreadsheet."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)
    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(summary="Model leaderboard of a project, as its last quality refresh computed it from the latest "
                           "20,000 rankings (managers); JSON or ?format=csv; 409 with the reason when there is none",
                   parameters=[OpenApiParameter("format", str, enum=["json", "csv"], required=False)],
                   responses={200: LeaderboardRowSerializer(many=True),
                              (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), 409: DetailSerializer})
    def get(self, request, project_id: int):
        project = project_for(request.user, project_id, MANAGE)
        rows, reason = stored_leaderboard(project)
        if not rows:  # the project's state, not the request, is why: a conflict, with the reason
            raise Conflict(reason)
        return Response(rows)


class ConsensusExportView(APIView):
    """The per-task consensus as streamed JSONL: one row per task, or TRL pairs the consensus is sure of."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)
    renderer_classes = [JSONRenderer, NDJSONRenderer]

    @extend_schema(summary="Export the per-task consensus as JSONL (managers)",
                   parameters=[OpenApiParameter("kind", str, enum=list(CONSENSUS_KINDS), default="tasks"),
                               OpenApiParameter("min_probability", {"type": "number", "minimum": 0.5, "maximum": 1},
                                                required=False,
                                                description="trl only: default the project's consensus_threshold")],
                   responses={(200, NDJSON): OpenApiResponse(OpenApiTypes.STR, description="One JSON object a line")})
    def get(self, request, project_id: int):
        project = project_for(request.user, project_id, MANAGE)
        kind = request.query_params.get("kind", "tasks")
        if kind not in CONSENSUS_KINDS:
            raise ValidationError({"kind": f"must be one of {list(CONSENSUS_KINDS)}"})
        raw = request.query_params.get("min_probability")
        threshold = None
        if raw not in (None, ""):
            try:
                threshold = float(raw)
            except ValueError:
                raise ValidationError({"min_probability": "must be a number from 0.5 to 1"}) from None
            if not 0.5 <= threshold <= 1:
                raise ValidationError({"min_probability": "must be a number from 0.5 to 1"})
        rows = iter_consensus(project) if kind == "tasks" else iter_consensus_pairs(project, threshold)
        return jsonl_response(rows, f"project-{project.pk}-consensus-{kind}.jsonl")
