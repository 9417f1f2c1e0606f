"""API shapes of the notifications app. A webhook's secret is in the answer to its creation only."""

from __future__ import annotations

from rest_framework import serializers

from config.api_contract import StrictJSONTypes
from notifications.models import EVENTS, URL_PATTERN, Webhook, WebhookDelivery, url_validator


class WebhookSerializer(StrictJSONTypes, serializers.ModelSerializer):
    """A webhook as managers see it and add it: where events go, which ones, whether it is on (never its secret)."""

    url = serializers.RegexField(URL_PATTERN, max_length=500, error_messages={"invalid": url_validator.message},
                                 help_text="http:// or https:// only; the workers POST events there.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENTS), min_length=1, max_length=len(EVENTS),
                                   help_text=f"Among: {', '.join(EVENTS)}.")

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_events(self, value: list[str]) -> list[str]:
        return sorted(set(value), key=EVENTS.index)


class CreatedWebhookSerializer(WebhookSerializer):
    """The answer to a webhook's creation: the webhook and its signing secret, shown this once."""

    secret = serializers.CharField(read_only=True, help_text="The signing secret: shown here, once; keep it.")

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]


class DeliverySerializer(serializers.ModelSerializer):
    """One event sent to one webhook: its payload, status, attempts and what the latest one got."""

    class Meta:
        model = WebhookDelivery
        fields = ["id", "event", "status", "attempts", "last_status_code", "last_error", "history", "payload",
                  "next_attempt_at", "created_at", "delivered_at"]
        read_only_fields = fields

