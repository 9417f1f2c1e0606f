"""REST routes for reward models, mounted under /api/ by config/urls.py."""

from django.urls import path

from rewardmodel.api import RetrainPolicyView, TrainingRunDetail, TrainingRunList, VersionList

urlpatterns = [
    path("projects/<id:project_id>/reward-models/", VersionList.as_view(), name="project-reward-models"),
    path("projects/<id:project_id>/training-runs/", TrainingRunList.as_view(), name="project-training-runs"),
    path("projects/<id:project_id>/training-runs/<id:run_id>/", TrainingRunDetail.as_view(),
         name="project-training-run"),
    path("projects/<id:project_id>/retrain-policy/", RetrainPolicyView.as_view(), name="project-retrain-policy"),
]
