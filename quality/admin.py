"""Quality pages in the admin: the project's agreement & raters page, added to the project admin from here so that
annotation (a lower floor) knows nothing of quality."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from annotation.admin import ProjectAdmin, percent
from annotation.models import Project
from annotation.permissions import MANAGE, project_for
from quality.agreement import project_agreement

# The agreement page reads at most this many of a project's latest rankings.
AGREEMENT_MAX_RANKINGS = 50_000


class QualityProjectAdmin(ProjectAdmin):
    list_display = (*ProjectAdmin.list_display, "agreement_link")
    readonly_fields = (*ProjectAdmin.readonly_fields, "agreement_link")
    fields = (*ProjectAdmin.fields, "agreement_link")

    @admin.display(description="agreement")
    def agreement_link(self, obj) -> str:
        if not obj.pk:
            return "—"
        url = reverse("admin:annotation_project_agreement", args=[obj.pk])
        return format_html('<a href="{}">agreement &amp; raters</a>', url)

    def get_urls(self):
        custom = [
            path(
                "<path:object_id>/agreement/",
                self.admin_site.admin_view(self.agreement_view),
                name="annotation_project_agreement",
            )
        ]
        return custom + super().get_urls()

    def agreement_view(self, request, object_id):
        project = project_for(request.user, object_id, MANAGE)
        if not self.has_view_permission(request, project):
            raise PermissionDenied("no permission to view this project")
        stats = project_agreement(project, max_rankings=AGREEMENT_MAX_RANKINGS)
        rows = [
            {
                "username": s.username,
                "rankings": s.rankings,
                "skips": s.skips,
                "median_time": "—" if s.median_time_s is None else f"{s.median_time_s:.1f} s",
                "agreement": percent(s.agreement),
                "gold": "—" if s.gold_accuracy is None else f"{percent(s.gold_accuracy)} ({s.gold_tasks})",
                "position": percent(s.position_bias),
                "position_expected": percent(s.position_expected),
                "flag_rate": percent(s.flag_rate),
            }
            for s in stats.raters
        ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": project,
            "title": f"Agreement — {project.name}",
            "stats": stats,
            "pairwise": percent(stats.pairwise_rate),
            "alpha_ordinal": "—" if stats.alpha_ordinal is None else f"{stats.alpha_ordinal:.3f}",
            "alpha_interval": "—" if stats.alpha_interval is None else f"{stats.alpha_interval:.3f}",
            "rows": rows,
            "max_rankings": AGREEMENT_MAX_RANKINGS,
        }
        return TemplateResponse(request, "admin/annotation/project/agreement.html", context)


admin.site.unregister(Project)
admin.site.register(Project, QualityProjectAdmin)
