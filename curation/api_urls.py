"""REST routes of curation, mounted under /api/ by config/urls.py."""

from django.urls import path

from curation.api import BrowseView, BulkActionView, RankingReviewView, RaterHistoryView

urlpatterns = [
    path("projects/<id:project_id>/browse/", BrowseView.as_view(), name="project-browse"),
    path("projects/<id:project_id>/browse/actions/", BulkActionView.as_view(), name="project-browse-actions"),
    path("projects/<id:project_id>/rankings/<id:ranking_id>/review/", RankingReviewView.as_view(),
         name="project-ranking-review"),
    path("projects/<id:project_id>/raters/<id:rater_id>/history/", RaterHistoryView.as_view(),
         name="project-rater-history"),
]
