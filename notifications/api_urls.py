"""REST routes of the notifications app, mounted under /api/ by config/urls.py."""

from django.urls import path

from notifications import api

urlpatterns = [
    path("projects/<id:project_id>/webhooks/", api.WebhookList.as_view(), name="project-webhooks"),
    path("projects/<id:project_id>/webhooks/<id:webhook_id>/", api.WebhookDetail.as_view(), name="webhook-detail"),
    path("projects/<id:project_id>/webhooks/<id:webhook_id>/deliveries/", api.DeliveryList.as_view(),
         name="webhook-deliveries"),
    path("projects/<id:project_id>/webhooks/<id:webhook_id>/test/", api.PingWebhook.as_view(), name="webhook-test"),
]
