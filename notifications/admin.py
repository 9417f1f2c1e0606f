"""Webhooks in the admin: add or deactivate one, read its deliveries (read-only, newest first), send a test ping.

The secret is never shown here after the page that created the webhook (its message says it once)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.formats import date_format
from django.utils.timezone import localtime

from config.text import VisibleTextAdmin, show_bidi_controls
from notifications import delivery
from notifications.models import EVENT_HELP, EVENTS, Webhook, WebhookDelivery

DELIVERIES_SHOWN = 50


def _when(value) -> str:
    return date_format(localtime(value), "Y-m-d H:i:s") if value else "–"


class WebhookForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=[(e, f"{e}: {EVENT_HELP[e]}") for e in EVENTS],
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Webhook
        fields = ["project", "url", "events", "active"]


class DeliveryInline(admin.TabularInline):
    """The latest deliveries: what was sent and what came back. Records, never edited."""

    model = WebhookDelivery
    extra = 0
    can_delete = False
    fields = ("id", "event", "status", "attempts", "last_status_code", "error", "created", "next_attempt",
              "delivered")
    readonly_fields = fields
    verbose_name_plural = f"deliveries (the latest {DELIVERIES_SHOWN})"

    def get_queryset(self, request):
        # Bounded: a busy webhook has thousands; the API pages through them all.
        latest = WebhookDelivery.objects.order_by("-created_at", "-id").values("pk")
        return super().get_queryset(request).filter(pk__in=[
            row["pk"] for row in latest.filter(webhook_id__in=self._webhook_ids(request))[:DELIVERIES_SHOWN]])

    def _webhook_ids(self, request):
        match = request.resolver_match
        object_id = match.kwargs.get("object_id") if match else None
        return [object_id] if object_id else []

    @admin.display(description="error")
    def error(self, obj) -> str:
        return show_bidi_controls(obj.last_error)  # the receiver's answer: shown as text (the admin escapes it)

    @admin.display(description="created")
    def created(self, obj) -> str:
        return _when(obj.created_at)

    @admin.display(description="next attempt")
    def next_attempt(self, obj) -> str:
        return _when(obj.next_attempt_at)

    @admin.display(description="delivered")
    def delivered(self, obj) -> str:
        return _when(obj.delivered_at)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Webhook)
class WebhookAdmin(VisibleTextAdmin, admin.ModelAdmin):
    form = WebhookForm
    list_display = ("id", "project", "url", "event_list", "active", "created")
    list_filter = ("active", "project")
    list_select_related = ("project",)
    search_fields = ("url", "project__name")
    inlines = [DeliveryInline]
    actions = ["send_test_ping"]

    @admin.display(description="events")
    def event_list(self, obj) -> str:
        return ", ".join(obj.events)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj) -> str:
        return _when(obj.created_at)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(request, f"The webhook's signing secret, shown this once: {obj.secret}",
                              messages.WARNING)

    @admin.action(description="Send a test ping to the selected webhooks")
    def send_test_ping(self, request, queryset):
        sent = [delivery.ping(webhook) for webhook in queryset]
        self.message_user(request, f"{len(sent)} ping(s) queued; their deliveries are listed on each webhook's page.",
                          messages.SUCCESS)
