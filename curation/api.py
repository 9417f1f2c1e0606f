"""REST API of curation: the data browser (search and filter tasks, bulk actions), review of rankings and a
rater's history. Managers only (``annotation.permissions.project_for(…, MANAGE)``): it shows who ranked what."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import NDJSON, NDJSONRenderer, jsonl_response
from annotation.models import Ranking
from annotation.permissions import MANAGE, project_for
from config.ids import MAX_ID
from curation import bulk_actions
from curation.models import BulkAction
from curation.review import ReviewError, ranking_context, rater_history, review
from curation.search import BrowseFilters, browse, filters_as_given
from curation.serializers import (
    BrowsedTaskSerializer,
    BulkActionRequestSerializer,
    BulkActionSerializer,
    RankingReviewSerializer,
    RaterHistorySerializer,
    ReviewRequestSerializer,
)


def _parameter(name: str, field) -> OpenApiParameter:
    """A filter of the form as an OpenAPI query parameter with the form's own bounds, so the schema and the
    validation agree."""
    description = str(field.help_text or "")
    if isinstance(field, forms.ChoiceField):
        return OpenApiParameter(name, OpenApiTypes.STR, enum=[value for value, _ in field.choices if value],
                                description=description)
    # FloatField subclasses IntegerField: ask for it first.
    if isinstance(field, forms.FloatField):
        return OpenApiParameter(name, {"type": "number", "minimum": 0, "maximum": 1}, description=description)
    if isinstance(field, forms.IntegerField):
        return OpenApiParameter(name, {"type": "integer", "minimum": 1, "maximum": MAX_ID}, description=description)
    schema = {"type": "string", "maxLength": field.max_length}
    if name == "metadata":
        schema["pattern"] = r"^(\s*[^=\s][^=]*=.*)?$"  # empty: no filter, like every other blank field
    return OpenApiParameter(name, schema, description=description)


FILTER_PARAMETERS = [_parameter(name, field) for name, field in BrowseFilters.base_fields.items()]


def cleaned_filters(data) -> dict:
    """The browser's filters from query parameters or a JSON object, or 400 naming each bad field."""
    form = BrowseFilters(data)
    if not form.is_valid():
        raise ValidationError({field: [str(m) for m in messages] for field, messages in form.errors.items()})
    return form.cleaned_data


class BrowseView(GenericAPIView):
    """The project's tasks, filtered and searched like the admin's data browser."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)
    serializer_class = BrowsedTaskSerializer

    @extend_schema(summary="Search and filter a project's tasks (managers)", parameters=FILTER_PARAMETERS,
                   responses={200: BrowsedTaskSerializer(many=True)})
    def get(self, request, project_id: int):
        project = project_for(request.user, project_id, MANAGE)
        paging = set(self.paginator.query_params) if self.paginator else set()
        unknown = set(request.query_params) - set(BrowseFilters.base_fields) - paging - {"format"}
        if unknown:
            raise ValidationError({name: "unknown filter" for name in sorted(unknown)})
        tasks = browse(project, cleaned_filters(request.query_params))
        page = self.paginate_queryset(tasks.select_related("prompt", "consensus").prefetch_related("completions"))
        return self.get_paginated_response(BrowsedTaskSerializer(page, many=True).data)


class BulkActionView(APIView):
    """Act on a selection of tasks: by ids, or by the browser's filters."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)
    renderer_classes = [JSONRenderer, NDJSONRenderer]

    @extend_schema(summary="Set priority, re-ask, exclude from / include in training, or export the rankings of "
                   "selected tasks (managers)", request=BulkActionRequestSerializer,
                   responses={(200, "application/json"): BulkActionSerializer,
                              (200, NDJSON): OpenApiResponse(OpenApiTypes.STR, description="export: the rankings, "
                                                             "one JSON object per line")})
    def post(self, request, project_id: int):
        project = project_for(request.user, project_id, MANAGE)
        body = BulkActionRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "filters" in data:
            filters = cleaned_filters(data["filters"])
            tasks, params = browse(project, filters), {"filters": filters_as_given(filters)}
        else:
            ids = sorted(set(data["task_ids"]))
            tasks = project.tasks.filter(pk__in=ids)
            missing = set(ids) - set(tasks.values_list("pk", flat=True))
            if missing:
                raise ValidationError({"task_ids": f"not tasks of this project: {sorted(missing)[:20]}"})
            params = {"task_ids": ids[:100], "n_ids": len(ids)}
        action, user = data["action"], request.user
        try:
            if action == BulkAction.EXPORT:
                rows = bulk_actions.export_rankings(project, tasks, user=user, params=params)
                return jsonl_response(rows, f"project-{project.pk}-selection.jsonl")
            if action == BulkAction.PRIORITY:
                done = bulk_actions.set_priority(project, tasks, data["priority"], user=user, params=params)
            elif action == BulkAction.REASK:
                done = bulk_actions.reask(project, tasks, data.get("priority"), user=user, params=params)
            else:
                done = bulk_actions.set_excluded(project, tasks, action == BulkAction.EXCLUDE, user=user,
                                                 params=params)
        except bulk_actions.SelectionTooLarge as exc:
            raise ValidationError({"filters" if "filters" in data else "task_ids": str(exc)}) from None
        return Response(BulkActionSerializer(done).data)


def _ranking_of(project, ranking_id: int) -> Ranking:
    ranking = (Ranking.objects.filter(pk=ranking_id, task__project=project)
               .select_related("task__prompt", "task__project").first())
    if ranking is None:
        raise NotFound("No such ranking in this project.")
    return ranking


class RankingReviewView(APIView):
    """A ranking next to the task's consensus and the active reward model's verdict; accept or reject it."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)

    @extend_schema(summary="One ranking with the consensus and the reward model's verdict (managers)",
                   responses={200: RankingReviewSerializer})
    def get(self, request, project_id: int, ranking_id: int):
        project = project_for(request.user, project_id, MANAGE)
        return Response(RankingReviewSerializer(ranking_context(_ranking_of(project, ranking_id))).data)

    @extend_schema(summary="Accept or reject a ranking; a rejected one leaves training (managers)",
                   request=ReviewRequestSerializer, responses={200: RankingReviewSerializer})
    def post(self, request, project_id: int, ranking_id: int):
        project = project_for(request.user, project_id, MANAGE)
        ranking = _ranking_of(project, ranking_id)
        body = ReviewRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            review(ranking, body.validated_data["decision"], body.validated_data.get("reason", ""), request.user)
        except ReviewError as exc:
            raise ValidationError({exc.field: str(exc)}) from None
        return Response(RankingReviewSerializer(ranking_context(ranking, with_model=False)).data)


class RaterHistoryView(APIView):
    """One rater's record in the project: quality, review counts and latest rankings."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)

    @extend_schema(summary="A rater's history in the project (managers)", responses={200: RaterHistorySerializer})
    def get(self, request, project_id: int, rater_id: int):
        project = project_for(request.user, project_id, MANAGE)
        user = get_user_model().objects.filter(pk=rater_id).first()
        if user is None or not (project.memberships.filter(user=user).exists()
                                or Ranking.objects.filter(task__project=project, rater=user).exists()):
            raise NotFound("No such rater in this project.")
        history = rater_history(project, user.pk)
        return Response(RaterHistorySerializer({"rater_id": user.pk, "username": user.get_username(),
                                                **history}).data)
