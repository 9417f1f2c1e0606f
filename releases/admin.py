"""Admin: dataset releases, read-only (a release is immutable; only a superuser may delete one), each with its diff
against the project's previous release and the commands that export it."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join

from config.text import VisibleTextAdmin, show_bidi_controls
from releases.diff import diff_releases, summary_lines
from releases.models import DatasetRelease


@admin.register(DatasetRelease)
class DatasetReleaseAdmin(VisibleTextAdmin, admin.ModelAdmin):
    list_display = ("name", "project", "n_rankings", "n_pairs", "include_eval", "short_hash", "created_by",
                    "created_at")
    list_filter = ("project", "include_eval")
    search_fields = ("name",)
    fields = ("project", "name", "shown_description", "license", "include_eval", "created_by", "created_at",
              "n_rankings", "n_pairs", "splits", "by_source", "sha256", "diff_with_previous", "export")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("project", "created_by")

    def has_add_permission(self, request) -> bool:
        return False  # made by the API or `manage.py create_release`, which freeze the rankings

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    @admin.display(description="sha256")
    def short_hash(self, obj: DatasetRelease) -> str:
        return obj.sha256[:12]

    @admin.display(description="description")
    def shown_description(self, obj: DatasetRelease) -> str:
        return show_bidi_controls(obj.description)

    @admin.display(description="diff against the previous release")
    def diff_with_previous(self, obj: DatasetRelease) -> str:
        previous = obj.previous()
        if previous is None:
            return "the project's first release"
        return format_html("<pre>{}</pre>", show_bidi_controls("\n".join(summary_lines(diff_releases(previous, obj)))))

    @admin.display(description="export")
    def export(self, obj: DatasetRelease) -> str:
        commands = [f"manage.py export_release --project {obj.project_id} --release {obj.name} OUT_FOLDER",
                    f"GET /api/projects/{obj.project_id}/releases/{obj.pk}/download/ (a zip, up to the API's size)"]
        return format_html_join("", "<div><code>{}</code></div>", ((c,) for c in commands))
