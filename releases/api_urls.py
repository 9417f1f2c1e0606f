"""REST routes of dataset releases, mounted under /api/ by config/urls.py."""

from django.urls import path

from releases import api

urlpatterns = [
    path("projects/<id:project_id>/releases/", api.ReleaseList.as_view(), name="project-releases"),
    path("projects/<id:project_id>/releases/<id:release_id>/", api.ReleaseDetail.as_view(), name="release-detail"),
    path("projects/<id:project_id>/releases/<id:release_id>/diff/<id:other_id>/", api.ReleaseDiff.as_view(),
         name="release-diff"),
    path("projects/<id:project_id>/releases/<id:release_id>/download/", api.ReleaseDownload.as_view(),
         name="release-download"),
]
