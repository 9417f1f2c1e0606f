"""REST API of dataset releases (managers of the project, by the one access rule in annotation.permissions):

GET  /api/projects/{id}/releases/                      the project's releases, newest first
POST /api/projects/{id}/releases/                      make one: {name, description, license, include_eval}
GET  /api/projects/{id}/releases/{release}/            one release, with its frozen list of ranking ids
GET  /api/projects/{id}/releases/{a}/diff/{b}/         what b holds that a did not, and the reverse
GET  /api/projects/{id}/releases/{release}/download/   the Hugging Face datasets folder, zipped

A release is never changed: there is no PUT, PATCH or DELETE. Making and zipping a release run in the request,
so both are bounded by ``VERDICT_RELEASE_API_MAX_RANKINGS`` (10,000 four-way rankings: ~6 s to make, ~4 s to zip
on 2 cores); a larger project answers 409 naming the management command that has no bound (``create_release``,
``export_release``). A Celery job would need somewhere both the worker and the web server can keep a zip of
hundreds of MB for a later download; the commands write where the engineer wants it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import Conflict
from annotation.permissions import MANAGE, project_for
from annotation.serializers import DetailSerializer
from releases import build, export
from releases.diff import diff_releases
from releases.models import DatasetRelease
from releases.serializers import (
    CreateReleaseSerializer,
    ReleaseDetailSerializer,
    ReleaseDiffSerializer,
    ReleaseSerializer,
)


def _too_large(what: int, command: str) -> Conflict:
    limit = settings.VERDICT_RELEASE_API_MAX_RANKINGS
    return Conflict(f"{what:,} rankings is more than the API handles in a request ({limit:,}, "
                    f"VERDICT_RELEASE_API_MAX_RANKINGS); run manage.py {command}")


@extend_schema_view(
    get=extend_schema(summary="The project's dataset releases, newest first (managers)"),
    post=extend_schema(
        summary="Freeze the project's trainable rankings as a named release (managers)",
        request=CreateReleaseSerializer,
        responses={201: ReleaseSerializer, 400: OpenApiTypes.OBJECT,
                   409: OpenApiResponse(DetailSerializer, description="The name is taken, no ranking qualifies, or "
                                        "the project is too large for a request (use the create_release command)")}),
)
class ReleaseList(generics.ListCreateAPIView):
    serializer_class = ReleaseSerializer

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        return DatasetRelease.objects.filter(project=project).select_related("created_by").order_by("-id")

    def create(self, request, *args, **kwargs):
        project = project_for(request.user, self.kwargs["project_id"], MANAGE)  # access first, then the body
        body = CreateReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            build.check_inputs(project, data["name"], data["license"])
        except build.DuplicateName as exc:
            raise Conflict(str(exc)) from None
        except build.ReleaseError as exc:
            raise ValidationError({exc.field: str(exc)}) from None
        n = build.count_selection(project, data["include_eval"])
        if n > settings.VERDICT_RELEASE_API_MAX_RANKINGS:
            raise _too_large(n, f"create_release --project {project.pk} --name {data['name']}")
        try:
            release = build.create_release(project, data["name"], data["description"], data["license"],
                                           data["include_eval"], user=request.user)
        except (build.DuplicateName, build.NothingToRelease) as exc:
            raise Conflict(str(exc)) from None
        return Response(ReleaseSerializer(release).data, status=status.HTTP_201_CREATED)


def _release(request, project_id: int, release_id: int) -> DatasetRelease:
    project = project_for(request.user, project_id, MANAGE)
    return get_object_or_404(DatasetRelease.objects.select_related("project", "created_by"), project=project,
                             pk=release_id)


class ReleaseDetail(APIView):
    serializer_class = ReleaseDetailSerializer

    @extend_schema(summary="One dataset release, with its frozen list of ranking ids (managers)",
                   responses={200: ReleaseDetailSerializer})
    def get(self, request, project_id: int, release_id: int):
        return Response(ReleaseDetailSerializer(_release(request, project_id, release_id)).data)


class ReleaseDiff(APIView):
    serializer_class = ReleaseDiffSerializer

    @extend_schema(summary="What release b holds that release a did not, and the reverse (managers)",
                   responses={200: ReleaseDiffSerializer})
    def get(self, request, project_id: int, release_id: int, other_id: int):
        a = _release(request, project_id, release_id)
        b = _release(request, project_id, other_id)
        return Response(diff_releases(a, b))


class ZipRenderer(BaseRenderer):
    """Lets clients that send `Accept: application/zip` reach the download (errors become JSON bytes)."""

    media_type = "application/zip"
    format = "zip"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return JSONRenderer().render(data)


class ReleaseDownload(APIView):
    renderer_classes = [JSONRenderer, ZipRenderer]

    @extend_schema(summary="The release as a Hugging Face datasets folder, zipped (managers)",
                   responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY,
                                                                          description="<name>/README.md, pairs/, "
                                                                          "rankings/"),
                              409: OpenApiResponse(DetailSerializer, description="Too large for a request: use the "
                                                   "export_release command")})
    def get(self, request, project_id: int, release_id: int):
        release = _release(request, project_id, release_id)
        if request.query_params.get("format", "zip") not in ("zip", "json"):  # DRF lets an empty ?format= through
            raise ValidationError({"format": "must be zip (or left out)"})
        if release.n_rankings > settings.VERDICT_RELEASE_API_MAX_RANKINGS:
            raise _too_large(release.n_rankings, f"export_release --project {release.project_id} "
                             f"--release {release.name} <folder>")
        archive = export.zip_release(release)
        response = FileResponse(archive, as_attachment=True, filename=f"{release.name}.zip",
                                content_type="application/zip")
        response["X-Content-Type-Options"] = "nosniff"
        return response
