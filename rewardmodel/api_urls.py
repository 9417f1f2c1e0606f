"""REST routes for reward models, mounted under /api/ by config/urls.py."""

from django.urls import path

from rewardmodel.api import ScoreView, VersionList

urlpatterns = [
    path("projects/<int:project_id>/score/", ScoreView.as_view(), name="project-score"),
    path("projects/<int:project_id>/reward-models/", VersionList.as_view(), name="project-reward-models"),
]
