from django.urls import path

from active_learning import api

urlpatterns = [
    path("projects/<int:project_id>/active-learning/rounds/", api.RoundListCreate.as_view(), name="al-rounds"),
    path(
        "projects/<int:project_id>/active-learning/rounds/<int:round_id>/",
        api.RoundDetail.as_view(),
        name="al-round-detail",
    ),
]
