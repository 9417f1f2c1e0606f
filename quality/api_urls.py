"""REST routes of the quality app, mounted under /api/ by config/urls.py."""

from django.urls import path

from quality.api import ConsensusExportView, LeaderboardView, PauseView, QualityView, RefreshView, UnpauseView

urlpatterns = [
    path("projects/<id:project_id>/quality/", QualityView.as_view(), name="project-quality"),
    path("projects/<id:project_id>/quality/refresh/", RefreshView.as_view(), name="project-quality-refresh"),
    path("projects/<id:project_id>/raters/<id:rater_id>/pause/", PauseView.as_view(),
         name="project-rater-pause"),
    path("projects/<id:project_id>/raters/<id:rater_id>/unpause/", UnpauseView.as_view(),
         name="project-rater-unpause"),
    path("projects/<id:project_id>/leaderboard/", LeaderboardView.as_view(), name="project-leaderboard"),
    path("projects/<id:project_id>/consensus/", ConsensusExportView.as_view(), name="project-consensus"),
]
