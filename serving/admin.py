"""Admin: each project's capture policy and alarms; policy runs with their watch; the samples kept."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from config.display import RecordAdmin
from config.text import VisibleTextAdmin
from serving import plots
from serving.models import CapturedSample, CapturePolicy, PolicyRun, WatchWindow


@admin.register(CapturePolicy)
class CapturePolicyAdmin(VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("project", "enabled", "sample_rate", "daily_cap", "retention_days", "groups_per_round")
    list_filter = ("enabled",)


@admin.register(CapturedSample)
class CapturedSampleAdmin(RecordAdmin, VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("id", "project", "run", "step", "reward", "version", "task", "created_at")
    list_filter = ("project",)
    readonly_fields = [f.name for f in CapturedSample._meta.fields]  # kept by the score API (serving.capture)


class WatchWindowInline(admin.TabularInline):
    model = WatchWindow
    fields = ("step_min", "step_max", "samples", "reward_mean", "reward_std", "length_correlation", "far_share",
              "ranked_pairs", "disagreement", "alarms", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ("-id",)

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # written by the watch (serving.watch)


@admin.register(PolicyRun)
class PolicyRunAdmin(VisibleTextAdmin, admin.ModelAdmin):
    """RL runs that scored through Verdict, with their Goodhart watch: figures per window, plotted, and the flag."""

    list_display = ("name", "project", "last_step", "flagged", "flag_reason", "last_seen_at")
    list_filter = ("project", "flagged")
    fields = ("project", "name", "created_at", "last_seen_at", "last_step", "flagged", "flag_reason", "flagged_at",
              "watch_plot")
    readonly_fields = ("project", "name", "created_at", "last_seen_at", "last_step", "flag_reason", "flagged_at",
                       "watch_plot")
    inlines = [WatchWindowInline]
    actions = ["clear_flags"]

    def has_add_permission(self, request) -> bool:
        return False  # a run appears when its trainer first scores

    def get_urls(self):
        custom = [path("<id:object_id>/watch.png", self.admin_site.admin_view(self.watch_png_view),
                       name="serving_policyrun_watch_png")]
        return custom + super().get_urls()

    def watch_png_view(self, request, object_id):
        run = get_object_or_404(PolicyRun, pk=object_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied("no permission to view this run")
        png = plots.watch_png(list(run.windows.order_by("id")), CapturePolicy.for_project(run.project))
        return HttpResponse(png, content_type="image/png")

    @admin.display(description="Goodhart watch")
    def watch_plot(self, obj: PolicyRun):
        if not obj.pk or not obj.windows.exists():
            return "No window yet: the watch runs every 10 minutes once the run has captured samples."
        return format_html('<img src="{}" alt="Goodhart watch of run {}" style="max-width: 100%">',
                           reverse("admin:serving_policyrun_watch_png", args=[obj.pk]), obj.name)

    @admin.action(description="Clear the flag of the selected runs (the watch flags again on a new alarm)")
    def clear_flags(self, request, queryset):
        cleared = queryset.update(flagged=False, flag_reason="", flagged_at=None)
        self.message_user(request, f"Cleared {cleared} run(s).")
