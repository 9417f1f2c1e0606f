"""REST routes of the feedback app, mounted under /api/ by config/urls.py."""

from django.urls import path

from feedback import api

urlpatterns = [
    path("projects/<id:project_id>/judges/", api.JudgeList.as_view(), name="project-judges"),
    path("projects/<id:project_id>/judges/<id:judge_id>/runs/", api.StartJudgeRun.as_view(), name="judge-run-start"),
    path("projects/<id:project_id>/judge-runs/", api.JudgeRunList.as_view(), name="project-judge-runs"),
]
