"""The rater web UI (the REST API lives in annotation/api_urls.py)."""

from django.urls import path

from annotation import views

app_name = "annotation"

urlpatterns = [
    path("", views.home, name="home"),
    path("projects/<id:project_id>/rate/", views.rate, name="rate"),
    path("projects/<id:project_id>/assignments/<id:assignment_id>/submit/", views.submit, name="submit"),
    path("projects/<id:project_id>/assignments/<id:assignment_id>/skip/", views.skip, name="skip"),
]
