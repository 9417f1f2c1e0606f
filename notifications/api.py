"""REST API of the notifications app (managers of the project, by the one access rule):

GET    /api/projects/{id}/webhooks/                        the project's webhooks (never their secrets)
POST   /api/projects/{id}/webhooks/                        add one: {"url", "events"}; 201 with its secret, once
                                                           (409 past MAX_WEBHOOKS)
GET    /api/projects/{id}/webhooks/{wid}/                  one webhook
DELETE /api/projects/{id}/webhooks/{wid}/                  remove it and its deliveries
GET    /api/projects/{id}/webhooks/{wid}/deliveries/       its deliveries, newest first, with each attempt
POST   /api/projects/{id}/webhooks/{wid}/test/             send it a `ping` (202 with the pending delivery)
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import Conflict
from annotation.permissions import MANAGE, project_for
from annotation.serializers import DetailSerializer
from notifications import delivery
from notifications.models import Webhook, WebhookDelivery
from notifications.serializers import CreatedWebhookSerializer, DeliverySerializer, WebhookSerializer

MAX_WEBHOOKS = 20  # per project: each event is one POST per webhook


def _webhook(request, project_id: int, webhook_id: int) -> Webhook:
    project = project_for(request.user, project_id, MANAGE)
    return get_object_or_404(Webhook, project=project, pk=webhook_id)


@extend_schema_view(get=extend_schema(summary="The project's webhooks (managers; secrets are never listed)"),
                    post=extend_schema(summary="Add a webhook (managers): 201 with its signing secret, shown once; 409 "
                                               f"when the project has {MAX_WEBHOOKS} already",
                                       responses={201: CreatedWebhookSerializer, 409: DetailSerializer}))
class WebhookList(generics.ListCreateAPIView):
    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)
    serializer_class = WebhookSerializer

    def get_queryset(self):
        project = project_for(self.request.user, self.kwargs["project_id"], MANAGE)
        return Webhook.objects.filter(project=project).order_by("id")

    def create(self, request, *args, **kwargs):
        project = project_for(request.user, self.kwargs["project_id"], MANAGE)  # access first, then the body
        body = WebhookSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if Webhook.objects.filter(project=project).count() >= MAX_WEBHOOKS:
            raise Conflict(f"a project has at most {MAX_WEBHOOKS} webhooks; delete one first")
        webhook = body.save(project=project, created_by=request.user)
        return Response(CreatedWebhookSerializer(webhook).data, status=status.HTTP_201_CREATED)


@extend_schema_view(get=extend_schema(summary="One webhook (managers)"),
                    delete=extend_schema(summary="Remove a webhook and its deliveries (managers)"))
class WebhookDetail(generics.RetrieveDestroyAPIView):
    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)
    serializer_class = WebhookSerializer

    def get_object(self):
        return _webhook(self.request, self.kwargs["project_id"], self.kwargs["webhook_id"])


class DeliveryList(generics.ListAPIView):
    """A webhook's deliveries, newest first: status, attempts, the latest answer and each attempt (managers)."""

    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)
    serializer_class = DeliverySerializer

    def get_queryset(self):
        webhook = _webhook(self.request, self.kwargs["project_id"], self.kwargs["webhook_id"])
        return WebhookDelivery.objects.filter(webhook=webhook).order_by("-created_at", "-id")


class PingWebhook(APIView):
    permission_classes = [IsAuthenticated]  # and project_for(…, MANAGE)

    @extend_schema(request=None, responses={202: DeliverySerializer},
                   summary="Send the webhook a `ping` event (managers): 202 with the pending delivery")
    def post(self, request, project_id: int, webhook_id: int):
        webhook = _webhook(request, project_id, webhook_id)
        return Response(DeliverySerializer(delivery.ping(webhook)).data, status=status.HTTP_202_ACCEPTED)
