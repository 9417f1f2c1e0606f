"""REST API: projects, import/export, the rater loop (next → submit / skip), tasks and rankings.

Views stay thin: logic lives in annotation.importer, .exporter, .assignment and .submission.
Every object is scoped to project membership (see annotation.permissions); objects outside the
caller's projects answer 404, actions beyond the caller's role answer 403.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ParseError, PermissionDenied, ValidationError
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import guidelines
from annotation.assignment import next_assignment, release
from annotation.exporter import TIE_POLICIES, iter_rankings, iter_trl_pairs, jsonl_lines
from annotation.import_runs import import_upload, live
from annotation.importer import ImportFailed
from annotation.membership import UnknownUser, set_role
from annotation.models import Assignment, GuidelinesRevision, ImportRun, Membership, Project, Ranking, RankingTask
from annotation.permissions import (
    MANAGE,
    MAX_ID,
    RATE,
    SEE,
    can_create_projects,
    managed_projects,
    project_for,
    visible_projects,
)
from annotation.rows import TooLarge
from annotation.serializers import (
    AssignmentSerializer,
    DetailSerializer,
    ErrorsSerializer,
    GuidelinesPreviewResultSerializer,
    GuidelinesPreviewSerializer,
    GuidelinesRevisionSerializer,
    ImportFailedSerializer,
    ImportQueuedSerializer,
    ImportRunSerializer,
    ImportSummarySerializer,
    MemberSerializer,
    ProjectSerializer,
    RankingSerializer,
    SkipSerializer,
    SubmitSerializer,
    TaskSerializer,
    TooLargeSerializer,
)
from annotation.submission import RankingPayload, SubmissionConflict, SubmissionError, submit_as
from config.abuse import RaterLoopThrottle
from config.ids import BoundedIdLookup, is_id
from config.parsers import PayloadTooLarge, read_bounded

NDJSON = "application/x-ndjson"
EXPORT_KINDS = ("trl", "rankings")
MAX_IMPORT_ERRORS_RETURNED = 1000


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This conflicts with what already exists."
    default_code = "conflict"


class RawBodyParser(BaseParser):
    """The request body as bytes, bounded by DATA_UPLOAD_MAX_MEMORY_SIZE."""

    media_type = NDJSON

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return read_bounded(stream, (parser_context or {}).get("request"), settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
                            "The body (VERDICT_MAX_BODY_BYTES; split the file into several imports)")


class PlainTextBodyParser(RawBodyParser):
    media_type = "text/plain"


class BoundedMultiPartParser(MultiPartParser):
    """A multipart upload under the same limit as a raw body (Django's own limit skips file parts)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        too_large = PayloadTooLarge(f"The upload is larger than {limit:,} bytes (VERDICT_MAX_BODY_BYTES); split the "
                                    "file into several imports.")
        request = (parser_context or {}).get("request")
        declared = int((request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0)
        if limit and declared > limit:  # refuse before reading a byte
            raise too_large
        data = super().parse(stream, media_type, parser_context)
        if limit and sum(f.size for f in data.files.values()) > limit:  # a chunked upload declared no length
            raise too_large
        return data


class NDJSONRenderer(BaseRenderer):
    """Lets clients that send `Accept: application/x-ndjson` reach the export (errors become one JSON line)."""

    media_type = NDJSON
    format = "ndjson"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")


def jsonl_response(rows, filename: str) -> StreamingHttpResponse:
    """Stream rows as a JSON Lines download (never sniffed as anything else)."""
    response = StreamingHttpResponse(jsonl_lines(rows), content_type=f"{NDJSON}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _member_row(membership: Membership) -> dict:
    """A member as MemberSerializer describes one (the user comes joined: select_related or just loaded)."""
    return {"user_id": membership.user_id, "username": membership.user.username, "role": membership.role,
            "paused": membership.paused}


def _count_per_project(qs: QuerySet, project_field: str) -> Coalesce:
    counted = qs.filter(**{project_field: OuterRef("pk")}).order_by().values(project_field).annotate(n=Count("pk"))
    return Coalesce(Subquery(counted.values("n"), output_field=IntegerField()), 0)


PROJECT_ID_PARAM = OpenApiParameter("project_pk", OpenApiTypes.INT, OpenApiParameter.PATH, description="Project id")


@extend_schema_view(
    list=extend_schema(summary="Projects you belong to, with progress counts"),
    retrieve=extend_schema(summary="One project with progress counts"),
    create=extend_schema(summary="Create a project (staff or existing managers); you become its manager",
                         responses={201: ProjectSerializer, 409: DetailSerializer}),
    partial_update=extend_schema(summary="Change a project's settings (its managers)",
                                 responses={200: ProjectSerializer, 409: DetailSerializer}),
)
class ProjectViewSet(
    BoundedIdLookup, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
    mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    serializer_class = ProjectSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]  # settings change field by field: no PUT

    def get_queryset(self) -> QuerySet[Project]:
        user = self.request.user
        if getattr(self, "swagger_fake_view", False):
            return Project.objects.none()
        return (
            visible_projects(user)
            .annotate(
                tasks_total=_count_per_project(RankingTask.objects.all(), "project"),
                tasks_complete=_count_per_project(RankingTask.objects.filter(status=RankingTask.COMPLETE), "project"),
                rankings_count=_count_per_project(Ranking.objects.all(), "task__project"),
                my_role=Subquery(Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]),
            )
            .order_by("name")
        )

    def _name_is_free(self, serializer: ProjectSerializer) -> None:
        """Names are unique among the projects the caller can see; whether an unseen project has it stays unseen."""
        name = serializer.validated_data.get("name")
        if name is None:
            return
        taken = visible_projects(self.request.user).filter(name=name)
        if serializer.instance is not None:
            taken = taken.exclude(pk=serializer.instance.pk)
        if taken.exists():
            raise Conflict(f"You already have a project named {name!r}.")

    def perform_create(self, serializer: ProjectSerializer) -> None:
        if not can_create_projects(self.request.user):
            raise PermissionDenied("Only staff or project managers may create projects.")
        self._name_is_free(serializer)
        with transaction.atomic():
            project = serializer.save()
            Membership.objects.create(project=project, user=self.request.user, role=Membership.MANAGER)
            guidelines.record_revision(project, by=self.request.user)
        serializer.instance = self.get_queryset().get(pk=project.pk)

    def update(self, request: Request, *args, **kwargs) -> Response:
        project_for(request.user, kwargs["pk"], MANAGE)  # the access check, before the body is even read
        return super().update(request, *args, **kwargs)

    def perform_update(self, serializer: ProjectSerializer) -> None:
        self._name_is_free(serializer)
        with transaction.atomic():
            project = serializer.save()
            # A PATCH that restores an old text is how the API restores a revision: it is recorded as a new one.
            guidelines.record_revision(project, by=self.request.user)
        serializer.instance = self.get_queryset().get(pk=project.pk)

    def _managed_project(self) -> Project:
        return project_for(self.request.user, self.kwargs["pk"], MANAGE)

    @extend_schema(summary="The history of the project's guidelines, newest first (members; restore one by PATCHing "
                           "the project's guidelines with its text)",
                   responses={200: GuidelinesRevisionSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="guidelines/revisions")
    def guidelines_revisions(self, request: Request, pk=None) -> Response:
        project = project_for(request.user, pk, SEE)
        page = self.paginate_queryset(GuidelinesRevision.objects.filter(project=project).select_related("edited_by")
                                      .order_by("-number"))
        return self.get_paginated_response(GuidelinesRevisionSerializer(page, many=True).data)

    @extend_schema(summary="Render draft guidelines as raters will see them, sanitised; nothing is saved (managers)",
                   request=GuidelinesPreviewSerializer, responses={200: GuidelinesPreviewResultSerializer})
    @action(detail=True, methods=["post"], url_path="guidelines/preview")
    def guidelines_preview(self, request: Request, pk=None) -> Response:
        self._managed_project()
        body = GuidelinesPreviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response({"html": str(guidelines.preview(body.validated_data["text"]))})

    @extend_schema(
        summary="Import prompts + completions (JSONL, gzip or Parquet; all lines or none); a file of more than "
                "VERDICT_IMPORT_SYNC_ROWS lines is queued for a worker (202)",
        request={
            NDJSON: OpenApiTypes.STR,
            "text/plain": OpenApiTypes.STR,
            # Closed: a multipart body carries `file` and nothing else is read.
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                                    "required": ["file"], "additionalProperties": False},
        },
        responses={201: ImportSummarySerializer, 202: ImportQueuedSerializer, 400: ImportFailedSerializer,
                   413: TooLargeSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="import",
        parser_classes=[RawBodyParser, PlainTextBodyParser, BoundedMultiPartParser],
    )
    def import_data(self, request: Request, pk=None) -> Response:
        project = self._managed_project()
        if isinstance(request.data, bytes | str):
            data, name = request.data, "upload"
        elif "file" in request.FILES:
            upload = request.FILES["file"]
            data, name = upload.read(), upload.name or "upload"  # bounded by BoundedMultiPartParser
        else:
            raise ParseError(f"Send JSONL as the body ({NDJSON} or text/plain) or as a multipart file named 'file'.")
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogatepass")
        try:
            run, summary = import_upload(project, data, user=request.user, name=name)
        except TooLarge as exc:
            return Response({"import_id": exc.import_id, "detail": f"{exc}; nothing was imported.",
                             "setting": exc.setting}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except ImportFailed as exc:
            body = {
                "import_id": exc.import_id,
                "detail": f"{exc.total} error(s); nothing was imported.",
                "error_count": exc.total,
                "errors": [{"line": n, "message": m} for n, m in exc.errors[:MAX_IMPORT_ERRORS_RETURNED]],
            }
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        if summary is None:
            return Response({"import_id": run.pk, "status": run.status, "rows_total": run.rows_total,
                             "detail": "Queued for a worker: follow it at GET /api/projects/{id}/imports/."
                             .replace("{id}", str(project.pk))}, status=status.HTTP_202_ACCEPTED)
        return Response({"import_id": run.pk, **summary.as_dict()}, status=status.HTTP_201_CREATED)

    @extend_schema(summary="The project's imports, newest first, with live progress for a running one (managers)",
                   responses={200: ImportRunSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def imports(self, request: Request, pk=None) -> Response:
        project = self._managed_project()
        page = self.paginate_queryset(ImportRun.objects.filter(project=project).order_by("-started_at", "-id"))
        return self.get_paginated_response(ImportRunSerializer([live(run) for run in page], many=True).data)

    @extend_schema(methods=["GET"], summary="The project's members and their roles (managers)",
                   responses={200: MemberSerializer(many=True)})
    @extend_schema(methods=["POST"], summary="Add a user to the project as rater or manager, or change their role",
                   request=MemberSerializer, responses={200: MemberSerializer, 201: MemberSerializer})
    @action(detail=True, methods=["get", "post"])
    def members(self, request: Request, pk=None) -> Response:
        project = self._managed_project()
        if request.method == "GET":
            page = self.paginate_queryset(Membership.objects.filter(project=project).select_related("user")
                                          .order_by("user__username"))
            return self.get_paginated_response([_member_row(m) for m in page])
        body = MemberSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            membership, created = set_role(project, body.validated_data["username"], body.validated_data["role"],
                                           by=request.user)
        except UnknownUser as exc:
            raise ValidationError({"username": str(exc)}) from None
        return Response(_member_row(membership), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="Export rankings as streamed JSONL (TRL pairs or full rankings)",
        parameters=[
            OpenApiParameter("kind", str, enum=list(EXPORT_KINDS), default="trl", description="trl or rankings"),
            OpenApiParameter("ties", str, enum=list(TIE_POLICIES), default="drop", description="TRL only"),
            OpenApiParameter(
                "exclude_flagged", bool, description="Leave out flagged rankings (default: true for trl, false else)"
            ),
        ],
        responses={(200, NDJSON): OpenApiResponse(OpenApiTypes.STR, description="One JSON object per line")},
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, NDJSONRenderer])
    def export(self, request: Request, pk=None):
        project = self._managed_project()
        kind = request.query_params.get("kind", "trl")
        ties = request.query_params.get("ties", "drop")
        if kind not in EXPORT_KINDS:
            raise ValidationError({"kind": f"must be one of {list(EXPORT_KINDS)}"})
        if ties not in TIE_POLICIES:
            raise ValidationError({"ties": f"must be one of {list(TIE_POLICIES)}"})
        flag_param = request.query_params.get("exclude_flagged")
        if flag_param not in (None, "true", "false", "1", "0"):
            raise ValidationError({"exclude_flagged": "must be true or false"})
        exclude_flagged = kind == "trl" if flag_param is None else flag_param in ("true", "1")
        if kind == "trl":
            rows = iter_trl_pairs(project, ties=ties, exclude_flagged=exclude_flagged)
        else:
            rows = iter_rankings(project, exclude_flagged=exclude_flagged)
        return jsonl_response(rows, f"project-{project.pk}-{kind}.jsonl")


@extend_schema_view(
    list=extend_schema(summary="Tasks of a project (managers)", parameters=[PROJECT_ID_PARAM]),
    retrieve=extend_schema(summary="One task (managers)", parameters=[PROJECT_ID_PARAM]),
    partial_update=extend_schema(summary="Change a task's priority (managers)", parameters=[PROJECT_ID_PARAM]),
)
class TaskViewSet(BoundedIdLookup, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                  viewsets.GenericViewSet):
    serializer_class = TaskSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def project(self) -> Project:
        if not hasattr(self, "_project"):
            role = RATE if self.action == "next" else MANAGE
            self._project = project_for(self.request.user, self.kwargs["project_pk"], role)
        return self._project

    def get_queryset(self) -> QuerySet[RankingTask]:
        if getattr(self, "swagger_fake_view", False):
            return RankingTask.objects.none()
        qs = RankingTask.objects.filter(project=self.project()).select_related("prompt").order_by("-priority", "id")
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in dict(RankingTask.STATUSES):
                raise ValidationError({"status": f"must be one of {[s for s, _ in RankingTask.STATUSES]}"})
            qs = qs.filter(status=wanted)
        return qs

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self.project()  # the access check, before anything else runs

    @extend_schema(
        summary="Lease the next task for you (rater); 204 when nothing is left",
        parameters=[PROJECT_ID_PARAM],
        request=None,
        responses={200: AssignmentSerializer, 204: OpenApiResponse(description="No task left for you")},
    )
    @action(detail=False, methods=["post"], throttle_classes=[RaterLoopThrottle])
    def next(self, request: Request, project_pk=None) -> Response:
        assignment = next_assignment(self.project(), request.user)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AssignmentSerializer(assignment).data)


@extend_schema_view(retrieve=extend_schema(summary="One of your own assignments"))
class AssignmentViewSet(BoundedIdLookup, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Only the assignment's own rater can see, submit or skip it; anyone else gets 404."""

    serializer_class = AssignmentSerializer

    def get_queryset(self) -> QuerySet[Assignment]:
        if getattr(self, "swagger_fake_view", False):
            return Assignment.objects.none()
        return Assignment.objects.filter(rater=self.request.user).select_related("task__prompt", "task__project")

    @extend_schema(
        summary="Submit your ranking: 201 the first time; 200 for a repeat, or for a correction within the "
        "project's edit window (revision + 1); 409 for a different ranking after it",
        request=SubmitSerializer,
        responses={201: RankingSerializer, 200: RankingSerializer, 400: ErrorsSerializer, 409: ErrorsSerializer},
    )
    @action(detail=True, methods=["post"], throttle_classes=[RaterLoopThrottle])
    def submit(self, request: Request, pk=None) -> Response:
        if not is_id(pk):
            raise Http404("No such object.")
        form = SubmitSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        payload = RankingPayload(**form.validated_data)
        try:
            # One locked read that also checks the assignment is this rater's (the rater loop's hot path: no
            # separate get_object query).
            ranking, created = submit_as(request.user, int(pk), payload)
        except Assignment.DoesNotExist:
            raise Http404("No such object.") from None
        except SubmissionConflict as exc:
            return Response({"detail": str(exc), "errors": exc.errors}, status=status.HTTP_409_CONFLICT)
        except SubmissionError as exc:
            return Response({"detail": str(exc), "errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(RankingSerializer(ranking).data, status=code)

    @extend_schema(
        summary="Give the task back; it will not be offered to you again",
        request=SkipSerializer,
        responses={200: AssignmentSerializer, 409: OpenApiResponse(description="Already submitted")},
    )
    @action(detail=True, methods=["post"], throttle_classes=[RaterLoopThrottle])
    def skip(self, request: Request, pk=None) -> Response:
        assignment = self.get_object()
        form = SkipSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if assignment.status == Assignment.SUBMITTED:
            return Response({"detail": "This assignment was already submitted."}, status=status.HTTP_409_CONFLICT)
        release(assignment, form.validated_data["reason"])
        return Response(AssignmentSerializer(self.get_queryset().get(pk=assignment.pk)).data)


@extend_schema_view(
    list=extend_schema(
        summary="Rankings: all of the projects you manage, otherwise only your own",
        parameters=[OpenApiParameter("project", {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                                     description="Only this project")],
    ),
    retrieve=extend_schema(summary="One ranking (yours, or of a project you manage)"),
)
class RankingViewSet(BoundedIdLookup, viewsets.ReadOnlyModelViewSet):
    serializer_class = RankingSerializer

    def get_queryset(self) -> QuerySet[Ranking]:
        if getattr(self, "swagger_fake_view", False):
            return Ranking.objects.none()
        user = self.request.user
        qs = Ranking.objects.select_related("task").order_by("id")
        qs = qs.filter(Q(task__project__in=managed_projects(user)) | Q(rater=user))
        project = self.request.query_params.get("project")
        if project is not None:
            if not project.isdigit() or not 0 < int(project) <= MAX_ID:
                raise ValidationError({"project": f"must be a project id, an integer from 1 to {MAX_ID}"})
            qs = qs.filter(task__project_id=int(project))
        return qs
