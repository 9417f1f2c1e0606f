"""Admin: each project's capture policy and alarms; policy runs with their watch; the samples kept."""

from __future__ import annotations

from django.contrib import admin

from config.text import VisibleTextAdmin
from serving.models import CapturedSample, CapturePolicy, PolicyRun


@admin.register(CapturePolicy)
class CapturePolicyAdmin(VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("project", "enabled", "sample_rate", "daily_cap", "retention_days", "groups_per_round")
    list_filter = ("enabled",)


@admin.register(CapturedSample)
class CapturedSampleAdmin(VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("id", "project", "run", "step", "reward", "version", "task", "created_at")
    list_filter = ("project",)
    readonly_fields = [f.name for f in CapturedSample._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # kept by the score API (serving.capture)

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PolicyRun)
class PolicyRunAdmin(VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("name", "project", "last_step", "flagged", "flag_reason", "last_seen_at")
    list_filter = ("project", "flagged")
    readonly_fields = ("project", "name", "created_at", "last_seen_at", "last_step", "flagged_at")
