from django.urls import path

from active_learning import api

urlpatterns = [
    path("projects/<id:project_id>/active-learning/audit/", api.LatestAudit.as_view(), name="al-audit"),
    path("projects/<id:project_id>/active-learning/rounds/", api.RoundListCreate.as_view(), name="al-rounds"),
    path(
        "projects/<id:project_id>/active-learning/rounds/<id:round_id>/",
        api.RoundDetail.as_view(),
        name="al-round-detail",
    ),
]
