"""REST routes of the serving app, mounted under /api/ by config/urls.py."""

from django.urls import path

from serving import api

urlpatterns = [
    path("projects/<id:project_id>/score/", api.ScoreView.as_view(), name="project-score"),
    path("projects/<id:project_id>/policy-runs/", api.PolicyRunList.as_view(), name="project-policy-runs"),
    path("projects/<id:project_id>/policy-runs/<id:run_id>/watch/", api.PolicyRunWatch.as_view(),
         name="project-policy-run-watch"),
]
